"""Discovery against pm4py on the same log, and the map simplification's guarantees."""

import networkx as nx
import numpy as np
import pandas as pd
import pm4py
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from workbench import discovery as d
from workbench import engine, filters
from workbench.errors import WorkbenchError
from workbench.schema import to_pm4py

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def log_from(traces: dict[str, list[str]], hours: float = 1.0) -> pd.DataFrame:
    rows = [{"case_id": c, "activity": a, "timestamp": T0 + pd.Timedelta(hours=hours * i)}
            for c, acts in traces.items() for i, a in enumerate(acts)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def demo_log(demo_data):
    return demo_data(3, "tiny").events


def test_dfg_start_end_and_variants_equal_pm4py(demo_log):
    dfg = d.discover_dfg(demo_log)
    ours = dfg.to_pm4py()
    theirs = pm4py.discover_dfg(to_pm4py(demo_log))
    assert ours[0] == theirs[0]
    assert ours[1] == pm4py.get_start_activities(to_pm4py(demo_log))
    assert ours[2] == pm4py.get_end_activities(to_pm4py(demo_log))
    var = d.variants(demo_log)
    assert dict(zip(var["variant"], var["count"])) == dict(pm4py.get_variants(to_pm4py(demo_log)))
    assert var["share"].sum() == pytest.approx(1.0)
    perf = pm4py.discover_performance_dfg(to_pm4py(demo_log))[0]
    e = dfg.edges.set_index(["source", "target"])
    for pair, stats in perf.items():
        assert e.loc[pair, "wait_mean_s"] == pytest.approx(stats["mean"])
        assert e.loc[pair, "wait_median_s"] == pytest.approx(stats["median"])


@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_inductive_models_equal_pm4py_on_the_full_log(demo_log, noise):
    tree = d.discover_process_tree(demo_log, noise_threshold=noise)
    assert str(tree) == str(pm4py.discover_process_tree_inductive(to_pm4py(demo_log), noise_threshold=noise))
    net, im, fm = d.discover_petri_net(demo_log, noise_threshold=noise)
    labels = {t.label for t in net.transitions if t.label}
    assert labels == set(demo_log["activity"])
    bpmn = d.discover_bpmn(demo_log, noise_threshold=noise)
    tasks = {n.get_name() for n in bpmn.get_nodes() if n.__class__.__name__ == "Task"}
    assert tasks == set(demo_log["activity"])


def test_heuristics_net_equals_pm4py(demo_log):
    ours = d.discover_heuristics_net(demo_log, dependency_threshold=0.6)
    theirs = pm4py.discover_heuristics_net(to_pm4py(demo_log), dependency_threshold=0.6)
    assert ours.dependency_matrix == theirs.dependency_matrix
    arcs = lambda h: {(n, o.node_name) for n in h.nodes for o in h.nodes[n].output_connections}  # noqa: E731
    assert arcs(ours) == arcs(theirs)


def test_discovery_errors_are_workbench_errors(demo_log):
    with pytest.raises(WorkbenchError, match="noise_threshold"):
        d.discover_process_tree(demo_log, noise_threshold=1.5)
    with pytest.raises(WorkbenchError, match="no events"):
        d.discover_process_tree(demo_log.iloc[:0])
    with pytest.raises(WorkbenchError, match="activities"):
        d.discover_dfg(demo_log, activities=0)


def test_activity_slider_reconnects_through_removed_activities():
    # X is rare: removing it joins A directly to B, as Disco does
    log = log_from({"1": ["A", "X", "B"], "2": ["A", "B"], "3": ["A", "B"], "4": ["A", "B"]})
    dfg = d.discover_dfg(log, activities=0.8)  # A and B hold 8 of 9 events
    assert set(dfg.activities["activity"]) == {"A", "B"}
    assert dfg.to_pm4py()[0] == {("A", "B"): 4}
    assert dfg.to_pm4py()[1] == {"A": 4} and dfg.to_pm4py()[2] == {"B": 4}


def test_path_slider_keeps_frequent_paths_and_reconnects_the_rest():
    # main path A-B-C x9; rare A-D-C x1. Transitions incl. start/end: 9*4 + 4 = 40.
    log = log_from({**{f"m{i}": ["A", "B", "C"] for i in range(9)}, "r": ["A", "D", "C"]})
    full = d.discover_dfg(log)
    kept = d.discover_dfg(log, paths=0.5)
    pairs = set(map(tuple, kept.edges[["source", "target"]].to_numpy()))
    # 50 % is reached by start->A (10) and A->B, B->C (9 each); D needs A->D and D->C back to stay connected
    assert pairs == {("A", "B"), ("B", "C"), ("A", "D"), ("D", "C")}
    assert kept.to_pm4py()[1] == {"A": 10} and kept.to_pm4py()[2] == {"C": 10}
    assert len(full.edges) == 4


def _check_connected(dfg: d.DFG) -> None:
    g = dfg.graph()
    assert nx.has_path(g, d.START, d.END)
    for node in g.nodes:
        assert nx.has_path(g, d.START, node) and nx.has_path(g, node, d.END), node


traces = st.dictionaries(
    st.text("abcdefghij", min_size=1, max_size=3),
    st.lists(st.sampled_from(list("ABCDEFG")), min_size=1, max_size=8),
    min_size=1, max_size=25,
)


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.generate])  # shrinking runs the engine for minutes
@given(traces=traces, activities=st.floats(0.01, 1.0), paths=st.floats(0.01, 1.0))
def test_simplification_never_cuts_start_or_end(traces, activities, paths):
    log = log_from(traces)
    full = d.discover_dfg(log)
    dfg = d.discover_dfg(log, activities=activities, paths=paths)
    _check_connected(dfg)
    kept = set(dfg.activities["activity"])
    starts, ends = full.start_end.set_index("activity")["start"], full.start_end.set_index("activity")["end"]
    assert kept & set(starts.index[starts == starts.max()])  # a most frequent start activity
    assert kept & set(ends.index[ends == ends.max()])
    # kept edges keep their counts on the log without the removed activities
    projected = d.discover_dfg(log[log["activity"].isin(kept)]).to_pm4py()[0]
    for pair, n in dfg.to_pm4py()[0].items():
        assert projected[pair] == n
    if activities == 1.0 and paths == 1.0:
        assert dfg.to_pm4py() == full.to_pm4py()


