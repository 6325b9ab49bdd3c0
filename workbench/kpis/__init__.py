"""Sales KPIs: win rate, deal size, volume, growth, cycle length, funnel, velocity, coverage, attainment.

KPIs are computed from the per-case table of the engine
(:func:`workbench.engine.case_table`) and, where stages matter, its stage
visits (:func:`workbench.engine.stage_visits`), so the passes over every event
run in DuckDB. Open deals as of a date come from :func:`workbench.snapshot.snapshot`
and bookings from :func:`workbench.snapshot.bookings` (the definitions the forecast
uses too); lead response, follow-ups and close-date or amount changes read the few
events they need in pandas. Logs are canonical DataFrames (:mod:`workbench.schema`).
Each function's docstring writes down its definition.

Bookings of a rep in a quarter are the amounts of the deals closed won in that
quarter, credited to the rep on the winning event; a won deal with no amount
counts 0.

Customer KPIs (retention and churn, net revenue retention, upsell and cross-sell,
acquisition cost, concentration across accounts) need the account of each deal;
:mod:`.customers` writes their definitions down.

One module per family: :mod:`.outcomes`, :mod:`.funnel`, :mod:`.pipeline`,
:mod:`.attainment`, :mod:`.activity`, :mod:`.customers`.
"""


from .activity import followup_difference, followup_persistence, lead_response_time
from .attainment import attainment, attainment_gap, concentration, gini, pareto_share, team_attainment
from .customers import (acquisition_cost, concentration_table, cross_sell_paths, deal_kinds, expansion, has_accounts,
                        retention, revenue_concentration)
from .funnel import cohort_conversion, funnel
from .outcomes import case_table, cycle_bucket, cycle_length, period_of, revenue_growth, sales_volume, win_rate
from .pipeline import (amount_changes, close_date_slips, default_as_of, open_pipeline, pipeline_coverage,
                       pipeline_movement, pipeline_velocity)

__all__ = [
    "case_table", "period_of", "win_rate", "sales_volume", "revenue_growth", "cycle_bucket", "cycle_length",
    "funnel", "cohort_conversion", "default_as_of", "open_pipeline", "pipeline_velocity", "pipeline_coverage",
    "pipeline_movement", "close_date_slips", "amount_changes", "attainment", "attainment_gap", "team_attainment", "concentration",
    "gini", "pareto_share", "lead_response_time", "followup_persistence", "followup_difference",
    "has_accounts", "retention", "deal_kinds", "expansion", "cross_sell_paths",
    "acquisition_cost", "revenue_concentration", "concentration_table",
]
