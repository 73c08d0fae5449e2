"""Every bound keras-share puts on what one model file may make it hold: sizes, counts and nesting.

A file over any of these is refused with one line (``keras-share: error: PATH: ... too large: N ... (limit M)``,
exit 3) before the work it would cost is done. Each bound is far above the largest real models (the
benchmark's 10,000-layer Functional model, KerasHub LLMs) and low enough that any file under all of them is
read, analysed and reported within the memory and time SECURITY.md promises.
"""

from __future__ import annotations

MAX_JSON_BYTES = 16 * 1024 * 1024
"""Largest config JSON text parsed (a ``.keras`` config.json or metadata.json, an ``.h5`` model_config)."""
MAX_JSON_VALUES = 2_000_000
"""Most JSON tokens a config may hold before it is parsed, counted as its ``{``, ``[``, ``,`` and ``:`` bytes
(an upper bound of its objects, arrays, members and elements)."""
MAX_JSON_DEPTH = 640
"""Deepest nesting of JSON objects and arrays parsed: the same for every file, whatever was read before it
and however many processes read (200 nested Sequential models are about 600 levels)."""
MAX_METADATA_BYTES = 32 * 1024 * 1024
"""Largest SavedModel ``keras_metadata.pb`` read."""
MAX_CHECKPOINT_INDEX_BYTES = 64 * 1024 * 1024
"""Largest SavedModel ``variables/variables.index`` read (a few hundred bytes per variable)."""
MAX_CHECKPOINT_ENTRIES = 1_000_000
"""Most tensors a SavedModel's ``variables.index`` may list (layer variables, optimizer slots, metrics)."""
MAX_CHECKPOINT_KEY_BYTES = 256 * 1024 * 1024
"""Most bytes of keys rebuilt from that index's prefix-compressed entries, over all of them (each key repeats
the prefix it shares with the one before, so a small file can describe long keys)."""
MAX_CHECKPOINT_SHARDS = 10_000
"""Most ``variables.data-*`` shards a SavedModel's checkpoint may declare."""
MAX_OBJECT_GRAPH_BYTES = 64 * 1024 * 1024
"""Largest object graph (``_CHECKPOINTABLE_OBJECT_GRAPH``) read from a SavedModel's checkpoint."""
MAX_OBJECT_GRAPH_NODES = 2_000_000
"""Most objects that object graph may hold (a layer is about a dozen: itself, its variables, lists, functions)."""
MAX_SAVED_MODEL_BYTES = 256 * 1024 * 1024
"""Largest SavedModel ``saved_model.pb`` read (for its variables' own ``trainable`` flags; it also holds the
traced functions' graphs, which are skipped)."""
MAX_LAYER_ARRAYS = 4_000_000
"""Most arrays attached to the layers of one SavedModel, counted once per place (a nested model placed twice
counts its arrays twice)."""

MAX_LAYERS = 20_000
"""Most layer entries in one config, nested models' layers included."""
MAX_CALLS = 40_000
"""Most call sites (``inbound_nodes`` entries and Sequential steps) in one config."""
MAX_TENSOR_REFERENCES = 60_000
"""Most tensor references (the inputs of every call) in one config."""
MAX_SHAPE_DIMENSIONS = 1_000_000
"""Most dimensions in the shapes of those tensor references (an input's shape is copied to each of its uses)."""
MAX_PATH_CHARACTERS = 4_000_000
"""Most characters of layer paths the graph holds: every layer's path plus the layer named by every tensor
reference (nesting and long names multiply what a report prints)."""
MAX_SAME_LAYER_CHARACTERS = 4_000_000
"""Most characters of paths listed as other places of the same layer object (``same_as``), over all layers."""

MAX_COMPRESSED_WEIGHTS_BYTES = 256 * 1024 * 1024
"""Largest compressed ``model.weights.h5`` of a ``.keras`` zip accepted (uncompressed size): it is inflated whole
before it is read, which must take a few seconds at most (Keras stores it uncompressed)."""
MAX_SLOW_COMPRESSED_WEIGHTS_BYTES = 64 * 1024 * 1024
"""The same for bzip2 or LZMA, which decompress ten times slower than deflate (Keras never writes them)."""
MAX_ZIP_MEMBERS = 10_000
"""Most members a ``.keras`` archive may have (Keras writes three, and asset files)."""
MAX_ORBAX_STEP_FOLDERS = 64
"""Most numbered subfolders of a folder looked into for an Orbax checkpoint step's marker files (Orbax keeps one
per saved step, most often a few)."""
MAX_ZIP_DIRECTORY_BYTES = 1024 * 1024
"""Largest zip central directory read: ``zipfile`` makes an object of every entry in it."""
MAX_WEIGHT_SHARDS = 2_000
"""Most shard files a sharded weights map (``model.weights.json``, ``x.weights.json``) may name: each is opened and
read like one ``.weights.h5`` file (the largest KerasHub presets have tens, at Keras's 5 GB default shard size)."""
MAX_PRESET_EXTRA_FILES = 64
"""Most extra HDF5 files of a KerasHub preset read (``task.weights.h5`` and ``*.lora.h5`` adapters)."""
MAX_PRESET_EXTRA_IN_ZIP_BYTES = 256 * 1024 * 1024
"""Largest ``task.weights.h5`` or LoRA member of a ``.keras`` zip read (into memory): a task head or adapters."""
MAX_PRESET_LISTED_FILES = 200
"""Most other files of a KerasHub preset listed by name (tokenizer and preprocessor JSON, assets)."""

READER_ADDRESS_SPACE_BYTES = 1 << 30
"""Address space a reader child may map beyond what it had mapped when its job began (``RLIMIT_AS``): more, and
its allocations fail (one line, exit 3)."""
LIVE_LOAD_ADDRESS_SPACE_BYTES = 6 << 30
"""The same for the child that loads a file with Keras (``--live``): TensorFlow alone maps about 1.8 GiB."""
MAX_BASELINE_BYTES = 64 * 1024 * 1024
"""Largest ``--baseline`` file read (a JSON report of an earlier run)."""
