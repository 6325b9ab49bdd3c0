"""Conformance: deviations on a hand-made log, replay and alignments against pm4py, the demo's ground truth."""

import numpy as np
import pandas as pd
import pm4py
import pytest

from workbench.conformance import replay as cf_replay
from workbench.errors import WorkbenchError
from workbench import conformance as cf
from workbench.io import read_event_log
from workbench.profile import PPVVC
from workbench.schema import MissingColumnError, to_pm4py

LC, RE, FC, Q, DM, SI, P, N = PPVVC.stages
FU, WON, LOST = "Follow-up", "Closed Won", "Closed Lost"
T0 = pd.Timestamp("2026-01-01", tz="UTC")

# case -> (team, rep, [(activity, day)]); the expected deviations are worked out by hand below.
CASES = {
    "C00": ("T1", "ann", [(LC, 0), (FC, 1), (Q, 2), (DM, 3), (P, 4), (N, 5), (WON, 6)]),
    "C01": ("T1", "ann", [(LC, 0), (FC, 1), (LOST, 2)]),
    "C02": ("T1", "bob", [(LC, 0), (FC, 1), (DM, 2), (P, 3), (LOST, 4)]),
    "C03": ("T1", "bob", [(LC, 0), (FC, 1), (P, 2), (Q, 3), (DM, 4), (P, 5), (LOST, 6)]),
    "C04": ("T1", "bob", [(LC, 0), (FC, 1), (FU, 2), (Q, 60)]),
    "C05": ("T2", "cy", [(LC, 0), (FC, 1), (Q, 2), (LOST, 3), (FU, 100)]),
    "C06": ("T2", "cy", [(LC, 0), (FC, 1), (Q, 2), (DM, 3), (P, 4), (WON, 5)]),
    "C07": ("T2", "cy", [(LC, 0), (FC, 1), (Q, 2), (P, 3), (N, 4), (WON, 5)]),
    "C08": ("T2", "dee", [(LC, 0), (FC, 1), (Q, 2), (DM, 3), (FU, 4), (Q, 5), (DM, 6), (P, 7), (LOST, 8)]),
    "C09": ("T2", "dee", [(LC, 0), ("Coffee", 1), (FC, 2), (Q, 3)]),
    "C10": ("T2", "dee", [(LC, 0), (FC, 45)]),
}
EXPECTED = {
    ("C02", "skipped_stage"), ("C02", "premature_proposal"),
    ("C03", "premature_proposal"), ("C03", "stage_regression"),
    ("C04", "followup_gap"),
    ("C05", "after_close"),
    ("C06", "won_without_milestones"),
    ("C07", "skipped_stage"), ("C07", "won_without_milestones"),
    ("C08", "stage_regression"),
}


def make_log(cases=CASES) -> pd.DataFrame:
    rows = [{"case_id": c, "activity": a, "timestamp": T0 + pd.Timedelta(days=d), "team": team, "rep": rep}
            for c, (team, rep, events) in cases.items() for a, d in events]
    return pd.DataFrame(rows)


def pairs(dev: pd.DataFrame) -> set:
    return set(zip(dev["case_id"], dev["kind"]))


def test_deviations_on_the_hand_made_log():
    dev = cf.detect_deviations(make_log())
    assert pairs(dev) == EXPECTED
    row = dev.set_index(["case_id", "kind"])
    assert row.loc[("C02", "skipped_stage"), "detail"] == "skipped Qualification"
    assert row.loc[("C07", "skipped_stage"), "detail"] == "skipped Discovery Meeting"
    assert row.loc[("C07", "won_without_milestones"), "count"] == 1  # Discovery Meeting (Power, Vision)
    assert row.loc[("C06", "won_without_milestones"), "detail"] == "won without Control (Negotiation)"
    assert row.loc[("C08", "stage_regression"), "detail"] == "back from Discovery Meeting to Qualification"
    assert row.loc[("C04", "followup_gap"), "first_at"] == T0 + pd.Timedelta(days=2)
    assert row.loc[("C05", "after_close"), "first_at"] == T0 + pd.Timedelta(days=100)
    assert list(dev.columns) == ["case_id", "kind", "count", "first_at", "detail"]


