"""The workbench command as a consultant uses it."""

import pandas as pd

from workbench.cli import main


def test_check_prints_the_report_and_writes_the_quarantine(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text(
        "Opportunity,Stage,When\n"
        "o1,Lead Created,2026-01-05\n"
        "o1,Proposal,not a date\n"
        ",Proposal,2026-01-07\n",
        encoding="utf-8",
    )
    code = main(["check", str(path), "--mapping", "case_id=Opportunity,activity=Stage,timestamp=When"])
    out = capsys.readouterr().out
    assert code == 0
    assert "rows read" in out and "unparseable_timestamp" in out and "missing_case_id" in out
    quarantine = pd.read_csv(tmp_path / "export.quarantine.csv")
    assert sorted(quarantine["reason"]) == ["missing_case_id", "unparseable_timestamp"]
    assert sorted(quarantine["source_row"]) == [2, 3]


def test_check_names_the_missing_column_and_exits_2(tmp_path, capsys):
    path = tmp_path / "export.csv"
    path.write_text("deal,what\nd1,Lead Created\n", encoding="utf-8")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "export.csv" in err and "timestamp" in err


def test_demo_data_is_the_same_for_the_same_seed(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["demo-data", "--seed", "3", "--size", "tiny", "--out", str(tmp_path / name)]) == 0
    a = pd.read_parquet(tmp_path / "a" / "events.parquet")
    b = pd.read_parquet(tmp_path / "b" / "events.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert {"case_id", "activity", "timestamp", "rep", "amount"} <= set(a.columns)
    assert (tmp_path / "a" / "quotas.csv").exists() and (tmp_path / "a" / "truth.json").exists()
