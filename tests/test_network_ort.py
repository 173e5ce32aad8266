"""Whole quantized networks against onnxruntime (design contract 5), and ``hwgen run``.

Models are built and quantized here (tests/onnx_models.py) with seeds the
executor was not tuned on: small_cnn (convolution, strided convolution,
depthwise, ReLU6, residual Add, MaxPool, GlobalAveragePool, Flatten, fully
connected), conv_chain (5 convolutions) and mlp (MatMul + constant Add, Gemm
transB 0 and 1), each with int8 and uint8 activations, per-tensor and
per-channel weights.

* Layer by layer: every IR node runs on onnxruntime's own integer input
  (``run_quantized(feed=...)`` feeds each node onnxruntime's tensor and keeps
  the executor's own value in ``NetworkRun.own``); accelerator layers and host
  steps alike must be within one quantum of onnxruntime's integer output.
* End to end: the executor's output is no further from onnxruntime (all graph
  optimisations) than onnxruntime's two extremes (all vs none) are from each
  other, measured here, and never less than one quantum; classifiers have the
  same argmax.
* ``hwgen run`` in-process: output, report, per-layer dump; bad input exits 2
  naming the file, node or field, and writes nothing.
* RTL (marked): small_cnn on a 4x4 Verilator build is bit- and cycle-exact with
  the cycle model, layer by layer.

Run with ``-s`` to see the measured differences and spreads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.outputs import MARKER
from mappings.execute import ExecutionError, run_quantized
from mappings.onnx_import import import_onnx
from mappings.onnx_models import conv_chain, mlp, quantize_qdq, random_inputs, run_ort, save, small_cnn

BUILDERS = {"small_cnn": small_cnn, "conv_chain": conv_chain, "mlp": mlp}
CLASSIFIERS = {"small_cnn", "mlp"}
#: Model and calibration seeds (not the ones used while writing the executor).
SEEDS = (41, 57)
CASES = [(kind, act, pc) for kind in BUILDERS for act in ("int8", "uint8") for pc in (False, True)]
CFG = AcceleratorConfig(name="net4x4", rows=4, cols=4)
#: Inputs: standard normal like the calibration data, and three times larger (beyond the calibrated ranges,
#: where the saturation and rounding of every layer is exercised).
INPUT_GAINS = (1.0, 3.0)


def _case_id(case) -> str:
    kind, act, pc = case
    return f"{kind}-{act}-{'pc' if pc else 'pt'}"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Quantized models, built on first use: (kind, seed, act, per_channel) -> (path, ModelProto, LayerGraph)."""
    root = tmp_path_factory.mktemp("ort_models")
    cache: dict = {}

    def get(kind: str, seed: int, act: str, per_channel: bool):
        key = (kind, seed, act, per_channel)
        if key not in cache:
            fp = root / f"{kind}_{seed}.onnx"
            if not fp.exists():
                save(BUILDERS[kind](seed=seed), fp)
            qp = quantize_qdq(fp, root / f"{kind}_{seed}_{act}_{int(per_channel)}.onnx", act, per_channel,
                              seed=seed + 1000)
            cache[key] = (qp, onnx.load(str(qp)), import_onnx(qp))
        return cache[key]

    return get


def _inputs(qm, seed: int, n: int = 2):
    """``n`` feeds per gain in INPUT_GAINS."""
    out = []
    for g in INPUT_GAINS:
        for feed in random_inputs(qm, seed=seed + 7, n=n):
            out.append({k: (v * np.float32(g)).astype(np.float32) for k, v in feed.items()})
    return out


