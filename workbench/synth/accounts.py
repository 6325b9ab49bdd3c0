"""The demo's customers: which account each deal is with, so that churn and cross-sell are planted.

Drawn after the deals (their outcome and close are known), from a stream of its
own, so every other draw of the demo stays as it was.

* A deal of a *new* customer is with an account that has never bought: one of
  the prospects that lost a deal before (a third of the time) or a new one.
* A year's customers (accounts with a won deal closing in that calendar year)
  each decide once whether they *stay* into the next year: they leave with the
  planted yearly churn of their segment (:data:`~.config.CHURN_PER_YEAR`). The
  next year's won deals of existing customers go first to the staying accounts
  that have not bought yet that year, then to those that have (repeat
  purchases) or, one time in five, to a customer that left earlier (it returns).
  So, where the deals suffice, the share of a year's customers that buy nothing
  the next year is the planted churn.
* The planted cross-sell path (:data:`~.config.CROSS_SELL_PATH`): an existing
  customer's deal (won or lost, so that no product wins more often) with an
  account whose last purchase was of the path's first family, and that does not
  own its second, is of the second family's first product with probability
  :data:`~.config.CROSS_SELL_SHARE` (else the product drawn with the deal).
* Lost and open deals of existing customers are with an account that had bought
  before the deal was created.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import (CHURN_PER_YEAR, CLOSE_SLOT, CROSS_SELL_PATH, CROSS_SELL_SHARE, PRODUCT_FAMILY, PRODUCT_TIER,
                     PRODUCTS, SEGMENTS, Config, months_since_epoch, seeded_rng)
from .organisation import Organisation, account_names

#: Share of new customers' deals that go to a prospect that lost a deal before.
PROSPECT_AGAIN = 1 / 3
#: Share of the surplus deals of existing customers that go to a customer that had left.
RETURNING = 0.2


def assign_accounts(cfg: Config, d: dict) -> None:
    """Set ``d['account']`` (index into ``d['account_names']``) and ``d['customers']`` (what was planted)."""
    rng = seeded_rng(cfg.seed, 7)
    n = len(d["created"])
    close = d["t"][:, CLOSE_SLOT]
    won = d["won"] & (close <= cfg.span_days)
    year = months_since_epoch(cfg, close) // 12
    product = d["product"].copy()
    source, target = CROSS_SELL_PATH
    target_product = PRODUCT_FAMILY.index(target)
    account = np.full(n, -1, dtype=np.int64)
    families: list[set] = []                              # per account: the families it bought
    last_family: list[str | None] = []                    # per account: the family of its latest purchase
    prospects: list[list[int]] = [[] for _ in SEGMENTS]   # per segment: accounts that never bought
    customers: list[list[int]] = [[] for _ in SEGMENTS]   # per segment: accounts that bought
    bought: dict[tuple[int, int], list[int]] = {}         # (segment, year) -> accounts that bought, once each
    owed: dict[tuple[int, int], list[int]] = {}           # (segment, year) -> staying accounts yet to buy
    left: list[dict[int, list[int]]] = [{} for _ in SEGMENTS]  # per segment: last year bought -> leavers
    seen: dict[tuple[int, int], set[int]] = {}

    def draw(items: list[int], remove: bool = False) -> int:
        i = int(rng.integers(len(items)))
        if not remove:
            return items[i]
        items[i], items[-1] = items[-1], items[i]
        return items.pop()

    def new_account() -> int:
        families.append(set())
        last_family.append(None)
        return len(families) - 1

    def cross_sell(k: int, a: int) -> None:
        """The planted path: a customer whose last purchase was of its first family turns to its second."""
        if last_family[a] == source and target not in families[a] and rng.random() < CROSS_SELL_SHARE:
            product[k] = target_product

    def buy(a: int, s: int, y: int, fam: str) -> None:
        if not families[a]:
            customers[s].append(a)
        families[a].add(fam)
        last_family[a] = fam
        if a not in seen.setdefault((s, y), set()):
            seen[(s, y)].add(a)
            bought.setdefault((s, y), []).append(a)
            if rng.random() >= CHURN_PER_YEAR[s]:
                owed.setdefault((s, y + 1), []).append(a)
            else:
                left[s].setdefault(y, []).append(a)

    # One pass in time order: a won deal at its close, the others when they were created.
    for k in np.argsort(np.where(won, close, d["created"]), kind="stable"):
        s, y = int(d["segment"][k]), int(year[k])
        if not won[k]:  # an existing customer's deal is with an account that has bought, else a prospect's
            if d["existing"][k] and customers[s]:
                account[k] = draw(customers[s])
                cross_sell(k, int(account[k]))
            elif prospects[s] and rng.random() < PROSPECT_AGAIN:
                account[k] = draw(prospects[s])
            else:
                account[k] = new_account()
                prospects[s].append(int(account[k]))
            continue
        if not d["existing"][k]:
            a = draw(prospects[s], remove=True) if prospects[s] and rng.random() < PROSPECT_AGAIN else new_account()
        elif owed.get((s, y)):
            a = draw(owed[(s, y)], remove=True)
        elif (years := [v for v in left[s] if v < y - 1 and left[s][v]]) and rng.random() < RETURNING:
            a = draw(left[s][years[int(rng.integers(len(years)))]], remove=True)  # left a year ago or more
        elif bought.get((s, y)):
            a = draw(bought[(s, y)])  # a repeat purchase within the year
        elif customers[s]:
            a = draw(customers[s])
        else:
            a = new_account()
        if d["existing"][k]:
            cross_sell(k, a)
        account[k] = a
        buy(a, s, y, PRODUCT_FAMILY[product[k]])
    d["account"], d["product"] = account, product
    d["account_names"] = account_names(len(families))
    d["customers"] = {"churn_per_year": dict(zip(SEGMENTS, map(float, CHURN_PER_YEAR))),
                      "cross_sell_path": list(CROSS_SELL_PATH), "cross_sell_share": CROSS_SELL_SHARE,
                      "accounts": len(families)}


def products_table() -> pd.DataFrame:
    """The demo's product master table: product, family, tier."""
    return pd.DataFrame({"product": PRODUCTS, "family": PRODUCT_FAMILY, "tier": PRODUCT_TIER})


def costs_table(cfg: Config, org: Organisation) -> pd.DataFrame:
    """Each team's cost of selling per quarter of the log (team, quarter, cost): about 40,000 a rep."""
    rng = seeded_rng(cfg.seed, 8)
    quarters = pd.period_range(cfg.start.tz_localize(None), cfg.as_of.tz_localize(None), freq="Q")
    reps = np.bincount(org.team, minlength=len(org.team_name))
    rows = [{"team": str(name), "quarter": f"{q.year}Q{q.quarter}",
             "cost": float(np.round(40_000 * max(k, 1) * rng.lognormal(0.0, 0.1), -2))}
            for q in quarters for name, k in zip(org.team_name, reps)]
    return pd.DataFrame(rows)
