"""The demo deals: when they are created, how far they get, how long each stage takes, what is planted."""

from __future__ import annotations


import numpy as np

from ..references import MONTH_DAYS
from .config import ACTIVITIES, CLOSE_SLOT, CYCLE_EDGES_MONTHS, CYCLE_SHARES, Config, DISCOVERY, FOLLOW_UP, LEAD_SOURCES, LEAD_SOURCE_P, LEAD_SOURCE_WIN_EFFECT, LONGEST_CYCLE_MONTHS, LOST, LOST_DEPTH_P, NEGOTIATION, N_SLOTS, N_STAGES, PRODUCT_P, PROPOSAL, QUALIFICATION, QUARTER_SEASON, SEGMENT_MEDIAN_AMOUNT, SEGMENT_P, SEGMENT_WIN_EFFECT, SHORTEST_CYCLE_MONTHS, SKIP_SLOT, SLOT_CODE, SLOT_LEVEL, SLOT_WEIGHT, WON, categorical, day_of_month_start, months_since_epoch, seeded_rng
from .accounts import assign_accounts
from .organisation import ACCOUNT_A, ACCOUNT_B, ACCOUNT_C, ACCOUNT_D, Organisation


def _creation_days(rng: np.random.Generator, cfg: Config, n: int) -> np.ndarray:
    weeks = np.arange(0.0, cfg.span_days, 7.0)
    quarter = (months_since_epoch(cfg, weeks + 3.5) % 12) // 3
    intensity = (np.exp(cfg.options["growth_per_year"] * weeks / 365.25) * QUARTER_SEASON[quarter]
                 * rng.lognormal(0.0, 0.2, len(weeks)))
    per_week = rng.multinomial(n, intensity / intensity.sum())
    days = np.repeat(weeks, per_week) + rng.uniform(0.0, 7.0, n)
    return np.sort(np.minimum(days, cfg.span_days - 1e-3))


def _cycle_days(rng: np.random.Generator, existing: np.ndarray, depth: np.ndarray, scale: float) -> np.ndarray:
    """Cycles from the B2B survey's table per customer type, paired so that deeper deals get longer ones."""
    edges = np.array(CYCLE_EDGES_MONTHS)
    edges[0] = SHORTEST_CYCLE_MONTHS
    out = np.empty(len(existing))
    for value, kind in ((False, "new"), (True, "existing")):
        idx = np.flatnonzero(existing == value)
        bucket = rng.choice(6, size=len(idx), p=np.array(CYCLE_SHARES[kind]) / sum(CYCLE_SHARES[kind]))
        months = rng.uniform(edges[bucket], edges[bucket + 1])
        score = depth[idx] + rng.normal(0.0, 1.0, len(idx))
        out[idx[np.argsort(score, kind="stable")]] = np.sort(months)
    return out * MONTH_DAYS * scale


def _plant_prob(rate: float, eligible: np.ndarray, conforming: np.ndarray, factor: float, n: int) -> np.ndarray:
    """Per-case planting probability: ``rate`` of all cases, on eligible ones, less for conforming reps."""
    n_el = int(eligible.sum())
    if n_el == 0:
        return np.zeros(len(eligible))
    conf_share = conforming[eligible].mean()
    other = (1 - factor * conf_share) / max(1 - conf_share, 1e-9)
    mult = np.where(conforming, factor, other)
    return np.where(eligible, np.minimum(1.0, rate * n / n_el * mult), 0.0)


def _plant(rng: np.random.Generator, prob: np.ndarray, prefer: np.ndarray | None = None) -> np.ndarray:
    """Bernoulli draws; at least one when anything is eligible (tiny logs still show every kind).

    The forced one is taken among ``prefer`` (deals sure to be closed, so it shows) when possible.
    """
    hit = rng.random(len(prob)) < prob
    shown = hit if prefer is None else hit & prefer
    if not shown.any() and (prob > 0).any():
        pool = np.flatnonzero((prob > 0) & (prefer if prefer is not None else True))
        hit[rng.choice(pool if len(pool) else np.flatnonzero(prob > 0))] = True
    return hit


def _next_times(t: np.ndarray, present: np.ndarray, last: int) -> np.ndarray:
    """For each slot < last, the time of the next present slot (up to ``last``)."""
    nxt = np.empty_like(t)
    cur = t[:, last].copy()
    nxt[:, last:] = np.nan
    for i in range(last - 1, -1, -1):
        nxt[:, i] = cur
        cur = np.where(present[:, i], t[:, i], cur)
    return nxt


