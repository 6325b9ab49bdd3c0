"""Realistic demo CRM data with planted ground truth.

:func:`generate_demo_data` builds a CRM sales event log in the shape of the
default PPVVC profile (seeds/DIGEST.md, seed 003), a reps table and a quarterly
quota table, and records everything it planted in :class:`GroundTruth` so that
detectors can be scored against it. :func:`write_demo_data` writes the same data
to files, streaming the event log in Parquet row groups so memory stays bounded.

How a deal is drawn
-------------------
* Deals are created over the preset's span (4 years by default) week by week
  with growth (15 %/year), quarterly seasonality (Q4 strongest) and weekly noise.
* Each deal has an owner (rep, so team and region), a segment (SMB / Mid-Market /
  Enterprise, by team kind), customer type (new / existing), lead source, product,
  account and a lognormal amount (bigger for Enterprise).
* Its outcome (won, or lost after a stage) follows a logistic model of the rep
  (conforming reps win about 35 %, the others about 20 %), lead source, customer
  type, segment and planted deviations; it is stable over time.
* Its cycle (first event to close) is drawn from the seed's B2B table
  (seed 003, l.66-72) for its customer type, buckets [0,1), [1,3), [3,6), [6,9),
  [9,12), [12,24] months of 365.25/12 days, uniform inside a bucket; cycles are
  paired with outcomes so that deals lost early are shorter (the marginal
  distribution stays the table's). ``time_scale`` multiplies every duration.
* Stage times split the cycle (gamma weights per stage); for the bottleneck team
  the Proposal weight is multiplied by ``truth.bottleneck['factor']``.
* Follow-ups fill every interval between two stage events so that no silent gap
  exceeds 0.98 x ``followup_gap_days``; longer intervals get more follow-ups.
* Won deals closing in the first three weeks of a quarter are sometimes pulled
  back to the end of the previous quarter (the quarter-end push, strongest into Q4).
* Events after ``as_of`` do not exist: recent deals are open. A few open deals are
  planted as stalled; every other open deal is moved so that its time in its
  current stage stays below 0.95 x the stage's p90 (see "stalled" below).
* 8 % of deals are handed over to a senior teammate part-way; 30 % have their
  amount revised once. The rep and amount of every event are the values at its time.

Definitions of the planted deviations (exact; the detectors use the same)
-------------------------------------------------------------------------
Events of a case are taken in log order (case, timestamp). The *close* is the
case's first ``Closed Won`` / ``Closed Lost`` event; *pre-close events* are
those strictly before it (all events when the case is open). *Stage events* are
the profile's stages (not Follow-up, not closings); the rank of a stage is its
position in ``PPVVC.stages``.

skipped_stage
    A mandatory stage (``PPVVC.mandatory``) has no pre-close event although the
    case reached a later point: a pre-close stage event of higher rank, or a
    Closed Won close.
premature_proposal
    A pre-close Proposal event has no Qualification event before it.
stage_regression
    Two consecutive pre-close stage events (follow-ups ignored) go from a higher
    to a strictly lower rank.
followup_gap
    Two consecutive events of the case, the first of them pre-close, are more
    than ``followup_gap_days`` apart (45 days x time_scale). The silence between
    the last event of an open case and ``as_of`` does not count.
after_close
    The case has at least one event after its close (Follow-up, sometimes a stage).
won_without_milestones
    The case closed won and a milestone stage (``PPVVC.milestones`` values:
    Qualification, Discovery Meeting, Proposal, Negotiation) has no pre-close event.

Default rates, as shares of the deals closed by ``as_of`` (option ``rates``):
skipped_stage 5 %, premature_proposal 4 %, stage_regression 6 %, followup_gap 5 %,
after_close 4 %, won_without_milestones 3 %; conforming reps deviate 0.3x as often
as the average, the others about 1.35x. Even 'tiny' gets at least one of each kind.

``truth.deviations`` holds every (case_id, kind) that these definitions find in
the generated log (computed on the final events), with ``planted`` True where
that kind was planted on purpose and False where it follows from another plant
(a premature proposal followed by Qualification is also a regression; a won deal
without Discovery Meeting is also a skipped stage). Unplanted cases are clean.

stalled
    An open case whose time in its current stage at ``as_of`` (since the last
    stage event) exceeds 2.2-3x that stage's p90 over the stage visits finished
    before ``as_of`` (a visit ends at the next stage or closing event). No other
    open deal exceeds 0.95x that p90.

Quotas
------
Per rep and quarter (seed 002, l.43-57): the rep's trailing four-quarter
bookings, times last year's seasonal index of that quarter, then a stretch;
new reps ramp from half the team median. Each closed quarter is then scaled so
company attainment is 99 % with a little noise (seed 002, l.9-11); the current
quarter's quota is set forward from the recent scales without its bookings.
Bookings are the amount of the Closed Won event credited to the rep on it, in
the quarter of the close. With seed 7 at 'default', steady-state quarters come
out at 97-102 % company attainment with 44 % of rep-quarters at or above quota
(lumpy, right-skewed bookings put most reps below the mean).

Sizes
-----
==========  ===========  =====  =====  =====  ==========
size        events       reps   teams  years  time scale
==========  ===========  =====  =====  =====  ==========
tiny        ~800         6      2      1.5    0.1
small       ~20,000      12     4      3      1
default     ~100,000     24     4      4      1
1m          ~1,000,000   240    40     4      1
10m         ~10,000,000  2,400  400    4      1
int N       ~N           24 per 100k events, 4 years, time scale 1
==========  ===========  =====  =====  =====  ==========

Speed and memory (measured by hand with /usr/bin/time, whole process incl. imports;
2-core machine shared with other jobs, load average ~4.5)
------------------------------------------------------------------------------------
Deals are drawn as whole numpy arrays (no per-event or per-deal Python loop);
events are expanded, labelled and written per chunk of 40,000 deals.

========================================  ==========  ========  =========
call                                      wall        CPU       peak RSS
========================================  ==========  ========  =========
generate_demo_data(size="default")        2.4 s       1.4 s     0.21 GB
generate_demo_data(size="1m")             6.0 s       3.6 s     0.58 GB
write_demo_data(out, size="1m")           5.3 s       3.4 s     0.37 GB
write_demo_data(out, size="10m")          38 s        22 s      1.04 GB
========================================  ==========  ========  =========
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .calendar import to_utc
from .errors import WorkbenchError
from .references import B2B_CYCLE_TABLE, MANAGER_ATTAINMENT, MONTH_DAYS
from .profile import PPVVC
from .schema import DEVIATION_KINDS as KINDS

__all__ = ["DemoData", "GroundTruth", "generate_demo_data", "write_demo_data", "KINDS", "PRESETS"]


DAY_S = 86_400

# Activity codes: the PPVVC stages by rank, then Follow-up and the two closings.
ACTIVITIES = PPVVC.stages + PPVVC.loops[:1] + PPVVC.won[:1] + PPVVC.lost[:1]
(LEAD, RESEARCH, FIRST_CONTACT, QUALIFICATION, DISCOVERY, SEND_INFO, PROPOSAL, NEGOTIATION,
 FOLLOW_UP, WON, LOST) = range(len(ACTIVITIES))
N_STAGES = len(PPVVC.stages)
MANDATORY = np.array([PPVVC.stages.index(s) for s in PPVVC.mandatory])
MILESTONES = np.array(sorted({PPVVC.stages.index(s) for s in PPVVC.milestones.values()}))

# Seed 003, l.66-72 (the table kpis compares against); '> 12 months' is capped at 24 months.
LONGEST_CYCLE_MONTHS = 24.0
SHORTEST_CYCLE_MONTHS = 0.1
CYCLE_EDGES_MONTHS = (*B2B_CYCLE_TABLE["low_months"], LONGEST_CYCLE_MONTHS)
CYCLE_SHARES = {kind: tuple(B2B_CYCLE_TABLE[kind]) for kind in ("new", "existing")}

# The slots of a deal's path, in time order: (activity, level). A slot is on the
# path when the deal got at least that far (level 7 = won) and, for optional and
# planted slots, when drawn. Slots 3, 6-7 and 10-11 exist only for planted deviations.
_SLOTS = (
    (LEAD, 1), (RESEARCH, 1), (FIRST_CONTACT, 2),
    (PROPOSAL, 2),                      # 3: premature proposal
    (QUALIFICATION, 3), (DISCOVERY, 4),
    (QUALIFICATION, 4), (DISCOVERY, 4),  # 6-7: regression back from Discovery
    (SEND_INFO, 4), (PROPOSAL, 5),
    (DISCOVERY, 5), (PROPOSAL, 5),       # 10-11: regression back from Proposal
    (NEGOTIATION, 6),
    (WON, 7),                           # 13: the close (Won or Lost)
    (FOLLOW_UP, 8), (FOLLOW_UP, 8),     # 14-15: events after the close
)
SLOT_CODE = np.array([a for a, _ in _SLOTS], dtype=np.int8)
SLOT_LEVEL = np.array([lv for _, lv in _SLOTS], dtype=np.int8)
CLOSE_SLOT = 13
N_SLOTS = len(_SLOTS)
# Relative time spent in each slot's stage (before noise).
SLOT_WEIGHT = np.array([0.6, 0.5, 0.7, 0.8, 1.2, 1.4, 0.8, 0.8, 0.5, 1.5, 0.8, 0.8, 1.2, 0, 0, 0])
# Level of a skipped stage -> its slot.
_SKIP_SLOT = {2: 2, 3: 4, 4: 5, 5: 9}
# Share of lost deals by the last level they reached (most drop out early).
LOST_DEPTH_P = np.array([0.22, 0.25, 0.20, 0.15, 0.11, 0.07])

SEGMENTS = ("SMB", "Mid-Market", "Enterprise")
SEGMENT_P = {"Enterprise": (0.05, 0.35, 0.60), "Commercial": (0.55, 0.40, 0.05)}
SEGMENT_MEDIAN_AMOUNT = np.array([9_000.0, 32_000.0, 110_000.0])
SEGMENT_WIN_EFFECT = np.array([0.2, 0.0, -0.2])
LEAD_SOURCES = ("Inbound", "Outbound", "Referral", "Partner", "Event")
LEAD_SOURCE_P = np.array([0.32, 0.28, 0.14, 0.14, 0.12])
LEAD_SOURCE_WIN_EFFECT = np.array([0.2, -0.35, 0.55, 0.25, -0.05])
PRODUCTS = ("Core Platform", "Analytics Add-on", "Enterprise Suite", "Implementation Services")
PRODUCT_P = np.array([(0.60, 0.30, 0.00, 0.10), (0.45, 0.30, 0.10, 0.15), (0.15, 0.20, 0.45, 0.20)])
CUSTOMER_TYPES = ("new", "existing")
QUARTER_SEASON = np.array([0.85, 0.95, 1.0, 1.25])  # creation intensity by quarter of year

REGIONS = ("East", "West", "North", "South", "Central", "Pacific", "Atlantic", "Nordics", "Alpine",
           "Baltic", "Gulf", "Mountain", "Lakes", "Plains", "Coastal", "Metro", "Iberia", "Benelux",
           "Danube", "Highlands")
FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella", "Lucas",
    "Mia", "Oliver", "Amelia", "Elijah", "Harper", "James", "Evelyn", "Benjamin", "Abigail", "Henry",
    "Emily", "Alexander", "Ella", "Daniel", "Grace", "Matthew", "Chloe", "Samuel", "Nora", "David",
    "Lily", "Joseph", "Hannah", "Carter", "Zoe", "Owen", "Leah", "Wyatt", "Aria", "Jack",
    "Priya", "Arjun", "Mei", "Wei", "Fatima", "Omar", "Sofia", "Mateo", "Ingrid", "Lars",
    "Chiara", "Marco", "Aisha", "Kwame", "Yuki", "Kenji", "Elena", "Dmitri", "Ana", "Tomas",
    "Maya", "Rafael", "Clara", "Felix",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
    "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts",
    "Patel", "Kumar", "Chen", "Wang", "Nguyen", "Kim", "Okafor", "Mensah", "Schmidt", "Muller",
    "Rossi", "Bianchi", "Novak", "Kowalski", "Jensen", "Larsen", "Silva", "Costa", "Tanaka", "Sato",
    "Dubois", "Moreau", "Ivanova", "Haddad",
)
_ACCOUNT_A = ("North", "Blue", "Silver", "Bright", "Iron", "Green", "Red", "Clear", "Summit", "Harbor",
              "Oak", "Stone", "Swift", "Pioneer", "Golden", "Cedar", "Polar", "Prime", "Vertex", "Crescent")
_ACCOUNT_B = ("wind", "field", "bridge", "point", "wave", "line", "gate", "peak", "river", "light",
              "works", "path", "core", "star", "view", "ridge", "port", "leaf", "mark", "forge")
_ACCOUNT_C = ("Logistics", "Systems", "Health", "Foods", "Energy", "Retail", "Labs", "Capital",
              "Manufacturing", "Media", "Software", "Insurance", "Pharma", "Telecom", "Automotive",
              "Construction", "Analytics", "Textiles", "Hospitality", "Education")
_ACCOUNT_D = ("Inc", "Ltd", "GmbH", "LLC")


@dataclass(frozen=True)
class Preset:
    """Size preset: target events, reps, teams, years of deal creation, time compression."""

    events: int
    reps: int
    teams: int
    years: float
    scale: float


PRESETS = {
    "tiny": Preset(800, 6, 2, 1.5, 0.1),
    "small": Preset(20_000, 12, 4, 3.0, 1.0),
    "default": Preset(100_000, 24, 4, 4.0, 1.0),
    "1m": Preset(1_000_000, 240, 40, 4.0, 1.0),
    "10m": Preset(10_000_000, 2_400, 400, 4.0, 1.0),
}

#: Options of :func:`generate_demo_data` (``**options``) and their defaults.
DEFAULT_OPTIONS = {
    "rates": {
        "skipped_stage": 0.05,
        "premature_proposal": 0.04,
        "stage_regression": 0.06,
        "followup_gap": 0.05,
        "after_close": 0.04,
        "won_without_milestones": 0.03,
    },
    "conforming_share": 1 / 3,
    "conforming_deviation_factor": 0.3,
    "bottleneck_team": 0,
    "bottleneck_stage": "Proposal",
    "bottleneck_factor": 3.0,
    "followup_gap_days": PPVVC.followup_gap_days,
    "stalled_share": 0.08,
    "growth_per_year": 0.15,
    "handover_share": 0.08,
    "revision_share": 0.30,
    "quota_stretch": 1.10,
    "team_attainment": MANAGER_ATTAINMENT,
    "chunk_cases": 40_000,
}


@dataclass
class GroundTruth:
    """Everything the generator planted.

    Attributes
    ----------
    deviations : DataFrame
        case_id, kind (one of :data:`KINDS`), planted (bool; False when the kind
        follows from another planted one), one row per case and kind.
    followup_gap_days : float
        The silent-gap threshold of the ``followup_gap`` definition.
    bottleneck : dict
        team, stage, factor (the multiplier of that stage's time weight).
    stalled : list of str
        Open deals planted as stalled.
    conforming_reps : list of str
        Reps who follow the process (fewer deviations, higher win rate).
    params : dict
        Every parameter used, plus measured rates.
    """

    deviations: pd.DataFrame
    followup_gap_days: float
    bottleneck: dict
    stalled: list
    conforming_reps: list
    params: dict

    def to_dict(self) -> dict:
        """Plain JSON-serialisable data (deviations as records)."""
        return {
            "deviations": self.deviations.to_dict(orient="records"),
            "followup_gap_days": self.followup_gap_days,
            "bottleneck": self.bottleneck,
            "stalled": list(self.stalled),
            "conforming_reps": list(self.conforming_reps),
            "params": self.params,
        }


@dataclass
class DemoData:
    """The demo data set: canonical event log, reps, quotas, as-of date and ground truth."""

    events: pd.DataFrame
    reps: pd.DataFrame
    quotas: pd.DataFrame
    truth: GroundTruth
    as_of: pd.Timestamp


# ----------------------------------------------------------------------------- configuration


@dataclass
class _Config:
    seed: int
    size: str
    events: int
    n_reps: int
    n_teams: int
    span_days: float
    scale: float
    as_of: pd.Timestamp
    start: pd.Timestamp
    options: dict = field(default_factory=dict)

    @property
    def gap_days(self) -> float:
        return float(self.options["followup_gap_days"]) * self.scale


def _resolve(seed: int, size: str | int, time_scale: float, as_of, options: dict) -> _Config:
    """Check the arguments and turn them into the generation's configuration."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size < 100:
            raise WorkbenchError(f"size {size} is too small.", hint="ask for at least 100 events or 'tiny'.")
        reps = int(np.clip(round(24 * size / 100_000), 4, 3_400))  # names run out above ~3,500 reps
        preset = Preset(int(size), reps, max(2, min(4, reps // 3)) if reps < 40 else math.ceil(reps / 6), 4.0, 1.0)
        label = str(int(size))
    elif isinstance(size, str) and size.lower() in PRESETS:
        preset, label = PRESETS[size.lower()], size.lower()
    elif isinstance(size, str) and size.isdigit():
        return _resolve(seed, int(size), time_scale, as_of, options)
    else:
        raise WorkbenchError(f"unknown size {size!r}.",
                             hint=f"use one of {list(PRESETS)} or a number of events.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WorkbenchError(f"seed must be a whole number >= 0, got {seed!r}.", hint="use e.g. --seed 7.")
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0):
        raise WorkbenchError(f"time_scale must be a positive number, got {time_scale!r}.",
                             hint="use 1.0 for the seed's cycle lengths, less to compress them.")
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise WorkbenchError(f"unknown options {sorted(unknown)}.", hint=f"options are {sorted(DEFAULT_OPTIONS)}.")
    opts = {**DEFAULT_OPTIONS, **options}
    opts["rates"] = {**DEFAULT_OPTIONS["rates"], **options.get("rates", {})}
    if unknown := set(opts["rates"]) - set(KINDS):
        raise WorkbenchError(f"unknown deviation kinds {sorted(unknown)} in rates.", hint=f"kinds are {list(KINDS)}.")
    if bad := {k: v for k, v in opts["rates"].items() if not 0 <= v < 0.5}:
        raise WorkbenchError(f"deviation rates must be shares in [0, 0.5), got {bad}.", hint="e.g. 0.05 for 5 %.")
    if opts["bottleneck_stage"] not in PPVVC.stages:
        raise WorkbenchError(f"bottleneck_stage {opts['bottleneck_stage']!r} is not a stage.",
                             hint=f"use one of {list(PPVVC.stages)}.")
    try:
        end = to_utc(as_of)
    except (ValueError, TypeError):
        raise WorkbenchError(f"as_of {as_of!r} is not a date.", hint="write it as 2026-11-13.") from None
    span = round(preset.years * 365.25)
    return _Config(seed=int(seed), size=label, events=preset.events, n_reps=preset.reps,
                   n_teams=min(preset.teams, max(1, preset.reps // 3)), span_days=float(span),
                   scale=float(time_scale) * preset.scale, as_of=end,
                   start=end - pd.Timedelta(days=span), options=opts)


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible stream for one step of the generation."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ----------------------------------------------------------------------------- organisation


@dataclass
class _Org:
    rep: np.ndarray            # names
    team: np.ndarray           # team index per rep
    start_day: np.ndarray      # start date, days since the log start (negative: before)
    conforming: np.ndarray     # bool per rep
    weight: np.ndarray         # share of new deals
    win_effect: np.ndarray     # logit effect per rep
    seniors: np.ndarray        # (teams, 2) rep indices who started before the log
    team_name: np.ndarray
    team_region: np.ndarray
    team_kind: np.ndarray      # 0 Enterprise, 1 Commercial
    team_manager: np.ndarray


def _team_names(n: int) -> tuple[list[str], list[str], list[int]]:
    names, regions, kinds = [], [], []
    order = [("Enterprise", "East"), ("Commercial", "West"), ("Enterprise", "West"), ("Commercial", "East")]
    for i in range(n):
        if i < 4:
            kind, region = order[i]
        else:
            kind = ("Enterprise", "Commercial")[i % 2]
            k = i // 2
            region = REGIONS[k % len(REGIONS)] + ("" if k < len(REGIONS) else f" {k // len(REGIONS) + 1}")
        names.append(f"{kind} {region}")
        regions.append(region)
        kinds.append(0 if kind == "Enterprise" else 1)
    return names, regions, kinds


def _person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    combos = len(FIRST_NAMES) * len(LAST_NAMES)
    if n > combos:
        raise WorkbenchError(f"{n} people need more names than the {combos} the generator has.",
                             hint="ask for a size under about 14 million events.")
    idx = rng.permutation(combos)[:n]
    return np.array([f"{FIRST_NAMES[i // len(LAST_NAMES)]} {LAST_NAMES[i % len(LAST_NAMES)]}" for i in idx])


def _organisation(cfg: _Config) -> _Org:
    """Reps in teams and regions with managers, start dates, capacity and who conforms."""
    rng = _rng(cfg.seed, 1)
    n, t = cfg.n_reps, cfg.n_teams
    people = _person_names(rng, n + t)
    team = np.arange(n) % t
    pos = np.arange(n) // t                       # position in the team; 0 and 1 are seniors
    start_day = np.where(
        (pos < 2) | (rng.random(n) < 0.65),
        -rng.uniform(0.3, 6.0, n) * 365.25,
        rng.uniform(0.0, 0.6, n) * cfg.span_days,
    )
    n_conf = max(1, round(n * cfg.options["conforming_share"]))
    conforming = np.zeros(n, bool)
    conforming[rng.choice(n, n_conf, replace=False)] = True
    seniors = np.stack([np.flatnonzero((team == k) & (pos < 2))[:2] for k in range(t)])
    names, regions, kinds = _team_names(t)
    return _Org(
        rep=people[:n], team=team, start_day=start_day, conforming=conforming,
        weight=rng.lognormal(0.0, 0.25, n), win_effect=rng.normal(0.0, 0.2, n), seniors=seniors,
        team_name=np.array(names), team_region=np.array(regions), team_kind=np.array(kinds),
        team_manager=people[n:],
    )


def _reps_table(cfg: _Config, org: _Org) -> pd.DataFrame:
    start = cfg.start.normalize() + pd.to_timedelta(np.floor(org.start_day), unit="D")
    return pd.DataFrame({
        "rep": org.rep,
        "team": org.team_name[org.team],
        "region": org.team_region[org.team],
        "manager": org.team_manager[org.team],
        "start_date": start,
    })


# ----------------------------------------------------------------------------- the deals


def _categorical(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Draw one category per row from per-row cumulative probabilities ``cum`` (n, k)."""
    u = rng.random(cum.shape[0])
    return np.minimum((u[:, None] > cum).sum(axis=1), cum.shape[1] - 1)


def _months_since_epoch(cfg: _Config, days: np.ndarray) -> np.ndarray:
    """Calendar month index (months since 1970-01) of each day offset from the log start."""
    t0 = np.datetime64(cfg.start.tz_localize(None).to_datetime64(), "s")
    return (t0 + (days * DAY_S).astype("timedelta64[s]")).astype("datetime64[M]").astype(np.int64)


def _day_of_month_start(cfg: _Config, months: np.ndarray) -> np.ndarray:
    t0 = np.datetime64(cfg.start.tz_localize(None).to_datetime64(), "s")
    starts = months.astype("datetime64[M]").astype("datetime64[s]")
    return (starts - t0).astype(np.int64) / DAY_S


def _creation_days(rng: np.random.Generator, cfg: _Config, n: int) -> np.ndarray:
    weeks = np.arange(0.0, cfg.span_days, 7.0)
    quarter = (_months_since_epoch(cfg, weeks + 3.5) % 12) // 3
    intensity = (np.exp(cfg.options["growth_per_year"] * weeks / 365.25) * QUARTER_SEASON[quarter]
                 * rng.lognormal(0.0, 0.2, len(weeks)))
    per_week = rng.multinomial(n, intensity / intensity.sum())
    days = np.repeat(weeks, per_week) + rng.uniform(0.0, 7.0, n)
    return np.sort(np.minimum(days, cfg.span_days - 1e-3))


def _cycle_days(rng: np.random.Generator, existing: np.ndarray, depth: np.ndarray, scale: float) -> np.ndarray:
    """Cycles from the seed's table per customer type, paired so that deeper deals get longer ones."""
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


def _deals(cfg: _Config, org: _Org, n: int) -> dict:
    """Case-level draws for ``n`` deals: attributes, path, timing, plants (arrays of length n)."""
    rng = _rng(cfg.seed, 2, n)
    d = _attributes(rng, cfg, org, n)
    _paths(rng, cfg, org, d)
    _timing(rng, cfg, org, d)
    _open_deals(rng, cfg, d)
    _timing_plants(rng, cfg, d)
    _ownership(rng, cfg, org, d)
    d["nxt"] = _next_times(d["t"], d["present"], CLOSE_SLOT)
    return d


def _planter(cfg: _Config, d: dict):
    """plant(kind, eligible, per) draws the deals that get ``kind``: its rate of ``per`` deals."""
    def plant(rng, kind, eligible, per, prefer=None):
        prob = _plant_prob(cfg.options["rates"][kind], eligible, d["conforming"],
                           cfg.options["conforming_deviation_factor"], int(per))
        return _plant(rng, prob, prefer)
    return plant


def _attributes(rng: np.random.Generator, cfg: _Config, org: _Org, n: int) -> dict:
    """Creation day, owner, segment, customer type, lead source, product, account and amount."""
    created = _creation_days(rng, cfg, n)
    rep = rng.choice(len(org.rep), n, p=org.weight / org.weight.sum())
    team = org.team[rep]
    # Deals created before their rep started go to a senior teammate.
    rep = np.where(created < org.start_day[rep], org.seniors[team, rng.integers(0, 2, n)], rep)
    seg_cum = np.cumsum(np.array([SEGMENT_P["Enterprise"], SEGMENT_P["Commercial"]]), axis=1)
    segment = _categorical(rng, seg_cum[org.team_kind[team]])
    existing = rng.random(n) < 0.4
    source = rng.choice(len(LEAD_SOURCES), n, p=LEAD_SOURCE_P)
    product = _categorical(rng, np.cumsum(PRODUCT_P, axis=1)[segment])
    n_accounts = int(min(len(_ACCOUNT_A) * len(_ACCOUNT_B) * len(_ACCOUNT_C) * len(_ACCOUNT_D), n // 2 + 10))
    account = np.minimum(rng.zipf(1.3, n) - 1, n_accounts - 1)
    account = rng.permutation(n_accounts)[account]  # popular accounts spread over the name space
    amount = np.round(SEGMENT_MEDIAN_AMOUNT[segment] * np.where(existing, 0.7, 1.0)
                      * rng.lognormal(0.0, 0.75, n), -1)
    return dict(created=created, rep=rep, team=team, conforming=org.conforming[rep], segment=segment,
                existing=existing, source=source, product=product, account=account,
                amount=np.maximum(amount, 500.0), account_names=_account_names(n_accounts))


def _paths(rng: np.random.Generator, cfg: _Config, org: _Org, d: dict) -> None:
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
    for level, slot in _SKIP_SLOT.items():
        present[:, slot] &= ~(skip & (skip_level == level))
    d.update(won=won, depth=depth, present=present, code=code, regress=regress,
             planted={"premature_proposal": premature, "skipped_stage": skip, "stage_regression": regress})


def _timing(rng: np.random.Generator, cfg: _Config, org: _Org, d: dict) -> None:
    """Event times ``t`` of every slot: the cycle from the seed's table split over the stages."""
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
    month = _months_since_epoch(cfg, close_day)
    into = close_day - _day_of_month_start(cfg, month - month % 3)
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


def _open_deals(rng: np.random.Generator, cfg: _Config, d: dict) -> None:
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


def _timing_plants(rng: np.random.Generator, cfg: _Config, d: dict) -> None:
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


def _ownership(rng: np.random.Generator, cfg: _Config, org: _Org, d: dict) -> None:
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


# ----------------------------------------------------------------------------- events


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


def _plain(table: pa.Table) -> pa.Table:
    """The table with dictionary columns decoded to plain strings (what pandas users expect)."""
    return table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                                 for f in table.schema]))


class _Generation:
    """Everything drawn for one call: the organisation and the deals; events come out in chunks."""

    PILOT = 3_000

    def __init__(self, cfg: _Config) -> None:
        self.cfg = cfg
        self.org = _organisation(cfg)
        # A pilot run measures events per deal, which sets the number of deals for the target size.
        pilot = _deals(cfg, self.org, self.PILOT)
        per_deal = len(_events(_rng(cfg.seed, 3, 0), cfg, pilot, 0, self.PILOT)[0]) / self.PILOT
        self.n = max(10, round(cfg.events / per_deal))
        self.d = _deals(cfg, self.org, self.n)
        self.width = _id_width(self.n)

    def chunks(self, progress: bool = False):
        """Yield (arrow table of events, deviation labels per deal) per chunk of deals, in case_id order."""
        size = int(self.cfg.options["chunk_cases"])
        with tqdm(total=self.n, desc="demo data", unit="deal", disable=not progress) as bar:
            for a in range(0, self.n, size):
                b = min(a + size, self.n)
                case, when, what, sec = _events(_rng(self.cfg.seed, 3, self.n, a // size), self.cfg, self.d, a, b)
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


def _events(rng: np.random.Generator, cfg: _Config, d: dict, a: int, b: int):
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


def _event_table(cfg: _Config, org: _Org, d: dict, a: int, b: int, case: np.ndarray, when: np.ndarray,
                 what: np.ndarray, sec: np.ndarray) -> pa.Table:
    """The canonical columns of a chunk's events, rep and amount as they were at each event."""
    g = case + a
    rep = np.where(d["handover"][g] & (when >= d["handover_at"][g]), d["rep2"][g], d["rep"][g])
    amount = np.where(d["revised"][g] & (when >= d["revised_at"][g]), d["amount2"][g], d["amount"][g])
    team = org.team[rep]
    width = _id_width(len(d["created"]))
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


def _id_width(n: int) -> int:
    return max(6, len(str(n)))


def _account_names(n: int) -> list[str]:
    a, b, c, d = len(_ACCOUNT_A), len(_ACCOUNT_B), len(_ACCOUNT_C), len(_ACCOUNT_D)
    return [f"{_ACCOUNT_A[i % a]}{_ACCOUNT_B[(i // a) % b]} {_ACCOUNT_C[(i // (a * b)) % c]} "
            f"{_ACCOUNT_D[(i // (a * b * c)) % d]}" for i in range(n)]


# ----------------------------------------------------------------------------- quotas


def _quarter_label(q: int) -> str:
    return f"{1970 + q // 4}Q{q % 4 + 1}"


def _bookings(cfg: _Config, d: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Won deals closed by as_of: rep credited on the close event, amount on it, close quarter index."""
    close = d["t"][:, CLOSE_SLOT]
    booked = d["won"] & (close <= cfg.span_days)
    rep = np.where(d["handover"] & (close >= d["handover_at"]), d["rep2"], d["rep"])[booked]
    amount = np.where(d["revised"] & (close >= d["revised_at"]), d["amount2"], d["amount"])[booked]
    return rep, amount, _months_since_epoch(cfg, close[booked]) // 3


HISTORY_QUARTERS = 4


def _quota_base(org: _Org, booked: np.ndarray, active: np.ndarray, q_start: np.ndarray) -> np.ndarray:
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


def _quotas(cfg: _Config, org: _Org, d: dict) -> tuple[pd.DataFrame, dict]:
    """Quarterly quota per rep from trailing bookings, seasonality and a stretch (seed 002, l.43-57)."""
    rng = _rng(cfg.seed, 4)
    rep, amount, quarter = _bookings(cfg, d)
    last = int(_months_since_epoch(cfg, np.array([cfg.span_days - 1e-6]))[0] // 3)
    first = int(quarter.min()) if len(quarter) else last
    nq, nr = last - first + 1, len(org.rep)
    booked = np.zeros((nr, nq))
    np.add.at(booked, (rep, quarter - first), amount)
    q_start = _day_of_month_start(cfg, (np.arange(first, last + 1) * 3).astype(np.int64))
    q_end = _day_of_month_start(cfg, (np.arange(first + 1, last + 2) * 3).astype(np.int64))
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


# ----------------------------------------------------------------------------- public API


def _truth(gen: _Generation, labels: np.ndarray, quota_stats: dict) -> GroundTruth:
    """The ground truth from the labels of the final events, the plants and the measured rates."""
    cfg, org, d = gen.cfg, gen.org, gen.d
    case_idx, kind_idx = np.nonzero(labels)
    planted = np.stack([d["planted"][k] for k in KINDS], axis=1)
    deviations = pd.DataFrame({
        "case_id": [f"D{i:0{gen.width}d}" for i in case_idx],
        "kind": np.array(KINDS)[kind_idx],
        "planted": planted[case_idx, kind_idx],
    })
    closed = d["t"][:, CLOSE_SLOT] <= cfg.span_days
    won_rate = {name: float(d["won"][closed & (d["conforming"] == flag)].mean())
                for name, flag in (("conforming", True), ("others", False))}
    opts = dict(cfg.options)
    bottleneck = {"team": str(org.team_name[int(opts["bottleneck_team"]) % len(org.team_name)]),
                  "stage": opts["bottleneck_stage"], "factor": float(opts["bottleneck_factor"])}
    params = {
        # time_scale is the effective one: the preset's compression included
        "seed": cfg.seed, "size": cfg.size, "time_scale": cfg.scale, "as_of": cfg.as_of.isoformat(),
        "start": cfg.start.isoformat(), "n_cases": int(gen.n), "n_reps": int(cfg.n_reps),
        "n_teams": int(len(org.team_name)), "options": opts,
        "cycle_table": {"edges_months": list(CYCLE_EDGES_MONTHS), "shares": CYCLE_SHARES},
        "observed_rates": {k: float((labels[closed, i] & planted[closed, i]).mean()) for i, k in enumerate(KINDS)},
        "win_rate_closed": won_rate,
        "stage_p90_days": {ACTIVITIES[s]: (None if np.isnan(v) else float(v)) for s, v in enumerate(d["p90"])},
        "n_open": int((~closed).sum()),
        "quotas": quota_stats,
    }
    stalled = [f"D{i:0{gen.width}d}" for i in np.flatnonzero(d["stalled"])]
    return GroundTruth(
        deviations=deviations, followup_gap_days=cfg.gap_days, bottleneck=bottleneck, stalled=stalled,
        conforming_reps=sorted(org.rep[org.conforming].tolist()), params=params,
    )


def generate_demo_data(
    seed: int = 7,
    size: str | int = "default",
    time_scale: float = 1.0,
    as_of: str | pd.Timestamp = "2026-11-13",
    progress: bool = False,
    **options,
) -> DemoData:
    """Generate the demo CRM event log, reps, quotas and the ground truth of what was planted.

    Parameters
    ----------
    seed : int
        Same seed and arguments give identical frames.
    size : {'tiny', 'small', 'default', '1m', '10m'} or int
        Preset (see :data:`PRESETS`) or a target number of events.
    time_scale : float
        Multiplies every duration (1.0 matches the seed's cycle table; 'tiny'
        compresses a further 10x so several quarters fit in a few hundred events).
    as_of : date
        The end of the log, UTC; deals still open then stay open.
    progress : bool
        Show a progress bar over chunks.
    **options
        Overrides of :data:`DEFAULT_OPTIONS` (rates, bottleneck_factor, ...).

    Returns
    -------
    DemoData
    """
    gen = _Generation(_resolve(seed, size, time_scale, as_of, options))
    tables, labels = [], []
    for table, lab in gen.chunks(progress):
        tables.append(table)
        labels.append(lab)
    events = _plain(pa.concat_tables(tables)).to_pandas()
    quotas, stats = _quotas(gen.cfg, gen.org, gen.d)
    truth = _truth(gen, np.concatenate(labels), stats)
    truth.params["n_events"] = len(events)
    return DemoData(events=events, reps=_reps_table(gen.cfg, gen.org), quotas=quotas, truth=truth,
                    as_of=gen.cfg.as_of)


def write_demo_data(
    out_dir: str | Path,
    *,
    seed: int = 7,
    size: str | int = "default",
    time_scale: float = 1.0,
    as_of: str | pd.Timestamp = "2026-11-13",
    progress: bool = True,
) -> dict[str, Path]:
    """Write the demo data set to ``out_dir``, streaming the event log chunk by chunk.

    Files: events.parquet (row group per chunk), events.csv (only up to 50,000
    target events), reps.csv, quotas.csv, truth.json.

    Returns
    -------
    dict
        File role ('events', 'events_csv', 'reps', 'quotas', 'truth') -> path.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(f"cannot create the output folder ({exc.strerror}).", file=str(out),
                             hint="choose a writable folder with --out.") from None
    gen = _Generation(_resolve(seed, size, time_scale, as_of, {}))
    paths = {"events": out / "events.parquet"}
    with_csv = gen.cfg.events <= 50_000
    if with_csv:
        paths["events_csv"] = out / "events.csv"
    labels, n_events, writer = [], 0, None
    try:
        for i, (table, lab) in enumerate(gen.chunks(progress)):
            if writer is None:
                # Without the stored arrow schema, readers get plain strings back, not categoricals.
                writer = pq.ParquetWriter(paths["events"], table.schema, store_schema=False)
            writer.write_table(table)
            if with_csv:
                _plain(table).to_pandas().to_csv(paths["events_csv"], mode="w" if i == 0 else "a",
                                                 header=i == 0, index=False)
            labels.append(lab)
            n_events += len(table)
        if writer is not None:
            writer.close()
            writer = None
        quotas, stats = _quotas(gen.cfg, gen.org, gen.d)
        truth = _truth(gen, np.concatenate(labels), stats)
        truth.params["n_events"] = n_events
        paths.update(reps=out / "reps.csv", quotas=out / "quotas.csv", truth=out / "truth.json")
        _reps_table(gen.cfg, gen.org).to_csv(paths["reps"], index=False)
        quotas.to_csv(paths["quotas"], index=False)
        paths["truth"].write_text(json.dumps(truth.to_dict(), indent=1), encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot write the demo data ({exc.strerror or exc}).", file=str(out),
                             hint="check the free disk space and that the folder is writable.") from None
    finally:
        if writer is not None:
            writer.close()
    return paths
