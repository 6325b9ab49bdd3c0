"""Sales KPIs against values worked out by hand on a six-deal log."""

import numpy as np
import pandas as pd
import pytest

from workbench.references import B2B_CYCLE_TABLE, MONTH_DAYS
from workbench import kpis
from workbench.errors import WorkbenchError
from workbench.schema import MissingColumnError

# case, activity, day (2026), rep, team, amount, customer_type, lead_source
DEALS = {
    "D1": ("A", "T1", 100.0, "new", "web", [
        ("Lead Created", "01-01"), ("First Contact", "01-02"), ("Qualification", "01-05"),
        ("Discovery Meeting", "01-10"), ("Proposal", "01-20"), ("Closed Won", "02-01")]),
    "D2": ("B", "T1", 50.0, "existing", "referral", [
        ("Lead Created", "01-03"), ("First Contact", "01-03 12:00"), ("Qualification", "01-08"),
        ("Follow-up", "01-09"), ("Follow-up", "01-12"), ("Closed Lost", "01-15")]),
    "D3": ("C", "T2", 300.0, "new", "web", [
        ("Lead Created", "02-01"), ("First Contact", "02-03"), ("Qualification", "02-10"),
        ("Discovery Meeting", "02-20"), ("Proposal", "03-01"), ("Negotiation", "03-10"),
        ("Closed Won", "04-05")]),
    "D4": ("C", "T2", 80.0, "existing", "web", [
        ("Lead Created", "03-01"), ("First Contact", "03-05"), ("Qualification", "03-06")]),
    "D5": ("A", "T1", 40.0, "new", "referral", [
        ("Lead Created", "01-10"), ("First Contact", "01-11"), ("Follow-up", "01-20"),
        ("Closed Lost", "03-20")]),
    "D6": ("A", "T1", 120.0, "new", "web", [
        ("Lead Created", "03-15"), ("First Contact", "03-16"), ("Qualification", "03-20"),
        ("Discovery Meeting", "03-25"), ("Proposal", "04-01")]),
}


def make_log(deals=DEALS) -> pd.DataFrame:
    rows = []
    for case, (rep, team, amount, ctype, source, events) in deals.items():
        for activity, day in events:
            rows.append({"case_id": case, "activity": activity,
                         "timestamp": pd.Timestamp(f"2026-{day}", tz="UTC"), "rep": rep, "team": team,
                         "amount": amount, "customer_type": ctype, "lead_source": source})
    log = pd.DataFrame(rows).sort_values(["case_id", "timestamp"], kind="stable")
    return log.reset_index(drop=True)


QUOTAS = pd.DataFrame({
    "rep": ["A", "B", "C", "A", "C"],
    "team": ["T1", "T1", "T2", "T1", "T2"],
    "quarter": ["2026Q1", "2026Q1", "2026Q1", "2026Q2", "2026Q2"],
    "quota": [200.0, 100.0, 100.0, 100.0, 400.0],
})


@pytest.fixture(scope="module")
def log():
    return make_log()


def test_win_rate_per_quarter_counts_deals_by_close_date(log):
    out = kpis.win_rate(log).set_index("period")
    # Q1 closes: D1 won (02-01), D2 lost (01-15), D5 lost (03-20); Q2: D3 won (04-05).
    assert out.loc["2026Q1", ["won", "lost", "closed"]].tolist() == [1, 2, 3]
    assert out.loc["2026Q1", "win_rate"] == pytest.approx(1 / 3)
    assert out.loc["2026Q2", "win_rate"] == 1.0
    assert list(out.index) == ["2026Q1", "2026Q2"]


def test_win_rate_split_by_team_pooled(log):
    out = kpis.win_rate(log, by="team", freq=None).set_index("team")
    assert out.loc["T1", "win_rate"] == pytest.approx(1 / 3)  # D1 won; D2, D5 lost
    assert out.loc["T2", ["won", "lost"]].tolist() == [1, 0]


