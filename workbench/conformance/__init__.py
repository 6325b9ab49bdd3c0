"""Conformance of the actual sales process to the sales process profile.

Three views, from the most formal to the one a sales manager reads:

* :func:`reference_model` builds the profile's reference Petri net;
  :func:`token_replay_fitness` replays every case on it (pm4py), :func:`reference_fitness`
  gives the log's figures (a long tail of rare variants estimated from a sample) and
  :func:`variant_alignments` aligns the most frequent variants within a time budget.
* :func:`detect_deviations` finds, per case, the deviations defined below.
* :func:`conformance_summary` gives per rep / team / region the share of conforming
  deals, the deviations by kind, and whether following the process pays: win rate
  and cycle time of conforming versus deviating deals, each with a test and an
  interval (:mod:`workbench.stats`). Surveys find that most sellers follow no
  process at all; this is where the data says whether that costs them.

The package: :mod:`.reference` (the reference model), :mod:`.replay` (pm4py's
token replay and alignments), :mod:`.deviations` and :mod:`.summary`.

Definitions of the deviations (exact; they match :mod:`workbench.synth`)
------------------------------------------------------------------------
Events of a case are taken in log order (case, timestamp, then input order). The
*close* is the case's first event whose activity is in ``profile.won`` or
``profile.lost``; *pre-close events* are those strictly before it (all events
when the case is open). *Stage events* are events of the profile's stages (not
loops such as follow-ups, not closings, not unknown activities); the rank of a
stage is its position in ``profile.stages``.

skipped_stage
    A mandatory stage (``profile.mandatory``) has no pre-close event although
    the case reached a later point: a pre-close stage event of higher rank, or a
    won close. (A deal lost early did not skip the stages it never reached.)
premature_proposal
    A pre-close event of the ``proposal`` role stage has no event of the
    ``qualification`` role stage before it (pushing the client too early can kill the deal).
stage_regression
    Two consecutive pre-close stage events (loops and unknown activities
    ignored) go from a higher to a strictly lower rank.
followup_gap
    Two consecutive events of the case, the first of them pre-close, are more
    than ``gap_days`` apart (default ``profile.followup_gap_days``: forgotten
    follow-ups lose deals). The silence between an open case's last event and
    the end of the log does not count. Not looked for in a log read from a flat
    opportunity table (``log.attrs['kind'] == 'opportunities'``): such a table
    records milestones only, so the days between them say nothing of follow-ups.
after_close
    The case has at least one event after its close, in the log or, when the
    loader set them aside, in its quarantine with reason ``event_after_close``.
won_without_milestones
    The case closed won and a milestone stage (``profile.milestones`` values)
    has no pre-close event.

A case with none of these is *conforming*.
"""

from ..schema import DEVIATION_KINDS as KINDS
from .deviations import DEVIATION_COLUMNS, case_conformance, detect_deviations
from .reference import prepared_events, reference_model
from .replay import discovered_fitness, estimate_notes, reference_fitness, token_replay_fitness, variant_alignments
from .summary import OUTCOME_NEUTRAL, conformance_summary, conforming_by_quarter, process_pays

__all__ = ["KINDS", "OUTCOME_NEUTRAL", "DEVIATION_COLUMNS", "prepared_events", "reference_model",
           "token_replay_fitness", "reference_fitness", "discovered_fitness", "estimate_notes", "variant_alignments",
           "detect_deviations", "case_conformance", "conformance_summary", "conforming_by_quarter", "process_pays"]
