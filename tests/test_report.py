"""The report command: parameters checked first, failures named, nothing half-written."""

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from workbench import WorkbenchError
from workbench.cli import main
from workbench.report import build_report, resolve_period, run_notebook


@pytest.fixture
def small_log() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": ["a", "a", "b"],
        "activity": ["Lead Created", "Closed Won", "Lead Created"],
        "timestamp": pd.to_datetime(["2026-06-20", "2026-07-10", "2026-08-20"], utc=True),
    })


def test_resolve_period_defaults_to_the_last_event_and_its_quarter(small_log):
    quarter, as_of = resolve_period(small_log, None, None)
    assert quarter == "2026Q3"
    assert as_of == pd.Timestamp("2026-08-20", tz="UTC")


def test_resolve_period_for_a_past_quarter_stops_at_its_end(small_log):
    quarter, as_of = resolve_period(small_log, "2026 Q2", None)
    assert quarter == "2026Q2"
    assert as_of == pd.Timestamp("2026-06-30 23:59:59", tz="UTC")


@pytest.mark.parametrize(("quarter", "as_of", "message"), [
    ("2026-13", None, "is not a quarter"),
    ("2027Q1", None, "starts after the last event"),
    (None, "2020-01-01", "outside the data"),
    (None, "not a date", "is not a date"),
    ("2026Q2", "2026-08-01", "is not inside 2026Q2"),
])
def test_resolve_period_rejects_bad_parameters(small_log, quarter, as_of, message):
    with pytest.raises(WorkbenchError, match=message):
        resolve_period(small_log, quarter, as_of)


def _notebook(path: Path, body: str) -> None:
    nb = new_notebook()
    params = new_code_cell('log = None\noutput_dir = "."')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell("# A test page"), params, new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failing_notebook_fails_the_report_naming_it_and_leaves_nothing(tmp_path, small_log):
    log = tmp_path / "log.csv"
    small_log.to_csv(log, index=False)
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", 'import json; json.dump({"headline": []}, open("01_ok.json", "w"))')
    _notebook(notebooks / "02_broken.ipynb", "raise ValueError('boom in the analysis')")
    out = tmp_path / "reports"
    with pytest.raises(WorkbenchError, match=r"notebook 02_broken failed in cell \d+: ValueError: boom"):
        build_report(log=log, out=out, notebooks=("01_ok", "02_broken"), notebook_dir=notebooks, timeout=60)
    assert list(out.iterdir()) == []  # no report, no temporary folder


def test_notebooks_run_on_a_kernel_with_encrypted_channels(tmp_path, capfd):
    from jupyter_client.manager import AsyncKernelManager

    if "transport_encryption" not in AsyncKernelManager.class_trait_names():
        pytest.skip("this jupyter_client cannot encrypt a kernel's channels")
    notebooks, out = tmp_path / "nbs", tmp_path / "out"
    notebooks.mkdir()
    out.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "import json\nfrom ipykernel.kernelapp import IPKernelApp\n"
              "json.dump({'encrypted': IPKernelApp.instance().curve_secretkey is not None}, open('k.json', 'w'))")
    run_notebook("01_ok", {}, out, timeout=60, notebook_dir=notebooks)
    assert json.loads((out / "k.json").read_text()) == {"encrypted": True}
    assert "without encryption" not in capfd.readouterr().err


def test_relative_output_folder_gets_the_index_and_the_pages(tmp_path, small_log, monkeypatch):
    small_log.to_csv(tmp_path / "log.csv", index=False)
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "import json, pathlib\n"
              "pathlib.Path(output_dir, '01_ok.json').write_text(json.dumps("
              "{'headline': [{'label': 'Answer', 'value': 42}]}))")
    monkeypatch.chdir(tmp_path)
    index = build_report(log="log.csv", out="reports", notebooks=("01_ok",), notebook_dir=notebooks, timeout=60)
    assert index == tmp_path / "reports" / "2026Q3" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<th>Answer</th><td>42</td>" in page and 'href="01_ok.html"' in page
    assert (index.parent / "01_ok.html").exists()
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["2026Q3"]


def test_report_rejects_an_unknown_team_before_running_anything(tmp_path, small_log, capsys):
    small_log.assign(team="Enterprise").to_csv(tmp_path / "log.csv", index=False)
    code = main(["report", "--log", str(tmp_path / "log.csv"), "--team", "Nope", "--out", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--team 'Nope' is not in the log" in err and "Enterprise" in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_report_rejects_missing_files_before_running_anything(tmp_path, capsys):
    code = main(["report", "--log", str(tmp_path / "nope.csv"), "--quarter", "2026Q3"])
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err
