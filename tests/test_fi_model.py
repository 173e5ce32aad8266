"""The cycle-model fault injector: its cycle-by-cycle compute equals the tile-level model, and
faults behave as the hardware schedule says."""

import numpy as np
import pytest

from fault_injection.faults import Fault
from fault_injection.model_injector import ModelInjector, _State, simulate_compute
from hwgen.config import AcceleratorConfig
from hwgen.isa import Opcode
from mappings.lowering import lower_gemm
from mappings.random_programs import random_programs
from sim.cycle import CycleModel
from sim.reference import Quant
from sim.timing import exec_cycles

CONFIGS = [
    AcceleratorConfig(controller="in-order", rows=2, cols=2, dataflow="os", a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                      host_port_width=32),
    AcceleratorConfig(controller="in-order", rows=4, cols=4, dataflow="ws", a_spad_depth=48, w_spad_depth=16, acc_depth=48),
    AcceleratorConfig(controller="in-order", rows=3, cols=5, dataflow="both", a_spad_depth=40, w_spad_depth=40, acc_depth=40),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.rows}x{c.cols}{c.dataflow}")
def test_cycle_level_compute_equals_tile_model(cfg):
    """Without a fault, simulate_compute reproduces every compute's result and length exactly."""
    n = 0
    for prog, _ in random_programs(cfg, 8, seed=11):
        st = _State(CycleModel(cfg), prog.image())
        for ins in prog.instructions:
            if ins.op == Opcode.HALT:
                break
            if ins.op == Opcode.COMPUTE:
                other = st.copy()
                ended, cycles = simulate_compute(cfg, ins, other)
                st.model.execute(ins, st.mem, "tile")
                assert ended and cycles == exec_cycles(cfg, ins)
                np.testing.assert_array_equal(other.model.acc_buf, st.model.acc_buf)
                n += 1
            else:
                st.model.execute(ins, st.mem, "tile")
    assert n > 20


@pytest.fixture(scope="module")
def gemm():
    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4, dataflow="both", a_spad_depth=64, w_spad_depth=64, acc_depth=64)
    rng = np.random.default_rng(0)
    A = rng.integers(-128, 128, (20, 24)).astype(np.int8)
    W = rng.integers(-128, 128, (24, 12)).astype(np.int8)
    prog = lower_gemm(cfg, A, W, Quant(1 << 20, 30, 0, -128, 127, False), dataflow="ws")
    return cfg, prog, ModelInjector(cfg, prog)


def test_outcomes_follow_the_schedule(gemm):
    cfg, prog, inj = gemm
    g = inj.golden()
    last_store = max(i for i, ins in enumerate(g.instructions) if ins.op == Opcode.STORE)
    after = g.starts[last_store + 1]
    res = inj.inject([
        Fault("ctrl.cycle_counter", "seu", g.cycles // 2, 3),                 # counters never reach memory
        Fault("array.pe_r0_c0.acc", "seu", after, 30),                  # array state after the last compute
        Fault("a_spad", "seu", after, 1, word=0),                       # scratchpads after the last use
        Fault("store.q_multiplier", "seu", g.starts[1] + 5, 29),              # used by every store later
    ])
    assert [r.outcome for r in res] == ["masked", "masked", "masked", "sdc"]
    assert res[0].early_stop


def test_statistics_are_deterministic(gemm):
    cfg, prog, inj = gemm
    rng = np.random.default_rng(5)
    g = inj.golden()
    faults = [Fault(s, "seu", int(rng.integers(0, g.cycles)), int(rng.integers(0, w)), word=int(rng.integers(0, d)))
              for s, w, d in [("array.pe_r1_c2.acc", 32, 1), ("acc_buf", 128, 64), ("w_spad", 32, 64)]
              for _ in range(30)]
    first = inj.inject(faults)
    again = ModelInjector(cfg, prog).inject(faults)
    assert first == again
    assert {r.outcome for r in first} == {"masked", "sdc"}
