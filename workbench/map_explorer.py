"""An interactive process-map explorer for JupyterLab.

:func:`explore_map` returns an ipywidgets box whose activity / path sliders
and filters (outcome, team, region, rep, quarter range) redraw the map with
:func:`workbench.maps.draw_map`. A report page, which has no kernel, switches
precomputed levels instead (:mod:`workbench.map_levels`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from . import engine
from .calendar import quarter_bounds, quarter_of
from .filters import filter_time_window
from .maps import MEASURES, ProcessMap, draw_map
from .profile import SalesProcessProfile, get_profile
from .schema import CASE, ORG, TIMESTAMP

_ALL = "(all)"


def explore_map(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    measure: str = "frequency",
    backend: str = "auto",
    activities: float = 1.0,
    paths: float = 0.8,
):
    """An ipywidgets box to explore the process map of ``log`` in a notebook.

    Sliders set the activity and path coverage, dropdowns filter the deals by
    outcome, team, region and rep (when the log has them) and a range slider by
    quarter (deals with an event in the range). Any change redraws the map.

    Returns
    -------
    MapExplorer (an ``ipywidgets.VBox``); ``.current`` is the drawn :class:`ProcessMap`.

    Examples
    --------
    >>> explore_map(log, profile=data.profile)  # doctest: +SKIP
    """
    return _explorer_class()(log, profile=profile, measure=measure, backend=backend, activities=activities,
                             paths=paths)


@functools.cache
def _explorer_class() -> type:
    import ipywidgets as w

    class _MapExplorer(w.VBox):
        """The widget of :func:`explore_map`."""

        def __init__(self, log: pd.DataFrame, *, profile, measure, backend, activities, paths) -> None:
            self._log = log
            self._backend = backend
            self._cases = engine.case_table(log, get_profile(profile, log))
            self.activities_slider = w.FloatSlider(value=activities, min=0.05, max=1.0, step=0.05,
                                                   description="activities", continuous_update=False)
            self.paths_slider = w.FloatSlider(value=paths, min=0.05, max=1.0, step=0.05,
                                              description="paths", continuous_update=False)
            self.measure_toggle = w.ToggleButtons(options=list(MEASURES), value=measure)
            self.filters: dict[str, w.Dropdown] = {
                "outcome": w.Dropdown(options=[_ALL, "won", "lost", "open"], value=_ALL, description="outcome")}
            for col in ORG:
                if col in self._cases.columns and self._cases[col].notna().any():
                    values = sorted(self._cases[col].dropna().astype(str).unique())
                    self.filters[col] = w.Dropdown(options=[_ALL, *values], value=_ALL, description=col)
            quarters = sorted(set(quarter_of(log[TIMESTAMP]))) if len(log) else []
            self.quarters = (w.SelectionRangeSlider(options=quarters, index=(0, len(quarters) - 1),
                                                    description="quarters", continuous_update=False)
                             if len(quarters) > 1 else None)
            self.view = w.HTML()
            controls = [self.activities_slider, self.paths_slider, self.measure_toggle,
                        w.HBox(list(self.filters.values()))]
            if self.quarters is not None:
                controls.append(self.quarters)
            super().__init__(children=[*controls, self.view])
            self.current: ProcessMap | None = None
            for widget in [self.activities_slider, self.paths_slider, self.measure_toggle,
                           *self.filters.values(), *([self.quarters] if self.quarters else [])]:
                widget.observe(self._redraw, names="value")
            self._redraw()

        def filtered_log(self) -> pd.DataFrame:
            """The log under the current filters."""
            cases = self._cases
            keep = np.ones(len(cases), dtype=bool)
            for col, dd in self.filters.items():
                if dd.value != _ALL:
                    keep &= (cases[col].astype(str) == dd.value).to_numpy()
            log = self._log[self._log[CASE].isin(set(cases.loc[keep, CASE]))]
            if self.quarters is not None:
                lo, hi = self.quarters.value
                log = filter_time_window(log, start=quarter_bounds(lo)[0], end=quarter_bounds(hi)[1])
            return log.reset_index(drop=True)

        def _redraw(self, change: Any = None) -> None:
            log = self.filtered_log()
            if log.empty:
                self.current = None
                self.view.value = "<p>No deals match these filters.</p>"
                return
            old = self.current
            self.current = draw_map(log, measure=self.measure_toggle.value, backend=self._backend,
                                    activities=self.activities_slider.value, paths=self.paths_slider.value)
            self.view.value = self.current.to_svg()
            if old is not None and old.backend == "matplotlib":
                old.figure.clear()

    return _MapExplorer


def __getattr__(name: str):  # noqa: D103
    # ipywidgets is imported only when the explorer is used.
    if name == "MapExplorer":
        return _explorer_class()
    raise AttributeError(name)
