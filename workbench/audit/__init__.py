"""The consultant's audit: is the data trustworthy, and are the quotas and the pipeline realistic?

* :func:`data_quality` (:mod:`.quality`): every finding about the inputs, as
  records with counts, examples and what to do.
* :func:`quota_realism` and :func:`pipeline_realism` (:mod:`.realism`): quotas
  against each rep's history, and pipelines that convert unlike the company's
  (optimism or sandbagging).
"""

from .quality import data_quality, parse_lookups, partial_lines, partial_quarters, read_lookup, reps_findings
from .realism import OUT_OF_REACH, SOFT, pipeline_realism, quota_realism

__all__ = ["data_quality", "parse_lookups", "partial_lines", "partial_quarters", "read_lookup", "reps_findings", "quota_realism", "pipeline_realism",
           "OUT_OF_REACH", "SOFT"]
