"""Process-map figures of a directly-follows graph, and an interactive map explorer.

:func:`draw_map` draws with Graphviz when the ``dot`` program and the
``graphviz`` Python package are installed, and otherwise with a pure-Python
layered left-to-right layout (networkx + matplotlib), so a notebook or report
never fails for lack of Graphviz. Either way: node and edge labels give
frequencies (``measure='frequency'``) or median waiting times
(``measure='performance'``), edge width grows with frequency and edge colour
with the median wait (yellow fast, red slow).

:func:`explore_map` returns an ipywidgets box whose activity / path sliders
and filters (outcome, team, region, rep, quarter range) redraw the map.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import engine
from .calendar import quarter_bounds, quarter_of
from .discovery import DFG, END, START, discover_dfg
from .errors import WorkbenchError
from .filters import filter_time_window
from .profile import SalesProcessProfile, get_profile
from .schema import CASE, ORG, TIMESTAMP

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
            svg = self.figure.pipe(format="svg").decode("utf-8")
        else:
            buf = io.StringIO()
            with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text: searchable, smaller
                self.figure.savefig(buf, format="svg", bbox_inches="tight")
            svg = buf.getvalue()
        # A wide process (two dozen activities) is drawn wider than a notebook's output area.
        return svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)

    def to_png(self, dpi: int = 120) -> bytes:
        """The map as PNG bytes."""
        if self.backend == "graphviz":
            return self.figure.pipe(format="png")
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
@dataclass(frozen=True)
class _Style:
    label: str
    width: float
    colour: str


def _edge_styles(g: nx.DiGraph, measure: str) -> dict[tuple[str, str], _Style]:
    """Label, width (by frequency) and colour (by median wait, log scale) of each edge."""
    freq = {e: d["frequency"] for e, d in g.edges.items()}
    top = max(freq.values(), default=1)
    waits = {e: d.get("wait_median_s", np.nan) for e, d in g.edges.items()}
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
        label = str(f) if measure == "frequency" or terminal else format_duration(w)
        styles[e] = _Style(label, 1.0 + 5.0 * f / top, colour)
    return styles


def _node_label(node: str, g: nx.DiGraph) -> str:
    if node in (START, END):
        return node.split(" ", 1)[0]
    return f"{node}\n{g.nodes[node].get('events', 0)}"


# --------------------------------------------------------------------------- graphviz
def _draw_graphviz(g: nx.DiGraph, measure: str, title: str | None):
    import graphviz

    dot = graphviz.Digraph(graph_attr={"rankdir": "LR", "fontname": "Helvetica", "label": title or "",
                                       "labelloc": "t"},
                           node_attr={"fontname": "Helvetica", "fontsize": "11"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9"})
    ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    events = [d.get("events", 0) for n, d in g.nodes(data=True) if n not in (START, END)]
    most = max(events, default=1) or 1
    for n in g.nodes:
        if n == START:
            dot.node(ids[n], "", shape="circle", style="filled", fillcolor="#66bb6a", width="0.3")
        elif n == END:
            dot.node(ids[n], "", shape="doublecircle", style="filled", fillcolor="#ef5350", width="0.3")
        else:
            shade = matplotlib.colors.to_hex(matplotlib.colormaps["Blues"](0.15 + 0.6 * g.nodes[n]["events"] / most))
            dot.node(ids[n], _node_label(n, g), shape="box", style="rounded,filled", fillcolor=shade)
    for (u, v), s in _edge_styles(g, measure).items():
        dot.edge(ids[u], ids[v], label=s.label, penwidth=f"{s.width:.2f}", color=s.colour)
    return dot


# --------------------------------------------------------------------------- matplotlib
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


def layered_layout(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Left-to-right layers: x is the longest forward path from START, y spreads each layer.

    Edges pointing backwards in :func:`flow_order` are ignored for layering; END
    gets the last layer to itself. Within a layer nodes keep the flow order, top
    to bottom.
    """
    order = flow_order(g)
    rank = {n: i for i, n in enumerate(order)}
    layer: dict[str, int] = {}
    for n in order:
        if n != END:
            layer[n] = max((layer[p] + 1 for p in g.predecessors(n) if rank[p] < rank[n]), default=0)
    if END in rank:
        layer[END] = max(layer.values(), default=-1) + 1
    pos: dict[str, tuple[float, float]] = {}
    for x in sorted(set(layer.values())):
        nodes = sorted((n for n in layer if layer[n] == x), key=rank.get)
        for i, n in enumerate(nodes):
            pos[n] = (float(x), (len(nodes) - 1) / 2.0 - i)
    return pos


