"""The columnar engine against pm4py on the same logs, and against hand-computed values."""

from __future__ import annotations

import math

import ibis

import numpy as np
import pandas as pd
import pm4py
import pytest

from workbench import engine
from workbench.engine import api as engine_api, backends as engine_backends
from workbench.engine import expressions as engine_expressions, runner as engine_runner, sources as engine_sources
from workbench.engine import inmemory as engine_inmemory
from workbench.errors import WorkbenchError
from workbench.profile import PPVVC
from workbench.schema import to_pm4py


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def tie_log() -> pd.DataFrame:
    """Ties inside cases (B: three events at one instant), single-event cases (C, D)."""
    rows = [
        ("A", "Lead Created", "2024-01-01 09:00"),
        ("A", "First Contact", "2024-01-02 09:00"),
        ("A", "Follow-up", "2024-01-02 09:00"),
        ("A", "Qualification", "2024-01-04 21:00"),
        ("A", "Closed Won", "2024-01-10 09:00"),
        ("B", "Lead Created", "2024-02-01 00:00"),
        ("B", "Qualification", "2024-02-01 00:00"),
        ("B", "First Contact", "2024-02-01 00:00"),
        ("B", "Closed Lost", "2024-02-03 00:00:00.5"),
        ("C", "Lead Created", "2024-03-01 00:00"),
        ("D", "First Contact", "2024-03-05 00:00"),
        ("E", "Lead Created", "2024-01-01 00:00"),
        ("E", "First Contact", "2024-01-01 00:00"),
        ("E", "Closed Won", "2024-01-03 00:00"),
    ]
    return pd.DataFrame(
        {
            "case_id": [r[0] for r in rows],
            "activity": [r[1] for r in rows],
            "timestamp": [ts(r[2]) for r in rows],
        }
    )


