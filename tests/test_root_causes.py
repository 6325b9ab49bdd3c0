"""Root causes: real differences are found with the right sign and size, noise is not a finding."""

import numpy as np
import pandas as pd
import pytest

from workbench import root_causes as rc
from workbench.schema import MissingColumnError

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def make_log() -> pd.DataFrame:
    """80 closed deals: web wins 30 of 40, referral 10 of 40; products X / Y win 20 of 40 each.

    Qualification takes 2-4 days for web leads (median 3), 6-8 for referrals (median 7).
    """
    rows = []
    for source, wins, qual in (("web", 30, 2), ("referral", 10, 6)):
        for i in range(40):
            t = T0 + pd.Timedelta(days=i)
            steps = [("Lead Created", 0), ("Qualification", 1), ("Proposal", qual + i % 3),
                     ("Closed Won" if i < wins else "Closed Lost", 5)]
            for activity, gap in steps:
                t = t + pd.Timedelta(days=gap)
                rows.append({"case_id": f"{source}-{i:02d}", "activity": activity, "timestamp": t,
                             "rep": f"r{i % 4}", "amount": 100.0 * (1 + i % 4),
                             "lead_source": source, "product": "X" if i % 2 == 0 else "Y"})
    return pd.DataFrame(rows).sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def log():
    return make_log()


def test_win_rate_drivers_find_the_lead_source_and_not_the_product(log):
    out = rc.win_rate_drivers(log, attributes=["lead_source", "product"]).set_index(["attribute", "group"])
    web = out.loc[("lead_source", "web")]
    assert web["value"] == 0.75 and web["rest_value"] == 0.25 and web["diff"] == 0.5
    assert web["n"] == 40 and web["rest_n"] == 40
    assert web["ci_low"] > 0 and web["significant"]
    assert out.loc[("lead_source", "referral"), "diff"] == -0.5
    x = out.loc[("product", "X")]  # web even i < 30: 15 won, referral even i < 10: 5 won -> 20 / 40
    assert x["value"] == 0.5 and x["diff"] == 0.0 and not x["significant"]
    assert x["p_value"] == pytest.approx(1.0)


def test_stage_time_drivers_find_the_slow_qualification(log):
    out = rc.stage_time_drivers(log, attributes=["lead_source", "product"], stages=["Qualification"],
                                progress=False).set_index(["attribute", "group"])
    ref = out.loc[("lead_source", "referral")]
    assert ref["metric"] == "days in Qualification"
    assert ref["value"] == 7.0 and ref["rest_value"] == 3.0 and ref["diff"] == 4.0
    assert ref["significant"] and ref["ci_low"] > 0
    assert not out.loc[("product", "X"), "significant"]


def test_equal_stage_times_are_not_a_finding(log):
    out = rc.stage_time_drivers(log, attributes=["lead_source"], stages=["Lead Created"], progress=False)
    assert (out["diff"] == 0).all() and not out["significant"].any()


def test_small_groups_are_not_compared(log):
    out = rc.win_rate_drivers(log, attributes=["lead_source"], min_n=41)
    assert out.empty


def test_default_attributes_include_rep_and_amount_band(log):
    out = rc.win_rate_drivers(log)
    assert set(out["attribute"]) == {"lead_source", "product", "rep", "amount_band"}
    # noise: neither rep nor amount band (both i % 4) is a finding at this size
    assert set(rc.findings(out)["attribute"]) == {"lead_source"}


def test_root_causes_correct_all_tests_together(log):
    out = rc.root_causes(log, attributes=["lead_source", "product"], stages=["Qualification"], progress=False)
    assert len(out) == 8  # 2 win-rate + 2 stage-time comparisons per attribute
    found = rc.findings(out)
    assert set(zip(found["metric"], found["group"])) == {
        ("win_rate", "web"), ("win_rate", "referral"),
        ("days in Qualification", "web"), ("days in Qualification", "referral")}
    assert (found["p_adjusted"] >= found["p_value"]).all()


def test_missing_attribute_is_a_one_line_skip(log):
    with pytest.raises(MissingColumnError, match="segment"):
        rc.win_rate_drivers(log, attributes=["segment"])


def test_amount_bands_are_equal_count_quantile_bands():
    bands = rc.amount_bands(pd.Series(np.arange(100.0)))
    assert bands.value_counts().sort_index().tolist() == [25, 25, 25, 25]
    assert bands.iloc[0] == "1: 0-25" and bands.iloc[-1] == "4: 74-99"
    assert rc.amount_bands(pd.Series([5.0] * 10)).isna().all()


