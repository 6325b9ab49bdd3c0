"""Tests of the quota-attainment forecast (workbench.forecast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

STAGES = ["Lead Created", "First Contact", "Qualification", "Discovery Meeting", "Proposal"]
REPS = pd.DataFrame({"rep": ["ann", "bob", "cat", "dan"], "team": ["east", "east", "west", "west"],
                     "region": ["EU", "EU", "EU", "EU"]})


def make_log(seed: int = 1, start: str = "2024-01-01", days: int = 730, per_day: float = 1.5) -> pd.DataFrame:
    """A small random CRM log: deals walk the PPVVC stages and close won (40%) or lost.

    Each stage takes an exponential 6 days; a deal stops after a random stage
    and then closes. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start, tz="UTC")
    rows = []
    n = rng.poisson(per_day * days)
    created = np.sort(rng.uniform(0, days, n))
    for i, c in enumerate(created):
        rep = REPS["rep"].iloc[rng.integers(4)]
        amount = float(np.round(rng.lognormal(9, 0.6), -2))
        won = rng.random() < 0.4
        depth = len(STAGES) if won else rng.integers(1, len(STAGES) + 1)
        t = c
        case = f"D{i:05d}"
        for s in STAGES[:depth]:
            rows.append((case, s, t, rep, amount))
            if rng.random() < 0.3:
                rows.append((case, "Follow-up", t + rng.uniform(0, 3), rep, np.nan))
            t += rng.exponential(6)
        rows.append((case, "Closed Won" if won else "Closed Lost", t, rep, np.nan))
    log = pd.DataFrame(rows, columns=["case_id", "activity", "t", "rep", "amount"])
    log["timestamp"] = t0 + pd.to_timedelta(log.pop("t"), unit="D")
    log = log.merge(REPS, on="rep", how="left")
    log = log.sort_values(["case_id", "timestamp"], kind="stable").reset_index(drop=True)
    return log[["case_id", "activity", "timestamp", "rep", "team", "region", "amount"]]


def make_quotas(quarters: list[str], quota: float = 60_000.0) -> pd.DataFrame:
    """The same quota for every rep and quarter."""
    return pd.DataFrame([(r, q, quota) for q in quarters for r in REPS["rep"]], columns=["rep", "quarter", "quota"])


# ----------------------------------------------------------------------------- Monte Carlo, closed forms

from itertools import product  # noqa: E402

from workbench.errors import WorkbenchError  # noqa: E402
from workbench.forecast import (  # noqa: E402
    NewBusinessModel,
    QuotaForecaster,
    fit_new_business,
    shock_factors,
    simulate_new_business,
    simulate_pipeline,
)
from workbench.forecast.hierarchy import lookup  # noqa: E402
from workbench.forecast.win_model import shrunk_factors  # noqa: E402
from workbench.schema import MissingColumnError  # noqa: E402


def test_pipeline_draws_match_the_exact_distribution():
    p = np.array([0.5, 0.2, 0.9, 0.35])
    amount = np.array([100.0, 50.0, 30.0, 80.0])
    group = np.array([0, 0, 1, 1])
    draws = simulate_pipeline(p, amount, group, 2, n_draws=200_000, rng=np.random.default_rng(3))
    # Exact: enumerate the 16 outcomes.
    exact_hit, exact_rep0_hit = 0.0, 0.0
    for won in product([0, 1], repeat=4):
        w = np.array(won)
        prob = np.prod(np.where(w == 1, p, 1 - p))
        exact_hit += prob * ((w * amount).sum() >= 150)
        exact_rep0_hit += prob * ((w * amount)[:2].sum() >= 100)
    assert draws.mean(axis=0) == pytest.approx([0.5 * 100 + 0.2 * 50, 0.9 * 30 + 0.35 * 80], rel=0.01)
    assert (draws.sum(axis=1) >= 150).mean() == pytest.approx(exact_hit, abs=0.005)
    assert (draws[:, 0] >= 100).mean() == pytest.approx(exact_rep0_hit, abs=0.005)


def test_new_business_draws_have_the_compound_poisson_moments():
    sizes = np.array([10.0, 30.0])
    model = NewBusinessModel("seasonal_naive", np.zeros(13), {}, sizes, 0.0, pd.Series(dtype=float),
                             pd.Series([0.75, 0.25], index=["ann", "bob"]))
    draws = simulate_new_business(model, 200.0, 2, np.array([0, 1]), n_draws=100_000,
                                  rng=np.random.default_rng(5))
    lam = 200.0 / sizes.mean()                          # 10 deals expected
    assert draws.sum(axis=1).mean() == pytest.approx(200.0, rel=0.01)
    assert draws.sum(axis=1).var() == pytest.approx(lam * (sizes ** 2).mean(), rel=0.03)
    assert draws.mean(axis=0) == pytest.approx([150.0, 50.0], rel=0.02)


