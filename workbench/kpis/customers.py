"""Customers: retention and churn, upsell and cross-sell, acquisition cost, concentration of revenue.

Every number here needs the customer behind each deal: the ``account`` column.
Deals without an account are left out (each function says how many in its
result's ``attrs['deals_without_account']``). Revenue is bookings
(:func:`workbench.snapshot.bookings`): the amount of each deal won, at its close.

Definitions
-----------
bought
    An account *bought* in a period when at least one of its deals closed won in
    that period.
customers, new, retained, returning, churned
    Of period *p*: *customers* bought in *p*; *new* bought in *p* for the first
    time in the data; *retained* bought in *p* and in the period before;
    *returning* bought in *p*, not in the period before, but earlier; *churned*
    bought in the period before and not in *p*.
logo retention, churn rate
    retained / customers of the period before; churned / customers of the
    period before (they add up to one).
net revenue retention
    Revenue in *p* from the customers of the period before, over their revenue
    in the period before (above 1: they spent more than they did).
new business, upsell, cross-sell, repeat
    Each won deal, in the order of the close: *new business* when it is the
    account's first; *cross-sell* when its product family is new to the account
    (whatever its amount); *upsell* when the account already had the family and
    the deal is of a higher tier than any it had in that family, or larger than
    any of its earlier deals of that family; *repeat* otherwise. Without
    products every deal is of one family; without tiers only amounts count.
acquisition cost
    Cost of a territory in a quarter (a costs table) over the new customers it
    won in that quarter (the team, region or rep of each customer's first won
    deal); beside it the new customers' first-year revenue (their deals won
    within 365 days of the first).
concentration
    Of the revenue of a span: the share of the top 20% of accounts (or reps), the
    smallest share of them that makes 80% of it, the Gini coefficient, and the
    revenue left if the largest account left.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..calendar import check_quarter, quarter_of
from ..findings import normalised
from ..groups import BY, as_list
from ..profile import SalesProcessProfile, get_profile
from ..snapshot import bookings
from ..io import read_costs, read_products
from ..validation import as_text
from .attainment import gini, pareto_share
from .outcomes import period_of

ACCOUNT = "account"
KINDS = ("new_business", "upsell", "cross_sell", "repeat")


def has_accounts(log: pd.DataFrame) -> bool:
    """Whether the log names the customer of its deals (an ``account`` column with a value)."""
    return ACCOUNT in log.columns and log[ACCOUNT].notna().any()


def won_deals(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None, freq: str = "Q",
              with_account: bool = True) -> pd.DataFrame:
    """Deals won: case_id, account, closed_at, period, amount and the carried attributes, in close order.

    With ``with_account`` (the customer KPIs) only the deals with an account;
    ``attrs['deals_without_account']`` counts the won deals left out.
    """
    get_profile(profile, log).require_outcomes("Customer KPIs" if with_account else "Revenue")
    won = bookings(log, profile=profile)
    left_out = 0
    if with_account:
        schema.require(log, [ACCOUNT], "customer KPIs")
        account = as_text(won[ACCOUNT].astype(object).where(won[ACCOUNT].notna(), None))
        won = won.assign(account=account)[account.notna().to_numpy()].copy()
        left_out = int(account.isna().sum())
    won["period"] = period_of(won["closed_at"], freq).to_numpy()
    out = won.sort_values(["closed_at", schema.CASE], kind="stable", ignore_index=True)
    out.attrs["deals_without_account"] = left_out
    return out


def _periods(first: str, last: str, freq: str) -> list[str]:
    span = pd.period_range(pd.Period(first, freq=freq[0]), pd.Period(last, freq=freq[0]), freq=freq[0])
    return [str(p) if freq[0].upper() != "Q" else f"{p.year}Q{p.quarter}" for p in span]


def retention(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None, by: BY = None,
              freq: str = "Q") -> pd.DataFrame:
    """Customers, churn, logo retention and net revenue retention per period (see the module's definitions).

    Parameters
    ----------
    by : str or list of str, optional
        Split by team, region, segment...: an account's purchases count in the
        group of each deal (an account of two teams is a customer of both).
    freq : {'Q', 'Y'}
        Quarters or years.

    Returns
    -------
    DataFrame
        [by], period, customers, new, retained, returning, churned,
        customers_before, logo_retention, churn_rate, revenue, revenue_before,
        revenue_retained, net_revenue_retention. The first period of each group
        has no period before: its rates are NaN.

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": ["a", "a", "b", "b"], "account": ["X", "X", "X", "X"],
    ...     "activity": ["Lead Created", "Closed Won"] * 2, "amount": [100.0, 100.0, 150.0, 150.0],
    ...     "timestamp": pd.to_datetime(["2026-01-02", "2026-02-01", "2026-04-02", "2026-05-01"], utc=True)})
    >>> retention(log)[["period", "customers", "retained", "net_revenue_retention"]].to_dict("records")
    [{'period': '2026Q1', 'customers': 1, 'retained': 0, 'net_revenue_retention': nan}, \
{'period': '2026Q2', 'customers': 1, 'retained': 1, 'net_revenue_retention': 1.5}]
    """
    keys = as_list(by)
    won = won_deals(log, profile=profile, freq=freq)
    schema.require(won, keys, "customer retention")
    periods = _periods(won["period"].min(), won["period"].max(), freq) if len(won) else []
    rows = []
    groups = won.groupby(keys, sort=True, dropna=False) if keys else [((), won)]
    for key, g in groups:
        spent = g.groupby(["account", "period"])[schema.AMOUNT].sum().unstack("period")
        spent = spent.reindex(columns=periods)
        bought = spent.notna().to_numpy()
        revenue = spent.fillna(0.0).to_numpy()
        ever = np.logical_or.accumulate(bought, axis=1) if bought.size else bought
        for j, period in enumerate(periods):
            now = bought[:, j]
            before = bought[:, j - 1] if j else np.zeros_like(now)
            earlier = ever[:, j - 1] if j else np.zeros_like(now)
            n_before = int(before.sum())
            row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
            row.update(period=period, customers=int(now.sum()), new=int((now & ~earlier).sum()),
                       retained=int((now & before).sum()), returning=int((now & ~before & earlier).sum()),
                       churned=int((before & ~now).sum()), customers_before=n_before,
                       revenue=float(revenue[:, j].sum()),
                       revenue_before=float(revenue[before, j - 1].sum()) if j else np.nan,
                       revenue_retained=float(revenue[before, j].sum()) if j else np.nan)
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*keys, "period", "customers", "new", "retained", "returning", "churned",
                                      "customers_before", "revenue", "revenue_before", "revenue_retained"])
    with np.errstate(divide="ignore", invalid="ignore"):
        before = out["customers_before"].where(out["customers_before"] > 0)
        out["logo_retention"] = out["retained"] / before
        out["churn_rate"] = out["churned"] / before
        out["net_revenue_retention"] = out["revenue_retained"] / out["revenue_before"].where(
            out["revenue_before"] > 0)
    out.attrs["deals_without_account"] = won.attrs["deals_without_account"]
    return out


def deal_kinds(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None,
               products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each won deal with an account as new business, upsell, cross-sell or repeat (see the definitions).

    Parameters
    ----------
    products : DataFrame or path, optional
        Product master table (product, family, tier; see :func:`workbench.io.read_products`),
        matched whatever the case, spaces and punctuation of a product name.
        Without it, a log's own ``family`` / ``tier`` columns are used, else
        each product is its own family.

    Returns
    -------
    DataFrame
        case_id, account, closed_at, period, amount, product, family, tier,
        previous_family (of the account's latest earlier deal), kind, and the
        carried attributes (rep, team...).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": list("aabbcc"), "account": ["X"] * 6, "product": list("ppppqq"),
    ...     "activity": ["Lead Created", "Closed Won"] * 3, "amount": [10.0, 10.0, 20.0, 20.0, 5.0, 5.0],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-05", "2026-02-01", "2026-02-05",
    ...                                  "2026-03-01", "2026-03-05"], utc=True)})
    >>> deal_kinds(log)["kind"].tolist()
    ['new_business', 'upsell', 'cross_sell']
    """
    won = won_deals(log, profile=profile)
    table = read_products(products) if products is not None else None
    if "product" in won.columns:
        product = as_text(won["product"].astype(object).where(won["product"].notna(), None))
    else:
        product = pd.Series("", index=won.index, dtype="str")
    won["product"] = product.fillna("")
    if table is not None:
        # matched as the audit compares spellings: 'GTXPro' is the master table's 'GTX Pro'
        master = table.assign(key=normalised(table["product"])).drop_duplicates("key").set_index("key")
        key = normalised(won["product"])
        won["family"] = key.map(master["family"]).fillna(won["product"])
        won["tier"] = key.map(master["tier"]).astype(float)
    else:
        won["family"] = won["family"].astype("str") if "family" in won.columns else won["product"]
        won["tier"] = pd.to_numeric(won["tier"], errors="coerce") if "tier" in won.columns else np.nan
    kinds, previous = [], []
    seen: dict[str, dict[str, tuple[float, float]]] = {}  # account -> family -> (highest tier, largest amount)
    last: dict[str, str] = {}
    for account, family, tier, amount in zip(won["account"], won["family"], won["tier"], won[schema.AMOUNT]):
        had = seen.get(account)
        previous.append(last.get(account))
        if had is None:
            kind = "new_business"
            had = seen[account] = {}
        elif family not in had:
            kind = "cross_sell"
        else:
            top_tier, top_amount = had[family]
            higher = not np.isnan(tier) and not np.isnan(top_tier) and tier > top_tier
            kind = "upsell" if higher or amount > top_amount else "repeat"
        top_tier, top_amount = had.get(family, (np.nan, -np.inf))
        had[family] = (np.fmax(top_tier, tier), max(top_amount, amount))
        last[account] = family
        kinds.append(kind)
    won["previous_family"] = previous
    won["kind"] = pd.Categorical(kinds, categories=KINDS)
    first = [schema.CASE, "account", "closed_at", "period", schema.AMOUNT, "product", "family", "tier",
             "previous_family", "kind"]
    return won[first + [c for c in won.columns if c not in first]]


