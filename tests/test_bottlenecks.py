"""Bottleneck measures against values worked out by hand; the planted bottleneck and stalled deals on demo data."""

import pandas as pd
import pytest

from workbench import bottlenecks as bn
from workbench.schema import MissingColumnError

D0 = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday


def day(n: float) -> pd.Timestamp:
    return D0 + pd.Timedelta(days=n)


# case, amount, events (activity, day, rep, team)
DEALS = {
    "B1": (100.0, [("Lead Created", 0, "A", "T1"), ("Qualification", 2, "A", "T1"), ("Proposal", 7, "A", "T1"),
                   ("Closed Won", 10, "A", "T1")]),
    "B2": (80.0, [("Lead Created", 0, "B", "T1"), ("Qualification", 1, "B", "T1"), ("Proposal", 4, "B", "T1"),
                  ("Qualification", 6, "C", "T2"), ("Proposal", 8, "B", "T1"), ("Closed Lost", 9, "B", "T1")]),
    "B3": (200.0, [("Lead Created", 0, "C", "T2"), ("Qualification", 4, "C", "T2")]),
    "B4": (500.0, [("Lead Created", 15, "A", "T1"), ("Qualification", 18, "A", "T1")]),
    "B5": (50.0, [("Lead Created", 5, "D", "T1"), ("Proposal", 10, "D", "T1")]),
}


def make_log() -> pd.DataFrame:
    rows = [{"case_id": c, "activity": a, "timestamp": day(d), "rep": r, "team": t, "amount": amount}
            for c, (amount, events) in DEALS.items() for a, d, r, t in events]
    return pd.DataFrame(rows).sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def log():
    return make_log()


def test_stage_times_median_p90_and_share_of_cycle(log):
    out = bn.stage_times(log).set_index("stage")
    # finished visits: Lead 2,1,4,3,5; Qualification 5,3,2; Proposal 3,2,1 (B3, B4, B5 still running)
    assert list(out.index) == ["Lead Created", "Qualification", "Proposal"]
    assert out["visits"].tolist() == [5, 3, 3]
    assert out["median_days"].tolist() == [3.0, 3.0, 2.0]
    assert out["p90_days"].tolist() == pytest.approx([4.6, 4.6, 2.8])
    assert out["total_days"].tolist() == [15.0, 10.0, 6.0]
    assert out["share_of_cycle"].tolist() == pytest.approx([15 / 31, 10 / 31, 6 / 31])
    assert out["rank_share"].tolist() == [1, 2, 3]


def test_stage_times_by_team_use_the_entering_event_team(log):
    out = bn.stage_times(log, by="team").set_index(["team", "stage"])
    assert out.loc[("T2", "Lead Created"), "total_days"] == 4.0  # B3
    assert out.loc[("T2", "Qualification"), "total_days"] == 2.0  # B2's second visit, entered by C of T2
    assert out.loc[("T2", "Lead Created"), "share_of_cycle"] == pytest.approx(4 / 6)
    assert out.loc[("T1", "Qualification"), "share_of_cycle"] == pytest.approx(8 / 25)


def test_stage_times_by_missing_attribute_is_a_one_line_skip(log):
    with pytest.raises(MissingColumnError, match="segment"):
        bn.stage_times(log, by="segment")


def test_rework_splits_repeat_and_redo(log):
    out = bn.rework(log).set_index("stage")
    # B2 went back to Qualification (C after B: redo) and again to Proposal (B after B: repeat)
    assert out.loc["Qualification", ["visits", "revisits", "repeats", "redos"]].tolist() == [5, 1, 0, 1]
    assert out.loc["Proposal", ["visits", "revisits", "repeats", "redos"]].tolist() == [4, 1, 1, 0]
    assert out.loc["Proposal", "rework_rate"] == 0.25
    assert out.loc["Lead Created", "revisits"] == 0


