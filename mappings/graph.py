"""Layer-graph IR: a networkx DiGraph of typed layers joined by typed tensors.

Every importer (ONNX, SCALE-Sim CSV, the built-in zoo) produces a
:class:`LayerGraph`; the mapper, the analytical model and the network executor
consume it. Nodes are layers (one dataclass per layer type, holding its
attributes and, when known, its constant weights and bias); edges carry a
:class:`TensorInfo` (shape, dtype, quantization). Shapes are logical and follow
ONNX: activations are NCHW (batch first) for convolutional layers and [N, F]
for fully connected ones. Executors choose their own memory layout (the
accelerator keeps activations NHWC).

The graph is validated when built: every layer's output shape is inferred
from its inputs and attributes and must equal the tensor on its out-edges,
so an importer cannot hand the mapper an inconsistent graph.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import networkx as nx
import numpy as np
from hwgen.errors import HwgenError
from hwgen.limits import check_limit

__all__ = [
    "GraphError", "QuantParams", "TensorInfo", "Layer", "Input", "Constant", "Conv2d", "Gemm", "MatMul", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Add", "Relu", "Clip", "Unary", "UnaryFn", "Binary", "BinaryFn", "Transpose", "Slice",
    "ReduceMean", "Softmax", "LayerNorm", "Pad", "Gather", "Resize", "Flatten", "Reshape", "Concat", "LayerGraph", "LAYER_TYPES", "FLOAT_STEPS",
    "conv_output_hw", "ceil_extra", "check_shape", "format_shape",
]


class GraphError(HwgenError, ValueError):
    """An inconsistent graph; the message names the node (and tensor) at fault."""


def format_shape(shape: Sequence[object]) -> str:
    """``1x3x224x224`` (``()`` for a scalar); long shapes are cut so an error message stays one short line."""
    dims = [str(d) for d in shape]
    if len(dims) > 8:
        dims = dims[:8] + [f"... ({len(dims)} dimensions)"]
    text = "x".join(dims) if dims else "()"
    return text if len(text) <= 200 else text[:200] + "..."


def check_shape(shape: Sequence[object], what: str, min_dim: int = 1) -> tuple[int, ...]:
    """``shape`` as a tuple of ints, refused before anything of its size is allocated or computed with.

    Every importer passes each declared or inferred shape through here (graph inputs, initializers, computed
    layer outputs, CSV rows), so one rule holds everywhere: every dimension is a whole number of at least
    ``min_dim`` (0 allows empty constants) and at most the ``dimension`` limit, and the element count is at
    most the ``tensor_elements`` limit. ``what`` names the tensor, e.g. ``"file 'm.onnx': input 'x'"``.
    Raises :class:`GraphError` for a dimension that is not such a number, ``hwgen.limits.LimitError`` for
    one above a limit (the message gives the size, the limit and the variable that raises it).
    """
    dims: list[int] = []
    for k, d in enumerate(shape):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)):
            raise GraphError(f"{what}: dimension {k} of shape {format_shape(shape)} is {d!r}, not a whole number")
        if d < min_dim:
            raise GraphError(f"{what}: dimension {k} of shape {format_shape(shape)} is {int(d)}; dimensions must "
                             f"be at least {min_dim}")
        check_limit("dimension", int(d), f"{what}: dimension {k} of shape {format_shape(shape)}")
        dims.append(int(d))
    check_limit("tensor_elements", math.prod(dims), f"{what}: elements of shape {format_shape(dims)}")
    return tuple(dims)


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization real = scale * (q - zero_point); per tensor, or per channel along ``axis``."""

    scale: np.ndarray  # float32, shape () or (C,)
    zero_point: np.ndarray  # int, shape () or (C,)
    dtype: str = "int8"  # storage type of q: int8, uint8 or int32
    axis: int | None = None

    @property
    def per_channel(self) -> bool:
        return np.ndim(self.scale) > 0 and np.size(self.scale) > 1

    def __eq__(self, other: object) -> bool:  # arrays need an explicit comparison
        return (isinstance(other, QuantParams) and self.dtype == other.dtype and self.axis == other.axis
                and np.array_equal(self.scale, other.scale) and np.array_equal(self.zero_point, other.zero_point))

    __hash__ = None  # type: ignore[assignment]


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    quant: QuantParams | None = None


