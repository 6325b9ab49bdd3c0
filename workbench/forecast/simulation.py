"""The Monte Carlo: draws of the quarter's bookings per rep, summed up the hierarchy in every draw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import schema
from .hierarchy import COMPANY
from .new_business import NewBusinessModel


def simulate_pipeline(
    p: np.ndarray,
    amount: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    *,
    n_draws: int,
    rng: np.random.Generator,
    chunk: int = 1000,
) -> np.ndarray:
    """Draws of the amount won per group when deal ``i`` is won with probability ``p[i]``.

    The deals are drawn independently; what moves them together (a good quarter
    for everyone, a team's) is the shock of :func:`shock_factors`. Wins compare
    16-bit random integers with thresholds, so probabilities are resolved to 1/65536.

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
    chunk : int
        Draws simulated at a time (bounds memory to ``chunk x n`` floats).

    Returns
    -------
    ndarray (n_draws, n_groups)

    Examples
    --------
    >>> draws = simulate_pipeline(np.array([0.5]), np.array([100.0]), np.array([0]), 1, n_draws=4000,
    ...                           rng=np.random.default_rng(0))
    >>> round(float(draws.mean()) / 100, 1)
    0.5
    """
    out = np.zeros((n_draws, n_groups))
    n = len(p)
    if n == 0:
        return out
    order = np.argsort(group, kind="stable")
    amt, g = amount[order].astype(np.float32), group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    cols = g[starts]
    thresholds = np.clip(np.round(np.asarray(p, float)[order] * 65536), 0, 65535).astype(np.uint16)
    # Preallocated buffers: fresh 10^7-element arrays per chunk cost more than the arithmetic.
    size = min(chunk, n_draws) * n
    won_buf, value_buf = np.empty(size, dtype=bool), np.empty(size, dtype=np.float32)
    for a in range(0, n_draws, chunk):
        m = min(chunk, n_draws - a)
        bits = rng.bit_generator.random_raw(-(-m * n // 4)).view(np.uint16)[:m * n].reshape(m, n)
        won = won_buf[:m * n].reshape(m, n)
        value = value_buf[:m * n].reshape(m, n)
        np.less(bits, thresholds, out=won)
        np.multiply(won, amt, out=value)
        out[a:a + m, cols] = np.add.reduceat(value, starts, axis=1)
    return out


def shock_factors(
    n_draws: int,
    team: np.ndarray,
    sd: dict[str, float],
    *,
    weight: np.ndarray | None = None,
    df: dict[str, float] | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Multipliers of each rep's bookings still to come, per draw.

    ``sd['company']``: a log-normal factor ``exp(z - s^2 / 2)`` (mean 1) shared
    by everyone, a good or bad quarter. ``sd['team']`` and ``sd['rep']``: how
    the total splits, which the company total does not feel: each team's share
    is scaled by ``g_team / (the teams' mean of g weighted by their share)`` and
    each rep's share of its team likewise, with log-normal ``g = exp(s * z)``.
    The shares come from ``weight`` (each rep's expected bookings still to
    come; equal by default), so the weighted sum of the factors is exactly the
    company's, a team's reps move with their team, and more for one team means
    less for the others. For small ``s`` a member with share ``w`` varies by
    about ``(exp(s^2) - 1) (1 - 2w + sum of w^2)``.

    ``df`` gives, for the company and the team level, the degrees of freedom of
    the measurement behind ``s`` (a few past quarters): each draw then takes its
    own ``s`` from the scaled inverse chi-square posterior of a variance
    measured on ``df`` cases, so the ranges carry the uncertainty of the spread
    itself (a Student t in place of a normal: with 4 quarters a normal 80% range
    holds about 73% of outcomes).

    Returns
    -------
    ndarray (n_draws, n_reps)

    Examples
    --------
    >>> w = np.array([1.0, 1.0, 2.0])
    >>> f = shock_factors(1000, np.array([0, 0, 1]), {"team": 0.3, "rep": 0.2}, weight=w,
    ...                   rng=np.random.default_rng(0))
    >>> bool(np.allclose(f @ w, 4.0)), bool(f[:, 0].std() > 0.1)
    (True, True)
    """
    n = len(team)
    s_c, s_t, s_r = (float(sd.get(k, 0.0)) for k in ("company", "team", "rep"))
    df = df or {}

    def measured(s: float, level: str) -> float | np.ndarray:
        k = float(df.get(level, 0.0))
        return s if k <= 0 else s * np.sqrt(k / rng.chisquare(k, (n_draws, 1)))

    w = np.ones(n) if weight is None else np.clip(np.asarray(weight, float), 0.0, None)
    w = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / max(n, 1))
    factor = np.ones((n_draws, n))
    teams, idx = np.unique(team, return_inverse=True)
    team_w = np.bincount(idx, weights=w, minlength=len(teams))
    if s_t > 0 and n:
        g = np.exp(measured(s_t, "team") * rng.normal(0.0, 1.0, (n_draws, len(teams))))
        factor *= (g / (g @ team_w)[:, None])[:, idx]
    if s_r > 0 and n:
        g = np.exp(rng.normal(0.0, s_r, (n_draws, n)))
        onehot = np.zeros((n, len(teams)))
        # A team expected to book nothing splits evenly.
        size = np.bincount(idx, minlength=len(teams))[idx]
        onehot[np.arange(n), idx] = np.where(team_w[idx] > 0, w / np.where(team_w[idx] > 0, team_w[idx], 1.0),
                                             1.0 / size)
        factor *= g / (g @ onehot)[:, idx]
    if s_c > 0:
        s = measured(s_c, "company")
        factor *= np.exp(s * rng.normal(0.0, 1.0, (n_draws, 1)) - s ** 2 / 2)
    return factor


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
    factor : ndarray (n_draws, n_reps) or float
        The multiplier of each draw's bookings still to come: the calibrated
        shocks times the run-rate combination (:meth:`QuotaForecast.simulate`).
    """

    reps: pd.DataFrame
    closed: np.ndarray
    pipeline: np.ndarray
    new_business: np.ndarray
    factor: np.ndarray | float = 1.0

    @property
    def rep_draws(self) -> np.ndarray:
        """Total bookings per draw and rep: closed so far plus the shocked bookings still to come."""
        return self.closed[None, :] + (self.pipeline + self.new_business) * self.factor

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
