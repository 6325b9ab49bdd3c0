"""Process maps: both drawing backends, styling by frequency and waiting time, and the explorer."""

import re

import pandas as pd
import pytest

from workbench import map_explorer, maps
from workbench.discovery import END, START, discover_dfg
from workbench.errors import WorkbenchError

T0 = pd.Timestamp("2026-01-01", tz="UTC")
HAS_DOT = maps.graphviz_available()


def make_log() -> pd.DataFrame:
    # A->B is frequent and fast (1 h), A->C rare and slow (10 d); B, C -> D
    rows = []
    for i in range(6):
        steps = [("A", 0), ("B", 1 / 24), ("D", 2)] if i < 5 else [("A", 0), ("C", 10), ("D", 12)]
        outcome = "won" if i % 2 == 0 else "lost"
        for a, day in steps:
            rows.append({"case_id": f"c{i}", "activity": a, "timestamp": T0 + pd.Timedelta(days=day + 30 * i),
                         "team": "T1" if i < 3 else "T2"})
        rows.append({"case_id": f"c{i}", "activity": "Closed Won" if outcome == "won" else "Closed Lost",
                     "timestamp": T0 + pd.Timedelta(days=13 + 30 * i), "team": "T1" if i < 3 else "T2"})
    return pd.DataFrame(rows)


EXPECTED_EDGES = {(START, "A"), ("A", "B"), ("A", "C"), ("B", "D"), ("C", "D"), ("D", "Closed Won"),
                  ("D", "Closed Lost"), ("Closed Won", END), ("Closed Lost", END)}


def _backends():
    return [pytest.param("graphviz", marks=pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' not installed")),
            "matplotlib"]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("measure", ["frequency", "performance"])
def test_both_backends_draw_svg_and_png(backend, measure, tmp_path):
    m = maps.draw_map(make_log(), backend=backend, measure=measure)
    assert m.backend == backend and m.edges == EXPECTED_EDGES
    svg = m.to_svg()
    assert "<svg" in svg and "Closed Lost" in svg
    assert svg.count('<svg style="max-width:100%;height:auto" ') == 1  # fits a notebook's output area
    if measure == "performance":
        assert "10.0 d" in svg and "1.0 h" in svg  # A->C and A->B median waits
    assert m.to_png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert m.save(tmp_path / "map.svg").read_text(encoding="utf-8").startswith(("<?xml", "<svg"))
    assert m.save(tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(WorkbenchError, match=".svg or .png"):
        m.save(tmp_path / "map.pdf")


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' not installed")
def test_edge_width_by_frequency_and_colour_by_wait():
    m = maps.draw_map(make_log(), backend="graphviz")
    ids = dict(re.findall(r'(n\d+) \[label="([^"\n]+)', m.figure.source))
    edges = {}
    for src, dst, attrs in re.findall(r"(n\d+) -> (n\d+) \[([^\]]*)\]", m.figure.source):
        width = float(re.search(r"penwidth=([\d.]+)", attrs).group(1))
        colour = re.search(r'color="(#[0-9a-f]+)"', attrs).group(1)
        edges[(ids.get(src), ids.get(dst))] = (width, colour)
    assert edges[("A", "B")][0] == pytest.approx(1 + 5 * 5 / 6, abs=0.005)  # 5 of the 6 cases; the top edge has 6
    assert edges[("A", "C")][0] == pytest.approx(1 + 5 * 1 / 6, abs=0.005)
    # slow A->C is the reddest: the largest share of red relative to green
    greenness = {e: int(c[3:5], 16) for e, (_, c) in edges.items() if None not in e}
    assert greenness[("A", "C")] == min(greenness.values())
    assert greenness[("A", "B")] == max(greenness.values())


def test_auto_falls_back_to_matplotlib_without_dot(monkeypatch):
    monkeypatch.setattr(maps.shutil, "which", lambda name: None)
    assert not maps.graphviz_available()
    assert maps.draw_map(make_log()).backend == "matplotlib"
    with pytest.raises(WorkbenchError, match="backend='matplotlib'"):
        maps.draw_map(make_log(), backend="graphviz")


def test_bad_arguments():
    with pytest.raises(WorkbenchError, match="measure"):
        maps.draw_map(make_log(), measure="cost")
    with pytest.raises(WorkbenchError, match="backend"):
        maps.draw_map(make_log(), backend="tikz")


def test_layered_layout_goes_left_to_right():
    pos = maps.layered_layout(discover_dfg(make_log()).graph())
    x = {n: p[0] for n, p in pos.items()}
    assert x[START] < x["A"] < x["B"] == x["C"] < x["D"] < x["Closed Won"] == x["Closed Lost"] < x[END]
    assert pos["B"][1] != pos["C"][1]


def test_layout_handles_loops_and_back_edges():
    log = pd.DataFrame({"case_id": ["1"] * 5, "activity": ["A", "F", "B", "F", "A"],
                        "timestamp": [T0 + pd.Timedelta(hours=h) for h in range(5)]})
    pos = maps.layered_layout(discover_dfg(log).graph())
    assert set(pos) == {START, "A", "F", "B", END}
    assert pos[START][0] == 0 and pos[END][0] == max(p[0] for p in pos.values())


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (720, "12 min"), (18_000, "5.0 h"),
                                           (3.2 * 86_400, "3.2 d"), (float("nan"), "")])
def test_format_duration(seconds, text):
    assert maps.format_duration(seconds) == text


def test_explorer_sliders_and_filters_redraw_the_map():
    box = map_explorer.explore_map(make_log(), backend="matplotlib", paths=1.0)
    assert box.current.edges == EXPECTED_EDGES
    assert "<svg" in box.view.value
    box.activities_slider.value = 0.8  # A, D, B, Closed Won cover 20 of 24 events; C goes
    assert ("A", "C") not in box.current.edges and ("A", "B") in box.current.edges
    box.activities_slider.value = 1.0
    box.filters["outcome"].value = "won"
    assert ("D", "Closed Lost") not in box.current.edges and ("D", "Closed Won") in box.current.edges
    box.filters["team"].value = "T2"  # won and T2: c4 only (A-B-D)
    assert box.current.edges == {(START, "A"), ("A", "B"), ("B", "D"), ("D", "Closed Won"), ("Closed Won", END)}
    box.filters["outcome"].value = "open"
    assert box.current is None and "No deals" in box.view.value
    box.filters["outcome"].value = "(all)"
    box.filters["team"].value = "(all)"
    box.activities_slider.value = 1.0
    lo, hi = box.quarters.options[0], box.quarters.options[0]
    box.quarters.value = (lo, hi)  # 2026Q1: cases c0..c2 started in Jan-Mar
    assert set(box.filtered_log()["case_id"]) == {"c0", "c1", "c2"}


def test_explorer_path_slider_thins_a_real_map(demo_data):

    box = map_explorer.explore_map(demo_data(5, "tiny").events, backend="matplotlib", paths=1.0)
    full = box.current.edges
    box.paths_slider.value = 0.3
    assert box.current.edges < full  # a strict subset: rare paths gone, the rest unchanged


def test_explorer_without_org_columns_offers_only_the_outcome_filter():
    box = map_explorer.explore_map(make_log().drop(columns="team"), backend="matplotlib")
    assert list(box.filters) == ["outcome"]
    assert box.current.edges <= EXPECTED_EDGES
