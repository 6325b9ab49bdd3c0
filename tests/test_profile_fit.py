"""Which profile reads a log: the one given, a shipped one that fits, or one derived from the data.

The expected stages, outcomes and optional stages are worked out by hand from the
files of tests/data/foreign/ (each file's rows are listed in its NOTES entry).
"""

from pathlib import Path

import pandas as pd
import pytest

from workbench.errors import WorkbenchError
from workbench.io import read_event_log
from workbench.profile import PPVVC, SALESFORCE, load_profile
from workbench.profile_fit import derive_profile, fit_profile, outcome_of_name, resolve_profile

FOREIGN = Path(__file__).parent / "data" / "foreign"


def events(cases: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(c, a, pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=i))
            for c, acts in cases.items() for i, a in enumerate(acts)]
    return pd.DataFrame(rows, columns=["case_id", "activity", "timestamp"])


def test_fit_counts_known_events_unknown_activities_and_missing_stages():
    log = events({"a": ["Lead Created", "Call", "Proposal", "Closed Won"], "b": ["Lead Created", "Call"]})
    fit = fit_profile(log, profile=PPVVC)
    assert (fit.events, fit.known_events) == (6, 4)
    assert fit.unknown.to_dict() == {"Call": 2}
    assert fit.stages_seen == ("Lead Created", "Proposal")
    assert "Research" in fit.stages_missing and fit.describes
    assert "'Call' (2)" in fit.summary()


@pytest.mark.parametrize("name, outcome", [
    ("Closed Won", "won"), ("closedwon", "won"), ("Deal Won", "won"), ("Accepted", "won"),
    ("Closed Lost", "lost"), ("closedlost", "lost"), ("Rejected", "lost"), ("Order Cancelled", "lost"),
    ("Archive Repair", None), ("Won / Lost review", None), ("Wonderful demo", None),
])
def test_outcome_words_in_activity_names(name, outcome):
    assert outcome_of_name(name) == outcome


def test_hubspot_stage_ids_derive_their_order_outcomes_and_optional_stages():
    result = read_event_log(FOREIGN / "hubspot_dealstage_history.csv")
    p = result.profile
    assert p.derived
    assert p.stages == ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                        "decisionmakerboughtin", "contractsent")
    assert (p.won, p.lost, p.ends) == (("closedwon",), ("closedlost",), ())
    # 5 closed deals: presentation in 4, decision maker in 3, contract in 3 (under 90%: optional)
    assert p.optional == ("presentationscheduled", "decisionmakerboughtin", "contractsent")
    assert p.events_after_close == "set_aside"
    assert "derived from the data" in result.profile_note
    assert result.log.attrs["profile"] is p


def test_a_repair_log_derives_a_process_that_finishes_without_won_or_lost():
    result = read_event_log(FOREIGN / "repair_lifecycle.xes")
    p = result.profile
    assert p.stages == ("Register", "Analyze Defect", "Repair", "Test Repair", "Inform User")
    assert p.ends == ("Archive Repair",) and not p.won and not p.lost
    assert not p.has_outcomes
    # Repair and its test happen in 2 of the 4 finished cases
    assert p.optional == ("Repair", "Test Repair")
    assert p.events_after_close == "keep"


def test_salesforce_stage_names_pick_the_shipped_salesforce_profile():
    result = read_event_log(FOREIGN / "salesforce_opportunity_history.csv")
    assert result.profile is SALESFORCE
    assert "Salesforce standard" in result.profile_note and "derived" not in result.profile_note


def test_a_flat_table_derives_its_stages_in_the_mappings_milestone_order():
    log = read_event_log(FOREIGN / "crm_opportunities.csv", mapping=str(FOREIGN / "crm_opportunities.mapping.yaml"))
    p = log.profile
    assert (p.stages, p.won, p.lost) == (("Engaged",), ("Closed Won",), ("Closed Lost",))
    flat = events({"a": ["Created", "Proposal", "Closed Won"], "b": ["Created", "Closed Lost"]})
    order = derive_profile(flat, won=("Closed Won",), lost=("Closed Lost",), stage_order=("Created", "Demo", "Proposal"))
    assert order.stages == ("Created", "Demo", "Proposal")


def test_loops_are_repeated_activities_found_anywhere_in_a_case():
    log = events({"a": ["Ask", "Ping", "Quote", "Ping", "Accepted"], "b": ["Ping", "Ask", "Quote", "Ping", "Rejected"],
                  "c": ["Ask", "Quote", "Ping", "Ping", "Accepted"]})
    p = derive_profile(log)
    assert p.loops == ("Ping",) and p.stages == ("Ask", "Quote")


def test_a_profile_given_that_names_none_of_the_activities_is_refused(tmp_path):
    log = events({"a": ["appointmentscheduled", "closedwon"]})
    with pytest.raises(WorkbenchError, match="none of the stages of profile 'PPVVC B2B' occurs"):
        resolve_profile(log, profile="ppvvc")
    choice = resolve_profile(events({"a": ["Lead Created", "Call", "Closed Won"]}), profile="ppvvc")
    assert choice.profile is PPVVC and "'Call' (1)" in choice.note


def test_a_derived_profile_written_out_loads_back_as_the_same_process(tmp_path, capsys):
    from workbench.cli import main

    assert main(["profile", "--log", str(FOREIGN / "hubspot_dealstage_history.csv")]) == 0
    out = capsys.readouterr()
    path = tmp_path / "profile.yaml"
    path.write_text(out.out, encoding="utf-8")
    loaded = load_profile(path)
    derived = read_event_log(FOREIGN / "hubspot_dealstage_history.csv").profile
    assert (loaded.stages, loaded.won, loaded.lost, loaded.optional) == \
        (derived.stages, derived.won, derived.lost, derived.optional)
    assert not loaded.derived and "derived from the data" in out.err
    # passed back, it is used as it is
    assert read_event_log(FOREIGN / "hubspot_dealstage_history.csv", profile=path).profile == loaded
