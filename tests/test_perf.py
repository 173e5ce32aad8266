"""The analytical model (sim.perf) equals the cycle model on every lowered layer (contract 3).

Cycles, busy-PE counts and instruction counts are compared with
:class:`sim.cycle.CycleModel` runs of the programs :mod:`mappings.lowering`
emits; the load/compute/store breakdown and the memory traffic are compared
with sums over the emitted instructions. Workloads: hypothesis-drawn GEMMs and
convolutions (grouped, depthwise, dilated, asymmetric padding, per-channel
quantization), the random-program generator's kinds, and real ResNet-50 /
MobileNet layer shapes from the SCALE-Sim topologies (scaled down, plus a few
at full size), on several configurations and every supported dataflow.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.isa import Opcode
from mappings.lowering import LoweringError, lower_conv2d, lower_gemm, plan_tiles
from mappings.random_programs import random_programs
from sim.cycle import CycleModel
from sim.perf import ConvShape, LayerPerf, _load_stats, clear_cache, conv_perf, gemm_perf
from sim.reference import ChannelQuant, Quant
from sim.tiling import Load, Plan, _try_merge, merge
from sim.timing import instruction_cycles

CONFIGS = {
    "os2": AcceleratorConfig(controller="in-order", name="os2", rows=2, cols=2, dataflow="os", a_spad_depth=16, w_spad_depth=16, acc_depth=8),
    "ws4": AcceleratorConfig(controller="in-order", name="ws4", rows=4, cols=4, dataflow="ws", a_spad_depth=32, w_spad_depth=16, acc_depth=16),
    "both8": AcceleratorConfig(controller="in-order", name="both8", rows=8, cols=8, dataflow="both"),
    "r4c8": AcceleratorConfig(controller="in-order", name="r4c8", rows=4, cols=8, dataflow="both", a_spad_depth=24, w_spad_depth=40,
                              acc_depth=12, host_port_width=32),
    # tiny scratchpads: many reduction chunks and blocks
    "tiny": AcceleratorConfig(controller="in-order", name="tiny", rows=4, cols=4, dataflow="both", a_spad_depth=6, w_spad_depth=8,
                              acc_depth=4, host_port_width=128),
}

SCALESIM = Path(__file__).resolve().parents[2] / "shared" / "data" / "scalesim"
Q = Quant(1, 4, 0, -128, 127, False)


def _dataflows(cfg: AcceleratorConfig) -> list[str]:
    return [d for d in ("os", "ws") if (cfg.supports_os if d == "os" else cfg.supports_ws)]


def _channel_quant(n: int) -> ChannelQuant:
    return ChannelQuant(np.arange(n) - n // 2, np.ones(n, dtype=np.int64), np.full(n, 2), 0, -128, 127)


def _from_instructions(cfg: AcceleratorConfig, instrs) -> dict:
    """The LayerPerf fields, summed over an emitted instruction list."""
    out = dict(instructions=len(instrs), loads=0, computes=0, stores=0, load_cycles=0, compute_cycles=0,
               store_cycles=0, other_cycles=0, a_spad_words=0, a_spad_elems=0, w_spad_words=0, w_spad_elems=0,
               q_spad_words=0, q_spad_bytes=0, acc_row_writes=0, a_spad_reads=0, w_spad_reads=0, acc_row_reads=0,
               host_read_bytes=0, host_write_bytes=0)
    for ins in instrs:
        cyc = instruction_cycles(cfg, ins)
        a = ins.args
        if ins.op == Opcode.LOAD:
            out["loads"] += 1
            out["load_cycles"] += cyc
            name = ("a_spad_words", "w_spad_words", "q_spad_words")[a["target"]]
            out[name] += a["count"]
            out[("a_spad_elems", "w_spad_elems", "q_spad_bytes")[a["target"]]] += a["count"] * a["lanes"]
            if not a["zero"]:
                out["host_read_bytes"] += a["count"] * a["lanes"]
        elif ins.op == Opcode.COMPUTE:
            out["computes"] += 1
            out["compute_cycles"] += cyc
            out["acc_row_writes"] += a["rows"]
            out["acc_row_reads"] += a["rows"] * a["accumulate"]  # read, add, write back
            os_ = a["dataflow"] == Dataflow.OS.code
            out["a_spad_reads"] += a["depth"] if os_ else a["rows"]  # os: A words a_addr..+depth; ws: +rows
            out["w_spad_reads"] += a["depth"]
        elif ins.op == Opcode.STORE:
            out["stores"] += 1
            out["store_cycles"] += cyc
            out["host_write_bytes"] += a["rows"] * a["cols"]
            out["acc_row_reads"] += a["rows"]
        else:
            out["other_cycles"] += cyc
    return out


def _check(cfg: AcceleratorConfig, prog, perf: LayerPerf, run_model: bool = True) -> None:
    expected = _from_instructions(cfg, prog.instructions)
    got = {k: getattr(perf, k) for k in expected}
    assert got == expected
    assert perf.host_fetch_bytes == 16 * len(prog.instructions)
    cycles = sum(instruction_cycles(cfg, i) for i in prog.instructions)
    assert perf.cycles == cycles
    if run_model:
        res = CycleModel(cfg).run(prog.image())
        assert (perf.cycles, perf.busy_pe) == (res.cycles, res.busy_pe)
        assert perf.utilization == pytest.approx(res.utilization(cfg))


def _gemm_case(cfg, M, K, N, df, per_channel, rng, run_model=True):
    A = rng.integers(-8, 8, (M, K))
    W = rng.integers(-8, 8, (K, N))
    prog = lower_gemm(cfg, A, W, _channel_quant(N) if per_channel else Q, df)
    plan = Plan(**prog.meta["plan"])
    assert plan == plan_tiles(cfg, M, K, N, df)
    _check(cfg, prog, gemm_perf(cfg, M, K, N, plan, per_channel), run_model)


def _conv_case(cfg, shape: ConvShape, df, per_channel, rng, run_model=True, pad_value=0):
    X = rng.integers(-8, 8, (shape.H, shape.W, shape.Cin))
    Wt = rng.integers(-8, 8, (shape.KH, shape.KW, shape.Cin // shape.groups, shape.Cout))
    prog = lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, _channel_quant(shape.Cout) if per_channel else Q, df,
                        groups=shape.groups, dilation=shape.dilation, pad_value=pad_value)
    plan = Plan(**prog.meta["plan"])
    assert plan == plan_tiles(cfg, *shape.gemm, df)
    _check(cfg, prog, conv_perf(cfg, shape, plan, per_channel), run_model)


# ------------------------------------------------------------------ hypothesis
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@settings(max_examples=150, **_SETTINGS)
@given(cfg_name=st.sampled_from(sorted(CONFIGS)), M=st.integers(1, 40), K=st.integers(1, 60), N=st.integers(1, 30),
       dfi=st.integers(0, 1), per_channel=st.booleans(), seed=st.integers(0, 2**16))
def test_gemm_equals_cycle_model(cfg_name, M, K, N, dfi, per_channel, seed):
    cfg = CONFIGS[cfg_name]
    dfs = _dataflows(cfg)
    _gemm_case(cfg, M, K, N, dfs[dfi % len(dfs)], per_channel, np.random.default_rng(seed))


@st.composite
def conv_shapes(draw):
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise"]))
    if kind == "plain":
        groups, Cg, Og = 1, draw(st.integers(1, 6)), draw(st.integers(1, 10))
    elif kind == "grouped":
        groups, Cg, Og = draw(st.integers(2, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    else:
        groups, Cg, Og = draw(st.integers(2, 6)), 1, draw(st.integers(1, 2))
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    H, W = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    shape = ConvShape(H, W, groups * Cg, KH, KW, groups * Og, stride, pads, dil, groups)
    if shape.OH < 1 or shape.OW < 1:
        shape = ConvShape(H + dil[0] * (KH - 1), W + dil[1] * (KW - 1), groups * Cg, KH, KW, groups * Og, stride,
                          pads, dil, groups)
    return shape


@settings(max_examples=150, **_SETTINGS)
@given(cfg_name=st.sampled_from(sorted(CONFIGS)), shape=conv_shapes(), dfi=st.integers(0, 1),
       per_channel=st.booleans(), pad_value=st.integers(-128, 127), seed=st.integers(0, 2**16))
def test_conv_equals_cycle_model(cfg_name, shape, dfi, per_channel, pad_value, seed):
    cfg = CONFIGS[cfg_name]
    dfs = _dataflows(cfg)
    _conv_case(cfg, shape, dfs[dfi % len(dfs)], per_channel, np.random.default_rng(seed), pad_value=pad_value)


@settings(max_examples=600, **_SETTINGS)
@given(cfg_name=st.sampled_from(sorted(CONFIGS)), shape=conv_shapes(), dfi=st.integers(0, 1),
       per_channel=st.booleans())
def test_conv_equals_instruction_sums(cfg_name, shape, dfi, per_channel):
    """Many more shapes against the emitted stream's closed-form durations (no model run: the cycle
    model's count is that sum by construction, as the tests above check)."""
    cfg = CONFIGS[cfg_name]
    dfs = _dataflows(cfg)
    _conv_case(cfg, shape, dfs[dfi % len(dfs)], per_channel, np.random.default_rng(0), run_model=False)


