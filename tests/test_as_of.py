"""One meaning of "as of" everywhere: an event at exactly the as-of instant has happened.

A deal closed at the as-of instant is closed for the pipeline, coverage, the stalled-deal list
and the forecast alike; and nothing recorded after the as-of date reaches a forecast, even from a
flat export whose value column is revenue booked at the close.
"""

import numpy as np
import pandas as pd

from workbench import bottlenecks, kpis
from workbench.forecast import QuotaForecaster
from workbench.io import read_event_log
from workbench.snapshot import closed_won_to_date

AS_OF = pd.Timestamp("2026-08-15", tz="UTC")


def hand_log() -> pd.DataFrame:
    rows = [
        # A is won at exactly the as-of instant, after 36 days in Proposal
        ("A", "Lead Created", "2026-07-01", 100.0), ("A", "Proposal", "2026-07-10", 100.0),
        ("A", "Closed Won", "2026-08-15", 100.0),
        # B is open in Proposal since 2026-07-05
        ("B", "Lead Created", "2026-07-02", 50.0), ("B", "Proposal", "2026-07-05", 50.0),
    ]
    # five earlier deals that left Proposal after 2 days: Proposal's p90 is 2 days
    for i in range(5):
        day = pd.Timestamp("2026-04-01") + pd.Timedelta(days=7 * i)
        rows += [(f"H{i}", "Proposal", str(day.date()), 10.0),
                 (f"H{i}", "Closed Lost", str((day + pd.Timedelta(days=2)).date()), 10.0)]
    log = pd.DataFrame(rows, columns=["case_id", "activity", "timestamp", "amount"])
    log["timestamp"] = pd.to_datetime(log["timestamp"], utc=True)
    log["rep"] = "ann"
    return log.sort_values(["case_id", "timestamp"], ignore_index=True)


def test_a_deal_closed_at_the_as_of_instant_is_not_in_the_open_pipeline():
    open_now = kpis.open_pipeline(hand_log(), as_of=AS_OF)
    assert open_now["case_id"].tolist() == ["B"]
    just_before = kpis.open_pipeline(hand_log(), as_of=AS_OF - pd.Timedelta(microseconds=1))
    assert sorted(just_before["case_id"]) == ["A", "B"]


def test_its_value_is_booked_not_stalled():
    log = hand_log()
    stalled = bottlenecks.stalled_deals(log, as_of=AS_OF)
    assert stalled["case_id"].tolist() == ["B"]  # A sat 36 days in Proposal, but it is won
    assert closed_won_to_date(log, as_of=AS_OF, quarter="2026Q3")["closed_won_to_date"].tolist() == [100.0]
    quotas = pd.DataFrame({"rep": ["ann"], "quarter": ["2026Q3"], "quota": [400.0]})
    cov = kpis.pipeline_coverage(log, quotas, quarter="2026Q3", as_of=AS_OF, by=None).iloc[0]
    assert (cov["booked"], cov["pipeline"], cov["remaining_quota"]) == (100.0, 50.0, 300.0)


def test_the_default_as_of_is_the_last_event_which_has_happened():
    assert kpis.default_as_of(hand_log()) == AS_OF
    assert bottlenecks.stalled_deals(hand_log())["case_id"].tolist() == ["B"]


# ------------------------------------------------ a flat export as it was on the as-of date
def flat_export(seed: int = 3, n: int = 260) -> pd.DataFrame:
    """One row per deal with revenue booked at the close: 0 when lost, blank while open."""
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 600, n)).round(), unit="D")
    cycle = pd.to_timedelta(rng.gamma(2.0, 25.0, n).round() + 1, unit="D")
    closes = created + cycle
    won = rng.random(n) < 0.45
    still_open = closes > pd.Timestamp("2026-08-20")
    stage = np.where(still_open, "Open", np.where(won, "Won", "Lost"))
    value = np.where(still_open, np.nan, np.where(won, rng.lognormal(8, 0.5, n).round(), 0.0))
    return pd.DataFrame({
        "id": [f"O{i:04d}" for i in range(n)], "owner": rng.choice(["kim", "lee", "max"], n),
        "created": created.strftime("%Y-%m-%d"), "stage": stage,
        "closed": pd.Series(closes.strftime("%Y-%m-%d")).where(~still_open, ""), "value": value,
    })


def as_exported_on(table: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """The same export taken on ``day``: deals created later are absent, later closes still open."""
    t = table[pd.to_datetime(table["created"]) <= day].copy()
    later = pd.to_datetime(t["closed"].replace("", None)) > day
    t.loc[later, ["stage", "closed"]] = ["Open", ""]
    t.loc[later, "value"] = np.nan
    return t


MAPPING = {"case_id": "id", "rep": "owner", "amount": "value", "milestones": {"Created": "created"},
           "final_stage": "stage", "close_date": "closed", "open_values": ["Open"]}


def _forecast(table: pd.DataFrame, as_of: pd.Timestamp, **mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    log = read_event_log(table, mapping={**MAPPING, **mapping}).log
    forecast = QuotaForecaster(n_draws=2000, seed=0).fit_predict(log, as_of=as_of)
    return forecast.table().merge(forecast.baselines(), on=["level", "entity"]), forecast.deals


def test_no_forecast_feature_or_baseline_sees_past_the_as_of_date_of_a_revenue_at_close_export():
    table = flat_export()
    as_of = pd.Timestamp("2026-05-13", tz="UTC")
    full, full_snap = _forecast(table, as_of)
    then, then_snap = _forecast(as_exported_on(table, as_of.tz_localize(None)), as_of)
    pd.testing.assert_frame_equal(full_snap.reset_index(drop=True), then_snap.reset_index(drop=True))
    pd.testing.assert_frame_equal(full, then)
    assert full_snap["amount"].isna().all()  # nothing of an open deal's future revenue is known


def test_the_same_check_catches_a_value_stamped_on_the_deals_creation():
    table = flat_export()
    as_of = pd.Timestamp("2026-05-13", tz="UTC")
    full, _ = _forecast(table, as_of, amount_known="created")
    then, _ = _forecast(as_exported_on(table, as_of.tz_localize(None)), as_of, amount_known="created")
    assert not np.allclose(full["expected_bookings"], then["expected_bookings"])
