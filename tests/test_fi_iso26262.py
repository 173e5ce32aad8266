"""ISO 26262-5 hardware metrics of campaigns (issue 11 item 3) and the outcome vocabulary they read (item 2).

Every expected number here is computed in this file, independently of fault_injection.stats: the
Clopper-Pearson bounds by inverting an exact binomial sum by bisection, the metrics by the formulas of
ISO 26262-5 written out for small hand-made cases; the bounds' joint confidence by simulating campaigns.
The store's schema migration is checked on a version-1 file written here from the version-1 schema text.
"""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from binomial_reference import cp_upper, cp_lower
from fault_injection.faults import LEGACY_OUTCOMES, OUTCOMES, Fault, InjectionResult, Outcome, Site
from fault_injection.report import ReportError, build_report, campaign_report, to_json, to_markdown
from fault_injection.stats import (ASIL_PMHF_FIT, DEFAULT_FIT_PER_BIT_FF, DEFAULT_FIT_PER_BIT_MEM,
                                   DEFAULT_LIFETIME_HOURS, Asil, BoundMethod, FaultClass, FitRates, Metric,
                                   StatsError, asil_for_lfm, asil_for_pmhf, fault_class, hardware_metrics,
                                   lower_bound, supported_asil, upper_bound)
from fault_injection.store import READABLE_VERSIONS, SCHEMA_VERSION, CampaignStore, StoreError, check_file
from hwgen.config import AcceleratorConfig


# ----------------------------------------------------------------------------- an independent Clopper-Pearson


@pytest.mark.parametrize("k,n,conf", [(0, 100, 0.99), (2, 200, 0.9975), (8, 200, 0.9975), (10, 100, 0.9975),
                                      (40, 20_000, 0.995), (150, 1000, 0.8), (999, 1000, 0.95), (1, 3, 0.5)])
def test_clopper_pearson_against_binomial_inversion(k, n, conf):
    assert upper_bound(k, n, conf) == pytest.approx(cp_upper(k, n, conf), rel=1e-9, abs=1e-14)
    assert lower_bound(k, n, conf) == pytest.approx(cp_lower(k, n, conf), rel=1e-9, abs=1e-14)


# ----------------------------------------------------------------------------- vocabulary
def test_outcome_vocabulary_keeps_the_old_names():
    assert OUTCOMES == ("masked", "corrected", "detected", "latent", "sdc", "due")
    assert LEGACY_OUTCOMES == ("masked", "sdc", "due")
    assert Outcome.RESIDUAL is Outcome.SDC and Outcome("sdc") is Outcome.SDC
    assert Outcome.DUE == "due" and str(Outcome.LATENT) == "latent" and len(list(Outcome)) == 6
    assert InjectionResult(Outcome.SDC, 5) == InjectionResult("sdc", 5)


def test_fault_classes():
    expect = {"masked": FaultClass.SAFE, "corrected": FaultClass.MPF_DETECTED, "detected": FaultClass.MPF_DETECTED,
              "latent": FaultClass.MPF_LATENT, "sdc": FaultClass.SPF_RF, "due": FaultClass.SPF_RF}
    assert {o: fault_class(o) for o in OUTCOMES} == expect
    assert fault_class("due", watchdog=True) is FaultClass.MPF_DETECTED
    assert fault_class(Outcome.RESIDUAL, watchdog=True) is FaultClass.SPF_RF
    with pytest.raises(StatsError, match="outcome 'boom' is not one of masked"):
        fault_class("boom")


def test_fit_rates():
    assert FitRates() == FitRates(ff=DEFAULT_FIT_PER_BIT_FF, mem=DEFAULT_FIT_PER_BIT_MEM)
    assert 1e-4 <= DEFAULT_FIT_PER_BIT_MEM <= 1e-3 and DEFAULT_LIFETIME_HOURS > 0
    r = FitRates(ff=2e-4, mem=1e-4)
    assert (r.of("ff"), r.of("mem"), r.single) == (2e-4, 1e-4, None)
    assert FitRates.uniform(3e-4).single == 3e-4 and FitRates.uniform(3e-4).of(None) == 3e-4
    with pytest.raises(StatsError, match=r"flip-flops \(ff\) must be a positive finite number, got 0"):
        FitRates(ff=0)
    with pytest.raises(StatsError, match=r"SRAM \(mem\) must be a positive finite number, got inf"):
        FitRates(mem=math.inf)
    with pytest.raises(StatsError, match=r"SRAM \(mem\)"):
        FitRates(mem=True)
    with pytest.raises(StatsError, match="not split by site kind"):
        r.of(None)
    with pytest.raises(StatsError, match="neither 'ff' nor 'mem'"):
        r.of("dram")


