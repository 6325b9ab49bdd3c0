"""The quarterly report: run the notebooks with papermill, export them to HTML, write an index.

The report is built in a temporary folder beside its destination and moved to
``<out>/<quarter>/`` only when every notebook has run, so a failure never leaves
a complete-looking report behind.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import shutil
import tempfile
from importlib import resources
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .calendar import resolve_period
from .errors import WorkbenchError

#: The notebooks of the report, in the order they run and appear.
NOTEBOOKS = ("01_process_discovery", "02_bottlenecks", "03_quota_forecast", "04_sales_audit")
#: The notebooks ship inside the package, so an installed workbench writes the same report.
NOTEBOOK_DIR = Path(str(resources.files("workbench") / "notebooks"))
KERNEL = "workbench"
#: Below this many events the notebooks run two at a time: a kernel holds the log three or four
#: times over at its peak (3.3 GB at a million events), so two fit easily in memory there.
PARALLEL_BELOW = 2_000_000


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def _kernel_manager_class() -> type:
    """nbclient's kernel manager, encrypting the kernel's channels (CurveZMQ) where the
    installed jupyter_client and pyzmq can.

    The notebooks carry a client's deals; unencrypted, any process on the machine could
    subscribe to the kernel's outputs, and ipykernel warns about it once per notebook.
    A kernel that finished its notebook is shut down without the interrupt jupyter_client
    sends first, which ipykernel reported as an error ("KeyboardInterrupt caught in
    kernel") after every successful notebook.
    """
    import zmq
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class QuietKernelManager(AsyncKernelManager):
        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    if "transport_encryption" not in AsyncKernelManager.class_trait_names() or not zmq.has("curve"):
        return QuietKernelManager

    class EncryptedKernelManager(QuietKernelManager):
        @default("transport_encryption")
        def _encrypt_when_the_kernel_can(self) -> str:
            return "auto"  # kernels whose spec declares Curve support (ipykernel >= 7.3)

    return EncryptedKernelManager


def run_notebook(name: str, parameters: dict, out_dir: Path, *, timeout: int, notebook_dir: Path) -> Path:
    """Execute one notebook with papermill into ``out_dir``; failures name the notebook and cell."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = notebook_dir / f"{name}.ipynb"
    target = out_dir / f"{name}.ipynb"
    try:
        papermill.execute_notebook(
            str(source), str(target), parameters=parameters, kernel_name=_kernel_name(),
            progress_bar=True, execution_timeout=timeout, kernel_manager_class=_kernel_manager_class(),
            # The kernel starts in the report folder. Not papermill's cwd=, which changes this
            # process's folder and, with notebooks run side by side, fails to change it back.
            resources={"metadata": {"path": str(out_dir)}},
        )
    except PapermillExecutionError as exc:
        raise WorkbenchError(
            f"notebook {name} failed in cell {exc.exec_count or exc.cell_index}: {exc.ename}: {exc.evalue}",
            file=str(source), hint="open the notebook, run it with the same parameters and fix the input or the cell.",
        ) from None
    return target


def export_html(notebook: Path) -> Path:
    """Export an executed notebook to HTML without code (nbconvert)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_file=str(Path(__file__).parent / "templates" / "page.html.j2"),
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _notebook_title(notebook: Path) -> str:
    import nbformat

    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


def write_index(out_dir: Path, quarter: str, as_of: pd.Timestamp, names: list[str]) -> Path:
    """Write ``index.html``: each notebook's headline numbers and figures, linked to its page.

    Each notebook writes ``<name>.json`` with a ``headline`` list of
    ``{"label", "value"}`` items and a ``figures`` list of file names.
    """
    sections = []
    for name in names:
        path = out_dir / f"{name}.json"
        if not path.exists():
            raise WorkbenchError(f"notebook {name} ran but wrote no {path.name}.", file=str(path),
                                 hint="end the notebook with results.write().")
        results = json.loads(path.read_text(encoding="utf-8"))
        title = html.escape(_notebook_title(out_dir / f"{name}.ipynb"))
        rows = "".join(
            f"<tr><th>{html.escape(str(item['label']))}</th><td>{html.escape(str(item['value']))}</td></tr>"
            for item in results.get("headline", [])
        )
        figures = "".join(
            f'<img src="{html.escape(f)}" alt="{html.escape(Path(f).stem)}">' for f in results.get("figures", [])[:1]
        )
        sections.append(
            f'<section><h2><a href="{name}.html">{title}</a></h2>'
            f"<table>{rows}</table>{figures}</section>"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sales process report {quarter}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; color: #222; }}
section {{ border-top: 1px solid #ccc; padding: 1em 0; }}
th {{ text-align: left; padding-right: 2em; font-weight: normal; color: #555; }}
td {{ font-weight: bold; }}
img {{ max-width: 100%; margin-top: 1em; }}
</style></head><body>
<h1>Sales process report {quarter}</h1>
<p>As of {as_of:%Y-%m-%d %H:%M} UTC. Each section links to its full page; figures are in
<a href="figures/">figures/</a> and the executed notebooks beside this page.</p>
{''.join(sections)}
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (which the notebooks' kernels inherit) for the duration."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def build_report(
    *,
    log: str | Path,
    quarter: str | None = None,
    as_of: str | None = None,
    quotas: str | Path | None = None,
    reps: str | Path | None = None,
    profile: str | Path | None = None,
    mapping: str | None = None,
    kind: str = "auto",
    encoding: str = "utf-8",
    dayfirst: bool = False,
    timezone: str = "UTC",
    sheet: str | int | None = None,
    lifecycle: str = "complete",
    after_close: str = "auto",
    anonymize: bool = False,
    team: str | None = None,
    region: str | None = None,
    seed: int = 0,
    currency: str = "",
    out: str | Path = "reports",
    timeout: int = 600,
    jobs: int | None = None,
    notebooks: tuple[str, ...] = NOTEBOOKS,
    notebook_dir: Path = NOTEBOOK_DIR,
    extra_parameters: dict | None = None,
) -> Path:
    """Validate the parameters, run the notebooks and write ``<out>/<quarter>/index.html``.

    The inputs are read as :func:`workbench.io.load_sales_data` reads them (the
    profile, mapping, kind, encoding, dayfirst, timezone, sheet, lifecycle and
    after_close options are its); ``currency`` is written before money on the pages
    (:mod:`workbench.tables`). ``extra_parameters`` go to every notebook as
    well (e.g. fewer draws in tests). ``jobs`` notebooks run at a time: by
    default two on a machine with two cores or more when the log has fewer than
    :data:`PARALLEL_BELOW` events, else one (each kernel holds its own copy of
    the log).

    Returns
    -------
    Path of the index page.

    Examples
    --------
    >>> build_report(log="data/demo/events.parquet", reps="data/demo/reps.csv",  # doctest: +SKIP
    ...              quotas="data/demo/quotas.csv", out="reports")
    PosixPath('reports/2026Q4/index.html')
    """
    from . import notebook
    from .profile import get_profile

    for label, path in (("--log", log), ("--quotas", quotas), ("--reps", reps)):
        if path is not None and not Path(path).exists():
            raise WorkbenchError(f"{label} file does not exist.", file=str(path), hint="check the path.")
    if profile is not None:
        get_profile(profile)

    def absolute(path: str | Path | None) -> str | None:
        # the notebooks run inside the report folder: relative paths would point elsewhere there
        return str(Path(path).resolve()) if path is not None and Path(path).exists() else path

    inputs = {"log": absolute(log), "kind": kind, "mapping": absolute(mapping), "quotas": absolute(quotas),
              "reps": absolute(reps), "profile": str(absolute(profile)) if profile else None,
              "encoding": encoding, "dayfirst": dayfirst, "timezone": timezone, "sheet": sheet,
              "lifecycle": lifecycle, "after_close": after_close}
    data = notebook.load(**inputs)
    quarter, stamp = resolve_period(data.log, quarter, as_of)
    for column, value in (("team", team), ("region", region)):
        if value is not None and (column not in data.log.columns or not data.log[column].eq(value).any()):
            known = sorted(data.log[column].dropna().unique()) if column in data.log.columns else []
            raise WorkbenchError(f"--{column} {value!r} is not in the log.", column=column,
                                 hint=f"use one of {known[:10]}." if known else f"the log has no {column}.")

    # Absolute, because the notebooks run inside the report folder and write there by path.
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    final = out / quarter
    work = Path(tempfile.mkdtemp(prefix=f".{quarter}-", dir=out))
    try:
        (work / "figures").mkdir()
        # Every notebook starts from the inputs validated here rather than reading and checking
        # the files again (minutes on a log of millions of events).
        saved = notebook.save_inputs(data, work / ".inputs.pickle", **inputs)
        n_events = len(data.log)
        # Hand the log's memory back for the kernels: Arrow's allocator keeps what it freed
        # (4.5 GB of 4.6 at 10 million events) until asked.
        del data
        pa.default_memory_pool().release_unused()
        parameters = {
            **inputs, "quarter": quarter, "as_of": stamp.isoformat(), "seed": seed,
            "team": team, "region": region, "anonymize": anonymize, "output_dir": str(work), "currency": currency,
        }
        parameters.update(extra_parameters or {})
        names = list(notebooks)
        if missing := [n for n in names if not (notebook_dir / f"{n}.ipynb").exists()]:
            raise WorkbenchError(f"notebook {missing[0]} is not in {notebook_dir}.", file=str(notebook_dir),
                                 hint="reinstall the workbench (pip install .): its notebooks ship with it.")
        if jobs is None:
            jobs = 2 if n_events < PARALLEL_BELOW and (os.cpu_count() or 1) >= 2 else 1

        def run(name: str) -> Path:
            return export_html(run_notebook(name, parameters, work, timeout=timeout, notebook_dir=notebook_dir))

        # Progress bars of the analyses would end up in the pages; papermill shows its own.
        with _environment({"TQDM_DISABLE": "1", notebook.INPUTS_ENV: str(saved)}):
            if jobs > 1:
                with ThreadPoolExecutor(jobs) as pool:  # each thread only waits on its kernel
                    list(pool.map(run, names))
            else:
                for name in names:
                    run(name)
        saved.unlink()
        write_index(work, quarter, stamp, names)
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final / "index.html"