def test_gap_threshold_is_strict_and_a_parameter():
    log = make_log()
    assert ("C10", "followup_gap") not in pairs(cf.detect_deviations(log))  # exactly 45 days
    assert ("C10", "followup_gap") in pairs(cf.detect_deviations(log, gap_days=44.9))
    # the gap between the close and a later follow-up is not a follow-up gap
    assert ("C05", "followup_gap") not in pairs(cf.detect_deviations(log, gap_days=1))
    with pytest.raises(WorkbenchError, match="gap_days"):
        cf.detect_deviations(log, gap_days=0)


def test_quarantined_events_after_close_count_for_their_case():
    log = make_log()
    log = log[~((log["case_id"] == "C05") & (log["activity"] == FU))]
    quarantine = pd.DataFrame({"source_row": [7], "column": ["activity"], "reason": ["event_after_close"],
                               "case_id": ["C05"], "activity": [FU], "timestamp": ["2026-04-11 00:00:00+00:00"]})
    assert pairs(cf.detect_deviations(log)) == EXPECTED - {("C05", "after_close")}
    dev = cf.detect_deviations(log, quarantine=quarantine)
    assert pairs(dev) == EXPECTED
    assert dev.set_index(["case_id", "kind"]).loc[("C05", "after_close"), "first_at"] == T0 + pd.Timedelta(days=100)
    with pytest.raises(WorkbenchError, match="case_column"):
        cf.detect_deviations(log, quarantine=quarantine.rename(columns={"case_id": "Opportunity"}))
    renamed = quarantine.rename(columns={"case_id": "Opportunity"})
    assert pairs(cf.detect_deviations(log, quarantine=renamed, case_column="Opportunity")) == EXPECTED


def test_lifecycle_start_complete_log_gives_the_same_deviations():
    log = make_log()
    start = log.assign(lifecycle="start", timestamp=log["timestamp"] - pd.Timedelta(hours=1))
    both = pd.concat([start, log.assign(lifecycle="complete")]).sort_values(["case_id", "timestamp"],
                                                                           kind="stable", ignore_index=True)
    assert pairs(cf.detect_deviations(both)) == EXPECTED


def test_token_replay_fitness_matches_pm4py_and_treats_open_deals_as_prefixes():
    log = make_log()
    fit = cf.token_replay_fitness(log).set_index("case_id")
    for case in ("C00", "C01", "C06"):  # the happy path, lost early, an optional stage skipped
        assert fit.loc[case, "fitness"] == 1.0 and fit.loc[case, "is_fit"]
    assert fit.loc["C04", "is_fit"]  # open, with a loop, fitting so far
    # an activity the profile does not know leaves the tokens alone but makes the case unfit
    assert fit.loc["C09", "fitness"] == 1.0 and not fit.loc["C09", "is_fit"]
    for case in ("C02", "C05", "C08"):  # skipped stage, event after close, regression
        assert fit.loc[case, "fitness"] < 1.0 and not fit.loc[case, "is_fit"]
    assert fit.loc["C04", "closed"] == False and fit.loc["C00", "closed"] == True  # noqa: E712
    # closed deals: the same numbers as pm4py's own replay on the reference net
    net, im, fm = cf.reference_model(PPVVC)
    closed = log[log["case_id"].isin(fit.index[fit["closed"]])]
    theirs = pm4py.conformance_diagnostics_token_based_replay(to_pm4py(closed), net, im, fm)
    ids = sorted(closed["case_id"].unique())  # pm4py returns cases in case-id order
    got = fit.loc[ids, "fitness"].to_numpy()
    assert np.allclose(got, [r["trace_fitness"] for r in theirs])