def test_sales_volume_and_deal_size(log):
    out = kpis.sales_volume(log).set_index("period")
    assert out.loc["2026Q1"].tolist() == [1, 100.0, 100.0, 100.0]
    assert out.loc["2026Q2", "volume"] == 300.0
    pooled = kpis.sales_volume(log, freq=None)
    assert pooled.iloc[0].tolist() == [2, 400.0, 200.0, 200.0]


def test_sales_volume_by_lead_source(log):
    out = kpis.sales_volume(log, by="lead_source", freq=None).set_index("lead_source")
    assert list(out.index) == ["web"] and out.loc["web", "volume"] == 400.0


def test_revenue_growth_quarter_on_quarter(log):
    out = kpis.revenue_growth(log).set_index("quarter")
    assert out.loc["2026Q2", "growth_qoq"] == pytest.approx(2.0)  # 300 / 100 - 1
    assert np.isnan(out.loc["2026Q1", "growth_qoq"]) and out["growth_yoy"].isna().all()


def test_revenue_growth_year_on_year_with_gap_quarters():
    deals = {
        "Y1": ("A", "T1", 100.0, "new", "web", [("Lead Created", "01-01"), ("Closed Won", "01-10")]),
        "Y2": ("A", "T1", 150.0, "new", "web", [("Lead Created", "12-01"), ("Closed Won", "12-10")]),
    }
    log = make_log(deals)
    later = make_log({"Y3": ("A", "T1", 250.0, "new", "web",
                              [("Lead Created", "01-02"), ("Closed Won", "01-20")])})
    later["timestamp"] += pd.DateOffset(years=1)
    out = kpis.revenue_growth(pd.concat([log, later], ignore_index=True)).set_index("quarter")
    assert out["volume"].tolist() == [100.0, 0.0, 0.0, 150.0, 250.0]
    assert out.loc["2027Q1", "growth_yoy"] == pytest.approx(1.5)
    assert out.loc["2027Q1", "growth_qoq"] == pytest.approx(250 / 150 - 1)
    assert np.isnan(out.loc["2026Q4", "growth_qoq"])  # from a quarter with no wins


def test_cycle_bucket_edges():
    m = MONTH_DAYS
    days = pd.Series([0.0, m - 0.01, m, 3 * m - 0.01, 3 * m, 6 * m, 9 * m, 12 * m, 40 * m])
    assert kpis.cycle_bucket(days).astype(str).tolist() == [
        "< 1 month", "< 1 month", "1-3 months", "1-3 months", "4-6 months", "7-9 months",
        "10-12 months", "> 12 months", "> 12 months"]


def test_seed_cycle_table_is_the_seed():
    # seed 003, l.66-72: each column is a distribution (sums to 100.0% up to the seed's rounding)
    assert B2B_CYCLE_TABLE["new"].sum() == pytest.approx(1.0, abs=1e-9)
    assert B2B_CYCLE_TABLE["existing"].sum() == pytest.approx(1.0, abs=1e-9)
    assert B2B_CYCLE_TABLE.loc[2, ["new", "existing"]].tolist() == [0.282, 0.239]


def test_cycle_length_side_by_side_with_seed(log):
    out = kpis.cycle_length(log).set_index(["customer_type", "bucket"])
    # new: D1 31 d, D3 63 d, D5 69 d -> all '1-3 months'; existing: D2 12 d -> '< 1 month'
    assert out.loc[("new", "1-3 months"), "deals"] == 3
    assert out.loc[("new", "1-3 months"), "share"] == 1.0
    assert out.loc[("new", "1-3 months"), "benchmark_share"] == pytest.approx(0.203)
    assert out.loc[("new", "1-3 months"), "difference"] == pytest.approx(1 - 0.203)
    assert out.loc[("existing", "< 1 month"), "share"] == 1.0
    assert out.loc[("existing", "> 12 months"), "deals"] == 0
    assert len(out) == 12


def test_cycle_length_without_customer_type_is_a_one_line_skip(log):
    with pytest.raises(MissingColumnError, match="customer_type"):
        kpis.cycle_length(log.drop(columns="customer_type"))


