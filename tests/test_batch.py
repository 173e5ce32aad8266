"""Batch > 1: models exported with a symbolic batch (as ``torch.onnx.export`` writes them with
``dynamic_axes``), quantized by onnxruntime, imported with ``batch=3`` and run on the cycle model against
onnxruntime (tests/ort_checks.py: every node within one quantum of ORT on its inputs, end to end within two
quanta, the same argmax per image). Every operator model of mappings.onnx_models takes part: convolutions
run one program per image, Gemm rows and MatMul batch indices as the layer's own rows and programs; ``hwgen
run`` takes the batch from the input array, and ``hwgen map --batch`` plans the same per-layer cycles."""

import json

import numpy as np
import onnx
import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import (activation_cnn, ceil_pool_cnn, encoder_layer, mlp, pad_gather_cnn, quantize_qdq,
                                  save, shuffle_cnn, small_cnn)
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="b8", rows=8, cols=8, controller="in-order")
MODELS = {"small_cnn": small_cnn, "mlp": mlp, "ceil_pool_cnn": ceil_pool_cnn, "activation_cnn": activation_cnn,
          "pad_gather_cnn": pad_gather_cnn, "shuffle_cnn": shuffle_cnn, "encoder_layer": encoder_layer}


def _symbolic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    for v in (*model.graph.input, *model.graph.output):
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
def test_batch_of_three_against_onnxruntime(tmp_path, name):
    fm = _symbolic_batch(MODELS[name](seed=21))
    save(fm, tmp_path / "f.onnx")
    act, pc = ("uint8", True) if len(name) % 2 else ("int8", False)
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", act, pc, seed=22)
    assert import_onnx(tmp_path / "q.onnx").shapes[fm.graph.input[0].name][0] == 1  # symbolic: 1 by default
    check_against_ort(tmp_path / "q.onnx", fm, CFG, 23, n=1, batch=3, classifier=name != "encoder_layer")


def test_run_takes_the_batch_from_the_input_and_map_agrees(tmp_path):
    fm = _symbolic_batch(small_cnn(seed=5))
    save(fm, tmp_path / "f.onnx")
    q = quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", "int8", False, seed=6)
    x = np.random.default_rng(7).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = ["--rows", "8", "--cols", "8"]
    assert main(["run", str(q), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
                 "--report", str(tmp_path / "r.json"), *flags]) == 0
    assert np.load(tmp_path / "y.npy").shape == (2, 10)
    assert main(["map", str(q), "--batch", "2", "--json", str(tmp_path / "m.json"), *flags]) == 0
    ran = {r["name"]: r["cycles"] for r in json.loads((tmp_path / "r.json").read_text())["layers"]
           if r["where"] == "accelerator"}
    mapped = {r["layer"]: r["cycles"] for r in json.loads((tmp_path / "m.json").read_text())["layers"]
              if r["where"] == "accelerator"}
    assert ran == mapped and len(ran) == 5
    # batch 1 is half the convolution cycles (one program per image)
    assert main(["map", str(q), "--json", str(tmp_path / "m1.json"), *flags]) == 0
    one = {r["layer"]: r["cycles"] for r in json.loads((tmp_path / "m1.json").read_text())["layers"]
           if r["where"] == "accelerator"}
    conv = [n for n in one if n.startswith("conv")]
    assert conv and all(mapped[n] == 2 * one[n] for n in conv)


def test_a_fixed_batch_is_not_overridden(tmp_path):
    save(small_cnn(seed=1), tmp_path / "f.onnx")
    with pytest.raises(OnnxImportError, match=r"graph input 'input' has a fixed batch of 1, not 2"):
        import_onnx(tmp_path / "f.onnx", batch=2)
    with pytest.raises(OnnxImportError, match="batch 0"):
        import_onnx(tmp_path / "f.onnx", batch=0)
