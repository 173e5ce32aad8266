"""Campaign statistics (Leveugle sample size, Clopper-Pearson, SPFM/ASIL) and fault sampling."""

import math
from collections import Counter
from fractions import Fraction

import pytest

from fault_injection.faults import STRUCTURES, Site
from fault_injection.sampling import applicable_models, fault_space, per_structure_n, plan_faults, sample_size
from fault_injection.sites import model_sites
from fault_injection.stats import (BoundMethod, asil_for_spfm, beta_quantile, betainc, clopper_pearson,
                                   hardware_metrics, leveugle_sample_size, lower_bound, normal_quantile, spfm,
                                   upper_bound)
from hwgen.config import AcceleratorConfig


# ----------------------------------------------------------------------------- Leveugle
def test_leveugle_large_n():
    assert abs(normal_quantile(0.99) - 2.5758293) < 1e-6
    n = leveugle_sample_size(10**15, 0.01, 0.99)
    assert n == 16588  # t^2 p (1-p) / e^2 = 2.5758^2 * 0.25 / 1e-4
    assert 16_500 < n < 16_700
    assert leveugle_sample_size(10**15, 0.05, 0.95) == 385  # the textbook figure


def test_leveugle_finite_population():
    assert leveugle_sample_size(1, 0.01, 0.99) == 1
    assert leveugle_sample_size(100, 0.01, 0.99) <= 100
    assert leveugle_sample_size(100, 0.01, 0.99) >= 99
    # formula by hand for a middle-sized space
    N, e, t = 50_000, 0.01, normal_quantile(0.99)
    assert leveugle_sample_size(N, e, 0.99) == math.ceil(N / (1 + e * e * (N - 1) / (t * t * 0.25)))
    # a known rate below 0.5 needs fewer injections
    assert leveugle_sample_size(10**9, 0.01, 0.99, p=0.1) < leveugle_sample_size(10**9, 0.01, 0.99)
    with pytest.raises(ValueError):
        leveugle_sample_size(100, 0.0, 0.99)
    with pytest.raises(ValueError):
        leveugle_sample_size(100, 0.01, 1.0)


# ----------------------------------------------------------------------------- exact intervals
def _binom_cdf(k: int, n: int, p: Fraction) -> Fraction:
    return sum(math.comb(n, i) * p**i * (1 - p)**(n - i) for i in range(k + 1))


@pytest.mark.parametrize("a,b,x", [(1, 1, 0.3), (2, 5, 0.1), (5, 2, 0.9), (3, 30, 0.2), (10, 40, 0.2), (50, 3, 0.95)])
def test_betainc_against_binomial_sum(a, b, x):
    # for integer a, b: I_x(a, b) = P(Binomial(a + b - 1, x) >= a)
    n = a + b - 1
    exact = 1 - _binom_cdf(a - 1, n, Fraction(x))
    assert abs(betainc(a, b, x) - float(exact)) < 1e-13


def test_beta_quantile_inverts():
    for a, b, q in [(1, 460, 0.99), (9, 1692, 0.99), (3.5, 7.25, 0.3), (200, 800, 0.01)]:
        x = beta_quantile(q, a, b)
        assert abs(betainc(a, b, x) - q) < 1e-11


def test_upper_bound_zero_failures():
    u = upper_bound(0, 460, 0.99)
    assert u == pytest.approx(1 - 0.01 ** (1 / 460), abs=1e-15)
    assert 0.0099 < u < 0.0100  # ~460 clean injections show a dangerous fraction <= 1 % at 99 %
    assert upper_bound(0, 459, 0.99) < 0.01 + 3e-5
    for n in (1, 10, 1000, 123_457):
        assert upper_bound(0, n, 0.9) == pytest.approx(1 - 0.1 ** (1 / n), rel=1e-12)


@pytest.mark.parametrize("k,n", [(1, 10), (3, 50), (8, 1700), (20, 300), (49, 50)])
def test_upper_bound_is_exact(k, n):
    # the one-sided upper bound u solves P(X <= k; n, u) = alpha
    u = upper_bound(k, n, 0.99)
    assert abs(float(_binom_cdf(k, n, Fraction(u))) - 0.01) < 1e-9
    lo = lower_bound(k, n, 0.99)
    # P(X >= k; n, lo) = alpha
    assert abs(float(1 - _binom_cdf(k - 1, n, Fraction(lo))) - 0.01) < 1e-9


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(5, 20, 0.95)  # R: binom.test(5, 20)$conf.int
    assert lo == pytest.approx(0.08657147, abs=1e-8)
    assert hi == pytest.approx(0.49104587, abs=1e-8)
    lo, hi = clopper_pearson(0, 10, 0.95)
    assert lo == 0.0 and hi == pytest.approx(0.30849710781876083, abs=1e-12)
    lo, hi = clopper_pearson(10, 10, 0.95)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.30849710781876083, abs=1e-12)
    lo, hi = clopper_pearson(50, 1000, 0.99)
    assert lo < 0.05 < hi
    with pytest.raises(ValueError):
        clopper_pearson(3, 2, 0.95)