def test_token_replay_in_several_processes_gives_the_same_result(monkeypatch):
    log = make_log()
    alone = cf.token_replay_fitness(log, n_jobs=1)
    monkeypatch.setattr(cf_replay, "_REPLAY_CHUNK", 2)  # several chunks of closed and of open variants
    pd.testing.assert_frame_equal(cf.token_replay_fitness(log, n_jobs=2), alone)
    assert alone["case_id"].tolist() == sorted(log["case_id"].unique())
    assert cf.token_replay_fitness(log.iloc[:0]).empty


def test_reference_model_shape():
    net, im, fm = cf.reference_model(PPVVC)
    labels = [t.label for t in net.transitions if t.label is not None]
    assert sorted(s for s in labels if s in PPVVC.stages) == sorted(PPVVC.stages)
    assert len(labels) == len(set(labels))  # one transition per activity: a replay that cannot guess
    assert labels.count(LOST) == labels.count(WON) == labels.count(FU) == 1
    silent = [t for t in net.transitions if t.label is None]
    assert len(silent) == len(PPVVC.optional) + len(PPVVC.stages)  # skips, and every stage to the lost close
    open_net, _, _ = cf.reference_model(PPVVC, open_cases=True)
    assert len([t for t in open_net.transitions if t.label is None]) == len(silent) + len(PPVVC.stages)
    # the language: a follow-up anywhere before the close, lost from any stage, nothing after the close
    stages = list(PPVVC.stages)
    fits = [stages + [WON], [stages[0], FU, LOST], [FU, *stages, FU, WON], stages[:3] + [FU, LOST]]
    unfit = [stages + [WON, FU], [LOST], stages[:2] + [WON]]
    log = pd.DataFrame([(f"c{i}", a, pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=k))
                        for i, trace in enumerate(fits + unfit) for k, a in enumerate(trace)],
                       columns=["case_id", "activity", "timestamp"])
    replayed = pm4py.conformance_diagnostics_token_based_replay(to_pm4py(log), net, im, fm)
    assert [r["trace_is_fit"] for r in replayed] == [True] * len(fits) + [False] * len(unfit)


def test_token_replay_is_the_same_in_every_run_order_and_chunk(monkeypatch):
    """pm4py picks among transitions of one label by object address; the reference net has none."""
    from workbench.profile import SalesProcessProfile

    orders = SalesProcessProfile(name="orders", stages=("Order", "Check", "Approve", "Ship", "Invoice"), won=("Pay",),
                                 lost=("Reject",), optional=("Approve",), loops=("Call",), events_after_close="keep")
    variants = list(dict.fromkeys(_many_variants().groupby("case_id")["activity"].agg(tuple)))
    first = cf_replay._reference_rows(variants, orders, n_jobs=1, progress=False)
    shuffled = [variants[i] for i in np.random.default_rng(0).permutation(len(variants))]
    again = dict(zip(shuffled, cf_replay._reference_rows(shuffled, orders, n_jobs=1, progress=False)))
    assert first == [again[v] for v in variants]
    assert any(r["fitness"] < 1 for r in first)
    monkeypatch.setattr(cf_replay, "_REPLAY_CHUNK", 7)  # other variants share each pm4py call
    assert cf_replay._reference_rows(variants, orders, n_jobs=1, progress=False) == first
    # an activity the model lacks makes its own trace unfit, not those replayed after it (as pm4py's option does)
    main = variants.index(("Order", "Check", "Approve", "Ship", "Invoice", "Pay"))
    assert first[main]["is_fit"] and any("Remind" in v for v in variants)
    assert [r["is_fit"] for r in first] == [r["missing"] == r["remaining"] == 0 and not {"Remind", "Edit"} & set(v)
                                            for v, r in zip(variants, first)]


