"""Good inputs of every kind load into the canonical tables, with the values worked out by hand."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.io import (
    LoadResult,
    detect_kind,
    load_sales_data,
    parse_mapping,
    read_event_log,
    read_quotas,
    read_reps,
    read_table,
)
from workbench.profile import SALESFORCE
from workbench.errors import WorkbenchError
from workbench.schema import to_pm4py

INPUTS = Path(__file__).parent / "data" / "inputs"


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


# The canonical log of tests/data/inputs/events.csv, worked out by hand.
EXPECTED_EVENTS = pd.DataFrame({
    "case_id": ["D1", "D1", "D1", "D1", "D2", "D2", "D2", "D3"],
    "activity": ["Lead Created", "Qualification", "Proposal", "Closed Won",
                 "Lead Created", "First Contact", "Closed Lost", "Lead Created"],
    "timestamp": [utc("2026-01-05 09:00"), utc("2026-01-07 10:30"), utc("2026-01-20 16:00"),
                  utc("2026-02-02 12:00"), utc("2026-01-06 08:00"), utc("2026-01-06 08:00"),
                  utc("2026-01-15 17:45"), utc("2026-02-01 11:00")],
    "rep": ["ann", "ann", "ann", "ann", "bob", "bob", "bob", "ann"],
    "amount": [1000.0, 1000.0, 1200.0, 1200.0, 500.0, 500.0, 500.0, np.nan],
    "customer_type": ["new"] * 4 + ["existing"] * 3 + ["new"],
})


def assert_canonical(log: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(log.columns) == list(expected.columns)
    assert list(log.index) == list(range(len(log)))
    assert str(log["timestamp"].dtype).endswith("UTC]")
    for col in expected.columns:
        if col == "timestamp":
            assert list(log[col]) == list(expected[col]), col
        elif col == "amount":
            np.testing.assert_array_equal(log[col].to_numpy("float64"), expected[col].to_numpy("float64"))
            assert log[col].dtype == "float64"
        else:
            assert log[col].tolist() == expected[col].tolist(), col
            assert pd.api.types.is_string_dtype(log[col].dtype), col


def test_csv_round_trip():
    result = read_event_log(INPUTS / "events.csv")
    assert isinstance(result, LoadResult)
    assert_canonical(result.log, EXPECTED_EVENTS)
    assert result.quarantine.empty
    r = result.report
    assert (r.kind, r.rows_in, r.rows_kept, r.rows_quarantined) == ("events", 8, 8, 0)
    assert r.counts.empty


def test_dataframe_input_is_not_modified_and_gives_same_log():
    df = pd.read_csv(INPUTS / "events.csv")
    before = df.copy()
    shuffled = df.iloc[[7, 3, 0, 1, 2, 4, 5, 6]]  # input order differs; ties keep input order
    result = read_event_log(shuffled)
    assert_canonical(result.log, EXPECTED_EVENTS)
    pd.testing.assert_frame_equal(df, before)
    assert result.report.source == "<DataFrame>"


def test_ties_keep_input_order():
    df = pd.DataFrame({"case_id": ["X", "X", "X"], "activity": ["B", "A", "C"],
                       "timestamp": ["2026-01-01 10:00"] * 3})
    assert read_event_log(df).log["activity"].tolist() == ["B", "A", "C"]


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "events.parquet"
    EXPECTED_EVENTS.to_parquet(path)
    assert_canonical(read_event_log(path).log, EXPECTED_EVENTS)


def test_parquet_naive_timestamps_take_the_timezone(tmp_path):
    path = tmp_path / "naive.parquet"
    pd.DataFrame({"case_id": ["A"], "activity": ["Lead Created"],
                  "timestamp": [pd.Timestamp("2026-07-01 12:00")]}).to_parquet(path)
    log = read_event_log(path, timezone="Europe/Moscow").log
    assert log["timestamp"].iloc[0] == utc("2026-07-01 09:00")


def test_xlsx_with_date_cells_and_text_cells(tmp_path):
    """Date-formatted cells arrive as datetimes (openpyxl); text dates are parsed."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Opportunity ID", "Stage", "When", "Owner", "Value"])
    ws.append([1001, "Lead Created", dt.datetime(2026, 3, 5, 14, 0), "ann", 1234.5])
    ws.append([1001, "Closed Won", "2026-03-09 10:00", "ann", "1 500,00"])
    ws["C2"].number_format = "yyyy-mm-dd hh:mm"
    path = tmp_path / "deals.xlsx"
    wb.save(path)
    result = read_event_log(path, mapping={"timestamp": "When"})
    log = result.log
    assert log["case_id"].tolist() == ["1001", "1001"]
    assert log["activity"].tolist() == ["Lead Created", "Closed Won"]
    assert log["timestamp"].tolist() == [utc("2026-03-05 14:00"), utc("2026-03-09 10:00")]
    assert log["rep"].tolist() == ["ann", "ann"]
    assert log["amount"].tolist() == [1234.5, 1500.0]