# ------------------------------------------------------------------- layers
@dataclass
class Layer:
    """Base of all layer types. ``kind`` is the type's name in reports."""

    @property
    def kind(self) -> str:
        return type(self).__name__

    #: number of inputs the layer takes (None: one or more)
    arity: int | None = field(default=1, init=False, repr=False)

    def infer(self, inputs: Sequence[tuple[int, ...]], where: str) -> tuple[int, ...]:
        raise NotImplementedError


def conv_output_hw(h: int, w: int, kernel: tuple[int, int], stride: tuple[int, int],
                   pads: tuple[int, int, int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Output height and width; pads are (top, left, bottom, right) as in ONNX."""
    eh = dilation[0] * (kernel[0] - 1) + 1
    ew = dilation[1] * (kernel[1] - 1) + 1
    return ((h + pads[0] + pads[2] - eh) // stride[0] + 1, (w + pads[1] + pads[3] - ew) // stride[1] + 1)


def ceil_extra(n: int, k: int, stride: int, pad_lo: int, pad_hi: int) -> int:
    """Rows (or columns) past the explicit padding that pooling's ``ceil_mode=1`` adds: the output size
    is rounded up, except that the last window must start inside the input or the leading padding
    (ONNX's rule, as in PyTorch and onnxruntime)."""
    span = n + pad_lo + pad_hi - k
    out = -(-span // stride) + 1
    if (out - 1) * stride >= n + pad_lo:
        out -= 1
    return max(0, (out - 1) * stride + k - (n + pad_lo + pad_hi))


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise GraphError(f"{where}: {msg}")


@dataclass
class Input(Layer):
    shape: tuple[int, ...] = ()
    arity: int | None = field(default=0, init=False, repr=False)

    def infer(self, inputs, where):
        _need(len(self.shape) >= 1 and all(d >= 1 for d in self.shape), where, f"bad input shape {self.shape}")
        return tuple(self.shape)


@dataclass
class Constant(Layer):
    """A constant tensor operand (no inputs); in QDQ models its integer values, with
    ``LayerGraph.tensors[node].quant`` their quantization."""

    value: np.ndarray | None = field(default=None, repr=False)
    arity: int | None = field(default=0, init=False, repr=False)

    def infer(self, inputs, where):
        _need(self.value is not None and np.ndim(self.value) >= 1, where, "Constant needs a value of rank >= 1")
        return tuple(int(d) for d in np.shape(self.value))


@dataclass
class Conv2d(Layer):
    in_channels: int = 1
    out_channels: int = 1
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    #: OIHW weights (O, I/groups, KH, KW) and bias (O,), when known
    weight: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    weight_quant: QuantParams | None = field(default=None, repr=False)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_channels and self.out_channels % self.groups == 0

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(s) == 4, where, f"Conv2d expects an NCHW input, got shape {s}")
        _need(s[1] == self.in_channels, where, f"input has {s[1]} channels, layer expects {self.in_channels}")
        _need(self.groups >= 1 and self.in_channels % self.groups == 0 and self.out_channels % self.groups == 0,
              where, f"groups={self.groups} must divide in_channels={self.in_channels} and "
                     f"out_channels={self.out_channels}")
        _need(len(self.kernel) == 2 and len(self.stride) == 2 and len(self.dilation) == 2 and len(self.pads) == 4
              and min(self.stride) >= 1 and min(self.dilation) >= 1 and min(self.pads) >= 0 and min(self.kernel) >= 1,
              where, f"bad kernel/stride/pads/dilation {self.kernel}/{self.stride}/{self.pads}/{self.dilation}")
        if self.weight is not None:
            want = (self.out_channels, self.in_channels // self.groups, *self.kernel)
            _need(tuple(self.weight.shape) == want, where, f"weight shape {self.weight.shape} != {want}")
        if self.bias is not None:
            _need(tuple(self.bias.shape) == (self.out_channels,), where, f"bias shape {self.bias.shape}")
        oh, ow = conv_output_hw(s[2], s[3], self.kernel, self.stride, self.pads, self.dilation)
        _need(oh >= 1 and ow >= 1, where, f"empty output {oh}x{ow} for input {s[2]}x{s[3]}")
        return (s[0], self.out_channels, oh, ow)

    def macs(self, out_shape: tuple[int, ...]) -> int:
        return math.prod(out_shape) * (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]


@dataclass
class Gemm(Layer):
    """y[N, out] = x[N, in] @ W[in, out] + b (W stored [in, out])."""

    in_features: int = 1
    out_features: int = 1
    weight: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)
    weight_quant: QuantParams | None = field(default=None, repr=False)

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(s) >= 2 and s[-1] == self.in_features, where,
              f"input shape {s} does not end in in_features={self.in_features}")
        if self.weight is not None:
            _need(tuple(self.weight.shape) == (self.in_features, self.out_features), where,
                  f"weight shape {self.weight.shape} != {(self.in_features, self.out_features)}")
        return (*s[:-1], self.out_features)

    def macs(self, out_shape: tuple[int, ...]) -> int:
        return math.prod(out_shape) * self.in_features


@dataclass
class MatMul(Layer):
    """y[..., M, N] = a[..., M, K] @ b[..., K, N], both operands activations (attention)."""

    arity: int | None = field(default=2, init=False, repr=False)

    def infer(self, inputs, where):
        a, b = inputs
        _need(len(a) >= 2 and len(b) >= 2 and a[-1] == b[-2], where, f"MatMul of {a} and {b}: inner sizes differ")
        _need(tuple(a[:-2]) == tuple(b[:-2]), where, f"MatMul batch dimensions differ: {a[:-2]} vs {b[:-2]}")
        return (*a[:-1], b[-1])

    def macs(self, out_shape: tuple[int, ...], k: int = 0) -> int:
        return math.prod(out_shape) * k


@dataclass
class _Pool(Layer):
    """2-D pooling. ``ceil_pads``: rows below and columns right of the explicit ``pads`` that ONNX's
    ``ceil_mode=1`` adds so the last window fits (no input there; ``count_include_pad`` does not count them)."""

    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_pads: tuple[int, int] = (0, 0)

    @property
    def window_pads(self) -> tuple[int, int, int, int]:
        """The padding the windows slide over: the explicit pads plus the ceil-mode rows and columns."""
        pt, pl, pb, pr = self.pads
        return (pt, pl, pb + self.ceil_pads[0], pr + self.ceil_pads[1])

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(s) == 4, where, f"{self.kind} expects an NCHW input, got {s}")
        _need(len(self.kernel) == 2 and len(self.stride) == 2 and len(self.pads) == 4 and min(self.kernel) >= 1
              and min(self.stride) >= 1 and min(self.pads) >= 0 and len(self.ceil_pads) == 2
              and min(self.ceil_pads) >= 0, where,
              f"bad kernel/stride/pads {self.kernel}/{self.stride}/{self.pads}")
        oh, ow = conv_output_hw(s[2], s[3], self.kernel, self.stride, self.window_pads)
        _need(oh >= 1 and ow >= 1, where, f"empty output {oh}x{ow}")
        return (s[0], s[1], oh, ow)


@dataclass
class MaxPool(_Pool):
    pass


@dataclass
class AveragePool(_Pool):
    count_include_pad: bool = False


@dataclass
class GlobalAveragePool(Layer):
    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(s) == 4, where, f"GlobalAveragePool expects an NCHW input, got {s}")
        return (s[0], s[1], 1, 1)


