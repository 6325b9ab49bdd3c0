"""Replaying the deals on a model with pm4py: token-replay fitness (the reference model and the
discovered one) and alignments of the most frequent variants."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context

import numpy as np
import pandas as pd

from ..progress import tqdm
from .. import discovery
from ..profile import SalesProcessProfile, get_profile
from ..schema import ACTIVITY, CASE, TIMESTAMP, check_log

from .reference import is_closed, prepared_events, reference_model, traces

def _variant_per_case(ev: pd.DataFrame) -> pd.Series:
    """Each case's activity sequence (tuple), indexed by case_id."""
    return ev.groupby(CASE, sort=True)[ACTIVITY].agg(tuple)


#: Variants per pm4py call; a progress step and the unit of work a process takes.
_REPLAY_CHUNK = 2_000


#: From this many variants on, the replay runs in one process per core (starting them costs
#: a few seconds; pm4py's replay takes about a millisecond per variant).
_PARALLEL_FROM = 10_000

#: The most variants :func:`discovered_fitness` and :func:`reference_fitness` replay. Beyond, the most frequent half are
#: replayed and a random sample of the rest stands for the rarer variants: a log of a million events
#: had 35,909 variants, 28,781 of them seen once, and replaying them all took a minute.
MAX_REPLAYED = 10_000

_TOKENS = ("missing", "remaining", "consumed", "produced")


def _replay_on(variants: list[tuple], net, im, fm) -> list[dict]:
    """pm4py's token replay of ``variants`` on the net, one row per variant.

    A variant with an activity the net lacks does not fit, whatever its tokens say. pm4py's own
    option for that (``consider_activities_not_in_model_in_fitness``) remembers such an activity
    for the rest of the call, so that every trace replayed after it is unfit too; the check is made here.
    """
    from pm4py.algo.conformance.tokenreplay.variants import token_replay

    labels = {t.label for t in net.transitions if t.label is not None}
    params = {token_replay.Parameters.SHOW_PROGRESS_BAR: False}
    return [{"fitness": float(r["trace_fitness"]), "is_fit": bool(r["trace_is_fit"]) and labels.issuperset(v),
             **{k: int(r[f"{k}_tokens"]) for k in _TOKENS}}
            for v, r in zip(variants, token_replay.apply(traces(variants), net, im, fm, parameters=params))]


def _replay(variants: list[tuple], profile: SalesProcessProfile, closed: bool) -> list[dict]:
    """:func:`_replay_on` :func:`reference_model` (its ``open_cases`` form unless ``closed``)."""
    return [{**row, "closed": closed} for row in _replay_on(variants, *reference_model(profile, open_cases=not closed))]


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _replay_chunks(replay, work: list[tuple], *, n_jobs: int | None, n_variants: int, progress: bool,
                   desc: str) -> list[list[dict]]:
    """``replay(*args)`` for every ``args`` of ``work`` (variants first), side by side in one process
    per core from :data:`_PARALLEL_FROM` variants on (or ``n_jobs``); the results in ``work``'s order."""
    if n_jobs is None:
        n_jobs = _cores() if n_variants >= _PARALLEL_FROM else 1
    bar = tqdm(total=n_variants, desc=desc, unit="variant", disable=not progress)
    done = []
    with contextlib.ExitStack() as stack:
        run = map
        if n_jobs > 1 and len(work) > 1:
            # Forked where the system can: a spawned worker re-runs the caller's script, which
            # fails in a script without an ``if __name__ == "__main__"`` guard. The workers only
            # replay in pure Python, so the threads a forked process leaves behind do not matter.
            method = "fork" if "fork" in get_all_start_methods() else "spawn"
            pool = stack.enter_context(ProcessPoolExecutor(min(n_jobs, len(work)), mp_context=get_context(method)))
            run = pool.map
        for args, replayed in zip(work, run(replay, *zip(*work)) if work else []):
            done.append(replayed)
            bar.update(len(args[0]))
    bar.close()
    return done


def _reference_rows(variants: list[tuple], profile: SalesProcessProfile, *, n_jobs: int | None, progress: bool,
                    desc: str = "token replay") -> list[dict]:
    """:func:`_replay` of each of ``variants`` on the reference net its close calls for, in their order."""
    work = []
    for closed in (True, False):
        group = [v for v in variants if is_closed(v, profile) == closed]
        work += [(group[i:i + _REPLAY_CHUNK], profile, closed) for i in range(0, len(group), _REPLAY_CHUNK)]
    rows: dict[tuple, dict] = {}
    for (chunk, _, _), replayed in zip(work, _replay_chunks(_replay, work, n_jobs=n_jobs, n_variants=len(variants),
                                                             progress=progress, desc=desc)):
        rows.update(zip(chunk, replayed))
    return [rows[v] for v in variants]


