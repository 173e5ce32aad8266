"""The element-wise operators of MobileNetV3 and EfficientNet (HardSwish, HardSigmoid, Sigmoid, Mul with the
squeeze-excite broadcast, Sub, Div by a constant) as onnxruntime's QDQ quantizer leaves them, against
onnxruntime: every layer within one quantum of ORT's unoptimised graph when fed ORT's inputs (float values
between ops the quantizer leaves unquantized equal to ORT's), end to end within two output quanta of the
optimised graph or ORT's own spread, same argmax; bad operands refused naming the node."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.config import AcceleratorConfig
from mappings.graph import Binary, BinaryFn, GraphError
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import activation_cnn, quantize_qdq, save
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="act4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64)
CASES = [(17, "int8", True), (14, "uint8", False), (17, "uint8", True)]


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"opset{c[0]}-{c[1]}-{'pc' if c[2] else 'pt'}")
def qdq(request, tmp_path_factory):
    opset, act, pc = request.param
    d = tmp_path_factory.mktemp(f"act{opset}{act}")
    fm = activation_cnn(seed=opset, opset=opset)
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "q.onnx", activation_type=act, per_channel=pc, seed=opset)
    return d / "q.onnx", fm, opset


def test_layers_within_one_quantum_and_output_within_ort_spread(qdq):
    path, fm, seed = qdq
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert {"HardSwish", "HardSigmoid", "Sigmoid", "Mul", "Sub", "Div"} <= ops
    assert check_against_ort(path, fm, CFG, seed)["float"]  # the Sub -> Div chain stays float


def _binary_model(a_shape, b_shape, op="Mul"):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, list(a_shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, *a_shape[2:]])
    w = numpy_helper.from_array(np.ones((4, a_shape[1], 1, 1), np.float32), "w")
    wb = numpy_helper.from_array(np.ones((b_shape[1], a_shape[1], 1, 1), np.float32), "wb")
    nodes = [helper.make_node("Conv", ["a", "w"], ["c"], name="c1"),
             helper.make_node("GlobalAveragePool", ["a"], ["p"], name="pool"),
             helper.make_node("Conv", ["p", "wb"], ["s"], name="c2"),
             helper.make_node(op, ["c", "s"], ["y"], name="scale")]
    m = helper.make_model(helper.make_graph(nodes, "b", [a], [y], [w, wb]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_operands_that_do_not_broadcast_are_refused_naming_the_node():
    with pytest.raises(OnnxImportError, match=r"node 'scale' \(Mul\).*(Incompatible dimensions|do not broadcast)"):
        import_onnx(_binary_model((1, 3, 6, 6), (1, 3, 1, 1)))
    assert import_onnx(_binary_model((1, 3, 6, 6), (1, 4, 1, 1))).layer("scale").kind == "Mul"


def test_binary_broadcast_shapes_and_constant_operand():
    b = Binary(fn=BinaryFn.DIV, const=np.full((1, 3, 1, 1), 2, np.float32), const_left=True)
    assert b.arity == 1 and b.infer([(2, 3, 4, 5)], "node 'd'") == (2, 3, 4, 5)
    left, right = b.operands([np.ones((2, 3, 4, 5), np.float32)])
    assert left.shape == (1, 3, 1, 1) and right.shape == (2, 3, 4, 5)
    with pytest.raises(GraphError, match="do not broadcast"):
        Binary(fn=BinaryFn.SUB).infer([(2, 3), (4, 3)], "node 's'")
