"""torchvision classification networks as ``torch.onnx.export`` writes them, built with onnx.helper (torch is
not a dependency): random weights from a seed, batch 1, float32, for quantization with onnxruntime and
the tests and benchmarks of the importer and the executor.

    from mappings.onnx_vision import squeezenet1_1, shufflenet_v2_x0_5, efficientnet_b0, mobilenet_v3_large

Every builder takes ``seed``, ``hw`` (input "input" [1, 3, hw, hw]), ``classes`` (output "logits"
[1, classes]) and ``opset`` and returns a checked ``onnx.ModelProto`` that onnxruntime runs.

What is faithful to torchvision (eval mode) and its export
    * The architecture: every layer, channel count, kernel, stride, padding, group, residual connection
      and activation of torchvision's model (the tables below are torchvision's settings, width and depth
      multipliers 1.0).
    * The graph torch's exporter writes (TorchScript exporter, ``do_constant_folding=True``, static shapes)
      after onnxruntime's ``quant_pre_process``: BatchNormalization folded into the preceding convolution
      (so every convolution has a bias); Dropout and stochastic depth are identities in eval mode and
      absent; AdaptiveAvgPool2d(1) is GlobalAveragePool; ``torch.flatten(x, 1)`` is Flatten(axis=1); a
      Linear is Gemm(alpha=1, beta=1, transB=1); SiLU is ``Mul(x, Sigmoid(x))``; Hardsigmoid is
      HardSigmoid(alpha=1/6) (beta left at its default 0.5, as torch writes it); Hardswish is HardSwish
      from opset 14 and ``Mul(x, HardSigmoid(x))`` before; squeeze-excite's ``scale * input`` is
      ``Mul(gate, x)`` (the gate first); a residual ``result += input`` is ``Add(result, input)``;
      ShuffleNetV2's ``x.chunk(2, dim=1)`` is Split (a constant ``split`` input below opset 18,
      ``num_outputs=2`` from 18), its channel shuffle ``view, transpose(1, 2), view(b, -1, h, w)`` is
      Reshape [1, 2, c/2, h, w] -> Transpose [0, 2, 1, 3, 4] -> Reshape [1, -1, h, w] with the shapes
      folded to constants, and ``x.mean([2, 3])`` is ReduceMean(axes=[2, 3], keepdims=0) (the axes an
      input from opset 18).

What is not
    * The weights: random, He-normal (standard deviation sqrt(2 / fan_in)) so activations stay in range
      through the depth of the network, biases N(0, 0.1); not torchvision's initialisation and not trained
      weights (a folded BatchNorm would give other biases and scales).
    * Names: tensors and nodes are named after the layer (``s2b0_dw``, ``b3_se_fc1``), not torch's
      ``/features/features.3/block/...`` paths; no ``value_info`` and no ``doc_string``.
    * Exporter details that quant_pre_process or constant folding would remove anyway (Identity nodes,
      Shape/Gather chains of ``x.size()``) are absent; the ``Constant`` nodes torch writes for small
      tensors are initializers here.
    * Batch is fixed at 1 and the input is square.

:class:`_Builder` extends :mod:`mappings.onnx_models`' accumulator of nodes and initializers with the
layers these networks share (conv with torchvision's padding, fully connected, the activations,
squeeze-excite) as methods. :data:`VISION_BUILDERS` lists every network by name.
"""

from __future__ import annotations


import numpy as np
import onnx
from onnx import helper

from .onnx_models import _Builder as _BaseBuilder, _divisible

__all__ = ["squeezenet1_1", "shufflenet_v2_x0_5", "efficientnet_b0", "mobilenet_v3_small", "mobilenet_v3_large",
           "SQUEEZENET1_1_FIRE", "SHUFFLENET_V2_X0_5", "EFFICIENTNET_B0", "MOBILENET_V3_SMALL", "MOBILENET_V3_LARGE",
           "VISION_BUILDERS"]


