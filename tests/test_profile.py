"""Sales process profiles: the shipped files, loading, and the errors a wrong profile gets."""

import json
from pathlib import Path

import pytest
import yaml

import workbench
from workbench.errors import WorkbenchError
from workbench.profile import PPVVC, SALESFORCE, SalesProcessProfile, get_profile, load_profile

SHIPPED_DIR = Path(workbench.__file__).parent / "profiles"


@pytest.mark.parametrize("name, expected", [("ppvvc", PPVVC), ("salesforce", SALESFORCE)])
def test_shipped_files_load_equal_to_the_builtin_profiles(name, expected):
    assert load_profile(SHIPPED_DIR / f"{name}.yaml") == expected


def test_get_profile_resolves_names_objects_and_paths(tmp_path):
    assert get_profile(None) is PPVVC
    assert get_profile("SalesForce") is SALESFORCE
    assert get_profile(PPVVC) is PPVVC
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(SALESFORCE.to_dict()), encoding="utf-8")
    assert get_profile(path) == SALESFORCE


def test_a_small_yaml_profile_gets_defaults(tmp_path):
    path = tmp_path / "client.yaml"
    path.write_text("stages: [Lead, Demo, Offer]\nwon: [Won]\nlost: [Lost]\noptional: [Demo]\n", encoding="utf-8")
    p = load_profile(path)
    assert p.name == "client"  # the file name
    assert p.mandatory == ("Lead", "Offer")
    assert p.closing == ("Won", "Lost")
    assert p.followup_gap_days == 45.0
    assert p.rank("Offer") == 2 and p.rank("Won") == 3 and p.rank("Coffee") is None


def _write(tmp_path, data: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


BASE = {"name": "x", "stages": ["A", "B"], "won": ["W"], "lost": ["L"]}


@pytest.mark.parametrize("change, words", [
    ({"optional": ["C"]}, "optional stage 'C' is not one of the stages"),
    ({"milestones": {"Pain": "Q"}}, "milestone stage 'Q'"),
    ({"roles": {"proposal": "Z"}}, "role 'proposal' names 'Z'"),
    ({"won": []}, "has lost activities but no won ones"),
    ({"lost": []}, "has won activities but no lost ones"),
    ({"ends": ["W"]}, "under both 'won' and 'ends'"),
    ({"events_after_close": "drop"}, "events_after_close='drop' is not an option"),
    ({"stages": ["A", "B", "A"]}, "makes a cycle"),
    ({"loops": ["A"]}, "both loops and stages"),
    ({"won": ["A"]}, "both stages and closing"),
    ({"followup_gap_days": -3}, "followup_gap_days"),
    ({"colour": "red"}, "unknown keys ['colour']"),
])
def test_a_wrong_profile_gets_an_error_naming_the_problem_and_the_file(tmp_path, change, words):
    path = _write(tmp_path, {**BASE, **change})
    with pytest.raises(WorkbenchError) as err:
        load_profile(path)
    assert words in str(err.value)
    assert str(path) in str(err.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(WorkbenchError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="not valid json"):
        load_profile(bad)
    incomplete = tmp_path / "inc.yaml"
    incomplete.write_text("won: [W]\nlost: [L]\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="incomplete"):
        load_profile(incomplete)


def test_round_trip_through_to_dict():
    assert SalesProcessProfile(**PPVVC.to_dict()) == PPVVC
