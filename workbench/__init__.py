"""Sales process mining and quota-attainment forecasting from CRM event logs."""

from .errors import WorkbenchError
from .profile import PPVVC, SALESFORCE, SalesProcessProfile, get_profile, load_profile

__version__ = "0.1.0"

__all__ = [
    "WorkbenchError",
    "SalesProcessProfile",
    "PPVVC",
    "SALESFORCE",
    "get_profile",
    "load_profile",
]