def test_xlsx_other_sheet(tmp_path):
    path = tmp_path / "two.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(writer, sheet_name="Cover", index=False)
        EXPECTED_EVENTS.assign(timestamp=EXPECTED_EVENTS["timestamp"].dt.tz_localize(None)).to_excel(
            writer, sheet_name="Events", index=False)
    assert_canonical(read_event_log(path, sheet="Events").log, EXPECTED_EVENTS)
    # Read without a sheet, the cover sheet is what the first sheet holds, and the user is told.
    raw = read_table(path)
    assert list(raw.frame.columns) == ["note"]
    assert raw.warnings == ["the workbook has 2 sheets ('Cover', 'Events'); the first, 'Cover', was read. "
                            "Pass sheet= (--sheet) to read another."]


@pytest.mark.parametrize("name", ["log.xes", "log.xes.gz"])
def test_xes_round_trip_with_lifecycle(tmp_path, name):
    import pm4py

    log = EXPECTED_EVENTS.iloc[:4].copy()
    log["lifecycle:transition"] = ["complete", "start", "complete", "complete"]
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm4py.write_xes(to_pm4py(log), str(path), show_progress_bar=False, variant_str="line_by_line")
    result = read_event_log(path, lifecycle="all")
    out = result.log
    assert out["case_id"].tolist() == ["D1"] * 4
    assert out["activity"].tolist() == EXPECTED_EVENTS["activity"].iloc[:4].tolist()
    assert out["timestamp"].tolist() == EXPECTED_EVENTS["timestamp"].iloc[:4].tolist()
    assert out["rep"].tolist() == ["ann"] * 4
    assert out["amount"].tolist() == [1000.0, 1000.0, 1200.0, 1200.0]
    assert out["lifecycle"].tolist() == ["complete", "start", "complete", "complete"]
    assert list(out.columns[:5]) == ["case_id", "activity", "timestamp", "rep", "amount"]
    assert result.report.rows_in == 4
    # By default only complete events are analysed, and the start is counted as set aside.
    complete = read_event_log(path)
    assert complete.log["lifecycle"].tolist() == ["complete"] * 3
    assert complete.report.counts.to_dict() == {"lifecycle_not_complete": 1}
    assert complete.quarantine["source_row"].tolist() == [2]


def test_a_log_handed_to_pm4py_writes_xes_with_its_dates_whichever_writer_pm4py_picks(tmp_path):
    import re

    import pm4py

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm4py.write_xes(to_pm4py(EXPECTED_EVENTS), str(tmp_path / "log.xes"))  # rustxes when installed
    written = re.findall(r'time:timestamp" value="([^"]+)"', (tmp_path / "log.xes").read_text())
    assert pd.to_datetime(written, utc=True).tolist() == EXPECTED_EVENTS["timestamp"].tolist()


