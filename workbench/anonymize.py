"""Stable pseudonyms for people, teams, accounts and deals, so a report can be shared.

A pseudonym is a salted hash of the real value: the same name gets the same
pseudonym everywhere in a report (and in every report made with the same
salt), and without the salt nobody can hash a list of candidate names to undo
it. The salt comes from the ``WORKBENCH_SALT`` environment variable or is
made once at random and kept in ``~/.config/workbench/salt``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Column -> the word its pseudonyms start with.
PSEUDONYM_KINDS = {
    "rep": "Rep",
    "manager": "Manager",
    "team": "Team",
    "account": "Account",
    "case_id": "Deal",
}


def default_salt() -> str:
    """The salt from ``WORKBENCH_SALT``, else a random one kept in the user's config folder."""
    if salt := os.environ.get("WORKBENCH_SALT"):
        return salt
    path = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "workbench" / "salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


@dataclass
class Pseudonymizer:
    """Replace names by ``"<Kind> <hash>"`` pseudonyms, remembering every name it replaced.

    Parameters
    ----------
    salt : str
        Secret mixed into every hash.
    """

    salt: str
    replaced_: dict[str, str] = field(default_factory=dict)

    def pseudonym(self, kind: str, value: object) -> object:
        """The pseudonym of one value; missing values stay missing."""
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
            return value
        text = str(value)
        digest = hashlib.sha256(f"{self.salt}|{kind}|{text}".encode()).hexdigest()[:8]
        alias = f"{kind} {digest}"
        self.replaced_[text] = alias
        return alias

    def frame(self, df: pd.DataFrame | None) -> pd.DataFrame | None:
        """A copy of ``df`` with every known name column replaced."""
        if df is None:
            return None
        out = df.copy()
        for column, kind in PSEUDONYM_KINDS.items():
            if column in out.columns:
                uniques = out[column].dropna().unique()
                lookup = {u: self.pseudonym(kind, u) for u in uniques}
                out[column] = out[column].map(lookup).where(out[column].notna(), out[column])
        return out

    def text(self, value: str) -> str:
        """Replace every real name seen so far inside free text (warnings, messages); longest first."""
        for name in sorted(self.replaced_, key=len, reverse=True):
            value = value.replace(name, self.replaced_[name])
        return value

    def cells(self, df: pd.DataFrame | None) -> pd.DataFrame | None:
        """Replace names anywhere in a frame of raw strings (the quarantine table)."""
        if df is None:
            return None
        out = self.frame(df)
        for column in out.columns:
            if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
                out[column] = out[column].map(lambda v: self.text(v) if isinstance(v, str) else v)
        return out
