"""The native C++ Verilator harness (hwgen.native) against the cycle model.

Random lowered programs (GEMMs, long reductions, extreme operands,
convolutions) run in one native process per configuration; memory, the
hardware cycle counter and the busy-PE counter must equal the cycle model's,
and the harness's own edge count must equal the hardware counter. One
configuration uses a 128-bit host port, whose data ports are Verilator
``VlWide`` arrays. Builds go to the project cache (a few seconds each for 4x4).
"""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.native import build_native, run_images_native, run_programs_native
from mappings.random_programs import random_programs
from sim.cycle import CycleModel

pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("native")]

SMALL = dict(rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)
CONFIGS = [
    AcceleratorConfig(name="native4x4p64", dataflow="both", host_port_width=64, **SMALL),
    AcceleratorConfig(name="native4x4p128", dataflow="both", host_port_width=128, **SMALL),
    AcceleratorConfig(name="native4x4p32ws", dataflow="ws", host_port_width=32, **SMALL),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_random_programs_match_model(cfg):
    progs = [p for p, _ in random_programs(cfg, 8, seed=11, max_cycles=20_000)]
    results = run_programs_native(cfg, progs)
    model = CycleModel(cfg)   # one model across the batch, as the design keeps its scratchpads
    for prog, res in zip(progs, results):
        want = model.run(prog.image())
        name = prog.meta["name"]
        assert not res.error and not res.timed_out and not res.mem_oob, name
        assert res.outside_bytes == 0, name
        assert res.cycles == want.cycles == res.clock_cycles, name
        assert res.executor == "native", name
        assert res.busy_pe == want.busy_pe, name
        np.testing.assert_array_equal(res.memory, want.memory, err_msg=name)


def test_error_timeout_and_cache():
    cfg = CONFIGS[0]
    prog = random_programs(cfg, 1, seed=5)[0][0]
    bad = np.zeros(64, dtype=np.uint8)
    bad[0] = 0x0F                                   # opcode 15: not an instruction
    long_cycles = CycleModel(cfg).run(prog.image()).cycles
    res = run_images_native(cfg, [bad, prog.image(), prog.image()],
                            timeout_cycles=[1000, long_cycles // 2, 10 * long_cycles])
    assert res[0].error and not res[0].timed_out
    assert res[1].timed_out and not res[1].error
    assert not res[2].timed_out and res[2].cycles == long_cycles   # reset recovers after a timeout
    assert build_native(cfg, use_memo=False).cached               # the disk cache serves a second lookup