def test_funnel_counts_deals_that_reached_a_stage_or_later(log):
    out = kpis.funnel(log).set_index("stage")
    # furthest: D1 won, D2 Qualification, D3 won, D4 Qualification, D5 First Contact, D6 Proposal
    assert out["reached"].tolist() == [6, 6, 5, 3, 3, 2]
    assert list(out.index) == ["Lead Created", "First Contact", "Qualification", "Discovery Meeting",
                               "Proposal", "Won"]
    assert out["conversion"].iloc[1:].tolist() == pytest.approx([1.0, 5 / 6, 3 / 5, 1.0, 2 / 3])
    assert out.loc["Won", "share_of_first"] == pytest.approx(2 / 6)


def test_funnel_rejects_unknown_stage(log):
    with pytest.raises(WorkbenchError, match="not a stage"):
        kpis.funnel(log, stages=["Demo"])


def test_cohort_conversion_by_month_of_creation(log):
    out = kpis.cohort_conversion(log).set_index("cohort")
    assert out["deals"].tolist() == [3, 1, 2]
    jan = out.loc["2026-01"]  # D1, D2, D5
    assert jan["Qualification"] == pytest.approx(2 / 3)
    assert jan["Proposal"] == pytest.approx(1 / 3)
    assert [jan["won"], jan["lost"], jan["open"]] == pytest.approx([1 / 3, 2 / 3, 0])
    mar = out.loc["2026-03"]  # D4 (Qualification, open), D6 (Proposal, open)
    assert mar["Discovery Meeting"] == 0.5 and mar["open"] == 1.0


def test_pipeline_velocity(log):
    out = kpis.pipeline_velocity(log, as_of="2026-04-10").iloc[0]
    # open qualified at 04-10: D4 (Qualification), D6 (Proposal); closed before: D1, D3 won (31 d, 63 d;
    # 100, 300), D2, D5 lost -> 2 * 0.5 * 200 / 47
    assert out["open_qualified"] == 2
    assert out["win_rate"] == 0.5 and out["mean_deal_size"] == 200.0
    assert out["mean_cycle_days"] == pytest.approx(47.0)
    assert out["velocity_per_day"] == pytest.approx(2 * 0.5 * 200 / 47)


def test_pipeline_velocity_as_of_in_the_past_sees_only_earlier_closes(log):
    out = kpis.pipeline_velocity(log, as_of="2026-02-15").iloc[0]
    # closed before 02-15: D1 won (31 d), D2 lost; open qualified: D3 (Discovery) only
    assert out["open_qualified"] == 1 and out["win_rate"] == 0.5
    assert out["velocity_per_day"] == pytest.approx(1 * 0.5 * 100 / 31)


def test_attainment_per_rep_and_quarter(log):
    out = kpis.attainment(log, QUOTAS).set_index(["quarter", "rep"])
    assert out.loc[("2026Q1", "A"), "bookings"] == 100.0
    assert out.loc[("2026Q1", "A"), "attainment"] == 0.5
    assert out.loc[("2026Q1", "B"), ["bookings", "deals_won"]].tolist() == [0.0, 0]
    assert out.loc[("2026Q2", "C"), "attainment"] == pytest.approx(300 / 400)
    assert not out["at_quota"].any()


def test_gini_closed_forms():
    assert kpis.gini([5, 5, 5, 5]) == 0.0
    assert kpis.gini([0, 0, 0, 10]) == pytest.approx(3 / 4)  # (n-1)/n
    assert kpis.gini([40, 50, 60, 250]) == pytest.approx(1280 / (2 * 16 * 100))
    assert np.isnan(kpis.gini([0, 0]))


def test_team_attainment_shows_the_99_48_gap_and_leave_one_out():
    reps = pd.DataFrame({"rep": list("PQRS"), "team": "T", "quarter": "2026Q1", "quota": 100.0,
                         "bookings": [250.0, 60.0, 50.0, 40.0]})
    reps["attainment"] = reps["bookings"] / reps["quota"]
    reps["at_quota"] = reps["attainment"] >= 1
    out = kpis.team_attainment(reps).iloc[0]
    assert out["attainment"] == 1.0 and out["makes_quota"]
    assert out["share_reps_at_quota"] == 0.25
    assert out["top_rep"] == "P" and out["top_k_share"] == pytest.approx(0.625)
    assert out["attainment_without_top"] == pytest.approx(150 / 400)
    assert not out["makes_quota_without_top"]
    assert out["gini"] == pytest.approx(0.4)
    assert kpis.team_attainment(reps, k=2).iloc[0]["top_k_share"] == pytest.approx(310 / 400)


