"""What a forecast says: :class:`QuotaForecast`, the results of :meth:`QuotaForecaster.predict`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .. import schema
from ..errors import WorkbenchError
from ..calendar import DAY, quarter_bounds, week_of_quarter
from .baselines import baselines
from .hierarchy import LEVELS, quotas_by_level
from .new_business import NewBusinessModel
from .simulation import Simulation, shock_factors, simulate_new_business, simulate_pipeline


#: Forecast categories, from the surest; the default P(win) thresholds of commit and best case.
CATEGORIES = ("closed", "commit", "best case", "pipeline")
COMMIT, BEST_CASE = 0.7, 0.3


def _category(p: np.ndarray, commit: float, best_case: float) -> np.ndarray:
    if not 0 <= best_case <= commit <= 1:
        raise WorkbenchError(f"the thresholds must satisfy 0 <= best_case <= commit <= 1, got best_case={best_case}, "
                             f"commit={commit}.", hint="e.g. commit=0.7, best_case=0.3.")
    return np.where(p >= commit, "commit", np.where(p >= best_case, "best case", "pipeline"))


@dataclass
class QuotaForecast:
    """The forecast of a quarter as of a date: the open deals, what is booked, the draws and their summary.

    Made by :meth:`QuotaForecaster.predict`; it keeps no training data. The
    draws are made on first use, with the model's ``n_draws`` and ``seed`` (the
    same seed gives the same numbers).

    Attributes
    ----------
    model : QuotaForecaster
        The fitted model.
    as_of : Timestamp
    deals : DataFrame
        Every open deal: the snapshot's state (stage, age, time in stage...),
        ``amount_used`` (its amount, or the imputed value), ``amount_if_won``
        (what it would book), ``p_win`` (won before quarter end) and
        ``expected_amount``.
    reps : DataFrame
        rep, team, region of the reps forecast, in the order of the draws' columns.
    closed : Series
        Closed-won so far per rep.
    won_so_far : DataFrame
        The deals won so far this quarter (:func:`workbench.snapshot.bookings`).
    new_business : NewBusinessModel
        Shared among this quarter's reps.
    new_business_expected : float
        Expected new business from ``as_of`` to the quarter's end.
    imputed_amounts : int
        Open deals without an amount (valued at ``model.imputed_amount_``).
    """

    model: Any
    as_of: pd.Timestamp
    deals: pd.DataFrame
    reps: pd.DataFrame
    closed: pd.Series
    won_so_far: pd.DataFrame
    new_business: NewBusinessModel
    new_business_expected: float
    imputed_amounts: int
    _simulation: Simulation | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def quarter(self) -> str:
        """The forecast quarter."""
        return self.model.quarter_

    @property
    def week(self) -> int:
        """The week of the quarter of the as-of date (1..13)."""
        return int(week_of_quarter(self.as_of, self.quarter))

    def combination(self, calibration=None) -> tuple[dict[str, float], float]:
        """The other methods' weights in the company number and the factor they put on the bookings still to come.

        The weights are the calibration's for this week of quarter
        (:meth:`~workbench.forecast.calibration.Calibration.weight`): with weights
        ``lam`` the company is expected to book ``model + sum of lam_k * (method_k
        - model)``, and every rep's bookings still to come are scaled by the same
        factor, so the hierarchy stays coherent.
        """
        lam = (calibration or self.model.calibration_).weight(self.week)
        if sum(lam.values()) <= 0:
            return lam, 1.0
        m = self.moments()
        closed, expected = float(m["closed"].sum()), float((m["pipeline"] + m["new_business"]).sum())
        if expected <= 0:
            return {k: 0.0 for k in lam}, 1.0
        company = self.baselines().query("level == 'company'").iloc[0]
        model = closed + expected
        target = model + sum(w * (float(company[k]) - model) for k, w in lam.items() if np.isfinite(company[k]))
        return lam, max(target - closed, 0.0) / expected

    @property
    def method(self) -> str:
        """Which method produced the number, in words."""
        lam, _ = self.combination()
        used = {k: w for k, w in lam.items() if w > 0}
        if not used:
            return "pipeline model"
        names = {"run_rate": "the run rate", "weighted_pipeline": "the weighted pipeline"}
        others = " and ".join(f"{names[k]} ({w:.0%})" for k, w in used.items())
        return f"pipeline model ({1 - sum(used.values()):.0%}) combined with {others}"

    def moments(self) -> pd.DataFrame:
        """Per rep, the bookings still to come as the model sees them, before shocks and combination.

        Returns
        -------
        DataFrame
            rep, team, region, closed, pipeline (expected wins of open deals),
            pipeline_var (their Bernoulli variance), new_business (expected),
            nb_m2_over_m1 and nb_dispersion (the new-business size moments and
            gamma dispersion, the same for every rep: a group expecting ``mu`` of
            new business has variance ``mu * nb_m2_over_m1 + nb_dispersion * mu^2``).
        """
        if "moments" in self._cache:
            return self._cache["moments"].copy()
        deals, nb = self.deals, self.new_business
        amount = deals["amount_if_won"]
        by_rep = pd.DataFrame({schema.REP: deals[schema.REP], "e": deals["p_win"] * amount,
                               "v": deals["p_win"] * (1 - deals["p_win"]) * amount ** 2}).groupby(schema.REP)
        out = self.reps[[schema.REP, "team", "region"]].copy()
        out["closed"] = out[schema.REP].map(self.closed).fillna(0.0).to_numpy(float)
        out["pipeline"] = out[schema.REP].map(by_rep["e"].sum()).fillna(0.0).to_numpy(float)
        out["pipeline_var"] = out[schema.REP].map(by_rep["v"].sum()).fillna(0.0).to_numpy(float)
        share = out[schema.REP].map(nb.rep_share).fillna(0.0).to_numpy(float)
        out["new_business"] = self.new_business_expected * share
        sizes = nb.sizes[nb.sizes > 0] if nb.sizes.size else nb.sizes
        out["nb_m2_over_m1"] = float((sizes ** 2).mean() / sizes.mean()) if sizes.size else 0.0
        out["nb_dispersion"] = float(nb.dispersion)
        self._cache["moments"] = out
        return out.copy()

    def simulate(self, n_draws: int | None = None, seed: int | None = None, calibration=None) -> Simulation:
        """Draw the quarter's bookings per rep (the model's draws and seed by default).

        Open deals are won or not (each rep's deviation from its expected wins
        scaled by the calibration's ``kappa``), new business arrives, then each
        rep's bookings still to come are multiplied by the calibrated shocks of
        this week of quarter (the company's, and the uncertain split among teams
        and reps) and by the run-rate combination's factor (:meth:`combination`).
        ``calibration`` replaces the model's (:attr:`QuotaForecaster.calibration_`).
        """
        m = self.model
        cal = calibration or m.calibration_
        n_draws = m.n_draws if n_draws is None else n_draws
        seed = m.seed if seed is None else seed
        pipe_rng, nb_rng, shock_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
        pos = pd.Series(np.arange(len(self.reps)), index=self.reps[schema.REP])
        deals = self.deals
        pipeline = simulate_pipeline(deals["p_win"].to_numpy(), deals["amount_if_won"].to_numpy(),
                                     deals[schema.REP].map(pos).to_numpy(), len(self.reps), n_draws=n_draws,
                                     rng=pipe_rng)
        nb = self.new_business
        group = nb.rep_share.index.map(pos).to_numpy() if len(nb.rep_share) else np.zeros(0, int)
        new = simulate_new_business(nb, self.new_business_expected, len(self.reps), group, n_draws=n_draws,
                                    rng=nb_rng)
        # The open deals' deviations from their expectation, scaled as the past quarters measured.
        kappa = cal.kappa(self.week)
        moments = self.moments()
        if kappa != 1.0:
            expected = moments["pipeline"].to_numpy()
            pipeline = np.clip(expected + kappa * (pipeline - expected), 0.0, None)
        team = pd.factorize(self.reps[schema.TEAM])[0]
        still_to_come = moments[["pipeline", "new_business"]].sum(axis=1).to_numpy()
        factor = shock_factors(n_draws, team, cal.sd(self.week), weight=still_to_come, df=cal.df,
                               rng=shock_rng) * self.combination(cal)[1]
        closed = self.closed.reindex(self.reps[schema.REP], fill_value=0.0)
        return Simulation(self.reps, closed.to_numpy(float), pipeline, new, factor)

    @property
    def simulation(self) -> Simulation:
        """The draws, made once with the model's ``n_draws`` and ``seed``."""
        if self._simulation is None:
            self._simulation = self.simulate()
        return self._simulation

    def for_draws(self) -> QuotaForecast:
        """A copy keeping only what :meth:`simulate` reads: each open deal's rep, P(win) and amount if won.

        A calibration keeps a forecast per week of each past quarter to draw it again
        (:func:`~workbench.forecast.calibration.pit_values`); with every snapshot column
        those held some 3 GB of the forecast page's peak at ten million events. Its moments,
        baselines and quotas are computed first, from the whole forecast.
        """
        self.moments(), self.baselines(), self.quotas()
        return replace(self, deals=self.deals[[schema.REP, "p_win", "amount_if_won"]].copy(),
                       won_so_far=self.won_so_far.iloc[:0], _simulation=None, _cache=dict(self._cache))

    def quotas(self) -> dict[str, pd.Series]:
        """Quota per entity at each level for the forecast quarter."""
        if "quotas" not in self._cache:
            self._cache["quotas"] = quotas_by_level(self.model.quotas_, self.quarter, self.reps)
        return {level: q.copy() for level, q in self._cache["quotas"].items()}

    def table(self, simulation: Simulation | None = None) -> pd.DataFrame:
        """The forecast per level and entity.

        Returns
        -------
        DataFrame
            One row per level ('rep', 'team', 'region', 'company') and entity:
            team, region (where defined), n_open_deals, open_pipeline,
            closed_won_to_date, pipeline_expected, new_business_expected,
            expected_bookings, p10, p50, p90, quota, expected_attainment,
            p_hit_quota and gap_to_quota (quota minus closed-won so far). At
            team, region and company level P10..P90 are the draws' deciles and
            P(hit quota) their share at or above quota; a rep's are the draws'
            after the quantile recalibration measured on past quarters, and
            their P(hit quota) read from the same recalibration
            (:meth:`~workbench.forecast.calibration.Calibration.levels`, ``p_hit``).
            ``attrs`` holds quarter, as_of, new_business_model and method
            (:attr:`method`).
        """
        sim = simulation if simulation is not None else self.simulation
        reps, deals = self.reps, self.deals
        by_rep = deals.groupby(schema.REP)
        per_rep = pd.DataFrame({
            schema.REP: reps[schema.REP], schema.TEAM: reps[schema.TEAM], schema.REGION: reps[schema.REGION],
            "n_open_deals": reps[schema.REP].map(by_rep.size()).fillna(0).astype(int).to_numpy(),
            "open_pipeline": reps[schema.REP].map(by_rep["amount_used"].sum()).fillna(0.0).to_numpy(),
            "closed_won_to_date": sim.closed,
            "pipeline_expected": reps[schema.REP].map(by_rep["expected_amount"].sum()).fillna(0.0).to_numpy(),
            "new_business_expected": self.new_business_expected
            * reps[schema.REP].map(self.new_business.rep_share).fillna(0.0).to_numpy(),
        })
        quotas = self.quotas()
        frames = []
        for level in LEVELS:
            names, draws = sim.level_draws(level)
            if level == "rep":
                base = per_rep.copy()
            elif level == "company":
                base = per_rep.drop(columns=[schema.REP, schema.TEAM, schema.REGION]).sum().to_frame().T
                base[schema.TEAM], base[schema.REGION] = np.nan, np.nan
            else:
                agg = per_rep.drop(columns=[schema.REP]).groupby(level, sort=True)
                base = agg.sum(numeric_only=True).reset_index()
                base[schema.REGION] = agg[schema.REGION].first().to_numpy()
                base[schema.TEAM] = base[level] if level == "team" else np.nan
            base.insert(0, "entity", names)
            base.insert(0, "level", level)
            # Reps' ranges and P(hit quota) are recalibrated on past quarters (see Calibration.levels).
            cal = self.model.calibration_
            levels = cal.levels([0.1, 0.5, 0.9], self.week) if level == "rep" else np.array([0.1, 0.5, 0.9])
            p10, p50, p90 = np.quantile(draws, levels, axis=0)
            base["expected_bookings"] = draws.mean(axis=0)
            base["p10"], base["p50"], base["p90"] = p10, p50, p90
            quota = (pd.Series(names).map(quotas[level]).to_numpy(float) if len(quotas[level])
                     else np.full(len(names), np.nan))
            base["quota"] = quota
            with np.errstate(divide="ignore", invalid="ignore"):
                base["expected_attainment"] = base["expected_bookings"] / quota
                p_hit = (draws >= quota[None, :]).mean(axis=0)
                p_hit = cal.p_hit(p_hit, self.week) if level == "rep" else p_hit
                base["p_hit_quota"] = np.where(np.isnan(quota), np.nan, p_hit)
                base["gap_to_quota"] = quota - base["closed_won_to_date"].to_numpy(float)
            frames.append(base)
        cols = ["level", "entity", schema.TEAM, schema.REGION, "n_open_deals", "open_pipeline",
                "closed_won_to_date", "pipeline_expected", "new_business_expected", "expected_bookings",
                "p10", "p50", "p90", "quota", "expected_attainment", "p_hit_quota", "gap_to_quota"]
        out = pd.concat([f[cols] for f in frames], ignore_index=True)
        out["n_open_deals"] = out["n_open_deals"].astype(int)
        out.attrs.update(quarter=self.quarter, as_of=self.as_of, new_business_model=self.new_business.method,
                         method=self.method)
        return out

    def deal_table(self, *, commit: float = COMMIT, best_case: float = BEST_CASE) -> pd.DataFrame:
        """Every open deal, for a deal review, most expected value first.

        Returns
        -------
        DataFrame
            case_id, rep, team, stage, amount (as recorded; NaN where none),
            p_win (won before quarter end), expected_amount, category
            (:meth:`categories`), days_in_stage, days_since_last_activity,
            close_date, close_date_pushes and amount_changes (so far) where
            the log records them.
        """
        d = self.deals
        team = d[schema.REP].map(self.reps.set_index(schema.REP)[schema.TEAM])
        out = pd.DataFrame({schema.CASE: d[schema.CASE], schema.REP: d[schema.REP], schema.TEAM: team,
                            "stage": d["stage"], "amount": d[schema.AMOUNT], "p_win": d["p_win"],
                            "expected_amount": d["expected_amount"],
                            "category": _category(d["p_win"].to_numpy(float), commit, best_case),
                            "days_in_stage": d["time_in_stage_days"],
                            "days_since_last_activity": d["days_since_last_activity"]})
        for c in ("close_date", "close_date_pushes", "amount_changes"):
            if c in d.columns:
                out[c] = d[c]
        return out.sort_values("expected_amount", ascending=False, kind="stable").reset_index(drop=True)

    def categories(self, *, commit: float = COMMIT, best_case: float = BEST_CASE) -> pd.DataFrame:
        """The forecast categories a CRM rolls up: closed, commit, best case, pipeline.

        An open deal is *commit* when P(win this quarter) >= ``commit``, *best
        case* when >= ``best_case``, else *pipeline*.

        Returns
        -------
        DataFrame
            category, deals, amount (recorded; closed: booked so far),
            expected (P(win) x amount if won), cumulative (closed plus the
            amounts of this category and those above it: the "if all of these
            close" number).
        """
        table = self.deal_table(commit=commit, best_case=best_case)
        amount = table["amount"].fillna(0.0)
        g = pd.DataFrame({"deals": table.groupby("category").size(),
                          "amount": amount.groupby(table["category"]).sum(),
                          "expected": table.groupby("category")["expected_amount"].sum()}).reindex(CATEGORIES[1:])
        closed = pd.DataFrame({"deals": [len(self.won_so_far)], "amount": [float(self.closed.sum())],
                               "expected": [float(self.closed.sum())]}, index=[CATEGORIES[0]])
        out = pd.concat([closed, g.fillna(0.0)])
        out["deals"] = out["deals"].astype(int)
        out["cumulative"] = out["amount"].cumsum()
        return out.rename_axis("category").reset_index()

    def baselines(self) -> pd.DataFrame:
        """The weighted pipeline and the run rate, per level and entity
        (:func:`workbench.forecast.baselines.baselines`)."""
        if "baselines" not in self._cache:
            m = self.model
            self._cache["baselines"] = baselines(self.deals, self.closed, self.reps, self.quotas(), m.stage_win_rate_,
                                                 m.baseline_sigma_, self.quarter, self.as_of, m.hit_rate_)
        return self._cache["baselines"].copy()

    def observe(self, log: pd.DataFrame, as_of: pd.Timestamp | str) -> QuotaForecast:
        """The forecast at a later date of the same quarter, without relearning (a new object)."""
        return self.model.predict(log, as_of=as_of)

    def paths(self, n_draws: int = 2000, seed: int | None = None) -> pd.DataFrame:
        """Company cumulative bookings through the quarter: actual up to ``as_of``, then the drawn fan.

        Each draw's bookings still to come (the company total of
        :meth:`simulate` minus the closed-won so far) are spread over the rest
        of the quarter along the history's timing: the share of the bookings
        from this day of the quarter to its end that the history quarters had
        booked by each later day. The fan therefore ends exactly at the
        forecast's distribution; its shape in between is the historical one.

        Returns
        -------
        DataFrame
            date, kind ('actual' or 'forecast'), p10, p50, p90, mean (actual rows
            have the actual in all four).
        """
        start, end = quarter_bounds(self.quarter)
        won = self.won_so_far
        days = pd.date_range(start, self.as_of, freq="D")
        actual = np.array([won.loc[won["closed_at"] < d, schema.AMOUNT].sum() for d in days])
        rows = [pd.DataFrame({"date": days, "kind": "actual", "p10": actual, "p50": actual, "p90": actual,
                              "mean": actual})]
        grid = pd.date_range(self.as_of, end, freq="7D")
        if grid[-1] < end:
            grid = grid.append(pd.DatetimeIndex([end]))
        sim = self.simulate(n_draws=n_draws, seed=seed)
        total = sim.level_draws("company")[1][:, 0]
        base = float(sim.closed.sum())
        share = _timing_share(self.model, (grid - start) / DAY, (self.as_of - start) / DAY)
        cum = base + np.outer(share, total - base)
        q = np.percentile(cum, [10, 50, 90], axis=1)
        rows.append(pd.DataFrame({"date": grid, "kind": "forecast", "p10": q[0], "p50": q[1], "p90": q[2],
                                  "mean": cum.mean(axis=1)}))
        return pd.concat(rows, ignore_index=True)


def _timing_share(model, day: np.ndarray, from_day: float) -> np.ndarray:
    """Share of the history's bookings between ``from_day`` and the quarter end booked by each ``day``."""
    offset, amount = model.booking_days_, model.booking_amounts_
    later = offset >= from_day
    denom = amount[later].sum()
    if denom <= 0:
        # No history after this day of the quarter: spread evenly in time.
        span = max(day[-1] - from_day, 1e-9)
        return np.clip((day - from_day) / span, 0, 1)
    share = np.array([amount[later & (offset < d)].sum() for d in day]) / denom
    share[-1] = 1.0
    return share
