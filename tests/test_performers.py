"""Top performers vs the rest: ranking by hand, comparisons, and the demo's planted difference."""

import pandas as pd
import pytest

from workbench import performers as pf
from workbench.errors import WorkbenchError
from workbench.schema import MissingColumnError

T0 = pd.Timestamp("2026-01-01", tz="UTC")
WIN = ["Lead Created", "Qualification", "Proposal", "Negotiation", "Closed Won"]
LOSE = ["Lead Created", "Qualification", "Closed Lost"]
# rep: list of (path, amount); ann books 300, bob 150, cy 0 (and cy has only 2 closed deals)
REPS = {
    "ann": [(WIN, 100.0), (WIN, 200.0), (LOSE, 50.0)],
    "bob": [(WIN, 150.0), (LOSE, 10.0), (LOSE, 10.0), (LOSE, 10.0)],
    "cy": [(LOSE, 10.0), (LOSE, 10.0), (["Lead Created"], 5.0)],
}


def make_log() -> pd.DataFrame:
    rows, n = [], 0
    for rep, deals in REPS.items():
        for path, amount in deals:
            for i, a in enumerate(path):
                # ann's stages take 1 day each, the others' 3 days
                rows.append({"case_id": f"{rep}{n}", "activity": a, "rep": rep, "amount": amount,
                             "timestamp": T0 + pd.Timedelta(days=(1 if rep == "ann" else 3) * i + n)})
            n += 1
    return pd.DataFrame(rows)


def test_rank_by_hand():
    r = pf.rank_reps(make_log(), min_n=3).set_index("rep")
    assert r.loc["ann", "won_amount"] == 300.0 and r.loc["bob", "won_amount"] == 150.0
    assert r.loc["ann", "closed"] == 3 and r.loc["cy", "closed"] == 2  # the open deal does not count
    assert r.loc["bob", "win_rate"] == 0.25
    assert (r.loc["ann", "rank"], r.loc["bob", "rank"]) == (1.0, 2.0) and pd.isna(r.loc["cy", "rank"])
    by_rate = pf.rank_reps(make_log(), metric="win_rate", min_n=1)
    assert list(by_rate["rep"]) == ["ann", "bob", "cy"]
    assert pf.top_performers(make_log(), share=0.2, min_n=1) == ["ann"]  # ceil(0.2 * 3) = 1
    assert pf.top_performers(make_log(), share=0.5, min_n=1) == ["ann", "bob"]


def test_comparison_by_hand():
    c = pf.compare_performers(make_log(), top=["ann"], n_boot=200)
    row = c.set_index(["aspect", "item"])
    # ann: 2 of 3 closed deals reach Negotiation; the rest: 1 of 6
    assert row.loc[("activity", "Negotiation"), "value"] == pytest.approx(2 / 3)
    assert row.loc[("activity", "Negotiation"), "rest_value"] == pytest.approx(1 / 6)
    assert (row.loc[("activity", "Negotiation"), "n"], row.loc[("activity", "Negotiation"), "rest_n"]) == (3, 6)
    # stage time: ann 1 day per stage, the rest 3 days
    assert row.loc[("stage_time", "Qualification"), "value"] == 1.0
    assert row.loc[("stage_time", "Qualification"), "rest_value"] == 3.0
    assert row.loc[("variant", " → ".join(LOSE)), "rest_value"] == pytest.approx(5 / 6)
    assert {"p_adjusted", "significant"} <= set(c.columns)
    assert "Research" not in set(row.loc["stage_time"].index)  # nobody's stage: no row
    # nine deals prove nothing about shares; 3 vs 6 visits, all 1 day against all 3 days, do
    found = pf.performer_findings(c)
    assert set(zip(found["aspect"], found["item"])) == {("stage_time", "Lead Created"),
                                                       ("stage_time", "Qualification")}


def test_errors_and_missing_columns():
    log = make_log()
    with pytest.raises(MissingColumnError, match="'amount'"):
        pf.rank_reps(log.drop(columns="amount"))
    assert list(pf.rank_reps(log.drop(columns="amount"), metric="won_deals", min_n=1)["rep"])[0] == "ann"
    with pytest.raises(MissingColumnError, match="'rep'"):
        pf.compare_performers(log.drop(columns="rep"))
    with pytest.raises(WorkbenchError, match="metric"):
        pf.rank_reps(log, metric="smiles")
    with pytest.raises(WorkbenchError, match="all or none"):
        pf.compare_performers(log, top=["nobody"])
    with pytest.raises(WorkbenchError, match="can be ranked"):
        pf.top_performers(log, min_n=50)


def test_the_demos_process_following_reps_differ_significantly(demo_data):
    demo = demo_data(7, "small")
    c = pf.compare_performers(demo.events, top=demo.truth.conforming_reps, n_boot=300)
    found = pf.performer_findings(c).set_index(["aspect", "item"])
    # conforming reps are planted to win about 35 % against about 20 %
    assert ("activity", "Closed Won") in found.index
    assert found.loc[("activity", "Closed Won"), "diff"] > 0
    assert found["significant"].all() and (found["p_adjusted"] < 0.05).all()