def test_attainment_gap_per_quarter(log):
    gap = kpis.attainment_gap(kpis.attainment(log, QUOTAS)).set_index("quarter")
    # Q1: T1 100/300, T2 0/100; reps A 0.5, B 0, C 0
    assert gap.loc["2026Q1", "mean_team_attainment"] == pytest.approx((1 / 3 + 0) / 2)
    assert gap.loc["2026Q1", "share_reps_at_quota"] == 0.0
    assert gap.loc["2026Q1", "benchmark_share_reps_at_quota"] == 0.48


def test_pipeline_coverage_total_and_late_stage(log):
    out = kpis.pipeline_coverage(log, QUOTAS, quarter="2026Q2", as_of="2026-04-10").set_index("team")
    # T1: quota 100, nothing booked, open D6 120 in Proposal (late); T2: quota 400, D3 300 booked, D4 80 open
    assert out.loc["T1", ["remaining_quota", "pipeline", "late_pipeline"]].tolist() == [100.0, 120.0, 120.0]
    assert out.loc["T1", "coverage"] == pytest.approx(1.2)
    assert out.loc["T2", ["booked", "remaining_quota"]].tolist() == [300.0, 100.0]
    assert out.loc["T2", ["coverage", "late_coverage"]].tolist() == pytest.approx([0.8, 0.0])
    assert out.loc["total", ["coverage", "late_coverage"]].tolist() == pytest.approx([1.0, 0.6])


def test_pipeline_coverage_counts_only_deals_due_by_quarter_end(log):
    dated = log.assign(close_date=pd.Timestamp("2026-06-30", tz="UTC"))
    dated.loc[dated["case_id"].eq("D6"), "close_date"] = pd.Timestamp("2026-08-01", tz="UTC")
    out = kpis.pipeline_coverage(dated, QUOTAS, quarter="2026Q2", as_of="2026-04-10").set_index("team")
    assert out.loc["T1", "pipeline"] == 0.0 and out.loc["T2", "pipeline"] == 80.0


def test_quota_table_without_quota_column_is_a_clear_error(log):
    with pytest.raises(WorkbenchError, match="no column for 'quota' in this quotas table"):
        kpis.attainment(log, QUOTAS.drop(columns="quota"))


def test_lead_response_time_by_lead_source(log):
    out = kpis.lead_response_time(log, by="lead_source").set_index("lead_source")
    # web: D1 24 h, D3 48 h, D4 96 h, D6 24 h; referral: D2 12 h, D5 24 h
    assert out.loc["web", ["deals", "median_hours", "mean_hours"]].tolist() == [4, 36.0, 48.0]
    assert out.loc["referral", ["median_hours", "mean_hours"]].tolist() == [18.0, 18.0]
    assert out["without_contact"].sum() == 0


def test_followup_persistence_won_vs_lost(log):
    out = kpis.followup_persistence(log).set_index("outcome")
    # lost: D2 two follow-ups after contact, D5 one; won: none
    assert out.loc["lost", ["deals", "mean_followups", "median_followups"]].tolist() == [2, 1.5, 1.5]
    assert out.loc["won", ["mean_followups", "share_without_followup"]].tolist() == [0.0, 1.0]


def stage_history() -> pd.DataFrame:
    t = pd.Timestamp("2026-01-01", tz="UTC")
    d = pd.Timedelta(days=1)
    return pd.DataFrame({
        "case_id": ["S1"] * 4 + ["S2"],
        "activity": ["Qualification", "Proposal", "Proposal", "Negotiation", "Qualification"],
        "timestamp": [t, t + d, t + 2 * d, t + 3 * d, t],
        "amount": [100.0, 120.0, 120.0, 90.0, 50.0],
        "close_date": pd.to_datetime(["2026-03-31", "2026-03-31", "2026-04-30", "2026-04-15", None], utc=True),
    })


