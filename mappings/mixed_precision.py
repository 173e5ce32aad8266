"""Per-layer weight and activation widths chosen by an ILP (HAWQ-V3 / OHQ style), on measured sensitivities.

A QDQ int8 network (:mod:`mappings.onnx_import`) is lowered layer by layer to narrower weights (8, 4, 2
bits) and narrower output activations (8, 4 bits); every lowered network is still an ordinary
:class:`~mappings.graph.LayerGraph` of int8-container values, so the executor, the cycle model and the RTL
run it unchanged and stay bit-exact with each other (the 8-bit datapath simply holds narrower values).
Then an integer program picks one width option per compute layer.

**Lowering** (:func:`lower_layer`, :func:`lower_graph`)

* Weights to ``wbits``: symmetric, per output channel, *narrow* range ``[-(2^(b-1)-1), 2^(b-1)-1]``
  (zero exactly representable, the sign symmetric, as HAWQ-V3 quantizes weights; 2 bits is ternary
  {-1, 0, 1}). The real weights ``q * scale`` of the int8 graph are requantized with the scale
  ``max|w_c| / (2^(b-1)-1)`` of each output channel (a zero channel keeps its scale); the int32 bias,
  whose scale is input scale x weight scale, is rescaled to the new weight scale. ``wbits=8`` leaves the
  imported weights as they are.
* The output activation to ``abits``: the int8 range of the tensor's own quantization (the real interval
  that q in -128..127 represents) is spread over ``2^abits`` levels: scale x 255 / (2^abits - 1), the
  zero point moved to the same real value (rounded to an integer, so real 0 stays exact: padding and
  fused ReLUs). The values occupy ``[-2^(abits-1), 2^(abits-1)-1]`` for an int8 tensor and
  ``[0, 2^abits-1]`` (native) for a uint8 one. The accelerator's requantization writes the layer's output
  with the new scale; the executor clamps a layer's output to the int8 range only (the ISA's
  ``clamp_lo``/``clamp_hi`` could clamp to the narrower range, but the executor sets them to -128..127),
  so the narrower range's saturation is an inserted host :class:`~mappings.graph.Clip` node,
  ``"<layer>/clip_a<abits>"``, with the same quantization: the network then computes exactly the
  fake-quantized abits activation. Every consumer sees the new scale: steps that only move values
  (MaxPool, Flatten, Reshape, Transpose, Slice, Pad, Resize, Gather) and share the old quantization take
  the new one, and the int32 bias of each Conv/Gemm reached is rescaled to its new input scale (Add,
  Concat, pooling and the other requantizing steps read real values and need nothing).

**Sensitivity** (:func:`measure_sensitivity`): per compute layer and option, that layer alone lowered,
the network's dequantized outputs on the calibration inputs against the int8 network's: the mean
squared error normalised by the int8 output's variance (pooled over the calibration inputs and the
output's elements; averaged over the graph's outputs). 0 means the same outputs, 1 an error as large as
the signal's spread. It runs on :func:`run_numpy`, a numpy execution of the graph bit-exact with the
executor (tests compare it with ``run_quantized`` on the cycle model) that recomputes only the lowered
layer and what lies downstream of it.

**Costs** (:func:`cost_table`): each compute layer's exact analytical counts (:mod:`sim.perf`, the plan
the executor runs) at each weight width, priced by :func:`datapath8_cost`. On a configuration with
``packed_weights`` a layer whose weights are 4 or 2 bits runs with them packed two to a byte
(:func:`mappings.network_map.packed_shape`, ``load target=w4``), so its W loads read half the host bytes
and take half the port beats: its counts are those of the packed layer, exactly as the executor runs it.
The array is 8-bit, so activations still take a byte each and the cycles of computes and stores do not
change; the MAC energy follows the operand widths, by the energy table's own rule (multiply
by operand-width product, add by accumulator width). A MAC's operands are the layer's weights and its
*input* activation, i.e. the output width of the compute layer that produced it (through value-moving
steps; 8 after a requantizing step), so the energy of a layer depends on its own option and on its
producer's: the table has a per-layer part and a per-(consumer, producer) part, which the ILP
linearises exactly. Latency depends on the weight width only through the packed loads.
``cost_table(..., layer_cost=...)`` is the seam for hardware that runs two 4-bit MACs per PE: it receives
the widths of both operands and of the output with the layer's counts.

**Choice** (:func:`choose_widths`, pulp with CBC): binaries ``x[l, o]``, one option per layer;
minimise the total cost (latency cycles or energy, :class:`Objective`) subject to the packed weight
bytes within the model-size budget and the summed sensitivities within the sensitivity budget (the
additive approximation of HAWQ-V3). :func:`brute_force_widths` enumerates the same problem for tests.
:func:`least_sensitivity` is the least summed sensitivity any choice within the size budget reaches (the
``hwgen precision`` default sensitivity budget: the most accurate choice that fits, the cheapest among
those). :func:`width_report` sets latency, energy and model size of a choice against all-int8.

**Check** (:func:`verify_lowered`): the lowered network on the cycle model and on Verilator, every node's
value against :func:`run_numpy` and every accelerator layer's cycles against the model's; the choice
travels as JSON (:func:`widths_to_json`, :func:`widths_from_json`) beside the int8 model it applies to.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence, Union

import networkx as nx
import numpy as np

from hwgen.cbc import solve_exact
from hwgen.config import AcceleratorConfig
from hwgen.energy_table import HOROWITZ_45NM, EnergyTable
from hwgen.errors import HwgenError
from hwgen.isa import requantize
from sim.energy import Energy, layer_energy
from sim.perf import LayerPerf

# The executor's own steps, so that run_numpy computes exactly what run_quantized does: the host steps, the
# quantization of an input, and the folding of zero points and scales into the per-channel table (no second
# implementation to drift from the first).
from .execute import QTensor, activation_quant, channel_requant, quant_of, requantize_on_host, run_on_host
from .graph import (Clip, Conv2d, Flatten, Gather, Gemm, Input, LayerGraph, MatMul, MaxPool, Pad, QuantParams,
                    Reshape, Resize, Slice, TensorInfo, Transpose)
from .mapper import executed_plan
from .network_map import executed_layer_shape, packed_shape

__all__ = [
    "MixedPrecisionError", "WidthBudgetError", "Objective", "WidthOption", "INT8", "DEFAULT_OPTIONS",
    "WEIGHT_BITS", "ACTIVATION_BITS", "lower_layer", "lower_graph", "widths_of", "applicable_options",
    "activation_producer", "NumpyRun", "run_numpy", "output_error", "SensitivityTable", "measure_sensitivity",
    "LayerCost", "LayerCostModel", "datapath8_cost", "CostTerms", "CostTable", "cost_table", "weight_bytes",
    "size_table", "Choice", "choose_widths", "least_sensitivity", "brute_force_widths", "LayerWidthRow",
    "WidthReport", "width_report", "WIDTHS_FORMAT", "widths_to_json", "widths_from_json", "BackendCheck",
    "verify_lowered",
]


class MixedPrecisionError(HwgenError, ValueError):
    """A layer that cannot be lowered or measured, or tables that do not fit together; names the layer."""


class WidthBudgetError(MixedPrecisionError):
    """No width choice meets the budgets. ``budget`` names the one that cannot be met ("model size" or
    "sensitivity"), ``limit`` is its value and ``least`` the least value achievable (within the other
    budget, when each alone could be met)."""

    def __init__(self, message: str, budget: str, limit: float, least: float):
        super().__init__(message)
        self.budget, self.limit, self.least = budget, limit, least


class Objective(enum.Enum):
    """What :func:`choose_widths` minimises."""

    LATENCY = "latency"  #: total cycles of the compute layers
    ENERGY = "energy"    #: total dynamic energy of the compute layers, picojoules


#: Weight widths the issue asks for, and activation widths.
WEIGHT_BITS = (8, 4, 2)
ACTIVATION_BITS = (8, 4)


@dataclass(frozen=True, order=True)
class WidthOption:
    """One layer's widths: weights (``wbits``) and its output activation (``abits``)."""

    wbits: int
    abits: int

    def __post_init__(self) -> None:
        if not (isinstance(self.wbits, int) and 2 <= self.wbits <= 8 and isinstance(self.abits, int)
                and 2 <= self.abits <= 8):
            raise MixedPrecisionError(f"width option w{self.wbits}a{self.abits}: weight and activation widths "
                                      f"must be whole numbers of bits from 2 to 8")

    def __str__(self) -> str:
        return f"w{self.wbits}a{self.abits}"


