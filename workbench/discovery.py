"""Discover the actual sales process: directly-follows graph, variants, process models.

The aggregations that touch every event run in :mod:`workbench.engine`
(DuckDB, or Spark); pm4py then works on the small result: the DFG for the
heuristics miner, the variants (a compressed log, exactly what pm4py's inductive
miner uses internally) for the inductive miner. So the models equal pm4py's on
the full log, at the cost of the aggregation only.

Map simplification works like Disco's two sliders (:func:`discover_dfg`,
``activities`` and ``paths``): keep the most frequent activities covering a
share of the events, then the most frequent paths covering a share of the
transitions, without ever cutting a kept activity off the start or the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import networkx as nx
import pandas as pd

from . import engine
from .calendar import DAY_S
from .errors import WorkbenchError
from .schema import ACTIVITY

#: Names of the artificial start and end nodes of a map.
START, END = "▶ start", "■ end"


@dataclass(frozen=True)
class DFG:
    """A directly-follows graph as three small frames.

    Attributes
    ----------
    edges : DataFrame[source, target, frequency, wait_mean_s, wait_median_s, wait_p90_s, wait_min_s, wait_max_s]
    start_end : DataFrame[activity, start, end]
        Cases starting / ending with each activity.
    activities : DataFrame[activity, events, cases]
    """

    edges: pd.DataFrame
    start_end: pd.DataFrame
    activities: pd.DataFrame

    def to_pm4py(self, measure: str = "frequency") -> tuple[dict, dict, dict]:
        """pm4py's ``(dfg, start_activities, end_activities)`` (see :func:`workbench.engine.to_pm4py_dfg`)."""
        return engine.to_pm4py_dfg(self.edges, self.start_end, measure=measure)

    def graph(self) -> nx.DiGraph:
        """The map as a networkx graph with :data:`START` and :data:`END` nodes.

        Edges carry ``frequency`` (and waiting times for activity-to-activity edges);
        nodes carry ``events``.
        """
        g = nx.DiGraph()
        g.add_node(START, events=0)
        g.add_node(END, events=0)
        for a, n in zip(self.activities[ACTIVITY], self.activities["events"]):
            g.add_node(a, events=int(n))
        for r in self.edges.to_dict("records"):
            g.add_edge(r["source"], r["target"], **{k: v for k, v in r.items() if k not in ("source", "target")})
        for a, s, e in zip(self.start_end[ACTIVITY], self.start_end["start"], self.start_end["end"]):
            if s > 0:
                g.add_edge(START, a, frequency=int(s))
            if e > 0:
                g.add_edge(a, END, frequency=int(e))
        return g


def _events_input(log: Any) -> Any:
    """The events as given: the loader has already chosen the lifecycle view (complete events by
    default, every event with ``lifecycle='all'``), and discovery follows that choice."""
    return log


def _project(log: Any, keep: list[str], backend: str, con: Any) -> Any:
    """The log restricted to the events of ``keep`` (Disco's activity slider)."""
    if isinstance(log, pd.DataFrame):
        return log[log[ACTIVITY].isin(keep)].reset_index(drop=True)
    t, _ = engine.events(log, backend=backend, con=con)
    return t.filter(t[ACTIVITY].isin(keep))


def _check_share(name: str, value: float) -> float:
    value = float(value)
    if not 0 < value <= 1:
        raise WorkbenchError(f"{name}={value} is not in (0, 1].", hint=f"give {name} as a share, e.g. 0.8.")
    return value


def keep_activities(activities: pd.DataFrame, start_end: pd.DataFrame, share: float) -> list[str]:
    """The most frequent activities covering ``share`` of the events, plus the
    most frequent start and end activities (a map always has a start and an end)."""
    share = _check_share("activities", share)
    acts = activities.sort_values(["events", ACTIVITY], ascending=[False, True], kind="stable")
    total = acts["events"].sum()
    before = acts["events"].cumsum().shift(fill_value=0)
    kept = list(acts.loc[before < share * total - 1e-9, ACTIVITY])
    for col in ("start", "end"):
        top = start_end.sort_values([col, ACTIVITY], ascending=[False, True], kind="stable")
        if len(top) and top[col].iloc[0] > 0 and top[ACTIVITY].iloc[0] not in kept:
            kept.append(top[ACTIVITY].iloc[0])
    return kept


def _widest_path(edges: list[tuple[str, str, int]], src: str, dst: str) -> list[tuple[str, str]]:
    """Edges of a path from ``src`` to ``dst`` whose least frequent edge is as frequent as possible."""
    g = nx.DiGraph()
    for u, v, _ in edges:  # edges come most frequent first
        g.add_edge(u, v)
        if src in g and dst in g and nx.has_path(g, src, dst):
            path = nx.shortest_path(g, src, dst)
            return list(zip(path[:-1], path[1:]))
    return []