def test_close_date_slips_per_deal():
    out = kpis.close_date_slips(stage_history()).set_index("case_id")
    assert list(out.index) == ["S1"]  # S2 has no close date
    assert out.loc["S1", ["changes", "slips", "pull_ins"]].tolist() == [2, 1, 1]
    assert out.loc["S1", "slipped_days"] == 15.0


def test_amount_changes_per_deal():
    out = kpis.amount_changes(stage_history()).set_index("case_id")
    assert out.loc["S1", ["changes", "increases", "decreases"]].tolist() == [2, 1, 1]
    assert out.loc["S1", ["change", "change_pct"]].tolist() == pytest.approx([-10.0, -0.1])
    assert out.loc["S2", "changes"] == 0


def test_close_date_slips_need_a_close_date_column(log):
    with pytest.raises(MissingColumnError, match="close_date"):
        kpis.close_date_slips(log)


def test_a_log_that_is_not_a_dataframe_is_a_clear_error():
    with pytest.raises(WorkbenchError, match="DataFrame"):
        kpis.pipeline_velocity([1, 2, 3])


def test_a_log_without_timestamps_names_the_column(log):
    with pytest.raises(WorkbenchError, match="timestamp"):
        kpis.win_rate(log.drop(columns="timestamp"))
    with pytest.raises(WorkbenchError, match="timestamp"):
        kpis.amount_changes(log.drop(columns="timestamp"))


def test_followup_difference_won_minus_lost(log):
    out = kpis.followup_difference(log)
    # won: 0, 0 follow-ups; lost: 2, 1 -> medians 0 and 1.5
    assert out[["median_a", "median_b", "diff"]].tolist() == [0.0, 1.5, -1.5]
    assert out["n_a"] == 2 and out["n_b"] == 2


def test_pipeline_velocity_by_team(log):
    out = kpis.pipeline_velocity(log, as_of="2026-04-10", by="team").set_index("team")
    # T1: D1 won (31 d, 100), D2 and D5 lost, D6 open; T2: D3 won (63 d, 300), D4 open
    assert out.loc["T1", "velocity_per_day"] == pytest.approx(1 * (1 / 3) * 100 / 31)
    assert out.loc["T2", "velocity_per_day"] == pytest.approx(1 * 1.0 * 300 / 63)


def test_pipeline_coverage_by_rep_and_pooled(log):
    by_rep = kpis.pipeline_coverage(log, QUOTAS, quarter="2026Q2", as_of="2026-04-10", by="rep").set_index("rep")
    assert by_rep.loc["A", ["quota", "pipeline", "coverage"]].tolist() == pytest.approx([100.0, 120.0, 1.2])
    assert by_rep.loc["C", ["booked", "pipeline"]].tolist() == [300.0, 80.0]
    pooled = kpis.pipeline_coverage(log, QUOTAS, quarter="2026Q2", as_of="2026-04-10", by=None).iloc[0]
    assert pooled[["quota", "remaining_quota", "coverage", "late_coverage"]].tolist() == pytest.approx(
        [500.0, 200.0, 1.0, 0.6])


def test_win_rate_and_volume_agree_with_the_engine_on_demo_data(demo_data):
    from workbench import engine

    ev = demo_data(3, "tiny").events
    ours = kpis.win_rate(ev).set_index("period")
    theirs = engine.kpis_by_period(ev).set_index("period")
    theirs = theirs[theirs["won"] + theirs["lost"] > 0]
    assert ours["won"].tolist() == theirs["won"].tolist() and ours["lost"].tolist() == theirs["lost"].tolist()
    assert ours["win_rate"].to_numpy() == pytest.approx(theirs["win_rate"].to_numpy())
    volume = kpis.sales_volume(ev).set_index("period")["volume"]
    assert volume.to_numpy() == pytest.approx(theirs.loc[volume.index, "won_amount"].to_numpy())