# ----------------------------------------------------------------------------- hand-computed metrics
BITS = {("a_spad", "mem"): 1000, ("controller", "ff"): 500}
COUNTS = {("a_spad", "mem"): {"masked": 180, "corrected": 10, "latent": 8, "sdc": 2},
          ("controller", "ff"): {"masked": 90, "sdc": 5, "due": 5}}
FIT = FitRates(ff=2e-3, mem=1e-3)  # lambda = 1 FIT each, 2 FIT in all


def test_bonferroni_by_hand():
    conf, t = 0.99, 10_000.0
    m = hardware_metrics(BITS, COUNTS, fit=FIT, confidence=conf, lifetime_hours=t)
    # point: dangerous 2/200 of 1 FIT + 10/100 of 1 FIT; latent 8/200 of 1 FIT
    d, lat, total = 0.01 + 0.10, 0.04, 2.0
    assert m.total_fit == pytest.approx(total)
    assert m.spfm == pytest.approx(1 - d / total)
    assert m.lfm == pytest.approx(1 - lat / (total - d))
    assert m.pmhf_fit == pytest.approx(d + lat * total * t * 1e-9)
    # bounds: 2 injected strata x (dangerous, latent) = 4 bounds, each at 1 - 0.01 / 4
    each = 1 - 0.01 / 4
    d_up = cp_upper(2, 200, each) + cp_upper(10, 100, each)
    l_up = cp_upper(8, 200, each) + cp_upper(0, 100, each)
    assert m.bounds == 4 and m.method is BoundMethod.BONFERRONI
    assert m.dangerous_fit_upper == pytest.approx(d_up, rel=1e-9)
    assert m.latent_fit_upper == pytest.approx(l_up, rel=1e-9)
    assert m.spfm_lower == pytest.approx(1 - d_up / total, rel=1e-9)
    assert m.lfm_lower == pytest.approx(1 - l_up / (total - d_up), rel=1e-9)
    assert m.pmhf_fit_upper == pytest.approx(d_up + l_up * total * t * 1e-9, rel=1e-9)
    # SPFM >= ~87%: below ASIL B's 90%; LFM and PMHF meet D
    assert m.spfm_lower < 0.90 and m.lfm_lower > 0.9
    assert m.asil is Asil.A and m.asil_by_metric == {Metric.SPFM: Asil.A, Metric.LFM: Asil.D, Metric.PMHF: Asil.D}
    assert m.binding is Metric.SPFM and m.limiting_structure == "controller"  # 10 % of its faults dangerous
    assert "misses ASIL B's 90%" in m.reason and "controller" in m.reason and "ASIL A" in m.reason
    per = {s.structure: s for s in m.structures}
    assert per["controller"].dangerous_fit_upper == pytest.approx(cp_upper(10, 100, each), rel=1e-9)
    assert per["a_spad"].mpf_detected == 10 and per["a_spad"].mpf_latent == 8 and per["controller"].spf_rf == 10


def test_watchdog_counts_due_as_detected():
    m = hardware_metrics(BITS, COUNTS, fit=FIT, confidence=0.99, watchdog=True)
    each = 1 - 0.01 / 4
    d, d_up = 0.01 + 0.05, cp_upper(2, 200, each) + cp_upper(5, 100, each)
    assert m.spfm == pytest.approx(1 - d / 2) and m.spfm_lower == pytest.approx(1 - d_up / 2, rel=1e-9)
    assert {s.structure: s.mpf_detected for s in m.structures} == {"a_spad": 10, "controller": 5}