def test_pm4py_names_are_recognised_without_mapping():
    df = pd.DataFrame({"case:concept:name": ["c1", "c1"], "concept:name": ["Lead Created", "Proposal"],
                       "time:timestamp": ["2026-01-01T08:00:00Z", "2026-01-02T08:00:00Z"],
                       "org:resource": ["ann", "ann"], "case:segment": ["smb", "smb"]})
    log = read_event_log(df).log
    assert list(log.columns) == ["case_id", "activity", "timestamp", "rep", "segment"]
    assert log["timestamp"].tolist() == [utc("2026-01-01 08:00"), utc("2026-01-02 08:00")]


def test_explicit_mapping_and_mapping_string():
    df = pd.DataFrame({"Deal": ["1"], "What": ["Lead Created"], "At": ["2026-01-01"], "Who": ["ann"],
                       "Source": ["web"]})
    for mapping in ({"case_id": "Deal", "activity": "What", "timestamp": "At", "rep": "Who",
                     "lead_source": "Source"},
                    "case_id=Deal,activity=What,timestamp=At,rep=Who,lead_source=Source"):
        log = read_event_log(df, mapping=mapping).log
        assert list(log.columns) == ["case_id", "activity", "timestamp", "rep", "lead_source"]
        assert log.iloc[0].tolist() == ["1", "Lead Created", utc("2026-01-01"), "ann", "web"]


@pytest.mark.parametrize("text, dayfirst, expected", [
    ("2026-03-05 14:00", False, "2026-03-05 14:00"),
    ("2026-03-05T14:00:00", False, "2026-03-05 14:00"),
    ("05.03.2026", False, "2026-03-05 00:00"),          # dotted dates are day first
    ("05.03.2026 14:00", False, "2026-03-05 14:00"),
    ("03/05/2026", False, "2026-03-05 00:00"),          # US month first by default
    ("05/03/2026", True, "2026-03-05 00:00"),
    ("05/03/2026 14:00:00", True, "2026-03-05 14:00"),
    ("03/05/2026 2:00 PM", False, "2026-03-05 14:00"),
    ("5 March 2026", False, "2026-03-05 00:00"),
    ("2026/03/05", False, "2026-03-05 00:00"),
])
def test_timestamp_formats(text, dayfirst, expected):
    df = pd.DataFrame({"case_id": ["a"], "activity": ["x"], "timestamp": [text]})
    assert read_event_log(df, dayfirst=dayfirst).log["timestamp"].iloc[0] == utc(expected)


def test_timezone_naive_localised_aware_converted():
    df = pd.DataFrame({"case_id": ["a", "a", "a", "a"], "activity": ["w", "x", "y", "z"],
                       "timestamp": ["2026-01-15 12:00", "2026-07-15 12:00",      # naive: Berlin winter, summer
                                     "2026-01-15T12:00:00+03:00", "2026-01-15T18:00:00Z"]})
    log = read_event_log(df, timezone="Europe/Berlin").log
    assert log["timestamp"].tolist() == [utc("2026-01-15 09:00"), utc("2026-01-15 11:00"),
                                         utc("2026-01-15 18:00"), utc("2026-07-15 10:00")]
    assert log["activity"].tolist() == ["y", "w", "z", "x"]


@pytest.mark.parametrize("text, expected", [
    ("1234.5", 1234.5), ("1 234,50", 1234.5), ("1,234.50", 1234.5), ("$1,234", 1234.0),
    ("1.234.567,80", 1234567.8), ("12,5", 12.5), ("1\u00a0500 руб.", 1500.0), ("EUR 99", 99.0),
])
def test_amount_formats(text, expected):
    df = pd.DataFrame({"case_id": ["a"], "activity": ["x"], "timestamp": ["2026-01-01"], "amount": [text]})
    assert read_event_log(df).log["amount"].iloc[0] == expected


def test_cp1251_file_with_encoding():
    log = read_event_log(INPUTS / "events_cp1251.csv", encoding="cp1251").log
    assert log["rep"].tolist() == ["Иван", "Иван"]


