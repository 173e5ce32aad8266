"""Per-column quantization table (bias, multiplier, shift) and fill-value loads:
RTL (amaranth.sim) == cycle model == an independent numpy computation."""

import numpy as np
import pytest

from hwgen import isa
from hwgen.config import AcceleratorConfig
from hwgen.pysim import run_program_pysim
from sim.cycle import CycleModel
from sim.reference import requantize_ref


@pytest.mark.parametrize("dataflow,seed", [("os", 1), ("ws", 2), ("os", 3)])
def test_per_column_bias_multiplier_shift_and_fill(dataflow, seed):
    rng = np.random.default_rng(seed)
    cfg = AcceleratorConfig(rows=3, cols=4, dataflow="both", a_spad_depth=16, w_spad_depth=16, acc_depth=16,
                            host_port_width=32)
    M, K, N = 3, 5, 4
    fill = int(rng.integers(-128, 128))
    A = rng.integers(-128, 128, (M, K)).astype(np.int8)
    W = rng.integers(-128, 128, (K, N)).astype(np.int8)
    bias = rng.integers(-50000, 50000, N)
    mult = rng.integers(1 << 20, 1 << 21, N)
    shift = rng.integers(29, 32, N)
    table = b"".join(isa.qtable_entry(int(b), int(m), int(s)) for b, m, s in zip(bias, mult, shift))
    A_eff = A.astype(np.int64).copy()
    if dataflow == "os":  # A words are columns of A; overwrite column K-1 rows 1..2 with the fill value
        loads = [isa.load(target="a", count=K, lanes=M, base=512, word_stride=1, lane_stride=K),
                 isa.load(target="a", zero=1, spad_addr=K - 1, count=1, lane_off=1, lanes=2, base=fill & 0xFF)]
        A_eff[1:3, K - 1] = fill
        comp = isa.compute(dataflow="os", rows=M, depth=K)
    else:  # A words are rows of A (K <= rows is needed: use K = 3 lanes) -> fill row M-1 lanes 0..1
        K = 3
        A, A_eff, W = A[:, :K], A_eff[:, :K], W[:K]
        loads = [isa.load(target="a", count=M, lanes=K, base=512, word_stride=5, lane_stride=1),
                 isa.load(target="a", zero=1, spad_addr=M - 1, count=1, lane_off=0, lanes=2, base=fill & 0xFF)]
        A_eff[M - 1, 0:2] = fill
        comp = isa.compute(dataflow="ws", rows=M, depth=K)
    prog = loads + [
        isa.load(target="w", count=K, lanes=N, base=768, word_stride=N, lane_stride=1),
        isa.load(target="q", count=N, lanes=isa.QTABLE_BYTES, base=900, word_stride=isa.QTABLE_BYTES, lane_stride=1),
        comp,
        isa.config(multiplier=1 << 20, shift=30, zero_point=-3, clamp_lo=-128, clamp_hi=127),
        isa.store(relu=int(dataflow == "os"), qtable=1, rows=M, cols=N, base=1024, row_stride=N, col_stride=1),
        isa.halt()]
    mem = np.zeros(2048, np.uint8)
    code = isa.assemble(prog)
    mem[:len(code)] = np.frombuffer(code, np.uint8)
    mem[512:512 + 15] = np.resize(A.view(np.uint8).ravel(), 15) if dataflow == "os" else 0
    if dataflow == "ws":
        full = np.zeros((M, 5), np.int8)
        full[:, :K] = A
        mem[512:512 + 15] = full.view(np.uint8).ravel()
    mem[768:768 + K * N] = W.view(np.uint8).ravel()
    mem[900:900 + len(table)] = np.frombuffer(table, np.uint8)

    acc = A_eff @ W.astype(np.int64)
    expected = np.stack([requantize_ref(acc[:, n] + bias[n], (int(mult[n]), int(shift[n]), -3, -128, 127, dataflow == "os"))
                         for n in range(N)], axis=1).astype(np.int8)
    model = CycleModel(cfg).run(mem)
    np.testing.assert_array_equal(model.memory[1024:1024 + M * N].view(np.int8).reshape(M, N), expected)
    assert len(set(expected.ravel())) > 2  # not all saturated: the test can tell columns apart
    rtl = run_program_pysim(cfg, mem)
    np.testing.assert_array_equal(rtl.memory, model.memory)
    assert (rtl.cycles, rtl.busy_pe) == (model.cycles, model.busy_pe)
