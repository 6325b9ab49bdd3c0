"""Time `workbench report` on demo logs of several sizes, with each notebook's time and peak memory.

    .venv/bin/python benchmarks/report_scale.py --sizes default 1m
    .venv/bin/python benchmarks/report_scale.py --sizes 10m --timeout 3600

For each size the demo data is written once to ``benchmarks/data/demo_<size>/`` (git-ignored),
then the report runs as a user runs it (the ``workbench report`` command, in a process of its
own) while the memory of its whole process tree (the command and the notebooks' kernels) is
sampled four times a second. Each notebook's time and window come from papermill's record in
the executed notebook; its peak is the tree's highest memory while it ran (notebooks that run
at the same time share a window, and the report says how many ran at once). Writes
``benchmarks/results/report_scale.json`` with the machine it ran on. Timings are never
asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import DATA, RESULTS, machine, parse_size  # noqa: E402

NOTEBOOKS = ("01_process_discovery", "02_bottlenecks", "03_quota_forecast", "04_sales_audit")


def demo_folder(size: str) -> Path:
    """The demo data of ``size`` ('default' or a number of events), written once."""
    from workbench.synth import write_demo_data

    folder = DATA / f"demo_{size}"
    if not (folder / "costs.csv").exists():  # the generator writes it among the last
        write_demo_data(folder, seed=7, size="default" if size == "default" else parse_size(size), progress=True)
    return folder


class TreeMemory(threading.Thread):
    """Samples the resident memory of a process and all its descendants."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.done = pid, every, [], threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self.done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.samples.append((time.time(), total / 2**20))
            self.done.wait(self.every)

    def peak(self, start: float = float("-inf"), end: float = float("inf")) -> float | None:
        inside = [mb for t, mb in self.samples if start <= t <= end]
        return max(inside) if inside else None


def run_report(folder: Path, out: Path, timeout: int) -> dict:
    cmd = [str(Path(sys.executable).with_name("workbench")), "report", "--log", str(folder / "events.parquet"),
           "--reps", str(folder / "reps.csv"), "--quotas", str(folder / "quotas.csv"),
           "--costs", str(folder / "costs.csv"), "--lookup", f"product={folder / 'products.csv'}",
           "--out", str(out), "--timeout", str(timeout)]
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    memory = TreeMemory(proc.pid)
    memory.start()
    output, _ = proc.communicate()
    memory.done.set()
    memory.join()
    seconds = time.time() - started
    result = {"seconds": seconds, "peak_mb": memory.peak(), "returncode": proc.returncode}
    if proc.returncode != 0:
        result["error"] = output.strip().splitlines()[-1] if output.strip() else "failed"
        return result
    (page,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    windows = {}
    for name in NOTEBOOKS:
        meta = json.loads((page / f"{name}.ipynb").read_text())["metadata"]["papermill"]
        start = datetime.fromisoformat(meta["start_time"]).timestamp()
        end = datetime.fromisoformat(meta["end_time"]).timestamp()
        windows[name] = (start, end)
        result[name] = {"seconds": meta["duration"], "peak_mb": memory.peak(start, end)}
    for name, (start, end) in windows.items():
        result[name]["ran_beside"] = [o for o, (s, e) in windows.items() if o != name and s < end and start < e]
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", default=["default", "1m"], help="default, 1m, 10m or an integer")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds a notebook cell may take")
    ap.add_argument("--out", type=Path, default=RESULTS / "report_scale.json")
    args = ap.parse_args(argv)
    import pyarrow.parquet as pq

    result = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "sizes": {}}
    for size in args.sizes:
        folder = demo_folder(size)
        with tempfile.TemporaryDirectory(prefix="report-scale-") as out:
            measured = run_report(folder, Path(out), args.timeout)
        measured["events"] = pq.ParquetFile(folder / "events.parquet").metadata.num_rows
        result["sizes"][size] = measured
        print(f"{size}: {measured['events']:,} events, {measured['seconds']:.0f} s, "
              f"peak {measured['peak_mb'] or 0:,.0f} MB" + (f" ({measured['error']})" if "error" in measured else ""))
        for name in NOTEBOOKS:
            if name in measured:
                m = measured[name]
                print(f"  {name:<22}{m['seconds']:>8.1f} s{m['peak_mb'] or 0:>10,.0f} MB"
                      + (f"  (beside {', '.join(m['ran_beside'])})" if m["ran_beside"] else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
