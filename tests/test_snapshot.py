"""Tests of deal snapshots (workbench.snapshot) on a hand-computed log."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.io import read_event_log
from workbench.profile import PPVVC
from workbench.snapshot import bookings, closed_won_to_date, deal_states, snapshot, snapshots


def _log(rows) -> pd.DataFrame:
    log = pd.DataFrame(rows, columns=["case_id", "activity", "timestamp", "rep", "amount", "customer_type"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    return log


# Stage ranks (PPVVC): Lead Created 0, Research 1, First Contact 2, Qualification 3,
# Discovery Meeting 4, Send Information 5, Proposal 6, Negotiation 7.
ROWS = [
    ("A", "Lead Created", "2026-01-02", "ann", 100.0, "new"),
    ("A", "First Contact", "2026-01-05", "ann", None, None),
    ("A", "Follow-up", "2026-01-06", "ann", None, None),
    ("A", "Proposal", "2026-01-10", "ann", 120.0, None),   # skips Qualification, Discovery Meeting
    ("A", "Follow-up", "2026-01-12", "ann", None, None),
    ("A", "Closed Won", "2026-02-01", "ann", None, None),
    ("B", "Lead Created", "2026-01-03", "bob", 50.0, "existing"),
    ("B", "Qualification", "2026-01-04", "bob", None, None),  # skips First Contact (for now)
    ("B", "First Contact", "2026-01-20", "bob", None, None),  # a regression; no longer skipped
    ("B", "Closed Lost", "2026-03-01", "bob", None, None),
    ("C", "Follow-up", "2026-01-03", "bob", 10.0, None),      # no stage yet
    ("D", "Lead Created", "2026-01-20", "ann", 70.0, None),
    ("D", "Closed Won", "2026-04-02", "cat", 75.0, None),     # won next quarter, by another rep
]


@pytest.fixture
def log() -> pd.DataFrame:
    return _log(ROWS)


def test_snapshot_on_jan_15_matches_hand_computed_state(log):
    s = snapshot(log, as_of="2026-01-15", quarter="2026Q1").set_index("case_id")
    assert sorted(s.index) == ["A", "B", "C"]          # D not created yet
    a = s.loc["A"]
    assert (a["stage"], a["stage_rank"], a["amount"], a["rep"]) == ("Proposal", 6, 120.0, "ann")
    assert a["age_days"] == 13 and a["time_in_stage_days"] == 5
    assert a["last_activity"] == "Follow-up" and a["days_since_last_activity"] == 3
    assert (a["n_events"], a["n_followups"], a["stages_skipped"], a["regressions"]) == (5, 2, 2, 0)
    assert a["customer_type"] == "new"
    assert a["days_left"] == 76                        # 2026-04-01 minus 2026-01-15
    b = s.loc["B"]
    assert (b["stage"], b["stages_skipped"], b["regressions"]) == ("Qualification", 1, 0)
    c = s.loc["C"]
    assert (c["stage"], c["n_followups"], c["amount"]) == ("Lead Created", 1, 10.0)


def test_snapshot_later_sees_regression_and_excludes_closed_deals(log):
    s = snapshot(log, as_of="2026-02-15").set_index("case_id")
    assert sorted(s.index) == ["B", "C", "D"]           # A won on Feb 1
    b = s.loc["B"]
    assert (b["stage"], b["regressions"], b["stages_skipped"]) == ("First Contact", 1, 0)
    assert b["time_in_stage_days"] == 26 and b["age_days"] == 43


def test_an_event_at_the_as_of_instant_has_happened(log):
    # A's win is at 2026-02-01 00:00 exactly: as of that instant A is closed, a microsecond before open.
    assert "A" not in set(snapshot(log, as_of="2026-02-01")["case_id"])
    assert "A" in set(snapshot(log, as_of="2026-01-31 23:59:59.999999")["case_id"])


def test_snapshot_of_states_equals_snapshot_of_cut_log(log):
    states = deal_states(log)
    for as_of in ["2026-01-04", "2026-01-15", "2026-02-15", "2026-03-15"]:
        t = pd.Timestamp(as_of, tz="UTC")
        full = snapshot(states, as_of=t)
        cut = snapshot(log[log["timestamp"] <= t], as_of=t)
        pd.testing.assert_frame_equal(full, cut)


def test_snapshots_in_one_pass_equal_one_snapshot_per_date(log, demo_data):
    dates = ["2026-01-02", "2026-01-03", "2026-01-15", "2026-02-01", "2026-01-31 23:59:59.999999",
             "2026-03-01", "2026-04-02", "2026-05-01"]
    dates = sorted(pd.Timestamp(d, tz="UTC") for d in dates)  # event instants and the instant before one
    quarters = [f"{d.year}Q{d.quarter}" for d in dates]
    demo = demo_data().events
    for frame in (log, demo[demo["timestamp"] < "2026-01-01"]):
        states = deal_states(frame)
        if frame is not log:
            dates = list(pd.date_range("2025-07-01", "2025-12-30", freq="7D", tz="UTC"))
            quarters = [f"{d.year}Q{d.quarter}" for d in dates]
        many = snapshots(states, as_of=dates, quarters=quarters)
        assert many["snapshot"].is_monotonic_increasing
        for i, (t, q) in enumerate(zip(dates, quarters)):
            one = snapshot(states, as_of=t, quarter=q)
            pd.testing.assert_frame_equal(many[many["snapshot"] == i].drop(columns="snapshot").reset_index(drop=True),
                                          one)


def test_bookings_and_closed_won_to_date(log):
    won = bookings(log)
    assert list(won["case_id"]) == ["A", "D"]
    assert list(won["amount"]) == [120.0, 75.0]         # last amount recorded up to the win
    assert list(won["rep"]) == ["ann", "cat"]           # rep on the winning event
    cw = closed_won_to_date(log, as_of="2026-03-01", quarter="2026Q1")
    assert cw.to_dict("records") == [{"rep": "ann", "closed_won_to_date": 120.0, "deals_won": 1}]
    # the win is at 2026-02-01 00:00: as of that instant it is booked, a microsecond before it is not
    assert closed_won_to_date(log, as_of="2026-02-01", quarter="2026Q1")["closed_won_to_date"].tolist() == [120.0]
    assert closed_won_to_date(log, as_of="2026-01-31 23:59:59.999999", quarter="2026Q1").empty
    q2 = closed_won_to_date(log, as_of="2026-06-01", quarter="2026Q2")
    assert q2.to_dict("records") == [{"rep": "cat", "closed_won_to_date": 75.0, "deals_won": 1}]


def test_bad_logs_get_a_workbench_error(log):
    with pytest.raises(WorkbenchError, match="'timestamp'"):
        snapshot(log.drop(columns="timestamp"), as_of="2026-01-15")
    naive = log.assign(timestamp=log["timestamp"].dt.tz_localize(None))
    with pytest.raises(WorkbenchError, match="timezone-aware"):
        snapshot(naive, as_of="2026-01-15")
    missing = log.copy()
    missing.loc[3, "timestamp"] = pd.NaT
    with pytest.raises(WorkbenchError, match="row 4"):
        snapshot(missing, as_of="2026-01-15")


# ------------------------------------------ deal_states against a plain groupby reference
def pandas_deal_states(log: pd.DataFrame, profile=PPVVC, carried=()) -> pd.DataFrame:
    """The running states with plain pandas groupby on the case strings (deal_states
    before it sorted and grouped by integer codes), as an independent reference."""
    ev = log[["case_id", "timestamp", "activity", *carried]].copy()
    ev = ev.sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)
    case, act = ev["case_id"], ev["activity"]
    g = ev.groupby(case, sort=False)
    ev["created"] = g["timestamp"].transform("first")
    ev["n_events"] = g.cumcount() + 1
    ev["n_followups"] = act.isin(profile.loops).astype(int).groupby(case).cumsum()
    for c in carried:
        ev[c] = g[c].ffill()
    rank_of = {s: i for i, s in enumerate(profile.stages)}
    rank = act.map(rank_of)
    stage = act.where(rank.notna())
    ev["stage"] = stage.groupby(case).ffill()
    ev["stage_rank"] = ev["stage"].map(rank_of)
    prev_stage = stage.groupby(case).ffill().groupby(case).shift()
    ev["stage_entered"] = ev["timestamp"].where(rank.notna() & (stage != prev_stage)).groupby(case).ffill()
    max_rank = rank.groupby(case).cummax().groupby(case).ffill()
    ev["max_rank"] = max_rank
    ev["regressions"] = (rank.notna() & (rank < max_rank.groupby(case).shift())).astype(int).groupby(case).cumsum()
    skipped = np.zeros(len(ev), dtype=int)
    for s in profile.mandatory:
        visited = act.eq(s).groupby(case).cummax().to_numpy()
        skipped += (~visited & (max_rank.to_numpy() > rank_of[s])).astype(int)
    ev["stages_skipped"] = skipped
    closed_before = act.isin(profile.closing).astype(int).groupby(case).cumsum()
    first_close = act.isin(profile.closing) & (closed_before == 1)
    ev["closing"] = np.where(first_close, np.where(act.isin(profile.won), "won", "lost"), None)
    ev["closed"] = closed_before > 0
    return ev


def _same_states(log: pd.DataFrame, carried: tuple[str, ...]) -> None:
    ours = deal_states(log, attributes=tuple(c for c in carried if c not in ("rep", "team", "region", "amount")))
    ref = pandas_deal_states(log, carried=carried)
    got = ours.events[ref.columns]
    assert len(got) == len(ref)
    for col in ref.columns:
        a, b = got[col], ref[col]
        if col in ("timestamp", "created", "stage_entered"):
            a, b = a.dt.as_unit("us"), b.dt.as_unit("us")
        if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), err_msg=col)
        else:
            assert a.astype(object).where(a.notna(), None).tolist() == \
                b.astype(object).where(b.notna(), None).tolist(), col


def test_states_match_the_reference_on_the_hand_log(log):
    _same_states(log, ("rep", "amount", "customer_type"))


def test_states_match_the_reference_on_the_demo_log(demo_data):
    demo = demo_data(5, "small").events
    assert demo["activity"].isin(PPVVC.closing).any() and len(demo) > 500
    _same_states(demo, tuple(c for c in demo.columns if c not in ("case_id", "activity", "timestamp")))


def test_states_match_the_reference_with_ties_and_regressions():
    # two stage events at the same time keep their input order; B goes back and forth
    rows = [
        ("A", "Lead Created", "2026-01-02", "ann", 1.0, "x"),
        ("A", "Qualification", "2026-01-05", "ann", None, None),
        ("A", "First Contact", "2026-01-05", None, None, "y"),
        ("A", "Qualification", "2026-01-05", None, 2.0, None),
        ("B", "Proposal", "2026-01-03", "bob", None, None),
        ("B", "Qualification", "2026-01-04", None, None, None),
        ("B", "Proposal", "2026-01-06", None, None, None),
        ("B", "Closed Lost", "2026-01-07", None, None, None),
        ("B", "Closed Won", "2026-01-08", None, None, None),  # after the close: closing stays 'lost'
        ("C", "Closed Won", "2026-01-09", "cat", 9.0, None),   # a single event
    ]
    _same_states(_log(rows), ("rep", "amount", "customer_type"))


def test_states_do_not_depend_on_the_row_order_and_leave_the_log_alone(demo_data):
    demo = demo_data(5, "small").events
    carried = tuple(c for c in demo.columns if c not in ("case_id", "activity", "timestamp"))
    # whole deals in a random order (a deal's own rows keep theirs, so ties stay as they were)
    key = demo["case_id"].map(dict(zip(demo["case_id"].unique(),
                                         np.random.default_rng(3).permutation(demo["case_id"].nunique()))))
    mixed = demo.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    before = mixed.copy()
    _same_states(mixed, carried)
    pd.testing.assert_frame_equal(mixed, before)
    a = deal_states(mixed).events
    b = deal_states(demo).events
    pd.testing.assert_frame_equal(a, b)


# ----------------------------------------------------------------------------- changes of plan, due this quarter

def _history(rows) -> pd.DataFrame:
    log = pd.DataFrame(rows, columns=["case_id", "activity", "timestamp", "amount", "close_date"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    log["close_date"] = pd.to_datetime(log["close_date"], utc=True)
    return log


# A stage history as a CRM writes it: every row repeats the amount and expected close date.
HISTORY = [
    ("a", "Prospecting", "2026-01-01", 100.0, "2026-02-01"),
    ("a", "Qualification", "2026-01-10", 100.0, "2026-03-01"),      # pushed
    ("a", "Qualification", "2026-01-20", 80.0, "2026-02-15"),       # amount cut, pulled in (not a push)
    ("a", "Negotiation/Review", "2026-02-01", 80.0, "2026-03-15"),  # pushed again
    ("a", "Closed Won", "2026-02-20", 90.0, "2026-02-20"),          # the close: no change of plan
    ("b", "Prospecting", "2026-01-05", 50.0, None),                 # no close date recorded
    ("b", "Proposal/Price Quote", "2026-01-25", 50.0, None),
]


@pytest.mark.parametrize("where", [{}, {"backend": "duckdb"}], ids=["numpy", "engine"])
def test_pushes_and_amount_changes_are_counted_before_the_close(where):
    states = deal_states(_history(HISTORY), profile="salesforce", **where)
    snap = snapshot(states, as_of="2026-02-10").set_index("case_id")
    assert snap.loc["a", ["close_date_pushes", "amount_changes"]].tolist() == [2, 1]
    assert snap.loc["a", "days_to_close_date"] == pytest.approx(33.0)
    assert snap.loc["b", ["close_date_pushes", "amount_changes"]].tolist() == [0, 0]
    assert np.isnan(snap.loc["b", "days_to_close_date"])
    early = snapshot(states, as_of="2026-01-15").set_index("case_id")
    assert early.loc["a", ["close_date_pushes", "amount_changes"]].tolist() == [1, 0]
    closing = states.events[states.events["closing"] == "won"].iloc[0]
    assert (closing["close_date_pushes"], closing["amount_changes"]) == (2, 1)


def test_closing_times_and_due_this_quarter_on_a_hand_log():
    from workbench.snapshot import closing_times, due_this_quarter

    log = _history(HISTORY)
    times = closing_times(log, profile="salesforce")
    # Deal a entered Prospecting on Jan 1, Qualification Jan 10, Negotiation Feb 1, won Feb 20.
    assert times.pooled.tolist() == [19.0, 41.0, 50.0]
    assert times.by_stage == {}  # fewer than MIN_WON wins per stage
    assert times.stale_after == pytest.approx(50.0)
    snap = snapshot(log, as_of="2026-02-01", quarter="2026Q1", profile="salesforce").set_index("case_id")
    # b: no close date, 7 days in stage, so the won deals that spent longer (19, 41, 50) took
    # a median 41 - 7 = 34 more days; 58 days are left, so it is due; with 30 left it is not.
    assert due_this_quarter(snap.loc[["b"]], times, days_left=58.0, elapsed=31.0).tolist() == [True]
    assert due_this_quarter(snap.loc[["b"]], times, days_left=30.0, elapsed=31.0).tolist() == [False]
    # a: expected on Mar 15, inside the quarter; were it expected in April it would not count.
    assert due_this_quarter(snap.loc[["a"]], times, days_left=58.0, elapsed=31.0).tolist() == [True]
    later = snap.loc[["a"]].assign(days_to_close_date=70.0)
    assert due_this_quarter(later, times, days_left=58.0, elapsed=31.0).tolist() == [False]
    # Stale: older than the 90th percentile of the won cycle.
    old = snap.loc[["b"]].assign(age_days=60.0)
    assert due_this_quarter(old, times, days_left=58.0, elapsed=31.0).tolist() == [False]


def _comparable(states: pd.DataFrame) -> pd.DataFrame:
    """Deal states with one type per kind of value (pandas and Arrow name theirs differently)."""
    out = states.drop(columns=["_case_code"], errors="ignore").reset_index(drop=True)
    for c in out.columns:
        if isinstance(out[c].dtype, pd.DatetimeTZDtype):
            out[c] = out[c].dt.as_unit("us")
        elif not pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def state_logs(demo_data) -> dict:
    """Logs whose deal states the engine and NumPy must agree on: ties, a stage history with pushes
    and amount changes, two CRM exports, a demo log (profile, log)."""
    from test_engine import mixed_log

    foreign = Path(__file__).parent / "data" / "foreign"
    logs = {"mixed": (PPVVC, mixed_log()), "history": ("salesforce", _history(HISTORY)),
            "demo": (PPVVC, demo_data(7, "tiny").events.head(3000))}
    for name in ("salesforce_opportunity_history.csv", "hubspot_dealstage_history.csv"):
        r = read_event_log(foreign / name)
        logs[name.split("_")[0]] = (r.profile, r.log)
    return logs


@pytest.mark.parametrize("name", ["mixed", "history", "demo", "salesforce", "hubspot"])
def test_deal_states_in_the_engine_equal_numpys(demo_data, name, tmp_path):
    profile, log = state_logs(demo_data)[name]
    numpy_states = deal_states(log, profile=profile)
    in_engine = deal_states(log, profile=profile, backend="duckdb")
    assert len(numpy_states.events) == len(log) > 0
    pd.testing.assert_frame_equal(_comparable(in_engine.events), _comparable(numpy_states.events), check_dtype=False)
    assert in_engine.attributes == numpy_states.attributes
    np.testing.assert_array_equal(in_engine.events["_case_code"], numpy_states.events["_case_code"])
    path = tmp_path / "log.parquet"  # read where it lies: the same states from the file
    stored = log.copy()
    stored.attrs = {}  # the profile the loader put there is not for Parquet's metadata
    stored.to_parquet(path)
    pd.testing.assert_frame_equal(_comparable(deal_states(str(path), profile=profile).events),
                                  _comparable(numpy_states.events), check_dtype=False)