INT8 = WidthOption(8, 8)
#: Every combination of :data:`WEIGHT_BITS` and :data:`ACTIVATION_BITS`, all-int8 first.
DEFAULT_OPTIONS: tuple[WidthOption, ...] = tuple(WidthOption(w, a) for w in WEIGHT_BITS for a in ACTIVATION_BITS)

#: Host steps that move values without computing: they keep their input's quantization (the executor's
#: ``_same_values``), so a lowered activation's new quantization passes through them to the next layer.
_MOVING = (MaxPool, Flatten, Reshape, Transpose, Slice, Pad, Resize, Gather)
_COMPUTE = (Conv2d, Gemm, MatMul)
#: graph attribute recording the widths applied by lower_layer
_WIDTHS_KEY = "mixed_precision_widths"
#: relative tolerance of a budget test (the same in the ILP check and the enumeration)
_BUDGET_TOL = 1e-9


# -------------------------------------------------------------------------------------------- lowering
def _copy_graph(graph: LayerGraph) -> LayerGraph:
    """A new graph with its own structure, tensors and outputs; the layer objects are shared until replaced
    (lowering replaces a layer with a modified copy, never mutates one)."""
    new = LayerGraph(graph.name)
    new.g = graph.g.copy()
    new.g.graph = dict(graph.g.graph)
    new.outputs = list(graph.outputs)
    new.shapes = dict(graph.shapes)
    new.tensors = dict(graph.tensors)
    return new


def widths_of(graph: LayerGraph) -> dict[str, WidthOption]:
    """The widths :func:`lower_layer` applied to ``graph`` so far, by layer (the layers not named are int8)."""
    return dict(graph.g.graph.get(_WIDTHS_KEY, {}))


def applicable_options(graph: LayerGraph, layer_name: str, options: Iterable[WidthOption]) -> list[WidthOption]:
    """The options that mean something for ``layer_name``: a MatMul of two activations has no weights, so
    only its ``wbits=8`` options."""
    layer = graph.layer(layer_name)
    return [o for o in options if not (isinstance(layer, MatMul) and o.wbits != 8)]


def _check_compute(graph: LayerGraph, layer_name: str) -> None:
    if layer_name not in graph.g:
        raise MixedPrecisionError(f"graph '{graph.name}': no layer '{layer_name}'")
    layer = graph.layer(layer_name)
    if not isinstance(layer, _COMPUTE):
        raise MixedPrecisionError(f"graph '{graph.name}', layer '{layer_name}' ({layer.kind}): only Conv2d, Gemm "
                                  f"and MatMul layers have widths to choose")


def _same_quant(a: QuantParams | None, b: QuantParams | None) -> bool:
    """The executor's test for a moving step that keeps its input's quantization."""
    if a is None or b is None or a.dtype != b.dtype or a.per_channel or b.per_channel:
        return False
    sa, sb = float(np.asarray(a.scale).reshape(-1)[0]), float(np.asarray(b.scale).reshape(-1)[0])
    za, zb = int(np.asarray(a.zero_point).reshape(-1)[0]), int(np.asarray(b.zero_point).reshape(-1)[0])
    return bool(np.isclose(sa, sb)) and za == zb


def _int32(values: np.ndarray, what: str) -> np.ndarray:
    q = np.rint(values)
    if q.size and np.abs(q).max() >= 2 ** 31:
        raise MixedPrecisionError(f"{what}: the rescaled bias exceeds int32 (|bias| up to {np.abs(q).max():.0f})")
    return q.astype(np.int32)


def _lower_weights(g: LayerGraph, name: str, wbits: int) -> None:
    layer = g.layer(name)
    where = f"graph '{g.name}', layer '{name}' ({layer.kind})"
    if isinstance(layer, MatMul):
        raise MixedPrecisionError(f"{where}: a MatMul of two activations has no weights to lower to {wbits} bits")
    if layer.weight is None or layer.weight_quant is None or not np.issubdtype(np.asarray(layer.weight).dtype,
                                                                              np.integer):
        raise MixedPrecisionError(f"{where}: needs quantized integer weights (an int8 QDQ model)")
    wq = layer.weight_quant
    if np.any(np.asarray(wq.zero_point) != 0):
        raise MixedPrecisionError(f"{where}: weight zero points must be 0 (symmetric weights)")
    axis = 0 if isinstance(layer, Conv2d) else 1  # output channels: O of OIHW, out of the [in, out] Gemm weight
    w = np.asarray(layer.weight)
    n_out = w.shape[axis]
    bshape = [1] * w.ndim
    bshape[axis] = n_out
    s_old = np.broadcast_to(np.asarray(wq.scale, np.float64).reshape(-1), (n_out,))
    real = w.astype(np.float64) * s_old.reshape(bshape)
    other = tuple(a for a in range(w.ndim) if a != axis)
    peak = np.abs(real).max(axis=other) if other else np.abs(real)
    qmax = (1 << (wbits - 1)) - 1
    s_new = np.where(peak > 0, peak / qmax, s_old).astype(np.float32)
    q = np.clip(np.rint(real / s_new.astype(np.float64).reshape(bshape)), -qmax, qmax).astype(np.int8)
    bias = layer.bias
    if bias is not None:
        bias = _int32(np.asarray(bias, np.float64) * s_old / s_new.astype(np.float64), where)
    g.g.nodes[name]["layer"] = dataclasses.replace(
        layer, weight=q, bias=bias,
        weight_quant=QuantParams(s_new, np.zeros(n_out, np.int64), "int8", axis))


def _unique(g: LayerGraph, base: str) -> str:
    name, k = base, 1
    while name in g.g:
        k += 1
        name = f"{base}.{k}"
    return name


def _rescale_input(g: LayerGraph, src: str, old: QuantParams, new: QuantParams) -> None:
    """Give every consumer reached from ``src`` (whose values now carry ``new``) the new input scale: moving
    steps that shared ``old`` take ``new``; a Conv/Gemm's int32 bias (input scale x weight scale) is
    rescaled; the requantizing steps read real values and need nothing."""
    factor = float(np.asarray(old.scale).reshape(-1)[0]) / float(np.asarray(new.scale).reshape(-1)[0])
    stack = [src]
    while stack:
        n = stack.pop()
        for c in g.g.successors(n):
            layer = g.layer(c)
            t = g.tensors.get(c)
            if isinstance(layer, _MOVING) and t is not None and _same_quant(t.quant, old):
                g.tensors[c] = dataclasses.replace(t, quant=new)
                stack.append(c)
            elif isinstance(layer, (Conv2d, Gemm)) and layer.bias is not None:
                where = f"graph '{g.name}', layer '{c}' ({layer.kind}), input from '{n}'"
                g.g.nodes[c]["layer"] = dataclasses.replace(
                    layer, bias=_int32(np.asarray(layer.bias, np.float64) * factor, where))


