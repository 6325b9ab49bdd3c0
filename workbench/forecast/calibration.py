"""How wrong the model was on the quarters before: the spread its draws need, and whether the
run rate improves its company number, by week of quarter.

The forecaster's draws already hold the uncertainty it models (which open deals win, how much
new business comes). What it does not model (a good or bad quarter for everyone, a team's
quarter, a rep's) is measured here, out of sample: for each of the last complete quarters, the
model is fitted as it would have been at that quarter's start and asked, at the start of each of
its weeks, what each rep would still book; the answers are compared with what was booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from .. import schema
from ..calendar import DAY, WEEKS, quarter_bounds, week_starts
from ..errors import WorkbenchError
from ..snapshot import DealStates, bookings
from .baselines import run_rate
from .hierarchy import COMPANY, LEVELS, owner

#: Weeks either side of a week whose cases are pooled to measure it (few quarters, many weeks).
WINDOW = 2

#: Past quarters a calibration needs; with fewer, the forecaster measures the spread in sample.
MIN_QUARTERS = 2

#: Rep cases a quantile recalibration needs.
MIN_PIT = 200

#: Weeks either side whose rep cases recalibrate a week's P(hit) and ranges: all of them, since a
#: recalibration map per week from four quarters was noisier than the miscalibration it corrects.
PIT_WINDOW = WEEKS

#: Draws per past forecast when measuring where the actuals fell (PIT).
PIT_DRAWS = 500

#: The levels whose spread is measured; regions are sums of teams, whose spread covers them.
SPREAD_LEVELS = ("company", "team", "rep")

#: The methods the model's company number may be combined with (see :func:`calibrate`).
COMBINED = ("run_rate", "weighted_pipeline")

#: The share of the model's error a combination must save on left-out quarters to be used (not
#: noise), and the share of those quarters in which it must do better.
MIN_GAIN = 0.1
MIN_SHARE_BETTER = 1.0

#: The most the open deals' variance may be scaled up or down (a bound on what a few quarters can
#: say). Down to 0, the open deals would be drawn as certain: a few quarters whose company totals
#: happened to land close to the forecast made every range of the early weeks a point.
KAPPA2_MAX = 4.0
KAPPA2_MIN = 1 / KAPPA2_MAX


@dataclass(frozen=True)
class Calibration:
    """What the past quarters said about the model's errors.

    Attributes
    ----------
    quarters : list of str
        The past quarters measured (each forecast with a model fitted at its start).
    spread : DataFrame
        Index week (1..13); ``kappa2``, the factor on the variance of the open
        deals' wins; ``company``, the relative variance of a common shock on the
        bookings still to come; ``team`` and ``rep``, that of a team's share of
        the company and of a rep's share of the team (see :func:`calibrate`).
    weights : DataFrame
        Index week; columns :data:`COMBINED`: the weight of each other method in
        the company number (0: the model alone; a method is given weight only
        where the combination beat the model on past quarters left out of its
        own estimate).
    cases : DataFrame
        The past cases (:func:`level_cases`).
    source : str
        'past quarters' or, when too few could be measured, 'in sample'.
    pit : DataFrame or None
        week, pit: the probability integral transforms of the reps' past cases,
        where in its forecast distribution (drawn with this calibration) each
        rep's actual bookings fell. Uniform if the reps' forecasts are
        calibrated; :meth:`levels` corrects the reps' ranges where they are not
        (with the cases within :data:`PIT_WINDOW` weeks of the forecast's week),
        and :meth:`p_hit` their P(hit quota) the same way.
    """

    quarters: list[str]
    spread: pd.DataFrame
    weights: pd.DataFrame
    cases: pd.DataFrame
    source: str = "past quarters"
    pit: pd.DataFrame | None = None

    def sd(self, week: int) -> dict[str, float]:
        """The log-normal SDs ``sqrt(log(1 + phi))`` of the shocks in ``week``
        (:func:`~workbench.forecast.simulation.shock_factors`)."""
        row = self.spread.loc[int(np.clip(week, 1, WEEKS))].clip(lower=0.0)
        return {level: float(np.sqrt(np.log1p(row[level]))) for level in SPREAD_LEVELS}

    @cached_property
    def df(self) -> dict[str, float]:
        """The independent cases behind the company's and the teams' spread: one per past quarter at the
        company, one per team and quarter at team level (none in sample). Computed once: every forecast
        drawn with this calibration reads it."""
        if not self.quarters or self.cases.empty:
            return {}
        teams = self.cases[self.cases["level"] == "team"].groupby("quarter")["entity"].nunique().sum()
        return {"company": float(len(self.quarters)), "team": float(teams)}

    def kappa(self, week: int) -> float:
        """The factor on the open deals' deviations from their expectation in ``week`` (sqrt of ``kappa2``)."""
        return float(np.sqrt(max(float(self.spread.loc[int(np.clip(week, 1, WEEKS)), "kappa2"]), 0.0)))

    def _pit(self, week: int) -> np.ndarray | None:
        """The sorted PIT values of the rep cases within :data:`PIT_WINDOW` weeks of ``week``, if enough."""
        if self.pit is None:
            return None
        near = np.sort(self.pit.loc[(self.pit["week"] - week).abs() <= PIT_WINDOW, "pit"].to_numpy(float))
        return near if near.size >= MIN_PIT else None

    def levels(self, probs, week: int) -> np.ndarray:
        """The quantile levels of a rep's draws that give its calibrated ``probs`` quantiles in ``week``
        (quantile recalibration: the past cases' PIT quantiles; ``probs`` itself without them)."""
        probs = np.asarray(probs, float)
        pit = self._pit(week)
        return probs if pit is None else np.quantile(pit, probs)

    def p_hit(self, p, week: int) -> np.ndarray:
        """Calibrated P(hit quota) of reps whose share ``p`` of draws is at or above quota in ``week``.

        The quantile recalibration of :meth:`levels` read at the quota: the share of the past cases'
        PIT values above ``1 - p``, so that a rep's P(hit quota) and its P10..P90 tell the same story
        (a quota at the calibrated P90 is hit with probability 0.1). ``p`` itself without enough past
        cases, and a share of 0 or 1, where every draw agrees, as it is.

        Examples
        --------
        >>> cal = in_sample(0.0, 0.0)
        >>> cal = Calibration([], cal.spread, cal.weights, cal.cases,
        ...                   pit=pd.DataFrame({"week": 5, "pit": np.linspace(0.25, 0.75, 1001)}))
        >>> cal.p_hit([0.0, 0.3, 0.5, 0.6], week=5).round(2).tolist()  # draws too wide: sharper
        [0.0, 0.1, 0.5, 0.7]
        """
        p = np.asarray(p, float)
        pit = self._pit(week)
        if pit is None:
            return p
        recalibrated = 1 - np.searchsorted(pit, 1 - p, side="right") / pit.size
        return np.where((p > 0) & (p < 1), recalibrated, p)

    def weight(self, week: int) -> dict[str, float]:
        """The weight of each of :data:`COMBINED` in the company number in ``week``."""
        return {k: float(v) for k, v in self.weights.loc[int(np.clip(week, 1, WEEKS))].items()}


def in_sample(company: float, team: float) -> Calibration:
    """A calibration from the history's own spread (see ``win_model.in_sample_spread``), the same every week."""
    weeks = pd.Index(range(1, WEEKS + 1), name="week")
    spread = pd.DataFrame({"kappa2": 1.0, "company": company, "team": team, "rep": 0.0}, index=weeks)
    return Calibration([], spread, pd.DataFrame(0.0, index=weeks, columns=list(COMBINED)), pd.DataFrame(),
                       source="in sample")


def past_cases(estimator, past: DealStates, quarters: list[str], *, quotas, reps,
               cache: dict | None) -> tuple[pd.DataFrame, list]:
    """Per rep, the forecast of each week of each of ``quarters`` by a model fitted at its start, and the actual.

    ``estimator`` is cloned without calibration (a calibration of the calibration would
    need quarters before those). A quarter the model cannot be fitted for (too little
    history then) is left out. ``cache`` keeps each quarter's cases: they depend only on
    the events up to that quarter's end and on the model's configuration.

    Returns
    -------
    cases : DataFrame
        quarter, week and the columns of :meth:`QuotaForecast.moments`, with
        weighted_pipeline, actual (booked in the quarter) and elapsed_days.
    forecasts : list of (QuotaForecast, Series)
        Each week's forecast, slimmed to what drawing it needs (:meth:`QuotaForecast.for_draws`),
        and the reps' actual bookings (for :func:`pit_values`).
    """
    from sklearn.base import clone

    base = clone(estimator).set_params(calibration_quarters=0)
    key_params = tuple(sorted((k, repr(v)) for k, v in base.get_params().items() if k not in ("seed", "n_draws")))
    won = bookings(past)
    won = won.assign(rep=owner(won))
    cache = {} if cache is None else cache
    frames, forecasts = [], []
    for q in quarters:
        key = ("calibration", q, key_params)
        if key not in cache:
            start, end = quarter_bounds(q)
            try:
                model = clone(base).fit(past.as_of(start), as_of=start, quotas=quotas, reps=reps, cache=cache)
            except WorkbenchError:
                continue
            in_q = won[(won["closed_at"] >= start) & (won["closed_at"] < end)]
            actual = in_q.groupby(schema.REP)[schema.AMOUNT].sum()
            rows, made = [], []
            for w, t in enumerate(week_starts(q), start=1):
                forecast = model.predict(past, as_of=t)  # which reads nothing after t
                m = forecast.moments()
                wp = forecast.baselines().query("level == 'rep'").set_index("entity")["weighted_pipeline"]
                m["weighted_pipeline"] = m[schema.REP].map(wp).fillna(0.0)
                m["actual"] = m[schema.REP].map(actual).fillna(0.0)
                m["elapsed_days"] = (t - start) / DAY
                m.insert(0, "week", w)
                rows.append(m)
                made.append((forecast.for_draws(), actual))
            cache[key] = (pd.concat(rows, ignore_index=True).assign(quarter=q), made)
        frames.append(cache[key][0])
        forecasts += cache[key][1]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), forecasts


