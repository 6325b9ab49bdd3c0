"""Process-map figures of a directly-follows graph.

:func:`draw_map` lays the map out left to right (in the sales process
profile's stage order when it is given, else in the order the process reaches
each activity) and draws it with Graphviz when the ``dot`` program and the
``graphviz`` Python package are installed, otherwise with matplotlib, so a
notebook or report never fails for lack of Graphviz. Both backends draw the
same layout. Node and edge labels give frequencies (``measure='frequency'``)
or median waiting times (``measure='performance'``); edge width grows with
frequency and edge colour with the median wait (yellow fast, red slow). A
repeat of an activity (a self-loop) and the loops folded into it (follow-ups,
see :func:`workbench.map_levels.fold_loops`) are written on the activity as
``↻ n`` rather than drawn as edges, so a follow-up hub does not tangle the map.

The interactive explorer is :mod:`workbench.map_explorer`; a readable map and
the levels a report page switches with a slider are :mod:`workbench.map_levels`.
"""

from __future__ import annotations

import io
import math
import shutil
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .discovery import DFG, END, START, discover_dfg
from .errors import WorkbenchError

BACKENDS = ("auto", "graphviz", "matplotlib")
MEASURES = ("frequency", "performance")
_CMAP = "YlOrRd"
_TERMINAL_COLOUR = "#9e9e9e"


def graphviz_available() -> bool:
    """True when both the ``dot`` program and the ``graphviz`` package are installed."""
    if shutil.which("dot") is None:
        return False
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return True


def format_duration(seconds: float) -> str:
    """A waiting time in the largest sensible unit: '45 s', '12 min', '5.0 h', '3.2 d'."""
    if seconds is None or not np.isfinite(seconds):
        return ""
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            return f"{value:.0f} {unit}" if unit == "min" else f"{value:.1f} {unit}"
    return f"{seconds:.0f} s"


@dataclass
class ProcessMap:
    """A drawn process map.

    Attributes
    ----------
    dfg : DFG
        What was drawn.
    measure : {'frequency', 'performance'}
    backend : {'graphviz', 'matplotlib'}
    edges : frozenset of (source, target)
        The drawn edges, including those from :data:`START` and to :data:`END`.
    figure : graphviz.Digraph or matplotlib.figure.Figure
    """

    dfg: DFG
    measure: str
    backend: str
    edges: frozenset
    figure: Any = field(repr=False)

    def to_svg(self) -> str:
        """The map as SVG text, shrinking to the width of the page or output area it is shown in."""
        if self.backend == "graphviz":
            svg = self.figure.pipe(format="svg", neato_no_op=2, quiet=True).decode("utf-8")  # keep our layout
        else:
            buf = io.StringIO()
            with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, smaller
                self.figure.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
            svg = buf.getvalue()
        # A wide process (two dozen activities) is drawn wider than a notebook's output area.
        return svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)

    def to_png(self, dpi: int = 120) -> bytes:
        """The map as PNG bytes."""
        if self.backend == "graphviz":
            return self.figure.pipe(format="png", neato_no_op=2, quiet=True)
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the map to ``path``; the suffix (.svg or .png) picks the format."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".svg", ".png"):
            raise WorkbenchError("process maps are saved as .svg or .png.", file=str(path),
                                 hint="give a path ending in .svg or .png.")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".svg":
            path.write_text(self.to_svg(), encoding="utf-8")
        else:
            path.write_bytes(self.to_png())
        return path

    def _repr_svg_(self) -> str:
        return self.to_svg()


# --------------------------------------------------------------------------- styling
#: Widest drawing in pixels: the index page is 1,120 px wide and a report page's output area about as wide,
#: so a map this wide is shown at its own size, with its labels as large as drawn.
MAX_WIDTH_PX = 1050
_NODE_PT, _EDGE_PT = 9.0, 8.0  # 12 and 10.7 px: never smaller than 10 px unless a map is shrunk to fit
_PX_PER_IN = 96
_ROW = 0.8  # distance between two boxes of one layer, in layers: boxes are wider than tall


@dataclass(frozen=True)
class _Style:
    label: str
    width: float
    colour: str