def _draw_matplotlib(g: nx.DiGraph, measure: str, title: str | None) -> Figure:
    pos = layered_layout(g)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    width = max(6.0, 2.3 * (max(xs) - min(xs) + 1))
    height = max(3.0, 1.3 * (max(ys) - min(ys) + 1))
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.set_axis_off()
    rank = {n: i for i, n in enumerate(flow_order(g))}
    for (u, v), s in _edge_styles(g, measure).items():
        (x0, y0), (x1, y1) = pos[u], pos[v]
        if u == v:
            ax.annotate(f"↻ {s.label}", (x0, y0 + 0.28), ha="center", fontsize=7, color=s.colour)
            continue
        rad = 0.35 if rank[u] > rank[v] or x0 == x1 else 0.08
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": s.colour, "lw": s.width, "shrinkA": 22,
                                "shrinkB": 22, "connectionstyle": f"arc3,rad={rad}", "alpha": 0.85})
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        ax.text(mx - rad * (y1 - y0) / 2, my + rad * (x1 - x0) / 2, s.label, fontsize=7, ha="center",
                va="center", color="#333333", bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                                                    "alpha": 0.7})
    for n, (x, y) in pos.items():
        if n in (START, END):
            colour = "#66bb6a" if n == START else "#ef5350"
            ax.text(x, y, _node_label(n, g), ha="center", va="center", fontsize=11, color="white",
                    bbox={"boxstyle": "circle,pad=0.3", "fc": colour, "ec": "none"})
        else:
            ax.text(x, y, _node_label(n, g), ha="center", va="center", fontsize=8,
                    bbox={"boxstyle": "round,pad=0.4", "fc": "#e3f2fd", "ec": "#1565c0"})
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    if title:
        ax.set_title(title)
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
    figure = (_draw_graphviz if backend == "graphviz" else _draw_matplotlib)(g, measure, title)
    return ProcessMap(dfg=dfg, measure=measure, backend=backend, edges=frozenset(g.edges), figure=figure)


_ALL = "(all)"


def explore_map(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    measure: str = "frequency",
    backend: str = "auto",
    activities: float = 1.0,
    paths: float = 0.8,
):
    """An ipywidgets box to explore the process map of ``log`` in a notebook.

    Sliders set the activity and path coverage, dropdowns filter the deals by
    outcome, team, region and rep (when the log has them) and a range slider by
    quarter (deals with an event in the range). Any change redraws the map.

    Returns
    -------
    MapExplorer (an ``ipywidgets.VBox``); ``.current`` is the drawn :class:`ProcessMap`.

    Examples
    --------
    >>> explore_map(log, profile=data.profile)  # doctest: +SKIP
    """
    return _explorer_class()(log, profile=profile, measure=measure, backend=backend, activities=activities,
                             paths=paths)


@functools.cache
def _explorer_class() -> type:
    import ipywidgets as w

    class _MapExplorer(w.VBox):
        """The widget of :func:`explore_map`."""

        def __init__(self, log: pd.DataFrame, *, profile, measure, backend, activities, paths) -> None:
            self._log = log
            self._backend = backend
            self._cases = engine.case_table(log, get_profile(profile, log))
            self.activities_slider = w.FloatSlider(value=activities, min=0.05, max=1.0, step=0.05,
                                                   description="activities", continuous_update=False)
            self.paths_slider = w.FloatSlider(value=paths, min=0.05, max=1.0, step=0.05,
                                              description="paths", continuous_update=False)
            self.measure_toggle = w.ToggleButtons(options=list(MEASURES), value=measure)
            self.filters: dict[str, w.Dropdown] = {
                "outcome": w.Dropdown(options=[_ALL, "won", "lost", "open"], value=_ALL, description="outcome")}
            for col in ORG:
                if col in self._cases.columns and self._cases[col].notna().any():
                    values = sorted(self._cases[col].dropna().astype(str).unique())
                    self.filters[col] = w.Dropdown(options=[_ALL, *values], value=_ALL, description=col)
            quarters = sorted(set(quarter_of(log[TIMESTAMP]))) if len(log) else []
            self.quarters = (w.SelectionRangeSlider(options=quarters, index=(0, len(quarters) - 1),
                                                    description="quarters", continuous_update=False)
                             if len(quarters) > 1 else None)
            self.view = w.HTML()
            controls = [self.activities_slider, self.paths_slider, self.measure_toggle,
                        w.HBox(list(self.filters.values()))]
            if self.quarters is not None:
                controls.append(self.quarters)
            super().__init__(children=[*controls, self.view])
            self.current: ProcessMap | None = None
            for widget in [self.activities_slider, self.paths_slider, self.measure_toggle,
                           *self.filters.values(), *([self.quarters] if self.quarters else [])]:
                widget.observe(self._redraw, names="value")
            self._redraw()

        def filtered_log(self) -> pd.DataFrame:
            """The log under the current filters."""
            cases = self._cases
            keep = np.ones(len(cases), dtype=bool)
            for col, dd in self.filters.items():
                if dd.value != _ALL:
                    keep &= (cases[col].astype(str) == dd.value).to_numpy()
            log = self._log[self._log[CASE].isin(set(cases.loc[keep, CASE]))]
            if self.quarters is not None:
                lo, hi = self.quarters.value
                log = filter_time_window(log, start=quarter_bounds(lo)[0], end=quarter_bounds(hi)[1])
            return log.reset_index(drop=True)

        def _redraw(self, change: Any = None) -> None:
            log = self.filtered_log()
            if log.empty:
                self.current = None
                self.view.value = "<p>No deals match these filters.</p>"
                return
            old = self.current
            self.current = draw_map(log, measure=self.measure_toggle.value, backend=self._backend,
                                    activities=self.activities_slider.value, paths=self.paths_slider.value)
            self.view.value = self.current.to_svg()
            if old is not None and old.backend == "matplotlib":
                old.figure.clear()

    return _MapExplorer


def __getattr__(name: str):
    # ipywidgets is imported only when the explorer is used.
    if name == "MapExplorer":
        return _explorer_class()
    raise AttributeError(name)
