"""check_file: the report of any input file and its quarantine table written next to it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from workbench.check import check_file, quarantine_path
from workbench.errors import WorkbenchError

INPUTS = Path(__file__).parent / "data" / "inputs"


def copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(INPUTS / name, tmp_path / name))


def test_clean_file_writes_nothing(tmp_path):
    path = copy(tmp_path, "events.csv")
    report, out = check_file(path)
    assert out is None
    assert (report.kind, report.rows_in, report.rows_kept, report.rows_quarantined) == ("events", 8, 8, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.csv"]


def test_malformed_file_writes_quarantine_next_to_it(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("Deal,Step,When,Value\n"
                    "1,Lead Created,2026-01-01,100\n"
                    "1,Proposal,someday,100\n"
                    "2,Lead Created,2026-01-02,-7\n", encoding="utf-8")
    report, out = check_file(path, mapping="case_id=Deal,activity=Step,timestamp=When,amount=Value")
    assert out == tmp_path / "deals.quarantine.csv"
    assert report.counts.to_dict() == {"unparseable_timestamp": 1, "negative_amount": 1}
    q = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert q[["source_row", "column", "reason", "When", "Value"]].values.tolist() == [
        ["2", "When", "unparseable_timestamp", "someday", "100"],
        ["3", "Value", "negative_amount", "2026-01-02", "-7"],
    ]
    # fixing the file and checking again removes the stale quarantine table
    path.write_text("Deal,Step,When,Value\n1,Lead Created,2026-01-01,100\n", encoding="utf-8")
    report, out = check_file(path, mapping="case_id=Deal,activity=Step,timestamp=When,amount=Value")
    assert out is None and not (tmp_path / "deals.quarantine.csv").exists()


@pytest.mark.parametrize("name, kind, rows", [("reps.csv", "reps", 2), ("quotas.csv", "quotas", 3),
                                              ("stage_history.csv", "stage_history", 4)])
def test_kind_detected_from_columns(tmp_path, name, kind, rows):
    report, out = check_file(copy(tmp_path, name))
    assert (report.kind, report.rows_in, report.rows_kept) == (kind, rows, rows)
    assert out is None


def test_opportunities_with_mapping_file(tmp_path):
    path = copy(tmp_path, "opportunities.csv")
    report, out = check_file(path, mapping=str(INPUTS / "opportunities_mapping.yaml"))
    assert report.kind == "opportunities"
    assert (report.rows_in, report.rows_kept) == (3, 3)
    assert report.summary["events"] == "8"


def test_quotas_against_a_log(tmp_path):
    path = tmp_path / "quotas.csv"
    path.write_text("rep,quarter,quota\nann,2026Q1,1\nzed,2026Q1,2\n", encoding="utf-8")
    report, out = check_file(path, log=INPUTS / "events.csv")
    assert report.counts.to_dict() == {"unknown_rep": 1}
    assert pd.read_csv(out)[["source_row", "reason", "rep"]].values.tolist() == [[2, "unknown_rep", "zed"]]
    # without a log the reps cannot be checked, and the report says so
    report, _ = check_file(path, kind="quotas")
    assert report.rows_quarantined == 0
    assert any("not checked" in w for w in report.warnings)


def test_dayfirst_and_timezone_passed_through(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("case_id,activity,timestamp\nA,Lead Created,25/03/2026 10:00\n", encoding="utf-8")
    with pytest.raises(WorkbenchError):
        check_file(path)
    report, out = check_file(path, dayfirst=True, timezone="Europe/Paris")
    assert report.rows_kept == 1 and out is None
    assert report.summary["from"] == "2026-03-25"


def test_every_row_bad_raises_and_names_the_quarantine(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("case_id,activity,timestamp\nA,x,never\nB,y,nope\n", encoding="utf-8")
    with pytest.raises(WorkbenchError) as info:
        check_file(path)
    message = str(info.value)
    assert str(path) in message and "'timestamp'" in message and "bad.quarantine.csv" in message
    assert len(pd.read_csv(tmp_path / "bad.quarantine.csv")) == 2


def test_errors_are_workbench_errors(tmp_path):
    with pytest.raises(WorkbenchError, match="does not exist"):
        check_file(tmp_path / "missing.csv")
    with pytest.raises(WorkbenchError, match="kind='deals'"):
        check_file(copy(tmp_path, "events.csv"), kind="deals")
    with pytest.raises(WorkbenchError, match="encoding='cp1251'"):
        check_file(copy(tmp_path, "events_cp1251.csv"))


def test_quarantine_path_names():
    assert quarantine_path("/x/deals.csv") == Path("/x/deals.quarantine.csv")
    assert quarantine_path("/x/log.xes.gz") == Path("/x/log.quarantine.csv")
    assert quarantine_path("/x/book.xlsx") == Path("/x/book.quarantine.csv")
