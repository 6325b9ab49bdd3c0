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
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

#: Column -> the word its pseudonyms start with.
PSEUDONYM_KINDS = {
    "rep": "Rep",
    "manager": "Manager",
    "team": "Team",
    "region": "Region",
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
        try:  # readable by its owner only: whoever reads it can undo the pseudonyms
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another report made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(secrets.token_hex(16))
    return path.read_text(encoding="utf-8").strip()


_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
_TOKEN = re.compile(r"[^\s,;:()\[\]{}'\"]+")
#: Unquoted numbers shorter than this are counts, not ids, in free text.
_SHORT_NUMBER = 5


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
        if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA or str(value) == "":
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
        """Replace every real name seen so far inside free text (warnings, findings).

        Quoted names ('Ann Lee') are replaced whole; unquoted words that are a
        name or an id as well, except short numbers (in '3 deals' the 3 is a
        count even when a deal is called 3).
        """
        def quoted(m: re.Match) -> str:
            inner = m.group(1) if m.group(1) is not None else m.group(2)
            alias = self.replaced_.get(inner.strip())
            return m.group(0) if alias is None else f"{m.group(0)[0]}{alias}{m.group(0)[-1]}"

        def word(m: re.Match) -> str:
            token = m.group(0)
            if token.replace(".", "").isdigit() and len(token) < _SHORT_NUMBER:
                return token
            if token in self.replaced_:
                return self.replaced_[token]
            stem = token.rstrip(".")  # a name ending a sentence
            return self.replaced_[stem] + token[len(stem):] if stem and stem in self.replaced_ else token

        return _TOKEN.sub(word, _QUOTED.sub(quoted, value))

    def value(self, value: str) -> str:
        """A cell or an example: the pseudonym of the whole value if it is a name seen so far, else
        :meth:`text` of it."""
        return self.replaced_.get(value.strip(), self.text(value))

    def cells(self, df: pd.DataFrame | None, columns: dict[str, str] | None = None) -> pd.DataFrame | None:
        """Replace names anywhere in a frame of raw strings (the quarantine table).

        ``columns``: canonical name -> the export's column (``log.attrs['columns']``);
        the export's rep, team, account and deal columns are replaced whole, even
        for names no kept row has.
        """
        if df is None:
            return None
        out = self.frame(df)
        raw = {source: PSEUDONYM_KINDS[kind] for kind, source in (columns or {}).items()
               if kind in PSEUDONYM_KINDS and source in out.columns and source not in PSEUDONYM_KINDS}
        for column, kind in raw.items():
            out[column] = out[column].map(
                lambda v: self.pseudonym(kind, v.strip()) if isinstance(v, str) and v.strip() else v)
        for column in out.columns:
            if column not in raw and (out[column].dtype == object or pd.api.types.is_string_dtype(out[column])):
                out[column] = out[column].map(lambda v: self.value(v) if isinstance(v, str) else v)
        return out