def test_lookup_reads_each_key_and_falls_back_to_the_default():
    keys = pd.Series(["b", None, "a", "zed", "b", "c"], dtype="str")
    table = pd.Series([1.5, 2.5, np.nan], index=["a", "b", "c"])
    assert lookup(keys, table, 0.0).tolist() == [2.5, 0.0, 1.5, 0.0, 2.5, 0.0]
    teams = pd.Series(["east", "west"], index=["ann", "bob"])
    assert lookup(pd.Series(["bob", "cy", "ann"]), teams, "(no team)").tolist() == ["west", "(no team)", "east"]
    assert lookup(pd.Series([], dtype="str"), table, 0.0).tolist() == []


def test_shrinkage_factors_are_the_hand_computed_ratios():
    frame = pd.DataFrame({"rep": ["ann"] * 4 + ["bob"] * 2, "won": [1, 1, 1, 0, 0, 0],
                          "p": [0.5] * 6, "weight": [1.0] * 6})
    org = pd.DataFrame({"rep": ["ann", "bob"], "team": ["east", "east"]})
    f = shrunk_factors(frame, org, k=2.0)
    team = (3 + 2) / (3 + 2)                            # won 3, expected 3
    assert f["ann"] == pytest.approx((3 + 2 * team) / (2 + 2))
    assert f["bob"] == pytest.approx((0 + 2 * team) / (1 + 2))


def test_shrinkage_factors_shrink_each_rep_to_its_own_team():
    frame = pd.DataFrame({"rep": ["ann"] * 4 + ["bob"] * 2 + ["cy"] * 2 + ["dee"],
                          "won": [1, 1, 1, 0, 0, 0, 1, 1, 0],
                          "p": [0.5] * 6 + [0.25, 0.25, 0.5],
                          "weight": [1.0] * 6 + [0.5, 0.5, 1.0]})
    org = pd.DataFrame({"rep": ["ann", "bob", "cy"], "team": ["east", "east", "west"]})
    f = shrunk_factors(frame.sample(frac=1, random_state=3), org, k=2.0)
    east = (3 + 2) / (3 + 2)                            # won 3, expected 2 + 1
    west = (1 + 2) / (0.25 + 2)                         # cy's two deals count half each
    alone = (0 + 2) / (0.5 + 2)                         # dee has no team: a team of one
    assert f.to_dict() == pytest.approx({"ann": (3 + 2 * east) / (2 + 2), "bob": (0 + 2 * east) / (1 + 2),
                                         "cy": (1 + 2 * west) / (0.25 + 2), "dee": (0 + 2 * alone) / (0.5 + 2)})


def test_new_business_model_on_a_repeating_season():
    won = []
    pattern = [5.0, 3.0, 2.0, 1.0] + [0.0] * 9          # created in week w, won within the quarter
    quarters = ["2024Q1", "2024Q2", "2024Q3", "2024Q4", "2025Q1"]
    from workbench.calendar import quarter_bounds
    for q in quarters:
        start, _ = quarter_bounds(q)
        for w, amt in enumerate(pattern):
            if amt:
                t = start + pd.Timedelta(days=7 * w + 1)
                won.append(("x", t, t + pd.Timedelta(days=2), "ann", amt))
    won = pd.DataFrame(won, columns=["case_id", "created", "closed_at", "rep", "amount"])
    m = fit_new_business(won, quarters)
    assert m.method == "seasonal_naive"                 # exact on a repeating season (ETS only ties)
    assert m.weekly == pytest.approx(pattern)
    start, _ = quarter_bounds("2025Q2")
    assert m.expected(start, "2025Q2") == pytest.approx(11.0)
    # Half-way through week 2: half of week 2 plus weeks 3 and 4.
    assert m.expected(start + pd.Timedelta(days=10.5), "2025Q2") == pytest.approx(1.5 + 2 + 1)


# ----------------------------------------------------------------------------- the estimator

AS_OF = pd.Timestamp("2025-08-12", tz="UTC")


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    return make_log()


def fit(log, seed: int = 1) -> QuotaForecaster:
    return QuotaForecaster(n_draws=10_000, seed=seed).fit(log, as_of=AS_OF, quotas=make_quotas(["2025Q3"]), reps=REPS)


@pytest.fixture(scope="module")
def fitted(log) -> QuotaForecaster:
    return fit(log)


@pytest.fixture(scope="module")
def forecast(fitted, log):
    return fitted.predict(log)


def test_the_estimator_follows_scikit_learns_parameter_api(fitted):
    from sklearn.base import clone

    params = fitted.get_params()
    assert params["n_draws"] == 10_000 and params["seed"] == 1 and params["profile"] is None
    twin = clone(fitted)
    assert twin.get_params() == params and not hasattr(twin, "win_model_")
    assert twin.set_params(seed=5).seed == 5 and fitted.seed == 1


def test_the_fitted_model_keeps_no_training_rows(fitted):
    import pickle

    assert not [k for k, v in vars(fitted).items() if isinstance(v, pd.DataFrame) and len(v) > 200]
    assert len(pickle.dumps(fitted)) < 2_000_000


