"""The energy model: the table's own points and curve (Horowitz, ISSCC 2014), and a layer's energy from
event counts taken independently from its emitted instructions (loads' lanes, computes' depth and rows,
stores' rows and columns), priced by the documented rule; hwgen map reports the sum."""

import json
import math

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.energy_table import HOROWITZ_45NM as T
from hwgen.isa import Opcode
from mappings.lowering import lower_gemm
from mappings.mapper import best_plan
from sim.energy import COMPONENTS, layer_energy
from sim.perf import GemmShape, gemm_perf
from sim.reference import ChannelQuant


def test_table_points_and_curve():
    assert T.sram_pj(64, 8 << 10) == pytest.approx(10) and T.sram_pj(64, 32 << 10) == pytest.approx(20)
    assert T.sram_pj(64, 1 << 20) == pytest.approx(100) and T.sram_pj(32, 32 << 10) == pytest.approx(10)
    assert T.sram_pj(64, 2 << 10) == pytest.approx(5)  # below 8 KB: the 8-32 KB slope, exactly 1/2
    assert T.sram_pj(64, 4 << 20) == pytest.approx(100 * 4 ** (math.log(5) / math.log(32)))
    caps = [1 << k for k in range(8, 24)]
    assert all(T.sram_pj(64, a) < T.sram_pj(64, b) for a, b in zip(caps, caps[1:]))
    assert T.mac_pj(8, 8, 32) == pytest.approx(0.2 + 0.1) and T.mac_pj(4, 8, 16) == pytest.approx(0.1 + 0.05)
    assert T.dram_byte_pj() == pytest.approx(1300 / 8)
    with pytest.raises(ValueError):
        T.sram_pj(64, 0)


def _events(cfg, instrs) -> dict:
    """Bits moved per memory and MAC/host events, from the instruction stream alone."""
    ev = dict(a=0, w=0, acc=0, q=0, host=0)
    for ins in instrs:
        a = ins.args
        ev["host"] += 16
        if ins.op == Opcode.LOAD:
            width = (cfg.input_width, cfg.weight_width, 8)[a["target"]]
            ev["awq"[a["target"]] if a["target"] < 2 else "q"] += a["count"] * a["lanes"] * width
            ev["host"] += 0 if a["zero"] else a["count"] * a["lanes"]
        elif ins.op == Opcode.COMPUTE:
            os_ = a["dataflow"] == Dataflow.OS.code
            ev["a"] += (a["depth"] if os_ else a["rows"]) * cfg.rows * cfg.input_width
            ev["w"] += a["depth"] * cfg.cols * cfg.weight_width
            ev["acc"] += a["rows"] * (1 + a["accumulate"]) * cfg.cols * cfg.acc_width
        elif ins.op == Opcode.STORE:
            ev["acc"] += a["rows"] * cfg.cols * cfg.acc_width
            ev["host"] += a["rows"] * a["cols"]
            ev["q"] += a["qtable"] * a["rows"] * a["cols"] * 72
    return ev


@pytest.mark.parametrize("df", ["os", "ws"])
def test_layer_energy_prices_the_programs_events(df):
    cfg = AcceleratorConfig(name="e4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=32,
                            controller="in-order")
    M, K, N = 13, 37, 11
    rng = np.random.default_rng(3)
    quant = ChannelQuant(np.zeros(N, np.int64), np.ones(N, np.int64), np.full(N, 2), 0, -128, 127)
    plan = best_plan(cfg, GemmShape(M, K, N), per_channel=True, dataflow=df)[0]
    prog = lower_gemm(cfg, rng.integers(-8, 8, (M, K)), rng.integers(-8, 8, (K, N)), quant, dataflow=df, plan=plan)
    perf = gemm_perf(cfg, M, K, N, plan, True)
    e, ev = layer_energy(cfg, perf), _events(cfg, prog.instructions)

    def per_bit(word_bits, depth):  # the table's 64-bit figure at the memory's capacity, per bit
        return T.sram_pj(64, depth * word_bits / 8) / 64

    assert e.a_spad == pytest.approx(ev["a"] * per_bit(4 * 8, 64))
    assert e.w_spad == pytest.approx(ev["w"] * per_bit(4 * 8, 64))
    assert e.acc == pytest.approx(ev["acc"] * per_bit(4 * 32, 32))
    assert e.qtable == pytest.approx(ev["q"] * per_bit(72, 4))
    assert e.host == pytest.approx(ev["host"] * 1300 / 8)
    assert e.mac == pytest.approx(perf.busy_pe * 0.3)
    assert e.total_pj == pytest.approx(sum(getattr(e, c) for c in COMPONENTS))


def test_map_reports_the_layers_energy(tmp_path, capsys):
    assert main(["map", "zoo:mlp", "--rows", "8", "--cols", "8", "--json", str(tmp_path / "m.json")]) == 0
    d = json.loads((tmp_path / "m.json").read_text())
    layers = [r["energy_pj"] for r in d["layers"] if r["where"] == "accelerator"]
    assert len(layers) == 3 and all(v > 0 for v in layers)
    assert d["energy_pj"]["total_pj"] == pytest.approx(sum(layers)) == pytest.approx(d["energy_uj"] * 1e6)
    assert "Horowitz" in d["energy_scaling"]
    assert "uJ per inference" in capsys.readouterr().out
