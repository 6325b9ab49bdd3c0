"""The engine's public functions: each runs its expression in a session and returns pandas."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import WorkbenchError
from ..profile import SalesProcessProfile, get_profile
from ..schema import (
    ACTIVITY,
    AMOUNT,
    CASE,
    ORG,
    REQUIRED,
)
from .expressions import (
    EventKey,
    activity_codes,
    activity_counts_expr,
    case_durations_expr,
    case_sequences,
    case_spans_of,
    case_table_expr,
    deal_states_expr,
    closed_by_period_expr,
    created_by_period_expr,
    dfg_expr,
    dfg_of,
    event_key,
    key_stats_expr,
    no_rows,
    null_counts,
    sequences_of,
    stage_visits_expr,
    variants_expr,
    variants_of,
)
from . import inmemory
from .runner import Runner, session
from .sources import INTERNAL, memory_limit_bytes, n_events


def dfg(
    log: Any, *, performance: bool = False, backend: str = "duckdb", con: ibis.BaseBackend | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The DFG and the start/end activities in one pass over the log.

    Returns
    -------
    (edges, start_end): edges as :func:`directly_follows` (frequency only unless
    ``performance``), start_end as :func:`start_end_activities`. Hand both to
    :func:`to_pm4py_dfg` for pm4py.
    """
    o = inmemory.ordered(log, backend, con)
    if o is not None:
        g = inmemory.dfg_groups(o, performance)
    else:
        with session(log, backend=backend, con=con) as run:
            by_sort = performance and quantiles_by_sort(log, run.backend)
            key = event_key_of(run)
            g = run(dfg_expr, (key, performance, by_sort, run.backend == "duckdb"))
    return _edges(g, performance), _start_end(g)


def event_key_of(run: Runner) -> EventKey:
    """The :class:`EventKey` of the log of a :func:`session`, with its activities."""
    names = run(activity_codes, arrow=True).sort_by("_code")[ACTIVITY].to_pylist()
    (stats,) = run(key_stats_expr, arrow=True).to_pylist()
    return replace(event_key(len(names), stats), activities=tuple(names))


def order_key_of(run: Runner) -> EventKey:
    """The :class:`EventKey` without activity codes that :func:`order_key` packs."""
    (stats,) = run(key_stats_expr, arrow=True).to_pylist()
    return event_key(0, stats)


#: Bytes of DuckDB memory per event above which the wait quantiles are computed by a
#: sort: measured, the in-memory quantile of 10 million events spills 4 GB under a 2 GB
#: limit and that of 100 million spills without bound under 8 GB.
_QUANTILE_BYTES_PER_EVENT = 200


def quantiles_by_sort(log: Any, backend: str) -> bool:
    """Whether :func:`dfg_expr` should sort for the quantiles on ``backend``: on Spark (whose
    exact percentile also holds every value of a group) and on logs too large for DuckDB's memory."""
    if backend != "duckdb":
        return True
    n = n_events(log)
    return n is not None and n * _QUANTILE_BYTES_PER_EVENT > memory_limit_bytes()


def _edges(g: pd.DataFrame, performance: bool) -> pd.DataFrame:
    cols = ["source", "target", "frequency"]
    if performance:
        cols += ["wait_mean_s", "wait_median_s", "wait_p90_s", "wait_min_s", "wait_max_s"]
    out = g.loc[g["target"].notna(), cols].copy()
    out["frequency"] = out["frequency"].astype("int64")
    return _sorted(out, ["frequency", "source", "target"], [False, True, True])


def _start_end(g: pd.DataFrame) -> pd.DataFrame:
    start = g.groupby("source")["_starts"].sum()
    # a case's end and a missing activity (Ibis tables only) both have no target name
    end = g.loc[g["target"].isna()].groupby("source")["frequency"].sum()
    out = pd.DataFrame({"start": start, "end": end}).fillna(0).astype("int64")
    out = out[(out["start"] > 0) | (out["end"] > 0)].rename_axis("activity").reset_index()
    return _sorted(out, ["start", "end", "activity"], [False, False, True])