def _edge_styles(g: nx.DiGraph, measure: str) -> dict[tuple[str, str], _Style]:
    """Label, width (by frequency) and colour (by median wait, log scale) of each edge but self-loops."""
    freq = {e: d["frequency"] for e, d in g.edges.items() if e[0] != e[1]}
    top = max(freq.values(), default=1)
    waits = {e: g.edges[e].get("wait_median_s", np.nan) for e in freq}
    known = [w for w in waits.values() if np.isfinite(w)]
    lo, hi = (math.log1p(min(known)), math.log1p(max(known))) if known else (0.0, 1.0)
    cmap = matplotlib.colormaps[_CMAP]
    styles = {}
    for e, f in freq.items():
        w = waits[e]
        terminal = START in e or END in e
        if terminal or not np.isfinite(w):
            colour = _TERMINAL_COLOUR
        else:
            x = 0.5 if hi <= lo else (math.log1p(w) - lo) / (hi - lo)
            colour = matplotlib.colors.to_hex(cmap(0.25 + 0.75 * x))
        # the start and end edges are drawn unlabelled: how many deals start or end at a stage is on
        # its box already, and their counts would crowd the ends of the map
        label = "" if terminal else f"{f:,}" if measure == "frequency" else format_duration(w)
        styles[e] = _Style(label, 1.0 + 5.0 * f / top, colour)
    return styles