def test_design_facts():
    # DESIGN.md: ~460 injections if none fail; more when some fail
    assert upper_bound(0, 460, 0.99) <= 0.01
    assert upper_bound(8, 1700, 0.99) == pytest.approx(0.0102, abs=2e-4)
    assert upper_bound(8, 2000, 0.99) < 0.01
    assert upper_bound(96, 12_000, 0.99) == pytest.approx(0.0101, abs=2e-4)
    # a +-1 % two-sided margin cannot show <= 1 %: the upper end lies above
    lo, hi = clopper_pearson(166, 16_588, 0.99)
    assert hi > 0.01


# ----------------------------------------------------------------------------- SPFM / ASIL
def test_asil_thresholds():
    assert asil_for_spfm(0.89) is None
    assert asil_for_spfm(0.90) == "B"
    assert asil_for_spfm(0.969) == "B"
    assert asil_for_spfm(0.97) == "C"
    assert asil_for_spfm(0.995) == "D"


def test_spfm_single_structure_matches_bound():
    r = spfm({"acc_buf": {"bits": 1000, "n": 460, "dangerous": 0}}, fit_per_bit=1e-3, confidence=0.99)
    assert r.total_fit == pytest.approx(1.0)
    assert r.spfm == 1.0
    assert r.spfm_lower == pytest.approx(1 - upper_bound(0, 460, 0.99))
    assert r.asil == "D" and r.asil_point == "D"
    assert r.lfm is None and any("LFM" in n and "hardware_metrics" in n for n in r.notes)


def test_spfm_weighting_and_methods():
    structs = {
        "a_spad": {"bits": 9000, "n": 900, "dangerous": 9},    # 1 %
        "controller": {"bits": 1000, "n": 100, "dangerous": 50},  # 50 %
    }
    r = spfm(structs, fit_per_bit=2e-4, confidence=0.9)
    assert r.total_fit == pytest.approx(2.0)
    assert r.dangerous_fit == pytest.approx(2e-4 * (9000 * 0.01 + 1000 * 0.5))
    assert r.spfm == pytest.approx(1 - (90 + 500) / 10_000)
    per = {s.structure: s for s in r.structures}
    # Bonferroni: each structure at 1 - 0.1 / 2
    assert per["a_spad"].upper == pytest.approx(upper_bound(9, 900, 0.95))
    assert r.spfm_lower == pytest.approx(1 - (9000 * per["a_spad"].upper + 1000 * per["controller"].upper) / 10_000)
    assert r.spfm_lower < r.spfm
    pooled = spfm(structs, fit_per_bit=2e-4, confidence=0.9, method="pooled")
    assert pooled.spfm_lower == pytest.approx(1 - upper_bound(59, 1000, 0.9))
    # per-structure FIT/bit
    r2 = spfm(structs, fit_per_bit={"a_spad": 1e-4, "controller": 1e-3}, confidence=0.9)
    assert r2.total_fit == pytest.approx(0.9 + 1.0)
    assert r.to_dict()["structures"][0]["structure"] == "a_spad"
    # a structure that was never injected counts as fully dangerous
    r3 = spfm({**structs, "qtable": {"bits": 100, "n": 0, "dangerous": 0}}, 1e-4, 0.9)
    assert [s.upper for s in r3.structures if s.structure == "qtable"] == [1.0]


def test_spfm_alone_and_the_joint_metrics_agree_on_the_estimate():
    """spfm() bounds SPFM by itself; hardware_metrics() bounds it together with LFM and PMHF, so with the
    same counts its point estimate is the same and its bound is lower (alpha shared by twice the bounds)."""
    structs = {"a_spad": {"bits": 9000, "n": 900, "dangerous": 9}, "controller": {"bits": 1000, "n": 100,
                                                                                "dangerous": 50}}
    counts = {s: {"masked": v["n"] - v["dangerous"], "sdc": v["dangerous"]} for s, v in structs.items()}
    bits = {s: v["bits"] for s, v in structs.items()}
    for method in BoundMethod:
        alone = spfm(structs, fit_per_bit=2e-4, confidence=0.9, method=method.value)
        joint = hardware_metrics(bits, counts, fit=2e-4, confidence=0.9, method=method)
        assert joint.spfm == pytest.approx(alone.spfm) and joint.total_fit == pytest.approx(alone.total_fit)
        assert joint.spfm_lower < alone.spfm_lower
    # Bonferroni: the joint bound is spfm()'s at twice the number of bounds (alpha / 4 instead of alpha / 2)
    joint = hardware_metrics(bits, counts, fit=2e-4, confidence=0.9)
    assert joint.spfm_lower == pytest.approx(1 - (9000 * upper_bound(9, 900, 0.975)
                                                  + 1000 * upper_bound(50, 100, 0.975)) / 10_000)


