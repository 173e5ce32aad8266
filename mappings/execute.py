"""Whole-network execution of a quantized (QDQ-imported) LayerGraph.

Convolutions and fully connected layers run on the accelerator (the cycle
model, or the RTL on Verilator): each is lowered to its own Program with the
input zero point folded into a per-channel bias, per-channel multipliers and
shifts in the quantization table, and the padding filled with the input zero
point. Everything else is a host step, reported as such, computed the way
onnxruntime's QDQ graphs define it (dequantize, float32 op, quantize with
round-half-to-even), except MaxPool, Flatten and Reshape which keep the
quantization and so stay exact integer operations.

Tensors live in the int8 domain on the accelerator (see mappings.quantize):
uint8 activations are offset by -128 with their zero point, which represents
the same real values with signed bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from hwgen.config import AcceleratorConfig
from sim.perf import GemmShape
from sim.reference import ChannelQuant

from .graph import (FLOAT_STEPS, Add, AveragePool, Binary, BinaryFn, Clip, Concat, Constant, Conv2d, Flatten, Gather, Gemm,
                    GlobalAveragePool, Input, LayerGraph, LayerNorm, MatMul, MaxPool, Pad, QuantParams, ReduceMean,
                    Relu, Reshape, Resize, Slice, Softmax, Transpose, Unary, UnaryFn)
from .grouping import merge_weights
from .lowering import LoweringError, lower_conv2d, lower_gemm
from .mapper import executed_plan
from .network_map import executed_layer_shape
from .zero_points import extend_operands
from .quantize import dequantize_linear, from_int8_domain, quantize_linear, quantize_multiplier, to_int8_domain
from hwgen.errors import HwgenError, LimitError
from hwgen.isa import INSTR_BYTES
from hwgen.limits import check_limit
from hwgen.program import HOST_BYTES_PER_INSTRUCTION, Executor, RunResult, run_programs

__all__ = ["ExecutionError", "ExecutionLimitError", "LayerRun", "NetworkRun", "run_quantized", "layer_programs", "LayerPrograms",
           "QTensor", "check_run_limits", "quant_of", "activation_quant", "requantize_on_host", "channel_requant",
           "run_on_host"]


class ExecutionError(HwgenError, ValueError):
    """The graph or its input cannot be executed; the message names the node or input."""


class ExecutionLimitError(ExecutionError, LimitError):
    """The run would allocate more host memory than ``run_bytes`` or simulate a layer of more than
    ``simulated_macs`` MACs (:mod:`hwgen.limits`); refused before anything is simulated."""




@dataclass
class QTensor:
    """An integer tensor in the int8 domain with the quantization it represents (logical ONNX layout)."""

    q: np.ndarray  # int8
    scale: np.ndarray  # float32, () for activations
    zero_point: int  # int8 domain
    dtype: str  # the tensor's own type: int8 or uint8

    def native(self) -> np.ndarray:
        return from_int8_domain(self.q, self.dtype)

    def real(self) -> np.ndarray:
        return dequantize_linear(self.q, self.scale, self.zero_point)


@dataclass
class FloatTensor:
    """A float32 value between element-wise host steps that onnxruntime's quantizer leaves unquantized
    (:data:`mappings.graph.FLOAT_STEPS`); the same reading interface as :class:`QTensor`."""

    q: np.ndarray  # float32
    dtype: str = "float32"

    def native(self) -> np.ndarray:
        return self.q

    def real(self) -> np.ndarray:
        return self.q


@dataclass
class LayerRun:
    name: str
    kind: str
    where: str  # "accelerator" or "host"
    shape: tuple[int, ...]
    macs: int = 0
    cycles: int = 0
    busy_pe: int = 0
    instructions: int = 0
    dataflow: str | None = None
    utilization: float = 0.0


@dataclass
class NetworkRun:
    """``values``: every node's integer value as its consumers saw it (a fed value where ``feed`` replaced one);
    ``own``: the executor's own value of each fed node, computed before the feed replaced it."""

    outputs: dict[str, np.ndarray]
    values: dict[str, QTensor]
    layers: list[LayerRun] = field(default_factory=list)
    own: dict[str, QTensor] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return sum(layer.cycles for layer in self.layers)

    def report(self) -> dict:
        return {"total_cycles": self.cycles,
                "accelerator_layers": sum(layer.where == "accelerator" for layer in self.layers),
                "host_layers": sum(layer.where == "host" for layer in self.layers),
                "layers": [vars(layer) | {"shape": list(layer.shape)} for layer in self.layers]}


