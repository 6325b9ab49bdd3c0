"""The data-quality audit: every kind of finding on inputs written by hand, as a record and as a line of
``workbench check``. The expected numbers are counted from the rows by hand (see data/foreign/NOTES.md)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench import audit
from workbench.check import check_file
from workbench.cli import main
from workbench.findings import KINDS, Findings
from workbench.io import load_sales_data, read_event_log

FOREIGN = Path(__file__).parent / "data" / "foreign"


@pytest.fixture
def crm(tmp_path) -> dict[str, Path]:
    """The public-CRM-style export and its master tables, copied where check may write its quarantine."""
    names = {"crm_opportunities": "crm_opportunities.csv", "mapping": "crm_opportunities.mapping.yaml",
             "crm_products": "crm_products.csv", "crm_accounts": "crm_accounts.csv",
             "crm_sales_teams": "crm_sales_teams.csv"}
    return {key: Path(shutil.copy(FOREIGN / name, tmp_path / name)) for key, name in names.items()}


def _check(capsys, *argv: object) -> str:
    assert main(["check", *map(str, argv)]) == 0
    return capsys.readouterr().out


def _one(findings, kind: str, column: str | None = None):
    matches = [f for f in findings if f.kind == kind and (column is None or f.column == column)]
    assert len(matches) == 1, (kind, column, [(f.kind, f.column) for f in findings])
    return matches[0]


def test_the_crm_export_shows_each_of_its_known_problems(crm, capsys):
    report, _ = check_file(crm["crm_opportunities"], mapping=str(crm["mapping"]),
                           lookups={"product": crm["crm_products"], "account": crm["crm_accounts"]})
    found = report.findings
    account = _one(found, "missing_values", "account")  # a fifth of the deals have no account
    assert account.count == 5 and [e["row"] for e in account.examples] == [10, 15, 21]
    spelled = _one(found, "near_duplicates", "product")
    assert spelled.count == 8 and "'GTX Pro' (5), 'GTXPro' (3)" in spelled.message
    assert [e["row"] for e in spelled.examples] == [6, 2]  # the first row of each spelling
    absent = _one(found, "not_in_lookup", "product")
    assert absent.count == 3 and absent.examples == [{"row": None, "value": "GTXPro", "closest": "GTX Pro"}]
    assert not [f for f in found if f.kind == "not_in_lookup" and f.column == "account"]  # all accounts known
    booked = _one(found, "outcome_like", "close_value")  # revenue at the close, not the deal's size
    assert booked.count == 7 + 3 and "0 for every lost deal (7)" in booked.message
    assert "blank for every open deal (3)" in booked.message
    pattern = _one(found, "quarantine_pattern", "deal_stage")  # every dateless deal is a Prospecting one
    assert pattern.count == 2 and "deal_stage = 'Prospecting'" in pattern.message
    assert [e["row"] for e in pattern.examples] == [23, 24]
    set_aside = _one(found, "set_aside")
    assert (set_aside.count, set_aside.column) == (2, None) and "no_usable_date" in set_aside.message
    partial = _one(found, "partial_period")  # the data ends on 2026-09-01, 62 days into 2026Q3
    assert partial.count == 62 and "2026Q3" in partial.message
    assert not [f for f in found if f.kind == "extreme_amount"]

    out = _check(capsys, crm["crm_opportunities"], "--mapping", crm["mapping"], "--lookup",
                    f"product={crm['crm_products']}", "--lookup", f"account={crm['crm_accounts']}")
    for finding in (account, spelled, absent, booked, pattern, partial):
        assert f"- {finding.message}" in out
        assert f"What to do: {KINDS[finding.kind][1]}" in out
    assert "e.g. row 10; row 15; row 21" in out


def test_every_finding_is_a_record_in_the_check_json(crm):
    report, _ = check_file(crm["crm_opportunities"], mapping=str(crm["mapping"]))
    records = json.loads(json.dumps(report.to_dict()))["findings"]
    assert {r["kind"] for r in records} >= {"missing_values", "near_duplicates", "outcome_like", "partial_period"}
    for r in records:
        assert set(r) >= {"kind", "table", "column", "count", "message", "examples", "what_to_do"}
        assert r["count"] > 0 and r["what_to_do"] == KINDS[r["kind"]][1]


def test_reps_without_deals_and_deals_without_a_rep_in_the_table(crm, capsys):
    table = pd.read_csv(crm["crm_sales_teams"]).rename(columns={"sales_agent": "rep", "regional_office": "team"})
    table = pd.concat([table.iloc[1:], pd.DataFrame({"rep": ["Ivy Park"], "manager": ["X"], "team": ["West"]})])
    data = load_sales_data(crm["crm_opportunities"], mapping=str(crm["mapping"]), reps=table)
    found = audit.data_quality(data)
    idle = _one(found, "rep_without_deals")
    assert idle.count == 2 and "'Hayden Neloms', 'Ivy Park'" in idle.message
    team = _one(found, "team_without_deals")
    assert team.count == 1 and "'West'" in team.message
    missing = _one(found, "rep_not_in_reps")  # Moira Fenwick's row was left out of the table: her 6 deals
    assert missing.count == 6 and "'Moira Fenwick'" in missing.message
    # workbench check of the reps table against the log says the same
    reps_file = crm["crm_sales_teams"].with_name("reps.csv")
    table.to_csv(reps_file, index=False)
    log_file = crm["crm_sales_teams"].with_name("log.csv")
    data.log.to_csv(log_file, index=False)
    out = _check(capsys, reps_file, "--log", log_file)
    for finding in (idle, team, missing):
        assert f"- {finding.message}" in out


def test_columns_that_follow_the_outcome_are_named(tmp_path, capsys):
    # Salesforce writes Probability 100 / 0 and ForecastCategory Closed / Omitted when a deal closes
    path = Path(shutil.copy(FOREIGN / "salesforce_opportunity_history.csv", tmp_path))
    found = audit.data_quality(load_sales_data(path))
    out = _check(capsys, path)
    probability = _one(found, "outcome_leak", "Probability")
    assert probability.count == 6 and "'100' only when won, '0' only when lost" in probability.message
    category = _one(found, "outcome_leak", "ForecastCategory")
    assert "'Closed' only when won, 'Omitted' only when lost" in category.message
    assert f"- {probability.message}" in out and f"- {category.message}" in out
    assert not [f for f in found if f.kind == "outcome_leak" and f.column == "Amount"]  # a value per deal
    # a loss reason filled for lost deals only tells the outcome by being there
    rows = []
    for i, (outcome, reason) in enumerate([("Won", None), ("Won", None), ("Won", None), ("Lost", "price"),
                                           ("Lost", "timing"), ("Lost", "price")]):
        rows += [{"case_id": f"D{i}", "activity": "Lead Created", "timestamp": f"2026-01-0{i + 1}",
                  "loss_reason": None},
                 {"case_id": f"D{i}", "activity": f"Closed {outcome}", "timestamp": f"2026-02-0{i + 1}",
                  "loss_reason": reason}]
    found = audit.data_quality(read_event_log(pd.DataFrame(rows)))
    assert "filled for every lost deal and empty for every won one" in _one(found, "outcome_leak").message


def _log(n: int, **extra) -> pd.DataFrame:
    days = pd.date_range("2026-01-01", periods=n, freq="3D").strftime("%Y-%m-%d")
    return pd.DataFrame({"case_id": [f"C{i}" for i in range(n)], "activity": "Lead Created", "timestamp": days,
                         **extra})


def test_a_date_far_outside_the_others_is_set_aside_and_does_not_move_the_period(tmp_path, capsys):
    log = _log(30)
    log.loc[29, "timestamp"] = "2200-04-01"
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    report, quarantine = check_file(path)
    outlier = _one(report.findings, "set_aside")
    assert (outlier.count, outlier.column) == (1, "timestamp") and "timestamp_outlier" in outlier.message
    assert outlier.examples == [{"row": 30, "value": ""}]
    assert pd.read_csv(quarantine)["reason"].tolist() == ["timestamp_outlier"]
    assert f"- {outlier.message}" in _check(capsys, path)
    assert read_event_log(path).log["timestamp"].max() < pd.Timestamp("2026-04-01", tz="UTC")  # not 2200


def test_ids_that_are_one_after_normalisation_and_a_repeated_column(tmp_path, capsys):
    path = tmp_path / "log.csv"
    path.write_text("case_id,activity,timestamp,amount,amount\n"
                    "1,Lead Created,2026-01-01,100,5\n"
                    "1.0,Proposal,2026-01-05,100,6\n"
                    " 1 ,Negotiation,2026-01-09,100,7\n"
                    "2,Lead Created,2026-01-02,50,8\n")
    out = _check(capsys, path)
    report, _ = check_file(path)
    ids = _one(report.findings, "id_collision")
    assert ids.count == 1 and "'1' / '1.0' / ' 1 '" in ids.message
    header = _one(report.findings, "duplicate_column")
    assert header.count == 2 and "'amount.1'" in header.message
    assert f"- {ids.message}" in out and f"- {header.message}" in out


def test_extreme_amounts_are_found_robustly(tmp_path, capsys):
    amounts = [1000.0 * (1 + i % 7) for i in range(29)] + [1e300]
    path = tmp_path / "log.csv"
    _log(30, amount=amounts).to_csv(path, index=False)
    extreme = _one(check_file(path)[0].findings, "extreme_amount")
    assert extreme.count == 1 and "'C29' 1e+300" in extreme.message
    assert f"- {extreme.message}" in _check(capsys, path)
    # a tenfold deal among similar ones is large, not extreme; with few deals only absurd amounts are named
    assert not audit.data_quality(read_event_log(_log(30, amount=amounts[:29] + [70000.0]))).of_kind(
        "extreme_amount")
    few = audit.data_quality(read_event_log(_log(3, amount=[10.0, 20.0, 5e12])))
    assert _one(few, "extreme_amount").count == 1


def test_near_duplicates_ignore_dates_ids_and_amounts(tmp_path, capsys):
    path = tmp_path / "log.csv"
    _log(12, team=["East", "east ", "East"] * 4, amount=["1,000", "1000"] * 6).to_csv(path, index=False)
    found = check_file(path)[0].findings
    team = _one(found, "near_duplicates", "team")
    assert team.count == 12 and "'East' (8), 'east' (4)" in team.message
    assert not [f for f in found if f.kind == "near_duplicates" and f.column != "team"]
    assert f"- {team.message}" in _check(capsys, path)


def test_partial_periods_at_both_edges(tmp_path, capsys):
    log = pd.DataFrame({"case_id": ["A", "A", "B"], "activity": ["Lead Created", "Closed Won", "Lead Created"],
                        "timestamp": ["2026-03-01", "2026-05-01", "2026-07-31"]})
    log.to_csv(path := tmp_path / "log.csv", index=False)
    found = Findings(check_file(path)[0].findings).of_kind("partial_period")
    out = _check(capsys, path)
    assert all(f"- {f.message}" in out for f in found)
    # 2026Q1 from 1 March: 31 of its 90 days; 2026Q3 up to 31 July: 30 days; 2026Q2 is whole
    assert [(f.count, f.examples[0]["value"]) for f in found] == [(31, "2026Q1"), (30, "2026Q3")]
    assert audit.partial_lines(read_event_log(log).log, ["2026Q2", "2026Q3"]) == [
        "2026Q3 is in the data up to 2026-07-31 only (33% of its days): its numbers are not a full quarter's."]


def test_lookups_refuse_a_column_the_log_does_not_have(crm):
    from workbench.errors import WorkbenchError

    data = read_event_log(crm["crm_opportunities"], mapping=str(crm["mapping"]))
    with pytest.raises(WorkbenchError, match="no column 'sku'"):
        audit.data_quality(data, lookups={"sku": crm["crm_products"]})
    with pytest.raises(WorkbenchError, match="is not COLUMN=FILE"):
        audit.parse_lookups(["product"])


def test_a_clean_log_has_no_finding():
    found = audit.data_quality(read_event_log(pd.DataFrame({
        "case_id": np.repeat(["A", "B"], 2), "activity": ["Lead Created", "Closed Won"] * 2,
        "timestamp": ["2026-01-01", "2026-03-30", "2026-01-02", "2026-03-31"]})))
    assert found == Findings() and str(found) == "Findings: none."


def test_anonymised_findings_and_quarantine_name_no_one(crm):
    from workbench import notebook

    data = notebook.load(crm["crm_opportunities"], mapping=str(crm["mapping"]), reps=crm["crm_sales_teams"],
                         audit=True, lookups=f"account={crm['crm_accounts']}", anonymize=True, salt="s")
    opportunities = pd.read_csv(crm["crm_opportunities"])
    names = (set(pd.read_csv(crm["crm_sales_teams"])["sales_agent"]) | set(opportunities["account"].dropna())
             | set(opportunities["opportunity_id"]))
    text = json.dumps([f.to_dict() for f in data.findings]) + json.dumps(data.report.to_dict()) \
        + data.quarantine.to_csv() + str(data.report)
    assert not {n for n in names if n in text}
    assert "'Rep " in _one(data.findings, "rep_without_deals").message  # said, under a pseudonym
    assert "crm_opportunities" not in str(data.report)  # the input is not named either
