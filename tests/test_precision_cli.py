"""``hwgen precision`` (mappings/precision_cli.py): the mixed-precision path from a model file or zoo name to
verified widths.

* End to end on small_cnn (a float ONNX file, quantized by the command): the choice fits half the int8
  weight bytes, the folder holds widths.json, int8.onnx, report.json and report.txt, the lowered network
  runs bit-exact with run_numpy on the cycle model and on Verilator with equal cycles (the native 4x4
  build tests/test_native.py and test_network_ort.py already make), the widths rebuilt from the folder
  give the same network, and the ILP's choice equals brute force on the command's own tables.
* Bad input exits 2 with one line naming the option and its limit, before any folder is made; a value
  that differs from run_numpy exits 1 and is named in the report.
* least_sensitivity equals enumeration; the widths JSON round-trips and its errors name what is wrong.
* The zoo's LayerGraph networks become ONNX with the zoo's layers and shapes (graph_to_onnx).
* Slow (``pytest -m slow``): ResNet-18 at 32x32 on the default 8x8 array, half the weight bytes, exact on
  the model and on Verilator.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from mappings.execute import run_quantized
from mappings.graph import Conv2d, Gemm
from mappings.mixed_precision import (DEFAULT_OPTIONS, INT8, MixedPrecisionError, Objective, WidthBudgetError,
                                      WidthOption, applicable_options, brute_force_widths, cost_table,
                                      least_sensitivity, lower_graph, run_numpy, size_table, widths_from_json,
                                      widths_to_json)
from mappings.onnx_import import import_onnx
from mappings.onnx_models import conv_chain, quantize_qdq, save, small_cnn
from mappings.precision_cli import OBJECTIVES, graph_to_onnx, zoo_float_onnx
from mappings.zoo import get_model

#: the native build tests/test_native.py and tests/test_network_ort.py use (built once per run)
NATIVE = ["--name", "native4x4p64", "--rows", "4", "--cols", "4", "--dataflow", "both", "--host-port-width", "64",
          "--a-spad-depth", "64", "--w-spad-depth", "64", "--acc-depth", "64"]
NATIVE_CFG = AcceleratorConfig(name="native4x4p64", dataflow="both", host_port_width=64, rows=4, cols=4,
                               a_spad_depth=64, w_spad_depth=64, acc_depth=64)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("precision_in")
    save(small_cnn(seed=31), d / "cnn.onnx")
    save(conv_chain(seed=8, n=3, hw=6, channels=4), d / "chain.onnx")
    (d / "junk.onnx").write_bytes(b"not a model")
    return d


def quantized_chain(files: Path) -> Path:
    q = files / "chain.q.onnx"
    if not q.exists():
        quantize_qdq(files / "chain.onnx", q, seed=2)
    return q


def _sens_table(report: dict) -> dict:
    return {n: {WidthOption(int(k[1]), int(k[3])): v for k, v in row.items()}
            for n, row in report["sensitivity"]["values"].items()}


def _check_folder(out: Path, cfg: AcceleratorConfig, objective: Objective) -> dict:
    """The folder's files agree with each other: the widths rebuild the verified network, the report's
    choice is brute force's on the same tables, the size is within the budget."""
    assert sorted(p.name for p in out.iterdir()) == [".hwgen-output", "int8.onnx", "report.json", "report.txt",
                                                     "widths.json"]
    report = json.loads((out / "report.json").read_text())
    graph = import_onnx(out / "int8.onnx")
    widths = widths_from_json((out / "widths.json").read_text(), graph)
    assert {n: str(o) for n, o in widths.items()} == report["choice"]["widths"]
    assert set(widths) == set(graph.compute_layers())
    budgets = report["budgets"]
    ratios = report["report"]["ratios"]
    assert ratios["size"] <= budgets["size_fraction"] + 1e-12 and ratios["cycles"] == 1.0
    assert ratios["energy"] <= 1.0
    layers = graph.compute_layers()
    sens = _sens_table(report)
    options = {n: applicable_options(graph, n, sens[n]) for n in layers}
    costs, size = cost_table(cfg, graph), size_table(graph)
    assert sum(size[n][INT8] for n in layers) == budgets["int8_weight_bytes"]
    bf = brute_force_widths(layers, options, costs, size, sens, budgets["size_bytes"], budgets["sensitivity"],
                            objective)
    assert bf.cost == pytest.approx(report["choice"]["cost"], rel=1e-9)
    if bf.optima == 1:
        assert bf.widths == widths
    return report