def test_waiting_times_between_activities(log):
    out = bn.waiting_times(log).set_index(["source", "target"])
    # Lead Created -> Qualification: B1 2 d, B2 1 d, B3 4 d, B4 3 d
    assert out.loc[("Lead Created", "Qualification"), "frequency"] == 4
    assert out.loc[("Lead Created", "Qualification"), "wait_median_days"] == pytest.approx(2.5)
    assert out.loc[("Lead Created", "Qualification"), "wait_mean_days"] == pytest.approx(2.5)
    by_team = bn.waiting_times(log, by="team").set_index(["team", "source", "target"])
    assert by_team.loc[("T2", "Lead Created", "Qualification"), "frequency"] == 1


def test_handovers_between_reps_and_teams(log):
    out = bn.handovers(log).set_index(["source", "target"])
    # only B2 changes hands: B -> C at day 6 (2 d after B's proposal), C -> B at day 8
    assert sorted(out.index) == [("B", "C"), ("C", "B")]
    assert out.loc[("B", "C"), ["handovers", "delay_median_days"]].tolist() == [1, 2.0]
    teams = bn.handovers(log, by="team").set_index(["source", "target"])
    assert sorted(teams.index) == [("T1", "T2"), ("T2", "T1")]


def test_wip_per_stage_at_each_week_end(log):
    out = bn.wip(log).pivot(index="period_end", columns="stage", values="wip")
    # week ends: Jan 11 (day 6.99), Jan 18 (13.99), Jan 25 (20.99)
    assert len(out) == 3
    assert out["Lead Created"].tolist() == [1, 0, 0]  # B5 in Lead from day 5 to 10
    assert out["Qualification"].tolist() == [3, 1, 2]  # B1, B2 (2nd), B3 | B3 | B3, B4
    assert out["Proposal"].tolist() == [0, 1, 1]  # B5 from day 10


def test_stalled_deals_exceed_the_stage_p90(log):
    out = bn.stalled_deals(log, as_of=day(20), min_n=3)
    # p90: Qualification 4.6 d, Proposal 2.8 d; B3 in Qualification 16 d, B5 in Proposal 10 d, B4 2 d
    assert out["case_id"].tolist() == ["B3", "B5"]  # largest amount first
    assert out["days_stalled"].tolist() == pytest.approx([16 - 4.6, 10 - 2.8])
    assert out.loc[0, ["rep", "stage", "amount"]].tolist() == ["C", "Qualification", 200.0]


def test_stalled_deals_default_as_of_is_the_end_of_the_log(log):
    out = bn.stalled_deals(log, min_n=3).set_index("case_id")
    assert out.loc["B3", "days_in_stage"] == pytest.approx(14.0)  # last event at day 18
    assert out.loc["B5", "days_stalled"] == pytest.approx(8 - 2.8)


def test_stalled_deals_need_history():
    # with min_history above the number of finished visits no stage has a threshold
    assert bn.stalled_deals(make_log(), as_of=day(20), min_n=10).empty


def planted(n: int = 12, slow_team: str = "T1", slow_days: float = 9.0, start=D0) -> pd.DataFrame:
    """Two teams, n deals each; one team's Proposal takes ``slow_days`` more or less, the rest alike."""
    rows = []
    for team in ("T1", "T2"):
        for i in range(n):
            t = start + pd.Timedelta(days=i)
            steps = [("Lead Created", 0), ("Qualification", 1 + i % 3), ("Proposal", 3 + i % 4),
                     ("Closed Won", (slow_days if team == slow_team else 3) + i % 3)]
            for activity, gap in steps:
                t = t + pd.Timedelta(days=gap)
                rows.append({"case_id": f"{team}-{i:02d}", "activity": activity, "timestamp": t,
                             "rep": f"{team}-r{i % 2}", "team": team, "amount": 10.0})
    return pd.DataFrame(rows).sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)


def test_stage_excess_tests_team_against_rest():
    out = bn.stage_excess(planted(), by="team", progress=False).set_index(["team", "stage"])
    slow = out.loc[("T1", "Proposal")]
    # T1 proposals 9-11 d (median 10), T2 3-5 d (median 4)
    assert (slow["value"], slow["rest_value"], slow["n"]) == (10.0, 4.0, 12)
    assert slow["excess_days"] == 12 * 6.0 and slow["significant"]
    assert slow["ci_low"] > 0
    assert not out.loc[("T1", "Qualification"), "significant"]  # identical in both teams
    assert out.loc[("T1", "Qualification"), "diff"] == 0.0


