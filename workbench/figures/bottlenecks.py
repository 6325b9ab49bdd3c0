"""Figures of bottlenecks and root causes: stage times, the stage x team heatmap, WIP, effect sizes.

Each function takes the table computed by :mod:`workbench.bottlenecks` or
:mod:`workbench.root_causes` and returns its matplotlib Figure (drawn on ``ax``
when one is given) so a notebook can restyle it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..errors import WorkbenchError
from ..profile import SalesProcessProfile, get_profile
from . import axes_for


def _stages_in(frame: pd.DataFrame, profile: SalesProcessProfile) -> list[str]:
    present = set(frame["stage"])
    return [s for s in profile.stages if s in present]


def plot_stage_times(
    visits: pd.DataFrame,
    *,
    by: str | None = None,
    kind: str = "box",
    profile: SalesProcessProfile | str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Time in each stage as box or violin plots, optionally split by team, rep or segment.

    In days, or in hours or minutes when most visits last less than two days or an hour (a
    repair desk's log is not read in hundredths of a day).

    Parameters
    ----------
    visits : DataFrame
        The output of :func:`workbench.bottlenecks.stage_durations`; only finished visits are drawn.
    kind : {'box', 'violin'}
    """
    if kind not in ("box", "violin"):
        raise WorkbenchError(f"unknown plot kind {kind!r}.", hint="use 'box' or 'violin'.")
    done = visits[visits["finished"]]
    typical = float(done["duration_days"].quantile(0.9)) if len(done) else 0.0
    unit, per_day = ("minutes", 24 * 60) if typical < 1 / 24 else ("hours", 24) if typical < 2 else ("days", 1)
    done = done.assign(duration=done["duration_days"] * per_day)
    order = _stages_in(done, get_profile(profile))
    ax = axes_for(ax, (8, 0.6 * len(order) + 2))
    draw = sns.boxplot if kind == "box" else sns.violinplot
    extra = {"showfliers": False} if kind == "box" else {"cut": 0}
    draw(data=done, x="duration", y="stage", hue=by, order=order, ax=ax, **extra)
    ax.set(xlabel=f"{unit} in stage", ylabel="", title="Time in stage" + (f" by {by}" if by else ""))
    return ax.figure


def plot_bottleneck_heatmap(
    ranking: pd.DataFrame,
    *,
    by: str = "team",
    value: str = "ratio",
    profile: SalesProcessProfile | str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Stage x team heatmap of a bottleneck measure, significant cells marked with '*'.

    Parameters
    ----------
    ranking : DataFrame
        The output of :func:`workbench.bottlenecks.rank_bottlenecks`.
    value : str
        Column to show: 'ratio' (median against the rest of the organisation),
        'median_days', 'share_of_cycle', 'excess_days'...
    """
    order = _stages_in(ranking, get_profile(profile))
    grid = ranking.pivot(index="stage", columns=by, values=value).reindex(order)
    marks = ranking.pivot(index="stage", columns=by, values="significant").reindex(order)
    labels = grid.map(lambda v: "" if pd.isna(v) else f"{v:.2g}")
    labels = labels + marks.map(lambda s: "*" if s is True or s == 1 else "").reindex_like(labels).fillna("")
    ax = axes_for(ax, (1.2 * grid.shape[1] + 3, 0.5 * grid.shape[0] + 2))
    kw = {"center": 1.0, "cmap": "RdBu_r"} if value == "ratio" else {"cmap": "rocket_r"}
    sns.heatmap(grid.astype(float), annot=labels, fmt="", ax=ax, cbar_kws={"label": value}, **kw)
    ax.set(xlabel=by, ylabel="", title=f"Bottlenecks: {value} per stage and {by} (* significant)")
    return ax.figure


def plot_wip(
    wip: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    top: int = 10,
    ax: Axes | None = None,
) -> Figure:
    """Deals in each stage over time, for at most the ``top`` stages holding the most deals.

    Parameters
    ----------
    wip : DataFrame
        The output of :func:`workbench.bottlenecks.wip` (without ``by``).
    """
    stages = _stages_in(wip, get_profile(profile))
    title = "Work in progress per stage"
    if len(stages) > top:  # two dozen lines cannot be told apart: the stages that hold the most deals
        busiest = set(wip.groupby("stage")["wip"].mean().nlargest(top).index)
        stages = [s for s in stages if s in busiest]
        title = f"Work in progress in the {top} stages holding the most deals"
    ax = axes_for(ax, (9, 4))
    sns.lineplot(data=wip[wip["stage"].isin(stages)], x="period_end", y="wip", hue="stage", hue_order=stages, ax=ax)
    ax.set(xlabel="", ylabel="deals in stage", title=title)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), frameon=False, title=None)
    return ax.figure


def _unit(metric: str) -> str:
    if metric == "win_rate":
        return "win rate difference against the rest"
    if metric.startswith("win_rate"):
        return "log odds ratio against the baseline"
    if metric.endswith("(adjusted)"):
        return "median days difference against the baseline"
    return "median days difference against the rest"


def plot_root_causes(table: pd.DataFrame, *, top: int = 20, ax: Axes | None = None) -> Figure:
    """Effect sizes with their confidence intervals (forest plot), largest effects first.

    Parameters
    ----------
    table : DataFrame
        Output of :mod:`workbench.root_causes` (usually :func:`~workbench.root_causes.findings`
        of :func:`~workbench.root_causes.root_causes` or
        :func:`~workbench.root_causes.adjusted_drivers`).
        Win-rate and stage-time effects are in different units, so each
        metric gets its own panel.
    """
    data = table.dropna(subset=["diff"]).assign(_size=lambda t: t["diff"].abs())
    data = data.sort_values("_size", ascending=False).head(top)
    metrics = list(dict.fromkeys(data["metric"])) or ["(none)"]
    if ax is not None and len(metrics) > 1:
        raise WorkbenchError("several metrics need several panels.", hint="pass one metric's rows or no ax.")
    if ax is None:
        fig, axes = plt.subplots(len(metrics), 1, figsize=(8, 0.4 * len(data) + 1.5 * len(metrics)),
                                 layout="constrained", squeeze=False)
        axes = list(axes[:, 0])
    else:
        axes = [ax]
    for ax_, metric in zip(axes, metrics):
        part = data[data["metric"].eq(metric)]
        labels = part["attribute"].astype(str) + " = " + part["group"].astype(str)
        y = range(len(part))
        ax_.errorbar(part["diff"], y, xerr=[part["diff"] - part["ci_low"], part["ci_high"] - part["diff"]],
                     fmt="o", capsize=3)
        ax_.axvline(0, color="grey", linewidth=1)
        ax_.set_yticks(list(y), list(labels))
        ax_.invert_yaxis()
        ax_.set(xlabel=f"{_unit(metric)} (95% interval)", title=metric)
    return axes[0].figure


__all__ = ["plot_stage_times", "plot_bottleneck_heatmap", "plot_wip", "plot_root_causes"]
