"""A process map a sales manager can read, and the levels a report page switches with a slider.

A CRM's log is dominated by activities that repeat anywhere (follow-ups): drawn
as activities they become a hub with an edge to every stage. Here they are
folded into the stage the deal was in (:func:`fold_loops`) and written on it,
the stages stand in the profile's order, and the map keeps only as many
activities and paths as stay readable (:func:`readable_dfg`, Disco's two
sliders with counts for limits: the most frequent activities, the closings
always among them, then the most frequent paths without cutting an activity
off the start or the end).

A report page has no kernel, so :func:`map_levels` draws a few levels in
advance and its HTML switches them with a slider.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .discovery import DFG, discover_dfg, keep_paths
from .maps import ProcessMap, draw_map
from .profile import SalesProcessProfile, get_profile
from .schema import ACTIVITY, CASE, TIMESTAMP

#: (activities, paths between activities) of each level of :func:`map_levels`; None keeps every one.
LEVELS: tuple[tuple[int | None, int | None], ...] = ((6, 8), (8, 12), (12, 20), (None, None))
_SHARES = np.round(np.arange(1.0, 0.0, -0.05), 2)


def fold_loops(log: pd.DataFrame, *, loops: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """The log without its loop activities, and how many loop events fell in each stage.

    A loop event counts for the activity the deal last had before it, or for the
    deal's next activity when it had none yet; loop events of deals with no
    other activity are counted under their own name.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a"] * 4, "activity": ["Lead", "Call", "Call", "Won"],
    ...                     "timestamp": pd.date_range("2026-01-01", periods=4, tz="UTC")})
    >>> rest, counts = fold_loops(log, loops=["Call"])
    >>> list(rest["activity"]), counts.to_dict()
    (['Lead', 'Won'], {'Lead': 2})
    """
    is_loop = log[ACTIVITY].isin(list(loops)).to_numpy()
    if not is_loop.any():
        return log.reset_index(drop=True), pd.Series(dtype="int64", name="loops")
    ordered = log[[CASE, ACTIVITY, TIMESTAMP]].assign(_loop=is_loop).sort_values([CASE, TIMESTAMP], kind="stable")
    stage = ordered[ACTIVITY].where(~ordered["_loop"])
    cases = ordered[CASE]
    owner = stage.groupby(cases).ffill().fillna(stage.groupby(cases).bfill()).fillna(ordered[ACTIVITY])
    counts = owner[ordered["_loop"]].value_counts().rename("loops").rename_axis(ACTIVITY)
    return log[~is_loop].reset_index(drop=True), counts


def _top_activities(dfg: DFG, keep: Sequence[str], n: int) -> list[str]:
    """The ``n`` most frequent activities, those of ``keep`` and the most frequent start activity first."""
    acts = dfg.activities.sort_values(["events", ACTIVITY], ascending=[False, True], kind="stable")[ACTIVITY]
    starts = dfg.start_end.sort_values(["start", ACTIVITY], ascending=[False, True], kind="stable")[ACTIVITY]
    chosen = [a for a in keep if a in set(acts)] + list(starts[:1])
    for a in acts:
        if len(set(chosen)) >= n:
            break
        chosen.append(a)
    return list(dict.fromkeys(chosen))


def _inner_edges(dfg: DFG) -> int:
    """Paths between two different activities: what crowds a map (repeats are written on the boxes)."""
    e = dfg.edges
    return int((e["source"] != e["target"]).sum())


def readable_dfg(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    max_activities: int | None = 8,
    max_paths: int | None = 12,
) -> tuple[DFG, pd.Series]:
    """The map of ``log`` with its loops folded, at most ``max_activities`` activities and, where the
    start and end can stay connected, ``max_paths`` paths between activities.

    Returns
    -------
    (DFG, Series of loop events per activity)

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> dfg, loops = readable_dfg(generate_demo_data(seed=7, size="tiny").events, profile="ppvvc", max_activities=5)
    >>> len(dfg.activities) <= 5, "Follow-up" in set(dfg.activities["activity"])
    (True, False)
    """
    profile = get_profile(profile, log)
    stages, loops = fold_loops(log, loops=profile.loops)
    dfg = discover_dfg(stages)
    if max_activities is not None and len(dfg.activities) > max_activities:
        stages = stages[stages[ACTIVITY].isin(_top_activities(dfg, profile.closing, max_activities))]
        dfg = discover_dfg(stages)
    if max_paths is not None and _inner_edges(dfg) > max_paths:
        for share in _SHARES:
            thinner = keep_paths(dfg, float(share))
            if _inner_edges(thinner) <= max_paths:
                break
        dfg = thinner
    return dfg, loops


def readable_map(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    measure: str = "frequency",
    backend: str = "auto",
    max_activities: int | None = 8,
    max_paths: int | None = 12,
    title: str | None = None,
) -> ProcessMap:
    """Draw :func:`readable_dfg` with the stages in the profile's order and the loops on the stages.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> readable_map(generate_demo_data(seed=7, size="tiny").events, backend="matplotlib").backend
    'matplotlib'
    """
    profile = get_profile(profile, log)
    dfg, loops = readable_dfg(log, profile=profile, max_activities=max_activities, max_paths=max_paths)
    return _draw(dfg, loops, profile, measure=measure, backend=backend, title=title)


def _draw(dfg: DFG, loops: pd.Series, profile: SalesProcessProfile, **style: str | None) -> ProcessMap:
    return draw_map(dfg, order=profile.stages + profile.closing, loops=loops.to_dict(), **style)


@dataclass
class MapLevels:
    """Process maps of one log at increasing detail, shown one at a time with a slider.

    Attributes
    ----------
    maps : list of ProcessMap, simplest first
    labels : what each level shows, e.g. '8 of 10 activities, 12 of 31 paths'
    default : index of the level shown first
    """

    maps: list[ProcessMap]
    labels: list[str]
    default: int

    @property
    def current(self) -> ProcessMap:
        """The map shown first (the one saved as the page's figure)."""
        return self.maps[self.default]

    def to_html(self) -> str:
        """The maps and a slider that switches them, with no kernel and nothing fetched."""
        hidden = ' style="display:none"'
        levels = "".join(
            f'<div class="wb-level" data-label="{html.escape(label)}"{"" if i == self.default else hidden}>'
            f"{m.to_svg()}</div>" for i, (m, label) in enumerate(zip(self.maps, self.labels)))
        switch = ("var l=this.closest('.wb-map-levels').querySelectorAll('.wb-level');"
                  "for(var i=0;i<l.length;i++){l[i].style.display=(i==this.value)?'':'none';}"
                  "this.nextElementSibling.textContent=l[this.value].dataset.label;")
        slider = ("" if len(self.maps) < 2 else
                  f'<p style="margin:0.3em 0">Detail: <input type="range" min="0" max="{len(self.maps) - 1}" '
                  f'step="1" value="{self.default}" aria-label="map detail" oninput="{switch}"> '
                  f"<span>{html.escape(self.labels[self.default])}</span></p>")
        return f'<div class="wb-map-levels">{slider}{levels}</div>'

    def _repr_html_(self) -> str:
        return self.to_html()


def map_levels(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    measure: str = "frequency",
    backend: str = "auto",
    levels: Sequence[tuple[int | None, int | None]] = LEVELS,
    title: str | None = None,
) -> MapLevels:
    """:func:`readable_map` at each ``(activities, paths)`` level of ``levels``, simplest first.

    Levels that would draw the same map as a simpler one are dropped; the level
    shown first is the second (or the only one), readable at a glance.

    Examples
    --------
    >>> from workbench.synth import generate_demo_data
    >>> levels = map_levels(generate_demo_data(seed=7, size="tiny").events, backend="matplotlib")
    >>> 'type="range"' in levels.to_html()
    True
    """
    profile = get_profile(profile, log)
    full, _ = readable_dfg(log, profile=profile, max_activities=None, max_paths=None)
    all_acts, all_paths = len(full.activities), _inner_edges(full)
    maps, labels, seen = [], [], set()
    for acts, paths in levels:
        dfg, loops = readable_dfg(log, profile=profile, max_activities=acts, max_paths=paths)
        drawn = frozenset(dfg.graph().edges)
        if drawn in seen:
            continue
        seen.add(drawn)
        maps.append(_draw(dfg, loops, profile, measure=measure, backend=backend, title=title))
        labels.append(f"{len(dfg.activities):,} of {all_acts:,} activities, "
                      f"{_inner_edges(dfg):,} of {all_paths:,} paths")
    return MapLevels(maps=maps, labels=labels, default=min(1, len(maps) - 1))