def test_variant_alignments_match_pm4py_per_variant():
    log = make_log()
    ali = cf.variant_alignments(log, top=20, max_seconds=60)
    assert ali["count"].sum() == len(CASES) and ali["aligned"].all()
    by_variant = ali.set_index(ali["variant"].map(tuple))
    skipped = by_variant.loc[[tuple(a for a, _ in CASES["C02"][2])]].iloc[0]
    assert skipped["model_moves"] == [Q] and skipped["log_moves"] == []
    assert "skipped Qualification" in skipped["deviations"]
    net, im, fm = cf.reference_model(PPVVC)
    one = log[log["case_id"] == "C02"]
    theirs = pm4py.conformance_diagnostics_alignments(to_pm4py(one), net, im, fm)[0]
    assert skipped["fitness"] == pytest.approx(theirs["fitness"]) and skipped["cost"] == theirs["cost"]
    clean = by_variant.loc[[tuple(a for a, _ in CASES["C00"][2])]].iloc[0]
    assert clean["fitness"] == 1.0 and clean["deviations"] == "conforms"


def test_alignment_budget_leaves_variants_unaligned_not_wrong():
    ali = cf.variant_alignments(make_log(), max_seconds=0)
    assert not ali["aligned"].any() and ali["fitness"].isna().all()


def test_summary_per_team_by_hand():
    s = cf.conformance_summary(make_log(), by="team", n_boot=200).set_index("team")
    assert s.loc["T1", "cases"] == 5 and s.loc["T1", "conforming"] == 2
    assert s.loc["T1", "share_conforming"] == pytest.approx(0.4)
    assert s.loc["T1", "win_rate_conforming"] == pytest.approx(0.5)  # C00 won, C01 lost
    assert s.loc["T1", "win_rate_deviating"] == 0.0  # C02, C03 lost
    assert s.loc["T2", "conforming"] == 2  # only its open deals have no deviation of any kind...
    # ...but whether following the process pays counts the outcome-neutral deviations only, as
    # process_pays does: C05 lost, C06 and C07 won follow the process; C08 (a regression) lost.
    assert s.loc["T2", "win_rate_conforming"] == pytest.approx(2 / 3)
    assert s.loc["T2", "win_rate_deviating"] == 0.0
    assert (s.loc["T2", ["after_close", "won_without_milestones", "skipped_stage", "stage_regression"]]
            .tolist() == [1, 2, 1, 1])
    assert not s["win_significant"].any()  # 11 deals prove nothing
    fit = cf.token_replay_fitness(make_log())
    with_fit = cf.conformance_summary(make_log(), by="team", fitness=True, n_boot=50).set_index("team")
    t1 = fit[fit["case_id"].isin(["C00", "C01", "C02", "C03", "C04"])]["fitness"].mean()
    assert with_fit.loc["T1", "mean_fitness"] == pytest.approx(t1) and t1 < 1.0


def test_process_pays_by_hand_with_outcome_neutral_kinds():
    t = cf.process_pays(make_log(), n_boot=200).set_index("measure")
    # deviating (outcome-neutral kinds): C02, C03, C08 closed, C04 open
    assert t.loc["win_rate", "conforming"] == pytest.approx(3 / 5)  # C00, C06, C07 won; C01, C05 lost
    assert t.loc["win_rate", "deviating"] == 0.0
    assert (t.loc["win_rate", "n_conforming"], t.loc["win_rate", "n_deviating"]) == (5, 3)
    assert t.loc["cycle_days", "conforming"] == 5.0  # 6, 2, 3, 5, 5 days
    assert t.loc["cycle_days", "deviating"] == 6.0  # 4, 6, 8 days
    assert t.loc["cycle_days", "diff"] == -1.0


def test_missing_rep_is_one_line_and_the_rest_runs():
    log = make_log().drop(columns=["rep", "team"])
    with pytest.raises(MissingColumnError) as err:
        cf.conformance_summary(log, by="rep")
    assert "\n" not in str(err.value) and "'rep'" in str(err.value)
    assert pairs(cf.detect_deviations(log)) == EXPECTED
    assert cf.conformance_summary(log, by=None, n_boot=100)["cases"].iloc[0] == len(CASES)


@pytest.fixture(scope="module")
def demo(demo_data):
    return demo_data(11, "small")


def _precision_recall(truth: set, found: set) -> tuple[float, float]:
    hit = len(truth & found)
    return (hit / len(found) if found else 1.0), (hit / len(truth) if truth else 1.0)