def test_hierarchy_is_coherent_in_every_draw(forecast):
    sim = forecast.simulation
    _, reps = sim.level_draws("rep")
    _, company = sim.level_draws("company")
    assert sim.rep_draws.shape == (10_000, 4)
    assert np.array_equal(company[:, 0], reps.sum(axis=1))
    names, teams = sim.level_draws("team")
    east = (sim.reps["team"] == "east").to_numpy()
    assert names == ["east", "west"]
    np.testing.assert_allclose(teams[:, 0], reps[:, east].sum(axis=1), rtol=1e-12)
    pred = forecast.table(simulation=sim)
    top = pred.set_index("level").loc["company"]
    assert top["expected_bookings"] == pytest.approx(pred.query("level == 'rep'")["expected_bookings"].sum())


def test_prediction_adds_up_and_matches_the_log(forecast, log):
    pred = forecast.table().set_index(["level", "entity"])
    start = pd.Timestamp("2025-07-01", tz="UTC")
    won = log[(log["activity"] == "Closed Won") & (log["timestamp"] >= start) & (log["timestamp"] < AS_OF)]
    # make_log records the amount on the first stage event: the win books it.
    amounts = log.dropna(subset=["amount"]).groupby("case_id")["amount"].first()
    by_rep = won.set_index("case_id")["rep"].groupby(level=0).first()
    expected_closed = amounts.loc[by_rep.index].groupby(by_rep).sum()
    for rep, value in expected_closed.items():
        assert pred.loc[("rep", rep), "closed_won_to_date"] == pytest.approx(value)
    rep_rows = pred.loc["rep"]
    mc_mean = rep_rows["expected_bookings"]
    analytic = rep_rows["closed_won_to_date"] + rep_rows["pipeline_expected"] + rep_rows["new_business_expected"]
    assert np.allclose(mc_mean, analytic, rtol=0.03)
    assert pred.loc[("company", "company"), "quota"] == 4 * 60_000.0
    assert pred.loc[("team", "east"), "quota"] == 2 * 60_000.0
    assert (rep_rows["p10"] <= rep_rows["p50"]).all() and (rep_rows["p50"] <= rep_rows["p90"]).all()
    assert rep_rows["p_hit_quota"].between(0, 1).all()
    gap = rep_rows["quota"] - rep_rows["closed_won_to_date"]
    assert np.allclose(rep_rows["gap_to_quota"], gap)
    assert pred.attrs["new_business_model"] in ("ets", "seasonal_naive")


def test_win_model_is_calibrated_on_its_training_data(fitted, log):
    # A logistic MLE with an intercept reproduces the number of wins exactly (score equation).
    from workbench.forecast.win_model import fit_win_model, forecast_states, training_snapshots
    from workbench.snapshot import due_this_quarter

    past = forecast_states(log).as_of(pd.Timestamp("2025-06-30 23:59:59.999999", tz="UTC"))
    train = training_snapshots(past, fitted.history_)
    train["amount_used"] = train["amount"].fillna(fitted.imputed_amount_)
    train["due"] = due_this_quarter(train, fitted.closing_times_)
    p = fitted.win_model_.predict(train)
    assert p.sum() == pytest.approx(train["won"].sum(), rel=1e-4)
    _, in_sample = fit_win_model(train, fitted.profile_)  # what the fit hands on without a second design
    np.testing.assert_allclose(in_sample, p, rtol=1e-9)
    # The fitted model does not keep its design (a backtest keeps every fitted model it made).
    assert fitted.win_model_.result.model.exog is None and fitted.win_model_.result.model.endog is None


def test_same_seed_same_numbers_other_seed_other_draws(log, forecast):
    pd.testing.assert_frame_equal(forecast.table(), fit(log).predict(log).table())
    other = fit(log, seed=2).predict(log)
    assert not np.array_equal(forecast.simulation.rep_draws, other.simulation.rep_draws)


def test_a_forecast_kept_for_drawing_draws_the_same_and_holds_three_columns_per_deal(forecast):
    slim = forecast.for_draws()
    assert list(slim.deals.columns) == ["rep", "p_win", "amount_if_won"] and len(slim.deals) == len(forecast.deals)
    assert slim.won_so_far.empty and len(forecast.won_so_far) > 0  # the original is left whole
    assert slim.deals.memory_usage(deep=True).sum() < forecast.deals.memory_usage(deep=True).sum() / 4
    for seed in (0, 7):
        full, kept = forecast.simulate(n_draws=500, seed=seed), slim.simulate(n_draws=500, seed=seed)
        for level in ("rep", "team", "company"):
            np.testing.assert_array_equal(kept.level_draws(level)[1], full.level_draws(level)[1])
    pd.testing.assert_frame_equal(slim.moments(), forecast.moments())
    assert slim.week == forecast.week and slim.quotas()["rep"].equals(forecast.quotas()["rep"])


