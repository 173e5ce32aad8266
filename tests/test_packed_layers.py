"""Layers lowered with packed 4-bit weights (``lower_gemm`` / ``lower_conv2d`` with ``packed_weights``).

A packed layer holds W two weights per byte, each row padded to whole bytes, and fills the W scratchpad
with ``load target=w4``. Checked against independent references:

* outputs against the numpy integer reference (``sim.reference``), on the cycle model;
* the host W tensor against an element-by-element unpacking here (nibble ``n % 2`` of byte ``n // 2``);
* the analytical model (in order) and the decoupled cost path against the cycle model and the schedule
  of the emitted program, cycle for cycle, and the memoised stream against the lowering's;
* packing never costs a cycle, and saves them where a row of weights is wider than the host port;
* the executor packs exactly the layers whose weights fit [-8, 7] on a configuration built for it;
* RTL on Verilator equals the model on lowered packed layers (the configuration of
  tests/test_packed_weights.py, built once per run).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.config import AcceleratorConfig
from hwgen.isa import LoadTarget, Opcode
from mappings.lowering import LoweringError, lower_conv2d, lower_gemm, pack_weights
from mappings.mapper import legal_plans
from mappings.pipelined import decoupled_cycles, in_order, layer_instructions
from sim.cycle import CycleModel
from sim.perf import ConvShape, GemmShape, layer_perf
from sim.reference import ChannelQuant, Quant, conv2d_ref, gemm_ref
from sim.schedule import schedule
from sim.tiling import Plan

Q = Quant(1, 4, 0, -128, 127, False)
_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def _cfg(port: int, rows: int, cols: int, controller: str = "in-order", **kw) -> AcceleratorConfig:
    return AcceleratorConfig(name=f"pk{rows}x{cols}p{port}{controller[0]}", rows=rows, cols=cols, dataflow="both",
                             a_spad_depth=kw.pop("a", 24), w_spad_depth=kw.pop("w", 20), acc_depth=kw.pop("acc", 8),
                             host_port_width=port, controller=controller, packed_weights=True, **kw)


def _unpack_rows(packed: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((packed.shape[0], n), np.int64)
    for r in range(packed.shape[0]):
        for c in range(n):
            nib = (int(packed[r, c // 2]) >> (4 * (c % 2))) & 0xF
            out[r, c] = nib - 16 if nib >= 8 else nib
    return out


def _cq(n: int) -> ChannelQuant:
    return ChannelQuant(np.arange(n) - n // 2, np.ones(n, dtype=np.int64), np.full(n, 2), 0, -128, 127)


def _lower(cfg, shape, rng, plan=None, dataflow=None, per_channel=False, packed=True):
    """(program, numpy reference) of ``shape`` with random 4-bit operands."""
    G = getattr(shape, "groups", 1)
    q = _cq(shape.gemm[2] * G) if per_channel else Q
    if isinstance(shape, GemmShape):
        A = rng.integers(-8, 8, (shape.M, shape.K))
        W = rng.integers(-8, 8, (shape.K, shape.N))
        return (lower_gemm(cfg, A, W, q, dataflow, plan, packed_weights=packed), gemm_ref(A, W, q))
    X = rng.integers(-8, 8, (shape.H, shape.W, shape.Cin))
    Wt = rng.integers(-8, 8, (shape.KH, shape.KW, shape.Cin // G, shape.Cout))
    prog = lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, q, dataflow, groups=G, dilation=shape.dilation,
                        plan=plan, packed_weights=packed)
    return prog, conv2d_ref(X, Wt, shape.stride, shape.pads, q, groups=G, dilation=shape.dilation)


def test_pack_weights_layout():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 8):
        w = rng.integers(-8, 8, (3, n))
        p = pack_weights(w)
        assert p.dtype == np.uint8 and p.shape == (3, (n + 1) // 2)
        np.testing.assert_array_equal(_unpack_rows(p, n), w)
    with pytest.raises(LoweringError, match=r"4-bit: W values -9\.\.7 exceed \[-8, 7\]"):
        pack_weights(np.array([[-9, 7]]))


@st.composite
def _shapes(draw):
    if draw(st.booleans()):
        return GemmShape(draw(st.integers(1, 24)), draw(st.integers(1, 48)), draw(st.integers(1, 20)), True)
    g = draw(st.sampled_from([1, 1, 2, 3]))
    cout = g * draw(st.integers(1, 4)) * (2 if g > 1 else 1)  # even channels per group when grouped
    cin = g * draw(st.integers(1, 3))
    k = draw(st.sampled_from([1, 3]))
    return ConvShape(draw(st.integers(k, 8)), draw(st.integers(k, 8)), cin, k, k, cout, draw(st.integers(1, 2)),
                     draw(st.integers(0, k // 2)), groups=g, packed_weights=True)


@settings(max_examples=80, **_SETTINGS)
@given(port=st.sampled_from([8, 16, 32, 128]), rc=st.sampled_from([(2, 2), (4, 4), (3, 6), (4, 8)]),
       shape=_shapes(), dfi=st.integers(0, 1), per_channel=st.booleans(), seed=st.integers(0, 2**16))
def test_packed_layers_equal_reference_and_analytical_model(port, rc, shape, dfi, per_channel, seed):
    cfg = _cfg(port, *rc)
    rng = np.random.default_rng(seed)
    df = ("os", "ws")[dfi]
    prog, ref = _lower(cfg, shape, rng, dataflow=df, per_channel=per_channel)
    res = CycleModel(cfg).run(prog.image())
    np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
    M, K, N = shape.gemm
    n_total = N * getattr(shape, "groups", 1)
    region, data = prog.inputs["W"]
    assert region.dtype == "uint8" and data.shape == (K, (n_total + 1) // 2)
    w_loads = [i for i in prog.instructions if i.op is Opcode.LOAD and i.args["target"] in (1, 3)]
    assert w_loads and all(i.args["target"] == LoadTarget.W4 for i in w_loads)
    plan = Plan(**prog.meta["plan"])
    perf = layer_perf(cfg, shape, plan, per_channel)
    assert (perf.cycles, perf.busy_pe) == (res.cycles, res.busy_pe)
    plain = layer_perf(cfg, dataclasses.replace(shape, packed_weights=False), plan, per_channel)
    assert perf.cycles <= plain.cycles and perf.host_read_bytes <= plain.host_read_bytes
    if N >= 2:  # some W word then holds two weights a byte
        assert perf.host_read_bytes < plain.host_read_bytes
    assert (perf.w_spad_words, perf.w_spad_elems) == (plain.w_spad_words, plain.w_spad_elems)


def test_packing_saves_cycles_when_a_weight_row_is_wider_than_the_port():
    """8 columns on a 32-bit port: a plain W word takes two beats, a packed one one."""
    cfg = _cfg(32, 4, 8, a=64, w=64, acc=16)
    shape = GemmShape(4, 64, 32, True)
    prog, ref = _lower(cfg, shape, np.random.default_rng(3), dataflow="os")
    res = CycleModel(cfg).run(prog.image())
    np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
    plain, _ = _lower(cfg, shape, np.random.default_rng(3), dataflow="os", packed=False)
    res_plain = CycleModel(cfg).run(plain.image())
    saved = sum(i.args["count"] for i in plain.instructions
                if i.op is Opcode.LOAD and i.args["target"] == LoadTarget.W)  # one beat a W word
    assert res_plain.cycles - res.cycles == saved > 0


DEC = {
    "d4x4p32": _cfg(32, 4, 4, "decoupled", a=48, w=48, acc=24, queue_depth=2),
    "d3x6p16": _cfg(16, 3, 6, "decoupled", a=40, w=40, acc=24, queue_depth=1),
}
DEC_SHAPES = [GemmShape(13, 37, 11, True), GemmShape(5, 70, 6, True),
              ConvShape(7, 6, 4, 3, 3, 6, 1, 1, packed_weights=True),
              ConvShape(6, 5, 4, 3, 3, 4, 2, (1, 0, 1, 1), groups=2, packed_weights=True)]


@pytest.mark.parametrize("cfg_name", sorted(DEC))
@pytest.mark.parametrize("shape", DEC_SHAPES, ids=str)
def test_decoupled_packed_lowering_is_exact(cfg_name, shape):
    cfg = DEC[cfg_name]
    M, K, N = shape.gemm
    rng = np.random.default_rng(len(str(shape)) + len(cfg_name))
    plans = list(legal_plans(cfg, M, K, N, groups=getattr(shape, "groups", 1)))
    for plan in [plans[i] for i in sorted(rng.choice(len(plans), min(5, len(plans)), replace=False))]:
        per_channel = bool(rng.integers(2))
        prog, ref = _lower(cfg, shape, rng, plan=plan, per_channel=per_channel)
        res = CycleModel(in_order(cfg)).run(prog.image())
        np.testing.assert_array_equal(prog.outputs["out"].read(res.memory), ref)
        assert decoupled_cycles(cfg, shape, plan, per_channel) == \
            schedule(cfg, prog.instructions, queue_depth=cfg.queue_depth).cycles
        fast = layer_instructions(cfg, shape, plan, per_channel)
        assert [i for i in fast if i.op is not Opcode.CONFIG] == \
            [i for i in prog.instructions if i.op is not Opcode.CONFIG]


@pytest.mark.parametrize("cfg,shape,match", [
    (dataclasses.replace(_cfg(32, 4, 4), packed_weights=False), GemmShape(4, 4, 4, True), "packed_weights"),
    (_cfg(32, 3, 5), GemmShape(4, 4, 4, True), "cols=5"),
    (_cfg(32, 4, 4), ConvShape(4, 4, 3, 1, 1, 3, groups=3, packed_weights=True), "1 output channels per group"),
])
def test_unpackable_layers_are_refused_naming_the_limit(cfg, shape, match):
    with pytest.raises(LoweringError, match=match):
        _lower(cfg, shape, np.random.default_rng(0), dataflow="os")


def test_out_of_range_weights_are_refused():
    cfg = _cfg(32, 4, 4)
    with pytest.raises(LoweringError, match=r"exceed \[-8, 7\]"):
        lower_gemm(cfg, np.ones((2, 3), int), np.full((3, 4), 8), Q, "os", packed_weights=True)


def test_executor_packs_exactly_the_four_bit_layers():
    """A chain whose second layer is lowered to 4 bits: on a packed configuration that layer (only) runs
    packed, the network stays bit-exact with run_numpy, and its cycles are the analytical model's."""
    from mappings.execute import run_quantized
    from mappings.mixed_precision import WidthOption, cost_table, lower_graph, run_numpy
    from mappings.network_map import executed_layer_shape
    from mappings.network_map import load_model
    from mappings.onnx_models import mlp, quantize_qdq, random_inputs, save

    with tempfile.TemporaryDirectory() as d:
        fm = mlp(seed=2, features=(24, 40, 16, 8))
        save(fm, Path(d) / "f.onnx")
        quantize_qdq(Path(d) / "f.onnx", Path(d) / "m.onnx", "int8", True, seed=2)
        graph = load_model(str(Path(d) / "m.onnx"))
        x = next(iter(random_inputs(fm, seed=4)[0].values()))
    layers = graph.compute_layers()
    low = lower_graph(graph, {layers[1]: WidthOption(4, 8)})
    cfg = AcceleratorConfig(name="pkmlp", rows=4, cols=4, dataflow="both", host_port_width=16, packed_weights=True)
    plain_cfg = dataclasses.replace(cfg, name="plmlp", packed_weights=False)
    packed = {n: executed_layer_shape(cfg, low, n)[1].packed_weights for n in layers}
    assert packed == {n: n == layers[1] for n in layers}
    assert not any(executed_layer_shape(plain_cfg, low, n)[1].packed_weights for n in layers)
    run = run_quantized(low, x, cfg, backend="model")
    ref = run_numpy(low, x)
    for n in low.order():
        np.testing.assert_array_equal(np.asarray(run.values[n].q), np.asarray(ref.values[n].q))
    table = cost_table(cfg, graph, [WidthOption(8, 8), WidthOption(4, 8)])
    acc = {lr.name: lr.cycles for lr in run.layers if lr.where == "accelerator"}
    assert table.cycles.own[layers[1]][WidthOption(4, 8)] == acc[layers[1]]
    assert table.cycles.own[layers[1]][WidthOption(4, 8)] < table.cycles.own[layers[1]][WidthOption(8, 8)]


# ---------------------------------------------------------------------- Verilator
#: tests/test_packed_weights.py's decoupled configuration (the same key: one build per run)
RTL_CFG = AcceleratorConfig(name="pk4x6", rows=4, cols=6, dataflow="os", a_spad_depth=16, w_spad_depth=16,
                            acc_depth=8, host_port_width=32, packed_weights=True)


@pytest.mark.rtl
def test_rtl_equals_model_on_packed_layers():
    from hwgen.verify import verify_programs

    rng = np.random.default_rng(11)
    cases = [_lower(RTL_CFG, s, rng, dataflow="os", per_channel=bool(i % 2))
             for i, s in enumerate([GemmShape(6, 20, 12, True), GemmShape(9, 7, 5, True),
                                    ConvShape(5, 5, 3, 3, 3, 6, 1, 1, packed_weights=True),
                                    ConvShape(6, 6, 4, 3, 3, 4, 2, 1, groups=2, packed_weights=True)])]
    result = verify_programs(RTL_CFG, cases, rtl=True)
    bad = [(c.name, c.problems) for c in result.checks if c.problems]
    assert not bad, bad
    assert len(result.checks) == len(cases)
