"""The win model: P(an open deal is won before quarter end) from its state, and the rep and team factors."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit, logit

from .. import schema
from ..calendar import WEEKS, quarter_bounds, week_starts
from ..errors import WorkbenchError
from ..profile import SalesProcessProfile
from ..snapshot import DealStates, deal_states, snapshots
from .hierarchy import NO_TEAM, owner, positions, team_of

#: Categorical attributes used by the win model when the log has them.
CATEGORICAL = ("customer_type",)

#: Share of the history's won deals whose amount changed before the close below which open
#: amounts are taken as recorded (see :func:`amount_ratios`).
MIN_CHANGED = 0.05

#: Won deals a stage needs for an amount ratio of its own.
MIN_RATIO_DEALS = 30


def forecast_states(log: pd.DataFrame | DealStates, profile: SalesProcessProfile | str | None = None) -> DealStates:
    """The deal states the forecaster needs: the org columns, amount and :data:`CATEGORICAL` attributes.

    Carrying no other attribute keeps the many snapshots of a backtest cheap.
    A DealStates is returned as it is.
    """
    if isinstance(log, DealStates):
        return log
    return deal_states(log, profile=profile, attributes=(*CATEGORICAL, schema.CLOSE_DATE))  # those the log has


def design(snap: pd.DataFrame, stages: list[str], categories: dict[str, list[str]]) -> np.ndarray:
    """Design matrix of the win model (one row per open deal)."""
    n = len(snap)
    days_left = np.clip(snap["days_left"].to_numpy(float), 0, None)
    left = np.log1p(days_left)
    size = np.log1p(np.clip(snap["amount_used"].to_numpy(float), 0, None))

    def optional(column: str) -> np.ndarray:
        return snap[column].to_numpy(float) if column in snap.columns else np.full(n, np.nan)

    to_close = optional("days_to_close_date")
    known = ~np.isnan(to_close)
    cols = [np.ones(n), left,
            # The last weeks of a quarter are not the log of the first ones (quarter-end rushes).
            np.clip(1 - days_left / 14, 0, None), np.clip(1 - days_left / 35, 0, None),
            np.log1p(np.clip(snap["age_days"].to_numpy(float), 0, None)),
            np.log1p(np.clip(snap["time_in_stage_days"].to_numpy(float), 0, None)),
            np.log1p(np.clip(snap["days_since_last_activity"].to_numpy(float), 0, None)),
            np.log1p(snap["n_followups"].to_numpy(float)),
            snap["stages_skipped"].to_numpy() > 0,
            snap["regressions"].to_numpy() > 0,
            # Big deals close on a different clock (quarter-end pushes), so size bends the time effect too.
            size, (size, left),
            # What the rep expects, where the CRM records it: due this quarter, overdue, how far
            # out, how often pushed already; and how often the amount was changed.
            known & (to_close < days_left), known & (to_close < 0),
            np.where(known, np.log1p(np.clip(to_close, 0, 365)), 0.0),
            np.log1p(np.nan_to_num(optional("close_date_pushes"))),
            np.log1p(np.nan_to_num(optional("amount_changes")))]
    # Due this quarter by the one definition (snapshot.due_this_quarter, also where no close date is
    # recorded), and per stage: a due proposal is another deal than a due first call. Size per stage
    # too: a big deal in negotiation and a big first call are different bets (segments).
    due = snap["due"].to_numpy(float) if "due" in snap.columns else np.zeros(n)
    late = np.clip(1 - days_left / 35, 0, None)
    cols += [due, (due, left)]
    # Dummies compare integer codes: comparing the strings once per level is slow on large snapshots.
    stage = positions(snap["stage"], stages)
    for i in range(1, len(stages)):
        d = stage == i
        cols += [d, (d, left), (d, due), (d, size), (d, late)]
    for c, levels in categories.items():
        code = positions(snap[c].astype(str), levels) if c in snap.columns else np.full(n, -1)
        cols += [code == k for k in range(1, len(levels))]
    # One preallocated matrix, products written straight into it: temporaries of a million rows
    # per column are most of the time otherwise. Column-major, so each column is one contiguous run.
    X = np.empty((n, len(cols)), order="F")
    for j, col in enumerate(cols):
        if isinstance(col, tuple):
            np.multiply(*col, out=X[:, j])
        else:
            X[:, j] = col
    return X


def imputed_amount(won: pd.DataFrame, recorded: pd.Series) -> tuple[float, str]:
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


def shrunk_factors(frame: pd.DataFrame, org: pd.DataFrame, k: float) -> pd.Series:
    """Rep odds factors shrunk rep -> team -> company (Poisson-gamma empirical Bayes).

    ``frame`` has rep, won (0/1), p (model probability) and weight (see
    :func:`training_snapshots`).

    Examples
    --------
    >>> frame = pd.DataFrame({"rep": ["ann", "ann", "bob"], "won": [1.0, 1.0, 0.0], "p": [0.5, 0.5, 0.5],
    ...                       "weight": 1.0})
    >>> org = pd.DataFrame({"rep": ["ann", "bob"], "team": ["t", "t"]})
    >>> shrunk_factors(frame, org, k=1.0).round(3).to_dict()
    {'ann': 1.6, 'bob': 0.8}
    """
    # Summed per rep first: a rep has one team, and the table has up to millions of rows.
    return _shrunk(_observed_expected(frame, [schema.REP]), org, k)


def _observed_expected(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Weighted wins (o), expected wins (e) and rows (n) of ``frame`` summed by ``by``."""
    f = pd.DataFrame({**{c: frame[c] for c in by}, "o": frame["won"] * frame["weight"],
                      "e": frame["p"] * frame["weight"], "n": 1})
    return f.groupby(by, dropna=False, sort=False)[["o", "e", "n"]].sum()


