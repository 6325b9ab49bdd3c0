"""Tests of the demo data generator: determinism, the seed's numbers, and the planted ground truth.

The checks recompute everything from the generated event log with small,
independent pandas / plain-Python code written here, not with the generator's
own helpers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.synth import generate_demo_data, write_demo_data

STAGES = ["Lead Created", "Research", "First Contact", "Qualification", "Discovery Meeting",
          "Send Information", "Proposal", "Negotiation"]
MANDATORY = ["Lead Created", "First Contact", "Qualification", "Discovery Meeting", "Proposal"]
MILESTONES = ["Qualification", "Discovery Meeting", "Proposal", "Negotiation"]
CLOSING = {"Closed Won", "Closed Lost"}
MONTH = 365.25 / 12

# Seed 003, l.66-72 (DIGEST.md), copied by hand: share of deals per cycle bucket.
SEED_TABLE = {
    "new": [0.051, 0.203, 0.282, 0.152, 0.131, 0.181],
    "existing": [0.220, 0.384, 0.239, 0.070, 0.029, 0.058],
}
CYCLE_TOLERANCE = 0.04  # absolute, per bucket and customer type, at size 'default'


@pytest.fixture(scope="module")
def tiny(demo_data):
    return demo_data(7, "tiny")


@pytest.fixture(scope="module")
def demo(demo_data):
    return demo_data(7, "default")


def _closes(events: pd.DataFrame) -> pd.DataFrame:
    """First closing event per case."""
    return events[events["activity"].isin(CLOSING)].groupby("case_id").first()


def _check_case(acts: list[str], secs: list[float], gap_s: float) -> set[str]:
    """The deviation kinds of one case, by the definitions in workbench.synth's docstring."""
    kinds = set()
    close = next((i for i, a in enumerate(acts) if a in CLOSING), None)
    pre = acts if close is None else acts[:close]
    won = close is not None and acts[close] == "Closed Won"
    if close is not None and close < len(acts) - 1:
        kinds.add("after_close")
    stages = [a for a in pre if a in STAGES]
    ranks = [STAGES.index(a) for a in stages]
    top = len(STAGES) if won else max(ranks, default=-1)
    if any(s not in stages and top > STAGES.index(s) for s in MANDATORY):
        kinds.add("skipped_stage")
    if won and any(s not in stages for s in MILESTONES):
        kinds.add("won_without_milestones")
    seen_qualification = False
    for a in pre:
        if a == "Qualification":
            seen_qualification = True
        if a == "Proposal" and not seen_qualification:
            kinds.add("premature_proposal")
    if any(b < a for a, b in zip(ranks, ranks[1:])):
        kinds.add("stage_regression")
    last_pre = len(acts) if close is None else close
    if any(secs[i + 1] - secs[i] > gap_s for i in range(min(last_pre, len(acts) - 1))):
        kinds.add("followup_gap")
    return kinds


def _independent_deviations(events: pd.DataFrame, gap_days: float) -> set[tuple[str, str]]:
    secs = (events["timestamp"].astype("int64") / 1e6).to_numpy()
    activities = events["activity"].to_numpy(dtype=object)
    found = set()
    for case, idx in events.groupby("case_id", sort=False).indices.items():
        for kind in _check_case(activities[idx].tolist(), secs[idx].tolist(), gap_days * 86400):
            found.add((case, kind))
    return found


def _stage_visits(events: pd.DataFrame) -> pd.DataFrame:
    """Pre-close stage visits: entered at a stage event, left at the next stage or closing event."""
    ev = events[events["activity"].isin(STAGES) | events["activity"].isin(CLOSING)].copy()
    is_close = ev["activity"].isin(CLOSING).astype(int)
    ev["closed_before"] = is_close.groupby(ev["case_id"]).cumsum() - is_close
    ev = ev[ev["closed_before"] == 0]
    ev["left"] = ev.groupby("case_id")["timestamp"].shift(-1)
    visits = ev[ev["activity"].isin(STAGES)].copy()
    visits["days"] = (visits["left"] - visits["timestamp"]).dt.total_seconds() / 86400
    return visits


# ----------------------------------------------------------------------------- determinism and shape


def test_same_seed_gives_identical_frames(tiny):
    again = generate_demo_data(seed=7, size="tiny")
    pd.testing.assert_frame_equal(tiny.events, again.events, check_exact=True)
    pd.testing.assert_frame_equal(tiny.reps, again.reps, check_exact=True)
    pd.testing.assert_frame_equal(tiny.quotas, again.quotas, check_exact=True)
    pd.testing.assert_frame_equal(tiny.truth.deviations, again.truth.deviations, check_exact=True)
    assert tiny.truth.stalled == again.truth.stalled


