"""The layer graph of a report as a picture: what ``--format mermaid``, ``dot``, ``svg`` and ``html`` draw.

Each layer object is drawn once, however often it is called: an edge into a layer that runs more than once is
numbered with the call that takes the tensor (``call 1``), an edge out of it with the call that made the tensor.
A nested model is a cluster around its layers; the edges of its calls run to its input layers and from its
output layers. Runs of plain layers (one input, one output, not shared, no finding) collapse into one box unless
``expand`` is asked for, so a model of thousands of layers stays a picture. Names are kept raw here: each format
escapes them its own way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from keras_share.analysis.report import LayerReport, ModelReport
from keras_share.graph.model import Layer, TensorRef
from keras_share.vocabulary import LayerKind, ModelKind, Severity

SHOWN_MEMBERS = 12
"""Names of a collapsed chain's layers a tooltip lists."""


@dataclass
class Node:
    """A box: one layer, or a collapsed chain of plain layers."""

    id: str
    name: str
    detail: str
    """The class name, or for a chain its size and classes (``9 layers: Dense x9``)."""
    kind: LayerKind | ModelKind
    cluster: str | None
    """Id of the nested model's cluster the node is drawn in; None at the top."""
    calls: int = 1
    shared: bool = False
    """Applied more than once other than through a shared nested model (whose cluster is marked)."""
    frozen: bool = False
    severity: Severity | None = None
    """The worst finding on the layer, None without one."""
    members: list[str] = field(default_factory=list)
    """Paths of the layers the box stands for (one, or a collapsed chain's)."""

    @property
    def chain(self) -> bool:
        """True for a box standing for several collapsed layers."""
        return len(self.members) > 1


@dataclass
class Cluster:
    """A nested model drawn around its layers."""

    id: str
    name: str
    detail: str
    parent: str | None
    calls: int
    shared: bool
    frozen: bool
    severity: Severity | None
    layers: int
    """Layers inside that run on tensors (nested models' layers included)."""


@dataclass
class Edge:
    """A tensor from one box to another; ``label`` numbers the calls of a layer that runs more than once."""

    source: str
    target: str
    label: str = ""
    groups: tuple[str, ...] = ()
    """Ids of the shared nodes and clusters whose call sites the edge is (highlighted together)."""


@dataclass
class Tie:
    """Two boxes that hold the same weights: one layer object placed twice, or a variable tied across layers."""

    first: str
    second: str
    label: str


@dataclass
class Picture:
    """One model's graph, ready to draw."""

    title: str
    prefix: str
    """Prefix of every id in it (several models can share one drawing)."""
    nodes: dict[str, Node] = field(default_factory=dict)
    clusters: dict[str, Cluster] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    ties: list[Tie] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)
    """The id of the box (node, chain or cluster) each layer path is drawn in."""
    note: str | None = None
    """Why there is no graph to draw (a subclassed model, a weights-only file), else None."""

    def members_of(self, cluster: str | None) -> list[Node]:
        """The nodes drawn directly in ``cluster`` (None: at the top), once the picture is complete."""
        return self._members.get(cluster, [])

    def clusters_in(self, parent: str | None) -> list[Cluster]:
        """The clusters drawn directly in ``parent`` (None: at the top), once the picture is complete."""
        return self._clusters.get(parent, [])

    @cached_property
    def _members(self) -> dict[str | None, list[Node]]:
        grouped: dict[str | None, list[Node]] = defaultdict(list)
        for node in self.nodes.values():
            grouped[node.cluster].append(node)
        return grouped

    @cached_property
    def _clusters(self) -> dict[str | None, list[Cluster]]:
        grouped: dict[str | None, list[Cluster]] = defaultdict(list)
        for cluster in self.clusters.values():
            grouped[cluster.parent].append(cluster)
        return grouped


def marks(shared: bool, calls: int, frozen: bool, severity: Severity | None) -> str:
    """The words a box carries besides its name: ``shared, 3 calls · frozen · error``."""
    words = [(f"shared, {calls} calls" if calls > 1 else "shared") if shared else "", "frozen" if frozen else "",
             f"finding: {severity}" if severity is not None else ""]
    return " · ".join(word for word in words if word)


def node_lines(node: Node) -> list[str]:
    """A box's text, line by line: name, class (or chain size), marks."""
    return [line for line in (node.name, node.detail, marks(node.shared, node.calls, node.frozen, node.severity))
            if line]


def cluster_lines(cluster: Cluster) -> list[str]:
    """A nested model's title, line by line: ``encoder (Functional, 3 layers)``, then its marks if any."""
    layers = f"{cluster.layers} layer{'s' if cluster.layers != 1 else ''}"
    extra = marks(cluster.shared, cluster.calls, cluster.frozen, cluster.severity)
    return [f"{cluster.name} ({cluster.detail}, {layers})", *([extra] if extra else [])]


def cluster_title(cluster: Cluster) -> str:
    """A nested model's title on one line: ``encoder (Functional, 3 layers) · shared, 3 calls``."""
    return " · ".join(cluster_lines(cluster))


