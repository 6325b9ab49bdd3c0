"""Event logs, reps tables and quota tables in: files or DataFrames to canonical tables.

The package's modules, each one step: :mod:`.files` (reading files as raw tables),
:mod:`.columns` (which column is which), :mod:`.logs` (the three shapes of event log),
:mod:`.tables` (reps and quotas), :mod:`.results` (what the readers return) and
:mod:`.load` (everything loaded and cross-checked at once).

Every reader returns a :class:`LoadResult`: the canonical table, the quarantine
table of the input rows that could not be used (with the reason) and a
:class:`~workbench.validation.ValidationReport`. Fatal problems (missing file,
unreadable format, wrong encoding, a required column missing, nothing left)
raise :class:`~workbench.errors.WorkbenchError`.

Inputs
------
- an event log: CSV, Parquet, Excel (.xlsx), XES (.xes, .xes.gz) or a DataFrame
  (``kind="events"``); pm4py's column names and common aliases are recognised;
- a CRM stage history, Salesforce ``OpportunityHistory``-like: one row per stage
  change (``kind="stage_history"``);
- a flat opportunity table, one date column per milestone (``kind="opportunities"``);
- a reps table (:func:`read_reps`) and a quota table (:func:`read_quotas`);
- the costs of selling per territory and quarter (:func:`read_costs`) and a product
  master table (:func:`read_products`), for the customer KPIs.

Column mapping
--------------
``mapping`` maps a canonical name to the user's column, e.g.
``{"case_id": "Opportunity ID", "activity": "Stage", "timestamp": "Changed At"}``;
any other key renames an attribute. For the opportunity table the mapping (or
keyword arguments, or a JSON/YAML mapping file for the CLI) also takes:

=============== ==============================================================
key             meaning
=============== ==============================================================
milestones      activity -> date column, in process order, e.g.
                ``{"Lead Created": "Created", "Proposal": "Proposal Sent"}``
                (a list of columns uses the column names as activities)
final_stage     column saying whether the deal was won, lost or is still open
close_date      column with the date the deal was won or lost
won_values      final-stage values meaning won (default: the profile's won
                activities, 'won', 'closed won', 'win')
lost_values     values meaning lost (default: profile's lost, 'lost', 'closed lost')
open_values     values meaning still open (default: empty, 'open', the profile's
                stages); any other value is quarantined as unknown_final_stage,
                and the report lists the values found
amount_known    when the value column was known: ``created`` (the deal's value
                from its first milestone on) or ``closed`` (revenue booked at the
                close: 0 for lost deals, blank for open ones, so only the close
                event carries it). Default: ``closed`` when the values look like
                that, else ``created``; the report says which and why.
=============== ==============================================================

The profile
-----------
The profile (what the activities mean) is resolved once the events are built
(:func:`workbench.profile_fit.resolve_profile`): the one given, else a shipped
profile that describes the log, else one derived from the data. It decides
which events come after a case's close, travels with the result
(``LoadResult.profile``, ``SalesData.profile``, ``log.attrs['profile']``) and
is described in one line (``profile_note``).

Lifecycle transitions
---------------------
An XES log (or any log with a ``lifecycle`` column) records work items as
schedule / start / complete events. By default only ``complete`` events are
analysed (pm4py's usual view, one event per activity instance); the others are
set aside as ``lifecycle_not_complete`` and counted as such.
``lifecycle='all'`` keeps every event (pm4py's view of the raw log).
"""

from .columns import (
    ALIASES,
    KINDS,
    OPPORTUNITY_OPTIONS,
    detect_kind,
    flat_table_hint,
    parse_mapping,
)
from .files import RawTable, read_table
from .load import load_sales_data, load_table
from .logs import AFTER_CLOSE, LIFECYCLE, after_close_mask, read_event_log
from .results import LoadResult, SalesData
from .tables import read_costs, read_products, read_quotas, read_reps

__all__ = [
    "LoadResult", "SalesData", "RawTable", "read_event_log", "read_reps", "read_quotas", "read_costs",
    "read_products", "load_sales_data",
    "parse_mapping", "read_table", "load_table", "detect_kind", "flat_table_hint", "after_close_mask",
    "ALIASES", "KINDS", "OPPORTUNITY_OPTIONS", "AFTER_CLOSE", "LIFECYCLE",
]
