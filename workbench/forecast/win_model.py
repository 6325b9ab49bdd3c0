"""The win model: P(an open deal is won before quarter end) from its state, and the rep and team factors."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit, logit

from .. import schema
from ..calendar import quarter_bounds, week_starts
from ..errors import WorkbenchError
from ..profile import SalesProcessProfile
from ..snapshot import DealStates, deal_states, snapshot
from .hierarchy import lookup, owner, positions, team_of

#: Categorical attributes used by the win model when the log has them.
CATEGORICAL = ("customer_type",)


def forecast_states(log: pd.DataFrame | DealStates, profile: SalesProcessProfile | str | None = None) -> DealStates:
    """The deal states the forecaster needs: the org columns, amount and :data:`CATEGORICAL` attributes.

    Carrying no other attribute keeps the many snapshots of a backtest cheap.
    A DealStates is returned as it is.
    """
    if isinstance(log, DealStates):
        return log
    present = tuple(c for c in CATEGORICAL if isinstance(log, pd.DataFrame) and c in log.columns)
    return deal_states(log, profile=profile, attributes=present)


def design(snap: pd.DataFrame, stages: list[str], categories: dict[str, list[str]]) -> np.ndarray:
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
    stage = positions(snap["stage"], stages)
    for i in range(1, len(stages)):
        d = stage == i
        cols += [d, d * left]
    for c, levels in categories.items():
        code = positions(snap[c].astype(str), levels) if c in snap.columns else np.full(n, -1)
        cols += [code == k for k in range(1, len(levels))]
    # One preallocated matrix: column_stack of the list would copy every column once more.
    # Column-major, so that each column is written in one contiguous run.
    X = np.empty((n, len(cols)), order="F")
    for j, col in enumerate(cols):
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

    ``frame`` has rep, won (0/1), p (model probability) and weight (1 / the
    number of snapshots the deal appears in, so a deal counts once).
    """
    # Summed per rep first: a rep has one team, and the table has up to millions of rows.
    f = pd.DataFrame({schema.REP: frame[schema.REP], "o": frame["won"] * frame["weight"],
                      "e": frame["p"] * frame["weight"]})
    sums = f.groupby(schema.REP, dropna=False)[["o", "e"]].sum()
    team_by_rep = pd.Series(team_of(sums.index, org), index=sums.index)
    team = sums.groupby(team_by_rep.to_numpy())[["o", "e"]].sum()
    team_factor = (team["o"] + k) / (team["e"] + k)
    rep = sums[sums.index.notna()]
    parent = team_by_rep[rep.index].map(team_factor).fillna(1.0)
    return ((rep["o"] + k * parent) / (rep["e"] + k)).rename("factor")


def training_snapshots(past: DealStates, quarters: list[str], *, cache: dict | None = None) -> pd.DataFrame:
    """The deals open at the start of each week of each past quarter, labelled with what happened.

    One row per deal and week it was open: the snapshot's features, ``quarter``,
    ``week``, ``won`` (1 if the deal was won before that quarter's end),
    ``closing`` and ``closed_at`` / ``closed_amount`` of its close, ``rep``
    (:data:`~workbench.snapshot.NO_REP` when it has none) and ``weight`` (1 over
    the number of rows of the deal, so that each deal counts once).

    ``cache`` shares the weekly snapshots between fits on one log (the backtest):
    a snapshot of a past week depends only on the events before it, so sharing
    it between fits with later as-of dates cannot leak the future.
    """
    ev = past.events
    outcome = ev[ev["closing"].notna()][[schema.CASE, "closing", schema.TIMESTAMP, schema.AMOUNT]]
    outcome = outcome.rename(columns={schema.TIMESTAMP: "closed_at", schema.AMOUNT: "closed_amount"})
    rows = []
    for q in quarters:
        for w, t in enumerate(week_starts(q)):
            key = (q, w + 1)
            if cache is None or key not in cache:
                s = snapshot(past, as_of=t, quarter=q)
                s["quarter"], s["week"] = q, w + 1
                if cache is not None:
                    cache[key] = s
            rows.append(cache[key] if cache is not None else s)
    train = pd.concat(rows, ignore_index=True).merge(outcome, on=schema.CASE, how="left")
    q_end = train["quarter"].map({q: quarter_bounds(q)[1] for q in quarters})
    train["won"] = ((train["closing"] == "won") & (train["closed_at"] < q_end)).astype(float)
    train[schema.REP] = owner(train)
    train["weight"] = 1.0 / train.groupby(schema.CASE)[schema.CASE].transform("size")
    return train


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
        return np.clip(self.result.predict(X), 1e-6, 1 - 1e-6)


def fit_win_model(train: pd.DataFrame, profile: SalesProcessProfile) -> WinModel:
    """Fit the logistic win model on :func:`training_snapshots` (``amount_used`` filled in).

    Raises
    ------
    WorkbenchError
        No deal of the history was won.
    """
    stages = [s for s in profile.stages if (train["stage"] == s).any()] or [profile.stages[0]]
    categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in CATEGORICAL
                  if c in train.columns and train[c].notna().any()}
    X = design(train, stages, categories)
    # Constant columns (e.g. no deal ever skipped a stage) carry no information.
    columns = np.r_[True, X[:, 1:].std(axis=0) > 0]
    X = X[:, columns]
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
            result = sm.Logit(y, X, check_rank=False).fit(method="newton", maxiter=50, disp=0)
        except np.linalg.LinAlgError:
            # Collinear features: IRLS with a pseudo-inverse copes with them.
            result = sm.GLM(y, X, family=sm.families.Binomial()).fit(wls_method="pinv")
    return WinModel(stages, categories, columns, result)


def quarter_shocks(train: pd.DataFrame, quarters: list[str], org: pd.DataFrame, prior_strength: float,
                   ratio: float) -> tuple[float, float]:
    """SDs of the common log-odds shocks of the company and of each team in a quarter.

    For each week of quarter, the variance of (won - expected) pipeline
    amount across the history quarters beyond what independent deals
    explain, relative to the expected amount squared (method of moments),
    averaged over weeks: ``phi`` for the company, and per team a
    ``phi_team`` of which the company's part is ``phi``. A multiplicative
    variance ``phi`` becomes a log-odds SD of ``sqrt(log(1 + phi))``. The
    rep factors used for a quarter here are learned from the other quarters,
    since in-sample factors would absorb the very team-quarter deviations
    being measured. ``train`` has the model's ``p`` and ``amount_used``.
    """
    p = np.empty(len(train))
    slim = train[[schema.REP, "won", "weight", "p"]]  # rows are copied once per quarter
    for q in quarters:
        rows = (train["quarter"] == q).to_numpy()
        factor = shrunk_factors(slim[~rows], org, prior_strength) if (~rows).any() else pd.Series(dtype=float)
        p[rows] = expit(logit(train.loc[rows, "p"].to_numpy()) + np.log(lookup(train.loc[rows, schema.REP], factor, 1.0)))
    amt = train["amount_used"].to_numpy() * ratio
    won = (train["won"] * train["closed_amount"].fillna(train["amount_used"])).to_numpy()
    team = team_of(train[schema.REP], org)
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
