"""What the notebooks call around their analyses: load with filters, skip, record results."""

import json

import numpy as np
import pandas as pd
import pytest

from workbench import notebook
from workbench.errors import WorkbenchError
from workbench.schema import MissingColumnError


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "log.csv"
    pd.DataFrame({
        "case_id": ["a", "a", "b", "b"],
        "activity": ["Lead Created", "Closed Won", "Lead Created", "Closed Lost"],
        "timestamp": ["2026-07-01", "2026-07-05", "2026-07-02", "2026-07-09"],
        "rep": ["Ann Lee", "Ann Lee", "Bob Roy", "Bob Roy"],
        "team": ["North", "North", "South", "South"],
    }).to_csv(path, index=False)
    return path


def test_load_keeps_one_team(log_file):
    data = notebook.load(log_file, team="South")
    assert set(data.log["case_id"]) == {"b"}


def test_anonymised_load_keeps_structure_and_hides_names(log_file, monkeypatch):
    monkeypatch.setenv("WORKBENCH_SALT", "s")
    data = notebook.load(log_file, anonymize=True)
    again = notebook.load(log_file, anonymize=True)
    assert not ({"Ann Lee", "Bob Roy", "North", "South", "a", "b"} & set(data.log.astype(str).stack()))
    assert data.log["rep"].nunique() == 2 and data.log["rep"].str.startswith("Rep ").all()
    pd.testing.assert_frame_equal(data.log, again.log)  # stable pseudonyms


def test_load_reuses_inputs_saved_from_the_same_files_and_options(log_file, tmp_path, monkeypatch):
    data = notebook.load(log_file)
    saved = notebook.save_inputs(data, tmp_path / "inputs.pickle", log_file)
    monkeypatch.setenv(notebook.INPUTS_ENV, str(saved))
    calls = []
    import workbench.io

    real = workbench.io.load_sales_data
    monkeypatch.setattr(workbench.io, "load_sales_data", lambda *a, **k: calls.append(k) or real(*a, **k))
    again = notebook.load(str(log_file), team="South")  # filters still apply to the saved inputs
    assert calls == [] and set(again.log["case_id"]) == {"b"}
    pd.testing.assert_frame_equal(notebook.load(log_file).log, data.log)
    assert str(notebook.load(log_file).report) == str(data.report) and calls == []
    # other options, or a file changed since, are read again
    notebook.load(log_file, after_close="keep")
    assert len(calls) == 1
    log_file.write_text(log_file.read_text() + "c,Lead Created,2026-07-03,Ann Lee,North\n")
    assert set(notebook.load(log_file).log["case_id"]) == {"a", "b", "c"} and len(calls) == 2


def test_setup_cuts_the_log_at_the_as_of_date(log_file, tmp_path):
    data, quarter, as_of, results = notebook.setup("x", log=log_file, output_dir=tmp_path, as_of="2026-07-04")
    assert quarter == "2026Q3" and as_of == pd.Timestamp("2026-07-04", tz="UTC")
    assert data.log["timestamp"].max() <= as_of and len(data.log) == 2


def test_skipping_prints_one_line_and_goes_on(capsys):
    with notebook.skipping("win rate per rep"):
        raise MissingColumnError("win rate needs column 'rep'.", column="rep")
    with notebook.skipping("the backtest"):
        raise WorkbenchError("no quarter has enough history.", hint="give a longer log.")
    assert capsys.readouterr().out.splitlines() == [
        "Skipped win rate per rep: win rate needs column 'rep'.",
        "Skipped the backtest: no quarter has enough history. Give a longer log.",
    ]
    with pytest.raises(ValueError):
        with notebook.skipping("a bug"):
            raise ValueError("not an input problem: must not be hidden")


def test_results_write_plain_json(tmp_path):
    results = notebook.Results("nb", tmp_path)
    results.headline("Win rate", np.float64(0.25))
    results["table"] = pd.DataFrame({"a": [1, 2], "b": [np.nan, 3.5]})
    results["when"] = pd.Timestamp("2026-07-01", tz="UTC")
    written = json.loads(results.write().read_text())
    assert written["headline"] == [{"label": "Win rate", "value": 0.25}]
    assert written["table"] == [{"a": 1, "b": None}, {"a": 2, "b": 3.5}]
    assert written["when"] == "2026-07-01T00:00:00+00:00"