def _check_against_truth(demo, dev):
    truth = set(map(tuple, demo.truth.deviations[["case_id", "kind"]].to_numpy()))
    found = pairs(dev)
    assert truth, "the demo plants deviations"
    for kind in cf.KINDS:
        t = {x for x in truth if x[1] == kind}
        f = {x for x in found if x[1] == kind}
        assert t, kind
        precision, recall = _precision_recall(t, f)
        assert precision >= 0.9 and recall >= 0.9, (kind, precision, recall)
    precision, recall = _precision_recall(truth, found)
    assert precision >= 0.9 and recall >= 0.9


def test_detector_finds_what_the_generator_planted(demo):
    _check_against_truth(demo, cf.detect_deviations(demo.events, gap_days=demo.truth.followup_gap_days))


def test_detector_with_the_loaders_quarantine(demo):
    loaded = read_event_log(demo.events)
    assert (loaded.quarantine["reason"] == "event_after_close").any()
    dev = cf.detect_deviations(loaded.log, quarantine=loaded.quarantine, gap_days=demo.truth.followup_gap_days)
    _check_against_truth(demo, dev)


def test_conforming_reps_conform_more(demo):
    s = cf.conformance_summary(demo.events, by="rep", gap_days=demo.truth.followup_gap_days, n_boot=100)
    good = s["rep"].isin(demo.truth.conforming_reps)
    assert good.any() and (~good).any()
    assert s.loc[good, "share_conforming"].median() > s.loc[~good, "share_conforming"].median()


def test_xes_with_start_and_complete_degrades_gracefully(tmp_path):
    log = make_log().drop(columns=["rep", "team"])
    start = log.assign(**{"lifecycle:transition": "start"}, timestamp=log["timestamp"] - pd.Timedelta(hours=1))
    both = pd.concat([start, log.assign(**{"lifecycle:transition": "complete"})])
    both = both.sort_values(["case_id", "timestamp"], ignore_index=True)
    path = tmp_path / "deals.xes"
    pm4py.write_xes(to_pm4py(both), str(path), case_id_key="case:concept:name", variant_str="line_by_line")
    for lifecycle in ("complete", "all"):
        for after_close in ("set_aside", "keep"):
            loaded = read_event_log(path, after_close=after_close, lifecycle=lifecycle, profile="ppvvc")
            dev = cf.detect_deviations(loaded.log, quarantine=loaded.quarantine)
            assert pairs(dev) == EXPECTED, (lifecycle, after_close)
    with pytest.raises(MissingColumnError):
        cf.conformance_summary(loaded.log, by="rep")
    assert cf.token_replay_fitness(loaded.log).set_index("case_id").loc["C00", "fitness"] == 1.0


def test_conforming_by_quarter_compares_closed_deals_and_says_nothing_of_a_handful():
    from workbench.conformance import conforming_by_quarter

    closed = pd.to_datetime(["2026-02-01"] * 30 + ["2026-05-01"] * 29 + [None] * 5, utc=True)
    cases = pd.DataFrame({"closed_at": closed, "conforming": [True] * 24 + [False] * 6 + [True] * 29 + [False] * 5})
    shares = conforming_by_quarter(cases, ["2026Q1", "2026Q2", "2026Q3"])
    assert shares["2026Q1"] == pytest.approx(0.8) and shares[["2026Q2", "2026Q3"]].isna().all()  # 29 and 0 deals
    assert conforming_by_quarter(cases, ["2026Q2"], min_n=29)["2026Q2"] == 1.0  # the 5 open deals do not count
    assert conforming_by_quarter(cases.drop(columns="closed_at"), ["2026Q1"]).isna().all()


