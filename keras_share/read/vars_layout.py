"""The ``vars``-group weights layout of ``.keras`` archives and Keras 3 ``.weights.h5`` files.

Groups are named by ``saving_lib``: ``layers/<snake_case(class)>[_k]/vars/<i>`` for layers in a
graph, attribute names for everything else (see docs/formats.md). tf.keras 2.12 to 2.14 put a model's
layers under ``_layer_checkpoint_dependencies/<snake_case(class)>[_k]`` instead (``CHECKPOINT_DEPENDENCIES``).
"""

from __future__ import annotations

from typing import Any

from keras_share import configs
from keras_share.limits import MAX_LAYERS
from keras_share.read.base import DOUBLE_COUNTED_NOTE, LayerKey, WeightArray, WeightIndex
from keras_share.read.stored import StoredDataset, StoredGroup
from keras_share.vocabulary import LayerKind

GROUP_ATTRS = ("name",)
"""The group attributes the layout is matched with: Keras 3.6+ records a layer's name on its ``vars`` group."""

_TRAINING_STATE_GROUPS = ("optimizer", "metrics")

CHECKPOINT_DEPENDENCIES = "_layer_checkpoint_dependencies"
"""Where tf.keras 2.12 to 2.14 stored a Functional or Sequential model's layers.

Their ``saving_lib`` walked ``dir(model)`` in sorted order, so it met the ``_layer_checkpoint_dependencies``
property (``{"layer_with_weights-<k>": layer, "layer-<i>": layer}`` over ``model.layers``, InputLayers of a
Functional included) before ``layers``, and named each layer ``snake_case(class)`` with a per-class counter.
Keras 2.12 and 2.13 counted a layer with weights twice (it is in the dict twice: ``dense``, ``dense_2``), 2.14
skipped already-saved layers before counting (``dense``, ``dense_1``). Keras 2.15 left the property out of the
walk and wrote ``layers/``."""

CHECKPOINT_DEPENDENCIES_NOTE = (
    f"weights are stored under {CHECKPOINT_DEPENDENCIES}/ (tf.keras 2.12-2.14 layout), matched here as those "
    f"versions named them: Keras 2.15 and tf_keras 2.16+ do not read that group (load_model fails on the first "
    f"layer with weights), and Keras 3 reads it only through a fallback that looks for Keras 3's own group names "
    f"(and cannot rebuild a tf.keras Functional config); re-save the model with the Keras that will load it"
)
"""The note of a file in the ``CHECKPOINT_DEPENDENCIES`` layout: which Keras will not load its weights."""


class TooManyLayers(ValueError):
    """More layer keys than ``MAX_LAYERS`` would get arrays (shared nested models copy theirs to each place)."""

def variable_names(entry: dict[str, Any], count: int) -> list[str]:
    """Names for the ``count`` variables a layer stores, in ``save_own_variables`` order.

    Known classes get their attribute names (``kernel``, ``bias``, ...); anything else, or a
    count that does not fit the class (quantized or custom variants), gets the index.
    """
    names = configs.expected_variable_names(configs.class_name(entry), configs.entry_config(entry))
    if names is None or len(names) != count:
        return [str(index) for index in range(count)]
    return names


def _sorted_datasets(vars_group: StoredGroup) -> list[tuple[str, StoredDataset]]:
    return sorted(vars_group.datasets(), key=lambda item: (not item[0].isdigit(), int(item[0]) if item[0].isdigit() else 0, item[0]))


def _join(*parts: str) -> str:
    return "/".join(filter(None, parts))


