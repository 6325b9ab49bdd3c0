"""The demo quotas: each rep's trailing bookings, seasonality and stretch, scaled to a realistic attainment."""

from __future__ import annotations


import numpy as np
import pandas as pd

from .config import CLOSE_SLOT, Config, day_of_month_start, months_since_epoch, seeded_rng
from .organisation import Organisation


def _quarter_label(q: int) -> str:
    return f"{1970 + q // 4}Q{q % 4 + 1}"


def _bookings(cfg: Config, d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Won deals closed by as_of: rep credited on the close event, amount on it, close quarter index."""
    close = d["t"][:, CLOSE_SLOT]
    booked = d["won"] & (close <= cfg.span_days)
    rep = np.where(d["handover"] & (close >= d["handover_at"]), d["rep2"], d["rep"])[booked]
    amount = np.where(d["revised"] & (close >= d["revised_at"]), d["amount2"], d["amount"])[booked]
    return rep, amount, months_since_epoch(cfg, close[booked]) // 3


HISTORY_QUARTERS = 4


def _quota_base(org: Organisation, booked: np.ndarray, active: np.ndarray, q_start: np.ndarray) -> np.ndarray:
    """Per rep and quarter: trailing four-quarter bookings times last year's seasonal index.

    Reps with under two quarters of history start from their team's median,
    ramped (half in their first quarter, three quarters in the second).
    """
    nr, nq = booked.shape
    company = booked.sum(axis=0)
    base = np.zeros((nr, nq))
    for j in range(nq):
        window = slice(max(0, j - HISTORY_QUARTERS), j)
        last_year = company[j - 4:j].mean() if j >= 4 else 0.0
        season = company[j - 4] / last_year if last_year > 0 else 1.0
        tenure = active[:, window].sum(axis=1)
        history = (booked[:, window] * active[:, window]).sum(axis=1) / np.maximum(tenure, 1)
        experienced = (tenure >= 2) & (org.start_day < q_start[j])
        ramp = np.where(tenure == 0, 0.5, 0.75)
        for k in range(len(org.team_name)):
            in_team = org.team == k
            ref = history[in_team & experienced]
            ref = np.median(ref) if len(ref) else (history[active[:, j]].mean() if j else 0.0)
            base[in_team, j] = np.where(experienced[in_team], history[in_team], ref * ramp[in_team])
        base[:, j] *= season
        positive = base[active[:, j] & (base[:, j] > 0), j]
        # Every active rep carries a quota, even after quarters without bookings.
        base[:, j] = np.maximum(base[:, j], 0.3 * np.median(positive)) if len(positive) else 1.0
    return base


def quota_table(cfg: Config, org: Organisation, d: dict) -> tuple[pd.DataFrame, dict]:
    """Quarterly quota per rep from trailing bookings, seasonality and a stretch."""
    rng = seeded_rng(cfg.seed, 4)
    rep, amount, quarter = _bookings(cfg, d)
    last = int(months_since_epoch(cfg, np.array([cfg.span_days - 1e-6]))[0] // 3)
    first = int(quarter.min()) if len(quarter) else last
    nq, nr = last - first + 1, len(org.rep)
    booked = np.zeros((nr, nq))
    np.add.at(booked, (rep, quarter - first), amount)
    q_start = day_of_month_start(cfg, (np.arange(first, last + 1) * 3).astype(np.int64))
    q_end = day_of_month_start(cfg, (np.arange(first + 1, last + 2) * 3).astype(np.int64))
    active = org.start_day[:, None] < q_end[None, :]
    company = booked.sum(axis=0)

    raw = _quota_base(org, booked, active, q_start)
    raw *= cfg.options["quota_stretch"] * active

    target = cfg.options["team_attainment"] * np.exp(rng.normal(0.0, 0.012, nq))
    scale = np.ones(nq)
    closed = slice(0, nq - 1)
    scale[closed] = company[closed] / (target[closed] * raw[:, closed].sum(axis=0))
    scale[-1] = np.median(scale[max(0, nq - 5):nq - 1]) if nq > 1 else 1.0
    quota = raw * scale[None, :]
    quota = np.where(quota >= 1_000, np.round(quota, -2), np.maximum(np.round(quota), 1.0)) * active
    r_idx, q_idx = np.nonzero(active & (quota > 0))
    table = pd.DataFrame({
        "rep": org.rep[r_idx],
        "team": org.team_name[org.team[r_idx]],
        "quarter": [_quarter_label(first + j) for j in q_idx],
        "quota": quota[r_idx, q_idx],
    })
    hit = (booked >= quota) & (quota > 0)
    n_quota = (quota > 0).sum(axis=0)
    stats = {
        "quarters": [_quarter_label(first + j) for j in range(nq)],
        "company_attainment": [float(x) for x in company / np.maximum(quota.sum(axis=0), 1)],
        "share_reps_at_quota": [float(x) for x in hit.sum(axis=0) / np.maximum(n_quota, 1)],
    }
    return table, stats