def test_states_computed_by_the_engine_give_the_same_forecast(log, forecast):
    from workbench.snapshot import deal_states

    states = deal_states(log, profile="ppvvc", backend="duckdb")  # as a log on Spark or in a database would
    pd.testing.assert_frame_equal(fit(states).predict(states).table(), forecast.table())


def test_observing_a_later_week_returns_a_new_forecast_and_changes_nothing(log, fitted, forecast):
    before = forecast.table()
    later = forecast.observe(log, AS_OF + pd.Timedelta(days=14))
    assert later is not forecast and later.as_of == AS_OF + pd.Timedelta(days=14)
    assert later.closed.sum() >= forecast.closed.sum()
    pd.testing.assert_frame_equal(forecast.table(), before)
    assert fitted.as_of_ == AS_OF


def test_the_future_cannot_change_the_forecast(log, fitted):
    future = log["timestamp"] >= AS_OF
    mutated = log.copy()
    mutated.loc[future, "amount"] = 1e9
    mutated.loc[future, "activity"] = "Closed Won"
    mutated.loc[future, "rep"] = "zed"
    deleted = log[~future]
    mine = fitted.predict(log)
    for other in (mutated, deleted):
        theirs = fit(other).predict(other)
        pd.testing.assert_frame_equal(mine.table(), theirs.table())
        pd.testing.assert_frame_equal(mine.baselines(), theirs.baselines())


def test_errors_are_workbench_errors(log, fitted):
    with pytest.raises(MissingColumnError, match="'amount'"):
        QuotaForecaster().fit(log.drop(columns="amount"), as_of=AS_OF)
    with pytest.raises(WorkbenchError, match="no events before the forecast quarter"):
        QuotaForecaster().fit(log, as_of="2024-02-01")
    late_start = log[log["timestamp"] >= pd.Timestamp("2024-01-20", tz="UTC")]
    with pytest.raises(WorkbenchError, match="no complete quarter of history"):
        QuotaForecaster().fit(late_start, as_of="2024-05-01")
    with pytest.raises(WorkbenchError, match="not 2025Q4"):
        fitted.predict(log, quarter="2025Q4")
    with pytest.raises(WorkbenchError, match="not in the fitted quarter 2025Q3"):
        fitted.predict(log, as_of="2025-10-02")
    bad = make_quotas(["2025Q3"]).astype({"quarter": object})
    bad["quarter"] = "Q5-2025"
    with pytest.raises(WorkbenchError, match="malformed_quarter"):
        QuotaForecaster().fit(log, as_of=AS_OF, quotas=bad)
    with pytest.raises(WorkbenchError, match="not fitted"):
        QuotaForecaster().predict(log)


def test_unusable_quota_rows_are_set_aside_with_a_reason(log):
    quotas = pd.DataFrame({"rep": ["ann", "bob", "bob", "cat", "dan"],
                           "quarter": ["2025Q3", "2025 Q3", "Q3 2025", "2025Q3", "2025Q3"],
                           "quota": [100.0, 50.0, 60.0, "n/a", -5.0]})
    f = QuotaForecaster(n_draws=500).fit(log, as_of=AS_OF, quotas=quotas)
    # read_quotas' rules, the same everywhere: the first of two quotas for a rep and quarter is kept
    assert f.quotas_[["rep", "quota"]].to_dict("records") == [{"rep": "ann", "quota": 100.0},
                                                               {"rep": "bob", "quota": 50.0}]
    assert f.quotas_set_aside_[["source_row", "reason"]].to_dict("records") == [
        {"source_row": 3, "reason": "duplicate_quota"},
        {"source_row": 4, "reason": "non_numeric_quota"},
        {"source_row": 5, "reason": "negative_quota"},
    ]


def test_cumulative_paths_start_at_the_actual_and_end_at_the_forecast(forecast):
    paths = forecast.paths(n_draws=4000)
    actual = paths[paths["kind"] == "actual"]
    fc = paths[paths["kind"] == "forecast"]
    company = forecast.table().set_index("level").loc["company"]
    assert actual["p50"].is_monotonic_increasing
    assert fc["p50"].iloc[0] == pytest.approx(company["closed_won_to_date"])
    assert fc["date"].iloc[-1] == pd.Timestamp("2025-10-01", tz="UTC")
    assert fc["mean"].iloc[-1] == pytest.approx(company["expected_bookings"], rel=0.02)
    assert (fc["p10"].diff().dropna() >= 0).all() and (fc["p90"].diff().dropna() >= 0).all()


