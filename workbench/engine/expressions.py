"""The Ibis expressions, one per aggregation, over the prepared event table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from ..errors import WorkbenchError
from ..profile import SalesProcessProfile
from ..schema import (
    ACTIVITY,
    AMOUNT,
    CASE,
    CLOSE_DATE,
    ORG,
    REQUIRED,
    TIMESTAMP,
)
from .backends import UTC_TS, epoch_us
from .sources import INTERNAL, ORD, US, T


def ones(condition: ir.BooleanValue) -> ir.IntegerValue:
    """1 where ``condition`` holds, else 0 (PostgreSQL has no cast from boolean to bigint)."""
    return ibis.ifelse(condition, 1, 0).cast("int64")


def order_key(t: ir.Table, key: EventKey, low: ir.IntegerValue | None = None) -> ir.Value:
    """A value that sorts the events of a case in log order: their time, then ``low``
    (the input ordinal, or the ordinal and the activity code as ``key`` packs them).
    One int64 when ``key`` packs, else a struct ``{t, low}``."""
    # DuckDB orders by an int64 faster than by a struct in the case table's argmin/argmax
    # (10M events: 4.6 against 5.6 s, medians).
    low = t[ORD] if low is None else low
    if key.unit_us is None:
        return ibis.struct({"t": t[T], "low": low})
    return ((t[T] - key.t0) // key.unit_us) * (1 << (key.ord_bits + key.code_bits)) + low


def case_window(t: ir.Table, **kw: Any):
    # DuckDB sorts a window as fast by (time, input order) as by one packed key (measured)
    return ibis.window(group_by=t[CASE], order_by=[t[T], t[ORD]], **kw)


#: The wait quantiles of the performance DFG: (column name part, quantile).
_WAIT_QUANTILES = (("median", 0.5), ("p90", 0.9))


def dfg_expr(
    t: ir.Table, key: EventKey, performance: bool = True, quantiles_by_sort: bool = False,
    zipped_unnest: bool = False,
) -> ir.Table:
    """Pairs of consecutive events per case, with what start and end activities need.

    One row per (source, target), plus one row per (source, NULL) for the last
    events of cases; ``_starts`` counts the pair's sources that open a case. With
    ``performance``, the waits' mean, median, 90th percentile, min and max.
    One pass over each case's sorted events (keyed as ``key`` says) gives the DFG and
    the start/end activities together. The quantiles are exact either way;
    ``quantiles_by_sort`` computes them by sorting the waits (see :func:`_wait_quantiles`)
    instead of in memory. ``zipped_unnest`` (DuckDB only) pairs the events as below.
    """
    return dfg_of(case_sequences(t, key), performance, quantiles_by_sort, zipped_unnest)


def dfg_of(seqs: Sequences, performance: bool = True, quantiles_by_sort: bool = False,
           zipped_unnest: bool = False) -> ir.Table:
    """:func:`dfg_expr` from the cases' sequences (:func:`case_sequences`)."""
    per_case, seq = seqs.table, seqs.table._seq
    if zipped_unnest:
        # DuckDB unnests two arrays of one select side by side, padding the shorter with
        # NULL: each event beside the next, at half the cost of building pair structs.
        # Ibis leaves this to the backend (Spark refuses two generators in a select).
        pairs = per_case.select(a=seq.unnest(), b=seq[1:].unnest(), _head=seq[0])
        pairs = pairs.select("a", "b", opens=pairs.a == pairs._head, more=pairs.b.notnull())  # keys are unique
    else:
        # After the last event comes a key of all ones (its code reads as missing: no target name),
        # not NULL: PostgreSQL keeps these structs as JSON, whose null it cannot cast back.
        ones_key = ibis.literal(-1, "int64")
        end = ones_key if seq.type().value_type.is_integer() else ibis.struct({"t": ones_key, "low": ones_key})

        def pair(e: ir.Value, i: ir.IntegerValue) -> ir.StructValue:
            """The event, the next one (the end key after the last), whether it opens the case, whether one follows."""
            more = i + 1 < seq.length()
            return ibis.struct({"a": e, "b": ibis.ifelse(more, seq[i + 1], end), "opens": i == 0, "more": more})

        u = per_case.select(_p=seq.map(pair).unnest())
        pairs = u.select(a=u._p.a, b=u._p.b, opens=u._p.opens, more=u._p.more)
    # a missing activity keeps its code (all ones), which has no name: NULL after the join
    cols: dict[str, Any] = {"_src": seqs.code(pairs.a), "_tgt": seqs.code(pairs.b), "_first": pairs.opens}
    if performance:
        wait = (seqs.time(pairs.b) - seqs.time(pairs.a)) / (US / seqs.unit_us)
        cols["_wait"] = ibis.ifelse(pairs.more, wait, ibis.null("float64"))
    e = pairs.select(**cols)
    aggs: dict[str, Any] = {"frequency": e.count(), "_starts": ones(e._first).sum()}
    if performance:
        aggs.update(wait_mean_s=e._wait.mean(), wait_min_s=e._wait.min(), wait_max_s=e._wait.max())
        if not quantiles_by_sort:
            aggs["_q"] = e._wait.quantile([q for _, q in _WAIT_QUANTILES])  # one selection for all
    g = e.group_by("_src", "_tgt").agg(**aggs)
    if performance and quantiles_by_sort:
        qs = _wait_quantiles(e)
        g = g.left_join(qs, ["_src", "_tgt"]).select(g, *[qs[f"wait_{name}_s"] for name, _ in _WAIT_QUANTILES])
    elif performance:
        g = g.mutate(**{f"wait_{name}_s": g._q[i] for i, (name, _) in enumerate(_WAIT_QUANTILES)}).drop("_q")
    codes = seqs.codes
    src = codes.select(_src=codes._code, source=codes[ACTIVITY])
    tgt = codes.select(_tgt=codes._code, target=codes[ACTIVITY])
    g = g.left_join(src, "_src").left_join(tgt, "_tgt")
    return g.drop(*[col for col in g.columns if col.startswith(("_src", "_tgt"))])


