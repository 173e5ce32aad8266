"""The cocotb regression on Verilator: RTL == cycle model == numpy reference.

Each configuration is built once (cached on disk by configuration hash) and all
of its random programs run in one simulator process; every program is then
reported as its own test case. Programs are GEMMs whose M, K, N are not
multiples of the array and span several tiles, reductions longer than the
scratchpads (accumulation across tiles), operands at the int8 extremes, and
convolutions with stride and padding lowered to strided loads, ReLU on and off
(mappings/random_programs.py).
"""

import pytest

from hwgen.config import AcceleratorConfig
from hwgen.verify import verify_programs
from mappings.random_programs import random_programs

PROGRAMS_PER_CONFIG = 32

CONFIGS = {
    "os2x2": AcceleratorConfig(name="os2x2", rows=2, cols=2, dataflow="os", a_spad_depth=32, w_spad_depth=32,
                               acc_depth=16, host_port_width=32),
    "ws4x4": AcceleratorConfig(name="ws4x4", rows=4, cols=4, dataflow="ws", a_spad_depth=48, w_spad_depth=16,
                               acc_depth=48),
    "both8x8": AcceleratorConfig(name="both8x8", rows=8, cols=8, dataflow="both", a_spad_depth=64,
                                 w_spad_depth=64, acc_depth=64, host_port_width=128),
    "ws4x8": AcceleratorConfig(name="ws4x8", rows=4, cols=8, dataflow="ws", a_spad_depth=40, w_spad_depth=24,
                               acc_depth=40, host_port_width=16, acc_width=24, max_reduction=256),
}

_cache: dict[str, object] = {}


def _results(name: str):
    if name not in _cache:
        cfg = CONFIGS[name]
        cases = random_programs(cfg, PROGRAMS_PER_CONFIG, seed=sum(map(ord, name)))
        _cache[name] = verify_programs(cfg, cases, rtl=True)
    return _cache[name]


@pytest.mark.rtl
@pytest.mark.parametrize("index", range(PROGRAMS_PER_CONFIG))
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xdist_group(f"rtl-{n}")) for n in CONFIGS])
def test_rtl_matches_model_and_reference(name, index):
    check = _results(name).checks[index]
    assert check.ok, f"{name} {check.name}: " + "; ".join(check.problems)
