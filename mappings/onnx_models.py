"""Small built-in ONNX models (for the demo, tests and benchmarks) and onnxruntime helpers.

Builders return float32 ``onnx.ModelProto`` objects (opset 13, batch 1, random
weights from a seed)::

    from mappings.onnx_models import small_cnn, conv_chain, mlp, quantize_qdq, run_ort

* :func:`small_cnn`  conv3x3 s1 p1 + Relu, conv3x3 s2 p1 + Relu, depthwise
  conv3x3 + ReLU6 (Clip), 1x1 conv, residual Add, MaxPool, GlobalAveragePool,
  Flatten, Gemm (transB=1). ``batchnorm=True`` puts a BatchNormalization after
  every conv (to test folding).
* :func:`conv_chain` ``n`` 3x3 convs, each followed by Relu.
* :func:`mlp` MatMul + Add (bias) + Relu, then Gemm (transB=0) + Relu, then
  Gemm (transB=1).
* torchvision's networks (``squeezenet1_1``, ``shufflenet_v2_x0_5``, ``efficientnet_b0``,
  ``mobilenet_v3_small`` and ``-large``) as ``torch.onnx.export`` writes them (BatchNorm folded, random
  weights) are in :mod:`mappings.onnx_vision`, built on this module's ``_Builder``.
* :func:`quantize_qdq` runs ``onnxruntime.quantization.quantize_static`` in
  QDQ format with a calibration reader over a few random inputs.
* :func:`run_ort` runs a model and returns the requested tensors, including
  intermediate ones (they are added to the graph outputs first).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13


# ------------------------------------------------------------------ building
class _Builder:
    """Accumulates nodes and initializers; weights drawn from one RNG."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs) -> str:
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, name: str, stride: int = 1, pad: int = 0, groups: int = 1,
             dilation: int = 1, bias: bool = True, batchnorm: bool = False) -> str:
        fan_in = cin // groups * k * k
        w = (self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        ins = [x, self.const(f"{name}.weight", w)]
        if bias:
            ins.append(self.const(f"{name}.bias", (self.rng.standard_normal(cout) * 0.1).astype(np.float32)))
        y = self.node("Conv", ins, name, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                      group=groups, dilations=[dilation, dilation])
        if batchnorm:
            y = self.batchnorm(y, cout, f"{name}_bn")
        return y

    def batchnorm(self, x: str, c: int, name: str) -> str:
        r = self.rng
        ins = [x,
               self.const(f"{name}.scale", r.uniform(0.5, 1.5, c).astype(np.float32)),
               self.const(f"{name}.bias", (r.standard_normal(c) * 0.1).astype(np.float32)),
               self.const(f"{name}.mean", (r.standard_normal(c) * 0.1).astype(np.float32)),
               self.const(f"{name}.var", r.uniform(0.5, 2.0, c).astype(np.float32))]
        return self.node("BatchNormalization", ins, name, epsilon=1e-5)

    def relu6(self, x: str, name: str) -> str:
        lo = self.const(f"{name}.min", np.array(0.0, np.float32))
        hi = self.const(f"{name}.max", np.array(6.0, np.float32))
        return self.node("Clip", [x, lo, hi], name)

    def model(self, graph_name: str, inputs: Sequence[tuple[str, Sequence[int]]],
              outputs: Sequence[tuple[str, Sequence[int]]], opset: int = OPSET) -> onnx.ModelProto:
        g = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs],
            initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="hwgen-tests")
        m.ir_version = 8  # readable by every onnxruntime of the last years
        onnx.checker.check_model(m)
        return m


