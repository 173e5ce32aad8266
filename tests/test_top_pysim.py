"""The whole Accelerator under amaranth.sim (no Verilator) against the cycle model.

Small random lowered programs (GEMMs with ragged tiles, long reductions,
extreme operands, strided/padded convolutions) on three tiny configurations
that differ in dataflow, shape and host-port width (8-bit: 16 fetch beats per
instruction; 128-bit: one), plus a hand-written program with negative strides,
partial lanes, zero loads, accumulation and both dataflows. Final host memory,
cycle count and busy-PE count must equal the model's, and the error flag must
stay low. This catches RTL bugs before (and without) the Verilator regression.
"""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.isa import compute, config, fence, halt, load, store
from hwgen.program import Program, Region
from hwgen.pysim import run_program_pysim
from mappings.random_programs import KINDS, random_programs
from sim.cycle import CycleModel

CONFIGS = {
    "both2x2": AcceleratorConfig(name="both2x2", rows=2, cols=2, dataflow="both", a_spad_depth=16,
                                 w_spad_depth=16, acc_depth=16, host_port_width=32),
    "os3x2": AcceleratorConfig(name="os3x2", rows=3, cols=2, dataflow="os", a_spad_depth=12, w_spad_depth=12,
                               acc_depth=8, host_port_width=128),
    "ws2x3": AcceleratorConfig(name="ws2x3", rows=2, cols=3, dataflow="ws", a_spad_depth=12, w_spad_depth=8,
                               acc_depth=12, host_port_width=8, acc_width=24, max_reduction=256),
}
#: Three of each kind per configuration; 0.1-0.4 s each under amaranth.sim (about 6 s in all).
N_PROGRAMS = 3 * len(KINDS)
MAX_CYCLES = 8000

_programs: dict[str, list] = {}


def _cases(name: str):
    if name not in _programs:
        _programs[name] = random_programs(CONFIGS[name], N_PROGRAMS, seed=sum(map(ord, name)), max_cycles=MAX_CYCLES)
    return _programs[name]


def _check(cfg: AcceleratorConfig, prog: Program) -> None:
    prog.check(cfg)
    image = prog.image()
    model = CycleModel(cfg).run(image)
    rtl = run_program_pysim(cfg, image, max_cycles=2 * model.cycles + 1000)
    assert not rtl.error, "RTL raised its illegal-instruction error"
    assert rtl.memory.shape == model.memory.shape
    diff = np.flatnonzero(rtl.memory != model.memory)
    assert diff.size == 0, (f"{diff.size} memory bytes differ, first at {diff[0]}: "
                            f"RTL {rtl.memory[diff[0]]} vs model {model.memory[diff[0]]}")
    assert (rtl.cycles, rtl.busy_pe) == (model.cycles, model.busy_pe)


@pytest.mark.parametrize("index", range(N_PROGRAMS))
@pytest.mark.parametrize("name", list(CONFIGS))
def test_random_program_matches_model(name, index):
    cfg = CONFIGS[name]
    prog, expected = _cases(name)[index]
    assert np.array_equal(prog.outputs["out"].read(CycleModel(cfg).run(prog.image()).memory), expected)
    _check(cfg, prog)


def test_random_programs_cover_both_dataflows():
    """The 'both' configuration's set exercises os and ws compute instructions."""
    dfs = {ins.dataflow for prog, _ in _cases("both2x2") for ins in prog.instructions if ins.op.name == "COMPUTE"}
    assert dfs == {0, 1}


def test_hand_written_program_with_negative_strides_and_both_dataflows():
    cfg = CONFIGS["both2x2"]
    rng = np.random.default_rng(7)
    A_AT, W_AT, OUT1, OUT2, SIZE = 512, 576, 640, 672, 704
    a = rng.integers(-128, 128, 40, dtype=np.int64).astype(np.int8)
    w = rng.integers(-128, 128, 40, dtype=np.int64).astype(np.int8)
    a[:4] = [-128, 127, -128, 127]
    code = [
        config(multiplier=3, shift=2, zero_point=5, clamp_lo=-20, clamp_hi=100),
        # A words 0..4 read backwards (word_stride < 0), lanes 3 bytes apart
        load(target="a", spad_addr=0, count=5, lane_off=0, lanes=2, base=A_AT + 30, word_stride=-2, lane_stride=3),
        # zero lane 1 of words 5..6 (padding); lane 0 keeps what is there
        load(target="a", zero=1, spad_addr=5, count=2, lane_off=1, lanes=1),
        load(target="a", spad_addr=5, count=2, lane_off=0, lanes=1, base=A_AT + 35, word_stride=1),
        # W: lane 1 then lane 0, one at a time, lane 1 with a negative word stride
        load(target="w", spad_addr=0, count=7, lane_off=1, lanes=1, base=W_AT + 38, word_stride=-3),
        load(target="w", spad_addr=0, count=7, lane_off=0, lanes=1, base=W_AT, word_stride=5),
        compute(dataflow="os", accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=2, depth=7),
        compute(dataflow="os", accumulate=1, a_addr=2, w_addr=1, o_addr=0, rows=1, depth=3),
        compute(dataflow="ws", accumulate=0, a_addr=0, w_addr=0, o_addr=2, rows=6, depth=2),
        compute(dataflow="ws", accumulate=1, a_addr=1, w_addr=3, o_addr=3, rows=4, depth=1),
        fence(),
        store(relu=0, o_addr=0, rows=2, cols=2, base=OUT1 + 3, row_stride=-2, col_stride=-1),
        config(multiplier=-(1 << 20), shift=23, zero_point=128, clamp_lo=0, clamp_hi=255),
        store(relu=1, o_addr=2, rows=6, cols=2, base=OUT2, row_stride=2, col_stride=1),
        store(relu=0, o_addr=4, rows=1, cols=1, base=OUT2 + 20, row_stride=0, col_stride=0),
        halt(),
    ]
    prog = Program(code, {"A": (Region(A_AT, (40,)), a), "W": (Region(W_AT, (40,)), w)},
                   {"out": Region(OUT1, (SIZE - OUT1,), "uint8")}, SIZE)
    model = CycleModel(cfg).run(prog.image())
    assert np.count_nonzero(model.memory[OUT2:OUT2 + 12]) > 0  # the program does produce output
    _check(cfg, prog)
