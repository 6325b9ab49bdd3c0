"""Grouping rows the one way every analysis does: by one or more columns, missing values as '(none)'.

pandas drops rows whose key is missing when it groups; a deal without a team
would vanish from every table by team. Every analysis groups through
:func:`group`, so such deals appear under :data:`NONE` instead, counted.
"""

from __future__ import annotations

import pandas as pd

#: The label of a missing grouping value.
NONE = "(none)"

#: A grouping: one column, several, or none (one group of everything).
BY = str | list[str] | tuple[str, ...] | None


def as_list(by: BY) -> list[str]:
    """The grouping columns as a list (``None`` is no column).

    Examples
    --------
    >>> as_list("team"), as_list(None), as_list(("team", "rep"))
    (['team'], [], ['team', 'rep'])
    """
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def labelled(values: pd.Series) -> pd.Series:
    """The values with missing ones labelled :data:`NONE`.

    Examples
    --------
    >>> labelled(pd.Series(["east", None])).tolist()
    ['east', '(none)']
    """
    return values.astype(object).where(values.notna(), NONE)


def group(frame: pd.DataFrame, keys: list[str]):
    """``frame.groupby(keys)`` with missing keys labelled; one group of everything without keys."""
    frame = frame.assign(**{k: labelled(frame[k]) for k in keys})
    return frame.groupby(keys, sort=True) if keys else frame.groupby(lambda _: "all")