# ----------------------------------------------------------------------------- sampling
CFG = AcceleratorConfig()
SITES = model_sites(CFG)


def test_allocation_proportional_with_minimum():
    counts = per_structure_n(SITES, 1000, 2000)
    assert sum(counts.values()) == 2000
    assert set(counts) == {s.structure for s in SITES}  # every structure the design has
    assert min(counts.values()) >= 1
    bits = {s: 0 for s in counts}
    for site in SITES:
        bits[site.structure] += site.bits
    total = sum(bits.values())
    for s, k in counts.items():
        assert abs(k - 2000 * bits[s] / total) <= len(counts) + 1
    few = per_structure_n(SITES, 1000, 3)
    assert sum(few.values()) == 3 and few["acc_buf"] >= 1
    # Leveugle n when only margin/confidence are given
    n = sample_size(SITES, 1000, 0.01, 0.99)
    assert sum(per_structure_n(SITES, 1000, margin=0.01, confidence=0.99).values()) == n
    each = per_structure_n(SITES, 1000, margin=0.05, confidence=0.95, each=True)
    assert each["acc_buf"] == leveugle_sample_size(fault_space([s for s in SITES if s.structure == "acc_buf"], 1000),
                                                   0.05, 0.95)


def test_allocation_capped_by_population():
    sites = [Site("pc", 2), Site("a_spad", 4, 2, "mem")]
    counts = per_structure_n(sites, 3, 100)
    assert counts == {"a_spad": 24, "controller": 6}  # everything there is
    faults = plan_faults(sites, 3, 100, seed=1)
    assert len(faults) == 30 and len(set(faults)) == 30


def test_plan_faults_deterministic_and_valid():
    cycles = 5000
    a = plan_faults(SITES, cycles, 3000, seed=7, models=("seu", "mbu"), mbu_nbits=3)
    b = plan_faults(SITES, cycles, 3000, seed=7, models=("seu", "mbu"), mbu_nbits=3)
    c = plan_faults(SITES, cycles, 3000, seed=8, models=("seu", "mbu"), mbu_nbits=3)
    assert a == b and a != c
    assert len(a) == 3000 and len(set(a)) == 3000
    by_name = {s.name: s for s in SITES}
    for f in a:
        s = by_name[f.site]
        assert 0 <= f.cycle < cycles
        assert 0 <= f.word < s.depth
        assert 0 <= f.bit and f.bit + f.nbits <= s.width
        if f.model == "mbu":
            assert s.kind == "mem" and f.nbits == 3
        else:
            assert f.model == "seu" and f.nbits == 1
    per = Counter(f.structure for f in a)
    assert per == Counter({k: v for k, v in per_structure_n(SITES, cycles, 3000).items() if v})
    # report order: grouped by structure
    order = [f.structure for f in a]
    firsts = list(dict.fromkeys(order))
    assert firsts == [s for s in STRUCTURES if s in per]
    mem_models = Counter(f.model for f in a if by_name[f.site].kind == "mem")
    assert mem_models["mbu"] > 0.4 * sum(mem_models.values())


def test_plan_faults_roughly_uniform():
    faults = plan_faults(SITES, 100, 8000, seed=3)
    acc = [f for f in faults if f.site == "acc_buf"]
    # words, bits and cycles spread over their ranges
    assert len({f.word for f in acc}) > 200
    assert len({f.bit for f in acc}) > 200
    mean_cycle = sum(f.cycle for f in faults) / len(faults)
    assert 45 < mean_cycle < 55
    # within pe_operands, a_reg and b_reg (same width) are hit about equally
    ops = Counter(f.site.rsplit(".", 1)[1] for f in faults if f.structure == "pe_operands")
    assert abs(ops["a_reg"] - ops["b_reg"]) < 0.3 * (ops["a_reg"] + ops["b_reg"])


def test_plan_faults_models():
    only_mbu = plan_faults(SITES, 100, 50, seed=1, models=("mbu",))
    assert len(only_mbu) == 50 and {f.site for f in only_mbu} <= {"a_spad", "w_spad", "acc_buf"}
    stuck = plan_faults(SITES, 100, 40, seed=1, models=("stuck0", "stuck1"))
    assert all(f.duration == 100 - f.cycle for f in stuck)
    stuck10 = plan_faults(SITES, 100, 40, seed=1, models=("stuck1",), stuck_duration=10)
    assert all(f.duration == 10 and f.model == "stuck1" for f in stuck10)
    assert applicable_models(Site("pc", 32), ("seu", "mbu")) == ("seu",)
    with pytest.raises(ValueError):
        plan_faults(SITES, 100, 10, models=("bogus",))
    assert len(plan_faults(SITES, 100, seed=2, margin=0.05, confidence=0.95)) == sample_size(SITES, 100, 0.05, 0.95)
