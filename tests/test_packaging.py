"""The project's set-up files agree with each other."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells a few packages differently from PyPI.
CONDA_NAMES = {"python-duckdb": "duckdb", "python-graphviz": "graphviz"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_has_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            listed |= {_name(d) for d in dep["pip"] if not d.startswith("-e")}
        else:
            listed.add(CONDA_NAMES.get(_name(dep), _name(dep)))
    missing = wanted - listed
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    extra = listed - wanted - {"python", "pip", "graphviz"}
    assert not extra, f"environment.yml has {sorted(extra)} that pyproject.toml does not"


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme


def test_licence_is_agpl():
    assert "GNU AFFERO GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "AGPL-3.0-or-later"


def test_every_public_name_resolves():
    import workbench

    for name in workbench.__all__:
        assert getattr(workbench, name) is not None, name


@pytest.mark.slow
def test_a_wheel_installed_outside_the_checkout_writes_the_report(tmp_path):
    """pip install of the wheel (not editable), then the README's commands from another folder."""
    import os
    import subprocess
    import sys
    import sysconfig
    import venv

    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(dist), str(ROOT)], check=True)
    (wheel,) = dist.glob("workbench-*.whl")
    env_dir = tmp_path / "env"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True)
    # The dependencies come from this environment's site-packages (read after the new one's own),
    # so no download is needed and the workbench imported is the wheel's, not the checkout's.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import workbench; print(workbench.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(site)
    # nbconvert's page templates are data files of its installation, which the new environment
    # borrows: point Jupyter at them (and only them: its kernels must be the new environment's).
    jupyter = tmp_path / "jupyter"
    jupyter.mkdir()
    (jupyter / "nbconvert").symlink_to(Path(sys.prefix, "share", "jupyter", "nbconvert"))
    run = dict(cwd=work, check=True, env={**os.environ, "TQDM_DISABLE": "1", "JUPYTER_PATH": str(jupyter)})
    workbench = env_dir / "bin" / "workbench"
    subprocess.run([str(workbench), "demo-data", "--size", "tiny", "--out", "demo"], **run, capture_output=True)
    report = subprocess.run([str(workbench), "report", "--log", "demo/events.parquet", "--reps", "demo/reps.csv",
                             "--quotas", "demo/quotas.csv", "--out", "reports"], **run, capture_output=True, text=True)
    # A successful report says so and nothing else: no kernel shutdown error, no warning.
    assert report.stdout.strip().startswith("Report written to"), report.stdout
    assert "KeyboardInterrupt" not in report.stderr and "ERROR" not in report.stderr, report.stderr[-2000:]
    (quarter,) = (work / "reports").iterdir()
    assert sorted(p.name for p in quarter.glob("*.html")) == [
        "01_process_discovery.html", "02_bottlenecks.html", "03_quota_forecast.html", "04_sales_audit.html",
        "glossary.html", "index.html"]


def test_the_readme_python_examples_run(tmp_path, monkeypatch):
    """Every ```python block of the README, in order, in one namespace, on demo data where it says."""
    import matplotlib

    from workbench.synth import write_demo_data

    matplotlib.use("Agg")
    write_demo_data(tmp_path / "data" / "demo", seed=7, size="small")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    forecast = namespace["forecast"].table()
    assert {"rep", "team", "company"} <= set(forecast["level"])
    assert len(namespace["data"].log) > 0