class VarsLayoutReader:
    """Attach the arrays of a ``vars``-layout HDF5 tree to the layers of a model config."""

    def __init__(self, tree: StoredGroup, location_prefix: str, keras_generation: int,
                 keras_version: str | None = None) -> None:
        """``tree``: the weights file read with ``read_tree(..., group_attrs=GROUP_ATTRS)``; ``keras_version``: the
        version the file says wrote it (it decides how tf.keras 2.12-2.14 counted ``CHECKPOINT_DEPENDENCIES``)."""
        self._root = tree
        self._prefix = location_prefix
        self._generation = keras_generation
        self._counts_weighted_twice = _counts_weighted_twice(keras_version)
        self.notes: list[str] = []
        """What the reader could not match as Keras would have, or what Keras will not load, in words for the user."""
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
        stray = [group for group in self.index.unattached if CHECKPOINT_DEPENDENCIES in group.split("/")]
        if stray and self._generation == 2 and config is not None:
            self.notes.append(f"{len(stray)} weight group(s) under {CHECKPOINT_DEPENDENCIES}/ match no layer of the "
                              f"config as tf.keras 2.12-2.14 named them ({', '.join(stray[:3])}"
                              f"{', ...' if len(stray) > 3 else ''}): listed as unattached")
        return self.index

    def _walk_model(
        self, entry: dict[str, Any], path: str, key: LayerKey, seen: dict[tuple[str, str], LayerKey]
    ) -> None:
        entries = configs.layer_entries(entry) or []
        if configs.model_kind(entry) == LayerKind.FUNCTIONAL:
            entries = [child for child in entries if not configs.is_op(child)]
        elif entries and configs.is_input_layer(entries[0]):
            entries = entries[1:]
        counters: dict[str, int] = {}
        claimed: set[str] = set()
        layers_path = _join(path, "layers")
        layers_group = self._root.group(layers_path)
        weighted_twice: bool | None = None
        """Set for the ``CHECKPOINT_DEPENDENCIES`` layout: whether a layer with weights is counted twice."""
        dependencies_path = _join(path, CHECKPOINT_DEPENDENCIES)
        dependencies_group = self._root.group(dependencies_path) if self._generation == 2 else None
        if dependencies_group is not None and (layers_group is None or not layers_group.groups()):
            layers_path, layers_group = dependencies_path, dependencies_group
            self._note(CHECKPOINT_DEPENDENCIES_NOTE)
            weighted_twice = self._dependency_numbering(entries, dependencies_group)
        for child in entries:
            child_name, child_class = configs.entry_name(child), configs.class_name(child)
            child_key = key + (child_name,)
            identity = (child_class, child_name)
            repeat = "shared_object_id" in child and identity in seen
            group_name = None
            if weighted_twice is not None and layers_group is not None:
                base = configs.to_snake_case(child_class)
                count = counters.get(base, 0)
                if weighted_twice or not repeat:  # tf.keras 2.14 passes over a layer saved before without counting it
                    group_name = base if count == 0 else f"{base}_{count}"
                    counted_twice = weighted_twice and (
                        self._had_weights(seen[identity]) if repeat else _holds_arrays(layers_group, group_name))
                    counters[base] = count + (2 if counted_twice else 1)
            elif not (repeat and self._generation == 2):
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
            skip = ("layers", CHECKPOINT_DEPENDENCIES) if is_model else ()
            start = len(self._keys)
            self._give(child_key, self._arrays(group, group_path, child, "", skip=skip))
            if is_model:
                self._walk_model(child, group_path, child_key, seen)
            self._spans[child_key] = (start, len(self._keys))

    def _dependency_numbering(self, entries: list[dict[str, Any]], group: StoredGroup) -> bool:
        """Whether the layers of ``entries`` were numbered under ``CHECKPOINT_DEPENDENCIES`` counting a layer with
        weights twice (tf.keras 2.12-2.13) or once (2.14).

        Without a version that says, the numbering that finds more of the groups is used (the same groups either
        way when no class has two layers with weights); a note says when both find as many.
        """
        once, doubled = _dependency_names(entries, group, False), _dependency_names(entries, group, True)
        if once == doubled:
            return bool(self._counts_weighted_twice)
        twice = self._counts_weighted_twice
        if twice is None:
            found_once, found_doubled = (sum(name in group.members for name in names) for names in (once, doubled))
            twice = found_doubled > found_once
            if found_once == found_doubled:
                self._note("the file does not say which tf.keras wrote it, and its groups fit both ways tf.keras "
                           "2.12-2.14 numbered layers of one class: read as tf.keras 2.14 numbered them")
        if twice:
            self._note(DOUBLE_COUNTED_NOTE)
        return twice

    def _note(self, note: str) -> None:
        """Add ``note`` once, however many models of the file it applies to."""
        if note not in self.notes:
            self.notes.append(note)

    def _had_weights(self, key: LayerKey) -> bool:
        """True when the layer at ``key`` (a nested model: any layer below it) was given arrays."""
        start, end = self._spans.get(key, (0, 0))
        return any(self.index.by_layer[below] for below in self._keys[start:end])

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
        """The weight array of the dataset at ``path`` below the root, located with this file's prefix (with its
        shard's name, ``<shard>:``, for a dataset read from a shard)."""
        prefix = f"{dataset.origin}:" if dataset.origin else self._prefix
        return dataset.weight(name, f"{prefix}/{path}", self.index)

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
        """Record every non-empty ``vars`` group that no config layer claimed; one whose arrays are not numbered
        ``0`` to ``n-1`` (Keras writes them so) lacks some, and is also recorded as missing."""
        for name, sub in group.groups():
            sub_path = _join(path, name)
            if name == "vars" and sub_path not in self._consumed:
                datasets = _sorted_datasets(sub)
                arrays = [
                    array
                    for index, dataset in datasets
                    if (array := self._array(index, dataset, _join(sub_path, index))) is not None
                ]
                if arrays:
                    self.index.unattached[path or "/"] = arrays
                if [index for index, _ in datasets] != [str(number) for number in range(len(datasets))]:
                    self.index.missing.append(tuple((path or "/").split("/")))
            elif name != "vars":
                self._collect_unattached(sub, sub_path)


