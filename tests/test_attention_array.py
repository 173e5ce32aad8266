"""A MatMul of two activations (attention's Q·Kᵀ and probabilities·V) runs on the array with both zero
points exact (mappings.zero_points): the fill rule against brute force, and the executor's programs on the
cycle model against an independent integer reference (int64 accumulators of the centred operands,
requantized by sim.reference), for every kind of B zero point (0, the two ends of int8, uint8's 0 and 255)
and batch (heads) > 1; ``hwgen map`` plans the same extended reduction the run executes."""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.execute import run_quantized
from mappings.graph import Input, LayerGraph, MatMul, QuantParams, TensorInfo
from mappings.network_map import map_graph
from mappings.quantize import quantize_multiplier
from mappings.zero_points import extend_operands, fills
from sim.reference import ChannelQuant, requantize_any_ref

CFGS = [AcceleratorConfig(name="att4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=32),
        AcceleratorConfig(name="att8os", rows=8, cols=4, dataflow="os", controller="in-order")]


def test_fills_sum_to_minus_the_zero_point_in_int8():
    for zb in range(-128, 128):
        f = fills(zb)
        assert sum(f) == -zb and all(-128 <= v <= 127 for v in f), zb
        assert len(f) == (0 if zb == 0 else 1 + (zb == -128)), zb
    with pytest.raises(ValueError):
        fills(128)


@pytest.mark.parametrize("zb", [-128, -127, -5, 0, 3, 127])
def test_extended_operands_multiply_to_the_centred_product(zb):
    rng = np.random.default_rng(zb + 500)
    a = rng.integers(-128, 128, (5, 7))
    b = rng.integers(-128, 128, (7, 3))
    A, W = extend_operands(a, b, zb)
    assert A.dtype == W.dtype == np.int8 and A.shape[1] == W.shape[0] == 7 * (1 + len(fills(zb)))
    assert np.array_equal(A.astype(np.int64) @ W.astype(np.int64), a @ (b - zb))


def _matmul_graph(heads, M, K, N, qa, qb, qy) -> LayerGraph:
    g = LayerGraph("attention")
    g.add("a", Input(shape=(heads, M, K)), tensor=TensorInfo("a", (heads, M, K), qa.dtype, qa))
    g.add("b", Input(shape=(heads, K, N)), tensor=TensorInfo("b", (heads, K, N), qb.dtype, qb))
    g.add("y", MatMul(), ["a", "b"], tensor=TensorInfo("y", (heads, M, N), qy.dtype, qy))
    g.outputs = ["y"]
    g.validate()
    return g


def _qp(scale, zp, dtype):
    return QuantParams(np.float32(scale), np.asarray(zp, np.int64), dtype)


# (A's dtype and zero point, B's dtype and zero point): B's int8-domain zero point -128, 127, 0 and the rest
OPERANDS = [("int8", 3, "int8", -128), ("uint8", 0, "uint8", 255), ("int8", -128, "int8", 0),
            ("uint8", 131, "int8", 127), ("int8", 17, "uint8", 0)]


@pytest.mark.parametrize("cfg", CFGS, ids=[c.name for c in CFGS])
@pytest.mark.parametrize("da,za,db,zb", OPERANDS)
def test_matmul_on_the_array_equals_the_integer_reference(cfg, da, za, db, zb):
    rng = np.random.default_rng(abs(za) * 7 + abs(zb))
    heads, M, K, N = 3, 6, 9, 5
    qa, qb, qy = _qp(0.02, za, da), _qp(0.05, zb, db), _qp(0.07, 1, "int8")
    g = _matmul_graph(heads, M, K, N, qa, qb, qy)
    lo = {"int8": -128, "uint8": 0}
    a = rng.integers(lo[da], lo[da] + 256, (heads, M, K)).astype(da)
    b = rng.integers(lo[db], lo[db] + 256, (heads, K, N)).astype(db)
    run = run_quantized(g, {"a": np.zeros(a.shape, np.float32), "b": np.zeros(b.shape, np.float32)}, cfg,
                        feed={"a": a, "b": b})
    (layer,) = [r for r in run.layers if r.name == "y"]
    assert layer.where == "accelerator" and layer.cycles > 0
    got = run.values["y"].native().astype(np.int64)
    mult, shift = quantize_multiplier(0.02 * 0.05 / 0.07)
    quant = ChannelQuant(np.zeros(N, np.int64), np.full(N, mult), np.full(N, shift), 1, -128, 127, False)
    acc = (a.astype(np.int64) - za) @ (b.astype(np.int64) - zb)  # the real product, in quanta of sa*sb
    want = np.stack([requantize_any_ref(h, quant) for h in acc])
    assert np.array_equal(got, want)
    # the mapped cycles of the layer are the run's
    (row,) = [r for r in map_graph(g, cfg).rows if r.layer == "y"]
    assert row.cycles == layer.cycles and row.gemm == (M, K * (1 + len(fills(zb - 128 * (db == "uint8")))), N)
    assert layer.macs == row.macs == heads * M * K * N
