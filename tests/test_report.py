"""The report command: parameters checked first, failures named, nothing half-written."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from workbench import WorkbenchError
from workbench.cli import main
from workbench.profile import PPVVC
from workbench.calendar import resolve_period
from workbench.report import build_report, run_notebook


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
    # the parameters a report gives (papermill passes a notebook only those it declares)
    params = new_code_cell("\n".join(f"{name} = None" for name in (
        "log", "kind", "mapping", "quotas", "reps", "profile", "encoding", "dayfirst", "timezone", "sheet",
        "lifecycle", "after_close", "quarter", "as_of", "team", "region", "seed", "anonymize", "currency")) +
        '\noutput_dir = "."')
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
    with pytest.raises(WorkbenchError, match=r"notebook 02_broken failed in cell \d+: ValueError: boom") as raised:
        build_report(log=log, out=out, notebooks=("01_ok", "02_broken"), notebook_dir=notebooks, timeout=60)
    assert [p.name for p in out.iterdir()] == ["failed"]  # no report, no temporary folder, no lock
    # the failed notebook is kept outside the report, executed up to the failing cell, and the error names it
    (kept,) = (out / "failed").iterdir()
    assert kept.name == "02_broken.ipynb" and raised.value.file == str(kept)
    cells = nbformat.read(kept, as_version=4).cells
    assert any(o.get("ename") == "ValueError" for c in cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_a_kernel_that_dies_while_starting_is_started_again(tmp_path, monkeypatch):
    import papermill

    notebooks, out = tmp_path / "nbs", tmp_path / "out"
    notebooks.mkdir()
    out.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "open('ran.txt', 'w').write('yes')")
    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kw):
        calls.append(1)
        if len(calls) == 1:  # as when another process took one of the kernel's ports
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kw)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    run_notebook("01_ok", {}, out, timeout=60, notebook_dir=notebooks)
    assert len(calls) == 2 and (out / "ran.txt").read_text() == "yes"

    def broken(*args, **kw):
        calls.append(1)
        raise RuntimeError("something else")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", broken)
    with pytest.raises(RuntimeError, match="something else"):
        run_notebook("01_ok", {}, out, timeout=60, notebook_dir=notebooks)
    assert len(calls) == 1  # only a kernel that died starting is started again


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


def _one_page_report(tmp_path: Path, monkeypatch, code: str, headline: str, **options) -> Path:
    """Run, from ``tmp_path``, a report of one notebook that runs ``code`` and then shows
    ``headline`` (an expression giving (label, value) pairs) on the index page."""
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", f"{code}\nimport json, pathlib\n"
              "pathlib.Path(output_dir, '01_ok.json').write_text(json.dumps("
              f"{{'headline': [{{'label': k, 'value': v}} for k, v in {headline}]}}))")
    monkeypatch.chdir(tmp_path)
    return build_report(out="reports", notebooks=("01_ok",), notebook_dir=notebooks, timeout=60, **options)


def test_notebooks_side_by_side_run_in_the_report_folder_and_leave_the_callers_folder_alone(
        tmp_path, small_log, monkeypatch):
    small_log.to_csv(tmp_path / "log.csv", index=False)
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    names = ("01_a", "02_b", "03_c")
    for name in names:
        _notebook(notebooks / f"{name}.ipynb", "import json, pathlib, time\ntime.sleep(1)\n"
                  f"pathlib.Path('{name}.txt').write_text('relative')\n"
                  f"pathlib.Path(output_dir, '{name}.json').write_text(json.dumps({{'headline': []}}))")
    monkeypatch.chdir(tmp_path)
    index = build_report(log="log.csv", out="reports", notebooks=names, notebook_dir=notebooks, timeout=60, jobs=2)
    assert Path.cwd() == tmp_path
    assert all((index.parent / f"{name}.txt").exists() for name in names)
    # papermill's file handler is one per process, and notebooks run side by side used to leave it
    # set to the folder of the report's caller: a later notebook read from another folder then
    # changed the process's folder back to it (the process ended in an earlier test's folder).
    from papermill.iorw import papermill_io

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.ipynb").write_text("{}")
    monkeypatch.chdir(elsewhere)
    assert papermill_io.read("mine.ipynb") == "{}"
    assert Path.cwd() == elsewhere


def test_relative_output_folder_gets_the_index_and_the_pages(tmp_path, small_log, monkeypatch):
    small_log.to_csv(tmp_path / "log.csv", index=False)
    index = _one_page_report(tmp_path, monkeypatch, "", "[('Answer', 42)]", log="log.csv")
    assert index == tmp_path / "reports" / "2026Q3" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "<th>Answer</th><td>42</td>" in page and 'href="01_ok.html"' in page
    assert (index.parent / "01_ok.html").exists()
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["2026Q3"]


LOAD = "data = notebook.load(log, kind=kind, mapping=mapping, quotas=quotas, reps=reps, profile=profile)"


def test_notebooks_start_from_the_inputs_the_report_validated(tmp_path, small_log, monkeypatch):
    small_log.to_csv(tmp_path / "log.csv", index=False)
    code = ("import workbench.io\nfrom workbench import notebook\n"
            f"workbench.io.load_sales_data = None  # reading the files again would fail\n{LOAD}")
    from workbench.engine import backends

    backends.connect()  # as reading a large log would have
    index = _one_page_report(tmp_path, monkeypatch, code, "[('Deals', data.log['case_id'].nunique())]",
                             log="log.csv")
    assert "<th>Deals</th><td>2</td>" in index.read_text(encoding="utf-8")
    # the report's own engine closed once the inputs were saved: its memory went back for the kernels
    assert "duckdb" not in backends.CONNECTIONS
    assert not list(index.parent.glob(".inputs*"))  # the saved inputs do not stay in the report
    assert "WORKBENCH_VALIDATED_INPUTS" not in os.environ


def test_relative_mapping_and_profile_files_reach_the_notebooks(tmp_path, monkeypatch):
    inputs = Path(__file__).parent / "data" / "inputs"
    for name in ("opportunities.csv", "opportunities_mapping.yaml"):
        shutil.copy(inputs / name, tmp_path / name)
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump({**PPVVC.to_dict(), "name": "Ours"}))
    # the notebook reads the files itself, as an analyst re-running it would
    code = f"import os\nfrom workbench import notebook\nos.environ.pop(notebook.INPUTS_ENV)\n{LOAD}"
    index = _one_page_report(tmp_path, monkeypatch, code,
                             "[('Profile', data.profile.name), ('Deals', data.log['case_id'].nunique())]",
                             log="opportunities.csv", mapping="opportunities_mapping.yaml", profile="profile.yaml")
    page = index.read_text(encoding="utf-8")
    assert "<th>Profile</th><td>Ours</td>" in page
    assert f"<th>Deals</th><td>{len(pd.read_csv(inputs / 'opportunities.csv'))}</td>" in page


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


def test_the_report_reads_the_files_with_the_options_check_takes(tmp_path, monkeypatch):
    """--encoding, --dayfirst, --timezone and --sheet reach the notebooks' own reading of the files."""
    text = "deal,stage,when,owner\nD1,Lead Created,05/03/2026 10:00,Иван\nD1,Closed Won,09/03/2026 10:00,Иван\n"
    (tmp_path / "export.csv").write_bytes(text.encode("cp1251"))
    code = ("import os\nfrom workbench import notebook\nos.environ.pop(notebook.INPUTS_ENV)\n"
            "params = {k: globals().get(k, v) for k, v in notebook.READ_OPTIONS.items()}\n"
            "data = notebook.load(log, **params)")
    index = _one_page_report(
        tmp_path, monkeypatch, code,
        "[('Won at', str(data.log['timestamp'].max())), ('Rep', data.log['rep'].iloc[0])]",
        log="export.csv", mapping="case_id=deal,activity=stage,timestamp=when,rep=owner", encoding="cp1251",
        dayfirst=True, timezone="Europe/Moscow")
    page = index.read_text(encoding="utf-8")
    assert "<th>Won at</th><td>2026-03-09 07:00:00+00:00</td>" in page  # 10:00 in Moscow, 9 March
    assert "<th>Rep</th><td>Иван</td>" in page