def expansion(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None, by: BY = "rep",
              products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Upsell and cross-sell rates and values per rep (or team...): deals with existing customers, by kind.

    Returns
    -------
    DataFrame
        [by], deals_won, new_business, existing_customer_deals, upsell, cross_sell,
        repeat, upsell_rate and cross_sell_rate (of the deals with existing
        customers), upsell_value, cross_sell_value.
    """
    keys = as_list(by)
    kinds = deal_kinds(log, profile=profile, products=products)
    schema.require(kinds, keys, "upsell and cross-sell")
    counts = pd.crosstab([kinds[k] for k in keys] if keys else np.zeros(len(kinds)), kinds["kind"],
                         dropna=False).reindex(columns=list(KINDS), fill_value=0)
    values = kinds.pivot_table(index=keys or None, columns="kind", values=schema.AMOUNT, aggfunc="sum",
                               observed=False) if keys else None
    out = counts.rename_axis(index=keys or None, columns=None)
    out.insert(0, "deals_won", out.sum(axis=1))
    out["existing_customer_deals"] = out["deals_won"] - out["new_business"]
    existing = out["existing_customer_deals"].where(out["existing_customer_deals"] > 0)
    out["upsell_rate"] = out["upsell"] / existing
    out["cross_sell_rate"] = out["cross_sell"] / existing
    for kind in ("upsell", "cross_sell"):
        if values is not None and kind in values.columns:
            out[f"{kind}_value"] = values[kind].reindex(out.index).fillna(0.0)
        else:
            out[f"{kind}_value"] = float(kinds.loc[kinds["kind"] == kind, schema.AMOUNT].sum())
    return out.reset_index(drop=not keys)


def cross_sell_paths(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None,
                     products: pd.DataFrame | None = None, top: int = 10) -> pd.DataFrame:
    """Which product family follows which: cross-sell deals by the family the account bought last before.

    Returns
    -------
    DataFrame
        from_family, to_family, deals, value; most deals first (ties by name).
    """
    kinds = deal_kinds(log, profile=profile, products=products)
    cross = kinds[kinds["kind"] == "cross_sell"]
    out = (cross.groupby(["previous_family", "family"])[schema.AMOUNT].agg(deals="size", value="sum")
           .reset_index().rename(columns={"previous_family": "from_family", "family": "to_family"}))
    return out.sort_values(["deals", "from_family", "to_family"], ascending=[False, True, True],
                           ignore_index=True).head(top)


def acquisition_cost(log: pd.DataFrame, *, costs: pd.DataFrame,
                     profile: SalesProcessProfile | str | None = None) -> pd.DataFrame:
    """Customer acquisition cost per territory and quarter, against the new customers' first-year revenue.

    Parameters
    ----------
    costs : DataFrame or path
        rep, team or region; quarter; cost (:func:`workbench.io.read_costs`).
        Its territory column says the level.

    Returns
    -------
    DataFrame
        <level>, quarter, cost (NaN where the table gives none), new_customers,
        acquisition_cost (cost per new customer), first_year_revenue,
        revenue_per_cost. Every territory and quarter with a cost or a new customer.
    """
    costs = read_costs(costs)
    level = costs.columns[0]
    won = won_deals(log, profile=profile)
    schema.require(won, [level], "acquisition cost")
    first = won.drop_duplicates("account")[["account", "closed_at", level]]
    first = first.assign(quarter=quarter_of(first["closed_at"]).to_numpy())
    later = won.merge(first[["account", "closed_at"]].rename(columns={"closed_at": "first"}), on="account")
    year = later[later["closed_at"] < later["first"] + pd.Timedelta(days=365)]
    first["first_year_revenue"] = first["account"].map(year.groupby("account")[schema.AMOUNT].sum()).to_numpy()
    new = first.groupby([level, "quarter"]).agg(new_customers=("account", "size"),
                                                first_year_revenue=("first_year_revenue", "sum"))
    out = costs.set_index([level, "quarter"]).join(new, how="outer").reset_index()
    out["new_customers"] = out["new_customers"].fillna(0).astype(int)
    out["first_year_revenue"] = out["first_year_revenue"].fillna(0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["acquisition_cost"] = out["cost"] / out["new_customers"].where(out["new_customers"] > 0)
        out["revenue_per_cost"] = out["first_year_revenue"] / out["cost"].where(out["cost"] > 0)
    out.attrs["deals_without_account"] = won.attrs["deals_without_account"]
    return out[[level, "quarter", "cost", "new_customers", "acquisition_cost", "first_year_revenue",
                "revenue_per_cost"]].sort_values([level, "quarter"], ignore_index=True)


def revenue_concentration(log: pd.DataFrame, *, by: str = "account",
                          profile: SalesProcessProfile | str | None = None,
                          quarter: str | None = None, top_share: float = 0.2) -> dict[str, Any]:
    """How much of the revenue comes from few accounts (the 80/20 check), or few reps, and the dependence
    on the largest.

    Parameters
    ----------
    by : str
        'account' (the customers), 'rep', or any column of the won deals.
    quarter : str, optional
        Revenue of the four quarters up to and including this one; default all.

    Returns
    -------
    dict
        by, holders (accounts or reps with revenue), revenue, top_share (of revenue
        from the top ``top_share`` of them), pareto_share (smallest share of them
        making 80%), gini, largest, largest_share, revenue_without_largest,
        deals_without_account (won deals left out: by account only).

    Examples
    --------
    >>> log = pd.DataFrame({"case_id": list("aabbcc"), "account": list("XXYYZZ"),
    ...     "activity": ["Lead Created", "Closed Won"] * 3, "amount": [80.0, 80.0, 10.0, 10.0, 10.0, 10.0],
    ...     "timestamp": pd.to_datetime(["2026-01-01", "2026-01-05"] * 3, utc=True)})
    >>> c = revenue_concentration(log)
    >>> c["largest"], c["largest_share"], c["revenue_without_largest"]
    ('X', 0.8, 20.0)
    """
    won = won_deals(log, profile=profile, with_account=by == ACCOUNT)
    schema.require(won, [by], "revenue concentration")
    if quarter is not None:
        last_four = sorted(p for p in won["period"].unique() if p <= check_quarter(quarter))[-4:]
        won = won[won["period"].isin(last_four)]
    spent = won.groupby(by)[schema.AMOUNT].sum().sort_values(ascending=False)
    total = float(spent.sum())
    n_top = max(1, int(np.ceil(top_share * len(spent)))) if len(spent) else 0
    return {
        "by": by, "holders": int(len(spent)), "revenue": total,
        "top_share": float(spent.head(n_top).sum() / total) if total > 0 else np.nan,
        "pareto_share": pareto_share(spent.to_numpy()), "gini": gini(spent.to_numpy()),
        "largest": spent.index[0] if len(spent) else None,
        "largest_share": float(spent.iloc[0] / total) if total > 0 else np.nan,
        "revenue_without_largest": total - float(spent.iloc[0]) if len(spent) else 0.0,
        "deals_without_account": won.attrs["deals_without_account"],
    }


def concentration_table(log: pd.DataFrame, *, profile: SalesProcessProfile | str | None = None,
                        quarter: str | None = None) -> pd.DataFrame:
    """:func:`revenue_concentration` across customers and across reps, one row each (those the log has).

    Returns
    -------
    DataFrame
        by ('account', 'rep'), holders, revenue, top_share, pareto_share, gini,
        largest, largest_share, revenue_without_largest, deals_without_account.
    """
    return pd.DataFrame([revenue_concentration(log, by=by, profile=profile, quarter=quarter)
                         for by in (ACCOUNT, schema.REP) if by in log.columns])