def _shrunk(sums: pd.DataFrame, org: pd.DataFrame, k: float) -> pd.Series:
    """:func:`shrunk_factors` from the per-rep sums of :func:`_observed_expected`."""
    team_by_rep = pd.Series(team_of(sums.index, org), index=sums.index)
    team = sums.groupby(team_by_rep.to_numpy())[["o", "e"]].sum()
    team_factor = (team["o"] + k) / (team["e"] + k)
    rep = sums[sums.index.notna()]
    parent = team_by_rep[rep.index].map(team_factor).fillna(1.0)
    return ((rep["o"] + k * parent) / (rep["e"] + k)).rename("factor")


def training_snapshots(past: DealStates, quarters: list[str], *, cache: dict | None = None) -> pd.DataFrame:
    """The deals open at the start of each week of each past quarter, labelled with what happened.

    One row per deal and week it was open: the snapshot's columns but :data:`UNUSED`, ``quarter``,
    ``week``, ``won`` (1 if the deal was won before that quarter's end),
    ``closing`` and ``closed_at`` / ``closed_amount`` of its close, ``rep``
    (:data:`~workbench.snapshot.NO_REP` when it has none) and ``weight``, 1/13
    on every row. The forecast is asked about the deals open in one week, so
    every row counts alike, in the win model and in the rep factors: weighting
    each deal once in the factors but each row in the model would tilt every
    factor the same way (long-lived deals are mostly lost) and bias the whole
    forecast. The 1/13 keeps ``prior_strength`` in deals of a quarter.

    ``cache`` shares the weekly snapshots between fits on one log (the backtest):
    a snapshot of a past week depends only on the events before it, so sharing
    it between fits with later as-of dates cannot leak the future.

    Beyond :data:`MAX_TRAINING_ROWS` rows (a log of millions of deals: 14.5 million rows
    at 10 million events), the rows are those of a sample of the deals, one in ``2**k``
    chosen by a hash of the case_id (the same deals at every date and in every fit), and
    ``weight`` is ``2**k / 13``: each row stands for ``2**k`` deals in the sums
    (:func:`shrunk_factors`, :func:`in_sample_spread`, the weighted pipeline's error).
    """
    ev = past.events
    cache = {} if cache is None else cache
    keys = [(q, w + 1) for q in quarters for w in range(WEEKS)]
    level = _sample_level(past, [week_starts(q)[w - 1] for q, w in keys])
    if level:
        past = DealStates(ev[_sampled(ev, level)], past.profile, past.attributes)
        ev = past.events
    outcome = ev[ev["closing"].notna()][[schema.CASE, "closing", schema.TIMESTAMP, schema.AMOUNT]]
    outcome = outcome.rename(columns={schema.TIMESTAMP: "closed_at", schema.AMOUNT: "closed_amount"})
    missing = sorted({k for k in keys if (*k, level) not in cache}, key=lambda k: (quarter_bounds(k[0])[0], k[1]))
    if missing:
        dates = [week_starts(q)[w - 1] for q, w in missing]
        snaps = snapshots(past, as_of=dates, quarters=[q for q, _ in missing])
        bounds = np.searchsorted(snaps["snapshot"].to_numpy(), np.arange(len(missing) + 1))
        snaps = snaps.drop(columns=["snapshot", *(c for c in UNUSED if c in snaps.columns)])
        for i, (q, w) in enumerate(missing):
            cache[(q, w, level)] = snaps.iloc[bounds[i]:bounds[i + 1]]
    parts = [cache[(*k, level)] for k in keys]
    train = pd.concat(parts, ignore_index=True)
    sizes = [len(p) for p in parts]
    # Written once here rather than on every cached row: the cache lives as long as the backtest.
    # A take of the labels: repeating the strings themselves took 1.5 s per 3 million rows.
    code = {q: i for i, q in enumerate(quarters)}
    train["quarter"] = pd.array(quarters, dtype="str").take(np.repeat([code[q] for q, _ in keys], sizes))
    train["week"] = np.repeat(np.array([w for _, w in keys], dtype=np.int64), sizes)
    train = train.merge(outcome, on=schema.CASE, how="left")
    ends = pd.DatetimeIndex([quarter_bounds(q)[1] for q in quarters])
    q_end = ends[pd.Categorical(train["quarter"], categories=quarters).codes]
    train["won"] = ((train["closing"] == "won").to_numpy() & (train["closed_at"] < q_end).to_numpy()).astype(float)
    train[schema.REP] = owner(train)
    train["weight"] = 2.0**level / WEEKS
    return train


