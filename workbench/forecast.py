"""Quota-attainment forecast for a quarter, as of a date inside it.

Method
------
For every rep, team, region and the company, the bookings of the quarter are

    closed-won so far + what the open pipeline still wins before quarter end
                      + what is created and won before quarter end,

and each term is forecast from what was known on the as-of date only.

*What the models learn from.* The models learn from the complete quarters
before the as-of quarter (at most ``history_quarters`` of them): their outcome
is known, so a deal's label ("won before that quarter's end") and the weekly
bookings are final. Because every as-of date of a quarter sees the same
complete quarters, the learned part is the same for every week of the quarter;
only the snapshot and the bookings so far move (:meth:`QuotaForecaster.observe`).

*Open pipeline.* Historical snapshots are taken at the start of each week of
each past quarter (:func:`workbench.snapshot.snapshot`): every deal open then,
with its stage, age, time in stage, days since its last activity, follow-ups,
skipped stages and regressions so far, its amount, the days left in the
quarter, and any customer-type attribute. A logistic regression (statsmodels
``Logit``, a binomial GLM with a logit link, fitted by Newton's method) gives
P(won before quarter end | these); the stage and the amount also bend the
effect of the days left, since late-stage and big deals close on their own
clock. Reps and teams differ, and many
have thin histories, so each is given a multiplicative factor on the odds,
shrunk towards its team's (and the team's towards 1, the company): a
Poisson-gamma empirical-Bayes ratio ``(won + k * parent) / (expected + k)`` with
``k = prior_strength`` expected wins, counted in deals (a deal seen in several
weekly snapshots counts once). Amounts are as recorded on the as-of date,
times a historical won-to-pipeline ratio (``amounts='ratio'``), or as recorded
(``amounts='recorded'``). The ratio is the amount the history's open deals
went on to book over the amount the win model expected of them: it covers
amounts revised before the close and also corrects the model where it
under-weights big deals (which in sales logs close on their own clock).

*New business.* Deals created after the as-of date and won before quarter end
do not exist yet. The weekly series of the amounts won within their creation
quarter, by creation week (13 weeks a quarter, the last days folded into week
13), is forecast with Holt-Winters exponential smoothing (statsmodels, additive
season of 13 weeks) and with the seasonal-naive forecast (the same week of the
last quarter). Both are scored by rolling origin on the last quarters of the
history, on the quantity that matters (the sum from each week to quarter end);
the one with the lower mean absolute error is used, and ``new_business_model_``
says which. Its uncertainty is a compound Poisson: a gamma-mixed Poisson number
of deals with sizes drawn from the historical new-business deals, the gamma's
variance set so that the total variance matches the rolling-origin errors.
Each new deal goes to a rep drawn by the reps' historical new-business shares
(smoothed so new reps get some).

*Quarter shock.* Deals are not independent: some quarters go well for
everyone. The history's won amount per quarter and week varies more than
independent deals allow; that excess (method of moments) becomes one common
normal shock on every deal's log-odds in each draw, so the intervals of teams
and of the company are as wide as the history says they should be.

*Monte Carlo.* Each open deal is won or not in each of ``n_draws`` draws
(vectorised numpy, seeded), the new business is drawn as above; the draws are
summed per rep, and the rep draws are summed per team, region and company, so
the hierarchy is coherent in every draw. Expected bookings, P10 / P50 / P90 and
P(bookings >= quota) come from the draws; ``coverage`` is the open pipeline
over the gap still to close (quota minus closed-won so far). The fan chart's
paths (:meth:`QuotaForecaster.cumulative_paths`) spread each draw's bookings
still to come over the rest of the quarter along the history's timing.

*Baselines* (:meth:`QuotaForecaster.baselines`) for the backtest: the
*weighted pipeline* (closed so far + each open deal's amount times the
historical win rate of its stage, the usual CRM number), with a P(hit quota)
from a normal distribution around it whose spread is its own historical error
at that level and week of quarter; and the *run rate* (bookings so far scaled
to the whole quarter).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as sps
from scipy.special import expit, logit

from . import schema
from .calendar import INSTANT, parse_quarter, quarter_bounds, quarter_of, shift_quarter, to_utc
from .errors import WorkbenchError
from .profile import SalesProcessProfile, get_profile
from .snapshot import NO_REP, DAY, DealStates, bookings, closed_won_to_date, deal_states, snapshot

WEEKS = 13
LEVELS = ("rep", "team", "region", "company")
NO_TEAM = "(no team)"
NO_REGION = "(no region)"
COMPANY = "company"
#: Categorical attributes used by the win model when the log has them.
CATEGORICAL = ("customer_type",)


# ----------------------------------------------------------------------------- helpers

def week_starts(quarter: str) -> list[pd.Timestamp]:
    """The 13 as-of dates of a quarter: the start of each of its weeks."""
    start, _ = quarter_bounds(quarter)
    return [start + pd.Timedelta(days=7 * i) for i in range(WEEKS)]


def week_index(ts: pd.Timestamp | pd.Series, quarter_start: pd.Timestamp | pd.Series) -> np.ndarray:
    """0-based week of the quarter (0..12; the quarter's last days fold into week 12)."""
    days = (ts - quarter_start) / DAY
    return np.clip(np.floor(np.asarray(days, dtype=float) / 7), 0, WEEKS - 1).astype(int)


def forecast_states(log: pd.DataFrame | DealStates, profile: SalesProcessProfile | str | None = None) -> DealStates:
    """The deal states the forecaster needs: the org columns, amount and :data:`CATEGORICAL` attributes.

    Carrying no other attribute keeps the many snapshots of a backtest cheap.
    A DealStates is returned as it is.
    """
    if isinstance(log, DealStates):
        return log
    present = tuple(c for c in CATEGORICAL if isinstance(log, pd.DataFrame) and c in log.columns)
    return deal_states(log, profile=profile, attributes=present)


def check_quotas(quotas: pd.DataFrame | None) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """Validate a quota table; set aside the rows that cannot be used, with the reason.

    Returns
    -------
    quotas : DataFrame or None
        The usable rows, quarters normalised ('2026Q3').
    set_aside : DataFrame
        The other rows (``row`` is the 1-based data row) and ``reason``: a
        quota that is not a non-negative number, or an earlier duplicate of
        the same rep (or team) and quarter (the last one is kept).

    Raises
    ------
    WorkbenchError
        When a column is missing or a quarter cannot be read.
    """
    empty = pd.DataFrame(columns=["row", "reason"])
    if quotas is None:
        return None, empty
    for c in ("quarter", "quota"):
        if c not in quotas.columns:
            raise WorkbenchError(f"the quota table has no column {c!r}.", column=c,
                                 hint="give rep, quarter and quota columns.")
    if schema.REP not in quotas.columns and schema.TEAM not in quotas.columns:
        raise WorkbenchError("the quota table has neither a 'rep' nor a 'team' column.", column=schema.REP,
                             hint="give one quota per rep (or per team) and quarter.")
    q = quotas.copy()
    norm = q["quarter"].map(lambda v: parse_quarter(str(v)))
    if norm.isna().any():
        row = int(np.flatnonzero(norm.isna().to_numpy())[0])
        raise WorkbenchError(f"{q['quarter'].iloc[row]!r} is not a quarter.", column="quarter", row=row + 1,
                             hint="write quarters as 2026Q3.")
    q["quarter"] = norm
    q["row"] = np.arange(1, len(q) + 1)
    value = pd.to_numeric(q["quota"], errors="coerce")
    bad = value.isna() | (value < 0)
    key = [c for c in (schema.REP, schema.TEAM) if c in q.columns][:1] + ["quarter"]
    dup = q.duplicated(key, keep="last") & ~bad
    aside = pd.concat([q[bad].assign(reason="quota is not a non-negative number"),
                       q[dup].assign(reason=f"an earlier duplicate of the same {key[0]} and quarter")])
    q = q[~bad & ~dup].assign(quota=value[~bad & ~dup])
    return q.drop(columns="row"), aside.reset_index(drop=True)


def _org(states: DealStates, reps: pd.DataFrame | None) -> pd.DataFrame:
    """rep -> team, region: from the reps table where given, else the last seen in the log."""
    ev = states.events
    cols = [c for c in (schema.TEAM, schema.REGION) if c in ev.columns]
    if schema.REP in ev.columns:
        seen = ev.dropna(subset=[schema.REP]).drop_duplicates(schema.REP, keep="last")
        org = seen[[schema.REP, *cols]].copy()
    else:
        org = pd.DataFrame({schema.REP: []})
    if reps is not None:
        if schema.REP not in reps.columns:
            raise WorkbenchError("the reps table has no column 'rep'.", column=schema.REP,
                                 hint="give rep, team and region columns.")
        given = reps[[c for c in (schema.REP, schema.TEAM, schema.REGION) if c in reps.columns]]
        org = pd.concat([given, org[~org[schema.REP].isin(given[schema.REP])]], ignore_index=True)
    for c, default in ((schema.TEAM, NO_TEAM), (schema.REGION, NO_REGION)):
        org[c] = org[c].fillna(default).astype(str) if c in org.columns else default
    org[schema.REP] = org[schema.REP].astype(str)
    return org.drop_duplicates(schema.REP).reset_index(drop=True)


def _owner(frame: pd.DataFrame) -> pd.Series:
    if schema.REP not in frame.columns:
        return pd.Series(NO_REP, index=frame.index)
    return frame[schema.REP].fillna(NO_REP).astype(str)


def _lookup(keys: pd.Series, table: pd.Series, default: Any) -> np.ndarray:
    """``table[key]`` for each key; ``default`` where the key is missing, not in ``table``
    or has no value there.

    Looks up each distinct key once: ``Series.map`` on a million strings is ten times slower.
    """
    codes, uniques = pd.factorize(keys)
    values = table.reindex(uniques)
    # a missing key has code -1, which picks the default appended at the end
    return np.append(values.where(values.notna(), default).to_numpy(), default)[codes]


def _positions(keys: pd.Series, levels: list[str]) -> np.ndarray:
    """Each key's position in ``levels`` (-1: missing or not there)."""
    return _lookup(keys, pd.Series(range(len(levels)), index=levels), -1)


def _team_of(reps: pd.Series | pd.Index, org: pd.DataFrame) -> np.ndarray:
    """Each rep's team in ``org`` (of :func:`_org`); NO_TEAM where it has none."""
    return _lookup(pd.Series(reps), org.set_index(schema.REP)[schema.TEAM], NO_TEAM)


# ----------------------------------------------------------------------------- win model

def _design(snap: pd.DataFrame, stages: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Design matrix of the win model (one row per open deal)."""
    n = len(snap)
    left = np.log1p(np.clip(snap["days_left"].to_numpy(float), 0, None))
    size = np.log1p(np.clip(snap["amount_used"].to_numpy(float), 0, None))
    cols = [np.ones(n), left,
            np.log1p(np.clip(snap["age_days"].to_numpy(float), 0, None)),
            np.log1p(np.clip(snap["time_in_stage_days"].to_numpy(float), 0, None)),
            np.log1p(np.clip(snap["days_since_last_activity"].to_numpy(float), 0, None)),
            np.log1p(snap["n_followups"].to_numpy(float)),
            snap["stages_skipped"].to_numpy() > 0,
            snap["regressions"].to_numpy() > 0,
            # Big deals close on a different clock (quarter-end pushes), so size bends the time effect too.
            size, size * left]
    # Dummies compare integer codes: comparing the strings once per level is slow on large snapshots.
    stage = _positions(snap["stage"], stages)
    for i in range(1, len(stages)):
        d = stage == i
        cols += [d, d * left]
    for c, levels in categories.items():
        code = _positions(snap[c].astype(str), levels) if c in snap.columns else np.full(n, -1)
        cols += [code == k for k in range(1, len(levels))]
    # One preallocated matrix: column_stack of the list would copy every column once more.
    # Column-major, so that each column is written in one contiguous run.
    X = np.empty((n, len(cols)), order="F")
    for j, col in enumerate(cols):
        X[:, j] = col
    return X


def _imputed_amount(won: pd.DataFrame, recorded: pd.Series) -> tuple[float, str]:
    """The value of an open deal without an amount, and where it comes from (see ``imputed_amount_``).

    A won deal's expected value is the mean of what won deals booked; an export
    that records values only at the close (revenue booked) has no other.
    """
    booked = won[schema.AMOUNT].to_numpy(float)
    booked = booked[booked > 0]
    if booked.size:
        return float(booked.mean()), "the average won deal of the history"
    if recorded.notna().any():
        return float(np.nanmedian(recorded)), "the median amount of the history's open deals"
    return 0.0, "no amount in the history"


def _shrunk_factors(frame: pd.DataFrame, org: pd.DataFrame, k: float) -> pd.Series:
    """Rep odds factors shrunk rep -> team -> company (Poisson-gamma empirical Bayes).

    ``frame`` has rep, won (0/1), p (model probability) and weight (1 / the
    number of snapshots the deal appears in, so a deal counts once).
    """
    # Summed per rep first: a rep has one team, and the table has up to millions of rows.
    f = pd.DataFrame({schema.REP: frame[schema.REP], "o": frame["won"] * frame["weight"],
                      "e": frame["p"] * frame["weight"]})
    sums = f.groupby(schema.REP, dropna=False)[["o", "e"]].sum()
    team_of = pd.Series(_team_of(sums.index, org), index=sums.index)
    team = sums.groupby(team_of.to_numpy())[["o", "e"]].sum()
    team_factor = (team["o"] + k) / (team["e"] + k)
    rep = sums[sums.index.notna()]
    parent = team_of[rep.index].map(team_factor).fillna(1.0)
    return ((rep["o"] + k * parent) / (rep["e"] + k)).rename("factor")


# ----------------------------------------------------------------------------- new business

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


def _tail_sums(x: np.ndarray) -> np.ndarray:
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
        return replace(self, rep_share=_rep_shares(self.rep_history, reps))

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
        np.add.at(x[i], week_index(w["created"], start), w[schema.AMOUNT].to_numpy())
        sizes.append(w[schema.AMOUNT].to_numpy())
        by_rep.append(pd.Series(w[schema.AMOUNT].to_numpy(), index=_owner(w).to_numpy()))
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    sizes = sizes[sizes > 0]
    history = pd.concat(by_rep).groupby(level=0).sum() if by_rep else pd.Series(dtype=float)
    share = _rep_shares(history, list(history.index))
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
            errors[m].append(np.abs(_tail_sums(f) - _tail_sums(x[e])).mean())
    usable = [m for m in candidates if nq >= min_fit[m]]
    scores = {m: float(np.mean(errors[m])) if errors[m] else np.inf for m in usable}
    # With no rolling origin for a method, fall back to the simpler one.
    best = min(usable, key=lambda m: (scores[m], m != "seasonal_naive"))
    weekly = _NB_METHODS[best](x.ravel())

    # Gamma dispersion so that compound-Poisson variance + level variance = observed squared error.
    m1, m2 = sizes.mean(), (sizes ** 2).mean()
    num, den = 0.0, 0.0
    for e, f in forecasts.get(best, []):
        mu = _tail_sums(f)
        err2 = (_tail_sums(x[e]) - mu) ** 2
        num += (err2 - (mu / m1) * m2).sum()
        den += (mu ** 2).sum()
    dispersion = float(max(0.0, num / den)) if den > 0 else 0.0
    return NewBusinessModel(best, weekly, scores, sizes, dispersion, history, share)


def _rep_shares(amounts: pd.Series, reps: list[str], smoothing: float = 0.5) -> pd.Series:
    """Each rep's share of new business: history plus ``smoothing`` x the average rep's."""
    if not reps:
        return pd.Series(dtype=float)
    hist = amounts.groupby(level=0).sum().reindex(reps, fill_value=0.0) if len(amounts) else pd.Series(0.0, index=reps)
    hist = hist.clip(lower=0)
    prior = smoothing * (hist.mean() if hist.sum() > 0 else 1.0)
    s = hist + prior
    return (s / s.sum()).rename("share")


# ----------------------------------------------------------------------------- Monte Carlo

def simulate_pipeline(
    p: np.ndarray,
    amount: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    *,
    n_draws: int,
    rng: np.random.Generator,
    shock_sd: float = 0.0,
    cluster: np.ndarray | None = None,
    cluster_sd: float = 0.0,
    shock_levels: int = 64,
    chunk: int = 1000,
) -> np.ndarray:
    """Draws of the amount won per group when deal ``i`` is won with probability ``p[i]``.

    Deals are not independent: each draw shifts every deal's log-odds by a
    common N(0, shock_sd^2) shock (a good or bad quarter for everyone) plus,
    with ``cluster``, a N(0, cluster_sd^2) shock shared by the deals of each
    cluster (team). The summed shock of a cluster in a draw is stratified into
    ``shock_levels`` equally likely levels, so the draws of one level share
    their thresholds. Wins compare 16-bit random integers with thresholds, so
    probabilities are resolved to 1/65536.

    Parameters
    ----------
    p, amount : ndarray (n,)
        Win probability and amount of each deal.
    group : ndarray of int (n,)
        Group (rep) index of each deal, in ``0..n_groups-1``.
    n_draws : int
        Number of draws.
    rng : numpy Generator
        The random stream.
    shock_sd : float
        SD of the common log-odds shock of each draw.
    cluster : ndarray of int (n,), optional
        Cluster (team) of each deal; a group must lie in one cluster.
    cluster_sd : float
        SD of the cluster's log-odds shock.
    shock_levels : int
        Number of equally likely shock levels.
    chunk : int
        Draws simulated at a time (bounds memory to ``chunk x n`` floats).

    Returns
    -------
    ndarray (n_draws, n_groups)
    """
    out = np.zeros((n_draws, n_groups))
    n = len(p)
    if n == 0:
        return out
    cluster = np.zeros(n, dtype=int) if cluster is None else np.asarray(cluster)
    cluster_sd = cluster_sd if cluster_sd > 0 else 0.0
    order = np.lexsort((group, cluster))
    amt, g, c = amount[order].astype(np.float32), group[order], cluster[order]
    total_sd = float(np.hypot(shock_sd, cluster_sd))
    k = max(1, int(shock_levels)) if total_sd > 0 else 1
    clusters, c_start = np.unique(c, return_index=True)
    if k > 1:
        common = rng.normal(0.0, shock_sd, (n_draws, 1)) if shock_sd > 0 else np.zeros((n_draws, 1))
        own = rng.normal(0.0, cluster_sd, (n_draws, len(clusters))) if cluster_sd > 0 else 0.0
        level = np.clip((sps.norm.cdf((common + own) / total_sd) * k).astype(int), 0, k - 1)
        level = np.broadcast_to(level, (n_draws, len(clusters)))
        eps = sps.norm.ppf((np.arange(k) + 0.5) / k) * total_sd
    else:
        level = np.zeros((n_draws, len(clusters)), dtype=int)
        eps = np.zeros(1)
    q = expit(logit(np.clip(p[order], 1e-9, 1 - 1e-9))[None, :] + eps[:, None])
    thresholds = np.clip(np.round(q * 65536), 0, 65535).astype(np.uint16)
    # Preallocated buffers: fresh 10^7-element arrays per chunk cost more than the arithmetic.
    size = min(chunk, n_draws) * n
    won_buf, value_buf = np.empty(size, dtype=bool), np.empty(size, dtype=np.float32)
    bounds = np.r_[c_start, n]
    for j in range(len(clusters)):
        lo, hi = bounds[j], bounds[j + 1]
        gj = g[lo:hi]
        starts = np.flatnonzero(np.r_[True, gj[1:] != gj[:-1]])
        cols = gj[starts]
        width = hi - lo
        for lv in np.unique(level[:, j]):
            draws = np.flatnonzero(level[:, j] == lv)
            for a in range(0, len(draws), chunk):
                idx = draws[a:a + chunk]
                m = len(idx)
                bits = rng.bit_generator.random_raw(-(-m * width // 4)).view(np.uint16)[:m * width].reshape(m, width)
                won = won_buf[:m * width].reshape(m, width)
                value = value_buf[:m * width].reshape(m, width)
                np.less(bits, thresholds[lv, lo:hi], out=won)
                np.multiply(won, amt[lo:hi], out=value)
                out[idx[:, None], cols[None, :]] = np.add.reduceat(value, starts, axis=1)
    return out


def simulate_new_business(
    model: NewBusinessModel,
    expected: float,
    n_groups: int,
    group_of_rep: np.ndarray,
    *,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of new business per rep: gamma-mixed Poisson count of deals, historical sizes, rep by share."""
    out = np.zeros((n_draws, n_groups))
    if expected <= 0 or model.rep_share.empty or model.sizes.size == 0:
        return out
    lam = expected / model.sizes.mean()
    if model.dispersion > 0:
        shape = 1.0 / model.dispersion
        lam = lam * rng.gamma(shape, 1.0 / shape, size=n_draws)
    counts = rng.poisson(lam, size=n_draws)
    total = int(counts.sum())
    draw = np.repeat(np.arange(n_draws), counts)
    rep = rng.choice(len(model.rep_share), size=total, p=model.rep_share.to_numpy())
    size = rng.choice(model.sizes, size=total)
    cell = draw * n_groups + group_of_rep[rep]
    out += np.bincount(cell, weights=size, minlength=n_draws * n_groups).reshape(n_draws, n_groups)
    return out


@dataclass(frozen=True)
class Simulation:
    """Monte Carlo draws of the quarter's bookings.

    Attributes
    ----------
    reps : DataFrame
        rep, team, region, in the column order of the draw matrices.
    closed : ndarray (n_reps,)
        Closed-won so far.
    pipeline, new_business : ndarray (n_draws, n_reps)
        Drawn wins from the open pipeline and from new business.
    """

    reps: pd.DataFrame
    closed: np.ndarray
    pipeline: np.ndarray
    new_business: np.ndarray

    @property
    def rep_draws(self) -> np.ndarray:
        """Total bookings per draw and rep."""
        return self.closed[None, :] + self.pipeline + self.new_business

    def level_draws(self, level: str) -> tuple[list[str], np.ndarray]:
        """Entity names and draws (n_draws, n_entities) at ``level``, summed from the rep draws."""
        draws = self.rep_draws
        if level == "rep":
            return list(self.reps[schema.REP]), draws
        if level == "company":
            return [COMPANY], draws.sum(axis=1, keepdims=True)
        keys = self.reps[level].to_numpy()
        names, idx = np.unique(keys, return_inverse=True)
        onehot = np.zeros((len(keys), len(names)))
        onehot[np.arange(len(keys)), idx] = 1.0
        return list(names), draws @ onehot


# ----------------------------------------------------------------------------- the estimator

class QuotaForecaster:
    """Forecast every rep's, team's, region's and the company's quota attainment.

    See the module docstring for the method.

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
        Open amounts times the historical booked-to-expected amount ratio, or as recorded.
    new_business : {'auto', 'ets', 'seasonal_naive', 'none'}
        New-business model ('auto' keeps the better one on the history).
    min_n : int
        Deals won or lost before the forecast quarter below which the
        forecaster refuses to learn (a :class:`WorkbenchError` saying so).

    Attributes
    ----------
    as_of_, quarter_ : the as-of date and its quarter.
    snapshot_ : DataFrame, the open deals with ``p_win`` and ``expected_amount``.
    imputed_amounts_ : int, open deals without an amount, each valued at ``imputed_amount_``.
    imputed_amount_ : float, the value given to a deal without an amount: the mean won deal of
        the history (what such a deal books when it is won), else the median amount recorded on
        the history's open deals; ``imputed_amount_source_`` says which in words.
    quotas_set_aside_ : DataFrame, quota rows that could not be used, with the reason.
    closed_ : DataFrame, closed-won so far per rep.
    win_model_ : statsmodels GLM results of the win model.
    rep_factor_ : Series, shrunk odds factor per rep.
    amount_ratio_ : float, booked amount over the win model's expected amount, on the history.
    new_business_model_ : str, 'ets' or 'seasonal_naive' (or 'none': no such deals in the history,
        or ``new_business='none'``).
    shock_sd_, team_shock_sd_ : float, SDs of the common and per-team log-odds shocks of a quarter.
    reps_ : DataFrame, the reps forecast (rep, team, region), in the order of the draws' columns.
    new_business_ : NewBusinessModel.
    stage_win_rate_ : Series, historical win rate per stage (weighted-pipeline baseline).
    baseline_sigma_ : DataFrame, the weighted pipeline's historical error by level and week.
    history_ : list of str, the quarters learned from.
    """

    def __init__(
        self,
        n_draws: int = 10_000,
        seed: int = 0,
        *,
        history_quarters: int = 8,
        prior_strength: float = 10.0,
        amounts: str = "ratio",
        new_business: str = "auto",
        min_n: int = 30,
    ) -> None:
        self.n_draws = n_draws
        self.seed = seed
        self.history_quarters = history_quarters
        self.prior_strength = prior_strength
        self.amounts = amounts
        self.new_business = new_business
        self.min_n = min_n

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        log: pd.DataFrame | DealStates,
        as_of: pd.Timestamp | str,
        quotas: pd.DataFrame | None = None,
        reps: pd.DataFrame | None = None,
        profile: SalesProcessProfile | str | None = None,
        *,
        cache: dict | None = None,
    ) -> QuotaForecaster:
        """Learn from the log as it was before ``as_of`` and take the snapshot at ``as_of``.

        Parameters
        ----------
        log : DataFrame or DealStates
            Canonical event log (events after ``as_of`` are ignored), or its
            :func:`~workbench.snapshot.deal_states`.
        as_of : Timestamp or str
            The forecast date; the forecast quarter is the quarter it falls in.
        quotas : DataFrame, optional
            rep, quarter, quota (per-team rows with a 'team' column and no rep
            are used at team level).
        reps : DataFrame, optional
            rep, team, region (else taken from the log).
        profile : SalesProcessProfile or str
            What the activities mean.
        cache : dict, optional
            Historical weekly snapshots keyed by (quarter, week), shared by
            fits on the same log (the backtest passes one). A snapshot of a
            past week depends only on the events before that week, so sharing
            it between fits with later as-of dates cannot leak the future.
        """
        if self.amounts not in ("ratio", "recorded"):
            raise WorkbenchError(f"amounts={self.amounts!r} is not an option.", hint="use 'ratio' or 'recorded'.")
        profile = get_profile(profile, log)
        self.profile_ = profile
        as_of = to_utc(as_of)
        states = forecast_states(log, profile)
        schema.require(states.events, [schema.AMOUNT], "The quota forecast")
        self.quarter_ = quarter_of(as_of)
        q_start, _ = quarter_bounds(self.quarter_)
        # Everything learned sees only events before the quarter's start (complete quarters).
        self._learn(states.as_of(q_start - INSTANT), reps, cache)
        self.quotas_, self.quotas_set_aside_ = check_quotas(quotas)
        return self.observe(states, as_of)

    def _learn(self, past: DealStates, reps: pd.DataFrame | None, cache: dict | None) -> None:
        ev = past.events
        if ev.empty:
            raise WorkbenchError("the log has no events before the forecast quarter to learn from.",
                                 hint="forecast a later quarter, or give a longer log.")
        first = ev[schema.TIMESTAMP].min()
        quarters = []
        q = shift_quarter(self.quarter_, -1)
        while len(quarters) < self.history_quarters and quarter_bounds(q)[0] >= first.floor("D") - pd.Timedelta(days=6):
            quarters.insert(0, q)
            q = shift_quarter(q, -1)
        if not quarters:
            raise WorkbenchError(
                f"no complete quarter of history before {self.quarter_} (the log starts {first.date()}).",
                hint="forecast a quarter that has at least one complete quarter of events before it.")
        closed = int(ev["closing"].isin(["won", "lost"]).sum())
        if closed < self.min_n:
            raise WorkbenchError(
                f"the forecast learns from the deals won or lost before {self.quarter_}, and this log has "
                f"{closed:,} of them, fewer than the {self.min_n} it needs to say anything with confidence.",
                hint="forecast a later quarter, or give a longer log.")
        self.history_ = quarters
        self.org_ = _org(past, reps)
        won = bookings(past)
        won = won.assign(rep=_owner(won))
        self._won_history = won
        outcome = ev[ev["closing"].notna()][[schema.CASE, "closing", schema.TIMESTAMP, schema.AMOUNT]]
        outcome = outcome.rename(columns={schema.TIMESTAMP: "closed_at", schema.AMOUNT: "closed_amount"})

        rows = []
        for q in quarters:
            for w, t in enumerate(week_starts(q)):
                key = (q, w + 1)
                if cache is None or key not in cache:
                    s = snapshot(past, t, quarter=q)
                    s["quarter"], s["week"] = q, w + 1
                    if cache is not None:
                        cache[key] = s
                rows.append(cache[key] if cache is not None else s)
        train = pd.concat(rows, ignore_index=True).merge(outcome, on=schema.CASE, how="left")
        q_end = train["quarter"].map({q: quarter_bounds(q)[1] for q in quarters})
        train["won"] = ((train["closing"] == "won") & (train["closed_at"] < q_end)).astype(float)
        train[schema.REP] = _owner(train)
        train["weight"] = 1.0 / train.groupby(schema.CASE)[schema.CASE].transform("size")
        self._train = train

        self.imputed_amount_, self.imputed_amount_source_ = _imputed_amount(won, train[schema.AMOUNT])
        train["amount_used"] = train[schema.AMOUNT].fillna(self.imputed_amount_)
        self.stages_ = [s for s in past.profile.stages if (train["stage"] == s).any()] or [past.profile.stages[0]]
        self.categories_ = {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL
                            if c in train.columns and train[c].notna().any()}
        X = _design(train, self.stages_, self.categories_)
        # Constant columns (e.g. no deal ever skipped a stage) carry no information.
        self._columns = np.r_[True, X[:, 1:].std(axis=0) > 0]
        X = X[:, self._columns]
        y = train["won"].to_numpy()
        if y.sum() == 0:
            raise WorkbenchError(f"no deal was won in the history {quarters[0]}..{quarters[-1]}, "
                                 "so win probabilities cannot be learned.",
                                 hint="check the profile's 'won' activities, or give a longer log.")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                # Newton on the Hessian (p x p) is far cheaper than IRLS's least squares on ~10^5 rows.
                # The rank check (a QR of X: 2 s on a million snapshot rows) is not needed: a
                # rank-deficient X makes the Hessian singular, and the fallback below takes over.
                self.win_model_ = sm.Logit(y, X, check_rank=False).fit(method="newton", maxiter=50, disp=0)
            except np.linalg.LinAlgError:
                # Collinear features: IRLS with a pseudo-inverse copes with them.
                self.win_model_ = sm.GLM(y, X, family=sm.families.Binomial()).fit(wls_method="pinv")
        train["p"] = self._p_win(train)
        self.rep_factor_ = _shrunk_factors(train, self.org_, self.prior_strength)

        train["p_rep"] = expit(logit(train["p"].to_numpy())
                               + np.log(_lookup(train[schema.REP], self.rep_factor_, 1.0)))
        w = train["weight"].to_numpy()
        got = (train["won"] * train["closed_amount"].fillna(train["amount_used"])).to_numpy() * w
        expected = (train["p_rep"] * train["amount_used"]).to_numpy() * w
        self.amount_ratio_ = float(got.sum() / expected.sum()) if expected.sum() > 0 else 1.0
        self.shock_sd_, self.team_shock_sd_ = self._quarter_shocks(train)

        closed = train[train["closing"].notna()]
        self.stage_win_rate_ = (closed.assign(ev_won=(closed["closing"] == "won").astype(float))
                                .groupby("stage")["ev_won"].mean())
        self.baseline_sigma_ = self._baseline_sigma(train, won)
        self._nb_fit = fit_new_business(won, quarters, method="auto" if self.new_business == "none"
                                        else self.new_business)

    def _baseline_sigma(self, train: pd.DataFrame, won: pd.DataFrame) -> pd.DataFrame:
        """RMS error of the weighted pipeline on the history, by level and week of quarter.

        At the start of week ``w`` the baseline's error for an entity is what it
        booked from then to the quarter's end minus its weighted open pipeline.
        """
        rate = pd.Series(_lookup(train["stage"], self.stage_win_rate_, 0.0), index=train.index)
        fc = (rate * train[schema.AMOUNT].fillna(self.imputed_amount_)).groupby(
            [train["quarter"], train["week"], train[schema.REP]]).sum()
        starts = {q: quarter_bounds(q) for q in self.history_}
        quarter = quarter_of(won["closed_at"])
        wq = won[quarter.isin(list(starts))].assign(quarter=quarter)
        first = wq["quarter"].map({q: b[0] for q, b in starts.items()})
        # A deal closed during week k is still to come at the start of weeks 1..k (one closed
        # at the very start of week k has happened by then).
        last_week = np.ceil((wq["closed_at"] - first) / DAY / 7).astype(int)
        rest = wq.loc[wq.index.repeat(np.minimum(last_week, WEEKS))].copy()
        rest["week"] = rest.groupby(level=0).cumcount() + 1
        booked = rest.groupby(["quarter", "week", schema.REP])[schema.AMOUNT].sum()
        reps = sorted(set(won[schema.REP].unique()) | set(train[schema.REP].unique()))
        grid = pd.MultiIndex.from_product([self.history_, range(1, WEEKS + 1), reps], names=["quarter", "week", schema.REP])
        err = (booked.reindex(grid, fill_value=0.0) - fc.reindex(grid, fill_value=0.0)).rename("err").reset_index()
        e = err.merge(self.org_, on=schema.REP, how="left")
        e[schema.TEAM] = e[schema.TEAM].fillna(NO_TEAM)
        e[schema.REGION] = e[schema.REGION].fillna(NO_REGION)
        e[COMPANY] = COMPANY
        out = []
        for level in LEVELS:
            key = schema.REP if level == "rep" else level
            agg = e.groupby(["quarter", "week", key])["err"].sum()
            sig = np.sqrt((agg ** 2).groupby(level="week").mean())
            out.append(pd.DataFrame({"level": level, "week": sig.index, "sigma": sig.to_numpy()}))
        return pd.concat(out, ignore_index=True)

    def _quarter_shocks(self, train: pd.DataFrame) -> tuple[float, float]:
        """SDs of the common log-odds shocks of the company and of each team in a quarter.

        For each week of quarter, the variance of (won - expected) pipeline
        amount across the history quarters beyond what independent deals
        explain, relative to the expected amount squared (method of moments),
        averaged over weeks: ``phi`` for the company, and per team a
        ``phi_team`` of which the company's part is ``phi``. A multiplicative
        variance ``phi`` becomes a log-odds SD of ``sqrt(log(1 + phi))``. The
        rep factors used for a quarter here are learned from the other quarters,
        since in-sample factors would absorb the very team-quarter deviations
        being measured.
        """
        p = np.empty(len(train))
        slim = train[[schema.REP, "won", "weight", "p"]]  # rows are copied once per quarter
        for q in self.history_:
            rows = (train["quarter"] == q).to_numpy()
            factor = _shrunk_factors(slim[~rows], self.org_, self.prior_strength) if (~rows).any() else pd.Series(dtype=float)
            p[rows] = expit(logit(train.loc[rows, "p"].to_numpy())
                            + np.log(_lookup(train.loc[rows, schema.REP], factor, 1.0)))
        amt = train["amount_used"].to_numpy() * self._ratio()
        won = (train["won"] * train["closed_amount"].fillna(train["amount_used"])).to_numpy()
        team = _team_of(train[schema.REP], self.org_)
        frame = pd.DataFrame({"quarter": train["quarter"], "week": train["week"], "team": team,
                              "o": won, "e": p * amt, "v": p * (1 - p) * amt ** 2})

        def phi(keys: list[str]) -> float:
            g = frame.groupby(keys)[["o", "e", "v"]].sum()
            excess = ((g["o"] - g["e"]) ** 2 - g["v"]).groupby(level="week").sum()
            scale = (g["e"] ** 2).groupby(level="week").sum()
            return float(np.mean(np.clip(excess / scale.where(scale > 0), 0, None).fillna(0.0)))

        company = phi(["quarter", "week"])
        team_only = max(0.0, phi(["quarter", "week", "team"]) - company)
        return float(np.sqrt(np.log1p(company))), float(np.sqrt(np.log1p(team_only)))

    def _ratio(self) -> float:
        return self.amount_ratio_ if self.amounts == "ratio" else 1.0

    def _p_win(self, snap: pd.DataFrame) -> np.ndarray:
        """Model P(won before quarter end) of each deal, before the rep factor."""
        if len(snap) == 0:
            return np.zeros(0)
        X = _design(snap, self.stages_, self.categories_)[:, self._columns]
        return np.clip(self.win_model_.predict(X), 1e-6, 1 - 1e-6)

    # ------------------------------------------------------------------ observe
    def observe(self, log: pd.DataFrame | DealStates, as_of: pd.Timestamp | str) -> QuotaForecaster:
        """Move the as-of date within the fitted quarter without relearning.

        The learned models see only complete quarters before the forecast
        quarter, so they are the same for every as-of date inside it; this
        rebuilds the snapshot and the bookings so far from the events before
        ``as_of``. Used by the backtest.
        """
        as_of = to_utc(as_of)
        if quarter_of(as_of) != self.quarter_:
            raise WorkbenchError(f"as_of {as_of.date()} is not in the fitted quarter {self.quarter_}.",
                                 hint="fit again for another quarter.")
        states = forecast_states(log, self.profile_).as_of(as_of)
        self.as_of_ = as_of
        snap = snapshot(states, as_of, quarter=self.quarter_)
        snap[schema.REP] = _owner(snap)
        n_missing = int(snap[schema.AMOUNT].isna().sum())
        # Open deals without an amount are valued at ``imputed_amount_``, and counted for the page.
        self.imputed_amounts_ = n_missing
        snap["amount_used"] = snap[schema.AMOUNT].fillna(self.imputed_amount_)
        p = self._p_win(snap)
        factor = snap[schema.REP].map(self.rep_factor_).fillna(1.0).to_numpy()
        snap["p_win"] = expit(logit(p) + np.log(factor)) if len(snap) else p
        ratio = self._ratio()
        snap["expected_amount"] = snap["p_win"] * snap["amount_used"] * ratio
        self.snapshot_ = snap
        self.closed_ = closed_won_to_date(states, as_of, self.quarter_)
        self._closed_deals = bookings(states, start=quarter_bounds(self.quarter_)[0], as_of=as_of)

        reps_now = set(snap[schema.REP]) | set(self.closed_[schema.REP])
        if self.quotas_ is not None and schema.REP in self.quotas_.columns:
            qq = self.quotas_[self.quotas_["quarter"] == self.quarter_]
            reps_now |= set(qq[schema.REP].dropna().astype(str))
        reps_now |= set(self.org_[schema.REP]) if not reps_now else set()
        org = self.org_.set_index(schema.REP).reindex(sorted(reps_now))
        org[schema.TEAM] = org[schema.TEAM].fillna(NO_TEAM)
        org[schema.REGION] = org[schema.REGION].fillna(NO_REGION)
        self.reps_ = org.rename_axis(schema.REP).reset_index()
        active_nb = [r for r in self.reps_[schema.REP] if r != NO_REP]
        self.new_business_ = self._nb_fit.for_reps(active_nb or list(self.reps_[schema.REP]))
        self.new_business_model_ = "none" if self.new_business == "none" else self.new_business_.method
        self.new_business_expected_ = (0.0 if self.new_business == "none"
                                       else self.new_business_.expected(as_of, self.quarter_))
        return self

    # ------------------------------------------------------------------ simulate / predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "snapshot_"):
            raise WorkbenchError("the forecaster is not fitted yet.", hint="call fit(log, as_of, quotas) first.")

    def simulate(self, n_draws: int | None = None, seed: int | None = None) -> Simulation:
        """Draw the quarter's bookings per rep (seeded: same seed, same draws)."""
        self._check_fitted()
        n_draws = self.n_draws if n_draws is None else n_draws
        seed = self.seed if seed is None else seed
        pipe_rng, nb_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        reps = self.reps_
        pos = pd.Series(np.arange(len(reps)), index=reps[schema.REP])
        team = reps.set_index(schema.REP)[schema.TEAM]
        snap = self.snapshot_
        pipeline = simulate_pipeline(
            snap["p_win"].to_numpy(), (snap["amount_used"] * self._ratio()).to_numpy(),
            snap[schema.REP].map(pos).to_numpy(), len(reps), n_draws=n_draws, rng=pipe_rng,
            shock_sd=self.shock_sd_, cluster=pd.factorize(snap[schema.REP].map(team))[0],
            cluster_sd=self.team_shock_sd_)
        nb = self.new_business_
        group = nb.rep_share.index.map(pos).to_numpy() if len(nb.rep_share) else np.zeros(0, int)
        new = simulate_new_business(nb, self.new_business_expected_, len(reps), group,
                                    n_draws=n_draws, rng=nb_rng)
        closed = self.closed_.set_index(schema.REP)["closed_won_to_date"].reindex(reps[schema.REP], fill_value=0.0)
        return Simulation(reps, closed.to_numpy(float), pipeline, new)

    def _quota_table(self) -> dict[str, pd.Series]:
        """Quota per entity at each level for the forecast quarter (rep quotas summed up)."""
        reps = self.reps_
        out = {lv: pd.Series(dtype=float) for lv in LEVELS}
        if self.quotas_ is None:
            return out
        q = self.quotas_[self.quotas_["quarter"] == self.quarter_]
        if schema.REP in q.columns:
            rq = q.dropna(subset=[schema.REP]).groupby(q[schema.REP].astype(str))["quota"].sum(min_count=1)
            out["rep"] = rq
            m = reps.assign(quota=reps[schema.REP].map(rq))
            for lv in ("team", "region"):
                out[lv] = m.groupby(lv)["quota"].sum(min_count=1)
            out["company"] = pd.Series({COMPANY: m["quota"].sum(min_count=1)})
        if schema.TEAM in q.columns:
            team_rows = q[q[schema.REP].isna()] if schema.REP in q.columns else q
            if len(team_rows):
                tq = team_rows.groupby(schema.TEAM)["quota"].sum(min_count=1)
                out["team"] = tq.combine_first(out["team"])
        return out

    def predict(self, quarter: str | None = None, *, simulation: Simulation | None = None) -> pd.DataFrame:
        """The forecast per level and entity.

        Parameters
        ----------
        quarter : str, optional
            Must be the quarter of ``as_of`` (the default).
        simulation : Simulation, optional
            Draws from :meth:`simulate` to summarise (drawn with the estimator's
            seed when not given).

        Returns
        -------
        DataFrame
            One row per level ('rep', 'team', 'region', 'company') and entity:
            team, region (where defined), n_open_deals, open_pipeline,
            closed_won_to_date, pipeline_expected, new_business_expected,
            expected_bookings, p10, p50, p90, quota, expected_attainment,
            p_hit_quota, gap_to_quota (quota minus closed-won so far) and
            coverage (open pipeline / gap to quota). ``attrs`` holds quarter,
            as_of and new_business_model.
        """
        self._check_fitted()
        if quarter is not None and parse_quarter(str(quarter)) != self.quarter_:
            raise WorkbenchError(f"the forecaster was fitted as of {self.as_of_.date()}, in {self.quarter_}, "
                                 f"not {quarter}.", hint="fit it with an as_of date inside that quarter.")
        sim = simulation if simulation is not None else self.simulate()
        reps = self.reps_
        snap = self.snapshot_.merge(reps, on=schema.REP, how="left", suffixes=("_deal", ""))
        per_rep = pd.DataFrame({
            schema.REP: reps[schema.REP], schema.TEAM: reps[schema.TEAM], schema.REGION: reps[schema.REGION],
            "n_open_deals": reps[schema.REP].map(snap.groupby(schema.REP).size()).fillna(0).astype(int).to_numpy(),
            "open_pipeline": reps[schema.REP].map(snap.groupby(schema.REP)["amount_used"].sum()).fillna(0.0).to_numpy(),
            "closed_won_to_date": sim.closed,
            "pipeline_expected": reps[schema.REP].map(snap.groupby(schema.REP)["expected_amount"].sum()).fillna(0.0).to_numpy(),
            "new_business_expected": self.new_business_expected_ * reps[schema.REP].map(self.new_business_.rep_share).fillna(0.0).to_numpy(),
        })
        quotas = self._quota_table()
        frames = []
        for level in LEVELS:
            names, draws = sim.level_draws(level)
            if level == "rep":
                base = per_rep.copy()
            elif level == "company":
                base = per_rep.drop(columns=[schema.REP, schema.TEAM, schema.REGION]).sum().to_frame().T
                base[schema.TEAM], base[schema.REGION] = np.nan, np.nan
            else:
                agg = per_rep.drop(columns=[schema.REP]).groupby(level, sort=True)
                base = agg.sum(numeric_only=True).reset_index()
                base[schema.REGION] = agg[schema.REGION].first().to_numpy()
                base[schema.TEAM] = base[level] if level == "team" else np.nan
            base.insert(0, "entity", names)
            base.insert(0, "level", level)
            p10, p50, p90 = np.percentile(draws, [10, 50, 90], axis=0)
            base["expected_bookings"] = draws.mean(axis=0)
            base["p10"], base["p50"], base["p90"] = p10, p50, p90
            quota = pd.Series(names).map(quotas[level]).to_numpy(float) if len(quotas[level]) else np.full(len(names), np.nan)
            base["quota"] = quota
            with np.errstate(divide="ignore", invalid="ignore"):
                base["expected_attainment"] = base["expected_bookings"] / quota
                base["p_hit_quota"] = np.where(np.isnan(quota), np.nan, (draws >= quota[None, :]).mean(axis=0))
                base["gap_to_quota"] = quota - base["closed_won_to_date"].to_numpy(float)
                gap = base["gap_to_quota"].to_numpy(float)
                base["coverage"] = np.where(gap > 0, base["open_pipeline"].to_numpy(float) / gap, np.nan)
            frames.append(base)
        cols = ["level", "entity", schema.TEAM, schema.REGION, "n_open_deals", "open_pipeline",
                "closed_won_to_date", "pipeline_expected", "new_business_expected", "expected_bookings",
                "p10", "p50", "p90", "quota", "expected_attainment", "p_hit_quota", "gap_to_quota", "coverage"]
        out = pd.concat([f[cols] for f in frames], ignore_index=True)
        out["n_open_deals"] = out["n_open_deals"].astype(int)
        out.attrs.update(quarter=self.quarter_, as_of=self.as_of_, new_business_model=self.new_business_model_)
        return out

    # ------------------------------------------------------------------ baselines
    def baselines(self, forecast: pd.DataFrame | None = None) -> pd.DataFrame:
        """The weighted-pipeline and run-rate baselines, per level and entity.

        Returns
        -------
        DataFrame
            level, entity, weighted_pipeline (closed so far + stage win rate x
            amount), weighted_pipeline_p_hit (normal around it with its
            historical RMS error at this level and week), run_rate (bookings
            so far x quarter length / days elapsed; NaN on the first day).
        """
        self._check_fitted()
        start, end = quarter_bounds(self.quarter_)
        elapsed = (self.as_of_ - start) / DAY
        scale = ((end - start) / DAY) / elapsed if elapsed > 0 else np.nan
        snap = self.snapshot_
        rate = _lookup(snap["stage"], self.stage_win_rate_, 0.0).astype(float)
        wp = (rate * snap["amount_used"]).groupby(snap[schema.REP]).sum()
        reps = self.reps_.copy()
        closed = self.closed_.set_index(schema.REP)["closed_won_to_date"]
        reps["wp"] = reps[schema.REP].map(closed).fillna(0.0) + reps[schema.REP].map(wp).fillna(0.0)
        reps["rr"] = reps[schema.REP].map(closed).fillna(0.0) * scale
        reps[COMPANY] = COMPANY
        week = min(WEEKS, int(elapsed // 7) + 1)
        quotas = self._quota_table()
        out = []
        for level in LEVELS:
            key = schema.REP if level == "rep" else level
            g = reps.groupby(key, sort=True)[["wp", "rr"]].sum().reset_index()
            sig = self.baseline_sigma_
            s = sig[(sig["level"] == level) & (sig["week"] == week)]["sigma"]
            sigma = float(s.iloc[0]) if len(s) else np.nan
            quota = g[key].map(quotas[level]).to_numpy(float) if len(quotas[level]) else np.full(len(g), np.nan)
            p_hit = np.where(np.isnan(quota), np.nan,
                             sps.norm.sf(quota, loc=g["wp"].to_numpy(), scale=max(sigma, 1e-9)))
            out.append(pd.DataFrame({"level": level, "entity": g[key].to_numpy(), "weighted_pipeline": g["wp"].to_numpy(),
                                     "weighted_pipeline_p_hit": p_hit, "run_rate": g["rr"].to_numpy()}))
        return pd.concat(out, ignore_index=True)

    # ------------------------------------------------------------------ paths (fan chart)
    def cumulative_paths(self, n_draws: int = 2000, seed: int | None = None) -> pd.DataFrame:
        """Company cumulative bookings through the quarter: actual up to ``as_of``, then the drawn fan.

        Each draw's bookings still to come (the company total of
        :meth:`simulate` minus the closed-won so far) are spread over the rest
        of the quarter along the history's timing: the share of the bookings
        from this day of the quarter to its end that the history quarters had
        booked by each later day. The fan therefore ends exactly at the
        forecast's distribution; its shape in between is the historical one.

        Returns
        -------
        DataFrame
            date, kind ('actual' or 'forecast'), p10, p50, p90, mean (actual rows
            have the actual in all four).
        """
        self._check_fitted()
        start, end = quarter_bounds(self.quarter_)
        closed = self._closed_deals
        days = pd.date_range(start, self.as_of_, freq="D")
        actual = np.array([closed.loc[closed["closed_at"] < d, schema.AMOUNT].sum() for d in days])
        rows = [pd.DataFrame({"date": days, "kind": "actual", "p10": actual, "p50": actual,
                              "p90": actual, "mean": actual})]
        grid = pd.date_range(self.as_of_, end, freq="7D")
        if grid[-1] < end:
            grid = grid.append(pd.DatetimeIndex([end]))
        sim = self.simulate(n_draws=n_draws, seed=seed)
        total = sim.level_draws("company")[1][:, 0]
        base = float(sim.closed.sum())
        share = self._timing_share((grid - start) / DAY, (self.as_of_ - start) / DAY)
        cum = base + np.outer(share, total - base)
        q = np.percentile(cum, [10, 50, 90], axis=1)
        rows.append(pd.DataFrame({"date": grid, "kind": "forecast", "p10": q[0], "p50": q[1], "p90": q[2],
                                  "mean": cum.mean(axis=1)}))
        return pd.concat(rows, ignore_index=True)

    def _timing_share(self, day: np.ndarray, from_day: float) -> np.ndarray:
        """Share of the history's bookings between ``from_day`` and the quarter end booked by each ``day``."""
        won = self._won_history
        quarter = quarter_of(won["closed_at"])
        w = won[quarter.isin(self.history_)]
        offset = ((w["closed_at"] - quarter[quarter.isin(self.history_)].map(
            {q: quarter_bounds(q)[0] for q in self.history_})) / DAY).to_numpy()
        amount = w[schema.AMOUNT].to_numpy()
        later = offset >= from_day
        denom = amount[later].sum()
        if denom <= 0:
            # No history after this day of the quarter: spread evenly in time.
            span = max(day[-1] - from_day, 1e-9)
            return np.clip((day - from_day) / span, 0, 1)
        share = np.array([amount[later & (offset < d)].sum() for d in day]) / denom
        share[-1] = 1.0
        return share
