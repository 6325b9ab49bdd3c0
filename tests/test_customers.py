"""Customer KPIs against values worked out by hand on a small log (see the docstring of ``log``)."""

import math

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.io import read_costs
from workbench.kpis import customers

PRODUCTS = pd.DataFrame({"product": ["P1", "P2", "Q1"], "series": ["Core", "Core", "Add"], "tier": [1, 2, 1]})


@pytest.fixture
def log() -> pd.DataFrame:
    """Seven deals won by three accounts over 2026, one lost, one won without an account.

    | deal | account | rep (team) | product | amount | won | kind |
    |---|---|---|---|---|---|---|
    | d1 | A | r1 (East) | P1 | 100 | 2026-01-10 | new business |
    | d2 | B | r2 (West) | P1 | 200 | 2026-02-10 | new business |
    | d3 | A | r1 (East) | P1 | 150 | 2026-04-10 | upsell: larger, same family |
    | d4 | C | r2 (West) | Q1 | 50 | 2026-05-10 | new business |
    | d5 | A | r1 (East) | Q1 | 300 | 2026-07-10 | cross-sell: a new family, and larger too |
    | d6 | B | r2 (West) | P2 | 100 | 2026-08-10 | upsell: a higher tier (smaller); B churned in Q2 and returns |
    | d7 | C | r2 (West) | Q1 | 40 | 2026-10-10 | repeat |
    | d8 | A | r1 (East) | P1 | 500 | lost 2026-11-10 | |
    | d9 | (none) | r2 (West) | P1 | 200 | 2026-11-20 | left out |
    """
    rows = [("d1", "A", "r1", "East", "P1", 100, "2026-01-10", "Closed Won"),
            ("d2", "B", "r2", "West", "P1", 200, "2026-02-10", "Closed Won"),
            ("d3", "A", "r1", "East", "P1", 150, "2026-04-10", "Closed Won"),
            ("d4", "C", "r2", "West", "Q1", 50, "2026-05-10", "Closed Won"),
            ("d5", "A", "r1", "East", "Q1", 300, "2026-07-10", "Closed Won"),
            ("d6", "B", "r2", "West", "P2", 100, "2026-08-10", "Closed Won"),
            ("d7", "C", "r2", "West", "Q1", 40, "2026-10-10", "Closed Won"),
            ("d8", "A", "r1", "East", "P1", 500, "2026-11-10", "Closed Lost"),
            ("d9", None, "r2", "West", "P1", 200, "2026-11-20", "Closed Won")]
    events = []
    for case, account, rep, team, product, amount, closed, outcome in rows:
        start = pd.Timestamp(closed) - pd.Timedelta(days=5)
        for activity, when in (("Lead Created", start), (outcome, pd.Timestamp(closed))):
            events.append({"case_id": case, "activity": activity, "timestamp": when.tz_localize("UTC"),
                           "account": account, "rep": rep, "team": team, "product": product,
                           "amount": float(amount)})
    return pd.DataFrame(events)


def test_retention_by_quarter(log):
    r = customers.retention(log).set_index("period")
    assert r[["customers", "new", "retained", "returning", "churned", "customers_before"]].to_dict("index") == {
        "2026Q1": dict(customers=2, new=2, retained=0, returning=0, churned=0, customers_before=0),
        "2026Q2": dict(customers=2, new=1, retained=1, returning=0, churned=1, customers_before=2),
        "2026Q3": dict(customers=2, new=0, retained=1, returning=1, churned=1, customers_before=2),
        "2026Q4": dict(customers=1, new=0, retained=0, returning=1, churned=2, customers_before=2),
    }
    assert r["revenue"].tolist() == [300.0, 200.0, 400.0, 40.0]
    assert math.isnan(r.loc["2026Q1", "logo_retention"]) and math.isnan(r.loc["2026Q1", "net_revenue_retention"])
    assert r.loc["2026Q2":, "logo_retention"].tolist() == [0.5, 0.5, 0.0]
    assert r.loc["2026Q2":, "churn_rate"].tolist() == [0.5, 0.5, 1.0]
    # Q2: 150 from Q1's customers (A), who spent 300 in Q1; Q3: A spends 300 after Q2's 150 + 50; Q4: nothing
    assert r.loc["2026Q2":, "revenue_before"].tolist() == [300.0, 200.0, 400.0]
    assert r.loc["2026Q2":, "net_revenue_retention"].tolist() == [0.5, 1.5, 0.0]
    assert r.attrs["deals_without_account"] == 1


def test_retention_by_team_and_year(log):
    west = customers.retention(log, by="team").query("team == 'West'").set_index("period")
    assert west["churned"].tolist() == [0, 1, 1, 1]  # B leaves in Q2, C in Q3, B again in Q4
    assert west.loc["2026Q3", "returning"] == 1
    year = customers.retention(log, freq="Y")
    assert year[["period", "customers", "new", "revenue"]].to_dict("records") == [
        {"period": "2026", "customers": 3, "new": 3, "revenue": 940.0}]


def test_deal_kinds_with_families_and_tiers(log):
    kinds = customers.deal_kinds(log, products=PRODUCTS).set_index("case_id")
    assert kinds["kind"].astype(str).to_dict() == {"d1": "new_business", "d2": "new_business", "d3": "upsell",
                                                  "d4": "new_business", "d5": "cross_sell", "d6": "upsell",
                                                  "d7": "repeat"}
    assert kinds.loc["d5", "previous_family"] == "Core" and kinds.loc["d6", "family"] == "Core"
    # without the master table each product is its own family: B's P2 is then new to it
    assert customers.deal_kinds(log).set_index("case_id").loc["d6", "kind"] == "cross_sell"