@dataclass
class Add(Layer):
    arity: int | None = field(default=2, init=False, repr=False)

    def infer(self, inputs, where):
        a, b = inputs
        _need(tuple(a) == tuple(b), where, f"Add of different shapes {a} and {b}")
        return tuple(a)


@dataclass
class Relu(Layer):
    def infer(self, inputs, where):
        return tuple(inputs[0])


@dataclass
class Clip(Layer):
    """Clip to [min, max] (ReLU6 is Clip(0, 6))."""

    min: float = 0.0
    max: float = 6.0

    def infer(self, inputs, where):
        _need(self.min <= self.max, where, f"Clip min {self.min} > max {self.max}")
        return tuple(inputs[0])


class UnaryFn(enum.Enum):
    """Element-wise activations the executor computes on the host (as onnxruntime defines them)."""

    SIGMOID = "Sigmoid"          # 1 / (1 + exp(-x))
    HARD_SIGMOID = "HardSigmoid"  # max(0, min(1, alpha * x + beta))
    HARD_SWISH = "HardSwish"      # x * max(0, min(1, x / 6 + 1 / 2))
    ERF = "Erf"
    GELU = "Gelu"                 # x / 2 * (1 + erf(x / sqrt 2))
    GELU_TANH = "Gelu(tanh)"      # x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))


