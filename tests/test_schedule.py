"""The generation-2 timing recurrence (sim.schedule) against a cycle-stepped machine built from the rules.

The machine below is written the way the decoupled controller will be: a dispatcher that fetches,
decodes and pushes, one queue and one execution slot per unit, and dependencies recorded at push time
against the instructions then in flight. It shares nothing with the recurrence but the footprints and
durations, so agreement on random programs (with many conflicts, full queues and fences) checks the
recurrence's shortcuts: only the youngest conflicting instruction per unit, the pruned window, the
closed-form queue-slot rule.
"""

import random

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import AcceleratorConfig
from hwgen.isa import compute, config, fence, halt, load, store
from hwgen.footprint import Access, Structure as S, conflict, footprint
from hwgen.hw_facts import SHADOW_TAILS, compute_schedule
from sim.schedule import UNIT_OF, Unit, schedule
from sim.timing import DECODE_CYCLES, exec_cycles, fetch_cycles

CFG = AcceleratorConfig(controller="in-order", rows=4, cols=4, dataflow="both", a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                        host_port_width=32)
#: the decoupled controller's array has shadow weights: weight-stationary computes overlap
SHADOW = AcceleratorConfig(rows=2, cols=3, dataflow="both", a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                           host_port_width=32, controller="decoupled")
#: 1x1: consecutive computes may start two cycles apart, the most draining at once
SHADOW_1X1 = AcceleratorConfig(rows=1, cols=1, dataflow="both", a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                               host_port_width=32, controller="decoupled")


def overlap_ready(cfg, program, running, head, t, start):
    """Whether a compute may start at ``t`` beside the ``running`` one (shadow weights): both
    weight-stationary, ``issue_interval`` after the running one's start."""
    if not cfg.shadow_weights:
        return False
    cur = compute_schedule(cfg.rows, cfg.cols, program[running].args["dataflow"], True)
    nxt = compute_schedule(cfg.rows, cfg.cols, program[head].args["dataflow"], True)
    if not (cur.overlaps and nxt.overlaps):
        return False
    return t >= start[running] + cur.issue_interval(program[running].args["rows"])


def draining(program, t, start, end):
    """Computes started before ``t`` that have not ended by ``t`` - 1 (they would occupy a tail)."""
    return sum(1 for j, ins in enumerate(program) if UNIT_OF.get(ins.op) is Unit.COMPUTE
               and start[j] is not None and start[j] < t and end[j] >= t)


def stepped(cfg, program, queue_depth):
    """Cycle-by-cycle: returns (push, start, end, cycles) like sim.schedule.schedule."""
    F = fetch_cycles(cfg) + DECODE_CYCLES
    n = len(program)
    push, start, end = [None] * n, [None] * n, [None] * n
    deps = [()] * n
    queues = {u: [] for u in set(UNIT_OF.values())}
    running = {u: None for u in queues}          # index executing in the unit
    popped_at = {u: [] for u in queues}          # pop cycles, to know when a slot is free again
    pc, fetch_start = 0, 0
    t = 0
    while True:
        # ---- units: finish, then start the head if it may (sees pushes of earlier cycles only)
        for u in queues:
            r = running[u]
            if r is not None and end[r] < t:
                running[u] = None
            if queues[u] and (running[u] is None
                              or (u is Unit.COMPUTE
                                  and overlap_ready(cfg, program, running[u], queues[u][0], t, start))):
                i = queues[u][0]
                if push[i] < t and all(end[d] is not None and end[d] < t for d in deps[i]):
                    if u is Unit.COMPUTE:
                        assert draining(program, t, start, end) <= SHADOW_TAILS, "more tails than the hardware has"
                    queues[u].pop(0)
                    start[i] = t
                    end[i] = t + max(1, exec_cycles(cfg, program[i])) - 1
                    running[u] = i
                    popped_at[u].append(t)
        # ---- dispatcher: push the decoded instruction if its unit's queue has room
        if t >= fetch_start + F:
            ins = program[pc]
            u = UNIT_OF.get(ins.op)
            if u is None:
                idle = all(end[j] is not None and end[j] < t for j in range(pc) if UNIT_OF.get(program[j].op))
                if idle:
                    push[pc] = t
                    if ins.op.name == "HALT":
                        return push, start, end, t + 1
                    pc, fetch_start = pc + 1, t + 1
            else:
                occupied = len(queues[u]) + sum(1 for s in popped_at[u] if s >= t)  # a pop frees from the next cycle
                if occupied < queue_depth:
                    fp = footprint(cfg, ins)
                    found = []
                    for v in queues:
                        if v is u:
                            continue
                        in_flight = [j for j in range(pc) if UNIT_OF.get(program[j].op) is v
                                     and (end[j] is None or end[j] >= t)]
                        hits = [j for j in in_flight if conflict(fp, footprint(cfg, program[j]))]
                        if hits:
                            found.append(max(hits))
                    deps[pc] = tuple(found)
                    push[pc] = t
                    queues[u].append(pc)
                    pc, fetch_start = pc + 1, t + 1
        t += 1
        assert t < 10**6, "stepped machine did not finish"