def token_replay_fitness(
    log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None, progress: bool = True,
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Token-based replay fitness of every case on the reference model (pm4py).

    Each distinct variant is replayed once. Closed cases are replayed on
    :func:`reference_model`; cases without a close on its ``open_cases`` form.
    :func:`reference_fitness` gives the log's figures without replaying every
    rare variant.

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
    rows = dict(zip(unique, _reference_rows(unique, profile, n_jobs=n_jobs, progress=progress)))
    out = pd.DataFrame([rows[v] for v in per_case], index=per_case.index)
    return out.rename_axis(CASE).reset_index()


def reference_fitness(
    log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None, max_replayed: int = MAX_REPLAYED,
    seed: int = 0, n_jobs: int | None = None, progress: bool = True,
) -> dict:
    """How well the deals follow the reference process, for the whole log: the figures of
    :func:`discovered_fitness`, replayed on :func:`reference_model` as :func:`token_replay_fitness` does.

    A log of up to ``max_replayed`` variants gives the mean of
    :func:`token_replay_fitness`'s per-case fitness exactly; a longer tail of
    rare variants is estimated from a sample of them (``seed``), with its
    standard error, as in :func:`discovered_fitness`.

    Returns
    -------
    dict
        The keys of :func:`discovered_fitness`.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b"], "activity": ["Ask", "Buy", "Ask"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-01"], utc=True)})
    >>> from workbench.profile import SalesProcessProfile
    >>> buy = SalesProcessProfile(name="buy", stages=("Ask",), won=("Buy",), lost=("Drop",))
    >>> reference_fitness(log, profile=buy, progress=False)["average_trace_fitness"]  # b is open: a prefix
    1.0
    """
    profile = get_profile(profile, log)
    var = discovery.variants(prepared_events(log))[["variant", "count"]]
    return _estimate(var, lambda variants: _reference_rows(variants, profile, n_jobs=n_jobs, progress=progress),
                     max_replayed=max_replayed, seed=seed)


def discovered_fitness(
    log: pd.DataFrame, *, noise_threshold: float = 0.2, max_replayed: int = MAX_REPLAYED, seed: int = 0,
    n_jobs: int | None = None, progress: bool = True,
) -> dict:
    """How well the process discovered from the log itself explains its cases (pm4py's token replay).

    The reference-profile fitness says whether deals follow the process a
    manager wrote; this one says whether the map drawn from the data is a fair
    summary of it (low when the discovered model had to drop much of the
    behaviour as noise). The inductive miner (:func:`workbench.discovery.discover_petri_net`)
    discovers the model from the events as given (the lifecycle view the log
    was read with, like the map); each variant is replayed once and counted
    for its cases.

    A log with more than ``max_replayed`` variants is not replayed whole: its
    ``max_replayed // 2`` most frequent variants are, and a random sample (``seed``)
    of the same number of the rarer ones stands for those: each sampled variant's
    tokens and fitness per case count for the rarer variants' cases (a ratio
    estimator). ``standard_error`` says how far that may be from replaying
    everything (0 when everything was replayed).

    Returns
    -------
    dict
        ``log_fitness`` (pm4py's token-based log fitness), ``average_trace_fitness``,
        ``percentage_of_fitting_traces`` (0-100), as
        ``pm4py.fitness_token_based_replay`` gives them on the same log;
        ``variants`` (in the log), ``replayed_most_frequent``, ``replayed_sample``
        (of the rarer variants), ``share_of_cases_sampled`` (the rarer variants'
        share of the cases) and ``standard_error`` (of each of the three figures).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "activity": ["Ask", "Buy", "Ask", "Buy"],
    ...                     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"] * 2, utc=True)})
    >>> discovered_fitness(log, progress=False)["log_fitness"]
    1.0
    """
    ev = check_log(log).sort_values([CASE, TIMESTAMP], kind="stable", ignore_index=True)
    var = discovery.variants(ev)
    net, im, fm = discovery.discover_petri_net(ev, noise_threshold=noise_threshold)

    def replay(variants: list[tuple]) -> list[dict]:
        work = [(variants[i:i + _REPLAY_CHUNK], net, im, fm) for i in range(0, len(variants), _REPLAY_CHUNK)]
        return [r for chunk in _replay_chunks(_replay_on, work, n_jobs=n_jobs, n_variants=len(variants),
                                              progress=progress, desc="token replay (discovered map)") for r in chunk]

    return _estimate(var, replay, max_replayed=max_replayed, seed=seed)


def _estimate(var: pd.DataFrame, replay: Callable[[list[tuple]], list[dict]], *, max_replayed: int,
              seed: int) -> dict:
    """The log's fitness figures from ``replay`` of its variants (``var``: variant, count), all of
    them or, past ``max_replayed``, the most frequent and a sample of the rest (see :func:`discovered_fitness`)."""
    var = var.sort_values("count", ascending=False, kind="stable", ignore_index=True)
    count = var["count"].to_numpy(float)
    head = len(var) if len(var) <= max_replayed else max(1, max_replayed // 2)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(np.arange(head, len(var)), size=min(len(var) - head, max_replayed - head),
                                replace=False))
    chosen = np.r_[np.arange(head), sample].astype(int)
    rows = replay([var["variant"].iat[i] for i in chosen]) if len(chosen) else []
    per_case = pd.DataFrame(rows, columns=["fitness", "is_fit", *_TOKENS], dtype=float)
    per_case = per_case.rename(columns={"is_fit": "fit"})
    n = count[chosen]
    is_head = np.arange(len(chosen)) < head
    tail_cases = count[head:].sum()

    def total(x: np.ndarray) -> float:
        """The total of per-case ``x`` over every case: the head's exactly, the tail's by the ratio estimator."""
        tail = np.dot(n[~is_head], x[~is_head]) / n[~is_head].sum() * tail_cases if (~is_head).any() else 0.0
        return float(np.dot(n[is_head], x[is_head]) + tail)

    def se(x: np.ndarray) -> float:
        """Standard error of :func:`total` of ``x`` (sampling the rarer variants without replacement)."""
        s, k = int((~is_head).sum()), len(var) - head
        if s < 2 or s == k:
            return 0.0
        n_s, x_s = n[~is_head], x[~is_head]
        d = n_s * (x_s - np.dot(n_s, x_s) / n_s.sum())
        return float(k * np.sqrt((1 - s / k) * d.var(ddof=1) / s))

    tokens = {k: total(per_case[k].to_numpy()) for k in _TOKENS}
    m, r, c, p = (tokens[k] for k in _TOKENS)  # missing, remaining, consumed, produced
    log_fitness = (0.5 * (1 - m / c) if c else 0.5) + (0.5 * (1 - r / p) if p else 0.5)
    # log_fitness is a ratio of totals: its error is that of the total of its linearisation per case.
    linear = np.zeros(len(per_case))
    if c:
        linear -= 0.5 * (per_case["missing"] - m / c * per_case["consumed"]).to_numpy() / c
    if p:
        linear -= 0.5 * (per_case["remaining"] - r / p * per_case["produced"]).to_numpy() / p
    cases = count.sum()
    fitness, fit = per_case["fitness"].to_numpy(), per_case["fit"].to_numpy()
    return {"log_fitness": float(log_fitness), "average_trace_fitness": float(total(fitness) / cases),
            "percentage_of_fitting_traces": float(100 * total(fit) / cases),
            "variants": len(var), "replayed_most_frequent": int(head), "replayed_sample": int(len(sample)),
            "share_of_cases_sampled": float(tail_cases / cases) if len(sample) else 0.0,
            "standard_error": {"log_fitness": se(linear), "average_trace_fitness": float(se(fitness) / cases),
                               "percentage_of_fitting_traces": float(100 * se(fit) / cases)}}


