"""Software-pipelined (double-buffered) programs for the decoupled controller and their exact cost.

* Decoupled lowerings of random small layers (GEMMs, convolutions with padding, stride, dilation and
  groups, per-tensor and per-channel quantization) compute the numpy reference: programs keep
  sequential semantics, so the in-order cycle model on the same program is the right check.
* The double-buffered needs (:func:`plan_needs`) are tight: one word less of any memory and
  ``Program.check`` fails; a plan fits iff its double-buffered needs fit.
* :func:`mappings.pipelined.decoupled_cycles` equals ``sim.schedule`` on the program the lowering emits
  with data (an independent path: ``lower_gemm`` / ``lower_conv2d``, ``Program.instructions``), and the
  cost path's memoised A fills give the same instruction stream as the lowering's.
* In-order configs emit exactly the programs they emitted before double buffering existed (hashes
  recorded at the commit before it), and their plans and cycles are untouched.
* The mapper on decoupled configs: best_plan's plan fits, its cycles are the schedule's, never worse
  than plan_tiles' plan or the in-order-optimal plan among legal ones (small layers: the exhaustive
  minimum over the costed candidates), and both bounds (``decoupled_bound`` and the fill-and-drain
  ``decoupled_tight_bound``) are lower bounds.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.lowering import LoweringError, check_plan, lower_conv2d, lower_gemm, plan_needs, plan_tiles
from mappings.mapper import best_plan, legal_plans, plan_cycles
from mappings.pipelined import (decoupled_bound, decoupled_cycles, decoupled_perf, decoupled_tight_bound, in_order,
                                layer_instructions, layer_schedule)
from sim.cycle import CycleModel
from sim.perf import ConvShape, GemmShape, layer_perf
from sim.reference import ChannelQuant, Quant, conv2d_ref, gemm_ref
from sim.schedule import schedule
from sim.tiling import Plan
from hwgen.dataflow import Dataflow
from plan_checks import assert_needs_tight

Q = Quant(1, 3, 0, -128, 127, False)


def _cq(n: int) -> ChannelQuant:
    return ChannelQuant(np.arange(n) - n // 2, np.ones(n, dtype=np.int64), np.full(n, 2), 0, -128, 127)


DEC = {
    "d23": AcceleratorConfig(name="d23", rows=2, cols=3, dataflow="both", a_spad_depth=40, w_spad_depth=40,
                             acc_depth=24, host_port_width=32, controller="decoupled", queue_depth=2),
    "d44": AcceleratorConfig(name="d44", rows=4, cols=4, dataflow="both", a_spad_depth=64, w_spad_depth=64,
                             acc_depth=32, host_port_width=64, controller="decoupled", queue_depth=4),
    "d32os": AcceleratorConfig(name="d32os", rows=3, cols=2, dataflow="os", a_spad_depth=48, w_spad_depth=30,
                               acc_depth=24, host_port_width=16, controller="decoupled", queue_depth=1),
}

SHAPES = [
    GemmShape(7, 9, 8),
    GemmShape(13, 21, 11),
    ConvShape(5, 4, 2, 3, 3, 4, 1, 1),
    ConvShape(6, 5, 4, 3, 3, 4, 2, (1, 0, 1, 1), groups=2),
    ConvShape(5, 5, 3, 3, 3, 3, 1, 1, groups=3),                      # depthwise
    ConvShape(6, 6, 2, 3, 3, 3, 1, (1, 1, 0, 0), dilation=(1, 2)),
]


def _lower(cfg, shape, plan, rng, per_channel):
    G = getattr(shape, "groups", 1)
    q = _cq(shape.gemm[2] * G) if per_channel else Q
    if isinstance(shape, GemmShape):
        A = rng.integers(-8, 8, (shape.M, shape.K))
        W = rng.integers(-8, 8, (shape.K, shape.N))
        return lower_gemm(cfg, A, W, q, plan=plan), gemm_ref(A, W, q)
    X = rng.integers(-8, 8, (shape.H, shape.W, shape.Cin))
    Wt = rng.integers(-8, 8, (shape.KH, shape.KW, shape.Cin // G, shape.Cout))
    prog = lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, q, groups=G, dilation=shape.dilation,
                        pad_value=int(rng.integers(-3, 3)), plan=plan)
    return prog, conv2d_ref(X, Wt, shape.stride, shape.pads, q, groups=G, dilation=shape.dilation,
                            pad_value=prog.meta["pad_value"])


def _sample(plans, k, rng):
    plans = list(plans)
    if len(plans) <= k:
        return plans
    return [plans[i] for i in sorted(rng.choice(len(plans), k, replace=False))]


@pytest.mark.parametrize("cfg_name", sorted(DEC))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_decoupled_lowering_is_exact(cfg_name, shape):
    """Reference results on the in-order model, tight double-buffered needs, cost == schedule of the
    independently lowered program, memoised stream == lowering's stream."""
    cfg = DEC[cfg_name]
    M, K, N = shape.gemm
    G = getattr(shape, "groups", 1)
    rng = np.random.default_rng(hash((cfg_name, str(shape))) % 2**32)
    model = CycleModel(in_order(cfg))
    plans = _sample(legal_plans(cfg, M, K, N, groups=G), 8, rng)
    assert plans
    for plan in plans:
        per_channel = bool(rng.integers(2))
        prog, ref = _lower(cfg, shape, plan, rng, per_channel)
        res = model.run(prog.image())
        np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
        assert_needs_tight(cfg, prog, plan_needs(cfg, M, K, N, plan, G))
        sched = schedule(cfg, prog.instructions, queue_depth=cfg.queue_depth)
        assert decoupled_cycles(cfg, shape, plan, per_channel) == sched.cycles
        # the same instructions but the config's fields (quantization parameters, no timing)
        fast = layer_instructions(cfg, shape, plan, per_channel, pad_value=prog.meta.get("pad_value", 0))
        assert [i for i in fast if i.op.name != "CONFIG"] == [i for i in prog.instructions if i.op.name != "CONFIG"]
        assert layer_instructions(cfg, shape, plan, per_channel, memo=False,
                                  pad_value=prog.meta.get("pad_value", 0)) == fast
        # same instructions as in order (other addresses and order): same counts and traffic
        inorder = layer_perf(in_order(cfg), shape, plan, per_channel)
        perf = decoupled_perf(cfg, shape, plan, per_channel)
        assert (perf.busy_pe, perf.instructions, perf.host_read_bytes, perf.host_write_bytes) == \
            (inorder.busy_pe, inorder.instructions, inorder.host_read_bytes, inorder.host_write_bytes)
        assert decoupled_bound(cfg, inorder, plan.dataflow) <= perf.cycles
        assert decoupled_tight_bound(cfg, shape, plan, per_channel) <= perf.cycles


