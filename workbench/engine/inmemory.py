"""The engine's path for small logs: the discovery aggregations in NumPy, in this process.

Below :data:`SMALL_EVENTS` events, the fixed costs of the columnar path (compiling the
expression, planning the query, starting its threads) outweigh the work itself, and a
log of a few hundred thousand events was slower than pm4py. Here the events are read
into arrays (a DataFrame's columns, or the three needed columns of one Parquet file),
ordered once by case, time and input order (a stable sort), and the DFG, the variants,
the case durations and the activity counts are counted from that order.

The results are exactly those of the expressions in :mod:`.expressions` (the tests run
every aggregation both ways): the same order of events, the same quantile interpolation,
the same sort of the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..database import is_database_url
from ..schema import ACTIVITY, CASE, PM4PY_NAMES, REQUIRED, TIMESTAMP
from .sources import US, canonical_frame, file_kind, no_value, parquet_set

#: Events below which the in-memory path runs (DataFrames and single Parquet files on DuckDB).
#: Measured on two cores, in a process that has run both before: at 250,000 events the DFG
#: takes 0.05 s here against 0.11 s, at 500,000 the two are even, at 1 million the columnar
#: path takes 0.18 s against 0.30 s.
SMALL_EVENTS = 400_000

#: Most distinct activities the in-memory path takes (it counts pairs in a dense array of all pairs).
MAX_ACTIVITIES = 2_000


@dataclass(frozen=True)
class Ordered:
    """A log's events in case, time and input order.

    ``case`` and ``act`` are codes into ``cases`` and ``activities`` (both in code-point
    order, as the engine sorts strings), ``t`` microseconds since the epoch; ``first`` and
    ``last`` mark each case's first and last event.
    """

    case: np.ndarray
    act: np.ndarray
    t: np.ndarray
    cases: np.ndarray
    activities: np.ndarray
    first: np.ndarray
    last: np.ndarray


def ordered(log: Any, backend: str, con: Any) -> Ordered | None:
    """The log's :class:`Ordered` events when the in-memory path serves it, else None
    (other backends, Ibis tables, CSV files, several files, large or unusual inputs)."""
    if backend != "duckdb" or con is not None:
        return None
    if isinstance(log, pd.DataFrame):
        if len(log) >= SMALL_EVENTS:
            return None
        frame = canonical_frame(log)
        try:
            columns = {c: _chunked(pa.array(frame[c])) for c in REQUIRED}
        except (pa.ArrowException, TypeError, ValueError):
            return None  # mixed objects: the columnar path says what to do
    elif isinstance(log, (str, Path)) and not is_database_url(log):
        columns = _parquet_columns(Path(log))
        if columns is None:
            return None
    else:
        return None
    return _order(columns)


def _parquet_columns(path: Path) -> dict[str, pa.Array] | None:
    """The case, activity and timestamp columns of one small Parquet file, checked as the
    columnar path checks them; None when that path should read the file."""
    if file_kind(path) != "parquet" or parquet_set(path):
        return None
    meta = pq.ParquetFile(path)
    if meta.metadata.num_rows >= SMALL_EVENTS:
        return None
    names = set(meta.schema_arrow.names)
    in_file = {c: c if c in names else PM4PY_NAMES[c] for c in REQUIRED}
    if not all(name in names for name in in_file.values()):
        return None  # the columnar path names the missing column
    # strings as dictionaries: the codes come without hashing every value again
    strings = [name for name in in_file.values() if pa.types.is_string(meta.schema_arrow.field(name).type)]
    table = pq.read_table(path, columns=list(in_file.values()), read_dictionary=strings)
    out = {}
    for c, name in in_file.items():
        col = table.column(name)
        if col.null_count:
            first = int(np.flatnonzero(col.is_null().to_numpy())[0])
            raise no_value(col.null_count, name, first + 1, file=str(path))
        out[c] = col
    return out


def _chunked(col: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


def _order(columns: dict[str, pa.ChunkedArray]) -> Ordered | None:
    ts = columns[TIMESTAMP]
    if not pa.types.is_timestamp(ts.type):
        return None  # text times: the columnar path casts them
    # naive times are UTC, as the columnar path casts them; aware ones are stored in UTC
    t = pc.cast(ts.cast(pa.timestamp(ts.type.unit)), pa.timestamp("us"), safe=False).cast(pa.int64())
    t = t.to_numpy()
    codes = {}
    for c in (CASE, ACTIVITY):
        found = _sorted_codes(columns[c])
        if found is None:
            return None
        codes[c] = found
    (case, cases), (act, activities) = codes[CASE], codes[ACTIVITY]
    if len(activities) > MAX_ACTIVITIES:
        return None
    order = _case_time_order(case, t)
    case, act, t = case[order], act[order], t[order]
    change = case[1:] != case[:-1]
    first = np.concatenate(([True], change)) if len(case) else np.zeros(0, bool)
    last = np.concatenate((change, [True])) if len(case) else np.zeros(0, bool)
    return Ordered(case, act, t, cases.astype(object), activities.astype(object), first, last)


def _sorted_codes(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes of the values in sorted order (UTF-8 bytes sort as code points, as the engine's
    strings do) and the sorted distinct values; None for a type the columnar path must cast."""
    kind = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)):
        return None
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)  # one dictionary for every chunk
    if pa.types.is_integer(kind):
        col = pa.chunked_array([pa.DictionaryArray.from_arrays(ch.indices, ch.dictionary.cast(pa.string()))
                                for ch in col.chunks], pa.dictionary(col.type.index_type, pa.string()))
    col = col.unify_dictionaries()
    if col.num_chunks == 0:
        return np.zeros(0, np.int64), np.zeros(0, object)
    dictionary = col.chunk(0).dictionary
    indices = np.concatenate([ch.indices.to_numpy(zero_copy_only=False) for ch in col.chunks]).astype(np.int64)
    order = pc.sort_indices(dictionary).to_numpy().astype(np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[indices], dictionary.take(order).to_numpy(zero_copy_only=False)


def _case_time_order(case: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The events' order by case, then time, ties in input order."""
    if len(t) == 0:
        return np.zeros(0, np.int64)
    low, span = int(t.min()), int(t.max()) - int(t.min()) + 1
    if (int(case.max()) + 1) * span < 2**62:
        # one int64 key; the stable sort is near linear on the usual logs, already in case or time order
        return np.argsort(case * span + (t - low), kind="stable")
    return np.lexsort((t, case))


def dfg_groups(o: Ordered, performance: bool) -> pd.DataFrame:
    """The rows of :func:`~.expressions.dfg_expr`: one per (source, target) and one per
    (source, None) for the cases' last events, with ``frequency``, ``_starts`` and the waits."""
    n_act = len(o.activities)
    width = n_act + 1  # targets: the activities, then "the case ends"
    key = o.act * width + np.where(o.last, n_act, np.roll(o.act, -1))
    freq = np.bincount(key, minlength=n_act * width)
    starts = np.bincount(key, weights=o.first, minlength=n_act * width)
    present = np.flatnonzero(freq)
    out = pd.DataFrame({
        "source": o.activities[present // width],
        "target": np.append(o.activities, None)[present % width],
        "frequency": freq[present].astype("int64"),
        "_starts": starts[present].astype("int64"),
    })
    if performance:
        inner = ~o.last
        pair, wait_us = key[inner], (np.roll(o.t, -1) - o.t)[inner]  # whole microseconds, >= 0
        # the waits in order within each pair, from one sort of (pair, wait) packed in an int64
        span = int(wait_us.max()) + 1 if len(wait_us) else 1
        if n_act * width * span < 2**62:
            packed = np.sort(pair * span + wait_us)
            pair, wait_us = packed // span, packed % span
        else:
            by = np.lexsort((wait_us, pair))
            pair, wait_us = pair[by], wait_us[by]
        wait = wait_us / US
        bounds = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1]))) if len(pair) else np.zeros(0, int)
        n = np.diff(np.append(bounds, len(pair)))
        stats = {
            "wait_mean_s": np.add.reduceat(wait, bounds) / n if len(pair) else np.zeros(0),
            "wait_median_s": _quantile(wait, bounds, n, 0.5),
            "wait_p90_s": _quantile(wait, bounds, n, 0.9),
            "wait_min_s": wait[bounds],
            "wait_max_s": wait[bounds + n - 1],
        }
        row = np.searchsorted(present, pair[bounds])  # pairs ending a case have no wait
        for name, values in stats.items():
            column = np.full(len(present), np.nan)
            column[row] = values
            out[name] = column
    return out


