"""Readable process maps: loops folded onto the stages, the profile's order, levels switched in the page."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from workbench import map_levels, maps
from workbench.discovery import END, START
from workbench.profile import SalesProcessProfile
from workbench.profile_fit import resolve_profile

T0 = pd.Timestamp("2026-01-05", tz="UTC")
PROFILE = SalesProcessProfile(name="tiny", stages=("Lead", "Qualify", "Propose"), won=("Won",), lost=("Lost",),
                              loops=("Call",))


@pytest.fixture
def foreign() -> Path:
    return Path(__file__).parent / "data" / "foreign"


def log_of(traces: dict[str, str]) -> pd.DataFrame:
    rows = [{"case_id": case, "activity": a, "timestamp": T0 + pd.Timedelta(days=7 * n + i)}
            for n, (case, trace) in enumerate(traces.items()) for i, a in enumerate(trace.split(","))]
    return pd.DataFrame(rows)


#: Calls between every pair of stages: drawn as an activity they would be a hub with an edge to each stage.
HUB = log_of({"a": "Lead,Call,Call,Qualify,Call,Propose,Won", "b": "Call,Lead,Qualify,Lost",
              "c": "Call", "d": "Lead,Qualify,Qualify,Call,Propose,Call,Lost"})


def test_fold_loops_counts_each_call_on_the_stage_the_deal_was_in():
    rest, counts = map_levels.fold_loops(HUB, loops=["Call"])
    assert "Call" not in set(rest["activity"]) and len(rest) == len(HUB) - 7
    # a: 2 at Lead, 1 at Qualify; b: 1 before any stage, so at its next one (Lead); c: only calls;
    # d: 1 at Qualify (after the repeat), 1 at Propose
    assert counts.to_dict() == {"Lead": 3, "Qualify": 2, "Propose": 1, "Call": 1}
    assert counts.sum() == (HUB["activity"] == "Call").sum()


def test_the_readable_map_has_no_hub_and_writes_loops_and_repeats_on_the_stage():
    m = map_levels.readable_map(HUB, profile=PROFILE, backend="matplotlib", max_activities=None, max_paths=None)
    nodes = {n for e in m.edges for n in e}
    assert "Call" not in nodes
    svg = m.to_svg()
    assert "↻ 3" in svg  # Lead: three calls
    assert "↻ 3" in svg and svg.count("↻") == 3  # Lead 3; Qualify 2 calls + 1 repeat = 3; Propose 1
    assert "↻ 1" in svg
    assert ("Qualify", "Qualify") in m.edges  # the repeat is kept in the graph, written on the box


def test_stages_stand_in_the_profiles_order_and_closings_to_the_right_of_every_stage():
    # Lost right after Lead is frequent: by the flow alone it would stand left of Qualify
    log = log_of({f"x{i}": "Lead,Lost" for i in range(6)} | {"y": "Lead,Qualify,Propose,Won"})
    dfg, _ = map_levels.readable_dfg(log, profile=PROFILE, max_activities=None, max_paths=None)
    pos = maps.layered_layout(dfg.graph(), PROFILE.stages + PROFILE.closing)
    x = {n: p[0] for n, p in pos.items()}
    assert x[START] < x["Lead"] < x["Qualify"] < x["Propose"] < x["Won"] == x["Lost"] < x[END]


def test_limits_keep_the_closings_and_every_activity_on_a_route_from_start_to_end(foreign):
    import networkx as nx

    log = pd.read_csv(foreign / "purchasing_24_activities.csv", parse_dates=["timestamp"])
    log["timestamp"] = log["timestamp"].dt.tz_localize("UTC")
    dfg, _ = map_levels.readable_dfg(log, profile=resolve_profile(log).profile, max_activities=8, max_paths=12)
    acts = set(dfg.activities["activity"])
    assert len(acts) == 8 and {"Close Order", "Cancel Order"} <= acts  # what the derived profile closes with
    inner = dfg.edges[dfg.edges["source"] != dfg.edges["target"]]
    assert len(inner) <= 12
    g = dfg.graph()
    assert all(nx.has_path(g, START, a) and nx.has_path(g, a, END) for a in acts)


def test_levels_add_detail_up_to_every_activity_and_path_and_switch_without_a_kernel():
    levels = map_levels.map_levels(HUB, profile=PROFILE, backend="matplotlib", levels=((2, 2), (4, 4), (None, None)))
    counts = [tuple(int(n) for n in re.findall(r"(\d+) of", label)) for label in levels.labels]
    # Lead, Qualify, Propose, Won, Lost: the closings and the start stay at every level; 5 moves in all
    assert counts == sorted(counts) == [(3, 2), (4, 3), (5, 5)]
    page = levels.to_html()
    assert page.count('type="range"') == 1 and f'max="{len(levels.maps) - 1}"' in page
    assert page.count('class="wb-level"') == len(levels.maps)
    assert page.count('style="display:none"') == len(levels.maps) - 1
    assert "<script" not in page and not re.search(r'(src|href)="https?:', page)  # nothing fetched


def dense(poly: np.ndarray) -> np.ndarray:
    """The points of a polyline every fraction of a pixel, so that distances to it are distances to its lines."""
    return np.vstack([np.linspace(a, b, 100) for a, b in zip(poly[:-1], poly[1:])])


def test_each_edge_count_is_drawn_on_its_own_edge():
    log = log_of({"a": "Lead,Qualify,Propose,Won", "b": "Lead,Propose,Lost", "c": "Lead,Qualify,Lost",
                  "d": "Lead,Qualify,Lead,Qualify,Propose,Won"})
    m = maps.draw_map(map_levels.readable_dfg(log, profile=PROFILE, max_activities=None, max_paths=None)[0],
                      backend="matplotlib", order=PROFILE.stages + PROFILE.closing)
    fig = m.figure
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    arrows = [a for a in ax.texts if isinstance(a, matplotlib.text.Annotation)]
    labels = [t for t in ax.texts if not isinstance(t, matplotlib.text.Annotation) and t.get_text().isdigit()]
    inner = [(u, v) for u, v in m.edges if u != v and START not in (u, v) and END not in (u, v)]
    assert len(labels) == len(inner) == len(arrows) - 3  # a count on every edge but START->Lead, Won/Lost->END
    for label in labels:
        at = ax.transData.transform(label.get_position())
        gaps = [np.min(np.hypot(*(dense(poly) - at).T)) for a in arrows
                for poly in a.arrow_patch.get_path().to_polygons(closed_only=False)]
        assert min(gaps) < 6, label.get_text()  # within 6 px of an arrow's line


@pytest.mark.parametrize("backend", ["graphviz", "matplotlib"])
def test_a_default_level_fits_the_page_at_its_own_size(backend, foreign):
    if backend == "graphviz" and not maps.graphviz_available():
        pytest.skip("Graphviz 'dot' not installed")
    log = pd.read_csv(foreign / "purchasing_24_activities.csv", parse_dates=["timestamp"])
    log["timestamp"] = log["timestamp"].dt.tz_localize("UTC")
    levels = map_levels.map_levels(log, profile=resolve_profile(log).profile, backend=backend)
    width = re.search(r'width="([\d.]+)pt"', levels.current.to_svg()).group(1)
    assert float(width) * 4 / 3 <= maps.MAX_WIDTH_PX  # shown unshrunk: labels as large as drawn