def test_different_seed_gives_different_data(tiny):
    other = generate_demo_data(seed=8, size="tiny")
    assert not tiny.events.equals(other.events)
    assert not tiny.quotas.equals(other.quotas)


def test_tiny_is_small_but_has_everything(tiny):
    ev = tiny.events
    assert 300 <= len(ev) <= 2000
    assert ev["team"].nunique() == 2 and 4 <= tiny.reps["rep"].nunique() <= 8
    assert ev["timestamp"].dt.tz_convert(None).dt.to_period("Q").nunique() >= 4
    assert set(tiny.truth.deviations.query("planted")["kind"]) == {
        "skipped_stage", "premature_proposal", "stage_regression", "followup_gap", "after_close",
        "won_without_milestones"}
    assert tiny.truth.stalled


@pytest.mark.slow
def test_event_log_is_canonical(demo):
    ev = demo.events
    assert list(ev.columns[:7]) == ["case_id", "activity", "timestamp", "rep", "team", "region", "amount"]
    assert {"customer_type", "lead_source", "segment", "product", "account"} <= set(ev.columns)
    assert str(ev["timestamp"].dt.tz) == "UTC"
    assert isinstance(ev.index, pd.RangeIndex) and ev.index[0] == 0
    assert not ev[["case_id", "activity", "timestamp", "rep", "team", "amount"]].isna().any().any()
    keys = list(zip(ev["case_id"], ev["timestamp"]))
    assert keys == sorted(keys)
    assert set(ev["activity"]) == set(STAGES) | CLOSING | {"Follow-up"}
    assert (ev["amount"] > 0).all()
    assert set(ev["customer_type"]) == {"new", "existing"}
    assert set(ev["segment"]) == {"SMB", "Mid-Market", "Enterprise"}
    # team and region are the rep's, as in the reps table; handovers stay within the team
    org = demo.reps.set_index("rep")
    assert (ev["team"].to_numpy() == org.loc[ev["rep"], "team"].to_numpy()).all()
    assert (ev["region"].to_numpy() == org.loc[ev["rep"], "region"].to_numpy()).all()
    assert ev.groupby("case_id")["team"].nunique().max() == 1
    handed = ev.groupby("case_id")["rep"].nunique()
    assert 0.03 < (handed > 1).mean() < 0.15
    assert demo.reps["team"].nunique() == 4 and demo.reps["region"].nunique() == 2
    assert 90_000 <= len(ev) <= 110_000
    years = (ev["timestamp"].max() - ev["timestamp"].min()).days / 365.25
    assert 3.5 < years < 4.5


@pytest.mark.slow
def test_amounts_are_right_skewed_and_bigger_for_enterprise(demo):
    first = demo.events.groupby("case_id").first()
    by_segment = first.groupby("segment")["amount"].median()
    assert by_segment["SMB"] < by_segment["Mid-Market"] < by_segment["Enterprise"]
    assert first["amount"].mean() > 1.3 * first["amount"].median()


# ----------------------------------------------------------------------------- the seed's numbers


@pytest.mark.slow
def test_cycle_lengths_match_the_b2b_survey_table(demo):
    ev = demo.events
    start = ev.groupby("case_id")["timestamp"].first()
    closes = _closes(ev)
    start = start.loc[closes.index]
    # Deals created more than the longest cycle (24 months) before as_of are all closed: no censoring.
    early = start < demo.as_of - pd.Timedelta(days=24 * MONTH)
    assert (early.sum() / (ev.groupby("case_id")["timestamp"].first() < demo.as_of
                           - pd.Timedelta(days=24 * MONTH)).sum()) == 1.0
    months = (closes["timestamp"] - start).dt.total_seconds()[early] / 86400 / MONTH
    ctype = closes["customer_type"][early]
    bucket = np.digitize(months, [1, 3, 6, 9, 12])
    for kind, shares in SEED_TABLE.items():
        got = np.bincount(bucket[ctype.to_numpy() == kind], minlength=6) / (ctype == kind).sum()
        assert (ctype == kind).sum() > 1000
        assert np.abs(got - np.array(shares)).max() < CYCLE_TOLERANCE, (kind, got.round(3))