def directly_follows(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Directly-follows pairs with their frequency and waiting-time statistics.

    A pair is two consecutive events of a case (pm4py's ``discover_dfg``); the
    wait is the time between them in seconds (``discover_performance_dfg``).

    Returns
    -------
    DataFrame[source, target, frequency, wait_mean_s, wait_median_s, wait_p90_s,
    wait_min_s, wait_max_s], most frequent first.
    """
    return dfg(log, performance=True, backend=backend, con=con)[0]


def start_end_activities(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """How many cases start and end with each activity.

    Returns
    -------
    DataFrame[activity, start, end] (pm4py's ``get_start_activities`` /
    ``get_end_activities`` as columns), only activities that start or end a case.
    """
    return dfg(log, backend=backend, con=con)[1]


def activity_counts(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Events and distinct cases per activity: DataFrame[activity, events, cases]."""
    o = inmemory.ordered(log, backend, con)
    if o is not None:
        return _activities_in_order(inmemory.activity_counts(o))
    with session(log, backend=backend, con=con) as run:
        out = run(activity_counts_expr)
    out[["events", "cases"]] = out[["events", "cases"]].astype("int64")
    return _activities_in_order(out)


def _activities_in_order(counts: pd.DataFrame) -> pd.DataFrame:
    """Activity counts most frequent first, ties by name."""
    return _sorted(counts, ["events", ACTIVITY], [False, True])


def variants(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """The variants (activity sequences of cases), most frequent first, ties by variant.

    Returns
    -------
    DataFrame[variant (tuple of str), count, share, mean_duration_s]; ``share``
    is the fraction of cases, the duration is first to last event of a case.
    """
    o = inmemory.ordered(log, backend, con)
    if o is not None:
        return _variant_frame(inmemory.variants(o), _in_memory_key(o))
    # The engine returns codes and the key carries the activities' names: they go on here, because
    # shipping every variant as a list of strings out of the engine costs more than the rest.
    with session(log, backend=backend, con=con) as run:
        key = event_key_of(run)
        out = run(variants_expr, (key,), arrow=True)
    return _variant_frame(out, key)


def _in_memory_key(o: inmemory.Ordered) -> EventKey:
    """The key that names the in-memory path's activity codes."""
    return EventKey(inmemory.code_bits(o), 0, activities=tuple(o.activities))


def _variant_frame(out: pa.Table, key: EventKey) -> pd.DataFrame:
    """The variants of :func:`variants_expr` with their activities' names."""
    names = np.full(1 << key.code_bits, None, dtype=object)  # all ones: a missing activity
    names[:len(key.activities)] = key.activities
    count = out["count"].to_numpy().astype("int64")
    total = count.sum()
    return pd.DataFrame({
        "variant": _tuples(out["_codes"].combine_chunks(), names),
        "count": count,
        "share": count / total if total else np.full(len(count), np.nan),
        "mean_duration_s": out["mean_duration_s"].to_numpy(zero_copy_only=False).astype("float64"),
    })


def _tuples(lists: pa.ListArray, names: np.ndarray) -> list[tuple]:
    """Each list of codes as a tuple of ``names``."""
    codes = pc.list_flatten(lists).to_numpy(zero_copy_only=False)
    ends = pc.list_value_length(lists).to_numpy(zero_copy_only=False).cumsum().tolist()
    # Millions of new objects would set off the cyclic garbage collector again and again
    # (a third of the time at 10M events); tuples of strings cannot form cycles.
    enabled = gc.isenabled()
    gc.disable()
    try:
        flat = names[codes].tolist()
        return list(map(tuple, map(flat.__getitem__, map(slice, [0, *ends[:-1]], ends))))
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Discovery:
    """What discovery needs from every event, from one sort of each case's events
    (:func:`discovery_bundle`); each frame is the named function's result."""

    #: :func:`directly_follows`
    edges: pd.DataFrame
    #: :func:`start_end_activities`
    start_end: pd.DataFrame
    #: :func:`activity_counts`
    activities: pd.DataFrame
    #: :func:`variants`
    variants: pd.DataFrame
    #: :func:`case_durations`
    case_durations: pd.DataFrame


def discovery_bundle(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> Discovery:
    """The performance DFG, start and end activities, activity counts, variants and case
    durations in one call.

    Each case's events are sorted once, into a table of the session that the four
    aggregations read, where separate calls would sort every event four times.

    Returns
    -------
    Discovery

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b"], "activity": ["Ask", "Buy", "Ask"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-03", "2026-01-02"], utc=True)})
    >>> d = discovery_bundle(log)
    >>> d.edges[["source", "target", "frequency", "wait_mean_s"]].to_dict("records")
    [{'source': 'Ask', 'target': 'Buy', 'frequency': 1, 'wait_mean_s': 172800.0}]
    >>> d.case_durations["duration_s"].tolist()
    [172800.0, 0.0]
    """
    o = inmemory.ordered(log, backend, con)
    if o is not None:
        g = inmemory.dfg_groups(o, True)
        return Discovery(_edges(g, True), _start_end(g), _activities_in_order(inmemory.activity_counts(o)),
                         _variant_frame(inmemory.variants(o), _in_memory_key(o)), inmemory.case_durations(o))
    with session(log, backend=backend, con=con) as run:
        by_sort = quantiles_by_sort(log, run.backend)
        key = event_key_of(run)
        stored = run.store(_bundle_sequences, (key,), "_wb_sequences")
        g = run(_bundle_dfg, (stored, key, by_sort, run.backend == "duckdb"))
        stored_variants = run.store(_bundle_variants, (stored, key), "_wb_variants")
        v = run(_variants_in_order, (stored_variants,), arrow=True)
        cases = run(_cases_per_code, (stored_variants,))
        spans = run(_bundle_spans, (stored, key), arrow=True)
    variants_out = _variant_frame(v, key)
    edges, start_end = _edges(g, True), _start_end(g)
    events = g.groupby("source")["frequency"].sum()  # every event is the source of one pair or an end
    names = pd.Series(key.activities)
    cases = cases.set_index(cases["_code"].map(names))["cases"]
    activities = pd.DataFrame({ACTIVITY: events.index, "events": events.to_numpy().astype("int64"),
                               "cases": cases.reindex(events.index).to_numpy().astype("int64")})
    durations = inmemory.durations_frame(spans[CASE].to_pandas(), spans["_t0"].to_numpy(zero_copy_only=False),
                                         spans["_t1"].to_numpy(zero_copy_only=False))
    return Discovery(edges, start_end, _activities_in_order(activities), variants_out, durations)


def _bundle_sequences(t: Any, key: EventKey) -> Any:
    return case_sequences(t, key).table


def _bundle_dfg(t: Any, stored: Any, key: EventKey, by_sort: bool, zipped: bool) -> Any:
    return dfg_of(sequences_of(stored, key), True, by_sort, zipped)


def _bundle_variants(t: Any, stored: Any, key: EventKey) -> Any:
    return variants_of(sequences_of(stored, key), key)


def _bundle_spans(t: Any, stored: Any, key: EventKey) -> Any:
    return case_spans_of(sequences_of(stored, key), key)


def _variants_in_order(t: Any, variants: Any) -> Any:
    # a stored table need not keep its rows' order (Spark does not)
    return variants.order_by([variants["count"].desc(), variants._codes])


def _cases_per_code(t: Any, variants: Any) -> Any:
    """Cases in which each activity code occurs, from the variants' codes and counts."""
    present = variants.select(_code=variants._codes.unique().unnest(), count=variants["count"])
    return present.group_by("_code").agg(cases=present["count"].sum())


def case_durations(log: Any, *, backend: str = "duckdb", con: ibis.BaseBackend | None = None) -> pd.DataFrame:
    """Each case's first and last event and the seconds between, by case_id.

    Returns
    -------
    DataFrame[case_id, start, end, duration_s]
    """
    # No in-memory path: the first and last time of each case need no sort, and DuckDB's
    # grouping is faster than ordering the events at every size measured.
    # The engine orders the cases: both engines compare strings by code point, as pandas does.
    with session(log, backend=backend, con=con) as run:
        return run(case_durations_expr, (run.backend,))


def case_table(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """One row per case: its span, size, outcome and attributes.

    A case is closed by its first event whose activity is one of
    ``profile.closing``; ``outcome`` is 'won', 'lost', 'ended' (closed by one of
    ``profile.ends``, a finish without a won or lost outcome) or 'open'.
    ``amount`` is the last known amount; ``rep``, ``team`` and
    ``region`` are those on the closing event, else the last known ones; every
    other attribute column takes the case's first non-null value.

    Returns
    -------
    DataFrame[case_id, start, end, duration_s, n_events, outcome, closed_at,
    amount?, rep?, team?, region?, <attributes>...], sorted by case_id.
    """
    profile = get_profile(profile, log)
    with session(log, backend=backend, con=con) as run:
        out = run(case_table_expr, (profile, order_key_of(run)))
    out = out.drop(columns=["_close_t", "_start_t"])
    out["n_events"] = out["n_events"].astype("int64")
    first = [CASE, "start", "end", "duration_s", "n_events", "outcome", "closed_at"]
    first += [c for c in (AMOUNT, *ORG) if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]


def stage_visits(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """Visits of the profile's stages, one row per visit.

    Consecutive events of the same stage are one visit; another stage or the
    close ends it (loops such as follow-ups and unknown activities do neither);
    coming back to a stage later is a new visit. Events after the close are
    ignored.

    Returns
    -------
    DataFrame[case_id, stage, visit (1, 2, ... per case and stage), entered, left
    (NaT while current), duration_s, rep?, team?, region?] (org columns of the
    entering event), sorted by case_id and entered.
    """
    profile = get_profile(profile, log)
    # sorted by the engine: pandas took 7 of 15 s to sort the 4.5M visits of 10M events
    with session(log, backend=backend, con=con) as run:
        out = run(stage_visits_expr, (profile,))
    out["visit"] = out["visit"].astype("int64")
    return out


def deal_states(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    carried: Sequence[str] | None = None,
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """The running state of every deal after each of its events, computed where the log lives.

    The rows and columns of :func:`workbench.snapshot.deal_states` (its ``events``,
    without ``_case_code``), built from window functions that run on DuckDB, Spark
    or a database: a log too large for pandas gets its states there.

    Parameters
    ----------
    carried : sequence of str, optional
        Columns filled forward (their last value so far): default, every column but
        case_id, activity and timestamp. ``amount`` and ``close_date``, when carried,
        also count their changes before the close.

    Returns
    -------
    DataFrame, one row per event, sorted by case_id, then time, then input order.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "a"], "activity": ["Research", "Proposal", "Closed Won"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-09", "2026-02-01"], utc=True)})
    >>> deal_states(log)[["stage", "n_events", "stages_skipped", "closed"]].values.tolist()
    [['Research', 1, 1, False], ['Proposal', 2, 4, False], ['Proposal', 3, 4, True]]
    """
    profile = get_profile(profile, log)
    with session(log, backend=backend, con=con) as run:
        columns = run(no_rows).columns
        if carried is None:
            carried = [c for c in columns if c not in REQUIRED and c not in INTERNAL]
        carried = tuple(c for c in carried if c in columns)
        # Filling a column forward costs a sort of its own: only those with empty cells need it.
        empty = run(null_counts, (carried,)).iloc[0] if carried else pd.Series(dtype="int64")
        out = run(deal_states_expr, (profile, carried, tuple(c for c in carried if empty[c] > 0)))
    for c in ("n_events", "n_followups", "regressions", "stages_skipped", "close_date_pushes", "amount_changes"):
        if c in out.columns:
            out[c] = out[c].astype("int64")
    out["closed"] = out["closed"].astype(bool)
    return out


_FREQS = {"Q": "quarter", "M": "month", "W": "week", "Y": "year"}


def kpis_by_period(
    log: Any,
    profile: SalesProcessProfile | str | None = None,
    *,
    freq: str = "Q",
    backend: str = "duckdb",
    con: ibis.BaseBackend | None = None,
) -> pd.DataFrame:
    """Deals created, won and lost per period, with won amount, win rate and cycle.

    A deal counts as created in the period of its first event and as won/lost in
    the period of its close. ``win_rate`` = won / (won + lost) of the deals closed
    in the period; ``mean_cycle_days`` is their mean time from first event to close.

    Returns
    -------
    DataFrame[period ('2026Q3', '2026-07', ...), period_start, created, won, lost,
    won_amount, win_rate, mean_cycle_days], in time order.
    """
    if freq.upper() not in _FREQS:
        raise WorkbenchError(f"unknown period {freq!r}.", hint=f"use one of {sorted(_FREQS)}.")
    unit = freq.upper()
    profile = get_profile(profile, log)
    with session(log, backend=backend, con=con) as run:
        order = order_key_of(run)
        a, b = (run(build, (profile, unit, order)) for build in (created_by_period_expr, closed_by_period_expr))
    out = a.merge(b, on="period_start", how="outer").sort_values("period_start", ignore_index=True)
    for col in ("created", "won", "lost"):
        out[col] = out[col].fillna(0).astype("int64")
    if "won_amount" in out.columns:  # a period without wins won nothing
        out["won_amount"] = out["won_amount"].astype("float64").fillna(0.0)
    else:
        out["won_amount"] = np.nan
    closed_n = out["won"] + out["lost"]
    out["win_rate"] = np.where(closed_n > 0, out["won"] / closed_n.where(closed_n > 0, 1), np.nan)
    start = pd.to_datetime(out["period_start"], utc=True)
    out["period_start"] = start
    out.insert(0, "period", start.dt.tz_localize(None).dt.to_period(unit).astype(str))
    return out[["period", "period_start", "created", "won", "lost", "won_amount", "win_rate", "mean_cycle_days"]]


def to_pm4py_dfg(
    edges: pd.DataFrame, start_end: pd.DataFrame, *, measure: str = "frequency"
) -> tuple[dict, dict, dict]:
    """pm4py's ``(dfg, start_activities, end_activities)`` from the engine's results.

    ``measure='frequency'`` gives ``{(a, b): count}`` as ``pm4py.discover_dfg``;
    ``'performance'`` gives ``{(a, b): {'mean', 'median', 'min', 'max'}}`` in
    seconds as ``pm4py.discover_performance_dfg``.
    """
    if measure == "frequency":
        dfg = {(s, t): int(f) for s, t, f in zip(edges["source"], edges["target"], edges["frequency"])}
    elif measure == "performance":
        dfg = {
            (r.source, r.target): {
                "mean": float(r.wait_mean_s),
                "median": float(r.wait_median_s),
                "min": float(r.wait_min_s),
                "max": float(r.wait_max_s),
            }
            for r in edges.itertuples(index=False)
        }
    else:
        raise WorkbenchError(f"unknown measure {measure!r}.", hint="use 'frequency' or 'performance'.")
    starts = {a: int(n) for a, n in zip(start_end["activity"], start_end["start"]) if n > 0}
    ends = {a: int(n) for a, n in zip(start_end["activity"], start_end["end"]) if n > 0}
    return dfg, starts, ends


def _sorted(df: pd.DataFrame, by: Sequence[str], ascending: Sequence[bool]) -> pd.DataFrame:
    if list(by) and len(by) == 1 and ascending[0] and df[by[0]].is_monotonic_increasing:
        return df.reset_index(drop=True)  # already in order: the stable sort would change nothing
    return df.sort_values(list(by), ascending=list(ascending), kind="mergesort", ignore_index=True)