def _wait_quantiles(e: ir.Table) -> ir.Table:
    """Median and 90th percentile of ``_wait`` per (``_src``, ``_tgt``), by sorting.

    The linear interpolation of ``quantile`` (and numpy), from the order statistics at
    ranks floor and ceil of (n - 1) q. DuckDB's in-memory quantile keeps every wait of a
    pair in its aggregate state, which on a log far larger than memory spills without
    bound; a sort spills in order and finishes.
    """
    p = e.filter(e._wait.notnull()).select("_src", "_tgt", "_wait")
    pair = [p._src, p._tgt]
    r = p.mutate(_r=ibis.row_number().over(ibis.window(group_by=pair, order_by=p._wait)),
                 _n=p._wait.count().over(ibis.window(group_by=pair)))
    aggs: dict[str, Any] = {"_n": r._n.max()}
    for name, q in _WAIT_QUANTILES:
        pos = (r._n - 1) * q
        aggs[f"_{name}_lo"] = r._wait.max(where=r._r == pos.floor())
        aggs[f"_{name}_hi"] = r._wait.max(where=r._r == pos.ceil())
    qs = r.group_by(["_src", "_tgt"]).agg(**aggs)
    out = {}
    for name, q in _WAIT_QUANTILES:
        pos = (qs._n - 1) * q
        lo, hi = qs[f"_{name}_lo"], qs[f"_{name}_hi"]
        out[f"wait_{name}_s"] = lo + (hi - lo) * (pos - pos.floor())
    return qs.select("_src", "_tgt", **out)


def activity_codes(t: ir.Table) -> ir.Table:
    """The log's distinct activities numbered 0, 1, ... in name order: (activity, _code)."""
    acts = t.select(t[ACTIVITY]).distinct()
    return acts.mutate(_code=ibis.row_number().over(order_by=acts[ACTIVITY]))