def test_expansion_per_rep_and_cross_sell_paths(log):
    per_rep = customers.expansion(log, by="rep", products=PRODUCTS).set_index("rep")
    assert per_rep.loc["r1", ["deals_won", "new_business", "existing_customer_deals", "upsell", "cross_sell",
                              "repeat"]].tolist() == [3, 1, 2, 1, 1, 0]
    assert per_rep.loc["r2", ["deals_won", "new_business", "upsell", "cross_sell", "repeat"]].tolist() == [
        4, 2, 1, 0, 1]
    assert per_rep.loc["r1", ["upsell_rate", "cross_sell_rate", "upsell_value", "cross_sell_value"]].tolist() == [
        0.5, 0.5, 150.0, 300.0]
    assert per_rep.loc["r2", ["upsell_rate", "cross_sell_rate", "upsell_value", "cross_sell_value"]].tolist() == [
        0.5, 0.0, 100.0, 0.0]
    paths = customers.cross_sell_paths(log, products=PRODUCTS)
    assert paths.to_dict("records") == [{"from_family": "Core", "to_family": "Add", "deals": 1, "value": 300.0}]


def test_acquisition_cost_with_a_quarter_without_costs(log):
    costs = pd.DataFrame({"team": ["East", "East", "West"], "quarter": ["2026Q1", "2026 Q2", "2026Q1"],
                          "cost": ["1,000", "500", "900"]})
    cac = customers.acquisition_cost(log, costs=costs).set_index(["team", "quarter"])
    assert cac.loc[("East", "2026Q1"), ["cost", "new_customers", "acquisition_cost", "first_year_revenue"]].tolist() \
        == [1000.0, 1, 1000.0, 550.0]  # A: 100 + 150 + 300 within a year of its first win
    assert cac.loc[("East", "2026Q2"), "new_customers"] == 0 and np.isnan(cac.loc[("East", "2026Q2"),
                                                                                    "acquisition_cost"])
    assert cac.loc[("West", "2026Q1"), ["acquisition_cost", "first_year_revenue"]].tolist() == [900.0, 300.0]
    # West gave no cost for Q2, when it won C: the customer counts, its cost is unknown
    assert np.isnan(cac.loc[("West", "2026Q2"), "cost"]) and cac.loc[("West", "2026Q2"), "new_customers"] == 1
    assert np.isnan(cac.loc[("West", "2026Q2"), "acquisition_cost"])
    assert cac.loc[("East", "2026Q1"), "revenue_per_cost"] == pytest.approx(0.55)


def test_a_costs_table_that_cannot_be_read_names_the_row():
    with pytest.raises(WorkbenchError, match="row 2") as raised:
        read_costs(pd.DataFrame({"team": ["E", "E"], "quarter": ["2026Q1", "Q5"], "cost": [1, 2]}))
    assert raised.value.column == "quarter" and raised.value.row == 2
    with pytest.raises(WorkbenchError, match="needs a rep, team or region"):
        read_costs(pd.DataFrame({"quarter": ["2026Q1"], "cost": [1]}))


def test_revenue_concentration_across_customers_and_reps(log):
    c = customers.revenue_concentration(log)
    # revenue: A 550, B 300, C 90 (940); the top 20% of three accounts is one account
    assert (c["holders"], c["revenue"], c["largest"]) == (3, 940.0, "A")
    assert c["top_share"] == pytest.approx(550 / 940) and c["largest_share"] == pytest.approx(550 / 940)
    assert c["revenue_without_largest"] == 390.0
    assert c["gini"] == pytest.approx((2 * 550 - 2 * 90) / (3 * 940))
    assert c["pareto_share"] == pytest.approx(2 / 3)  # A and B make 90% of it
    last_two = customers.revenue_concentration(log, quarter="2026Q2")  # the four quarters up to Q2: Q1 and Q2
    assert last_two["revenue"] == 500.0
    reps = customers.revenue_concentration(log, by="rep")  # r1: 550, r2: 590 with d9, which names no account
    assert (reps["largest"], reps["revenue"], reps["deals_without_account"]) == ("r2", 1140.0, 0)


def test_a_log_without_accounts_is_refused_plainly(log):
    assert not customers.has_accounts(log.drop(columns="account"))
    with pytest.raises(WorkbenchError, match="account"):
        customers.retention(log.drop(columns="account"))


@pytest.mark.parametrize("seed", [7, 11])
def test_the_demo_s_planted_churn_by_segment_and_cross_sell_path_are_recovered(demo_data, seed):
    demo = demo_data(seed, "default")
    planted = demo.truth.params["customers"]
    # churn: complete years against the year before, pooled (the year in progress is partial)
    yearly = customers.retention(demo.events, by="segment", freq="Y")
    complete = yearly[(yearly["period"] < str(demo.as_of.year)) & (yearly["customers_before"] > 0)]
    pooled = complete.groupby("segment")[["churned", "customers_before"]].sum()
    measured = pooled["churned"] / pooled["customers_before"]
    churn = pd.Series(planted["churn_per_year"])
    assert list(measured.sort_values().index) == list(churn.sort_values().index)  # Enterprise < Mid-Market < SMB
    noise = 3 * np.sqrt(churn * (1 - churn) / pooled["customers_before"])  # three binomial standard errors
    assert ((measured - churn).abs() <= noise + 0.03).all(), (measured.round(3).to_dict(), churn.to_dict())
    # cross-sell: customers whose last purchase was of the first family turn to the second far more often
    # than the mix of products would make them (about a third of the time without the plant)
    source, target = planted["cross_sell_path"]
    paths = customers.cross_sell_paths(demo.events, products=demo.products, top=50)
    onward = paths[paths["from_family"] == source].set_index("to_family")["deals"]
    assert onward.idxmax() == target and onward[target] / onward.sum() >= planted["cross_sell_share"]