def test_pooled_by_hand():
    bits = {"a_spad": 2000, "controller": 1000}
    counts = {"a_spad": {"masked": 190, "latent": 6, "sdc": 4}, "controller": {"masked": 94, "sdc": 5, "due": 1}}
    m = hardware_metrics(bits, counts, fit=1e-3, confidence=0.95, method="pooled")
    # 300 injections in proportion to lambda (2 : 1): one bound on 10 dangerous and one on 6 latent of 300,
    # each at 1 - 0.05 / 2
    d_up, l_up = 3 * cp_upper(10, 300, 0.975), 3 * cp_upper(6, 300, 0.975)
    assert m.bounds == 2 and m.dangerous_fit_upper == pytest.approx(d_up, rel=1e-9)
    assert m.spfm_lower == pytest.approx(1 - d_up / 3, rel=1e-9)
    assert m.lfm_lower == pytest.approx(1 - l_up / (3 - d_up), rel=1e-9)
    assert m.spfm == pytest.approx(1 - (2 * 4 / 200 + 1 * 6 / 100) / 3)
    assert sum(s.dangerous_fit_upper for s in m.structures) == pytest.approx(d_up, rel=1e-9)
    # 150 instead of 200 a_spad injections: a_spad is owed 250 x 2/3 = 166.7, so 2 - 150 x 3/250 = 0.2 FIT
    # of it counts fully dangerous and fully latent
    short = {"a_spad": {"masked": 140, "latent": 6, "sdc": 4}, "controller": counts["controller"]}
    m2 = hardware_metrics(bits, short, fit=1e-3, confidence=0.95, method="pooled")
    assert m2.dangerous_fit_upper == pytest.approx(3 * cp_upper(10, 250, 0.975) + 0.2, rel=1e-9)
    assert m2.latent_fit_upper == pytest.approx(3 * cp_upper(6, 250, 0.975) + 0.2, rel=1e-9)
    assert any("not proportional" in n for n in m2.notes)


def test_kinds_of_equal_rate_merge_and_unequal_rates_split():
    split = {("acc_buf", "mem"): 900, ("acc_buf", "ff"): 100}
    counts = {("acc_buf", "mem"): {"masked": 88, "sdc": 2}, ("acc_buf", "ff"): {"masked": 5, "sdc": 5}}
    merged = hardware_metrics({"acc_buf": 1000}, {"acc_buf": {"masked": 93, "sdc": 7}}, fit=1e-3)
    same = hardware_metrics(split, counts, fit=1e-3)
    assert len(same.strata) == 1 and same.strata[0].kinds == ("ff", "mem")
    assert (same.spfm, same.spfm_lower) == pytest.approx((merged.spfm, merged.spfm_lower), rel=1e-12)
    # ff at 10x the SRAM rate: two strata, the flip-flops' 50 % dangerous weighted by their FIT
    two = hardware_metrics(split, counts, fit=FitRates(ff=1e-2, mem=1e-3))
    assert len(two.strata) == 2 and len(two.structures) == 1 and two.structures[0].fit_per_bit is None
    lam_mem, lam_ff = 0.9, 1.0
    assert two.spfm == pytest.approx(1 - (lam_mem * 2 / 90 + lam_ff * 5 / 10) / (lam_mem + lam_ff))
    with pytest.raises(StatsError, match="not split by site kind"):
        hardware_metrics({"acc_buf": 1000}, {"acc_buf": {"masked": 1}}, fit=FitRates(ff=1e-2, mem=1e-3))