def keep_paths(dfg: DFG, share: float) -> DFG:
    """Keep the most frequent paths covering ``share`` of the transitions (start
    and end transitions included), then add back, for any activity left
    unreachable from the start or unable to reach the end, the widest path
    that reconnects it. Every activity of ``dfg`` stays on a start-to-end route."""
    share = _check_share("paths", share)
    g = dfg.graph()
    edges = sorted(((u, v, d["frequency"]) for u, v, d in g.edges(data=True)), key=lambda e: (-e[2], e[0], e[1]))
    total = sum(f for *_, f in edges)
    chosen: set[tuple[str, str]] = set()
    acc = 0
    for u, v, f in edges:
        if acc >= share * total - 1e-9:
            break
        chosen.add((u, v))
        acc += f
    kept = nx.DiGraph(list(chosen))
    kept.add_nodes_from(g.nodes)
    for node in [n for n in g.nodes if n not in (START, END)]:
        if not nx.has_path(kept, START, node):
            chosen.update(_widest_path(edges, START, node))
            kept.add_edges_from(chosen)
        if not nx.has_path(kept, node, END):
            chosen.update(_widest_path(edges, node, END))
            kept.add_edges_from(chosen)
    pairs = pd.MultiIndex.from_frame(dfg.edges[["source", "target"]])
    out_edges = dfg.edges[pairs.isin(list(chosen))].reset_index(drop=True)
    se = dfg.start_end.copy()
    se["start"] = [n if (START, a) in chosen else 0 for a, n in zip(se[ACTIVITY], se["start"])]
    se["end"] = [n if (a, END) in chosen else 0 for a, n in zip(se[ACTIVITY], se["end"])]
    se = se[(se["start"] > 0) | (se["end"] > 0)].reset_index(drop=True)
    return DFG(out_edges, se, dfg.activities)


def discover_dfg(
    log: Any,
    *,
    activities: float = 1.0,
    paths: float = 1.0,
    backend: str = "duckdb",
    con: Any = None,
) -> DFG:
    """Directly-follows graph with frequencies, waiting times, start and end activities.

    Parameters
    ----------
    log : DataFrame, Parquet/CSV path or Ibis table
    activities : float in (0, 1]
        Keep the most frequent activities covering this share of the events (and
        the most frequent start and end activity); the others are removed from the
        log before the graph is built, so kept activities connect through them.
    paths : float in (0, 1]
        Keep the most frequent transitions covering this share (see :func:`keep_paths`).

    Returns
    -------
    DFG
        ``(1.0, 1.0)`` gives the full graph, equal to pm4py's ``discover_dfg``,
        ``get_start_activities`` and ``get_end_activities``.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> log = generate_demo_data(seed=7, size="tiny").events
    >>> dfg = discover_dfg(log, paths=0.9)
    >>> dfg.edges.sort_values("frequency", ascending=False)[["source", "target"]].iloc[0].tolist()
    ['Follow-up', 'Follow-up']
    """
    _check_share("activities", activities)
    _check_share("paths", paths)
    log = _events_input(log)
    kw = {"backend": backend, "con": con}
    if activities < 1:
        acts, start_end = engine.activity_counts(log, **kw), engine.start_end_activities(log, **kw)
        log = _project(log, keep_activities(acts, start_end, activities), backend, con)
    dfg = discover(log, **kw).dfg
    return keep_paths(dfg, paths) if paths < 1 else dfg


@dataclass(frozen=True)
class DiscoveryResult:
    """What discovery needs from every event of a log (:func:`discover`).

    Attributes
    ----------
    dfg : DFG
        The full directly-follows graph with waiting times (:func:`discover_dfg`).
    variants : DataFrame
        As :func:`variants`.
    case_durations : DataFrame[case_id, start, end, duration_days]
    """

    dfg: DFG
    variants: pd.DataFrame
    case_durations: pd.DataFrame


def discover(log: Any, *, backend: str = "duckdb", con: Any = None) -> DiscoveryResult:
    """The DFG, the variants and the case durations of ``log``, from one sort of its events
    (:func:`workbench.engine.discovery_bundle`).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b"], "activity": ["Ask", "Buy", "Ask"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"], utc=True)})
    >>> found = discover(log)
    >>> found.dfg.edges[["source", "target", "frequency"]].to_dict("records")
    [{'source': 'Ask', 'target': 'Buy', 'frequency': 1}]
    >>> found.case_durations["duration_days"].tolist()
    [2.0, 0.0]
    """
    found = engine.discovery_bundle(_events_input(log), backend=backend, con=con)
    durations = found.case_durations
    durations["duration_days"] = durations.pop("duration_s") / DAY_S
    return DiscoveryResult(DFG(found.edges, found.start_end, found.activities), _in_days(found.variants), durations)


