"""The quarterly report: run the notebooks with papermill, export them to HTML, write an index.

The report is built in a temporary folder beside its destination and moved to
``<out>/<quarter>/`` only when every notebook has run, so a failure never leaves
a complete-looking report behind, and the previous report stays until then.
Around that:

* the validated inputs the notebooks share are kept in a private temporary
  folder outside the output folder (anonymised with ``anonymize``) and removed
  on every exit, interrupts included;
* Ctrl-C or SIGTERM stops the report within seconds: its kernels are killed and
  its temporary folders removed;
* a lock file ``<out>/.<quarter>.lock`` (holding the pid of its report) keeps a
  second report from writing the same quarter at the same time;
* a notebook that fails is kept, executed up to its failing cell, in
  ``<out>/failed/``;
* folders and files follow the user's umask (a temporary folder is owner-only).
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
import weakref
from importlib import resources
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .calendar import resolve_period
from .errors import WorkbenchError
from .glossary import link_terms, write_glossary

#: The notebooks of the report, in the order they run and appear.
NOTEBOOKS = ("01_process_discovery", "02_bottlenecks", "03_quota_forecast", "04_sales_audit")
#: The notebooks ship inside the package, so an installed workbench writes the same report.
NOTEBOOK_DIR = Path(str(resources.files("workbench") / "notebooks"))
KERNEL = "workbench"
#: Below this many events the notebooks run two at a time: a kernel holds the log three or four
#: times over at its peak (3.3 GB at a million events), so two fit easily in memory there.
PARALLEL_BELOW = 2_000_000
#: Times a notebook's kernel is started when it dies while starting.
KERNEL_STARTS = 3
#: The variables that cap the BLAS libraries' threads (a user's own setting is kept).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Started first: the forecast page takes the longest, and the audit page reads its backtest
#: (``notebook.backtest``), which the forecast computes with what its own fit has cached.
RUN_FIRST = ("03_quota_forecast",)
#: The questions the index answers first, one tile each, in this order (see ``Results.tile``).
QUESTIONS = ("Will we make the quarter?", "Where do deals stall?", "Do we follow our process?",
             "Can I trust the data?")
#: Kernel managers of the notebooks running now, and the flag that stops new kernels from starting.
_KERNELS: weakref.WeakSet = weakref.WeakSet()
_STOPPING = threading.Event()


class ReportInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM stopped the report; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def _use_absolute_paths() -> None:
    """Make papermill read and write notebooks without changing this process's folder.

    papermill's local file handler is one object for the whole process: each execution sets its
    folder to the caller's on entry and puts the previous one back on exit, and each read or write
    changes the process's folder to it and back. Two notebooks run side by side end in the wrong
    order, so a folder of an earlier report stayed set, and the process was left in it after a
    later one (seen in the tests). The report passes absolute paths, so the handler needs no folder.
    """
    from papermill.iorw import LocalHandler, papermill_io

    class AbsolutePathHandler(LocalHandler):
        def cwd(self, new_path):
            return None

    papermill_io.register("local", AbsolutePathHandler())


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

        async def start_kernel(self, **kw) -> None:  # the name nbclient calls on an async manager
            if _STOPPING.is_set():
                raise ReportInterrupted(signal.SIGTERM)
            _KERNELS.add(self)
            await super().start_kernel(**kw)

    if "transport_encryption" not in AsyncKernelManager.class_trait_names() or not zmq.has("curve"):
        return QuietKernelManager

    class EncryptedKernelManager(QuietKernelManager):
        @default("transport_encryption")
        def _encrypt_when_the_kernel_can(self) -> str:
            return "auto"  # kernels whose spec declares Curve support (ipykernel >= 7.3)

    return EncryptedKernelManager


def _kill_kernels() -> None:
    """Kill the running notebooks' kernels (each leads a process group of its own)."""
    for manager in list(_KERNELS):
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def _on_signals(handler: object) -> Iterator[None]:
    """Handle SIGINT and SIGTERM with ``handler`` for the duration (from the main thread: elsewhere
    Python cannot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)


def _interrupt(signum: int, frame: object) -> None:
    raise ReportInterrupted(signum)


@contextlib.contextmanager
def _lock(out: Path, quarter: str) -> Iterator[Path]:
    """Hold ``<out>/.<quarter>.lock`` for the duration, or refuse when another report holds it."""
    import fcntl

    path = out / f".{quarter}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkbenchError(
                f"another report (pid {holder}) is writing {quarter} into this folder; its lock is {path}.",
                file=str(path), hint="wait for it to finish, or write this one elsewhere (--out).") from None
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        os.close(fd)  # locked a file its holder had just removed: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(fd)  # closing releases the lock, and the system does it if the process dies


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _declared_parameters(source: Path) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(source)))


def run_notebook(name: str, parameters: dict, out_dir: Path, *, timeout: int, notebook_dir: Path,
                 failed_dir: Path | None = None) -> Path:
    """Execute one notebook with papermill into ``out_dir``; failures name the notebook and cell.

    Only the parameters the notebook declares are given to it. A notebook that
    fails is copied, executed up to its failing cell, into ``failed_dir``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = (notebook_dir / f"{name}.ipynb").absolute()
    target = (out_dir / f"{name}.ipynb").absolute()
    _use_absolute_paths()
    declared = _declared_parameters(source)
    try:
        for attempt in range(KERNEL_STARTS):
            try:
                papermill.execute_notebook(
                    str(source), str(target), parameters={k: v for k, v in parameters.items() if k in declared},
                    kernel_name=_kernel_name(),
                    progress_bar=True, execution_timeout=timeout, kernel_manager_class=_kernel_manager_class(),
                    # The kernel starts in the report folder. Not papermill's cwd=, which changes this
                    # process's folder and, with notebooks run side by side, fails to change it back.
                    resources={"metadata": {"path": str(out_dir)}},
                )
                break
            except RuntimeError as exc:
                # jupyter_client chooses a kernel's ports before the kernel binds them, and another
                # process can take one in between ("Address already in use"): such a kernel dies
                # before running anything, and a new one is started.
                died_starting = "before replying to kernel_info" in str(exc)
                if not died_starting or attempt == KERNEL_STARTS - 1 or _STOPPING.is_set():
                    raise
    except PapermillExecutionError as exc:
        kept = source
        if failed_dir is not None and target.exists():
            failed_dir.mkdir(parents=True, exist_ok=True)
            kept = failed_dir / target.name
            shutil.copyfile(target, kept)
        raise WorkbenchError(
            f"notebook {name} failed in cell {exc.exec_count or exc.cell_index}: {exc.ename}: {exc.evalue}",
            file=str(kept), hint="open this notebook: it ran up to the failing cell, with the report's parameters. "
                                 "Fix the input or the cell and run the report again.",
        ) from None
    return target


