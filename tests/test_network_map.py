"""hwgen map: per-layer mapping of whole networks, and its agreement with execution."""

import dataclasses
import json
from pathlib import Path

import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from mappings.execute import run_quantized
from mappings.network_map import load_model, map_graph
from mappings.onnx_import import import_onnx
from mappings.onnx_models import quantize_qdq, random_inputs, save, small_cnn

CFG = AcceleratorConfig(name="map4", rows=4, cols=4, dataflow="both", a_spad_depth=96, w_spad_depth=96, acc_depth=64)


@pytest.fixture(scope="module")
def qdq_cnn(tmp_path_factory):
    d = tmp_path_factory.mktemp("cnn")
    fm = small_cnn(seed=23)
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "q.onnx", activation_type="uint8", per_channel=True, seed=23)
    return d / "q.onnx", next(iter(random_inputs(fm, seed=3)[0].values()))


def test_mapped_cycles_equal_executed_cycles(qdq_cnn):
    """The analytical per-layer cycles of `hwgen map` equal the cycle model running the same layers."""
    path, x = qdq_cnn
    graph = import_onnx(path)
    nmap = map_graph(graph, CFG, per_channel=True)
    run = run_quantized(graph, x, CFG, backend="model")
    mapped = {r.layer: (r.cycles, r.dataflow) for r in nmap.rows if r.where == "accelerator"}
    executed = {r.name: (r.cycles, r.dataflow) for r in run.layers if r.where == "accelerator"}
    assert mapped == executed and len(mapped) == 5
    assert nmap.cycles == run.cycles


@pytest.mark.parametrize("model", ["zoo:mlp", "zoo:resnet18", "zoo:mobilenet_v2", "zoo:bert_base"])
def test_zoo_maps_on_three_configs(model):
    graph = load_model(model)
    # in order: the decoupled cost of a whole zoo network on small arrays takes minutes (the decoupled
    # map is tested on real sizes in test_decoupled_zoo_map and benchmarks/utilization.py)
    for cfg in (dataclasses.replace(CFG, controller="in-order"), AcceleratorConfig(rows=8, cols=8, dataflow="ws", controller="in-order"),
                AcceleratorConfig(rows=16, cols=16, dataflow="os", a_spad_depth=512, w_spad_depth=512,
                                  acc_depth=256, controller="in-order")):
        nmap = map_graph(graph, cfg)
        acc = [r for r in nmap.rows if r.where == "accelerator"]
        assert acc and all(r.cycles > 0 and 0 < r.utilization <= 1 for r in acc)
        assert all(r.dataflow in cfg.dataflow.modes for r in acc)
        assert nmap.macs == sum(r.macs for r in acc) > 0


def test_zoo_maps_decoupled():
    """The default (decoupled) controller maps a zoo network on the three arrays; the costly networks are
    mapped decoupled at full size by benchmarks/utilization.py and checked layer by layer against the
    cycle model by benchmarks/decoupled_exact.py."""
    graph = load_model("zoo:mlp")
    for cfg in (CFG, AcceleratorConfig(rows=8, cols=8, dataflow="ws"),
                AcceleratorConfig(rows=16, cols=16, dataflow="os", a_spad_depth=512, w_spad_depth=512, acc_depth=256)):
        assert cfg.controller == "decoupled"
        nmap = map_graph(graph, cfg)
        inorder = map_graph(graph, dataclasses.replace(cfg, controller="in-order"))
        acc = [r for r in nmap.rows if r.where == "accelerator"]
        assert acc and all(r.cycles > 0 and 0 < r.utilization <= 1 for r in acc)
        assert nmap.macs == inorder.macs and nmap.cycles < inorder.cycles  # overlap pays on every array


def test_map_cli_outputs(tmp_path, capsys):
    j, c, p = tmp_path / "m.json", tmp_path / "m.csv", tmp_path / "m.png"
    assert main(["map", "zoo:mlp", "--rows", "4", "--cols", "4", "--json", str(j), "--csv", str(c),
                 "--png", str(p)]) == 0
    data = json.loads(j.read_text())
    assert data["total_cycles"] == sum(layer["cycles"] for layer in data["layers"]) > 0
    assert c.read_text().splitlines()[0].startswith("layer,kind,shape,where")
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "accelerator layers" in capsys.readouterr().out


def test_map_cli_scalesim_compat(tmp_path, capsys):
    csv = Path(__file__).resolve().parents[2] / "shared" / "data" / "scalesim" / "mobilenet.csv"
    if not csv.exists():
        pytest.skip("shared SCALE-Sim topologies not present")
    assert main(["map", str(csv), "--rows", "32", "--cols", "32", "--scalesim-compat",
                 "--json", str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert len(data["layers"]) == 27 and data["total_cycles"] > 0


@pytest.mark.parametrize("args,needle", [
    (["map", "zoo:nope"], "unknown zoo model"),
    (["map", "model.txt"], "expected an .onnx file"),
    (["map", "missing.onnx"], "missing.onnx"),
    (["map", "bad.csv"], "bad.csv"),
])
def test_map_cli_bad_input(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.csv").write_text("Layer name, IFMAP Height,\nconv1, x,\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args + ["--json", "out.json"]) == 2
    assert needle in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
