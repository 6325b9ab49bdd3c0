"""The sales process profile: what the activities of a CRM log mean.

A profile is data, not code, so a consultant can write one for a client's CRM
as a small YAML or JSON file::

    name: My CRM
    stages: [Lead, Qualified, Demo, Proposal, Negotiation]   # in order
    optional: [Negotiation]          # stages a deal may skip
    won: [Closed Won]
    lost: [Closed Lost]
    milestones: {Pain: Qualified, Value: Proposal}   # needed before a win
    loops: [Follow-up]               # activities that may repeat anywhere
    roles: {lead: Lead, first_contact: Lead, qualification: Qualified, proposal: Proposal}
    followup_gap_days: 45            # a longer silence before the close is a deviation

Two profiles ship: :data:`PPVVC` (the default, the Solution-Selling B2B process of
seeds/DIGEST.md, seed 003) and :data:`SALESFORCE` (Salesforce's standard
opportunity stages).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .errors import WorkbenchError

ROLE_NAMES = ("lead", "first_contact", "qualification", "proposal")


@dataclass(frozen=True)
class SalesProcessProfile:
    """The ordered stages, the closing activities and the rules of a sales process.

    Parameters
    ----------
    name : str
        A label for reports.
    stages : tuple of str
        The stages in their preferred order, without the closing activities.
    won, lost : tuple of str
        Activities that close a deal as won or as lost.
    optional : tuple of str
        Stages a deal may skip without deviating.
    milestones : dict
        Milestone name -> the stage that evidences it; a won deal needs all of them.
    loops : tuple of str
        Activities (follow-ups, calls) allowed to repeat anywhere before the close.
    roles : dict
        Which stage plays the roles ``lead``, ``first_contact``, ``qualification``
        and ``proposal`` (used by lead-response and premature-proposal measures).
    followup_gap_days : float
        A silence longer than this between two events of an open deal is a
        forgotten follow-up (seed 003, l.77); 45 days by default.
    """

    name: str
    stages: tuple[str, ...]
    won: tuple[str, ...]
    lost: tuple[str, ...]
    optional: tuple[str, ...] = ()
    milestones: dict[str, str] = field(default_factory=dict)
    loops: tuple[str, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    followup_gap_days: float = 45.0

    def __post_init__(self) -> None:
        for name in ("stages", "won", "lost", "optional", "loops"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "milestones", dict(self.milestones))
        object.__setattr__(self, "roles", dict(self.roles))
        self._validate()

    def _validate(self) -> None:
        def fail(problem: str, hint: str) -> None:
            raise WorkbenchError(f"profile {self.name!r}: {problem}", hint=hint)

        if not self.stages:
            fail("has no stages.", "list the stages in order under 'stages'.")
        if not self.won or not self.lost:
            fail(
                "has no end: it needs at least one 'won' and one 'lost' activity.",
                "add e.g. won: [Closed Won] and lost: [Closed Lost].",
            )
        seen: set[str] = set()
        for stage in self.stages:
            if stage in seen:
                fail(
                    f"stage {stage!r} appears twice in the stage order, which makes a cycle.",
                    "list each stage once; repeatable activities go under 'loops'.",
                )
            seen.add(stage)
        closing = set(self.won) | set(self.lost)
        if overlap := closing & seen:
            fail(f"{sorted(overlap)} are both stages and closing activities.", "list them once.")
        if overlap := set(self.won) & set(self.lost):
            fail(f"{sorted(overlap)} are both won and lost.", "list each under one of them.")
        for kind, names in (
            ("optional stage", self.optional),
            ("milestone stage", self.milestones.values()),
        ):
            for a in names:
                if a not in seen:
                    fail(f"{kind} {a!r} is not one of the stages {list(self.stages)}.", "fix the spelling.")
        for role, a in self.roles.items():
            if role not in ROLE_NAMES:
                fail(f"unknown role {role!r}.", f"roles are {list(ROLE_NAMES)}.")
            if a not in seen:
                fail(f"role {role!r} names {a!r}, which is not a stage.", "fix the spelling.")
        try:
            gap = float(self.followup_gap_days)
        except (TypeError, ValueError):
            gap = float("nan")
        if not gap > 0:
            fail(f"followup_gap_days={self.followup_gap_days!r} is not a positive number of days.",
                 "give e.g. followup_gap_days: 45.")
        object.__setattr__(self, "followup_gap_days", gap)
        if overlap := set(self.loops) & (seen | closing):
            fail(f"{sorted(overlap)} are both loops and stages.", "a loop activity is not a stage.")

    @property
    def activities(self) -> tuple[str, ...]:
        """Every activity the profile knows: stages, loops, then closings."""
        return self.stages + self.loops + self.won + self.lost

    @property
    def closing(self) -> tuple[str, ...]:
        """Activities that close a deal, won first."""
        return self.won + self.lost

    @property
    def mandatory(self) -> tuple[str, ...]:
        """Stages a deal may not skip."""
        return tuple(s for s in self.stages if s not in self.optional)

    def rank(self, activity: str) -> int | None:
        """Position of ``activity`` in the stage order (closings last), or None."""
        order = self.stages + self.closing
        if activity in self.won or activity in self.lost:
            return len(self.stages)
        return order.index(activity) if activity in order else None

    def to_dict(self) -> dict:
        """The profile as plain data, as written to YAML or JSON."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def load_profile(path: str | Path) -> SalesProcessProfile:
    """Read a profile from a YAML or JSON file.

    Raises
    ------
    WorkbenchError
        If the file cannot be read or the profile is inconsistent.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkbenchError(f"cannot read the profile ({exc.strerror}).", file=str(path),
                             hint="check the path.") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise WorkbenchError(f"the profile is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}",
                             file=str(path), hint="fix the syntax.") from None
    if not isinstance(data, dict):
        raise WorkbenchError("the profile must be a mapping of keys to values.", file=str(path),
                             hint="start from the README's example.")
    known = set(SalesProcessProfile.__dataclass_fields__)
    if unknown := set(data) - known:
        raise WorkbenchError(f"unknown keys {sorted(unknown)}.", file=str(path),
                             hint=f"the keys are {sorted(known)}.")
    data.setdefault("name", path.stem)
    try:
        return SalesProcessProfile(**data)
    except WorkbenchError as exc:
        exc.file = str(path)
        raise WorkbenchError(exc.problem, file=str(path), hint=exc.hint) from None
    except TypeError as exc:
        raise WorkbenchError(f"the profile is incomplete: {exc}", file=str(path),
                             hint="give at least name, stages, won and lost.") from None


def get_profile(profile: str | Path | SalesProcessProfile | None = None) -> SalesProcessProfile:
    """Resolve a profile given as an object, a shipped name ('ppvvc', 'salesforce') or a path."""
    if profile is None:
        return PPVVC
    if isinstance(profile, SalesProcessProfile):
        return profile
    if str(profile).lower() in SHIPPED:
        return SHIPPED[str(profile).lower()]
    return load_profile(profile)


#: The default: PPVVC-based B2B process (seeds/DIGEST.md, seed 003, l.10-96).
PPVVC = SalesProcessProfile(
    name="PPVVC B2B",
    stages=(
        "Lead Created",
        "Research",
        "First Contact",
        "Qualification",
        "Discovery Meeting",
        "Send Information",
        "Proposal",
        "Negotiation",
    ),
    optional=("Research", "Send Information", "Negotiation"),
    won=("Closed Won",),
    lost=("Closed Lost",),
    milestones={
        "Pain": "Qualification",
        "Power": "Discovery Meeting",
        "Vision": "Discovery Meeting",
        "Value": "Proposal",
        "Control": "Negotiation",
    },
    loops=("Follow-up",),
    roles={
        "lead": "Lead Created",
        "first_contact": "First Contact",
        "qualification": "Qualification",
        "proposal": "Proposal",
    },
)

#: Salesforce's standard opportunity stages.
SALESFORCE = SalesProcessProfile(
    name="Salesforce standard",
    stages=(
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Value Proposition",
        "Id. Decision Makers",
        "Perception Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
    ),
    optional=("Needs Analysis", "Id. Decision Makers", "Perception Analysis"),
    won=("Closed Won",),
    lost=("Closed Lost",),
    milestones={
        "Pain": "Qualification",
        "Power": "Id. Decision Makers",
        "Value": "Value Proposition",
        "Control": "Negotiation/Review",
    },
    roles={
        "lead": "Prospecting",
        "first_contact": "Prospecting",
        "qualification": "Qualification",
        "proposal": "Proposal/Price Quote",
    },
)

SHIPPED = {"ppvvc": PPVVC, "salesforce": SALESFORCE}