def random_program(rnd: random.Random, n: int):
    """Instructions over tiny ranges so that they conflict often."""
    out = []
    for _ in range(n):
        kind = rnd.choice("LLLCCSSf" + "c")
        if kind == "L":
            out.append(load(target=rnd.randrange(3) if rnd.random() < 0.2 else rnd.randrange(2),
                            zero=int(rnd.random() < 0.2), spad_addr=rnd.randrange(4), count=rnd.randrange(1, 4),
                            lane_off=0, lanes=rnd.randrange(1, 5), base=rnd.randrange(0, 64),
                            word_stride=rnd.randrange(-4, 9), lane_stride=rnd.randrange(-1, 3)))
        elif kind == "C":
            df = rnd.randrange(2)
            out.append(compute(dataflow=df, accumulate=rnd.randrange(2), a_addr=rnd.randrange(8),
                               w_addr=rnd.randrange(8), o_addr=rnd.randrange(8), rows=rnd.randrange(1, 5),
                               depth=rnd.randrange(1, 5)))
        elif kind == "S":
            out.append(store(relu=0, qtable=rnd.randrange(2), o_addr=rnd.randrange(8), rows=rnd.randrange(1, 4),
                             cols=rnd.randrange(1, 5), base=rnd.randrange(0, 64), row_stride=rnd.randrange(-8, 9),
                             col_stride=rnd.randrange(-1, 3)))
        elif kind == "c":
            out.append(config(multiplier=1, shift=0, zero_point=0, clamp_lo=-128, clamp_hi=127))
        else:
            out.append(fence())
    return out + [halt()]


@settings(max_examples=120, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), queue_depth=st.integers(1, 5),
       cfg=st.sampled_from([CFG, SHADOW, SHADOW_1X1]))
def test_recurrence_equals_stepped_machine(seed, n, queue_depth, cfg):
    prog = random_program(random.Random(seed), n)
    want_push, want_start, want_end, want_cycles = stepped(cfg, prog, queue_depth)
    got = schedule(cfg, prog, queue_depth=queue_depth)
    assert got.cycles == want_cycles
    for i, ins in enumerate(prog):
        if UNIT_OF.get(ins.op) is None:
            assert got.push[i] == want_push[i], (i, ins)
        else:
            assert (got.push[i], got.start[i], got.end[i]) == (want_push[i], want_start[i], want_end[i]), (i, ins)


def test_independent_units_overlap_and_conflicts_serialise():
    """A store of rows a compute is not writing runs beside it; a store of the rows it writes waits."""
    comp = compute(dataflow=0, accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=4, depth=30)
    free = store(relu=0, qtable=0, o_addr=8, rows=4, cols=4, base=1000, row_stride=4, col_stride=1)
    busy = store(relu=0, qtable=0, o_addr=2, rows=4, cols=4, base=1000, row_stride=4, col_stride=1)
    for st_ins, overlaps in ((free, True), (busy, False)):
        s = schedule(CFG, [comp, st_ins, halt()])
        assert (s.start[1] <= s.end[0]) == overlaps
        if not overlaps:
            assert s.start[1] == s.end[0] + 1


def test_footprints():
    """Worked by hand from the ISA's semantics (hwgen/isa.py docstring)."""
    # words 3, 4; bytes 100 + w*(-10) + l*2 for w < 2, l < 4: 90 .. 106
    ld = load(target=0, zero=0, spad_addr=3, count=2, lane_off=0, lanes=4, base=100, word_stride=-10, lane_stride=2)
    assert footprint(CFG, ld) == (Access(S.A, 3, 5, True), Access(S.HOST, 90, 107, False))
    zero = load(target=1, zero=1, spad_addr=0, count=4, lane_off=0, lanes=4, base=0, word_stride=0, lane_stride=0)
    assert footprint(CFG, zero) == (Access(S.W, 0, 4, True),)
    q = load(target=2, zero=0, spad_addr=1, count=3, lane_off=0, lanes=9, base=0, word_stride=9, lane_stride=1)
    assert footprint(CFG, q) == (Access(S.Q, 1, 4, True), Access(S.HOST, 0, 27, False))
    # rows 1, 2; bytes 50 + r*8 + c for r < 2, c < 3: 50 .. 60
    sto = store(relu=0, qtable=1, o_addr=1, rows=2, cols=3, base=50, row_stride=8, col_stride=1)
    assert footprint(CFG, sto) == (Access(S.ACC, 1, 3, False), Access(S.HOST, 50, 61, True), Access(S.Q, 0, 3, False))
    # os: depth A words and depth W words streamed, rows output rows written
    os_c = compute(dataflow=0, accumulate=1, a_addr=2, w_addr=5, o_addr=7, rows=3, depth=6)
    assert footprint(CFG, os_c) == (Access(S.A, 2, 8, False), Access(S.W, 5, 11, False), Access(S.ACC, 7, 10, True))
    # ws: depth weight rows preloaded, rows A words streamed, rows output rows written
    ws_c = compute(dataflow=1, accumulate=0, a_addr=2, w_addr=5, o_addr=7, rows=9, depth=3)
    assert footprint(CFG, ws_c) == (Access(S.A, 2, 11, False), Access(S.W, 5, 8, False), Access(S.ACC, 7, 16, True))
    # read/read never conflicts; a write against any overlapping access does
    assert not conflict([Access(S.A, 0, 4, False)], [Access(S.A, 2, 6, False)])
    assert conflict([Access(S.A, 0, 4, True)], [Access(S.A, 3, 6, False)])
    assert not conflict([Access(S.A, 0, 4, True)], [Access(S.A, 4, 6, True)])
    assert not conflict([Access(S.A, 0, 4, True)], [Access(S.W, 0, 4, True)])


