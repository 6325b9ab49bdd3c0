"""Conformance of the actual sales process to the sales process profile.

Three views, from the most formal to the one a sales manager reads:

* :func:`reference_model` builds the profile's reference Petri net;
  :func:`token_replay_fitness` replays every case on it (pm4py) and
  :func:`variant_alignments` aligns the most frequent variants within a time budget.
* :func:`detect_deviations` finds, per case, the deviations defined below.
* :func:`conformance_summary` gives per rep / team / region the share of conforming
  deals, the deviations by kind, and whether following the process pays: win rate
  and cycle time of conforming versus deviating deals, each with a test and an
  interval (:mod:`workbench.stats`). Seed 003 (l.34) says 68 % of sellers follow no
  process; this is where the data says whether that costs them.

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
    ``qualification`` role stage before it (pushed too early, seed 003 l.87-88).
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

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import discovery, kpis
from .calendar import DAY_S
from .errors import WorkbenchError
from .groups import labelled
from .filters import filter_lifecycle
from .io import after_close_mask
from .profile import SalesProcessProfile, get_profile
from .schema import ACTIVITY, CASE, PM4PY_NAMES, REQUIRED, TIMESTAMP, check_log, require
from .schema import DEVIATION_KINDS as KINDS
from .stats import mark_findings, median_difference, rate_difference

#: Kinds whose definition does not depend on how the deal ended (see :func:`conformance_summary`).
OUTCOME_NEUTRAL = ("premature_proposal", "stage_regression", "followup_gap")
DEVIATION_COLUMNS = [CASE, "kind", "count", "first_at", "detail"]


# --------------------------------------------------------------------------- events
def prepared_events(log: pd.DataFrame) -> pd.DataFrame:
    """The canonical log checked and in log order, one event per activity instance.

    The reference process is a sequence of activities, so a log read with
    every lifecycle transition (``lifecycle='all'``) is compared through its
    ``complete`` events (:func:`workbench.filters.filter_lifecycle`).
    """
    if not isinstance(log, pd.DataFrame):
        raise WorkbenchError(f"conformance takes a pandas DataFrame, not {type(log).__name__}.",
                             hint="load the log with workbench.io.read_event_log.")
    log = log.rename(columns={v: k for k, v in PM4PY_NAMES.items() if v in log.columns and k not in log.columns})
    for col in REQUIRED:
        if col not in log.columns:
            raise WorkbenchError(f"the event log has no column {col!r}.", column=col,
                                 hint="load it with workbench.io.read_event_log.")
    log = filter_lifecycle(log)
    return log.sort_values([CASE, TIMESTAMP], kind="stable", ignore_index=True)


def _variant_per_case(ev: pd.DataFrame) -> pd.Series:
    """Each case's activity sequence (tuple), indexed by case_id."""
    return ev.groupby(CASE, sort=True)[ACTIVITY].agg(tuple)


# --------------------------------------------------------------------------- reference model
def reference_model(profile: SalesProcessProfile | str | None = None, *, open_cases: bool = False):
    """The profile's reference Petri net ``(net, initial_marking, final_marking)``.

    Stages in order, each optional stage skippable by a silent transition; loop
    activities may occur at any point before the close; a won activity closes
    after the last stage, a lost activity from every stage. With
    ``open_cases=True`` the net may also stop silently after any stage, so that a
    deal still open replays as fitting as long as what it did so far fits.
    """
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils.petri_utils import add_arc_from_to

    profile = get_profile(profile)
    net = PetriNet(f"reference: {profile.name}")
    places = [PetriNet.Place(f"p{i}") for i in range(len(profile.stages) + 1)]
    end = PetriNet.Place("end")
    for p in [*places, end]:
        net.places.add(p)

    def transition(name: str, label: str | None, src: PetriNet.Place, dst: PetriNet.Place) -> None:
        t = PetriNet.Transition(name, label)
        net.transitions.add(t)
        add_arc_from_to(src, t, net)
        add_arc_from_to(t, dst, net)

    for i, stage in enumerate(profile.stages):
        transition(f"stage_{i}", stage, places[i], places[i + 1])
        if stage in profile.optional:
            transition(f"skip_{i}", None, places[i], places[i + 1])
    for j, loop in enumerate(profile.loops):
        for i, p in enumerate(places):
            transition(f"loop_{j}_{i}", loop, p, p)
    for j, won in enumerate(profile.won):
        transition(f"won_{j}", won, places[-1], end)
    for j, lost in enumerate(profile.lost):
        for i, p in enumerate(places[1:], start=1):
            transition(f"lost_{j}_{i}", lost, p, end)
    if open_cases:
        for i, p in enumerate(places[1:], start=1):
            transition(f"open_{i}", None, p, end)
    return net, Marking({places[0]: 1}), Marking({end: 1})