def _quantile(sorted_values: np.ndarray, bounds: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolated quantile of each group of sorted values (numpy's and DuckDB's rule)."""
    pos = (n - 1) * q
    lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    a, b = sorted_values[bounds + lo], sorted_values[bounds + hi]
    return a + (b - a) * (pos - lo)


def code_bits(o: Ordered) -> int:
    """Bits of the activity codes, as :func:`~.expressions.event_key` counts them."""
    return len(o.activities).bit_length()


def variants(o: Ordered) -> pa.Table:
    """The rows of :func:`~.expressions.variants_expr`: ``_codes`` (list of activity codes),
    ``count`` and ``mean_duration_s``, most frequent first, ties in code order."""
    starts = np.flatnonzero(o.first)
    ends = np.append(starts[1:], len(o.act)) if len(starts) else starts
    # each case's codes as big-endian bytes: equal sequences are equal bytes, and bytes
    # compare as the code sequences do (a prefix first)
    buf = o.act.astype(">u2").tobytes()
    per_case = [buf[2 * s:2 * e] for s, e in zip(starts.tolist(), ends.tolist())]
    which, seqs = pd.factorize(pd.Series(per_case, dtype=object))
    count = np.bincount(which, minlength=len(seqs))
    duration = (o.t[ends - 1] - o.t[starts]) / US
    mean = np.bincount(which, weights=duration, minlength=len(seqs)) / np.maximum(count, 1)
    rank = sorted(range(len(seqs)), key=lambda i: (-count[i], seqs[i]))
    # each variant's codes: those of the first case that follows it
    first_case = np.full(len(seqs), len(which))
    np.minimum.at(first_case, which, np.arange(len(which)))
    first_case = first_case[rank]
    lengths = (ends - starts)[first_case]
    take = np.repeat(starts[first_case] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    codes = o.act[take + np.arange(lengths.sum())]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    return pa.table({"_codes": pa.ListArray.from_arrays(pa.array(offsets), pa.array(codes)),
                     "count": pa.array(count[rank].astype("int64")),
                     "mean_duration_s": pa.array(mean[rank].astype("float64"))})


def case_durations(o: Ordered) -> pd.DataFrame:
    """DataFrame[case_id, start, end, duration_s], ordered by case."""
    return durations_frame(pd.Series(o.cases, dtype="str"), o.t[o.first], o.t[o.last])


def durations_frame(cases: pd.Series, t0: np.ndarray, t1: np.ndarray) -> pd.DataFrame:
    """:func:`~.api.case_durations`' frame from each case's first and last time (microseconds)."""
    return pd.DataFrame({
        CASE: cases, "start": pd.to_datetime(t0, unit="us", utc=True), "end": pd.to_datetime(t1, unit="us", utc=True),
        "duration_s": (t1 - t0) / US})


def activity_counts(o: Ordered) -> pd.DataFrame:
    """DataFrame[activity, events, cases] (unsorted)."""
    n_act = len(o.activities)
    present = pd.unique(o.case * n_act + o.act)  # an activity once per case
    return pd.DataFrame({ACTIVITY: pd.Series(o.activities, dtype="str"),
                         "events": np.bincount(o.act, minlength=n_act).astype("int64"),
                         "cases": np.bincount(present % n_act, minlength=n_act).astype("int64")})