def test_binding_metric_and_limiting_structure():
    # LFM binds: 40 % of a_spad's faults stay latent, nothing dangerous
    bits = {"a_spad": 1000, "controller": 1000}
    counts = {"a_spad": {"masked": 600, "latent": 400}, "controller": {"masked": 1000}}
    m = hardware_metrics(bits, counts, fit=1e-3, confidence=0.99)
    assert m.lfm == pytest.approx(1 - 0.4 / 2)
    assert m.asil is Asil.B and m.binding is Metric.LFM and m.limiting_structure == "a_spad"
    assert m.asil_by_metric[Metric.SPFM] is Asil.D and "LFM >=" in m.reason and "misses ASIL C's 80%" in m.reason
    # PMHF binds: 5,000 FIT of flip-flops, 0.2 % dangerous: SPFM meets D, PMHF does not
    big = hardware_metrics({"controller": 50_000_000}, {"controller": {"masked": 19_960, "sdc": 40}}, fit=1e-4,
                           confidence=0.99)
    d_up = 5000 * cp_upper(40, 20_000, 1 - 0.01 / 2)
    assert big.pmhf_fit_upper == pytest.approx(d_up + 5000 * cp_upper(0, 20_000, 0.995) * 5000 * 1e4 * 1e-9,
                                               rel=1e-9)
    assert big.asil_by_metric[Metric.SPFM] is Asil.D and big.pmhf_fit_upper > 10
    assert big.asil is Asil.C and big.binding is Metric.PMHF and big.limiting_structure == "controller"
    # everything meets D: the binding metric is the one nearest its D limit
    clean = hardware_metrics({"a_spad": 1000}, {"a_spad": {"masked": 2000}}, fit=1e-3, confidence=0.99)
    use_spfm = (1 - clean.spfm_lower) / 0.01
    use_lfm = (1 - clean.lfm_lower) / 0.10
    assert clean.asil is Asil.D and use_spfm > use_lfm and clean.binding is Metric.SPFM
    assert f"{100 * use_spfm:.0f}% of the allowance" in clean.reason


def test_asil_thresholds():
    assert asil_for_lfm(0.59) is None and asil_for_lfm(0.60) == "B" and asil_for_lfm(0.85) == "C"
    assert asil_for_lfm(0.90) == "D"
    assert asil_for_pmhf(ASIL_PMHF_FIT["D"]) == "C" and asil_for_pmhf(9.999) == "D"
    assert asil_for_pmhf(100.0) is None and asil_for_pmhf(99.9) == "C"
    assert supported_asil(0.995, 0.95, 5.0) is Asil.D
    assert supported_asil(0.995, 0.70, 5.0) is Asil.B
    assert supported_asil(0.98, 0.95, 50.0) is Asil.C
    assert supported_asil(0.80, 0.95, 5.0) is Asil.A


def test_uninjected_stratum_bounds_as_everything():
    m = hardware_metrics({"a_spad": 900, "qtable": 100}, {"a_spad": {"masked": 1000}}, fit=1e-3, confidence=0.9)
    per = {s.structure: s for s in m.structures}
    assert per["qtable"].dangerous_fit_upper == pytest.approx(0.1) and per["qtable"].latent_fit_upper == 0.1
    assert m.bounds == 2 and any("without injections" in n for n in m.notes)
    assert m.spfm_lower == pytest.approx(1 - (0.9 * cp_upper(0, 1000, 0.95) + 0.1) / 1.0, rel=1e-9)


