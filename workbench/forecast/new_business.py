"""New business: deals created after the as-of date and won before quarter end, forecast week by week."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import schema
from ..calendar import DAY, WEEKS, quarter_bounds, week_of_quarter
from ..errors import WorkbenchError
from .hierarchy import owner

def _ets_forecast(y: np.ndarray) -> np.ndarray:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(y, seasonal="add", seasonal_periods=WEEKS,
                                   initialization_method="estimated").fit()
        return np.clip(np.asarray(fit.forecast(WEEKS)), 0, None)


def _seasonal_naive(y: np.ndarray) -> np.ndarray:
    return y[-WEEKS:].copy()


_NB_METHODS = {"ets": _ets_forecast, "seasonal_naive": _seasonal_naive}


def tail_sums(x: np.ndarray) -> np.ndarray:
    """Sum from each week to the quarter's end (last axis)."""
    return np.cumsum(x[..., ::-1], axis=-1)[..., ::-1]


@dataclass(frozen=True)
class NewBusinessModel:
    """The fitted new-business model: weekly forecast of the quarter and its uncertainty.

    Attributes
    ----------
    method : str
        'ets' or 'seasonal_naive' (whichever won on the history), or 'none'
        when no deal of the history was created and won within one quarter.
    weekly : ndarray (13,)
        Forecast amount won in the quarter from deals created in each week.
    scores : dict
        Rolling-origin mean absolute error of each candidate.
    sizes : ndarray
        Historical new-business deal amounts (the size distribution drawn from).
    dispersion : float
        Variance of the gamma multiplier of the Poisson rate.
    rep_history : Series
        Historical new-business amount per rep.
    rep_share : Series
        Share of new business per rep of the forecast quarter (see :meth:`for_reps`).
    """

    method: str
    weekly: np.ndarray
    scores: dict
    sizes: np.ndarray
    dispersion: float
    rep_history: pd.Series
    rep_share: pd.Series

    def for_reps(self, reps: list[str]) -> NewBusinessModel:
        """The model with new business shared among ``reps`` (history, smoothed for new reps)."""
        return replace(self, rep_share=rep_shares(self.rep_history, reps))

    def expected(self, as_of: pd.Timestamp, quarter: str) -> float:
        """Expected new business from ``as_of`` to the quarter's end (the as-of week pro rata)."""
        start, end = quarter_bounds(quarter)
        edges = [start + pd.Timedelta(days=7 * i) for i in range(WEEKS)] + [end]
        share = np.array([max(0.0, (edges[i + 1] - max(as_of, edges[i])) / DAY) / ((edges[i + 1] - edges[i]) / DAY)
                          for i in range(WEEKS)])
        return float((self.weekly * np.clip(share, 0, 1)).sum())


def fit_new_business(
    won: pd.DataFrame,
    quarters: list[str],
    *,
    method: str = "auto",
    n_eval: int = 4,
) -> NewBusinessModel:
    """Fit the weekly create-and-win model on complete ``quarters`` (oldest first).

    Parameters
    ----------
    won : DataFrame
        Won deals (:func:`workbench.snapshot.bookings`) known at fit time.
    quarters : list of str
        Complete quarters to learn from, consecutive, oldest first.
    method : {'auto', 'ets', 'seasonal_naive'}
        'auto' keeps whichever has the lower rolling-origin error.
    n_eval : int
        Number of last quarters used as rolling origins.
    """
    nq = len(quarters)
    x = np.zeros((nq, WEEKS))
    sizes, by_rep = [], []
    for i, q in enumerate(quarters):
        start, end = quarter_bounds(q)
        w = won[(won["created"] >= start) & (won["closed_at"] < end)]
        np.add.at(x[i], week_of_quarter(w["created"], q) - 1, w[schema.AMOUNT].to_numpy())
        sizes.append(w[schema.AMOUNT].to_numpy())
        by_rep.append(pd.Series(w[schema.AMOUNT].to_numpy(), index=owner(w).to_numpy()))
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    sizes = sizes[sizes > 0]
    history = pd.concat(by_rep).groupby(level=0).sum() if by_rep else pd.Series(dtype=float)
    share = rep_shares(history, list(history.index))
    if nq == 0 or sizes.size == 0:
        return NewBusinessModel("none", np.zeros(WEEKS), {}, np.zeros(1), 0.0, history, share)

    candidates = ["seasonal_naive", "ets"] if method == "auto" else [method]
    if method not in ("auto", *_NB_METHODS):
        raise WorkbenchError(f"unknown new-business method {method!r}.", hint="use 'auto', 'ets' or 'seasonal_naive'.")
    # ETS needs two full seasons to estimate from.
    min_fit = {"ets": 2, "seasonal_naive": 1}
    origins = list(range(max(1, nq - n_eval), nq))
    errors = {m: [] for m in candidates}
    forecasts = {m: [] for m in candidates}
    for e in origins:
        for m in candidates:
            if e < min_fit[m]:
                continue
            f = _NB_METHODS[m](x[:e].ravel())
            forecasts[m].append((e, f))
            errors[m].append(np.abs(tail_sums(f) - tail_sums(x[e])).mean())
    usable = [m for m in candidates if nq >= min_fit[m]]
    scores = {m: float(np.mean(errors[m])) if errors[m] else np.inf for m in usable}
    # With no rolling origin for a method, fall back to the simpler one.
    best = min(usable, key=lambda m: (scores[m], m != "seasonal_naive"))
    weekly = _NB_METHODS[best](x.ravel())

    # Gamma dispersion so that compound-Poisson variance + level variance = observed squared error.
    m1, m2 = sizes.mean(), (sizes ** 2).mean()
    num, den = 0.0, 0.0
    for e, f in forecasts.get(best, []):
        mu = tail_sums(f)
        err2 = (tail_sums(x[e]) - mu) ** 2
        num += (err2 - (mu / m1) * m2).sum()
        den += (mu ** 2).sum()
    dispersion = float(max(0.0, num / den)) if den > 0 else 0.0
    return NewBusinessModel(best, weekly, scores, sizes, dispersion, history, share)


def rep_shares(amounts: pd.Series, reps: list[str], smoothing: float = 0.5) -> pd.Series:
    """Each rep's share of new business: history plus ``smoothing`` x the average rep's."""
    if not reps:
        return pd.Series(dtype=float)
    hist = amounts.groupby(level=0).sum().reindex(reps, fill_value=0.0) if len(amounts) else pd.Series(0.0, index=reps)
    hist = hist.clip(lower=0)
    prior = smoothing * (hist.mean() if hist.sum() > 0 else 1.0)
    s = hist + prior
    return (s / s.sum()).rename("share")