# ---------------------------------------------------------------- interrupts and a second report at once

RUNNER = """
import sys
from pathlib import Path
import workbench.report as report
from workbench import cli
build = report.build_report
notebooks = tuple(sorted(p.stem for p in Path(sys.argv[1]).glob("*.ipynb")))
report.build_report = lambda **kw: build(**kw, notebooks=notebooks, notebook_dir=Path(sys.argv[1]))
sys.exit(cli.main(sys.argv[2:]))
"""


def _start_report(tmp_path: Path, small_log: pd.DataFrame, body: str,
                  pages: tuple[str, ...] = ("01_ok",)) -> tuple[subprocess.Popen, Path, dict]:
    """``workbench report`` in a process of its own, on notebooks that run ``body``; TMPDIR is ours."""
    notebooks = tmp_path / "nbs"
    notebooks.mkdir(exist_ok=True)
    for page in pages:
        _notebook(notebooks / f"{page}.ipynb", body)
    small_log.to_csv(tmp_path / "log.csv", index=False)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    out = tmp_path / "reports"
    argv = [sys.executable, "-c", RUNNER, str(notebooks), "report", "--log", str(tmp_path / "log.csv"),
            "--out", str(out)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out, env


def _wait_for(condition, what: str, process: subprocess.Popen, limit: float = 120) -> object:
    """Poll ``condition`` until it gives something (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if (found := condition()):
            return found
        if process.poll() is not None:
            pytest.fail(f"the report ended before {what}: {process.communicate()}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no {what} within {limit} s")


def _kernels(process: subprocess.Popen) -> list:
    """The report's kernels: in sessions of their own, so found by the parent pid they were given."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        with contextlib.suppress(psutil.Error):
            if "ipykernel_launcher" in " ".join(p.info["cmdline"] or []) and \
                    (p.info["environ"] or {}).get("JPY_PARENT_PID") == str(process.pid):
                found.append(p)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_report_kills_its_kernels_and_leaves_the_previous_report(tmp_path, small_log, signum):
    previous = tmp_path / "reports" / "2026Q3"
    previous.mkdir(parents=True)
    (previous / "index.html").write_text("the previous report")
    # three pages, two at a time: two kernels are killed and the third page never starts
    process, out, env = _start_report(tmp_path, small_log, "import time\ntime.sleep(600)",
                                      pages=("01_a", "02_b", "03_c"))
    kernels = _wait_for(lambda: (found := _kernels(process)) and len(found) == 2 and found, "two kernels", process)
    time.sleep(1)  # the kernels are in the sleeping cell
    process.send_signal(signum)
    _, err = process.communicate(timeout=45)  # a hang guard: it stops in a few seconds
    assert process.returncode == 128 + signum
    assert f"stopped ({signal.Signals(signum).name})" in err and "Traceback" not in err
    import psutil

    assert not [k for k in kernels if k.is_running() and k.status() != psutil.STATUS_ZOMBIE], "a kernel is left"
    assert sorted(p.name for p in out.iterdir()) == ["2026Q3"]  # no temporary folder, no lock
    assert (previous / "index.html").read_text() == "the previous report"
    # the validated inputs are gone with their folder (the engine's spill folder may stay)
    assert [p.name for p in (tmp_path / "tmp").iterdir()] in ([], ["workbench-duckdb"])
    assert not list(tmp_path.rglob("*.pickle"))


@pytest.mark.slow
def test_a_second_report_into_the_same_folder_is_refused_naming_the_lock(tmp_path, small_log):
    body = ("import json, pathlib, time\ntime.sleep(3)\n"
            "pathlib.Path(output_dir, '01_ok.json').write_text(json.dumps({'headline': []}))")
    first, out, env = _start_report(tmp_path, small_log, body)
    lock = out / ".2026Q3.lock"
    _wait_for(lambda: lock.exists() and lock.read_text().strip(), "lock", first)
    second = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path / "nbs"), "report", "--log",
                             str(tmp_path / "log.csv"), "--out", str(out)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 2
    assert str(lock) in second.stderr and f"pid {first.pid}" in second.stderr
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert (out / "2026Q3" / "index.html").exists() and not lock.exists()