@pytest.mark.parametrize("cfg_name", sorted(CONFIGS))
def test_random_programs(cfg_name):
    """The random-program generator's workloads (gemm, long-K gemm, conv, conv_q) from their meta."""
    cfg = CONFIGS[cfg_name]
    for prog, _ in random_programs(cfg, 10, seed=7, max_cycles=20_000):
        m = prog.meta
        plan = Plan(**m["plan"])
        per_channel = m["quant"][0] == "per-channel"
        if m["kind"] == "gemm":
            perf = gemm_perf(cfg, m["M"], m["K"], m["N"], plan, per_channel)
        else:
            shape = ConvShape(m["H"], m["W"], m["Cin"], m["KH"], m["KW"], m["Cout"], tuple(m["stride"]),
                              tuple(m["padding"]), tuple(m["dilation"]), m["groups"])
            perf = conv_perf(cfg, shape, plan, per_channel)
        _check(cfg, prog, perf)


# ------------------------------------------------------------------ real layers
def _topology(name: str) -> dict[str, ConvShape]:
    path = SCALESIM / f"{name}.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    out = {}
    with open(path, newline="") as f:
        for row in csv.reader(f):
            row = [c.strip() for c in row]
            if not row or not row[0] or row[0].lower().startswith("layer"):
                continue
            H, W, KH, KW, C, N, s = (int(v) for v in row[1:8])
            groups, cout = (C, C) if N == 1 and C > 1 else (1, N)
            ph, pw = (KH - 1) // 2, (KW - 1) // 2
            out[row[0]] = ConvShape(H, W, C, KH, KW, cout, s, (ph, pw, ph, pw), 1, groups)
    return out