def variants(log: Any, *, backend: str = "duckdb", con: Any = None) -> pd.DataFrame:
    """The variants, most frequent first.

    Returns
    -------
    DataFrame[variant (tuple of activities), count, share, mean_duration_days]

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b"], "activity": ["Ask", "Buy", "Ask"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"], utc=True)})
    >>> variants(log)[["variant", "count", "mean_duration_days"]].to_dict("records")
    [{'variant': ('Ask',), 'count': 1, 'mean_duration_days': 0.0}, {'variant': ('Ask', 'Buy'), 'count': 1, 'mean_duration_days': 2.0}]
    """
    return _in_days(engine.variants(_events_input(log), backend=backend, con=con))


def _in_days(variants: pd.DataFrame) -> pd.DataFrame:
    variants["mean_duration_days"] = variants.pop("mean_duration_s") / DAY_S
    return variants


# --------------------------------------------------------------------------- process models
def _uvcl(log: Any, backend: str, con: Any) -> Counter:
    var = variants(log, backend=backend, con=con)
    if var.empty:
        raise WorkbenchError("the event log has no events to discover a process from.",
                             hint="check the filters applied before discovery.")
    return Counter({tuple(v): int(n) for v, n in zip(var["variant"], var["count"])})


def discover_process_tree(
    log: Any, *, noise_threshold: float = 0.2, backend: str = "duckdb", con: Any = None
):
    """Inductive miner process tree (IMf with ``noise_threshold`` > 0, else IM), from the variants."""
    from pm4py.algo.discovery.inductive.dtypes.im_ds import IMDataStructureUVCL
    from pm4py.algo.discovery.inductive.variants.im import IMUVCL
    from pm4py.algo.discovery.inductive.variants.imf import IMFUVCL
    from pm4py.objects.process_tree.utils.generic import fold, tree_sort

    if not 0 <= noise_threshold < 1:
        raise WorkbenchError(f"noise_threshold={noise_threshold} is not in [0, 1).", hint="e.g. 0.2.")
    # pm4py's inductive_miner.apply, minus its DataFrame-to-variants step, which the engine did.
    params = {"noise_threshold": noise_threshold, "multiprocessing": False, "disable_fallthroughs": False}
    miner = IMFUVCL(params) if noise_threshold > 0 else IMUVCL(params)
    tree = fold(miner.apply(IMDataStructureUVCL(_uvcl(log, backend, con)), params))
    tree_sort(tree)
    return tree


def discover_petri_net(log: Any, *, noise_threshold: float = 0.2, backend: str = "duckdb", con: Any = None):
    """Inductive-miner Petri net ``(net, initial_marking, final_marking)``.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> net, initial, final = discover_petri_net(generate_demo_data(seed=7, size="tiny").events)
    >>> len(initial), len(final)
    (1, 1)
    """
    import pm4py

    return pm4py.convert_to_petri_net(
        discover_process_tree(log, noise_threshold=noise_threshold, backend=backend, con=con))


def discover_bpmn(log: Any, *, noise_threshold: float = 0.2, backend: str = "duckdb", con: Any = None):
    """Inductive-miner BPMN model."""
    import pm4py

    return pm4py.convert_to_bpmn(
        discover_process_tree(log, noise_threshold=noise_threshold, backend=backend, con=con))


def _window_counts(var: pd.DataFrame) -> tuple[dict, dict]:
    """Directly-follows at distance 2 and the frequent triples, from the variants."""
    window2: Counter = Counter()
    triples: Counter = Counter()
    for v, n in zip(var["variant"], var["count"]):
        for i in range(len(v) - 2):
            window2[(v[i], v[i + 2])] += int(n)
            triples[(v[i], v[i + 1], v[i + 2])] += int(n)
    return dict(window2), dict(triples)


def discover_heuristics_net(
    log: Any,
    *,
    dependency_threshold: float = 0.5,
    and_threshold: float = 0.65,
    loop_two_threshold: float = 0.5,
    min_act_count: int = 1,
    min_dfg_occurrences: int = 1,
    backend: str = "duckdb",
    con: Any = None,
):
    """Heuristics net (pm4py) from the engine's DFG and the variants' length-two windows."""
    from pm4py.algo.discovery.heuristics.variants import classic as heuristics

    log = _events_input(log)
    dfg = discover_dfg(log, backend=backend, con=con)
    freq, starts, ends = dfg.to_pm4py()
    window2, triples = _window_counts(variants(log, backend=backend, con=con))
    occurrences = {a: int(n) for a, n in zip(dfg.activities[ACTIVITY], dfg.activities["events"])}
    P = heuristics.Parameters
    params = {P.DEPENDENCY_THRESH: dependency_threshold, P.AND_MEASURE_THRESH: and_threshold,
              P.LOOP_LENGTH_TWO_THRESH: loop_two_threshold, P.MIN_ACT_COUNT: min_act_count,
              P.MIN_DFG_OCCURRENCES: min_dfg_occurrences}
    return heuristics.apply_heu_dfg(freq, activities=list(occurrences), activities_occurrences=occurrences,
                                    start_activities=starts, end_activities=ends, dfg_window_2=window2,
                                    freq_triples=triples, parameters=params)
