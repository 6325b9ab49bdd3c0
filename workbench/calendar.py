"""Quarters and dates: the calendar every analysis shares.

Quarters are calendar quarters written ``2026Q3``; bounds are UTC and half-open,
``[start, end)``.
"""

from __future__ import annotations

import functools

import re

import numpy as np
import pandas as pd

from .errors import WorkbenchError

_QUARTER = re.compile(r"^\s*(?:(\d{4})\s*[-_ ]?\s*Q([1-4])|Q([1-4])\s*[-_ /]?\s*(\d{4}))\s*$", re.I)


def parse_quarter(text: object) -> str | None:
    """Normalise '2026Q3', '2026-Q3', '2026 q3', 'Q3 2026' to '2026Q3'; None if malformed."""
    if not isinstance(text, str):
        return None
    m = _QUARTER.match(text)
    if not m:
        return None
    year, q = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    return f"{year}Q{q}"


def check_quarter(text: object) -> str:
    """Like :func:`parse_quarter` but raise :class:`WorkbenchError` when malformed."""
    q = parse_quarter(text)
    if q is None:
        raise WorkbenchError(f"{text!r} is not a quarter.", hint="write quarters as 2026Q3.")
    return q


@functools.lru_cache(maxsize=4096)
def quarter_bounds(quarter: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """UTC start (inclusive) and end (exclusive) of a quarter."""
    # Cached: backtests ask for the same few quarters tens of thousands of times.
    q = pd.Period(check_quarter(quarter), freq="Q")
    return (
        pd.Timestamp(q.start_time).tz_localize("UTC"),
        pd.Timestamp((q + 1).start_time).tz_localize("UTC"),
    )


def quarter_of(ts: pd.Series | pd.Timestamp) -> pd.Series | str:
    """The quarter label ('2026Q3') of a timestamp or a Series of them."""
    if isinstance(ts, pd.Series):
        return ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("Q").astype(str)
    t = pd.Timestamp(ts)
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t
    return str(t.to_period("Q"))


def shift_quarter(quarter: str, n: int) -> str:
    """The quarter ``n`` quarters after (negative: before) ``quarter``."""
    return str(pd.Period(check_quarter(quarter), freq="Q") + n)


def last_instant(quarter: str) -> pd.Timestamp:
    """The as-of date that sees the whole of ``quarter``: its last second.

    Examples
    --------
    >>> last_instant("2026Q3")
    Timestamp('2026-09-30 23:59:59+0000', tz='UTC')
    """
    return quarter_bounds(quarter)[1] - pd.Timedelta(seconds=1)


#: Weeks of a quarter: days 85 to 92 of a quarter fold into the 13th.
WEEKS = 13


def week_starts(quarter: str) -> list[pd.Timestamp]:
    """The first instant of each of the quarter's 13 weeks (week 1 starts with the quarter).

    Examples
    --------
    >>> [str(t.date()) for t in week_starts("2026Q3")[:2]]
    ['2026-07-01', '2026-07-08']
    """
    start, _ = quarter_bounds(quarter)
    return [start + pd.Timedelta(days=7 * i) for i in range(WEEKS)]


def week_of_quarter(ts: pd.Timestamp | pd.Series, quarter: str | None = None) -> int | np.ndarray:
    """The week of its quarter (1 to 13) a time falls in: week 1 is the quarter's first 7 days, and
    the last days of a quarter longer than 13 weeks count in week 13.

    The one definition every analysis, the forecast and its backtest use. With
    a Series, ``quarter`` (the quarter of the first time by default) is the
    quarter counted from for all.

    Examples
    --------
    >>> week_of_quarter(pd.Timestamp("2026-09-30", tz="UTC"))
    13
    """
    if isinstance(ts, pd.Series):
        start, _ = quarter_bounds(quarter or quarter_of(ts.iloc[0]))
        days = ((ts - start) / DAY).to_numpy(dtype=float)
        return np.clip(np.floor(days / 7), 0, WEEKS - 1).astype(int) + 1
    start, _ = quarter_bounds(quarter or quarter_of(ts))
    return int(min(max((pd.Timestamp(ts) - start) // pd.Timedelta(days=7), 0), WEEKS - 1)) + 1


#: A day, and a day in seconds: every duration an analysis returns is in days.
DAY = pd.Timedelta(days=1)
DAY_S = 86_400.0

#: The smallest step of time in the workbench: the last instant before ``t`` is ``t - INSTANT``.
INSTANT = pd.Timedelta(microseconds=1)


def happened(ts: pd.Series | pd.Timestamp, as_of: pd.Timestamp) -> pd.Series | bool:
    """Whether an event at ``ts`` has happened as of ``as_of``: at or before it.

    The one definition of "as of" every analysis, the forecast and the report
    share: an event at exactly the as-of instant has happened (a deal closed
    that day is closed, not open), and nothing later is visible.

    Examples
    --------
    >>> happened(pd.Timestamp("2026-08-15", tz="UTC"), pd.Timestamp("2026-08-15", tz="UTC"))
    True
    """
    return ts <= as_of


def to_utc(ts: object) -> pd.Timestamp:
    """A timestamp in UTC; naive input is taken as UTC."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def resolve_period(log: pd.DataFrame, quarter: str | None, as_of: str | None) -> tuple[str, pd.Timestamp]:
    """Check a report's quarter and as-of date against the log; fill the defaults.

    The as-of date defaults to the last event (or the quarter's end if that is
    earlier); the quarter defaults to the quarter of the as-of date. The as-of
    date must lie inside the data and inside the quarter.
    """
    first, last = log["timestamp"].min(), log["timestamp"].max()
    if quarter is not None:
        quarter = check_quarter(quarter)
    if as_of is None:
        stamp = last
        if quarter is not None:
            start = quarter_bounds(quarter)[0]
            stamp = min(last, last_instant(quarter))
            if stamp < start:
                raise WorkbenchError(
                    f"quarter {quarter} starts after the last event of the log ({last:%Y-%m-%d}).",
                    hint="pick a quarter the log covers, or leave --quarter out.")
    else:
        try:
            stamp = to_utc(as_of)
        except (ValueError, TypeError):
            raise WorkbenchError(f"--as-of {as_of!r} is not a date.", hint="write it as 2026-08-15.") from None
        if not first <= stamp <= last + pd.Timedelta(days=1):
            raise WorkbenchError(
                f"--as-of {stamp:%Y-%m-%d} is outside the data ({first:%Y-%m-%d} to {last:%Y-%m-%d}).",
                hint="pick a date the log covers.")
    quarter = quarter or quarter_of(stamp)
    start, end = quarter_bounds(quarter)
    if not start <= stamp < end:
        raise WorkbenchError(f"--as-of {stamp:%Y-%m-%d} is not inside {quarter}.",
                             hint="pick an as-of date inside the quarter, or leave it out.")
    return quarter, stamp