def _scaled(s: ConvShape, hw: int, ch: int) -> ConvShape:
    """The layer with its input at most hw x hw and at most ch channels (stride, kernel, padding kept)."""
    H, W = min(s.H, hw), min(s.W, hw)
    if s.groups > 1:  # depthwise
        c = min(s.Cin, ch)
        return ConvShape(H, W, c, s.KH, s.KW, c, s.stride, s.pads, s.dilation, c)
    return ConvShape(H, W, min(s.Cin, ch), s.KH, s.KW, min(s.Cout, ch), s.stride, s.pads, s.dilation, 1)


REAL_SCALED = [("resnet50", n) for n in ("Conv1", "CB2a_2", "CB3a_1", "CB2a_3", "IB4b_2")] + \
              [("mobilenet", n) for n in ("Conv1", "Conv2", "Conv4", "Conv5")]


@pytest.mark.parametrize("cfg_name", ["both8", "r4c8", "tiny"])
@pytest.mark.parametrize("net,layer", REAL_SCALED)
def test_real_layers_scaled(net, layer, cfg_name):
    cfg = CONFIGS[cfg_name]
    shape = _scaled(_topology(net)[layer], 16 if cfg_name != "tiny" else 9, 24 if cfg_name != "tiny" else 10)
    for df in _dataflows(cfg):
        _conv_case(cfg, shape, df, False, np.random.default_rng(1))


BIG = AcceleratorConfig(controller="in-order", name="big16", rows=16, cols=16, dataflow="both", a_spad_depth=512, w_spad_depth=512,
                        acc_depth=256, max_reduction=8192)


@pytest.mark.parametrize("net,layer", [("resnet50", "IB5b_3"), ("resnet50", "CB4a_1"), ("mobilenet", "Conv26"),
                                       ("mobilenet", "Conv25")])
def test_real_layers_full_size(net, layer):
    """Unscaled layers on a 16x16 array with the planner's choice of dataflow."""
    shape = _topology(net)[layer]
    _conv_case(BIG, shape, None, False, np.random.default_rng(2))


