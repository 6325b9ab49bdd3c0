"""Forecast-realism checks against hand-computed values."""

import numpy as np
import pandas as pd
import pytest

from workbench.audit import pipeline_realism, quota_realism


def test_quota_realism_by_hand():
    att = pd.DataFrame({
        "rep": ["ann"] * 5 + ["bob"] * 5 + ["cy"],
        "team": ["t"] * 11,
        "quarter": ["2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3"] * 2 + ["2026Q3"],
        "quota": [0, 0, 0, 0, 100] + [0, 0, 0, 0, 300] + [50],
        "bookings": [80, 120, 100, 100, 0] + [100, 100, 100, 100, 0] + [0],
    })
    out = quota_realism(att, "2026Q3").set_index("rep")
    # ann: mean 100, booked >= 100 in 3 of 4 quarters -> soft; bob: 300 vs 100 never -> out of reach.
    assert out.loc["ann", "past_mean_bookings"] == 100
    assert out.loc["ann", "stretch"] == 1.0
    assert out.loc["ann", "past_hit_share"] == 0.75
    assert out.loc["ann", "verdict"] == "soft"
    assert out.loc["bob", "stretch"] == 3.0
    assert out.loc["bob", "verdict"] == "out of reach"
    assert out.loc["cy", "verdict"] == "no history"
    assert list(out.index) == ["bob", "ann", "cy"]  # most stretched first, no history last


def _results(team_ratios: dict[str, list[float]], company_ratio: float = 0.5) -> pd.DataFrame:
    rows = []
    for i, q in enumerate(["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1"]):
        rows.append({"quarter": q, "week": 1, "level": "company", "entity": "company", "closed_won_to_date": 10.0,
                     "weighted_pipeline": 1010.0, "actual": 10.0 + 1000 * company_ratio})
        for team, ratios in team_ratios.items():
            rows.append({"quarter": q, "week": 1, "level": "team", "entity": team, "closed_won_to_date": 0.0,
                         "weighted_pipeline": 100.0, "actual": 100 * ratios[i]})
    return pd.DataFrame(rows)


def test_pipeline_realism_names_optimism_and_sandbagging():
    res = _results({
        "dreamers": [0.20, 0.25, 0.22, 0.18, 0.21],   # deliver ~40% of the company's conversion
        "hiders": [1.00, 1.10, 0.95, 1.05, 1.02],     # ~2x the company's
        "normal": [0.45, 0.55, 0.50, 0.48, 0.52],
    })
    out = pipeline_realism(res).set_index("entity")
    assert out.loc["dreamers", "verdict"] == "optimistic"
    assert out.loc["hiders", "verdict"] == "sandbagging"
    assert out.loc["normal", "verdict"] == "in line"
    expected = np.exp(np.mean(np.log(np.array([0.20, 0.25, 0.22, 0.18, 0.21]) / 0.5)))
    assert out.loc["dreamers", "delivery_vs_company"] == pytest.approx(expected)
    assert out.loc["dreamers", "ci_high"] < 1 < out.loc["hiders", "ci_low"]