@dataclass
class Unary(Layer):
    """An element-wise activation (:class:`UnaryFn`; ``alpha``, ``beta``: HardSigmoid's)."""

    fn: UnaryFn = UnaryFn.SIGMOID
    alpha: float = 0.2
    beta: float = 0.5

    @property
    def kind(self) -> str:
        return self.fn.value

    def infer(self, inputs, where):
        return tuple(inputs[0])


class BinaryFn(enum.Enum):
    """Element-wise arithmetic of two tensors with numpy (ONNX multidirectional) broadcasting."""

    MUL = "Mul"
    SUB = "Sub"
    DIV = "Div"


@dataclass
class Binary(Layer):
    """``a fn b`` element by element, broadcast as ONNX and numpy broadcast (the squeeze-excite scale:
    N x C x H x W times N x C x 1 x 1)."""

    fn: BinaryFn = BinaryFn.MUL
    #: a constant operand (real values), when one of the two is a constant; the layer then has one input
    const: np.ndarray | None = field(default=None, repr=False)
    #: the constant is the left operand (``const fn x``)
    const_left: bool = False
    arity: int | None = field(default=2, init=False, repr=False)

    def __post_init__(self) -> None:
        self.arity = 1 if self.const is not None else 2

    @property
    def kind(self) -> str:
        return self.fn.value

    def operands(self, values: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) of the operation from the layer's input values and its constant."""
        if self.const is None:
            return values[0], values[1]
        c = np.asarray(self.const, np.float32)
        return (c, values[0]) if self.const_left else (values[0], c)

    def infer(self, inputs, where):
        a, b = self.operands(inputs) if self.const is None else \
            ((tuple(np.shape(self.const)), inputs[0]) if self.const_left else (inputs[0], tuple(np.shape(self.const))))
        try:
            return tuple(int(d) for d in np.broadcast_shapes(tuple(a), tuple(b)))
        except ValueError:
            raise GraphError(f"{where}: {self.fn.value} of shapes {tuple(a)} and {tuple(b)}: they do not broadcast") from None


@dataclass
class Transpose(Layer):
    """Permute the axes (``perm``; ONNX's default reverses them)."""

    perm: tuple[int, ...] = ()

    def infer(self, inputs, where):
        (s,) = inputs
        _need(sorted(self.perm) == list(range(len(s))), where, f"perm {list(self.perm)} is not a permutation of "
                                                              f"the {len(s)} axes of {tuple(s)}")
        return tuple(s[p] for p in self.perm)