def draw_deals(cfg: Config, org: Organisation, n: int) -> dict:
    """Case-level draws for ``n`` deals: attributes, path, timing, plants (arrays of length n)."""
    rng = seeded_rng(cfg.seed, 2, n)
    d = _attributes(rng, cfg, org, n)
    _paths(rng, cfg, org, d)
    _timing(rng, cfg, org, d)
    _open_deals(rng, cfg, d)
    _timing_plants(rng, cfg, d)
    _ownership(rng, cfg, org, d)
    assign_accounts(cfg, d)
    d["nxt"] = _next_times(d["t"], d["present"], CLOSE_SLOT)
    return d


def _planter(cfg: Config, d: dict):
    """plant(kind, eligible, per) draws the deals that get ``kind``: its rate of ``per`` deals."""
    def plant(rng, kind, eligible, per, prefer=None):
        prob = _plant_prob(cfg.options["rates"][kind], eligible, d["conforming"],
                           cfg.options["conforming_deviation_factor"], int(per))
        return _plant(rng, prob, prefer)
    return plant


def _attributes(rng: np.random.Generator, cfg: Config, org: Organisation, n: int) -> dict:
    """Creation day, owner, segment, customer type, lead source, product, account and amount."""
    created = _creation_days(rng, cfg, n)
    rep = rng.choice(len(org.rep), n, p=org.weight / org.weight.sum())
    team = org.team[rep]
    # Deals created before their rep started go to a senior teammate.
    rep = np.where(created < org.start_day[rep], org.seniors[team, rng.integers(0, 2, n)], rep)
    seg_cum = np.cumsum(np.array([SEGMENT_P["Enterprise"], SEGMENT_P["Commercial"]]), axis=1)
    segment = categorical(rng, seg_cum[org.team_kind[team]])
    existing = rng.random(n) < 0.4
    source = rng.choice(len(LEAD_SOURCES), n, p=LEAD_SOURCE_P)
    product = categorical(rng, np.cumsum(PRODUCT_P, axis=1)[segment])
    # Accounts are drawn by .accounts once outcomes are known; these draws stay so that every later
    # draw of this stream (amounts, paths, timing) is as it was.
    n_accounts = int(min(len(ACCOUNT_A) * len(ACCOUNT_B) * len(ACCOUNT_C) * len(ACCOUNT_D), n // 2 + 10))
    rng.zipf(1.3, n)
    rng.permutation(n_accounts)
    amount = np.round(SEGMENT_MEDIAN_AMOUNT[segment] * np.where(existing, 0.7, 1.0)
                      * rng.lognormal(0.0, 0.75, n), -1)
    return dict(created=created, rep=rep, team=team, conforming=org.conforming[rep], segment=segment,
                existing=existing, source=source, product=product, amount=np.maximum(amount, 500.0))


def _paths(rng: np.random.Generator, cfg: Config, org: Organisation, d: dict) -> None:
    """Structural plants, the outcome and the stages on each deal's path (``present``, ``code``)."""
    n = len(d["created"])
    plant = _planter(cfg, d)
    everyone = np.ones(n, bool)
    sure_closed = d["created"] <= cfg.span_days - LONGEST_CYCLE_MONTHS * MONTH_DAYS * cfg.scale
    # Structural plants come first: they lower the odds of winning.
    premature = plant(rng, "premature_proposal", everyone, n, sure_closed)
    skip = plant(rng, "skipped_stage", everyone, n, sure_closed)
    regress = plant(rng, "stage_regression", everyone, n, sure_closed)

    logit = (-1.3 + 0.8 * d["conforming"] + org.win_effect[d["rep"]] + LEAD_SOURCE_WIN_EFFECT[d["source"]]
             + 0.5 * d["existing"] + SEGMENT_WIN_EFFECT[d["segment"]]
             - 0.8 * premature - 0.5 * skip - 0.3 * regress)
    won = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    depth = np.where(won, 7, 1 + rng.choice(6, n, p=LOST_DEPTH_P))
    depth = np.maximum(depth, np.select([regress, skip, premature], [4, 3, 2], 1))

    present = SLOT_LEVEL[None, :] <= depth[:, None]
    present[:, 1] &= rng.random(n) < 0.35                   # Research
    present[:, 8] &= rng.random(n) < 0.45                   # Send Information
    present[:, 3] &= premature
    reg_a = regress & (depth >= 5)
    present[:, 6:8] &= (regress & ~reg_a)[:, None]
    present[:, 10:12] &= reg_a[:, None]
    present[:, CLOSE_SLOT] = True
    present[:, CLOSE_SLOT + 1:] = False
    code = np.broadcast_to(SLOT_CODE, (n, N_SLOTS)).copy()
    code[:, 10] = np.where(rng.random(n) < 0.7, DISCOVERY, QUALIFICATION)
    code[:, CLOSE_SLOT] = np.where(won, WON, LOST)

    hi = np.where(won, 5, np.minimum(depth - 1, 5))
    skip_level = 2 + np.floor(rng.random(n) * np.maximum(hi - 1, 1)).astype(int)
    # Skipping a stage of a planted loop or the premature Proposal would hide both plants: skip First Contact.
    skip_level = np.where(regress | premature, 2, skip_level)
    for level, slot in SKIP_SLOT.items():
        present[:, slot] &= ~(skip & (skip_level == level))
    d.update(won=won, depth=depth, present=present, code=code, regress=regress,
             planted={"premature_proposal": premature, "skipped_stage": skip, "stage_regression": regress})


def _timing(rng: np.random.Generator, cfg: Config, org: Organisation, d: dict) -> None:
    """Event times ``t`` of every slot: the cycle from the survey's table split over the stages."""
    opts, n = cfg.options, len(d["created"])
    created, won, present, code = d["created"], d["won"], d["present"], d["code"]
    cycle = _cycle_days(rng, d["existing"], d["depth"], cfg.scale)
    closes = created + cycle <= cfg.span_days
    wwm = _planter(cfg, d)(rng, "won_without_milestones", won & closes, closes.sum())
    drop_negotiation = (rng.random(n) < 0.6) | d["regress"]  # a loop may revisit Discovery
    present[:, 12] &= ~(wwm & drop_negotiation)
    present[:, [5, 7]] &= ~(wwm & ~drop_negotiation)[:, None]
    d["planted"]["won_without_milestones"] = wwm

    weight = SLOT_WEIGHT[None, :] * rng.gamma(3.0, 1 / 3.0, (n, N_SLOTS)) * present
    weight[:, CLOSE_SLOT:] = 0.0
    bottleneck_team = int(opts["bottleneck_team"]) % len(org.team_name)
    stage = ACTIVITIES.index(opts["bottleneck_stage"])
    weight *= np.where((d["team"] == bottleneck_team)[:, None] & (code == stage), opts["bottleneck_factor"], 1.0)
    frac = np.cumsum(weight, axis=1) - weight
    frac /= weight.sum(axis=1, keepdims=True)

    # Quarter-end push: won deals due early in a quarter are often closed before the previous one ends.
    close_day = created + cycle
    month = months_since_epoch(cfg, close_day)
    into = close_day - day_of_month_start(cfg, month - month % 3)
    pulled = won & (into < 21) & (rng.random(n) < np.where(month % 12 < 3, 0.6, 0.25))
    new_cycle = cycle - into - rng.uniform(0.2, 6.0, n)
    cycle = np.where(pulled & (new_cycle > 0.5 * cycle), new_cycle, cycle)
    t = created[:, None] + cycle[:, None] * frac
    t[:, CLOSE_SLOT] = created + cycle
    d["t"] = t


def _stage_p90(t: np.ndarray, nxt: np.ndarray, stage_slot: np.ndarray, code: np.ndarray, span: float) -> np.ndarray:
    """Per stage, the p90 of the visits finished by as_of (NaN without any)."""
    done = stage_slot & (nxt <= span)
    p90 = np.full(N_STAGES, np.nan)
    for s in range(N_STAGES):
        dur = (nxt - t)[done & (code == s)]
        if len(dur):
            p90[s] = np.quantile(dur, 0.9)
    return p90


def _open_deals(rng: np.random.Generator, cfg: Config, d: dict) -> None:
    """Plant stalled open deals; move every other open deal under 0.95 x its stage's p90.

    Shifting a whole open deal in time keeps its finished visits' durations, so
    the p90s are the same before and after.
    """
    t, present, code, span, n = d["t"], d["present"], d["code"], cfg.span_days, len(d["created"])
    stage_slot = present.copy()
    stage_slot[:, CLOSE_SLOT:] = False
    p90 = _stage_p90(t, _next_times(t, present, CLOSE_SLOT), stage_slot, code, span)
    open_ = t[:, CLOSE_SLOT] > span
    seen = stage_slot & (t <= span)
    cur = N_SLOTS - 1 - np.argmax(seen[:, ::-1], axis=1)
    rows = np.arange(n)
    limit = np.nan_to_num(p90[np.minimum(code[rows, cur], N_STAGES - 1)], nan=np.inf)
    age = span - t[rows, cur]
    stalled = np.zeros(n, bool)
    candidates = np.flatnonzero(open_ & np.isfinite(limit))
    if len(candidates):
        shift = rng.uniform(2.2, 3.0, n) * limit - age
        # Stay within the longest cycle of as_of: older deals are all closed (no censoring of cycles).
        earliest = max(0.0, span - LONGEST_CYCLE_MONTHS * MONTH_DAYS * cfg.scale)
        ok = candidates[d["created"][candidates] - shift[candidates] >= earliest]
        if not len(ok):  # tiny logs: rather a stalled deal than none
            ok = candidates[d["created"][candidates] - shift[candidates] >= 0]
        n_stall = min(max(1, round(cfg.options["stalled_share"] * len(candidates))), len(ok))
        pick = rng.choice(ok, n_stall, replace=False) if len(ok) else ok
        stalled[pick] = True
        t[pick] -= shift[pick, None]
        later = np.arange(N_SLOTS)[None, :] > cur[pick, None]
        next_event = np.where(later & present[pick], t[pick], np.inf).min(axis=1)
        push = np.maximum(0.0, span + rng.uniform(3.0, 30.0, len(pick)) * cfg.scale - next_event)
        t[pick] += later * push[:, None]
    overdue = open_ & ~stalled & (age > 0.95 * limit)
    keep_age = rng.uniform(0.3, 0.9, n) * np.where(np.isfinite(limit), limit, 0.0)
    t += np.where(overdue, age - keep_age, 0.0)[:, None]
    d.update(created=t[:, 0].copy(), stalled=stalled, p90=p90, stage_slot=stage_slot)


def _timing_plants(rng: np.random.Generator, cfg: Config, d: dict) -> None:
    """Plant silent gaps (a stage interval without follow-ups) and events logged after the close."""
    t, present, code, n = d["t"], d["present"], d["code"], len(d["created"])
    span, scale = cfg.span_days, cfg.scale
    plant = _planter(cfg, d)
    interval = np.where(d["stage_slot"], _next_times(t, present, CLOSE_SLOT) - t, -np.inf)
    gap_slot = np.argmax(interval, axis=1)
    close = t[:, CLOSE_SLOT]
    closed = close <= span  # the rates of timing plants are shares of the closed deals
    silent = plant(rng, "followup_gap", (interval[np.arange(n), gap_slot] > 1.25 * cfg.gap_days) & closed,
                   closed.sum())
    late = plant(rng, "after_close", close + 45.0 * scale <= span, closed.sum())
    t[:, 14] = close + rng.uniform(1.0, 25.0, n) * scale
    t[:, 15] = t[:, 14] + rng.uniform(1.0, 20.0, n) * scale
    present[:, 14] = late
    present[:, 15] = late & (rng.random(n) < 0.3)
    code[:, 14:] = np.where(rng.random((n, 2)) < 0.75, FOLLOW_UP,
                            np.where(rng.random((n, 2)) < 0.5, NEGOTIATION, PROPOSAL))
    d["planted"].update(followup_gap=silent, after_close=late)
    d.update(silent=silent, gap_slot=gap_slot)


def _ownership(rng: np.random.Generator, cfg: Config, org: Organisation, d: dict) -> None:
    """Handovers to a senior teammate and amount revisions, each at a time part-way through the deal."""
    n, created, rep = len(d["created"]), d["created"], d["rep"]
    life = d["t"][:, CLOSE_SLOT] - created
    seniors = org.seniors[d["team"]]
    other = np.where(seniors[:, 0] == rep, seniors[:, 1],
                     np.where(seniors[:, 1] == rep, seniors[:, 0], seniors[np.arange(n), rng.integers(0, 2, n)]))
    d.update(
        handover=rng.random(n) < cfg.options["handover_share"],
        handover_at=created + rng.uniform(0.2, 0.9, n) * life,
        rep2=other,
        revised=rng.random(n) < cfg.options["revision_share"],
        revised_at=created + rng.uniform(0.3, 0.95, n) * life,
        amount2=np.maximum(np.round(d["amount"] * rng.lognormal(-0.05, 0.2, n), -1), 500.0),
    )