# ------------------------------------------------------------- quantization
def quant_of(graph: LayerGraph, node: str) -> QuantParams:
    """The quantization parameters of ``node``'s output; an error naming the node if it has none."""
    t = graph.tensors.get(node)
    if t is None or t.quant is None:
        raise ExecutionError(f"node '{node}' has no quantization parameters (is the model an int8 QDQ model?)")
    return t.quant


def activation_quant(qp: QuantParams, node: str) -> tuple[np.ndarray, int, str]:
    """(scale, zero point in the int8 domain, dtype) of a per-tensor int8 or uint8 activation."""
    if qp.per_channel:
        raise ExecutionError(f"node '{node}': per-channel quantization of an activation is not supported")
    if qp.dtype not in ("int8", "uint8"):
        raise ExecutionError(f"node '{node}': activation type {qp.dtype} is not int8 or uint8")
    zp = int(np.asarray(qp.zero_point).reshape(-1)[0])
    return np.float32(np.asarray(qp.scale).reshape(-1)[0]), (zp - 128 if qp.dtype == "uint8" else zp), qp.dtype


def _hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    return np.clip(np.float32(alpha) * x + np.float32(beta), np.float32(0), np.float32(1))


_erf = np.frompyfunc(math.erf, 1, 1)


def _erf32(x: np.ndarray) -> np.ndarray:
    return _erf(x.astype(np.float64)).astype(np.float32)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = np.float32(math.sqrt(2 / math.pi))
    return np.float32(0.5) * x * (np.float32(1) + np.tanh(c * (x + np.float32(0.044715) * x * x * x)))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True, dtype=np.float32)).astype(np.float32)


def _layer_norm(x: np.ndarray, L: LayerNorm) -> np.ndarray:
    axes = tuple(range(L.axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float32)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True, dtype=np.float32)
    y = d / np.sqrt(var + np.float32(L.epsilon))
    if L.scale is not None:
        y = y * np.asarray(L.scale, np.float32)
    if L.bias is not None:
        y = y + np.asarray(L.bias, np.float32)
    return y.astype(np.float32)


#: Float32 definitions of the element-wise activations, as onnxruntime computes them.
_UNARY: dict[UnaryFn, Callable[[np.ndarray, Unary], np.ndarray]] = {
    UnaryFn.SIGMOID: lambda x, _: (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32),
    UnaryFn.HARD_SIGMOID: lambda x, L: _hard_sigmoid(x, L.alpha, L.beta),
    UnaryFn.HARD_SWISH: lambda x, _: x * _hard_sigmoid(x, 1 / 6, 0.5),
    UnaryFn.ERF: lambda x, _: _erf32(x),
    UnaryFn.GELU: lambda x, _: np.float32(0.5) * x * (np.float32(1) + _erf32(x / np.float32(math.sqrt(2)))),
    UnaryFn.GELU_TANH: lambda x, _: _gelu_tanh(x),
}
_BINARY: dict[BinaryFn, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    BinaryFn.MUL: np.multiply, BinaryFn.SUB: np.subtract, BinaryFn.DIV: np.divide}


def requantize_on_host(real: np.ndarray, graph: LayerGraph, node: str) -> QTensor | FloatTensor:
    """Quantize a float32 result with the node's output parameters (QuantizeLinear); an element-wise step
    whose output the model leaves unquantized keeps it float32."""
    t = graph.tensors.get(node)
    if (t is None or t.quant is None) and isinstance(graph.layer(node), FLOAT_STEPS):
        return FloatTensor(np.asarray(real, np.float32))
    scale, zp8, dtype = activation_quant(quant_of(graph, node), node)
    return _quantize(real, scale, zp8, dtype)


