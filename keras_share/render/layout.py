"""A layered (Sugiyama-style) layout of a ``Picture`` in pure Python, for the SVG of ``--format html``.

Each nested model is laid out on its own first and then placed as one block in its parent, so a cluster never
interleaves with its neighbours. Within a block: cycles are broken (a shared layer drawn once makes them) by
reversing the edges a depth-first search finds going back, items get the rank of their longest path from a
source, a few barycenter sweeps order each rank to cut crossings, and a rank wider than ``ROW_ITEMS`` wraps onto
several rows so a model of thousands of layers stays a page, not a ribbon.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from keras_share.render.picture import Picture, cluster_lines, node_lines

CHAR_WIDTH = 7
LINE_HEIGHT = 15
NODE_PADDING = 8
MAX_LABEL_CHARS = 36
"""Characters of a line a box shows (the whole name is in its tooltip)."""
GAP_X = 24
GAP_Y = 60
CLUSTER_PADDING = 14
ROW_ITEMS = 24
"""Items one row of a rank holds before it wraps."""
SWEEPS = 4


@dataclass
class Box:
    """A placed node or cluster: its top-left corner and size, in pixels."""

    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> float:
        """The x of its middle."""
        return self.x + self.width / 2


@dataclass
class Layout:
    """Where every node and cluster of a picture goes."""

    boxes: dict[str, Box] = field(default_factory=dict)
    width: float = 0
    height: float = 0


def shown(line: str) -> str:
    """``line`` cut to ``MAX_LABEL_CHARS`` (with an ellipsis)."""
    return line if len(line) <= MAX_LABEL_CHARS else line[:MAX_LABEL_CHARS - 1] + "…"


def _node_size(lines: list[str]) -> tuple[float, float]:
    widest = max((len(shown(line)) for line in lines), default=1)
    return widest * CHAR_WIDTH + 2 * NODE_PADDING, len(lines) * LINE_HEIGHT + NODE_PADDING


def _ranks(items: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """The rank of each item: its longest path from a source once the edges closing cycles are reversed."""
    successors: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        successors[source].append(target)
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    order: list[str] = []
    back: set[tuple[str, str]] = set()
    for start in items:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(successors[start]))]
        while stack:
            item, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[item] = 2
                order.append(item)
                stack.pop()
            elif state.get(child) == 1:
                back.add((item, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(successors[child])))
    rank = dict.fromkeys(items, 0)
    forward: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        if (source, target) in back:
            forward[target].append(source)
        else:
            forward[source].append(target)
    for item in reversed(order):  # a topological order of the forward edges
        for target in forward[item]:
            rank[target] = max(rank[target], rank[item] + 1)
    return rank


def _ordered(rows: list[list[str]], edges: list[tuple[str, str]]) -> list[list[str]]:
    """``rows`` with each reordered by the mean position of its neighbours, sweeping down and up."""
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        down[source].append(target)
        up[target].append(source)
    position = {item: index / max(len(row), 1) for row in rows for index, item in enumerate(row)}
    for sweep in range(SWEEPS):
        neighbours, sequence = (up, rows[1:]) if sweep % 2 == 0 else (down, rows[-2::-1])
        for row in sequence:
            def weight(item: str, row: list[str] = row, neighbours: dict[str, list[str]] = neighbours) -> float:
                near = [position[other] for other in neighbours[item] if other in position]
                return sum(near) / len(near) if near else position[item]
            row.sort(key=weight)
            position.update((item, index / max(len(row), 1)) for index, item in enumerate(row))
    return rows


class _Layouter:
    def __init__(self, drawn: Picture) -> None:
        self.drawn = drawn
        self.layout = Layout()
        self.sizes: dict[str, tuple[float, float]] = {}
        self.relative: dict[str, tuple[float, float]] = {}
        """Each item's corner relative to its block's corner."""
        self.container: dict[str, str | None] = {node.id: node.cluster for node in drawn.nodes.values()}
        self.container.update({cluster.id: cluster.parent for cluster in drawn.clusters.values()})
        self.edges = self._edges_by_block()

    def _chain(self, element: str) -> list[str | None]:
        """``element`` and the clusters around it, innermost first, ending with None (the top)."""
        chain: list[str | None] = [element]
        current: str | None = element
        while current is not None and len(chain) <= len(self.container) + 1:
            current = self.container.get(current)
            chain.append(current)
        return chain

    def _edges_by_block(self) -> dict[str | None, list[tuple[str, str]]]:
        """Each edge once, in the one block that orders its ends: the innermost cluster holding both, between
        the items of that cluster that hold each end."""
        by_block: dict[str | None, list[tuple[str, str]]] = defaultdict(list)
        for edge in self.drawn.edges:
            source, target = self._chain(edge.source), self._chain(edge.target)
            around_target = set(target)
            common = next((index for index, block in enumerate(source) if block in around_target), None)
            if common is None or common == 0:
                continue
            block = source[common]
            source_item, target_item = source[common - 1], target[target.index(block) - 1]
            if source_item is not None and target_item is not None and source_item != target_item:
                by_block[block].append((source_item, target_item))
        return by_block

    def block(self, cluster: str | None) -> tuple[float, float]:
        """Lay out the items of ``cluster`` (None: the top); its size."""
        items = [node.id for node in self.drawn.members_of(cluster)]
        for inner in self.drawn.clusters_in(cluster):
            self.sizes[inner.id] = self.block(inner.id)
            items.append(inner.id)
        for node in self.drawn.members_of(cluster):
            self.sizes[node.id] = _node_size(node_lines(node))
        edges = self.edges.get(cluster, [])
        rank = _ranks(items, edges)
        by_rank: dict[int, list[str]] = defaultdict(list)
        for item in items:
            by_rank[rank[item]].append(item)
        rows = _ordered([by_rank[number] for number in sorted(by_rank)], edges)
        wrapped = [row[start:start + ROW_ITEMS] for row in rows for start in range(0, len(row), ROW_ITEMS)]
        widths = [sum(self.sizes[item][0] for item in row) + GAP_X * (len(row) - 1) for row in wrapped]
        inner_width = max(widths, default=0)
        title, padding = 0.0, 0
        if cluster is not None:
            title_width, title = _node_size(cluster_lines(self.drawn.clusters[cluster]))
            inner_width, padding = max(inner_width, title_width), CLUSTER_PADDING
        y = padding + title
        for row, width in zip(wrapped, widths):
            x = padding + (inner_width - width) / 2
            height = max(self.sizes[item][1] for item in row)
            for item in row:
                self.relative[item] = (x, y + (height - self.sizes[item][1]) / 2)
                x += self.sizes[item][0] + GAP_X
            y += height + GAP_Y
        height = y - GAP_Y + padding if wrapped else padding * 2 + title
        return inner_width + 2 * padding, height

    def place(self, cluster: str | None, x: float, y: float) -> None:
        """Turn the relative corners of ``cluster``'s items into absolute boxes."""
        items = [node.id for node in self.drawn.members_of(cluster)] + \
                [inner.id for inner in self.drawn.clusters_in(cluster)]
        for item in items:
            dx, dy = self.relative[item]
            width, height = self.sizes[item]
            self.layout.boxes[item] = Box(x + dx, y + dy, width, height)
            if item in self.drawn.clusters:
                self.place(item, x + dx, y + dy)


def layout(drawn: Picture) -> Layout:
    """Where each node and cluster of ``drawn`` goes."""
    layouter = _Layouter(drawn)
    width, height = layouter.block(None)
    layouter.place(None, 0, 0)
    layouter.layout.width, layouter.layout.height = width, height
    return layouter.layout
