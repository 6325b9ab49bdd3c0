"""One malformed input per problem: the exact quarantine reason and row, or the error naming file and column."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.io import read_event_log, read_quotas, read_reps
from workbench.validation import REASONS, RowFlags, ValidationReport, parse_amounts, parse_timestamps

INPUTS = Path(__file__).parent / "data" / "inputs"
HEADER = "case_id,activity,timestamp,rep,amount\n"
GOOD = "G1,Lead Created,2026-01-01 09:00,ann,100\nG1,Proposal,2026-01-03 09:00,ann,100\n"


def write(tmp_path: Path, text: str, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def quarantined(result) -> list[tuple[int, str, str]]:
    q = result.quarantine
    return list(zip(q["source_row"].tolist(), q["reason"].tolist(), q["column"].tolist()))


# ---------------------------------------------------------------- row problems, event logs

@pytest.mark.parametrize("bad_line, reason, column", [
    (",Lead Created,2026-01-02,ann,100", "missing_case_id", "case_id"),
    ("  ,Lead Created,2026-01-02,ann,100", "missing_case_id", "case_id"),
    ("B1,,2026-01-02,ann,100", "missing_activity", "activity"),
    ("B1,Lead Created,,ann,100", "missing_timestamp", "timestamp"),
    ("B1,Lead Created,yesterday,ann,100", "unparseable_timestamp", "timestamp"),
    ("B1,Lead Created,2026-13-45,ann,100", "unparseable_timestamp", "timestamp"),
    ("B1,Lead Created,0001-01-01,ann,100", "unparseable_timestamp", "timestamp"),
    ("B1,Lead Created,2026-01-02,ann,lots", "non_numeric_amount", "amount"),
    ("B1,Lead Created,2026-01-02,ann,-5", "negative_amount", "amount"),
    ("B1,Lead Created,2026-01-02,ann,100,extra", "wrong_field_count", ""),
])
def test_event_row_problem(tmp_path, bad_line, reason, column):
    # the bad line is data row 2 of the file
    path = write(tmp_path, HEADER + "G0,Lead Created,2026-01-01,bob,1\n" + bad_line + "\n" + GOOD)
    result = read_event_log(path)
    assert quarantined(result) == [(2, reason, column)]
    assert result.report.counts.to_dict() == {reason: 1}
    assert (result.report.rows_in, result.report.rows_kept) == (4, 3)
    assert len(result.log) == 3


def test_quarantine_keeps_original_values_as_strings(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "B1, Lead Created ,31/31/2026,ann,1 000\n")
    q = read_event_log(path).quarantine
    assert q.columns.tolist() == ["source_row", "column", "reason", "case_id", "activity", "timestamp", "rep",
                                  "amount"]
    assert q.iloc[0].tolist() == [3, "timestamp", "unparseable_timestamp", "B1", " Lead Created ", "31/31/2026",
                                  "ann", "1 000"]


def test_duplicate_event_keeps_the_first(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "G1,Lead Created,2026-01-01 09:00,ann,100\n")
    result = read_event_log(path)
    assert quarantined(result) == [(3, "duplicate_event", "")]
    assert result.log["activity"].tolist() == ["Lead Created", "Proposal"]


def test_event_after_close(tmp_path):
    path = write(tmp_path, HEADER + GOOD
                 + "G1,Follow-up,2026-01-09,ann,100\n"      # row 3: after the win -> quarantined
                 + "G1,Closed Won,2026-01-05,ann,100\n"     # row 4: the close
                 + "G1,Closed Lost,2026-01-06,ann,100\n")   # row 5: a second close, also after
    result = read_event_log(path)
    assert sorted(quarantined(result)) == [(3, "event_after_close", "activity"),
                                           (5, "event_after_close", "activity")]
    assert result.log["activity"].tolist() == ["Lead Created", "Proposal", "Closed Won"]


def test_first_reason_wins(tmp_path):
    path = write(tmp_path, HEADER + GOOD + ",,garbage,ann,-1\n")
    assert quarantined(read_event_log(path)) == [(3, "missing_case_id", "case_id")]


def test_blank_lines_do_not_shift_row_numbers(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "\n\nB1,Lead Created,nope,ann,1\n")
    result = read_event_log(path)
    assert quarantined(result) == [(5, "unparseable_timestamp", "timestamp")]
    assert result.report.rows_in == 3
    assert any("2 empty rows were skipped" in w for w in result.report.warnings)


def test_stage_history_unparseable_close_date(tmp_path):
    text = (INPUTS / "stage_history.csv").read_text(encoding="utf-8")
    path = write(tmp_path, text + "00Q5;006B;Qualification;2026-01-04T09:00:00.000+0000;500;someday;bob\n")
    result = read_event_log(path)
    assert quarantined(result) == [(5, "unparseable_timestamp", "CloseDate")]


# ---------------------------------------------------------------- row problems, opportunities

OPP_HEADER = "id,owner,value,created,qualified,stage,closed\n"
OPP_OPTIONS = dict(kind="opportunities", milestones={"Lead Created": "created", "Qualification": "qualified"},
                   final_stage="stage", close_date="closed")


@pytest.mark.parametrize("bad_line, reason, column", [
    (",ann,1,2026-01-01,,Open,", "missing_case_id", "id"),
    ("X,ann,1,,,Open,", "no_usable_date", ""),
    ("X,ann,1,,,Open,2026-01-09", "no_usable_date", ""),  # an open deal's expected close is no event
    ("X,ann,1,2026-01-01,not-a-date,Open,", "unparseable_timestamp", "qualified"),
    ("X,ann,1,2026-01-01,,Pending review,", "unknown_final_stage", "stage"),
    ("X,ann,1,2026-01-01,,Won,", "missing_close_date", "closed"),
    ("X,ann,1,2026-01-05,,Lost,2026-01-02", "close_before_creation", "closed"),
    ("X,ann,1,2026-01-01,2026-02-01,Won,2026-01-10", "event_after_close", "qualified"),
    ("X,ann,-1,2026-01-01,,Open,", "negative_amount", "value"),
    ("O1,ann,9,2026-01-01,,Open,", "duplicate_case_id", "id"),
    ("O1,ann,100,2026-01-01,2026-01-03,Won,2026-01-10", "duplicate_event", ""),
])
def test_opportunity_row_problem(tmp_path, bad_line, reason, column):
    path = write(tmp_path, OPP_HEADER + "O1,ann,100,2026-01-01,2026-01-03,Won,2026-01-10\n" + bad_line + "\n")
    result = read_event_log(path, **OPP_OPTIONS)
    assert quarantined(result) == [(2, reason, column)]
    assert (result.report.rows_in, result.report.rows_kept, result.report.rows_quarantined) == (2, 1, 1)
    assert result.log["activity"].tolist() == ["Lead Created", "Qualification", "Closed Won"]


# ---------------------------------------------------------------- dates far outside the rest

def _weekly_deals(n: int) -> list[tuple[str, str, str]]:
    """``n`` deals created weekly from 2025-01-06, each won three weeks later."""
    start = pd.Timestamp("2025-01-06")
    out = []
    for i in range(n):
        created = start + pd.Timedelta(weeks=i)
        out += [(f"D{i}", "Lead Created", f"{created:%Y-%m-%d}"),
                (f"D{i}", "Closed Won", f"{created + pd.Timedelta(weeks=3):%Y-%m-%d}")]
    return out


def test_an_event_dated_far_outside_the_log_is_set_aside_and_does_not_move_the_period(tmp_path):
    from workbench.calendar import resolve_period

    rows = _weekly_deals(30)  # 2025-01-06 .. 2025-08-18
    rows.insert(7, ("D3", "Follow-up", "2062-03-04"))  # a typo for 2026? it is data row 8
    rows.append(("D29", "Follow-up", "2019-05-02"))    # six years before: still the same log
    text = HEADER.replace(",rep,amount", "") + "".join(f"{c},{a},{t}\n" for c, a, t in rows)
    result = read_event_log(write(tmp_path, text))
    assert quarantined(result) == [(8, "timestamp_outlier", "timestamp")]
    assert result.report.counts.to_dict() == {"timestamp_outlier": 1}
    assert result.log["timestamp"].max() == pd.Timestamp("2025-08-18", tz="UTC")
    assert resolve_period(result.log, None, None)[0] == "2025Q3"  # not 2062Q1
    assert "2019-05-02" in set(result.log["timestamp"].dt.strftime("%Y-%m-%d"))
    assert "far outside" in REASONS["timestamp_outlier"]


def test_a_short_log_keeps_dates_months_apart_and_a_tiny_one_is_not_judged(tmp_path):
    rows = _weekly_deals(10) + [("N1", "Lead Created", "2026-09-01")]  # a deal a year after the rest
    text = HEADER.replace(",rep,amount", "") + "".join(f"{c},{a},{t}\n" for c, a, t in rows)
    assert read_event_log(write(tmp_path, text)).report.rows_quarantined == 0
    few = _weekly_deals(3) + [("N1", "Lead Created", "2090-01-01")]  # seven dates: too few to judge
    text = HEADER.replace(",rep,amount", "") + "".join(f"{c},{a},{t}\n" for c, a, t in few)
    assert read_event_log(write(tmp_path, text, "few.csv")).report.rows_quarantined == 0


def test_an_opportunity_with_a_close_date_far_outside_the_others_is_set_aside(tmp_path):
    lines = [f"O{i},ann,100,{pd.Timestamp('2025-01-06') + pd.Timedelta(weeks=i):%Y-%m-%d},,Won,"
             f"{pd.Timestamp('2025-02-03') + pd.Timedelta(weeks=i):%Y-%m-%d}\n" for i in range(15)]
    lines.insert(4, "X,ann,100,2025-03-03,,Won,2205-03-31\n".replace("2205", "2199"))  # data row 5
    result = read_event_log(write(tmp_path, OPP_HEADER + "".join(lines)), **OPP_OPTIONS)
    assert quarantined(result) == [(5, "timestamp_outlier", "")]
    assert result.log["timestamp"].max() < pd.Timestamp("2026-01-01", tz="UTC")


# ---------------------------------------------------------------- row problems, reps and quotas

@pytest.mark.parametrize("bad_line, reason, column", [
    (",West,AMER,mia,2024-01-01", "missing_rep", "rep"),
    ("ann,North,EMEA,mia,2024-01-01", "duplicate_rep", "rep"),
    ("cy,West,AMER,mia,last spring", "unparseable_timestamp", "start_date"),
])
def test_reps_row_problem(tmp_path, bad_line, reason, column):
    path = write(tmp_path, "rep,team,region,manager,start_date\nann,East,EMEA,mia,2024-01-15\n" + bad_line + "\n")
    result = read_reps(path)
    assert quarantined(result) == [(2, reason, column)]
    assert result.log["rep"].tolist() == ["ann"]


@pytest.mark.parametrize("bad_line, reason, column", [
    (",,2026Q1,100", "missing_rep_or_team", "rep"),
    ("bob,West,2026Q5,100", "malformed_quarter", "quarter"),
    ("bob,West,26Q1,100", "malformed_quarter", "quarter"),
    ("bob,West,2026Q1,", "missing_quota", "quota"),
    ("bob,West,2026Q1,a lot", "non_numeric_quota", "quota"),
    ("bob,West,2026Q1,-100", "negative_quota", "quota"),
    ("ann,East,2026-Q1,500", "duplicate_quota", "quota"),
    ("zed,West,2026Q1,100", "unknown_rep", "rep"),
    (",Nowhere,2026Q1,100", "unknown_team", "team"),
])
def test_quota_row_problem(tmp_path, bad_line, reason, column):
    path = write(tmp_path, "rep,team,quarter,quota\nann,East,2026Q1,1000\n" + bad_line + "\n")
    result = read_quotas(path, reps=read_reps(INPUTS / "reps.csv"))
    assert quarantined(result) == [(2, reason, column)]
    assert result.log["quota"].tolist() == [1000.0]


def test_quotas_checked_against_the_log(tmp_path):
    path = write(tmp_path, "rep,quarter,quota\nann,2026Q1,1\nbob,2026Q1,1\ncarl,2026Q1,1\n")
    result = read_quotas(path, log=read_event_log(INPUTS / "events.csv").log)
    assert quarantined(result) == [(3, "unknown_rep", "rep")]


def test_team_quota_without_rep_is_kept(tmp_path):
    path = write(tmp_path, "team,quarter,quota\nEast,2026Q1,5000\n")
    t = read_quotas(path, reps=read_reps(INPUTS / "reps.csv")).log
    assert t.values.tolist() == [["East", "2026Q1", 5000.0]]


# ---------------------------------------------------------------- fatal problems

def raises(match: str, *parts: str):
    """pytest.raises for a WorkbenchError whose message contains every one of ``parts``."""
    class _Check:
        def __enter__(self):
            self.ctx = pytest.raises(WorkbenchError, match=match)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            out = self.ctx.__exit__(*exc)
            for part in parts:
                assert part in str(self.info.value), (part, str(self.info.value))
            return out
    return _Check()


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with raises("does not exist", str(path), "check the path"):
        read_event_log(path)


def test_folder_instead_of_file(tmp_path):
    with raises("folder", str(tmp_path)):
        read_event_log(tmp_path)


def test_missing_required_column_lists_columns_and_mapping(tmp_path):
    path = write(tmp_path, "Deal,Activity,Owner\n1,Lead Created,ann\n")
    with raises("no column for 'timestamp'", str(path), "column 'timestamp'", "['Deal', 'Activity', 'Owner']",
                "--mapping", "timestamp=<your column>") as info:
        read_event_log(path)
    assert info.value.file == str(path) and info.value.column == "timestamp"


def test_mapping_to_missing_column(tmp_path):
    path = write(tmp_path, HEADER + GOOD)
    with raises("which the file does not have", str(path), "column 'When'", "the columns are"):
        read_event_log(path, mapping={"timestamp": "When"})


def test_wrong_encoding_names_cp1251():
    path = INPUTS / "events_cp1251.csv"
    with raises("not valid utf-8", str(path), "row 1", "encoding='cp1251'", "--encoding cp1251") as info:
        read_event_log(path)
    assert info.value.row == 1


def test_unknown_encoding_name(tmp_path):
    with raises("unknown encoding", "cp1251"):
        read_event_log(write(tmp_path, HEADER + GOOD), encoding="klingon")


def test_empty_file(tmp_path):
    with raises("empty", "input.csv"):
        read_event_log(write(tmp_path, ""))


def test_header_only_is_an_empty_log(tmp_path):
    with raises("no data rows", "input.csv"):
        read_event_log(write(tmp_path, HEADER))


def test_every_row_quarantined(tmp_path):
    path = write(tmp_path, HEADER + "A,Lead Created,25/03/2026,ann,1\nA,Proposal,26/03/2026,ann,1\n")
    with raises("all 2 rows were set aside", str(path), "column 'timestamp'", "row 1", "dayfirst=True"):
        read_event_log(path)
    assert len(read_event_log(path, dayfirst=True).log) == 2


def test_binary_file_named_csv(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\x00\x01\x02binary\x00" * 10)
    with raises("binary", str(path)):
        read_event_log(path)


def test_excel_file_named_csv(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": [1]}).to_excel(tmp_path / "x.xlsx", index=False)
    path.write_bytes((tmp_path / "x.xlsx").read_bytes())
    with raises("zip archive", str(path), ".xlsx"):
        read_event_log(path)


def test_unsupported_format(tmp_path):
    path = write(tmp_path, '{"a": 1}', name="log.json")
    with raises("not a format", str(path), "CSV, Excel (.xlsx), Parquet or XES"):
        read_event_log(path)


def test_old_xls(tmp_path):
    path = write(tmp_path, "whatever", name="log.xls")
    with raises(".xls files are not supported", str(path), "save it as .xlsx"):
        read_event_log(path)


def test_corrupt_xlsx(tmp_path):
    path = write(tmp_path, "not a workbook", name="log.xlsx")
    with raises("cannot be read as an Excel workbook", str(path)):
        read_event_log(path)


def test_missing_sheet(tmp_path):
    path = tmp_path / "log.xlsx"
    pd.read_csv(INPUTS / "events.csv").to_excel(path, index=False, sheet_name="Deals")
    with raises("no sheet 'Events'", str(path), "['Deals']"):
        read_event_log(path, sheet="Events")


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path, "PAR1 but not really", name="log.parquet")
    with raises("cannot be read as Parquet", str(path)):
        read_event_log(path)


@pytest.mark.parametrize("name", ["log.xes", "log.xes.gz"])
def test_corrupt_xes(tmp_path, name):
    path = tmp_path / name
    data = b"<log><trace><string key='concept:name' value='1'/>"
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with raises("cannot be read as XES", str(path)):
        read_event_log(path)


def test_unknown_timezone():
    df = pd.read_csv(INPUTS / "events.csv")
    with raises("unknown timezone 'Mars/Olympus'", "Europe/Moscow"):
        read_event_log(df, timezone="Mars/Olympus")


def test_bad_options():
    df = pd.read_csv(INPUTS / "events.csv")
    with raises("after_close='drop'"):
        read_event_log(df, after_close="drop")
    with raises("kind='log'"):
        read_event_log(df, kind="log")
    with raises("unknown options \\['milestone'\\]"):
        read_event_log(df, milestone={"a": "b"})


def test_opportunities_need_milestones():
    with raises("milestone date columns", "opportunities.csv", "milestones="):
        read_event_log(INPUTS / "opportunities.csv", kind="opportunities")


def test_opportunity_milestone_column_missing():
    with raises("milestone 'Proposal' names column 'Sent'", "column 'Sent'"):
        read_event_log(INPUTS / "opportunities.csv", milestones={"Lead Created": "Created", "Proposal": "Sent"})


def test_opportunity_final_stage_without_close_date(tmp_path):
    path = write(tmp_path, "id,created,stage\n1,2026-01-01,Won\n")
    with raises("no close date column", "column 'stage'", "close_date="):
        read_event_log(path, milestones=["created"], final_stage="stage")


def test_quota_table_without_quarter(tmp_path):
    with raises("no column for 'quarter'", "column 'quarter'"):
        read_quotas(write(tmp_path, "rep,quota\nann,5\n"))


def test_reps_file_loaded_as_log_says_what_it_is():
    with raises("This looks like a reps table", "reps.csv"):
        read_event_log(INPUTS / "reps.csv")


# ---------------------------------------------------------------- parsers and the report

def test_parse_amounts_marks_missing_and_bad():
    values, missing, bad = parse_amounts(pd.Series(["1,5", "", None, "1e400", "abc", "(20)", "0x1f"]))
    assert values.iloc[0] == 1.5 and values.iloc[5] == -20.0
    assert missing.tolist() == [False, True, True, False, False, False, False]
    assert bad.tolist() == [False, False, False, True, True, False, True]


def test_parse_timestamps_dst_edges():
    # 2026-03-29 02:30 does not exist in Berlin (moved forward); 2026-10-25 02:30 happens twice (standard time)
    ts, missing, bad = parse_timestamps(pd.Series(["2026-03-29 02:30", "2026-10-25 02:30"]),
                                        timezone="Europe/Berlin")
    assert ts.tolist() == [pd.Timestamp("2026-03-29 01:00", tz="UTC"), pd.Timestamp("2026-10-25 01:30", tz="UTC")]
    assert not bad.any() and not missing.any()


def test_row_flags_first_reason_wins_and_rejects_unknown():
    flags = RowFlags(3)
    flags.flag(np.array([True, False, False]), "missing_case_id", "id")
    flags.flag(np.array([True, True, False]), "negative_amount", "amount")
    assert flags.reason.tolist() == ["missing_case_id", "negative_amount", None]
    with pytest.raises(ValueError):
        flags.flag(np.array([True, True, True]), "made_up_reason")


def test_report_text_dict_and_frame(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "B,Lead Created,nope,ann,1\nC,Lead Created,never,ann,1\n"
                 + "D,Lead Created,2026-01-01,ann,-4\n")
    report = read_event_log(path).report
    assert isinstance(report, ValidationReport)
    text = str(report)
    assert f"Validation of {path.name} (event log)" in text
    assert str(path.parent) not in text  # a page or a shared terminal log names no folder of the client's
    assert "rows read                 5" in text
    assert "unparseable_timestamp        2" in text and REASONS["unparseable_timestamp"] in text
    assert "negative_amount              1" in text
    d = report.to_dict()
    assert d["rows_in"] == 5 and d["rows_kept"] == 2 and d["rows_quarantined"] == 3
    assert d["counts"] == {"unparseable_timestamp": 2, "negative_amount": 1}
    frame = report.to_frame()
    assert frame["reason"].tolist() == ["unparseable_timestamp", "negative_amount"]
    assert frame["rows"].tolist() == [2, 1]
    assert frame["share"].tolist() == pytest.approx([0.4, 0.2])


def test_report_refuses_broken_accounting():
    with pytest.raises(AssertionError):
        ValidationReport(source="x", kind="events", rows_in=3, rows_kept=1, rows_quarantined=1,
                         counts=pd.Series(dtype="int64"))


def test_dayfirst_hint_when_slash_dates_fail_month_first(tmp_path):
    path = write(tmp_path, HEADER + "A,Lead Created,03/05/2026,ann,1\nA,Proposal,25/05/2026,ann,1\n"
                 + "A,Follow-up,banana,ann,1\n")
    report = read_event_log(path).report
    assert report.counts.to_dict() == {"unparseable_timestamp": 2}
    assert any(w.startswith("1 dates of column 'timestamp'") and "dayfirst=True" in w for w in report.warnings)


def test_opportunities_without_final_stage_are_open_with_a_warning(tmp_path):
    path = write(tmp_path, "id,created,proposal\nA,2026-01-01,2026-01-05\n")
    result = read_event_log(path, milestones={"Lead Created": "created", "Proposal": "proposal"})
    assert result.log["activity"].tolist() == ["Lead Created", "Proposal"]
    assert any("every deal is taken as still open" in w for w in result.report.warnings)


def test_ids_written_as_whole_decimals_are_one_deal_and_a_repeated_header_is_named(tmp_path):
    text = ("case_id,activity,timestamp,amount,amount\n"
            "1,Lead Created,2026-01-01,100,5\n"
            "1.0,Proposal,2026-01-05,100,6\n"      # the same deal, its id turned into a number by a spreadsheet
            "A1.0,Lead Created,2026-01-02,50,7\n")  # a code, not a number: kept as written
    result = read_event_log(write(tmp_path, text))
    assert result.log["case_id"].tolist() == ["1", "1", "A1.0"]
    assert result.log["amount"].tolist() == [100.0, 100.0, 50.0]  # the first 'amount' column
    found = {f.kind: f for f in result.report.findings}
    header = found["duplicate_column"]
    assert (header.column, header.count) == ("amount", 2)
    assert "'amount' 2 times (columns 4, 5)" in header.message and "'amount.1'" in header.message
    assert "--mapping" in header.todo
    ids = found["id_collision"]
    assert (ids.column, ids.count) == ("case_id", 1) and "'1' / '1.0'" in ids.message
    assert [e["row"] for e in ids.examples] == [1, 2]