@pytest.mark.parametrize("cfg_name", sorted(DEC))
def test_tight_bound_is_a_lower_bound(cfg_name):
    """decoupled_tight_bound (fill and drain counted), which the mapper prunes its finalists by, never
    exceeds the exact cost, on every legal plan of the small layers."""
    cfg = DEC[cfg_name]
    checked = 0
    for shape in SHAPES:
        M, K, N = shape.gemm
        for plan in legal_plans(cfg, M, K, N, groups=getattr(shape, "groups", 1)):
            for per_channel in (False, True):
                bound = decoupled_tight_bound(cfg, shape, plan, per_channel)
                assert bound <= decoupled_cycles(cfg, shape, plan, per_channel), (shape, plan, per_channel)
                checked += 1
    assert checked


def test_blocked_order_is_also_exact():
    """The alternative step order computes the same results (the scoreboard keeps sequential semantics)."""
    cfg = DEC["d44"]
    rng = np.random.default_rng(3)
    shape = ConvShape(6, 5, 4, 3, 3, 8, 1, 1)
    for plan in _sample(legal_plans(cfg, *shape.gemm), 4, rng):
        a = layer_instructions(cfg, shape, plan, True, order="blocked")
        b = layer_instructions(cfg, shape, plan, True)
        assert sorted(map(str, a)) == sorted(map(str, b))  # a permutation of the same instructions
    with pytest.raises(LoweringError):
        layer_instructions(cfg, shape, plan, True, order="zigzag")