def test_stage_history_salesforce():
    result = read_event_log(INPUTS / "stage_history.csv", profile=SALESFORCE)
    assert result.report.kind == "stage_history"
    log = result.log
    assert list(log.columns) == ["case_id", "activity", "timestamp", "rep", "amount", "close_date", "Id"]
    assert log["case_id"].tolist() == ["006A", "006A", "006A", "006B"]
    assert log["activity"].tolist() == ["Prospecting", "Qualification", "Closed Won", "Prospecting"]
    assert log["timestamp"].tolist() == [utc("2026-01-02 10:00"), utc("2026-01-05 10:00"),
                                         utc("2026-02-01 15:30"), utc("2026-01-03 09:00")]
    assert log["amount"].tolist() == [1000.0, 1200.0, 1200.0, 500.0]
    assert log["close_date"].tolist() == [utc("2026-03-31"), utc("2026-04-30"), utc("2026-02-01"),
                                          utc("2026-03-15")]
    assert log["rep"].tolist() == ["ann", "ann", "ann", "bob"]


EXPECTED_OPPORTUNITY_EVENTS = [
    ("O1", "Lead Created", "2026-01-02"), ("O1", "Qualification", "2026-01-05"),
    ("O1", "Proposal", "2026-01-09"), ("O1", "Closed Won", "2026-01-20"),
    ("O2", "Lead Created", "2026-01-03"), ("O2", "Closed Lost", "2026-01-04"),
    ("O3", "Lead Created", "2026-01-03"), ("O3", "Qualification", "2026-01-10"),
]


def _triples(log: pd.DataFrame) -> list[tuple]:
    return [(c, a, t.strftime("%Y-%m-%d")) for c, a, t in zip(log["case_id"], log["activity"], log["timestamp"])]


def test_opportunities_with_keyword_options():
    result = read_event_log(
        INPUTS / "opportunities.csv", mapping={"amount": "Deal Value"},
        milestones={"Lead Created": "Created", "Qualification": "Qualified On", "Proposal": "Proposal Sent"},
        final_stage="Final Stage", close_date="Closed On",
    )
    log = result.log
    assert _triples(log) == EXPECTED_OPPORTUNITY_EVENTS
    assert log["amount"].tolist() == [1200.0] * 4 + [500.0] * 2 + [700.0] * 2
    assert log["rep"].tolist() == ["ann"] * 4 + ["bob"] * 4
    assert log["Segment"].tolist() == ["smb"] * 4 + ["enterprise"] * 4
    assert "Created" not in log.columns and "Final Stage" not in log.columns
    r = result.report
    # three input rows make eight events; the accounting counts input rows
    assert (r.kind, r.rows_in, r.rows_kept, r.rows_quarantined) == ("opportunities", 3, 3, 0)


def test_opportunities_from_mapping_file_gives_the_same_log():
    mapping = parse_mapping(str(INPUTS / "opportunities_mapping.yaml"))
    assert mapping["milestones"] == {"Lead Created": "Created", "Qualification": "Qualified On",
                                     "Proposal": "Proposal Sent"}
    log = read_event_log(INPUTS / "opportunities.csv", mapping=mapping).log
    assert _triples(log) == EXPECTED_OPPORTUNITY_EVENTS


def test_reps_table():
    result = read_reps(INPUTS / "reps.csv")
    t = result.log
    assert list(t.columns) == ["rep", "team", "region", "manager", "start_date"]
    assert t["rep"].tolist() == ["ann", "bob"]
    assert t["team"].tolist() == ["East", "West"]
    assert t["start_date"].tolist() == [utc("2024-01-15"), utc("2024-03-01")]
    assert result.report.rows_kept == 2


def test_quotas_table_normalises_quarters():
    result = read_quotas(INPUTS / "quotas.csv", reps=read_reps(INPUTS / "reps.csv"))
    t = result.log
    assert t["quarter"].tolist() == ["2026Q1", "2026Q1", "2026Q2"]
    assert t["quota"].tolist() == [10000.0, 8000.0, 12000.0]
    assert t["quota"].dtype == "float64"
    assert result.report.rows_quarantined == 0