# ------------------------------------------------------------------ host-port alignment
# Loads with contiguous lanes read whole host-port words, so their durations depend on each load's
# address modulo the port width: shapes whose strides are not multiples of the port bytes, on every
# port width, with odd channel counts, many groups and per-channel quantization tables (9-byte entries).
def _port_cfg(width: int, rows: int = 4, cols: int = 4, small: bool = False) -> AcceleratorConfig:
    a, w, acc = (10, 12, 8) if small else (64, 64, 32)
    return AcceleratorConfig(controller="in-order", name=f"p{width}r{rows}c{cols}", rows=rows, cols=cols, dataflow="both", a_spad_depth=a,
                             w_spad_depth=w, acc_depth=acc, host_port_width=width)


PORTS = [8, 16, 32, 64, 128]
ALIGN_GEMMS = [(7, 13, 11), (21, 37, 19), (9, 3, 45), (33, 17, 5), (5, 1, 23), (12, 129, 33)]


@pytest.mark.parametrize("width", PORTS)
@pytest.mark.parametrize("M,K,N", ALIGN_GEMMS)
def test_alignment_gemm(width, M, K, N):
    rng = np.random.default_rng(M * K * N)
    for small in (False, True):
        cfg = _port_cfg(width, small=small)
        for df in ("os", "ws"):
            for per_channel in (False, True):
                _gemm_case(cfg, M, K, N, df, per_channel, rng, run_model=not small)


ALIGN_CONVS = [
    ConvShape(9, 7, 3, 3, 3, 5, 1, 1),                    # odd channels
    ConvShape(11, 10, 5, 3, 2, 7, (2, 1), (1, 0, 2, 1)),  # odd channels, strides, asymmetric padding
    ConvShape(8, 9, 37, 3, 3, 37, 1, 1, 1, 37),           # depthwise, many groups
    ConvShape(7, 7, 29, 3, 3, 58, 2, 1, 1, 29),           # depthwise, channel multiplier 2
    ConvShape(6, 8, 15, 2, 3, 21, 1, (0, 1, 1, 1), (1, 2), 3),  # grouped, 5 in / 7 out channels per group
    ConvShape(9, 9, 1, 3, 3, 3, 1, 1),                    # one input channel: unit-stride lanes in os
    ConvShape(10, 10, 13, 1, 1, 17, 1, 0),                # pointwise
]


@pytest.mark.parametrize("width", PORTS)
@pytest.mark.parametrize("shape", ALIGN_CONVS, ids=[f"conv{i}" for i in range(len(ALIGN_CONVS))])
def test_alignment_conv(width, shape):
    rng = np.random.default_rng(shape.Cin * shape.Cout)
    for small in (False, True):
        cfg = _port_cfg(width, small=small)
        for df in ("os", "ws"):
            for per_channel in (False, True):
                _conv_case(cfg, shape, df, per_channel, rng, run_model=not small)


@settings(max_examples=200, **_SETTINGS)
@given(width=st.sampled_from(PORTS), R=st.sampled_from([2, 3, 4, 8]), C=st.sampled_from([2, 3, 5, 8]),
       shape=conv_shapes(), dfi=st.integers(0, 1), per_channel=st.booleans(), small=st.booleans())
def test_alignment_conv_instruction_sums(width, R, C, shape, dfi, per_channel, small):
    cfg = _port_cfg(width, R, C, small)
    _conv_case(cfg, shape, ("os", "ws")[dfi], per_channel, np.random.default_rng(0), run_model=False)


@settings(max_examples=200, **_SETTINGS)
@given(width=st.sampled_from(PORTS), R=st.sampled_from([2, 3, 4, 8]), C=st.sampled_from([2, 3, 5, 8]),
       M=st.integers(1, 40), K=st.integers(1, 70), N=st.integers(1, 40), dfi=st.integers(0, 1),
       per_channel=st.booleans(), small=st.booleans())
def test_alignment_gemm_instruction_sums(width, R, C, M, K, N, dfi, per_channel, small):
    cfg = _port_cfg(width, R, C, small)
    _gemm_case(cfg, M, K, N, ("os", "ws")[dfi], per_channel, np.random.default_rng(0), run_model=False)


