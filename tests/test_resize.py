"""Resize (nearest) against onnxruntime: every coordinate transformation and nearest mode over a grid of
lengths, scales and sizes reads the same input elements as ORT's float operator; a quantized model end to end
(tests/ort_checks.py); other modes refused naming the node and the attribute."""

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.config import AcceleratorConfig
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import quantize_qdq, run_ort, save
from ort_checks import check_against_ort

COORDS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
CFG = AcceleratorConfig(name="act4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64,
                        controller="in-order")


def _resize_model(d: int, scale: float | None, size: int | None, ctm: str, nearest: str) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, d, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b", "c", "e"])
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi")]
    ins = ["x", "roi"]
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array([1, 1, scale, 1], np.float32), "scales"))
        ins.append("scales")
    else:
        inits.append(numpy_helper.from_array(np.array([1, 1, size, 1], np.int64), "sizes"))
        ins += ["", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], name="r", mode="nearest", coordinate_transformation_mode=ctm,
                            nearest_mode=nearest)
    m = helper.make_model(helper.make_graph([node], "g", [x], [y], inits), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_index_maps_equal_onnxruntime_on_a_grid():
    checked = 0
    for d, ctm, nearest in itertools.product((1, 2, 3, 5, 7), COORDS, NEAREST):
        for scale, size in [(s, None) for s in (0.5, 0.7, 1.5, 2.0, 2.5, 3.0)] + [(None, n) for n in (1, 2, 4, 9)]:
            if scale is not None and int(np.floor(np.float32(d) * np.float32(scale))) < 1:
                continue
            m = _resize_model(d, scale, size, ctm, nearest)
            if size is not None and size % d and not (d % size == 0 and (d // size) & (d // size - 1) == 0):
                with pytest.raises(OnnxImportError, match=r"node 'r'.*sizes"):
                    import_onnx(m)
                continue
            x = np.arange(1, d + 1, dtype=np.float32).reshape(1, 1, d, 1)
            want = run_ort(m, {"x": x})["y"]
            g = import_onnx(m)
            (layer,) = [g.layer(n) for n in g.order() if g.layer(n).kind == "Resize"]
            got = x[np.ix_(*layer.index)]
            assert got.shape == want.shape and np.array_equal(got, want), (d, scale, size, ctm, nearest)
            checked += 1
    assert checked > 600


def _upsample_cnn(seed: int, ctm: str) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 6, 6])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 12, 12])
    inits = [numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
             numpy_helper.from_array((rng.standard_normal((4, 4, 3, 3)) * 0.3).astype(np.float32), "w2"),
             numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    nodes = [helper.make_node("Conv", ["input", "w1"], ["c1"], name="c1", pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c1", "roi", "scales"], ["up"], name="up", mode="nearest",
                              coordinate_transformation_mode=ctm),
             helper.make_node("Conv", ["up", "w2"], ["out"], name="c2", pads=[1, 1, 1, 1])]
    m = helper.make_model(helper.make_graph(nodes, "up", [x], [y], inits), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("ctm", ["asymmetric", "half_pixel"])
def test_quantized_upsampling_against_onnxruntime(tmp_path, ctm):
    fm = _upsample_cnn(3, ctm)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type="int8", per_channel=True, seed=3)
    assert "Resize" in {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    check_against_ort(tmp_path / "q.onnx", fm, CFG, 3, classifier=False)


@pytest.mark.parametrize("attrs,word", [({"mode": "linear"}, "mode"),
                                        ({"coordinate_transformation_mode": "tf_crop_and_resize"},
                                         "coordinate_transformation_mode"),
                                        ({"nearest_mode": "banana"}, "nearest_mode")])
def test_unsupported_modes_are_refused_naming_the_node(attrs, word):
    m = _resize_model(4, 2.0, None, "asymmetric", "floor")
    node = m.graph.node[0]
    for a in list(node.attribute):
        if a.name in attrs:
            node.attribute.remove(a)
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    with pytest.raises(OnnxImportError, match=rf"node 'r'.*{word}"):
        import_onnx(m)
