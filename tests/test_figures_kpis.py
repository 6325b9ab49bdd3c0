"""KPI and bottleneck figures draw what their tables say."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from workbench.references import B2B_CYCLE_TABLE
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.figures import bottlenecks as fb  # noqa: E402
from workbench.figures import kpis as fk  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def bar_widths(ax) -> list[float]:
    return [p.get_width() for p in ax.patches if p.get_width() > 0]


def test_funnel_bars_are_the_reached_counts():
    funnel = pd.DataFrame({"stage": ["Lead Created", "Qualification", "Won"], "reached": [10, 6, 3]})
    funnel["conversion"] = funnel["reached"] / funnel["reached"].shift()
    fig = fk.plot_funnel(funnel)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert bar_widths(ax) == [10, 6, 3]
    assert [t.get_text().strip() for t in ax.texts] == ["10", "6  (60%)", "3  (50%)"]


def test_funnel_draws_on_a_given_axes():
    _, ax = plt.subplots()
    funnel = pd.DataFrame({"stage": ["A", "B"], "reached": [4, 2], "conversion": [np.nan, 0.5]})
    assert fk.plot_funnel(funnel, ax=ax) is ax.figure


def test_cycle_length_shows_log_and_seed_side_by_side():
    buckets = list(B2B_CYCLE_TABLE["bucket"])
    cycles = pd.DataFrame({"customer_type": ["new"] * 6 + ["existing"] * 6, "bucket": buckets * 2,
                           "share": [1.0, 0, 0, 0, 0, 0] * 2})
    cycles["benchmark_share"] = list(B2B_CYCLE_TABLE["new"]) + list(B2B_CYCLE_TABLE["existing"])
    fig = fk.plot_cycle_length(cycles)
    new, existing = fig.axes[:2]
    heights = sorted(p.get_height() for p in new.patches if p.get_height() > 0)
    assert heights == pytest.approx(sorted([1.0, *B2B_CYCLE_TABLE["new"]]))
    assert "existing" in existing.get_title()


def test_attainment_distribution_has_the_100_percent_line():
    att = pd.DataFrame({"rep": list("ABCD"), "team": ["T1", "T1", "T2", "T2"], "quarter": "2026Q1",
                        "quota": 100.0, "bookings": [250.0, 60.0, 50.0, 40.0]})
    att["attainment"] = att["bookings"] / att["quota"]
    att["at_quota"] = att["attainment"] >= 1
    ax = fk.plot_attainment(att, quarter="2026Q1").axes[0]
    lines = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [100, 100]]
    assert len(lines) == 1
    assert sum(p.get_height() for p in ax.patches) == 4  # one count per rep
    assert "25% of reps at quota, total 100%" in ax.get_title()


def test_attainment_far_over_quota_goes_in_the_last_bar():
    # one rep at 18,800% (a tiny quota) and twelve teams, as in the 1M-event demo
    att = pd.DataFrame({"rep": [f"r{i}" for i in range(24)], "team": [f"T{i % 12}" for i in range(24)],
                        "quarter": "2026Q1", "quota": 100.0, "bookings": [50.0 + 10 * i for i in range(23)] + [18800.0]})
    att["attainment"] = att["bookings"] / att["quota"]
    att["at_quota"] = att["attainment"] >= 1
    ax = fk.plot_attainment(att).axes[0]
    assert len(ax.patches) == (fk.ATTAINMENT_CAP + 10) // 10  # 0-310%, not 0-18,810%
    assert sum(p.get_height() for p in ax.patches) == 24
    last = max(ax.patches, key=lambda p: p.get_x())
    assert last.get_x() == pytest.approx(fk.ATTAINMENT_CAP) and last.get_height() == 1
    assert "1 above 300% in the last bar" in ax.get_xlabel()
    assert ax.get_legend() is None  # twelve teams are not told apart by colour


def test_stage_time_boxes_one_per_stage_in_profile_order():
    visits = pd.DataFrame({"stage": ["Proposal"] * 3 + ["Lead Created"] * 3, "duration_days": [1, 2, 3, 4, 5, 6.0],
                           "finished": True, "team": ["T1", "T2", "T1"] * 2})
    ax = fb.plot_stage_times(visits).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Lead Created", "Proposal"]
    split = fb.plot_stage_times(visits, by="team", kind="violin").axes[0]
    assert [t.get_text() for t in split.get_legend().get_texts()] == ["T1", "T2"]
    with pytest.raises(WorkbenchError, match="kind"):
        fb.plot_stage_times(visits, kind="pie")
    assert ax.get_xlabel() == "days in stage"


@pytest.mark.parametrize("days, unit, shown", [(1 / 96, "minutes", 15.0), (0.25, "hours", 6.0), (3.0, "days", 3.0)])
def test_stage_times_are_drawn_in_a_unit_a_reader_can_use(days, unit, shown):
    """A repair desk's visits last minutes, a deal's stages days: 0.0104 days is 15 minutes."""
    import matplotlib.pyplot as plt

    visits = pd.DataFrame({"stage": ["Proposal"] * 3, "duration_days": [days / 2, days, days * 1.5], "finished": True})
    ax = fb.plot_stage_times(visits).axes[0]
    assert ax.get_xlabel() == f"{unit} in stage"
    # The box's median: the vertical line as tall as the box (the whiskers' caps are shorter).
    median = max(ax.get_lines(), key=lambda line: abs(line.get_ydata()[-1] - line.get_ydata()[0]))
    assert median.get_xdata()[0] == pytest.approx(shown)
    plt.close(ax.figure)


def test_heatmap_cells_are_the_ranking_values():
    ranking = pd.DataFrame({"team": ["T1", "T1", "T2", "T2"], "stage": ["Proposal", "Qualification"] * 2,
                            "ratio": [3.0, 1.0, 0.5, 1.1], "significant": [True, False, True, False]})
    ax = fb.plot_bottleneck_heatmap(ranking).axes[0]
    cells = np.asarray(ax.collections[0].get_array()).reshape(2, 2)
    assert cells.tolist() == [[1.0, 1.1], [3.0, 0.5]]  # rows in profile order: Qualification, Proposal
    assert sorted(t.get_text() for t in ax.texts) == ["0.5*", "1", "1.1", "3*"]


def test_wip_one_line_per_stage():
    ends = pd.date_range("2026-01-04", periods=3, freq="W", tz="UTC")
    wip = pd.DataFrame({"period_end": list(ends) * 2, "stage": ["Proposal"] * 3 + ["Qualification"] * 3,
                        "wip": [1, 2, 3, 4, 5, 6]})
    ax = fb.plot_wip(wip).axes[0]
    ys = sorted(tuple(ln.get_ydata()) for ln in ax.get_lines() if len(ln.get_ydata()) == 3)
    assert ys == [(1, 2, 3), (4, 5, 6)]


def test_root_causes_forest_plot_one_panel_per_metric():
    table = pd.DataFrame({"metric": ["win_rate", "win_rate", "days in Proposal"],
                          "attribute": ["lead_source"] * 3, "group": ["web", "referral", "web"],
                          "diff": [0.2, -0.3, 4.0], "ci_low": [0.1, -0.4, 2.0], "ci_high": [0.3, -0.2, 6.0]})
    fig = fb.plot_root_causes(table)
    assert len(fig.axes) == 2
    win = next(a for a in fig.axes if a.get_title() == "win_rate")
    assert [t.get_text() for t in win.get_yticklabels()] == ["lead_source = referral", "lead_source = web"]