def variant_alignments(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    top: int = 20,
    max_seconds: float = 30.0,
    progress: bool = True,
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
        closed = is_closed(v, profile)
        P = alignments.Parameters
        params = {P.PARAM_MAX_ALIGN_TIME_TRACE: left, P.BEST_WORST_COST_INTERNAL: best_worst[closed],
                  P.PARAM_TRACE_COST_FUNCTION: [STD_MODEL_LOG_MOVE_COST] * len(v)}
        results.append(alignments.apply_trace(traces([v])[0], *models[closed], parameters=params,
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


def estimate_notes(**figures: tuple[dict, str]) -> list[str]:
    """Plain sentences saying which fitness figures were estimated from a sample of variants, and how closely.

    ``figures`` maps what a figure measures to ``(result, key)``: a result of
    :func:`reference_fitness` or :func:`discovered_fitness` and the figure quoted from it.
    Figures estimated from the same variants share a sentence; exact ones get none.

    Examples
    --------
    >>> exact = {"replayed_sample": 0}
    >>> estimate_notes(**{"the reference process": (exact, "average_trace_fitness")})
    []
    """
    shared: dict[tuple, list[str]] = {}
    for what, (result, key) in figures.items():
        if result["replayed_sample"]:
            how = tuple(result[k] for k in ("variants", "replayed_most_frequent", "replayed_sample",
                                            "share_of_cases_sampled"))
            margin = 2 * result["standard_error"][key]
            shared.setdefault(how, []).append(f"{what} give or take {margin:.3f}" if margin >= 0.0005
                                              else f"{what} within 0.001")
    return [f"Fitness is estimated: of the log's {n:,} variants, the {head:,} most common were replayed, and "
            f"{sample:,} picked at random stand for the rarer ones, which hold {share:.0%} of the deals "
            f"({'; '.join(errors)})." for (n, head, sample, share), errors in shared.items()]
