"""ShuffleNetV2's tensor plumbing (Split, Concat, the channel shuffle's 5-D Reshape and Transpose, Slice,
ReduceMean, Squeeze, Unsqueeze) in its opset-13 and opset-18 forms, as onnxruntime's QDQ quantizer leaves
it, against onnxruntime (tests/ort_checks.py); bad attributes refused naming the node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hwgen.config import AcceleratorConfig
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import pad_gather_cnn, quantize_qdq, save, shape_subgraph_cnn, shuffle_cnn
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="act4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64)
CASES = [(13, "int8", True), (18, "uint8", False), (17, "int8", False)]


@pytest.mark.parametrize("opset,act,pc", CASES, ids=[f"opset{o}-{a}-{'pc' if p else 'pt'}" for o, a, p in CASES])
def test_shuffle_plumbing_against_onnxruntime(tmp_path, opset, act, pc):
    fm = shuffle_cnn(seed=opset, opset=opset)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type=act, per_channel=pc, seed=opset)
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {"Split", "Transpose", "Slice", "ReduceMean", "Squeeze", "Unsqueeze", "Concat"} <= ops
    g = import_onnx(tmp_path / "q.onnx")
    assert {"Transpose", "Slice", "ReduceMean"} <= {g.layer(n).kind for n in g.order()}
    check_against_ort(tmp_path / "q.onnx", fm, CFG, opset)


@pytest.mark.parametrize("act,pc", [("int8", True), ("uint8", False)])
def test_pad_and_gather_against_onnxruntime(tmp_path, act, pc):
    fm = pad_gather_cnn(seed=4)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type=act, per_channel=pc, seed=4)
    g = import_onnx(tmp_path / "q.onnx")
    assert {g.layer(n).mode for n in g.order() if g.layer(n).kind == "Pad"} == {"constant", "reflect"}
    assert "Gather" in {g.layer(n).kind for n in g.order()}
    check_against_ort(tmp_path / "q.onnx", fm, CFG, 4)


def _one(op: str, shape, attrs: dict, inputs=(), inits=(), opset: int = 13) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["d0", "d1", "d2"])
    node = helper.make_node(op, ["x", *inputs], ["y"], name="n", **attrs)
    m = helper.make_model(helper.make_graph([node], "g", [x], [y], list(inits)),
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("op,attrs,inputs,consts,words", [
    ("Transpose", {"perm": [0, 0, 1]}, (), {}, ("node 'n'",)),
    ("Slice", {}, ("s", "e", "a", "st"), {"s": [0], "e": [2], "a": [1], "st": [-1]}, ("node 'n'", "positive steps")),
    ("Slice", {}, ("s", "e", "a"), {"s": [0], "e": [2], "a": [5]}, ("node 'n'", "axis")),
    ("ReduceMean", {"axes": [7]}, (), {}, ("node 'n'", "axis")),
    ("Pad", {"mode": "wrap"}, ("p",), {"p": [0, 0, 0, 0, 0, 0]}, ("node 'n'", "mode")),
    ("Gather", {"axis": 1}, ("i",), {"i": [0, 9]}, ("node 'n'", "indices")),
])
def test_bad_attributes_are_refused_naming_the_node(op, attrs, inputs, consts, words):
    inits = [onnx.numpy_helper.from_array(np.array(v, np.int64), k) for k, v in consts.items()]
    with pytest.raises(OnnxImportError) as e:
        import_onnx(_one(op, (1, 4, 6), attrs, inputs, inits))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_shape_subgraphs_are_folded_and_run_against_onnxruntime(tmp_path):
    """torch's old flatten (Shape, Gather, Unsqueeze, Concat, Reshape) and a Reshape target built from Shape,
    Slice, Cast and Div are evaluated at import: only the compute layers and the two Reshapes remain."""
    fm = shape_subgraph_cnn(seed=2)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type="int8", per_channel=True, seed=2)
    for path in (tmp_path / "f.onnx", tmp_path / "q.onnx"):
        kinds = [import_onnx(path).layer(n).kind for n in import_onnx(path).order()]
        assert kinds == ["Input", "Conv2d", "Reshape", "Conv2d", "GlobalAveragePool", "Reshape", "Gemm"]
    check_against_ort(tmp_path / "q.onnx", fm, CFG, 3)


def test_a_huge_folded_constant_is_refused_before_it_is_built():
    shape = onnx.numpy_helper.from_array(np.array([1 << 16, 1 << 13], np.int64), "s")  # 2**29 elements
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 13])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["a", "b"])
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"], name="huge"),
             helper.make_node("Add", ["x", "big"], ["y"], name="add")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [shape]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    with pytest.raises(OnnxImportError, match=r"node 'huge'.*tensor_elements|node 'huge'.*elements"):
        import_onnx(m)