@pytest.mark.rtl
@pytest.mark.xdist_group("rtl-network")
def test_precision_end_to_end_on_rtl(files, tmp_path, capsys):
    out = tmp_path / "mp"
    rc = main(["precision", str(files / "cnn.onnx"), *NATIVE, "--budget-size", "0.5", "--calib", "3",
               "--out", str(out), "--verify", "rtl"])
    text = capsys.readouterr().out
    assert rc == 0, text
    report = _check_folder(out, NATIVE_CFG, Objective.ENERGY)
    assert (out / "report.txt").read_text() == text
    for want in ("latency", "energy", "weights", "vs int8", "verify model:", "verify rtl:", "cycles equal the model's"):
        assert want in text
    model, rtl = report["verify"]
    assert (model["backend"], rtl["backend"]) == ("model", "rtl")
    assert model["ok"] and rtl["ok"] and model["cycles"] == rtl["cycles"] > 0
    assert model["accelerator_layers"] == rtl["accelerator_layers"] == 5
    assert set(report["timings_s"]) >= {"quantize_import", "sensitivity", "costs", "ilp", "verify_model",
                                        "verify_rtl"}
    # the folder rebuilds the verified network: same cycles on the model, the same values as run_numpy
    graph = import_onnx(out / "int8.onnx")
    low = lower_graph(graph, widths_from_json((out / "widths.json").read_text()))
    assert any(o != INT8 for o in widths_from_json((out / "widths.json").read_text()).values())
    x = np.random.default_rng(0).standard_normal(graph.shapes[graph.graph_inputs[0]]).astype(np.float32)
    run = run_quantized(low, x, NATIVE_CFG)
    np.testing.assert_array_equal(run.outputs[low.outputs[0]], run_numpy(low, x).outputs[0])
    assert run.cycles == rtl["cycles"]  # cycles depend on shapes, not values


def test_precision_latency_objective_and_given_budget(files, tmp_path, capsys):
    """conv_chain on the cycle model: a sensitivity budget given as a number, the latency objective."""
    out = tmp_path / "chain"
    rc = main(["precision", str(files / "chain.onnx"), "--rows", "4", "--cols", "4", "--budget-size", "0.6",
               "--budget-sensitivity", "0.5", "--objective", "latency", "--calib", "2", "--out", str(out),
               "--verify", "model"])
    assert rc == 0, capsys.readouterr()
    report = _check_folder(out, AcceleratorConfig(rows=4, cols=4), Objective.LATENCY)
    assert report["budgets"]["sensitivity"] == 0.5 and not report["budgets"]["sensitivity_is_least"]
    assert report["choice"]["sensitivity"] <= 0.5 and [v["backend"] for v in report["verify"]] == ["model"]
    assert report["verify"][0]["ok"]
    # --force replaces the folder hwgen wrote, and only with it
    assert main(["precision", str(files / "chain.onnx"), "--budget-size", "0.6", "--calib", "2",
                 "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["precision", str(files / "chain.onnx"), "--budget-size", "0.6", "--calib", "2",
                 "--out", str(out), "--force"]) == 0


def test_a_mismatch_exits_1_and_is_recorded(files, tmp_path, capsys, monkeypatch):
    """An executor whose value differs from run_numpy at one node: exit 1, the node named in the report
    (written all the same: it is the verdict)."""
    import mappings.execute as execute

    real = execute.run_quantized

    def off_by_one(graph, x, cfg, backend="model", **kw):
        run = real(graph, x, cfg, backend=backend, **kw)
        node = graph.compute_layers()[-1]
        t = run.values[node]
        run.values[node] = dataclasses.replace(t, q=(t.q.astype(np.int16) + 1).clip(-128, 127).astype(t.q.dtype))
        return run

    monkeypatch.setattr(execute, "run_quantized", off_by_one)
    out = tmp_path / "bad"
    assert main(["precision", str(files / "chain.onnx"), "--budget-size", "0.6", "--calib", "2", "--out", str(out),
                 "--verify", "model"]) == 1
    assert "1 node(s) differ from run_numpy" in capsys.readouterr().out
    (check,) = json.loads((out / "report.json").read_text())["verify"]
    assert not check["ok"] and check["mismatched"] == [import_onnx(out / "int8.onnx").compute_layers()[-1]]


def test_least_sensitivity_and_widths_json(files):
    """least_sensitivity equals enumeration on conv_chain's size table (made-up sensitivities); the widths
    JSON round-trips and names what is wrong with a bad file."""
    g = import_onnx(quantized_chain(files))
    layers = g.compute_layers()
    sz = size_table(g)
    sens = {n: {o: (0.0 if o == INT8 else (9 - o.wbits) * (9 - o.abits) * (i + 1) * 1e-3) for o in sz[n]}
            for i, n in enumerate(layers)}
    full = sum(sz[n][INT8] for n in layers)
    for frac in (1.0, 0.6, 0.3):
        least = least_sensitivity(layers, DEFAULT_OPTIONS, sz, sens, frac * full)
        want = min(sum(sens[n][o] for n, o in zip(layers, c)) for c in itertools.product(DEFAULT_OPTIONS,
                                                                                          repeat=len(layers))
                   if sum(sz[n][o] for n, o in zip(layers, c)) <= frac * full)
        assert least == pytest.approx(want, abs=1e-12)
    with pytest.raises(WidthBudgetError) as e:
        least_sensitivity(layers, DEFAULT_OPTIONS, sz, sens, 0.1 * full)
    assert e.value.budget == "model size"
    widths = {layers[0]: WidthOption(4, 4), layers[1]: INT8, layers[2]: WidthOption(2, 8)}
    text = widths_to_json(widths, model="m")
    assert widths_from_json(text, g) == widths and list(widths_from_json(text)) == list(widths)
    for bad, msg in (("[1", "not JSON"), ('{"widths": {}}', "not a 'hwgen-widths/1' document"),
                     (text.replace('"abits": 4', '"abits": 4, "x": 1'), "needs exactly 'wbits' and 'abits'"),
                     (text.replace('"abits": 4', '"abits": 9'), "whole numbers of bits from 2 to 8")):
        with pytest.raises(MixedPrecisionError, match=msg):
            widths_from_json(bad)
    with pytest.raises(MixedPrecisionError, match="no layer 'nope'"):
        widths_from_json(widths_to_json({"nope": INT8}), g)


