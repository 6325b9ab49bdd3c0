"""Time pm4py and the workbench engine side by side on large generated logs.

    .venv/bin/python benchmarks/run.py --sizes 1m 10m
    .venv/bin/python benchmarks/run.py --sizes 100m --no-pm4py --memory-limit 8GB

For each size, a demo log is written once to ``benchmarks/data/events_<size>.parquet``
(git-ignored). Then every step runs on each side in its own subprocess, so that each
peak memory (``VmHWM``) is that step's alone:

- ``dfg``, ``performance_dfg``, ``variants``, ``case_durations``: pm4py on the
  DataFrame already in memory (its read time excluded), the workbench straight
  from the Parquet file (its read time included);
- ``discovery_bundle``: the four together, as the report uses them: pm4py's four calls
  against one :func:`workbench.engine.discovery_bundle` (each case's events sorted once);
- ``pipeline``: read the Parquet file -> DFG -> pm4py Petri net (inductive miner on
  the DFG) and the DFG's graphviz object, end to end on both sides;
- ``case_table``, ``stage_visits``, ``deal_states`` (only when named in ``--steps``): the
  workbench alone, as pm4py has nothing that computes them;
- ``read_xes`` (only when named): the log written as XES once, read by pm4py's own reader
  against ``workbench.io.read_event_log`` (the Rust parser when the ``fast-xes`` extra is
  installed, and every check the report makes).

Every step runs ``--repeat`` times (3) on each side, in rounds over all steps. Prints a
table of the median times, their ratios and the highest peak memory, and writes
``benchmarks/results/latest.json`` (every run's time included) with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
STEPS = ("dfg", "performance_dfg", "variants", "case_durations", "discovery_bundle", "pipeline")
#: Engine aggregations pm4py has no counterpart of: timed on the workbench side alone.
ENGINE_ONLY = ("case_table", "stage_visits", "deal_states")
#: Steps that read the log as XES, written once beside the Parquet file (only when named).
XES_STEPS = ("read_xes",)
SIZES = {"100k": 100_000, "250k": 250_000, "1m": 1_000_000, "10m": 10_000_000, "100m": 100_000_000}


# --------------------------------------------------------------------------- data
def parse_size(text: str) -> int:
    """'1m' -> 1_000_000; plain integers pass through."""
    t = text.lower()
    if t in SIZES:
        return SIZES[t]
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1], 1)
    return int(float(t.rstrip("km")) * mult)


def write_log(n_events: int, path: Path, *, seed: int = 7, progress: bool = True) -> float | None:
    """Write the demo log of about ``n_events`` events to ``path`` (Parquet), once.

    Returns the generator's wall-clock seconds (issue 2's goal: 10 million events in under
    2 minutes on 2 cores), or None when the file was already there.
    """
    import shutil

    from workbench.synth import write_demo_data

    if path.exists():
        return None
    scratch = path.parent / f".{path.stem}_demo"
    started = time.perf_counter()
    paths = write_demo_data(scratch, seed=seed, size=n_events, progress=progress)
    seconds = time.perf_counter() - started
    Path(paths["events"]).rename(path)
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


# --------------------------------------------------------------------------- workers
def _pm4py_frame(path: Path):
    import pandas as pd

    from workbench.schema import to_pm4py

    return to_pm4py(pd.read_parquet(path))


def _pm4py_model(dfg, start, end):
    """The small-result part of the pipeline, identical on both sides."""
    import pm4py
    from pm4py.objects.dfg.obj import DFG
    from pm4py.visualization.dfg import visualizer as dfg_visualizer

    net = pm4py.discover_petri_net_inductive(DFG(dfg, start, end))
    gviz = dfg_visualizer.apply(dfg, parameters={"start_activities": start, "end_activities": end})
    return net, gviz


def _pm4py_bundle(df) -> tuple:
    """pm4py's four calls for what the report's discovery needs."""
    import pm4py

    return (pm4py.discover_dfg(df), pm4py.discover_performance_dfg(df), pm4py.get_variants(df),
            pm4py.get_all_case_durations(df))


def _workbench_bundle(path: Path) -> tuple:
    from workbench import engine

    d = engine.discovery_bundle(path)
    return (engine.to_pm4py_dfg(d.edges, d.start_end), engine.to_pm4py_dfg(d.edges, d.start_end, measure="performance"),
            d.variants, d.case_durations)


def xes_path(path: Path) -> Path:
    """The log of ``path`` as XES (written once: about a minute per million events)."""
    import warnings

    import pandas as pd
    import pm4py

    from workbench.schema import to_pm4py

    out = path.with_suffix(".xes")
    if not out.exists():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm4py.write_xes(to_pm4py(pd.read_parquet(path)), str(out), variant_str="line_by_line",
                            show_progress_bar=False)
    return out


def run_pm4py(step: str, path: Path) -> tuple[float, float]:
    """pm4py's seconds for ``step`` and for reading the Parquet file into its DataFrame."""
    import pm4py

    if step == "read_xes":  # pm4py's own reader (its default when rustxes is not installed)
        t0 = time.perf_counter()
        pm4py.read_xes(str(xes_path(path)), variant="chunk_regex", show_progress_bar=False)
        return time.perf_counter() - t0, 0.0

    if step == "pipeline":
        t0 = time.perf_counter()
        df = _pm4py_frame(path)
        read = time.perf_counter() - t0
        dfg, start, end = pm4py.discover_dfg(df)
        _pm4py_model(dfg, start, end)
        return time.perf_counter() - t0, read
    t0 = time.perf_counter()
    df = _pm4py_frame(path)
    read = time.perf_counter() - t0
    fn = {
        "dfg": pm4py.discover_dfg,
        "performance_dfg": pm4py.discover_performance_dfg,
        "variants": pm4py.get_variants,
        "case_durations": pm4py.get_all_case_durations,
        "discovery_bundle": _pm4py_bundle,
    }[step]
    t0 = time.perf_counter()
    fn(df)
    return time.perf_counter() - t0, read