def _counts_weighted_twice(keras_version: str | None) -> bool | None:
    """Whether the Keras that wrote the file counted a layer with weights twice in ``CHECKPOINT_DEPENDENCIES``
    names (2.12 and 2.13), or once (2.14); None when ``keras_version`` does not say."""
    parts = (keras_version or "").split(".")
    if len(parts) < 2 or parts[0] != "2" or not parts[1].isdigit():
        return None
    minor = int(parts[1])
    return True if minor in (12, 13) else False if minor == 14 else None


def _holds_arrays(group: StoredGroup, name: str) -> bool:
    """True when a dataset lies anywhere below the member group ``name`` of ``group`` (a layer saved with weights)."""
    pending = [group.members.get(name)]
    while pending:
        current = pending.pop()
        if isinstance(current, StoredDataset):
            return True
        if isinstance(current, StoredGroup):
            pending.extend(current.members.values())
    return False


def _dependency_names(entries: list[dict[str, Any]], group: StoredGroup, weighted_twice: bool) -> list[str]:
    """Each layer's group name under ``CHECKPOINT_DEPENDENCIES``: ``snake_case(class)`` and a per-class count, which a
    layer with weights advances twice when ``weighted_twice`` (a layer also placed in another model is not told
    apart here: ``VarsLayoutReader._walk_model`` does that)."""
    counters: dict[str, int] = {}
    names: list[str] = []
    for entry in entries:
        base = configs.to_snake_case(configs.class_name(entry))
        count = counters.get(base, 0)
        name = base if count == 0 else f"{base}_{count}"
        counters[base] = count + (2 if weighted_twice and _holds_arrays(group, name) else 1)
        names.append(name)
    return names


def _recorded_name(group: StoredGroup) -> str | None:
    """The layer name Keras 3.6+ records on a layer's ``vars`` group."""
    vars_group = group.members.get("vars")
    return vars_group.attrs.get("name") if isinstance(vars_group, StoredGroup) else None
