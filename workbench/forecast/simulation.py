"""The Monte Carlo: draws of the quarter's bookings per rep, summed up the hierarchy in every draw."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit, logit

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
