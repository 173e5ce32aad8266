"""Fault-injection workloads from zoo layers and ONNX models (fault_injection.workload)."""

from __future__ import annotations

import numpy as np
import pytest

from fault_injection.workload import MAX_CYCLES, WorkloadError, build_workload, onnx_inputs, parse_workload
from hwgen.config import AcceleratorConfig
from sim.cycle import CycleModel

CFG = AcceleratorConfig(controller="in-order", name="fi4x4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)


def _run(prog):
    res = CycleModel(CFG).run(prog.image())
    return res, prog.outputs["out"].read(res.memory)


def _same(a, b) -> bool:
    return (a.code == b.code and np.array_equal(a.image(), b.image()) and a.outputs.keys() == b.outputs.keys()
            and all(a.outputs[k] == b.outputs[k] for k in a.outputs))


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory):
    from mappings.onnx_import import import_onnx
    from mappings.onnx_models import quantize_qdq, save, small_cnn

    root = tmp_path_factory.mktemp("fi_onnx")
    fp = save(small_cnn(seed=5, hw=8), root / "cnn.onnx")
    qp = quantize_qdq(fp, root / "cnn_int8.onnx", "int8", per_channel=True, seed=6)
    return qp, import_onnx(qp)


def test_parse_forms():
    assert parse_workload("zoo:mlp") == ("zoo", {"model": "mlp", "layer": None})
    assert parse_workload("zoo:resnet18:layer1.0.conv1") == ("zoo", {"model": "resnet18", "layer": "layer1.0.conv1"})
    assert parse_workload("onnx:dir/m.onnx") == ("onnx", {"path": "dir/m.onnx", "layer": None})
    assert parse_workload("onnx:dir/m.onnx:conv1") == ("onnx", {"path": "dir/m.onnx", "layer": "conv1"})
    assert parse_workload("dir/m.ONNX:fc") == ("onnx", {"path": "dir/m.ONNX", "layer": "fc"})
    assert parse_workload("m.onnx") == ("onnx", {"path": "m.onnx", "layer": None})


def test_zoo_layer_runs_and_is_deterministic():
    prog = build_workload("zoo:mlp:fc3", CFG, 3)
    assert prog.meta["layer"] == "fc3" and prog.meta["workload"] == "zoo:mlp:fc3"
    assert "Q" in prog.inputs  # per-channel quantization table
    res, out = _run(prog)
    assert res.cycles == prog.meta["plan"]["cost"]  # the mapper's best plan, its exact cycles
    assert out.shape == (1, 10) and len(np.unique(out)) > 3
    assert _same(prog, build_workload("zoo:mlp:fc3", CFG, 3))
    assert not _same(prog, build_workload("zoo:mlp:fc3", CFG, 4))
    # default layer: the first compute layer
    assert build_workload("zoo:mlp", CFG, 1).meta["layer"] == "fc1"


def test_zoo_conv_layer():
    cfg = AcceleratorConfig(controller="in-order", name="fi8x8", rows=8, cols=8)
    prog = build_workload("zoo:resnet18:layer4.0.downsample", cfg, 2)  # 14x14x256 -> 7x7x512, 1x1 stride 2
    assert prog.meta["kind"] == "conv2d" and prog.outputs["out"].shape == (7, 7, 512)
    res = CycleModel(cfg).run(prog.image())
    out = prog.outputs["out"].read(res.memory)
    assert res.cycles == prog.meta["plan"]["cost"] and len(np.unique(out)) > 64


def test_zoo_errors():
    with pytest.raises(WorkloadError, match="zoo:nosuch.*known models.*mlp"):
        build_workload("zoo:nosuch", CFG, 1)
    with pytest.raises(WorkloadError, match="no layer 'fc9'.*fc1, fc2, fc3"):
        build_workload("zoo:mlp:fc9", CFG, 1)
    with pytest.raises(WorkloadError, match="MatMul layer, not a Conv2d or Gemm"):
        build_workload("zoo:bert_base:layer0.attn.scores", CFG, 1)
    with pytest.raises(WorkloadError, match=rf"resnet18.*cycles, more than the {MAX_CYCLES:,}.*smaller layer"):
        build_workload("zoo:resnet18", CFG, 1)
    for bad in ("zoo:", "zoo:mlp:", "zoo:mlp:fc1:x"):
        with pytest.raises(WorkloadError, match=f"workload '{bad}'.*zoo:NAME"):
            build_workload(bad, CFG, 1)


def test_onnx_layer_is_what_run_quantized_executes(qdq_model):
    from mappings.execute import run_quantized

    path, graph = qdq_model
    net = run_quantized(graph, onnx_inputs(graph, 9), CFG)
    for layer in ("conv2", "dwconv", "fc"):
        prog = build_workload(f"onnx:{path}:{layer}", CFG, 9)
        _, out = _run(prog)
        want = net.values[layer].q
        got = np.transpose(out, (2, 0, 1))[None] if out.ndim == 3 else out.reshape(want.shape)
        assert np.array_equal(got.astype(np.int8), want), layer
    first = build_workload(str(path), CFG, 9)  # bare path: the first compute layer
    assert first.meta["layer"] == "conv1"
    assert _same(first, build_workload(f"onnx:{path}:conv1", CFG, 9))
    assert _same(first, build_workload(f"onnx:{path}", CFG, 9))
    assert not _same(first, build_workload(f"onnx:{path}", CFG, 10))


def test_onnx_errors(qdq_model, tmp_path):
    path, _ = qdq_model
    with pytest.raises(WorkloadError, match=r"no layer 'conv9'.*conv1, conv2, dwconv, pwconv, fc"):
        build_workload(f"onnx:{path}:conv9", CFG, 1)
    with pytest.raises(WorkloadError, match="no ONNX file"):
        build_workload(f"onnx:{tmp_path / 'missing.onnx'}", CFG, 1)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(WorkloadError, match="cannot import"):
        build_workload(str(junk), CFG, 1)


def test_bad_specs_name_the_forms():
    for bad in ("", "fft:8", "mlp", "gemm:8x8"):
        with pytest.raises(WorkloadError, match="zoo:NAME") as e:
            build_workload(bad, CFG, 1)
        assert repr(bad)[1:-1] in str(e.value) or bad in str(e.value)
