"""The decoupled controller's RTL (hwgen.units.dispatcher) against its specification, sim.schedule.

On decoupled configurations, for random programs: the final memory equals the in-order cycle model's
(sequential semantics: the scoreboard keeps every dependency), the cycle counter equals
``sim.schedule.schedule(cfg, instructions, queue_depth=cfg.queue_depth).cycles`` and busy_pe the
model's. Two kinds of programs: the lowered random programs of mappings/random_programs.py, and short
programs over tiny ranges (as tests/test_schedule.py's) so that instructions conflict often and
queues fill. Under amaranth.sim (a few programs) and the native Verilator harness (more, marked rtl).
"""

import dataclasses
import random

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig, Controller
from hwgen.isa import INSTR_BYTES, QTABLE_BYTES, compute, config, fence, halt, load, store
from hwgen.program import Program, Region
from mappings.random_programs import random_programs
from sim.cycle import CycleModel
from sim.schedule import schedule

CONFIGS = {
    "2x2-os-p32-q1": AcceleratorConfig(name="d2x2", rows=2, cols=2, dataflow="os", a_spad_depth=16,
                                       w_spad_depth=16, acc_depth=16, host_port_width=32,
                                       controller="decoupled", queue_depth=1),
    "4x4-ws-p64-q4": AcceleratorConfig(name="d4x4", rows=4, cols=4, dataflow="ws", a_spad_depth=48,
                                       w_spad_depth=16, acc_depth=48, host_port_width=64,
                                       controller="decoupled", queue_depth=4),
    "4x8-os-p128-q2": AcceleratorConfig(name="d4x8", rows=4, cols=8, dataflow="os", a_spad_depth=40,
                                        w_spad_depth=24, acc_depth=40, host_port_width=128,
                                        controller="decoupled", queue_depth=2),
    "2x3-both-p16-q3": AcceleratorConfig(name="d2x3", rows=2, cols=3, dataflow="both", a_spad_depth=16,
                                         w_spad_depth=16, acc_depth=16, host_port_width=16,
                                         controller="decoupled", queue_depth=3),
}

#: the host data region of the conflict programs: [DATA, DATA + DATA_BYTES), after the code
DATA_BYTES = 256


def in_order(cfg: AcceleratorConfig) -> AcceleratorConfig:
    return dataclasses.replace(cfg, controller=Controller.IN_ORDER)