def small_cnn(seed: int = 0, hw: int = 16, cin: int = 3, classes: int = 10, batchnorm: bool = False,
              width: int = 8) -> onnx.ModelProto:
    """The small CNN of the module docstring; input "input" [1, cin, hw, hw], output "logits" [1, classes]."""
    b = _Builder(seed)
    c1, c2 = width, 2 * width
    x = b.conv("input", cin, c1, 3, "conv1", stride=1, pad=1, batchnorm=batchnorm)
    x = b.node("Relu", [x], "relu1")
    x = b.conv(x, c1, c2, 3, "conv2", stride=2, pad=1, batchnorm=batchnorm)
    skip = b.node("Relu", [x], "relu2")
    x = b.conv(skip, c2, c2, 3, "dwconv", stride=1, pad=1, groups=c2, batchnorm=batchnorm)
    x = b.relu6(x, "relu6")
    x = b.conv(x, c2, c2, 1, "pwconv", batchnorm=batchnorm)
    x = b.node("Add", [x, skip], "add")
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[2, 2], strides=[2, 2])
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flatten", axis=1)
    w = (b.rng.standard_normal((classes, c2)) * np.sqrt(1.0 / c2)).astype(np.float32)
    ins = [x, b.const("fc.weight", w), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("small_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))])


def ceil_pool_cnn(seed: int = 0, hw: int = 17, cin: int = 3, classes: int = 10, width: int = 8) -> onnx.ModelProto:
    """SqueezeNet's pooling as torchvision exports it: MaxPool 3x3/2 with ``ceil_mode=1`` after a strided
    stem, then an AveragePool 3x3/2 with padding, ``ceil_mode=1`` and ``count_include_pad=1``, on odd
    sizes so the rounded-up windows hang over the edge; input "input" [1, cin, hw, hw], output "logits"."""
    b = _Builder(seed)
    x = b.conv("input", cin, width, 3, "conv1", stride=2)
    x = b.node("Relu", [x], "relu1")
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    x = b.conv(x, width, 2 * width, 3, "conv2", pad=1)
    x = b.node("Relu", [x], "relu2")
    x = b.node("AveragePool", [x], "avgpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1,
               count_include_pad=1)
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flatten", axis=1)
    w = (b.rng.standard_normal((classes, 2 * width)) * np.sqrt(1.0 / (2 * width))).astype(np.float32)
    ins = [x, b.const("fc.weight", w), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("ceil_pool_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))])


def activation_cnn(seed: int = 0, hw: int = 16, cin: int = 3, classes: int = 10, width: int = 8,
                   opset: int = 17) -> onnx.ModelProto:
    """The element-wise operators of MobileNetV3 and EfficientNet as torchvision exports them: a hard-swish
    stem, a depthwise block with squeeze-excite (global pool, two 1x1 convs, HardSigmoid, a channel-scale
    Mul broadcast over N x C x 1 x 1), a SiLU (Sigmoid and Mul), a Sub of two branches and a Div by a
    constant; input "input" [1, cin, hw, hw], output "logits" [1, classes]. HardSwish needs opset 14."""
    b = _Builder(seed)
    c = width
    x = b.conv("input", cin, c, 3, "stem", stride=2, pad=1)
    x = b.node("HardSwish", [x], "hswish")
    y = b.conv(x, c, c, 3, "dw", pad=1, groups=c)
    y = b.node("Relu", [y], "dw_relu")
    s = b.node("GlobalAveragePool", [y], "se_pool")
    s = b.conv(s, c, c // 2, 1, "se_reduce")
    s = b.node("Relu", [s], "se_relu")
    s = b.conv(s, c // 2, c, 1, "se_expand")
    s = b.node("HardSigmoid", [s], "se_gate", alpha=1 / 6, beta=0.5)
    y = b.node("Mul", [y, s], "se_scale")
    z = b.conv(y, c, 2 * c, 1, "expand")
    g = b.node("Sigmoid", [z], "silu_gate")
    z = b.node("Mul", [z, g], "silu")
    w = b.conv(y, c, 2 * c, 1, "branch")
    z = b.node("Sub", [z, w], "sub")
    z = b.node("Div", [z, b.const("two", np.array(2.0, np.float32))], "div")
    z = b.conv(z, 2 * c, 2 * c, 1, "project")
    z = b.node("GlobalAveragePool", [z], "gap")
    z = b.node("Flatten", [z], "flatten", axis=1)
    wfc = (b.rng.standard_normal((classes, 2 * c)) * np.sqrt(1.0 / (2 * c))).astype(np.float32)
    ins = [z, b.const("fc.weight", wfc), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("activation_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))], opset=opset)


def shuffle_cnn(seed: int = 0, hw: int = 16, cin: int = 3, classes: int = 10, width: int = 8,
                opset: int = 13) -> onnx.ModelProto:
    """ShuffleNetV2's tensor plumbing as torchvision exports it: a channel Split into two halves, one half
    through a 1x1 conv, Concat, the channel shuffle (Reshape to 5-D, Transpose, Reshape back), a Slice
    (a column crop), ReduceMean over the spatial axes, Squeeze and Unsqueeze; the opset-13 forms
    (``split`` and Squeeze ``axes`` as inputs, ReduceMean ``axes`` attribute) or the opset-18 ones
    (Split ``num_outputs``, ReduceMean ``axes`` input). Input "input" [1, cin, hw, hw], output "logits"."""
    b = _Builder(seed)
    c, h = width, hw // 2
    x = b.conv("input", cin, c, 3, "stem", stride=2, pad=1)
    halves = ["half0", "half1"]
    if opset >= 18:
        b.nodes.append(helper.make_node("Split", [x], halves, name="split", axis=1, num_outputs=2))
    else:
        b.nodes.append(helper.make_node("Split", [x, b.const("split.sizes", np.array([c // 2, c // 2], np.int64))],
                                        halves, name="split", axis=1))
    y = b.conv("half1", c // 2, c // 2, 1, "branch")
    y = b.node("Relu", [y], "branch_relu")
    y = b.node("Concat", ["half0", y], "concat", axis=1)
    y = b.node("Reshape", [y, b.const("shuffle.in", np.array([0, 2, c // 2, h, h], np.int64))], "shuffle_in")
    y = b.node("Transpose", [y], "shuffle", perm=[0, 2, 1, 3, 4])
    y = b.node("Reshape", [y, b.const("shuffle.out", np.array([0, c, h, h], np.int64))], "shuffle_out")
    y = b.node("Slice", [y, b.const("crop.starts", np.array([1], np.int64)), b.const("crop.ends", np.array([h], np.int64)),
                         b.const("crop.axes", np.array([3], np.int64))], "crop")
    y = b.conv(y, c, 2 * c, 1, "expand")
    axes = b.const("mean.axes", np.array([2, 3], np.int64))
    if opset >= 18:
        y = b.node("ReduceMean", [y, axes], "mean", keepdims=1)
    else:
        y = b.node("ReduceMean", [y], "mean", axes=[2, 3], keepdims=1)
    y = b.node("Squeeze", [y, axes], "squeeze")
    y = b.node("Unsqueeze", [y, b.const("unsq.axes", np.array([0], np.int64))], "unsqueeze")
    y = b.node("Squeeze", [y, b.const("sq.axes", np.array([0], np.int64))], "squeeze0")
    w = (b.rng.standard_normal((classes, 2 * c)) * np.sqrt(1.0 / (2 * c))).astype(np.float32)
    ins = [y, b.const("fc.weight", w), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("shuffle_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))], opset=opset)


def encoder_layer(seed: int = 0, seq: int = 8, d: int = 16, heads: int = 2, ff: int = 32, opset: int = 17,
                  gelu_op: bool = False, post_norm: bool = False, epsilon: float = 1e-5) -> onnx.ModelProto:
    """One transformer encoder layer as exporters write it (pre-norm): LayerNormalization, Q/K/V projections
    (MatMul + Add), heads split by Reshape and Transpose, Q·Kᵀ (a MatMul of two activations), the scale
    (Div), Softmax, probabilities·V, heads merged, the output projection and residual Add, then the
    feed-forward block with GELU (``gelu_op``: ONNX's Gelu, opset 20; else Erf, Mul and Add as torch
    exports it) and a second residual. ``post_norm``: BERT's order instead, each LayerNormalization after
    its residual Add (:func:`bert_encoder_layer`). Input "input" [1, seq, d], output "output" [1, seq, d]."""
    b = _Builder(seed)
    dh = d // heads

    def dense(x: str, i: int, o: int, name: str) -> str:
        w = (b.rng.standard_normal((i, o)) * np.sqrt(1.0 / i)).astype(np.float32)
        y = b.node("MatMul", [x, b.const(f"{name}.weight", w)], name)
        return b.node("Add", [y, b.const(f"{name}.bias", (b.rng.standard_normal(o) * 0.1).astype(np.float32))],
                      f"{name}_bias")

    def norm(x: str, name: str) -> str:
        return b.node("LayerNormalization", [x, b.const(f"{name}.scale", b.rng.uniform(0.5, 1.5, d).astype(np.float32)),
                                              b.const(f"{name}.bias", (b.rng.standard_normal(d) * 0.1).astype(np.float32))],
                      name, axis=-1, epsilon=epsilon)

    def split_heads(x: str, name: str, perm: list[int]) -> str:
        y = b.node("Reshape", [x, b.const(f"{name}.shape", np.array([0, seq, heads, dh], np.int64))], f"{name}_rs")
        return b.node("Transpose", [y], name, perm=perm)

    h = "input" if post_norm else norm("input", "ln1")
    q = split_heads(dense(h, d, d, "q"), "q_heads", [0, 2, 1, 3])
    k = split_heads(dense(h, d, d, "k"), "k_heads", [0, 2, 3, 1])          # K transposed: [1, heads, dh, seq]
    v = split_heads(dense(h, d, d, "v"), "v_heads", [0, 2, 1, 3])
    scores = b.node("MatMul", [q, k], "scores")
    scores = b.node("Div", [scores, b.const("scale", np.array(np.sqrt(dh), np.float32))], "scaled")
    probs = b.node("Softmax", [scores], "softmax", axis=-1)
    ctx = b.node("MatMul", [probs, v], "context")
    ctx = b.node("Transpose", [ctx], "merge_t", perm=[0, 2, 1, 3])
    ctx = b.node("Reshape", [ctx, b.const("merge.shape", np.array([0, seq, d], np.int64))], "merge")
    x = b.node("Add", ["input", dense(ctx, d, d, "o")], "residual1")
    if post_norm:
        x = norm(x, "ln1")
    h = dense(x if post_norm else norm(x, "ln2"), d, ff, "ff1")
    if gelu_op:
        h = b.node("Gelu", [h], "gelu")
    else:
        e = b.node("Div", [h, b.const("sqrt2", np.array(np.sqrt(2.0), np.float32))], "gelu_div")
        e = b.node("Erf", [e], "gelu_erf")
        e = b.node("Add", [e, b.const("one", np.array(1.0, np.float32))], "gelu_add")
        h = b.node("Mul", [h, e], "gelu_mul")
        h = b.node("Mul", [h, b.const("half", np.array(0.5, np.float32))], "gelu_half")
    x = b.node("Add", [x, dense(h, ff, d, "ff2")], "residual2")
    if post_norm:
        x = norm(x, "ln2")
    b.nodes[-1].output[0] = "output"
    return b.model("encoder_layer", [("input", (1, seq, d))], [("output", (1, seq, d))], opset=20 if gelu_op else opset)


def bert_encoder_layer(seed: int = 0, seq: int = 128, opset: int = 17) -> onnx.ModelProto:
    """One BERT-base encoder layer as Hugging Face's BertLayer exports (without an attention mask): hidden
    768, 12 heads, feed-forward 3072, post-norm LayerNormalization (epsilon 1e-12) and torch's erf GELU;
    :func:`encoder_layer` with those sizes. Input "input" [1, seq, 768], output "output" [1, seq, 768]."""
    return encoder_layer(seed, seq=seq, d=768, heads=12, ff=3072, opset=opset, post_norm=True, epsilon=1e-12)


def pad_gather_cnn(seed: int = 0, hw: int = 12, cin: int = 3, classes: int = 10, width: int = 8,
                   opset: int = 13) -> onnx.ModelProto:
    """Pad (constant with a non-zero value and asymmetric pads; reflect) and Gather of channels by constant
    indices (one negative), between convolutions; input "input" [1, cin, hw, hw], output "logits"."""
    b = _Builder(seed)
    c = width
    x = b.conv("input", cin, c, 3, "conv1", pad=1)
    x = b.node("Pad", [x, b.const("pad1.pads", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)),
                       b.const("pad1.value", np.array(0.5, np.float32))], "pad_const", mode="constant")
    x = b.conv(x, c, c, 3, "conv2")
    x = b.node("Pad", [x, b.const("pad2.pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "pad_reflect",
               mode="reflect")
    x = b.node("Gather", [x, b.const("pick", np.array([3, 0, 1, -1, 5], np.int64))], "pick_channels", axis=1)
    x = b.conv(x, 5, 2 * c, 3, "conv3", stride=2)
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "gap")], "flatten", axis=1)
    w = (b.rng.standard_normal((classes, 2 * c)) * np.sqrt(1.0 / (2 * c))).astype(np.float32)
    ins = [x, b.const("fc.weight", w), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("pad_gather_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))], opset=opset)


def shape_subgraph_cnn(seed: int = 0, hw: int = 8, cin: int = 3, classes: int = 10, width: int = 8) -> onnx.ModelProto:
    """The Shape-derived subgraphs exporters write: torch's old flatten (Shape, Gather, Unsqueeze, Concat with
    -1, Reshape) and a Reshape whose target comes from Shape, Slice, Cast and Mul; input "input"
    [1, cin, hw, hw], output "logits" [1, classes]."""
    b = _Builder(seed)
    c = width
    x = b.conv("input", cin, c, 3, "conv1", pad=1)
    s = b.node("Shape", [x], "shape1")
    hw2 = b.node("Slice", [s, b.const("s.starts", np.array([2], np.int64)), b.const("s.ends", np.array([4], np.int64))],
                 "hw_dims")
    half = b.node("Div", [b.node("Cast", [hw2], "hw_float", to=TensorProto.FLOAT),
                          b.const("two_f", np.array([1.0, 1.0], np.float32))], "hw_same")
    tgt = b.node("Concat", [b.const("nc", np.array([1, c], np.int64)), b.node("Cast", [half], "hw_int", to=TensorProto.INT64)],
                 "target", axis=0)
    x = b.node("Reshape", [x, tgt], "reshape_same")
    x = b.conv(x, c, c, 3, "conv2", stride=2, pad=1)
    x = b.node("GlobalAveragePool", [x], "gap")
    s = b.node("Shape", [x], "shape2")
    n = b.node("Unsqueeze", [b.node("Gather", [s, b.const("zero", np.array(0, np.int64))], "batch", axis=0),
                             b.const("unsq0", np.array([0], np.int64))], "batch1")
    x = b.node("Reshape", [x, b.node("Concat", [n, b.const("minus1", np.array([-1], np.int64))], "flat_shape", axis=0)],
               "flatten")
    w = (b.rng.standard_normal((classes, c)) * np.sqrt(1.0 / c)).astype(np.float32)
    ins = [x, b.const("fc.weight", w), b.const("fc.bias", (b.rng.standard_normal(classes) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["logits"], name="fc", transB=1))
    return b.model("shape_subgraph_cnn", [("input", (1, cin, hw, hw))], [("logits", (1, classes))])


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to a multiple of ``divisor``, never below 90% of ``v``."""
    out = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * v else out


def conv_chain(seed: int = 0, n: int = 5, hw: int = 12, channels: int = 8, cin: int = 3) -> onnx.ModelProto:
    """``n`` conv3x3 p1 + Relu layers; input "input" [1, cin, hw, hw], output "output"."""
    b = _Builder(seed)
    x, c = "input", cin
    for i in range(n):
        x = b.conv(x, c, channels, 3, f"conv{i + 1}", pad=1)
        x = b.node("Relu", [x], f"relu{i + 1}")
        c = channels
    b.nodes[-1].output[0] = "output"
    return b.model("conv_chain", [("input", (1, cin, hw, hw))], [("output", (1, channels, hw, hw))])


def mlp(seed: int = 0, features: Sequence[int] = (32, 24, 16, 10)) -> onnx.ModelProto:
    """MatMul+Add+Relu, Gemm(transB=0)+Relu, Gemm(transB=1); input "input" [1, f0], output "output"."""
    b = _Builder(seed)
    f = list(features)
    r = b.rng

    def w(i, o):
        return (r.standard_normal((i, o)) * np.sqrt(2.0 / i)).astype(np.float32)

    x = b.node("MatMul", ["input", b.const("fc1.weight", w(f[0], f[1]))], "fc1_matmul")
    x = b.node("Add", [x, b.const("fc1.bias", (r.standard_normal(f[1]) * 0.1).astype(np.float32))], "fc1_add")
    x = b.node("Relu", [x], "relu1")
    x = b.node("Gemm", [x, b.const("fc2.weight", w(f[1], f[2])),
                        b.const("fc2.bias", (r.standard_normal(f[2]) * 0.1).astype(np.float32))], "fc2")
    x = b.node("Relu", [x], "relu2")
    ins = [x, b.const("fc3.weight", w(f[2], f[3]).T.copy()),
           b.const("fc3.bias", (r.standard_normal(f[3]) * 0.1).astype(np.float32))]
    b.nodes.append(helper.make_node("Gemm", ins, ["output"], name="fc3", transB=1))
    return b.model("mlp", [("input", (1, f[0]))], [("output", (1, f[-1]))])


#: every builder above by name (tests that must cover each built model iterate this)
BUILDERS = {"small_cnn": small_cnn, "conv_chain": conv_chain, "mlp": mlp, "ceil_pool_cnn": ceil_pool_cnn,
            "activation_cnn": activation_cnn, "shuffle_cnn": shuffle_cnn, "encoder_layer": encoder_layer,
            "pad_gather_cnn": pad_gather_cnn, "shape_subgraph_cnn": shape_subgraph_cnn}


def save(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    path = Path(path)
    onnx.save(model, str(path))
    return path


# -------------------------------------------------------------- quantization
def input_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    inits = {i.name for i in model.graph.initializer}
    return {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim)
            for i in model.graph.input if i.name not in inits}


def random_inputs(model: onnx.ModelProto, seed: int = 0, n: int = 1) -> list[dict[str, np.ndarray]]:
    """``n`` feeds of standard-normal float32 inputs."""
    rng = np.random.default_rng(seed)
    shapes = input_shapes(model)
    return [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()} for _ in range(n)]


def quantize_qdq(float_model_path: str | os.PathLike, out_path: str | os.PathLike, activation_type: str = "int8",
                 per_channel: bool = False, seed: int = 0, samples: int = 8, **kwargs) -> Path:
    """Quantize a float model to int8 QDQ with onnxruntime's static quantizer; returns ``out_path``.

    ``activation_type`` is 'int8' or 'uint8'; weights are always int8. Extra
    keyword arguments go to ``quantize_static`` (e.g. ``extra_options``).
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    act = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[activation_type]
    feeds = random_inputs(onnx.load(str(float_model_path)), seed=seed, n=samples)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns about pre-processing on every call
    try:
        quantize_static(str(float_model_path), str(out_path), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=act, weight_type=QuantType.QInt8, **kwargs)
    finally:
        root.setLevel(level)
    return Path(out_path)


# ------------------------------------------------------------------- running
_NP_TO_ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int32): TensorProto.INT32,
               np.dtype(np.int64): TensorProto.INT64}


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.value_info, *g.input, *g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def with_outputs(model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs also include the tensors ``names``."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    types = _elem_types(m)
    for n in names:
        if n in have:
            continue
        if n not in types:
            raise KeyError(f"tensor '{n}' not found in model '{m.graph.name}'")
        m.graph.output.append(helper.make_tensor_value_info(n, types[n], None))
        have.add(n)
    return m


def run_ort(model: onnx.ModelProto | str | os.PathLike, feeds: Mapping[str, np.ndarray],
            tensors: Sequence[str] = (), opt_level: str = "all") -> dict[str, np.ndarray]:
    """Run ``model`` on the CPU provider; return the graph outputs and the tensors ``tensors``.

    ``opt_level``: 'disable', 'basic', 'extended' or 'all' (onnxruntime's graph
    optimization levels). Exposing an intermediate tensor as a graph output can
    stop onnxruntime from fusing the nodes around it.
    """
    import onnxruntime as ort

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    if tensors:
        model = with_outputs(model, tensors)
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[opt_level]
    so.log_severity_level = 3
    # On x86-64 without VNNI, onnxruntime's fast u8s8 integer kernels saturate 16-bit pair sums (seen here on an
    # AVX2-only AMD EPYC: one uint8 MatMul output 8 quanta off). The exact u8u8 kernels make it a reference on
    # every CPU; on CPUs with VNNI the option changes nothing.
    so.add_session_config_entry("session.x64quantprecision", "1")
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feeds))))