def _node_label(node: str, g: nx.DiGraph) -> str:
    """Name (wrapped), visits and, when the activity repeats or has loops folded into it, ``↻ n``."""
    if node in (START, END):
        return node.split(" ", 1)[0]
    data = g.nodes[node]
    lines = [*textwrap.wrap(node, 11, break_long_words=False), f"{data.get('events', 0):,}"]
    repeats = (g.edges[node, node]["frequency"] if g.has_edge(node, node) else 0) + data.get("loops", 0)
    if repeats:
        lines.append(f"↻ {repeats:,}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- layout
def flow_order(g: nx.DiGraph) -> list[str]:
    """The nodes in the order in which the process reaches them.

    The order starts at START and repeatedly takes the node receiving the most
    frequency from the nodes already placed (a greedy feedback-arc-set heuristic
    that follows the main flow, so a follow-up hub does not drag every stage).
    """
    placed = [START] if START in g else []
    rest = set(g.nodes) - set(placed)
    gain = {n: 0 for n in rest}
    for v in g.successors(START) if placed else ():
        gain[v] += g.edges[START, v]["frequency"]
    while rest:
        pick = max(sorted(rest), key=lambda n: (n != END, gain[n]))
        placed.append(pick)
        rest.discard(pick)
        for v in g.successors(pick):
            if v in rest:
                gain[v] += g.edges[pick, v]["frequency"]
    return placed


def node_order(g: nx.DiGraph, order: Sequence[str] | None = None) -> list[str]:
    """:func:`flow_order`, with the activities named in ``order`` (a profile's stages and closings) put
    in that order among the places the flow gave them; other activities keep their place."""
    flow = flow_order(g)
    if not order:
        return flow
    rank = {a: i for i, a in enumerate(order)}
    known = iter(sorted((n for n in flow if n in rank), key=rank.get))
    return [next(known) if n in rank else n for n in flow]


def layered_layout(g: nx.DiGraph, order: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Left-to-right layers: x is the longest forward path from START, y spreads each layer.

    Edges pointing backwards in :func:`node_order` are ignored for layering, and
    the activities named in ``order`` never go left of one named before them (so
    every closing stands right of every stage). START and END sit half a layer
    from the first and last activities. Within a layer nodes keep the order, top
    to bottom, 0.8 of a layer apart.
    """
    nodes = node_order(g, order)
    rank = {n: i for i, n in enumerate(nodes)}
    named = set(order or ())
    layer: dict[str, int] = {}
    floor = 0
    for n in nodes:
        if n != END:
            layer[n] = max((layer[p] + 1 for p in g.predecessors(n) if rank[p] < rank[n]), default=0)
            if n in named:
                layer[n] = floor = max(layer[n], floor)
    if END in rank:
        layer[END] = max(layer.values(), default=-1) + 1
    pos: dict[str, tuple[float, float]] = {}
    for x in sorted(set(layer.values())):
        column = sorted((n for n in layer if layer[n] == x), key=rank.get)
        for i, n in enumerate(column):
            pos[n] = (0.0 if n == START else x - 0.5 * (START in layer) - 0.5 * (n == END),
                      _ROW * ((len(column) - 1) / 2.0 - i))
    return pos


def _inches_per_step(pos: dict[str, tuple[float, float]]) -> float:
    """Distance between two layers, in inches: as roomy as the labels need, within :data:`MAX_WIDTH_PX` when
    the boxes fit (the drawing is its layers' span plus 1.2 steps wide, and a saved figure's padding)."""
    xs = [p[0] for p in pos.values()] or [0.0]
    # below 1.15 in boxes touch: a map of many activities is drawn wider and shrinks to the page instead
    return max(1.15, min(1.45, (MAX_WIDTH_PX / _PX_PER_IN - 0.25) / (max(xs) - min(xs) + 1.2)))


def _bend(rank: dict[str, int], u: str, v: str, pos: dict) -> float:
    """Curvature of an edge: straight to the next layer, arcs over the top for skips and under the
    bottom for returns (matplotlib's arc3 sign), so no edge runs through a box."""
    (x0, _), (x1, _) = pos[u], pos[v]
    if rank[u] < rank[v] and 0 < x1 - x0 <= 1:
        return 0.0
    return -0.3


def _label_point(p0: tuple[float, float], p1: tuple[float, float], rad: float) -> tuple[float, float]:
    """The middle of matplotlib's arc3 quadratic curve from ``p0`` to ``p1``: half-way to its control point."""
    (x0, y0), (x1, y1) = p0, p1
    return (x0 + x1) / 2 + rad * (y1 - y0) / 2, (y0 + y1) / 2 - rad * (x1 - x0) / 2


# --------------------------------------------------------------------------- graphviz
def _draw_graphviz(g: nx.DiGraph, measure: str, title: str | None, order: Sequence[str] | None):
    import graphviz

    pos = layered_layout(g, order)
    step = _inches_per_step(pos) * 72  # neato -n2 reads positions in points
    dot = graphviz.Digraph(engine="neato",
                           graph_attr={"fontname": "Helvetica", "label": title or "", "labelloc": "t",
                                       "splines": "true", "outputorder": "edgesfirst", "fontsize": "12"},
                           node_attr={"fontname": "Helvetica", "fontsize": f"{_NODE_PT}", "margin": "0.06,0.03"},
                           edge_attr={"fontname": "Helvetica", "fontsize": f"{_EDGE_PT}"})
    ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    events = [d.get("events", 0) for n, d in g.nodes(data=True) if n not in (START, END)]
    most = max(events, default=1) or 1
    for n in g.nodes:
        x, y = pos[n]
        at = {"pos": f"{x * step:.1f},{y * step:.1f}!"}
        if n == START:
            dot.node(ids[n], "", shape="circle", style="filled", fillcolor="#66bb6a", width="0.3", **at)
        elif n == END:
            dot.node(ids[n], "", shape="doublecircle", style="filled", fillcolor="#ef5350", width="0.3", **at)
        else:
            shade = matplotlib.colors.to_hex(matplotlib.colormaps["Blues"](0.15 + 0.6 * g.nodes[n]["events"] / most))
            dot.node(ids[n], _node_label(n, g), shape="box", style="rounded,filled", fillcolor=shade, **at)
    for (u, v), s in _edge_styles(g, measure).items():
        dot.edge(ids[u], ids[v], label=s.label, penwidth=f"{s.width:.2f}", color=s.colour)
    return dot


# --------------------------------------------------------------------------- matplotlib
def _draw_matplotlib(g: nx.DiGraph, measure: str, title: str | None, order: Sequence[str] | None) -> Figure:
    pos = layered_layout(g, order)
    rank = {n: i for i, n in enumerate(node_order(g, order))}
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    styles = _edge_styles(g, measure)
    arcs = [-_bend(rank, u, v, pos) * abs(pos[v][0] - pos[u][0]) / 2 for u, v in styles]
    top = max(ys) + max([0.45, *[a for a in arcs if a > 0]]) + (0.3 if title else 0)
    bottom = min(ys) - 0.55
    step = _inches_per_step(pos)
    fig = Figure(figsize=(step * (max(xs) - min(xs) + 1.2), step * (top - bottom)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")  # arc3 bends in screen space: equal scales put each label on its own edge
    for (u, v), s in styles.items():
        rad = _bend(rank, u, v, pos)
        ax.annotate("", xy=pos[v], xytext=pos[u],
                    arrowprops={"arrowstyle": "-|>", "color": s.colour, "lw": s.width,
                                "shrinkA": 10 if u == START else 24, "shrinkB": 10 if v == END else 24,
                                "connectionstyle": f"arc3,rad={rad}", "alpha": 0.85})
        if s.label:
            ax.text(*_label_point(pos[u], pos[v], rad), s.label, fontsize=_EDGE_PT, ha="center",
                    va="center", color="#333333",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})
    for n, (x, y) in pos.items():
        if n in (START, END):
            colour = "#66bb6a" if n == START else "#ef5350"
            ax.text(x, y, _node_label(n, g), ha="center", va="center", fontsize=11, color="white",
                    bbox={"boxstyle": "circle,pad=0.3", "fc": colour, "ec": "none"})
        else:
            ax.text(x, y, _node_label(n, g), ha="center", va="center", fontsize=_NODE_PT,
                    bbox={"boxstyle": "round,pad=0.4", "fc": "#e3f2fd", "ec": "#1565c0"})
    if title:
        ax.text((min(xs) + max(xs)) / 2, top - 0.15, title, ha="center", va="top", fontsize=12)
    return fig


# --------------------------------------------------------------------------- public
def draw_map(
    dfg: DFG | pd.DataFrame | Any,
    *,
    measure: str = "frequency",
    backend: str = "auto",
    activities: float = 1.0,
    paths: float = 1.0,
    title: str | None = None,
    order: Sequence[str] | None = None,
    loops: Mapping[str, int] | None = None,
) -> ProcessMap:
    """Draw a process map.

    Parameters
    ----------
    dfg : DFG, or an event log (then :func:`workbench.discovery.discover_dfg`
        runs with ``activities`` and ``paths``)
    measure : {'frequency', 'performance'}
        Label edges with counts or with median waiting times.
    backend : {'auto', 'graphviz', 'matplotlib'}
        'auto' uses Graphviz when :func:`graphviz_available`, else matplotlib.
    order : activities in their left-to-right order, e.g. a profile's stages then its closings
    loops : number of loop events (follow-ups) folded into each activity, written on it as ``↻ n``

    Examples
    --------
    >>> from workbench.discovery import discover_dfg
    >>> from workbench.synth import generate_demo_data
    >>> process_map = draw_map(discover_dfg(generate_demo_data(seed=7, size="tiny").events), backend="matplotlib")
    >>> process_map.to_svg().startswith("<?xml")
    True
    """
    if measure not in MEASURES:
        raise WorkbenchError(f"unknown measure {measure!r}.", hint=f"use one of {list(MEASURES)}.")
    if backend not in BACKENDS:
        raise WorkbenchError(f"unknown map backend {backend!r}.", hint=f"use one of {list(BACKENDS)}.")
    if backend == "auto":
        backend = "graphviz" if graphviz_available() else "matplotlib"
    elif backend == "graphviz" and not graphviz_available():
        raise WorkbenchError("the Graphviz backend needs the 'dot' program and the graphviz package.",
                             hint="install Graphviz (apt-get install graphviz; pip install graphviz) "
                                  "or use backend='matplotlib'.")
    if not isinstance(dfg, DFG):
        dfg = discover_dfg(dfg, activities=activities, paths=paths)
    g = dfg.graph()
    for activity, n in (loops or {}).items():
        if activity in g:
            g.nodes[activity]["loops"] = int(n)
    figure = (_draw_graphviz if backend == "graphviz" else _draw_matplotlib)(g, measure, title, order)
    return ProcessMap(dfg=dfg, measure=measure, backend=backend, edges=frozenset(g.edges), figure=figure)