def _worst(findings: list[Severity]) -> Severity | None:
    return max(findings, key=lambda severity: severity.rank, default=None)


class _Builder:
    """Turns one report into a ``Picture``: nodes and clusters first, then the edges of every call."""

    def __init__(self, report: ModelReport, prefix: str) -> None:
        self.report = report
        self.layers = report.graph.layers
        self.picture = Picture(report.file.path, prefix)
        self.ids = self.picture.ids
        severities: dict[str, list[Severity]] = {}
        for finding in report.findings:
            for path in {finding.layer, *finding.layers} - {""}:
                severities.setdefault(path, []).append(finding.severity)
        self.severity = {path: _worst(found) for path, found in severities.items()}

    def _id(self, path: str) -> str:
        return self.ids.setdefault(path, f"{self.picture.prefix}n{len(self.ids)}")

    def _frozen(self, layer: LayerReport) -> bool:
        return not layer.trainable and layer.layer.kind is not LayerKind.INPUT

    def _as_cluster(self, layer: Layer) -> bool:
        return layer.is_model and bool(layer.children)

    def build(self) -> Picture:
        picture = self.picture
        if not self.report.graph.has_graph:
            root = self.report.graph.root
            picture.note = f"{root.name or 'the model'} ({root.class_name or 'unknown class'}): no layer graph in this file"
            return picture
        inside = self._layers_inside()
        for report in self.report.layers:
            layer = report.layer
            cluster = self._id(layer.parent) if layer.parent else None
            if self._as_cluster(layer):
                picture.clusters[self._id(layer.path)] = Cluster(
                    self._id(layer.path), layer.name, layer.class_name, cluster, layer.calls,
                    report.shared and report.shared_via is None, self._frozen(report), self.severity.get(layer.path),
                    inside[layer.path])
                continue
            picture.nodes[self._id(layer.path)] = Node(
                self._id(layer.path), layer.name, layer.class_name, layer.kind, cluster, layer.calls,
                report.shared and report.shared_via is None, self._frozen(report), self.severity.get(layer.path), [layer.path])
        for report in self.report.layers:
            self._call_edges(report.layer)
        self._ties()
        return picture

    def _layers_inside(self) -> Counter[str]:
        """How many layers that run on tensors (nested models aside) each model holds, at any depth."""
        inside: Counter[str] = Counter()
        for layer in self.layers.values():
            if layer.runs_on_tensors and not layer.is_model:
                parent, steps = layer.parent, 0
                while parent and steps <= len(self.layers):
                    inside[parent] += 1
                    parent, steps = self.layers[parent].parent if parent in self.layers else None, steps + 1
        return inside

    @staticmethod
    def _numbered(layer: Layer) -> bool:
        """Whether the edges of ``layer``'s calls carry their call's number (it is called more than once)."""
        return layer.calls > 1

    def _sources(self, ref: TensorRef) -> list[tuple[str, str, tuple[str, ...]]]:
        """The boxes a tensor comes out of, with the label part and highlight groups the producer adds. A nested
        model's output is followed into the model (only into it: each step goes one level deeper)."""
        producer = self.layers.get(ref.layer)
        if producer is None:
            return []
        label = ""
        groups: tuple[str, ...] = ()
        if self._numbered(producer) and ref.call is not None:
            label, groups = f"call {ref.call}", (self._id(producer.path),)
        if not self._as_cluster(producer):
            return [(self._id(producer.path), label, groups)]
        outputs = producer.outputs
        if outputs is None:  # a Sequential: its last layer
            last = [self.layers[path] for path in producer.children if self.layers[path].runs_on_tensors]
            outputs = [TensorRef(last[-1].path, 0, 0)] if last else []
        if ref.tensor < len(outputs):
            outputs = [outputs[ref.tensor]]
        found = []
        for output in outputs:
            if not output.layer.startswith(producer.path + "/"):
                continue
            for source, inner_label, inner_groups in self._sources(output):
                found.append((source, _joined(label, inner_label), groups + inner_groups))
        return found or [(self._id(producer.path), label, groups)]

    def _entries(self, model: Layer, position: int) -> list[str]:
        """The boxes the ``position``-th input of a call of ``model`` goes into: its input layer at that position
        (every input layer when the counts do not match), nested models followed down."""
        inputs = [self.layers[path] for path in model.children if self.layers[path].kind is LayerKind.INPUT]
        if not inputs:
            inputs = [self.layers[path] for path in model.children if self.layers[path].runs_on_tensors][:1]
        chosen = [inputs[position]] if position < len(inputs) else inputs
        entries: list[str] = []
        for entry in chosen:
            entries += self._entries(entry, 0) if self._as_cluster(entry) else [self._id(entry.path)]
        return entries

    def _call_edges(self, layer: Layer) -> None:
        numbered = self._numbered(layer)
        for call in layer.call_sites:
            label, groups = (f"call {call.index}", (self._id(layer.path),)) if numbered else ("", ())
            if self._as_cluster(layer):
                targets = [self._entries(layer, position) for position in range(len(call.inputs))]
            else:
                targets = [[self._id(layer.path)]] * len(call.inputs)
            for ref, into in zip(call.inputs, targets):
                for source, source_label, source_groups in self._sources(ref):
                    for target in into:
                        self.picture.edges.append(Edge(source, target, _arrow(source_label, label),
                                                       source_groups + groups))

    def _ties(self) -> None:
        """Link the boxes of one layer object placed in several nested models (the layers inside two linked
        models are not linked again), and, live, the layers of a tied variable."""
        linked: set[tuple[str, str]] = set()

        def pair(first: str, second: str) -> tuple[str, str]:
            return min(first, second), max(first, second)

        for report in self.report.layers:
            layer = report.layer
            for other in report.same_as:
                if layer.path not in self.ids or other not in self.ids or self.ids[layer.path] == self.ids[other]:
                    continue
                both = pair(self.ids[layer.path], self.ids[other])
                first_parent, second_parent = self.ids.get(layer.parent or ""), self.ids.get(self.layers[other].parent or "")
                inside_linked = (first_parent is not None and second_parent is not None
                                 and pair(first_parent, second_parent) in linked)
                if both not in linked and not inside_linked:
                    self.picture.ties.append(Tie(*both, "same layer"))
                linked.add(both)
        if self.report.live is not None:
            for group in self.report.live.tie_groups:
                known = [owner for owner in map(self._owner, group) if owner is not None]
                for owner in known[1:]:
                    if owner != known[0] and pair(known[0], owner) not in linked:
                        linked.add(pair(known[0], owner))
                        self.picture.ties.append(Tie(*pair(known[0], owner), "tied variable"))

    def _owner(self, variable: str) -> str | None:
        """The id of the layer a ``path/name`` variable belongs to (the longest layer path before it)."""
        parts = variable.split("/")
        for end in range(len(parts) - 1, 0, -1):
            path = "/".join(parts[:end])
            if path in self.ids:
                return self.ids[path]
        return None


