"""Significance tests shared by every comparison the workbench reports.

A difference is only called a finding when its test says so after a
multiple-testing correction (as studies of sales practices keep a practice only
where its influence is statistically significant). Each function returns a pandas
Series so that many comparisons stack into one DataFrame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

#: Bootstrap resamples of every interval, one default for every analysis.
N_BOOT = 1000

def rate_difference(
    success_a: int, total_a: int, success_b: int, total_b: int, *, alpha: float = 0.05
) -> pd.Series:
    """Difference of two proportions ``a - b`` with a Newcombe interval and a p-value.

    The p-value is Fisher's exact test when a cell is small (any expected count
    under 5), the score test otherwise.

    Returns
    -------
    Series with rate_a, rate_b, n_a, n_b, diff, ci_low, ci_high, p_value.
    """
    out = {"rate_a": np.nan, "rate_b": np.nan, "n_a": int(total_a), "n_b": int(total_b),
           "diff": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if total_a == 0 or total_b == 0:
        return pd.Series(out)
    ra, rb = success_a / total_a, success_b / total_b
    out.update(rate_a=ra, rate_b=rb, diff=ra - rb)
    low, high = confint_proportions_2indep(
        success_a, total_a, success_b, total_b, method="newcomb", alpha=alpha
    )
    out.update(ci_low=float(low), ci_high=float(high))
    table = np.array([[success_a, total_a - success_a], [success_b, total_b - success_b]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if (expected < 5).any():
        out["p_value"] = float(sps.fisher_exact(table).pvalue)
    elif ra == rb:
        out["p_value"] = 1.0
    else:
        out["p_value"] = float(test_proportions_2indep(
            success_a, total_a, success_b, total_b, method="score").pvalue)
    return pd.Series(out)


#: Above this many observations the bootstrap is replaced by its large-sample equivalent.
BOOTSTRAP_MAX_N = 2000


def _median_se(x: np.ndarray) -> float:
    """Distribution-free standard error of a median from its binomial order-statistic interval."""
    return _median_se_of(np.sort(x).__getitem__, x.size)


def _median_se_of(order_statistic, n: int) -> float:
    """:func:`_median_se` of a sample of ``n`` given its ``order_statistic(i)`` (0-based)."""
    k = sps.norm.ppf(0.975) * np.sqrt(n) / 2
    lo = order_statistic(max(int(np.floor(n / 2 - k)), 0))
    hi = order_statistic(min(int(np.ceil(n / 2 + k)), n - 1))
    return float(hi - lo) / (2 * sps.norm.ppf(0.975))


def median_difference(
    a: pd.Series | np.ndarray,
    b: pd.Series | np.ndarray,
    *,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.Series:
    """Difference of medians ``a - b`` with a bootstrap interval and a Mann-Whitney p-value.

    Durations are skewed, so the rank test is used rather than a t-test. The
    interval is a seeded percentile bootstrap of the difference of medians for
    up to ``BOOTSTRAP_MAX_N`` observations, and above that the normal interval
    from each median's order-statistic standard error, which the bootstrap
    converges to and which costs a sort instead of ``n_boot`` resamples.

    Returns
    -------
    Series with median_a, median_b, n_a, n_b, diff, ci_low, ci_high, p_value.
    """
    a = np.asarray(pd.Series(a).dropna(), dtype=float)
    b = np.asarray(pd.Series(b).dropna(), dtype=float)
    out = {"median_a": np.nan, "median_b": np.nan, "n_a": a.size, "n_b": b.size,
           "diff": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if a.size == 0 or b.size == 0:
        return pd.Series(out)
    out.update(median_a=float(np.median(a)), median_b=float(np.median(b)))
    out["diff"] = out["median_a"] - out["median_b"]
    if a.size + b.size <= BOOTSTRAP_MAX_N:
        rng = np.random.default_rng(seed)
        boot = (np.median(rng.choice(a, (n_boot, a.size)), axis=1)
                - np.median(rng.choice(b, (n_boot, b.size)), axis=1))
        out["ci_low"], out["ci_high"] = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    else:
        half = sps.norm.ppf(1 - alpha / 2) * np.hypot(_median_se(a), _median_se(b))
        out["ci_low"], out["ci_high"] = out["diff"] - half, out["diff"] + half
    if a.size > 1 or b.size > 1:
        out["p_value"] = float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return pd.Series(out)


class PooledSample:
    """A sample sorted and ranked once, to compare many parts of it each with the rest.

    ``PooledSample(values).median_difference(part)`` equals
    ``median_difference(values[part], values[~part])`` but, on large samples, costs a
    search in the sorted sample instead of a sort and a ranking of the whole: comparing
    each of 400 teams with the rest of a stage's million visits took 7 minutes the
    other way. Small samples, and parts or rests of at most 8 values (where the
    Mann-Whitney test may be exact), go to :func:`median_difference` itself.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=float)
        self.sorted_ = np.sort(self.values)
        self.ranks_ = sps.rankdata(self.values)  # average ranks, as the Mann-Whitney test uses
        ties = np.unique(self.sorted_, return_counts=True)[1].astype(float)
        self.tie_term_ = float(np.sum(ties**3 - ties))

    def _rest_order_statistic(self, part_sorted: np.ndarray, i: int) -> float:
        """The ``i``-th smallest (0-based) value of the sample without ``part_sorted``."""
        s, lo, hi = self.sorted_, 0, self.sorted_.size - 1
        while lo < hi:  # the first value with more than i of the rest at or below it
            mid = (lo + hi) // 2
            at_or_below = np.searchsorted(s, s[mid], "right") - np.searchsorted(part_sorted, s[mid], "right")
            lo, hi = (lo, mid) if at_or_below > i else (mid + 1, hi)
        return float(s[lo])

    def median_difference(self, part: np.ndarray, *, alpha: float = 0.05, n_boot: int = N_BOOT,
                          seed: int = 0) -> pd.Series:
        """:func:`median_difference` of the values where ``part`` is true against the others."""
        a = self.values[part]
        n, n_a = self.values.size, a.size
        n_b = n - n_a
        if n <= BOOTSTRAP_MAX_N or min(n_a, n_b) <= 8 or np.isnan(self.sorted_[-1]):
            return median_difference(a, self.values[~part], alpha=alpha, n_boot=n_boot, seed=seed)
        a_sorted = np.sort(a)
        rest = lambda i: self._rest_order_statistic(a_sorted, i)  # noqa: E731
        middle = [rest(n_b // 2)] if n_b % 2 else [rest(n_b // 2 - 1), rest(n_b // 2)]
        median_a, median_b = float(np.median(a)), float(np.mean(np.array(middle)))
        diff = median_a - median_b
        half = sps.norm.ppf(1 - alpha / 2) * np.hypot(_median_se_of(a_sorted.__getitem__, n_a),
                                                       _median_se_of(rest, n_b))
        # the Mann-Whitney test's normal approximation with tie and continuity corrections, as scipy
        u1 = np.sum(self.ranks_[part]) - n_a * (n_a + 1) / 2
        u = max(u1, n_a * n_b - u1)
        s = np.sqrt(n_a * n_b / 12 * ((n + 1) - self.tie_term_ / (n * (n - 1))))
        p_value = float(np.clip(2 * special.ndtr(-(u - n_a * n_b / 2 - 0.5) / s), 0.0, 1.0))
        return pd.Series({"median_a": median_a, "median_b": median_b, "n_a": n_a, "n_b": n_b, "diff": diff,
                          "ci_low": diff - half, "ci_high": diff + half, "p_value": p_value})


#: The columns every group-against-the-rest comparison returns, after its own key columns.
GROUP_VS_REST_COLUMNS = ["group", "n", "rest_n", "value", "rest_value", "diff", "ci_low", "ci_high", "p_value"]


def group_vs_rest(
    values: pd.Series | np.ndarray,
    groups: pd.Series | np.ndarray,
    *,
    kind: str = "median",
    min_n: int = 5,
    alpha: float = 0.05,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> pd.DataFrame:
    """Each group's values against all the others', the one way every analysis compares a group
    with the rest of the organisation.

    ``kind='median'`` compares medians (:func:`median_difference`, the sample
    sorted and ranked once for all groups: :class:`PooledSample`);
    ``kind='rate'`` compares the share of true values (:func:`rate_difference`).
    A group is compared only when it and the rest each have ``min_n`` values;
    missing values are left out; missing groups are not a group. The random
    stream of the intervals is seeded once, groups taken in sorted order.

    Returns
    -------
    DataFrame
        :data:`GROUP_VS_REST_COLUMNS`: group, n, rest_n, value (the group's
        median or share), rest_value, diff, ci_low, ci_high, p_value. Correct the
        p-values of a whole family of comparisons with :func:`mark_findings`.

    Examples
    --------
    >>> t = group_vs_rest([1, 0, 1, 1, 0, 0], ["a", "a", "a", "b", "b", "b"], kind="rate", min_n=3)
    >>> t[["group", "value", "rest_value", "diff"]].round(2).to_dict("records")[0]
    {'group': 'a', 'value': 0.67, 'rest_value': 0.33, 'diff': 0.33}
    """
    if kind not in ("median", "rate"):
        raise ValueError(f"kind must be 'median' or 'rate', not {kind!r}")
    frame = pd.DataFrame({"v": np.asarray(values, dtype=float), "g": np.asarray(groups, dtype=object)})
    frame = frame[frame["v"].notna() & pd.notna(frame["g"])]
    code, names = pd.factorize(frame["g"])
    v = frame["v"].to_numpy()
    pooled = PooledSample(v) if kind == "median" and len(v) else None
    rng = np.random.default_rng(seed)
    rows = []
    for i in sorted(range(len(names)), key=lambda i: str(names[i])):
        mine = code == i
        if mine.sum() < min_n or (~mine).sum() < min_n:
            continue
        if kind == "median":
            r = pooled.median_difference(mine, alpha=alpha, n_boot=n_boot, seed=int(rng.integers(2**31)))
            value, rest = r["median_a"], r["median_b"]
        else:
            r = rate_difference(int(v[mine].sum()), int(mine.sum()), int(v[~mine].sum()), int((~mine).sum()),
                                alpha=alpha)
            value, rest = r["rate_a"], r["rate_b"]
        rows.append({"group": names[i], "n": int(r["n_a"]), "rest_n": int(r["n_b"]), "value": value,
                     "rest_value": rest, "diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "p_value": r["p_value"]})
    return pd.DataFrame(rows, columns=GROUP_VS_REST_COLUMNS)


def adjust_pvalues(p_values: pd.Series, *, method: str = "fdr_bh") -> pd.Series:
    """Multiple-testing corrected p-values (Benjamini-Hochberg by default); NaN stays NaN."""
    p = pd.Series(p_values, dtype=float)
    out = pd.Series(np.nan, index=p.index, name="p_adjusted")
    ok = p.notna()
    if ok.any():
        out[ok] = multipletests(p[ok].to_numpy(), method=method)[1]
    return out


def mark_findings(table: pd.DataFrame, *, alpha: float = 0.05, method: str = "fdr_bh") -> pd.DataFrame:
    """Add ``p_adjusted`` and ``significant`` columns to a table of comparisons.

    ``significant`` is True only when the corrected p-value is below ``alpha``
    and the interval excludes zero, so noise is not reported as a finding.
    """
    out = table.copy()
    out["p_adjusted"] = adjust_pvalues(out["p_value"], method=method)
    excludes_zero = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    out["significant"] = (out["p_adjusted"] < alpha) & excludes_zero
    return out