def test_one_word_less_does_not_fit():
    """check_plan accepts a plan iff its double-buffered needs fit (groups counted), and the in-order
    rule for the same memories is the single-buffer one."""
    cfg = DEC["d44"]
    shape = ConvShape(6, 6, 4, 3, 3, 4, 1, 1, groups=2)
    M, K, N = shape.gemm
    plan = next(p for p in legal_plans(cfg, M, K, N, groups=2) if p.dataflow == "os")
    needs = plan_needs(cfg, M, K, N, plan, 2)
    single = plan_needs(in_order(cfg), M, K, N, plan)
    assert all(n in (s, 2 * s) for n, s in zip(needs, single)) and needs != single
    exact = dataclasses.replace(cfg, a_spad_depth=needs[0], w_spad_depth=needs[1], acc_depth=needs[2])
    check_plan(exact, M, K, N, plan, groups=2)
    for fld, need in zip(("a_spad_depth", "w_spad_depth", "acc_depth"), needs):
        with pytest.raises(LoweringError, match="double-buffered"):
            check_plan(dataclasses.replace(exact, **{fld: need - 1}), M, K, N, plan, groups=2)
    # a GEMM small enough for one fill of each memory needs no second half
    one = GemmShape(3, 4, 4)
    p1 = dataclasses.replace(plan_tiles(in_order(cfg), *one.gemm, "os"), cost=0)
    assert plan_needs(cfg, *one.gemm, p1) == plan_needs(in_order(cfg), *one.gemm, p1)


