"""The demo events: each deal's path and follow-ups as timed events, labelled, in Arrow chunks."""

from __future__ import annotations


import numpy as np
import pyarrow as pa

from ..progress import tqdm
from ..schema import DEVIATION_KINDS as KINDS
from .config import ACTIVITIES, CLOSE_SLOT, CUSTOMER_TYPES, Config, DAY_S, FOLLOW_UP, LEAD_SOURCES, MANDATORY, MILESTONES, N_STAGES, PRODUCTS, PROPOSAL, QUALIFICATION, SEGMENTS, WON, seeded_rng
from .organisation import Organisation, draw_organisation, id_width
from .deals import draw_deals


def _strictly_increasing(case: np.ndarray, sec: np.ndarray) -> np.ndarray:
    """Bump ties (after rounding to seconds) by a second so each case's times strictly increase."""
    starts = np.r_[0, np.flatnonzero(np.diff(case)) + 1]
    pos = np.arange(len(case)) - np.repeat(starts, np.diff(np.r_[starts, len(case)]))
    big = np.int64(1) << np.int64(36)
    u = sec - pos + case.astype(np.int64) * big
    return np.maximum.accumulate(u) - case.astype(np.int64) * big + pos


def _label(case: np.ndarray, code: np.ndarray, sec: np.ndarray, n_cases: int, gap_s: float) -> np.ndarray:
    """The deviation kinds of the module docstring, per case: bool array (n_cases, len(KINDS)).

    ``case``, ``code`` and ``sec`` are the events sorted by case then time.
    """
    m = len(case)
    out = np.zeros((n_cases, len(KINDS)), bool)
    if m == 0:
        return out
    is_close = code >= WON
    csum = np.cumsum(is_close)
    starts = np.r_[0, np.flatnonzero(np.diff(case)) + 1]
    base = np.repeat(np.r_[0, csum[starts[1:] - 1]], np.diff(np.r_[starts, m]))
    closes_upto = csum - base                 # closings at or before each event, within its case
    pre = closes_upto == 0
    first_close = is_close & (closes_upto == 1)
    won = np.zeros(n_cases, bool)
    won[case[first_close]] = code[first_close] == WON
    out[:, KINDS.index("after_close")] = np.bincount(case[closes_upto - is_close >= 1], minlength=n_cases) > 0

    ps = pre & (code < N_STAGES)
    present = np.zeros((n_cases, N_STAGES), bool)
    present[case[ps], code[ps]] = True
    reach = np.full(n_cases, -1)
    np.maximum.at(reach, case[ps], code[ps])
    reach = np.where(won, N_STAGES, reach)
    out[:, KINDS.index("skipped_stage")] = (~present[:, MANDATORY] & (reach[:, None] > MANDATORY[None, :])).any(1)
    out[:, KINDS.index("won_without_milestones")] = won & ~present[:, MILESTONES].all(1)

    pos = np.arange(m)
    first = {}
    for stage in (QUALIFICATION, PROPOSAL):
        first[stage] = np.full(n_cases, m)
        sel = ps & (code == stage)
        np.minimum.at(first[stage], case[sel], pos[sel])
    out[:, KINDS.index("premature_proposal")] = first[PROPOSAL] < first[QUALIFICATION]

    idx = np.flatnonzero(ps)
    same = case[idx[1:]] == case[idx[:-1]]
    back = same & (code[idx[1:]] < code[idx[:-1]])
    out[case[idx[1:][back]], KINDS.index("stage_regression")] = True

    long_gap = (case[1:] == case[:-1]) & pre[:-1] & ((sec[1:] - sec[:-1]) > gap_s)
    out[case[:-1][long_gap], KINDS.index("followup_gap")] = True
    return out


def _dictionary(indices: np.ndarray, values) -> pa.Array:
    """A dictionary-encoded string column: codes into ``values`` (cheap to build and to write)."""
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(list(values), pa.string()))


def plain_table(table: pa.Table) -> pa.Table:
    """The table with dictionary columns decoded to plain strings (what pandas users expect)."""
    return table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                                 for f in table.schema]))