@pytest.mark.parametrize("kwargs,says", [
    ({"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
    ({"method": "bayes"}, "method must be one of bonferroni, pooled"),
    ({"lifetime_hours": -5}, "lifetime_hours must be a positive finite number"),
    ({"lifetime_hours": math.nan}, "lifetime_hours"),
    ({"watchdog": "yes"}, "watchdog must be True or False"),
    ({"fit": 0.0}, "FIT per bit must be a positive finite number"),
    ({"bits": {"a_spad": -1}}, "bits of 'a_spad' must be a non-negative integer"),
    ({"bits": {("a_spad", "dram"): 8}}, "neither a structure name nor a (structure, 'ff' | 'mem') pair"),
    ({"bits": {"a_spad": 0}}, "no structure with state bits"),
    ({"counts": {"a_spad": {"masked": 3, "zap": 1}}}, "outcome 'zap' is not one of"),
    ({"counts": {"a_spad": {"masked": -3}}}, "count of outcome 'masked' in 'a_spad' must be a non-negative"),
    ({"counts": {"a_spad": {"masked": 3, "n": 4}}}, "n = 4, but the outcomes sum to 3"),
    ({"counts": {"w_spad": {"masked": 3}}}, "counts given for 'w_spad', which has no state bits"),
])
def test_bad_input_names_the_field(kwargs, says):
    args = {"bits": {"a_spad": 100}, "counts": {"a_spad": {"masked": 3}}, **kwargs}
    with pytest.raises(StatsError) as e:
        hardware_metrics(args.pop("bits"), args.pop("counts"), **args)
    assert says in str(e.value)


# ----------------------------------------------------------------------------- coverage by simulation
# three strata with unequal odds (fractions of masked, corrected, detected, latent, sdc, due)
TRUE_P = {("a_spad", "mem"): (0.80, 0.05, 0.0, 0.08, 0.05, 0.02),
          ("controller", "ff"): (0.65, 0.0, 0.10, 0.05, 0.12, 0.08),
          ("qtable", "ff"): (0.96, 0.0, 0.0, 0.01, 0.03, 0.0)}
SIM_BITS = {("a_spad", "mem"): 3000, ("controller", "ff"): 1000, ("qtable", "ff"): 500}


def _truth(fit: FitRates, lifetime: float) -> tuple[float, float, float]:
    lam = {k: b * fit.of(k[1]) for k, b in SIM_BITS.items()}
    total = sum(lam.values())
    d = sum(lam[k] * (p[4] + p[5]) for k, p in TRUE_P.items())
    lat = sum(lam[k] * p[3] for k, p in TRUE_P.items())
    return 1 - d / total, 1 - lat / (total - d), d + lat * total * lifetime * 1e-9


@pytest.mark.parametrize("method,fit,alloc", [
    ("bonferroni", FitRates(ff=3e-4, mem=1e-4), (120, 80, 40)),    # any allocation
    ("pooled", FitRates.uniform(1e-4), (120, 40, 20)),              # self-weighting: n proportional to lambda
    ("pooled", FitRates(ff=3e-4, mem=1e-4), (120, 40, 20)),         # not proportional: the shortfall term
])
def test_joint_bounds_hold_at_the_stated_confidence(method, fit, alloc):
    conf, sims, lifetime = 0.8, 800, 1e7  # a long lifetime, so that the latent term weighs in the PMHF
    spfm_t, lfm_t, pmhf_t = _truth(fit, lifetime)
    rng = np.random.default_rng(11)
    held = point_held = 0
    for _ in range(sims):
        counts = {k: dict(zip(OUTCOMES, map(int, rng.multinomial(n, TRUE_P[k])))) for k, n in zip(SIM_BITS, alloc)}
        m = hardware_metrics(SIM_BITS, counts, fit=fit, confidence=conf, method=method, lifetime_hours=lifetime)
        held += m.spfm_lower <= spfm_t and m.lfm_lower <= lfm_t and m.pmhf_fit_upper >= pmhf_t
        point_held += m.spfm <= spfm_t and m.lfm <= lfm_t and m.pmhf_fit >= pmhf_t
    assert held / sims >= conf, (held / sims, method)
    # the simulation can tell a bound from an estimate: the point estimates alone hold far less often
    assert point_held / sims < 0.5


# ----------------------------------------------------------------------------- report
CFG = AcceleratorConfig(controller="in-order", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)
CAMPAIGN = {"confidence": 0.99, "planned": 300, "workload": "gemm:8x16x8", "config": CFG.to_dict(),
            "backend": "fake", "models": ["seu"], "seed": 1, "golden_cycles": 100, "margin": None}


def test_report_shows_the_new_outcomes_and_metrics():
    rep = build_report(CAMPAIGN, BITS, COUNTS, FIT)
    by = {r.structure: r for r in rep.structures}
    assert (by["a_spad"].corrected, by["a_spad"].latent, by["a_spad"].n) == (10, 8, 200)
    assert by["a_spad"].avf == pytest.approx(2 / 200) and by["a_spad"].raw_fit == pytest.approx(1.0)
    direct = hardware_metrics(BITS, COUNTS, fit=FIT, confidence=0.99)  # split FIT: Bonferroni
    assert rep.metrics == direct.to_dict()
    assert rep.asil == "none" and "supports no ASIL" in rep.verdict and rep.fit_per_bit is None
    md = to_markdown(rep)
    for text in ("| corrected | detected | latent |", "LFM = 1 -", "PMHF (FIT)", "0.002 for flip-flops",
                 "limiting structure controller", "10,000 h"):
        assert text in md, text
    js = json.loads(to_json(rep))
    assert js["fit_per_bit_ff"] == 2e-3 and js["metrics"]["binding"] == "SPFM"
    with pytest.raises(ReportError, match="FIT per bit must be a positive finite number"):
        build_report(CAMPAIGN, BITS, COUNTS, -1.0)
    with pytest.raises(ReportError, match="not split by site kind"):  # split FIT, bits per structure only
        build_report(CAMPAIGN, {"a_spad": 1000}, {"a_spad": {"masked": 5}}, FIT)


# ----------------------------------------------------------------------------- store: schema versions
V1_SCHEMA = """
CREATE TABLE campaign (
    id INTEGER PRIMARY KEY CHECK (id = 1), schema_version INTEGER NOT NULL, config TEXT NOT NULL,
    workload TEXT NOT NULL, seed INTEGER NOT NULL, backend TEXT NOT NULL, models TEXT NOT NULL,
    planned INTEGER NOT NULL, margin REAL, confidence REAL NOT NULL, golden_cycles INTEGER NOT NULL,
    created TEXT NOT NULL, hwgen_version TEXT NOT NULL);
CREATE TABLE sites (name TEXT PRIMARY KEY, structure TEXT NOT NULL, width INTEGER NOT NULL, depth INTEGER NOT NULL,
    kind TEXT NOT NULL);
CREATE TABLE faults (fault_index INTEGER PRIMARY KEY, site TEXT NOT NULL, structure TEXT NOT NULL,
    model TEXT NOT NULL, cycle INTEGER NOT NULL, word INTEGER NOT NULL, bit INTEGER NOT NULL, nbits INTEGER NOT NULL,
    duration INTEGER NOT NULL);
CREATE TABLE results (
    fault_index INTEGER PRIMARY KEY REFERENCES faults(fault_index),
    outcome TEXT NOT NULL CHECK (outcome IN ('masked', 'sdc', 'due')),
    cycles INTEGER NOT NULL, early_stop INTEGER NOT NULL, detail TEXT NOT NULL, finished TEXT NOT NULL);
PRAGMA application_id = 1752647241;
PRAGMA user_version = 1;
"""
V1_SITES = [Site("a_spad", 16, 64, "mem"), Site("pc", 12)]
V1_FAULTS = [Fault("a_spad", "seu", 3, 2, word=5), Fault("pc", "seu", 2, 1), Fault("pc", "seu", 7, 4),
             Fault("a_spad", "seu", 9, 0, word=1)]
V1_OUTCOMES = {0: "sdc", 1: "due", 2: "masked"}  # fault 3 still pending


def _v1_file(path):
    """A campaign file as hwgen wrote it at schema version 1."""
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(V1_SCHEMA)
    con.execute("INSERT INTO campaign VALUES (1, 1, ?, 'gemm:8x16x8', 7, 'fake', '[\"seu\"]', 4, NULL, 0.99, 100, "
                "'2025-01-01T00:00:00.000+00:00', '0.1.0')", (json.dumps(CFG.to_dict(), sort_keys=True),))
    con.executemany("INSERT INTO sites VALUES (?, ?, ?, ?, ?)",
                    [(s.name, s.structure, s.width, s.depth, s.kind) for s in V1_SITES])
    con.executemany("INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(i, f.site, f.structure, f.model, f.cycle, f.word, f.bit, f.nbits, f.duration)
                     for i, f in enumerate(V1_FAULTS)])
    con.executemany("INSERT INTO results VALUES (?, ?, 100, 0, '', 'x')", list(V1_OUTCOMES.items()))
    con.close()
    return path


def test_version_1_file_is_read_as_it_is(tmp_path):
    db = _v1_file(tmp_path / "old.sqlite")
    before = db.read_bytes()
    assert SCHEMA_VERSION == 2 and READABLE_VERSIONS == (1, 2) and check_file(db) == 1
    with CampaignStore.open(db, readonly=True) as st:
        assert st.schema_version == 1 and st.info.schema_version == 1
        assert {i: r.outcome for i, r in st.results().items()} == V1_OUTCOMES
        assert st.counts() == {"a_spad": {"n": 1, "masked": 0, "sdc": 1, "due": 0},
                               "controller": {"n": 2, "masked": 1, "sdc": 0, "due": 1}}
        assert st.tally()[("a_spad", "mem")]["sdc"] == 1 and st.tally()[("controller", "ff")]["latent"] == 0
    rep = campaign_report(db)
    assert rep.done == 3 and "ISO 26262-5 hardware metrics" in to_markdown(rep)
    from fault_injection.cli import main

    assert main(["fi", "report", "--db", str(db), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["asil"] in [a.value for a in Asil]
    assert db.read_bytes() == before  # reading never migrates


def test_version_1_file_migrates_when_opened_for_writing(tmp_path):
    db = _v1_file(tmp_path / "old.sqlite")
    with CampaignStore.open(db) as st:
        assert st.schema_version == 2 and st.info.schema_version == 2
        assert {i: r.outcome for i, r in st.results().items()} == V1_OUTCOMES
        st.add_results([(3, InjectionResult(Outcome.LATENT, 100, False, "state differs at the end"))])
        assert st.counts()["a_spad"] == {"n": 2, "masked": 0, "sdc": 1, "due": 0, "latent": 1}
    assert check_file(db) == 2
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone() == (2,)
        assert con.execute("SELECT schema_version FROM campaign").fetchone() == (2,)
        table = con.execute("SELECT sql FROM sqlite_master WHERE name = 'results'").fetchone()[0]
        assert "'latent'" in table and "results_v2" not in table
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master ORDER BY name")] == \
            ["campaign", "faults", "results", "sites", "sqlite_autoindex_sites_1"]
    finally:
        con.close()
    with CampaignStore.open(db) as st:  # a second open has nothing to migrate
        assert st.schema_version == 2 and st.n_results() == 4


def test_failed_migration_leaves_the_version_1_file(tmp_path, monkeypatch):
    import fault_injection.store as store

    db = _v1_file(tmp_path / "old.sqlite")
    before = db.read_bytes()
    # a results table that refuses 'sdc': the copy fails after the new table was created, mid-transaction
    monkeypatch.setattr(store, "OUTCOMES", ("masked", "due"))
    with pytest.raises(StoreError, match="cannot migrate the campaign database from schema version 1 to 2"):
        CampaignStore.open(db)
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]
    monkeypatch.undo()
    with CampaignStore.open(db, readonly=True) as st:
        assert st.schema_version == 1


def test_newer_version_is_refused_untouched(tmp_path):
    db = tmp_path / "new.sqlite"
    with CampaignStore.create(db, _info(), V1_SITES, V1_FAULTS) as st:
        assert st.schema_version == SCHEMA_VERSION
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 3")
    con.close()
    before = db.read_bytes()
    for call in (lambda: CampaignStore.open(db), lambda: CampaignStore.open(db, readonly=True),
                 lambda: check_file(db), lambda: campaign_report(db)):
        with pytest.raises(StoreError) as e:
            call()
        assert "schema version 3, written by a newer hwgen" in str(e.value) and str(db) in str(e.value)
    assert db.read_bytes() == before


def test_version_2_store_takes_every_outcome_and_tallies_by_kind(tmp_path):
    db = tmp_path / "c.sqlite"
    with CampaignStore.create(db, _info(), V1_SITES, V1_FAULTS) as st:
        st.add_results([(i, InjectionResult(o)) for i, o in enumerate(("corrected", "detected", "latent", "sdc"))])
        assert st.tally() == {
            ("a_spad", "mem"): {"n": 2, "masked": 0, "corrected": 1, "detected": 0, "latent": 0, "sdc": 1, "due": 0},
            ("controller", "ff"): {"n": 2, "masked": 0, "corrected": 0, "detected": 1, "latent": 1, "sdc": 0,
                                   "due": 0}}
    with pytest.raises(ValueError, match="outcome 'boom'"):
        with CampaignStore.open(db) as st:
            st.add_results([(0, InjectionResult("boom"))])


def _info():
    from fault_injection.store import CampaignInfo

    return CampaignInfo(CFG.to_dict(), "gemm:8x16x8", 7, "fake", ("seu",), 4, 0.99, 100, None)