#: Snapshot columns nothing learned reads (what is read are the ages and days computed from
#: them): dropped from the training rows, a backtest's largest table (268 -> 209 bytes a row).
UNUSED = ("stage_rank", "created", "stage_entered", "last_activity", "last_activity_at", "n_events")


#: Weekly training rows above which the win model learns from a sample of the deals.
MAX_TRAINING_ROWS = 3_000_000


def _sample_level(past: DealStates, dates: list[pd.Timestamp]) -> int:
    """The smallest ``k`` for which one deal in ``2**k`` gives at most :data:`MAX_TRAINING_ROWS` rows
    (the deals open at each date: opened by then and not closed)."""
    ev = past.events
    code = ev["_case_code"].to_numpy()
    first = np.r_[True, code[1:] != code[:-1]] if len(code) else np.zeros(0, bool)
    stamps = ev[schema.TIMESTAMP]
    unit = stamps.dt.unit
    ts = stamps.array.as_unit(unit).asi8  # integers: a zoned time's to_numpy() is an array of objects
    opened = np.sort(ts[first])
    closed = np.sort(ts[ev["closing"].notna().to_numpy()])
    t = pd.DatetimeIndex(dates).as_unit(unit).asi8
    rows = int((np.searchsorted(opened, t, "right") - np.searchsorted(closed, t, "right")).sum())
    return max(0, int(np.ceil(np.log2(rows / MAX_TRAINING_ROWS)))) if rows > MAX_TRAINING_ROWS else 0


def _sampled(ev: pd.DataFrame, level: int) -> np.ndarray:
    """The events of the deals kept at sample level ``level`` (one in ``2**level``, nested: a deal
    kept at one level is kept at every lower one)."""
    code = ev["_case_code"].to_numpy()
    first = np.r_[True, code[1:] != code[:-1]]
    ids = ev[schema.CASE].to_numpy()[first].astype(object)
    keep = (pd.util.hash_array(ids) & np.uint64(2**level - 1)) == 0
    return keep[np.cumsum(first) - 1]


#: Standard deviation of the weak normal prior on the win model's coefficients (log odds).
PRIOR_SD = 5.0


