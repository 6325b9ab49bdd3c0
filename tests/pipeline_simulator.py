"""A second pipeline simulator, written without the workbench's generator and unlike it.

The demo generator (``workbench.synth``) draws each deal's whole journey at once: a path through
the B2B stages, a cycle length from a survey table, then the events. This one steps through the
calendar day by day and lets every open deal move under daily hazards, the way a CRM fills up:

- Salesforce's opportunity stages, written as an ``OpportunityHistory``-like stage history (one row
  per change of stage, amount, close date or owner), so it goes through the stage-history reader;
- three segments with their own deal sizes, stage speeds and loss rates;
- an end-of-quarter rush: in the last two weeks of a quarter late-stage deals close (and are pulled
  in) several times faster;
- amounts revised before the close (scoping up early, discounts in negotiation);
- expected close dates set at creation and pushed when they pass;
- reps who leave (their deals handed to a teammate) and new hires who ramp up;
- quotas set top-down from each rep's expected capacity with a stretch, not from history.

Everything random comes from one seed. :func:`simulate` returns the stage history, the reps and
quotas tables, and the ground truth computed from the simulator's own deal table (no workbench
code): every deal's outcome, close time, final amount and owner at the close, and the bookings per
rep and quarter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
          "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review"]
WON, LOST = "Closed Won", "Closed Lost"
LAST = len(STAGES) - 1

#: Per segment: share of leads, median size, size spread (log), days per stage, daily loss hazard
#: at the first stage (falls with the stage), win odds at negotiation, typical cycle (days).
SEGMENTS = {
    "SMB": dict(share=0.55, size=9_000, spread=0.45, days=4.0, loss=0.022, close_odds=1.6, cycle=35),
    "Mid-Market": dict(share=0.33, size=38_000, spread=0.55, days=9.0, loss=0.010, close_odds=1.1, cycle=80),
    "Enterprise": dict(share=0.12, size=160_000, spread=0.6, days=19.0, loss=0.005, close_odds=0.8, cycle=170),
}
QUARTER_SEASON = {1: 0.85, 2: 1.0, 3: 0.95, 4: 1.2}


@dataclass
class SimConfig:
    """What to simulate: ``quarters`` calendar quarters from ``start``, ``n_reps`` seats in ``n_teams`` teams."""

    seed: int = 0
    quarters: int = 10
    start: str = "2024-01-01"
    n_reps: int = 40
    n_teams: int = 5
    leads_per_rep_week: float = 2.2
    growth_per_year: float = 0.12
    rush_days: int = 14
    rush_factor: float = 1.6
    leave_per_quarter: float = 0.06
    quota_stretch: float = 1.08
    extra: dict = field(default_factory=dict)


@dataclass
class Simulation:
    """The exports (``history``, ``reps``, ``quotas``) and the ground truth (``deals``, ``bookings``)."""

    history: pd.DataFrame
    reps: pd.DataFrame
    quotas: pd.DataFrame
    deals: pd.DataFrame
    bookings: pd.DataFrame
    config: SimConfig


def _quarter(day: pd.Timestamp) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def simulate(config: SimConfig | None = None, **overrides) -> Simulation:
    """Run the simulator; ``overrides`` set :class:`SimConfig` fields."""
    cfg = config or SimConfig(**overrides)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 20261206]))
    start = pd.Timestamp(cfg.start, tz="UTC")
    end = (pd.Period(_quarter(start), freq="Q") + cfg.quarters).start_time.tz_localize("UTC")
    days = pd.date_range(start, end, freq="D", inclusive="left")

    # --- the sales force: seats in teams; a seat's holder may leave, and a new hire takes the seat.
    team_names = [f"Team {chr(65 + i)}" for i in range(cfg.n_teams)]
    seats = [{"team": team_names[i % cfg.n_teams], "region": "EMEA" if i % cfg.n_teams < cfg.n_teams // 2 else "Americas"}
             for i in range(cfg.n_reps)]
    reps: list[dict] = []

    def hire(seat: int, day: pd.Timestamp, ramped: bool) -> int:
        reps.append(dict(rep=f"rep{len(reps) + 1:03d}", seat=seat, team=seats[seat]["team"],
                         region=seats[seat]["region"], start_date=day - pd.Timedelta(days=400 if ramped else 0),
                         end_date=pd.NaT, skill=float(rng.normal(0.0, 0.35))))
        return len(reps) - 1

    holder = [hire(s, start, True) for s in range(cfg.n_reps)]
    vacant_until = np.full(cfg.n_reps, -1)

    # --- the deals, as growing arrays.
    cap = int(cfg.n_reps * cfg.leads_per_rep_week * len(days) / 7 * 1.6) + 100
    seg_names = list(SEGMENTS)
    seg = np.zeros(cap, int)
    stage = np.zeros(cap, int)
    owner = np.zeros(cap, int)
    amount = np.zeros(cap)
    close_date = np.zeros(cap, int)  # day index
    created = np.zeros(cap, int)
    outcome = np.zeros(cap, int)  # 0 open, 1 won, 2 lost
    closed_day = np.full(cap, -1)
    last_move = np.zeros(cap, int)
    n = 0
    rows: list[tuple] = []  # (deal, day, seconds, stage name, amount, close day, owner)

    def write(idx: np.ndarray, d: int, names, hours: tuple[int, int] = (12, 17)) -> None:
        # Creations in the morning, moves in the afternoon, close-date pushes in the evening,
        # so that one deal's rows of a day are in the order they were made.
        secs = rng.uniform(hours[0] * 3600, hours[1] * 3600, len(idx))
        for k, i in enumerate(idx):
            rows.append((i, d, secs[k], names[k] if not isinstance(names, str) else names,
                         amount[i], close_date[i], owner[i]))

    seg_p = np.array([SEGMENTS[s]["share"] for s in seg_names])
    for d, day in enumerate(days):
        q_start = pd.Period(_quarter(day), freq="Q").start_time.tz_localize("UTC")
        q_end = (pd.Period(_quarter(day), freq="Q") + 1).start_time.tz_localize("UTC")
        left = (q_end - day).days
        weekday = day.day_of_week < 5

        # Turnover on the first day of a quarter: leavers go within the quarter, their seats
        # stay empty three to six weeks.
        if day == q_start and d > 0:
            for s in range(cfg.n_reps):
                if holder[s] >= 0 and rng.random() < cfg.leave_per_quarter:
                    vacant_until[s] = d + int(rng.integers(5, 80))  # leaves on that day...
        for s in range(cfg.n_reps):
            if vacant_until[s] == d and holder[s] >= 0:
                r = holder[s]
                reps[r]["end_date"] = day
                mates = [holder[t] for t in range(cfg.n_reps)
                         if t != s and holder[t] >= 0 and seats[t]["team"] == seats[s]["team"]]
                mine = np.flatnonzero((owner[:n] == r) & (outcome[:n] == 0))
                if mates and len(mine):
                    owner[mine] = rng.choice(mates, len(mine))
                    write(mine, d, [STAGES[stage[i]] for i in mine], (7, 8))
                holder[s] = -1
                vacant_until[s] = d + int(rng.integers(21, 43))  # ...and is replaced this many days later
            elif vacant_until[s] == d and holder[s] < 0:
                holder[s] = hire(s, day, False)
                vacant_until[s] = -1
        if not weekday:
            continue

        # New leads, per seated rep: seasonal, growing, fewer while a new hire ramps up.
        years = (day - start).days / 365.25
        season = QUARTER_SEASON[(day.month - 1) // 3 + 1]
        for s in range(cfg.n_reps):
            r = holder[s]
            if r < 0:
                continue
            tenure = (day - reps[r]["start_date"]).days
            ramp = min(1.0, 0.35 + tenure / 150)
            lam = cfg.leads_per_rep_week / 5 * season * np.exp(cfg.growth_per_year * years) * ramp
            k = rng.poisson(lam)
            if k == 0:
                continue
            idx = np.arange(n, n + k)
            n += k
            seg[idx] = rng.choice(len(seg_names), k, p=seg_p)
            for i in idx:
                p = SEGMENTS[seg_names[seg[i]]]
                amount[i] = round(p["size"] * rng.lognormal(0.0, p["spread"]), -2)
                close_date[i] = d + int(p["cycle"] * rng.lognormal(0.0, 0.3))
            owner[idx] = r
            created[idx] = d
            last_move[idx] = d
            write(idx, d, STAGES[0], (8, 12))

        # Every open deal: advance, lose, win, push its close date or revise its amount.
        open_ = np.flatnonzero((outcome[:n] == 0) & (created[:n] < d))
        if len(open_) == 0:
            continue
        p_seg = [SEGMENTS[seg_names[g]] for g in seg[open_]]
        speed = np.array([1.0 / p["days"] for p in p_seg])
        loss = np.array([p["loss"] for p in p_seg]) * (1.0 - 0.09 * stage[open_])
        skill = np.array([reps[o]["skill"] for o in owner[open_]])
        idle = d - last_move[open_]
        loss = loss * np.exp(-0.4 * skill) * (1.0 + (idle > 60) * 1.5)
        late = stage[open_] >= 6
        rush = np.where(late & (left <= cfg.rush_days), cfg.rush_factor, 1.0)
        u = rng.random(len(open_))
        lose = u < loss
        move = (~lose) & (u < loss + speed * rush)
        # At the last stage a move is the close: won with the segment's odds and the rep's skill.
        at_last = move & (stage[open_] == LAST)
        odds = np.array([p["close_odds"] for p in p_seg]) * np.exp(skill)
        win = at_last & (rng.random(len(open_)) < odds / (1 + odds))
        lose = lose | (at_last & ~win)
        adv = move & ~at_last
        step = np.where(rng.random(len(open_)) < 0.15, 2, 1)  # a stage skipped now and then
        back = adv & (rng.random(len(open_)) < 0.04) & (stage[open_] > 1)

        i_adv = open_[adv & ~back]
        stage[i_adv] = np.minimum(stage[i_adv] + step[adv & ~back], LAST)
        i_back = open_[back]
        stage[i_back] -= 1
        # Amounts: scoped up in discovery, discounted in negotiation, for the bigger segments.
        big = seg[i_adv] > 0
        scope = np.where(stage[i_adv] <= 3, rng.lognormal(0.05, 0.12, len(i_adv)),
                         np.where(stage[i_adv] == LAST, rng.lognormal(-0.08, 0.05, len(i_adv)), 1.0))
        amount[i_adv] = np.where(big, np.round(amount[i_adv] * scope, -2), amount[i_adv])
        moved = np.r_[i_adv, i_back]
        last_move[moved] = d
        # A late-stage deal in the rush has its close date pulled into this quarter.
        pull = moved[(stage[moved] >= 6) & (left <= cfg.rush_days) & (close_date[moved] > d + left)]
        close_date[pull] = d + left - 1
        write(moved, d, [STAGES[stage[i]] for i in moved])

        i_win, i_lose = open_[win], open_[lose & ~win]
        outcome[i_win], outcome[i_lose] = 1, 2
        closed_day[i_win], closed_day[i_lose] = d, d
        close_date[i_win], close_date[i_lose] = d, d
        write(i_win, d, WON)
        write(i_lose, d, LOST)

        # An open deal whose close date has passed is pushed out (a month or so), now and then.
        still = open_[~(win | lose)]
        due = still[(close_date[still] < d) & (rng.random(len(still)) < 0.25)]
        close_date[due] = d + rng.integers(14, 50, len(due))
        write(due, d, [STAGES[stage[i]] for i in due], (17, 19))

    # --- the export: OpportunityHistory-like rows, then the reps and quotas tables.
    h = pd.DataFrame(rows, columns=["deal", "day", "sec", "StageName", "Amount", "close_day", "owner"])
    h = h.sort_values(["day", "sec", "deal"], kind="stable").reset_index(drop=True)
    stamp = start + pd.to_timedelta(h["day"], unit="D") + pd.to_timedelta(h["sec"].round(), unit="s")
    names = np.array([r["rep"] for r in reps])
    history = pd.DataFrame({
        "OpportunityId": [f"006SIM{cfg.seed:02d}{i:06d}" for i in h["deal"]],
        "CreatedDate": stamp.dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "StageName": h["StageName"],
        "Amount": h["Amount"].round(2),
        "CloseDate": (start + pd.to_timedelta(h["close_day"], unit="D")).dt.strftime("%Y-%m-%d"),
        "OwnerName": names[h["owner"].to_numpy()],
        "Segment": np.array(seg_names)[seg[h["deal"].to_numpy()]],
    })
    roster = pd.DataFrame(reps)
    reps_table = pd.DataFrame({"rep": roster["rep"], "team": roster["team"], "region": roster["region"],
                               "start_date": roster["start_date"].dt.strftime("%Y-%m-%d"),
                               "end_date": roster["end_date"].dt.strftime("%Y-%m-%d")})

    deals = pd.DataFrame({
        "case_id": [f"006SIM{cfg.seed:02d}{i:06d}" for i in range(n)],
        "segment": np.array(seg_names)[seg[:n]],
        "created": start + pd.to_timedelta(created[:n], unit="D"),
        "outcome": np.array(["open", "won", "lost"])[outcome[:n]],
        "closed_day": closed_day[:n],
        "amount": amount[:n],
        "rep": names[owner[:n]],
    })
    won_rows = history[history["StageName"] == WON]
    won_at = pd.to_datetime(won_rows["CreatedDate"], utc=True)
    booked = pd.DataFrame({"rep": won_rows["OwnerName"].to_numpy(), "amount": won_rows["Amount"].to_numpy(),
                           "quarter": [_quarter(t) for t in won_at]})
    bookings = booked.groupby(["quarter", "rep"], as_index=False)["amount"].sum()

    quotas = _quotas(cfg, roster, days, rng)
    return Simulation(history, reps_table, quotas, deals, bookings, cfg)


def _quotas(cfg: SimConfig, roster: pd.DataFrame, days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    """Top-down quotas: a seat's expected bookings (leads x win rate x size, seasonal, growing), stretched;
    a rep who starts or leaves within a quarter has it pro rata, a new hire's first quarter halved."""
    mean_deal = sum(p["share"] * p["size"] * np.exp(p["spread"] ** 2 / 2) for p in SEGMENTS.values())
    start = days[0]
    rows = []
    for q in pd.period_range(days[0], days[-1], freq="Q"):
        q_start, q_end = q.start_time.tz_localize("UTC"), (q + 1).start_time.tz_localize("UTC")
        years = (q_start - start).days / 365.25
        capacity = (cfg.leads_per_rep_week * 13 * 0.25 * mean_deal * QUARTER_SEASON[q.quarter]
                    * np.exp(cfg.growth_per_year * years))
        for r in roster.itertuples():
            a = max(r.start_date, q_start)
            b = min(r.end_date, q_end) if pd.notna(r.end_date) else q_end
            if b <= a:
                continue
            share = (b - a).days / (q_end - q_start).days
            ramp = 0.5 if (q_start - r.start_date).days < 90 else 1.0
            quota = capacity * share * ramp * cfg.quota_stretch * rng.lognormal(0.0, 0.08)
            rows.append({"rep": r.rep, "quarter": str(q), "quota": round(quota, -3)})
    return pd.DataFrame(rows)