def run_workbench(step: str, path: Path) -> tuple[float, float]:
    from workbench import engine

    engine.connect()  # start DuckDB outside the clock, as pm4py is imported outside it
    if step == "read_xes":  # as the report reads it: rustxes when installed, then every check
        from workbench.io import read_event_log

        xes = xes_path(path)
        t0 = time.perf_counter()
        read_event_log(xes)
        return time.perf_counter() - t0, 0.0
    if step == "pipeline":
        import pm4py  # noqa: F401  (imported outside the clock on both sides)
    t0 = time.perf_counter()
    if step == "pipeline":
        _pm4py_model(*engine.to_pm4py_dfg(*engine.dfg(path)))
    else:
        {
            "dfg": lambda p: engine.to_pm4py_dfg(*engine.dfg(p)),
            "performance_dfg": lambda p: engine.to_pm4py_dfg(*engine.dfg(p, performance=True),
                                                             measure="performance"),
            "variants": engine.variants,
            "case_durations": engine.case_durations,
            "discovery_bundle": _workbench_bundle,
            "case_table": engine.case_table,
            "stage_visits": engine.stage_visits,
            "deal_states": engine.deal_states,
        }[step](path)
    return time.perf_counter() - t0, 0.0  # the file is read inside the step


def worker(side: str, step: str, path: Path, memory_limit: str | None, max_temp_size: str | None) -> None:
    """Run one step on one side and print its time and this process's peak memory as JSON."""
    if memory_limit or max_temp_size:
        from workbench import engine

        engine.configure(memory_limit=memory_limit, max_temp_size=max_temp_size)
    seconds, read = (run_pm4py if side == "pm4py" else run_workbench)(step, path)
    print(json.dumps({"seconds": seconds, "read_s": read, "peak_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Linux's VmHWM starts afresh at exec; ``ru_maxrss`` would carry over the
    parent's peak from before the fork (here: the generator's).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(side: str, step: str, path: Path, memory_limit: str | None, max_temp_size: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, step, str(path)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    if max_temp_size:
        cmd += ["--max-temp-size", max_temp_size]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """The median time and the highest peak of repeated runs, with every run's time."""
    ok = [r for r in runs if "seconds" in r]
    if not ok:
        return runs[-1]
    out = {"seconds": statistics.median(r["seconds"] for r in ok), "peak_mb": max(r["peak_mb"] for r in ok),
           "runs_s": [r["seconds"] for r in ok], "read_s": statistics.median(r.get("read_s", 0.0) for r in ok)}
    if len(ok) < len(runs):
        out["failed_runs"] = [r["error"] for r in runs if "error" in r]
    return out


# --------------------------------------------------------------------------- report
def machine() -> dict:
    import duckdb
    import ibis
    import pandas as pd
    import pm4py
    import psutil

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {"pm4py": pm4py.__version__, "pandas": pd.__version__, "duckdb": duckdb.__version__,
                     "ibis": ibis.__version__},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["1m", "10m"], help="1m, 10m, 100m or an integer")
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=STEPS + ENGINE_ONLY + XES_STEPS,
                    help=f"default: the steps compared with pm4py; {', '.join(ENGINE_ONLY)} time the workbench alone")
    ap.add_argument("--no-pm4py", action="store_true", help="time the workbench only (e.g. at 100m)")
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 8GB")
    ap.add_argument("--max-temp-size", default=None, help="most DuckDB may spill to disk, e.g. 20GB")
    ap.add_argument("--repeat", type=int, default=3, help="runs per step and side; the median is reported")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--worker", nargs=3, metavar=("SIDE", "STEP", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]), args.memory_limit, args.max_temp_size)
        return 0

    from tqdm import tqdm

    sides = ["workbench"] if args.no_pm4py else ["pm4py", "workbench"]
    result = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "load_average_before": os.getloadavg(), "sizes": {}}
    for size in args.sizes:
        n = parse_size(size)
        path = DATA / f"events_{size}.parquet"
        generate_seconds = write_log(n, path, seed=args.seed, progress=not args.no_progress)
        if generate_seconds is not None:
            print(f"generated {size} events in {generate_seconds:.1f} s")
        if set(args.steps) & set(XES_STEPS):
            xes_path(path)
        runs: dict[tuple[str, str], list[dict]] = {}
        # rounds of every (step, side), so that a slow spell of the machine hits both sides
        jobs = [(step, side) for _ in range(args.repeat) for step in args.steps for side in sides
                if not (side == "pm4py" and step in ENGINE_ONLY)]
        for step, side in tqdm(jobs, desc=f"{size} events", disable=args.no_progress):
            runs.setdefault((step, side), []).append(measure(side, step, path, args.memory_limit,
                                                             args.max_temp_size))
        rows: dict[str, dict] = {}
        for (step, side), measured in runs.items():
            rows.setdefault(step, {})[side] = summarize(measured)
        for step, r in rows.items():
            p, w = r.get("pm4py", {}), r.get("workbench", {})
            if "seconds" in p and "seconds" in w:
                r["speedup"] = p["seconds"] / w["seconds"]
                # as a user meets it: pm4py's read of the file into pandas counted too (the pipeline
                # step counts it already)
                extra = 0.0 if step == "pipeline" else p["read_s"]
                r["speedup_with_reading"] = (p["seconds"] + extra) / w["seconds"]
                r["memory_ratio"] = w["peak_mb"] / p["peak_mb"]
        import pyarrow.parquet as pq

        result["sizes"][size] = {
            "events": pq.ParquetFile(path).metadata.num_rows,
            "file": str(path.relative_to(HERE.parent)),
            # other work on the machine shows here; timings under load are noisier
            "load_average_after": os.getloadavg(),
            "generate_seconds": generate_seconds,
            "steps": rows,
        }
        print_table(size, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


def print_table(size: str, rows: dict) -> None:
    def fmt(d: dict, key: str, spec: str) -> str:
        return format(d[key], spec) if key in d else d.get("error", "-")[:12]

    print(f"\n{size} events")
    print(f"{'step':<18}{'pm4py s':>10}{'wb s':>10}{'speedup':>9}{'w/ read':>9}{'pm4py MB':>10}{'wb MB':>9}"
          f"{'mem':>7}")
    for step, r in rows.items():
        p, w = r.get("pm4py", {}), r.get("workbench", {})
        print(f"{step:<18}{fmt(p, 'seconds', '.2f'):>10}{fmt(w, 'seconds', '.2f'):>10}"
              f"{fmt(r, 'speedup', '.1f'):>9}{fmt(r, 'speedup_with_reading', '.1f'):>9}{fmt(p, 'peak_mb', '.0f'):>10}"
              f"{fmt(w, 'peak_mb', '.0f'):>9}{fmt(r, 'memory_ratio', '.2f'):>7}")


if __name__ == "__main__":
    sys.exit(main())
