"""Any table by its kind, and the event log, reps and quotas loaded and cross-checked together."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..errors import WorkbenchError
from ..validation import CombinedReport
from .columns import KINDS, TABLE_KINDS, detect_kind, parse_mapping
from .files import RawTable
from .logs import event_log_from_raw, read_event_log
from .results import LoadResult, SalesData
from .tables import quotas_from_raw, read_quotas, read_reps, reps_from_raw


def load_table(raw: RawTable, kind: str = "auto", *, mapping: Mapping[str, Any] | str | None = None,
               profile: Any = None, dayfirst: bool = False, timezone: str = "UTC", after_close: str = "auto",
               lifecycle: str = "complete", log: Any = None, reps: Any = None,
               **opportunity_options: Any) -> LoadResult:
    """Validate a table read by :func:`read_table` as any kind of input.

    Unlike the ``read_*`` functions it does not raise when no row is usable, so
    the caller can still show the quarantine table (see
    :func:`workbench.validation.fail_if_nothing_kept`).

    Parameters
    ----------
    raw : RawTable
    kind : {'auto', 'events', 'stage_history', 'opportunities', 'reps', 'quotas'}
        'auto' guesses from the column names (:func:`detect_kind`), or takes
        'opportunities' when milestones are given.
    log, reps
        For quotas: the event log and reps table the quotas must name.
        For event logs, ``reps`` is joined as in :func:`read_event_log`.
    Other parameters as in :func:`read_event_log`.
    """
    mapping = parse_mapping(mapping)
    if kind == "auto":
        kind = "opportunities" if (opportunity_options.get("milestones") or mapping.get("milestones")) \
            else detect_kind(raw.frame.columns)
    if kind == "reps":
        return reps_from_raw(raw, mapping=mapping)
    if kind == "quotas":
        return quotas_from_raw(raw, mapping=mapping, log=log, reps=reps)
    if kind not in KINDS:
        raise WorkbenchError(f"kind={kind!r} is not a kind of input.", file=raw.source,
                             hint=f"use one of {['auto', *TABLE_KINDS]}.")
    return event_log_from_raw(raw, kind=kind, mapping=mapping, profile=profile, dayfirst=dayfirst,
                               timezone=timezone, after_close=after_close, lifecycle=lifecycle, reps=reps,
                               **opportunity_options)


def load_sales_data(log: str | Path | pd.DataFrame, *, reps: Any = None, quotas: Any = None, profile: Any = None,
                    mapping: Mapping[str, Any] | str | None = None, kind: str = "auto",
                    after_close: str = "auto", **kw: Any) -> SalesData:
    """Load and cross-check the event log, the reps table and the quota table.

    Parameters
    ----------
    log : path or DataFrame
        The event log (any kind :func:`read_event_log` reads).
    reps, quotas : path, DataFrame or LoadResult, optional
    profile, mapping, kind, after_close
        As in :func:`read_event_log` (the mapping applies to the log).
    **kw
        Passed to :func:`read_event_log` (dayfirst, timezone, encoding, sheet,
        lifecycle, opportunity options); ``encoding`` also applies to the reps
        and quota files.

    Returns
    -------
    SalesData

    Examples
    --------
    >>> data = load_sales_data("data/demo/events.parquet", reps="data/demo/reps.csv")  # doctest: +SKIP
    >>> print(data.profile_note)  # doctest: +SKIP
    Process profile: PPVVC B2B (it matches this log's activities).
    """
    encoding = kw.get("encoding", "utf-8")
    results: dict[str, LoadResult] = {}
    if reps is not None:
        results["reps"] = reps if isinstance(reps, LoadResult) else read_reps(reps, encoding=encoding)
    results["log"] = read_event_log(log, kind=kind, mapping=mapping, profile=profile, after_close=after_close,
                                    reps=results.get("reps"), **kw)
    if quotas is not None:
        results["quotas"] = quotas if isinstance(quotas, LoadResult) else read_quotas(
            quotas, log=results["log"], reps=results.get("reps"), encoding=encoding)
    quarantine = pd.concat([results[name].quarantine.assign(table=name) for name in ("log", "reps", "quotas")
                            if name in results], ignore_index=True)
    quarantine = quarantine[["table"] + [c for c in quarantine.columns if c != "table"]]
    order = [name for name in ("log", "reps", "quotas") if name in results]
    report = CombinedReport({name: results[name].report for name in order})
    return SalesData(log=results["log"].log, reps=results["reps"].log if "reps" in results else None,
                     quotas=results["quotas"].log if "quotas" in results else None,
                     profile=results["log"].profile, quarantine=quarantine, report=report,
                     profile_note=results["log"].profile_note)