def test_reps_joined_onto_log_and_unknown_reps_warned():
    df = pd.read_csv(INPUTS / "events.csv")
    df.loc[7, "rep"] = "zoe"
    reps = read_reps(INPUTS / "reps.csv")
    result = read_event_log(df, reps=reps)
    log = result.log
    assert log["team"].iloc[:7].tolist() == ["East"] * 4 + ["West"] * 3
    assert pd.isna(log["team"].iloc[7])  # zoe is in no reps table
    assert log["region"].iloc[:7].tolist() == ["EMEA"] * 4 + ["AMER"] * 3
    assert log["manager"].iloc[:7].tolist() == ["mia"] * 7
    assert list(log.columns[:6]) == ["case_id", "activity", "timestamp", "rep", "team", "region"]
    assert any("1 reps of the log are not in the reps table ('zoe')" in w for w in result.report.warnings)


def test_load_sales_data_combines_and_counts():
    data = load_sales_data(INPUTS / "events.csv", reps=INPUTS / "reps.csv", quotas=INPUTS / "quotas.csv")
    assert len(data.log) == 8 and data.log["team"].tolist() == ["East"] * 4 + ["West"] * 3 + ["East"]
    assert data.quotas["quarter"].tolist() == ["2026Q1", "2026Q1", "2026Q2"]
    assert data.reps["rep"].tolist() == ["ann", "bob"]
    assert data.quarantine.empty and "table" in data.quarantine.columns
    d = data.report.to_dict()
    assert set(d["tables"]) == {"log", "reps", "quotas"}
    assert d["tables"]["log"]["rows_in"] == 8
    text = str(data.report)
    assert "events.csv" in text and "reps.csv" in text and "quotas.csv" in text


def test_load_sales_data_quarantine_has_table_column(tmp_path):
    quotas = tmp_path / "q.csv"
    quotas.write_text("rep,quarter,quota\nann,2026Q1,100\nnobody,2026Q1,100\n", encoding="utf-8")
    data = load_sales_data(INPUTS / "events.csv", quotas=quotas)
    q = data.quarantine
    assert q[["table", "source_row", "reason"]].values.tolist() == [["quotas", 2, "unknown_rep"]]
    assert data.report.rows_quarantined == 1


def test_after_close_keep_keeps_late_events():
    df = pd.DataFrame({"case_id": ["a"] * 3, "activity": ["Lead Created", "Closed Won", "Follow-up"],
                       "timestamp": ["2026-01-01", "2026-01-02", "2026-01-03"]})
    assert len(read_event_log(df, after_close="keep").log) == 3
    assert read_event_log(df).log["activity"].tolist() == ["Lead Created", "Closed Won"]


@pytest.mark.parametrize("name, kind", [("events.csv", "events"), ("stage_history.csv", "stage_history"),
                                        ("reps.csv", "reps"), ("quotas.csv", "quotas")])
def test_detect_kind(name, kind):
    assert detect_kind(read_table(INPUTS / name).frame.columns) == kind


def test_parse_mapping_forms(tmp_path):
    assert parse_mapping("case_id=Opportunity ID, activity = Stage") == {"case_id": "Opportunity ID",
                                                                       "activity": "Stage"}
    assert parse_mapping(None) == {} and parse_mapping("") == {}
    js = tmp_path / "m.json"
    js.write_text('{"case_id": "Deal"}', encoding="utf-8")
    assert parse_mapping(str(js)) == {"case_id": "Deal"}
    with pytest.raises(WorkbenchError, match="name=column pairs"):
        parse_mapping("case_id")


def test_semicolon_and_tab_separated(tmp_path):
    for sep, name in ((";", "semi.csv"), ("\t", "tab.tsv")):
        path = tmp_path / name
        pd.read_csv(INPUTS / "events.csv").to_csv(path, sep=sep, index=False)
        assert_canonical(read_event_log(path).log, EXPECTED_EVENTS)