def _coded(t: ir.Table, codes: ir.Table) -> ir.Table:
    """The events' case, time, ordinal and activity code (of :func:`activity_codes`)."""
    return t.left_join(codes, ACTIVITY).select(t[CASE], t[T], t[ORD], codes._code)


def activity_counts_expr(t: ir.Table) -> ir.Table:
    """Ibis expression of :func:`activity_counts` over a prepared table."""
    return t.group_by(activity=t[ACTIVITY]).agg(events=t.count(), cases=t[CASE].nunique())


#: Time units (in microseconds) an event key can count in, coarsest first.
_KEY_UNITS_US = (1_000_000, 1_000, 1)


#: Most bits the time of an event key may take: its unit count then converts to and from
#: a double exactly (Ibis's integer floor division divides as doubles).
_KEY_TIME_BITS = 39


@dataclass(frozen=True)
class EventKey:
    """How each event of a case becomes one value that sorts in log order.

    The activity code takes the low ``code_bits`` (all ones: a missing activity) and
    the input ordinal the bits above. With ``unit_us``, the time since ``t0`` in that
    unit takes the bits above those, and a case sorts plain int64 keys; without,
    (time, ordinal and code) structs, which build and sort about 40% slower.
    """

    code_bits: int
    ord_bits: int
    unit_us: int | None = None
    t0: int = 0
    #: The activities in code order, as :func:`event_key_of` read them (see :func:`_key_codes`).
    activities: tuple[str | None, ...] | None = None


def _key_codes(key: EventKey) -> ir.Table:
    """The activity codes of a key from :func:`event_key_of` as a small in-memory table
    (activity, _code), which spares the query finding the distinct activities again (about
    0.05 s at 10M events)."""
    return ibis.memtable(pa.table({ACTIVITY: pa.array(key.activities, pa.string()),
                                   "_code": pa.array(range(len(key.activities)), pa.int64())}))


def key_stats_expr(t: ir.Table) -> ir.Table:
    """One row: the largest ordinal, the earliest and latest time and, per unit of
    :data:`_KEY_UNITS_US` but the finest, whether every time is a whole number of it."""
    whole = {f"whole_{u}": (t[T] % u == 0).all() for u in _KEY_UNITS_US[:-1]}
    return t.aggregate(max_ord=t[ORD].max(), t_min=t[T].min(), t_max=t[T].max(), **whole)