def test_a_log_without_wins_has_no_volume_and_no_growth(log):
    lost = log[~log["case_id"].isin(["D1", "D3"])]
    assert kpis.sales_volume(lost).empty and kpis.revenue_growth(lost).empty
    assert kpis.win_rate(lost)["win_rate"].tolist() == [0.0]


def test_pipeline_coverage_takes_teams_from_the_quota_table(log):
    out = kpis.pipeline_coverage(log.drop(columns="team"), QUOTAS, quarter="2026Q2", as_of="2026-04-10")
    assert out.set_index("team").loc["T1", "pipeline"] == 120.0


def test_pareto_share_closed_forms():
    assert kpis.pareto_share([80, 5, 5, 5, 5]) == pytest.approx(1 / 5)  # one rep of five books 80%
    assert kpis.pareto_share([25, 25, 25, 25]) == pytest.approx(4 / 4)  # 80% needs 4 equal reps (3 give 75%)
    assert np.isnan(kpis.pareto_share([0, 0]))


def test_concentration_across_all_reps_per_quarter():
    reps = pd.DataFrame({"rep": list("PQRS") * 2, "quarter": ["2026Q1"] * 4 + ["2026Q2"] * 4,
                         "bookings": [250.0, 60.0, 50.0, 40.0, 10.0, 10.0, 10.0, 10.0]})
    out = kpis.concentration(reps, k=2).set_index("quarter")
    assert out.loc["2026Q1", ["reps", "bookings", "top_k_share", "gini"]].tolist() == pytest.approx(
        [4, 400.0, 310 / 400, 0.4])
    assert out.loc["2026Q1", "pareto_share"] == pytest.approx(3 / 4)  # 250 + 60 = 77.5% < 80%
    assert out.loc["2026Q2", ["top_k_share", "gini"]].tolist() == pytest.approx([0.5, 0.0])


def test_pipeline_movement_adds_up_on_a_hand_stage_history():
    from workbench.kpis import pipeline_movement

    rows = [  # case, stage, time, amount, expected close date
        ("A", "Prospecting", "2026-01-05", 100.0, "2026-03-01"),
        ("A", "Closed Won", "2026-02-03", 100.0, "2026-02-03"),         # won in the week
        ("B", "Prospecting", "2026-01-06", 200.0, "2026-03-10"),
        ("B", "Closed Lost", "2026-02-04", 200.0, "2026-02-04"),        # lost in the week
        ("C", "Prospecting", "2026-01-07", 300.0, "2026-03-15"),
        ("C", "Qualification", "2026-02-05", 300.0, "2026-05-15"),      # pushed to next quarter
        ("D", "Prospecting", "2026-01-08", 400.0, "2026-04-20"),
        ("D", "Qualification", "2026-02-06", 400.0, "2026-03-20"),      # pulled in
        ("E", "Prospecting", "2026-02-02", 500.0, "2026-03-25"),        # new in the week
        ("F", "Prospecting", "2026-01-09", 100.0, "2026-03-05"),
        ("F", "Qualification", "2026-02-07", 150.0, "2026-03-05"),      # amount up 50
        ("G", "Prospecting", "2026-01-10", 70.0, "2026-03-06"),         # untouched
    ]
    log = pd.DataFrame(rows, columns=["case_id", "activity", "timestamp", "amount", "close_date"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    log["close_date"] = pd.to_datetime(log["close_date"], utc=True)
    move = pipeline_movement(log, quarter="2026Q1", start="2026-02-01", as_of="2026-02-08",
                             profile="salesforce").set_index("step")
    assert move["deals"].to_dict() == {"pipeline at start": 5, "new deals": 1, "pulled in": 1, "amount changes": 1,
                                       "won": 1, "lost": 1, "pushed out": 1, "pipeline now": 4}
    assert move["amount"].to_dict() == {"pipeline at start": 770.0, "new deals": 500.0, "pulled in": 400.0,
                                        "amount changes": 50.0, "won": -100.0, "lost": -200.0,
                                        "pushed out": -300.0, "pipeline now": 1120.0}
    assert move["amount"].iloc[:-1].sum() == move["amount"].iloc[-1]