# ------------------------------------------------------------ layer by layer
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_layer_by_layer_within_one_quantum(models, case):
    kind, act, pc = case
    off_by_one, total, kinds_seen, where_seen = 0, 0, set(), set()
    for seed in SEEDS:
        path, qm, g = models(kind, seed, act, pc)
        nodes = [n for n in g.order() if g.layer(n).kind != "Constant"]  # constants have no ORT tensor to fetch
        names = {n: g.tensors[n].name for n in nodes}
        for feed in _inputs(qm, seed):
            ref = run_ort(qm, feed, list(names.values()))
            (x,) = feed.values()
            run = run_quantized(g, x, CFG, feed={n: ref[names[n]] for n in nodes})
            assert set(run.own) == set(nodes)
            where = {layer.name: layer.where for layer in run.layers}
            for n in nodes:
                want = ref[names[n]]
                got = run.own[n].native()
                assert got.dtype == want.dtype == np.dtype(act), n
                assert got.shape == want.shape, n
                d = np.abs(got.astype(np.int64) - want.astype(np.int64))
                assert d.max() <= 1, (f"{kind} seed {seed} {act} per_channel={pc}: node '{n}' ({g.layer(n).kind}, "
                                      f"{where[n]}) differs from onnxruntime by {d.max()} quanta")
                off_by_one += int((d == 1).sum())
                total += d.size
                kinds_seen.add(g.layer(n).kind)
                where_seen.add(where[n])
            # the feed is what the consumers saw
            for n in nodes:
                np.testing.assert_array_equal(run.values[n].native(), ref[names[n]])
    assert where_seen == {"accelerator", "host"}
    expected = {"small_cnn": {"Input", "Conv2d", "Add", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm"},
                "conv_chain": {"Input", "Conv2d"}, "mlp": {"Input", "Gemm", "Add"}}[kind]
    assert kinds_seen == expected
    if kind == "small_cnn":  # the depthwise layer is in there
        assert g.layer("dwconv").groups == g.layer("dwconv").in_channels > 1
    print(f"\nlayer-by-layer {_case_id(case)}: {off_by_one} of {total} elements differ by 1 quantum, none by more")


# ---------------------------------------------------------------- end to end
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_end_to_end_within_onnxruntime_spread(models, case):
    kind, act, pc = case
    seed = SEEDS[0]
    path, qm, g = models(kind, seed, act, pc)
    (out,) = g.outputs
    oname = qm.graph.output[0].name
    scale = float(g.tensors[out].quant.scale)
    feeds = _inputs(qm, seed + 1, n=3)
    ours, best, none = [], [], []
    for feed in feeds:
        (x,) = feed.values()
        ours.append(run_quantized(g, x, CFG).outputs[out])
        best.append(run_ort(qm, feed, opt_level="all")[oname])
        none.append(run_ort(qm, feed, opt_level="disable")[oname])
    ours, best, none = np.stack(ours), np.stack(best), np.stack(none)
    assert ours.shape == best.shape and ours.dtype == np.float32
    spread = float(np.abs(best - none).max()) / scale
    diff = float(np.abs(ours - best).max()) / scale
    diff_none = float(np.abs(ours - none).max()) / scale
    # every value is a multiple of the output scale: these are whole numbers of quanta
    assert abs(spread - round(spread)) < 1e-3 and abs(diff - round(diff)) < 1e-3
    assert diff <= max(1.0, spread) + 1e-3, (f"{_case_id(case)}: {diff:.0f} output quanta from onnxruntime(all); "
                                             f"onnxruntime's own spread (all vs disable) is {spread:.0f}")
    if kind in CLASSIFIERS:
        np.testing.assert_array_equal(ours.reshape(len(feeds), -1).argmax(axis=1),
                                      best.reshape(len(feeds), -1).argmax(axis=1))
    print(f"\nend-to-end {_case_id(case)}: ours vs ORT(all) {diff:.0f} quanta, vs ORT(disable) {diff_none:.0f}; "
          f"ORT spread {spread:.0f} ({len(feeds)} inputs)")


def test_executor_names_the_node_when_a_layer_cannot_be_lowered(models):
    path, qm, g = models("small_cnn", SEEDS[0], "int8", True)
    x = random_inputs(qm, seed=1)[0]["input"]
    os_only = AcceleratorConfig(name="os4x4", rows=4, cols=4, dataflow="os")
    with pytest.raises(ExecutionError, match=r"node 'conv1'.*os4x4.*does not support 'ws'"):
        run_quantized(g, x, os_only, dataflow="ws")
    with pytest.raises(ExecutionError, match=r"feed names unknown node\(s\): 'nope'"):
        run_quantized(g, x, CFG, feed={"nope": np.zeros(3, np.int8)})
    with pytest.raises(ExecutionError, match=r"feed for node 'conv1'.*uint8"):
        run_quantized(g, x, CFG, feed={"conv1": np.zeros(g.shapes["conv1"], np.uint8)})


# ---------------------------------------------------------------- hwgen run
def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture
def run_setup(models, tmp_path, monkeypatch):
    """A quantized small_cnn, an input array and a config file in tmp_path/in; outputs go to tmp_path/out."""
    path, qm, g = models("small_cnn", SEEDS[1], "uint8", True)
    src = tmp_path / "in"
    src.mkdir()
    model = src / "cnn.onnx"
    model.write_bytes(Path(path).read_bytes())
    x = random_inputs(qm, seed=3)[0]["input"]
    np.save(src / "x.npy", x)
    CFG.save(src / "cfg.json")
    monkeypatch.chdir(tmp_path)
    return g, qm, x, src


def test_hwgen_run_writes_output_report_and_layers(run_setup, tmp_path, capsys):
    g, qm, x, src = run_setup
    argv = ["run", "in/cnn.onnx", "--input", "in/x.npy", "--output", "out/y.npy", "--config", "in/cfg.json",
            "--report", "out/r.json", "--dump-layers", "out/layers"]
    assert main(argv) == 0
    assert "out/y.npy" in capsys.readouterr().out
    y = np.load(tmp_path / "out" / "y.npy")
    want = run_quantized(g, x, CFG)
    ort_out = run_ort(qm, {"input": x})["logits"]
    assert y.dtype == np.float32 and y.shape == ort_out.shape == (1, 10)
    np.testing.assert_array_equal(y, want.outputs["fc"])
    assert y.argmax() == ort_out.argmax()

    report = json.loads((tmp_path / "out" / "r.json").read_text())
    assert report["backend"] == "model" and report["config"] == CFG.to_dict()
    layers = report["layers"]
    assert [layer["name"] for layer in layers] == list(g.order())
    assert report["total_cycles"] == sum(layer["cycles"] for layer in layers) == want.cycles > 0
    for layer in layers:
        assert (layer["cycles"] > 0) == (layer["where"] == "accelerator"), layer["name"]
    assert {layer["name"] for layer in layers if layer["where"] == "accelerator"} == set(g.compute_layers())

    dump = tmp_path / "out" / "layers"
    assert sorted(p.name for p in dump.iterdir()) == sorted([MARKER, *(f"{n}.npy" for n in g.g)])
    for n in g.g:
        arr = np.load(dump / f"{n}.npy")
        assert arr.dtype == np.uint8 and arr.shape == g.shapes[n], n
        np.testing.assert_array_equal(arr, want.values[n].native())
    listing = sorted(["layers", "r.json", "y.npy", f"layers/{MARKER}", *(f"layers/{n}.npy" for n in g.g)])
    assert _listing(tmp_path / "out") == listing

    # a second run refuses to replace them, then with --force replaces them whole (no temporary leftovers)
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert main(argv) == 2 and "--force" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    assert main(argv + ["--force"]) == 0
    assert _listing(tmp_path / "out") == listing


def _bad_inputs(src: Path) -> dict:
    """name -> (argv overrides, text the error line must contain)."""
    data = (src / "cnn.onnx").read_bytes()
    (src / "trunc.onnx").write_bytes(data[: len(data) // 2])
    (src / "text.onnx").write_text("not an onnx model\n" * 10)
    np.save(src / "x_shape.npy", np.zeros((1, 3, 8, 8), np.float32))
    np.save(src / "x_int.npy", np.zeros((1, 3, 16, 16), np.int32))
    (src / "x_text.npy").write_text("1 2 3\n")
    (src / "x_trunc.npy").write_bytes((src / "x.npy").read_bytes()[:200])
    AcceleratorConfig(name="narrow", rows=4, cols=4, acc_width=20, max_reduction=16).save(src / "narrow.json")
    return {
        "truncated-onnx": ({"model": "in/trunc.onnx"}, "trunc.onnx"),
        "not-onnx": ({"model": "in/text.onnx"}, "text.onnx"),
        "missing-onnx": ({"model": "in/missing.onnx"}, "missing.onnx"),
        "wrong-shape": ({"--input": "in/x_shape.npy"}, "x_shape.npy"),
        "wrong-dtype": ({"--input": "in/x_int.npy"}, "x_int.npy"),
        "not-npy": ({"--input": "in/x_text.npy"}, "x_text.npy: not a .npy"),
        "truncated-npy": ({"--input": "in/x_trunc.npy"}, "x_trunc.npy"),
        "missing-npy": ({"--input": "in/nothing.npy"}, "nothing.npy"),
        "layer-does-not-fit": ({"--config": "in/narrow.json"}, "node 'conv2'"),
    }


BAD = ["truncated-onnx", "not-onnx", "missing-onnx", "wrong-shape", "wrong-dtype", "not-npy", "truncated-npy",
       "missing-npy", "layer-does-not-fit"]


@pytest.mark.parametrize("bad", BAD)
def test_hwgen_run_bad_input_exits_2_and_writes_nothing(run_setup, tmp_path, capsys, bad):
    g, qm, x, src = run_setup
    overrides, needle = _bad_inputs(src)[bad]
    before = _listing(tmp_path)
    args = {"model": "in/cnn.onnx", "--input": "in/x.npy", "--config": "in/cfg.json", **overrides}
    argv = ["run", args["model"], "--input", args["--input"], "--config", args["--config"], "--output",
            "out/y.npy", "--report", "out/r.json", "--dump-layers", "out/layers"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwgen run: error:") and needle in err[0], err
    if bad == "wrong-shape":
        assert "(1, 3, 8, 8)" in err[0] and "(1, 3, 16, 16)" in err[0] and "'input'" in err[0]
    if bad == "layer-does-not-fit":
        assert "acc_width=20" in err[0]
    assert _listing(tmp_path) == before  # no out/ folder, no temporary files


def test_hwgen_run_failure_keeps_previous_outputs(run_setup, tmp_path, capsys):
    g, qm, x, src = run_setup
    out = tmp_path / "out"
    assert main(["run", "in/cnn.onnx", "--input", "in/x.npy", "--output", "out/y.npy"]) == 0  # an earlier output
    old = (out / "y.npy").read_bytes()
    np.save(src / "x_int.npy", np.zeros((1, 3, 16, 16), np.int8))
    capsys.readouterr()
    assert main(["run", "in/cnn.onnx", "--input", "in/x_int.npy", "--output", "out/y.npy", "--force"]) == 2
    assert "x_int.npy" in capsys.readouterr().err
    assert (out / "y.npy").read_bytes() == old and _listing(out) == ["y.npy"]
    # an output path that is a folder: named, and neither the report nor the other outputs are written
    (out / "d").mkdir()
    assert main(["run", "in/cnn.onnx", "--input", "in/x.npy", "--output", "out/y.npy", "--report", "out/d",
                 "--dump-layers", "out/layers", "--force"]) == 2
    assert "out/d: is a folder" in capsys.readouterr().err
    assert (out / "y.npy").read_bytes() == old and _listing(out) == ["d", "y.npy"]


# ----------------------------------------------------------------------- RTL
@pytest.mark.rtl
@pytest.mark.xdist_group("rtl-network")
def test_small_cnn_on_rtl_is_bit_and_cycle_exact(models):
    """Every layer's integer output and every accelerator layer's cycle and busy-PE counts equal the model's."""
    cfg = AcceleratorConfig(name="native4x4p64", dataflow="both", host_port_width=64, rows=4, cols=4,
                            a_spad_depth=64, w_spad_depth=64, acc_depth=64)  # the build tests/test_native.py uses
    path, qm, g = models("small_cnn", SEEDS[0], "int8", True)
    x = random_inputs(qm, seed=5)[0]["input"]
    model = run_quantized(g, x, cfg, backend="model")
    rtl = run_quantized(g, x, cfg, backend="rtl")
    assert list(rtl.values) == list(model.values)
    for n in model.values:
        np.testing.assert_array_equal(rtl.values[n].q, model.values[n].q, err_msg=n)
    acc = 0
    for lr, lm in zip(rtl.layers, model.layers):
        assert (lr.name, lr.where) == (lm.name, lm.where)
        assert (lr.cycles, lr.busy_pe, lr.instructions) == (lm.cycles, lm.busy_pe, lm.instructions), lr.name
        acc += lr.where == "accelerator"
    assert acc == len(g.compute_layers()) == 5 and rtl.cycles == model.cycles > 0
    np.testing.assert_array_equal(rtl.outputs["fc"], model.outputs["fc"])
