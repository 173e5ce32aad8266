"""The plan search (mappings.mapper), the explicit-plan lowering and the memory-split ILP (mappings.ilp).

* Every plan :func:`legal_plans` yields lowers, passes ``Program.check``, runs on
  the cycle model with the reference result and the analytical model's cycles;
  the capacities it assumes (``plan_needs``) are tight: one word less of any
  memory and the emitted program fails ``Program.check``.
* On small layers, :func:`best_plan`'s cycles equal the minimum over *all* legal
  plans of the cycle model's cycles (true brute force), and on a ``both`` array
  the per-layer dataflow choice picks the better dataflow.
* :func:`best_plan` (exhaustive or reduced search) is never worse than ``plan_tiles``.
* :func:`memory_split` (ILP) equals :func:`brute_force_memory_split`; a budget
  too small for anything raises MemorySplitError.
* An illegal explicit plan raises LoweringError.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.ilp import MemorySplitError, brute_force_memory_split, memory_split, sram_bytes
from mappings.lowering import LoweringError, check_plan, lower_conv2d, lower_gemm, plan_needs, plan_tiles
from mappings.mapper import best_plan, count_legal_plans, legal_plans, plan_cycles
from sim.cycle import CycleModel
from sim.perf import ConvShape, GemmShape, layer_perf
from sim.reference import ChannelQuant, Quant, conv2d_ref, gemm_ref
from sim.tiling import Plan
from plan_checks import assert_needs_tight

Q = Quant(1, 3, 0, -128, 127, False)

SMALL = {
    "both2": AcceleratorConfig(controller="in-order", name="both2", rows=2, cols=2, dataflow="both", a_spad_depth=12, w_spad_depth=8,
                               acc_depth=6),
    "r3c2": AcceleratorConfig(controller="in-order", name="r3c2", rows=3, cols=2, dataflow="both", a_spad_depth=10, w_spad_depth=9,
                              acc_depth=9, host_port_width=32),
    "os2": AcceleratorConfig(controller="in-order", name="os2", rows=2, cols=2, dataflow="os", a_spad_depth=8, w_spad_depth=6, acc_depth=8),
    "ws2": AcceleratorConfig(controller="in-order", name="ws2", rows=2, cols=3, dataflow="ws", a_spad_depth=9, w_spad_depth=6, acc_depth=7),
}

# (config, shape): small enough to run every legal plan on the cycle model
CASES = [
    ("both2", GemmShape(5, 7, 5)),
    ("both2", GemmShape(9, 3, 4)),
    ("r3c2", GemmShape(7, 8, 5)),
    ("os2", GemmShape(6, 9, 5)),
    ("ws2", GemmShape(7, 5, 7)),
    ("both2", ConvShape(5, 4, 2, 3, 3, 3, 1, 1)),
    ("r3c2", ConvShape(6, 5, 3, 2, 3, 4, (2, 1), (1, 0, 1, 1))),
    ("both2", ConvShape(4, 4, 4, 3, 3, 4, 1, 1, groups=2)),
    ("ws2", ConvShape(5, 5, 2, 3, 3, 2, 1, (1, 1, 0, 0), dilation=(1, 2))),
]


def _channel_quant(n: int) -> ChannelQuant:
    return ChannelQuant(np.arange(n) - n // 2, np.ones(n, dtype=np.int64), np.full(n, 2), 0, -128, 127)


def _lower(cfg, shape, plan, rng, per_channel=False):
    q = _channel_quant(shape.gemm[2] * getattr(shape, "groups", 1)) if per_channel else Q
    if isinstance(shape, GemmShape):
        A = rng.integers(-8, 8, (shape.M, shape.K))
        W = rng.integers(-8, 8, (shape.K, shape.N))
        return lower_gemm(cfg, A, W, q, plan=plan), gemm_ref(A, W, q)
    X = rng.integers(-8, 8, (shape.H, shape.W, shape.Cin))
    Wt = rng.integers(-8, 8, (shape.KH, shape.KW, shape.Cin // shape.groups, shape.Cout))
    prog = lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, q, groups=shape.groups, dilation=shape.dilation,
                        plan=plan)
    return prog, conv2d_ref(X, Wt, shape.stride, shape.pads, q, groups=shape.groups, dilation=shape.dilation)


# ------------------------------------------------------------------ (a) brute force on the cycle model
@pytest.mark.parametrize("cfg_name,shape", CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_best_plan_is_brute_force_optimum(cfg_name, shape):
    cfg = SMALL[cfg_name]
    rng = np.random.default_rng(1)
    M, K, N = shape.gemm
    plans = list(legal_plans(cfg, M, K, N))
    assert len(plans) == len(set(plans)) == count_legal_plans(cfg, M, K, N)
    assert 10 <= len(plans) <= 400
    model = CycleModel(cfg)
    cycles = {}
    for p in plans:
        check_plan(cfg, M, K, N, p)
        prog, ref = _lower(cfg, shape, p, rng)  # Program.check runs inside the lowering
        res = model.run(prog.image())
        np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
        assert res.cycles == layer_perf(cfg, shape, p).cycles
        cycles[p] = res.cycles
        assert_needs_tight(cfg, prog, plan_needs(cfg, M, K, N, p))
    best, perf, info = best_plan(cfg, shape)
    assert info["method"] == "exhaustive" and info["space"] == len(plans)
    assert perf.cycles == best.cost == min(cycles.values())
    assert cycles[dataclasses.replace(best, cost=0)] == perf.cycles
    assert perf.cycles <= info["baseline_cycles"]
    # the per-layer dataflow choice on a 'both' array: the better of the two dataflows' optima
    if cfg.dataflow == "both":
        per_df = {df: min(c for p, c in cycles.items() if p.dataflow == df) for df in ("os", "ws")}
        assert best.dataflow == min(per_df, key=per_df.get) or per_df["os"] == per_df["ws"]
        for df in ("os", "ws"):
            assert best_plan(cfg, shape, dataflow=df)[1].cycles == per_df[df]


def test_dataflow_choice_differs_per_layer():
    """On one 'both' array, a tall-skinny GEMM and a wide-K one prefer different dataflows."""
    cfg = SMALL["both2"]
    picks = {}
    for shape in (GemmShape(9, 3, 4), GemmShape(2, 40, 2), GemmShape(24, 2, 2), GemmShape(5, 7, 5)):
        plan, perf, _ = best_plan(cfg, shape)
        others = [best_plan(cfg, shape, dataflow=df)[1].cycles for df in ("os", "ws")]
        assert perf.cycles == min(others)
        picks[shape] = plan.dataflow
    assert set(picks.values()) == {"os", "ws"}


def test_per_channel_plans_run():
    cfg = SMALL["r3c2"]
    shape = GemmShape(7, 8, 5)
    rng = np.random.default_rng(3)
    best, perf, _ = best_plan(cfg, shape, per_channel=True)
    model = CycleModel(cfg)
    for p in list(legal_plans(cfg, *shape.gemm))[::7]:
        prog, ref = _lower(cfg, shape, p, rng, per_channel=True)
        res = model.run(prog.image())
        np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
        assert res.cycles == layer_perf(cfg, shape, p, per_channel=True).cycles >= perf.cycles


# ------------------------------------------------------------------ (b) never worse than plan_tiles
MID = {
    "both8": AcceleratorConfig(controller="in-order", name="both8", rows=8, cols=8, dataflow="both", a_spad_depth=64, w_spad_depth=48,
                               acc_depth=32),
    "r4c8": AcceleratorConfig(controller="in-order", name="r4c8", rows=4, cols=8, dataflow="both", a_spad_depth=24, w_spad_depth=40,
                              acc_depth=12, host_port_width=32),
    "os4": AcceleratorConfig(controller="in-order", name="os4", rows=4, cols=4, dataflow="os", a_spad_depth=40, w_spad_depth=40, acc_depth=16),
    "ws4": AcceleratorConfig(controller="in-order", name="ws4", rows=4, cols=4, dataflow="ws", a_spad_depth=32, w_spad_depth=16, acc_depth=16),
}


def _random_shape(rng):
    if rng.random() < 0.5:
        return GemmShape(int(rng.integers(1, 300)), int(rng.integers(1, 300)), int(rng.integers(1, 100)))
    k = int(rng.choice([1, 3, 5]))
    g = int(rng.choice([1, 1, 2]))
    return ConvShape(int(rng.integers(k, 20)), int(rng.integers(k, 20)), g * int(rng.integers(1, 12)), k, k,
                     g * int(rng.integers(1, 24)), int(rng.integers(1, 3)), k // 2, groups=g)


@pytest.mark.parametrize("cfg_name", sorted(MID))
def test_never_worse_than_plan_tiles(cfg_name):
    cfg = MID[cfg_name]
    rng = np.random.default_rng(11)
    for _ in range(8):
        shape = _random_shape(rng)
        M, K, N = shape.gemm
        base = plan_tiles(cfg, M, K, N)
        base_cycles = layer_perf(cfg, shape, base).cycles
        for limit in (0, 150):  # 0 forces the reduced search
            plan, perf, info = best_plan(cfg, shape, exhaustive_limit=limit)
            check_plan(cfg, M, K, N, plan)
            assert perf.cycles == plan.cost == plan_cycles(cfg, shape, plan) <= base_cycles == info["baseline_cycles"]
            assert info["method"] == ("search" if limit == 0 else info["method"])
        for df in ("os", "ws"):
            if cfg.supports_os if df == "os" else cfg.supports_ws:
                plan, perf, _ = best_plan(cfg, shape, dataflow=df, exhaustive_limit=0)
                assert plan.dataflow == df
                assert perf.cycles <= layer_perf(cfg, shape, plan_tiles(cfg, M, K, N, df)).cycles


def test_search_close_to_exhaustive():
    """The reduced search finds the exhaustive optimum (or comes within 2%) on mid-size layers."""
    cfg = MID["both8"]
    for shape in (GemmShape(100, 90, 40), ConvShape(12, 12, 8, 3, 3, 16, 1, 1), GemmShape(30, 200, 70)):
        ex = best_plan(cfg, shape, exhaustive_limit=10**6)
        se = best_plan(cfg, shape, exhaustive_limit=0)
        assert ex[2]["method"] == "exhaustive" and se[2]["method"] == "search"
        assert ex[1].cycles <= se[1].cycles <= 1.02 * ex[1].cycles


def test_plan_tiles_plans_are_legal():
    rng = np.random.default_rng(5)
    for cfg in (*MID.values(), *SMALL.values()):
        for _ in range(20):
            M, K, N = (int(v) for v in rng.integers(1, 200, 3))
            check_plan(cfg, M, K, N, plan_tiles(cfg, M, K, N))


# ------------------------------------------------------------------ (c) ILP == enumeration
ILP_BASE = AcceleratorConfig(controller="in-order", name="ilp4", rows=4, cols=4, dataflow="both")
NETS = [
    [GemmShape(37, 50, 23), ConvShape(9, 9, 6, 3, 3, 10, 1, 1), GemmShape(37, 50, 23)],
    [ConvShape(8, 8, 8, 1, 1, 16, 2, 0), GemmShape(5, 120, 9), GemmShape(64, 12, 30), ConvShape(7, 7, 4, 3, 3, 8, 1, 1)],
]
DEPTHS = ([8, 24, 64], [4, 16, 48], [4, 12, 32])


@pytest.mark.parametrize("net", range(len(NETS)))
def test_ilp_equals_brute_force(net):
    layers = NETS[net]
    A, W, C = DEPTHS
    lo = sram_bytes(ILP_BASE, A[0], W[0], C[0])
    hi = sram_bytes(ILP_BASE, A[-1], W[-1], C[-1])
    for budget in (lo, (2 * lo + hi) / 3, (lo + hi) / 2, hi):
        r = memory_split(layers, ILP_BASE, A, W, C, budget)
        b = brute_force_memory_split(layers, ILP_BASE, A, W, C, budget)
        assert r.status == "Optimal"
        assert r.total_cycles == b.total_cycles
        assert r.sram_bytes <= budget
        assert r.total_cycles == sum(r.cycles) == sum(plan_cycles(r.cfg, s, p) for s, p in zip(layers, r.plans))
        for s, p in zip(layers, r.plans):
            check_plan(r.cfg, *s.gemm, p)
        assert (r.cfg.rows, r.cfg.cols, r.cfg.dataflow) == (ILP_BASE.rows, ILP_BASE.cols, ILP_BASE.dataflow)
    # more SRAM never costs cycles; the largest split is at least as good as each layer's best_plan there
    # (the candidates include every combination's best_plan: the reduced search may miss a plan that a
    # smaller combination's search finds)
    big = memory_split(layers, ILP_BASE, A, W, C, hi)
    small = memory_split(layers, ILP_BASE, A, W, C, lo)
    assert big.total_cycles <= small.total_cycles
    cfg_max = dataclasses.replace(ILP_BASE, a_spad_depth=A[-1], w_spad_depth=W[-1], acc_depth=C[-1])
    assert big.total_cycles <= sum(best_plan(cfg_max, s)[1].cycles for s in layers)
    # a budget below the smallest split
    for fn in (memory_split, brute_force_memory_split):
        with pytest.raises(MemorySplitError, match="budget"):
            fn(layers, ILP_BASE, A, W, C, lo - 1)


def test_ilp_invalid_depths():
    os_only = dataclasses.replace(ILP_BASE, dataflow="os")
    with pytest.raises(MemorySplitError, match="acc_depth"):
        memory_split(NETS[0], os_only, [8], [8], [1, 2], 10**6)  # OS needs >= rows accumulator rows


# ------------------------------------------------------------------ (d) explicit illegal plans
def test_explicit_plan_validation():
    cfg = SMALL["both2"]
    rng = np.random.default_rng(0)
    A = rng.integers(-8, 8, (5, 7))
    W = rng.integers(-8, 8, (7, 5))
    good = next(iter(legal_plans(cfg, 5, 7, 5, "os")))
    lower_gemm(cfg, A, W, Q, plan=good)
    lower_gemm(cfg, A, W, Q, dataflow="os", plan=good)
    bad = {
        "does not fit": Plan("os", 7, 3, 6, 1, "m", 0),  # 3 tiles x 7 words > 12 A words
        "w_spad_depth": Plan("os", 7, 1, 2, 2, "m", 0),  # 2 x 7 > 8 W words
        "acc_depth": Plan("os", 1, 2, 4, 2, "m", 0),  # 2 x 2 tiles x 2 rows > 6
        "mt \\* rows": Plan("os", 1, 1, 3, 1, "m", 0),
        "mt = 2 must be 1": Plan("ws", 2, 2, 3, 1, "m", 0),
        "order": Plan("os", 1, 1, 2, 1, "x", 0),
        "positive": Plan("os", 0, 1, 2, 1, "m", 0),
        "'os' or 'ws'": Plan("both", 1, 1, 2, 1, "m", 0),
    }
    for msg, plan in bad.items():
        with pytest.raises(LoweringError, match=msg):
            lower_gemm(cfg, A, W, Q, plan=plan)
    with pytest.raises(LoweringError, match="differs from the requested dataflow"):
        lower_gemm(cfg, A, W, Q, dataflow="ws", plan=good)
    with pytest.raises(LoweringError, match="does not support"):
        lower_gemm(SMALL["ws2"], A, W, Q, plan=good)
    X = rng.integers(-8, 8, (5, 4, 2))
    Wt = rng.integers(-8, 8, (3, 3, 2, 3))
    with pytest.raises(LoweringError, match="a_spad_depth"):
        lower_conv2d(cfg, X, Wt, 1, 1, Q, plan=Plan("ws", 18, 1, 20, 1, "m", 0))
    # without a plan the behaviour is unchanged
    assert lower_gemm(cfg, A, W, Q).meta["plan"] == plan_tiles(cfg, 5, 7, 5).__dict__


def test_widths_share_one_search_and_change_no_plan():
    """Operand, accumulator and output widths bound values, not plans: a configuration that differs only in
    them gets the same plan and cycles, from one search (the second call is a memo hit). Checked also from a
    cold memo, so that the shared answer is what each configuration alone would get, and on the RTL-level
    cycle model for one lowered layer."""
    from mappings.mapper import clear_cache

    base = AcceleratorConfig(name="w8", rows=4, cols=8, a_spad_depth=128, w_spad_depth=128, acc_depth=64)
    narrow = dataclasses.replace(base, name="w4", input_width=4, weight_width=4, acc_width=20, output_width=4,
                                 max_reduction=256)
    shapes = [GemmShape(37, 70, 29), ConvShape(9, 9, 6, 3, 3, 10, (2, 2), (1, 1, 1, 1))]
    clear_cache()
    first = [best_plan(base, s)[:2] for s in shapes]
    again = [best_plan(narrow, s)[:2] for s in shapes]
    assert first == again
    from mappings.mapper import _best_plan
    hits = _best_plan.cache_info().hits
    assert hits >= len(shapes)
    clear_cache()
    assert [best_plan(narrow, s)[:2] for s in shapes] == first  # cold: the same search result
    rng = np.random.default_rng(5)
    A = rng.integers(-8, 8, (37, 70), dtype=np.int8)
    W = rng.integers(-8, 8, (70, 29), dtype=np.int8)
    for cfg in (base, narrow):
        prog = lower_gemm(cfg, A, W, Quant(1 << 20, 24, 0, -8, 7), plan=first[0][0])
        assert CycleModel(cfg).run(prog.image()).cycles == first[0][1].cycles