def test_forecast_figures_draw_the_forecast(forecast):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workbench.figures.forecast import plot_fan_chart, plot_p_hit

    pred = forecast.table()
    paths = forecast.paths(n_draws=500)
    quota = float(pred.set_index("level").loc["company", "quota"])
    fig = plot_fan_chart(paths, quota=quota)
    ax = fig.axes[0]
    assert [l.get_label() for l in ax.get_lines()][:2] == ["booked so far", "median forecast"]
    assert ax.get_lines()[-1].get_ydata()[0] == quota
    fig2 = plot_p_hit(pred)
    bars = [b.get_width() for b in fig2.axes[0].patches]
    reps = pred[pred["level"] == "rep"]
    assert bars == sorted(reps["p_hit_quota"])
    assert [t.get_text() for t in fig2.axes[0].get_yticklabels()] == list(reps.sort_values("p_hit_quota")["entity"])
    plt.close("all")
    with pytest.raises(WorkbenchError, match="no team has a quota"):
        plot_p_hit(pred.assign(quota=np.nan), level="team")


def test_shocks_make_reps_move_together_as_specified():
    team = np.array([0, 0, 1, 1])
    weight = np.array([1.0, 3.0, 2.0, 2.0])
    rng = np.random.default_rng(1)
    common = shock_factors(200_000, team, {"company": 0.3}, weight=weight, rng=rng)
    teams = shock_factors(200_000, team, {"team": 0.2}, weight=weight, rng=rng)
    reps = shock_factors(200_000, team, {"rep": 0.2}, weight=weight, rng=rng)
    for f in (common, teams, reps):  # the shocks move the spread; the expectation only to second order
        assert f.mean(axis=0) == pytest.approx([1, 1, 1, 1], abs=0.02)
    # Everyone shares the company's log-normal shock: variance exp(s^2) - 1.
    assert np.allclose(common[:, 0], common[:, 3])
    assert common[:, 0].var() == pytest.approx(np.expm1(0.09), rel=0.03)
    # Team shares: a team's reps move together and the company total does not move; with two teams
    # of equal weight the factor is 2 / (1 + exp(s (z2 - z1))), of variance about 0.2^2 / 2 = 0.02.
    assert np.allclose(teams[:, 0], teams[:, 1])
    assert np.allclose(teams @ weight, weight.sum())
    z = np.random.default_rng(0).normal(0, 0.2 * np.sqrt(2), 1_000_000)
    assert teams[:, 0].var() == pytest.approx((2 / (1 + np.exp(z))).var(), rel=0.03)
    assert np.corrcoef(teams[:, 0], teams[:, 2])[0, 1] == pytest.approx(-1.0, abs=0.01)
    # Rep shares within a team: the team total does not move; rep 0 (w = 1/4 of its team) varies
    # by about 0.2^2 (1 - 2/4 + 1/16 + 9/16) = 0.045.
    assert np.allclose(reps[:, :2] @ weight[:2], 4.0)
    assert reps[:, 0].var() == pytest.approx(0.045, rel=0.1)
    assert abs(np.corrcoef(reps[:, 0], reps[:, 2])[0, 1]) < 0.01


def test_a_spread_measured_on_few_quarters_gives_student_t_shocks():
    from scipy import stats

    team = np.array([0, 0, 1, 1])
    s, n, z = 0.01, 400_000, 1.2816  # small s: the log-normal's mean correction is negligible

    def company(**kw):
        return np.log(shock_factors(n, team, {"company": s}, rng=np.random.default_rng(2), **kw)[:, 0])

    assert (np.abs(company()) < z * s).mean() == pytest.approx(0.80, abs=0.003)
    # With the SD measured on 4 quarters, s * t(4): its +/- 1.28 s holds 2 F_t4(1.28) - 1 = 73%.
    assert (np.abs(company(df={"company": 4})) < z * s).mean() == pytest.approx(2 * stats.t.cdf(z, 4) - 1, abs=0.004)
    # A team's share: twice the variance (E[4 / chi2_4] = 2), and the shares still add up.
    known = shock_factors(n, team, {"team": s}, rng=np.random.default_rng(3))
    measured = shock_factors(n, team, {"team": s}, df={"team": 4}, rng=np.random.default_rng(3))
    assert np.allclose(measured.sum(axis=1), 4.0)
    assert measured[:, 0].var() / known[:, 0].var() == pytest.approx(2.0, rel=0.1)