class Generation:
    """Everything drawn for one call: the organisation and the deals; events come out in chunks."""

    PILOT = 3_000

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.org = draw_organisation(cfg)
        # A pilot run measures events per deal, which sets the number of deals for the target size.
        pilot = draw_deals(cfg, self.org, self.PILOT)
        per_deal = len(draw_events(seeded_rng(cfg.seed, 3, 0), cfg, pilot, 0, self.PILOT)[0]) / self.PILOT
        self.n = max(10, round(cfg.events / per_deal))
        self.d = draw_deals(cfg, self.org, self.n)
        self.width = id_width(self.n)

    def chunks(self, progress: bool = False):
        """Yield (arrow table of events, deviation labels per deal) per chunk of deals, in case_id order."""
        size = int(self.cfg.options["chunk_cases"])
        with tqdm(total=self.n, desc="demo data", unit="deal", disable=not progress) as bar:
            for a in range(0, self.n, size):
                b = min(a + size, self.n)
                case, when, what, sec = draw_events(seeded_rng(self.cfg.seed, 3, self.n, a // size), self.cfg, self.d, a, b)
                labels = _label(case, what, sec, b - a, self.cfg.gap_days * DAY_S)
                yield _event_table(self.cfg, self.org, self.d, a, b, case, when, what, sec), labels
                bar.update(b - a)


def _followups(rng: np.random.Generator, d: dict, a: int, b: int, ci: np.ndarray, si: np.ndarray,
               gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Follow-ups inside every stage interval, so that no silence exceeds 0.98 x ``gap`` (except planted).

    Evenly spaced at most 0.7 x gap apart, each jittered by +-20 % of the spacing.
    """
    stage_ev = si < CLOSE_SLOT
    fc, fs = ci[stage_ev], si[stage_ev]
    begin = d["t"][a:b][fc, fs]
    length = d["nxt"][a:b][fc, fs] - begin
    k = np.maximum(np.ceil(length / (0.7 * gap)) - 1, 0).astype(np.int64) + rng.poisson(0.35, len(fc))
    k[d["silent"][a:b][fc] & (d["gap_slot"][a:b][fc] == fs)] = 0
    owner = np.repeat(np.arange(len(k)), k)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(k) - k, k)
    when = begin[owner] + (length / (k + 1))[owner] * (nth + 1 + rng.uniform(-0.2, 0.2, len(owner)))
    return fc[owner], when


def draw_events(rng: np.random.Generator, cfg: Config, d: dict, a: int, b: int):
    """Events of deals a..b-1 up to as_of, sorted: local case, time (days), activity code, seconds."""
    ci, si = np.nonzero(d["present"][a:b])
    fu_case, fu_when = _followups(rng, d, a, b, ci, si, cfg.gap_days)
    case = np.r_[ci, fu_case]
    when = np.r_[d["t"][a:b][ci, si], fu_when]
    what = np.r_[d["code"][a:b][ci, si], np.full(len(fu_case), FOLLOW_UP, np.int8)]
    order = np.lexsort((when, case))
    case, when, what = case[order], when[order], what[order]
    sec = _strictly_increasing(case, np.round(when * DAY_S).astype(np.int64))
    keep = sec <= round(cfg.span_days * DAY_S)
    return case[keep], when[keep], what[keep], sec[keep]


def _event_table(cfg: Config, org: Organisation, d: dict, a: int, b: int, case: np.ndarray, when: np.ndarray,
                 what: np.ndarray, sec: np.ndarray) -> pa.Table:
    """The canonical columns of a chunk's events, rep and amount as they were at each event."""
    g = case + a
    rep = np.where(d["handover"][g] & (when >= d["handover_at"][g]), d["rep2"][g], d["rep"][g])
    amount = np.where(d["revised"][g] & (when >= d["revised_at"][g]), d["amount2"][g], d["amount"][g])
    team = org.team[rep]
    width = id_width(len(d["created"]))
    return pa.table({
        "case_id": _dictionary(case, [f"D{i:0{width}d}" for i in range(a, b)]),
        "activity": _dictionary(what, ACTIVITIES),
        "timestamp": pa.array(cfg.start.value // 1_000 + sec * 1_000_000, pa.int64()).view(
            pa.timestamp("us", tz="UTC")),
        "rep": _dictionary(rep, org.rep),
        "team": _dictionary(team, org.team_name),
        "region": _dictionary(team, org.team_region),
        "amount": pa.array(amount, pa.float64()),
        "account": _dictionary(d["account"][g], d["account_names"]),
        "customer_type": _dictionary(d["existing"][g].astype(np.int32), CUSTOMER_TYPES),
        "lead_source": _dictionary(d["source"][g], LEAD_SOURCES),
        "segment": _dictionary(d["segment"][g], SEGMENTS),
        "product": _dictionary(d["product"][g], PRODUCTS),
    })