class _Logit(sm.Logit):
    """statsmodels' Logit with a weak prior on its coefficients and its Hessian summed over row blocks.

    The prior, normal with mean 0 and sd :data:`PRIOR_SD` on every coefficient but the
    intercept: a stage that never wins late in a quarter separates the outcomes, the
    unpenalised maximum likelihood then does not exist, and Newton ran to its iteration
    limit with coefficients of -130. The prior keeps them finite and the fit converges in a
    few steps; where the data speak it changes nothing that matters (it is worth a
    fraction of one deal). The intercept is free, so the fitted probabilities still add
    up to the wins.

    statsmodels forms ``L * (1 - L) * X.T`` whole: a copy of the design (hundreds of MB
    on a million snapshot rows) made afresh in every Newton step. Blocks keep it small.
    """

    BLOCK = 8_192

    def __init__(self, endog: np.ndarray, exog: np.ndarray, **kwargs) -> None:
        super().__init__(endog, exog, **kwargs)
        self.penalty = np.r_[0.0, np.full(exog.shape[1] - 1, 1 / PRIOR_SD**2)]

    def _linear(self, params: np.ndarray) -> np.ndarray:
        """``X @ params``, kept for the last ``params``: Newton asks for the likelihood, the
        score and the Hessian at the same point, and each product is a pass over the design."""
        memo = getattr(self, "_memo", None)
        if memo is None or not np.array_equal(memo[0], params):
            memo = self._memo = (np.array(params, copy=True), self.exog @ params)
        return memo[1]

    def loglike(self, params: np.ndarray) -> float:
        # log(1 / (1 + exp(-z))) without rounding to log(0): the line search of maximize() compares
        # parameters whose worst rows are far out, and -inf against -inf says nothing.
        q = 2 * self.endog - 1
        fit = -np.sum(np.logaddexp(0.0, -q * self._linear(params)))
        return float(fit) - 0.5 * float(np.sum(self.penalty * params**2))

    def score(self, params: np.ndarray) -> np.ndarray:
        return np.dot(self.endog - self.cdf(self._linear(params)), self.exog) - self.penalty * params

    def hessian(self, params: np.ndarray) -> np.ndarray:
        X = self.exog
        L = self.cdf(self._linear(params))
        root = np.sqrt(L * (1 - L))
        H = -np.diag(self.penalty)
        for start in range(0, len(X), self.BLOCK):
            xw = X[start:start + self.BLOCK] * root[start:start + self.BLOCK, None]
            H -= xw.T @ xw  # a symmetric product: BLAS does half the work
        return H

    def maximize(self, start: np.ndarray | None = None, *, maxiter: int = 50, tol: float = 1e-8) -> np.ndarray:
        """The coefficients of largest penalised likelihood: Newton's method, halving a step until it gains.

        statsmodels' Newton takes every step whole. Near a feature that almost separates the outcomes
        the likelihood is flat in one direction (curvature only the prior's 1/25), and from a start off
        the maximum a whole step moved that coefficient by 278: the likelihood fell to nothing and the
        fit diverged (on a 480,000-row history it ended in a singular Hessian and a fallback taking 80 s;
        on another it ran 50 steps without converging). The penalised likelihood is concave, so a step
        that does not raise it is too long, never in the wrong direction. Stops, as statsmodels does,
        when no coefficient moves by ``tol``.
        """
        params = np.zeros(self.exog.shape[1]) if start is None else np.asarray(start, float)
        ll = self.loglike(params)
        for _ in range(maxiter):
            step = np.linalg.solve(self.hessian(params), self.score(params))
            t = 1.0
            while True:
                new = params - t * step
                new_ll = self.loglike(new)
                if new_ll >= ll or t < 1e-6:
                    break
                t /= 2
            done = np.max(np.abs(new - params), initial=0.0) < tol
            params, ll = new, new_ll
            if done:
                break
        return params


@dataclass(frozen=True)
class WinModel:
    """A fitted win model: the logistic regression and the design it was fitted on.

    Attributes
    ----------
    stages : list of str
        The stages seen in training (the first is the baseline).
    categories : dict
        Categorical attribute -> its levels (the first is the baseline).
    columns : ndarray of bool
        The design columns kept (constant ones carry nothing).
    result : statsmodels results
    """

    stages: list[str]
    categories: dict[str, list[str]]
    columns: np.ndarray
    result: object

    def predict(self, snap: pd.DataFrame) -> np.ndarray:
        """P(won before quarter end) of each deal of ``snap``, before the rep factor."""
        if len(snap) == 0:
            return np.zeros(0)
        X = design(snap, self.stages, self.categories)[:, self.columns]
        with np.errstate(over="ignore"):  # exp of a very negative score: the probability is 0, as it should be
            return np.clip(self.result.predict(X), 1e-6, 1 - 1e-6)


#: Rows of the evenly spaced subsample whose fit starts Newton on four times as many rows or more.
WARM_ROWS = 15_000


