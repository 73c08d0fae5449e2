"""The layer graph of a model config: layers by path, their call sites and nesting, their stored weights."""