def random_log(seed: int, n_cases: int = 80) -> pd.DataFrame:
    """Random cases of 1-12 events on a coarse time grid, so that ties are frequent."""
    rng = np.random.default_rng(seed)
    acts = np.array(["a", "b", "c", "d", "e", "f"])
    frames = []
    for i in range(n_cases):
        n = int(rng.integers(1, 13))
        hours = np.sort(rng.integers(0, 6, size=n)).cumsum() * 3600 + rng.integers(0, 2, size=n)
        frames.append(
            pd.DataFrame(
                {
                    "case_id": f"c{i:03d}",
                    "activity": rng.choice(acts, size=n),
                    "timestamp": ts("2024-01-01") + pd.to_timedelta(hours, unit="s"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def shuffled(log: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows in random order but, within a case and timestamp, the same relative order."""
    rng = np.random.default_rng(seed)
    group = log.groupby(["case_id", "timestamp"]).ngroup().to_numpy()
    # a stable sort on a random key per (case, timestamp) keeps tied events in order
    key = rng.random(group.max() + 1)[group]
    return log.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


LOGS = {
    "ties": tie_log,
    "random": lambda: random_log(3),
    "random_shuffled": lambda: shuffled(random_log(4), 5),
}


@pytest.fixture(autouse=True, params=["in_memory", "columnar"])
def engine_path(request, monkeypatch) -> str:
    """Every test on both paths of the engine: NumPy for small logs, the Ibis expressions otherwise."""
    if request.param == "columnar":
        monkeypatch.setattr(engine_inmemory, "SMALL_EVENTS", 0)
    return request.param


@pytest.fixture(params=list(LOGS), scope="module")
def log(request) -> pd.DataFrame:
    return LOGS[request.param]()


# ------------------------------------------------------------------- against pm4py
def reference(log: pd.DataFrame) -> pd.DataFrame:
    """pm4py's input: the log sorted as the schema prescribes (stable, so ties keep order).

    pm4py's start/end activities and variants take a case's rows as they stand.
    """
    return to_pm4py(log.sort_values(["case_id", "timestamp"], kind="stable"))


def in_log_order(log: pd.DataFrame) -> pd.DataFrame:
    """The events by case, time and input order (ties keep their rows' order)."""
    return log.assign(_o=np.arange(len(log))).sort_values(["case_id", "timestamp", "_o"])


def test_directly_follows_matches_pm4py(log):
    edges = engine.directly_follows(log)
    dfg, _, _ = pm4py.discover_dfg(reference(log))
    assert dict(zip(zip(edges.source, edges.target), edges.frequency)) == dfg


def test_performance_matches_pm4py(log):
    edges = engine.directly_follows(log).set_index(["source", "target"])
    perf, _, _ = pm4py.discover_performance_dfg(reference(log))
    assert set(perf) == set(edges.index)
    for pair, stats in perf.items():
        row = edges.loc[pair]
        for ours, theirs in (("wait_mean_s", "mean"), ("wait_median_s", "median"),
                             ("wait_min_s", "min"), ("wait_max_s", "max")):
            assert row[ours] == pytest.approx(float(stats[theirs]), rel=1e-9, abs=1e-6), (pair, theirs)


def test_quantiles_by_sort_match_pm4py_and_numpy(log, monkeypatch):
    # as on a log too large for DuckDB's memory: every event "needs" more than the limit
    monkeypatch.setattr(engine_api, "_QUANTILE_BYTES_PER_EVENT", 10**15)
    assert engine_api.quantiles_by_sort(log, "duckdb")
    edges = engine.directly_follows(log).set_index(["source", "target"])
    perf, _, _ = pm4py.discover_performance_dfg(reference(log))
    # the waits by hand: consecutive events of a case in (time, input) order
    ev = in_log_order(log)
    nxt = ev.groupby("case_id").shift(-1)
    waits = (nxt["timestamp"] - ev["timestamp"]).dt.total_seconds()
    pairs = pd.DataFrame({"source": ev["activity"], "target": nxt["activity"], "wait": waits}).dropna()
    for (a, b), w in pairs.groupby(["source", "target"])["wait"]:
        assert edges.loc[(a, b), "wait_median_s"] == pytest.approx(float(perf[(a, b)]["median"]), abs=1e-6)
        assert edges.loc[(a, b), "wait_p90_s"] == pytest.approx(np.percentile(w, 90), abs=1e-6)


def test_quantiles_are_sorted_for_logs_beyond_memory(monkeypatch):
    log = tie_log()
    assert not engine_api.quantiles_by_sort(log, "duckdb")  # a few events, GBs of memory
    limit = engine_sources.memory_limit_bytes()
    monkeypatch.setattr(engine_api, "_QUANTILE_BYTES_PER_EVENT", limit / len(log) + 1)
    assert engine_api.quantiles_by_sort(log, "duckdb")
    assert engine_api.quantiles_by_sort(log, "pyspark")  # Spark's percentile is in memory too


def test_start_end_match_pm4py(log):
    se = engine.start_end_activities(log)
    p = reference(log)
    assert {a: n for a, n in zip(se.activity, se.start) if n} == pm4py.get_start_activities(p)
    assert {a: n for a, n in zip(se.activity, se.end) if n} == pm4py.get_end_activities(p)


def test_variants_match_pm4py(log):
    v = engine.variants(log)
    assert dict(zip(v.variant, v["count"])) == pm4py.get_variants(reference(log))
    assert v["share"].sum() == pytest.approx(1.0)
    # most frequent first, ties in variant order
    keys = [(-n, variant) for n, variant in zip(v["count"], v.variant)]
    assert keys == sorted(keys)


def _stats(max_ord, t_min, t_max, whole_s=True, whole_ms=True):
    return {"max_ord": max_ord, "t_min": t_min, "t_max": t_max, "whole_1000000": whole_s, "whole_1000": whole_ms}


def test_event_key_packs_time_ordinal_and_code_when_they_fit():
    year = 365 * 86400 * 10**6
    # 6 activities + "missing" -> 3 bits; ordinals up to 1000 -> 10 bits; a year in seconds -> 25 bits
    assert engine_expressions.event_key(6, _stats(1000, -5, year - 5)) == engine_expressions.EventKey(3, 10, 10**6, -5)
    assert engine_expressions.event_key(7, _stats(1000, 0, year)).code_bits == 3  # codes 0-6, 7 = missing
    assert engine_expressions.event_key(8, _stats(1000, 0, year)).code_bits == 4
    # a sub-second time: milliseconds (a year is 35 bits of them); a sub-millisecond one: microseconds
    assert engine_expressions.event_key(6, _stats(1000, 0, year, whole_s=False)).unit_us == 1000
    assert engine_expressions.event_key(6, _stats(1000, 0, 86400 * 10**6, False, False)).unit_us == 1
    # too many bits in all (25 + 36 + 3 > 63), or a time past 2**39 units: structs
    assert engine_expressions.event_key(6, _stats(2**36 - 1, 0, year)).unit_us is None
    assert engine_expressions.event_key(6, _stats(1000, 0, year, False, False)).unit_us is None
    assert engine_expressions.event_key(6, _stats(None, None, None)) == engine_expressions.EventKey(3, 0)  # no events
    with pytest.raises(WorkbenchError, match="distinct activities"):
        engine_expressions.event_key(2**30, _stats(2**33, 0, year))


@pytest.fixture
def keys(monkeypatch):
    """The event keys the engine chooses, in the order it chooses them."""
    chosen = []

    def spy(*args):
        chosen.append(choose(*args))
        return chosen[-1]

    choose = engine_expressions.event_key
    monkeypatch.setattr(engine_api, "event_key", spy)
    monkeypatch.setattr(engine_inmemory, "SMALL_EVENTS", 0)  # keys are the columnar path's
    return chosen


def _as_structs(monkeypatch):
    monkeypatch.setattr(engine_expressions, "_KEY_TIME_BITS", -1)  # no time fits: every key is a struct
    monkeypatch.setattr(engine_runner, "_sql_cache", {})


def test_packed_keys_and_structs_give_the_same_variants_and_dfg(log, keys, monkeypatch):
    def results():
        return engine.variants(log), *engine.dfg(log, performance=True)

    packed = results()
    _as_structs(monkeypatch)
    structs = results()
    # the random logs are in whole seconds, the tie log has a half second
    unit = 10**3 if len(log) == len(tie_log()) else 10**6
    assert [k.unit_us for k in keys] == [unit, unit, None, None]
    for a, b in zip(packed, structs):
        pd.testing.assert_frame_equal(a, b)
    assert dict(zip(packed[0].variant, packed[0]["count"])) == pm4py.get_variants(reference(log))


@pytest.mark.parametrize("structs", [False, True], ids=["packed", "structs"])
def test_both_ways_of_pairing_events_give_the_same_dfg(log, structs, monkeypatch):
    """DuckDB pairs each event with the next by unnesting two arrays side by side, other
    backends through pair structs: both, on DuckDB, with and without a missing activity."""
    import ibis

    if structs:
        _as_structs(monkeypatch)
    gap = log.assign(_ord=range(len(log)), activity=log.activity.where(log.index != 3, None))
    for source in (log, ibis.memtable(gap)):
        with engine_runner.session(source, backend="duckdb", con=None) as run:
            key = engine_api.event_key_of(run)
            zipped, structured = (run(engine_expressions.dfg_expr, (key, True, False, zipped_unnest))
                                  for zipped_unnest in (True, False))
        # (the pairs into a missing activity and the cases' ends both have no target: one pairing
        # keeps them apart, the other together, and either way they count as ends)
        pd.testing.assert_frame_equal(engine_api._edges(zipped, True), engine_api._edges(structured, True))
        pd.testing.assert_frame_equal(engine_api._start_end(zipped), engine_api._start_end(structured))
        for g in (zipped, structured):
            assert g._starts.sum() == log.case_id.nunique()
            assert g.frequency.sum() == len(log)  # every event opens a pair, the last with no target
    # the missing activity (row 4) has no name, on either side of its pairs
    edges, start_end = engine.dfg(ibis.memtable(gap))
    assert edges.source.isna().sum() == 1 and start_end.end.sum() == log.case_id.nunique() + 1


@pytest.mark.parametrize("start", ["1901-12-13 20:45:52", "1969-12-31 23:59:59", "2400-02-29 12:00:00"])
def test_variants_and_dfg_before_1970_and_far_ahead(start, keys):
    log = random_log(6)
    log["timestamp"] = ts(start) + (log.timestamp - ts("2024-01-01"))
    v = engine.variants(log)
    assert keys[-1].unit_us == 10**6 and keys[-1].t0 == log.timestamp.min().as_unit("us").asm8.view("i8")
    assert dict(zip(v.variant, v["count"])) == pm4py.get_variants(reference(log))
    ordered = log.sort_values(["case_id", "timestamp"], kind="stable").groupby("case_id")
    cases = pd.DataFrame({"variant": ordered.activity.agg(tuple),
                          "d": ordered.timestamp.agg(lambda x: (x.max() - x.min()).total_seconds())})
    expected = cases.groupby("variant").d.mean()
    assert v.set_index("variant").mean_duration_s.to_dict() == pytest.approx(expected.to_dict())
    assert engine.to_pm4py_dfg(*engine.dfg(log)) == pm4py.discover_dfg(reference(log))
    perf, _, _ = engine.to_pm4py_dfg(*engine.dfg(log, performance=True), measure="performance")
    theirs, _, _ = pm4py.discover_performance_dfg(reference(log))
    assert {k: w["mean"] for k, w in perf.items()} == pytest.approx({k: w["mean"] for k, w in theirs.items()})


def test_case_durations_match_pm4py(log):
    cases = engine.case_durations(log)
    assert len(cases) == log.case_id.nunique()
    assert sorted(cases.duration_s) == pytest.approx(sorted(pm4py.get_all_case_durations(reference(log))))
    bounds = log.groupby("case_id").timestamp.agg(["min", "max"])
    assert cases.case_id.tolist() == bounds.index.tolist()
    assert (cases.start.to_numpy() == bounds["min"].to_numpy()).all()
    assert (cases.end.to_numpy() == bounds["max"].to_numpy()).all()
    assert str(cases.start.dtype) == "datetime64[us, UTC]"


def test_to_pm4py_dfg_gives_pm4py_objects(log):
    dfg, start, end = engine.to_pm4py_dfg(engine.directly_follows(log), engine.start_end_activities(log))
    assert (dfg, start, end) == pm4py.discover_dfg(reference(log))
    perf, _, _ = engine.to_pm4py_dfg(engine.directly_follows(log), engine.start_end_activities(log),
                                     measure="performance")
    theirs, _, _ = pm4py.discover_performance_dfg(reference(log))
    assert perf.keys() == theirs.keys()
    for k in perf:
        assert perf[k]["mean"] == pytest.approx(float(theirs[k]["mean"]))


def test_one_pass_dfg_matches_pm4py(log):
    edges, se = engine.dfg(log)
    assert list(edges.columns) == ["source", "target", "frequency"]
    assert engine.to_pm4py_dfg(edges, se) == pm4py.discover_dfg(reference(log))
    pd.testing.assert_frame_equal(se, engine.start_end_activities(log))


def test_activity_counts_match_pandas(log):
    ac = engine.activity_counts(log).set_index("activity")
    g = log.groupby("activity")
    assert ac["events"].to_dict() == g.size().to_dict()
    assert ac["cases"].to_dict() == g.case_id.nunique().to_dict()


def _same_as_separate_calls(d: engine.Discovery, log) -> None:
    pd.testing.assert_frame_equal(d.edges, engine.directly_follows(log))
    pd.testing.assert_frame_equal(d.start_end, engine.start_end_activities(log))
    pd.testing.assert_frame_equal(d.activities, engine.activity_counts(log))
    pd.testing.assert_frame_equal(d.variants, engine.variants(log))
    pd.testing.assert_frame_equal(d.case_durations, engine.case_durations(log))


def test_discovery_bundle_matches_pm4py_and_the_single_calls(log, monkeypatch):
    d = engine.discovery_bundle(log)
    ref = reference(log)
    assert engine.to_pm4py_dfg(d.edges, d.start_end) == pm4py.discover_dfg(ref)
    perf, _, _ = engine.to_pm4py_dfg(d.edges, d.start_end, measure="performance")
    theirs, _, _ = pm4py.discover_performance_dfg(ref)
    for stat in ("mean", "median", "min", "max"):
        assert {k: w[stat] for k, w in perf.items()} == pytest.approx({k: float(w[stat]) for k, w in theirs.items()})
    assert dict(zip(d.variants["variant"], d.variants["count"])) == {
        tuple(k): n for k, n in pm4py.get_variants(ref).items()}
    assert sorted(d.case_durations["duration_s"]) == pytest.approx(sorted(pm4py.get_all_case_durations(ref)))
    g = log.groupby("activity")
    assert d.activities.set_index("activity")["cases"].to_dict() == g.case_id.nunique().to_dict()
    _same_as_separate_calls(d, log)
    _as_structs(monkeypatch)  # the same with (time, ordinal) structs as keys
    _same_as_separate_calls(engine.discovery_bundle(log), log)


def test_discovery_bundle_on_an_ibis_table_and_a_file(tmp_path):
    log = random_log(5, n_cases=30)
    expected = engine.discovery_bundle(log)
    # a table has no input order (ties break by activity): as the single calls on that table
    _same_as_separate_calls(engine.discovery_bundle(ibis.memtable(log)), ibis.memtable(log))
    path = tmp_path / "log.parquet"
    log.to_parquet(path)
    for a, b in zip(vars(engine.discovery_bundle(path)).values(), vars(expected).values()):
        pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------- hand-computed
def test_ties_keep_input_order_by_hand():
    v = engine.variants(tie_log()).set_index("variant")
    # B's three simultaneous events stay in their row order
    assert v.loc[[("Lead Created", "Qualification", "First Contact", "Closed Lost")], "count"].item() == 1
    assert v.loc[[("Lead Created", "Qualification", "First Contact", "Closed Lost")],
                 "mean_duration_s"].item() == 2 * 86400 + 0.5
    edges = engine.directly_follows(tie_log()).set_index(["source", "target"])
    assert edges.loc[("Lead Created", "First Contact"), "frequency"] == 2  # A and E
    # waits A: 1 day, E: 0 s -> mean 43200, p90 by linear interpolation 0.9 * 86400
    assert edges.loc[("Lead Created", "First Contact"), "wait_mean_s"] == 43200.0
    assert edges.loc[("Lead Created", "First Contact"), "wait_p90_s"] == pytest.approx(0.9 * 86400)
    assert edges.loc[("First Contact", "Closed Lost"), "wait_max_s"] == 2 * 86400 + 0.5


def sales_log() -> pd.DataFrame:
    rows = [
        # case, activity, time, rep, amount, segment
        ("D1", "Lead Created", "2024-01-01", "ann", 100.0, None),
        ("D1", "First Contact", "2024-01-03", "ann", None, "smb"),
        ("D1", "Follow-up", "2024-01-04", "ann", None, "ent"),
        ("D1", "First Contact", "2024-01-05", "ann", None, None),
        ("D1", "Qualification", "2024-01-08", "ann", 150.0, None),
        ("D1", "First Contact", "2024-01-10", "bob", None, None),
        ("D1", "Closed Won", "2024-01-20", "bob", None, None),
        ("D1", "Follow-up", "2024-04-02", "cy", 999.0, None),  # after the close
        ("D2", "Lead Created", "2024-02-01", None, None, "ent"),
        ("D2", "Qualification", "2024-02-11", "dan", 80.0, None),
        ("D2", "Closed Lost", "2024-04-11", None, None, None),
        ("D3", "Lead Created", "2024-03-30", "eve", 40.0, None),
        ("D3", "Follow-up", "2024-04-30", None, None, None),
    ]
    return pd.DataFrame(
        {
            "case_id": [r[0] for r in rows],
            "activity": [r[1] for r in rows],
            "timestamp": [ts(r[2]) for r in rows],
            "rep": pd.array([r[3] for r in rows], dtype="str"),
            "amount": [r[4] for r in rows],
            "segment": pd.array([r[5] for r in rows], dtype="str"),
        }
    )


def mixed_log() -> pd.DataFrame:
    """Ties, single-event cases, random cases and a sales case with attributes, in one log
    (the backend tests run every aggregation on it)."""
    return pd.concat([tie_log(), random_log(11, n_cases=25), sales_log()], ignore_index=True)


def same_result(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    """Equal results of two backends: the same rows and values, whatever each calls their types."""
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True),
                                  check_dtype=False, check_exact=False, rtol=1e-9)


def test_case_table_by_hand():
    ct = engine.case_table(sales_log(), PPVVC).set_index("case_id")
    assert list(ct.index) == ["D1", "D2", "D3"]
    d1, d2, d3 = ct.loc["D1"], ct.loc["D2"], ct.loc["D3"]
    assert (d1.outcome, d2.outcome, d3.outcome) == ("won", "lost", "open")
    assert d1.closed_at == ts("2024-01-20") and d2.closed_at == ts("2024-04-11") and pd.isna(d3.closed_at)
    assert d1.start == ts("2024-01-01") and d1.end == ts("2024-04-02")
    assert d1.duration_s == (ts("2024-04-02") - ts("2024-01-01")).total_seconds()
    assert list(ct.n_events) == [8, 3, 2]
    assert (d1.amount, d2.amount, d3.amount) == (999.0, 80.0, 40.0)  # last known amount
    assert d1.rep == "bob"  # the rep on the closing event, not the later 'cy'
    assert d2.rep == "dan"  # closing event has no rep: the last known one
    assert d3.rep == "eve"
    assert (d1.segment, d2.segment) == ("smb", "ent") and pd.isna(d3.segment)  # first non-null


def test_stage_visits_by_hand():
    sv = engine.stage_visits(sales_log(), PPVVC)
    d1 = sv[sv.case_id == "D1"]
    # the follow-up neither ends First Contact nor starts anything; the return after
    # Qualification is visit 2; the close ends the last visit; the late follow-up is ignored
    assert list(zip(d1.stage, d1.visit)) == [
        ("Lead Created", 1), ("First Contact", 1), ("Qualification", 1), ("First Contact", 2)
    ]
    assert list(d1.entered) == [ts("2024-01-01"), ts("2024-01-03"), ts("2024-01-08"), ts("2024-01-10")]
    assert list(d1.left) == [ts("2024-01-03"), ts("2024-01-08"), ts("2024-01-10"), ts("2024-01-20")]
    assert list(d1.duration_s) == [2 * 86400, 5 * 86400, 2 * 86400, 10 * 86400]
    assert list(d1.rep) == ["ann", "ann", "ann", "bob"]
    d3 = sv[sv.case_id == "D3"]
    assert list(d3.stage) == ["Lead Created"] and pd.isna(d3.left.item()) and pd.isna(d3.duration_s.item())
    assert sv[sv.case_id == "D2"].duration_s.tolist() == [10 * 86400, 60 * 86400]


def test_kpis_by_period_by_hand():
    k = engine.kpis_by_period(sales_log(), PPVVC, freq="Q").set_index("period")
    assert list(k.index) == ["2024Q1", "2024Q2"]
    assert k.loc["2024Q1", ["created", "won", "lost"]].tolist() == [3, 1, 0]
    assert k.loc["2024Q2", ["created", "won", "lost"]].tolist() == [0, 0, 1]
    assert k.loc["2024Q1", "won_amount"] == 999.0  # the case's last known amount
    assert k.loc["2024Q1", "win_rate"] == 1.0 and k.loc["2024Q2", "win_rate"] == 0.0
    assert k.loc["2024Q1", "mean_cycle_days"] == 19.0 and k.loc["2024Q2", "mean_cycle_days"] == 70.0
    m = engine.kpis_by_period(sales_log(), PPVVC, freq="M")
    assert m.period.tolist() == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert m.created.tolist() == [1, 1, 1, 0]


def attribute_log(seed: int) -> pd.DataFrame:
    """The tiny demo log made harder: times cut to the day (ties in most cases), owners,
    amounts and attributes that change or go missing inside cases, rows shuffled."""
    from workbench.synth import generate_demo_data

    ev = generate_demo_data(seed=seed, size="tiny").events
    rng = np.random.default_rng(seed)
    n = len(ev)
    ev["timestamp"] = ev.timestamp.dt.floor("D")
    for col, values in (("rep", ["ann", "bob", "cy"]), ("segment", ["smb", "ent"])):
        ev[col] = pd.array(rng.choice(values, n), dtype="str")
    ev["amount"] = rng.integers(1, 50, n) * 1000.0
    for col in ("rep", "team", "amount", "segment", "product"):
        ev.loc[rng.random(n) < 0.3, col] = None
    return ev.iloc[rng.permutation(n)].reset_index(drop=True)


def values(column: pd.Series) -> list:
    """The column's values as Python objects, every kind of missing value as None."""
    return column.astype(object).where(column.notna(), None).tolist()


def case_table_by_pandas(log: pd.DataFrame) -> pd.DataFrame:
    """The case table as its docstring defines it, row by row in pandas."""
    closing, won = set(PPVVC.closing), set(PPVVC.won)
    rows = []
    for case, ev in in_log_order(log).groupby("case_id", sort=True):
        closes = ev[ev.activity.isin(closing)]
        close = closes.iloc[0] if len(closes) else None

        def first(col, frame=ev):
            known = frame[col].dropna()
            return known.iloc[0] if len(known) else None

        def last(col):
            known = ev[col].dropna()
            return known.iloc[-1] if len(known) else None

        row = {"case_id": case, "start": ev.timestamp.min(), "end": ev.timestamp.max(),
               "n_events": len(ev), "closed_at": None if close is None else close.timestamp,
               "outcome": "open" if close is None else "won" if close.activity in won else "lost",
               "amount": last("amount")}
        for col in ("rep", "team", "region"):
            on_close = first(col, closes) if len(closes) else None
            row[col] = on_close if on_close is not None else last(col)
        for col in ("account", "customer_type", "lead_source", "segment", "product"):
            row[col] = first(col)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("structs", [False, True], ids=["packed", "structs"])
def test_case_table_matches_pandas_with_ties_and_gaps(structs, keys, monkeypatch):
    if structs:
        _as_structs(monkeypatch)
    log = attribute_log(5)
    ours = engine.case_table(log, PPVVC)
    assert keys and all((k.unit_us is None) == structs for k in keys)
    theirs = case_table_by_pandas(log)
    assert ours.case_id.tolist() == theirs.case_id.tolist()  # sorted by the engine
    for col in theirs.columns:
        assert values(ours[col]) == values(theirs[col]), col
    # the quarter counts read the same cases
    k = engine.kpis_by_period(log, PPVVC, freq="Q")
    assert k.created.sum() == len(theirs) and k.won.sum() == (theirs.outcome == "won").sum()
    assert k.won_amount.sum() == pytest.approx(theirs.amount[theirs.outcome == "won"].sum())


def test_stage_visits_match_pandas_with_ties():
    log = attribute_log(6)
    stages, closing = set(PPVVC.stages), set(PPVVC.closing)
    ev = in_log_order(log)
    ev = ev[ev.activity.isin(stages | closing)].copy()
    is_close = ev.activity.isin(closing).astype(int)
    ev = ev[is_close.groupby(ev.case_id).cumsum() - is_close == 0]  # nothing after the close
    prev = ev.groupby("case_id").activity.shift()
    bound = ev[ev.activity.isin(closing) | (prev != ev.activity)].copy()  # a first event has no prev
    bound["left"] = bound.groupby("case_id").timestamp.shift(-1)
    visits = bound[bound.activity.isin(stages)].copy()
    visits["visit"] = visits.groupby(["case_id", "activity"]).cumcount() + 1
    theirs = visits.rename(columns={"activity": "stage", "timestamp": "entered"}).sort_values(
        ["case_id", "entered", "stage", "visit"], kind="stable")
    ours = engine.stage_visits(log, PPVVC)
    assert len(ours) == len(theirs) > 100
    for col in ("case_id", "stage", "visit", "entered", "left", "rep", "team", "region"):
        assert values(ours[col]) == values(theirs[col]), col
    left = (theirs.left - theirs.entered).dt.total_seconds()
    assert np.allclose(ours.duration_s, left, equal_nan=True)


# ------------------------------------------------------------------- files and inputs
def test_parquet_and_csv_give_the_frame_results(tmp_path, log):
    pq, csv = tmp_path / "log.parquet", tmp_path / "log.csv"
    log.to_parquet(pq, row_group_size=7)
    log.to_csv(csv, index=False)
    expected = engine.variants(log)
    for path in (pq, csv, str(pq)):
        got = engine.variants(path)
        assert got.variant.tolist() == expected.variant.tolist()
        assert got["count"].tolist() == expected["count"].tolist()
    pd.testing.assert_frame_equal(engine.directly_follows(pq), engine.directly_follows(log))


def test_pm4py_column_names_are_accepted():
    pm = to_pm4py(tie_log())
    assert engine.variants(pm).variant.tolist() == engine.variants(tie_log()).variant.tolist()


def test_timestamps_in_another_zone_give_the_same_durations():
    log = tie_log()
    log["timestamp"] = log.timestamp.dt.tz_convert("America/New_York")
    assert str(engine.case_durations(log).start.dt.tz) == "UTC"
    assert engine.case_durations(log).duration_s.tolist() == engine.case_durations(tie_log()).duration_s.tolist()


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.drop(columns="activity"), "'activity'"),
        (lambda d: d.assign(timestamp=d.timestamp.astype(str)), "timezone-aware"),
        (lambda d: d.assign(timestamp=d.timestamp.dt.tz_localize(None)), "timezone-aware"),
        (lambda d: d.assign(activity=d.activity.where(d.index != 6, None)), "row 7"),
        (lambda d: d.assign(case_id=d.case_id.where(d.index != 3, None)), "row 4"),
    ],
)
def test_bad_frames_raise_workbench_errors(mutate, words):
    with pytest.raises(WorkbenchError, match=words):
        engine.directly_follows(mutate(tie_log()))


def test_bad_files_raise_workbench_errors(tmp_path):
    with pytest.raises(WorkbenchError, match="not found"):
        engine.variants(tmp_path / "missing.parquet")
    (tmp_path / "log.xes").write_text("<log/>")
    with pytest.raises(WorkbenchError, match="Parquet or CSV"):
        engine.variants(tmp_path / "log.xes")
    tie_log().drop(columns="timestamp").to_csv(tmp_path / "no_time.csv", index=False)
    with pytest.raises(WorkbenchError, match="'timestamp'"):
        engine.variants(tmp_path / "no_time.csv")


def _shapes(tmp_path) -> dict:
    """Parquet files as exports write them: pm4py's names, naive times, integer case ids,
    dictionary-encoded (categorical) columns, nanosecond times, several row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = random_log(8, n_cases=40)
    files = {}
    to_pm4py(log).to_parquet(files.setdefault("pm4py_names", tmp_path / "pm4py.parquet"))
    log.assign(timestamp=log.timestamp.dt.tz_localize(None)).to_parquet(
        files.setdefault("naive", tmp_path / "naive.parquet"))
    log.assign(case_id=log.case_id.str[1:].astype(int)).to_parquet(
        files.setdefault("int_cases", tmp_path / "int.parquet"))
    log.astype({"case_id": "category", "activity": "category"}).to_parquet(
        files.setdefault("categorical", tmp_path / "cat.parquet"))
    table = pa.Table.from_pandas(log.assign(timestamp=log.timestamp.dt.as_unit("ns")), preserve_index=False)
    pq.write_table(table, files.setdefault("ns_row_groups", tmp_path / "ns.parquet"), row_group_size=37)
    return files


@pytest.mark.parametrize("shape", ["pm4py_names", "naive", "int_cases", "categorical", "ns_row_groups"])
def test_the_in_memory_path_reads_exports_as_the_columnar_path_does(tmp_path, shape, engine_path):
    path = _shapes(tmp_path)[shape]
    ours = engine.discovery_bundle(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_inmemory, "SMALL_EVENTS", 0)
        assert engine_inmemory.ordered(path, "duckdb", None) is None
        theirs = engine.discovery_bundle(path)
    if engine_path == "in_memory":
        assert engine_inmemory.ordered(path, "duckdb", None) is not None
    for a, b in zip(vars(ours).values(), vars(theirs).values()):
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b)


def test_a_directory_of_parquet_files_keeps_the_input_order_across_files(tmp_path):
    log = tie_log()
    # case B's three tied events (input order: Lead Created, Qualification, First Contact)
    # each open a file, so each is its file's row 0
    parts = [log.iloc[[5, 0, 1, 9]], log.iloc[[6, 2, 10, 11]], log.iloc[[7, 3, 4, 8, 12, 13]]]
    folder = tmp_path / "export"
    (folder / "2024").mkdir(parents=True)
    for i, part in enumerate(parts):
        part.to_parquet(folder / "2024" / f"part-{i}.parquet")
    whole = pd.concat(parts, ignore_index=True)
    expected = engine.variants(whole)
    assert ("Lead Created", "Qualification", "First Contact", "Closed Lost") in expected.variant.tolist()
    for source in (folder, str(folder / "2024" / "*.parquet")):
        pd.testing.assert_frame_equal(engine.variants(source), expected)
        pd.testing.assert_frame_equal(engine.directly_follows(source), engine.directly_follows(whole))
    # an empty cell is reported in its own file, at that file's row
    gap = parts[1].assign(activity=parts[1].activity.where(parts[1].activity != "Follow-up", None))
    gap.to_parquet(folder / "2024" / "part-1.parquet")
    with pytest.raises(WorkbenchError, match=r"part-1\.parquet.*column 'activity', row 2"):
        engine.variants(folder)


@pytest.mark.parametrize("statistics", [True, False])
def test_files_with_empty_required_cells_are_refused_not_misread(tmp_path, statistics):
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = tie_log()
    gap = log.assign(activity=log.activity.where(log.index != 4, None))
    # with footer statistics the null count comes from the footer; without, from a scan
    pq.write_table(pa.Table.from_pandas(gap), tmp_path / "gap.parquet", write_statistics=statistics)
    with pytest.raises(WorkbenchError, match=r"column 'activity', row 5: 1 event has no value") as err:
        engine.variants(tmp_path / "gap.parquet")
    assert "gap.parquet" in str(err.value) and "read_event_log" in str(err.value)
    pm = to_pm4py(log.assign(timestamp=log.timestamp.where(log.index != 2)))
    pm.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(WorkbenchError, match=r"column 'time:timestamp', row 3"):
        engine.dfg(tmp_path / "gap.csv")
    log.to_parquet(tmp_path / "whole.parquet")
    assert engine.variants(tmp_path / "whole.parquet")["count"].sum() == log.case_id.nunique()


def test_empty_log_gives_empty_results():
    empty = tie_log().iloc[:0]
    assert engine.directly_follows(empty).empty
    assert engine.start_end_activities(empty).empty
    assert engine.variants(empty).empty
    assert engine.case_durations(empty).empty
    assert engine.activity_counts(empty).empty
    assert all(frame.empty for frame in vars(engine.discovery_bundle(empty)).values())
    assert engine.case_table(empty).empty


def test_input_frame_is_not_modified():
    log = tie_log()
    before = log.copy()
    engine.case_table(log)
    pd.testing.assert_frame_equal(log, before)
    assert not math.isnan(engine.variants(log)["share"].sum())


def test_ibis_table_input_runs_on_its_own_backend():
    import ibis

    log = tie_log()
    table = ibis.memtable(log.assign(_ord=range(len(log))))
    assert engine.variants(table).variant.tolist() == engine.variants(log).variant.tolist()
    # without an ordinal, ties fall back to the activity name: B's three tied events sort a-z
    plain = ibis.memtable(log)
    b = [v for v in engine.variants(plain).variant if v[-1] == "Closed Lost"]
    assert b == [("First Contact", "Lead Created", "Qualification", "Closed Lost")]
    # an Ibis table may lack an activity: it shows as None and keeps its place among ties
    gap = log.assign(_ord=range(len(log)), activity=log.activity.where(log.index != 6, None))
    b = [v for v in engine.variants(ibis.memtable(gap)).variant if v[-1] == "Closed Lost"]
    assert b == [("Lead Created", None, "First Contact", "Closed Lost")]


def test_configure_sets_duckdb_memory_limit_and_spill_directory(tmp_path):
    saved = (engine_backends.CONFIG.memory_limit, engine_backends.CONFIG.temp_directory)
    try:
        engine.configure(memory_limit="512MB", temp_directory=tmp_path / "spill")
        raw = engine.connect().con
        limit = raw.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert limit.startswith(("488", "512"))  # DuckDB prints 512 MB as 488.2 MiB
        assert raw.sql("SELECT current_setting('temp_directory')").fetchall()[0][0] == str(tmp_path / "spill")
        assert engine.variants(tie_log())["count"].sum() == 5  # still works under the new settings
    finally:
        engine_backends.CONFIG.memory_limit, engine_backends.CONFIG.temp_directory = saved
        engine_backends.CONNECTIONS.pop("duckdb", None)


def test_disconnect_closes_the_shared_connection_and_the_next_call_opens_another():
    old = engine.connect()
    engine.disconnect()
    with pytest.raises(Exception, match="(?i)closed"):
        old.con.sql("SELECT 1").fetchall()
    new = engine.connect()
    assert new is not old
    assert engine.variants(tie_log())["count"].sum() == 5
    # its allocator hands freed memory back between queries rather than at the next one
    setting = "SELECT current_setting('allocator_background_threads')"
    assert new.con.sql(setting).fetchall()[0][0] is True
    engine.disconnect()
    engine.disconnect()  # nothing open: nothing to do


def test_unknown_period_and_backend_raise_workbench_errors():
    with pytest.raises(WorkbenchError, match="unknown period"):
        engine.kpis_by_period(sales_log(), freq="fortnight")
    with pytest.raises(WorkbenchError, match="unknown engine backend"):
        engine.variants(tie_log(), backend="oracle")


def test_running_out_of_memory_and_spill_space_is_a_workbench_error(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_inmemory, "SMALL_EVENTS", 0)  # DuckDB's memory is the subject
    saved = (engine_backends.CONFIG.memory_limit, engine_backends.CONFIG.temp_directory, engine_backends.CONFIG.max_temp_size)
    n = 300_000
    big = pd.DataFrame({
        "case_id": np.char.add("c", (np.arange(n) // 7).astype(str)),
        "activity": np.char.add("a", (np.arange(n) % 13).astype(str)),
        "timestamp": ts("2024-01-01") + pd.to_timedelta(np.arange(n) % 1000, unit="s"),
    })
    try:
        engine.configure(memory_limit="4MB", temp_directory=tmp_path, max_temp_size="1MB")
        with pytest.raises(WorkbenchError, match="memory_limit"):
            engine.directly_follows(big)
    finally:
        engine_backends.CONFIG.memory_limit, engine_backends.CONFIG.temp_directory, engine_backends.CONFIG.max_temp_size = saved
        engine_backends.CONNECTIONS.pop("duckdb", None)


def test_periods_are_cut_in_utc_whatever_the_machine_zone(monkeypatch):
    import time

    log = pd.DataFrame({"case_id": ["Q"], "activity": ["Lead Created"], "timestamp": [ts("2024-04-01 02:00")]})
    monkeypatch.setenv("TZ", "America/New_York")  # there it is still March 31
    time.tzset()
    engine_backends.CONNECTIONS.pop("duckdb", None)
    try:
        k = engine.kpis_by_period(log, freq="Q")
        assert k.period.tolist() == ["2024Q2"]
        assert engine.case_table(log).start.item() == ts("2024-04-01 02:00")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
        engine_backends.CONNECTIONS.pop("duckdb", None)