def conflict_program(cfg: AcceleratorConfig, rnd: random.Random, n: int) -> Program:
    """A prologue that zeroes every word the body touches, then ``n`` random instructions over tiny
    scratchpad, accumulator and host ranges (many conflicts, full queues, fences), then halt."""
    R, C = cfg.rows, cfg.cols
    modes = [0] if cfg.dataflow.value == "os" else [1] if cfg.dataflow.value == "ws" else [0, 1]
    body = []
    code_words = 8 + (8 // R + 1) + n + 2
    data = -(-(code_words * INSTR_BYTES) // 64) * 64 + 64
    for _ in range(n):
        kind = rnd.choice("LLLCCSSfc")
        if kind == "L":
            tgt = 2 if rnd.random() < 0.15 else rnd.randrange(2)
            lanes_max, depth = ((R, 8), (C, 8), (QTABLE_BYTES, C))[tgt]
            count = rnd.randrange(1, min(4, depth) + 1)
            lanes = rnd.randrange(1, lanes_max + 1)
            lane_off = rnd.randrange(lanes_max - lanes + 1)
            body.append(load(target=tgt, zero=int(rnd.random() < 0.2), spad_addr=rnd.randrange(depth - count + 1),
                             count=count, lane_off=lane_off, lanes=lanes, base=data + 64 + rnd.randrange(64),
                             word_stride=rnd.randrange(-4, 9), lane_stride=rnd.randrange(-1, 3)))
        elif kind == "C":
            df = rnd.choice(modes)
            if df == 0:
                rows, depth = rnd.randrange(1, R + 1), rnd.randrange(1, 5)
                a_words = depth
            else:
                rows, depth = rnd.randrange(1, 5), rnd.randrange(1, R + 1)
                a_words = rows
            body.append(compute(dataflow=df, accumulate=rnd.randrange(2), a_addr=rnd.randrange(8 - a_words + 1),
                                w_addr=rnd.randrange(8 - depth + 1), o_addr=rnd.randrange(8 - rows + 1),
                                rows=rows, depth=depth))
        elif kind == "S":
            rows = rnd.randrange(1, 4)
            body.append(store(relu=rnd.randrange(2), qtable=rnd.randrange(2), o_addr=rnd.randrange(8 - rows + 1),
                              rows=rows, cols=rnd.randrange(1, C + 1), base=data + 128 + rnd.randrange(64),
                              row_stride=rnd.randrange(-8, 9), col_stride=rnd.randrange(-1, 3)))
        elif kind == "c":
            body.append(config(multiplier=rnd.randrange(-200, 200), shift=rnd.randrange(0, 9),
                               zero_point=rnd.randrange(-5, 6), clamp_lo=-100, clamp_hi=100))
        else:
            body.append(fence())
    # prologue: zero a/w words 0..7, the quantization table and accumulator rows 0..7
    pro = [load(target=0, zero=1, spad_addr=0, count=8, lane_off=0, lanes=R, base=0),
           load(target=1, zero=1, spad_addr=0, count=8, lane_off=0, lanes=C, base=0),
           load(target=2, zero=1, spad_addr=0, count=C, lane_off=0, lanes=QTABLE_BYTES, base=0)]
    for o in range(0, 8, R):
        pro.append(compute(dataflow=modes[0], accumulate=0, a_addr=0, w_addr=0, o_addr=min(o, 8 - R)
                           if modes[0] == 0 else o, rows=R if modes[0] == 0 else min(R, 8 - o), depth=1))
    code = pro + body + [halt()]
    assert len(code) * INSTR_BYTES <= data
    init = np.frombuffer(rnd.randbytes(DATA_BYTES), dtype=np.uint8).view(np.int8)
    region = Region(data, (DATA_BYTES,))
    return Program(code, {"data": (region, init)}, {"data": region}, data + DATA_BYTES)


def cases(name: str, n_lowered: int, n_conflict: int, seed: int) -> list[Program]:
    cfg = CONFIGS[name]
    out = [p for p, _ in random_programs(in_order(cfg), n_lowered, seed=seed, max_cycles=6000)]
    rnd = random.Random(seed)
    out += [conflict_program(cfg, rnd, rnd.randrange(5, 40)) for _ in range(n_conflict)]
    return out


def check(cfg: AcceleratorConfig, prog: Program, rtl) -> None:
    model = CycleModel(in_order(cfg)).run(prog.image())
    want = schedule(cfg, prog.instructions, queue_depth=cfg.queue_depth).cycles
    assert not rtl.error and not rtl.timed_out
    diff = np.flatnonzero(rtl.memory[:model.memory.size] != model.memory)
    assert diff.size == 0, (f"{diff.size} memory bytes differ, first at {diff[0]}: "
                            f"RTL {rtl.memory[diff[0]]} vs model {model.memory[diff[0]]}")
    assert (rtl.cycles, rtl.busy_pe) == (want, model.busy_pe), f"in-order model: {model.cycles} cycles"


def test_conflict_programs_are_valid_and_overlap():
    """The generator's programs pass Program.check, and decoupling does shorten them."""
    for name, cfg in CONFIGS.items():
        rnd = random.Random(1)
        for _ in range(5):
            prog = conflict_program(cfg, rnd, 30)
            prog.check(cfg)
            assert schedule(cfg, prog.instructions, queue_depth=cfg.queue_depth).cycles \
                < CycleModel(in_order(cfg)).run(prog.image()).cycles


# ---------------------------------------------------------------- amaranth.sim
@pytest.mark.parametrize("name", list(CONFIGS))
def test_pysim(name):
    from hwgen.pysim import PySimExecutor

    cfg = CONFIGS[name]
    progs = cases(name, 1, 3, seed=sum(map(ord, name)))
    ex = PySimExecutor(cfg, max_cycles=100_000)
    for prog in progs:
        prog.check(cfg)
        check(cfg, prog, ex.run(prog.image()))


# ---------------------------------------------------------------- native Verilator
N_LOWERED, N_CONFLICT = 12, 40
_results: dict[str, tuple] = {}


def _native(name: str):
    if name not in _results:
        from hwgen.native import NativeExecutor

        cfg = CONFIGS[name]
        progs = cases(name, N_LOWERED, N_CONFLICT, seed=1000 + sum(map(ord, name)))
        for p in progs:
            p.check(cfg)
        results = NativeExecutor(cfg).run_all([p.image() for p in progs], timeout_cycles=200_000)
        _results[name] = (progs, results)
    return _results[name]


@pytest.mark.rtl
@pytest.mark.parametrize("index", range(N_LOWERED + N_CONFLICT))
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"dec-{n}")) for n in CONFIGS])
def test_native(name, index):
    progs, results = _native(name)
    check(CONFIGS[name], progs[index], results[index])


