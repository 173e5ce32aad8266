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
                        acc_depth=64, controller="in-order")


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


@pytest.mark.rtl
@pytest.mark.xdist_group("fi-rtl")
def test_store_faults_agree_fault_by_fault():
    """Faults during wide stores (rows misaligned in the port word, rows spanning two beats, the
    quantization table in use): the accumulator buffer, its read-port register, the table and the
    quantization registers, each at a cycle inside a store, give the RTL's outcome fault by fault."""
    from fault_injection.faults import Fault
    from fault_injection.rtl_injector import RtlInjector
    from hwgen.isa import Opcode
    from sim.reference import ChannelQuant
    from sim.timing import DECODE_CYCLES, exec_cycles, fetch_cycles

    rng = np.random.default_rng(88)
    A = rng.integers(-128, 128, (9, 8)).astype(np.int8)
    W = rng.integers(-128, 128, (8, 10)).astype(np.int8)  # N = 10: row starts 0, 2, 4, 6 in 8-byte words
    q = ChannelQuant(rng.integers(-3000, 3000, 10), rng.integers(1 << 10, 1 << 14, 10), rng.integers(8, 14, 10),
                     2, -100, 120, False)
    prog = lower_gemm(CFG, A, W, q, dataflow="os")
    stores = [ins for ins in prog.instructions if ins.op == Opcode.STORE]
    assert stores and all(ins.col_stride == 1 for ins in stores)
    pb = CFG.host_port_bytes
    assert any((ins.base + r * ins.row_stride) % pb + ins.cols > pb for ins in stores for r in range(ins.rows))
    model = ModelInjector(CFG, prog)
    golden = model.golden()
    acc_w, C = CFG.acc_width, CFG.cols
    faults = []
    for ins, start in zip(golden.instructions, golden.starts):
        if ins.op != Opcode.STORE:
            continue
        e0 = start + fetch_cycles(CFG) + DECODE_CYCLES
        n = exec_cycles(CFG, ins)
        for _ in range(12):
            cycle = int(rng.integers(e0 - 1, e0 + n + 1))
            kind = int(rng.integers(0, 4))
            if kind == 0:
                word = ins.o_addr + int(rng.integers(0, ins.rows))
                faults.append(Fault("acc_buf", "seu", cycle, int(rng.integers(0, C * acc_w)), word=word))
            elif kind == 1:
                faults.append(Fault("acc_buf.rd_data", "seu", cycle, int(rng.integers(0, C * acc_w))))
            elif kind == 2:
                faults.append(Fault(f"qtable_c{int(rng.integers(0, C))}", "seu", cycle, int(rng.integers(0, 70))))
            else:
                site, width = [("store.q_multiplier", 32), ("store.q_shift", 6), ("store.q_zero_point", 16),
                               ("store.q_clamp_lo", 16), ("store.q_clamp_hi", 16)][int(rng.integers(0, 5))]
                faults.append(Fault(site, "seu", cycle, int(rng.integers(0, width))))
    m_res = model.inject(faults)
    with RtlInjector(CFG, prog) as rtl:
        assert rtl.golden().cycles == golden.cycles
        r_res = rtl.inject(faults)
    mismatches = [(f, a.outcome, b.outcome) for f, a, b in zip(faults, m_res, r_res) if a.outcome != b.outcome]
    assert not mismatches, f"{len(mismatches)} of {len(faults)} differ, first: {mismatches[:5]}"
    assert sum(a.outcome == "sdc" for a in m_res) > len(faults) // 10
