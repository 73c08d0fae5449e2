"""Which other live models use a layer: the models passed together, and any other model alive in memory.

A layer object keeps every node (call) it was ever given, in ``_inbound_nodes``. A node counts as a use
by another model only when a live model's graph holds it: the models inspected together are named by
the names they were given; other models still alive in the process are found through the garbage
collector and named by their ``name``. Nodes that no live model holds are left over (a Sequential rebuilt
by ``add``, a discarded experiment) and are ignored: training cannot reach them.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

from keras_share.live.flavors import Flavor, Keras3, loaded_flavors


@dataclass
class ModelTree:
    """One live model: itself and its nested graph models, and every node of their graphs."""

    name: str
    model: Any
    flavor: Flavor
    passed: bool
    model_ids: set[int] = field(default_factory=set)
    node_ids: set[int] = field(default_factory=set)
    paths: dict[int, str] = field(default_factory=dict)
    """id(layer object) -> its first path in this model."""
    layer_node_ids: set[int] = field(default_factory=set)
    """Every node (call) of every layer in this model, wherever the call was made."""


def _walk(tree: ModelTree, model: Any, prefix: str) -> None:
    flavor = tree.flavor
    if id(model) in tree.model_ids:
        return
    tree.model_ids.add(id(model))
    nodes = flavor.graph_node_ids(model)
    if nodes:
        tree.node_ids |= nodes
    if not flavor.is_graph_model(model):
        return
    for child in flavor.children(model):
        path = f"{prefix}{child.name}"
        tree.paths.setdefault(id(child), path)
        tree.layer_node_ids.update(id(node) for node in flavor.inbound_nodes(child))
        if flavor.is_graph_model(child):
            _walk(tree, child, path + "/")


def model_tree(name: str, model: Any, flavor: Flavor, passed: bool) -> ModelTree:
    tree = ModelTree(name=name, model=model, flavor=flavor, passed=passed)
    _walk(tree, model, "")
    return tree


def _live_graph_models(flavors: list[Flavor]) -> list[tuple[Any, Flavor]]:
    """Every Functional/Sequential model in this process's heap, minus a Sequential's internal graphs.

    Unreachable models waiting for the cycle collector are included: see ``Census._discover``.
    """
    classes = tuple(klass for flavor in flavors for klass in flavor.graph_classes)
    if not classes:
        return []
    found: list[tuple[Any, Flavor]] = []
    for obj in [obj for obj in gc.get_objects() if isinstance(obj, classes)]:
        flavor = next(flavor for flavor in flavors if flavor.is_graph_model(obj))
        found.append((obj, flavor))
    internal: set[int] = set()
    for obj, flavor in found:
        if isinstance(flavor, Keras3) and flavor.is_sequential(obj):
            internal.update(id(graph) for graph in flavor.sequential_internal_graphs(obj))
    return [(obj, flavor) for obj, flavor in found if id(obj) not in internal]


class Census:
    """The models a set of inspected models may share layers with."""

    def __init__(self, passed: dict[str, tuple[Any, Flavor]], discover: bool = True) -> None:
        self.trees: list[ModelTree] = [model_tree(name, model, flavor, True) for name, (model, flavor) in passed.items()]
        if discover:
            self._discover()

    def _candidates(self, ours: set[int]) -> list[ModelTree]:
        """Models outside the passed ones whose graphs hold a call of one of their layers."""
        covered = set().union(*(tree.model_ids for tree in self.trees)) if self.trees else set()
        found = []
        for model, flavor in _live_graph_models(loaded_flavors()):
            if id(model) in covered:
                continue
            tree = model_tree(str(getattr(model, "name", "model")), model, flavor, False)
            if tree.node_ids & ours:
                found.append(tree)
        return found

    def _discover(self) -> None:
        ours = set().union(*(tree.layer_node_ids for tree in self.trees)) if self.trees else set()
        if not self._candidates(ours):
            return  # nothing in the heap uses these layers, not even garbage
        gc.collect()  # a model only waiting for the cycle collector is no longer anyone's model
        others = self._candidates(ours)
        nested: set[int] = set()
        for tree in others:
            nested |= tree.model_ids - {id(tree.model)}
        self.trees += [tree for tree in others if id(tree.model) not in nested]

    def others(self, tree: ModelTree) -> list[ModelTree]:
        """The trees that are neither inside ``tree`` nor contain it."""
        return [
            other for other in self.trees
            if other is not tree and id(other.model) not in tree.model_ids and id(tree.model) not in other.model_ids
        ]

    def tree_of(self, model: Any) -> ModelTree:
        return next(tree for tree in self.trees if tree.model is model)