def test_wide_loads_depend_on_alignment():
    """The same GEMM costs fewer load cycles on a wider port, and a contiguous-lane load's duration
    depends on its offset modulo the port bytes (so the tests above exercise the address-dependent rule)."""
    narrow, wide = _port_cfg(8), _port_cfg(128)
    plan = plan_tiles(wide, 16, 32, 16, "ws")
    assert gemm_perf(wide, 16, 32, 16, plan).load_cycles < gemm_perf(narrow, 16, 32, 16, plan).load_cycles
    ld = Load(1, 0, 0, 4, 0, 16, "W", 0, 32, 1)  # 4 words of 16 contiguous bytes, 32 bytes apart
    assert _load_stats([ld], 16) == (1, 4 + 1, 4, 64, 64)
    assert _load_stats([ld], 16, shift=1) == (1, 8 + 1, 4, 64, 64)
    assert _load_stats([ld._replace(offset=17)], 16) == _load_stats([ld], 16, shift=1)
    assert _load_stats([ld._replace(lane_stride=2)], 16) == (1, 64 + 1, 4, 64, 64)
    assert _load_stats([ld], 1) == (1, 64 + 1, 4, 64, 64)


# ------------------------------------------------------------------ pieces of the model
def test_layer_perf_sums_and_cache():
    cfg = CONFIGS["both8"]
    shape = ConvShape(9, 9, 4, 3, 3, 6, 1, 1)
    plan = plan_tiles(cfg, *shape.gemm)
    clear_cache()
    a = conv_perf(cfg, shape, plan)
    assert conv_perf(cfg, shape, plan) is a  # memoised
    two = a + a
    assert two.cycles == 2 * a.cycles and two.pes == a.pes and two.utilization == pytest.approx(a.utilization)
    assert a.macs == 81 * 36 * 6 and 0 < a.mac_utilization <= a.utilization <= 1
    assert a.load_cycles + a.compute_cycles + a.store_cycles + a.other_cycles == a.cycles


def test_errors():
    cfg = CONFIGS["os2"]
    with pytest.raises(LoweringError, match="does not support 'ws'"):
        gemm_perf(cfg, 4, 4, 4, Plan("ws", 2, 1, 2, 1, "m", 0))
    with pytest.raises(LoweringError, match="empty"):
        gemm_perf(cfg, 0, 4, 4, plan_tiles(cfg, 1, 4, 4))
    with pytest.raises(LoweringError, match="groups"):
        ConvShape(4, 4, 3, 1, 1, 4, groups=2)
    with pytest.raises(LoweringError, match="empty convolution"):
        conv_perf(cfg, ConvShape(2, 2, 1, 3, 3, 1), plan_tiles(cfg, 1, 9, 1))


def _merge_reference(pieces):
    """The lowering's original quadratic merge: try every kept load in order."""
    out: list = []
    for q in pieces:
        merged = True
        while merged:
            merged = False
            for i, p in enumerate(out):
                r = _try_merge(p, q) or _try_merge(q, p)
                if r is not None:
                    out.pop(i)
                    q = r
                    merged = True
                    break
        out.append(q)
    return out


@st.composite
def piece_sets(draw):
    """Disjoint pieces tiling a words x lanes grid (guillotine cuts), data ones read from a strided tensor."""
    words, lanes = draw(st.integers(1, 12)), draw(st.integers(1, 6))
    ws, ls = draw(st.sampled_from([1, 2, 6, 7])), draw(st.sampled_from([1, 3, 12, 13]))
    rects, todo = [], [(0, words, 0, lanes)]
    while todo:
        w0, w1, l0, l1 = todo.pop()
        cut = draw(st.integers(0, 3))
        if cut == 1 and w1 - w0 > 1:
            c = draw(st.integers(w0 + 1, w1 - 1))
            todo += [(w0, c, l0, l1), (c, w1, l0, l1)]
        elif cut == 2 and l1 - l0 > 1:
            c = draw(st.integers(l0 + 1, l1 - 1))
            todo += [(w0, w1, l0, c), (w0, w1, c, l1)]
        else:
            rects.append((w0, w1, l0, l1))
    pieces = []
    for w0, w1, l0, l1 in draw(st.permutations(rects)):
        n, m = w1 - w0, l1 - l0
        if draw(st.integers(0, 3)) == 0:
            pieces.append(Load(0, 1, w0, n, l0, m, None, 0, 0, 0))
        else:
            jitter = draw(st.sampled_from([0, 0, 0, 1]))
            pieces.append(Load(0, 0, w0, n, l0, m, "X", w0 * ws + l0 * ls + jitter, ws if n > 1 else 0,
                               ls if m > 1 else 0))
    return pieces


@settings(max_examples=300, **_SETTINGS)
@given(pieces=piece_sets())
def test_indexed_merge_equals_quadratic_merge(pieces):
    assert merge(pieces) == _merge_reference(pieces)