def _many_variants(n_cases: int = 1_500, seed: int = 3) -> pd.DataFrame:
    """A log of an order process whose cases follow one main path with random detours: a few common
    variants and a long tail of rare ones, as real logs have."""
    rng = np.random.default_rng(seed)
    main = ["Order", "Check", "Approve", "Ship", "Invoice", "Pay"]
    rows = []
    for case in range(n_cases):
        trace = list(main)
        for _ in range(rng.poisson(1.2)):  # detours: an extra step, a step skipped, two swapped
            i = int(rng.integers(1, len(trace)))
            kind = rng.integers(3)
            if kind == 0:
                trace.insert(i, str(rng.choice(["Call", "Remind", "Edit", "Reject", "Check"])))
            elif kind == 1 and len(trace) > 2:
                del trace[i]
            elif i < len(trace) - 1:
                trace[i], trace[i + 1] = trace[i + 1], trace[i]
        start = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=case)
        rows += [(f"o{case}", a, start + pd.Timedelta(hours=k)) for k, a in enumerate(trace)]
    return pd.DataFrame(rows, columns=["case_id", "activity", "timestamp"])


KEYS = ("log_fitness", "average_trace_fitness", "percentage_of_fitting_traces")


def test_discovered_fitness_of_a_long_tail_is_estimated_from_a_sample_with_an_honest_error():
    log = _many_variants()
    exact = cf.discovered_fitness(log, progress=False)
    counts = log.groupby("case_id")["activity"].agg(tuple).value_counts()
    assert exact["variants"] == len(counts) > 200 and exact["replayed_sample"] == 0
    net, im, fm = pm4py.discover_petri_net_inductive(to_pm4py(log), noise_threshold=0.2)
    theirs = pm4py.fitness_token_based_replay(to_pm4py(log), net, im, fm)
    assert {k: exact[k] for k in KEYS} == pytest.approx({k: theirs[k] for k in KEYS})

    runs = [cf.discovered_fitness(log, max_replayed=100, seed=s, progress=False) for s in range(30)]
    first = runs[0]
    assert (first["replayed_most_frequent"], first["replayed_sample"]) == (50, 50)
    rare = counts.sort_values(ascending=False, kind="stable").iloc[50:].sum()
    assert first["share_of_cases_sampled"] == pytest.approx(rare / counts.sum())
    assert cf.discovered_fitness(log, max_replayed=100, seed=0, progress=False) == first  # seeded
    for key in KEYS:
        estimates = np.array([r[key] for r in runs])
        errors = np.array([r["standard_error"][key] for r in runs])
        assert (errors > 0).all()
        # Unbiased: the mean of 30 independent samples lies within 3 of its standard errors of the truth,
        assert abs(estimates.mean() - exact[key]) <= 3 * errors.mean() / np.sqrt(len(runs))
        # and the standard error it states is the spread its samples really have (within sampling noise).
        assert 0.6 <= estimates.std(ddof=1) / errors.mean() <= 1.5


def test_a_process_that_finishes_without_an_outcome_reaches_the_end_of_its_reference_model():
    """The repair log of the XES test file, finished by 'Archive Repair' (``ends``), not won or lost.
    By hand: Repair and Test Repair are optional, so R1, R3 and R4 fit; R5 is still open; R2 repeats
    Repair and Test Repair: one token missing for the second Repair and one left after the second
    Test Repair, of 9 consumed and 9 produced: fitness (1 - 1/9 + 1 - 1/9) / 2 = 8/9."""
    from pathlib import Path

    from workbench.profile import SalesProcessProfile

    profile = SalesProcessProfile(name="repair", stages=("Register", "Analyze Defect", "Repair", "Test Repair",
                                                         "Inform User"),
                                  won=(), lost=(), optional=("Repair", "Test Repair"), ends=("Archive Repair",),
                                  events_after_close="keep")
    log = read_event_log(Path(__file__).parent / "data" / "foreign" / "repair_lifecycle.xes").log
    fit = cf.token_replay_fitness(log, profile=profile, progress=False).set_index("case_id")
    assert fit["fitness"].to_dict() == pytest.approx({"R1": 1.0, "R2": 8 / 9, "R3": 1.0, "R4": 1.0, "R5": 1.0})
    assert (fit.loc["R2", ["missing", "remaining", "consumed", "produced"]] == [1, 1, 9, 9]).all()
    aligned = cf.variant_alignments(log, profile=profile, progress=False).set_index("variant")
    assert aligned["aligned"].all()  # before, no finished case could reach the model's end
    straight = ("Register", "Analyze Defect", "Inform User", "Archive Repair")
    assert aligned.loc[[straight], "deviations"].item() == "conforms"
    loop = ("Register", "Analyze Defect", "Repair", "Test Repair", "Repair", "Test Repair", "Inform User",
            "Archive Repair")
    assert aligned.loc[[loop], "deviations"].item() == "out of order or unexpected: Repair, Test Repair"