def _quantize(real: np.ndarray, scale, zp8: int, dtype: str) -> QTensor:
    """QuantizeLinear of ``real`` to ``dtype`` with zero point ``zp8`` (int8 domain), held in the int8 domain."""
    zp = zp8 + 128 if dtype == "uint8" else zp8
    q8, _ = to_int8_domain(quantize_linear(real, scale, zp, dtype), zp, dtype)
    return QTensor(q8, scale, zp8, dtype)


# ----------------------------------------------------- accelerator layers
def channel_requant(x: QTensor, w: np.ndarray, bias: np.ndarray | None, wq: QuantParams | None, out_scale: float,
                    out_zp: int, n_out: int, w_sum: np.ndarray, node: str) -> ChannelQuant:
    """Fold the input zero point into the bias and the scales into (multiplier, shift) per output channel."""
    if wq is None:
        raise ExecutionError(f"node '{node}': weights have no quantization parameters")
    if np.any(np.asarray(wq.zero_point) != 0):
        raise ExecutionError(f"node '{node}': weight zero points must be 0 (symmetric int8 weights)")
    sw = np.broadcast_to(np.asarray(wq.scale, dtype=np.float64).reshape(-1), (n_out,))
    b = np.zeros(n_out, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    b = b - np.int64(x.zero_point) * w_sum.astype(np.int64)
    if np.any(np.abs(b) >= 1 << 31):
        raise ExecutionError(f"node '{node}': folded bias exceeds int32")
    pairs = [quantize_multiplier(float(x.scale) * float(s) / float(out_scale)) for s in sw]
    return ChannelQuant(b, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), out_zp, -128, 127,
                        False)


def _check_fits(cfg: AcceleratorConfig, node: str, w_rows: np.ndarray, bias, x_zero_point: int) -> None:
    """The layer's accumulators cannot overflow on ``cfg``, whatever the input.

    The accumulator adds ``sum x*w`` and the folded bias ``b - zx*sum w`` modulo 2**acc_width (wrapping like
    the hardware), so only the final value ``b + sum (x - zx)*w`` must fit ``acc_width`` signed bits; its worst
    case over all int8-domain inputs x is ``|b| + max|x - zx| * sum|w|`` per output channel. ``w_rows``: the
    weights as (output channel, reduction)."""
    K = w_rows.shape[1]
    b = np.zeros(w_rows.shape[0], np.int64) if bias is None else np.asarray(bias, np.int64).reshape(-1)
    dx = max(127 - int(x_zero_point), int(x_zero_point) + 128)
    worst = int((np.abs(b) + dx * np.abs(w_rows.astype(np.int64)).sum(axis=1)).max())
    if worst >= 1 << (cfg.acc_width - 1):
        raise ExecutionError(f"node '{node}': does not fit config '{cfg.name}': the accumulator can reach "
                             f"{worst} (|bias| + max|x - zero point| * sum|w|, reduction length {K}), beyond "
                             f"acc_width={cfg.acc_width} signed bits (max_reduction={cfg.max_reduction})")


@dataclass
class LayerPrograms:
    """The programs that run one accelerator layer (one per image of a convolution's batch, one per batch
    index of a MatMul, one for a Gemm) and what their outputs become: :meth:`collect` assembles the
    layer's int8-domain value from each program's ``out`` tensor."""

    programs: list
    shape: tuple[int, ...]  # the layer's output (logical ONNX layout)
    scale: np.ndarray
    zero_point: int  # int8 domain
    dtype: str
    layout: str  # "nchw": each program gives one image as HWC; "rows": the programs' rows in order

    def collect(self, outs: list[np.ndarray]) -> QTensor:
        if self.layout == "nchw":
            q = np.stack([np.transpose(o, (2, 0, 1)) for o in outs])
        else:
            q = np.concatenate([o.reshape(-1) for o in outs]).reshape(self.shape)
        return QTensor(q.astype(np.int8), self.scale, self.zero_point, self.dtype)


def layer_programs(cfg: AcceleratorConfig, graph: LayerGraph, node: str, ins: list[QTensor],
                   dataflow: str | None = None) -> LayerPrograms:
    """The programs that run ``node`` (Conv2d, Gemm, or MatMul of two activations) on its inputs ``ins``.

    Raises :class:`ExecutionError` naming the node when the layer cannot run on ``cfg`` (accumulators that
    could overflow ``acc_width``, or a tiling/addressing limit of the lowering)."""
    try:
        return _layer_programs(cfg, graph, node, ins, dataflow)
    except LoweringError as e:
        raise ExecutionError(f"node '{node}': cannot be lowered on config '{cfg.name}': {e}") from None


