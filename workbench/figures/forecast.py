"""Figures of the quota forecast and its backtest.

Fan chart of the company's cumulative bookings against quota, P(hit quota) per
rep, forecast error by week of quarter against the baselines, and the
calibration of P(hit quota). Each function returns its matplotlib Figure
(drawn on ``ax`` when one is given) so a notebook can restyle it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from ..errors import WorkbenchError
from . import axes_for

_MONEY = FuncFormatter(lambda v, _: f"{v / 1e6:.1f}M" if abs(v) >= 1e6 else f"{v / 1e3:.0f}k")
_BASELINES = (("", "forecast"), ("_weighted_pipeline", "weighted pipeline"), ("_run_rate", "run rate"))


def plot_fan_chart(paths: pd.DataFrame, *, quota: float | None = None, ax: Axes | None = None) -> Figure:
    """The company's cumulative bookings through the quarter: actual, then the P10-P90 fan and median.

    Parameters
    ----------
    paths : DataFrame
        :meth:`workbench.forecast.QuotaForecast.paths`.
    quota : float, optional
        The company quota, drawn as a horizontal line.
    """
    ax = axes_for(ax, (8, 4.5))
    actual = paths[paths["kind"] == "actual"]
    fc = paths[paths["kind"] == "forecast"]
    ax.plot(actual["date"], actual["p50"], color="black", lw=2, label="booked so far")
    ax.fill_between(fc["date"], fc["p10"], fc["p90"], alpha=0.3, label="P10-P90")
    ax.plot(fc["date"], fc["p50"], ls="--", label="median forecast")
    if quota is not None and np.isfinite(quota):
        ax.axhline(quota, color="crimson", lw=1.5, label="quota")
    ax.yaxis.set_major_formatter(_MONEY)
    ax.set(xlabel="", ylabel="cumulative bookings", title="Company bookings through the quarter")
    ax.legend(loc="upper left")
    ax.figure.autofmt_xdate()
    return ax.figure


def plot_p_hit(forecast: pd.DataFrame, *, level: str = "rep") -> Figure:
    """P(hit quota) per entity, sorted, next to the expected attainment and its P10-P90 interval.

    Parameters
    ----------
    forecast : DataFrame
        :meth:`workbench.forecast.QuotaForecaster.predict`.
    level : str
        'rep', 'team' or 'region'.
    """
    f = forecast[(forecast["level"] == level) & forecast["quota"].gt(0)]
    if f.empty:
        raise WorkbenchError(f"no {level} has a quota in this forecast.", hint="pass a quota table to fit().")
    f = f.sort_values("p_hit_quota")
    y = np.arange(len(f))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.3 * len(f) + 1.8), sharey=True, layout="constrained")
    left.barh(y, f["p_hit_quota"], color=plt.cm.RdYlGn(f["p_hit_quota"].to_numpy()))
    left.set_yticks(y, f["entity"])
    left.xaxis.set_major_formatter(PercentFormatter(1.0))
    left.set(xlim=(0, 1), xlabel="P(bookings >= quota)", title=f"P(hit quota) per {level}")
    # Skewed draws can put the mean outside P10-P90, so the interval is drawn around the median.
    mid = (f["p50"] / f["quota"]).to_numpy()
    lo, hi = (f["p10"] / f["quota"]).to_numpy(), (f["p90"] / f["quota"]).to_numpy()
    right.errorbar(mid, y, xerr=[mid - lo, hi - mid], fmt="o", capsize=3, label="median, P10-P90")
    right.plot(f["expected_attainment"].to_numpy(), y, "x", color="black", label="expected")
    right.axvline(1.0, color="crimson", lw=1)
    right.xaxis.set_major_formatter(PercentFormatter(1.0))
    right.legend(loc="lower right", fontsize="small")
    right.set(xlabel="attainment", title="Attainment")
    return fig


def plot_error_by_week(metrics: pd.DataFrame, *, level: str = "company", ax: Axes | None = None) -> Figure:
    """WAPE by week of quarter of the forecast and both baselines.

    Parameters
    ----------
    metrics : DataFrame
        :meth:`workbench.forecast.Backtest.metrics` (by level and week).
    """
    m = metrics[metrics["level"] == level].sort_values("week")
    if m.empty:
        raise WorkbenchError(f"the metrics have no level {level!r}.", hint="use 'rep', 'team', 'region' or 'company'.")
    ax = axes_for(ax, (8, 4.5))
    for suffix, label in _BASELINES:
        ax.plot(m["week"], m["wape" + suffix], marker="o", label=label)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlabel="week of quarter (forecast as of its first day)", ylabel="WAPE",
           title=f"Backtest error by week, {level} level")
    ax.set_xticks(m["week"].to_numpy())
    ax.legend()
    return ax.figure


def plot_calibration(reliability: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Observed hit rate against forecast P(hit quota), per probability bin (point size: outcomes).

    Parameters
    ----------
    reliability : DataFrame
        :meth:`workbench.forecast.Backtest.reliability`.
    """
    ax = axes_for(ax, (5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect calibration")
    names = {"forecast": "forecast", "weighted_pipeline": "weighted pipeline (normal)"}
    for model, g in reliability.groupby("model", sort=False):
        size = 20 + 200 * g["n"] / max(reliability["n"].max(), 1)
        ax.plot(g["mean_p"], g["observed"], lw=1)
        ax.scatter(g["mean_p"], g["observed"], s=size, label=names.get(model, model))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="forecast P(hit quota)", ylabel="observed share that hit",
           title="Calibration of P(hit quota)")
    ax.legend(loc="upper left")
    return ax.figure