def test_time_scale_compresses_cycles():
    fast = generate_demo_data(seed=3, size=5000, time_scale=0.5)
    slow = generate_demo_data(seed=3, size=5000, time_scale=1.0)

    def median_cycle(d):
        closes = _closes(d.events)
        first = d.events.groupby("case_id")["timestamp"].first().loc[closes.index]
        return (closes["timestamp"] - first).dt.total_seconds().median()

    assert 0.35 < median_cycle(fast) / median_cycle(slow) < 0.65
    assert fast.truth.followup_gap_days == pytest.approx(22.5)


@pytest.mark.slow
def test_attainment_pattern_team_near_99_reps_about_half(demo):
    closes = _closes(demo.events)
    won = closes[closes["activity"] == "Closed Won"]
    quarter = won["timestamp"].dt.tz_convert(None).dt.to_period("Q").astype(str)
    booked = won.groupby([won["rep"], quarter])["amount"].sum()
    booked.index.names = ["rep", "quarter"]
    q = demo.quotas.set_index(["rep", "quarter"])["quota"]
    table = pd.concat([q, booked.rename("booked")], axis=1).fillna({"booked": 0.0})
    assert table["quota"].notna().all(), "bookings of a rep without a quota"
    current = str(demo.as_of.tz_convert(None).to_period("Q"))
    quarters = sorted(demo.quotas["quarter"].unique())
    assert quarters[-1] == current
    assert set(demo.quotas.loc[demo.quotas["quarter"] == current, "rep"]) == set(demo.reps["rep"])
    steady = [x for x in quarters[4:] if x != current]  # the first year ramps up from an empty CRM
    assert len(steady) >= 8
    t = table.reset_index()
    t = t[t["quarter"].isin(steady)]
    per_quarter = t.groupby("quarter")[["booked", "quota"]].sum()
    attainment = per_quarter["booked"] / per_quarter["quota"]
    assert attainment.between(0.93, 1.05).all(), attainment
    at_quota = (t["booked"] >= t["quota"]).mean()
    assert 0.38 <= at_quota <= 0.58, at_quota
    teams = dict(zip(demo.reps["rep"], demo.reps["team"]))
    assert (demo.quotas["team"] == demo.quotas["rep"].map(teams)).all()


@pytest.mark.slow
def test_deal_creation_grows_with_seasonality(demo):
    first = demo.events.groupby("case_id")["timestamp"].first().dt.tz_convert(None)
    per_year = first.dt.year.value_counts().sort_index()
    full = per_year.loc[2023:2025]
    assert full.is_monotonic_increasing
    in_2025 = first[first.dt.year == 2025].dt.quarter.value_counts()
    assert in_2025.idxmax() == 4


# ----------------------------------------------------------------------------- planted truth


@pytest.mark.slow
def test_truth_equals_the_definitions_and_only_where_planted(demo):
    truth = demo.truth.deviations
    recorded = set(zip(truth["case_id"], truth["kind"]))
    found = _independent_deviations(demo.events, demo.truth.followup_gap_days)
    assert recorded == found
    # every case with a deviation had one planted on purpose; the rest are clean
    planted_cases = set(truth.loc[truth["planted"], "case_id"])
    assert set(truth["case_id"]) == planted_cases
    clean = set(demo.events["case_id"]) - set(truth["case_id"])
    assert len(clean) > 0.6 * demo.events["case_id"].nunique()


def test_truth_on_a_hand_written_log():
    # The independent checker itself, on cases worked out by hand.
    d = 86400.0
    assert _check_case(["Lead Created", "First Contact", "Qualification", "Discovery Meeting", "Proposal",
                        "Negotiation", "Closed Won"], [0, 1, 2, 3, 4, 5, 6], 45 * d) == set()
    assert _check_case(["Lead Created", "First Contact", "Proposal", "Qualification", "Closed Lost"],
                       [0, 1, 2, 3, 4], 45 * d) == {"premature_proposal", "stage_regression", "skipped_stage"}
    assert _check_case(["Lead Created", "First Contact", "Qualification", "Discovery Meeting", "Proposal",
                        "Discovery Meeting", "Follow-up", "Proposal"], [0, 1, 2, 3, 4, 5, 6, 7], 45 * d) == {
        "stage_regression"}
    assert _check_case(["Lead Created", "First Contact", "Qualification", "Proposal", "Negotiation",
                        "Closed Won", "Follow-up"], [0, 1, 2, 3, 4, 5, 6], 45 * d) == {
        "skipped_stage", "won_without_milestones", "after_close"}
    assert _check_case(["Lead Created", "First Contact", "Closed Lost", "Follow-up"],
                       [0, 1, 50 * d, 200 * d], 45 * d) == {"followup_gap", "after_close"}
    assert _check_case(["Lead Created", "Qualification"], [0, 1], 45 * d) == {"skipped_stage"}