# ---------------------------------------------------------------- overlapping computes (shadow weights)
#: 1x2: consecutive weight-stationary computes may start 2 cycles apart
SHADOW_CONFIGS = {
    "1x2-ws-q4": AcceleratorConfig(name="s1x2", rows=1, cols=2, dataflow="ws", a_spad_depth=16, w_spad_depth=16,
                                   acc_depth=16, host_port_width=32, controller="decoupled", queue_depth=4),
    "2x3-both-q4": dataclasses.replace(CONFIGS["2x3-both-p16-q3"], name="s2x3", queue_depth=4),
}


def burst_program(cfg: AcceleratorConfig, rnd: random.Random) -> Program:
    """Loads of random A and W words, then a fence and bursts of computes queued behind a long one (so
    that several start back to back, drain together and fill the tails), accumulating into overlapping
    rows (a row written by one and read back by the next), with a store of all rows at the end."""
    R, C = cfg.rows, cfg.cols
    code_words = 64
    data = code_words * INSTR_BYTES
    body = [load(target=0, zero=0, spad_addr=0, count=8, lane_off=0, lanes=R, base=data, word_stride=R, lane_stride=1),
            load(target=1, zero=0, spad_addr=0, count=8, lane_off=0, lanes=C, base=data + 64, word_stride=C,
                 lane_stride=1),
            fence()]
    modes = [1] if cfg.dataflow.value == "ws" else [0, 1]
    for _ in range(rnd.randrange(2, 5)):
        body.append(compute(dataflow=1, accumulate=rnd.randrange(2), a_addr=0, w_addr=rnd.randrange(4),
                            o_addr=rnd.randrange(4), rows=rnd.randrange(6, 9), depth=rnd.randrange(1, R + 1)))
        for _ in range(rnd.randrange(2, 6)):
            df = rnd.choice(modes) if rnd.random() < 0.2 else 1
            rows = rnd.randrange(1, 4) if df == 1 else rnd.randrange(1, R + 1)
            depth = rnd.randrange(1, R + 1) if df == 1 else rnd.randrange(1, 4)
            body.append(compute(dataflow=df, accumulate=rnd.randrange(2), a_addr=rnd.randrange(4),
                                w_addr=rnd.randrange(4), o_addr=rnd.randrange(8 - rows + 1), rows=rows, depth=depth))
        if rnd.random() < 0.5:
            body.append(store(relu=0, qtable=0, o_addr=0, rows=8, cols=C, base=data + 128, row_stride=C, col_stride=1))
    body.append(store(relu=0, qtable=0, o_addr=0, rows=8, cols=C, base=data + 192, row_stride=C, col_stride=1))
    pro = [config(multiplier=1 << 20, shift=20, zero_point=0, clamp_lo=-128, clamp_hi=127),
           load(target=2, zero=1, spad_addr=0, count=C, lane_off=0, lanes=QTABLE_BYTES, base=0)]
    pro += [compute(dataflow=1, accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=8, depth=1)]  # zero rows 0..7
    code = pro + body + [halt()]
    assert len(code) <= code_words
    init = np.frombuffer(rnd.randbytes(DATA_BYTES), dtype=np.uint8).view(np.int8)
    region = Region(data, (DATA_BYTES,))
    return Program(code, {"data": (region, init)}, {"data": region}, data + DATA_BYTES)


def _tails_used(cfg: AcceleratorConfig, prog: Program) -> int:
    """The most computes still draining when one started."""
    from sim.schedule import UNIT_OF, Unit

    s = schedule(cfg, prog.instructions, queue_depth=cfg.queue_depth)
    comp = [i for i, ins in enumerate(prog.instructions) if UNIT_OF.get(ins.op) is Unit.COMPUTE]
    return max(sum(1 for a in comp[:j] if s.end[a] >= s.start[b]) for j, b in enumerate(comp))


@pytest.mark.parametrize("name", list(SHADOW_CONFIGS))
def test_pysim_overlapping_computes(name):
    """Bursts of overlapping weight-stationary computes on amaranth.sim: the in-order model's memory,
    sim.schedule's cycles; the programs do fill both tails."""
    from hwgen.pysim import PySimExecutor

    cfg = SHADOW_CONFIGS[name]
    rnd = random.Random(7)
    progs = [burst_program(cfg, rnd) for _ in range(4)]
    from hwgen.hw_facts import SHADOW_TAILS

    assert max(_tails_used(cfg, p) for p in progs) == SHADOW_TAILS
    ex = PySimExecutor(cfg, max_cycles=100_000)
    for prog in progs:
        prog.check(cfg)
        check(cfg, prog, ex.run(prog.image()))
