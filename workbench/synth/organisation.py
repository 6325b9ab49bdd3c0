"""The demo organisation: regions, teams, reps and their names, accounts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .config import Config, REGIONS, seeded_rng


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


ACCOUNT_A = ("North", "Blue", "Silver", "Bright", "Iron", "Green", "Red", "Clear", "Summit", "Harbor",
              "Oak", "Stone", "Swift", "Pioneer", "Golden", "Cedar", "Polar", "Prime", "Vertex", "Crescent")


ACCOUNT_B = ("wind", "field", "bridge", "point", "wave", "line", "gate", "peak", "river", "light",
              "works", "path", "core", "star", "view", "ridge", "port", "leaf", "mark", "forge")


ACCOUNT_C = ("Logistics", "Systems", "Health", "Foods", "Energy", "Retail", "Labs", "Capital",
              "Manufacturing", "Media", "Software", "Insurance", "Pharma", "Telecom", "Automotive",
              "Construction", "Analytics", "Textiles", "Hospitality", "Education")


ACCOUNT_D = ("Inc", "Ltd", "GmbH", "LLC")


@dataclass
class Organisation:
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


def draw_organisation(cfg: Config) -> Organisation:
    """Reps in teams and regions with managers, start dates, capacity and who conforms."""
    rng = seeded_rng(cfg.seed, 1)
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
    return Organisation(
        rep=people[:n], team=team, start_day=start_day, conforming=conforming,
        weight=rng.lognormal(0.0, 0.25, n), win_effect=rng.normal(0.0, 0.2, n), seniors=seniors,
        team_name=np.array(names), team_region=np.array(regions), team_kind=np.array(kinds),
        team_manager=people[n:],
    )


def reps_table(cfg: Config, org: Organisation) -> pd.DataFrame:
    start = cfg.start.normalize() + pd.to_timedelta(np.floor(org.start_day), unit="D")
    return pd.DataFrame({
        "rep": org.rep,
        "team": org.team_name[org.team],
        "region": org.team_region[org.team],
        "manager": org.team_manager[org.team],
        "start_date": start,
    })


def id_width(n: int) -> int:
    return max(6, len(str(n)))


def account_names(n: int) -> list[str]:
    a, b, c, d = len(ACCOUNT_A), len(ACCOUNT_B), len(ACCOUNT_C), len(ACCOUNT_D)
    return [f"{ACCOUNT_A[i % a]}{ACCOUNT_B[(i // a) % b]} {ACCOUNT_C[(i // (a * b)) % c]} "
            f"{ACCOUNT_D[(i // (a * b * c)) % d]}" for i in range(n)]
