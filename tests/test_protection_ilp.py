"""Protection by ILP (fault_injection.protection, issue 11 item 4) against references built in this file.

* The ILP (and the module's own enumeration) equals an enumeration written here from the ratio forms of
  the bounds (no linearisation), with Clopper-Pearson bounds inverted here from an exact binomial sum: the
  least area, the choice when the optimum is unique, the bounds, the binding constraints; on random cases of
  3-5 structures with 2-3 options, feasible and infeasible (then the metric and the best achievable bound).
* A tiny case by hand: closed-form Clopper-Pearson bounds (k = 0: 1 - (alpha / J)^(1/n)), the SPFM and LFM
  lower bounds, which ASIL picks which mechanism, the infeasible ASIL D's best bound; and the same bounds
  from fault_injection.stats.hardware_metrics on the chosen design.
* Monotonicity: a stricter ASIL, or a higher confidence, never costs less area.
* Bad inputs: every error names its field and its limit.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from binomial_reference import binom_cdf, cp_upper
from fault_injection.protection import (AlphaSplit, Evidence, EvidenceSource, ProtectionError, ProtectionOption,
                                        ProtectionTargetError, Structure, brute_force_protection,
                                        choose_protection, predicted_evidence)
from fault_injection.stats import FitRates, Metric, hardware_metrics
from hwgen.safety import Mechanism

PAR, SEC = Mechanism.PARITY, Mechanism.SECDED
TARGETS = {"B": (0.90, 0.60), "C": (0.97, 0.80), "D": (0.99, 0.90)}  # ISO 26262-5 tables 4 and 5, written out


# ----------------------------------------------------------------------------- an independent Clopper-Pearson


# ----------------------------------------------------------------------------- an independent enumeration
def reference(structures, options, asil, *, fit, conf, watchdog=False, per_option=False):
    """Everything by enumeration over the ratio forms: returns (least area or None, optimal choices, bounds of
    every choice, binding metrics, (metric, best bound) when infeasible)."""
    t_s, t_l = TARGETS[asil]
    names = [s.name for s in structures]
    opts = {n: [o for o in options if o.structure == n] for n in names}
    injected = [o for o in options if sum(o.evidence.counts.values())]
    j = 2 * (len(injected) if per_option else len({o.structure for o in injected}))
    each = 1.0 - (1.0 - conf) / j
    rate = {"ff": fit.ff, "mem": fit.mem}

    def terms(s, o):
        c = o.evidence.counts
        n = sum(c.values())
        dang = c["sdc"] + (0 if watchdog else c["due"])
        lam = (s.bits + o.added_bits) * rate[s.kind]
        u_d = cp_upper(dang, n, each) if n else 1.0
        u_l = cp_upper(c["latent"], n, each) if n else 1.0
        return lam, lam * u_d, lam * u_l

    table = {}
    for combo in itertools.product(*(opts[n] for n in names)):
        t = [terms(s, o) for s, o in zip(structures, combo)]
        lam, d, l = (sum(x[i] for x in t) for i in range(3))
        spfm = 1 - d / lam
        lfm = 1 - l / (lam - d) if lam > d else 0.0
        key = tuple(o.mechanism for o in combo)
        table[key] = (sum(o.added_area for o in combo), max(0.0, spfm), max(0.0, lfm))

    def least(need_s, need_l):
        ok = [k for k, (_, s, l) in table.items()
              if (not need_s or s >= t_s - 1e-12) and (not need_l or l >= t_l - 1e-12)]
        return min((table[k][0] for k in ok), default=None), ok

    area, ok = least(True, True)
    if area is None:
        spfm_ok = [k for k, (_, s, _) in table.items() if s >= t_s - 1e-12]
        if not spfm_ok:
            return None, [], table, (), (Metric.SPFM, max(v[1] for v in table.values()))
        return None, [], table, (), (Metric.LFM, max(table[k][2] for k in spfm_ok))
    optimal = [k for k in ok if math.isclose(table[k][0], area, rel_tol=1e-9, abs_tol=1e-9)]
    binding = tuple(m for m, (a, b) in ((Metric.SPFM, (False, True)), (Metric.LFM, (True, False)))
                    if least(a, b)[0] < area - 1e-9 * max(1.0, area))
    return area, [dict(zip(names, k)) for k in optimal], table, binding, None


# ----------------------------------------------------------------------------- random small cases
def counts(rng, n, p_dang, p_lat, p_due=0.3):
    """Outcome counts of n injections: dangerous (sdc and some due), latent, the rest masked/caught."""
    d, l, rest = rng.multinomial(n, [p_dang, p_lat, 1 - p_dang - p_lat])
    due = int(rng.binomial(d, p_due))
    return {"masked": int(rest), "sdc": int(d - due), "due": due, "latent": int(l)}


def random_case(seed):
    rng = np.random.default_rng(seed)
    n_struct = int(rng.integers(3, 6))
    structures, options, applicable = [], [], {}
    for i in range(n_struct):
        name = f"s{i}"
        s = Structure(name, str(rng.choice(["ff", "mem"])), int(rng.integers(50, 5000)))
        structures.append(s)
        applicable[name] = (PAR, SEC)
        mechs = [None, PAR, SEC][: int(rng.integers(2, 4))]
        if rng.random() < 0.15:  # sometimes protection is mandatory: no unprotected option
            mechs = [PAR, SEC]
        p_d = rng.uniform(0.0, 0.3) * rng.choice([0.02, 1.0])
        p_l = rng.uniform(0.0, 0.5) * rng.choice([0.1, 1.0])
        for m in mechs:
            n = int(rng.integers(80, 600))
            if rng.random() < 0.05:
                n = 0  # no evidence: bounded fully dangerous and latent
            if m is None:
                ev = Evidence(counts(rng, n, p_d, p_l))
            else:
                c = counts(rng, n, p_d * rng.choice([0.0, 0.02, 0.2]), p_l * rng.uniform(0.1, 1.5))
                c["detected" if m is PAR else "corrected"] = c.pop("masked")
                ev = Evidence(c, EvidenceSource.MEASURED if rng.random() < 0.5 else EvidenceSource.PREDICTED)
            options.append(ProtectionOption(
                structure=name, mechanism=m, evidence=ev,
                added_bits=0 if m is None else int(s.bits // int(rng.choice([4, 8, 16]))),
                added_area=0.0 if m is None else float(rng.integers(1, 12))))  # integers: ties happen
    fit = FitRates(ff=float(rng.choice([1e-4, 3e-4])), mem=1e-4)
    asil = str(rng.choice(["B", "C", "D"]))
    conf = float(rng.choice([0.9, 0.99]))
    return structures, options, applicable, fit, asil, conf


def _key(choice):
    return tuple(choice.values())


@pytest.mark.parametrize("seed", range(40))
def test_ilp_equals_enumeration(seed):
    structures, options, applicable, fit, asil, conf = random_case(seed)
    kw = dict(fit=fit, confidence=conf, applicable=applicable)
    area, optimal, table, binding, infeasible = reference(structures, options, asil, fit=fit, conf=conf)
    if infeasible is not None:
        metric, best = infeasible
        for solve in (choose_protection, brute_force_protection):
            with pytest.raises(ProtectionTargetError) as e:
                solve(structures, options, asil, **kw)
            assert e.value.metric is metric and e.value.best == pytest.approx(best, rel=1e-9, abs=1e-12)
            assert table[_key(e.value.choice)][1 if metric is Metric.SPFM else 2] == pytest.approx(best, rel=1e-9)
            assert f"best achievable {metric} lower bound" in str(e.value) and f"is {100 * best:.3f}%" in str(e.value)
        return
    for solve in (choose_protection, brute_force_protection):
        got = solve(structures, options, asil, **kw)
        assert got.added_area == pytest.approx(area, rel=1e-9, abs=1e-9)
        assert got.choice in optimal
        if len(optimal) == 1:
            assert got.choice == optimal[0]
        _, spfm, lfm = table[_key(got.choice)]
        assert got.spfm_lower == pytest.approx(spfm, rel=1e-9) and got.lfm_lower == pytest.approx(lfm, rel=1e-9)
        assert got.spfm_lower >= TARGETS[asil][0] - 1e-12 and got.lfm_lower >= TARGETS[asil][1] - 1e-12
        assert got.binding == binding
        assert got.predicted == tuple(c.structure for c in got.structures if c.source is EvidenceSource.PREDICTED)
    assert brute_force_protection(structures, options, asil, **kw).optima == len(optimal)


def test_random_cases_cover_both_outcomes():
    """The 40 cases above are not all of one kind: feasible and infeasible by either metric, bindings."""
    seen = set()
    for seed in range(40):
        structures, options, _, fit, asil, conf = random_case(seed)
        area, _, _, binding, infeasible = reference(structures, options, asil, fit=fit, conf=conf)
        seen.add(("infeasible", infeasible[0]) if infeasible else ("feasible", area > 0))
        seen.update(("binding", m) for m in binding)
    assert seen == {("feasible", False), ("feasible", True), ("infeasible", Metric.SPFM), ("infeasible", Metric.LFM),
                    ("binding", Metric.SPFM), ("binding", Metric.LFM)}, seen


@pytest.mark.parametrize("seed", range(12))
def test_alpha_split_over_options(seed):
    """AlphaSplit.OPTIONS: 2 bounds per injected option, equal to the enumeration with that J, never cheaper
    than the split over structures (its bounds are looser)."""
    structures, options, applicable, fit, asil, conf = random_case(100 + seed)
    kw = dict(fit=fit, confidence=conf, applicable=applicable)
    area, optimal, _, _, infeasible = reference(structures, options, asil, fit=fit, conf=conf, per_option=True)
    if infeasible:
        with pytest.raises(ProtectionTargetError):
            choose_protection(structures, options, asil, alpha_split="options", **kw)
        return
    got = choose_protection(structures, options, asil, alpha_split=AlphaSplit.OPTIONS, **kw)
    assert got.added_area == pytest.approx(area, abs=1e-9) and got.choice in optimal
    assert got.bounds == 2 * sum(1 for o in options if o.evidence.n)
    assert got.added_area >= choose_protection(structures, options, asil, **kw).added_area - 1e-9


# ----------------------------------------------------------------------------- a tiny case by hand
# a: 1000 SRAM bits at 1e-3 FIT/bit (1 FIT); SECDED adds 100 check bits (1.1 FIT) and 7 area units.
# b: 500 flip-flops at 2e-3 FIT/bit (1 FIT), no mechanism.
TINY_S = [Structure("a", "mem", 1000), Structure("b", "ff", 500)]
TINY_O = [
    ProtectionOption(structure="a", mechanism=None, evidence=Evidence({"masked": 190, "sdc": 10})),
    ProtectionOption(structure="a", mechanism="secded", added_bits=100, added_area=7.0,
                     evidence=Evidence({"masked": 180, "corrected": 20, "n": 200})),
    ProtectionOption(structure="b", mechanism=None, evidence=Evidence({"masked": 396, "latent": 4})),
]
TINY_FIT = FitRates(ff=2e-3, mem=1e-3)
TINY_APPLICABLE = {"a": (SEC,)}


def u0(n, each):
    """Clopper-Pearson upper bound for 0 of n, in closed form."""
    return 1.0 - (1.0 - each) ** (1.0 / n)


def test_tiny_case_by_hand():
    each = 1 - 0.01 / 4  # 2 structures x (dangerous, latent) at 99 %
    kw = dict(fit=TINY_FIT, confidence=0.99, applicable=TINY_APPLICABLE)
    # unprotected: D+ = 1 x u(10 of 200) + 1 x u(0 of 400); L+ = u(0 of 200) + u(4 of 400); Lambda = 2
    d_none = cp_upper(10, 200, each) + u0(400, each)
    l_none = u0(200, each) + cp_upper(4, 400, each)
    # SECDED on a: D+ = 1.1 x u(0 of 200) + u(0 of 400); L+ = 1.1 x u(0 of 200) + u(4 of 400); Lambda = 2.1
    d_sec = 1.1 * u0(200, each) + u0(400, each)
    l_sec = 1.1 * u0(200, each) + cp_upper(4, 400, each)
    spfm_none, spfm_sec = 1 - d_none / 2, 1 - d_sec / 2.1
    lfm_none, lfm_sec = 1 - l_none / (2 - d_none), 1 - l_sec / (2.1 - d_sec)
    # where they lie: unprotected meets B, SECDED meets C but not D
    assert 0.90 < spfm_none < 0.97 < spfm_sec < 0.99 and min(lfm_none, lfm_sec) > 0.9
    # the defining equation of the bound with k > 0, against the closed form of the test's inverse
    assert binom_cdf(10, 200, cp_upper(10, 200, each)) == pytest.approx(0.0025, rel=1e-9)

    b = choose_protection(TINY_S, TINY_O, "B", **kw)
    assert b.choice == {"a": None, "b": None} and b.added_area == 0 and b.binding == ()
    assert b.spfm_lower == pytest.approx(spfm_none, rel=1e-12) and b.lfm_lower == pytest.approx(lfm_none, rel=1e-12)
    assert b.bounds == 4 and b.bound_confidence == pytest.approx(each)

    c = choose_protection(TINY_S, TINY_O, "C", **kw)
    assert c.choice == {"a": SEC, "b": None} and c.added_area == 7.0 and c.added_bits == 100
    assert c.total_fit == pytest.approx(2.1) and c.binding == (Metric.SPFM,)
    assert c.spfm_lower == pytest.approx(spfm_sec, rel=1e-12) and c.lfm_lower == pytest.approx(lfm_sec, rel=1e-12)
    assert c.dangerous_fit_upper == pytest.approx(d_sec, rel=1e-12)
    assert c.allowance_used[Metric.SPFM] == pytest.approx((1 - spfm_sec) / 0.03)
    a = next(s for s in c.structures if s.structure == "a")
    assert a.raw_fit == pytest.approx(1.1) and a.bits == 1100 and a.n == 200 and a.dangerous == 0

    with pytest.raises(ProtectionTargetError) as e:
        choose_protection(TINY_S, TINY_O, "D", **kw)
    assert e.value.metric is Metric.SPFM and e.value.best == pytest.approx(spfm_sec, rel=1e-12)
    assert e.value.choice == {"a": SEC, "b": None}
    assert str(e.value) == (f"ASIL D at 99% one-sided confidence: no choice of mechanisms meets SPFM >= 99%; the "
                            f"best achievable SPFM lower bound is {100 * spfm_sec:.3f}% (a=secded, b=none)")


def test_tied_optima():
    """Parity at SECDED's area and evidence: two least-area choices; the ILP returns one of them, the
    enumeration counts both and prefers the higher SPFM bound (parity's: fewer check bits, less FIT)."""
    opts = TINY_O + [ProtectionOption(structure="a", mechanism="parity", added_bits=10, added_area=7.0,
                                      evidence=Evidence({"masked": 180, "detected": 20}))]
    kw = dict(fit=TINY_FIT, applicable={"a": (PAR, SEC)})
    ilp = choose_protection(TINY_S, opts, "C", **kw)
    bf = brute_force_protection(TINY_S, opts, "C", **kw)
    assert ilp.choice["a"] in (PAR, SEC) and ilp.added_area == bf.added_area == 7.0
    secded_only = choose_protection(TINY_S, TINY_O, "C", fit=TINY_FIT, applicable=TINY_APPLICABLE)
    assert bf.optima == 2 and bf.choice["a"] is PAR and bf.spfm_lower > secded_only.spfm_lower


def test_tiny_case_equals_hardware_metrics():
    """The chosen design's bounds are those stats.hardware_metrics (Bonferroni) gives that design's campaign."""
    c = choose_protection(TINY_S, TINY_O, "C", fit=TINY_FIT, applicable=TINY_APPLICABLE)
    m = hardware_metrics({("a", "mem"): 1100, ("b", "ff"): 500},
                         {("a", "mem"): TINY_O[1].evidence.counts, ("b", "ff"): TINY_O[2].evidence.counts},
                         fit=TINY_FIT, confidence=0.99)
    assert m.bounds == c.bounds
    assert c.spfm_lower == pytest.approx(m.spfm_lower, rel=1e-9) and c.lfm_lower == pytest.approx(m.lfm_lower, rel=1e-9)


def test_lfm_infeasible_names_lfm_and_its_best():
    """SPFM reachable, LFM not: the error is LFM's, with the best LFM bound among choices meeting SPFM."""
    opts = TINY_O[:2] + [ProtectionOption(structure="b", mechanism=None,
                                          evidence=Evidence({"masked": 200, "latent": 200}))]
    kw = dict(fit=TINY_FIT, applicable=TINY_APPLICABLE)
    with pytest.raises(ProtectionTargetError) as e:
        choose_protection(TINY_S, opts, "C", **kw)
    each = 1 - 0.01 / 4
    d = 1.1 * u0(200, each) + u0(400, each)
    best = 1 - (1.1 * u0(200, each) + cp_upper(200, 400, each)) / (2.1 - d)
    assert e.value.metric is Metric.LFM and e.value.best == pytest.approx(best, rel=1e-9) and best < 0.8
    assert "LFM >= 80% together with SPFM >= 97%" in str(e.value)
    assert "best achievable LFM lower bound among the choices meeting SPFM" in str(e.value)


def test_watchdog_counts_due_as_detected():
    opts = [ProtectionOption(structure="a", mechanism=None, evidence=Evidence({"masked": 190, "due": 10})),
            TINY_O[1], TINY_O[2]]
    kw = dict(fit=TINY_FIT, applicable=TINY_APPLICABLE)
    assert choose_protection(TINY_S, opts, "C", **kw).choice["a"] is SEC      # due is dangerous
    assert choose_protection(TINY_S, opts, "C", watchdog=True, **kw).choice["a"] is None


# ----------------------------------------------------------------------------- evidence sources
def test_predicted_evidence_and_its_record():
    base = Evidence({"masked": 150, "sdc": 30, "due": 5, "latent": 15, "n": 200})
    p = predicted_evidence(base, "parity")
    assert p.source is EvidenceSource.PREDICTED and p.n == 200
    assert p.counts["detected"] == 35 and p.counts["sdc"] == p.counts["due"] == 0 and p.counts["latent"] == 15
    s = predicted_evidence(base.counts, SEC)
    assert s.counts["corrected"] == 35 and "secded" in s.note
    structures = [Structure("a_spad", "mem", 4096), Structure("controller", "ff", 300)]
    options = [ProtectionOption(structure="a_spad", mechanism=None, evidence=base),
               ProtectionOption(structure="a_spad", mechanism=PAR, added_bits=512, added_area=3.0, evidence=p),
               ProtectionOption(structure="a_spad", mechanism=SEC, added_bits=2560, added_area=9.0, evidence=s),
               ProtectionOption(structure="controller", mechanism=None,
                                evidence=Evidence({"masked": 2995, "sdc": 5}))]
    for other in (m for m in Mechanism if m not in (PAR, SEC)):  # a checksum or voter: no prediction rule
        with pytest.raises(ProtectionError, match=f"mechanism '{other}': no prediction rule"):
            predicted_evidence(base, other)
    got = choose_protection(structures, options, "B", fit=1e-4)  # hwgen.safety.APPLICABLE
    assert got.choice == {"a_spad": PAR, "controller": None} and got.predicted == ("a_spad",)
    assert any("predicted, not measured" in n for n in got.notes)
    assert got.structures[0].source is EvidenceSource.PREDICTED and got.structures[1].source is EvidenceSource.MEASURED


# ----------------------------------------------------------------------------- monotonicity
def _area(structures, options, asil, **kw):
    try:
        return choose_protection(structures, options, asil, **kw).added_area
    except ProtectionTargetError:
        return math.inf


@pytest.mark.parametrize("seed", range(15))
def test_stricter_asil_never_costs_less(seed):
    structures, options, applicable, fit, _, conf = random_case(200 + seed)
    kw = dict(fit=fit, applicable=applicable)
    areas = [_area(structures, options, a, confidence=conf, **kw) for a in "BCD"]
    assert areas[0] <= areas[1] <= areas[2], areas
    assert _area(structures, options, "C", confidence=0.9, **kw) <= _area(structures, options, "C",
                                                                          confidence=0.999, **kw)


# ----------------------------------------------------------------------------- the pooled bound is tighter
def test_conservative_against_pooled():
    """On a self-weighting sample (injections proportional to lambda, one FIT per bit), the per-structure
    Bonferroni bound the ILP uses is below stats' pooled one: the price of making the ILP linear."""
    bits = {"s0": 4000, "s1": 2000, "s2": 1000}
    cnt = {"s0": {"masked": 3960, "sdc": 40}, "s1": {"masked": 1975, "sdc": 25}, "s2": {"masked": 990, "sdc": 10}}
    structures = [Structure(n, "mem", b) for n, b in bits.items()]
    options = [ProtectionOption(structure=n, mechanism=None, evidence=Evidence(c)) for n, c in cnt.items()]
    got = choose_protection(structures, options, "B", fit=1e-4, applicable={})
    pooled = hardware_metrics(bits, cnt, fit=1e-4, method="pooled")
    bonf = hardware_metrics(bits, cnt, fit=1e-4)
    assert got.spfm_lower == pytest.approx(bonf.spfm_lower, rel=1e-9)
    assert got.spfm_lower < pooled.spfm_lower < pooled.spfm


# ----------------------------------------------------------------------------- bad inputs
def _opt(**kw):
    base = dict(structure="a", mechanism=None, evidence=Evidence({"masked": 10}))
    return ProtectionOption(**{**base, **kw})


@pytest.mark.parametrize("make, message", [
    (lambda: Structure("a", "sram", 10), "structure 'a': kind must be one of ff, mem"),
    (lambda: Structure("a", "mem", 0), "structure 'a': bits must be a positive integer"),
    (lambda: Structure("", "mem", 5), "structure name must be a non-empty string"),
    (lambda: Evidence({"crash": 1}), "evidence outcome 'crash' is not one of masked"),
    (lambda: Evidence({"sdc": -1}), "evidence count of 'sdc' must be a non-negative integer"),
    (lambda: Evidence({"sdc": 1.5}), "evidence count of 'sdc' must be a non-negative integer"),
    (lambda: Evidence({"sdc": 3, "n": 4}), "evidence n = 4, but the outcomes sum to 3"),
    (lambda: Evidence({"sdc": 3}, source="guessed"), "evidence source must be one of measured, predicted"),
    (lambda: _opt(added_area=5.0), "the unprotected option adds no bits and no area"),
    (lambda: _opt(mechanism="parity", added_area=-1.0), "added_area must be a finite number >= 0"),
    (lambda: _opt(mechanism="parity", added_area=math.nan), "added_area must be a finite number >= 0"),
    (lambda: _opt(mechanism="parity", added_bits=-2), "added_bits must be a non-negative integer"),
    (lambda: _opt(mechanism="tmr"), f"mechanism must be None or one of {', '.join(Mechanism)}"),
    (lambda: _opt(evidence={"masked": 10}), "evidence must be an Evidence"),
    (lambda: predicted_evidence({"masked": 1}, "tmr"), f"mechanism 'tmr' is not one of {', '.join(Mechanism)}"),
])
def test_bad_records_named(make, message):
    """Each record refuses a field out of its domain, naming the field and the limit."""
    with pytest.raises(ProtectionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


S2 = [Structure("a_spad", "mem", 100), Structure("controller", "ff", 50)]
O2 = [ProtectionOption(structure="a_spad", mechanism=None, evidence=Evidence({"masked": 10})),
      ProtectionOption(structure="controller", mechanism=None, evidence=Evidence({"masked": 10}))]


@pytest.mark.parametrize("args, kw, message", [
    ((S2, O2, "A"), {}, "asil 'A': must be one of B, C, D"),
    ((S2, O2, "E"), {}, "asil 'E': must be one of B, C, D"),
    ((S2, O2, "D"), {"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
    ((S2, O2, "D"), {"fit": -1.0}, "fit: FIT per bit must be a positive finite number"),
    ((S2, O2, "D"), {"alpha_split": "pooled"}, "alpha_split must be one of structures, options"),
    ((S2, O2, "D"), {"watchdog": "yes"}, "watchdog must be True or False"),
    ((S2, O2, "D"), {"applicable": {"a_spad": ("tmr",)}}, "applicable must map structures to mechanisms"),
    (([], O2, "D"), {}, "structures: at least one structure is needed"),
    ((S2 + S2[:1], O2, "D"), {}, "structure 'a_spad': given twice"),
    ((S2[:1], O2, "D"), {}, "option controller=none: structure 'controller' is not among the structures"),
    ((S2, O2[:1], "D"), {}, "structure 'controller': no option"),
    ((S2, O2 + O2[:1], "D"), {}, "option a_spad=none: given twice"),
    ((S2, O2 + [ProtectionOption(structure="controller", mechanism="parity", added_area=1.0,
                                 evidence=Evidence({"masked": 10}))], "D"), {},
     "option controller=parity: controller can take no mechanism"),
    ((S2, O2 + [ProtectionOption(structure="a_spad", mechanism="parity", added_area=1.0,
                                 evidence=Evidence({"masked": 10}))], "D"), {"applicable": {"a_spad": ("secded",)}},
     "option a_spad=parity: a_spad can take secded"),
])
def test_bad_problems_named(args, kw, message):
    """The solvers refuse inconsistent problems before solving, naming the entry and the limit."""
    for solve in (choose_protection, brute_force_protection):
        with pytest.raises(ProtectionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            solve(*args, **kw)
