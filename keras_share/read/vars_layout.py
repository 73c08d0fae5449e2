"""The ``vars``-group weights layout of ``.keras`` archives and Keras 3 ``.weights.h5`` files.

Groups are named by ``saving_lib``: ``layers/<snake_case(class)>[_k]/vars/<i>`` for layers in a
graph, attribute names for everything else (see docs/keras-formats.md §1.4).
"""

from __future__ import annotations

from typing import Any

from keras_share import configs
from keras_share.limits import MAX_LAYERS
from keras_share.read.base import LayerKey, WeightArray, WeightIndex
from keras_share.read.stored import StoredDataset, StoredGroup

GROUP_ATTRS = ("name",)
"""The group attributes the layout is matched with: Keras 3.6+ records a layer's name on its ``vars`` group."""

_TRAINING_STATE_GROUPS = ("optimizer", "metrics")


class TooManyLayers(ValueError):
    """More layer keys than ``MAX_LAYERS`` would get arrays (shared nested models copy theirs to each place)."""

_KERNEL_BIAS = ("kernel", "bias")
_VARIABLE_NAMES: dict[str, tuple[str, ...]] = {
    "Dense": _KERNEL_BIAS,
    "EinsumDense": _KERNEL_BIAS,
    "Conv1D": _KERNEL_BIAS,
    "Conv2D": _KERNEL_BIAS,
    "Conv3D": _KERNEL_BIAS,
    "Conv1DTranspose": _KERNEL_BIAS,
    "Conv2DTranspose": _KERNEL_BIAS,
    "Conv3DTranspose": _KERNEL_BIAS,
    "DepthwiseConv1D": ("depthwise_kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "SeparableConv1D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "Embedding": ("embeddings",),
    "PReLU": ("alpha",),
    "LayerNormalization": ("gamma", "beta"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def variable_names(entry: dict[str, Any], count: int) -> list[str]:
    """Names for the ``count`` variables a layer stores, in ``save_own_variables`` order.

    Known classes get their attribute names (``kernel``, ``bias``, ...); anything else, or a
    count that does not fit the class (quantized or custom variants), gets the index.
    """
    config = configs.entry_config(entry)
    kind = configs.class_name(entry)
    names = list(_VARIABLE_NAMES.get(kind, ()))
    if kind == "BatchNormalization":
        if config.get("scale") is False:
            names.remove("gamma")
        if config.get("center") is False:
            names.remove("beta")
    elif "bias" in names and config.get("use_bias") is False:
        names.remove("bias")
    if len(names) != count:
        return [str(index) for index in range(count)]
    return names


def _sorted_datasets(vars_group: StoredGroup) -> list[tuple[str, StoredDataset]]:
    return sorted(vars_group.datasets(), key=lambda item: (not item[0].isdigit(), int(item[0]) if item[0].isdigit() else 0, item[0]))


def _join(*parts: str) -> str:
    return "/".join(filter(None, parts))


class VarsLayoutReader:
    """Attach the arrays of a ``vars``-layout HDF5 tree to the layers of a model config."""

    def __init__(self, tree: StoredGroup, location_prefix: str, keras_generation: int) -> None:
        """``tree``: the weights file read with ``read_tree(..., group_attrs=GROUP_ATTRS)``."""
        self._root = tree
        self._prefix = location_prefix
        self._generation = keras_generation
        self._consumed: set[str] = set()
        self._keys: list[LayerKey] = []
        """Every key given arrays, in order: a layer's sublayers follow it (``_spans``)."""
        self._spans: dict[LayerKey, tuple[int, int]] = {}
        """Where a layer's key and its sublayers' keys lie in ``_keys``."""
        self._recorded: dict[int, dict[str, list[str]]] = {}
        """Per ``layers`` group (by id): its member groups by the layer name recorded on them, in order."""
        self.index = WeightIndex()

    def read(self, config: dict[str, Any] | None) -> WeightIndex:
        """Fill the weight index: layers of ``config`` first, then everything left unattached."""
        for name in _TRAINING_STATE_GROUPS:
            group = self._root.group(name)
            if group is not None:
                self._consumed.add(name)
                self.index.optimizer.extend(self._arrays(group, name, {}, name + "/", skip=()))
        if config is not None and configs.layer_entries(config) is not None:
            self._consumed.add("vars")
            self._walk_model(config, "", (), {})
        self._collect_unattached(self._root, "")
        return self.index

    def _walk_model(
        self, entry: dict[str, Any], path: str, key: LayerKey, seen: dict[tuple[str, str], LayerKey]
    ) -> None:
        entries = configs.layer_entries(entry) or []
        if configs.model_kind(entry) == "functional":
            entries = [child for child in entries if not configs.is_op(child)]
        elif entries and configs.is_input_layer(entries[0]):
            entries = entries[1:]
        counters: dict[str, int] = {}
        claimed: set[str] = set()
        layers_path = _join(path, "layers")
        layers_group = self._root.group(layers_path)
        for child in entries:
            child_name, child_class = configs.entry_name(child), configs.class_name(child)
            child_key = key + (child_name,)
            identity = (child_class, child_name)
            repeat = "shared_object_id" in child and identity in seen
            group_name = None
            if not (repeat and self._generation == 2):
                base = configs.to_snake_case(child_class)
                count = counters.get(base, 0)
                counters[base] = count + 1
                group_name = base if count == 0 else f"{base}_{count}"
            if repeat:
                self._alias(seen[identity], child_key)
                continue
            seen[identity] = child_key
            found = None if layers_group is None else self._find_group(layers_group, group_name, child_name, claimed)
            if found is None:
                if not configs.is_input_layer(child):
                    self.index.missing.append(child_key)
                continue
            name, group = found
            claimed.add(name)
            group_path = f"{layers_path}/{name}"
            self._consumed.add(group_path)
            is_model = configs.layer_entries(child) is not None
            skip = ("layers",) if is_model else ()
            start = len(self._keys)
            self._give(child_key, self._arrays(group, group_path, child, "", skip=skip))
            if is_model:
                self._walk_model(child, group_path, child_key, seen)
            self._spans[child_key] = (start, len(self._keys))

    def _arrays(
        self, group: StoredGroup, path: str, entry: dict[str, Any], label: str, skip: tuple[str, ...]
    ) -> list[WeightArray]:
        """Arrays of a group's own ``vars`` and of its attribute-named sublayer groups."""
        arrays: list[WeightArray] = []
        vars_group = group.members.get("vars")
        if isinstance(vars_group, StoredGroup):
            self._consumed.add(_join(path, "vars"))
            datasets = _sorted_datasets(vars_group)
            names = variable_names(entry, len(datasets))
            for (index, dataset), name in zip(datasets, names):
                if (array := self._array(label + name, dataset, _join(path, "vars", index))) is not None:
                    arrays.append(array)
        for name, sub in group.groups():
            if name == "vars" or name in skip:
                continue
            sub_path = _join(path, name)
            self._consumed.add(sub_path)
            arrays.extend(self._arrays(sub, sub_path, {}, f"{label}{name}/", skip=()))
        return arrays

    def _array(self, name: str, dataset: StoredDataset, path: str) -> WeightArray | None:
        """The weight array of the dataset at ``path`` below the root, located with this file's prefix."""
        return dataset.weight(name, f"{self._prefix}/{path}", self.index)

    def _give(self, key: LayerKey, arrays: list[WeightArray]) -> None:
        """Attach ``arrays`` to the layer at ``key``; TooManyLayers past ``MAX_LAYERS`` keys."""
        if key not in self.index.by_layer:
            if len(self._keys) >= MAX_LAYERS:
                raise TooManyLayers(f"config too large: over {MAX_LAYERS:,} layers with weights, shared "
                                    f"layers' copies included (limit {MAX_LAYERS:,})")
            self._keys.append(key)
        self.index.by_layer[key] = arrays

    def _alias(self, original: LayerKey, alias: LayerKey) -> None:
        """Make ``alias`` (and, for a model, its sublayers) share the arrays of ``original``."""
        start, end = self._spans.get(original, (0, 0))
        for key in self._keys[start:end]:
            self._give(alias + key[len(original):], self.index.by_layer[key])

    def _find_group(self, layers_group: StoredGroup, group_name: str | None, layer_name: str,
                    claimed: set[str]) -> tuple[str, StoredGroup] | None:
        """The group of a layer in its model's ``layers`` group: by the naming rules, confirmed or overridden by
        ``name`` attributes; None when there is none (``claimed``: the groups other layers of the model took)."""
        if group_name is not None:
            group = layers_group.members.get(group_name)
            if isinstance(group, StoredGroup):
                recorded = _recorded_name(group)
                if recorded is None or recorded == layer_name:
                    return group_name, group
        by_name = self._recorded.get(id(layers_group))
        if by_name is None:
            by_name = self._recorded[id(layers_group)] = {}
            for name, group in reversed(layers_group.groups()):
                recorded = _recorded_name(group)
                if recorded is not None:
                    by_name.setdefault(recorded, []).append(name)
        candidates = by_name.get(layer_name, [])
        while candidates and candidates[-1] in claimed:
            candidates.pop()  # claimed groups stay claimed: each is passed over once
        if not candidates:
            return None
        group = layers_group.members[candidates[-1]]
        assert isinstance(group, StoredGroup)
        return candidates[-1], group

    def _collect_unattached(self, group: StoredGroup, path: str) -> None:
        """Record every non-empty ``vars`` group that no config layer claimed."""
        for name, sub in group.groups():
            sub_path = _join(path, name)
            if name == "vars" and sub_path not in self._consumed:
                arrays = [
                    array
                    for index, dataset in _sorted_datasets(sub)
                    if (array := self._array(index, dataset, _join(sub_path, index))) is not None
                ]
                if arrays:
                    self.index.unattached[path or "/"] = arrays
            elif name != "vars":
                self._collect_unattached(sub, sub_path)


def _recorded_name(group: StoredGroup) -> str | None:
    """The layer name Keras 3.6+ records on a layer's ``vars`` group."""
    vars_group = group.members.get("vars")
    return vars_group.attrs.get("name") if isinstance(vars_group, StoredGroup) else None