def pit_values(forecasts: list, calibration: Calibration, *, seed: int = 0) -> pd.DataFrame:
    """Where each rep's actual bookings fell in its past forecast's draws, drawn with ``calibration``.

    The randomised probability integral transform: the share of draws below the
    actual plus a uniform share of those equal to it (a rep with nothing open
    books exactly what it has closed, a tie every draw).

    Returns
    -------
    DataFrame
        week (of quarter of the forecast), pit; and where the rep had a quota,
        p_hit (the share of its draws at or above it) and hit (1 if the actual was).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, (forecast, actual) in enumerate(forecasts):
        sim = forecast.simulate(n_draws=PIT_DRAWS, seed=seed + i, calibration=calibration)
        names, draws = sim.level_draws("rep")
        a = pd.Series(names).map(actual).fillna(0.0).to_numpy(float)
        below = (draws < a[None, :] - 1e-9).mean(axis=0)
        tied = (np.abs(draws - a[None, :]) <= 1e-9).mean(axis=0)
        quota = pd.Series(names).map(forecast.quotas()["rep"]).to_numpy(float)
        with np.errstate(invalid="ignore"):
            p_hit = np.where(np.isnan(quota), np.nan, (draws >= quota[None, :]).mean(axis=0))
            hit = np.where(np.isnan(quota), np.nan, (a >= quota).astype(float))
        out.append(pd.DataFrame({"week": forecast.week, "pit": below + rng.uniform(size=len(a)) * tied,
                                 "p_hit": p_hit, "hit": hit}))
    return (pd.concat(out, ignore_index=True) if out
            else pd.DataFrame({"week": [], "pit": [], "p_hit": [], "hit": []}))


def level_cases(per_rep: pd.DataFrame, quarter_days: pd.Series) -> pd.DataFrame:
    """The rep cases summed to each level.

    Returns
    -------
    DataFrame
        quarter, week, level, entity, closed, pipeline, new_business, expected
        (their sum), pipeline_var (the deals' Bernoulli variances), new_business_var
        (compound Poisson, whose gamma mixing all of a quarter's new deals share),
        actual (booked in the whole quarter), run_rate, weighted_pipeline.
    """
    frames = []
    r = per_rep.assign(company=COMPANY)
    for level in LEVELS:
        key = schema.REP if level == "rep" else level
        g = (r.groupby(["quarter", "week", key], sort=True)
             [["closed", "pipeline", "pipeline_var", "new_business", "weighted_pipeline", "actual", "elapsed_days"]]
             .agg({"closed": "sum", "pipeline": "sum", "pipeline_var": "sum", "new_business": "sum",
                   "weighted_pipeline": "sum", "actual": "sum", "elapsed_days": "first"})
             .reset_index().rename(columns={key: "entity"}))
        nb_par = r.groupby(["quarter", "week"])[["nb_m2_over_m1", "nb_dispersion"]].first()
        g = g.join(nb_par, on=["quarter", "week"])
        g["expected"] = g["pipeline"] + g["new_business"]
        g["new_business_var"] = g["new_business"] * g["nb_m2_over_m1"] + g["nb_dispersion"] * g["new_business"] ** 2
        g["run_rate"] = run_rate(g["closed"].to_numpy(float), g["elapsed_days"].to_numpy(float),
                                 g["quarter"].map(quarter_days).to_numpy(float))
        g.insert(2, "level", level)
        frames.append(g)
    cols = ["quarter", "week", "level", "entity", "closed", "pipeline", "new_business", "expected", "pipeline_var",
            "new_business_var", "actual", "run_rate", "weighted_pipeline"]
    return pd.concat(frames, ignore_index=True)[cols]


def calibrate(per_rep: pd.DataFrame, *, combine: bool = True) -> Calibration:
    """Measure the spread and the run rate's weight from :func:`past_cases`.

    *Spread.* Around week ``w`` (``w`` +/- :data:`WINDOW`) the squared errors of
    what each level still booked are matched to its variance in the draws
    (method of moments; non-negative least squares, each case in units of its
    own size). At the company:

        kappa^2 * pipeline_var + new_business_var + phi_c * E^2

    ``kappa^2`` scales the open deals' Bernoulli variance: a model that cannot
    tell a deal's chances as sharply as the deal's own history decides them
    overstates it (``kappa < 1``), one that misses what moves deals together
    understates it (kept between :data:`KAPPA2_MIN` and :data:`KAPPA2_MAX`);
    ``phi_c`` is the relative variance of a common shock (a good
    or bad quarter for everyone). How the total splits among teams, and a
    team's among its reps, is less certain than the company total: the team
    cases then give the variance ``phi_t`` of a team's share and the rep cases
    ``phi_r`` of a rep's share of its team (:func:`~workbench.forecast.simulation.shock_factors`),
    each on top of what the level above explains.

    *Combination.* At the company, the run rate (bookings so far scaled to the
    quarter) and the weighted pipeline carry information the model may lack
    (deals not yet in the CRM, the season of the quarter, the reps' own close
    dates). The weights ``lam`` (non-negative, summing to at most 1) minimising
    the squared error of ``model + sum of lam_k * (method_k - model)`` are fitted
    around each week; they are kept only where, each past quarter left out in
    turn, the combination's absolute error was at least :data:`MIN_GAIN` below the
    model's and lower in every one of them (:data:`MIN_SHARE_BETTER`), else they are 0
    (combinations of simple methods win forecasting competitions, but only a
    backtest says whether this one does here).
    """
    quarters = sorted(per_rep["quarter"].unique())
    days = pd.Series({q: (quarter_bounds(q)[1] - quarter_bounds(q)[0]) / DAY for q in quarters})
    cases = level_cases(per_rep, days)
    weeks = pd.Index(range(1, WEEKS + 1), name="week")
    c = cases.assign(e2=cases["expected"] ** 2)
    # What is left once the new business's own variance is taken out.
    c["excess"] = (c["actual"] - c["closed"] - c["expected"]) ** 2 - c["new_business_var"]
    comp, team, rep = (c[c["level"] == lv].copy() for lv in SPREAD_LEVELS)
    team_of = per_rep.drop_duplicates(["quarter", "week", schema.REP]).set_index(
        ["quarter", "week", schema.REP])[schema.TEAM]
    rep["team"] = team_of.reindex(pd.MultiIndex.from_frame(rep[["quarter", "week", "entity"]])).to_numpy()
    # The variance a unit shock of the shares gives a member of a group (see shock_factors):
    # E^2 (1 - 2w + sum of w^2), w its share of the group's expected bookings.
    team["split"] = team["e2"] * _split_factor(team, ["quarter", "week"])
    rep["split"] = rep["e2"] * _split_factor(rep, ["quarter", "week", "team"])
    rep["team_split"] = rep["e2"] * pd.Series(_split_factor(team, ["quarter", "week"]), index=pd.MultiIndex.from_frame(
        team[["quarter", "week", "entity"]])).reindex(pd.MultiIndex.from_frame(rep[["quarter", "week", "team"]])
                                                      ).fillna(0.0).to_numpy()
    spread = pd.DataFrame(0.0, index=weeks, columns=["kappa2", *SPREAD_LEVELS])
    weight = pd.DataFrame(0.0, index=weeks, columns=list(COMBINED))
    for w in weeks:
        near = [x[(x["week"] - w).abs() <= WINDOW] for x in (comp, team, rep)]
        spread.loc[w] = _spread(*near)
        if combine:
            weight.loc[w] = _combination_weights(near[0])
    return Calibration(quarters, spread, weight, cases)


def _split_factor(cases: pd.DataFrame, group: list[str]) -> np.ndarray:
    """1 - 2w + the group's sum of w^2, w = each case's share of its group's expected bookings."""
    total = cases.groupby(group)["expected"].transform("sum")
    w = (cases["expected"] / total.where(total > 0)).fillna(0.0)
    sum_w2 = (w ** 2).groupby([cases[g] for g in group]).transform("sum")
    return (1 - 2 * w + sum_w2).to_numpy(float)


def _spread(comp: pd.DataFrame, team: pd.DataFrame, rep: pd.DataFrame) -> list[float]:
    """kappa^2, phi_c, phi_t, phi_r for one window of weeks (see :func:`calibrate`)."""
    if comp.empty or comp["e2"].sum() <= 0:
        return [1.0, 0.0, 0.0, 0.0]
    zero = np.zeros
    blocks = [
        (comp, np.column_stack([comp["pipeline_var"], comp["e2"], zero(len(comp)), zero(len(comp))])),
        (team, np.column_stack([team["pipeline_var"], team["e2"], team["split"], zero(len(team))])),
        (rep, np.column_stack([rep["pipeline_var"], rep["e2"], rep["team_split"], rep["split"]])),
    ]
    X, y = [], []
    for cases, x in blocks:
        size = x.sum(axis=1)
        ok = size > 0
        if not ok.any():
            continue
        # Each case in units of its own size; each level weighs the same in total (the company's few
        # cases say most about the total, the reps' many about the split).
        w = 1.0 / np.sqrt(ok.sum())
        X.append(x[ok] / size[ok, None] * w)
        y.append(cases["excess"].to_numpy(float)[ok] / size[ok] * w)
    kappa2, phi_c, phi_t, phi_r = nnls(np.vstack(X), np.concatenate(y))[0]
    if not KAPPA2_MIN <= kappa2 <= KAPPA2_MAX:
        return _spread_with_kappa2(float(np.clip(kappa2, KAPPA2_MIN, KAPPA2_MAX)), X, y)
    return [float(kappa2), float(phi_c), float(phi_t), float(phi_r)]


def _spread_with_kappa2(kappa2: float, X: list[np.ndarray], y: list[np.ndarray]) -> list[float]:
    """The phis given kappa^2 (used where the data would ask for more than :data:`KAPPA2_MAX` or less than
    :data:`KAPPA2_MIN`)."""
    A, b = np.vstack(X), np.concatenate(y)
    phi = nnls(A[:, 1:], b - kappa2 * A[:, 0])[0]
    return [float(kappa2), *map(float, phi)]


def _lams(rows: pd.DataFrame) -> np.ndarray:
    """The weights of :data:`COMBINED` minimising the squared error of the combination on ``rows``."""
    model = (rows["closed"] + rows["expected"]).to_numpy(float)
    # A method without a value (the run rate on a quarter's first day) leaves the model as it is.
    D = np.column_stack([np.nan_to_num(rows[k].to_numpy(float) - model) for k in COMBINED])
    lam = nnls(D, rows["actual"].to_numpy(float) - model)[0] if (D ** 2).sum() > 0 else np.zeros(len(COMBINED))
    return lam / lam.sum() if lam.sum() > 1 else lam


def _combined(rows: pd.DataFrame, lam: np.ndarray) -> np.ndarray:
    model = (rows["closed"] + rows["expected"]).to_numpy(float)
    return model + sum(l * np.nan_to_num(rows[k].to_numpy(float) - model) for l, k in zip(lam, COMBINED))


def _combination_weights(company: pd.DataFrame) -> np.ndarray:
    """The weights of :data:`COMBINED` for these company cases, or 0 where leaving each quarter out they did not help."""
    if company["quarter"].nunique() < MIN_QUARTERS:
        return np.zeros(len(COMBINED))
    model_err, combined_err, better = 0.0, 0.0, 0
    quarters = company["quarter"].unique()
    for q in quarters:
        out, rest = company[company["quarter"] == q], company[company["quarter"] != q]
        actual = out["actual"].to_numpy(float)
        m = float(np.abs(actual - (out["closed"] + out["expected"]).to_numpy(float)).sum())
        c = float(np.abs(actual - _combined(out, _lams(rest))).sum())
        model_err, combined_err, better = model_err + m, combined_err + c, better + (c < m)
    # A few quarters decide this: the combination must win overall by a margin and in most quarters.
    wins = combined_err < (1 - MIN_GAIN) * model_err and better >= MIN_SHARE_BETTER * len(quarters)
    return _lams(company) if wins else np.zeros(len(COMBINED))
