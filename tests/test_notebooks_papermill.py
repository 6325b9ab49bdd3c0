"""The notebooks as a scheduler and JupyterLab see them, without the report command.

Each notebook runs with plain ``papermill`` (a subprocess, no workbench environment
variable) from a folder other than ``notebooks/``, with only the parameters of the
README's scheduled-run example; ``papermill --help-notebook`` documents every
parameter; the committed notebooks carry no outputs and name the kernel ``make``
registers.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.report import KERNEL, NOTEBOOK_DIR, NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAPERMILL = str(BIN / "papermill")


def _scheduled_example() -> list[str]:
    """The README's scheduled-run command, as a list of arguments."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n# scheduled run\n(.*?)```", readme, re.S)
    assert block, "the README has no ```sh block starting with '# scheduled run'"
    command = " ".join(line.rstrip("\\").strip() for line in block.group(1).splitlines()
                       if line.strip() and not line.strip().startswith("#"))
    return shlex.split(command.split("papermill", 1)[1])


def _plain_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH", "JPY_", "TQDM"))}
    return env


def test_readme_example_passes_inputs_and_output_dir_only_as_parameters():
    args = _scheduled_example()
    names = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert {"log", "reps", "quotas", "output_dir"} <= set(names)


@pytest.fixture(scope="module")
def plain_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every notebook run as the README's example says, two at a time, from a scratch folder."""
    work = tmp_path_factory.mktemp("scheduler")
    args = _scheduled_example()
    params = args[2:]  # after the notebook and the output notebook
    inputs = {params[i + 1]: Path(params[i + 2]) for i in range(0, len(params), 3)}
    assert main(["demo-data", "--size", "tiny", "--out", str(work / "demo")]) == 0
    for name, file in (("log", "events.csv"), ("reps", "reps.csv"), ("quotas", "quotas.csv")):
        (work / inputs[name]).parent.mkdir(parents=True, exist_ok=True)
        (work / "demo" / file).rename(work / inputs[name])
    out_dir = Path(params[params.index("output_dir") + 1])
    (work / out_dir).mkdir(parents=True, exist_ok=True)
    jobs = [(name, name, out_dir, {}) for name in NOTEBOOKS]
    # And the discovery notebook as JupyterLab runs it: its kernel's environment names the session.
    jobs.append(("jupyterlab", "01_process_discovery", Path("lab"),
                 {"JPY_SESSION_NAME": str(NOTEBOOK_DIR / "01_process_discovery.ipynb")}))
    runs, running = {}, []
    for i, (key, name, folder, env) in enumerate(jobs):
        (work / folder).mkdir(parents=True, exist_ok=True)
        nb_params = _for_notebook(params, name)
        if key == "jupyterlab":
            nb_params[nb_params.index("output_dir") + 1] = str(folder)
        command = [PAPERMILL, str(NOTEBOOK_DIR / f"{name}.ipynb"), str(folder / f"{name}.ipynb"), *nb_params]
        running.append((key, folder, subprocess.Popen(command, cwd=work, env={**_plain_environment(), **env},
                                                      text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        if len(running) == 2 or i == len(jobs) - 1:
            for done, where, process in running:
                output, _ = process.communicate(timeout=600)
                runs[done] = (subprocess.CompletedProcess(process.args, process.returncode, output), work / where)
            running = []
    return runs


def _for_notebook(params: list[str], name: str) -> list[str]:
    """The example's parameters that ``name`` declares (papermill warns about the others)."""
    declared = _parameters(name)
    out = []
    for i in range(0, len(params), 3):
        if params[i] == "-p" and params[i + 1] in declared:
            out += params[i:i + 3]
    return out


def _parameters(name: str) -> dict[str, dict]:
    from papermill.inspection import inspect_notebook

    return inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_plain_papermill_from_another_folder_writes_into_output_dir(plain_runs, name):
    run, out_dir = plain_runs[name]
    assert run.returncode == 0, run.stdout[-3000:]
    assert (out_dir / f"{name}.ipynb").exists()
    results = json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8"))
    for figure in results["figures"]:
        assert (out_dir / figure).stat().st_size > 0
    executed = json.loads((out_dir / f"{name}.ipynb").read_text(encoding="utf-8"))
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    # Progress bars are text on stderr; nothing needs a widget manager or a script from the internet.
    assert not [o for o in outputs if any("widget" in k for k in o.get("data", {}))]
    assert "<script" not in json.dumps(outputs)


@pytest.mark.slow
def test_discovery_map_fits_the_output_area_and_the_explorer_shows_in_jupyterlab_only(plain_runs):
    run, out_dir = plain_runs["01_process_discovery"]
    executed = json.loads((out_dir / "01_process_discovery.ipynb").read_text(encoding="utf-8"))
    maps = ["".join(o["data"]["text/html"]) for c in executed["cells"] for o in c.get("outputs", [])
            if "wb-map-levels" in "".join(o.get("data", {}).get("text/html", ""))]
    assert len(maps) == 2  # how often, and the median wait
    assert all(m.count("<svg ") == m.count('<svg style="max-width:100%;height:auto"') >= 2 for m in maps)
    lab, lab_dir = plain_runs["jupyterlab"]
    assert lab.returncode == 0, lab.stdout[-3000:]
    executed = json.loads((lab_dir / "01_process_discovery.ipynb").read_text(encoding="utf-8"))
    widgets = [o for c in executed["cells"] for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "the map explorer is missing from the JupyterLab run"


@pytest.mark.slow
def test_a_list_given_as_text_is_parsed_and_a_bad_one_refused(tmp_path):
    run = subprocess.run(
        [PAPERMILL, str(NOTEBOOK_DIR / "03_quota_forecast.ipynb"), str(tmp_path / "out.ipynb"),
         "-p", "backtest_weeks", "[1, x]", "-p", "output_dir", str(tmp_path / "out")],
        cwd=tmp_path, env=_plain_environment(), capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "parameter 'backtest_weeks' is '[1, x]', which is not a list of whole numbers" in run.stderr + run.stdout


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_help_notebook_gives_every_parameter_a_type_and_a_description(name):
    run = subprocess.run([PAPERMILL, "--help-notebook", str(NOTEBOOK_DIR / f"{name}.ipynb")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Unknown type" not in run.stdout
    params = _parameters(name)
    assert len(params) >= 19
    for p in params.values():
        assert p["inferred_type_name"] not in ("None", ""), p
        assert len(p["help"]) > 10, p
        assert re.search(rf"^  {p['name']}: {re.escape(p['inferred_type_name'])} \(default", run.stdout, re.M)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_names_the_registered_kernel(name):
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    # nbstripout, the git filter `make test` configures, would change nothing.
    run = subprocess.run([str(BIN / "nbstripout"), "--verify", "--keep-id", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")
    assert nb["metadata"]["kernelspec"]["name"] == KERNEL
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"ipykernel install --sys-prefix --name {KERNEL} " in makefile


def test_the_kernel_make_registers_is_found(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(KERNEL)
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