def test_stage_time_drivers_are_deterministic_for_a_seed(log):
    kw = dict(attributes=["lead_source"], stages=["Qualification"], progress=False, seed=5)
    pd.testing.assert_frame_equal(rc.stage_time_drivers(log, **kw), rc.stage_time_drivers(log, **kw))


def confounded_log() -> pd.DataFrame:
    """Team T1 sells mostly to new customers, T2 mostly to existing; only customer type matters.

    Within every team x type cell new customers win 20 % and spend 10-12 days in
    Qualification, existing customers win 60 % and spend 2-4 days.
    """
    rows = []
    cells = [("T1", "new", 30, 6), ("T1", "existing", 10, 6), ("T2", "new", 10, 2), ("T2", "existing", 30, 18)]
    for team, ctype, n, wins in cells:
        for i in range(n):
            t = T0 + pd.Timedelta(days=i)
            qual = (10 if ctype == "new" else 2) + i % 3
            steps = [("Lead Created", 0), ("Qualification", 1), ("Proposal", qual),
                     ("Closed Won" if i < wins else "Closed Lost", 2)]
            for activity, gap in steps:
                t = t + pd.Timedelta(days=gap)
                rows.append({"case_id": f"{team}-{ctype}-{i:02d}", "activity": activity, "timestamp": t,
                             "team": team, "customer_type": ctype})
    return pd.DataFrame(rows).sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)


def test_adjusted_drivers_separate_team_from_customer_type():
    log = confounded_log()
    raw = rc.stage_time_drivers(log, attributes=["team"], stages=["Qualification"], progress=False)
    assert raw.set_index("group").loc["T1", "significant"]  # one-vs-rest blames the team
    out = rc.adjusted_drivers(log, attributes=["team", "customer_type"], stages=["Qualification"],
                              progress=False).set_index(["metric", "attribute"])
    win_team = out.loc[("win_rate (adjusted log odds)", "team")]
    win_type = out.loc[("win_rate (adjusted log odds)", "customer_type")]
    # equal win rates within each cell: no team effect; odds ratio new / existing = (0.2/0.8) / (0.6/0.4) = 1/6
    assert win_team["diff"] == pytest.approx(0.0, abs=1e-6) and not win_team["significant"]
    assert win_type["group"] == "new" and win_type["reference"] == "existing"  # 40 each: tie -> sort order
    assert win_type["ratio"] == pytest.approx(1 / 6, rel=1e-6) and win_type["significant"]
    days_team = out.loc[("days in Qualification (adjusted)", "team")]
    days_type = out.loc[("days in Qualification (adjusted)", "customer_type")]
    assert abs(days_team["diff"]) < 1.0 and not days_team["significant"]
    assert days_type["diff"] == pytest.approx(8.0, abs=0.5) and days_type["significant"]


def test_adjusted_drivers_drop_an_attribute_another_determines():
    log = confounded_log()
    log["region"] = log["team"].map({"T1": "East", "T2": "West"})
    out = rc.adjusted_drivers(log, attributes=["team", "region", "customer_type"], stages=[], progress=False)
    assert set(out["attribute"]) == {"team", "customer_type"}


def test_adjusted_drivers_pool_an_attribute_beyond_its_most_common_values(monkeypatch):
    # 8 teams of 12-26 deals (team t0 the largest, the reference); with room for 3 values beside the
    # reference, the 3 next largest keep their own effect and the 4 smallest are pooled, with a note.
    monkeypatch.setattr(rc, "MAX_LEVELS", 3)
    rows = []
    for k in range(8):
        for i in range(26 - 2 * k):
            t = T0 + pd.Timedelta(days=i)
            for activity, gap in [("Lead Created", 0), ("Qualification", 1), ("Proposal", 2 + i % 4),
                                  ("Closed Won" if i % 3 else "Closed Lost", 2)]:
                t = t + pd.Timedelta(days=gap)
                rows.append({"case_id": f"t{k}-{i:02d}", "activity": activity, "timestamp": t, "team": f"t{k}",
                             "customer_type": ["new", "existing"][(i + k) % 2]})
    log = pd.DataFrame(rows)
    out = rc.adjusted_drivers(log, attributes=["team", "customer_type"], stages=["Qualification"], progress=False)
    win = out[(out["metric"] == "win_rate (adjusted log odds)") & (out["attribute"] == "team")]
    assert list(win["group"]) == ["(other)", "t1", "t2", "t3"] and set(win["reference"]) == {"t0"}
    other = win.set_index("group").loc["(other)"]
    assert other["n"] == 18 + 16 + 14 + 12  # teams t4..t7
    assert out.attrs["notes"] == ["team: only its 3 most common values get an adjusted effect; the 4 rarer ones "
                                  "are pooled as '(other)'."]
