"""Exports in the shapes real CRMs and process-mining tools write (tests/data/foreign/), read as a user would.

Every expected number below is counted by hand from the files (see tests/data/foreign/NOTES.md).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pm4py
import pytest

from workbench import discovery
from workbench.errors import WorkbenchError
from workbench.io import read_event_log

FOREIGN = Path(__file__).parent / "data" / "foreign"
CRM = FOREIGN / "crm_opportunities.csv"
CRM_MAPPING = str(FOREIGN / "crm_opportunities.mapping.yaml")


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


@pytest.fixture(scope="module")
def crm():
    return read_event_log(CRM, mapping=CRM_MAPPING)


def test_flat_crm_export_keeps_every_dated_deal_and_sets_aside_the_two_undated_ones(crm):
    r = crm.report
    assert (r.rows_in, r.rows_kept, r.rows_quarantined) == (24, 22, 2)
    assert r.counts.to_dict() == {"no_usable_date": 2}
    assert sorted(crm.quarantine["opportunity_id"]) == ["K0YJ6FJ4", "Q8ZK0YUQ"]
    log = crm.log
    assert len(log) == 22 + 19 and log["case_id"].nunique() == 22
    assert log["activity"].value_counts().to_dict() == {"Engaged": 22, "Closed Won": 12, "Closed Lost": 7}


def test_revenue_booked_at_close_is_known_only_from_the_close(crm):
    # close_value is 0 for every lost deal and blank for every open one: revenue at close
    assert any("amount_known: closed" in w for w in crm.report.warnings)
    log = crm.log
    assert log.loc[log["activity"] == "Engaged", "amount"].isna().all()
    won = log[log["activity"] == "Closed Won"].set_index("case_id")["amount"]
    assert won["1C1I7A6R"] == 1054 and won["VWQMLOBX"] == 4650 and len(won) == 12
    # the close date is the close event itself, never an attribute an earlier event could show
    assert "close_date" not in log.columns


def test_amount_known_from_creation_when_the_mapping_says_so():
    log = read_event_log(CRM, mapping={**_mapping(), "amount_known": "created"}).log
    engaged = log[log["activity"] == "Engaged"].set_index("case_id")["amount"]
    assert engaged["Z063OYW0"] == 4514 and np.isnan(engaged["DE40BWMH"])


def _mapping() -> dict:
    import yaml

    return yaml.safe_load(Path(CRM_MAPPING).read_text(encoding="utf-8"))


def test_an_unknown_final_stage_is_reported_with_its_values_and_the_key_that_fixes_it():
    mapping = {k: v for k, v in _mapping().items() if k != "open_values"}
    result = read_event_log(CRM, mapping=mapping)
    assert result.report.counts.to_dict() == {"unknown_final_stage": 5}
    warning = next(w for w in result.report.warnings if "neither won, lost nor open" in w)
    assert "'Engaging' (3 rows)" in warning and "'Prospecting' (2 rows)" in warning
    assert "open_values: [Engaging, Prospecting]" in warning


def test_a_column_mapped_twice_is_refused_naming_it():
    mapping = {**_mapping(), "milestones": {"Engaged": "engage_date", "Closed": "close_date"}}
    with pytest.raises(WorkbenchError, match="column 'close_date' is mapped to 'close_date' and to "
                                             "\"milestone 'Closed'\""):
        read_event_log(CRM, mapping=mapping)


def test_hubspot_epoch_milliseconds_and_column_names_need_no_mapping():
    log = read_event_log(FOREIGN / "hubspot_dealstage_history.csv").log
    first = log.iloc[0]
    assert (first["case_id"], first["activity"], first["rep"]) == ("19837465001", "appointmentscheduled", "Ana Reyes")
    assert first["timestamp"] == utc("2026-01-05 10:00")
    assert log["timestamp"].max() == utc("2026-06-15 16:00")
    assert len(log) == 28 and log["case_id"].nunique() == 6


def test_salesforce_history_keeps_the_pushes_and_amount_changes_as_events():
    log = read_event_log(FOREIGN / "salesforce_opportunity_history.csv").log
    assert len(log) == 40 and log["case_id"].nunique() == 8
    qw004 = log[log["case_id"] == "0060X00000Qw004"]
    assert qw004["close_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2026-06-30", "2026-06-30", "2026-07-31", "2026-08-31", "2026-08-31", "2026-06-29"]
    assert qw004["amount"].tolist() == [80000, 80000, 80000, 80000, 70000, 70000]
    assert log["timestamp"].iloc[0] == utc("2026-01-06 15:04:11")


def test_salesforce_close_date_pushes_before_the_close_by_hand():
    from workbench import kpis

    log = read_event_log(FOREIGN / "salesforce_opportunity_history.csv").log
    slips = kpis.close_date_slips(log).set_index("case_id")
    assert slips["slips"][slips["slips"] > 0].to_dict() == {
        "0060X00000Qw001": 1, "0060X00000Qw003": 1, "0060X00000Qw004": 2, "0060X00000Qw006": 1}
    assert slips["pull_ins"].sum() == 0  # the close row's own date is not a change of plan
    assert slips.loc["0060X00000Qw004", "slipped_days"] == 62  # 06-30 to 08-31


def test_xes_lifecycle_keeps_complete_events_and_counts_the_others_on_their_own_line():
    result = read_event_log(FOREIGN / "repair_lifecycle.xes")
    r = result.report
    assert (r.rows_in, r.rows_kept, r.rows_quarantined) == (38, 23, 15)
    assert r.counts.to_dict() == {"lifecycle_not_complete": 15}
    assert "lifecycle_not_complete" in r.to_text()
    everything = read_event_log(FOREIGN / "repair_lifecycle.xes", lifecycle="all")
    assert everything.report.rows_kept == 38


@pytest.mark.parametrize("lifecycle", ["complete", "all"])
def test_both_xes_readers_give_the_same_log(monkeypatch, lifecycle):
    from workbench.io import files

    read = {}
    for reader in files.XES_READERS:
        monkeypatch.setattr(files, "XES_READERS", (reader,))
        result = read_event_log(FOREIGN / "repair_lifecycle.xes", lifecycle=lifecycle)
        read[reader] = result
    rust, own = read.values()
    pd.testing.assert_frame_equal(rust.log, own.log[rust.log.columns], check_dtype=False)
    assert rust.report.counts.to_dict() == own.report.counts.to_dict()
    assert rust.quarantine["source_row"].tolist() == own.quarantine["source_row"].tolist()


def both_views(lifecycle: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The repair log read by the workbench with ``lifecycle``, and by pm4py in the same view."""
    log = read_event_log(FOREIGN / "repair_lifecycle.xes", lifecycle=lifecycle).log
    raw = pm4py.read_xes(str(FOREIGN / "repair_lifecycle.xes"), show_progress_bar=False)
    return log, raw[raw["lifecycle:transition"] == "complete"] if lifecycle == "complete" else raw


