"""The demo generator's settings: the process it draws, the presets, the options, what it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..calendar import to_utc
from ..errors import WorkbenchError
from ..profile import PPVVC
from ..references import B2B_CYCLE_TABLE, MANAGER_ATTAINMENT
from ..schema import DEVIATION_KINDS as KINDS


DAY_S = 86_400

# Activity codes: the PPVVC stages by rank, then Follow-up and the two closings.


ACTIVITIES = PPVVC.stages + PPVVC.loops[:1] + PPVVC.won[:1] + PPVVC.lost[:1]
(LEAD, RESEARCH, FIRST_CONTACT, QUALIFICATION, DISCOVERY, SEND_INFO, PROPOSAL, NEGOTIATION,
 FOLLOW_UP, WON, LOST) = range(len(ACTIVITIES))


N_STAGES = len(PPVVC.stages)


MANDATORY = np.array([PPVVC.stages.index(s) for s in PPVVC.mandatory])


MILESTONES = np.array(sorted({PPVVC.stages.index(s) for s in PPVVC.milestones.values()}))

# The B2B survey's table (references.B2B_CYCLE_TABLE); '> 12 months' is capped at 24 months.


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


SKIP_SLOT = {2: 2, 3: 4, 4: 5, 5: 9}
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
#: Each product's family and tier (higher is more): the demo's product master table.
PRODUCT_FAMILY = ("Platform", "Analytics", "Platform", "Services")
PRODUCT_TIER = (1, 1, 2, 1)
#: Planted yearly churn by segment (SMB, Mid-Market, Enterprise): the share of a year's customers that
#: buy nothing the next year. High, because most of the demo's deals are with new customers: the
#: existing customers' deals of a year barely cover the customers who stay.
CHURN_PER_YEAR = (0.85, 0.75, 0.62)
#: Planted cross-sell path: an existing customer whose last purchase was of the first family, and who
#: lacks the second, turns to the second in this share of its deals (the rest keep their product).
CROSS_SELL_PATH = ("Services", "Analytics")
CROSS_SELL_SHARE = 0.6


QUARTER_SEASON = np.array([0.85, 0.95, 1.0, 1.25])  # creation intensity by quarter of year


REGIONS = ("East", "West", "North", "South", "Central", "Pacific", "Atlantic", "Nordics", "Alpine",
           "Baltic", "Gulf", "Mountain", "Lakes", "Plains", "Coastal", "Metro", "Iberia", "Benelux",
           "Danube", "Highlands")


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
    """The demo data set: canonical event log, reps, quotas, as-of date, ground truth, the product
    master table (product, family, tier) and each team's cost of selling per quarter."""

    events: pd.DataFrame
    reps: pd.DataFrame
    quotas: pd.DataFrame
    truth: GroundTruth
    as_of: pd.Timestamp
    products: pd.DataFrame | None = None
    costs: pd.DataFrame | None = None


@dataclass
class Config:
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


def resolve(seed: int, size: str | int, time_scale: float, as_of, options: dict) -> Config:
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
        return resolve(seed, int(size), time_scale, as_of, options)
    else:
        raise WorkbenchError(f"unknown size {size!r}.",
                             hint=f"use one of {list(PRESETS)} or a number of events.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise WorkbenchError(f"seed must be a whole number >= 0, got {seed!r}.", hint="use e.g. --seed 7.")
    if not (isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0):
        raise WorkbenchError(f"time_scale must be a positive number, got {time_scale!r}.",
                             hint="use 1.0 for the survey's cycle lengths, less to compress them.")
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
    return Config(seed=int(seed), size=label, events=preset.events, n_reps=preset.reps,
                   n_teams=min(preset.teams, max(1, preset.reps // 3)), span_days=float(span),
                   scale=float(time_scale) * preset.scale, as_of=end,
                   start=end - pd.Timedelta(days=span), options=opts)


def seeded_rng(seed: int, *key: int) -> np.random.Generator:
    """An independent, reproducible stream for one step of the generation."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def categorical(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Draw one category per row from per-row cumulative probabilities ``cum`` (n, k)."""
    u = rng.random(cum.shape[0])
    return np.minimum((u[:, None] > cum).sum(axis=1), cum.shape[1] - 1)


def months_since_epoch(cfg: Config, days: np.ndarray) -> np.ndarray:
    """Calendar month index (months since 1970-01) of each day offset from the log start."""
    t0 = np.datetime64(cfg.start.tz_localize(None).to_datetime64(), "s")
    return (t0 + (days * DAY_S).astype("timedelta64[s]")).astype("datetime64[M]").astype(np.int64)


def day_of_month_start(cfg: Config, months: np.ndarray) -> np.ndarray:
    t0 = np.datetime64(cfg.start.tz_localize(None).to_datetime64(), "s")
    starts = months.astype("datetime64[M]").astype("datetime64[s]")
    return (starts - t0).astype(np.int64) / DAY_S
