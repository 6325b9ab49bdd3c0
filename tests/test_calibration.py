"""Tests of the forecast's calibration (workbench.forecast.calibration) and baselines on cases with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench.forecast.baselines import run_rate
from workbench.forecast.calibration import calibrate
from workbench.forecast.simulation import shock_factors


def _cases(kappa2: float, phi: dict[str, float], *, n_quarters: int = 60, seed: int = 0,
           run_rate_signal: float = 0.0) -> pd.DataFrame:
    """Past rep cases drawn from the calibration's own model: open deals' deviations with variance
    kappa^2 x their Bernoulli variance, then the shocks of shock_factors with known SDs."""
    rng = np.random.default_rng(seed)
    reps = pd.DataFrame({"rep": [f"r{i}" for i in range(20)], "team": [f"t{i // 5}" for i in range(20)],
                         "region": "all"})
    size = rng.uniform(0.5, 2.0, 20) * 1e5
    sd = {level: np.sqrt(np.log1p(value)) for level, value in phi.items()}
    rows = []
    for q in range(n_quarters):
        quarter = f"{2000 + q // 4}Q{q % 4 + 1}"
        for week in range(1, 14):
            left = (14 - week) / 13
            expected = size * left
            var = 0.2 * size * expected
            deviation = rng.normal(0, np.sqrt(kappa2 * var))
            factor = shock_factors(1, reps["team"].to_numpy(), sd, weight=expected, rng=rng)[0]
            closed = size * (1 - left)
            rows.append(reps.assign(quarter=quarter, week=week, closed=closed, pipeline=expected, pipeline_var=var,
                                    new_business=0.0, nb_m2_over_m1=0.0, nb_dispersion=0.0,
                                    weighted_pipeline=closed + 0.8 * expected,
                                    actual=closed + (expected + deviation) * factor,
                                    elapsed_days=(week - 1) * 7.0))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("kappa2, phi", [
    (1.0, {"company": 0.0, "team": 0.0, "rep": 0.0}),
    (0.5, {"company": 0.02, "team": 0.01, "rep": 0.04}),
    (2.0, {"company": 0.005, "team": 0.03, "rep": 0.0}),
])
def test_calibration_recovers_the_spread_the_cases_were_drawn_with(kappa2, phi):
    cal = calibrate(_cases(kappa2, phi), combine=False)
    mid = cal.spread.loc[3:11]  # weeks with a full window either side
    assert mid["kappa2"].mean() == pytest.approx(kappa2, rel=0.2)
    for level, value in phi.items():
        assert mid[level].mean() == pytest.approx(value, abs=0.01 + 0.35 * value)
    assert cal.source == "past quarters" and len(cal.quarters) == 60


def test_the_deals_variance_is_never_scaled_to_nothing():
    from workbench.forecast.calibration import KAPPA2_MAX, KAPPA2_MIN

    # Past quarters whose totals landed exactly on the forecast ask for kappa^2 = 0: drawn as they ask,
    # every open deal would be certain and every range a point. The factor stays within 4x either way.
    cal = calibrate(_cases(0.0, {"company": 0.0, "team": 0.0, "rep": 0.0}, n_quarters=4), combine=False)
    assert (cal.spread["kappa2"] == KAPPA2_MIN).all() and KAPPA2_MIN == 1 / KAPPA2_MAX == 0.25
    assert (cal.spread[["company", "team", "rep"]] == 0).all().all()
    assert cal.df == {"company": 4.0, "team": 16.0}  # 4 quarters; 4 teams in each


def test_the_run_rate_gets_no_weight_when_it_adds_nothing():
    cal = calibrate(_cases(1.0, {"company": 0.0, "team": 0.0, "rep": 0.0}, n_quarters=12))
    assert (cal.weights == 0).all().all()
    assert all(cal.weight(w) == {"run_rate": 0.0, "weighted_pipeline": 0.0} for w in range(1, 14))


def test_the_run_rate_gets_weight_when_it_knows_what_the_model_misses():
    cases = _cases(0.2, {"company": 0.0, "team": 0.0, "rep": 0.0}, n_quarters=12)
    # The model's expectation misses a quarter-wide swing that the bookings so far already show.
    swing = pd.Series(np.random.default_rng(5).normal(0, 0.3, cases["quarter"].nunique()),
                      index=cases["quarter"].unique()).reindex(cases["quarter"]).to_numpy()
    cases["actual"] = cases["actual"] * (1 + swing)
    cases["closed"] = cases["closed"] * (1 + swing)
    cal = calibrate(cases)
    # Early in the quarter, where most of the quarter (and of its swing) is still to come.
    assert cal.weights.loc[2:6, "run_rate"].min() > 0.5
    assert (cal.weights.loc[2:6, "weighted_pipeline"] < 0.1).all()


def test_run_rate_scales_the_bookings_so_far_to_the_quarter():
    assert run_rate(300.0, 30.0, 90.0) == 900.0
    assert np.isnan(run_rate(300.0, 0.0, 90.0))
    assert run_rate(np.array([0.0, 50.0]), np.array([10.0, 45.0]), 90.0).tolist() == [0.0, 100.0]


# ----------------------------------------------------------------------------- the second simulator

def test_the_simulator_reads_back_to_its_own_ground_truth():
    """The simulator's stage history, read as a client's export, books what its deal table says."""
    import workbench as wb
    from workbench.calendar import quarter_bounds, quarter_of
    from workbench.snapshot import bookings

    from pipeline_simulator import simulate

    sim = simulate(seed=4, quarters=6, n_reps=12, n_teams=3)
    again = simulate(seed=4, quarters=6, n_reps=12, n_teams=3)
    pd.testing.assert_frame_equal(sim.history, again.history)  # one seed, one history
    data = wb.load_sales_data(sim.history, reps=sim.reps, quotas=sim.quotas)
    assert data.profile.name == "Salesforce standard"
    assert len(data.quarantine) == 0
    won = bookings(data.log)
    per_rep = won.groupby([quarter_of(won["closed_at"]), "rep"])["amount"].sum()
    truth = sim.bookings.set_index(["quarter", "rep"])["amount"]
    pd.testing.assert_series_equal(per_rep.sort_index(), truth.sort_index(), check_names=False)
    outcomes = sim.deals["outcome"].value_counts()
    assert outcomes["won"] == len(won)
    # What makes it unlike the demo generator is present: pushes, amount revisions and a quarter-end rush.
    states = wb.snapshot.deal_states(data.log, profile=data.profile)
    assert states.events["close_date_pushes"].max() > 0 and states.events["amount_changes"].max() > 0
    end = quarter_of(won["closed_at"]).map(lambda q: quarter_bounds(q)[1])
    last_two_weeks = ((end - won["closed_at"]).dt.days < 14).mean()
    assert last_two_weeks > 1.3 * 14 / 91  # well over its share of the calendar


def test_quantile_recalibration_reads_the_past_cases_pit():
    from dataclasses import replace

    base = calibrate(_cases(1.0, {"company": 0.0, "team": 0.0, "rep": 0.0}, n_quarters=4), combine=False)
    # Uniform PITs: the draws were calibrated, nothing changes.
    uniform = replace(base, pit=pd.DataFrame({"week": 5, "pit": (np.arange(1000) + 0.5) / 1000}))
    assert uniform.levels([0.1, 0.5, 0.9], 5) == pytest.approx([0.1, 0.5, 0.9], abs=0.002)
    # Actuals always fell in the middle half of the draws: the draws are too wide, so the calibrated
    # deciles are the draws' 0.3 and 0.7 quantiles.
    narrow = replace(base, pit=pd.DataFrame({"week": 5, "pit": 0.25 + 0.5 * (np.arange(1000) + 0.5) / 1000}))
    assert narrow.levels([0.1, 0.9], 5) == pytest.approx([0.3, 0.7], abs=0.002)
    few = replace(base, pit=pd.DataFrame({"week": 5, "pit": [0.5] * 10}))
    assert few.levels([0.1], 5) == pytest.approx([0.1])


def test_p_hit_is_read_from_the_same_recalibration_as_the_ranges():
    from dataclasses import replace

    # Past reps whose actuals fell only in the middle half of their draws (too wide), and a
    # recalibration from them; p(hit) is 1 - G(1 - p), G the PIT values' distribution function.
    pit = pd.DataFrame({"week": 5, "pit": np.linspace(0.25, 0.75, 2001)})
    cal = replace(calibrate(_cases(1.0, {"company": 0.0, "team": 0.0, "rep": 0.0}, n_quarters=4), combine=False),
                  pit=pit)
    out = cal.p_hit(np.array([0.0, 0.1, 0.3, 0.5, 0.6, 1.0]), 5)
    assert out[0] == 0.0 and out[-1] == 1.0  # where every draw agrees, nothing to recalibrate
    assert out[1:5] == pytest.approx([0.0, 0.1, 0.5, 0.7], abs=0.002)
    # Coherent with the ranges: a quota at the rep's calibrated P90 (its draws' level L) is hit
    # with probability 0.1, and one at its calibrated P10 with 0.9.
    (l10, l90) = cal.levels([0.1, 0.9], 5)
    assert cal.p_hit(np.array([1 - l90, 1 - l10]), 5) == pytest.approx([0.1, 0.9], abs=0.002)
    # Too few past cases: the draws' share as it is.
    few = replace(cal, pit=pit.iloc[:10])
    assert few.p_hit(np.array([0.3]), 5) == pytest.approx([0.3])
