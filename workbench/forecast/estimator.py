"""The estimator: :class:`QuotaForecaster` learns from the quarters before the as-of date, and its
:meth:`~QuotaForecaster.predict` returns the forecast as a :class:`~workbench.forecast.results.QuotaForecast`."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.base import BaseEstimator

from .. import schema
from ..calendar import INSTANT, parse_quarter, quarter_bounds, quarter_of, shift_quarter, to_utc
from ..errors import WorkbenchError
from ..io.tables import read_quotas
from ..profile import SalesProcessProfile, get_profile
from ..snapshot import DealStates, bookings, closing_times, due_this_quarter, snapshot, won_by_rep
from .baselines import baseline_sigma, hit_rates, stage_win_rates
from .hierarchy import NO_REGION, NO_TEAM, lookup, org_table, owner
from .new_business import fit_new_business
from .results import QuotaForecast
from .calibration import MIN_QUARTERS, calibrate, in_sample, past_cases, pit_values
from .win_model import (amount_ratios, fit_win_model, forecast_states, imputed_amount, in_sample_spread, shrunk_factors,
                        training_snapshots)


#: Quarters after which a quarter counts half in the rep and team factors.
RECENCY_HALF_LIFE = 2.0

#: What :meth:`QuotaForecaster._learn` sets, and the parameters it does not read.
_LEARNED = ("history_", "org_", "imputed_amount_", "imputed_amount_source_", "closing_times_", "win_model_",
            "rep_factor_", "amount_ratio_", "stage_win_rate_", "baseline_sigma_", "hit_rate_",
            "new_business_model_", "booking_days_", "booking_amounts_")
_NOT_LEARNED = ("n_draws", "seed", "calibration_quarters")


class QuotaForecaster(BaseEstimator):
    """Forecast every rep's, team's, region's and the company's quota attainment.

    See :mod:`workbench.forecast` for the method. scikit-learn's conventions:
    ``__init__`` stores the configuration, :meth:`fit` learns and sets the
    attributes ending in ``_``, ``get_params`` / ``set_params`` / ``clone`` work.

    Parameters
    ----------
    n_draws : int
        Monte Carlo draws (at least 10,000 for reporting).
    seed : int
        Seed of the draws.
    history_quarters : int
        Complete quarters before the as-of quarter the models learn from.
    prior_strength : float
        Shrinkage of rep and team win factors, in expected wins.
    amounts : {'ratio', 'recorded'}
        Open amounts times what the history's won deals booked over their amount
        at each stage, where amounts change before the close; or as recorded.
    new_business : {'auto', 'ets', 'seasonal_naive', 'none'}
        New-business model ('auto' keeps the better one on the history).
    min_n : int
        Deals won or lost before the forecast quarter below which the
        forecaster refuses to learn (a :class:`WorkbenchError` saying so).
    calibration_quarters : int
        Past quarters forecast out of sample to measure the spread the draws
        need and the run rate's weight (:mod:`~workbench.forecast.calibration`);
        0 measures the spread in sample and never combines.
    profile : SalesProcessProfile, name, path or None
        What the activities mean; None takes the profile the log was read with.

    Attributes
    ----------
    quarter_, as_of_ : the forecast quarter and the as-of date fitted at.
    history_ : list of str, the quarters learned from.
    profile_ : the profile used.
    win_model_ : :class:`~workbench.forecast.win_model.WinModel`.
    rep_factor_ : Series, shrunk odds factor per rep.
    amount_ratio_ : Series, per stage, what won deals booked over their amount at the snapshot
        (1 where amounts do not change; ``attrs``: overall, changed).
    imputed_amount_, imputed_amount_source_ : the value of an open deal without an amount (the
        mean won deal of the history, else the median amount of its open deals) and where it comes from.
    calibration_ : :class:`~workbench.forecast.calibration.Calibration`, the spread and the
        combination weights by week of quarter, the reps' recalibration, and where they were measured.
    new_business_model_ : NewBusinessModel (its ``method``: 'ets', 'seasonal_naive' or 'none').
    closing_times_ : :class:`~workbench.snapshot.ClosingTimes`, how long won deals took to close
        (which open deals are due this quarter).
    stage_win_rate_ : DataFrame, stage x week of quarter: the history's due deals' rate of winning
        before the quarter's end (weighted-pipeline baseline).
    baseline_sigma_ : DataFrame, the weighted pipeline's historical error by level and week.
    hit_rate_ : Series, per level, how often the history's entities hit their quota (the base rate).
    org_ : DataFrame, rep -> team, region.
    quotas_ : DataFrame or None, the usable quota rows; ``quotas_set_aside_`` the others, with the reason.
    booking_days_, booking_amounts_ : ndarray, when in their quarter (days) the history's deals were
        won, and their amounts (the shape of the fan chart).

    Examples
    --------
    >>> model = QuotaForecaster(n_draws=2000, seed=0).fit(log, as_of="2026-08-15", quotas=quotas)  # doctest: +SKIP
    >>> model.predict(log).table()  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        n_draws: int = 10_000,
        seed: int = 0,
        history_quarters: int = 8,
        prior_strength: float = 10.0,
        amounts: str = "ratio",
        new_business: str = "auto",
        min_n: int = 30,
        calibration_quarters: int = 4,
        profile: SalesProcessProfile | str | None = None,
    ) -> None:
        self.n_draws = n_draws
        self.seed = seed
        self.history_quarters = history_quarters
        self.prior_strength = prior_strength
        self.amounts = amounts
        self.new_business = new_business
        self.min_n = min_n
        self.calibration_quarters = calibration_quarters
        self.profile = profile

    # ------------------------------------------------------------------ fit
    def fit(self, log: pd.DataFrame | DealStates, *, as_of: pd.Timestamp | str, quotas: pd.DataFrame | None = None,
            reps: pd.DataFrame | None = None, cache: dict | None = None) -> QuotaForecaster:
        """Learn from the complete quarters before the quarter of ``as_of``.

        Parameters
        ----------
        log : DataFrame or DealStates
            Canonical event log (events after ``as_of`` are never seen), or its
            :func:`~workbench.forecast.win_model.forecast_states`.
        as_of : Timestamp or str
            The forecast date; the forecast quarter is the quarter it falls in.
        quotas : DataFrame, optional
            rep and/or team, quarter, quota (checked as :func:`workbench.io.read_quotas` does).
        reps : DataFrame, optional
            rep, team, region (else taken from the log).
        cache : dict, optional
            Shared by fits on the same log: the historical weekly snapshots (see
            :func:`~workbench.forecast.win_model.training_snapshots`) and what is learned at each
            quarter's start.
        """
        if self.amounts not in ("ratio", "recorded"):
            raise WorkbenchError(f"amounts={self.amounts!r} is not an option.", hint="use 'ratio' or 'recorded'.")
        states = forecast_states(log, get_profile(self.profile, log))
        schema.require(states.events, [schema.AMOUNT], "The quota forecast")
        self.profile_ = states.profile
        self.profile_.require_outcomes("The quota forecast")
        self.as_of_ = to_utc(as_of)
        self.quarter_ = quarter_of(self.as_of_)
        self.quotas_, self.quotas_set_aside_ = _quotas(quotas)
        q_start, _ = quarter_bounds(self.quarter_)
        # Everything learned sees only events before the quarter's start (complete quarters).
        past = states.as_of(q_start - INSTANT)
        cache = {} if cache is None else cache
        # A backtest fits at each quarter's start once for its forecasts and again for the calibration
        # of the quarters after: what is learned there depends on nothing else, so it is learned once.
        key = ("learned", self.quarter_, _fingerprint(reps), _fingerprint(quotas),
               tuple((k, repr(v)) for k, v in sorted(self.get_params().items()) if k not in _NOT_LEARNED))
        if key not in cache:
            spread = self._learn(past, reps, cache)
            cache[key] = ({name: getattr(self, name) for name in _LEARNED}, spread)
        learned, spread = cache[key]
        for name, value in learned.items():
            setattr(self, name, value)
        self.calibration_ = in_sample(*spread)
        if self.calibration_quarters > 0:
            cases, forecasts = past_cases(self, past, self.history_[-self.calibration_quarters:], quotas=quotas,
                                          reps=reps, cache=cache)
            if len(cases) and cases["quarter"].nunique() >= MIN_QUARTERS:
                calibration = calibrate(cases)
                pit = pit_values(forecasts, calibration, seed=self.seed)
                self.calibration_ = replace(calibration, pit=pit)
        return self

    def _learn(self, past: DealStates, reps: pd.DataFrame | None, cache: dict) -> tuple[float, float]:
        """Learn every model from ``past``; returns the in-sample spread (company, team)."""
        ev = past.events
        if ev.empty:
            raise WorkbenchError("the log has no events before the forecast quarter to learn from.",
                                 hint="forecast a later quarter, or give a longer log.")
        self.history_ = _history(ev[schema.TIMESTAMP].min(), self.quarter_, self.history_quarters)
        closed = int(ev["closing"].isin(["won", "lost"]).sum())
        if closed < self.min_n:
            raise WorkbenchError(
                f"the forecast learns from the deals won or lost before {self.quarter_}, and this log has "
                f"{closed:,} of them, fewer than the {self.min_n} it needs to say anything with confidence.",
                hint="forecast a later quarter, or give a longer log.")
        self.org_ = org_table(past, reps)
        won = bookings(past)
        won = won.assign(rep=owner(won))
        train = training_snapshots(past, self.history_, cache=cache)
        self.imputed_amount_, self.imputed_amount_source_ = imputed_amount(won, train[schema.AMOUNT])
        train["amount_used"] = train[schema.AMOUNT].fillna(self.imputed_amount_)
        self.closing_times_ = closing_times(past)
        train["due"] = due_this_quarter(train, self.closing_times_)
        self.win_model_, train["p"] = fit_win_model(train, past.profile)
        # Reps change (hires ramp up, teams are reshuffled): recent quarters count more in the factors.
        age = len(self.history_) - pd.Categorical(train["quarter"], categories=self.history_).codes
        recent = train.assign(weight=train["weight"] * 0.5 ** ((age - 1) / RECENCY_HALF_LIFE))
        self.rep_factor_ = shrunk_factors(recent, self.org_, self.prior_strength)
        self.amount_ratio_ = amount_ratios(train)
        train["amount_if_won"] = self.amount_if_won(train)
        spread = in_sample_spread(train, self.history_, self.org_, self.prior_strength)
        self.stage_win_rate_ = stage_win_rates(train)
        self.baseline_sigma_ = baseline_sigma(train, won, self.stage_win_rate_, self.history_, self.org_)
        self.hit_rate_ = hit_rates(won, self.quotas_, self.history_, self.org_)
        self.new_business_model_ = fit_new_business(
            won, self.history_, method="auto" if self.new_business == "none" else self.new_business)
        in_history = quarter_of(won["closed_at"]).isin(self.history_).to_numpy()
        starts = quarter_of(won["closed_at"][in_history]).map(lambda q: quarter_bounds(q)[0])
        self.booking_days_ = ((won["closed_at"][in_history] - starts) / pd.Timedelta(days=1)).to_numpy(float)
        self.booking_amounts_ = won[schema.AMOUNT][in_history].to_numpy(float)
        return spread

    def amount_if_won(self, deals: pd.DataFrame) -> np.ndarray:
        """What each deal would book if won: its amount times its stage's :attr:`amount_ratio_`
        (``amounts='ratio'``; not on imputed amounts, which are already won deals' average)."""
        amount = deals["amount_used"].to_numpy(float)
        if self.amounts != "ratio":
            return amount
        ratio = lookup(deals["stage"], self.amount_ratio_, self.amount_ratio_.attrs["overall"]).astype(float)
        return np.where(deals[schema.AMOUNT].notna().to_numpy(), amount * ratio, amount)

    # ------------------------------------------------------------------ predict
    def predict(self, log: pd.DataFrame | DealStates, *, as_of: pd.Timestamp | str | None = None,
                quarter: str | None = None) -> QuotaForecast:
        """The forecast as of ``as_of`` (default: the date fitted at), from the log as it was then.

        ``as_of`` must fall in the fitted quarter (``quarter``, when given, must
        be it): the models learned from complete quarters only, so they serve
        every as-of date of the quarter.
        """
        if not hasattr(self, "win_model_"):
            raise WorkbenchError("the forecaster is not fitted yet.",
                                 hint="call fit(log, as_of=..., quotas=...) first.")
        as_of = self.as_of_ if as_of is None else to_utc(as_of)
        if quarter is not None and parse_quarter(str(quarter)) != self.quarter_:
            raise WorkbenchError(f"the forecaster was fitted for {self.quarter_}, not {quarter}.",
                                 hint="fit it with an as_of date inside that quarter.")
        if quarter_of(as_of) != self.quarter_:
            raise WorkbenchError(f"as_of {as_of.date()} is not in the fitted quarter {self.quarter_}.",
                                 hint="fit again for another quarter.")
        # snapshot() and bookings() read only the events at or before as_of, so the log is not cut here:
        # a backtest predicts many weeks from one log, and each cut was a copy of every event row.
        states = forecast_states(log, self.profile_)
        deals = snapshot(states, as_of=as_of, quarter=self.quarter_)
        deals[schema.REP] = owner(deals)
        imputed = int(deals[schema.AMOUNT].isna().sum())
        deals["amount_used"] = deals[schema.AMOUNT].fillna(self.imputed_amount_)
        deals["due"] = due_this_quarter(deals, self.closing_times_)
        p = self.win_model_.predict(deals)
        factor = lookup(deals[schema.REP], self.rep_factor_, 1.0).astype(float)
        deals["p_win"] = expit(logit(p) + np.log(factor)) if len(deals) else p
        deals["amount_if_won"] = self.amount_if_won(deals)
        deals["expected_amount"] = deals["p_win"] * deals["amount_if_won"]
        won_so_far = bookings(states, start=quarter_bounds(self.quarter_)[0], as_of=as_of)
        closed = won_by_rep(won_so_far)  # closed_won_to_date, from the rows already read
        reps = self._reps(deals, closed)
        nb = self.new_business_model_.for_reps([r for r in reps[schema.REP] if r != "(no rep)"]
                                               or list(reps[schema.REP]))
        expected_nb = 0.0 if self.new_business == "none" else nb.expected(as_of, self.quarter_)
        return QuotaForecast(model=self, as_of=as_of, deals=deals, reps=reps,
                             closed=closed.set_index(schema.REP)["closed_won_to_date"],
                             won_so_far=won_so_far, new_business=nb, new_business_expected=expected_nb,
                             imputed_amounts=imputed)

    def fit_predict(self, log: pd.DataFrame | DealStates, *, as_of: pd.Timestamp | str,
                    quotas: pd.DataFrame | None = None, reps: pd.DataFrame | None = None,
                    cache: dict | None = None) -> QuotaForecast:
        """:meth:`fit`, then :meth:`predict` at the same date, reading the log once."""
        states = forecast_states(log, get_profile(self.profile, log))
        return self.fit(states, as_of=as_of, quotas=quotas, reps=reps, cache=cache).predict(states)

    def _reps(self, deals: pd.DataFrame, closed: pd.DataFrame) -> pd.DataFrame:
        """The reps forecast (rep, team, region): those with open deals, wins so far or a quota."""
        reps_now = set(deals[schema.REP]) | set(closed[schema.REP])
        if self.quotas_ is not None and schema.REP in self.quotas_.columns:
            qq = self.quotas_[self.quotas_["quarter"] == self.quarter_]
            reps_now |= set(qq[schema.REP].dropna().astype(str))
        reps_now = reps_now or set(self.org_[schema.REP])
        org = self.org_.set_index(schema.REP).reindex(sorted(reps_now))
        org[schema.TEAM] = org[schema.TEAM].fillna(NO_TEAM)
        org[schema.REGION] = org[schema.REGION].fillna(NO_REGION)
        return org.rename_axis(schema.REP).reset_index()


def _history(first: pd.Timestamp, quarter: str, n: int) -> list[str]:
    """Up to ``n`` complete quarters before ``quarter`` that the log covers (from ``first``), oldest first."""
    quarters = []
    q = shift_quarter(quarter, -1)
    while len(quarters) < n and quarter_bounds(q)[0] >= first.floor("D") - pd.Timedelta(days=6):
        quarters.insert(0, q)
        q = shift_quarter(q, -1)
    if not quarters:
        raise WorkbenchError(f"no complete quarter of history before {quarter} (the log starts {first.date()}).",
                             hint="forecast a quarter that has at least one complete quarter of events before it.")
    return quarters


def _fingerprint(frame: pd.DataFrame | None) -> int:
    """A hash of a (small) table's contents, for cache keys."""
    return 0 if frame is None else hash((tuple(frame.columns), pd.util.hash_pandas_object(frame).sum()))


def _quotas(quotas) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """The usable quota rows (:func:`workbench.io.read_quotas`' rules) and those set aside."""
    if quotas is None:
        return None, pd.DataFrame(columns=["source_row", "reason"])
    result = read_quotas(quotas) if isinstance(quotas, pd.DataFrame) else quotas
    return result.log, result.quarantine