def test_rank_bottlenecks_puts_the_slow_stage_first_for_its_team():
    out = bn.rank_bottlenecks(planted(), by="team", progress=False)
    first = out[out["rank"].eq(1)].set_index("team")
    assert first.loc["T1", "stage"] == "Proposal"
    assert not first.loc["T2", "significant"]
    assert (out.groupby("team")["rank"].apply(sorted) == pd.Series({"T1": [1, 2, 3], "T2": [1, 2, 3]})).all()


def test_stage_trend_against_the_previous_quarter():
    before = planted(slow_team="none", start=pd.Timestamp("2026-01-05", tz="UTC"))
    after = planted(slow_team="T1", start=pd.Timestamp("2026-04-06", tz="UTC"))
    after["case_id"] = "q2-" + after["case_id"]
    log = pd.concat([before, after], ignore_index=True).sort_values(["case_id", "timestamp"], kind="stable")
    out = bn.stage_trend(log.reset_index(drop=True), quarter="2026Q2", by="team").set_index(["team", "stage"])
    assert out.loc[("T1", "Proposal"), "change"] == 6.0  # median 10 d now, 4 d in Q1
    assert out.loc[("T1", "Proposal"), "significant"] and out.loc[("T1", "Proposal"), "rank_change"] == 1
    assert out.loc[("T2", "Proposal"), "change"] == 0.0
    ranked = bn.rank_bottlenecks(log.reset_index(drop=True), by="team", quarter="2026Q2", progress=False)
    assert ranked.set_index(["team", "stage"]).loc[("T1", "Proposal"), "rank_change"] == 1


def test_stage_excess_is_deterministic_for_a_seed():
    a = bn.stage_excess(planted(), by="team", seed=3, progress=False)
    b = bn.stage_excess(planted(), by="team", seed=3, progress=False)
    pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def demo(demo_data):

    return demo_data(7, "small")


def test_planted_bottleneck_ranks_first_for_its_team(demo):
    truth = demo.truth.bottleneck
    out = bn.rank_bottlenecks(demo.events, by="team", n_boot=200, progress=False)
    first = out[out["team"].eq(truth["team"]) & out["rank"].eq(1)].iloc[0]
    assert first["stage"] == truth["stage"]
    assert first["significant"] and first["ratio"] > 1


def test_stalled_deal_list_is_the_planted_stalled_deals(demo):
    out = bn.stalled_deals(demo.events, as_of=demo.as_of)
    assert set(demo.truth.stalled) <= set(out["case_id"])
    # the generator keeps every other open deal under 0.95 x its stage's p90, so nothing else is flagged
    assert set(out["case_id"]) == set(demo.truth.stalled)
    assert out["amount"].is_monotonic_decreasing


def test_stage_times_by_a_deal_attribute(log):
    seg = log.assign(segment=log["case_id"].map({"B1": "SMB", "B2": "SMB", "B3": "Ent", "B4": "Ent", "B5": "Ent"}))
    out = bn.stage_times(seg, by="segment").set_index(["segment", "stage"])
    # Ent: Lead B3 4 d, B4 3 d, B5 5 d; nothing else finished
    assert out.loc[("Ent", "Lead Created"), ["visits", "median_days", "share_of_cycle"]].tolist() == [3, 4.0, 1.0]
    assert out.loc[("SMB", "Qualification"), "total_days"] == 10.0  # B1 5 d, B2 3 d and 2 d


def test_wip_by_team(log):
    out = bn.wip(log, by="team")
    last = out[out["period_end"].eq(out["period_end"].max())].set_index(["team", "stage"])["wip"]
    # at the end of week 3: B3 (T2) and B4 (T1) in Qualification, B5 (T1) in Proposal
    assert last[("T1", "Qualification")] == 1 and last[("T2", "Qualification")] == 1
    assert last[("T1", "Proposal")] == 1 and last.sum() == 3
