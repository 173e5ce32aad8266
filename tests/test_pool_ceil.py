"""Pooling with ceil_mode=1 (SqueezeNet's MaxPool as torchvision exports it) and count_include_pad, against
onnxruntime: output shapes equal, every layer within one quantum of ORT when fed ORT's inputs, the output
within one quantum end to end."""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.graph import GraphError, MaxPool, ceil_extra
from mappings.onnx_import import import_onnx
from mappings.onnx_models import ceil_pool_cnn, quantize_qdq, run_ort, save
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="pool4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64)


@pytest.fixture(scope="module", params=[(17, "int8"), (21, "uint8"), (13, "int8")], ids=lambda p: f"hw{p[0]}-{p[1]}")
def qdq(request, tmp_path_factory):
    hw, act = request.param
    d = tmp_path_factory.mktemp(f"ceil{hw}")
    fm = ceil_pool_cnn(seed=hw, hw=hw)
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "q.onnx", activation_type=act, per_channel=True, seed=hw)
    return d / "q.onnx", fm, hw


def test_ceil_mode_output_sizes_equal_onnxruntime():
    """Output sizes of MaxPool with ceil_mode=1 over a grid of sizes, kernels, strides and pads: ours
    (ceil_extra through MaxPool.infer) against onnxruntime running the float operator."""
    from onnx import TensorProto, helper

    cases = [(n, k, s, lo, hi) for n in (1, 2, 3, 5, 7, 8, 13) for k in (1, 2, 3) for s in (1, 2, 3)
             for lo in (0, 1) for hi in (0, 1) if n + lo + hi >= k and lo < k and hi < k]
    for n, k, s, lo, hi in cases:
        node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[k, 1], strides=[s, 1], pads=[lo, 0, hi, 0],
                                ceil_mode=1)
        g = helper.make_graph([node], "p", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, n, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 8
        want = run_ort(m, {"x": np.zeros((1, 1, n, 1), np.float32)})["y"].shape
        got = MaxPool(kernel=(k, 1), stride=(s, 1), pads=(lo, 0, hi, 0),
                      ceil_pads=(ceil_extra(n, k, s, lo, hi), 0)).infer([(1, 1, n, 1)], "node 'p'")
        assert got == want, (n, k, s, lo, hi)


def test_layers_and_output_within_one_quantum_of_onnxruntime(qdq):
    """ORT's unoptimised graph runs the float AveragePool, which counts the explicit pads but not the
    ceil-mode rows; its optimised graph runs QLinearAveragePool, which divides differently in the
    rounded-up windows (ORT's own spread): tests/ort_checks.py."""
    path, fm, hw = qdq
    g = import_onnx(path)
    assert any(sum(g.layer(n).ceil_pads) for n in g.order() if g.layer(n).kind in ("MaxPool", "AveragePool"))
    check_against_ort(path, fm, CFG, hw)


def test_negative_ceil_pads_refused():
    with pytest.raises(GraphError):
        MaxPool(kernel=(3, 3), stride=(2, 2), ceil_pads=(-1, 0)).infer([(1, 1, 8, 8)], "node 'p'")