def _plan(cfg: AcceleratorConfig, shape, dataflow: str | None):
    """The plan the layer runs with (:func:`mappings.mapper.executed_plan`, the one ``hwgen map`` reports)."""
    return executed_plan(cfg, shape, dataflow)[0]


def _planned_perf(cfg: AcceleratorConfig, shape, dataflow: str | None):
    """The analytical model's counts for :func:`_plan`'s plan (the same memoised search)."""
    return executed_plan(cfg, shape, dataflow)[1]


def _layer_programs(cfg: AcceleratorConfig, graph: LayerGraph, node: str, ins: list[QTensor],
                    dataflow: str | None) -> LayerPrograms:
    layer = graph.layer(node)
    out_scale, out_zp, out_dtype = activation_quant(quant_of(graph, node), node)
    out = dict(shape=graph.shapes[node], scale=out_scale, zero_point=out_zp, dtype=out_dtype)
    _, shape, _ = executed_layer_shape(cfg, graph, node)
    x = ins[0]
    if isinstance(layer, MatMul):
        return LayerPrograms(_matmul_programs(cfg, node, x, ins[1], out_scale, out_zp, shape, dataflow),
                             layout="rows", **out)
    if layer.weight is None or not np.issubdtype(np.asarray(layer.weight).dtype, np.integer):
        raise ExecutionError(f"node '{node}': needs integer (quantized) weights")
    w = np.asarray(layer.weight).astype(np.int64)
    if isinstance(layer, Conv2d):
        O = layer.out_channels
        wt = np.transpose(w, (2, 3, 1, 0))  # OIHW -> KH KW I/g O
        quant = channel_requant(x, w, layer.bias, layer.weight_quant, out_scale, out_zp, O,
                               w.reshape(O, -1).sum(axis=1), node)
        _check_fits(cfg, node, w.reshape(O, -1), layer.bias, x.zero_point)
        if shape.groups != layer.groups:  # block-diagonal groups (mappings.grouping): the same outputs
            wt = merge_weights(wt, layer.groups, layer.groups // shape.groups)
        plan = _plan(cfg, shape, dataflow)
        progs = [lower_conv2d(cfg, np.transpose(image, (1, 2, 0)), wt.astype(np.int8), layer.stride, layer.pads,
                              quant, dataflow=dataflow, groups=shape.groups, dilation=layer.dilation,
                              pad_value=x.zero_point, plan=plan, packed_weights=shape.packed_weights)
                 for image in x.q]
        return LayerPrograms(progs, layout="nchw", **out)
    if isinstance(layer, Gemm):
        A = x.q.reshape(-1, layer.in_features)
        quant = channel_requant(x, w, layer.bias, layer.weight_quant, out_scale, out_zp, layer.out_features,
                               w.sum(axis=0), node)
        _check_fits(cfg, node, w.T, layer.bias, x.zero_point)
        prog = lower_gemm(cfg, A, w.astype(np.int8), quant, dataflow=dataflow, plan=_plan(cfg, shape, dataflow),
                          packed_weights=shape.packed_weights)
        return LayerPrograms([prog], layout="rows", **out)
    raise ExecutionError(f"node '{node}' ({layer.kind}) does not run on the accelerator")


def _matmul_programs(cfg: AcceleratorConfig, node: str, a: QTensor, b: QTensor, out_scale, out_zp: int,
                     shape: GemmShape, dataflow: str | None) -> list:
    """One program per batch index of ``a @ b``: B is the W operand, both zero points folded exactly
    (:mod:`mappings.zero_points`: the fills extend the reduction to ``shape.K``, A's zero point goes into
    the per-column bias with B's column sums less its zero point)."""
    for t, which in ((a, "first"), (b, "second")):
        if not isinstance(t, QTensor):
            raise ExecutionError(f"node '{node}': MatMul's {which} operand is not quantized (a QDQ model "
                                 f"quantizes both inputs of a MatMul of two activations)")
    M, K = a.q.shape[-2:]
    N = b.q.shape[-1]
    zb = b.zero_point
    wq = QuantParams(np.asarray(b.scale, np.float32), np.zeros((), np.int64))
    plan = _plan(cfg, shape, dataflow)
    progs = []
    for a2, b2 in zip(a.q.reshape(-1, M, K), b.q.reshape(-1, K, N)):
        centred = b2.astype(np.int64) - zb
        quant = channel_requant(a, centred, None, wq, out_scale, out_zp, N, centred.sum(axis=0), node)
        _check_fits(cfg, node, centred.T, None, a.zero_point)
        A, W = extend_operands(a2, b2, zb)
        progs.append(lower_gemm(cfg, A, W, quant, dataflow=dataflow, plan=plan))
    return progs


def _model_executor(cfg: AcceleratorConfig) -> Executor:
    from sim.cycle import CycleModel

    return CycleModel(cfg)


def _rtl_executor(cfg: AcceleratorConfig) -> Executor:
    from hwgen.native import NativeExecutor

    return NativeExecutor(cfg)


#: Backend name -> the :class:`hwgen.program.Executor` factory; each accelerator layer runs on a new executor.
BACKENDS: dict[str, Callable[[AcceleratorConfig], Executor]] = {"model": _model_executor, "rtl": _rtl_executor}


def _run_layer(executor: Executor, prog) -> RunResult:
    (res,) = run_programs(executor, [prog])
    if not res.ok:
        raise ExecutionError(f"{res.executor or 'the'} run failed (error={res.error}, timed_out={res.timed_out}, "
                             f"mem_oob={res.mem_oob}, bytes written past the image={res.outside_bytes})")
    return res


# ------------------------------------------------------------ host layers
def _moved(graph: LayerGraph, node: str, x: QTensor | FloatTensor, move: Callable[[np.ndarray], np.ndarray]
           ) -> QTensor | FloatTensor:
    """A step that rearranges values (reshape, transpose, slice): integers keep their quantization
    (:func:`_same_values`); a float32 input stays float, or is quantized if the node's output is."""
    if isinstance(x, FloatTensor):
        return requantize_on_host(move(x.q), graph, node)
    return _same_values(graph, node, x, move(x.q))


def _same_values(graph: LayerGraph, node: str, x: QTensor, q: np.ndarray) -> QTensor:
    """A step that moves values without computing (max, transpose, slice): ``q`` keeps ``x``'s quantization,
    requantized only if the node's output has parameters of its own."""
    out = QTensor(q, x.scale, x.zero_point, x.dtype)
    own = graph.tensors.get(node)
    if own is not None and own.quant is not None:
        s, z, _ = activation_quant(own.quant, node)
        if not (np.isclose(s, x.scale) and z == x.zero_point):
            return requantize_on_host(out.real(), graph, node)
    return out


def run_on_host(graph: LayerGraph, node: str, ins: list[QTensor | FloatTensor]) -> QTensor | FloatTensor:
    """One step the accelerator does not run (reshapes, pooling, element-wise, softmax...), on the host."""
    layer = graph.layer(node)
    if isinstance(layer, (Flatten, Reshape)):
        return _moved(graph, node, ins[0], lambda v: v.reshape(graph.shapes[node]))
    if isinstance(layer, Transpose):
        return _moved(graph, node, ins[0], lambda v: np.transpose(v, layer.perm))
    if isinstance(layer, Slice):
        return _moved(graph, node, ins[0], lambda v: v[layer.index()])
    if isinstance(layer, Resize):
        return _moved(graph, node, ins[0], lambda v: v[np.ix_(*layer.index)])
    if isinstance(layer, Gather):
        return _moved(graph, node, ins[0], lambda v: np.take(v, layer.indices, axis=layer.axis))
    if isinstance(layer, Pad):
        x = ins[0]
        if layer.mode != "constant":
            return _same_values(graph, node, x, np.pad(x.q, layer.pads, mode=layer.mode))
        # the fill is the constant quantized with the input's parameters (QuantizeLinear, as ORT's QDQ Pad)
        fill = _quantize(np.full((), layer.value, np.float32), x.scale, x.zero_point, x.dtype).q
        return _same_values(graph, node, x, np.pad(x.q, layer.pads, constant_values=fill))
    if isinstance(layer, MaxPool):
        x = ins[0]
        pt, pl, pb, pr = layer.window_pads
        xp = np.pad(x.q.astype(np.int16), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-32768)
        oh, ow = graph.shapes[node][2:]
        kh, kw = layer.kernel
        sh, sw = layer.stride
        out = np.full((*x.q.shape[:2], oh, ow), -32768, dtype=np.int16)
        for i in range(kh):
            for j in range(kw):
                out = np.maximum(out, xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw])
        return _same_values(graph, node, x, out.astype(np.int8))
    if isinstance(layer, Softmax):
        return requantize_on_host(_softmax(ins[0].real(), layer.axis), graph, node)
    if isinstance(layer, LayerNorm):
        return requantize_on_host(_layer_norm(ins[0].real(), layer), graph, node)
    if isinstance(layer, ReduceMean):
        return requantize_on_host(ins[0].real().mean(axis=layer.axes, keepdims=layer.keepdims, dtype=np.float32), graph, node)
    if isinstance(layer, (AveragePool, GlobalAveragePool)):
        real = ins[0].real()
        if isinstance(layer, GlobalAveragePool):
            res = real.mean(axis=(2, 3), keepdims=True, dtype=np.float32)
        else:
            pt, pl, pb, pr = layer.window_pads
            xp = np.pad(real, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
            # the divisor counts the input, and with count_include_pad the explicit pads, never the
            # ceil-mode rows and columns (onnxruntime's AveragePool)
            ept, epl, epb, epr = layer.pads
            counted = np.pad(np.ones(real.shape[2:], np.float32), ((ept, epb), (epl, epr)),
                             constant_values=float(layer.count_include_pad))
            counted = np.pad(counted, ((0, layer.ceil_pads[0]), (0, layer.ceil_pads[1])))
            oh, ow = graph.shapes[node][2:]
            kh, kw = layer.kernel
            sh, sw = layer.stride
            acc = np.zeros((*real.shape[:2], oh, ow), np.float32)
            cnt = np.zeros((oh, ow), np.float32)
            for i in range(kh):
                for j in range(kw):
                    acc += xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                    cnt += counted[i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            res = acc / cnt
        return requantize_on_host(res, graph, node)
    if isinstance(layer, Add):
        return requantize_on_host(ins[0].real() + ins[1].real(), graph, node)
    if isinstance(layer, Unary):
        return requantize_on_host(_UNARY[layer.fn](ins[0].real(), layer), graph, node)
    if isinstance(layer, Binary):
        a, b = layer.operands([t.real() for t in ins])
        with np.errstate(divide="ignore", invalid="ignore"):  # x / 0 is +-inf or nan, saturated by quantization
            res = _BINARY[layer.fn](a, b).astype(np.float32)
        return requantize_on_host(np.nan_to_num(res, nan=0.0), graph, node)
    if isinstance(layer, Relu):
        return requantize_on_host(np.maximum(ins[0].real(), np.float32(0)), graph, node)
    if isinstance(layer, Clip):
        return requantize_on_host(np.clip(ins[0].real(), np.float32(layer.min), np.float32(layer.max)), graph, node)
    if isinstance(layer, Concat):
        return requantize_on_host(np.concatenate([t.real() for t in ins], axis=layer.axis), graph, node)
    if isinstance(layer, Constant):
        scale, zp, dtype = activation_quant(quant_of(graph, node), node)
        q8, _ = to_int8_domain(np.asarray(layer.value), zp + 128 if dtype == "uint8" else zp, dtype)
        return QTensor(q8, scale, zp, dtype)
    raise ExecutionError(f"node '{node}': {layer.kind} is not supported by the executor")


# ------------------------------------------------------------------ limits
def _limit(field_name: str, value: int, what: str) -> None:
    try:
        check_limit(field_name, value, what)
    except LimitError as e:
        raise ExecutionLimitError(str(e)) from None


def _accelerator_bytes(cfg: AcceleratorConfig, graph: LayerGraph, node: str, dataflow: str | None) -> int:
    """Host bytes a Conv2d/Gemm/MatMul layer allocates while it runs (an upper bound): int64 working copies
    of the weights, every program's host-memory image twice (the image and the simulator's copy; all of a
    batch's programs are lowered before they run), the input and output rearranged, and every instruction
    (:data:`HOST_BYTES_PER_INSTRUCTION`), counted by the analytical model for the plan the run will use
    (memoised, so the run plans nothing twice)."""
    layer = graph.layer(node)
    ins = [graph.shapes[i] for i in graph.inputs_of(node)]
    n_in, n_out = math.prod(ins[0]), math.prod(graph.shapes[node])
    _, shape, repeat = executed_layer_shape(cfg, graph, node)
    if isinstance(layer, Conv2d):
        n_w = layer.out_channels * (layer.in_channels // shape.groups) * layer.kernel[0] * layer.kernel[1]
    elif isinstance(layer, MatMul):  # each program's W' and A' (the operands extended by the fills)
        n_w = repeat * shape.K * shape.N
        n_in = repeat * shape.M * shape.K + math.prod(ins[1])
    else:
        n_w = layer.in_features * layer.out_features
    try:
        instructions = repeat * _planned_perf(cfg, shape, dataflow).instructions
    except HwgenError:  # no plan fits: the run reports it at this layer, before simulating it
        instructions = 0
    _limit("instructions", instructions, f"node '{node}' ({layer.kind}): instructions of its programs")
    image = instructions * INSTR_BYTES + n_in + n_w + n_out + repeat * (16 * cfg.cols + 64 * cfg.host_port_bytes)
    return 24 * n_w + 3 * (n_in + n_out) + 2 * image + instructions * HOST_BYTES_PER_INSTRUCTION


def _host_bytes(graph: LayerGraph, node: str) -> int:
    """Host bytes a host step allocates (an upper bound): float32 copies of its inputs (padded, for
    pooling) and of its output, with as many temporaries again (quantization, pooling's counts)."""
    layer = graph.layer(node)
    ins = [graph.shapes[i] for i in graph.inputs_of(node)]
    n_in = sum(math.prod(s) for s in ins)
    if isinstance(layer, (MaxPool, AveragePool)):
        n, c, h, w = ins[0]
        pt, pl, pb, pr = layer.window_pads
        n_in = n * c * (h + pt + pb) * (w + pl + pr)
    elif isinstance(layer, (Input, Constant)):
        n_in = math.prod(graph.shapes[node])
    return 16 * (n_in + math.prod(graph.shapes[node]))


def check_run_limits(graph: LayerGraph, cfg: AcceleratorConfig, dataflow: str | None = None) -> int:
    """Refuse a run before anything is simulated; return the estimated peak host memory in bytes.

    Each accelerator layer's MACs must be within ``simulated_macs`` (the mapper's analytical costing in
    ``hwgen map`` is not limited by it, only by ``layer_macs``), and the host memory the run holds when
    each layer runs (every earlier value, kept for the report, plus the layer's own working memory) within
    ``run_bytes``. The error names the first layer over a limit.
    """
    if not graph.shapes:
        graph.validate()
    kept, peak = 0, 0
    for node in graph.order():
        layer = graph.layer(node)
        where = f"node '{node}' ({layer.kind})"
        if isinstance(layer, (Conv2d, Gemm, MatMul)):
            _limit("simulated_macs", graph.layer_macs(node), f"{where}: multiply-accumulates to simulate")
            working = _accelerator_bytes(cfg, graph, node, dataflow)
        else:
            working = _host_bytes(graph, node)
        kept += math.prod(graph.shapes[node])  # every value stays in NetworkRun.values (one byte each)
        _limit("run_bytes", kept + working, f"{where}: host memory of the run while this layer runs (bytes)")
        peak = max(peak, kept + working)
    return peak


# ---------------------------------------------------------------- network
def run_quantized(graph: LayerGraph, inputs: Mapping[str, np.ndarray] | np.ndarray, cfg: AcceleratorConfig,
                  backend: str = "model", dataflow: str | None = None,
                  feed: Mapping[str, np.ndarray] | None = None) -> NetworkRun:
    """Execute ``graph`` on float ``inputs`` (one array, or by Input node name).

    ``feed`` replaces the value of any node by a given integer tensor (its own
    dtype, logical shape) before its consumers run, and keeps the executor's own
    value in ``NetworkRun.own``: feeding every node onnxruntime's tensor runs
    each layer on onnxruntime's own input, in one pass (the layer-by-layer
    comparison).

    Before anything runs, :func:`check_run_limits` refuses a run whose host memory would exceed
    ``run_bytes`` or a layer above ``simulated_macs`` (:class:`ExecutionLimitError`, naming the layer).
    """
    if backend not in BACKENDS:
        raise ExecutionError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if not graph.shapes:
        graph.validate()
    check_run_limits(graph, cfg, dataflow)
    graph_inputs = graph.graph_inputs
    if not isinstance(inputs, Mapping):
        if len(graph_inputs) != 1:
            raise ExecutionError(f"graph has {len(graph_inputs)} inputs ({', '.join(graph_inputs)}): pass a dict")
        inputs = {graph_inputs[0]: inputs}
    values: dict[str, QTensor] = {}
    run = NetworkRun({}, values)
    make_executor = BACKENDS[backend]
    feed = dict(feed or {})
    unknown = [n for n in feed if n not in graph.shapes]
    if unknown:
        raise ExecutionError(f"feed names unknown node(s): {', '.join(map(repr, unknown))}")
    for node in graph.order():
        layer = graph.layer(node)
        shape = graph.shapes[node]
        if isinstance(layer, Input):
            if node not in inputs:
                raise ExecutionError(f"no value for graph input '{node}'")
            x = np.asarray(inputs[node])
            if x.shape != shape:
                raise ExecutionError(f"input '{node}': shape {x.shape}, the model expects {shape}")
            if not np.issubdtype(x.dtype, np.floating):
                raise ExecutionError(f"input '{node}': dtype {x.dtype}, the model expects float32")
            if not np.all(np.isfinite(x)):
                raise ExecutionError(f"input '{node}': contains NaN or infinite values")
            values[node] = requantize_on_host(x.astype(np.float32), graph, node)
            run.layers.append(LayerRun(node, "Input", "host", shape))
        else:
            ins = [values[i] for i in graph.inputs_of(node)]
            if isinstance(layer, (Conv2d, Gemm, MatMul)):
                job = layer_programs(cfg, graph, node, ins, dataflow)
                outs, cycles, busy = [], 0, 0
                for prog in job.programs:
                    try:
                        res = _run_layer(make_executor(cfg), prog)
                    except ExecutionError as e:
                        raise ExecutionError(f"node '{node}': {e}") from None
                    outs.append(prog.outputs["out"].read(res.memory))
                    cycles, busy = cycles + res.cycles, busy + res.busy_pe
                values[node] = job.collect(outs)
                run.layers.append(LayerRun(node, layer.kind, "accelerator", shape, graph.layer_macs(node), cycles, busy,
                                           sum(len(p.instructions) for p in job.programs),
                                           job.programs[0].meta["plan"]["dataflow"],
                                           busy / (cycles * cfg.pes) if cycles else 0.0))
            else:
                values[node] = run_on_host(graph, node, ins)
                run.layers.append(LayerRun(node, layer.kind, "host", shape))
        if node in feed and isinstance(values[node], FloatTensor):
            f = np.asarray(feed[node])
            if f.shape != values[node].q.shape or f.dtype != np.float32:
                raise ExecutionError(f"feed for node '{node}': {f.dtype} {f.shape}, the node's value is float32 "
                                     f"{values[node].q.shape}")
            run.own[node], values[node] = values[node], FloatTensor(f)
        elif node in feed:
            t = values[node]
            f = np.asarray(feed[node])
            if f.shape != t.q.shape or f.dtype != np.dtype(t.dtype):
                raise ExecutionError(f"feed for node '{node}': {f.dtype} {f.shape}, the node's value is "
                                     f"{t.dtype} {t.q.shape}")
            q8, _ = to_int8_domain(f, 0, t.dtype)
            run.own[node] = t
            values[node] = QTensor(q8, t.scale, t.zero_point, t.dtype)
    for o in graph.outputs:
        run.outputs[o] = values[o].real()
    return run
