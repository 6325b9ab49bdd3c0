"""Figures of the sales KPIs: funnel, cycle length against a B2B benchmark, attainment distribution.

Each function takes the table computed by :mod:`workbench.kpis` and returns its
matplotlib Figure (drawn on ``ax`` when one is given) so a notebook can restyle it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..errors import WorkbenchError
from ..references import B2B_CYCLE_TABLE, MANAGER_ATTAINMENT, SHARE_REPS_AT_QUOTA
from . import axes_for


def plot_funnel(funnel: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Deals that reached each stage, with the stage-to-stage conversion written on each bar.

    Parameters
    ----------
    funnel : DataFrame
        The output of :func:`workbench.kpis.funnel`.
    """
    ax = axes_for(ax, (7, 0.5 * len(funnel) + 1.5))
    sns.barplot(data=funnel, x="reached", y="stage", color=sns.color_palette()[0], ax=ax)
    for i, row in enumerate(funnel.itertuples()):
        label = f"{row.reached:,}" + ("" if pd.isna(row.conversion) else f"  ({row.conversion:.0%})")
        ax.text(row.reached, i, " " + label, va="center")
    ax.set(xlabel="deals that reached the stage (conversion from the stage above)", ylabel="",
           title="Sales funnel")
    ax.set_xlim(0, max(funnel["reached"].max(), 1) * 1.25)
    return ax.figure


def plot_cycle_length(cycles: pd.DataFrame, *, by: str = "customer_type") -> Figure:
    """Share of deals per cycle-length bucket, the log next to a B2B survey's table.

    Parameters
    ----------
    cycles : DataFrame
        The output of :func:`workbench.kpis.cycle_length`.
    """
    groups = [g for g in ("new", "existing") if g in set(cycles[by])] or sorted(set(cycles[by]))
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), sharey=True,
                             layout="constrained", squeeze=False)
    order = list(B2B_CYCLE_TABLE["bucket"])
    for ax, group in zip(axes[0], groups):
        part = cycles[cycles[by].eq(group)]
        long = pd.concat([
            pd.DataFrame({"bucket": part["bucket"].astype(str), "share": part["share"], "source": "this log"}),
            pd.DataFrame({"bucket": part["bucket"].astype(str), "share": part["benchmark_share"],
                          "source": "B2B survey"}),
        ]).dropna(subset=["share"])
        sns.barplot(data=long, x="bucket", y="share", hue="source", order=order, ax=ax)
        ax.set(title=f"{by} = {group}", xlabel="sales cycle", ylabel="share of deals")
        ax.tick_params(axis="x", rotation=30)
        ax.yaxis.set_major_formatter("{x:.0%}")
    fig.suptitle("Sales cycle length against a B2B survey")
    return fig


#: Attainment above this (percent) is counted in the last bar: one rep far over a small quota
#: would otherwise stretch the axis over thousands of empty bins (and take minutes to draw).
ATTAINMENT_CAP = 300
#: With more teams than this the bars are not coloured by team: the legend would not be readable.
MAX_TEAM_COLOURS = 8


def plot_attainment(
    rep_attainment: pd.DataFrame,
    *,
    quarter: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Distribution of quota attainment across reps, with the 100% line and the share at quota.

    Parameters
    ----------
    rep_attainment : DataFrame
        The output of :func:`workbench.kpis.attainment`.
    quarter : str, optional
        Show one quarter; default all quarters pooled.
    """
    data = rep_attainment if quarter is None else rep_attainment[rep_attainment["quarter"].eq(quarter)]
    data = data.dropna(subset=["attainment"]).assign(percent=lambda d: 100 * d["attainment"])
    ax = axes_for(ax, (7, 4))
    over = int((data["percent"] > ATTAINMENT_CAP).sum())
    top = min(max(200, data["percent"].max() + 10), ATTAINMENT_CAP + 10) if len(data) else 200
    many_teams = "team" not in data or data["team"].nunique() > MAX_TEAM_COLOURS
    sns.histplot(data=data.assign(percent=data["percent"].clip(upper=ATTAINMENT_CAP + 5)), x="percent",
                 hue=None if many_teams else "team", multiple="stack", binwidth=10, binrange=(0, top), ax=ax)
    ax.axvline(100, color="black", linestyle="--", label="quota (100%)")
    share = data["at_quota"].mean() if len(data) else float("nan")
    team = data["bookings"].sum() / data["quota"].sum() if len(data) else float("nan")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    beyond = f"; {over} above {ATTAINMENT_CAP}% in the last bar" if over else ""
    ax.set(xlabel=f"attainment (% of quota{beyond})", ylabel="reps",
           title=(f"Quota attainment{' ' + quarter if quarter else ''}: {share:.0%} of reps at quota, "
                  f"total {team:.0%}\n(a sales-management study: teams at {MANAGER_ATTAINMENT:.0%} with only "
                  f"{SHARE_REPS_AT_QUOTA:.0%} of reps at quota)"))
    return ax.figure


__all__ = ["plot_funnel", "plot_cycle_length", "plot_attainment"]


def plot_pipeline_movement(movement: pd.DataFrame, *, ax: Axes | None = None) -> Figure:
    """Waterfall of how this quarter's pipeline moved: from the pipeline at the start, each step up or
    down, to the pipeline now.

    Parameters
    ----------
    movement : DataFrame
        The output of :func:`workbench.kpis.pipeline_movement`.
    """
    amount = movement["amount"].to_numpy(float)
    if not np.abs(amount).any():
        raise WorkbenchError("the open deals have no amounts, so there is no pipeline value to follow.",
                             hint="map a deal-size column recorded while deals are open.")
    ax = axes_for(ax, (8, 4))
    totals = {0, len(movement) - 1}
    running, bottoms, heights, colors = 0.0, [], [], []
    palette = sns.color_palette()
    for i, value in enumerate(amount):
        if i in totals:
            bottoms.append(0.0)
            heights.append(value)
            colors.append("0.55")
            running = value
        else:
            bottoms.append(running + min(value, 0.0))
            heights.append(abs(value))
            colors.append(palette[2] if value >= 0 else palette[3])
            running += value
    labels = [s.replace(" ", "\n", 1) for s in movement["step"]]
    ax.bar(range(len(movement)), heights, bottom=bottoms, color=colors)
    for i, (value, deals) in enumerate(zip(amount, movement["deals"])):
        ax.text(i, bottoms[i] + heights[i], f"{_short(value)}\n{deals:,} deals", ha="center", va="bottom",
                fontsize=8)
    ax.set_xticks(range(len(movement)), labels, fontsize=8)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: _short(v)))
    ax.set(ylabel="pipeline due this quarter", title="How the pipeline moved")
    ax.set_ylim(0, max(max(b + h for b, h in zip(bottoms, heights)), 1.0) * 1.2)
    return ax.figure


def _short(value: float) -> str:
    """1.2M, 350k, 900: money on a chart."""
    v = abs(value)
    text = f"{v / 1e6:.1f}M" if v >= 1e6 else f"{v / 1e3:.0f}k" if v >= 1e3 else f"{v:.0f}"
    return ("-" if value < 0 else "") + text
