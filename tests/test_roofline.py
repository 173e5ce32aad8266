"""The roofline bound of ``hwgen map`` (issue 8): ``max(MACs / PEs, host bytes / port bytes per cycle)``.

``sim.perf.LayerPerf.roofline`` is checked against a count made here from the lowered program itself (the
MACs of the layer's shape; the bytes its loads read, its stores write and its instructions take) and against
the cycle model's cycles (never below the bound); ``hwgen map`` shows it per layer and for the network, in
the table and in ``--json``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.isa import INSTR_BYTES, Opcode
from mappings.lowering import lower_conv2d, lower_gemm
from mappings.mapper import best_plan
from mappings.onnx_models import save, small_cnn
from sim.cycle import CycleModel
from sim.perf import ConvShape, GemmShape, roofline
from sim.reference import ChannelQuant, Quant

CONFIGS = (AcceleratorConfig(controller="in-order", name="r4", rows=4, cols=4, dataflow="both", a_spad_depth=96, w_spad_depth=96,
                             acc_depth=64),
           AcceleratorConfig(controller="in-order", name="r8w", rows=8, cols=4, dataflow="ws", host_port_width=128),
           AcceleratorConfig(controller="in-order", name="r2o", rows=2, cols=8, dataflow="os", host_port_width=16))
SHAPES = (GemmShape(1, 64, 40), GemmShape(37, 19, 23), ConvShape(9, 7, 5, 3, 3, 6, (2, 1), (1, 1, 0, 1)),
          ConvShape(8, 8, 12, 3, 3, 12, (1, 1), (1, 1, 1, 1), groups=12), ConvShape(6, 6, 16, 1, 1, 32))


def _program(cfg, shape, plan, per_channel, rng):
    n_out = shape.gemm[2] * getattr(shape, "groups", 1)
    q = (ChannelQuant(rng.integers(-50, 50, n_out), np.full(n_out, 1 << 20), np.full(n_out, 24), 0, -128, 127, False)
         if per_channel else Quant(1 << 20, 24, 0, -128, 127, False))
    if isinstance(shape, GemmShape):
        A = rng.integers(-8, 8, (shape.M, shape.K))
        W = rng.integers(-8, 8, (shape.K, shape.N))
        return lower_gemm(cfg, A, W, q, plan=plan)
    X = rng.integers(-8, 8, (shape.H, shape.W, shape.Cin))
    Wt = rng.integers(-8, 8, (shape.KH, shape.KW, shape.Cin // shape.groups, shape.Cout))
    return lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, q, groups=shape.groups, dilation=shape.dilation,
                        plan=plan)


def _bound_of_program(cfg, shape, prog) -> tuple[int, str]:
    """The bound counted from the program: loads that read the host (not fills) move count x lanes bytes,
    stores rows x cols bytes, and every instruction is fetched."""
    M, K, N = shape.gemm
    macs = M * K * N * getattr(shape, "groups", 1)
    read = sum(i.count * i.lanes for i in prog.instructions if i.op == Opcode.LOAD and not i.zero)
    written = sum(i.rows * i.cols for i in prog.instructions if i.op == Opcode.STORE)
    host = read + written + len(prog.instructions) * INSTR_BYTES
    comp, port = math.ceil(macs / (cfg.rows * cfg.cols)), math.ceil(host / (cfg.host_port_width // 8))
    return max(comp, port), ("compute" if comp >= port else "host")


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.name for c in CONFIGS])
def test_layer_roofline_against_program(cfg, per_channel):
    rng = np.random.default_rng(5)
    for shape in SHAPES:
        plan, perf, _ = best_plan(cfg, shape, per_channel=per_channel)
        prog = _program(cfg, shape, plan, per_channel, rng)
        rl = perf.roofline(cfg)
        assert (rl.cycles, rl.bound) == _bound_of_program(cfg, shape, prog), shape
        assert rl.cycles == max(rl.compute_cycles, rl.host_cycles)
        cycles = CycleModel(cfg).run(prog.image()).cycles
        assert cycles == perf.cycles >= rl.cycles and 0 < rl.ratio(cycles) <= 1


def test_roofline_function():
    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4, host_port_width=32)  # 16 PEs, 4 bytes a cycle
    assert tuple(roofline(cfg, 160, 39)) == (10, "compute", 10, 10)  # a tie is compute-bound
    assert tuple(roofline(cfg, 17, 41)) == (11, "host", 2, 11)
    assert roofline(cfg, 0, 0).ratio(0) == 0.0
    with pytest.raises(ValueError, match="PEs"):
        best_plan(cfg, GemmShape(4, 4, 4))[1].roofline(AcceleratorConfig(controller="in-order", rows=8, cols=8))


def test_decoupled_roofline_counts_the_ports_apart():
    """The decoupled controller uses its fetch, load and store ports at once: its host bound is the busiest
    port's, a true lower bound of its cycles (the one-port sum is not: merged depthwise layers beat it)."""
    import dataclasses

    from mappings.grouping import executed_conv
    from mappings.pipelined import decoupled_perf
    from sim.perf import ConvShape

    cfg = AcceleratorConfig(controller="in-order", rows=4, cols=4, host_port_width=32)
    dec = dataclasses.replace(cfg, controller="decoupled")
    assert tuple(roofline(dec, 16, 40, 8, 12)) == (10, "host", 1, 10)      # the busiest port: 40 B / 4
    assert tuple(roofline(cfg, 16, 40, 8, 12)) == (15, "host", 1, 15)      # in order: 60 B over one port
    beaten = 0
    for shape in (ConvShape(12, 12, 16, 3, 3, 16, 1, 1, 1, 16), GemmShape(40, 24, 12), ConvShape(9, 9, 8, 3, 3, 16, 2, 1)):
        shape = executed_conv(dec, shape) if isinstance(shape, ConvShape) else shape
        plan, _, _ = best_plan(dec, shape)
        perf = decoupled_perf(dec, shape, plan)
        rl = perf.roofline(dec)
        assert perf.cycles >= rl.cycles and rl.host_cycles == max(
            -(-b // 4) for b in (perf.host_read_bytes, perf.host_write_bytes, perf.host_fetch_bytes))
        beaten += perf.cycles < -(-perf.host_bytes // 4)
    assert beaten  # some layer runs faster than its bytes could cross one port


def test_map_shows_roofline(tmp_path, capsys):
    j, model = tmp_path / "m.json", tmp_path / "cnn.onnx"
    save(small_cnn(seed=1), model)
    assert main(["map", str(model), "--rows", "4", "--cols", "4", "--host-port-width", "32", "--json", str(j),
                 "--controller", "in-order"]) == 0  # the in-order roofline: every byte over one port
    out = capsys.readouterr().out
    data = json.loads(j.read_text())
    pes, pb = 16, 4
    acc = [r for r in data["layers"] if r["where"] == "accelerator"]
    for r in acc:
        comp = -(-r["macs"] // pes)
        host = -(-(r["host_read_bytes"] + r["host_write_bytes"] + r["host_fetch_bytes"]) // pb)
        assert r["roofline_cycles"] == max(comp, host) <= r["cycles"]
        assert r["roofline_bound"] == ("compute" if comp >= host else "host")
        assert r["roofline_ratio"] == pytest.approx(max(comp, host) / r["cycles"])
    assert {r["roofline_bound"] for r in acc} == {"compute", "host"}  # the depthwise layer and the classifier are host-bound
    assert all(r["roofline_bound"] is None for r in data["layers"] if r["where"] == "host")
    comp = -(-data["total_macs"] // pes)
    host = -(-sum(r["host_read_bytes"] + r["host_write_bytes"] + r["host_fetch_bytes"] for r in acc) // pb)
    assert (data["roofline_cycles"], data["roofline_bound"]) == (max(comp, host),
                                                                 "compute" if comp >= host else "host")
    assert data["roofline_ratio"] == pytest.approx(max(comp, host) / data["total_cycles"])
    assert "bound" in out and "of bound" in out
    row = next(r for r in acc if r["layer"] in out)
    line = next(ln for ln in out.splitlines() if f" {row['layer']} " in ln)
    assert f"{row['roofline_cycles']:,} {row['roofline_bound']}" in line
    assert f"{100 * row['roofline_ratio']:.1f}%" in line
    total = f"bound {data['roofline_cycles']:,} cycles ({data['roofline_bound']}), " \
            f"{100 * data['roofline_ratio']:.1f}% of bound"
    assert total in out