@dataclass
class Slice(Layer):
    """``x[slices]``: per axis (start, stop, step), already clamped to the axis (step >= 1)."""

    slices: tuple[tuple[int, int, int], ...] = ()

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(self.slices) == len(s), where, f"{len(self.slices)} slices for {len(s)} axes")
        out = []
        for d, (a, b, st) in zip(s, self.slices):
            _need(st >= 1 and 0 <= a <= d and 0 <= b <= d, where, f"slice {a}:{b}:{st} outside an axis of {d}")
            out.append(len(range(a, b, st)))
        _need(min(out, default=1) >= 1, where, f"empty slice of {tuple(s)}")
        return tuple(out)

    def index(self) -> tuple[slice, ...]:
        return tuple(slice(a, b, st) for a, b, st in self.slices)


@dataclass
class Pad(Layer):
    """ONNX Pad: ``pads`` (begin and end per axis, non-negative) in ``mode`` "constant" (``value``, a real
    number), "reflect" or "edge"."""

    pads: tuple[tuple[int, int], ...] = ()
    mode: str = "constant"
    value: float = 0.0

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(self.pads) == len(s) and all(a >= 0 and b >= 0 for a, b in self.pads), where,
              f"pads {list(self.pads)} for {tuple(s)}")
        _need(self.mode in ("constant", "reflect", "edge"), where, f"mode '{self.mode}'")
        if self.mode == "reflect":
            _need(all(a < d and b < d for (a, b), d in zip(self.pads, s)), where,
                  f"reflect pads {list(self.pads)} must be smaller than the axes of {tuple(s)}")
        return tuple(d + a + b for d, (a, b) in zip(s, self.pads))


@dataclass
class Gather(Layer):
    """``np.take(x, indices, axis)`` with constant, non-negative ``indices`` (an int array of any rank)."""

    axis: int = 0
    indices: np.ndarray | None = field(default=None, repr=False)

    def infer(self, inputs, where):
        (s,) = inputs
        _need(0 <= self.axis < len(s), where, f"Gather axis {self.axis} out of range for {tuple(s)}")
        idx = np.asarray(self.indices)
        _need(idx.size == 0 or (idx.min() >= 0 and idx.max() < s[self.axis]), where,
              f"indices outside axis {self.axis} of {tuple(s)}")
        return tuple(s[:self.axis]) + tuple(idx.shape) + tuple(s[self.axis + 1:])


@dataclass
class Resize(Layer):
    """Nearest-neighbour resize: output index i of axis a reads input index ``index[a][i]`` (the ONNX
    coordinate transformation and nearest rounding already applied at import)."""

    index: tuple[tuple[int, ...], ...] = ()

    def infer(self, inputs, where):
        (s,) = inputs
        _need(len(self.index) == len(s), where, f"{len(self.index)} index maps for {len(s)} axes")
        for d, ix in zip(s, self.index):
            _need(len(ix) >= 1 and min(ix) >= 0 and max(ix) < d, where, f"resize indices outside an axis of {d}")
        return tuple(len(ix) for ix in self.index)


@dataclass
class ReduceMean(Layer):
    """Mean over ``axes`` (sorted, non-negative), keeping them as size 1 when ``keepdims``."""

    axes: tuple[int, ...] = ()
    keepdims: bool = True

    def infer(self, inputs, where):
        (s,) = inputs
        _need(all(0 <= a < len(s) for a in self.axes) and len(set(self.axes)) == len(self.axes), where,
              f"axes {list(self.axes)} out of range for {tuple(s)}")
        if self.keepdims:
            return tuple(1 if i in self.axes else d for i, d in enumerate(s))
        return tuple(d for i, d in enumerate(s) if i not in self.axes)


@dataclass
class Flatten(Layer):
    axis: int = 1

    def infer(self, inputs, where):
        (s,) = inputs
        _need(0 <= self.axis <= len(s), where, f"Flatten axis {self.axis} out of range for {s}")
        return (math.prod(s[:self.axis]), math.prod(s[self.axis:]))


@dataclass
class Reshape(Layer):
    shape: tuple[int, ...] = ()

    def infer(self, inputs, where):
        (s,) = inputs
        _need(all(d >= 1 for d in self.shape) and math.prod(s) == math.prod(self.shape), where,
              f"cannot reshape {s} to {self.shape}")
        return tuple(self.shape)