def test_an_ibis_table_gives_the_same_simplified_map(demo_log):
    table, _ = engine.events(demo_log)
    a = d.discover_dfg(demo_log, activities=0.7, paths=0.6)
    b = d.discover_dfg(table, activities=0.7, paths=0.6)
    assert a.to_pm4py() == b.to_pm4py()
    assert len(a.activities) < demo_log["activity"].nunique()


def test_lifecycle_logs_and_logs_without_optional_columns():
    log = log_from({"1": ["A", "B", "C"], "2": ["A", "C"]})
    start = log.assign(lifecycle="start", timestamp=log["timestamp"] - pd.Timedelta(minutes=5))
    both = pd.concat([start, log.assign(lifecycle="complete")]).sort_values(["case_id", "timestamp"],
                                                                           ignore_index=True)
    # Discovery takes the events it is given: the complete view equals the log of completions,
    # the view of every event is pm4py's view of the raw log (A, A, B, B, C, C).
    complete = filters.filter_lifecycle(both)
    assert d.discover_dfg(complete).to_pm4py() == d.discover_dfg(log).to_pm4py()
    assert str(d.discover_process_tree(complete)) == str(d.discover_process_tree(log))
    dfg, _, _ = pm4py.discover_dfg(to_pm4py(both))
    assert d.discover_dfg(both).to_pm4py()[0] == dfg
    assert not {"rep", "amount"} & set(log.columns)
    assert np.isclose(d.discover_dfg(log).edges["wait_mean_s"], 3600).all()