def test_combined_report_prints_each_warning_once():
    df = pd.read_csv(INPUTS / "events.csv")
    df.loc[7, "rep"] = "zoe"
    data = load_sales_data(df, reps=INPUTS / "reps.csv")
    assert data.report.warnings == ["log: 1 reps of the log are not in the reps table ('zoe'); "
                                    "their team, region and manager come from the log only."]
    assert str(data.report).count("'zoe'") == 1
    assert data.report.to_dict()["warnings"] == data.report.warnings


def test_demo_data_round_trip_and_planted_after_close_events(tmp_path, demo_data):
    synth = pytest.importorskip("workbench.synth")
    demo = demo_data(7, "tiny")
    path = tmp_path / "demo.csv"
    demo.events.to_csv(path, index=False)
    data = load_sales_data(path, reps=demo.reps, quotas=demo.quotas)
    # the loader sets aside exactly the deals the generator planted events after close in
    truth = demo.truth.deviations
    planted = set(truth.loc[truth["kind"] == "after_close", "case_id"])
    late = data.quarantine[data.quarantine["reason"] == "event_after_close"]
    assert planted and set(late["case_id"]) == planted
    assert len(data.log) + len(data.quarantine) == len(demo.events)
    assert data.report.reports["quotas"].rows_quarantined == 0
    # the CSV gives the same canonical log as the DataFrame it was written from
    pd.testing.assert_frame_equal(read_event_log(path).log, read_event_log(demo.events).log)


def test_closed_opportunity_with_only_a_close_date_is_one_event(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("id,created,stage,closed\nA,,Lost,2026-02-01\n", encoding="utf-8")
    log = read_event_log(path, milestones=["created"], final_stage="stage", close_date="closed").log
    assert _triples(log) == [("A", "Closed Lost", "2026-02-01")]


@pytest.mark.parametrize("encoding, sep", [("utf-8-sig", ","), ("utf-16", "\t")])
def test_excel_text_exports_bom_and_utf16(tmp_path, encoding, sep):
    """Excel's 'CSV UTF-8' starts with a BOM; its 'Unicode text' is UTF-16 with tabs."""
    path = tmp_path / "export.csv"
    path.write_bytes((INPUTS / "events.csv").read_text(encoding="utf-8").replace(",", sep).encode(encoding))
    assert_canonical(read_event_log(path).log, EXPECTED_EVENTS)


def test_lifecycle_start_of_the_closing_activity_does_not_close_the_deal():
    df = pd.DataFrame({
        "case_id": ["a"] * 4,
        "activity": ["Lead Created", "Closed Won", "Closed Won", "Follow-up"],
        "lifecycle": ["complete", "start", "complete", "complete"],
        "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"], utc=True),
    })
    result = read_event_log(df, lifecycle="all")
    # Only the follow-up after the completed close is set aside; the close's own start/complete stay.
    assert result.quarantine["source_row"].tolist() == [4]
    assert result.quarantine["reason"].tolist() == ["event_after_close"]
    assert result.log["activity"].tolist() == ["Lead Created", "Closed Won", "Closed Won"]


def test_quarantine_names_the_deal_in_canonical_terms_whatever_the_export_called_it():
    df = pd.DataFrame({
        "Opportunity ID": ["o1", "o1", "o1"],
        "Stage": ["Lead Created", "Closed Lost", "Follow-up"],
        "Changed At": ["2026-01-01", "2026-01-05", "2026-01-09"],
    })
    result = read_event_log(df, mapping={"case_id": "Opportunity ID", "activity": "Stage", "timestamp": "Changed At"})
    assert result.quarantine["reason"].tolist() == ["event_after_close"]
    assert result.quarantine["case_id"].tolist() == ["o1"]
    assert result.quarantine["Opportunity ID"].tolist() == ["o1"]
