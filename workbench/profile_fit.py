"""Does a sales process profile describe a log, and the profile derived from a log when none does.

A client's CRM names its stages its own way, and a log may not be a sales
process at all. :func:`fit_profile` says how much of a log a profile covers
(which activities it does not know, which of its stages never occur);
:func:`derive_profile` reads a profile off the data; :func:`resolve_profile`
takes the profile the user gave, or the shipped profile that describes the log,
or else the derived one, and says which in one line.

How a profile is derived
------------------------
- *Closing activities* are the ones that end cases: at least 90% of their
  occurrences in cases of two or more events are the case's last event. Their
  names say whether they close a case as won ('Closed Won', 'closedwon',
  'Accepted'...) or lost ('Closed Lost', 'Rejected', 'Cancelled'...); a finishing
  activity whose name says neither ('Archive Repair') finishes the case without
  an outcome (``ends``). A flat opportunity table says won and lost itself.
- *Loops* are activities repeated in at least 30% of the cases that have them
  and found anywhere in a case (the spread of their positions is at least 0.4
  of the case's length), such as follow-up calls; at least one stage remains.
- *Stages* are the other activities, in the order of their typical position:
  the median, over the cases that have them, of where their first occurrence
  falls in the case (0 first, 1 last); a flat table's milestones keep the
  order the mapping gives them.
- A stage is *optional* when fewer than 90% of the closed cases (all cases
  when none is closed) pass through it.
- No roles and no milestones: what needs them is skipped, with one line.
- Events after the close are set aside when the process has won and lost, and
  kept otherwise (a finishing activity may be followed by real work).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import WorkbenchError
from .profile import PPVVC, SALESFORCE, SalesProcessProfile, get_profile
from .schema import ACTIVITY, CASE

#: Shipped profiles tried, in this order, when the user names none.
CANDIDATES = (PPVVC, SALESFORCE)
#: A profile describes a log when one of its stages occurs and it knows this share of the events.
MIN_SHARE = 0.5
TERMINAL_SHARE = 0.9
LOOP_REPEAT_SHARE, LOOP_SPREAD = 0.3, 0.4
MANDATORY_SHARE = 0.9

_WON_WORDS = {"won", "win", "success", "successful", "signed", "accepted", "paid", "purchased", "converted",
              "выиграна", "успешно", "оплачено"}
_LOST_WORDS = {"lost", "loss", "rejected", "declined", "cancel", "canceled", "cancelled", "disqualified",
               "abandoned", "dead", "unqualified", "проиграна", "отказ", "отменена"}


@dataclass(frozen=True)
class ProfileFit:
    """How much of a log a profile describes.

    Attributes
    ----------
    profile : SalesProcessProfile
    events : int
        Events of the log.
    known_events : int
        Events whose activity the profile knows (stages, loops, closings).
    stages_seen, stages_missing : tuple of str
        The profile's stages that occur in the log, and those that never do.
    unknown : Series
        Events per activity the profile does not know, most frequent first.
    """

    profile: SalesProcessProfile
    events: int
    known_events: int
    stages_seen: tuple[str, ...]
    stages_missing: tuple[str, ...]
    unknown: pd.Series

    @property
    def share(self) -> float:
        """Share of the events the profile knows."""
        return self.known_events / self.events if self.events else 0.0

    @property
    def describes(self) -> bool:
        """True when a stage of the profile occurs and it knows at least half of the events."""
        return bool(self.stages_seen) and self.share >= MIN_SHARE

    def summary(self) -> str:
        """One line: how much of the log the profile knows, and what it does not."""
        text = f"profile {self.profile.name!r} knows {self.share:.0%} of the events"
        if len(self.unknown):
            shown = ", ".join(f"{a!r} ({n:,})" for a, n in self.unknown.head(5).items())
            text += f"; activities it does not know: {shown}" + (", ..." if len(self.unknown) > 5 else "")
        if self.stages_missing:
            text += f"; stages that never occur: {', '.join(self.stages_missing)}"
        return text + "."


def fit_profile(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None) -> ProfileFit:
    """How much of ``log`` the profile describes.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a"], "activity": ["Lead Created", "Call"]})
    >>> fit_profile(log, profile="ppvvc").share
    0.5
    """
    profile = get_profile(profile)
    counts = log[ACTIVITY].astype(str).value_counts()
    known = counts.index.isin(profile.activities)
    return ProfileFit(
        profile=profile, events=int(counts.sum()), known_events=int(counts[known].sum()),
        stages_seen=tuple(s for s in profile.stages if s in counts.index),
        stages_missing=tuple(s for s in profile.stages if s not in counts.index),
        unknown=counts[~known].rename("events"),
    )


def outcome_of_name(activity: str) -> str | None:
    """'won' or 'lost' when an activity's name says so ('Closed Won', 'closedlost'), else None.

    Examples
    --------
    >>> outcome_of_name("closedwon"), outcome_of_name("Deal Rejected"), outcome_of_name("Archive")
    ('won', 'lost', None)
    """
    words = re.findall(r"[^\W\d_]+", str(activity).lower())
    joined = "".join(words)
    won = bool(_WON_WORDS & set(words)) or joined.endswith("won")
    lost = bool(_LOST_WORDS & set(words)) or joined.endswith("lost")
    return "won" if won and not lost else "lost" if lost and not won else None


def _positions(log: pd.DataFrame) -> pd.DataFrame:
    """One row per event: case, activity, its index in the case, the case's length."""
    ev = pd.DataFrame({CASE: log[CASE].astype(str).to_numpy(), ACTIVITY: log[ACTIVITY].astype(str).to_numpy()})
    g = ev.groupby(CASE, sort=False)
    ev["i"] = g.cumcount().to_numpy()
    ev["n"] = g[ACTIVITY].transform("size").to_numpy()
    return ev


