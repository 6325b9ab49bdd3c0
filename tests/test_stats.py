"""Significance helpers against closed forms and hand-computed values."""

import math

import numpy as np
import pandas as pd
import pytest

from workbench import stats


def test_rate_difference_small_counts_use_fisher_exact():
    # Table [[3, 0], [0, 3]]: Fisher's two-sided p = 2 / C(6, 3) = 0.1.
    r = stats.rate_difference(3, 3, 0, 3)
    assert r["diff"] == 1.0
    assert r["p_value"] == pytest.approx(0.1)


def test_rate_difference_large_counts_score_test_and_interval():
    r = stats.rate_difference(400, 1000, 300, 1000)
    assert r["diff"] == pytest.approx(0.1)
    # Wald interval as a closed-form check of the Newcombe interval's width at this size.
    se = math.sqrt(0.4 * 0.6 / 1000 + 0.3 * 0.7 / 1000)
    assert r["ci_low"] == pytest.approx(0.1 - 1.96 * se, abs=0.003)
    assert r["ci_high"] == pytest.approx(0.1 + 1.96 * se, abs=0.003)
    assert r["p_value"] < 1e-5


def test_rate_difference_empty_group_is_nan_not_an_error():
    assert math.isnan(stats.rate_difference(0, 0, 1, 2)["p_value"])


def test_median_difference_large_sample_matches_bootstrap(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.exponential(10, 1500), rng.exponential(8, 400)
    boot = stats.median_difference(a, b, seed=3)
    monkeypatch.setattr(stats, "BOOTSTRAP_MAX_N", 0)
    fast = stats.median_difference(a, b, seed=3)
    assert fast["diff"] == boot["diff"] == pytest.approx(np.median(a) - np.median(b))
    assert fast["ci_low"] == pytest.approx(boot["ci_low"], abs=0.3)
    assert fast["ci_high"] == pytest.approx(boot["ci_high"], abs=0.3)


def test_median_difference_is_seeded_and_detects_a_shift():
    a = np.arange(50.0) + 10
    b = np.arange(50.0)
    r1, r2 = stats.median_difference(a, b, seed=5), stats.median_difference(a, b, seed=5)
    pd.testing.assert_series_equal(r1, r2)
    assert r1["diff"] == 10
    assert r1["ci_low"] > 0 and r1["p_value"] < 0.01


def test_adjust_pvalues_benjamini_hochberg_by_hand():
    p = pd.Series([0.01, 0.04, 0.03, np.nan])
    # Sorted 0.01, 0.03, 0.04 -> 0.01*3/1, 0.03*3/2, 0.04*3/3 = 0.03, 0.045, 0.04 -> monotone 0.03, 0.04, 0.04.
    out = stats.adjust_pvalues(p)
    assert out.iloc[:3].tolist() == pytest.approx([0.03, 0.04, 0.04])
    assert math.isnan(out.iloc[3])


def test_mark_findings_needs_both_corrected_p_and_an_interval_excluding_zero():
    table = pd.DataFrame({"p_value": [0.001, 0.001, 0.2], "ci_low": [0.1, -0.1, 0.05], "ci_high": [0.3, 0.2, 0.2]})
    assert stats.mark_findings(table)["significant"].tolist() == [True, False, False]


@pytest.mark.parametrize("n", [300, 2_500, 12_000])
def test_pooled_sample_compares_each_part_with_the_rest_as_median_difference_does(n):
    rng = np.random.default_rng(n)
    values = np.round(rng.lognormal(2, 1, n), 1)  # many ties, as durations rounded to a tenth of a day
    groups = rng.integers(0, 9, n)
    groups[:5] = 99  # a part of five: the rank test may be exact there
    pooled = stats.PooledSample(values)
    for g in np.unique(groups):
        part = groups == g
        got = pooled.median_difference(part, n_boot=100, seed=int(g))
        want = stats.median_difference(values[part], values[~part], n_boot=100, seed=int(g))
        pd.testing.assert_series_equal(got.astype(float), want.astype(float), check_exact=True)
