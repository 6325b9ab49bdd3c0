"""Sales process mining and quota-attainment forecasting from CRM event logs.

The names below are the everyday entry points: load the data, look at the process,
measure it, forecast the quarter, write the report. Each lives in the module named
beside it and is imported on first use, so ``import workbench`` stays fast; the
modules themselves (``workbench.kpis``, ``workbench.bottlenecks``...) hold the rest.

Examples
--------
>>> import workbench as wb
>>> "load_sales_data" in dir(wb)
True
"""

from importlib import import_module as _import_module

from .errors import WorkbenchError
from .profile import PPVVC, SALESFORCE, SalesProcessProfile, get_profile, load_profile

__version__ = "0.1.0"

#: The public API: name -> the module that defines it (imported on first use).
_LAZY = {
    # reading the data
    "load_sales_data": "io", "read_event_log": "io", "read_reps": "io", "read_quotas": "io",
    "check_file": "check", "resolve_profile": "profile_fit", "derive_profile": "profile_fit",
    # the process as it is
    "discover_dfg": "discovery", "variants": "discovery", "discover_petri_net": "discovery",
    "draw_map": "maps", "readable_map": "map_levels", "explore_map": "map_explorer",
    "detect_deviations": "conformance", "conformance_summary": "conformance", "process_pays": "conformance",
    # where deals wait, and the KPIs
    "stage_times": "bottlenecks", "rank_bottlenecks": "bottlenecks", "top_bottleneck": "bottlenecks",
    "stalled_deals": "bottlenecks",
    "win_rate": "kpis", "attainment": "kpis", "pipeline_coverage": "kpis",
    # the quarter
    "QuotaForecaster": "forecast", "Backtest": "forecast",
    # the report and the demo
    "build_report": "report", "generate_demo_data": "synth", "write_demo_data": "synth",
}

#: The modules, reachable as ``wb.kpis`` without importing them first.
_MODULES = (
    "anonymize", "audit", "bottlenecks", "calendar", "check", "conformance", "database", "discovery", "engine",
    "errors", "figures", "filters", "findings", "forecast", "glossary", "groups", "io", "kpis", "map_explorer",
    "map_levels", "maps", "notebook", "performers", "profile", "profile_fit", "progress", "references", "report",
    "root_causes", "schema", "snapshot", "stats", "synth", "tables", "validation",
)

__all__ = ["WorkbenchError", "SalesProcessProfile", "PPVVC", "SALESFORCE", "get_profile", "load_profile", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_import_module(f".{_LAZY[name]}", __name__), name)
    if name in _MODULES:
        return _import_module(f".{name}", __name__)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    # Jupyter completes from dir(): the public names and the modules, nothing private.
    return sorted({*__all__, *_MODULES, "__version__"})