def test_pipeline_draws_are_independent_bernoulli_sums():
    n = 400
    p = np.linspace(0.05, 0.95, n)
    amount = np.arange(1, n + 1, dtype=float)
    group = np.repeat([0, 1], n // 2)
    draws = simulate_pipeline(p, amount, group, 2, n_draws=20_000, rng=np.random.default_rng(1))
    for g in (0, 1):
        m = group == g
        assert draws[:, g].mean() == pytest.approx((p * amount)[m].sum(), rel=0.005)
        assert draws[:, g].var() == pytest.approx((p * (1 - p) * amount ** 2)[m].sum(), rel=0.05)
    assert abs(np.corrcoef(draws.T)[0, 1]) < 0.03


def test_deal_table_and_categories_follow_the_thresholds(forecast):
    table = forecast.deal_table(commit=0.6, best_case=0.2)
    assert len(table) == len(forecast.deals)
    assert table["expected_amount"].is_monotonic_decreasing
    expected = np.where(table["p_win"] >= 0.6, "commit", np.where(table["p_win"] >= 0.2, "best case", "pipeline"))
    assert (table["category"].to_numpy() == expected).all()
    cats = forecast.categories(commit=0.6, best_case=0.2).set_index("category")
    assert list(cats.index) == ["closed", "commit", "best case", "pipeline"]
    assert cats.loc["closed", "amount"] == pytest.approx(forecast.closed.sum())
    for c in ("commit", "best case", "pipeline"):
        rows = table[table["category"] == c]
        assert cats.loc[c, "deals"] == len(rows)
        assert cats.loc[c, "amount"] == pytest.approx(rows["amount"].fillna(0).sum())
        assert cats.loc[c, "expected"] == pytest.approx(rows["expected_amount"].sum())
    assert cats["cumulative"].iloc[-1] == pytest.approx(forecast.closed.sum() + table["amount"].fillna(0).sum())
    with pytest.raises(WorkbenchError, match="thresholds"):
        forecast.categories(commit=0.2, best_case=0.6)


def test_the_weighted_pipeline_counts_due_deals_at_their_stage_and_week_rate():
    from workbench.forecast.baselines import stage_win_rates, weighted_pipeline

    # Due deals of stage P won 3 of 4 times in week 2 and 1 of 4 in week 5 (each with at least
    # MIN_RATE_DEALS rows, so each week has its own rate); deals not due never count.
    rows = [("P", 2, True, 1.0)] * 30 + [("P", 2, True, 0.0)] * 10 + [("P", 5, True, 1.0)] * 5 \
        + [("P", 5, True, 0.0)] * 15 + [("P", 2, False, 1.0)] * 40
    train = pd.DataFrame(rows, columns=["stage", "week", "due", "won"])
    rates = stage_win_rates(train)
    assert rates.loc["P", 2] == pytest.approx(0.75) and rates.loc["P", 5] == pytest.approx(0.25)
    assert rates.loc["P", 9] == pytest.approx(35 / 60)  # a week without its own: the stage's rate
    deals = pd.DataFrame({"stage": ["P", "P", "Q"], "due": [True, False, True], "amount": [100.0, 100.0, 50.0]})
    assert weighted_pipeline(deals, rates, week=2).tolist() == [75.0, 0.0, 0.0]


def test_hit_rates_count_the_historys_entities_at_quota():
    from workbench.forecast.baselines import hit_rates

    won = pd.DataFrame({"rep": ["ann", "bob", "ann"], "amount": [100.0, 40.0, 30.0],
                        "closed_at": pd.to_datetime(["2025-01-10", "2025-02-01", "2025-04-05"], utc=True)})
    quotas = pd.DataFrame({"rep": ["ann", "bob", "ann", "bob"], "quarter": ["2025Q1", "2025Q1", "2025Q2", "2025Q2"],
                           "quota": [90.0, 50.0, 50.0, 50.0]})
    org = pd.DataFrame({"rep": ["ann", "bob"], "team": ["t", "t"], "region": ["r", "r"]})
    rates = hit_rates(won, quotas, ["2025Q1", "2025Q2"], org)
    # Reps: ann hit Q1 (100 >= 90), bob missed (40 < 50), ann missed Q2 (30), bob missed (0).
    assert rates["rep"] == pytest.approx(0.25)
    assert rates["team"] == pytest.approx(0.5)  # Q1: 140 >= 140; Q2: 30 < 100
    assert np.isnan(hit_rates(won, None, ["2025Q1"], org)["rep"])


def test_the_win_models_newton_reaches_the_maximum_where_whole_steps_diverge():
    """A rare flag under which every deal but one was won almost separates the outcomes: the likelihood
    is nearly flat along it. Whole Newton steps from a start on the wrong side (statsmodels') end at
    -25 without converging; halving steps reaches the penalised maximum, which scikit-learn's
    logistic regression with the same prior (C = PRIOR_SD ** 2, intercept free) finds too."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    from workbench.forecast.win_model import PRIOR_SD, _Logit

    rng = np.random.default_rng(0)
    x1 = rng.normal(size=5_000)
    flag = (rng.random(5_000) < 0.01).astype(float)
    y = ((x1 + rng.logistic(size=5_000) > 2) | (flag == 1)).astype(float)
    y[np.flatnonzero(flag)[0]] = 0
    X = np.column_stack([np.ones(5_000), x1, flag])
    sk = LogisticRegression(C=PRIOR_SD**2, tol=1e-12, max_iter=10_000).fit(X[:, 1:], y)
    start = np.array([0.0, 0.0, -3.0])
    ours = _Logit(y, X, check_rank=False).maximize(start)
    np.testing.assert_allclose(ours, np.r_[sk.intercept_, sk.coef_[0]], atol=1e-5)
    assert ours[2] > 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole_steps = _Logit(y, X, check_rank=False).fit(method="newton", start_params=start, maxiter=50, disp=0)
    assert not whole_steps.mle_retvals["converged"] and whole_steps.params[2] < -20  # what the fit did before


def test_the_warm_start_from_a_subsample_reaches_the_same_maximum():
    """On 80,000 rows Newton starts from the fit on every 5th row; the start changes only the steps."""
    from workbench.forecast.win_model import WARM_ROWS, _Logit, _warm_start

    rng = np.random.default_rng(3)
    n = 80_000
    X = np.column_stack([np.ones(n), rng.normal(size=n), (rng.random(n) < 0.3).astype(float)])
    y = (X @ np.array([-1.5, 0.8, 1.2]) + rng.logistic(size=n) > 0).astype(float)
    start = _warm_start(y, X)
    assert start is not None and n // WARM_ROWS >= 4
    np.testing.assert_allclose(start, [-1.5, 0.8, 1.2], atol=0.15)  # the subsample's own fit: near the truth
    steps = []

    class Counted(_Logit):
        def hessian(self, params):
            steps.append(1)
            return super().hessian(params)

    from_start = Counted(y, X, check_rank=False).maximize(start)
    warm = len(steps)
    from_zero = Counted(y, X, check_rank=False).maximize()
    np.testing.assert_allclose(from_start, from_zero, atol=1e-7)
    assert warm < len(steps) - warm
    assert _warm_start(y[:3 * WARM_ROWS], X[:3 * WARM_ROWS]) is None  # too few rows to be worth it


def test_a_shared_cache_learns_each_quarter_once(log, fitted, forecast):
    """Fits at one quarter's start on one log learn the same models whatever their seed, draws or
    calibration: with a shared cache they are learned once, and the forecast is the one without it."""
    cache: dict = {}
    first = QuotaForecaster(n_draws=10_000, seed=1).fit(log, as_of=AS_OF, quotas=make_quotas(["2025Q3"]), reps=REPS,
                                                        cache=cache)
    pd.testing.assert_frame_equal(first.predict(log).table(), forecast.table())
    later = AS_OF + pd.Timedelta(days=21)  # same quarter, another week, another seed
    again = QuotaForecaster(n_draws=500, seed=9, calibration_quarters=0).fit(
        log, as_of=later, quotas=make_quotas(["2025Q3"]), reps=REPS, cache=cache)
    assert again.win_model_ is first.win_model_ and again.rep_factor_ is first.rep_factor_
    other = QuotaForecaster(n_draws=500, prior_strength=3.0, calibration_quarters=0).fit(
        log, as_of=later, quotas=make_quotas(["2025Q3"]), reps=REPS, cache=cache)
    assert other.win_model_ is not first.win_model_  # another setting: learned afresh
    assert not other.rep_factor_.equals(first.rep_factor_)
    quotas = make_quotas(["2025Q3"], quota=90_000.0)  # other quotas: other hit rates
    moved = QuotaForecaster(n_draws=500, calibration_quarters=0).fit(
        log, as_of=later, quotas=quotas, reps=REPS, cache=cache)
    assert moved.hit_rate_ is not first.hit_rate_


def test_a_long_history_trains_on_a_sample_of_whole_deals(log, monkeypatch):
    """Past MAX_TRAINING_ROWS weekly rows the training set is one deal in 2**k, every week of each,
    the same deals in every call, each row weighing 2**k deals."""
    from workbench.calendar import quarter_bounds
    from workbench.forecast import win_model
    from workbench.forecast.estimator import _history

    states = win_model.forecast_states(log, "ppvvc")
    past = states.as_of(quarter_bounds("2025Q3")[0] - pd.Timedelta(microseconds=1))
    quarters = _history(past.events["timestamp"].min(), "2025Q3", 8)
    full = win_model.training_snapshots(past, quarters)
    assert (full["weight"] == 1 / 13).all()
    monkeypatch.setattr(win_model, "MAX_TRAINING_ROWS", len(full) // 3)
    sample = win_model.training_snapshots(past, quarters)
    assert (sample["weight"] == 4 / 13).all()  # 3x too many rows: one deal in 4
    kept = sample["case_id"].unique()
    assert 0.15 < len(kept) / full["case_id"].nunique() < 0.35
    whole = full[full["case_id"].isin(kept)].drop(columns="weight").reset_index(drop=True)
    pd.testing.assert_frame_equal(sample.drop(columns="weight"), whole)
    again = win_model.training_snapshots(past, quarters, cache={})
    pd.testing.assert_frame_equal(again, sample)


def test_each_training_row_is_its_weeks_snapshot_and_the_cache_keeps_only_what_is_learned_from(log):
    """The rows labelled (quarter, week) are that week's snapshot taken on its own; the cached weekly
    snapshots, which live as long as a backtest, hold neither the labels nor the columns nothing reads."""
    from workbench.calendar import quarter_bounds, week_starts
    from workbench.forecast import win_model
    from workbench.forecast.estimator import _history
    from workbench.snapshot import snapshot

    states = win_model.forecast_states(log, "ppvvc")
    past = states.as_of(quarter_bounds("2025Q3")[0] - pd.Timedelta(microseconds=1))
    quarters = _history(past.events["timestamp"].min(), "2025Q3", 8)
    cache: dict = {}
    train = win_model.training_snapshots(past, quarters, cache=cache)
    assert len(train) == sum(len(v) for v in cache.values()) and len(cache) == 13 * len(quarters)
    for q, w in ((quarters[1], 1), (quarters[-1], 7), (quarters[-1], 13)):
        rows = train[(train["quarter"] == q) & (train["week"] == w)].reset_index(drop=True)
        alone = snapshot(past, as_of=week_starts(q)[w - 1], quarter=q)
        assert len(rows) == len(alone) > 0
        assert rows["case_id"].tolist() == alone["case_id"].tolist()
        np.testing.assert_array_equal(rows["days_left"], alone["days_left"])
        np.testing.assert_array_equal(rows["age_days"], alone["age_days"])
    assert not set(win_model.UNUSED) & set(train.columns)
    assert all(not {"quarter", "week", *win_model.UNUSED} & set(v.columns) for v in cache.values())


def _shocked_history(rng, n_quarters: int = 8, deals_per_week: int = 60, phi: float = 0.04) -> pd.DataFrame:
    """Weekly training rows of deals whose wins share a quarter's shock of relative variance ``phi``."""
    rows = []
    for q in range(n_quarters):
        shock = rng.normal(0.0, np.sqrt(phi))
        for week in range(1, 14):
            p = rng.uniform(0.05, 0.6, deals_per_week)
            amount = rng.lognormal(9, 0.5, deals_per_week)
            won = (rng.random(deals_per_week) < np.clip(p * (1 + shock), 0, 1)).astype(float)
            rows.append(pd.DataFrame({"quarter": f"2024Q{q % 4 + 1}" if q < 4 else f"2025Q{q % 4 + 1}",
                                      "week": week, "rep": rng.choice(["ann", "bob", "cat", "dan"], deals_per_week),
                                      "p": p, "won": won, "amount_if_won": amount, "amount_used": amount,
                                      "closed_amount": amount, "weight": 1 / 13}))
    return pd.concat(rows, ignore_index=True)


def test_the_in_sample_spread_of_a_sample_of_deals_is_the_whole_ones_on_average():
    """Weighted back (Horvitz-Thompson), the company spread measured on one deal in eight averages the
    spread of all the deals. The sample's own variance, if it were taken for the quarters' shocks, would
    add about a quarter here (0.076 against 0.060)."""
    from workbench.forecast.win_model import in_sample_spread

    rng = np.random.default_rng(5)
    train = _shocked_history(rng, deals_per_week=1_000)  # enough deals that the shocks stand out of the noise
    quarters = sorted(train["quarter"].unique())
    whole, _ = in_sample_spread(train, quarters, REPS, 10.0)
    assert whole > 0.01
    sampled = [in_sample_spread(train[rng.random(len(train)) < 1 / 8].assign(weight=8 / 13), quarters, REPS, 10.0)[0]
               for _ in range(60)]
    assert np.mean(sampled) == pytest.approx(whole, rel=0.15)


def test_the_weighted_pipelines_error_on_a_sample_of_deals_is_the_whole_ones_on_average():
    """The weighted pipeline's historical error, measured on one deal in eight weighted back, averages
    (as a variance) the error measured on every deal."""
    from workbench.calendar import quarter_bounds
    from workbench.forecast.baselines import baseline_sigma

    rng = np.random.default_rng(8)
    quarters = [f"{y}Q{q}" for y in (2024, 2025) for q in (1, 2, 3, 4)]
    train = pd.concat([pd.DataFrame({"quarter": q, "week": w, "rep": rng.choice(REPS["rep"], 300), "stage": "S",
                                     "due": True, "amount": rng.lognormal(9, 0.5, 300), "weight": 1 / 13})
                       for q in quarters for w in range(1, 14)], ignore_index=True)
    rates = pd.DataFrame([[0.3] * 13], index=["S"], columns=range(1, 14))
    won = pd.concat([pd.DataFrame({"rep": rng.choice(REPS["rep"], 400), "amount": rng.lognormal(9, 0.5, 400) * s,
                                   "closed_at": quarter_bounds(q)[0] + pd.to_timedelta(rng.uniform(0, 90, 400), "D")})
                     for q, s in zip(quarters, rng.uniform(0.5, 1.5, len(quarters)))], ignore_index=True)

    def company_variance(t: pd.DataFrame) -> pd.Series:
        sig = baseline_sigma(t, won, rates, quarters, REPS).query("level == 'company'").set_index("week")["sigma"]
        return sig**2

    whole = company_variance(train)
    sampled = np.mean([company_variance(train[rng.random(len(train)) < 1 / 8].assign(weight=8 / 13))
                       for _ in range(30)], axis=0)
    np.testing.assert_allclose(sampled, whole, rtol=0.15)