@pytest.mark.parametrize("lifecycle", ["complete", "all"])
def test_xes_dfg_and_variants_equal_pm4pys_on_the_same_view(lifecycle):
    log, raw = both_views(lifecycle)
    dfg, start, end = pm4py.discover_dfg(raw)
    ours = discovery.discover_dfg(log).to_pm4py()
    assert ours == (dfg, start, end)
    theirs = {tuple(v): n for v, n in pm4py.get_variants(raw).items()}
    ours_v = discovery.variants(log)
    assert dict(zip(ours_v["variant"].map(tuple), ours_v["count"])) == theirs
    tree = pm4py.discover_process_tree_inductive(raw, noise_threshold=0.2)
    assert str(discovery.discover_process_tree(log, noise_threshold=0.2)) == str(tree)


@pytest.mark.parametrize("lifecycle", ["complete", "all"])
def test_fitness_of_the_discovered_model_equals_pm4pys(lifecycle):
    from workbench import conformance

    log, raw = both_views(lifecycle)
    net, im, fm = pm4py.discover_petri_net_inductive(raw, noise_threshold=0.2)
    theirs = pm4py.fitness_token_based_replay(raw, net, im, fm)
    ours = conformance.discovered_fitness(log, progress=False)
    keys = ("log_fitness", "average_trace_fitness", "percentage_of_fitting_traces")
    assert {k: ours[k] for k in keys} == pytest.approx({k: theirs[k] for k in keys})
    assert ours["replayed_sample"] == 0 and ours["standard_error"] == {k: 0.0 for k in keys}


def test_xes_complete_view_by_hand():
    log = read_event_log(FOREIGN / "repair_lifecycle.xes").log
    dfg, start, end = discovery.discover_dfg(log).to_pm4py()
    assert dfg == {("Register", "Analyze Defect"): 4, ("Analyze Defect", "Repair"): 2, ("Repair", "Test Repair"): 3,
                   ("Test Repair", "Inform User"): 2, ("Test Repair", "Repair"): 1,
                   ("Analyze Defect", "Inform User"): 2, ("Inform User", "Archive Repair"): 4}
    assert start == {"Register": 5} and end == {"Archive Repair": 4, "Register": 1}


def test_events_after_a_finish_are_kept_when_the_profile_says_work_goes_on(tmp_path):
    from workbench.profile import SalesProcessProfile

    path = tmp_path / "orders.csv"
    path.write_text("case_id,activity,timestamp\n"
                    "o1,Order,2026-01-01\no1,Ship,2026-01-02\no1,Invoice Paid,2026-01-03\n"
                    "o2,Order,2026-01-05\no2,Ship,2026-01-06\no2,Invoice Paid,2026-01-07\no2,Review,2026-01-09\n",
                    encoding="utf-8")
    orders = SalesProcessProfile("Orders", stages=("Order", "Ship"), ends=("Invoice Paid",), loops=("Review",),
                                 events_after_close="keep")
    kept = read_event_log(path, profile=orders)
    assert kept.report.rows_kept == 7
    assert any("1 events follow their case's close and were kept" in w for w in kept.report.warnings)
    aside = read_event_log(path, profile=orders, after_close="set_aside")
    assert aside.report.counts.to_dict() == {"event_after_close": 1}


def test_check_says_a_flat_table_read_without_its_mapping_is_one():

    with pytest.raises(WorkbenchError, match="looks like a flat opportunity table .*'opportunity_id'.*'engage_date', "
                                             "'close_date'.*'deal_stage'"):
        read_event_log(CRM)


def test_a_flat_table_read_as_events_gets_a_warning(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("Opportunity ID,Stage,Created Date,Close Date,Amount\nA1,Won,2026-01-02,2026-02-01,10\n"
                    "A2,Lost,2026-01-05,2026-02-11,0\nA3,Open,2026-01-09,,\n", encoding="utf-8")
    result = read_event_log(path)
    assert any("every case has a single event" in w and "--kind opportunities" in w for w in result.report.warnings)