@dataclass
class Concat(Layer):
    axis: int = 1
    arity: int | None = field(default=None, init=False, repr=False)

    def infer(self, inputs, where):
        _need(len(inputs) >= 1, where, "Concat needs at least one input")
        first = inputs[0]
        _need(len(first) >= 1 and -len(first) <= self.axis < len(first), where,
              f"Concat axis {self.axis} out of range for {first}")
        ax = self.axis % len(first)
        for s in inputs[1:]:
            _need(len(s) == len(first) and all(a == b for i, (a, b) in enumerate(zip(s, first)) if i != ax), where,
                  f"Concat inputs {first} and {s} differ outside axis {self.axis}")
        return tuple(sum(s[ax] for s in inputs) if i == ax else d for i, d in enumerate(first))


@dataclass
class Softmax(Layer):
    """exp(x - max) / sum over ``axis`` (non-negative; ONNX opset 13's definition)."""

    axis: int = -1

    def infer(self, inputs, where):
        (s,) = inputs
        _need(0 <= self.axis < len(s), where, f"Softmax axis {self.axis} out of range for {tuple(s)}")
        return tuple(s)


@dataclass
class LayerNorm(Layer):
    """LayerNormalization over the axes from ``axis`` on (non-negative): (x - mean) / sqrt(var + epsilon)
    * scale + bias, with ``scale`` and ``bias`` broadcast over the normalized axes."""

    axis: int = -1
    epsilon: float = 1e-5
    scale: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)

    def infer(self, inputs, where):
        (s,) = inputs
        _need(0 <= self.axis < len(s), where, f"LayerNormalization axis {self.axis} out of range for {tuple(s)}")
        for name in ("scale", "bias"):
            v = getattr(self, name)
            if v is not None:
                try:
                    np.broadcast_shapes(np.shape(v), tuple(s[self.axis:]))
                except ValueError:
                    raise GraphError(f"{where}: {name} of shape {np.shape(v)} does not broadcast over the "
                                     f"normalized shape {tuple(s[self.axis:])}") from None
        return tuple(s)


#: Host steps whose output may stay float32 in a QDQ model (onnxruntime's quantizer leaves the element-wise
#: ones unquantized, and the rearranging ones too when their input is float).
FLOAT_STEPS = (Unary, Binary, ReduceMean, Softmax, LayerNorm, Transpose, Slice, Gather, Resize, Flatten, Reshape)


LAYER_TYPES = (Input, Constant, Conv2d, Gemm, MatMul, MaxPool, AveragePool, GlobalAveragePool, Add, Relu, Clip, Unary, Binary,
               Transpose, Slice, Pad, Gather, Resize, ReduceMean, Softmax, LayerNorm, Flatten, Reshape,
               Concat)


