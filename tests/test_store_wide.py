"""The wide store (col_stride == 1: one host-port word per beat, min(PB, C) requantizer lanes).

* the closed form ``hwgen.hw_facts.store_beats`` equals the per-row count (``sim.timing.load_beats``)
  for any alignment and signed row stride, on ints and evaluated as Amaranth values (as the RTL
  latches it at decode);
* the RTL under amaranth.sim against the cycle model (memory and cycles) on hand-written stores:
  aligned and misaligned rows, negative and zero row strides, overlapping rows, cols < PB and
  cols > PB, C < PB, C == PB and C > PB, one lane (C == 1, an 8-bit port), the quantization table on
  and off, and the narrow path (other column strides) keeping one element per cycle;
* the cycle model against an independent numpy reference on the same stores and on lowered GEMMs.
"""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.hw_facts import STORE_PIPELINE, store_beats, store_lanes
from hwgen.isa import Opcode, compute, config, halt, load, qtable_entry, store
from hwgen.program import Program, Region
from mappings.lowering import lower_gemm
from sim.cycle import CycleModel
from sim.reference import ChannelQuant, Quant, gemm_ref, requantize_ref
from sim.timing import exec_cycles, load_beats

CONFIGS = {
    "c3p128": AcceleratorConfig(name="c3p128", rows=2, cols=3, dataflow="os", host_port_width=128,
                                a_spad_depth=12, w_spad_depth=6, acc_depth=4),   # C < PB
    "c6p32": AcceleratorConfig(name="c6p32", rows=3, cols=6, dataflow="os", host_port_width=32,
                               a_spad_depth=12, w_spad_depth=6, acc_depth=6),    # C > PB
    "c4p32": AcceleratorConfig(name="c4p32", rows=2, cols=4, dataflow="os", host_port_width=32,
                               a_spad_depth=12, w_spad_depth=6, acc_depth=4),    # C == PB
    "c5p16": AcceleratorConfig(name="c5p16", rows=2, cols=5, dataflow="os", host_port_width=16,
                               a_spad_depth=12, w_spad_depth=6, acc_depth=4),    # two lanes, C > PB
    "c1p64": AcceleratorConfig(name="c1p64", rows=2, cols=1, dataflow="os", host_port_width=64,
                               a_spad_depth=12, w_spad_depth=6, acc_depth=4),    # one lane (C == 1)
    "c4p8": AcceleratorConfig(name="c4p8", rows=2, cols=4, dataflow="os", host_port_width=8,
                              a_spad_depth=12, w_spad_depth=6, acc_depth=4),     # one lane (8-bit port)
}
K = 6
A_AT, W_AT, Q_AT, OUT, SIZE = 384, 448, 512, 640, 1280
OUT_C = 896  # store bases are OUT_C + an offset
QUANT = Quant(5, 7, 3, -128, 127)