def derive_profile(
    log: pd.DataFrame,
    *,
    won: tuple[str, ...] | None = None,
    lost: tuple[str, ...] | None = None,
    stage_order: tuple[str, ...] | None = None,
    name: str = "derived from the data",
) -> SalesProcessProfile:
    """A profile read off the data (the rules are in the module docstring).

    Parameters
    ----------
    log : DataFrame
        Canonical event log, events of a case in order.
    won, lost : tuple of str, optional
        The activities that close a case as won and lost, when known (a flat
        opportunity table's outcomes); found from the data otherwise.
    stage_order : tuple of str, optional
        Stages in a known order (a flat table's milestones); others follow by position.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": list("aaabb"),
    ...                     "activity": ["Ask", "Quote", "Accepted", "Ask", "Rejected"]})
    >>> p = derive_profile(log)
    >>> p.stages, p.won, p.lost
    (('Ask', 'Quote'), ('Accepted',), ('Rejected',))
    """
    if log.empty:
        raise WorkbenchError("an empty log has no process to derive.", hint="give a log with events.")
    ev = _positions(log)
    activities = list(dict.fromkeys(ev[ACTIVITY]))
    if won is None and lost is None:
        multi = ev[ev["n"] >= 2]
        last = (multi["i"] == multi["n"] - 1).groupby(multi[ACTIVITY]).mean()
        terminal = [a for a in activities if last.get(a, 0.0) >= TERMINAL_SHARE]
        named = {a: outcome_of_name(a) for a in terminal}
        won = tuple(a for a in terminal if named[a] == "won")
        lost = tuple(a for a in terminal if named[a] == "lost")
        if not (won and lost):  # one side alone would make every close that outcome
            won, lost = (), ()
        ends = tuple(a for a in terminal if a not in won + lost)
    else:
        won, lost, ends = tuple(won or ()), tuple(lost or ()), ()
    closing = set(won) | set(lost) | set(ends)
    body = ev[~ev[ACTIVITY].isin(closing)]
    rest = [a for a in activities if a not in closing]
    pos = body.assign(pos=np.where(body["n"] > 1, body["i"] / (body["n"] - 1).clip(lower=1), 0.0))
    by_case = pos.groupby([ACTIVITY, CASE], sort=False)
    first_pos = by_case["pos"].min().groupby(level=0).median()
    repeated = (by_case.size() > 1).groupby(level=0).mean()
    spread = pos.groupby(ACTIVITY)["pos"].quantile(0.9) - pos.groupby(ACTIVITY)["pos"].quantile(0.1)
    loops = [a for a in rest if repeated.get(a, 0) >= LOOP_REPEAT_SHARE and spread.get(a, 0) >= LOOP_SPREAD]
    if len(loops) == len(rest):
        loops = []
    # A flat table's milestones are its stages, in the mapping's order, even those no deal reached.
    known = [a for a in (stage_order or ()) if a not in closing and a not in loops]
    others = sorted((a for a in rest if a not in loops and a not in known), key=lambda a: (first_pos[a], a))
    stages = tuple(known + others)
    if not stages:
        raise WorkbenchError("every activity of the log ends its cases, so no stage can be derived.",
                             hint="write a profile for this log (see the README) and pass it with --profile.")
    cases_with = ev.groupby(ACTIVITY)[CASE].agg(set).reindex(list(stages)).apply(
        lambda c: c if isinstance(c, set) else set())
    closed = set(ev.loc[ev[ACTIVITY].isin(closing), CASE]) or set(ev[CASE])
    optional = tuple(s for s in stages if len(cases_with[s] & closed) < MANDATORY_SHARE * len(closed))
    return SalesProcessProfile(
        name=name, stages=stages, won=won, lost=lost, ends=ends, optional=optional, loops=tuple(loops),
        events_after_close="set_aside" if won else "keep", derived=True)


