"""What changed between two analysed models (``keras-share diff OLD NEW``): one ``Change`` per difference.

Layers are matched by path, then the layers left over by class and weights (shapes and content digests): a
match there is a rename. Each matched pair is compared on class, calls, call wiring, sharing, trainability as
loaded, and weights (content digests from each report's ``DigestSource``, read in reader children). Arrays are
compared as a multiset of shape, dtype and digest: formats store a layer's arrays in different orders and under
different names (a ``.keras`` file by sublayer, an ``.h5`` file in creation order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keras_share.analysis.digests import DigestSource
from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.graph.model import CallSite
from keras_share.read.base import ArrayDigest, WeightArray
from keras_share.vocabulary import ChangeKind, LayerKind


@dataclass(frozen=True)
class Change:
    """One difference: its kind, the layer (its path in NEW, in OLD for a removed layer; ``""``: the model), and
    what it was and is (plain JSON values; docs/diff.md says which for each kind)."""

    kind: ChangeKind
    path: str
    before: Any
    after: Any
    detail: str = ""
    """A short explanation where the kind alone does not say it (``the same calls in another order``)."""

    @property
    def matters(self) -> bool:
        """Whether it fails the diff (exit 1)."""
        return self.kind.matters


@dataclass
class ModelDiff:
    """The comparison of two models: the changes, in layer order of NEW (removed layers last), and what it
    could not compare."""

    old: ModelReport
    new: ModelReport
    changes: list[Change] = field(default_factory=list)
    unchanged_weights: list[str] = field(default_factory=list)
    """Paths (in NEW) of the matched layers whose arrays are equal in shape, dtype and content."""
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything that matters changed (``keras-share diff`` exits 1)."""
        return any(change.matters for change in self.changes)

    @property
    def params_delta(self) -> int:
        """Unique parameters of NEW minus those of OLD."""
        return self.new.summary.unique_params - self.old.summary.unique_params

    def __repr__(self) -> str:
        return (f"<ModelDiff {self.old.file.path!r} -> {self.new.file.path!r}: {len(self.changes)} changes, "
                f"{'changed' if self.changed else 'nothing that matters changed'}>")


@dataclass
class _Entry:
    """A layer, or a weight group no config layer names (weights-only files, subclassed models)."""

    path: str
    class_name: str | None
    arrays: list[WeightArray]
    report: LayerReport | None = None


def _entries(report: ModelReport) -> dict[str, _Entry]:
    entries = {layer.layer.path: _Entry(layer.layer.path, layer.layer.class_name, layer.layer.weights, layer)
               for layer in report.layers}
    for group, arrays in report.file.weights.unattached.items():
        entries.setdefault(group, _Entry(group, None, arrays))
    return entries


def _class(name: str) -> str:
    """A class name without the package of its registered name: a Keras 3 ``.h5`` file writes a custom class as
    ``Custom>TripletLossLayer``, its ``.keras`` file as ``TripletLossLayer``."""
    return name.rpartition(">")[2]


def _array_value(array: WeightArray, digests: Mapping[str, ArrayDigest]) -> dict[str, Any]:
    digest = digests.get(array.location)
    return {"shape": list(array.shape), "dtype": array.dtype, "sha256": digest.sha256 if digest else None}


def _arrays_key(arrays: Sequence[WeightArray], digests: Mapping[str, ArrayDigest]) -> list[tuple[Any, ...]]:
    """The arrays as a sorted list of (shape, dtype, digest or ``""``): equal for the same contents in any order."""
    return sorted((array.shape, array.dtype, getattr(digests.get(array.location), "sha256", "")) for array in arrays)


def _content_key(entry: _Entry, digests: Mapping[str, ArrayDigest]) -> tuple[object, ...] | None:
    """Class and contents of a layer with weights, for matching a renamed layer; None when any array is unhashed
    or every one is constant (freshly initialised arrays would match any layer of the same shapes)."""
    found = [digests.get(array.location) for array in entry.arrays]
    if not found or any(digest is None for digest in found) or all(digest.constant for digest in found if digest):
        return None
    return (_class(entry.class_name or ""), tuple(_arrays_key(entry.arrays, digests)))


