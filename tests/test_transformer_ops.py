"""A transformer encoder layer as exporters write it (LayerNormalization, heads split by Reshape and
Transpose, Q·Kᵀ and probabilities·V as MatMuls of two activations, Div, Softmax, GELU as ONNX's Gelu or
torch's Erf form, residual Adds), quantized by onnxruntime, against onnxruntime (tests/ort_checks.py);
bad attributes refused naming the node."""

import onnx
import pytest

from hwgen.config import AcceleratorConfig
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import encoder_layer, quantize_qdq, save
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="act4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64)
CASES = [(False, "int8", True), (True, "uint8", False)]


@pytest.mark.parametrize("gelu_op,act,pc", CASES, ids=[f"{'gelu' if g else 'erf'}-{a}-{'pc' if p else 'pt'}"
                                                      for g, a, p in CASES])
def test_encoder_layer_against_onnxruntime(tmp_path, gelu_op, act, pc):
    fm = encoder_layer(seed=7, gelu_op=gelu_op)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type=act, per_channel=pc, seed=7)
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {"LayerNormalization", "Softmax", "Transpose", "MatMul", "Gelu" if gelu_op else "Erf"} <= ops
    g = import_onnx(tmp_path / "q.onnx")
    assert sum(g.layer(n).kind == "MatMul" for n in g.order()) == 2  # Q·Kᵀ and probabilities·V
    check_against_ort(tmp_path / "q.onnx", fm, CFG, 7, classifier=False)


def _with(model: onnx.ModelProto, op: str, **attrs) -> onnx.ModelProto:
    node = next(n for n in model.graph.node if n.op_type == op)
    for k, v in attrs.items():
        node.attribute.append(onnx.helper.make_attribute(k, v))
    return model


@pytest.mark.parametrize("op,attrs,words", [
    ("Softmax", {"axis": 5}, ("node 'softmax'", "axis")),
    ("LayerNormalization", {"stash_type": 0}, ("node 'ln1'", "stash_type")),
])
def test_bad_attributes_are_refused_naming_the_node(op, attrs, words):
    m = encoder_layer(seed=1)
    node = next(n for n in m.graph.node if n.op_type == op)
    for a in list(node.attribute):
        if a.name in attrs:
            node.attribute.remove(a)
    with pytest.raises(OnnxImportError) as e:
        import_onnx(_with(m, op, **attrs))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_gelu_approximation_other_than_tanh_is_refused():
    m = encoder_layer(seed=1, gelu_op=True)
    with pytest.raises(OnnxImportError, match=r"node 'gelu'.*approximate"):
        import_onnx(_with(m, "Gelu", approximate="sigmoid"))