def test_queue_depth_must_be_positive():
    with pytest.raises(ValueError, match="queue_depth"):
        schedule(CFG, [halt()], queue_depth=0)


@pytest.mark.parametrize("dataflow, queue_depth", [("both", 1), ("os", 3), ("ws", 4)])
def test_decoupled_cycle_model(dataflow, queue_depth):
    """The model on a decoupled config: the in-order model's memory (sequential semantics), the stepped
    machine's cycles, and each instruction's trace entry at its scheduled start."""
    import dataclasses

    from mappings.random_programs import random_programs
    from sim.cycle import CycleModel

    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4, dataflow=dataflow, host_port_width=32)
    dec = dataclasses.replace(cfg, controller="decoupled", queue_depth=queue_depth)
    for prog, expected in random_programs(cfg, 6, seed=5, max_cycles=3000):
        seq, got = CycleModel(cfg).run(prog.image()), CycleModel(dec).run(prog.image())
        assert np.array_equal(seq.memory, got.memory)
        assert np.array_equal(prog.outputs["out"].read(got.memory), expected)
        push, start, end, cycles = stepped(dec, prog.instructions, queue_depth)
        assert got.cycles == cycles and got.busy_pe == seq.busy_pe
        assert [t.start for t in got.trace] == [s if s is not None else p for p, s in zip(push, start)]


def test_decoupled_model_refuses_a_store_into_the_program():
    import dataclasses

    from hwgen.program import Program, ProgramError
    from sim.cycle import CycleModel, ModelError

    dec = dataclasses.replace(CFG, controller="decoupled")
    prog = Program([store(relu=0, qtable=0, o_addr=0, rows=1, cols=4, base=16, row_stride=0, col_stride=1),
                    halt()], mem_size=256)
    with pytest.raises(ModelError, match="inside the program's own instructions"):
        CycleModel(dec).run(prog.image())
    with pytest.raises(ProgramError, match="instruction 0 \\(store\\): writes host bytes 16..19"):
        prog.check(dec)
    prog.check(CFG)  # in order, it is the program's business
    CycleModel(CFG).run(prog.image())


@pytest.mark.parametrize("cfg", [CFG, SHADOW], ids=["in-order-cfg", "shadow"])
def test_periodic_cycles_skips_repeats_exactly(cfg):
    """periodic_cycles on region sequences with long repeats (and a tail that breaks the period) equals
    schedule() of the concatenated instructions, and does skip: fewer instructions are stepped."""
    import sim.schedule as S
    from sim.schedule import periodic_cycles, record

    rnd = random.Random(3)
    for trial in range(6):
        # a period of 1-3 regions, each a few loads, computes and stores over two halves
        period = []
        for r in range(rnd.randrange(1, 4)):
            half = 8 * (r % 2)
            period.append([load(target=0, zero=0, spad_addr=half, count=4, lane_off=0, lanes=4, base=64 + 16 * r,
                                word_stride=4, lane_stride=1),
                           compute(dataflow=rnd.randrange(2), accumulate=1, a_addr=half, w_addr=0, o_addr=half,
                                   rows=rnd.randrange(1, 5), depth=4),
                           store(relu=0, qtable=0, o_addr=half, rows=2, cols=4, base=512, row_stride=4, col_stride=1)])
        reps = rnd.randrange(150, 200)   # the units' backlog settles within a few dozen periods
        regions = [[load(target=1, zero=1, spad_addr=0, count=4, lane_off=0, lanes=4, base=0)]]
        regions += [period[i % len(period)] for i in range(reps * len(period))]
        regions += [[compute(dataflow=0, accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=4, depth=3)], [halt()]]
        ids, bodies, seq = {}, {}, []
        for reg in regions:
            key = tuple(map(repr, reg))
            rid = ids.setdefault(key, len(ids))
            bodies[rid] = [record(cfg, i) for i in reg]
            seq.append(rid)
        steps = [0]
        orig = S._Machine.step

        def counting(self, r, _orig=orig):
            steps[0] += 1
            return _orig(self, r)

        S._Machine.step = counting
        try:
            got = periodic_cycles(cfg, seq, bodies, queue_depth=2)
        finally:
            S._Machine.step = orig
        flat = [i for reg in regions for i in reg]
        assert got == schedule(cfg, flat, queue_depth=2).cycles, trial
        assert steps[0] < 0.6 * len(flat), (trial, steps[0], len(flat))