def event_key(n_codes: int, stats: dict[str, Any]) -> EventKey:
    """The :class:`EventKey` for a log of ``n_codes`` activities and :func:`key_stats_expr`."""
    code_bits = n_codes.bit_length()  # room for codes 0 .. n_codes - 1 and the all-ones "missing"
    ord_bits = max(int(stats["max_ord"] or 0), 0).bit_length()
    if code_bits + ord_bits > 62:
        raise WorkbenchError(
            f"the log has {n_codes:,} distinct activities, too many to sort beside {ord_bits}-bit event "
            "numbers.", column=ACTIVITY, hint="map the activities to a smaller set (e.g. the stage names) first.")
    key = EventKey(code_bits, ord_bits)
    if stats["t_min"] is None:  # no events
        return key
    unit = next(u for u in _KEY_UNITS_US if u == 1 or stats[f"whole_{u}"])
    time_bits = ((int(stats["t_max"]) - int(stats["t_min"])) // unit).bit_length()
    if time_bits > _KEY_TIME_BITS or time_bits + ord_bits + code_bits > 63:
        return key
    return EventKey(code_bits, ord_bits, unit, int(stats["t_min"]))


@dataclass(frozen=True)
class Sequences:
    """Each case's events as an array ``_seq`` of keys in log order (``table``), how to
    read a key's activity code (all ones: missing) and its time, in ``unit_us``
    microseconds since the key's origin, and the codes' names."""

    table: ir.Table
    code: Callable[[ir.Value], ir.IntegerValue]
    time: Callable[[ir.Value], ir.IntegerValue]
    unit_us: int
    #: the activity codes the keys carry (:func:`_key_codes`), to name them
    codes: ir.Table


def case_sequences(t: ir.Table, key: EventKey) -> Sequences:
    """The events of each case keyed as ``key`` says, codes of :func:`activity_codes`."""
    # Sorting keys inside an array keeps the log order on every backend (Spark cannot
    # order an aggregate directly); for the DFG's pairs it costs DuckDB about a third less
    # CPU than a window over the cases (2.4 against 3.4 s at 10M events). Ordinals are
    # unique, so codes beside them leave the order as it is; a missing activity (only
    # possible in an Ibis table) packs as all ones, so that it cannot move its event either.
    c = _coded(t, _key_codes(key))
    span = 1 << key.code_bits
    ordinal_code = c[ORD] * span + c._code.fill_null(span - 1)
    # a column of its own: Ibis's null filter on the aggregate then tests it rather than
    # computing every key twice
    c = c.mutate(_k=order_key(c, key, ordinal_code))
    # sorted as part of the aggregate, so that what reads the array reads a column (Ibis
    # would otherwise repeat the sort wherever the array is used, even inside lambdas)
    return sequences_of(c.group_by(c[CASE]).agg(_seq=c._k.collect().sort()), key)


def sequences_of(per_case: ir.Table, key: EventKey) -> Sequences:
    """The :class:`Sequences` of a table of ``case_id`` and ``_seq`` keyed as ``key`` says
    (the result of :func:`case_sequences`, or that result stored as a table)."""
    span = 1 << key.code_bits
    if key.unit_us is None:
        packed, time, unit = (lambda e: e.low), (lambda e: e.t), 1
    else:
        shift = key.ord_bits + key.code_bits
        packed, time, unit = (lambda e: e), (lambda e: e >> shift), key.unit_us
    return Sequences(per_case, lambda e: packed(e) & (span - 1), time, unit, _key_codes(key))


def case_variants_expr(t: ir.Table, key: EventKey) -> ir.Table:
    """One row per case: its activity sequence as codes of :func:`activity_codes` (array;
    all ones: missing) and its duration in seconds (``_d``), the events keyed as ``key`` says."""
    return case_variants_of(case_sequences(t, key), key)


def case_variants_of(seqs: Sequences, key: EventKey) -> ir.Table:
    """:func:`case_variants_expr` from the cases' sequences."""
    # the smallest integers that hold the codes: the variants group and sort on them
    small = next(f"int{n}" for n in (8, 16, 32, 64) if key.code_bits < n)
    per_case, seq = seqs.table, seqs.table._seq
    return per_case.select(
        per_case[CASE],
        _codes=seq.map(lambda e: seqs.code(e).cast(small)),
        _d=(seqs.time(seq[seq.length() - 1]) - seqs.time(seq[0])) / (US / seqs.unit_us),
    )


def variants_expr(t: ir.Table, key: EventKey) -> ir.Table:
    """The variants as arrays of activity codes (of :func:`activity_codes`), most frequent first.

    Columns ``_codes``, ``count``, ``mean_duration_s``. Codes follow the names' order, so
    ordering by codes is ordering by names: ties in count come in variant order.
    """
    return variants_of(case_sequences(t, key), key)


def case_spans_of(seqs: Sequences, key: EventKey) -> ir.Table:
    """Each case's first and last event time (``_t0``, ``_t1``, microseconds since the epoch)
    from the cases' sequences, ordered by case."""
    per_case, seq = seqs.table, seqs.table._seq
    at = lambda e: key.t0 + seqs.time(e) * seqs.unit_us  # noqa: E731
    out = per_case.select(per_case[CASE], _t0=at(seq[0]), _t1=at(seq[seq.length() - 1]))
    return out.order_by(out[CASE])


def variants_of(seqs: Sequences, key: EventKey) -> ir.Table:
    """:func:`variants_expr` from the cases' sequences."""
    c = case_variants_of(seqs, key)
    v = c.group_by(c._codes).agg(count=c.count(), mean_duration_s=c._d.mean())
    return v.order_by([v["count"].desc(), v._codes])


def _among(values: ir.StringValue, names: tuple[str, ...]) -> ir.BooleanValue:
    """``values.isin(names)``, kept a column when ``names`` is empty (Ibis folds that into a
    scalar False, which window sums refuse)."""
    return values.isin(list(names)) if names else values.isnull() & values.notnull()


def _closing(t: ir.Table, profile: SalesProcessProfile) -> ir.BooleanValue:
    return _among(t[ACTIVITY], profile.closing)


def case_table_expr(t: ir.Table, profile: SalesProcessProfile, order: EventKey) -> ir.Table:
    """Ibis expression of :func:`case_table` over a prepared table, ordered by case; events
    in a case ordered as ``order`` (of :func:`order_key_of`) says."""
    key = order_key(t, order)
    close = _closing(t, profile)

    def first(col: str, where: ir.BooleanValue) -> ir.Value:
        return t[col].argmin(key, where=where)

    def last(col: str, where: ir.BooleanValue) -> ir.Value:
        return t[col].argmax(key, where=where)

    aggs: dict[str, Any] = {
        "start": t[TIMESTAMP].min(),
        "end": t[TIMESTAMP].max(),
        "duration_s": (t[T].max() - t[T].min()) / US,
        "n_events": t.count(),
        "_close_activity": first(ACTIVITY, close),
        "closed_at": t[TIMESTAMP].min(where=close),
        "_close_t": t[T].min(where=close),
        "_start_t": t[T].min(),
    }
    if AMOUNT in t.columns:
        aggs[AMOUNT] = last(AMOUNT, t[AMOUNT].notnull())
    for col in ORG:
        if col in t.columns:
            # the owner on the (first) closing event that names one, else the latest known owner
            aggs[col] = ibis.coalesce(first(col, close & t[col].notnull()), last(col, t[col].notnull()))
    skip = set(REQUIRED) | set(ORG) | {AMOUNT} | set(INTERNAL)
    for col in t.columns:
        if col not in skip and not col.startswith("_"):
            aggs[col] = first(col, t[col].notnull())
    c = t.group_by(t[CASE]).agg(**aggs)
    outcome = (
        ibis.cases(
            (_among(c._close_activity, profile.won), "won"),
            (_among(c._close_activity, profile.lost), "lost"),
            (c._close_activity.notnull(), "ended"),
            else_="open",
        )
    )
    c = c.mutate(outcome=outcome).drop("_close_activity")
    return c.order_by(c[CASE])


def stage_visits_expr(t: ir.Table, profile: SalesProcessProfile) -> ir.Table:
    """Ibis expression of :func:`stage_visits` over a prepared table, in the order it documents."""
    rel = t.filter(t[ACTIVITY].isin(list(profile.stages) + list(profile.closing)))
    close = ones(_closing(rel, profile))
    w = case_window(rel)
    rel = rel.mutate(
        _prev=rel[ACTIVITY].lag().over(w),
        _closed_before=close.sum().over(case_window(rel, rows=(None, 0))) - close,
        _is_close=close == 1,
    )
    # nothing after the deal closed starts a visit; the closing event itself ends the last one
    rel = rel.filter(rel._closed_before == 0)
    bound = rel.filter(rel._is_close | rel._prev.isnull() | (rel._prev != rel[ACTIVITY]))
    wb = case_window(bound)
    bound = bound.mutate(left=bound[TIMESTAMP].lead().over(wb), _next_t=bound[T].lead().over(wb))
    visits = bound.filter(~bound._is_close)
    wv = ibis.window(group_by=[visits[CASE], visits[ACTIVITY]], order_by=[visits[T], visits[ORD]])
    cols = {
        CASE: visits[CASE],
        "stage": visits[ACTIVITY],
        "visit": ibis.row_number().over(wv) + 1,
        "entered": visits[TIMESTAMP],
        "left": visits.left,
        "duration_s": (visits._next_t - visits[T]) / US,
    }
    for col in ORG:
        if col in visits.columns:
            cols[col] = visits[col]
    out = visits.select(**cols)
    return out.order_by([out[CASE], out.entered, out.stage, out.visit])


def case_durations_expr(t: ir.Table, backend: str = "duckdb") -> ir.Table:
    """Ibis expression of :func:`case_durations` over a prepared table, ordered by case."""
    # The first and last timestamps, with the seconds between from those two alone, cost
    # a third less than aggregating the integer times and turning them into timestamps.
    c = t.group_by(t[CASE]).agg(start=t[TIMESTAMP].min(), end=t[TIMESTAMP].max())
    c = c.mutate(duration_s=(epoch_us(c.end, backend) - epoch_us(c.start, backend)) / US)
    return c.order_by(c[CASE])


def created_by_period_expr(t: ir.Table, profile: SalesProcessProfile, unit: str, order: EventKey) -> ir.Table:
    """Cases per period of their first event."""
    c = case_table_expr(t, profile, order)
    return c.group_by(period_start=c.start.truncate(unit)).agg(created=c.count())


def closed_by_period_expr(t: ir.Table, profile: SalesProcessProfile, unit: str, order: EventKey) -> ir.Table:
    """Won, lost, won amount and mean cycle (days) of the cases closed in each period."""
    c = case_table_expr(t, profile, order)
    closed = c.filter(c.outcome != "open")
    won = closed.outcome == "won"
    agg = {
        "won": ones(won).sum(),
        "lost": ones(closed.outcome == "lost").sum(),
        "mean_cycle_days": ((closed._close_t - closed._start_t) / (US * 86400)).mean(),
    }
    if AMOUNT in t.columns:
        agg["won_amount"] = closed[AMOUNT].sum(where=won)
    return closed.group_by(period_start=closed.closed_at.truncate(unit)).agg(**agg)


def no_rows(t: ir.Table) -> ir.Table:
    """The prepared table's columns, without its rows."""
    return t.limit(0)


def null_counts(t: ir.Table, columns: tuple[str, ...]) -> ir.Table:
    """How many events have no value in each of ``columns`` (one row)."""
    return t.aggregate(**{c: ones(t[c].isnull()).sum() for c in columns})


def deal_states_expr(t: ir.Table, profile: SalesProcessProfile, carried: tuple[str, ...],
                     gaps: tuple[str, ...] = ()) -> ir.Table:
    """Ibis expression of :func:`workbench.engine.deal_states` over a prepared table: the running
    state of each deal after each of its events, in (case, time, input order) order.

    ``carried``: the attribute columns filled forward (the amount and the expected close date,
    when carried, count their changes too); ``gaps``: those of them that have empty cells.
    Every window but the filling of ``gaps`` shares one partition and order, which the engine
    sorts once per layer."""
    changing = tuple(c for c in (AMOUNT, CLOSE_DATE) if c in carried)  # their changes are counted
    close_date = CLOSE_DATE if CLOSE_DATE in carried else None
    # The windows sort only the columns they read; the other carried ones join back after.
    worked = tuple(c for c in carried if c in changing or c in gaps)
    wide, t = t, t.select(CASE, ACTIVITY, TIMESTAMP, ORD, T, *worked)
    act = t[ACTIVITY]
    k = len(profile.stages) + 1  # a row's position in its case and a stage rank, packed in one int
    rank = ibis.cases(*[(act == s, i) for i, s in enumerate(profile.stages)], else_=ibis.null("int64"))
    flags: dict[str, Any] = {"_rank": rank, "_close": ones(_closing(t, profile)),
                             "_won": ones(_among(act, profile.won)), "_loop": ones(_among(act, profile.loops))}
    flags.update({f"_seen{i}": ones(act == s) for i, s in enumerate(profile.mandatory)})
    if close_date is not None and not t[close_date].type().is_timestamp():
        flags[close_date] = t[close_date].cast(UTC_TS)
    if AMOUNT in carried:
        flags[AMOUNT] = t[AMOUNT].cast("float64")
    t = t.mutate(**flags)
    run, w, before = (case_window(t, rows=r) for r in ((None, 0), None, (None, -1)))
    t = t.mutate(
        created=t[TIMESTAMP].min().over(ibis.window(group_by=t[CASE])),
        n_events=ibis.row_number().over(w) + 1,
        n_followups=t._loop.sum().over(run),
        _closes=t._close.sum().over(run),
        _max=t._rank.max().over(run),
        _prev_max=t._rank.max().over(before),
        **{f"_g{i}": t[c].count().over(run) for i, c in enumerate(gaps)},
        **{f"_seen{i}": t[f"_seen{i}"].sum().over(run) for i in range(len(profile.mandatory))},
    )
    # The rank of the case's last stage event so far (and before this row): the largest packed
    # (position, rank), as positions increase along the case.
    stage_key = ibis.ifelse(t._rank.notnull(), t.n_events * k + t._rank, ibis.null("int64"))
    t = t.mutate(
        _key=stage_key.max().over(run), _prev_key=stage_key.max().over(before),
        regressions=ones(t._rank < t._prev_max).sum().over(run),  # NULL compares to nothing
        **{c: t[c].max().over(ibis.window(group_by=[t[CASE], t[f"_g{i}"]]))  # a run's only value
           for i, c in enumerate(gaps)},
        **{f"_raw_{c}": t[c] for c in changing},
    )
    stage_rank, prev_rank = t._key % k, t._prev_key % k
    new_visit = t._rank.notnull() & (prev_rank.isnull() | (t._rank != prev_rank))
    t = t.mutate(
        stage_rank=stage_rank.cast("float64"),
        stage_entered=ibis.ifelse(new_visit, t[TIMESTAMP], ibis.null(t[TIMESTAMP].type())).max().over(run),
        **{f"_prev_{c}": t[c].lag().over(w) for c in changing},
    )
    open_ = t._closes == 0
    changes = {}
    if close_date in carried:  # a later expected close date, before the close
        changes["close_date_pushes"] = ones(open_ & (t[f"_raw_{close_date}"] > t[f"_prev_{close_date}"]))
    if AMOUNT in carried:  # another amount, before the close
        changes["amount_changes"] = ones(open_ & (t[f"_raw_{AMOUNT}"] != t[f"_prev_{AMOUNT}"]))
    if changes:
        t = t.mutate(**{name: flag.sum().over(run) for name, flag in changes.items()})
    skipped = sum((ones((t[f"_seen{i}"] == 0) & (t._max > profile.stages.index(s)))
                   for i, s in enumerate(profile.mandatory)), ibis.literal(0, "int64"))
    first_close = (t._close == 1) & (t._closes == 1)
    stage = ibis.cases(*[(t.stage_rank == float(i), s) for i, s in enumerate(profile.stages)],
                       else_=ibis.null("string"))
    out = t.select(
        CASE, TIMESTAMP, ACTIVITY, *worked, "created", "n_events", "n_followups", *changes,
        stage=stage, stage_rank=t.stage_rank, stage_entered=t.stage_entered, max_rank=t._max.cast("float64"),
        regressions=t.regressions, stages_skipped=skipped,
        closing=ibis.ifelse(first_close, ibis.ifelse(t._won == 1, "won", "lost"), ibis.null("string")),
        closed=t._closes > 0, _o1=t[T], _o2=t[ORD],
    )
    if len(worked) < len(carried):
        rest = wide.select(_o2=wide[ORD], **{c: wide[c] for c in carried if c not in worked})
        out = out.join(rest, "_o2")
    out = out.select(CASE, TIMESTAMP, ACTIVITY, *carried, *[c for c in out.columns if c not in wide.columns])
    return out.order_by([out[CASE], out._o1, out._o2]).drop("_o1", "_o2")
