"""Root causes: which deal attributes go with lower win rates or longer stage times.

Every value of every attribute (lead source, segment, product, rep, team,
new vs existing customer, amount band) is compared with all other deals:
win rate by :func:`workbench.stats.rate_difference`, time in each stage by
:func:`workbench.stats.median_difference`. The effect comes with its
confidence interval, and the p-values of all comparisons made together are
corrected for multiple testing (Benjamini-Hochberg); only what survives is a
finding (the world-class sales practices were screened the same way: kept where
their influence on the KPIs was statistically significant; stalled deals should
be traced to a root cause).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .progress import tqdm
from . import schema, stats
from .bottlenecks import stage_durations
from .kpis import case_table
from .errors import WorkbenchError
from .stats import N_BOOT
from .groups import labelled
from .profile import SalesProcessProfile, get_profile

#: Attributes examined by default, when the log has them.
DEFAULT_ATTRIBUTES = ("lead_source", "segment", "product", "channel", "rep", "team", "region",
                      "customer_type", "amount_band")

#: A driver's key (metric, stage, attribute, the attribute's value compared as ``group``), then the
#: columns every group-against-the-rest comparison has (:data:`workbench.stats.GROUP_VS_REST_COLUMNS`).
COLUMNS = ["metric", "stage", "attribute", "group", "n", "rest_n", "value", "rest_value",
           "diff", "ci_low", "ci_high", "p_value"]


def amount_bands(amount: pd.Series, *, bands: int = 4) -> pd.Series:
    """Quantile bands of deal amounts ('1: 0-1,000', '2: 1,000-5,000', ...); NaN amounts stay NaN.

    Equal-count bands (quartiles by default) so that each band has enough deals to test.
    """
    amount = pd.to_numeric(amount, errors="coerce")
    if amount.nunique() < 2:
        return pd.Series(np.nan, index=amount.index, dtype=object)
    codes, edges = pd.qcut(amount, bands, labels=False, retbins=True, duplicates="drop")
    labels = {i: f"{i + 1}: {edges[i]:,.0f}-{edges[i + 1]:,.0f}" for i in range(len(edges) - 1)}
    return codes.map(labels).astype(object)


def _attributes(frame: pd.DataFrame, attributes: tuple[str, ...] | list[str] | None) -> list[str]:
    if attributes is None:
        return [a for a in DEFAULT_ATTRIBUTES if schema.has_column(frame, a) and frame[a].nunique() > 1]
    schema.require(frame, list(attributes), "root causes")
    return list(attributes)


def _with_bands(cases: pd.DataFrame, bands: int) -> pd.DataFrame:
    if schema.has_column(cases, schema.AMOUNT):
        cases = cases.assign(amount_band=amount_bands(cases[schema.AMOUNT], bands=bands))
    return cases


def _table(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Comparisons of :func:`workbench.stats.group_vs_rest` stacked into the :data:`COLUMNS` table."""
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[COLUMNS] if frames else pd.DataFrame(columns=COLUMNS)