def _joined(outer: str, inner: str) -> str:
    return ", ".join(part for part in (inner, outer) if part)


def _arrow(source: str, target: str) -> str:
    return f"{source} → {target}" if source and target else source or target


def _collapse(picture: Picture) -> None:
    """Merge each run of plain nodes (one edge in from the node before, one edge out to the next, same cluster,
    same trainability, no finding, not shared) into its first node."""
    incoming: Counter[str] = Counter(edge.target for edge in picture.edges)
    outgoing: Counter[str] = Counter(edge.source for edge in picture.edges)
    plain = {node.id for node in picture.nodes.values()
             if node.kind is LayerKind.LAYER and node.calls == 1 and not node.shared and node.severity is None}
    follows: dict[str, str] = {}
    for edge in picture.edges:
        source, target = picture.nodes.get(edge.source), picture.nodes.get(edge.target)
        if (source is not None and target is not None and source.id in plain and target.id in plain
                and outgoing[source.id] == 1 and incoming[target.id] == 1 and source.cluster == target.cluster
                and source.frozen == target.frozen and source.id != target.id):
            follows[target.id] = source.id
    led = set(follows.values())
    heads = [node_id for node_id in led if node_id not in follows]
    merged: dict[str, str] = {}
    following = {before: after for after, before in follows.items()}
    for head in heads:
        chain, current = [head], head
        while current in following:
            current = following[current]
            chain.append(current)
        if len(chain) < 2:
            continue
        nodes = [picture.nodes[node_id] for node_id in chain]
        classes = Counter(node.detail for node in nodes)
        box = nodes[0]
        box.name = f"{nodes[0].name} … {nodes[-1].name}"
        box.detail = f"{len(nodes)} layers: " + ", ".join(f"{name} x{count}" for name, count in classes.most_common(3))
        if len(classes) > 3:
            box.detail += ", ..."
        box.members = [path for node in nodes for path in node.members]
        for node in nodes[1:]:
            merged[node.id] = head
            del picture.nodes[node.id]
    if not merged:
        return
    picture.ids.update({path: merged.get(box, box) for path, box in picture.ids.items()})
    edges = []
    for edge in picture.edges:
        start, end = merged.get(edge.source, edge.source), merged.get(edge.target, edge.target)
        if start != end:
            edges.append(Edge(start, end, edge.label, edge.groups))
    picture.edges = edges
    picture.ties = [Tie(merged.get(tie.first, tie.first), merged.get(tie.second, tie.second), tie.label)
                    for tie in picture.ties]


def picture(report: ModelReport, prefix: str = "", expand: bool = False) -> Picture:
    """The drawing of ``report``'s layer graph, its ids starting with ``prefix``; chains collapsed unless
    ``expand``."""
    drawn = _Builder(report, prefix).build()
    if not expand:
        _collapse(drawn)
    return drawn


def pictures(reports: list[ModelReport], expand: bool = False) -> list[Picture]:
    """One picture per report, ids unique across them."""
    return [picture(report, f"m{number}", expand) for number, report in enumerate(reports)]