def _renames(old: dict[str, _Entry], new: dict[str, _Entry], old_digests: Mapping[str, ArrayDigest],
             new_digests: Mapping[str, ArrayDigest]) -> dict[str, str]:
    """Old path -> new path for the layers only one of the two models has, that match one to one by content."""
    def unique_keys(entries: list[_Entry], digests: Mapping[str, ArrayDigest]) -> dict[tuple[object, ...], str]:
        keys = [(key, entry.path) for entry in entries if (key := _content_key(entry, digests)) is not None]
        counts = Counter(key for key, _ in keys)
        return {key: path for key, path in keys if counts[key] == 1}

    theirs = unique_keys([entry for path, entry in old.items() if path not in new], old_digests)
    mine = unique_keys([entry for path, entry in new.items() if path not in old], new_digests)
    return {theirs[key]: path for key, path in mine.items() if key in theirs}


def _calls(call_sites: list[CallSite], renamed: Mapping[str, str]) -> list[list[dict[str, Any]]]:
    """Each call's inputs, producers named by their path in NEW."""
    return [[{"layer": renamed.get(ref.layer, ref.layer), "call": ref.call, "tensor": ref.tensor,
              "keyword": ref.keyword} for ref in call.inputs] for call in call_sites]


def _sharing(layer: LayerReport, renamed: Mapping[str, str]) -> dict[str, Any]:
    return {"shared": layer.shared, "object_calls": layer.object_calls,
            "same_as": sorted(renamed.get(path, path) for path in layer.same_as)}


class _Comparison:
    """The changes between two models, built in one pass over the layers of NEW."""

    def __init__(self, old: ModelReport, new: ModelReport, old_source: DigestSource, new_source: DigestSource) -> None:
        self.old, self.new = old, new
        self.old_entries, self.new_entries = _entries(old), _entries(new)
        self.old_digests = old_source.digests([a for entry in self.old_entries.values() for a in entry.arrays])
        self.new_digests = new_source.digests([a for entry in self.new_entries.values() for a in entry.arrays])
        self.renamed = _renames(self.old_entries, self.new_entries, self.old_digests, self.new_digests)
        self.new_to_old = {path: path for path in self.new_entries if path in self.old_entries}
        self.new_to_old.update({new_path: old_path for old_path, new_path in self.renamed.items()})
        self.result = ModelDiff(old, new)
        self.graphs = old.graph.has_graph and new.graph.has_graph

    def add(self, kind: ChangeKind, path: str, before: Any, after: Any, detail: str = "") -> None:
        self.result.changes.append(Change(kind, path, before, after, detail))

    def run(self) -> ModelDiff:
        added: set[str] = set()
        for path, entry in self.new_entries.items():
            old_path = self.new_to_old.get(path)
            if old_path is None:
                added.add(path)
                if _parent(entry) not in added:
                    self.add(ChangeKind.LAYER_ADDED, path, None, _layer_value(entry, self.new_entries))
                continue
            if old_path != path:
                self.add(ChangeKind.LAYER_RENAMED, path, old_path, path)
            self.compare(self.old_entries[old_path], entry)
        matched = set(self.new_to_old.values())
        removed: set[str] = set()
        for path, entry in self.old_entries.items():
            if path not in matched:
                removed.add(path)
                if _parent(entry) not in removed:
                    self.add(ChangeKind.LAYER_REMOVED, path, _layer_value(entry, self.old_entries), None)
        self.result.changes = _without_inner_sharing_changes(self.result.changes, self.old, self.new, self.renamed)
        if self.old.summary.unique_params != self.new.summary.unique_params:
            self.add(ChangeKind.PARAMS_CHANGED, "", self.old.summary.unique_params, self.new.summary.unique_params,
                     f"{self.result.params_delta:+,} params")
        if not self.graphs:
            side = "OLD" if not self.old.graph.has_graph else "NEW"
            self.result.notes.append(f"{side} has no layer graph (weights only, or a subclassed model): "
                                     "calls, wiring and sharing were not compared")
        self.result.notes += [f"OLD: {note}" for note in self.old.notes] + [f"NEW: {note}" for note in self.new.notes]
        return self.result

    def compare(self, old: _Entry, new: _Entry) -> None:
        """The changes of one matched layer."""
        if old.class_name and new.class_name and _class(old.class_name) != _class(new.class_name):
            self.add(ChangeKind.CLASS_CHANGED, new.path, old.class_name, new.class_name)
        if old.report is not None and new.report is not None:
            if self.graphs:
                self.compare_calls(old.report, new.report)
                self.compare_sharing(old.report, new.report)
            if new.arrays and not new.report.layer.is_model and old.report.trainable != new.report.trainable:
                self.add(ChangeKind.TRAINABILITY_CHANGED, new.path, old.report.trainable, new.report.trainable,
                         "unfrozen" if new.report.trainable else "frozen")
        self.compare_weights(old, new)

    def compare_calls(self, old: LayerReport, new: LayerReport) -> None:
        if new.layer.kind == LayerKind.INPUT:
            return
        before = {"calls": old.layer.calls, "effective_calls": old.effective_calls}
        after = {"calls": new.layer.calls, "effective_calls": new.effective_calls}
        if before != after:
            self.add(ChangeKind.CALLS_CHANGED, new.layer.path, before, after)
            return
        old_calls = _calls(old.layer.call_sites, self.renamed)
        new_calls = _calls(new.layer.call_sites, {})
        if old_calls != new_calls:
            permuted = sorted(map(repr, old_calls)) == sorted(map(repr, new_calls))
            self.add(ChangeKind.WIRING_CHANGED, new.layer.path, old_calls, new_calls,
                     "the same calls in another order" if permuted else "")

    def compare_sharing(self, old: LayerReport, new: LayerReport) -> None:
        before, after = _sharing(old, self.renamed), _sharing(new, {})
        lost = (old.shared and not new.shared) or bool(set(before["same_as"]) - set(after["same_as"]))
        gained = (new.shared and not old.shared) or bool(set(after["same_as"]) - set(before["same_as"]))
        if lost:
            self.add(ChangeKind.SHARING_LOST, new.layer.path, before, after)
        if gained:
            self.add(ChangeKind.SHARING_GAINED, new.layer.path, before, after)

    def compare_weights(self, old: _Entry, new: _Entry) -> None:
        if not old.arrays and not new.arrays:
            return
        old_key, new_key = _arrays_key(old.arrays, self.old_digests), _arrays_key(new.arrays, self.new_digests)
        hashed = all(digest for _, _, digest in old_key + new_key)
        if hashed and old_key == new_key:
            self.result.unchanged_weights.append(new.path)
            return
        before = sorted((_array_value(array, self.old_digests) for array in old.arrays), key=repr)
        after = sorted((_array_value(array, self.new_digests) for array in new.arrays), key=repr)
        shapes_before = [(value["shape"], value["dtype"]) for value in before]
        shapes_after = [(value["shape"], value["dtype"]) for value in after]
        if shapes_before == shapes_after and not hashed:
            self.add(ChangeKind.WEIGHTS_NOT_COMPARED, new.path, before, after,
                     "some arrays could not be hashed within the hashing budget")
        else:
            differing = sum((Counter(map(repr, before)) - Counter(map(repr, after))).values())
            detail = f"{differing} of {len(before)} arrays differ" if shapes_before == shapes_after else "shapes differ"
            frozen = new.report is not None and not new.report.trainable
            kind = ChangeKind.FROZEN_WEIGHTS_CHANGED if frozen else ChangeKind.WEIGHTS_CHANGED
            self.add(kind, new.path, before, after, detail)


