"""The cycle model (sim.cycle) on lowered programs against the independent reference (sim.reference).

Pure Python, no Verilator. Property tests over random GEMM and convolution
shapes on several configurations (square and non-square arrays, os / ws /
both, small scratchpads that force reduction chunks, narrow widths with a
tight accumulator), plus the random_programs set.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.config import AcceleratorConfig
from hwgen.isa import INSTR_BYTES, Opcode, requantize
from mappings.lowering import LoweringError, lower_conv2d, lower_gemm, plan_tiles
from mappings.random_programs import KINDS, program_cycles, random_programs, random_quant
from sim.cycle import CycleModel
from sim.reference import (Quant, conv2d_acc, conv2d_ref, conv_out_size, gemm_acc, gemm_ref, output_dtype,
                           requantize_ref)
from sim.timing import instruction_cycles

CONFIGS = [
    AcceleratorConfig(controller="in-order", name="sq4", rows=4, cols=4, dataflow="both", a_spad_depth=64, w_spad_depth=32, acc_depth=16),
    AcceleratorConfig(controller="in-order", name="os3x5", rows=3, cols=5, dataflow="os", a_spad_depth=20, w_spad_depth=12, acc_depth=6,
                      host_port_width=32),
    AcceleratorConfig(controller="in-order", name="ws5x3", rows=5, cols=3, dataflow="ws", a_spad_depth=24, w_spad_depth=10, acc_depth=7,
                      host_port_width=128),
    AcceleratorConfig(controller="in-order", name="both2x7", rows=2, cols=7, dataflow="both", a_spad_depth=9, w_spad_depth=5, acc_depth=3,
                      host_port_width=16),
    AcceleratorConfig(controller="in-order", name="one", rows=1, cols=1, dataflow="both", a_spad_depth=4, w_spad_depth=3, acc_depth=2,
                      host_port_width=8),
    # narrow operands and a tight accumulator: all-extreme reductions of max_reduction reach its limit
    AcceleratorConfig(controller="in-order", name="narrow", rows=4, cols=3, dataflow="both", input_width=4, weight_width=5,
                      output_width=6, max_reduction=16, acc_width=13, a_spad_depth=8, w_spad_depth=6, acc_depth=8),
    AcceleratorConfig(controller="in-order", name="default8", rows=8, cols=8),
]
IDS = [c.name for c in CONFIGS]


def dataflows(cfg):
    return [d for d in ("os", "ws") if (cfg.supports_os if d == "os" else cfg.supports_ws)]


def run_model(cfg, prog, model=None):
    model = model or CycleModel(cfg)
    res = model.run(prog.image())
    return prog.outputs["out"].read(res.memory), res


def operands(rng, shape, width, mode):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if mode == "random":
        return rng.integers(lo, hi + 1, shape).astype(np.int8)
    if mode == "min":
        return np.full(shape, lo, np.int8)
    if mode == "max":
        return np.full(shape, hi, np.int8)
    return np.where(rng.random(shape) < 0.5, lo, hi).astype(np.int8)


def check_program(cfg, prog, expected, garbage_seed=None):
    prog.check(cfg)
    out, res = run_model(cfg, prog)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    assert res.cycles == program_cycles(cfg, prog)
    if garbage_seed is not None:  # stale scratchpad/accumulator contents must not matter
        rng = np.random.default_rng(garbage_seed)
        m = CycleModel(cfg)
        m.a_spad[:] = rng.integers(-128, 128, m.a_spad.shape)
        m.w_spad[:] = rng.integers(-128, 128, m.w_spad.shape)
        m.acc_buf[:] = rng.integers(-(1 << 20), 1 << 20, m.acc_buf.shape)
        out2, res2 = run_model(cfg, prog, m)
        np.testing.assert_array_equal(out2, expected)
        assert res2.cycles == res.cycles
    return res


modes = st.sampled_from(["random"] * 6 + ["min", "max", "mixed"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ci=st.integers(0, len(CONFIGS) - 1), M=st.integers(1, 40), K=st.integers(1, 48), N=st.integers(1, 30),
       mode=modes, seed=st.integers(0, 2**32 - 1))
def test_gemm_model_matches_reference(ci, M, K, N, mode, seed):
    cfg = CONFIGS[ci]
    K = min(K, cfg.max_reduction)
    rng = np.random.default_rng(seed)
    A, W = operands(rng, (M, K), cfg.input_width, mode), operands(rng, (K, N), cfg.weight_width, mode)
    q = random_quant(rng, cfg, gemm_acc(A, W))
    expected = gemm_ref(A, W, q)
    for df in dataflows(cfg):  # every dataflow the array supports
        prog = lower_gemm(cfg, A, W, q, dataflow=df)
        check_program(cfg, prog, expected, garbage_seed=seed if seed % 4 == 0 else None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ci=st.integers(0, len(CONFIGS) - 1), H=st.integers(1, 9), Wd=st.integers(1, 9), Cin=st.integers(1, 7),
       KH=st.integers(1, 4), KW=st.integers(1, 4), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.integers(0, 3), st.integers(0, 3)), Cout=st.integers(1, 10), mode=modes,
       seed=st.integers(0, 2**32 - 1))
def test_conv_model_matches_reference(ci, H, Wd, Cin, KH, KW, stride, pad, Cout, mode, seed):
    cfg = CONFIGS[ci]
    sq = seed % 3 == 0  # square stride/padding given as ints
    s, p = (stride[0], pad[0]) if sq else (stride, pad)
    sp, pp = (s, s) if sq else s, (p, p) if sq else p
    if conv_out_size(H, KH, sp[0], pp[0]) < 1 or conv_out_size(Wd, KW, sp[1], pp[1]) < 1:
        return
    if KH * KW * Cin > cfg.max_reduction:
        Cin = max(1, cfg.max_reduction // (KH * KW))
        if KH * KW * Cin > cfg.max_reduction:
            return
    rng = np.random.default_rng(seed)
    X = operands(rng, (H, Wd, Cin), cfg.input_width, mode)
    Wt = operands(rng, (KH, KW, Cin, Cout), cfg.weight_width, mode)
    q = random_quant(rng, cfg, conv2d_acc(X, Wt, s, p))
    expected = conv2d_ref(X, Wt, s, p, q)
    for df in dataflows(cfg):  # every dataflow the array supports
        prog = lower_conv2d(cfg, X, Wt, s, p, q, dataflow=df)
        # im2col happens in the load path: the host holds X as it is, nothing else
        assert set(prog.inputs) == {"X", "W"} and prog.inputs["X"][0].nbytes == X.size
        assert prog.mem_size < 16 * len(prog.instructions) + X.size + Wt.size + 3 * 128 + prog.outputs["out"].nbytes
        check_program(cfg, prog, expected, garbage_seed=seed if seed % 4 == 1 else None)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_random_programs(cfg):
    progs = random_programs(cfg, 16, seed=7)
    kinds = set()
    model = CycleModel(cfg)  # one model for the whole set: state persists between programs like the RTL's
    for prog, expected in progs:
        out, res = run_model(cfg, prog, model)
        np.testing.assert_array_equal(out, expected, err_msg=str(prog.meta))
        assert out.dtype == expected.dtype
        assert res.cycles == prog.meta["est_cycles"]
        kinds.add(prog.meta["random_kind"])
    assert kinds == set(KINDS)
    ops = [i for p, _ in progs for i in p.instructions]
    assert any(i.op == Opcode.COMPUTE and i.accumulate for i in ops)
    assert any(i.op == Opcode.LOAD and i.zero for i in ops)
    assert any(i.op == Opcode.STORE and i.relu for i in ops) and any(i.op == Opcode.STORE and not i.relu for i in ops)
    used = {("os", "ws")[i.dataflow] for i in ops if i.op == Opcode.COMPUTE}
    assert used == set(dataflows(cfg))
    # long reductions: some program needs more than one reduction chunk of the scratchpads
    kmin = min(cfg.a_spad_depth, cfg.w_spad_depth)
    assert any(p.meta["K"] > kmin for p, _ in progs if p.meta["kind"] == "gemm") or cfg.max_reduction <= kmin
    # extremes: some operand tensor entirely at the ends of its range
    lo, hi = -(1 << (cfg.input_width - 1)), (1 << (cfg.input_width - 1)) - 1
    assert any(np.isin(p.inputs[n][1], (lo, hi)).all() for p, _ in progs for n in ("A", "X") if n in p.inputs)


def test_random_programs_deterministic():
    cfg = CONFIGS[0]
    a, b = random_programs(cfg, 8, seed=3), random_programs(cfg, 8, seed=3)
    c = random_programs(cfg, 8, seed=4)
    for (p, e), (q, f) in zip(a, b):
        assert p.code == q.code and np.array_equal(p.image(), q.image()) and np.array_equal(e, f)
    assert any(p.code != q.code for (p, _), (q, _) in zip(a, c))


def test_lowered_program_file_round_trip(tmp_path):
    cfg = CONFIGS[1]
    for n, (prog, expected) in enumerate(random_programs(cfg, 4, seed=9)):
        path = tmp_path / f"p{n}.npz"
        prog.save(path)
        back = type(prog).load(path)
        assert back.meta == prog.meta and back.outputs == prog.outputs
        out, _ = run_model(cfg, back)
        np.testing.assert_array_equal(out, expected)


def test_random_programs_cycle_budget_4x4():
    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4)
    for prog, _ in random_programs(cfg, 24, seed=11):
        assert program_cycles(cfg, prog) <= 30_000


def test_trace_contiguous_and_sums_to_cycles():
    cfg = CONFIGS[0]
    for prog, _ in random_programs(cfg, 4, seed=5):
        res = CycleModel(cfg).run(prog.image())
        tr = res.trace
        assert len(tr) == len(prog.instructions)
        assert tr[0].start == 0 and tr[-1].end == res.cycles
        for n, (e, ins) in enumerate(zip(tr, prog.instructions)):
            assert e.pc == n * INSTR_BYTES and e.instruction == ins
            assert e.end - e.start == instruction_cycles(cfg, ins) > 0
        for x, y in itertools.pairwise(tr):
            assert x.end == y.start
        assert sum(e.end - e.start for e in tr) == res.cycles
        assert tr[-1].instruction.op == Opcode.HALT
        assert res.busy_pe > 0 and 0 < res.utilization(cfg) <= 1


# ---------------------------------------------------------- the reference itself
@settings(max_examples=300, deadline=None)
@given(acc=st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=8),
       mult=st.integers(-(1 << 31), (1 << 31) - 1), shift=st.integers(0, 62), zp=st.integers(-(1 << 15), (1 << 15) - 1),
       clamp=st.tuples(st.integers(-128, 255), st.integers(-128, 255)).map(sorted), relu=st.booleans())
def test_requantize_rule_two_ways(acc, mult, shift, zp, clamp, relu):
    """The reference's Python-int rule agrees with hwgen.isa.requantize's int64 one over the whole field ranges."""
    ref = requantize_ref(np.array(acc), (mult, shift, zp, clamp[0], clamp[1], relu))
    isa = requantize(np.array(acc), mult, shift, zp, clamp[0], clamp[1], relu)
    np.testing.assert_array_equal(ref, isa)


def test_requantize_rounding_examples():
    q = lambda acc, shift, relu=False, zp=0: int(requantize_ref(np.array([acc]), (1, shift, zp, -128, 127, relu))[0])  # noqa: E731
    assert [q(a, 1) for a in (-3, -2, -1, 0, 1, 2, 3)] == [-1, -1, 0, 0, 1, 1, 2]  # half up (towards +inf)
    assert [q(a, 2) for a in (-6, -5, -2, 2, 5, 6)] == [-1, -1, 0, 1, 1, 2]
    assert q(1000, 0) == 127 and q(-1000, 0) == -128
    assert q(-50, 0, relu=True, zp=10) == 10 and q(-50, 0, relu=True) == 0 and q(7, 0, relu=True, zp=3) == 10


def test_conv_reference_against_loops():
    rng = np.random.default_rng(1)
    for _ in range(20):
        H, Wd, Cin, KH, KW, Cout = rng.integers(1, 6, 6)
        sh, sw, ph, pw = rng.integers(1, 3), rng.integers(1, 3), rng.integers(0, 3), rng.integers(0, 3)
        OH, OW = conv_out_size(H, KH, sh, ph), conv_out_size(Wd, KW, sw, pw)
        if OH < 1 or OW < 1:
            continue
        X = rng.integers(-128, 128, (H, Wd, Cin))
        Wt = rng.integers(-128, 128, (KH, KW, Cin, Cout))
        exp = np.zeros((OH, OW, Cout), np.int64)
        for oh, ow, co, kh, kw, c in itertools.product(range(OH), range(OW), range(Cout), range(KH), range(KW),
                                                       range(Cin)):
            ih, iw = oh * sh + kh - ph, ow * sw + kw - pw
            if 0 <= ih < H and 0 <= iw < Wd:
                exp[oh, ow, co] += X[ih, iw, c] * Wt[kh, kw, c, co]
        np.testing.assert_array_equal(conv2d_acc(X, Wt, (sh, sw), (ph, pw)), exp)
        q = Quant(3, 9, -2, -128, 127, True)
        np.testing.assert_array_equal(conv2d_ref(X, Wt, (sh, sw), (ph, pw), q), requantize_ref(exp, q).astype(np.int8))
    A, W = rng.integers(-128, 128, (5, 7)), rng.integers(-128, 128, (7, 3))
    np.testing.assert_array_equal(gemm_acc(A, W), [[sum(int(A[m, k]) * int(W[k, n]) for k in range(7))
                                                    for n in range(3)] for m in range(5)])


def test_output_dtype():
    assert output_dtype((1, 0, 0, -128, 127, False)) == "int8"
    assert output_dtype((1, 0, 128, 0, 255, False)) == "uint8"
    assert output_dtype((1, 0, 0, -5, 200, True)) == "uint8"  # ReLU raises the floor to the zero point
    with pytest.raises(ValueError):
        output_dtype((1, 0, 0, -5, 200, False))


# ---------------------------------------------------------------- lowering API
def test_lowering_errors_and_layout():
    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4, dataflow="os")
    A, W = np.ones((5, 6), np.int8), np.ones((6, 7), np.int8)
    q = (1, 0, 0, -128, 127, False)
    with pytest.raises(LoweringError, match="does not support 'ws'"):
        lower_gemm(cfg, A, W, q, dataflow="ws")
    with pytest.raises(LoweringError, match="6x7|5x6"):
        lower_gemm(cfg, A, W.T, q)
    narrow = AcceleratorConfig(controller="in-order", rows=4, cols=4, input_width=4, acc_width=24)
    with pytest.raises(LoweringError, match="4-bit"):
        lower_gemm(narrow, A * 8, W, q)
    with pytest.raises(LoweringError, match="empty"):
        lower_conv2d(cfg, np.ones((2, 2, 1), np.int8), np.ones((3, 3, 1, 1), np.int8), 1, 0, q)
    prog = lower_gemm(AcceleratorConfig(controller="in-order", rows=4, cols=4, host_port_width=128), A, W, q)
    port = 16
    regions = [prog.inputs["A"][0], prog.inputs["W"][0], prog.outputs["out"]]
    assert regions[0].addr >= len(prog.code) and all(r.addr % port == 0 for r in regions)
    assert all(a.addr + a.nbytes <= b.addr for a, b in itertools.pairwise(regions))
    assert prog.mem_size % port == 0 and prog.mem_size >= regions[-1].addr + regions[-1].nbytes
    assert prog.instructions[0].op == Opcode.CONFIG and prog.instructions[-1].op == Opcode.HALT
    assert plan_tiles(cfg, 5, 6, 7).dataflow == "os"


def test_tile_reuse_loads_each_operand_once_when_it_fits():
    """With everything resident, each input element is loaded exactly once (no redundant loads)."""
    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4)
    rng = np.random.default_rng(0)
    A, W = rng.integers(-128, 128, (13, 20)), rng.integers(-128, 128, (20, 11))
    for df in ("os", "ws"):
        prog = lower_gemm(cfg, A, W, (1, 8, 0, -128, 127, False), dataflow=df)
        loaded = {t: sum(i.count * i.lanes for i in prog.instructions if i.op == Opcode.LOAD and i.target == t)
                  for t in (0, 1)}
        assert loaded == {0: A.size, 1: W.size}, df
        check_program(cfg, prog, gemm_ref(A, W, (1, 8, 0, -128, 127, False)))