def _beats_by_rows(pb, base, rows, row_stride, cols):
    return sum(((base + r * row_stride) % pb + cols - 1) // pb + 1 for r in range(rows))


def test_lanes():
    assert [store_lanes(CONFIGS[k]) for k in CONFIGS] == [3, 4, 4, 2, 1, 1]


def test_closed_form_equals_per_row_count():
    rng = np.random.default_rng(3)
    for pb in (1, 2, 4, 8, 16):
        for _ in range(3000):
            base = int(rng.integers(0, 1 << 20))
            rows, cols = int(rng.integers(1, 70)), int(rng.integers(1, 80))
            rs = int(rng.integers(-(1 << 19), 1 << 19)) if rng.random() < 0.2 else int(rng.integers(-40, 41))
            expect = _beats_by_rows(pb, base, rows, rs, cols)
            assert store_beats(pb, base, rows, rs, cols) == expect == load_beats(pb, base, rows, rs, cols)


@pytest.mark.parametrize("pb", [2, 4, 16])
def test_closed_form_on_amaranth_values(pb):
    """The RTL evaluates the same expression on the store fields (decode-cycle combinational logic)."""
    from amaranth import Module, Signal, signed
    from amaranth.sim import Simulator

    base, rows, rs, cols = Signal(32), Signal(16), Signal(signed(20)), Signal(9)
    out = Signal(26)
    m = Module()
    m.d.comb += out.eq(store_beats(pb, base, rows, rs, cols))
    rng = np.random.default_rng(pb)
    cases = [(int(rng.integers(0, 1 << 32)), int(rng.integers(1, 1 << 16)), int(rng.integers(-(1 << 19), 1 << 19)),
              int(rng.integers(1, 512))) for _ in range(40)] + [(5, 3, -1, 7), ((1 << 32) - 1, 65535, -(1 << 19), 511)]
    got = []

    async def bench(ctx):
        for b, r, s, c in cases:
            ctx.set(base, b)
            ctx.set(rows, r)
            ctx.set(rs, s)
            ctx.set(cols, c)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    # the host address wraps at 32 bits in hardware; only the base's residue matters
    assert got == [_beats_by_rows(pb, b, r, s, c) for b, r, s, c in cases]


def _stores(cfg):
    """(rows, cols, base offset, row_stride, col_stride, qtable, relu) of the stores of one program."""
    R, C, pb = cfg.rows, cfg.cols, cfg.host_port_bytes
    n = 2 * R
    return [
        (n, C, 0, C, 1, 0, 0),                       # aligned start, rows back to back
        (n, C, 3, 13, 1, 1, 0),                      # misaligned, the table
        (R, C, pb - 1, -9, 1, 0, 1),                 # negative stride, rows crossing a word, relu
        (n, max(1, C - 1), 5, -pb, 1, 1, 0),         # cols < C, negative stride of one word
        (3, 1, 2, 7, 1, 0, 0),                       # one column
        (2, C, 1, 0, 1, 1, 0),                       # row stride 0: the second row overwrites the first
        (n, C, 6, 2, 1, 0, 0),                       # overlapping rows (stride < cols)
        (n, C, pb + 2, 2 * pb + 1, 1, 1, 1),         # several words apart
        (R, C, 4, 11, 2, 0, 0),                      # narrow: column stride 2
        (2, C, 30, -5, -1, 1, 0),                    # narrow: negative column stride
        (2, C, 9, 3, 0, 0, 0),                       # narrow: column stride 0
    ]


def _program(cfg, seed):
    R, C = cfg.rows, cfg.cols
    rng = np.random.default_rng(seed)
    a = rng.integers(-20, 21, (2, K, R)).astype(np.int8)  # two A blocks: depth K words of R lanes
    w = rng.integers(-20, 21, (K, C)).astype(np.int8)
    bias = rng.integers(-2000, 2000, C)
    mult = rng.integers(1, 1 << 12, C)
    shift = rng.integers(8, 13, C)
    q = np.frombuffer(b"".join(qtable_entry(int(bias[j]), int(mult[j]), int(shift[j])) for j in range(C)), np.uint8)
    code = [config(multiplier=QUANT.multiplier, shift=QUANT.shift, zero_point=QUANT.zero_point,
                   clamp_lo=QUANT.clamp_lo, clamp_hi=QUANT.clamp_hi),
            load(target="a", spad_addr=0, count=2 * K, lane_off=0, lanes=R, base=A_AT, word_stride=R, lane_stride=1),
            load(target="w", spad_addr=0, count=K, lane_off=0, lanes=C, base=W_AT, word_stride=C, lane_stride=1),
            load(target="q", spad_addr=0, count=C, lane_off=0, lanes=9, base=Q_AT, word_stride=9, lane_stride=1),
            compute(dataflow="os", accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=R, depth=K),
            compute(dataflow="os", accumulate=0, a_addr=K, w_addr=0, o_addr=R, rows=R, depth=K)]
    for rows, cols, off, rs, cs, qt, relu in _stores(cfg):
        code.append(store(relu=relu, qtable=qt, o_addr=0, rows=rows, cols=cols, base=OUT_C + off, row_stride=rs,
                          col_stride=cs))
    code.append(halt())
    prog = Program(code, {"A": (Region(A_AT, (a.size,)), a.reshape(-1)), "W": (Region(W_AT, (w.size,)), w.reshape(-1)),
                          "Q": (Region(Q_AT, (q.size,), "uint8"), q)},
                   {"out": Region(OUT, (SIZE - OUT,), "uint8")}, SIZE)
    # the accumulators: row i of block b is A_b[:, i] @ W
    acc = np.concatenate([a[b].astype(np.int64).T @ w.astype(np.int64) for b in range(2)])
    return prog, acc, (bias, mult, shift)


def _reference_memory(cfg, prog, acc, table):
    """The host memory after the program, by the requantization rule of sim.reference, element by
    element in row-major order (a later element overwrites an earlier one at the same address)."""
    mem = prog.image().copy()
    bias, mult, shift = table
    for rows, cols, off, rs, cs, qt, relu in _stores(cfg):
        for r in range(rows):
            for c in range(cols):
                v = int(acc[r, c])
                q = QUANT._replace(relu=bool(relu))
                if qt:
                    v += int(bias[c])
                    q = q._replace(multiplier=int(mult[c]), shift=int(shift[c]))
                mem[OUT_C + off + r * rs + c * cs] = int(requantize_ref(np.array([v]), q)[0]) & 0xFF
    return mem


@pytest.mark.parametrize("name", list(CONFIGS))
def test_model_against_reference_and_timing(name):
    cfg = CONFIGS[name]
    prog, acc, table = _program(cfg, seed=len(name))
    prog.check(cfg)
    res = CycleModel(cfg).run(prog.image())
    ref = _reference_memory(cfg, prog, acc, table)
    diff = np.flatnonzero(res.memory != ref)
    assert diff.size == 0, f"{diff.size} bytes differ from the reference, first at {diff[0]}"
    stores = [t for t in res.trace if t.instruction.op == Opcode.STORE]
    pb = cfg.host_port_bytes
    for t, (rows, cols, off, rs, cs, qt, relu) in zip(stores, _stores(cfg)):
        issues = _beats_by_rows(pb, OUT_C + off, rows, rs, cols) if cs == 1 else rows * cols
        assert exec_cycles(cfg, t.instruction) == issues + STORE_PIPELINE
    wide = [exec_cycles(cfg, t.instruction) - STORE_PIPELINE for t in stores[:8]]
    elements = [rows * cols for rows, cols, *_ in _stores(cfg)[:8]]
    if store_lanes(cfg) > 1:
        assert sum(wide) < sum(elements)  # the lanes do save cycles
    else:
        assert wide == elements


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rtl_matches_model(name):
    from hwgen.pysim import run_program_pysim

    cfg = CONFIGS[name]
    prog, _, _ = _program(cfg, seed=len(name))
    image = prog.image()
    model = CycleModel(cfg).run(image)
    rtl = run_program_pysim(cfg, image, max_cycles=2 * model.cycles + 1000)
    assert not rtl.error
    diff = np.flatnonzero(rtl.memory != model.memory)
    assert diff.size == 0, (f"{diff.size} bytes differ, first at {diff[0]}: RTL {rtl.memory[diff[0]]} "
                            f"vs model {model.memory[diff[0]]}")
    assert rtl.cycles == model.cycles


@pytest.mark.parametrize("name", ["c3p128", "c6p32", "c5p16"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_lowered_gemm_wide_stores(name, per_channel):
    """Lowered GEMMs (every store wide, rows N bytes apart: misaligned for odd N) on the model against
    the reference, and one of them on the RTL."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(11)
    for M, Kd, N in ((5, 4, 7), (4, 3, 13), (7, 6, 11)):
        A = rng.integers(-30, 31, (M, Kd)).astype(np.int8)
        W = rng.integers(-30, 31, (Kd, N)).astype(np.int8)
        if per_channel:
            q = ChannelQuant(rng.integers(-500, 500, N), rng.integers(1, 1 << 10, N), rng.integers(6, 10, N),
                             -4, -128, 127, bool(N % 2))
        else:
            q = Quant(7, 6, 2, -100, 110, True)
        prog = lower_gemm(cfg, A, W, q, dataflow="os")
        assert all(i.col_stride == 1 for i in prog.instructions if i.op == Opcode.STORE)
        res = CycleModel(cfg).run(prog.image())
        assert np.array_equal(prog.outputs["out"].read(res.memory), gemm_ref(A, W, q))
    from hwgen.pysim import run_program_pysim

    rtl = run_program_pysim(cfg, prog.image(), max_cycles=2 * res.cycles + 1000)
    assert np.array_equal(rtl.memory, res.memory) and rtl.cycles == res.cycles
