"""Filters on a hand-made five-deal log: which deals and events each one keeps."""

import pandas as pd
import pytest

from workbench import filters as f
from workbench.errors import WorkbenchError
from workbench.schema import MissingColumnError

T0 = pd.Timestamp("2026-01-01", tz="UTC")
DEALS = {  # case: (rep, team, region, segment, [(activity, day)])
    "A": ("ann", "T1", "EU", "SMB", [("Lead Created", 0), ("First Contact", 2), ("Closed Won", 10)]),
    "B": ("bob", "T1", "EU", "ENT", [("Lead Created", 5), ("First Contact", 6), ("Closed Lost", 40)]),
    "C": ("cy", "T2", "US", "SMB", [("Lead Created", 0), ("First Contact", 2), ("Closed Won", 10)]),
    "D": ("cy", "T2", "US", "ENT", [("Lead Created", 50), ("Qualification", 51)]),
    "E": ("ann", "T1", "EU", "SMB", [("Lead Created", 0), ("First Contact", 2), ("Closed Won", 10)]),
}


def make_log() -> pd.DataFrame:
    rows = [{"case_id": c, "activity": a, "timestamp": T0 + pd.Timedelta(days=d), "rep": rep, "team": team,
             "region": region, "segment": seg}
            for c, (rep, team, region, seg, events) in DEALS.items() for a, d in events]
    return pd.DataFrame(rows)


def cases(log: pd.DataFrame) -> set:
    return set(log["case_id"])


def day(n: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=n)


def test_time_window_modes():
    log = make_log()
    assert cases(f.filter_time_window(log, start=day(30), end=day(45))) == {"B"}  # intersecting
    assert cases(f.filter_time_window(log, start=day(0), end=day(11), mode="contained")) == {"A", "C", "E"}
    assert cases(f.filter_time_window(log, start=day(4), end=None, mode="started")) == {"B", "D"}
    assert cases(f.filter_time_window(log, start=None, end=day(11), mode="completed")) == {"A", "C", "E"}
    ev = f.filter_time_window(log, start=day(5), end=day(7), mode="events")
    assert list(ev["activity"]) == ["Lead Created", "First Contact"] and cases(ev) == {"B"}
    assert list(ev.index) == [0, 1]
    with pytest.raises(WorkbenchError, match="mode"):
        f.filter_time_window(log, mode="sometimes")


def test_the_window_end_is_exclusive_and_naive_bounds_are_utc():
    log = make_log()
    assert cases(f.filter_time_window(log, start="2026-02-20", end="2026-02-21")) == {"D"}  # day 50 = Feb 20
    assert cases(f.filter_time_window(log, start="2026-02-19", end="2026-02-20")) == set()


def test_attribute_case_and_event_level():
    log = make_log()
    assert cases(f.filter_attribute(log, column="segment", values="ENT")) == {"B", "D"}
    assert cases(f.filter_attribute(log, column="segment", values=["ENT"], keep=False)) == {"A", "C", "E"}
    ev = f.filter_attribute(log, column="activity", values="Closed Won", level="event")
    assert len(ev) == 3 and set(ev["activity"]) == {"Closed Won"}
    with pytest.raises(MissingColumnError):
        f.filter_attribute(log, column="product", values="X")


def test_org_filter_uses_the_deal_owner():
    log = make_log()
    # a handed-over deal belongs to the rep on its closing event
    log.loc[(log["case_id"] == "B") & (log["activity"] == "Lead Created"), "rep"] = "ann"
    assert cases(f.filter_org(log, rep="ann")) == {"A", "E"}
    assert cases(f.filter_org(log, rep=["bob", "cy"])) == {"B", "C", "D"}
    assert cases(f.filter_org(log, team="T2", region="US")) == {"C", "D"}
    assert cases(f.filter_org(log)) == set(DEALS)
    with pytest.raises(MissingColumnError, match="'rep'"):
        f.filter_org(log.drop(columns="rep"), rep="ann")


def test_outcome():
    log = make_log()
    assert cases(f.filter_outcome(log, outcome="won")) == {"A", "C", "E"}
    assert cases(f.filter_outcome(log, outcome=["lost", "open"])) == {"B", "D"}
    with pytest.raises(WorkbenchError, match="outcome"):
        f.filter_outcome(log, outcome="pending")


def test_top_variants_by_count_and_coverage():
    log = make_log()
    # variants: LC-FC-Won x3 (A, C, E), LC-FC-Lost x1, LC-Q x1
    assert cases(f.filter_top_variants(log, top=1)) == {"A", "C", "E"}
    assert cases(f.filter_top_variants(log, coverage=0.6)) == {"A", "C", "E"}  # 3/5 covers 60 %
    assert len(cases(f.filter_top_variants(log, coverage=0.61))) == 4
    assert cases(f.filter_top_variants(log, coverage=1.0)) == set(DEALS)
    with pytest.raises(WorkbenchError):
        f.filter_top_variants(log, coverage=0)


def test_duration_and_size():
    log = make_log()
    assert cases(f.filter_case_duration(log, max_days=10)) == {"A", "C", "E", "D"}  # D spans 1 day
    assert cases(f.filter_case_duration(log, min_days=20)) == {"B"}
    assert cases(f.filter_case_size(log, max_events=2)) == {"D"}
    assert cases(f.filter_case_size(log, min_events=3, max_events=3)) == {"A", "B", "C", "E"}


def test_filters_do_not_touch_their_input():
    log = make_log()
    before = log.copy()
    f.filter_outcome(log, outcome="won")
    f.filter_time_window(log, start=day(1), end=day(3), mode="events")
    pd.testing.assert_frame_equal(log, before)


def test_lifecycle_keeps_complete_events():
    log = make_log()
    start = log.assign(lifecycle="start")
    both = pd.concat([start, log.assign(lifecycle="COMPLETE")], ignore_index=True)
    out = f.filter_lifecycle(both)
    assert len(out) == len(log) and set(out["lifecycle"]) == {"COMPLETE"}
    assert len(f.filter_lifecycle(log)) == len(log)
