"""Model and RTL fault injection agree: the same faults on the same workload give the same
per-structure failure rates (within their Clopper-Pearson intervals), fault by fault where the
cycle-model injector models the structure exactly."""

import numpy as np
import pytest

from fault_injection.model_injector import ModelInjector
from fault_injection.sampling import plan_faults
from fault_injection.stats import clopper_pearson
from hwgen.config import AcceleratorConfig
from mappings.lowering import lower_gemm
from sim.reference import Quant

CFG = AcceleratorConfig(name="fi4", rows=4, cols=4, dataflow="both", a_spad_depth=64, w_spad_depth=64,
                        acc_depth=64)


@pytest.mark.rtl
@pytest.mark.xdist_group("fi-rtl")
@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_model_and_rtl_injection_agree(dataflow):
    from fault_injection.rtl_injector import RtlInjector

    rng = np.random.default_rng(2026)
    A = rng.integers(-128, 128, (20, 24)).astype(np.int8)
    W = rng.integers(-128, 128, (24, 12)).astype(np.int8)
    prog = lower_gemm(CFG, A, W, Quant(1 << 20, 30, 3, -128, 127, False), dataflow=dataflow)
    model = ModelInjector(CFG, prog)
    golden = model.golden()
    faults = plan_faults(model.sites(), golden.cycles, n=400, seed=7, models=("seu", "mbu"))
    m_res = model.inject(faults)
    with RtlInjector(CFG, prog) as rtl:
        assert rtl.golden().cycles == golden.cycles
        r_res = rtl.inject(faults)
    same = sum(a.outcome == b.outcome for a, b in zip(m_res, r_res))
    mismatches = [(f, a.outcome, b.outcome) for f, a, b in zip(faults, m_res, r_res) if a.outcome != b.outcome]
    by_structure: dict[str, list[tuple[str, str]]] = {}
    for f, a, b in zip(faults, m_res, r_res):
        by_structure.setdefault(f.structure, []).append((a.outcome, b.outcome))
    for structure, pairs in by_structure.items():
        n = len(pairs)
        km = sum(a != "masked" for a, _ in pairs)
        kr = sum(b != "masked" for _, b in pairs)
        lo_m, hi_m = clopper_pearson(km, n, 0.99)
        lo_r, hi_r = clopper_pearson(kr, n, 0.99)
        assert lo_m <= hi_r and lo_r <= hi_m, f"{structure}: model {km}/{n} vs RTL {kr}/{n}"
    assert same == len(faults), f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
    assert {a.outcome for a in m_res} >= {"masked", "sdc"}
