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


@pytest.mark.parametrize("annotation, given, expected", [
    ("list[int]", "[1, 5, 9]", [1, 5, 9]),
    ("list[int]", "1, 5", [1, 5]),
    ("list[int]", 4, [4]),
    ("list[int]", [4, 8], [4, 8]),
    ("int", "10_000", 10_000),
    ("int", 12.0, 12),
    ("float", "0.7", 0.7),
    ("bool", "false", False),
    ("bool", True, True),
    ("Optional[str]", 7, "7"),
    ("Optional[str]", "None", None),
    ("Optional[date]", "2026-11-12", "2026-11-12"),
    ("Optional[date]", None, None),
    ("str", "UTC", "UTC"),
])
def test_parameters_given_as_text_get_their_declared_type(annotation, given, expected):
    ns = {"__annotations__": {"p": annotation}, "p": given, "other": "[1]"}
    assert notebook.coerce_parameters(ns) == {"p": expected}
    assert ns["p"] == expected and ns["other"] == "[1]"  # unannotated names are left alone


@pytest.mark.parametrize("annotation, given, words", [
    ("list[int]", "[1, x]", "a list of whole numbers"),
    ("list[int]", "[1.5]", "a list of whole numbers"),
    ("list[int]", "[]", "a list of whole numbers"),
    ("int", "ten", "a whole number"),
    ("int", 2.5, "a whole number"),
    ("bool", "maybe", "True or False"),
    ("Optional[date]", "next friday", "a date"),
    ("int", None, "cannot be empty"),
])
def test_parameters_that_do_not_fit_are_refused_with_name_value_and_example(annotation, given, words):
    with pytest.raises(WorkbenchError, match=words) as err:
        notebook.coerce_parameters({"__annotations__": {"weeks": annotation}, "weeks": given})
    assert "parameter 'weeks'" in str(err.value) and "-p weeks" in str(err.value)


def test_progress_bars_are_text_on_stderr_outside_a_jupyter_session(monkeypatch, capsys):
    from tqdm.notebook import tqdm_notebook
    from tqdm.std import tqdm as text_bar

    from workbench.progress import tqdm

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    bar = tqdm(total=2, desc="work")
    assert type(bar) is text_bar
    bar.update(2)
    bar.close()
    assert "work: 100%" in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what the report sets: no bar on a page, even one asked for
    quiet = tqdm(total=2, desc="work", disable=False)
    quiet.update(2)
    quiet.close()
    assert quiet.disable and capsys.readouterr().err == ""
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/ann/01_process_discovery.ipynb")
    assert isinstance(tqdm(total=1, disable=True), tqdm_notebook)


def test_the_salt_file_is_readable_by_its_owner_only(tmp_path, monkeypatch):
    import stat

    from workbench.anonymize import default_salt

    monkeypatch.delenv("WORKBENCH_SALT", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    salt = default_salt()
    path = tmp_path / "workbench" / "salt"
    assert path.read_text() == salt and len(salt) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert default_salt() == salt  # made once, then kept


def test_library_warnings_are_recorded_in_the_pages_json_and_never_printed(log_file, tmp_path, monkeypatch, capsys):
    import warnings

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    _, _, _, results = notebook.setup("x", log=log_file, output_dir=tmp_path)
    warnings.warn("the model for Enterprise West did not converge", RuntimeWarning)
    warnings.warn("the model for Enterprise West did not converge", RuntimeWarning)  # recorded once
    captured = capsys.readouterr()
    assert "converge" not in captured.err + captured.out
    written = json.loads(results.write().read_text(encoding="utf-8"))
    assert written["library_warnings"] == ["RuntimeWarning: the model for Enterprise West did not converge"]


def _compute_shared(args) -> int:
    """In a process of its own, as a report notebook's kernel: the shared value of one key."""
    inputs, log_path = args
    import os
    import time

    os.environ[notebook.INPUTS_ENV] = inputs

    def compute() -> int:
        with open(log_path, "a") as f:
            f.write("computed\n")
        time.sleep(0.5)  # long enough for the other process to ask meanwhile
        return 42

    return notebook.shared(("backtest", 1), compute)


def test_a_shared_result_is_computed_once_per_report_by_whichever_notebook_asks_first(tmp_path, monkeypatch):
    import multiprocessing

    inputs = tmp_path / "inputs.pickle"
    inputs.write_bytes(b"")
    computed = tmp_path / "computed.txt"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        values = pool.map(_compute_shared, [(str(inputs), str(computed))] * 2)
    assert values == [42, 42]
    assert computed.read_text() == "computed\n"
    # outside a report every call computes
    monkeypatch.delenv(notebook.INPUTS_ENV, raising=False)
    calls = []
    assert notebook.shared(("x",), lambda: calls.append(1) or 7) == 7
    assert notebook.shared(("x",), lambda: calls.append(1) or 7) == 7
    assert calls == [1, 1]


def test_the_fingerprint_tells_logs_apart_and_knows_the_same_one():
    a = pd.DataFrame({"case_id": ["a", "b"], "activity": ["x", "y"]})
    assert notebook.fingerprint(a) == notebook.fingerprint(a.copy())
    assert notebook.fingerprint(a) != notebook.fingerprint(a.assign(activity=["x", "z"]))
    assert notebook.fingerprint(None) is None


def test_once_shares_an_analysis_of_the_same_log_and_options_and_no_other(log_file, tmp_path, monkeypatch):
    from workbench import bottlenecks, conformance

    data, south = notebook.load(log_file), notebook.load(log_file, team="South")
    inputs = tmp_path / "inputs.pickle"
    inputs.write_bytes(b"")
    monkeypatch.setenv(notebook.INPUTS_ENV, str(inputs))
    calls = []

    def counted(analysis):
        def run(log, **kwargs):
            calls.append(analysis.__name__)
            return analysis(log, **kwargs)
        run.__module__, run.__qualname__ = analysis.__module__, analysis.__qualname__
        return run

    deviations = conformance.detect_deviations(data.log, profile=data.profile, quarantine=data.quarantine)
    first = notebook.once(counted(conformance.detect_deviations), data, quarantine=True)
    pd.testing.assert_frame_equal(first, deviations)  # what the analysis itself gives
    pd.testing.assert_frame_equal(notebook.once(counted(conformance.detect_deviations), data, quarantine=True), first)
    assert calls == ["detect_deviations"]
    # another option, another DataFrame option or another log is computed again
    by_team = notebook.once(counted(conformance.conformance_summary), data, by="team", deviations=deviations)
    notebook.once(counted(conformance.conformance_summary), data, by="team", deviations=deviations)
    notebook.once(counted(conformance.conformance_summary), data, by="team", deviations=deviations.iloc[:0])
    notebook.once(counted(conformance.conformance_summary), data, by="rep", deviations=deviations)
    assert calls.count("conformance_summary") == 3 and by_team["team"].tolist() == ["North", "South"]
    notebook.once(counted(bottlenecks.rank_bottlenecks), data, by="team")
    notebook.once(counted(bottlenecks.rank_bottlenecks), south, by="team")
    assert calls.count("rank_bottlenecks") == 2
