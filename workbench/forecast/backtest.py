"""Honest backtests of the quota-attainment forecast.

For every past quarter with enough history and every chosen week of it, the
forecast is made as it would have been on the morning of that week's first day:
the snapshot is rebuilt from the events before that date, the models learn only
from what was known then (:class:`workbench.forecast.QuotaForecaster` is handed
the log already cut at the as-of date), and the forecast is compared with the
bookings the quarter actually ended with.

Two baselines are scored the same way, computed as a CRM would
(:mod:`~workbench.forecast.baselines`): the weighted pipeline (the deals due
this quarter at their stage's rate of winning in the rest of it, with a normal
P(hit quota) around it using its own historical error) and the run rate
(bookings so far scaled to the whole quarter).

Metrics, by week of quarter and level (:func:`score`): WAPE (sum of absolute
errors over the sum of actuals), the mean and median of each case's relative
error, bias (sum of errors over the sum of actuals; positive means
over-forecast), the cases each method came closest in, coverage of the 80%
interval (P10..P90) with its count of cases, the Brier score of P(hit quota)
against the base rate's (always the historical hit frequency), and a
reliability table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sklearn.base import BaseEstimator, clone

from ..progress import tqdm
from .. import schema
from ..calendar import WEEKS, quarter_bounds, quarter_of, shift_quarter, to_utc, week_starts
from ..errors import WorkbenchError
from ..profile import get_profile
from ..snapshot import DealStates, bookings
from .estimator import QuotaForecaster
from .hierarchy import COMPANY, LEVELS, NO_REGION, NO_TEAM, owner
from .win_model import forecast_states

#: Forecast columns that must depend only on what was known at as_of.
FORECAST_COLUMNS = ("expected_bookings", "p10", "p50", "p90", "p_hit_quota", "closed_won_to_date",
                    "pipeline_expected", "new_business_expected", "weighted_pipeline",
                    "weighted_pipeline_p_hit", "run_rate", "base_rate_p_hit")


def backtest_quarters(
    log: pd.DataFrame | DealStates,
    *,
    n_quarters: int = 8,
    min_history: int = 4,
    end: pd.Timestamp | str | None = None,
) -> list[str]:
    """The last ``n_quarters`` complete quarters of the log with ``min_history`` complete quarters before them."""
    ev = log.events if isinstance(log, DealStates) else log
    first, last = ev[schema.TIMESTAMP].min(), ev[schema.TIMESTAMP].max()
    end = to_utc(end) if end is not None else last
    q = shift_quarter(quarter_of(end), -1)
    out = []
    while len(out) < n_quarters:
        history_start = quarter_bounds(shift_quarter(q, -min_history))[0]
        if history_start < first.floor("D") - pd.Timedelta(days=6):
            break
        out.insert(0, q)
        q = shift_quarter(q, -1)
    return out


def _levels(per_rep: pd.DataFrame, value_cols: list[str]) -> pd.DataFrame:
    """Sum per-rep values up to team, region and company (tidy: level, entity, values)."""
    frames = []
    per_rep = per_rep.assign(company=COMPANY)
    for level in LEVELS:
        key = schema.REP if level == "rep" else level
        g = per_rep.groupby(key, sort=True)[value_cols].sum().reset_index().rename(columns={key: "entity"})
        g.insert(0, "level", level)
        frames.append(g)
    return pd.concat(frames, ignore_index=True)


class Backtest(BaseEstimator):
    """Rolling-origin backtest of a forecaster and two baselines.

    Parameters
    ----------
    estimator : QuotaForecaster
        The forecaster to test, configured (draws, seed, profile...); each
        tested quarter gets a clone of it whose seed is ``seed + i``.
    n_quarters : int
        How many past quarters to test (the most recent complete ones).
    weeks : iterable of int
        Weeks of the quarter (1..13) to forecast at, each as of the week's first day.
    min_history : int
        Complete quarters of history a tested quarter needs before it.
    progress : bool
        Show a progress bar.

    Attributes
    ----------
    quarters_ : list of str
    results_ : DataFrame
        One row per quarter, week, level and entity: as_of, actual, quota, hit,
        the forecast (expected_bookings, p10, p50, p90, p_hit_quota...) and the
        baselines (weighted_pipeline, weighted_pipeline_p_hit, run_rate).
    new_business_models_ : Series
        The new-business model chosen in each quarter.
    skipped_quarters_ : Series
        Quarters not tested because the forecaster could not learn from what
        came before them, with the reason.

    Examples
    --------
    >>> from workbench.forecast import QuotaForecaster
    >>> backtest = Backtest(QuotaForecaster(n_draws=2000), weeks=[4, 8], progress=False)
    >>> backtest.fit(log, quotas=quotas, reps=reps).metrics()  # doctest: +SKIP
    """

    def __init__(
        self,
        estimator: QuotaForecaster | None = None,
        *,
        n_quarters: int = 8,
        weeks=range(1, WEEKS + 1),
        min_history: int = 4,
        progress: bool = True,
    ) -> None:
        self.estimator = estimator
        self.n_quarters = n_quarters
        self.weeks = weeks
        self.min_history = min_history
        self.progress = progress

    def fit(
        self,
        log: pd.DataFrame | DealStates,
        *,
        quotas: pd.DataFrame | None = None,
        reps: pd.DataFrame | None = None,
        quarters: list[str] | None = None,
        cache: dict | None = None,
    ) -> Backtest:
        """Forecast every tested quarter at every chosen week and record what happened.

        Parameters
        ----------
        log : DataFrame or DealStates
            The whole event log (the future of each as-of date is used only
            for the actuals).
        quotas, reps : DataFrame, optional
            As for :meth:`QuotaForecaster.fit`.
        quarters : list of str, optional
            The quarters to test (default: :func:`backtest_quarters`).
        cache : dict, optional
            Shared with :meth:`QuotaForecaster.fit` on the same log (its weekly snapshots and
            the calibration's past forecasts), so that neither computes them twice.
        """
        estimator = QuotaForecaster(n_draws=2_000) if self.estimator is None else self.estimator
        states = forecast_states(log, get_profile(estimator.profile, log))
        weeks = sorted(set(int(w) for w in self.weeks))
        if not weeks or weeks[0] < 1 or weeks[-1] > WEEKS:
            raise WorkbenchError(f"weeks must be between 1 and {WEEKS}, got {weeks}.", hint="e.g. weeks=range(4, 14).")
        self.quarters_ = quarters or backtest_quarters(states, n_quarters=self.n_quarters, min_history=self.min_history)
        if not self.quarters_:
            raise WorkbenchError("no quarter of the log has enough history to backtest.",
                                 hint=f"give a log with at least {self.min_history + 1} complete quarters, "
                                      "or lower min_history.")
        won = bookings(states)
        won = won.assign(rep=owner(won))
        results, chosen, skipped = [], {}, {}
        cache = {} if cache is None else cache
        bar = tqdm(total=len(self.quarters_) * len(weeks), disable=not self.progress, desc="backtest")
        for i, q in enumerate(self.quarters_):
            dates = [week_starts(q)[w - 1] for w in weeks]
            f = clone(estimator).set_params(seed=estimator.seed + i)
            try:
                # The forecaster is fitted on the log cut at its as-of date; predict() reads nothing later
                # than its as_of (tests/test_as_of.py), so the weeks after are not cut again.
                f.fit(states.as_of(dates[0]), as_of=dates[0], quotas=quotas, reps=reps, cache=cache)
            except WorkbenchError as exc:  # too little history then: that quarter is not tested
                skipped[q] = exc.problem
                bar.update(len(weeks))
                continue
            chosen[q] = f.new_business_model_.method
            actual = self._actuals(won, q, f)
            for w, as_of in zip(weeks, dates):
                forecast = f.predict(states, as_of=as_of)
                fc = forecast.table().merge(forecast.baselines(), on=["level", "entity"], how="left")
                row = actual.merge(fc, on=["level", "entity"], how="outer")
                row["actual"] = row["actual"].fillna(0.0)
                row.insert(0, "as_of", as_of)
                row.insert(0, "week", w)
                row.insert(0, "quarter", q)
                results.append(row)
                bar.update()
        bar.close()
        self.skipped_quarters_ = pd.Series(skipped, name="reason", dtype=object)
        if not results:
            raise WorkbenchError(f"no quarter could be backtested: {next(iter(skipped.values()))}",
                                 hint="give a longer log.")
        res = pd.concat(results, ignore_index=True)
        res["hit"] = np.where(res["quota"].notna(), (res["actual"] >= res["quota"]).astype(float), np.nan)
        self.results_ = res
        self.new_business_models_ = pd.Series(chosen, name="new_business_model")
        return self

    @staticmethod
    def _actuals(won: pd.DataFrame, quarter: str, f: QuotaForecaster) -> pd.DataFrame:
        start, end = quarter_bounds(quarter)
        wq = won[(won["closed_at"] >= start) & (won["closed_at"] < end)]
        per_rep = wq.groupby(schema.REP)[schema.AMOUNT].sum().rename("actual").reset_index()
        org = f.org_.set_index(schema.REP)
        per_rep[schema.TEAM] = per_rep[schema.REP].map(org[schema.TEAM]).fillna(NO_TEAM)
        per_rep[schema.REGION] = per_rep[schema.REP].map(org[schema.REGION]).fillna(NO_REGION)
        return _levels(per_rep, ["actual"])

    # ------------------------------------------------------------------ metrics
    def _check_fitted(self) -> None:
        if not hasattr(self, "results_"):
            raise WorkbenchError("the backtest has not been run.", hint="call fit(log, quotas) first.")

    def metrics(self, by: tuple[str, ...] = ("level", "week")) -> pd.DataFrame:
        """WAPE, bias, 80% coverage and Brier score of the forecast and the baselines.

        Parameters
        ----------
        by : tuple of str
            Grouping columns of :attr:`results_` (default: level and week).

        Returns
        -------
        DataFrame
            by-columns and the columns of :func:`score`.
        """
        self._check_fitted()
        return self.results_.groupby(list(by), sort=True).apply(score, include_groups=False).reset_index()

    def summary(self, level: str = "company", *, weeks=None) -> pd.DataFrame:
        """The methods side by side at one level (pooled over ``weeks``, default all tested).

        Returns
        -------
        DataFrame
            Index method ('forecast', 'weighted pipeline', 'run rate'); mean_error,
            median_error, bias, wins (cases where it was the closest), cases;
            coverage_80 with n_covered of n_interval for the forecast; brier of
            P(hit quota) for the forecast and the weighted pipeline, and a row
            'base rate' with its Brier score.
        """
        self._check_fitted()
        r = self.results_[self.results_["level"] == level]
        if weeks is not None:
            r = r[r["week"].isin(list(weeks))]
        m = score(r)
        rows = {}
        for name in METHODS:
            sfx = "" if name == "forecast" else f"_{name}"
            rows[name.replace("_", " ")] = {"mean_error": m["mean_error" + sfx], "median_error": m["median_error" + sfx],
                                            "bias": m["bias" + sfx], "wins": m["wins" + sfx], "cases": m["n"],
                                            "brier": m.get("brier" + sfx, np.nan)}
        rows["forecast"].update(coverage_80=m["coverage_80"], n_covered=m["n_covered"], n_interval=m["n_interval"])
        rows["base rate"] = {"brier": m["brier_base_rate"], "cases": m["n_quota"]}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")

    def reliability(self, level: str = "rep", *, bins: int = 10, from_week: int = 1) -> pd.DataFrame:
        """Reliability table of P(hit quota): per probability bin, mean forecast and observed frequency.

        Returns
        -------
        DataFrame
            model ('forecast' / 'weighted_pipeline'), bin_low, bin_high, n, mean_p, observed.
        """
        self._check_fitted()
        r = self.results_
        r = r[(r["level"] == level) & (r["week"] >= from_week) & r["hit"].notna()]
        return reliability_table(r, bins=bins)


def reliability_table(results: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """Bin P(hit quota) of the forecast and the weighted pipeline; observed hit rate per bin."""
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for model, col in (("forecast", "p_hit_quota"), ("weighted_pipeline", "weighted_pipeline_p_hit")):
        r = results[results[col].notna()]
        b = np.clip(np.digitize(r[col], edges[1:-1]), 0, bins - 1)
        g = r.groupby(b).agg(n=("hit", "size"), mean_p=(col, "mean"), observed=("hit", "mean"))
        g["bin_low"], g["bin_high"] = edges[g.index], edges[g.index + 1]
        g.insert(0, "model", model)
        out.append(g.reset_index(drop=True))
    return pd.concat(out, ignore_index=True)[["model", "bin_low", "bin_high", "n", "mean_p", "observed"]]


#: The methods scored: name -> column of the results holding its number.
METHODS = {"forecast": "expected_bookings", "weighted_pipeline": "weighted_pipeline", "run_rate": "run_rate"}


def score(r: pd.DataFrame) -> pd.Series:
    """The backtest metrics of a set of result rows (see :meth:`Backtest.metrics`).

    For each method (the forecast, then ``_weighted_pipeline`` and ``_run_rate``):
    wape (sum of absolute errors / sum of actuals), mean_error and median_error
    (of each case's absolute error relative to its actual, cases with an actual
    above 0), bias (sum of errors / sum of actuals; positive over-forecasts) and
    wins (cases where it was the closest of the three). coverage_80 is the share
    of the ``n_interval`` cases whose actual fell in P10..P90 (``n_covered``);
    brier scores P(hit quota) over the ``n_quota`` cases with a quota, against the
    weighted pipeline's and the base rate's (always the historical hit frequency).
    """
    a = r["actual"].to_numpy(float)
    out: dict[str, float] = {"n": len(r), "actual": a.sum()}
    errors = {}
    for name, col in METHODS.items():
        sfx = "" if name == "forecast" else f"_{name}"
        f = r[col].to_numpy(float)
        ok = ~np.isnan(f)
        errors[name] = np.where(ok, np.abs(f - a), np.inf)
        rel = np.abs(f - a)[ok & (a > 0)] / a[ok & (a > 0)]
        denom = a[ok].sum()
        out["wape" + sfx] = float(np.abs(f[ok] - a[ok]).sum() / denom) if denom > 0 else np.nan
        out["mean_error" + sfx] = float(rel.mean()) if rel.size else np.nan
        out["median_error" + sfx] = float(np.median(rel)) if rel.size else np.nan
        out["bias" + sfx] = float((f[ok] - a[ok]).sum() / denom) if denom > 0 else np.nan
    best = np.argmin(np.column_stack(list(errors.values())), axis=1) if len(r) else np.zeros(0, int)
    for i, name in enumerate(METHODS):
        out["wins" + ("" if name == "forecast" else f"_{name}")] = int((best == i).sum())
    has = r["p10"].notna()
    inside = ((r["p10"] <= r["actual"]) & (r["actual"] <= r["p90"]))[has]
    out["coverage_80"] = float(inside.mean()) if has.any() else np.nan
    out["n_covered"], out["n_interval"] = int(inside.sum()), int(has.sum())
    q = r[r["hit"].notna()]

    def brier(col: str) -> float:
        qq = q[q[col].notna()] if col in q.columns else q.iloc[:0]
        return float(((qq[col] - qq["hit"]) ** 2).mean()) if len(qq) else np.nan

    out["brier"] = brier("p_hit_quota")
    out["brier_weighted_pipeline"] = brier("weighted_pipeline_p_hit")
    out["brier_base_rate"] = brier("base_rate_p_hit")
    out["n_quota"] = len(q)
    return pd.Series(out)
