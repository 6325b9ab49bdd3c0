"""What the readers return: one table with its quarantine and report, or everything loaded together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from ..errors import WorkbenchError
from ..findings import table_findings
from ..profile import SalesProcessProfile
from ..validation import CombinedReport, RowFlags, ValidationReport, quarantine_table
from .columns import canonical_order
from .files import RawTable


@dataclass
class LoadResult:
    """A loaded table, the input rows set aside, and the validation report.

    Attributes
    ----------
    log : DataFrame
        The canonical table (the event log; for :func:`read_reps` and
        :func:`read_quotas` the reps or quota table).
    quarantine : DataFrame
        The unusable input rows: ``source_row`` (1-based data row: the header
        is row 0, so in a spreadsheet it is the sheet's row number minus one;
        blank rows count), ``column`` (the input column to blame, empty when the
        whole row is), ``reason``, then the row's original values as strings.
    report : ValidationReport
    profile : SalesProcessProfile, optional
        For event logs: the profile the log was read with (see the module docstring).
    profile_note : str
        One line saying which profile that is and how it was chosen.
    """

    log: pd.DataFrame
    quarantine: pd.DataFrame
    report: ValidationReport
    profile: SalesProcessProfile | None = None
    profile_note: str = ""

    @property
    def table(self) -> pd.DataFrame:
        """Alias of :attr:`log`, for reps and quota tables."""
        return self.log


@dataclass
class SalesData:
    """Everything a notebook needs, validated together (see :func:`load_sales_data`).

    Attributes
    ----------
    log : DataFrame
        Canonical event log, team/region/manager joined from the reps table.
    reps, quotas : DataFrame or None
    profile : SalesProcessProfile
        The profile the log was read with (also in ``log.attrs['profile']``).
    quarantine : DataFrame
        All quarantined rows, with a ``table`` column ('log', 'reps', 'quotas').
    report : CombinedReport
        Printable as one page; ``to_dict()`` for JSON.
    profile_note : str
        One line for every page that uses the profile: which it is and why.
    findings : Findings, optional
        The audit of the data (:func:`workbench.audit.data_quality`), when asked for.
    costs, products : DataFrame or None
        The costs of selling (:func:`workbench.io.read_costs`) and the product
        master table (:func:`workbench.io.read_products`), when given.
    anonymized : bool
        Names already replaced by pseudonyms (:func:`workbench.notebook.anonymize_data`).
    """

    log: pd.DataFrame
    reps: pd.DataFrame | None
    quotas: pd.DataFrame | None
    profile: SalesProcessProfile
    quarantine: pd.DataFrame
    report: CombinedReport
    profile_note: str = ""
    findings: list | None = None
    costs: pd.DataFrame | None = None
    products: pd.DataFrame | None = None
    anonymized: bool = False


def finish(log: pd.DataFrame, raw: RawTable, flags: RowFlags, kind: str, warnings: list[str], summary: dict, *,
           ids: str | None = None, skip: Sequence[str] = (), **extra: Any) -> LoadResult:
    """The result of a reader: the report with the table's findings (``ids``: its id column; ``skip``: the
    date and amount columns, not checked for spellings)."""
    table = {"reps": "reps", "quotas": "quotas"}.get(kind, "log")
    findings = table_findings(raw.frame, raw.source_row, table=table, header=raw.header or list(raw.frame.columns),
                              reasons=flags.reason, blamed=flags.column, ids=ids, skip=set(skip))
    report = ValidationReport.from_flags(raw.source, kind, flags, warnings=raw.warnings + warnings, summary=summary,
                                         profile_note=extra.get("profile_note", ""), findings=findings)
    return LoadResult(log=canonical_order(log).reset_index(drop=True),
                      quarantine=quarantine_table(raw.frame, flags, raw.source_row), report=report, **extra)


def check_option(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        raise WorkbenchError(f"{name}={value!r} is not an option.", hint=f"use one of {list(options)}.")