def _warm_start(y: np.ndarray, X: np.ndarray) -> np.ndarray | None:
    """Starting coefficients for the full fit: the fit on every k-th row (None on small data).

    Newton from zero takes about 14 steps over every row; from the fit on 15,000 rows, 7 (the
    answer does not depend on the start, only the time does). Measured on a 150,000-row history
    of the demo: a sample of 75,000 rows took 18 steps of its own, which saved nothing.
    """
    step = len(y) // WARM_ROWS
    if step < 4 or y[::step].sum() == 0:
        return None
    try:
        # A contiguous copy: the strided view made every step of the small fit slow.
        sub = np.asfortranarray(X[::step])
        return _Logit(y[::step], sub, check_rank=False).maximize()
    except np.linalg.LinAlgError:
        return None


def fit_win_model(train: pd.DataFrame, profile: SalesProcessProfile) -> tuple[WinModel, np.ndarray]:
    """Fit the logistic win model on :func:`training_snapshots` (``amount_used`` filled in).

    Returns
    -------
    WinModel, and the fitted P(won) of each row of ``train`` (as :meth:`WinModel.predict` gives
    it, without building the design matrix again).

    Raises
    ------
    WorkbenchError
        No deal of the history was won.
    """
    stages = [s for s in profile.stages if (train["stage"] == s).any()] or [profile.stages[0]]
    categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL
                  if c in train.columns and train[c].notna().any()}
    X = design(train, stages, categories)
    # Constant columns (e.g. no deal ever skipped a stage) carry no information. They are
    # dropped in place: a fancy-indexed copy of a million-row design took as long as the fit.
    columns = np.r_[True, X[:, 1:].max(axis=0) > X[:, 1:].min(axis=0)]
    keep = np.flatnonzero(columns)
    for j, k in enumerate(keep):
        if j != k:
            X[:, j] = X[:, k]
    X = X[:, :len(keep)]
    y = train["won"].to_numpy()
    if y.sum() == 0:
        raise WorkbenchError("no deal of the history was won, so win probabilities cannot be learned.",
                             hint="check the profile's 'won' activities, or give a longer log.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Newton on the Hessian (p x p) is far cheaper than IRLS's least squares on ~10^5 rows.
            # The rank check (a QR of X: 2 s on a million snapshot rows) is not needed: a
            # rank-deficient X makes the Hessian singular, and the fallback below takes over.
            # statsmodels is handed the maximum (no step left to take) for its results object.
            model = _Logit(y, X, check_rank=False)
            result = model.fit(method="newton", maxiter=0, disp=0, start_params=model.maximize(_warm_start(y, X)))
        except np.linalg.LinAlgError:
            # Collinear features: IRLS with a pseudo-inverse copes with them.
            result = sm.GLM(y, X, family=sm.families.Binomial()).fit(wls_method="pinv")
    with np.errstate(over="ignore"):
        fitted = np.clip(result.predict(X), 1e-6, 1 - 1e-6)
    # The results keep the design (hundreds of MB on a large log) and every fitted model is kept by
    # the forecasts that use it, a backtest's cache among them; predict() is handed its own design.
    result.remove_data()
    return WinModel(stages, categories, columns, result), fitted


def amount_ratios(train: pd.DataFrame) -> pd.Series:
    """Per stage, what the history's won deals booked over their amount at the snapshot.

    Measured on the training rows of deals later won whose amount was recorded
    at the snapshot. Where fewer than :data:`MIN_CHANGED` of those deals had
    their amount changed before the close, amounts are as recorded (ratio 1);
    a stage with fewer than :data:`MIN_RATIO_DEALS` such deals takes the ratio
    of all stages. ``attrs['overall']`` holds that ratio, ``attrs['changed']``
    the share of won deals whose amount changed.

    Examples
    --------
    >>> train = pd.DataFrame({"case_id": ["a", "a", "b"], "stage": ["Proposal"] * 3, "closing": ["won"] * 3,
    ...                       "amount": [100.0, 100.0, 50.0], "closed_amount": [90.0, 90.0, 50.0]})
    >>> amount_ratios(train).attrs["changed"]
    0.5
    """
    won = train[(train["closing"] == "won") & (train[schema.AMOUNT] > 0) & train["closed_amount"].notna()]
    if won.empty:
        out = pd.Series(dtype=float, name="ratio")
        out.attrs.update(overall=1.0, changed=0.0)
        return out
    changed = float((won["closed_amount"] != won[schema.AMOUNT]).groupby(won[schema.CASE]).any().mean())
    per = won.groupby("stage").agg(booked=("closed_amount", "sum"), recorded=(schema.AMOUNT, "sum"),
                                   deals=(schema.CASE, "nunique"))
    if changed < MIN_CHANGED:
        out = pd.Series(1.0, index=per.index, name="ratio")
        out.attrs.update(overall=1.0, changed=changed)
        return out
    overall = float(won["closed_amount"].sum() / won[schema.AMOUNT].sum())
    out = (per["booked"] / per["recorded"]).where(per["deals"] >= MIN_RATIO_DEALS, overall).rename("ratio")
    out.attrs.update(overall=overall, changed=changed)
    return out


def in_sample_spread(train: pd.DataFrame, quarters: list[str], org: pd.DataFrame,
                     prior_strength: float) -> tuple[float, float]:
    """Relative variances of a quarter's company-wide and per-team shocks, measured in sample.

    The fallback of the out-of-sample calibration (:mod:`.calibration`) when too few
    past quarters can be forecast. For each week of quarter, the variance of
    (won - expected) pipeline amount across the history quarters beyond what
    independent deals explain, relative to the expected amount squared (method of
    moments), averaged over weeks: ``phi`` for the company, and per team a
    ``phi_team`` of which the company's part is ``phi``. The rep factors used for a
    quarter here are learned from the other quarters, since in-sample factors would
    absorb the very team-quarter deviations being measured. ``train`` has the
    model's ``p`` and ``amount_if_won``.
    """
    # The other quarters' sums are all quarters' less this one's: the rows are summed once.
    by_quarter = _observed_expected(train, ["quarter", schema.REP])
    total = by_quarter.groupby(level=schema.REP, dropna=False, sort=False).sum()
    rep_code, reps = pd.factorize(train[schema.REP])
    # log factor per quarter and rep; the extra last row and column (code -1) keep a row's p as it is.
    log_factor = np.zeros((len(quarters) + 1, len(reps) + 1))
    for i, q in enumerate(quarters):
        known = q in by_quarter.index.get_level_values("quarter")
        mine = by_quarter.xs(q, level="quarter") if known else total.iloc[:0]
        others = total.sub(mine, fill_value=0.0)
        others = others[others["n"] > 0]  # a rep seen only in this quarter has no factor from the others
        if len(others):
            log_factor[i, :-1] = np.log(_shrunk(others, org, prior_strength).reindex(reps).fillna(1.0).to_numpy())
    quarter_code = pd.Categorical(train["quarter"], categories=quarters).codes
    p = expit(logit(train["p"].to_numpy()) + log_factor[quarter_code, rep_code])
    amt = train["amount_if_won"].to_numpy()
    won = (train["won"] * train["closed_amount"].fillna(train["amount_used"])).to_numpy()
    # Grouped on integer codes: the string keys of a million snapshot rows were most of the time.
    team_code = pd.factorize(np.append(team_of(pd.Index(reps), org), NO_TEAM)[rep_code])[0]
    if (quarter_code < 0).any():
        raise ValueError("in_sample_spread: every training row's quarter must be one of `quarters`")
    week = train["week"].to_numpy()
    # One integer per (quarter, week) cell, with room for a team code below it:
    # cell = (quarter * (WEEKS + 1) + week) * n_teams, and cell + team is the team's cell.
    n_teams = int(team_code.max(initial=0)) + 1
    cell = (quarter_code.astype(np.int64) * (WEEKS + 1) + week) * n_teams
    # Each row stands for v deals (v = 2**k on a sample of the deals, see training_snapshots): the
    # sums are weighted back to all deals, and the sample's own variance, v (v - 1) per row times
    # its squared surprise (Horvitz-Thompson), is not taken for the quarter's shock.
    v = train["weight"].to_numpy() * WEEKS
    values = np.column_stack([v * won, v * p * amt, v * p * (1 - p) * amt ** 2, v * (v - 1) * (won - p * amt) ** 2])

    def phi(key: np.ndarray) -> float:
        groups, idx = np.unique(key, return_inverse=True)
        g = np.column_stack([np.bincount(idx, weights=v, minlength=len(groups)) for v in values.T])
        week_of_group = (groups // n_teams) % (WEEKS + 1)
        excess = pd.Series((g[:, 0] - g[:, 1]) ** 2 - g[:, 2] - g[:, 3]).groupby(week_of_group).sum()
        scale = pd.Series(g[:, 1] ** 2).groupby(week_of_group).sum()
        return float(np.mean(np.clip(excess / scale.where(scale > 0), 0, None).fillna(0.0)))

    company = phi(cell)
    return company, max(0.0, phi(cell + team_code) - company)
