"""amaranth.sim unit tests of the PE and the systolic array against numpy."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwgen.array import SystolicArray
from hwgen.pe import ProcessingElement


def _wrap(x: int, bits: int) -> int:
    return ((x + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("seed", range(3))
def test_pe_output_stationary_accumulates_and_wraps(seed):
    rng = np.random.default_rng(seed)
    acc_w = 12  # narrow on purpose: the sum must wrap like two's complement
    dut = ProcessingElement(8, 8, acc_w)
    a = rng.integers(-128, 128, 40)
    b = rng.integers(-128, 128, 40)

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for sig, v in ((dut.b_shift, 1), (dut.acc_self, 1), (dut.mul_en, 1), (dut.use_b_reg, 0)):
            ctx.set(sig, v)
        for x, y in zip(a, b):
            ctx.set(dut.a_in, int(x))
            ctx.set(dut.b_in, int(y))
            await ctx.tick()
            assert ctx.get(dut.a_out) == x and ctx.get(dut.b_out) == y  # operands move on
        assert ctx.get(dut.acc_out) == _wrap(int(np.dot(a, b)), acc_w)

    _run(dut, bench)


def test_pe_weight_stationary_holds_weight():
    dut = ProcessingElement(8, 8, 32)

    async def bench(ctx):
        ctx.set(dut.b_shift, 1)
        ctx.set(dut.b_in, -7)
        await ctx.tick()
        ctx.set(dut.b_shift, 0)
        ctx.set(dut.b_in, 99)  # must be ignored while the weight is held
        for sig, v in ((dut.use_b_reg, 1), (dut.mul_en, 1), (dut.acc_self, 0)):
            ctx.set(sig, v)
        for x, ps in ((3, 10), (-128, -5), (127, 1 << 20)):
            ctx.set(dut.a_in, x)
            ctx.set(dut.psum_in, ps)
            await ctx.tick()
            assert ctx.get(dut.acc_out) == ps + x * -7
        assert ctx.get(dut.b_out) == -7

    _run(dut, bench)


def _pack(vals, width):
    out = 0
    for i, v in enumerate(vals):
        out |= (int(v) & ((1 << width) - 1)) << (i * width)
    return out


def _unpack(word, n, width):
    vals = [(word >> (i * width)) & ((1 << width) - 1) for i in range(n)]
    return [v - (1 << width) if v >> (width - 1) else v for v in vals]


@pytest.mark.parametrize("R,C,K", [(2, 2, 5), (3, 4, 7), (4, 3, 1), (1, 5, 4)])
def test_array_output_stationary_matches_numpy(R, C, K):
    rng = np.random.default_rng(R * 100 + C * 10 + K)
    A = rng.integers(-128, 128, (R, K))
    W = rng.integers(-128, 128, (K, C))
    dut = SystolicArray(R, C, 8, 8, 32, os=True, ws=True)

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        for sig, v in ((dut.b_shift, 1), (dut.b_skew, 1), (dut.acc_self, 1), (dut.mul_en, 1)):
            ctx.set(sig, v)
        for k in range(K + R + C - 2):  # stream K words, then zeros through the skew
            ctx.set(dut.a_feed, _pack(A[:, k], 8) if k < K else 0)
            ctx.set(dut.b_feed, _pack(W[k, :], 8) if k < K else 0)
            await ctx.tick()
        got = np.array([[ctx.get(dut.pes[i][j].acc) for j in range(C)] for i in range(R)])
        np.testing.assert_array_equal(got, A @ W)
        # readout: rows leave the bottom, last row first, aligned
        ctx.set(dut.acc_self, 0)
        ctx.set(dut.mul_en, 0)
        for r in range(R):
            np.testing.assert_array_equal(_unpack(ctx.get(dut.out), C, 32), (A @ W)[R - 1 - r])
            await ctx.tick()
        assert all(ctx.get(dut.pes[i][j].acc) == 0 for i in range(R) for j in range(C))

    _run(dut, bench)


@pytest.mark.parametrize("R,C,M", [(2, 2, 4), (3, 4, 6), (4, 2, 1)])
def test_array_weight_stationary_matches_numpy(R, C, M):
    rng = np.random.default_rng(R * 100 + C * 10 + M)
    A = rng.integers(-128, 128, (M, R))
    W = rng.integers(-128, 128, (R, C))
    dut = SystolicArray(R, C, 8, 8, 32, os=True, ws=True)

    async def bench(ctx):
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        ctx.set(dut.b_shift, 1)
        ctx.set(dut.use_b_reg, 1)
        ctx.set(dut.deskew, 1)
        for i in reversed(range(R)):  # bottom row first
            ctx.set(dut.b_feed, _pack(W[i], 8))
            await ctx.tick()
        ctx.set(dut.b_shift, 0)
        ctx.set(dut.b_feed, 0)
        ctx.set(dut.mul_en, 1)
        rows = []
        for t in range(M + R + C):
            ctx.set(dut.a_feed, _pack(A[t], 8) if t < M else 0)
            await ctx.tick()
            if t >= R + C - 2 and len(rows) < M:  # first aligned row after R + C - 1 cycles
                rows.append(_unpack(ctx.get(dut.out), C, 32))
        np.testing.assert_array_equal(np.array(rows), A @ W)

    _run(dut, bench)
