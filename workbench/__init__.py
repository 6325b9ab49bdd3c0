"""Sales process mining and quota-attainment forecasting from CRM event logs.

The names below are the everyday entry points; each lives in the module named
beside it and is imported on first use, so ``import workbench`` stays fast.
"""

from importlib import import_module

from .errors import WorkbenchError
from .profile import PPVVC, SALESFORCE, SalesProcessProfile, get_profile, load_profile

__version__ = "0.1.0"

_LAZY = {
    "read_event_log": "io", "read_reps": "io", "read_quotas": "io", "load_sales_data": "io",
    "check_file": "check",
    "generate_demo_data": "synth", "write_demo_data": "synth",
    "discover_dfg": "discovery", "variants": "discovery", "discover_petri_net": "discovery",
    "draw_map": "maps", "explore_map": "maps",
    "detect_deviations": "conformance", "conformance_summary": "conformance", "process_pays": "conformance",
    "stage_times": "bottlenecks", "rank_bottlenecks": "bottlenecks", "stalled_deals": "bottlenecks",
    "win_rate": "kpis", "attainment": "kpis", "pipeline_coverage": "kpis",
    "QuotaForecaster": "forecast", "Backtest": "forecast",
    "build_report": "report",
}

__all__ = ["WorkbenchError", "SalesProcessProfile", "PPVVC", "SALESFORCE", "get_profile", "load_profile", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
