"""The demo data generated in memory or written to files, with the ground truth of what was planted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import WorkbenchError
from ..schema import DEVIATION_KINDS as KINDS
from .config import ACTIVITIES, CLOSE_SLOT, CYCLE_EDGES_MONTHS, CYCLE_SHARES, DemoData, GroundTruth, resolve
from .accounts import costs_table, products_table
from .organisation import reps_table
from .events import Generation, plain_table
from .quotas import quota_table


def _truth(gen: Generation, labels: np.ndarray, quota_stats: dict) -> GroundTruth:
    """The ground truth from the labels of the final events, the plants and the measured rates."""
    cfg, org, d = gen.cfg, gen.org, gen.d
    case_idx, kind_idx = np.nonzero(labels)
    planted = np.stack([d["planted"][k] for k in KINDS], axis=1)
    deviations = pd.DataFrame({
        "case_id": [f"D{i:0{gen.width}d}" for i in case_idx],
        "kind": np.array(KINDS)[kind_idx],
        "planted": planted[case_idx, kind_idx],
    })
    closed = d["t"][:, CLOSE_SLOT] <= cfg.span_days
    won_rate = {name: float(d["won"][closed & (d["conforming"] == flag)].mean())
                for name, flag in (("conforming", True), ("others", False))}
    opts = dict(cfg.options)
    bottleneck = {"team": str(org.team_name[int(opts["bottleneck_team"]) % len(org.team_name)]),
                  "stage": opts["bottleneck_stage"], "factor": float(opts["bottleneck_factor"])}
    params = {
        # time_scale is the effective one: the preset's compression included
        "seed": cfg.seed, "size": cfg.size, "time_scale": cfg.scale, "as_of": cfg.as_of.isoformat(),
        "start": cfg.start.isoformat(), "n_cases": int(gen.n), "n_reps": int(cfg.n_reps),
        "n_teams": int(len(org.team_name)), "options": opts,
        "cycle_table": {"edges_months": list(CYCLE_EDGES_MONTHS), "shares": CYCLE_SHARES},
        "observed_rates": {k: float((labels[closed, i] & planted[closed, i]).mean()) for i, k in enumerate(KINDS)},
        "win_rate_closed": won_rate,
        "stage_p90_days": {ACTIVITIES[s]: (None if np.isnan(v) else float(v)) for s, v in enumerate(d["p90"])},
        "n_open": int((~closed).sum()),
        "quotas": quota_stats,
        "customers": d["customers"],
    }
    stalled = [f"D{i:0{gen.width}d}" for i in np.flatnonzero(d["stalled"])]
    return GroundTruth(
        deviations=deviations, followup_gap_days=cfg.gap_days, bottleneck=bottleneck, stalled=stalled,
        conforming_reps=sorted(org.rep[org.conforming].tolist()), params=params,
    )


def generate_demo_data(
    seed: int = 7,
    size: str | int = "default",
    time_scale: float = 1.0,
    as_of: str | pd.Timestamp = "2026-11-13",
    progress: bool = False,
    **options,
) -> DemoData:
    """Generate the demo CRM event log, reps, quotas and the ground truth of what was planted.

    Parameters
    ----------
    seed : int
        Same seed and arguments give identical frames.
    size : {'tiny', 'small', 'default', '1m', '10m'} or int
        Preset (see :data:`PRESETS`) or a target number of events.
    time_scale : float
        Multiplies every duration (1.0 matches the B2B survey's cycle table; 'tiny'
        compresses a further 10x so several quarters fit in a few hundred events).
    as_of : date
        The end of the log, UTC; deals still open then stay open.
    progress : bool
        Show a progress bar over chunks.
    **options
        Overrides of :data:`DEFAULT_OPTIONS` (rates, bottleneck_factor, ...).

    Returns
    -------
    DemoData

    Examples
    --------
    >>> demo = generate_demo_data(seed=7, size="tiny")
    >>> demo.events["case_id"].nunique(), sorted(demo.reps.columns)[:3]
    (77, ['manager', 'region', 'rep'])
    """
    gen = Generation(resolve(seed, size, time_scale, as_of, options))
    tables, labels = [], []
    for table, lab in gen.chunks(progress):
        tables.append(table)
        labels.append(lab)
    events = plain_table(pa.concat_tables(tables)).to_pandas()
    quotas, stats = quota_table(gen.cfg, gen.org, gen.d)
    truth = _truth(gen, np.concatenate(labels), stats)
    truth.params["n_events"] = len(events)
    return DemoData(events=events, reps=reps_table(gen.cfg, gen.org), quotas=quotas, truth=truth,
                    as_of=gen.cfg.as_of, products=products_table(), costs=costs_table(gen.cfg, gen.org))


def write_demo_data(
    out_dir: str | Path,
    *,
    seed: int = 7,
    size: str | int = "default",
    time_scale: float = 1.0,
    as_of: str | pd.Timestamp = "2026-11-13",
    progress: bool = True,
) -> dict[str, Path]:
    """Write the demo data set to ``out_dir``, streaming the event log chunk by chunk.

    Files: events.parquet (row group per chunk), events.csv (only up to 50,000
    target events), reps.csv, quotas.csv, products.csv (the product master
    table), costs.csv (each team's cost of selling per quarter), truth.json.

    Returns
    -------
    dict
        File role ('events', 'events_csv', 'reps', 'quotas', 'products', 'costs', 'truth') -> path.

    Examples
    --------
    >>> paths = write_demo_data("data/demo", seed=7, size="tiny")  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['costs', 'events', 'products', 'quotas', 'reps', 'truth']
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create the output folder ({exc.strerror}).", file=str(out),
                             hint="choose a writable folder with --out.") from None
    gen = Generation(resolve(seed, size, time_scale, as_of, {}))
    paths = {"events": out / "events.parquet"}
    with_csv = gen.cfg.events <= 50_000
    if with_csv:
        paths["events_csv"] = out / "events.csv"
    labels, n_events, writer = [], 0, None
    try:
        for i, (table, lab) in enumerate(gen.chunks(progress)):
            if writer is None:
                # Without the stored arrow schema, readers get plain strings back, not categoricals.
                writer = pq.ParquetWriter(paths["events"], table.schema, store_schema=False)
            writer.write_table(table)
            if with_csv:
                plain_table(table).to_pandas().to_csv(paths["events_csv"], mode="w" if i == 0 else "a",
                                                 header=i == 0, index=False)
            labels.append(lab)
            n_events += len(table)
        if writer is not None:
            writer.close()
            writer = None
        quotas, stats = quota_table(gen.cfg, gen.org, gen.d)
        truth = _truth(gen, np.concatenate(labels), stats)
        truth.params["n_events"] = n_events
        paths.update(reps=out / "reps.csv", quotas=out / "quotas.csv", products=out / "products.csv",
                     costs=out / "costs.csv", truth=out / "truth.json")
        reps_table(gen.cfg, gen.org).to_csv(paths["reps"], index=False)
        quotas.to_csv(paths["quotas"], index=False)
        products_table().to_csv(paths["products"], index=False)
        costs_table(gen.cfg, gen.org).to_csv(paths["costs"], index=False)
        paths["truth"].write_text(json.dumps(truth.to_dict(), indent=1), encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot write the demo data ({exc.strerror or exc}).", file=str(out),
                             hint="check the free disk space and that the folder is writable.") from None
    finally:
        if writer is not None:
            writer.close()
    return paths