@pytest.mark.parametrize("argv, message", [
    (["{chain}", "--budget-size", "0.1"], "--budget-size 0.1: no choice fits"),
    (["{chain}", "--budget-size", "0.5", "--budget-sensitivity", "1e-12"],
     "--budget-sensitivity 1e-12: no choice within --budget-size 0.5 reaches it; the least achievable is"),
    (["zoo:nope", "--budget-size", "0.5"], "zoo:nope: unknown zoo model; known models: "),
    (["zoo:resnet18", "--resolution", "16", "--budget-size", "0.5"],
     "--resolution 16: zoo model 'resnet18' takes at least 32"),
    (["zoo:mlp", "--resolution", "32", "--budget-size", "0.5"], "--resolution: zoo model 'mlp' has no input"),
    (["{chain}", "--resolution", "32", "--budget-size", "0.5"], "--resolution applies to zoo:NAME models only"),
    (["{chain}", "--budget-size", "0.5", "--calib", "1000"], "--calib 1000: at most 256"),
    (["{junk}", "--budget-size", "0.5"], "junk.onnx: not an ONNX model"),
    (["zoo:bert_base", "--budget-size", "0.5"], "use zoo:bert_base_encoder"),
])
def test_bad_input_exits_2_naming_the_option(files, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    argv = [a.format(chain=files / "chain.onnx", junk=files / "junk.onnx") for a in argv]
    assert main(["precision", *argv, "--out", str(out)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # the lines before it are progress
    assert last.startswith("hwgen precision: error: ") and message in last
    assert not out.exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "x"])
def test_budget_size_must_be_positive(files, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as e:
        main(["precision", str(files / "chain.onnx"), "--budget-size", value, "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "argument --budget-size: " in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_objective_choices_are_the_enum():
    assert set(OBJECTIVES) == {o.value for o in Objective}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_zoo_graph_to_onnx_keeps_layers_and_shapes(name):
    zoo = get_model(name, resolution=32, with_weights=True, seed=3)
    g = import_onnx(zoo_float_onnx(name, 32, seed=3))
    assert g.compute_layers() == zoo.compute_layers()
    for n in zoo.compute_layers():
        assert g.shapes[n] == zoo.shapes[n], n
        a, b = g.layer(n), zoo.layer(n)
        assert type(a) is type(b)
        np.testing.assert_array_equal(a.weight, b.weight)
        if isinstance(a, Conv2d):
            assert (a.stride, a.pads, a.groups) == (b.stride, b.pads, b.groups)
        else:
            assert isinstance(a, Gemm)
    assert graph_to_onnx(zoo).graph.name == name


@pytest.mark.rtl
@pytest.mark.slow
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "packed32"])
def test_resnet18_half_size_exact_on_model_and_rtl(tmp_path, capsys, packed):
    """ResNet-18 at 32x32 on the default 8x8 array: the ILP's widths within half the int8 weight bytes run
    bit-exact on the cycle model and on Verilator, with equal cycles. Packed (4-bit weights two a byte, a
    32-bit host port, where a row of 8 weights takes two beats unpacked): faster and cheaper than int8."""
    out = tmp_path / "r18"
    extra = ["--packed-weights", "yes", "--host-port-width", "32"] if packed else []
    rc = main(["precision", "zoo:resnet18", "--resolution", "32", "--budget-size", "0.5", "--calib", "4", *extra,
               "--out", str(out), "--verify", "rtl"])
    assert rc == 0, capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    assert report["report"]["ratios"]["size"] <= 0.5
    if packed:
        assert report["report"]["ratios"]["cycles"] < 0.8 and report["report"]["ratios"]["energy"] < 0.8
    assert [v["ok"] for v in report["verify"]] == [True, True]
    assert report["verify"][0]["cycles"] == report["verify"][1]["cycles"] == report["report"]["cycles"]
    assert report["verify"][1]["accelerator_layers"] == 21