def _parent(entry: _Entry) -> str | None:
    return entry.report.layer.parent if entry.report is not None else None


def _layer_value(entry: _Entry, entries: Mapping[str, _Entry]) -> dict[str, Any]:
    """Class and parameters of an added or removed layer (a nested model's: those of the layers in it, which are
    not listed each)."""
    inside, pending = [entry], list(entry.report.layer.children) if entry.report is not None else []
    while pending:
        child = entries.get(pending.pop())
        if child is not None and child.report is not None:
            inside.append(child)
            pending.extend(child.report.layer.children)
    locations = {array.location: array.size for each in inside for array in each.arrays}
    return {"class_name": entry.class_name, "params": sum(locations.values())}


def _without_inner_sharing_changes(changes: list[Change], old: ModelReport, new: ModelReport,
                                   renamed: Mapping[str, str]) -> list[Change]:
    """The sharing changes of the layers shared through a nested model left out when that model has the same change
    (a shared encoder that lost its sharing is one change, not one per layer in it)."""
    old_via = {renamed.get(layer.layer.path, layer.layer.path): renamed.get(layer.shared_via, layer.shared_via)
               for layer in old.layers if layer.shared_via is not None}
    new_via = {layer.layer.path: layer.shared_via for layer in new.layers if layer.shared_via is not None}
    by_kind = {(change.kind, change.path) for change in changes}

    def inner(change: Change) -> bool:
        via = {ChangeKind.SHARING_LOST: old_via, ChangeKind.SHARING_GAINED: new_via}.get(change.kind, {})
        return (change.kind, via.get(change.path)) in by_kind
    return [change for change in changes if not inner(change)]


def compare(old: ModelReport, new: ModelReport, old_digests: DigestSource, new_digests: DigestSource) -> ModelDiff:
    """What changed from ``old`` to ``new``; the digest sources give each report's array contents."""
    return _Comparison(old, new, old_digests, new_digests).run()