@pytest.mark.slow
def test_each_kind_is_planted_at_its_rate(demo):
    truth = demo.truth.deviations
    closed = set(_closes(demo.events).index)
    rates = demo.truth.params["options"]["rates"]
    for kind, rate in rates.items():
        cases = set(truth.loc[truth["planted"] & (truth["kind"] == kind), "case_id"]) & closed
        share = len(cases) / len(closed)
        assert abs(share - rate) < 0.25 * rate, (kind, share, rate)


def test_a_kind_can_be_switched_off():
    d = generate_demo_data(seed=4, size="tiny", rates={"after_close": 0.0, "followup_gap": 0.0})
    kinds = set(d.truth.deviations["kind"])
    assert "after_close" not in kinds and "followup_gap" not in kinds and "stage_regression" in kinds
    closes = _closes(d.events)
    last = d.events.groupby("case_id")["timestamp"].last().loc[closes.index]
    assert (last == closes["timestamp"]).all()


@pytest.mark.slow
def test_conforming_reps_deviate_less_and_win_more(demo):
    closes = _closes(demo.events)
    conforming = closes["rep"].isin(demo.truth.conforming_reps)
    win = closes["activity"] == "Closed Won"
    assert 0.28 < conforming.groupby(closes["rep"]).first().mean() < 0.4
    assert win[conforming].mean() > win[~conforming].mean() + 0.1
    deviating = closes.index.isin(demo.truth.deviations["case_id"])
    assert deviating[conforming.to_numpy()].mean() < 0.6 * deviating[~conforming.to_numpy()].mean()


@pytest.mark.slow
def test_won_deals_pass_all_milestones_unless_planted(demo):
    ev = demo.events
    flagged = set(demo.truth.deviations["case_id"])
    won = _closes(ev).query("activity == 'Closed Won'").index
    clean_won = [c for c in won if c not in flagged]
    sub = ev[ev["case_id"].isin(clean_won)]
    counts = sub[sub["activity"].isin(MILESTONES)].groupby("case_id")["activity"].nunique()
    assert (counts == len(MILESTONES)).all() and len(counts) == len(clean_won)


@pytest.mark.slow
def test_open_deals_and_stalled_ones(demo):
    ev = demo.events
    assert ev["timestamp"].max() <= demo.as_of
    closed = set(_closes(ev).index)
    open_cases = set(ev["case_id"]) - closed
    assert len(open_cases) > 500
    assert set(demo.truth.stalled) <= open_cases and len(demo.truth.stalled) >= 20
    visits = _stage_visits(ev)
    done = visits[visits["left"] < demo.as_of]
    p90 = done.groupby("activity")["days"].quantile(0.9)
    current = visits[visits["case_id"].isin(open_cases)].groupby("case_id").last()
    ratio = ((demo.as_of - current["timestamp"]).dt.total_seconds() / 86400) / current["activity"].map(p90)
    stalled = ratio.index.isin(demo.truth.stalled)
    assert ratio[stalled].min() > 2.0
    assert ratio[~stalled].max() <= 1.0


def test_as_of_ends_the_log_and_sets_the_current_quarter():
    d = generate_demo_data(seed=2, size="tiny", as_of="2025-05-20")
    assert d.as_of == pd.Timestamp("2025-05-20", tz="UTC")
    assert d.events["timestamp"].max() <= d.as_of
    assert d.events["timestamp"].max() > d.as_of - pd.Timedelta(days=7)
    assert sorted(d.quotas["quarter"].unique())[-1] == "2025Q2"
    assert set(_closes(d.events).index) < set(d.events["case_id"])  # some deals are still open