class _Builder(_BaseBuilder):
    """:class:`mappings.onnx_models._Builder` with an opset and the layers these networks share, in the
    forms torch's exporter writes (He-normal weights, biases N(0, 0.1))."""

    def __init__(self, seed: int, opset: int):
        super().__init__(seed)
        self.opset = opset

    def bias(self, name: str, n: int) -> str:
        return self.const(name, (self.rng.standard_normal(n) * 0.1).astype(np.float32))

    def conv(self, x: str, cin: int, cout: int, k: int, name: str, stride: int = 1, pad: int | None = None,
             groups: int = 1) -> str:
        """Conv with bias (a BatchNorm folded in, or a conv that has a bias); ``pad`` defaults to
        torchvision's Conv2dNormActivation padding ``(k - 1) // 2``."""
        return super().conv(x, cin, cout, k, name, stride, (k - 1) // 2 if pad is None else pad, groups)

    def linear(self, x: str, cin: int, cout: int, name: str, gain: float = 2.0, out: str | None = None) -> str:
        """torch's Linear as exported: Gemm(x, W [out, in], b, alpha=1, beta=1, transB=1)."""
        w = (self.rng.standard_normal((cout, cin)) * np.sqrt(gain / cin)).astype(np.float32)
        ins = [x, self.const(f"{name}.weight", w), self.bias(f"{name}.bias", cout)]
        out = out or f"{name}_out"
        self.nodes.append(helper.make_node("Gemm", ins, [out], name=name, alpha=1.0, beta=1.0, transB=1))
        return out

    def relu(self, x: str, name: str) -> str:
        return self.node("Relu", [x], name)

    def silu(self, x: str, name: str) -> str:
        """torch's SiLU export: Mul(x, Sigmoid(x))."""
        return self.node("Mul", [x, self.node("Sigmoid", [x], f"{name}_sigmoid")], name)

    def hardsigmoid(self, x: str, name: str) -> str:
        return self.node("HardSigmoid", [x], name, alpha=1 / 6)

    def hardswish(self, x: str, name: str) -> str:
        """HardSwish from opset 14; torch's Mul(x, HardSigmoid(x)) before."""
        if self.opset >= 14:
            return self.node("HardSwish", [x], name)
        return self.node("Mul", [x, self.hardsigmoid(x, f"{name}_gate")], name)

    def squeeze_excite(self, x: str, c: int, squeeze: int, name: str, act: str, gate: str) -> str:
        """torchvision.ops.SqueezeExcitation: GlobalAveragePool, fc1 (1x1 conv), ``act``, fc2, ``gate``,
        then ``scale * input`` (the gate is Mul's first operand)."""
        s = self.node("GlobalAveragePool", [x], f"{name}_pool")
        s = self.conv(s, c, squeeze, 1, f"{name}_fc1")
        s = self.relu(s, f"{name}_relu") if act == "relu" else self.silu(s, f"{name}_silu")
        s = self.conv(s, squeeze, c, 1, f"{name}_fc2")
        s = self.node("Sigmoid", [s], f"{name}_gate") if gate == "sigmoid" else self.hardsigmoid(s, f"{name}_gate")
        return self.node("Mul", [s, x], f"{name}_scale")

    def classifier(self, graph_name: str, hw: int, classes: int) -> onnx.ModelProto:
        """The model: input "input" [1, 3, hw, hw], output "logits" [1, classes]."""
        return self.model(graph_name, [("input", (1, 3, hw, hw))], [("logits", (1, classes))], opset=self.opset)


# ------------------------------------------------------------------ SqueezeNet 1.1
#: torchvision's squeezenet1_1 features after the stem: a Fire module is (squeeze, expand 1x1, expand 3x3),
#: "pool" a MaxPool 3x3/2 with ceil_mode
SQUEEZENET1_1_FIRE = ("pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128), (32, 128, 128), "pool",
                      (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256))


def squeezenet1_1(seed: int = 0, hw: int = 64, classes: int = 1000, opset: int = 17) -> onnx.ModelProto:
    """SqueezeNet 1.1: conv 3x3/2 (no padding) 3 -> 64 + ReLU, then :data:`SQUEEZENET1_1_FIRE` (MaxPool
    3x3/2 ``ceil_mode=1``; Fire: squeeze 1x1 + ReLU, expand 1x1 + ReLU and expand 3x3 (pad 1) + ReLU,
    Concat on channels), the classifier (Dropout: absent; conv 1x1 512 -> classes + ReLU;
    GlobalAveragePool) and Flatten. Input "input" [1, 3, hw, hw] (hw >= 17 so the last pool has a
    window), output "logits" [1, classes]."""
    b = _Builder(seed, opset)
    x = b.relu(b.conv("input", 3, 64, 3, "conv1", stride=2, pad=0), "relu1")
    c = 64
    pools = fires = 0
    for item in SQUEEZENET1_1_FIRE:
        if item == "pool":
            x = b.node("MaxPool", [x], f"pool{pools}", ceil_mode=1, kernel_shape=[3, 3], pads=[0, 0, 0, 0],
                       strides=[2, 2])
            pools += 1
            continue
        sq, e1, e3 = item
        p = f"fire{fires}"
        s = b.relu(b.conv(x, c, sq, 1, f"{p}_squeeze"), f"{p}_squeeze_relu")
        y1 = b.relu(b.conv(s, sq, e1, 1, f"{p}_expand1x1"), f"{p}_expand1x1_relu")
        y3 = b.relu(b.conv(s, sq, e3, 3, f"{p}_expand3x3", pad=1), f"{p}_expand3x3_relu")
        x = b.node("Concat", [y1, y3], f"{p}_concat", axis=1)
        c = e1 + e3
        fires += 1
    x = b.relu(b.conv(x, c, classes, 1, "final_conv"), "final_relu")
    x = b.node("GlobalAveragePool", [x], "avgpool")
    b.nodes.append(helper.make_node("Flatten", [x], ["logits"], name="flatten", axis=1))
    return b.classifier("squeezenet1_1", hw, classes)


# ------------------------------------------------------------------ ShuffleNetV2 x0.5
#: torchvision's shufflenet_v2_x0_5: stages_repeats and stages_out_channels
SHUFFLENET_V2_X0_5 = ((4, 8, 4), (24, 48, 96, 192, 1024))


def shufflenet_v2_x0_5(seed: int = 0, hw: int = 64, classes: int = 1000, opset: int = 17) -> onnx.ModelProto:
    """ShuffleNetV2 x0.5 (:data:`SHUFFLENET_V2_X0_5`): conv 3x3/2 3 -> 24 + ReLU, MaxPool 3x3/2 pad 1, three
    stages of InvertedResidual blocks, conv5 1x1 192 -> 1024 + ReLU, ``mean([2, 3])`` (ReduceMean,
    keepdims=0), fc (Gemm). A stride-2 block concatenates branch1 (depthwise 3x3/2, 1x1 + ReLU) and branch2
    (1x1 + ReLU, depthwise 3x3/2, 1x1 + ReLU) of the whole input; a stride-1 block splits the channels in
    two halves (Split), passes the first through and the second through branch2 (stride 1), and
    concatenates; every block ends in the channel shuffle (Reshape, Transpose, Reshape). The depthwise
    convolutions have no activation (BatchNorm only). Input "input" [1, 3, hw, hw], output "logits"."""
    b = _Builder(seed, opset)
    repeats, chans = SHUFFLENET_V2_X0_5
    x = b.relu(b.conv("input", 3, chans[0], 3, "conv1", stride=2, pad=1), "conv1_relu")
    x = b.node("MaxPool", [x], "maxpool", ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    size = -(-hw // 2)                      # conv1: (hw + 2 - 3) // 2 + 1
    size = (size + 2 - 3) // 2 + 1          # maxpool
    cin = chans[0]
    for si, (n, cout) in enumerate(zip(repeats, chans[1:4])):
        half = cout // 2
        for bi in range(n):
            p = f"s{si + 2}b{bi}"
            stride = 2 if bi == 0 else 1
            if stride == 2:
                size = (size + 2 - 3) // 2 + 1
                l = b.conv(x, cin, cin, 3, f"{p}_b1_dw", stride=2, pad=1, groups=cin)
                l = b.relu(b.conv(l, cin, half, 1, f"{p}_b1_pw"), f"{p}_b1_relu")
                r, rin = x, cin
            else:
                halves = [f"{p}_split_out0", f"{p}_split_out1"]
                if opset >= 18:
                    b.nodes.append(helper.make_node("Split", [x], halves, name=f"{p}_split", axis=1, num_outputs=2))
                else:
                    sizes = b.const(f"{p}_split.split", np.array([half, half], np.int64))
                    b.nodes.append(helper.make_node("Split", [x, sizes], halves, name=f"{p}_split", axis=1))
                l, (r, rin) = halves[0], (halves[1], half)
            r = b.relu(b.conv(r, rin, half, 1, f"{p}_b2_pw1"), f"{p}_b2_relu1")
            r = b.conv(r, half, half, 3, f"{p}_b2_dw", stride=stride, pad=1, groups=half)
            r = b.relu(b.conv(r, half, half, 1, f"{p}_b2_pw2"), f"{p}_b2_relu2")
            y = b.node("Concat", [l, r], f"{p}_concat", axis=1)
            y = b.node("Reshape", [y, b.const(f"{p}_shuffle.shape5", np.array([1, 2, half, size, size], np.int64))],
                       f"{p}_shuffle_view")
            y = b.node("Transpose", [y], f"{p}_shuffle_transpose", perm=[0, 2, 1, 3, 4])
            x = b.node("Reshape", [y, b.const(f"{p}_shuffle.shape4", np.array([1, -1, size, size], np.int64))],
                       f"{p}_shuffle")
            cin = cout
    x = b.relu(b.conv(x, cin, chans[4], 1, "conv5"), "conv5_relu")
    if opset >= 18:
        x = b.node("ReduceMean", [x, b.const("mean.axes", np.array([2, 3], np.int64))], "mean", keepdims=0)
    else:
        x = b.node("ReduceMean", [x], "mean", axes=[2, 3], keepdims=0)
    b.linear(x, chans[4], classes, "fc", gain=1.0, out="logits")
    return b.classifier("shufflenet_v2_x0_5", hw, classes)


# ------------------------------------------------------------------ EfficientNet-B0
#: torchvision's efficientnet_b0 MBConv stages: (expand ratio, kernel, stride, in, out, layers)
EFFICIENTNET_B0 = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                   (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))


def efficientnet_b0(seed: int = 0, hw: int = 64, classes: int = 1000, opset: int = 17) -> onnx.ModelProto:
    """EfficientNet-B0: stem conv 3x3/2 3 -> 32 + SiLU, the sixteen MBConv blocks of
    :data:`EFFICIENTNET_B0` (expand 1x1 + SiLU when the expanded width differs from the input,
    depthwise k x k + SiLU, squeeze-excite with ``max(1, in // 4)`` channels, SiLU and Sigmoid, project
    1x1 without activation, residual Add when stride 1 and in == out), head conv 1x1 320 -> 1280 + SiLU,
    GlobalAveragePool, Flatten, Dropout (absent), Linear 1280 -> classes. SiLU is Mul(x, Sigmoid(x)).
    Input "input" [1, 3, hw, hw], output "logits" [1, classes]."""
    b = _Builder(seed, opset)
    x = b.silu(b.conv("input", 3, EFFICIENTNET_B0[0][3], 3, "stem", stride=2), "stem_silu")
    i = 0
    for ratio, k, stride0, cin0, cout, layers in EFFICIENTNET_B0:
        for j in range(layers):
            cin, stride = (cin0, stride0) if j == 0 else (cout, 1)
            p = f"b{i}"
            exp = _divisible(cin * ratio)
            y = x
            if exp != cin:
                y = b.silu(b.conv(y, cin, exp, 1, f"{p}_expand"), f"{p}_expand_silu")
            y = b.silu(b.conv(y, exp, exp, k, f"{p}_dw", stride=stride, groups=exp), f"{p}_dw_silu")
            y = b.squeeze_excite(y, exp, max(1, cin // 4), f"{p}_se", act="silu", gate="sigmoid")
            y = b.conv(y, exp, cout, 1, f"{p}_project")
            x = b.node("Add", [y, x], f"{p}_residual") if stride == 1 and cin == cout else y
            i += 1
    last = EFFICIENTNET_B0[-1][4]
    x = b.silu(b.conv(x, last, 4 * last, 1, "head"), "head_silu")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "avgpool")], "flatten", axis=1)
    b.linear(x, 4 * last, classes, "classifier", gain=1.0, out="logits")
    return b.classifier("efficientnet_b0", hw, classes)


# ------------------------------------------------------------------ MobileNetV3-Large
#: torchvision's MobileNetV3-Large inverted residuals: (in, kernel, expanded, out, squeeze-excite,
#: hard-swish, stride)
MOBILENET_V3_LARGE = ((16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
                      (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
                      (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
                      (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
                      (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
                      (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
                      (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
                      (160, 5, 960, 160, True, True, 1))


def _mobilenet_v3(name: str, settings, hidden: int, seed: int, hw: int, classes: int, opset: int) -> onnx.ModelProto:
    """torchvision's MobileNetV3: stem conv 3x3/2 3 -> 16 + hard-swish, the inverted residuals of
    ``settings`` (expand 1x1 when expanded != in, depthwise k x k, both with ReLU or hard-swish;
    squeeze-excite with ``_make_divisible(expanded // 4)`` channels, ReLU and HardSigmoid; project 1x1;
    residual Add when stride 1 and in == out), head conv 1x1 to 6x the last width + hard-swish,
    GlobalAveragePool, Flatten, classifier Linear to ``hidden``, hard-swish, Dropout (absent), Linear to
    ``classes``."""
    b = _Builder(seed, opset)

    def act(x: str, hs: bool, name: str) -> str:
        return b.hardswish(x, name) if hs else b.relu(x, name)

    x = b.hardswish(b.conv("input", 3, 16, 3, "stem", stride=2), "stem_act")
    for i, (cin, k, exp, cout, se, hs, stride) in enumerate(settings):
        p = f"b{i}"
        y = x
        if exp != cin:
            y = act(b.conv(y, cin, exp, 1, f"{p}_expand"), hs, f"{p}_expand_act")
        y = act(b.conv(y, exp, exp, k, f"{p}_dw", stride=stride, groups=exp), hs, f"{p}_dw_act")
        if se:
            y = b.squeeze_excite(y, exp, _divisible(exp // 4), f"{p}_se", act="relu", gate="hardsigmoid")
        y = b.conv(y, exp, cout, 1, f"{p}_project")
        x = b.node("Add", [y, x], f"{p}_residual") if stride == 1 and cin == cout else y
    last = settings[-1][3]
    x = b.hardswish(b.conv(x, last, 6 * last, 1, "head"), "head_act")
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x], "avgpool")], "flatten", axis=1)
    x = b.hardswish(b.linear(x, 6 * last, hidden, "classifier0"), "classifier1")
    b.linear(x, hidden, classes, "classifier3", gain=1.0, out="logits")
    return b.classifier(name, hw, classes)


#: torchvision's MobileNetV3-Small inverted residuals, in the form of :data:`MOBILENET_V3_LARGE`
MOBILENET_V3_SMALL = ((16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2),
                      (24, 3, 88, 24, False, False, 1), (24, 5, 96, 40, True, True, 2),
                      (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
                      (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1),
                      (48, 5, 288, 96, True, True, 2), (96, 5, 576, 96, True, True, 1),
                      (96, 5, 576, 96, True, True, 1))


def mobilenet_v3_large(seed: int = 0, hw: int = 64, classes: int = 1000, opset: int = 17) -> onnx.ModelProto:
    """MobileNetV3-Large (:func:`_mobilenet_v3` of :data:`MOBILENET_V3_LARGE`: head 960, classifier 1280).
    Input "input" [1, 3, hw, hw], output "logits" [1, classes]."""
    return _mobilenet_v3("mobilenet_v3_large", MOBILENET_V3_LARGE, _divisible(1280), seed, hw, classes, opset)


def mobilenet_v3_small(seed: int = 0, hw: int = 64, classes: int = 1000, opset: int = 17) -> onnx.ModelProto:
    """MobileNetV3-Small (:func:`_mobilenet_v3` of :data:`MOBILENET_V3_SMALL`: head 576, classifier 1024).
    Input "input" [1, 3, hw, hw], output "logits" [1, classes]."""
    return _mobilenet_v3("mobilenet_v3_small", MOBILENET_V3_SMALL, 1024, seed, hw, classes, opset)


#: every network of this module by name
VISION_BUILDERS = {"squeezenet1_1": squeezenet1_1, "shufflenet_v2_x0_5": shufflenet_v2_x0_5,
                   "efficientnet_b0": efficientnet_b0, "mobilenet_v3_small": mobilenet_v3_small,
                   "mobilenet_v3_large": mobilenet_v3_large}