def test_single_fill_plans_are_legal():
    """legal_plans is every canonical plan check_plan accepts, including the single-n-block plan that fits
    (one W fill, no second half) when a narrower, double-buffered one does not."""
    cfg = dataclasses.replace(DEC["d44"], dataflow="os", w_spad_depth=24, a_spad_depth=24, acc_depth=32)
    M, K, N = 4, 6, 16  # one m tile, 4 column tiles: W single-buffered nt * kc words
    legal = set(legal_plans(cfg, M, K, N))
    brute = set()
    for kc in sorted({-(-K // c) for c in range(1, K + 1)}):
        for nt in range(1, 5):
            p = Plan(Dataflow.OS, kc, 1, 4, nt, "m", 0)
            try:
                check_plan(cfg, M, K, N, p)
            except LoweringError:
                continue
            brute.add(p)
    assert legal == brute
    assert Plan(Dataflow.OS, 6, 1, 4, 4, "m", 0) in legal and Plan(Dataflow.OS, 6, 1, 4, 3, "m", 0) not in legal


# ------------------------------------------------------------------ in-order programs unchanged
#: sha256 (first 16 hex) of Program.code of in-order lowerings, recorded at the commit before double
#: buffering (92111e3), with the random draws below.
_GOLDEN = [
    ("both4", "gemm", dict(M=13, K=21, N=11), None, False, "5100d2875d6bd521"),
    ("both4", "gemm", dict(M=13, K=21, N=11), "ws", True, "b005604dc675400b"),
    ("both4", "conv", dict(H=7, W=6, Cin=4, KH=3, KW=3, Cout=6, stride=1, pad=1, groups=1), "os", True,
     "a63d124ba1d438aa"),
    ("both4", "conv", dict(H=7, W=6, Cin=4, KH=3, KW=3, Cout=6, stride=2, pad=1, groups=2), "ws", False,
     "d3140ccf8d672469"),
    ("os3", "conv", dict(H=6, W=5, Cin=6, KH=3, KW=3, Cout=6, stride=1, pad=1, groups=6), "os", True,
     "7d429400cada0215"),
    ("os3", "gemm", dict(M=10, K=50, N=7), "os", False, "649969f376a6d2a2"),
]
_GOLDEN_CFGS = {
    "both4": AcceleratorConfig(controller="in-order", name="g4", rows=4, cols=4, dataflow="both", a_spad_depth=64, w_spad_depth=64,
                               acc_depth=32, host_port_width=32),
    "os3": AcceleratorConfig(controller="in-order", name="g3", rows=3, cols=2, dataflow="os", a_spad_depth=40, w_spad_depth=30,
                             acc_depth=24),
}


def test_in_order_programs_unchanged():
    rng = np.random.default_rng(7)
    for cname, kind, d, df, pc, digest in _GOLDEN:
        cfg = _GOLDEN_CFGS[cname]
        if kind == "gemm":
            A = rng.integers(-8, 8, (d["M"], d["K"]))
            W = rng.integers(-8, 8, (d["K"], d["N"]))
            p = lower_gemm(cfg, A, W, _cq(d["N"]) if pc else Q, dataflow=df)
        else:
            X = rng.integers(-8, 8, (d["H"], d["W"], d["Cin"]))
            Wt = rng.integers(-8, 8, (d["KH"], d["KW"], d["Cin"] // d["groups"], d["Cout"]))
            p = lower_conv2d(cfg, X, Wt, d["stride"], d["pad"], _cq(d["Cout"]) if pc else Q, dataflow=df,
                             groups=d["groups"])
        assert hashlib.sha256(p.code).hexdigest()[:16] == digest, (cname, kind, d, df, pc)


def test_in_order_emission_ignores_groups_and_matches_cost_path():
    """layer_instructions on an in-order config is the in-order lowering; plan_needs ignores groups there."""
    cfg = _GOLDEN_CFGS["both4"]
    shape = ConvShape(7, 6, 4, 3, 3, 6, 2, 1, groups=2)
    rng = np.random.default_rng(0)
    for plan in _sample(legal_plans(cfg, *shape.gemm), 4, rng):
        assert plan_needs(cfg, *shape.gemm, plan, 2) == plan_needs(cfg, *shape.gemm, plan)
        prog, _ = _lower(cfg, shape, plan, rng, True)
        assert [i for i in layer_instructions(cfg, shape, plan, True, pad_value=prog.meta["pad_value"])
                if i.op.name != "CONFIG"] == \
            [i for i in prog.instructions if i.op.name != "CONFIG"]
        assert CycleModel(cfg).run(prog.image()).cycles == layer_perf(cfg, shape, plan, True).cycles


# ------------------------------------------------------------------ the mapper on decoupled configs
@pytest.mark.parametrize("shape", [GemmShape(13, 21, 11), ConvShape(6, 5, 4, 3, 3, 8, 1, 1),
                                   ConvShape(5, 5, 3, 3, 3, 3, 1, 1, groups=3)], ids=str)
def test_best_plan_decoupled(shape):
    cfg = DEC["d44"]
    M, K, N = shape.gemm
    G = getattr(shape, "groups", 1)
    plan, perf, info = best_plan(cfg, shape, per_channel=True)
    check_plan(cfg, M, K, N, plan, groups=G)
    assert perf.cycles == plan.cost == decoupled_cycles(cfg, shape, plan, True) == plan_cycles(cfg, shape, plan, True)
    assert perf.cycles == layer_schedule(cfg, shape, dataclasses.replace(plan, cost=0), True)[1].cycles
    assert perf.cycles <= info["baseline_cycles"]
    legal = list(legal_plans(cfg, M, K, N, groups=G))
    inorder = {p: layer_perf(in_order(cfg), shape, p, True) for p in legal}
    best_in_order = min(legal, key=lambda p: (inorder[p].cycles, str(p)))
    assert perf.cycles <= decoupled_cycles(cfg, shape, best_in_order, True)
    # the bound is a lower bound on every legal plan
    for p in _sample(legal, 10, np.random.default_rng(1)):
        assert decoupled_bound(cfg, inorder[p], p.dataflow) <= decoupled_cycles(cfg, shape, p, True)
    # decoupled beats the in-order controller on the same memories
    assert perf.cycles < best_plan(in_order(cfg), shape, per_channel=True)[1].cycles


def test_map_graph_reports_decoupled_cycles():
    from mappings.graph import Conv2d
    from mappings.network_map import layer_shape, load_model, map_graph

    g = load_model("zoo:mlp")
    cfg = DEC["d44"]
    nmap = map_graph(g, cfg)
    imap = map_graph(g, in_order(cfg))
    acc = [r for r in nmap.rows if r.where == "accelerator"]
    assert acc
    for r, ri in zip(nmap.rows, imap.rows):
        if r.where != "accelerator":
            continue
        shape, _ = layer_shape(g, r.layer)
        plan = best_plan(cfg, shape, per_channel=True)[0]
        assert r.cycles == decoupled_cycles(cfg, shape, plan, True)
    assert nmap.cycles < imap.cycles