def win_rate_drivers(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    attributes: tuple[str, ...] | list[str] | None = None,
    min_n: int = 10,
    bands: int = 4,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Win rate of each attribute value against all other closed deals.

    Parameters
    ----------
    attributes : list of str, optional
        Case attributes to examine; default those of :data:`DEFAULT_ATTRIBUTES`
        the log has (``amount_band`` is made from ``amount``).
    min_n : int
        A value is compared only when it and the rest each have this many closed deals.

    Returns
    -------
    DataFrame
        metric ('win_rate'), stage (empty), attribute, group (the
        attribute's value), n, rest_n, value (its win rate), rest_value, diff,
        ci_low, ci_high, p_value, p_adjusted, significant.
    """
    cases = _with_bands(case_table(log, profile=profile), bands)
    closed = cases[cases["outcome"].isin(["won", "lost"])]
    won = closed["outcome"].eq("won")
    frames = [stats.group_vs_rest(won, closed[attribute], kind="rate", min_n=min_n, alpha=alpha)
              .assign(metric="win_rate", stage=None, attribute=attribute)
              for attribute in _attributes(closed, attributes)]
    return stats.mark_findings(_table(frames), alpha=alpha)


def stage_time_drivers(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    attributes: tuple[str, ...] | list[str] | None = None,
    stages: list[str] | None = None,
    min_n: int = 10,
    bands: int = 4,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Median days in each stage for each attribute value against all other visits of that stage.

    rep, team and region are those of the event that entered the stage; the
    other attributes are the deal's. Only finished visits count.

    Parameters
    ----------
    stages : list of str, optional
        Default every stage of the profile.
    n_boot, seed : int
        Bootstrap resamples of each interval and the seed of their generator.

    Returns
    -------
    DataFrame
        metric ('days in <stage>'), stage, attribute, group (the
        attribute's value), n, rest_n, value (median days), rest_value,
        diff, ci_low, ci_high, p_value, p_adjusted, significant.
    """
    profile = get_profile(profile, log)
    visits = stage_durations(log, profile=profile)
    visits = _with_bands(visits, bands)
    done = visits[visits["finished"]]
    stages = list(profile.stages if stages is None else stages)
    rng = np.random.default_rng(seed)
    tasks = [(s, a) for s in stages for a in _attributes(done, attributes)]
    frames = []
    for stage, attribute in tqdm(tasks, desc="stage-time drivers", disable=not progress):
        at = done[done["stage"].eq(stage)]
        frames.append(stats.group_vs_rest(at["duration_days"], at[attribute], min_n=min_n, alpha=alpha,
                                          n_boot=n_boot, seed=int(rng.integers(2**31)))
                      .assign(metric=f"days in {stage}", stage=stage, attribute=attribute))
    return stats.mark_findings(_table(frames), alpha=alpha)


def root_causes(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    attributes: tuple[str, ...] | list[str] | None = None,
    stages: list[str] | None = None,
    min_n: int = 10,
    bands: int = 4,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool = True,
) -> pd.DataFrame:
    """Win-rate and stage-time drivers together, corrected for multiple testing as one family.

    Returns
    -------
    DataFrame
        The rows of :func:`win_rate_drivers` and :func:`stage_time_drivers`,
        with ``p_adjusted`` and ``significant`` recomputed over all of them.
    """
    kw = dict(profile=profile, attributes=attributes, bands=bands, alpha=alpha)
    both = pd.concat([
        win_rate_drivers(log, min_n=min_n, **kw),
        stage_time_drivers(log, stages=stages, min_n=min_n, n_boot=n_boot, seed=seed,
                           progress=progress, **kw),
    ], ignore_index=True)
    return stats.mark_findings(both[COLUMNS], alpha=alpha)


def _nested(frame: pd.DataFrame, attributes: list[str]) -> list[str]:
    """Keep attributes in order, dropping one that a kept one determines or is determined by (rep, team)."""
    def determines(a: str, b: str) -> bool:
        return bool(frame.groupby(a)[b].nunique().max() <= 1)

    kept: list[str] = []
    for a in attributes:
        if not any(determines(a, b) or determines(b, a) for b in kept):
            kept.append(a)
    return kept


def _references(frame: pd.DataFrame, attributes: list[str]) -> dict[str, object]:
    """Each attribute's most frequent value (ties: the first in sort order), the model's baseline."""
    out = {}
    for a in attributes:
        counts = labelled(frame[a]).value_counts()
        out[a] = sorted(counts.index[counts == counts.max()], key=str)[0]
    return out


#: Values of one attribute that get their own column in the adjusted models; the rarer ones are
#: pooled as '(other)'. It keeps the models' memory linear in the deals: 420 teams of 900,000
#: deals made a dense design of 3 GB, which statsmodels then copied.
MAX_LEVELS = 30

#: When the median regressions of days in a stage stop: no coefficient moved by more than this
#: (days) in an iteration. statsmodels' 1e-6 took 178-455 iterations per stage on 35,000-102,000
#: visits of a million-event log; at 1e-3 it took 74-91 (3-5 times faster), and no coefficient
#: ended more than 0.04 days (an hour) from where the tighter tolerance put it.
P_TOL = 1e-3


def _design(frame: pd.DataFrame, references: dict[str, object], min_n: int,
            pooled: dict[str, int] | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Treatment-coded dummies against ``references``; values under ``min_n`` deals, and those beyond
    the :data:`MAX_LEVELS` most frequent, pooled as '(other)' (``pooled`` counts the latter per attribute)."""
    columns, meta = {"const": np.ones(len(frame))}, []
    for a, reference in references.items():
        v = labelled(frame[a])
        counts = v.value_counts()
        kept = counts[(counts >= min_n) & (counts.index != reference)]
        kept = kept.iloc[np.lexsort((kept.index.astype(str), -kept.to_numpy()))]
        if len(kept) > MAX_LEVELS and pooled is not None:
            pooled[a] = max(pooled.get(a, 0), len(kept) - MAX_LEVELS)
        v = v.where(v.isin(kept.index[:MAX_LEVELS]) | v.eq(reference), "(other)")
        # masks from integer codes: comparing the object values once per level is slow on many deals
        code, values = pd.factorize(v)
        position = {value: i for i, value in enumerate(values)}
        if reference not in position or len(values) < 2:
            continue
        ref_mask = code == position[reference]
        for level in sorted(set(values) - {reference}, key=str):
            mask = code == position[level]
            columns[f"{a}={level}"] = mask.astype(float)
            meta.append({"attribute": a, "group": level, "reference": reference, "mask": mask, "ref_mask": ref_mask})
    return pd.DataFrame(columns, index=frame.index), meta


def _fit_rows(result, meta: list[dict], metric: str, stage: str | None, y: pd.Series, summary) -> list[dict]:
    ci = result.conf_int()
    rows = []
    for m in meta:
        name = f"{m['attribute']}={m['group']}"
        rows.append({"metric": metric, "stage": stage, "attribute": m["attribute"], "group": m["group"],
                     "n": int(m["mask"].sum()), "rest_n": int(m["ref_mask"].sum()),
                     "value": summary(y[m["mask"]]), "rest_value": summary(y[m["ref_mask"]]),
                     "diff": float(result.params[name]), "ci_low": float(ci.loc[name, 0]),
                     "ci_high": float(ci.loc[name, 1]), "p_value": float(result.pvalues[name]),
                     "reference": m["reference"]})
    return rows


def adjusted_drivers(
    log: pd.DataFrame,
    *,
    profile: SalesProcessProfile | str | None = None,
    attributes: tuple[str, ...] | list[str] | None = None,
    stages: list[str] | None = None,
    min_n: int = 10,
    bands: int = 4,
    alpha: float = 0.05,
    progress: bool = True,
) -> pd.DataFrame:
    """Each attribute's effect with the others held fixed (one model per metric).

    One-vs-rest comparisons mix causes up: a team that sells mostly to new
    customers looks slow in every stage. Here every attribute enters one model
    together: a logistic regression of won vs lost (``diff`` = log odds ratio
    against the attribute's most frequent value) and, per stage, a median
    (quantile 0.5) regression of days in the stage (``diff`` = days against
    that value), both from statsmodels. An attribute whose values each sit
    inside one value of another (region of a team) cannot be told apart from
    it: the later one in ``attributes`` is dropped. By default every attribute
    of :data:`DEFAULT_ATTRIBUTES` but ``rep`` (which would absorb team and
    region; pass it to get adjusted rep effects). Values with fewer than
    ``min_n`` deals, and those beyond an attribute's :data:`MAX_LEVELS` most
    frequent (a note says so), are pooled as '(other)'. The baseline of each
    attribute is its most frequent value among closed deals.

    Returns
    -------
    DataFrame
        metric ('win_rate (adjusted log odds)', 'days in <stage> (adjusted)'),
        stage, attribute, group (the attribute's value), reference, n, rest_n
        (deals of the reference value), value, rest_value (raw win rate or
        median days of the group and the reference), diff, ci_low, ci_high, p_value, p_adjusted,
        significant, ratio (odds ratio for win rate). ``attrs['notes']`` says in sentences what
        could not be estimated.
    """
    import statsmodels.api as sm
    from statsmodels.regression.quantile_regression import QuantReg
    from statsmodels.tools.sm_exceptions import (ConvergenceWarning, IterationLimitWarning,
                                                 PerfectSeparationError, PerfectSeparationWarning)

    profile = get_profile(profile, log)
    cases = _with_bands(case_table(log, profile=profile), bands)
    closed = cases[cases["outcome"].isin(["won", "lost"])]
    if attributes is None:
        attributes = [a for a in _attributes(cases, None) if a != schema.REP]
    references = _references(cases, _nested(cases, _attributes(cases, attributes)))
    if not references:
        raise WorkbenchError("root causes need deal attributes that vary (lead source, segment, team...), "
                             "and this log has none; skipped.",
                             hint="map such columns of your export to get this analysis.")
    rows, notes, pooled = [], [], {}
    X, meta = _design(closed, references, min_n, pooled)
    won = closed["outcome"].eq("won").astype(float)
    if meta and len(closed) >= 2 * min_n and 0 < won.sum() < len(won):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)
                fit = sm.Logit(won, X).fit(disp=0, maxiter=200)
            rows += _fit_rows(fit, meta, "win_rate (adjusted log odds)", None, won, lambda y: float(y.mean()))
        except (np.linalg.LinAlgError, ConvergenceWarning, PerfectSeparationWarning, PerfectSeparationError):
            # an attribute that alone decides the outcome: its one-vs-rest comparison still shows it
            notes.append("The adjusted win-rate model could not be fitted (one attribute alone decides which "
                         "deals are won, or the deals are too few), so adjusted win-rate effects are left out.")
    visits = _with_bands(stage_durations(log, profile=profile), bands)
    done = visits[visits["finished"]]
    stages = list(profile.stages if stages is None else stages)
    for stage in tqdm(stages, desc="adjusted stage times", disable=not progress):
        at = done[done["stage"].eq(stage)]
        usable = _nested(at, [a for a in references if at[a].nunique() > 1])
        if len(at) < 2 * min_n or not usable:
            continue
        X, meta = _design(at, {a: references[a] for a in usable}, min_n, pooled)
        if not meta:
            continue
        days = at["duration_days"]
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            # identical durations leave no spread to estimate: the interval is NaN, not a finding
            warnings.simplefilter("ignore", IterationLimitWarning)
            fit = QuantReg(days, X).fit(q=0.5, p_tol=P_TOL)
        rows += _fit_rows(fit, meta, f"days in {stage} (adjusted)", stage, days, lambda y: float(y.median()))
    for a, n in pooled.items():
        notes.append(f"{a}: only its {MAX_LEVELS} most common values get an adjusted effect; the {n:,} rarer "
                     f"ones are pooled as '(other)'.")
    out = stats.mark_findings(pd.DataFrame(rows, columns=[*COLUMNS, "reference"]), alpha=alpha)
    out["ratio"] = np.where(out["metric"].str.startswith("win_rate"), np.exp(out["diff"]), np.nan)
    out.attrs["notes"] = notes
    return out


def findings(table: pd.DataFrame) -> pd.DataFrame:
    """The significant rows of a root-cause table, largest effect first within each metric (with the
    table's ``attrs['notes']``: sentences on what could not be estimated)."""
    out = table[table["significant"].fillna(False).astype(bool)]
    out = out.assign(_size=out["diff"].abs()).sort_values(
        ["metric", "_size"], ascending=[True, False]).drop(columns="_size").reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


__all__ = ["DEFAULT_ATTRIBUTES", "amount_bands", "win_rate_drivers", "stage_time_drivers",
           "root_causes", "adjusted_drivers", "findings"]