@dataclass(frozen=True)
class ProfileChoice:
    """The profile an analysis uses, how well it fits, and the line that says so.

    Attributes
    ----------
    profile : SalesProcessProfile
    fit : ProfileFit
    note : str
        One plain line for every page that uses the profile.
    """

    profile: SalesProcessProfile
    fit: ProfileFit
    note: str


def _flow(profile: SalesProcessProfile) -> str:
    ends = [f"won: {', '.join(profile.won)}" if profile.won else "",
            f"lost: {', '.join(profile.lost)}" if profile.lost else "",
            f"finished: {', '.join(profile.ends)}" if profile.ends else ""]
    stages = " → ".join(f"({s})" if s in profile.optional else s for s in profile.stages)
    return stages + (f" ({'; '.join(e for e in ends if e)})" if any(ends) else "")


def resolve_profile(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    won: tuple[str, ...] | None = None,
    lost: tuple[str, ...] | None = None,
    stage_order: tuple[str, ...] | None = None,
) -> ProfileChoice:
    """The profile for ``log``: the one given, else a shipped one that describes it, else a derived one.

    Parameters
    ----------
    profile : SalesProcessProfile, name, path, 'auto' or None
        None and 'auto' choose for the user; a profile given is used as it is,
        with a note naming the activities it does not know.
    won, lost, stage_order
        Passed to :func:`derive_profile` when a profile is derived.

    Raises
    ------
    WorkbenchError
        A profile was given and none of its stages occurs in the log.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a"], "activity": ["Qualification", "Closed Won"]})
    >>> resolve_profile(log).profile.name
    'PPVVC B2B'
    """
    if profile is not None and str(profile).lower() != "auto":
        chosen = get_profile(profile)
        fit = fit_profile(log, profile=chosen)
        if not fit.stages_seen:
            shown = ", ".join(repr(a) for a in fit.unknown.index[:8])
            raise WorkbenchError(
                f"none of the stages of profile {chosen.name!r} occurs in the log, whose activities are {shown}.",
                hint="fix the stage names in the profile, or leave the profile out to derive one from the data "
                     "(workbench profile --log ... writes it for you to edit).")
        note = f"Process profile: {chosen.name}." + ("" if fit.share >= 0.999 else f" Note: {fit.summary()}")
        return ProfileChoice(chosen, fit, note)
    fits = [fit_profile(log, profile=p) for p in CANDIDATES]
    good = [f for f in fits if f.describes]
    if good:
        best = max(good, key=lambda f: f.share)
        note = f"Process profile: {best.profile.name} (it matches this log's activities)."
        if best.share < 0.999:
            note += f" Note: {best.summary()}"
        return ProfileChoice(best.profile, best, note)
    derived = derive_profile(log, won=won, lost=lost, stage_order=stage_order)
    fit = fit_profile(log, profile=derived)
    top = max(fits, key=lambda f: f.share)
    note = (f"No shipped sales process describes these activities (the closest, {top.profile.name}, knows "
            f"{top.share:.0%} of the events), so the process was derived from the data: {_flow(derived)}. "
            "`workbench profile` writes it out to edit.")
    return ProfileChoice(derived, fit, note)