def _lower_activation(g: LayerGraph, name: str, abits: int) -> None:
    t = g.tensors.get(name)
    where = f"graph '{g.name}', layer '{name}' ({g.layer(name).kind})"
    if t is None or t.quant is None:
        raise MixedPrecisionError(f"{where}: the output has no quantization parameters (an int8 QDQ model?)")
    old = t.quant
    scale, z8, dtype = activation_quant(old, name)  # per tensor, int8 or uint8; zero point in the int8 domain
    levels = (1 << abits) - 1
    lo = -128 if dtype == "uint8" else -(1 << (abits - 1))  # int8 domain: native [0, levels] or signed abits
    hi = lo + levels
    s_new = np.float32(float(scale) * 255.0 / levels)
    z_new = int(min(max(lo + round((z8 + 128) * levels / 255), lo), hi))  # the same real value at q = lo
    z_native = z_new + 128 if dtype == "uint8" else z_new
    new = QuantParams(np.asarray(s_new, np.float32).reshape(np.shape(old.scale)),
                      np.asarray(z_native, np.asarray(old.zero_point).dtype).reshape(np.shape(old.zero_point)),
                      old.dtype, None)
    g.tensors[name] = dataclasses.replace(t, quant=new)
    consumers = [(c, g.g.edges[name, c]["port"]) for c in list(g.g.successors(name))]
    clip = _unique(g, f"{name}/clip_a{abits}")
    # the clip bounds are the dequantized end values (the executor's own float32 arithmetic), so the
    # clipped values quantize back to exactly lo and hi
    lo_real = float(np.float32(lo - z_new) * s_new)
    hi_real = float(np.float32(hi - z_new) * s_new)
    g.add(clip, Clip(min=lo_real, max=hi_real), [name], TensorInfo(clip, tuple(t.shape), t.dtype, new))
    for c, port in consumers:
        g.g.remove_edge(name, c)
        g.g.add_edge(clip, c, port=port)
    g.outputs = [clip if o == name else o for o in g.outputs]
    _rescale_input(g, clip, old, new)


def lower_layer(graph: LayerGraph, layer_name: str, wbits: int, abits: int) -> LayerGraph:
    """A new, validated graph in which compute layer ``layer_name`` has ``wbits`` weights and an ``abits``
    output activation (see the module docstring); ``graph`` is not changed. 8 keeps the int8 form.

    Lower the int8 graph (or a graph lowered at *other* layers): a layer is lowered at most once, since
    its activation's narrower range is derived from the int8 one. Raises :class:`MixedPrecisionError`
    naming the layer: not a compute layer, a MatMul's (absent) weights, weights or output without
    quantization, a bias that no longer fits int32, or a layer already lowered."""
    opt = WidthOption(int(wbits), int(abits))
    _check_compute(graph, layer_name)
    done = widths_of(graph)
    if layer_name in done:
        raise MixedPrecisionError(f"graph '{graph.name}', layer '{layer_name}': already lowered to {done[layer_name]}; "
                                  f"lower the int8 graph once per layer, with both widths")
    if not graph.shapes:
        graph.validate()
    g = _copy_graph(graph)
    if opt.wbits < 8:
        _lower_weights(g, layer_name, opt.wbits)
    if opt.abits < 8:
        _lower_activation(g, layer_name, opt.abits)
    g.g.graph[_WIDTHS_KEY] = {**done, layer_name: opt}
    return g.validate()


def lower_graph(graph: LayerGraph, widths: Mapping[str, WidthOption]) -> LayerGraph:
    """``graph`` with every layer of ``widths`` lowered (:func:`lower_layer`; int8 entries change nothing)."""
    g = graph
    for name, opt in widths.items():
        if opt != INT8:
            g = lower_layer(g, name, opt.wbits, opt.abits)
    return g if g is not graph else _copy_graph(graph).validate()


def activation_producer(graph: LayerGraph, layer_name: str) -> str | None:
    """The compute layer whose output values ``layer_name`` multiplies (its first input, through steps that
    only move values and keep the quantization), or None when a requantizing step or the graph input
    comes first: then the operand is int8 whatever the other layers' widths."""
    _check_compute(graph, layer_name)
    n = graph.inputs_of(layer_name)[0]
    while True:
        layer = graph.layer(n)
        if isinstance(layer, _COMPUTE):
            return n
        if not isinstance(layer, _MOVING):
            return None
        src = graph.inputs_of(n)[0]
        t, ts = graph.tensors.get(n), graph.tensors.get(src)
        if t is None or ts is None or not _same_quant(t.quant, ts.quant):
            return None
        n = src


# ----------------------------------------------------------------------------------- numpy execution
@dataclass
class NumpyRun:
    """Every node's value (int8-domain :class:`~mappings.execute.QTensor`, or float32 where the model
    leaves a value unquantized) and the graph outputs dequantized, in ``graph.outputs`` order."""

    values: dict[str, object]
    outputs: list[np.ndarray]


def _requantized(acc: np.ndarray, quant) -> np.ndarray:
    """The accelerator's store of int64 accumulators, channels on the last axis (hwgen.isa.requantize)."""
    y = requantize(acc + np.asarray(quant.bias, np.int64), np.asarray(quant.multiplier, np.int64),
                   np.asarray(quant.shift, np.int64), quant.zero_point, quant.clamp_lo, quant.clamp_hi, quant.relu)
    return y.astype(np.int8)


def _exact(acc: np.ndarray) -> np.ndarray:
    """float64 accumulators to int64: exact, every partial sum of int8-domain products (|x - z| <= 255,
    |w| <= 128, reductions far below 2^36) being an integer below 2^53."""
    return np.rint(acc).astype(np.int64)


