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
    events_after_close: set_aside    # or keep (work that follows the close is real work)

Two profiles ship: :data:`PPVVC` (the default, the Solution-Selling B2B process:
Pain x Power x Vision x Value x Control) and :data:`SALESFORCE` (Salesforce's
standard opportunity stages). A process that is not sales (a repair shop, an
order-to-cash log) has no won or lost: its finishing activities go under
``ends``. When no profile describes a log, :mod:`workbench.profile_fit` derives
one from the data.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from .errors import WorkbenchError

ROLE_NAMES = ("lead", "first_contact", "qualification", "proposal")
AFTER_CLOSE = ("set_aside", "keep")


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
        Activities that close a deal as won or as lost (both or neither).
    optional : tuple of str
        Stages a deal may skip without deviating.
    milestones : dict
        Milestone name -> the stage that evidences it; a won deal needs all of them.
    loops : tuple of str
        Activities (follow-ups, calls) allowed to repeat anywhere before the close.
    roles : dict
        Which stage plays the roles ``lead``, ``first_contact``, ``qualification``
        and ``proposal`` (used by lead-response and premature-proposal measures);
        a process without one of them skips what needs it.
    followup_gap_days : float
        A silence longer than this between two events of an open deal is a
        forgotten follow-up (forgotten follow-ups lose deals); 45 days by default.
    ends : tuple of str
        Activities that finish a case without a won or lost outcome (a
        process that is not sales: "Archive Repair", "Invoice Paid").
    events_after_close : {'set_aside', 'keep'}
        Events after a case's close: set aside with their reason (right for a
        CRM, where nothing happens to a closed deal) or kept (a process whose
        close is followed by real work).
    derived : bool
        True when the profile was derived from the data rather than written
        by someone (:func:`workbench.profile_fit.derive_profile`).

    Examples
    --------
    >>> p = SalesProcessProfile("Mine", stages=("Lead", "Demo", "Offer"), won=("Won",), lost=("Lost",))
    >>> p.closing, p.rank("Offer")
    (('Won', 'Lost'), 2)
    """

    name: str
    stages: tuple[str, ...]
    won: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    milestones: dict[str, str] = field(default_factory=dict)
    loops: tuple[str, ...] = ()
    roles: dict[str, str] = field(default_factory=dict)
    followup_gap_days: float = 45.0
    ends: tuple[str, ...] = ()
    events_after_close: str = "set_aside"
    derived: bool = False

    def __post_init__(self) -> None:
        for name in ("stages", "won", "lost", "optional", "loops", "ends"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "milestones", dict(self.milestones))
        object.__setattr__(self, "roles", dict(self.roles))
        self._validate()

    def __deepcopy__(self, memo: dict) -> SalesProcessProfile:
        # Treated as immutable; pandas deep-copies a frame's attrs (where the log carries its
        # profile) on every operation, which was a tenth of a forecast's fit.
        return self

    def _validate(self) -> None:
        def fail(problem: str, hint: str) -> None:
            raise WorkbenchError(f"profile {self.name!r}: {problem}", hint=hint)

        if not self.stages:
            fail("has no stages.", "list the stages in order under 'stages'.")
        if bool(self.won) != bool(self.lost):
            fail(
                f"has {'won' if self.won else 'lost'} activities but no {'lost' if self.won else 'won'} ones, "
                "so every closed deal would count as one outcome.",
                "give both, e.g. won: [Closed Won] and lost: [Closed Lost]; activities that finish a case "
                "without an outcome go under 'ends'.",
            )
        seen: set[str] = set()
        for stage in self.stages:
            if stage in seen:
                fail(
                    f"stage {stage!r} appears twice in the stage order, which makes a cycle.",
                    "list each stage once; repeatable activities go under 'loops'.",
                )
            seen.add(stage)
        closing = set(self.won) | set(self.lost) | set(self.ends)
        if overlap := closing & seen:
            fail(f"{sorted(overlap)} are both stages and closing activities.", "list them once.")
        for a, b in (("won", "lost"), ("won", "ends"), ("lost", "ends")):
            if overlap := set(getattr(self, a)) & set(getattr(self, b)):
                fail(f"{sorted(overlap)} are under both {a!r} and {b!r}.", "list each under one of them.")
        if self.events_after_close not in AFTER_CLOSE:
            fail(f"events_after_close={self.events_after_close!r} is not an option.",
                 f"use one of {list(AFTER_CLOSE)}.")
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
        return self.stages + self.loops + self.closing

    @property
    def closing(self) -> tuple[str, ...]:
        """Activities that close a case: won, lost, then those without an outcome."""
        return self.won + self.lost + self.ends

    @property
    def has_outcomes(self) -> bool:
        """True when cases can be won or lost (win rates and forecasts need it)."""
        return bool(self.won) and bool(self.lost)

    @property
    def mandatory(self) -> tuple[str, ...]:
        """Stages a deal may not skip."""
        return tuple(s for s in self.stages if s not in self.optional)

    def rank(self, activity: str) -> int | None:
        """Position of ``activity`` in the stage order (closings last), or None."""
        if activity in self.closing:
            return len(self.stages)
        return self.stages.index(activity) if activity in self.stages else None

    def require_role(self, role: str, analysis: str) -> str:
        """The stage playing ``role``, or a :class:`WorkbenchError` saying ``analysis`` is skipped."""
        if role not in self.roles:
            raise WorkbenchError(
                f"{analysis} needs the process's {role.replace('_', ' ')} stage, which profile "
                f"{self.name!r} does not name; skipped.",
                hint=f"name it under 'roles: {{{role}: <stage>}}' in the profile to get this analysis.")
        return self.roles[role]

    def require_outcomes(self, analysis: str) -> None:
        """Raise a :class:`WorkbenchError` saying ``analysis`` is skipped when nothing is won or lost."""
        if not self.has_outcomes:
            raise WorkbenchError(
                f"{analysis} needs won and lost cases, and profile {self.name!r} has no won or lost "
                "activity; skipped.",
                hint="name the activities that close a case as won and as lost under 'won' and 'lost'.")

    def to_dict(self) -> dict:
        """The profile as plain data, as written to YAML or JSON (without ``derived``)."""
        d = asdict(self)
        d.pop("derived")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_yaml(self) -> str:
        """The profile as a YAML file a user can edit and pass back with ``--profile``."""
        head = (f"# Sales process profile '{self.name}'"
                + (", derived from the data: check the stage order, won / lost and optional stages." if self.derived
                   else ".") + "\n# Pass this file back with --profile (profile= in Python).\n")
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


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
    data.pop("derived", None)
    try:
        return SalesProcessProfile(**data)
    except WorkbenchError as exc:
        exc.file = str(path)
        raise WorkbenchError(exc.problem, file=str(path), hint=exc.hint) from None
    except TypeError as exc:
        raise WorkbenchError(f"the profile is incomplete: {exc}", file=str(path),
                             hint="give at least name, stages, won and lost.") from None


def get_profile(profile: str | Path | SalesProcessProfile | None = None, log: object = None) -> SalesProcessProfile:
    """Resolve a profile given as an object, a shipped name ('ppvvc', 'salesforce') or a path.

    ``None`` (and 'auto') give the profile the log was read with (the loaders
    put it in ``log.attrs['profile']``), else the default, :data:`PPVVC`; to pick
    the profile that fits a log, or derive one, use
    :func:`workbench.profile_fit.resolve_profile`.

    Examples
    --------
    >>> get_profile("salesforce").name
    'Salesforce standard'
    """
    if profile is None or str(profile).lower() == "auto":
        carried = getattr(log, "attrs", {}).get("profile") if log is not None else None
        return carried if isinstance(carried, SalesProcessProfile) else PPVVC
    if isinstance(profile, SalesProcessProfile):
        return profile
    if str(profile).lower() in SHIPPED:
        return SHIPPED[str(profile).lower()]
    return load_profile(profile)


#: The default: the PPVVC-based B2B process (Solution Selling's Pain, Power, Vision, Value, Control).
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