def export_html(notebook: Path) -> Path:
    """Export an executed notebook to HTML without code (nbconvert), its terms linked to the glossary."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_file=str(Path(__file__).parent / "templates" / "page.html.j2"),
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    target.write_text(link_terms(body), encoding="utf-8")
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
    ``{"label", "value"}`` items, a ``figures`` list of file names and, for the
    four questions the index answers first (:data:`QUESTIONS`), a ``tile``.
    """
    sections, tiled = [], {}
    for name in names:
        path = out_dir / f"{name}.json"
        if not path.exists():
            raise WorkbenchError(f"notebook {name} ran but wrote no {path.name}.", file=str(path),
                                 hint="end the notebook with results.write().")
        results = json.loads(path.read_text(encoding="utf-8"))
        if results.get("tile"):
            tiled[name] = results["tile"]
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
    tiles = "".join(
        f'<a class="tile" href="{name}.html"><h2>{html.escape(t["question"])}</h2>'
        f'<p class="value">{html.escape(t["value"])}</p><p>{html.escape(t["detail"])}</p>'
        + (f'<p class="trend">{html.escape(t["trend"])}</p>' if t.get("trend") else "") + "</a>"
        for name, t in sorted(tiled.items(), key=lambda item: QUESTIONS.index(item[1]["question"])
                              if item[1]["question"] in QUESTIONS else len(QUESTIONS)))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sales process report {quarter}</title>
