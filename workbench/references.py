"""Reference numbers from published sales research that the pages and the demo compare against.

Each constant says what it measured. They are data, not defaults: no analysis
is tuned to them, they are shown beside the log's own numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Days in an average month, for the month buckets of :data:`B2B_CYCLE_TABLE`.
MONTH_DAYS = 365.25 / 12

#: A B2B survey's cycle-length table: the share of deals closed within each length of sales cycle,
#: for new and for existing customers. Buckets are [low, high) in months of :data:`MONTH_DAYS` days.
B2B_CYCLE_TABLE = pd.DataFrame({
    "bucket": ["< 1 month", "1-3 months", "4-6 months", "7-9 months", "10-12 months", "> 12 months"],
    "low_months": [0.0, 1.0, 3.0, 6.0, 9.0, 12.0],
    "high_months": [1.0, 3.0, 6.0, 9.0, 12.0, np.inf],
    "new": [0.051, 0.203, 0.282, 0.152, 0.131, 0.181],
    "existing": [0.220, 0.384, 0.239, 0.070, 0.029, 0.058],
})

#: A sales-management study's headline: the average sales manager met 99% of quota while only 48%
#: of reps reached their individual targets (teams make their number through a few reps).
MANAGER_ATTAINMENT = 0.99
SHARE_REPS_AT_QUOTA = 0.48