def test_reference_fitness_is_the_mean_of_the_per_case_replay_and_pm4py_log_fitness():
    log = make_log()
    figures = cf.reference_fitness(log, progress=False)
    fit = cf.token_replay_fitness(log, progress=False)
    assert figures["replayed_sample"] == 0 and figures["standard_error"]["log_fitness"] == 0.0
    assert figures["variants"] == log.groupby("case_id")["activity"].agg(tuple).nunique()
    assert figures["average_trace_fitness"] == pytest.approx(fit["fitness"].mean())
    assert figures["percentage_of_fitting_traces"] == pytest.approx(100 * fit["is_fit"].mean())
    # the log fitness of the closed deals is pm4py's own on the reference net
    closed = log[log["case_id"].isin(fit.loc[fit["closed"], "case_id"])]
    net, im, fm = cf.reference_model(PPVVC)
    theirs = pm4py.fitness_token_based_replay(to_pm4py(closed), net, im, fm)
    ours = cf.reference_fitness(closed, profile=PPVVC, progress=False)
    assert {k: ours[k] for k in KEYS} == pytest.approx({k: theirs[k] for k in KEYS})


def test_reference_fitness_of_a_long_tail_is_estimated_from_a_sample_with_an_honest_error():
    from workbench.profile import SalesProcessProfile

    log = _many_variants()
    orders = SalesProcessProfile(name="orders", stages=("Order", "Check", "Approve", "Ship", "Invoice"), won=("Pay",),
                                 lost=("Reject",), optional=("Approve",), loops=("Call",), events_after_close="keep")
    exact = cf.reference_fitness(log, profile=orders, progress=False)
    per_case = cf.token_replay_fitness(log, profile=orders, progress=False)
    assert exact["average_trace_fitness"] == pytest.approx(per_case["fitness"].mean())
    assert exact["variants"] > 200 and exact["replayed_sample"] == 0
    runs = [cf.reference_fitness(log, profile=orders, max_replayed=100, seed=s, progress=False) for s in range(30)]
    assert (runs[0]["replayed_most_frequent"], runs[0]["replayed_sample"]) == (50, 50)
    for key in KEYS[:2]:  # few rare variants fit, so most samples' share of fitting deals has no spread
        estimates = np.array([r[key] for r in runs])
        errors = np.array([r["standard_error"][key] for r in runs])
        assert (errors > 0).all() and len(set(estimates)) > 1
        assert abs(estimates.mean() - exact[key]) <= 3 * errors.mean() / np.sqrt(len(runs))
        assert 0.6 <= estimates.std(ddof=1) / errors.mean() <= 1.5
    shares = np.array([r[KEYS[2]] for r in runs])
    assert abs(shares.mean() - exact[KEYS[2]]) <= 3 * shares.std(ddof=1) / np.sqrt(len(runs))
    notes = cf.estimate_notes(**{"the reference process": (runs[0], "average_trace_fitness"),
                                 "the map": (exact, "log_fitness")})
    error = 2 * runs[0]["standard_error"]["average_trace_fitness"]
    assert notes == [f"Fitness is estimated: of the log's {exact['variants']:,} variants, the 50 most common were "
                     f"replayed, and 50 picked at random stand for the rarer ones, which hold "
                     f"{runs[0]['share_of_cases_sampled']:.0%} of the deals (the reference process give or take "
                     f"{error:.3f})."]