@pytest.mark.slow
def test_bottleneck_stage_ranks_first_for_its_team(demo):
    b = demo.truth.bottleneck
    assert b == {"team": "Enterprise East", "stage": "Proposal", "factor": 3.0}
    ev = demo.events
    closes = _closes(ev)
    visits = _stage_visits(ev[ev["case_id"].isin(closes.index)])
    visits["team"] = visits["case_id"].map(closes["team"])
    start = ev.groupby("case_id")["timestamp"].first()
    cycle = (closes["timestamp"] - start.loc[closes.index]).dt.total_seconds() / 86400
    per_case = visits.groupby(["team", "case_id", "activity"])["days"].sum().reset_index()
    per_case["share"] = per_case["days"] / per_case["case_id"].map(cycle)
    median_share = per_case.groupby(["team", "activity"])["share"].median()
    total_share = per_case.groupby(["team", "activity"])["days"].sum()
    total_share = total_share / total_share.groupby(level=0).transform("sum")
    assert median_share[b["team"]].idxmax() == b["stage"]
    assert total_share[b["team"]].idxmax() == b["stage"]
    others = [t for t in demo.reps["team"].unique() if t != b["team"]]
    assert all(total_share[t][b["stage"]] < 0.7 * total_share[b["team"]][b["stage"]] for t in others)


@pytest.mark.slow
def test_followups_keep_normal_cases_under_the_gap(demo):
    gap = demo.truth.followup_gap_days
    assert gap == 45.0
    ev = demo.events
    per_case = (ev["activity"] == "Follow-up").groupby(ev["case_id"]).sum()
    closes = _closes(ev)
    start = ev.groupby("case_id")["timestamp"].first().loc[closes.index]
    cycle = (closes["timestamp"] - start).dt.total_seconds() / 86400
    clean = ~cycle.index.isin(demo.truth.deviations["case_id"])
    long_deals = cycle[clean & (cycle > 180)].index
    # a long cycle means more follow-ups, not silence (the silence itself is checked with the truth)
    assert per_case.loc[long_deals].mean() > per_case.loc[cycle[cycle < 30].index].mean() + 3


def test_many_chunks_give_the_same_kind_of_log():
    chunked = generate_demo_data(seed=5, size="small", chunk_cases=300)
    ev = chunked.events
    assert 17_000 <= len(ev) <= 23_000
    n_cases = chunked.truth.params["n_cases"]
    assert n_cases > 5 * 300 and ev["case_id"].nunique() == n_cases
    keys = list(zip(ev["case_id"], ev["timestamp"]))
    assert keys == sorted(keys)
    recorded = set(zip(chunked.truth.deviations["case_id"], chunked.truth.deviations["kind"]))
    assert recorded == _independent_deviations(ev, chunked.truth.followup_gap_days)


# ----------------------------------------------------------------------------- files and errors


def test_write_demo_data_round_trips(tmp_path, tiny):
    paths = write_demo_data(tmp_path / "demo", seed=7, size="tiny", progress=False)
    assert set(paths) == {"events", "events_csv", "reps", "quotas", "products", "costs", "truth"}
    events = pd.read_parquet(paths["events"])
    pd.testing.assert_frame_equal(events, tiny.events, check_dtype=False)
    csv = pd.read_csv(paths["events_csv"])
    assert len(csv) == len(tiny.events) and list(csv.columns) == list(tiny.events.columns)
    truth = json.loads(paths["truth"].read_text())
    assert {"deviations", "bottleneck", "stalled", "conforming_reps", "params", "followup_gap_days"} <= set(truth)
    assert len(truth["deviations"]) == len(tiny.truth.deviations)
    assert pd.Timestamp(truth["params"]["as_of"]) == tiny.as_of
    assert truth["params"]["time_scale"] == pytest.approx(0.1)
    assert pd.read_csv(paths["quotas"]).shape == tiny.quotas.shape
    pd.testing.assert_frame_equal(pd.read_csv(paths["products"]), tiny.products)
    pd.testing.assert_frame_equal(pd.read_csv(paths["costs"]), tiny.costs)
    assert truth["params"]["customers"] == tiny.truth.params["customers"]


def test_unwritable_output_folder_raises_workbench_error(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkbenchError, match="a file"):
        write_demo_data(blocker / "demo", size="tiny", progress=False)


@pytest.mark.parametrize("kwargs, words", [
    ({"size": "huge"}, "unknown size"),
    ({"size": 5}, "too small"),
    ({"time_scale": 0}, "time_scale"),
    ({"as_of": "not a date"}, "as_of"),
    ({"rates": {"teleport": 0.1}}, "unknown deviation kinds"),
    ({"colour": "red"}, "unknown options"),
    ({"seed": -1}, "seed"),
    ({"rates": {"after_close": 2.0}}, "shares"),
    ({"bottleneck_stage": "Lunch"}, "not a stage"),
])
def test_bad_arguments_raise_workbench_error(kwargs, words):
    with pytest.raises(WorkbenchError, match=words):
        generate_demo_data(**kwargs)