def _conv_acc(q: np.ndarray, layer: Conv2d, pad_value: int) -> np.ndarray:
    """Accumulators [N, OH, OW, O] of the convolution of int8-domain ``q`` [N, C, H, W], padded with the
    input zero point (as the executor pads)."""
    n, c, h, w = q.shape
    pt, pl, pb, pr = layer.pads
    kh, kw = layer.kernel
    sh, sw = layer.stride
    dh, dw = layer.dilation
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(q.astype(np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=float(pad_value))
    cols = np.stack([xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                     for i in range(kh) for j in range(kw)], axis=2)  # N, C, KH*KW, OH, OW
    g = layer.groups
    if g == 1:  # one matrix product (BLAS)
        w2 = np.asarray(layer.weight, np.float64).reshape(layer.out_channels, c * kh * kw)
        return _exact(np.tensordot(cols.reshape(n, c * kh * kw, oh, ow), w2, axes=([1], [1])))
    cg, og = c // g, layer.out_channels // g
    cols = cols.reshape(n, g, cg, kh * kw, oh, ow)
    wg = np.asarray(layer.weight, np.float64).reshape(g, og, cg, kh * kw)
    acc = np.einsum("ngckhw,gock->nhwgo", cols, wg, optimize=True)
    return _exact(acc.reshape(n, oh, ow, layer.out_channels))


#: ChannelQuant of a (layer object, input quantization, output quantization), kept across runs: measuring
#: sensitivity runs each lowered graph on every calibration input, and the per-channel multipliers are the
#: costliest part of a small layer. The layer object is kept in the entry, so its id cannot be reused.
_QUANT_CACHE: dict[tuple, tuple[object, object]] = {}
_QUANT_CACHE_SIZE = 4096


def _cached_quant(layer, x: QTensor, out_scale, out_zp: int, node: str, make: Callable[[], object]):
    key = (id(layer), node, float(x.scale), int(x.zero_point), float(out_scale), int(out_zp))
    hit = _QUANT_CACHE.get(key)
    if hit is not None and hit[0] is layer:
        return hit[1]
    if len(_QUANT_CACHE) >= _QUANT_CACHE_SIZE:
        _QUANT_CACHE.clear()
    quant = make()
    _QUANT_CACHE[key] = (layer, quant)
    return quant


def _compute_layer(graph: LayerGraph, node: str, ins: list) -> QTensor:
    """A Conv2d, Gemm or MatMul as the accelerator computes it: the executor's per-channel table (zero
    points folded into the bias, scales into multiplier and shift), exact accumulators, the store's
    requantization."""
    layer = graph.layer(node)
    out_scale, out_zp, out_dtype = activation_quant(quant_of(graph, node), node)
    x = ins[0]
    if not isinstance(x, QTensor):
        raise MixedPrecisionError(f"node '{node}': its input is not quantized (an int8 QDQ model quantizes it)")
    if isinstance(layer, MatMul):
        b = ins[1]
        if not isinstance(b, QTensor):
            raise MixedPrecisionError(f"node '{node}': MatMul's second operand is not quantized")
        m, k = x.q.shape[-2:]
        nn = b.q.shape[-1]
        wq = QuantParams(np.asarray(b.scale, np.float32), np.zeros((), np.int64))
        outs = []
        for a2, b2 in zip(x.q.reshape(-1, m, k), b.q.reshape(-1, k, nn)):
            centred = b2.astype(np.int64) - b.zero_point
            quant = channel_requant(x, centred, None, wq, out_scale, out_zp, nn, centred.sum(axis=0), node)
            outs.append(_requantized(_exact(a2.astype(np.float64) @ centred.astype(np.float64)), quant))
        q = np.stack(outs).reshape(graph.shapes[node])
    else:
        if layer.weight is None or not np.issubdtype(np.asarray(layer.weight).dtype, np.integer):
            raise MixedPrecisionError(f"node '{node}': needs integer (quantized) weights")
        w = np.asarray(layer.weight).astype(np.int64)
        if isinstance(layer, Conv2d):
            o = layer.out_channels
            quant = _cached_quant(layer, x, out_scale, out_zp, node, lambda: channel_requant(
                x, w, layer.bias, layer.weight_quant, out_scale, out_zp, o, w.reshape(o, -1).sum(axis=1), node))
            q = np.transpose(_requantized(_conv_acc(x.q, layer, x.zero_point), quant), (0, 3, 1, 2))
        else:
            quant = _cached_quant(layer, x, out_scale, out_zp, node, lambda: channel_requant(
                x, w, layer.bias, layer.weight_quant, out_scale, out_zp, layer.out_features, w.sum(axis=0), node))
            a = x.q.reshape(-1, layer.in_features).astype(np.float64)
            q = _requantized(_exact(a @ w.astype(np.float64)), quant).reshape(graph.shapes[node])
    return QTensor(np.ascontiguousarray(q), out_scale, out_zp, out_dtype)


def run_numpy(graph: LayerGraph, inputs: Mapping[str, np.ndarray] | np.ndarray,
              reuse: Mapping[str, object] | None = None, changed: Iterable[str] = ()) -> NumpyRun:
    """Execute a quantized ``graph`` on float ``inputs`` (one array, or by Input node name) with numpy,
    computing the values :func:`mappings.execute.run_quantized` computes (the accelerator layers' integer
    arithmetic, the executor's own host steps) in a fraction of the time, and without simulating
    anything: no cycles, no configuration limits.

    ``reuse``: the values of a run of a graph that differs from this one only at the nodes ``changed`` and
    downstream of them; every other node's value is taken from it (what sensitivity measurement needs:
    one lowered layer, the network before it unchanged)."""
    if not graph.shapes:
        graph.validate()
    gin = graph.graph_inputs
    if not isinstance(inputs, Mapping):
        if len(gin) != 1:
            raise MixedPrecisionError(f"graph '{graph.name}' has {len(gin)} inputs ({', '.join(gin)}): pass a dict")
        inputs = {gin[0]: inputs}
    redo: set[str] | None = None
    if reuse is not None:
        redo = set()
        for c in changed:
            if c not in graph.g:
                raise MixedPrecisionError(f"graph '{graph.name}': changed node '{c}' is not a node")
            redo |= {c} | nx.descendants(graph.g, c)
    values: dict[str, object] = {}
    for node in graph.order():
        if redo is not None and node not in redo and node in reuse:
            values[node] = reuse[node]
            continue
        layer = graph.layer(node)
        if isinstance(layer, Input):
            if node not in inputs:
                raise MixedPrecisionError(f"graph '{graph.name}': no value for input '{node}'")
            x = np.asarray(inputs[node])
            if x.shape != graph.shapes[node] or not np.issubdtype(x.dtype, np.floating) or not np.all(np.isfinite(x)):
                raise MixedPrecisionError(f"input '{node}': {x.dtype} {x.shape}, the model expects finite float32 "
                                          f"{graph.shapes[node]}")
            values[node] = requantize_on_host(x.astype(np.float32), graph, node)
        elif isinstance(layer, _COMPUTE):
            values[node] = _compute_layer(graph, node, [values[i] for i in graph.inputs_of(node)])
        else:
            values[node] = run_on_host(graph, node, [values[i] for i in graph.inputs_of(node)])
    return NumpyRun(values, [np.asarray(values[o].real(), np.float32) for o in graph.outputs])


# ---------------------------------------------------------------------------------------- sensitivity
def output_error(reference: Sequence[Sequence[np.ndarray]], other: Sequence[Sequence[np.ndarray]],
                 what: str = "output") -> float:
    """The normalised mean squared error of :func:`measure_sensitivity`: per graph output, sum over the
    inputs of ||other - reference||^2 over the sum of ||reference - its mean||^2 (the mean over every
    input and element), averaged over the outputs. ``reference[i][k]``: output k on input i."""
    if not reference or len(reference) != len(other):
        raise MixedPrecisionError(f"{what}: {len(other)} runs against {len(reference)} reference runs")
    errs = []
    for k in range(len(reference[0])):
        ref = np.stack([np.asarray(r[k], np.float64) for r in reference])
        got = np.stack([np.asarray(r[k], np.float64) for r in other])
        var = float(((ref - ref.mean()) ** 2).sum())
        if var == 0.0:
            raise MixedPrecisionError(f"{what}: graph output {k} is constant over the {len(reference)} calibration "
                                      f"input(s), so its normalised error is undefined; use more or other inputs")
        errs.append(float(((got - ref) ** 2).sum()) / var)
    return float(np.mean(errs))


@dataclass(frozen=True)
class SensitivityTable:
    """Measured sensitivities, ``values[layer][option]`` (:func:`output_error` of that layer alone lowered),
    with the number of calibration inputs and the measurement's wall time."""

    values: dict[str, dict[WidthOption, float]]
    inputs: int
    seconds: float
    metric: str = ("normalised MSE of the dequantized outputs vs all-int8: sum |y - y8|^2 / sum |y8 - mean(y8)|^2 "
                   "over the calibration inputs, averaged over the graph outputs")


def measure_sensitivity(graph: LayerGraph, calib_inputs: Sequence[Mapping[str, np.ndarray] | np.ndarray],
                        options: Sequence[WidthOption] = DEFAULT_OPTIONS,
                        layers: Sequence[str] | None = None) -> SensitivityTable:
    """For each compute layer (``layers``, default all) and each applicable option, the network output error
    when that layer alone is lowered (see the module docstring), on ``calib_inputs`` with :func:`run_numpy`.
    The all-int8 option is measured like the others (its lowered graph is the int8 graph: error 0)."""
    if not calib_inputs:
        raise MixedPrecisionError("measure_sensitivity: no calibration inputs")
    t0 = time.perf_counter()
    names = list(graph.compute_layers() if layers is None else layers)
    for n in names:
        _check_compute(graph, n)
    base = [run_numpy(graph, x) for x in calib_inputs]
    ref = [r.outputs for r in base]
    values: dict[str, dict[WidthOption, float]] = {}
    for n in names:
        row: dict[WidthOption, float] = {}
        for opt in applicable_options(graph, n, options):
            low = lower_layer(graph, n, opt.wbits, opt.abits)
            runs = [run_numpy(low, x, reuse=b.values, changed=[n]).outputs for x, b in zip(calib_inputs, base)]
            row[opt] = output_error(ref, runs, f"graph '{graph.name}', layer '{n}' at {opt}")
        values[n] = row
    return SensitivityTable(values, len(calib_inputs), time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------- costs
@dataclass(frozen=True)
class LayerCost:
    """One layer's cycles and energy at given operand widths."""

    cycles: int
    energy: Energy


#: ``(cfg, perf, a_bits, w_bits, out_bits) -> LayerCost``: the price of a layer whose exact int8 counts are
#: ``perf`` when its A operand (input activation) has ``a_bits``, its W operand ``w_bits`` and its output
#: ``out_bits``. The seam for hardware that exploits narrow values (packed int4 loads and stores, two 4-bit
#: MACs per PE): such a model changes the counts it is given.
LayerCostModel = Callable[[AcceleratorConfig, LayerPerf, int, int, int], LayerCost]


def datapath8_cost(cfg: AcceleratorConfig, perf: LayerPerf, a_bits: int, w_bits: int, out_bits: int,
                   table: EnergyTable = HOROWITZ_45NM) -> LayerCost:
    """Today's accelerator: an 8-bit datapath. Cycles, scratchpad, accumulator, quantization-table and
    host counts are ``perf``'s, the layer as the executor runs it at ``w_bits`` (packed 4-bit weight loads
    where the configuration has them, :func:`cost_table`; a narrower activation still occupies a byte, so
    ``out_bits`` changes nothing); the MAC energy follows the operand widths by the table's rule, i.e. it
    assumes a multiplier whose energy scales with the widths of the values it multiplies. With both
    operands at the configuration's widths it is :func:`sim.energy.layer_energy` exactly."""
    e = layer_energy(cfg, perf, table)
    a, w = min(a_bits, cfg.input_width), min(w_bits, cfg.weight_width)
    return LayerCost(perf.cycles, dataclasses.replace(e, mac=perf.busy_pe * table.mac_pj(a, w, cfg.acc_width)))


@dataclass(frozen=True)
class CostTerms:
    """A separable cost plus consumer-producer interactions: the total of a choice ``c`` is
    ``sum_l own[l][c[l]] + sum_(l, p) pairs[(l, p)][(c[l], c[p])]`` (missing pair entries are 0)."""

    own: dict[str, dict[WidthOption, float]]
    pairs: dict[tuple[str, str], dict[tuple[WidthOption, WidthOption], float]] = field(default_factory=dict)

    def total(self, choice: Mapping[str, WidthOption]) -> float:
        return (sum(tab[choice[n]] for n, tab in self.own.items())
                + sum(tab.get((choice[c], choice[p]), 0.0) for (c, p), tab in self.pairs.items()))

    def layer(self, choice: Mapping[str, WidthOption], name: str) -> float:
        """Layer ``name``'s cost under ``choice`` (its own part and its pairs with its producer)."""
        v = self.own[name][choice[name]]
        for (c, p), tab in self.pairs.items():
            if c == name:
                v += tab.get((choice[c], choice[p]), 0.0)
        return v


@dataclass(frozen=True)
class CostTable:
    """Per layer and option: cycles and energy (picojoules), from the exact model on ``config``; ``model``
    describes how widths are priced."""

    cycles: CostTerms
    energy_pj: CostTerms
    config: str
    model: str

    def terms(self, objective: Objective) -> CostTerms:
        return self.cycles if objective is Objective.LATENCY else self.energy_pj


def _layer_perf(cfg: AcceleratorConfig, graph: LayerGraph, node: str, dataflow: str | None,
                wbits: int = 8) -> LayerPerf:
    """The exact counts of ``node`` as the executor runs it (every repeat: images, MatMul batches) with its
    weights lowered to ``wbits`` (4 or fewer: packed where ``cfg`` can, :func:`packed_shape`)."""
    _, run_shape, repeat = executed_layer_shape(cfg, graph, node)
    if wbits <= 4 and not isinstance(graph.layer(node), MatMul):
        run_shape = packed_shape(cfg, run_shape, cfg.packed_weights)
    perf = executed_plan(cfg, run_shape, dataflow)[1]
    total = perf
    for _ in range(repeat - 1):
        total = total + perf
    return total


def cost_table(cfg: AcceleratorConfig, graph: LayerGraph, options: Sequence[WidthOption] = DEFAULT_OPTIONS,
               layer_cost: LayerCostModel = datapath8_cost, dataflow: str | None = None) -> CostTable:
    """Cycles and energy of every compute layer of (the int8) ``graph`` for each applicable option on ``cfg``:
    the plan the executor runs (:func:`mappings.mapper.executed_plan`), priced by ``layer_cost`` with the
    layer's weight width, its output width and the input width its :func:`activation_producer` chooses
    (that dependence is the table's ``pairs``). A MatMul's W operand is taken as 8 bits (its zero-point
    fill rows are int8 values)."""
    if not graph.shapes:
        graph.validate()
    own_c: dict[str, dict[WidthOption, float]] = {}
    own_e: dict[str, dict[WidthOption, float]] = {}
    pairs_c: dict[tuple[str, str], dict[tuple[WidthOption, WidthOption], float]] = {}
    pairs_e: dict[tuple[str, str], dict[tuple[WidthOption, WidthOption], float]] = {}
    for n in graph.compute_layers():
        mine = applicable_options(graph, n, options)
        is_mm = isinstance(graph.layer(n), MatMul)
        perfs = {w: _layer_perf(cfg, graph, n, dataflow, w) for w in {8 if is_mm else o.wbits for o in mine}}

        def price(o: WidthOption, a_bits: int) -> LayerCost:
            w = 8 if is_mm else o.wbits
            return layer_cost(cfg, perfs[w], a_bits, w, o.abits)

        base = {o: price(o, 8) for o in mine}
        own_c[n] = {o: float(c.cycles) for o, c in base.items()}
        own_e[n] = {o: c.energy.total_pj for o, c in base.items()}
        p = activation_producer(graph, n)
        if p is None:
            continue
        for o in mine:
            for op in applicable_options(graph, p, options):
                if op.abits == 8:
                    continue
                c = price(o, op.abits)
                dc, de = float(c.cycles) - own_c[n][o], c.energy.total_pj - own_e[n][o]
                if dc:
                    pairs_c.setdefault((n, p), {})[(o, op)] = dc
                if de:
                    pairs_e.setdefault((n, p), {})[(o, op)] = de
    model = getattr(layer_cost, "__name__", str(layer_cost))
    return CostTable(CostTerms(own_c, pairs_c), CostTerms(own_e, pairs_e), cfg.name, model)


def weight_bytes(graph: LayerGraph, layer_name: str, wbits: int) -> int:
    """Bytes of the layer's weights at ``wbits``, packed (``ceil(count * wbits / 8)``; a MatMul has none).
    Biases and scales are not counted: they are the same for every option."""
    _check_compute(graph, layer_name)
    layer = graph.layer(layer_name)
    if isinstance(layer, MatMul):
        return 0
    if isinstance(layer, Conv2d):
        count = layer.out_channels * (layer.in_channels // layer.groups) * layer.kernel[0] * layer.kernel[1]
    else:
        count = layer.in_features * layer.out_features
    return -(-count * int(wbits) // 8)


def size_table(graph: LayerGraph, options: Sequence[WidthOption] = DEFAULT_OPTIONS,
               layers: Sequence[str] | None = None) -> dict[str, dict[WidthOption, int]]:
    """:func:`weight_bytes` per compute layer (``layers``, default all) and applicable option."""
    names = graph.compute_layers() if layers is None else list(layers)
    return {n: {o: weight_bytes(graph, n, o.wbits) for o in applicable_options(graph, n, options)} for n in names}


# -------------------------------------------------------------------------------------------- choice
Table = Mapping[str, Mapping[WidthOption, float]]
CostInput = Union[CostTable, CostTerms, Table]


@dataclass(frozen=True)
class Choice:
    """The chosen option per layer with its totals: cost (cycles or picojoules, per ``objective``), packed
    weight bytes and summed sensitivity, the budgets, the solver's status and time; ``optima``: how many
    choices reach the optimum (counted by :func:`brute_force_widths`; None from the ILP)."""

    widths: dict[str, WidthOption]
    objective: Objective
    cost: float
    size_bytes: float
    sensitivity: float
    size_budget: float
    sensitivity_budget: float
    status: str
    seconds: float
    optima: int | None = None


@dataclass
class _Problem:
    layers: list[str]
    allowed: dict[str, list[WidthOption]]
    terms: CostTerms
    size: Table
    sens: Table
    size_budget: float
    sens_budget: float
    objective: Objective


def _prepare(layers: Sequence[str], options, cost: CostInput, size: Table, sensitivity, size_budget: float,
             sensitivity_budget: float, objective: Objective) -> _Problem:
    if not isinstance(objective, Objective):
        raise MixedPrecisionError(f"objective must be an Objective ({', '.join(o.name for o in Objective)}), "
                                  f"not {objective!r}")
    sens = sensitivity.values if isinstance(sensitivity, SensitivityTable) else sensitivity
    if isinstance(cost, CostTable):
        terms = cost.terms(objective)
    elif isinstance(cost, CostTerms):
        terms = cost
    else:
        terms = CostTerms({n: dict(cost[n]) for n in cost})
    names = list(layers)
    if not names or len(set(names)) != len(names):
        raise MixedPrecisionError(f"layers must be distinct and at least one, got {names}")
    for what, b in (("model size", size_budget), ("sensitivity", sensitivity_budget)):
        if not math.isfinite(float(b)):
            raise MixedPrecisionError(f"{what} budget {b} is not a finite number")
    allowed: dict[str, list[WidthOption]] = {}
    for n in names:
        opts = options.get(n, ()) if isinstance(options, Mapping) else options
        if n not in sens:
            raise MixedPrecisionError(f"layer '{n}': no sensitivity row")
        mine = [o for o in dict.fromkeys(opts) if o in sens[n]]
        if not mine:
            raise MixedPrecisionError(f"layer '{n}': none of the options {[str(o) for o in opts]} has a sensitivity")
        for o in mine:
            for what, tab in (("cost", terms.own), ("size", size)):
                if n not in tab or o not in tab[n]:
                    raise MixedPrecisionError(f"layer '{n}': no {what} for option {o}")
                if not math.isfinite(float(tab[n][o])):
                    raise MixedPrecisionError(f"layer '{n}': {what} of option {o} is {tab[n][o]}")
            if not math.isfinite(float(sens[n][o])):
                raise MixedPrecisionError(f"layer '{n}': sensitivity of option {o} is {sens[n][o]}")
        allowed[n] = mine
    pairs = {k: v for k, v in terms.pairs.items() if k[0] in allowed and k[1] in allowed}
    own = {n: {o: float(terms.own[n][o]) for o in allowed[n]} for n in names}
    return _Problem(names, allowed, CostTerms(own, pairs), size, sens, float(size_budget), float(sensitivity_budget),
                    objective)


def _fits(total: float, budget: float) -> bool:
    return total <= budget + _BUDGET_TOL * max(1.0, abs(budget))


def _totals(pb: _Problem, choice: Mapping[str, WidthOption]) -> tuple[float, float, float]:
    cost = pb.terms.total(choice)
    return (cost, float(sum(pb.size[n][choice[n]] for n in pb.layers)),
            float(sum(pb.sens[n][choice[n]] for n in pb.layers)))


def _budget_error(pb: _Problem, least_sens_within_size: Callable[[], float]) -> WidthBudgetError:
    """The error for an infeasible problem: the budget that cannot be met and the least achievable value."""
    min_size = float(sum(min(pb.size[n][o] for o in pb.allowed[n]) for n in pb.layers))
    if not _fits(min_size, pb.size_budget):
        return WidthBudgetError(f"model size budget {pb.size_budget:g} bytes cannot be met: the least achievable "
                                f"model size is {min_size:g} bytes (every layer at its narrowest weights)",
                                "model size", pb.size_budget, min_size)
    min_sens = float(sum(min(pb.sens[n][o] for o in pb.allowed[n]) for n in pb.layers))
    if not _fits(min_sens, pb.sens_budget):
        return WidthBudgetError(f"sensitivity budget {pb.sens_budget:g} cannot be met: the least achievable "
                                f"sensitivity is {min_sens:g} (every layer at its least sensitive option)",
                                "sensitivity", pb.sens_budget, min_sens)
    least = least_sens_within_size()
    return WidthBudgetError(f"sensitivity budget {pb.sens_budget:g} cannot be met within the model size budget of "
                            f"{pb.size_budget:g} bytes: the least achievable sensitivity within it is {least:g}",
                            "sensitivity", pb.sens_budget, least)


def _solve(pb: _Problem, minimise: str, time_limit: float | None) -> tuple[dict[str, WidthOption] | None, str]:
    """One CBC solve: ``minimise`` "cost" (within both budgets) or "sensitivity" (within the size budget).
    Returns (choice or None, status); a choice CBC's tolerances let over a budget is cut off and the model
    solved again, so the result meets the budgets by :func:`_fits`, as the enumeration does."""
    import pulp

    prob = pulp.LpProblem("widths", pulp.LpMinimize)
    x = {n: {o: prob.add_variable(f"x_{i}_{j}", cat="Binary") for j, o in enumerate(pb.allowed[n])}
         for i, n in enumerate(pb.layers)}
    for n in pb.layers:
        prob += pulp.lpSum(x[n].values()) == 1
    prob += pulp.lpSum(float(pb.size[n][o]) * v for n in pb.layers for o, v in x[n].items()) <= pb.size_budget
    sens_expr = pulp.lpSum(float(pb.sens[n][o]) * v for n in pb.layers for o, v in x[n].items())
    if minimise == "cost":
        # the row scaled to a right-hand side of 1, so that CBC's absolute tolerance is a relative one
        norm = abs(pb.sens_budget) if abs(pb.sens_budget) > 1e-12 else 1.0
        prob += pulp.lpSum(float(pb.sens[n][o]) / norm * v for n in pb.layers for o, v in x[n].items()) \
            <= pb.sens_budget / norm
        obj = [pb.terms.own[n][o] * v for n in pb.layers for o, v in x[n].items()]
        k = 0
        for (c, p), tab in pb.terms.pairs.items():
            for (oc, op), val in tab.items():
                if oc not in x[c] or op not in x[p] or val == 0:
                    continue
                y = prob.add_variable(f"y_{k}", lowBound=0, upBound=1)  # y = x[c, oc] * x[p, op], exactly
                k += 1
                prob += y <= x[c][oc]
                prob += y <= x[p][op]
                prob += y >= x[c][oc] + x[p][op] - 1
                obj.append(val * y)
        prob += pulp.lpSum(obj)
    else:
        prob += sens_expr
    for _ in range(64):
        status = solve_exact(prob, time_limit)
        if status != "Optimal":
            return None, status
        choice = {n: max(x[n], key=lambda o: x[n][o].value() or 0) for n in pb.layers}
        _, size, sens = _totals(pb, choice)
        if _fits(size, pb.size_budget) and (minimise != "cost" or _fits(sens, pb.sens_budget)):
            return choice, status
        prob += pulp.lpSum(x[n][choice[n]] for n in pb.layers) <= len(pb.layers) - 1  # cut this choice off
    raise MixedPrecisionError("the ILP kept returning choices over a budget (numerical trouble)")


def choose_widths(layers: Sequence[str], options: Sequence[WidthOption] | Mapping[str, Sequence[WidthOption]],
                  cost: CostInput, size: Table, sensitivity: Table | SensitivityTable, size_budget: float,
                  sensitivity_budget: float, objective: Objective = Objective.ENERGY,
                  time_limit: float | None = None) -> Choice:
    """One option per layer of least total cost within both budgets, by ILP (pulp, CBC; see the module
    docstring). ``options``: for every layer, or per layer; a layer takes those of its options that its
    sensitivity row has. ``cost``: a :class:`CostTable` (``objective`` selects cycles or energy), a
    :class:`CostTerms`, or a plain table ``cost[layer][option]``; ``size[layer][option]`` in bytes.

    Raises :class:`WidthBudgetError` naming the budget and the least achievable value when no choice
    meets the budgets, :class:`MixedPrecisionError` for tables that miss a layer's option."""
    t0 = time.perf_counter()
    pb = _prepare(layers, options, cost, size, sensitivity, size_budget, sensitivity_budget, objective)
    choice, status = _solve(pb, "cost", time_limit)
    if choice is None:
        if status != "Infeasible":
            raise MixedPrecisionError(f"ILP solver status '{status}'")

        def least() -> float:
            c, _ = _solve(pb, "sensitivity", time_limit)
            return _totals(pb, c)[2] if c is not None else math.inf

        raise _budget_error(pb, least)
    c, s, e = _totals(pb, choice)
    return Choice(choice, objective, c, s, e, pb.size_budget, pb.sens_budget, status, time.perf_counter() - t0)


def least_sensitivity(layers: Sequence[str], options: Sequence[WidthOption] | Mapping[str, Sequence[WidthOption]],
                      size: Table, sensitivity: Table | SensitivityTable, size_budget: float,
                      time_limit: float | None = None) -> float:
    """The least summed sensitivity of a choice within ``size_budget`` bytes (ILP), i.e. the tightest
    sensitivity budget :func:`choose_widths` can meet at that size. Raises :class:`WidthBudgetError`
    ("model size") when no choice fits the size budget."""
    sens = sensitivity.values if isinstance(sensitivity, SensitivityTable) else sensitivity
    zero = {n: {o: 0.0 for o in sens.get(n, {})} for n in layers}  # the cost does not enter this solve
    pb = _prepare(layers, options, zero, size, sensitivity, size_budget, 0.0, Objective.ENERGY)
    pb.sens_budget = math.inf  # unbounded: only the size budget constrains this solve (_prepare wants it finite)
    choice, status = _solve(pb, "sensitivity", time_limit)
    if choice is None:
        if status != "Infeasible":
            raise MixedPrecisionError(f"ILP solver status '{status}'")
        raise _budget_error(pb, lambda: math.inf)
    return _totals(pb, choice)[2]


#: enumeration refuses more combinations than this
BRUTE_FORCE_LIMIT = 2_000_000


def brute_force_widths(layers: Sequence[str], options: Sequence[WidthOption] | Mapping[str, Sequence[WidthOption]],
                       cost: CostInput, size: Table, sensitivity: Table | SensitivityTable, size_budget: float,
                       sensitivity_budget: float, objective: Objective = Objective.ENERGY) -> Choice:
    """:func:`choose_widths` by enumerating every combination (tests, small networks). Among equal costs
    (relative 1e-9) the least sensitivity wins, then the smaller size, then the first in enumeration
    order; ``optima`` counts the choices of optimal cost."""
    t0 = time.perf_counter()
    pb = _prepare(layers, options, cost, size, sensitivity, size_budget, sensitivity_budget, objective)
    count = math.prod(len(pb.allowed[n]) for n in pb.layers)
    if count > BRUTE_FORCE_LIMIT:
        raise MixedPrecisionError(f"{count} combinations to enumerate, more than the limit of {BRUTE_FORCE_LIMIT}")
    feasible: list[tuple[float, float, float, dict[str, WidthOption]]] = []
    least_sens = math.inf
    for combo in itertools.product(*(pb.allowed[n] for n in pb.layers)):
        choice = dict(zip(pb.layers, combo))
        c, s, e = _totals(pb, choice)
        if not _fits(s, pb.size_budget):
            continue
        least_sens = min(least_sens, e)
        if _fits(e, pb.sens_budget):
            feasible.append((c, e, s, choice))
    if not feasible:
        raise _budget_error(pb, lambda: least_sens)
    best = min(c for c, _, _, _ in feasible)
    tol = _BUDGET_TOL * max(1.0, abs(best))
    optimal = [f for f in feasible if f[0] <= best + tol]
    c, e, s, choice = min(optimal, key=lambda f: (f[1], f[2]))
    return Choice(choice, objective, c, s, e, pb.size_budget, pb.sens_budget, "Optimal (enumerated)",
                  time.perf_counter() - t0, len(optimal))


# -------------------------------------------------------------------------------------------- report
@dataclass(frozen=True)
class LayerWidthRow:
    """One layer of a :class:`WidthReport`: its option, weight bytes, cycles and energy, each chosen and int8,
    and its measured sensitivity at the chosen option."""

    layer: str
    option: WidthOption
    weight_bytes: float
    int8_weight_bytes: float
    cycles: float
    int8_cycles: float
    energy_pj: float
    int8_energy_pj: float
    sensitivity: float


@dataclass(frozen=True)
class WidthReport:
    """Latency, energy and model size of a choice against all-int8 (compute layers; host steps are neither
    timed nor priced by the model), the summed (additive) sensitivity and, when measured, the error of the
    network with every chosen width applied at once."""

    rows: list[LayerWidthRow]
    cycles: float
    int8_cycles: float
    energy_pj: float
    int8_energy_pj: float
    size_bytes: float
    int8_size_bytes: float
    sensitivity_sum: float
    measured_error: float | None
    cost_model: str

    def ratios(self) -> dict[str, float]:
        """chosen / int8 for cycles, energy and size."""
        def r(a: float, b: float) -> float:
            return a / b if b else 1.0
        return {"cycles": r(self.cycles, self.int8_cycles), "energy": r(self.energy_pj, self.int8_energy_pj),
                "size": r(self.size_bytes, self.int8_size_bytes)}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["rows"] = [{**dataclasses.asdict(r), "option": str(r.option)} for r in self.rows]
        d["ratios"] = self.ratios()
        return d

    def format(self) -> str:
        """A plain-text table: one line per layer, then the totals against int8."""
        lines = [f"{'layer':<28} {'width':>6} {'bytes':>10} {'int8 bytes':>10} {'energy uJ':>10} "
                 f"{'int8 uJ':>10} {'sensitivity':>12}"]
        for r in self.rows:
            lines.append(f"{r.layer[:28]:<28} {str(r.option):>6} {r.weight_bytes:>10,.0f} "
                         f"{r.int8_weight_bytes:>10,.0f} {r.energy_pj * 1e-6:>10.3f} {r.int8_energy_pj * 1e-6:>10.3f} {r.sensitivity:>12.3g}")
        q = self.ratios()
        lines += [f"latency  {self.cycles:,.0f} cycles vs int8 {self.int8_cycles:,.0f} ({q['cycles']:.3f}x)",
                  f"energy   {self.energy_pj * 1e-6:,.3f} uJ vs int8 {self.int8_energy_pj * 1e-6:,.3f} uJ "
                  f"({q['energy']:.3f}x; {self.cost_model})",
                  f"weights  {self.size_bytes:,.0f} bytes vs int8 {self.int8_size_bytes:,.0f} ({q['size']:.3f}x)",
                  f"sensitivity: sum of per-layer {self.sensitivity_sum:.4g}"
                  + (f", measured with every width applied {self.measured_error:.4g}"
                     if self.measured_error is not None else "")]
        return "\n".join(lines)


def width_report(choice: Choice | Mapping[str, WidthOption], costs: CostTable, size: Table,
                 sensitivity: Table | SensitivityTable, graph: LayerGraph | None = None,
                 calib_inputs: Sequence[Mapping[str, np.ndarray] | np.ndarray] | None = None) -> WidthReport:
    """Latency, energy and size of ``choice`` (a :class:`Choice` or a widths mapping; layers it does not
    name are int8) against all-int8, from the same tables the choice was made on. With ``graph`` and
    ``calib_inputs``, also the measured error of the network lowered at every chosen layer at once (how
    far the additive approximation holds)."""
    widths = dict(choice.widths if isinstance(choice, Choice) else choice)
    sens = sensitivity.values if isinstance(sensitivity, SensitivityTable) else sensitivity
    names = list(costs.cycles.own)
    full = {n: widths.get(n, INT8) for n in names}
    int8 = {n: INT8 for n in names}
    rows = []
    for n in names:
        o = full[n]
        rows.append(LayerWidthRow(n, o, float(size[n][o]), float(size[n][INT8]), costs.cycles.layer(full, n),
                                  costs.cycles.layer(int8, n), costs.energy_pj.layer(full, n),
                                  costs.energy_pj.layer(int8, n), float(sens.get(n, {}).get(o, 0.0))))
    measured = None
    if graph is not None and calib_inputs:
        low = lower_graph(graph, {n: o for n, o in full.items() if o != INT8})
        ref = [run_numpy(graph, x).outputs for x in calib_inputs]
        measured = output_error(ref, [run_numpy(low, x).outputs for x in calib_inputs], f"graph '{graph.name}'")
    return WidthReport(rows, sum(r.cycles for r in rows), sum(r.int8_cycles for r in rows),
                       sum(r.energy_pj for r in rows), sum(r.int8_energy_pj for r in rows),
                       sum(r.weight_bytes for r in rows), sum(r.int8_weight_bytes for r in rows),
                       sum(r.sensitivity for r in rows), measured, costs.model)


# ------------------------------------------------------------------------------------- the choice as JSON
#: ``widths_to_json``'s format tag, checked by :func:`widths_from_json`
WIDTHS_FORMAT = "hwgen-widths/1"


def widths_to_json(widths: Mapping[str, WidthOption], **meta) -> str:
    """The choice as JSON text: ``{"format", "widths": {layer: {"wbits", "abits"}}, **meta}`` (layers in the
    order given). It names layers of an int8 graph; ``lower_graph(graph, widths_from_json(text))`` rebuilds
    the lowered network, so the choice travels without a second model file."""
    return json.dumps({"format": WIDTHS_FORMAT, "widths": {n: {"wbits": o.wbits, "abits": o.abits}
                                                           for n, o in widths.items()}, **meta}, indent=2) + "\n"


def widths_from_json(text: str, graph: LayerGraph | None = None) -> dict[str, WidthOption]:
    """The widths of :func:`widths_to_json` text; with ``graph``, each layer is checked to be one of its
    compute layers. Raises :class:`MixedPrecisionError` naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise MixedPrecisionError(f"widths file: not JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != WIDTHS_FORMAT or not isinstance(data.get("widths"), dict):
        raise MixedPrecisionError(f"widths file: not a '{WIDTHS_FORMAT}' document")
    out: dict[str, WidthOption] = {}
    for n, o in data["widths"].items():
        if not isinstance(o, dict) or set(o) != {"wbits", "abits"}:
            raise MixedPrecisionError(f"widths file, layer '{n}': needs exactly 'wbits' and 'abits'")
        out[n] = WidthOption(o["wbits"], o["abits"])
        if graph is not None:
            _check_compute(graph, n)
    return out


# ------------------------------------------------------------------------------------ exact on both
@dataclass(frozen=True)
class BackendCheck:
    """One run of a lowered network on an executor against :func:`run_numpy` (and, for a backend other
    than the model, against the model's cycles): ``mismatched`` names the nodes whose integer values
    differ, ``cycle_mismatches`` the accelerator layers whose cycle or busy-PE counts differ from the
    model's (empty for the model itself)."""

    backend: str
    cycles: int
    accelerator_layers: int
    mismatched: list[str]
    cycle_mismatches: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.cycle_mismatches


def verify_lowered(graph: LayerGraph, x: Mapping[str, np.ndarray] | np.ndarray, cfg: AcceleratorConfig,
                   backends: Sequence[str] = ("model", "rtl"),
                   echo: Callable[[str], None] | None = None) -> list[BackendCheck]:
    """Run ``graph`` (a lowered network) on ``x`` through :func:`mappings.execute.run_quantized` on each of
    ``backends`` (``"model"``, the cycle model, is run first whenever another backend is asked for: the
    cycles are compared with it) and check every node's value bit-exact with :func:`run_numpy`, i.e. the
    lowered widths computed by the accelerator as the numpy definition computes them.
    ``ExecutionError`` (a layer over the run limits, a failed simulation) propagates."""
    from .execute import run_quantized

    want = list(dict.fromkeys(["model", *backends] if any(b != "model" for b in backends) else backends))
    ref = run_numpy(graph, x)
    checks: list[BackendCheck] = []
    model_layers = None
    for b in want:
        if echo is not None:
            echo(f"running the lowered network on {'the cycle model' if b == 'model' else b}")
        t0 = time.perf_counter()
        run = run_quantized(graph, x, cfg, backend=b)
        secs = time.perf_counter() - t0
        bad = [n for n in graph.order() if not _same_value(run.values.get(n), ref.values[n])]
        acc = [lr for lr in run.layers if lr.where == "accelerator"]
        cyc: list[str] = []
        if b == "model":
            model_layers = {lr.name: lr for lr in acc}
        elif model_layers is not None:
            cyc = [lr.name for lr in acc if lr.name not in model_layers
                   or (lr.cycles, lr.busy_pe) != (model_layers[lr.name].cycles, model_layers[lr.name].busy_pe)]
            cyc += [n for n in model_layers if n not in {lr.name for lr in acc}]
        checks.append(BackendCheck(b, run.cycles, len(acc), bad, cyc, secs))
    return checks


def _same_value(a, b) -> bool:
    if a is None or type(a) is not type(b):
        return False
    qa, qb = np.asarray(a.q), np.asarray(b.q)
    return qa.shape == qb.shape and qa.dtype == qb.dtype and bool(np.array_equal(qa, qb))