def _traces(variants: Sequence[tuple]):
    from pm4py.objects.log.obj import Event, EventLog, Trace

    key = PM4PY_NAMES[ACTIVITY]
    return EventLog([Trace([Event({key: a}) for a in v], attributes={"concept:name": str(i)})
                     for i, v in enumerate(variants)])


def _is_closed(variant: tuple, profile: SalesProcessProfile) -> bool:
    return any(a in profile.closing for a in variant)


#: Variants per pm4py call; a progress step and the unit of work a process takes.
_REPLAY_CHUNK = 2_000
#: From this many variants on, the replay runs in one process per core (starting them costs
#: a few seconds; pm4py's replay takes about a millisecond per variant).
_PARALLEL_FROM = 10_000


def _replay(variants: list[tuple], profile: SalesProcessProfile, closed: bool) -> list[dict]:
    """pm4py's token replay of ``variants`` on :func:`reference_model` (its ``open_cases`` form
    unless ``closed``), one row per variant."""
    from pm4py.algo.conformance.tokenreplay.variants import token_replay

    net, im, fm = reference_model(profile, open_cases=not closed)
    params = {token_replay.Parameters.CONSIDER_ACTIVITIES_NOT_IN_MODEL_IN_FITNESS: True,
              token_replay.Parameters.SHOW_PROGRESS_BAR: False}
    return [{"fitness": float(r["trace_fitness"]), "is_fit": bool(r["trace_is_fit"]),
             "missing": int(r["missing_tokens"]), "remaining": int(r["remaining_tokens"]),
             "consumed": int(r["consumed_tokens"]), "produced": int(r["produced_tokens"]), "closed": closed}
            for r in token_replay.apply(_traces(variants), net, im, fm, parameters=params)]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def token_replay_fitness(
    log: pd.DataFrame, profile: SalesProcessProfile | str | None = None, *, progress: bool = False,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Token-based replay fitness of every case on the reference model (pm4py).

    Each distinct variant is replayed once. Closed cases are replayed on
    :func:`reference_model`; cases without a close on its ``open_cases`` form.

    Parameters
    ----------
    n_jobs : int, optional
        Processes that replay variants side by side. Default: one per core from
        10,000 variants on, else one. The result does not depend on it.

    Returns
    -------
    DataFrame[case_id, fitness, is_fit, missing, remaining, consumed, produced, closed]
    """
    profile = get_profile(profile, log)
    per_case = _variant_per_case(prepared_events(log))
    unique = list(dict.fromkeys(per_case))
    if n_jobs is None:
        n_jobs = _cores() if len(unique) >= _PARALLEL_FROM else 1
    work = []
    for closed in (True, False):
        group = [v for v in unique if _is_closed(v, profile) == closed]
        work += [(group[i:i + _REPLAY_CHUNK], profile, closed) for i in range(0, len(group), _REPLAY_CHUNK)]
    bar = tqdm(total=len(unique), desc="token replay", unit="variant", disable=not progress)
    rows: dict[tuple, dict] = {}
    with contextlib.ExitStack() as stack:
        run = map
        if n_jobs > 1 and len(work) > 1:
            # Forked where the system can: a spawned worker re-runs the caller's script, which
            # fails in a script without an ``if __name__ == "__main__"`` guard. The workers only
            # replay in pure Python, so the threads a forked process leaves behind do not matter.
            method = "fork" if "fork" in get_all_start_methods() else "spawn"
            pool = stack.enter_context(ProcessPoolExecutor(min(n_jobs, len(work)), mp_context=get_context(method)))
            run = pool.map
        for (variants, _, _), replayed in zip(work, run(_replay, *zip(*work)) if work else []):
            rows.update(zip(variants, replayed))
            bar.update(len(variants))
    bar.close()
    out = pd.DataFrame([rows[v] for v in per_case], index=per_case.index)
    return out.rename_axis(CASE).reset_index()


def discovered_fitness(log: pd.DataFrame, *, noise_threshold: float = 0.2) -> dict:
    """How well the process discovered from the log itself explains its cases (pm4py's token replay).

    The reference-profile fitness says whether deals follow the process a
    manager wrote; this one says whether the map drawn from the data is a fair
    summary of it (low when the discovered model had to drop much of the
    behaviour as noise). The inductive miner (:func:`workbench.discovery.discover_petri_net`)
    discovers the model from the events as given (the lifecycle view the log
    was read with, like the map); each variant is replayed once and counted
    for its cases.

    Returns
    -------
    dict
        ``log_fitness`` (pm4py's token-based log fitness), ``average_trace_fitness``,
        ``percentage_of_fitting_traces`` (0-100), as
        ``pm4py.fitness_token_based_replay`` gives them on the same log.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "activity": ["Ask", "Buy", "Ask", "Buy"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"] * 2, utc=True)})
    >>> discovered_fitness(log)["log_fitness"]
    1.0
    """
    from pm4py.algo.conformance.tokenreplay.variants import token_replay

    ev = check_log(log).sort_values([CASE, TIMESTAMP], kind="stable", ignore_index=True)
    var = discovery.variants(ev)
    net, im, fm = discovery.discover_petri_net(ev, noise_threshold=noise_threshold)
    params = {token_replay.Parameters.CONSIDER_ACTIVITIES_NOT_IN_MODEL_IN_FITNESS: True,
              token_replay.Parameters.SHOW_PROGRESS_BAR: False}
    replayed = token_replay.apply(_traces(list(var["variant"])), net, im, fm, parameters=params)
    n = var["count"].to_numpy(float)
    tokens = {k: float(np.dot(n, [r[f"{k}_tokens"] for r in replayed]))
              for k in ("missing", "remaining", "consumed", "produced")}
    fitness = np.array([r["trace_fitness"] for r in replayed], dtype=float)
    fit = np.array([r["trace_is_fit"] for r in replayed], dtype=bool)
    log_fitness = 0.5 * (1 - tokens["missing"] / tokens["consumed"]) if tokens["consumed"] else 0.5
    log_fitness += 0.5 * (1 - tokens["remaining"] / tokens["produced"]) if tokens["produced"] else 0.5
    return {"log_fitness": float(log_fitness), "average_trace_fitness": float(np.dot(n, fitness) / n.sum()),
            "percentage_of_fitting_traces": float(100 * n[fit].sum() / n.sum())}


def variant_alignments(
    log: pd.DataFrame,
    profile: SalesProcessProfile | str | None = None,
    *,
    top: int = 20,
    max_seconds: float = 30.0,
    progress: bool = False,
) -> pd.DataFrame:
    """Optimal alignments of the ``top`` most frequent variants on the reference model.

    Variants are aligned one by one, most frequent first, until ``max_seconds``
    is spent; the ones left get ``aligned=False`` (a variant stands for all its
    cases, so the budget goes where most cases are).

    Returns
    -------
    DataFrame[variant, count, share, aligned, fitness, cost, log_moves,
    model_moves, deviations], most frequent first. ``log_moves`` are activities
    the model could not follow, ``model_moves`` the stages the deal skipped
    (silent steps excluded); ``deviations`` says it in words.
    """
    from pm4py.algo.conformance.alignments.petri_net import algorithm as alignments
    from pm4py.algo.conformance.alignments.petri_net.variants import state_equation_a_star as astar
    from pm4py.objects.petri_net.utils.align_utils import STD_MODEL_LOG_MOVE_COST

    profile = get_profile(profile, log)
    var = discovery.variants(prepared_events(log)).head(top)[["variant", "count", "share"]].copy()
    models = {closed: reference_model(profile, open_cases=not closed) for closed in (True, False)}
    best_worst = {closed: astar.get_best_worst_cost(*models[closed]) for closed in (True, False)}
    deadline = time.monotonic() + max_seconds
    results = []
    for v in tqdm(var["variant"], desc="alignments", disable=not progress):
        left = deadline - time.monotonic()
        if left <= 0:
            results.append(None)
            continue
        closed = _is_closed(v, profile)
        P = alignments.Parameters
        params = {P.PARAM_MAX_ALIGN_TIME_TRACE: left, P.BEST_WORST_COST_INTERNAL: best_worst[closed],
                  P.PARAM_TRACE_COST_FUNCTION: [STD_MODEL_LOG_MOVE_COST] * len(v)}
        results.append(alignments.apply_trace(_traces([v])[0], *models[closed], parameters=params,
                                              variant=alignments.Variants.VERSION_STATE_EQUATION_A_STAR))
    var["aligned"] = [r is not None and r.get("alignment") is not None for r in results]
    var["fitness"] = [r["fitness"] if ok else np.nan for r, ok in zip(results, var["aligned"])]
    var["cost"] = [r["cost"] if ok else np.nan for r, ok in zip(results, var["aligned"])]
    moves = [_moves(r["alignment"]) if ok else ([], []) for r, ok in zip(results, var["aligned"])]
    var["log_moves"] = [m[0] for m in moves]
    var["model_moves"] = [m[1] for m in moves]
    var["deviations"] = [_describe_moves(*m) if ok else "not aligned within the time budget"
                         for m, ok in zip(moves, var["aligned"])]
    return var[["variant", "count", "share", "aligned", "fitness", "cost", "log_moves", "model_moves",
                "deviations"]]


def _moves(alignment: list) -> tuple[list[str], list[str]]:
    skip = ">>"
    log_moves = [a for a, m in alignment if a != skip and m == skip]
    model_moves = [m for a, m in alignment if a == skip and m not in (skip, None)]
    return log_moves, model_moves


def _describe_moves(log_moves: list[str], model_moves: list[str]) -> str:
    parts = []
    if model_moves:
        parts.append("skipped " + ", ".join(dict.fromkeys(model_moves)))
    if log_moves:
        parts.append("out of order or unexpected: " + ", ".join(dict.fromkeys(log_moves)))
    return "; ".join(parts) or "conforms"


# --------------------------------------------------------------------------- rule-based deviations
def _case_first(ev: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """Per case: how many rows of ``mask`` and the time of the first."""
    hit = ev.loc[mask, [CASE, TIMESTAMP]]
    return hit.groupby(CASE, sort=True)[TIMESTAMP].agg(count="size", first_at="min").reset_index()


def _rows(kind: str, frame: pd.DataFrame, detail: pd.Series | str) -> pd.DataFrame:
    out = frame.assign(kind=kind, detail=detail)
    return out[DEVIATION_COLUMNS]


def _without_close_completions(rows: pd.DataFrame, profile: SalesProcessProfile) -> pd.DataFrame:
    """Drop the quarantined 'complete' of a closing activity whose 'start' closed the case.

    A loader that sets events after the close aside without looking at lifecycle
    transitions quarantines the completion of the close itself; it is not a deviation.
    """
    col = next((c for c in ("lifecycle", "lifecycle:transition") if c in rows.columns), None)
    act = next((c for c in (ACTIVITY, PM4PY_NAMES[ACTIVITY]) if c in rows.columns), None)
    if col is None or act is None or rows.empty:
        return rows
    case = next((c for c in (CASE, PM4PY_NAMES[CASE]) if c in rows.columns), None)
    completes_close = ((rows[col].astype(str).str.strip().str.lower() == "complete")
                       & rows[act].isin(profile.closing))
    first = ~completes_close.groupby(rows[case] if case else pd.Series(0, index=rows.index)).cumsum().gt(1)
    return rows[~(completes_close & first)]


def _quarantined_after_close(quarantine: pd.DataFrame | None, case_column: str | None,
                             profile: SalesProcessProfile) -> pd.DataFrame:
    """Quarantine rows set aside as ``event_after_close``: DataFrame[case_id, timestamp]."""
    empty = pd.DataFrame({CASE: pd.Series(dtype="str"), TIMESTAMP: pd.Series(dtype="datetime64[ns, UTC]")})
    if quarantine is None or len(quarantine) == 0:
        return empty
    if "reason" not in quarantine.columns:
        raise WorkbenchError("the quarantine table has no 'reason' column.", column="reason",
                             hint="pass LoadResult.quarantine as returned by workbench.io.read_event_log.")
    rows = quarantine[quarantine["reason"] == "event_after_close"]
    rows = _without_close_completions(rows, profile)
    candidates = [case_column] if case_column else [CASE, PM4PY_NAMES[CASE]]
    col = next((c for c in candidates if c in quarantine.columns), None)
    if col is None:
        raise WorkbenchError(
            f"the quarantine table has no case column {candidates[0]!r}.", column=candidates[0],
            hint="pass case_column= with the name of your export's case id column.")
    ts_col = next((c for c in (TIMESTAMP, PM4PY_NAMES[TIMESTAMP]) if c in rows.columns), None)
    ts = (pd.to_datetime(rows[ts_col], utc=True, errors="coerce", format="mixed") if ts_col
          else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns, UTC]"))
    return pd.DataFrame({CASE: rows[col].astype(str).to_numpy(), TIMESTAMP: ts.to_numpy()})


def detect_deviations(
    log: pd.DataFrame,
    profile: SalesProcessProfile | str | None = None,
    *,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    case_column: str | None = None,
) -> pd.DataFrame:
    """Find the deviations of every case from the profile (definitions in the module docstring).

    Parameters
    ----------
    log : DataFrame
        Canonical event log (events after the close may still be in it).
    quarantine : DataFrame, optional
        The loader's quarantine; its ``event_after_close`` rows count as
        ``after_close`` deviations of their case.
    gap_days : float, optional
        Follow-up gap threshold in days; default ``profile.followup_gap_days``.
    case_column : str, optional
        The quarantine's case id column when it is not ``case_id``.

    Returns
    -------
    DataFrame[case_id, kind, count, first_at, detail]: one row per case and kind
    found, sorted by case_id and kind (in :data:`KINDS` order).
    """
    profile = get_profile(profile, log)
    gap_days = profile.followup_gap_days if gap_days is None else float(gap_days)
    if not gap_days > 0:
        raise WorkbenchError(f"gap_days={gap_days} is not a positive number of days.", hint="give e.g. 45.")
    milestones_only = log.attrs.get("kind") == "opportunities"
    ev = prepared_events(log)
    act = ev[ACTIVITY]
    case = ev[CASE].to_numpy()
    after = after_close_mask(ev, profile)
    closing = act.isin(profile.closing).to_numpy()
    close = closing & ~after
    pre = ~closing & ~after
    rank = act.map({s: i for i, s in enumerate(profile.stages)}).to_numpy(dtype=float)
    stage_pre = pre & ~np.isnan(rank)
    won = close & act.isin(profile.won).to_numpy()
    found: list[pd.DataFrame] = []

    # Stages present before the close, and how far each case got.
    stage_hits = pd.DataFrame({CASE: case[stage_pre], "stage": act.to_numpy()[stage_pre]})
    # groupby().size() counts in compiled code; pd.crosstab counts each cell in Python
    present = stage_hits.groupby([CASE, "stage"]).size().unstack(fill_value=0).gt(0)
    cases = pd.Index(pd.unique(case), name=CASE)
    present = present.reindex(index=cases, columns=list(profile.stages), fill_value=False)
    reach = pd.Series(rank[stage_pre], index=case[stage_pre]).groupby(level=0).max().reindex(cases)
    won_cases = pd.Index(pd.unique(case[won]))
    reach[reach.index.isin(won_cases)] = len(profile.stages)
    close_at = ev.loc[close].set_index(CASE)[TIMESTAMP].reindex(cases)

    missing = {s: (~present[s]) & (reach > profile.stages.index(s)) for s in profile.mandatory}
    skipped = pd.DataFrame(missing)
    if len(skipped) and skipped.to_numpy().any():
        hit = skipped[skipped.any(axis=1)]
        names = hit.apply(lambda r: ", ".join(s for s in profile.mandatory if r[s]), axis=1)
        first_skipped = hit.apply(lambda r: min(profile.stages.index(s) for s in profile.mandatory if r[s]),
                                  axis=1)
        later = pd.DataFrame({CASE: case, "rank": rank, TIMESTAMP: ev[TIMESTAMP]})[stage_pre]
        later = later.merge(first_skipped.rename("skip").reset_index(), on=CASE)
        shown = later[later["rank"] > later["skip"]].groupby(CASE)[TIMESTAMP].min()
        at = shown.reindex(hit.index).fillna(close_at.reindex(hit.index))
        frame = pd.DataFrame({CASE: hit.index, "count": hit.sum(axis=1).to_numpy(), "first_at": at.to_numpy()})
        found.append(_rows("skipped_stage", frame, ("skipped " + names).to_numpy()))

    qual, prop = profile.roles.get("qualification"), profile.roles.get("proposal")
    if qual and prop:
        is_qual = (act == qual).to_numpy().astype("int64")
        seen_qual = pd.Series(is_qual).groupby(case, sort=False).cumsum().to_numpy() - is_qual
        mask = pre & (act == prop).to_numpy() & (seen_qual == 0)
        found.append(_rows("premature_proposal", _case_first(ev, mask), f"{prop} before any {qual}"))

    st = ev.loc[stage_pre, [CASE, TIMESTAMP, ACTIVITY]].assign(rank=rank[stage_pre])
    prev_rank = st.groupby(CASE, sort=False)["rank"].shift()
    prev_act = st.groupby(CASE, sort=False)[ACTIVITY].shift()
    back = (st["rank"] < prev_rank).to_numpy()
    if back.any():
        regress = st[back].assign(step="back from " + prev_act[back] + " to " + st.loc[back, ACTIVITY])
        agg = regress.groupby(CASE, sort=True).agg(count=(TIMESTAMP, "size"), first_at=(TIMESTAMP, "min"),
                                                  detail=("step", "first")).reset_index()
        found.append(agg.assign(kind="stage_regression")[DEVIATION_COLUMNS])

    nxt = ev.groupby(CASE, sort=False)[TIMESTAMP].shift(-1)
    gap = (nxt - ev[TIMESTAMP]).dt.total_seconds().to_numpy() / DAY_S
    long_gap = pre & (np.nan_to_num(gap, nan=0.0) > gap_days) & (not milestones_only)
    if long_gap.any():
        g = pd.DataFrame({CASE: case[long_gap], TIMESTAMP: ev[TIMESTAMP].to_numpy()[long_gap],
                          "days": gap[long_gap]})
        agg = g.groupby(CASE, sort=True).agg(count=("days", "size"), first_at=(TIMESTAMP, "min"),
                                             longest=("days", "max")).reset_index()
        detail = agg["longest"].map(lambda d: f"silent for {d:.0f} days (> {gap_days:g})")
        found.append(_rows("followup_gap", agg, detail.to_numpy()))

    late = pd.concat([ev.loc[after, [CASE, TIMESTAMP]].reset_index(drop=True),
                      _quarantined_after_close(quarantine, case_column, profile)], ignore_index=True)
    if len(late):
        agg = late.groupby(CASE, sort=True)[TIMESTAMP].agg(count="size", first_at="min").reset_index()
        detail = agg["count"].map(lambda n: f"{n} event{'s' if n > 1 else ''} after the close")
        found.append(_rows("after_close", agg, detail.to_numpy()))

    milestone_stages = list(dict.fromkeys(profile.milestones.values()))
    if milestone_stages and len(won_cases):
        lacking = ~present.loc[won_cases, milestone_stages]
        hit = lacking[lacking.any(axis=1)]
        if len(hit):
            names = hit.apply(lambda r: ", ".join(
                f"{m} ({s})" for m, s in profile.milestones.items() if r[s]), axis=1)
            frame = pd.DataFrame({CASE: hit.index, "count": hit.sum(axis=1).to_numpy(),
                                  "first_at": close_at.reindex(hit.index).to_numpy()})
            found.append(_rows("won_without_milestones", frame, ("won without " + names).to_numpy()))

    if not found:
        return _empty_deviations()
    out = pd.concat(found, ignore_index=True)
    out[CASE] = out[CASE].astype(str)
    out["count"] = out["count"].astype("int64")
    out["first_at"] = pd.to_datetime(out["first_at"], utc=True)
    out["_k"] = out["kind"].map({k: i for i, k in enumerate(KINDS)})
    return out.sort_values([CASE, "_k"], kind="stable", ignore_index=True).drop(columns="_k")


def _empty_deviations() -> pd.DataFrame:
    return pd.DataFrame({CASE: pd.Series(dtype="str"), "kind": pd.Series(dtype="str"),
                         "count": pd.Series(dtype="int64"),
                         "first_at": pd.Series(dtype="datetime64[ns, UTC]"), "detail": pd.Series(dtype="str")})


# --------------------------------------------------------------------------- per case and summaries
def case_conformance(
    log: pd.DataFrame,
    profile: SalesProcessProfile | str | None = None,
    *,
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = KINDS,
) -> pd.DataFrame:
    """One row per case: the case table (:func:`workbench.kpis.case_table`), one
    boolean column per deviation kind, ``n_deviations`` and ``conforming``
    (no deviation of the given ``kinds``)."""
    kinds = _check_kinds(kinds)
    profile = get_profile(profile, log)
    ev = prepared_events(log)
    if deviations is None:
        deviations = detect_deviations(ev, profile, quarantine=quarantine, gap_days=gap_days)
    cases = kpis.case_table(ev, profile=profile)
    flags = deviations.groupby([CASE, "kind"]).size().unstack(fill_value=0).gt(0)
    flags = flags.reindex(index=cases[CASE], columns=list(KINDS), fill_value=False)
    for kind in KINDS:
        cases[kind] = flags[kind].to_numpy()
    cases["n_deviations"] = flags.sum(axis=1).to_numpy()
    cases["conforming"] = ~flags[list(kinds)].any(axis=1).to_numpy()
    return cases


def _check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if bad := [k for k in kinds if k not in KINDS]:
        raise WorkbenchError(f"unknown deviation kind {bad[0]!r}.", hint=f"use some of {list(KINDS)}.")
    if not kinds:
        raise WorkbenchError("no deviation kind given.", hint=f"use some of {list(KINDS)}.")
    return kinds


def _pays(cases: pd.DataFrame, *, alpha: float, n_boot: int, seed: int) -> dict:
    """Win rate and median cycle days of closed (won or lost) conforming vs deviating deals, with tests."""
    closed = cases[cases["outcome"].isin(["won", "lost"])]
    ok, dev = closed[closed["conforming"]], closed[~closed["conforming"]]
    win = rate_difference(int((ok["outcome"] == "won").sum()), len(ok),
                          int((dev["outcome"] == "won").sum()), len(dev), alpha=alpha)
    cyc = median_difference(ok["cycle_days"], dev["cycle_days"], alpha=alpha, n_boot=n_boot, seed=seed)

    def rate(part: pd.DataFrame) -> float:  # shown even when the other side is empty
        return float((part["outcome"] == "won").mean()) if len(part) else np.nan

    def median(part: pd.DataFrame) -> float:
        return float(part["cycle_days"].median()) if part["cycle_days"].notna().any() else np.nan

    return {"closed": len(closed),
            "win_rate_conforming": rate(ok), "win_rate_deviating": rate(dev), "win_n_conforming": len(ok),
            "win_n_deviating": len(dev), "win_diff": win["diff"], "win_ci_low": win["ci_low"],
            "win_ci_high": win["ci_high"], "win_p": win["p_value"],
            "cycle_days_conforming": median(ok), "cycle_days_deviating": median(dev),
            "cycle_diff_days": cyc["diff"], "cycle_ci_low": cyc["ci_low"], "cycle_ci_high": cyc["ci_high"],
            "cycle_p": cyc["p_value"]}





def conformance_summary(
    log: pd.DataFrame,
    profile: SalesProcessProfile | str | None = None,
    *,
    by: str | Sequence[str] | None = "rep",
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = KINDS,
    fitness: bool = False,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Conformance per rep, team or region (``by=None``: the whole log in one row).

    With ``fitness=True`` the mean token-replay fitness of the group's deals
    (:func:`token_replay_fitness`) is added as ``mean_fitness``.

    Per group: deals, share conforming, deals with each kind of deviation, and
    whether following the process pays: the win rate of closed conforming versus
    deviating deals (difference, Newcombe interval, p-value) and their median
    cycle time in days (difference, bootstrap interval, Mann-Whitney p-value).
    P-values are corrected across groups (Benjamini-Hochberg) separately for win
    rate and cycle; ``win_significant`` / ``cycle_significant`` mark the findings.

    ``kinds`` says which deviations make a deal non-conforming. Note that
    ``won_without_milestones`` exists only for won deals, ``after_close`` only for
    closed ones and ``skipped_stage`` grows with how far a deal got, so with them
    the win-rate comparison is partly decided by the definitions;
    :data:`OUTCOME_NEUTRAL` leaves those three out.

    Returns
    -------
    DataFrame[<by>..., cases, conforming, share_conforming, mean_fitness?, <kind>..., closed,
    win_rate_conforming, win_rate_deviating, win_n_conforming, win_n_deviating,
    win_diff, win_ci_low, win_ci_high, win_p, win_p_adjusted, win_significant,
    cycle_days_conforming, cycle_days_deviating, cycle_diff_days, cycle_ci_low,
    cycle_ci_high, cycle_p, cycle_p_adjusted, cycle_significant]
    """
    keys = [by] if isinstance(by, str) else list(by or [])
    ev = prepared_events(log)
    if keys:
        require(ev, keys, "conformance by " + " / ".join(keys))
    cases = case_conformance(ev, profile, deviations=deviations, quarantine=quarantine, gap_days=gap_days,
                             kinds=kinds)
    if fitness:
        fit = token_replay_fitness(ev, profile, progress=progress)
        cases = cases.merge(fit[[CASE, "fitness"]], on=CASE, how="left")
    cases = cases.assign(**{k: labelled(cases[k]) for k in keys})
    groups = cases.groupby(keys, sort=True) if keys else [((), cases)]
    rows = []
    for i, (key, g) in enumerate(tqdm(groups, desc="conformance", disable=not progress)):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row.update(cases=len(g), conforming=int(g["conforming"].sum()))
        row["share_conforming"] = row["conforming"] / len(g)
        if fitness:
            row["mean_fitness"] = float(g["fitness"].mean())
        row.update({k: int(g[k].sum()) for k in KINDS})
        row.update(_pays(g, alpha=alpha, n_boot=n_boot, seed=seed + i))
        rows.append(row)
    out = pd.DataFrame(rows)
    for prefix in ("win", "cycle"):
        marked = mark_findings(out.rename(columns={f"{prefix}_ci_low": "ci_low", f"{prefix}_ci_high": "ci_high",
                                                   f"{prefix}_p": "p_value"}), alpha=alpha)
        out[f"{prefix}_p_adjusted"] = marked["p_adjusted"].to_numpy()
        out[f"{prefix}_significant"] = marked["significant"].to_numpy()
    order = keys + ["cases", "conforming", "share_conforming", *(["mean_fitness"] if fitness else []), *KINDS,
                    "closed"]
    order += [c for c in out.columns if c.startswith("win_")] + [c for c in out.columns if c.startswith("cycle_")]
    return out[order]


def process_pays(
    log: pd.DataFrame,
    profile: SalesProcessProfile | str | None = None,
    *,
    deviations: pd.DataFrame | None = None,
    quarantine: pd.DataFrame | None = None,
    gap_days: float | None = None,
    kinds: Sequence[str] = OUTCOME_NEUTRAL,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Does following the process pay? Win rate and cycle time of conforming vs deviating deals.

    By default a deal deviates when it has one of the :data:`OUTCOME_NEUTRAL`
    kinds, so that the comparison is not decided by the definitions (see
    :func:`conformance_summary`).

    Returns
    -------
    DataFrame with one row per measure ('win_rate', 'cycle_days'): conforming,
    deviating, n_conforming, n_deviating, diff, ci_low, ci_high, p_value,
    p_adjusted, significant.
    """
    cases = case_conformance(log, profile, deviations=deviations, quarantine=quarantine, gap_days=gap_days,
                             kinds=kinds)
    s = _pays(cases, alpha=alpha, n_boot=n_boot, seed=seed)
    cyc_n = cases[cases["outcome"].isin(["won", "lost"])].groupby("conforming")["cycle_days"].count()
    table = pd.DataFrame([
        {"measure": "win_rate", "conforming": s["win_rate_conforming"], "deviating": s["win_rate_deviating"],
         "n_conforming": s["win_n_conforming"], "n_deviating": s["win_n_deviating"], "diff": s["win_diff"],
         "ci_low": s["win_ci_low"], "ci_high": s["win_ci_high"], "p_value": s["win_p"]},
        {"measure": "cycle_days", "conforming": s["cycle_days_conforming"],
         "deviating": s["cycle_days_deviating"], "n_conforming": int(cyc_n.get(True, 0)),
         "n_deviating": int(cyc_n.get(False, 0)), "diff": s["cycle_diff_days"], "ci_low": s["cycle_ci_low"],
         "ci_high": s["cycle_ci_high"], "p_value": s["cycle_p"]},
    ])
    return mark_findings(table, alpha=alpha)
