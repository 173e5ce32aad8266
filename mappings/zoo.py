"""Built-in model zoo: well-known networks generated in code as :class:`LayerGraph` s.

Nothing is downloaded. Each builder returns a validated graph with the real
layer shapes (batch 1, float32). Batch normalisation is taken as folded into
the preceding convolution (every convolution has a bias), as it is in
inference graphs. By default the graphs carry no weights (shapes are what the
mapper and the analytical model need); ``with_weights=True, seed=...`` fills
random float32 weights and biases of the right shapes (He-normal weights,
small biases) so that a graph can also be exported or executed.

=================  ================================================  =================
name               what                                              MACs (conv+fc)
=================  ================================================  =================
``mobilenet_v1``   224x224, width 1.0, 13 depthwise-separable blocks  568,740,352
``mobilenet_v2``   224x224, width 1.0, inverted residuals (t=6)       300,774,272
``resnet18``       224x224, basic blocks [2, 2, 2, 2]                 1,814,073,344
``resnet50``       224x224, bottlenecks [3, 4, 6, 3] (v1.5)           4,089,184,256
``bert_base``      one BERT-base encoder layer's GEMMs, seq 128       931,135,488
``mlp``            784-512-256-10 with ReLU                           535,040
=================  ================================================  =================

(``tests/test_zoo.py`` pins these; 12 ``bert_base`` layers are 11.17 GMACs.)

BERT's attention is expressed with the layers the IR has: the Q/K/V, output
and FFN projections are :class:`Gemm` on the ``[batch*seq, hidden]`` matrix,
and attention scores and context are two *batched* :class:`MatMul` s over the
heads (``[heads, seq, d] @ [heads, d, seq]`` and ``[heads, seq, seq] @ [heads,
seq, d]``): the IR's MatMul takes equal leading (batch) dimensions, so one node
per product covers all heads, and its MACs are the per-head sum. The IR has no
Transpose, Softmax, LayerNorm or GELU: the head split/merge and the K
transpose are :class:`Reshape` nodes with the right shapes (shape-exact, not
value-exact: a real head split is reshape + transpose), and softmax, the
1/sqrt(d) scale, LayerNorm and GELU are left out (they run no MACs). The graph
records this in ``graph.g.graph["approximations"]``; it is a workload for
mapping and performance, not a numerically faithful BERT.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .graph import (Add, Clip, Conv2d, Flatten, Gemm, GlobalAveragePool, Input, Layer, LayerGraph, MatMul, MaxPool,
                    Relu, Reshape)

from hwgen.errors import HwgenError

__all__ = ["ZOO", "ONNX_ZOO", "onnx_model", "UnknownModelError", "get_model", "model_names", "mobilenet_v1", "mobilenet_v2", "resnet18",
           "resnet50", "bert_base", "mlp", "total_macs", "MOBILENET_V2_SETTINGS"]


class UnknownModelError(HwgenError, KeyError):
    """An unknown zoo name; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class _Builder:
    """Adds layers to a graph while tracking shapes; optionally draws random weights."""

    def __init__(self, name: str, with_weights: bool, seed: int):
        self.g = LayerGraph(name)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.rng = np.random.default_rng(seed) if with_weights else None

    def add(self, name: str, layer: Layer, inputs: list[str]) -> str:
        self.g.add(name, layer, inputs)
        self.shapes[name] = tuple(layer.infer([self.shapes[i] for i in inputs], f"zoo '{self.g.name}', node '{name}'"))
        return name

    def input(self, name: str, shape: tuple[int, ...]) -> str:
        return self.add(name, Input(shape=tuple(shape)), [])

    def _randn(self, shape: tuple[int, ...], std: float) -> np.ndarray:
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def conv(self, name: str, x: str, cout: int, k: int, stride: int = 1, pad: int | None = None,
             groups: int = 1) -> str:
        cin = self.shapes[x][1]
        pad = (k - 1) // 2 if pad is None else pad
        w = b = None
        if self.rng is not None:
            fan_in = (cin // groups) * k * k
            w = self._randn((cout, cin // groups, k, k), np.sqrt(2.0 / fan_in))
            b = self._randn((cout,), 0.01)
        return self.add(name, Conv2d(in_channels=cin, out_channels=cout, kernel=(k, k), stride=(stride, stride),
                                     pads=(pad, pad, pad, pad), groups=groups, weight=w, bias=b), [x])

    def gemm(self, name: str, x: str, out: int) -> str:
        fin = self.shapes[x][-1]
        w = b = None
        if self.rng is not None:
            w = self._randn((fin, out), np.sqrt(1.0 / fin))
            b = self._randn((out,), 0.01)
        return self.add(name, Gemm(in_features=fin, out_features=out, weight=w, bias=b), [x])

    def relu(self, name: str, x: str) -> str:
        return self.add(name, Relu(), [x])

    def relu6(self, name: str, x: str) -> str:
        return self.add(name, Clip(min=0.0, max=6.0), [x])

    def classifier(self, x: str, num_classes: int) -> str:
        x = self.add("avgpool", GlobalAveragePool(), [x])
        x = self.add("flatten", Flatten(axis=1), [x])
        return self.gemm("fc", x, num_classes)

    def done(self, outputs: list[str]) -> LayerGraph:
        self.g.outputs = list(outputs)
        return self.g.validate()


def _divisible(v: float, divisor: int = 8) -> int:
    """Channel rounding of the MobileNet reference implementations (never below 90% of v)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# ------------------------------------------------------------------ MobileNets
def mobilenet_v1(resolution: int = 224, width: float = 1.0, num_classes: int = 1000, *, with_weights: bool = False,
                 seed: int = 0) -> LayerGraph:
    """MobileNetV1 (Howard et al. 2017): 3x3/2 stem, 13 depthwise-separable blocks, GAP, FC.

    ReLU after every convolution (the paper's; Keras uses ReLU6).
    """
    b = _Builder("mobilenet_v1", with_weights, seed)
    c = lambda n: _divisible(n * width)  # noqa: E731
    x = b.input("input", (1, 3, resolution, resolution))
    x = b.relu("stem.relu", b.conv("stem.conv", x, c(32), 3, 2))
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (cout, s) in enumerate(blocks, start=1):
        cin = b.shapes[x][1]
        x = b.relu(f"block{i}.dw.relu", b.conv(f"block{i}.dw", x, cin, 3, s, groups=cin))
        x = b.relu(f"block{i}.pw.relu", b.conv(f"block{i}.pw", x, c(cout), 1))
    return b.done([b.classifier(x, num_classes)])


#: MobileNetV2 inverted-residual settings: expansion t, output channels c, repeats n, first stride s
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                         (6, 320, 1, 1))


def mobilenet_v2(resolution: int = 224, width: float = 1.0, num_classes: int = 1000, *, with_weights: bool = False,
                 seed: int = 0) -> LayerGraph:
    """MobileNetV2 (Sandler et al. 2018), torchvision's layout: ReLU6 = Clip(0, 6), linear bottlenecks,
    residual Add where the stride is 1 and the channels match; last 1x1 conv to 1280, GAP, FC."""
    b = _Builder("mobilenet_v2", with_weights, seed)
    x = b.input("input", (1, 3, resolution, resolution))
    x = b.relu6("stem.relu6", b.conv("stem.conv", x, _divisible(32 * width), 3, 2))
    i = 0
    for t, cc, n, s in MOBILENET_V2_SETTINGS:
        cout = _divisible(cc * width)
        for r in range(n):
            i += 1
            stride = s if r == 0 else 1
            cin = b.shapes[x][1]
            p = f"block{i}"
            h = x
            if t != 1:
                h = b.relu6(f"{p}.expand.relu6", b.conv(f"{p}.expand", h, cin * t, 1))
            hid = b.shapes[h][1]
            h = b.relu6(f"{p}.dw.relu6", b.conv(f"{p}.dw", h, hid, 3, stride, groups=hid))
            h = b.conv(f"{p}.project", h, cout, 1)
            x = b.add(f"{p}.add", Add(), [x, h]) if stride == 1 and cin == cout else h
    last = _divisible(1280 * max(1.0, width))
    x = b.relu6("last.relu6", b.conv("last.conv", x, last, 1))
    return b.done([b.classifier(x, num_classes)])


# -------------------------------------------------------------------- ResNets
def _resnet(name: str, bottleneck: bool, depths: tuple[int, ...], resolution: int, num_classes: int,
            with_weights: bool, seed: int, stride_on_3x3: bool = True) -> LayerGraph:
    b = _Builder(name, with_weights, seed)
    x = b.input("input", (1, 3, resolution, resolution))
    x = b.relu("stem.relu", b.conv("stem.conv", x, 64, 7, 2, pad=3))
    x = b.add("stem.maxpool", MaxPool(kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), [x])
    expansion = 4 if bottleneck else 1
    for li, (width, depth) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for bi in range(depth):
            p = f"layer{li}.{bi}"
            stride = 2 if (li > 1 and bi == 0) else 1
            cin, cout = b.shapes[x][1], width * expansion
            if bottleneck:
                s1, s3 = (1, stride) if stride_on_3x3 else (stride, 1)
                h = b.relu(f"{p}.relu1", b.conv(f"{p}.conv1", x, width, 1, s1))
                h = b.relu(f"{p}.relu2", b.conv(f"{p}.conv2", h, width, 3, s3))
                h = b.conv(f"{p}.conv3", h, cout, 1)
            else:
                h = b.relu(f"{p}.relu1", b.conv(f"{p}.conv1", x, width, 3, stride))
                h = b.conv(f"{p}.conv2", h, cout, 3)
            sc = b.conv(f"{p}.downsample", x, cout, 1, stride) if (stride != 1 or cin != cout) else x
            x = b.relu(f"{p}.relu", b.add(f"{p}.add", Add(), [h, sc]))
    return b.done([b.classifier(x, num_classes)])


def resnet18(resolution: int = 224, num_classes: int = 1000, *, with_weights: bool = False,
             seed: int = 0) -> LayerGraph:
    """ResNet-18 (He et al. 2016), torchvision's layout: 7x7/2 stem, 3x3/2 max pool, basic blocks
    [2, 2, 2, 2] with 1x1 projection shortcuts where the shape changes, Add + ReLU, GAP, FC."""
    return _resnet("resnet18", False, (2, 2, 2, 2), resolution, num_classes, with_weights, seed)


def resnet50(resolution: int = 224, num_classes: int = 1000, *, stride_on_3x3: bool = True,
             with_weights: bool = False, seed: int = 0) -> LayerGraph:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]. ``stride_on_3x3=True`` is v1.5 (torchvision, MLPerf:
    the stride-2 sits on the 3x3 conv, 4.09 GMACs); False is the original v1 (stride on the first 1x1,
    as SCALE-Sim's Resnet50.csv has it, 3.86 GMACs)."""
    return _resnet("resnet50", True, (3, 4, 6, 3), resolution, num_classes, with_weights, seed, stride_on_3x3)


# ----------------------------------------------------------------------- BERT
def bert_base(seq_len: int = 128, hidden: int = 768, heads: int = 12, ffn: int = 3072, num_layers: int = 1,
              batch: int = 1, *, with_weights: bool = False, seed: int = 0) -> LayerGraph:
    """BERT-base encoder layer(s) as GEMMs (see the module docstring for what is approximated).

    Activations are ``[batch*seq_len, hidden]`` matrices (2-D, as ONNX Gemm wants).
    """
    if hidden % heads:
        raise ValueError(f"bert_base: hidden={hidden} is not a multiple of heads={heads}")
    d = hidden // heads
    m = batch * seq_len
    b = _Builder("bert_base", with_weights, seed)
    x = b.input("input", (m, hidden))
    for li in range(num_layers):
        p = f"layer{li}"
        q = b.gemm(f"{p}.attn.q", x, hidden)
        k = b.gemm(f"{p}.attn.k", x, hidden)
        v = b.gemm(f"{p}.attn.v", x, hidden)
        qh = b.add(f"{p}.attn.q_heads", Reshape(shape=(batch * heads, seq_len, d)), [q])
        kt = b.add(f"{p}.attn.k_heads_t", Reshape(shape=(batch * heads, d, seq_len)), [k])
        vh = b.add(f"{p}.attn.v_heads", Reshape(shape=(batch * heads, seq_len, d)), [v])
        s = b.add(f"{p}.attn.scores", MatMul(), [qh, kt])
        c = b.add(f"{p}.attn.context", MatMul(), [s, vh])
        c = b.add(f"{p}.attn.merge_heads", Reshape(shape=(m, hidden)), [c])
        o = b.gemm(f"{p}.attn.out", c, hidden)
        x = b.add(f"{p}.attn.add", Add(), [o, x])
        h = b.gemm(f"{p}.ffn.fc1", x, ffn)
        h = b.gemm(f"{p}.ffn.fc2", h, hidden)
        x = b.add(f"{p}.ffn.add", Add(), [h, x])
    g = b.done([x])
    g.g.graph["approximations"] = [
        "Reshape nodes *_heads, *_heads_t and merge_heads stand for reshape+transpose (the IR has no Transpose)",
        "softmax and the 1/sqrt(d) scale after attn.scores are omitted (no Softmax/Mul layer in the IR)",
        "LayerNorm after each residual Add and GELU after ffn.fc1 are omitted (no such layers in the IR)",
    ]
    return g


# ------------------------------------------------------------------------ MLP
def mlp(sizes: tuple[int, ...] = (784, 512, 256, 10), *, with_weights: bool = False, seed: int = 0) -> LayerGraph:
    """A fully connected network: Gemm layers of the given sizes, ReLU between them (not after the last)."""
    if len(sizes) < 2:
        raise ValueError(f"mlp: need at least an input and an output size, got {sizes}")
    b = _Builder("mlp", with_weights, seed)
    x = b.input("input", (1, sizes[0]))
    for i, n in enumerate(sizes[1:], start=1):
        x = b.gemm(f"fc{i}", x, n)
        if i < len(sizes) - 1:
            x = b.relu(f"relu{i}", x)
    return b.done([x])


# ------------------------------------------------- networks built as ONNX exports
def _onnx_builders() -> dict[str, Callable[..., "onnx.ModelProto"]]:  # noqa: F821 - onnx is imported lazily
    """Zoo name -> the builder of the ONNX graph torch's exporter writes for it (mappings.onnx_models,
    mappings.onnx_vision), each taking ``seed`` and ``resolution``."""
    from . import onnx_models as om
    from . import onnx_vision as ov

    def vision(build):
        return lambda seed=0, resolution=224: build(seed=seed, hw=resolution, classes=1000)

    return {"mobilenet_v3_small": vision(ov.mobilenet_v3_small), "mobilenet_v3_large": vision(ov.mobilenet_v3_large),
            "efficientnet_b0": vision(ov.efficientnet_b0), "squeezenet1_1": vision(ov.squeezenet1_1),
            "shufflenet_v2_x0_5": vision(ov.shufflenet_v2_x0_5),
            "bert_base_encoder": lambda seed=0, resolution=128: om.bert_encoder_layer(seed=seed, seq=resolution)}


#: The zoo models that are ONNX graphs (every operator of the export: squeeze-excite, hard-swish, SiLU,
#: channel shuffle, attention with Softmax, LayerNormalization and GELU), with random float weights;
#: ``resolution`` is the input's height and width (BERT: the sequence length). ``hwgen run zoo:NAME``
#: quantizes one with onnxruntime and runs it.
ONNX_ZOO = ("mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "squeezenet1_1", "shufflenet_v2_x0_5",
            "bert_base_encoder")


def onnx_model(name: str, seed: int = 0, resolution: int | None = None) -> "onnx.ModelProto":  # noqa: F821
    """The float32 ONNX graph of zoo model ``name`` (one of :data:`ONNX_ZOO`)."""
    builders = _onnx_builders()
    if name not in builders:
        raise UnknownModelError(f"zoo model '{name}' is not an ONNX graph; those are: {', '.join(ONNX_ZOO)}")
    return builders[name](seed=seed) if resolution is None else builders[name](seed=seed, resolution=resolution)


def _imported(name: str):
    def build(resolution: int | None = None, *, with_weights: bool = False, seed: int = 0) -> LayerGraph:
        from .onnx_import import import_onnx

        g = import_onnx(onnx_model(name, seed, resolution), name=name)
        if not with_weights:  # the zoo's contract: shapes only unless asked (the export's random weights)
            for _, layer in g:
                if isinstance(layer, (Conv2d, Gemm)):
                    layer.weight = layer.bias = None
        return g

    build.__name__ = name
    build.__doc__ = f"``{name}`` imported from its ONNX graph (:func:`onnx_model`)."
    return build


# ------------------------------------------------------------------- registry
ZOO: dict[str, Callable[..., LayerGraph]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "bert_base": bert_base,
    "mlp": mlp,
    **{name: _imported(name) for name in ONNX_ZOO},
}


def model_names() -> list[str]:
    return sorted(ZOO)


def get_model(name: str, **kw) -> LayerGraph:
    """Build zoo model ``name`` (keyword arguments go to its builder)."""
    try:
        builder = ZOO[name]
    except KeyError:
        raise UnknownModelError(f"unknown zoo model '{name}'; known models: {', '.join(model_names())}") from None
    return builder(**kw)


def total_macs(graph: LayerGraph) -> int:
    """Sum of the MACs of all Conv2d, Gemm and MatMul layers."""
    return sum(r["macs"] for r in graph.summary())