<style>
body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto; color: #222; }}
section {{ border-top: 1px solid #ccc; padding: 1em 0; }}
th {{ text-align: left; padding-right: 2em; font-weight: normal; color: #555; }}
td {{ font-weight: bold; }}
img {{ max-width: 100%; margin-top: 1em; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(15em, 1fr)); gap: 1em; margin: 1em 0 2em; }}
.tile {{ display: block; border: 1px solid #ccc; border-radius: 6px; padding: 0.8em 1em; color: inherit;
         text-decoration: none; }}
.tile:hover {{ border-color: #555; }}
.tile h2 {{ font-size: 1em; margin: 0 0 0.4em; color: #555; font-weight: normal; }}
.tile .value {{ font-size: 1.6em; font-weight: bold; margin: 0 0 0.3em; }}
.tile p {{ margin: 0.3em 0; }}
.tile .trend {{ color: #555; }}
</style></head><body>
<h1>Sales process report {quarter}</h1>
<p>As of {as_of:%Y-%m-%d %H:%M} UTC. Each answer and each section links to its full page; figures are in
<a href="figures/">figures/</a> and the executed notebooks beside this page.</p>
<div class="tiles">{tiles}</div>
{''.join(sections)}
<p>Words of the pages are explained in the <a href="glossary.html">glossary</a>.</p>
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(link_terms(page), encoding="utf-8")
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
    lookups: dict | str | None = None,
    costs: str | Path | None = None,
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
    (:mod:`workbench.tables`); ``lookups`` are the master tables the audit checks
    the log against (:func:`workbench.audit.data_quality`; a product table also
    gives the customer KPIs product families and tiers), ``costs`` the costs of
    selling per territory and quarter (:func:`workbench.io.read_costs`). With ``anonymize`` the
    pages, the executed notebooks (their parameters included) and every file of
    the report name no person, team, account, deal, input path or filter value.
    ``extra_parameters`` go to every notebook as
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
    from .anonymize import PSEUDONYM_KINDS, Pseudonymizer, default_salt
    from .database import hide_password, is_database_url
    from .audit import parse_lookups
    from .profile import get_profile

    for label, path in (("--log", log), ("--quotas", quotas), ("--reps", reps), ("--costs", costs)):
        if path is not None and not is_database_url(path) and not Path(path).exists():
            raise WorkbenchError(f"{label} file does not exist.", file=str(path), hint="check the path.")
    if profile is not None:
        get_profile(profile)

    def absolute(path: str | Path | None) -> str | None:
        # the notebooks run inside the report folder: relative paths would point elsewhere there
        if path is None or is_database_url(path):
            return path
        return str(Path(path).resolve()) if Path(path).exists() else path

    lookups = {column: absolute(path) for column, path in parse_lookups(lookups).items()}
    inputs = {"log": absolute(log), "kind": kind, "mapping": absolute(mapping), "quotas": absolute(quotas),
              "reps": absolute(reps), "profile": str(absolute(profile)) if profile else None,
              "encoding": encoding, "dayfirst": dayfirst, "timezone": timezone, "sheet": sheet,
              "lifecycle": lifecycle, "after_close": after_close}
    with _on_signals(_interrupt):
        data = notebook.load(**inputs, audit=True, lookups=lookups, costs=costs)
        if is_database_url(log):  # the notebooks reuse the rows read here: no password in their parameters
            inputs["log"] = hide_password(str(log))
        quarter, stamp = resolve_period(data.log, quarter, as_of)
        for column, value in (("team", team), ("region", region)):
            if value is not None and (column not in data.log.columns or not data.log[column].eq(value).any()):
                known = sorted(data.log[column].dropna().unique()) if column in data.log.columns else []
                raise WorkbenchError(f"--{column} {value!r} is not in the log.", column=column,
                                     hint=f"use one of {known[:10]}." if known else f"the log has no {column}.")
        if anonymize:
            # The notebooks get the data anonymised and name neither the input files nor the filter values.
            salt = default_salt()
            data = notebook.anonymize_data(data, salt)
            pseudo = Pseudonymizer(salt)
            team, region = (None if v is None else pseudo.pseudonym(PSEUDONYM_KINDS[c], v)
                            for c, v in (("team", team), ("region", region)))
            inputs.update({k: f"<{k}>" for k in ("log", "mapping", "quotas", "reps") if inputs[k] is not None})
            if profile and Path(str(profile)).exists():
                inputs["profile"] = "<profile>"
        # Absolute, because the notebooks run inside the report folder and write there by path.
        out = Path(out).resolve()
        out.mkdir(parents=True, exist_ok=True)
        # _write takes the only reference: the log's memory goes back once it is saved for the kernels
        # (3.7 GB at 10 million events, which stayed held here while they ran).
        held = [data]
        del data
        with _lock(out, quarter):
            _write(held, inputs, out=out, quarter=quarter, stamp=stamp, notebooks=notebooks,
                   notebook_dir=notebook_dir, timeout=timeout, jobs=jobs, anonymize=anonymize, parameters={
                       "quarter": quarter, "as_of": stamp.isoformat(), "seed": seed, "team": team,
                       "region": region, "anonymize": anonymize, "output_dir": ".", "currency": currency,
                       # the notebooks find the costs and the master tables in the data saved for them
                       "lookups": None, "costs": None,
                       **(extra_parameters or {})})
    return out / quarter / "index.html"


def _write(held: list, inputs: dict, *, out: Path, quarter: str, stamp: pd.Timestamp, notebooks: tuple[str, ...],
           notebook_dir: Path, timeout: int, jobs: int | None, anonymize: bool, parameters: dict) -> None:
    """Run the notebooks on the data ``held`` (a list of one, which this empties) in a temporary
    folder and move it to ``out/quarter``."""
    from . import notebook
    from .engine.backends import disconnect

    data = held.pop()

    names = list(notebooks)
    if missing := [n for n in names if not (notebook_dir / f"{n}.ipynb").exists()]:
        raise WorkbenchError(f"notebook {missing[0]} is not in {notebook_dir}.", file=str(notebook_dir),
                             hint="reinstall the workbench (pip install .): its notebooks ship with it.")
    final = out / quarter
    work = Path(tempfile.mkdtemp(prefix=f".{quarter}-", dir=out))
    private = Path(tempfile.mkdtemp(prefix="workbench-inputs-"))  # owner-only, outside the report
    pool, futures = None, []
    try:
        os.chmod(work, 0o777 & ~_umask())  # the report is read by colleagues and web servers
        (work / "figures").mkdir()
        # Every notebook starts from the inputs validated here rather than reading and checking
        # the files again (minutes on a log of millions of events).
        saved = notebook.save_inputs(data, private / "inputs.pickle", **inputs)
        n_events = len(data.log)
        # Hand the log's memory back for the kernels: Arrow's allocator keeps what it freed
        # (4.5 GB of 4.6 at 10 million events) until asked, and DuckDB's what the audit's queries
        # used (750 MB) until its connection closes.
        del data
        pa.default_memory_pool().release_unused()
        disconnect()
        if jobs is None:
            jobs = 2 if n_events < PARALLEL_BELOW and (os.cpu_count() or 1) >= 2 else 1

        def run(name: str) -> Path:
            executed = run_notebook(name, {**inputs, **parameters}, work, timeout=timeout,
                                    notebook_dir=notebook_dir, failed_dir=out / "failed")
            if anonymize:
                _forget_paths(executed)
            return export_html(executed)

        # Progress bars of the analyses would end up in the pages; papermill shows its own.
        # Each kernel's BLAS gets its share of the cores: OpenBLAS threads spin while they wait, and
        # two kernels each starting one per core made the demo report take 149 s instead of 62 s.
        share = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
        threads = {name: os.environ.get(name, share) for name in BLAS_THREADS}
        with _environment({"TQDM_DISABLE": "1", notebook.INPUTS_ENV: str(saved), **threads}):
            # Notebooks run in worker threads even one at a time: the main thread then only waits,
            # and a signal reaches it at once.
            pool = ThreadPoolExecutor(max(1, jobs))
            futures = [pool.submit(run, name) for name in sorted(names, key=lambda n: n not in RUN_FIRST)]
            for future in futures:
                future.result()
        write_index(work, quarter, stamp, names)
        write_glossary(work)
        with _on_signals(signal.SIG_IGN):  # the previous report is replaced whole or not at all
            if final.exists():
                old = work.with_name(work.name + "-previous")
                os.replace(final, old)
                os.replace(work, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(work, final)
    except BaseException:
        with _on_signals(signal.SIG_IGN):  # a second Ctrl-C must not leave the clean-up half done
            _STOPPING.set()
            # papermill would log each killed kernel as having died
            logging.getLogger("papermill").setLevel(logging.CRITICAL)
            _kill_kernels()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                # a notebook whose kernel died writes its output once more: wait for it before removing
                # (only for those that run: a future cancelled before it started never counts as done)
                wait([f for f in futures if not f.cancelled()], timeout=60)
        raise
    finally:
        with _on_signals(signal.SIG_IGN):
            if pool is not None:
                pool.shutdown(wait=False)
            shutil.rmtree(private, ignore_errors=True)
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
            _STOPPING.clear()  # this process may run notebooks again (a notebook session, the tests)


def _forget_paths(executed: Path) -> None:
    """Drop the paths papermill records in an executed notebook's metadata (they name folders)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        meta.pop(key, None)
    nbformat.write(nb, executed)
