"""ONNX importer: float models, BatchNormalization folding, onnxruntime QDQ int8/uint8 models, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mappings.graph import Clip, Conv2d, Gemm, MatMul
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import (_Builder, conv_chain, mlp, quantize_qdq, random_inputs, run_ort, save, small_cnn)


# ----------------------------------------------------------------- helpers
def inits(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def conv_int(x, w, stride, pads, dilation, groups):
    """Integer (or float) grouped 2-D convolution, NCHW x OIHW, zero padding."""
    pt, pl, pb, pr = pads
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow), np.result_type(x.dtype, w.dtype))
    og = o // groups
    for g in range(groups):
        xs, wg = x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, i, j])
    return out


def requant(acc, real_scale, qp):
    info = np.iinfo(np.dtype(qp.dtype))
    return np.clip(np.rint(acc * real_scale / float(qp.scale)) + int(qp.zero_point), info.min, info.max)


# ------------------------------------------------------------ float models
def test_float_cnn_structure():
    m = small_cnn(seed=3)
    g = import_onnx(m)
    kinds = {n: L.kind for n, L in g}
    assert kinds == {"input": "Input", "conv1": "Conv2d", "relu1": "Relu", "conv2": "Conv2d", "relu2": "Relu",
                     "dwconv": "Conv2d", "relu6": "Clip", "pwconv": "Conv2d", "add": "Add", "maxpool": "MaxPool",
                     "gap": "GlobalAveragePool", "flatten": "Flatten", "fc": "Gemm"}
    assert g.outputs == ["fc"]
    w = inits(m)
    c2 = g.layer("conv2")
    assert (c2.kernel, c2.stride, c2.pads, c2.groups) == ((3, 3), (2, 2), (1, 1, 1, 1), 1)
    dw = g.layer("dwconv")
    assert dw.depthwise and dw.groups == 16 and dw.weight.shape == (16, 1, 3, 3)
    assert isinstance(g.layer("relu6"), Clip) and (g.layer("relu6").min, g.layer("relu6").max) == (0.0, 6.0)
    mp = g.layer("maxpool")
    assert (mp.kernel, mp.stride, mp.pads) == ((2, 2), (2, 2), (0, 0, 0, 0))
    fc = g.layer("fc")
    assert (fc.in_features, fc.out_features) == (16, 10)
    np.testing.assert_array_equal(fc.weight, w["fc.weight"].T)
    np.testing.assert_array_equal(g.layer("conv1").weight, w["conv1.weight"])
    np.testing.assert_array_equal(g.layer("conv1").bias, w["conv1.bias"])
    assert g.inputs_of("add") == ["pwconv", "relu2"]
    assert g.shapes["conv2"] == (1, 16, 8, 8) and g.shapes["maxpool"] == (1, 16, 4, 4) and g.shapes["fc"] == (1, 10)
    assert all(g.tensors[n].quant is None and g.tensors[n].dtype == "float32" for n in g.g)
    assert g.tensors["fc"].name == "logits" and g.tensors["relu6"].name == "relu6_out"
    assert sum(r["macs"] for r in g.summary()) > 0


def test_float_mlp_matmul_add_becomes_gemm(tmp_path):
    m = mlp(seed=1)
    g = import_onnx(save(m, tmp_path / "mlp.onnx"), name="mlp")
    w = inits(m)
    assert g.name == "mlp"
    assert [L.kind for _, L in g] == ["Input", "Gemm", "Relu", "Gemm", "Relu", "Gemm"]
    fc1 = g.layer("fc1_matmul")
    np.testing.assert_array_equal(fc1.weight, w["fc1.weight"])
    np.testing.assert_array_equal(fc1.bias, w["fc1.bias"])
    assert g.g.nodes["fc1_matmul"]["onnx_nodes"] == ["fc1_matmul", "fc1_add"]
    assert g.tensors["fc1_matmul"].name == "fc1_add_out"
    np.testing.assert_array_equal(g.layer("fc2").weight, w["fc2.weight"])
    np.testing.assert_array_equal(g.layer("fc3").weight, w["fc3.weight"].T)


def test_float_misc_ops():
    """auto_pad, dilation, Reshape with 0/-1, Identity/Dropout dropped, Constant-node weights, two-activation MatMul."""
    b = _Builder(5)
    wc = helper.make_node("Constant", [], ["wconst"], name="wc",
                          value=numpy_helper.from_array(b.rng.standard_normal((6, 3, 3, 3)).astype(np.float32)))
    b.nodes.append(wc)
    x = b.node("Conv", ["input", "wconst"], "c_same", auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3])
    x = b.node("Identity", [x], "ident")
    x = b.conv(x, 6, 6, 3, "c_dil", pad=2, dilation=2)
    x = b.node("Dropout", [x], "drop")
    x = b.node("AveragePool", [x], "ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
    r1 = b.node("Reshape", [x, b.const("s1", np.array([0, 6, -1], np.int64))], "rs1")
    r2 = b.node("Reshape", [x, b.const("s2", np.array([1, -1, 6], np.int64))], "rs2")
    y = b.node("MatMul", [r1, r2], "mm")
    m = b.model("misc", [("input", (1, 3, 9, 9))], [(y, (1, 6, 6))])
    g = import_onnx(m)
    assert [L.kind for _, L in g] == ["Input", "Conv2d", "Conv2d", "AveragePool", "Reshape", "Reshape", "MatMul"]
    cs = g.layer("c_same")
    assert cs.pads == (1, 1, 1, 1) and g.shapes["c_same"] == (1, 6, 5, 5)
    assert g.layer("c_dil").dilation == (2, 2) and g.shapes["c_dil"] == (1, 6, 5, 5)
    assert g.layer("ap").count_include_pad
    assert g.layer("rs1").shape == (1, 6, 25) and g.layer("rs2").shape == (1, 25, 6)
    assert isinstance(g.layer("mm"), MatMul) and g.shapes["mm"] == (1, 6, 6)
    assert g.tensors["c_same"].name == "ident_out" and g.tensors["c_dil"].name == "drop_out"


def test_float_constant_add_symbolic_batch_and_clip_attributes():
    """A constant Add that is no bias becomes Add(x, Constant); a symbolic batch is 1; Clip bounds as attributes
    (opset < 11) and as inputs; Clip(0, inf) is a Relu."""
    b = _Builder(2)
    x = b.conv("input", 3, 4, 1, "c")
    x = b.node("Relu", [x], "r")
    x = b.node("Add", [b.const("offset", np.full((4, 1, 1), 0.5, np.float32)), x], "add_const")
    b.nodes.append(helper.make_node("Clip", [x, b.const("lo", np.array(0, np.float32))], ["y"], name="clip_lo"))
    m = b.model("cadd", [("input", ("N", 3, 5, 5))], [("y", ("N", 4, 5, 5))])
    g = import_onnx(m)
    assert {n: L.kind for n, L in g} == {"input": "Input", "c": "Conv2d", "r": "Relu", "offset": "Constant",
                                         "add_const": "Add", "clip_lo": "Relu"}
    assert g.shapes["input"] == (1, 3, 5, 5) and g.inputs_of("add_const") == ["offset", "r"]
    np.testing.assert_array_equal(g.layer("offset").value, np.full((1, 4, 5, 5), 0.5, np.float32))

    b = _Builder(2)
    b.nodes.append(helper.make_node("Clip", ["input"], ["y"], name="clip6", min=0.0, max=6.0))
    m = helper.make_model(helper.make_graph(b.nodes, "old", [helper.make_tensor_value_info("input", 1, [1, 4])],
                                            [helper.make_tensor_value_info("y", 1, [1, 4])]),
                          opset_imports=[helper.make_opsetid("", 10)])
    g = import_onnx(m)
    assert (g.layer("clip6").min, g.layer("clip6").max) == (0.0, 6.0)


def test_batchnorm_folding_matches_onnxruntime():
    m = small_cnn(seed=7, batchnorm=True)
    g = import_onnx(m)
    assert not any(L.kind == "BatchNormalization" for _, L in g)
    assert g.g.nodes["conv1"]["onnx_nodes"] == ["conv1", "conv1_bn"]
    feed = random_inputs(m, seed=1)[0]
    names = [g.tensors[n].name for n in ("conv1", "dwconv")]
    ref = run_ort(m, feed, names, opt_level="disable")  # unoptimised: onnxruntime runs the BN itself
    c1 = g.layer("conv1")
    got = conv_int(feed["input"].astype(np.float64), c1.weight.astype(np.float64), c1.stride, c1.pads, c1.dilation,
                   c1.groups) + c1.bias[None, :, None, None]
    np.testing.assert_allclose(got, ref["conv1_bn_out"], rtol=1e-4, atol=1e-4)
    dw = g.layer("dwconv")
    x = ref_in = run_ort(m, feed, ["relu2_out"], opt_level="disable")["relu2_out"]
    got = conv_int(x.astype(np.float64), dw.weight.astype(np.float64), dw.stride, dw.pads, dw.dilation,
                   dw.groups) + dw.bias[None, :, None, None]
    assert ref_in.shape == (1, 16, 8, 8)
    np.testing.assert_allclose(got, ref["dwconv_bn_out"], rtol=1e-4, atol=1e-4)


def test_batchnorm_not_foldable():
    b = _Builder(0)
    x = b.conv("input", 3, 4, 3, "c", pad=1)
    x = b.node("Relu", [x], "r")
    x = b.batchnorm(x, 4, "bn_after_relu")
    m = b.model("bn", [("input", (1, 3, 6, 6))], [(x, (1, 4, 6, 6))])
    with pytest.raises(OnnxImportError, match=r"bn_after_relu.*BatchNormalization.*cannot fold.*not produced by"):
        import_onnx(m)


# -------------------------------------------------------------- QDQ models
CASES = [(a, pc) for a in ("int8", "uint8") for pc in (False, True)]


@pytest.fixture(scope="module")
def qdq_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("qdq")
    out = {}
    for kind, build in (("cnn", small_cnn), ("mlp", mlp)):
        fp = save(build(seed=11), d / f"{kind}.onnx")
        for act, pc in CASES:
            out[kind, act, pc] = (fp, quantize_qdq(fp, d / f"{kind}_{act}_{int(pc)}.onnx", act, pc, seed=2))
    return out


def _check_weights(g, qm, node, wname, bname, transposed, per_channel):
    """Integer weights, scales and bias of IR node equal the quantized initializers."""
    w = inits(qm)
    L = g.layer(node)
    wq = w[f"{wname}_quantized"]
    assert L.weight.dtype == np.int8
    np.testing.assert_array_equal(L.weight, wq.T if transposed else wq)
    scale = w[f"{wname}_scale"]
    np.testing.assert_array_equal(np.asarray(L.weight_quant.scale), scale)
    assert np.all(L.weight_quant.zero_point == 0) and L.weight_quant.dtype == "int8"
    assert L.weight_quant.per_channel == per_channel
    assert L.weight_quant.axis == ((1 if isinstance(L, Gemm) else 0) if per_channel else None)
    if bname is not None:
        assert L.bias.dtype == np.int32
        np.testing.assert_array_equal(L.bias, w[f"{bname}_quantized"])
        sx = float(g.tensors[g.inputs_of(node)[0]].quant.scale)
        np.testing.assert_allclose(w[f"{bname}_quantized_scale"], np.float32(sx) * scale, rtol=1e-6)


def _int_reference(g, node, ins):
    """Requantized output of a Conv2d/Gemm from the integer input (the accelerator's arithmetic, float rescale)."""
    L = g.layer(node)
    qx = g.tensors[g.inputs_of(node)[0]].quant
    x = ins.astype(np.int64) - int(qx.zero_point)
    if isinstance(L, Conv2d):
        acc = conv_int(x, L.weight.astype(np.int64), L.stride, L.pads, L.dilation, L.groups)
        acc = acc + L.bias.astype(np.int64)[None, :, None, None]
        sw = np.asarray(L.weight_quant.scale, np.float64).reshape(-1, 1, 1) if L.weight_quant.per_channel else \
            float(L.weight_quant.scale)
    else:
        acc = x @ L.weight.astype(np.int64) + (L.bias.astype(np.int64) if L.bias is not None else 0)
        sw = np.asarray(L.weight_quant.scale, np.float64)
    return requant(acc, float(qx.scale) * sw, g.tensors[node].quant)


@pytest.mark.parametrize("act,per_channel", CASES)
def test_qdq_cnn(qdq_models, act, per_channel):
    fp, qp = qdq_models["cnn", act, per_channel]
    qm = onnx.load(str(qp))
    g = import_onnx(qp)
    # Relu and ReLU6 after a single-consumer Conv are removed by the quantizer: their range is the Q range
    assert [L.kind for _, L in g] == ["Input", "Conv2d", "Conv2d", "Conv2d", "Conv2d", "Add", "MaxPool",
                                      "GlobalAveragePool", "Flatten", "Gemm"]
    qmin = -128 if act == "int8" else 0
    for n in g.g:
        t = g.tensors[n]
        assert t.dtype == act and t.quant.dtype == act and not t.quant.per_channel
        assert t.name.endswith("_QuantizeLinear_Output")
    w = inits(qm)
    assert g.tensors["input"].quant.zero_point == w["input_zero_point"]
    assert float(g.tensors["input"].quant.scale) == w["input_scale"]
    for n in ("conv1", "conv2", "dwconv"):  # fused Relu / ReLU6: zero point at the bottom of the range
        assert int(g.tensors[n].quant.zero_point) == qmin
    assert float(g.tensors["dwconv"].quant.scale) <= 6 / 255 * (1 + 1e-6)  # ReLU6: calibrated range inside [0, 6]
    assert g.tensors["maxpool"].quant == g.tensors["add"].quant  # MaxPool/Flatten keep the input quantization
    assert g.tensors["flatten"].quant == g.tensors["gap"].quant
    assert g.tensors["gap"].quant != g.tensors["maxpool"].quant  # GlobalAveragePool requantizes
    for node, wname in (("conv1", "conv1"), ("conv2", "conv2"), ("dwconv", "dwconv"), ("pwconv", "pwconv"),
                        ("fc", "fc")):
        _check_weights(g, qm, node, f"{wname}.weight", f"{wname}.bias", node == "fc", per_channel)

    # layer by layer against onnxruntime: same integer input, output within one quantum
    feed = random_inputs(qm, seed=9)[0]
    ref = run_ort(qm, feed, [g.tensors[n].name for n in g.g])
    for node in g.compute_layers():
        src = g.inputs_of(node)[0]
        got = _int_reference(g, node, ref[g.tensors[src].name])
        want = ref[g.tensors[node].name].astype(np.int64)
        assert np.abs(got - want).max() <= 1, node


@pytest.mark.parametrize("act,per_channel", CASES)
def test_qdq_mlp(qdq_models, act, per_channel):
    fp, qp = qdq_models["mlp", act, per_channel]
    qm = onnx.load(str(qp))
    g = import_onnx(qp)
    w = inits(qm)
    # MatMul + Add(bias): the quantizer keeps both (the MatMul output is requantized, the bias is an 8-bit
    # constant with its own scale and zero point): Gemm without bias, then Add(Gemm, Constant)
    assert {n: L.kind for n, L in g} == {"input": "Input", "fc1_matmul": "Gemm", "fc1.bias_quantized": "Constant",
                                         "fc1_add": "Add", "fc2": "Gemm", "fc3": "Gemm"}
    assert g.inputs_of("fc1_add") == ["fc1_matmul", "fc1.bias_quantized"]
    assert g.layer("fc1_matmul").bias is None
    const, cq = g.layer("fc1.bias_quantized"), g.tensors["fc1.bias_quantized"].quant
    assert const.value.shape == (1, 24) and const.value.dtype == w["fc1.bias_quantized"].dtype
    np.testing.assert_array_equal(const.value[0], w["fc1.bias_quantized"])
    assert float(cq.scale) == w["fc1.bias_scale"] and int(cq.zero_point) == w["fc1.bias_zero_point"]
    assert g.tensors["fc1_add"].name == "relu1_out_QuantizeLinear_Output"
    _check_weights(g, qm, "fc1_matmul", "fc1.weight", None, False, per_channel)
    _check_weights(g, qm, "fc2", "fc2.weight", "fc2.bias", False, per_channel)
    _check_weights(g, qm, "fc3", "fc3.weight", "fc3.bias", True, per_channel)

    feed = random_inputs(qm, seed=4)[0]
    ref = run_ort(qm, feed, [g.tensors[n].name for n in g.g if n != "fc1.bias_quantized"])
    for node in g.compute_layers():
        got = _int_reference(g, node, ref[g.tensors[g.inputs_of(node)[0]].name])
        assert np.abs(got - ref[g.tensors[node].name].astype(np.int64)).max() <= 1, node
    qa, qo = g.tensors["fc1_matmul"].quant, g.tensors["fc1_add"].quant
    real = (float(qa.scale) * (ref[g.tensors["fc1_matmul"].name].astype(np.int64) - int(qa.zero_point))
            + float(cq.scale) * (const.value.astype(np.int64) - int(cq.zero_point)))
    got = requant(real, 1.0, qo)
    assert np.abs(got - ref[g.tensors["fc1_add"].name].astype(np.int64)).max() <= 1


def test_qdq_kept_relu_concat_reshape_matmul(tmp_path):
    """A Relu whose input has two consumers is kept (own quantization); Concat requantizes; Reshape/AveragePool
    keep their input's quantization; a MatMul of two activations stays a MatMul."""
    b = _Builder(1)
    c1 = b.conv("input", 4, 8, 3, "c1", pad=1)
    r1 = b.node("Relu", [c1], "r1")
    cat = b.node("Concat", [r1, c1], "cat", axis=-3)
    ap = b.node("AveragePool", [cat], "ap", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    rs1 = b.node("Reshape", [ap, b.const("s1", np.array([1, 16, 64], np.int64))], "rs1")
    rs2 = b.node("Reshape", [ap, b.const("s2", np.array([0, 64, -1], np.int64))], "rs2")
    mm = b.node("MatMul", [rs1, rs2], "mm")
    fp = save(b.model("kept", [("input", (1, 4, 8, 8))], [(mm, (1, 16, 16))]), tmp_path / "kept.onnx")
    g = import_onnx(quantize_qdq(fp, tmp_path / "kept_q.onnx", "int8", False))
    assert {n: L.kind for n, L in g} == {"input": "Input", "c1": "Conv2d", "r1": "Relu", "cat": "Concat",
                                         "ap": "AveragePool", "rs1": "Reshape", "rs2": "Reshape", "mm": "MatMul"}
    assert g.layer("cat").axis == 1 and g.inputs_of("cat") == ["r1", "c1"]
    assert int(g.tensors["r1"].quant.zero_point) == -128 and g.tensors["r1"].quant != g.tensors["c1"].quant
    assert g.tensors["ap"].quant == g.tensors["cat"].quant == g.tensors["rs1"].quant == g.tensors["rs2"].quant
    assert g.tensors["mm"].quant != g.tensors["rs1"].quant


def test_qdq_batchnorm_rejected(tmp_path):
    b = _Builder(2)
    x = b.conv("input", 3, 4, 3, "c", pad=1, batchnorm=True)
    fp = save(b.model("bnq", [("input", (1, 3, 6, 6))], [(x, (1, 4, 6, 6))]), tmp_path / "bn.onnx")
    qp = quantize_qdq(fp, tmp_path / "bn_q.onnx")
    with pytest.raises(OnnxImportError, match=r"c_bn.*BatchNormalization.*quant_pre_process"):
        import_onnx(qp)


# ------------------------------------------------------------------ errors
def test_unsupported_operator_names_node_and_op():
    b = _Builder(0)
    x = b.conv("input", 3, 4, 3, "c", pad=1)
    x = b.node("Softplus", [x], "my_softplus")
    m = b.model("bad", [("input", (1, 3, 6, 6))], [(x, (1, 4, 6, 6))])
    with pytest.raises(OnnxImportError, match=r"my_softplus.*Softplus"):
        import_onnx(m)


def test_gemm_trans_a_rejected():
    b = _Builder(0)
    ins = ["input", b.const("w", np.ones((4, 3), np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["y"], name="gemm_ta", transA=1))
    m = b.model("ta", [("input", (4, 1))], [("y", (1, 3))])
    with pytest.raises(OnnxImportError, match=r"gemm_ta.*Gemm.*transA"):
        import_onnx(m)


def test_bad_files(tmp_path):
    good = save(conv_chain(seed=0, n=2), tmp_path / "chain.onnx")
    assert len(import_onnx(good).compute_layers()) == 2
    data = good.read_bytes()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(OnnxImportError, match="trunc.onnx"):
        import_onnx(trunc)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not an onnx model\n" * 20)
    with pytest.raises(OnnxImportError, match="notes.onnx"):
        import_onnx(text)
    with pytest.raises(OnnxImportError, match="missing.onnx"):
        import_onnx(tmp_path / "missing.onnx")
    assert issubclass(OnnxImportError, ValueError)