# -------------------------------------------------------------------- graph
class LayerGraph:
    """A validated DAG of layers. Node attribute ``layer``; edge attribute ``tensor``.

    Inputs of a node are ordered: edge attribute ``port`` (0, 1, ...) gives the
    position, so Add/Concat keep their operand order.
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self.g = nx.DiGraph()
        self.outputs: list[str] = []
        #: shape of each node's output, filled by validate()
        self.shapes: dict[str, tuple[int, ...]] = {}
        #: output tensor info of each node (dtype, quantization), optional
        self.tensors: dict[str, TensorInfo] = {}

    # construction ------------------------------------------------------------
    def add(self, name: str, layer: Layer, inputs: Sequence[str] = (), tensor: TensorInfo | None = None) -> str:
        """Add ``layer`` as node ``name`` fed by the outputs of ``inputs`` (in order)."""
        if name in self.g:
            raise GraphError(f"node '{name}': duplicate name")
        if not isinstance(layer, Layer):
            raise GraphError(f"node '{name}': {type(layer).__name__} is not a layer type")
        for src in inputs:
            if src not in self.g:
                raise GraphError(f"node '{name}': input '{src}' is not a node of the graph")
        self.g.add_node(name, layer=layer)
        for port, src in enumerate(inputs):
            self.g.add_edge(src, name, port=port)
        if tensor is not None:
            self.tensors[name] = tensor
        return name

    # queries -----------------------------------------------------------------
    def layer(self, name: str) -> Layer:
        return self.g.nodes[name]["layer"]

    def inputs_of(self, name: str) -> list[str]:
        preds = list(self.g.predecessors(name))
        return sorted(preds, key=lambda p: self.g.edges[p, name]["port"])

    def order(self) -> list[str]:
        return list(nx.lexicographical_topological_sort(self.g))

    def __iter__(self) -> Iterator[tuple[str, Layer]]:
        for n in self.order():
            yield n, self.layer(n)

    def __len__(self) -> int:
        return self.g.number_of_nodes()

    @property
    def graph_inputs(self) -> list[str]:
        return [n for n in self.order() if isinstance(self.layer(n), Input)]

    def compute_layers(self) -> list[str]:
        """Conv2d and Gemm nodes: the layers the systolic array runs."""
        return [n for n in self.order() if isinstance(self.layer(n), (Conv2d, Gemm, MatMul))]

    # validation --------------------------------------------------------------
    def validate(self) -> "LayerGraph":
        """Check acyclicity, arity and shapes; fill ``shapes``. Returns self.

        Every output shape also passes :func:`check_shape` and every compute layer's MACs the ``layer_macs``
        limit (``hwgen.limits.LimitError``), so no graph that reaches the mapper is too large to cost."""
        check_limit("layers", self.g.number_of_nodes(), f"graph '{self.name}': layers")
        if not nx.is_directed_acyclic_graph(self.g):
            cycle = nx.find_cycle(self.g)
            raise GraphError(f"graph '{self.name}': cycle through node '{cycle[0][0]}'")
        shapes: dict[str, tuple[int, ...]] = {}
        for n in self.order():
            layer = self.layer(n)
            where = f"graph '{self.name}', node '{n}' ({layer.kind})"
            ins = self.inputs_of(n)
            if layer.arity is not None and len(ins) != layer.arity:
                raise GraphError(f"{where}: takes {layer.arity} input(s), has {len(ins)}")
            shapes[n] = check_shape(layer.infer([shapes[i] for i in ins], where), f"{where}: output")
            check_limit("layer_macs", self._macs(n, shapes), f"{where}: multiply-accumulates")
            t = self.tensors.get(n)
            if t is not None and tuple(t.shape) != shapes[n]:
                raise GraphError(f"{where}: tensor '{t.name}' has shape {tuple(t.shape)}, inferred {shapes[n]}")
        for o in self.outputs:
            if o not in self.g:
                raise GraphError(f"graph '{self.name}': output '{o}' is not a node")
        if not self.outputs:
            self.outputs = [n for n in self.order() if self.g.out_degree(n) == 0]
        self.shapes = shapes
        return self

    def summary(self) -> list[dict]:
        """One row per node: name, kind, output shape, MACs."""
        if not self.shapes:
            self.validate()
        return [{"name": n, "kind": layer.kind, "shape": self.shapes[n], "macs": self._macs(n, self.shapes)}
                for n, layer in self]

    def layer_macs(self, n: str) -> int:
        """MACs of node ``n`` (0 for layers that are not Conv2d, Gemm or MatMul); shapes must be inferred."""
        return self._macs(n, self.shapes)

    def _macs(self, n: str, shapes: dict[str, tuple[int, ...]]) -> int:
        """MACs of node ``n`` (0 for layers that are not Conv2d, Gemm or MatMul) from already inferred shapes."""
        layer = self.layer(n)
        if isinstance(layer, MatMul):
            return layer.macs(shapes[n], shapes[self.inputs_of(n)[0]][-1])
        return layer.macs(shapes[n]) if isinstance(layer, (Conv2d, Gemm)) else 0
