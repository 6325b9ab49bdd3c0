"""Realistic demo CRM data with planted ground truth.

:func:`generate_demo_data` builds a CRM sales event log in the shape of the
default PPVVC profile, a reps table and a quarterly
quota table, and records everything it planted in :class:`GroundTruth` so that
detectors can be scored against it. :func:`write_demo_data` writes the same data
to files, streaming the event log in Parquet row groups so memory stays bounded.

The package: :mod:`.config` (the process drawn, presets, options), :mod:`.organisation`,
:mod:`.deals`, :mod:`.accounts`, :mod:`.events`, :mod:`.quotas` and :mod:`.api` (the two functions).

How a deal is drawn
-------------------
* Deals are created over the preset's span (4 years by default) week by week
  with growth (15 %/year), quarterly seasonality (Q4 strongest) and weekly noise.
* Each deal has an owner (rep, so team and region), a segment (SMB / Mid-Market /
  Enterprise, by team kind), customer type (new / existing), lead source, product
  and a lognormal amount (bigger for Enterprise).
* Its account is drawn once outcomes are known (:mod:`.accounts`): new customers'
  deals go to prospects, existing customers' to accounts that bought before, with
  a yearly churn by segment and a cross-sell path planted; ``truth.params['customers']``
  records them, and ``products.csv`` / ``costs.csv`` come with the log.
* Its outcome (won, or lost after a stage) follows a logistic model of the rep
  (conforming reps win about 35 %, the others about 20 %), lead source, customer
  type, segment and planted deviations; it is stable over time.
* Its cycle (first event to close) is drawn from a B2B survey's cycle-length
  table (:data:`workbench.references.B2B_CYCLE_TABLE`) for its customer type, buckets [0,1), [1,3), [3,6), [6,9),
  [9,12), [12,24] months of 365.25/12 days, uniform inside a bucket; cycles are
  paired with outcomes so that deals lost early are shorter (the marginal
  distribution stays the table's). ``time_scale`` multiplies every duration.
* Stage times split the cycle (gamma weights per stage); for the bottleneck team
  the Proposal weight is multiplied by ``truth.bottleneck['factor']``.
* Follow-ups fill every interval between two stage events so that no silent gap
  exceeds 0.98 x ``followup_gap_days``; longer intervals get more follow-ups.
* Won deals closing in the first three weeks of a quarter are sometimes pulled
  back to the end of the previous quarter (the quarter-end push, strongest into Q4).
* Events after ``as_of`` do not exist: recent deals are open. A few open deals are
  planted as stalled; every other open deal is moved so that its time in its
  current stage stays below 0.95 x the stage's p90 (see "stalled" below).
* 8 % of deals are handed over to a senior teammate part-way; 30 % have their
  amount revised once. The rep and amount of every event are the values at its time.

Definitions of the planted deviations (exact; the detectors use the same)
-------------------------------------------------------------------------
Events of a case are taken in log order (case, timestamp). The *close* is the
case's first ``Closed Won`` / ``Closed Lost`` event; *pre-close events* are
those strictly before it (all events when the case is open). *Stage events* are
the profile's stages (not Follow-up, not closings); the rank of a stage is its
position in ``PPVVC.stages``.

skipped_stage
    A mandatory stage (``PPVVC.mandatory``) has no pre-close event although the
    case reached a later point: a pre-close stage event of higher rank, or a
    Closed Won close.
premature_proposal
    A pre-close Proposal event has no Qualification event before it.
stage_regression
    Two consecutive pre-close stage events (follow-ups ignored) go from a higher
    to a strictly lower rank.
followup_gap
    Two consecutive events of the case, the first of them pre-close, are more
    than ``followup_gap_days`` apart (45 days x time_scale). The silence between
    the last event of an open case and ``as_of`` does not count.
after_close
    The case has at least one event after its close (Follow-up, sometimes a stage).
won_without_milestones
    The case closed won and a milestone stage (``PPVVC.milestones`` values:
    Qualification, Discovery Meeting, Proposal, Negotiation) has no pre-close event.

Default rates, as shares of the deals closed by ``as_of`` (option ``rates``):
skipped_stage 5 %, premature_proposal 4 %, stage_regression 6 %, followup_gap 5 %,
after_close 4 %, won_without_milestones 3 %; conforming reps deviate 0.3x as often
as the average, the others about 1.35x. Even 'tiny' gets at least one of each kind.

``truth.deviations`` holds every (case_id, kind) that these definitions find in
the generated log (computed on the final events), with ``planted`` True where
that kind was planted on purpose and False where it follows from another plant
(a premature proposal followed by Qualification is also a regression; a won deal
without Discovery Meeting is also a skipped stage). Unplanted cases are clean.

stalled
    An open case whose time in its current stage at ``as_of`` (since the last
    stage event) exceeds 2.2-3x that stage's p90 over the stage visits finished
    before ``as_of`` (a visit ends at the next stage or closing event). No other
    open deal exceeds 0.95x that p90.

Quotas
------
Per rep and quarter, as sales managers are advised to set them: the rep's trailing four-quarter
bookings, times last year's seasonal index of that quarter, then a stretch;
new reps ramp from half the team median. Each closed quarter is then scaled so
company attainment is 99 % with a little noise (a sales-management study's headline); the current
quarter's quota is set forward from the recent scales without its bookings.
Bookings are the amount of the Closed Won event credited to the rep on it, in
the quarter of the close. With seed 7 at 'default', steady-state quarters come
out at 97-102 % company attainment with 44 % of rep-quarters at or above quota
(lumpy, right-skewed bookings put most reps below the mean).

Sizes
-----
==========  ===========  =====  =====  =====  ==========
size        events       reps   teams  years  time scale
==========  ===========  =====  =====  =====  ==========
tiny        ~800         6      2      1.5    0.1
small       ~20,000      12     4      3      1
default     ~100,000     24     4      4      1
1m          ~1,000,000   240    40     4      1
10m         ~10,000,000  2,400  400    4      1
int N       ~N           24 per 100k events, 4 years, time scale 1
==========  ===========  =====  =====  =====  ==========

Speed and memory (measured by hand with /usr/bin/time, whole process incl. imports;
2-core machine shared with other jobs, load average ~4.5)
------------------------------------------------------------------------------------
Deals are drawn as whole numpy arrays (no per-event or per-deal Python loop);
events are expanded, labelled and written per chunk of 40,000 deals.

========================================  ==========  ========  =========
call                                      wall        CPU       peak RSS
========================================  ==========  ========  =========
generate_demo_data(size="default")        2.4 s       1.4 s     0.21 GB
generate_demo_data(size="1m")             6.0 s       3.6 s     0.58 GB
write_demo_data(out, size="1m")           5.3 s       3.4 s     0.37 GB
write_demo_data(out, size="10m")          38 s        22 s      1.04 GB
========================================  ==========  ========  =========
"""

from ..schema import DEVIATION_KINDS as KINDS
from .api import generate_demo_data, write_demo_data
from .config import PRESETS, DemoData, GroundTruth

__all__ = ["DemoData", "GroundTruth", "generate_demo_data", "write_demo_data", "KINDS", "PRESETS"]
