"""ONNX importer: float models and int8 QDQ models (as onnxruntime's quantizer writes them) to a LayerGraph.

``import_onnx(path_or_model, name=None) -> LayerGraph``

Float models
    Conv (groups, dilation, pads, auto_pad), Gemm (transA=0, alpha=beta=1,
    transB 0/1), MatMul (constant operand -> Gemm; two activations -> MatMul),
    BatchNormalization (folded into the preceding Conv), Relu, Clip, MaxPool,
    AveragePool, GlobalAveragePool, Add (two activations; a constant operand is
    folded into the bias of the preceding Conv/Gemm), Flatten, Reshape (constant
    shape), Concat, Identity and Dropout (dropped). Weights come from
    initializers or Constant nodes. Every tensor is ``float32`` without
    quantization; ``TensorInfo.name`` is the ONNX name of the tensor whose value
    the IR node produces.

QDQ models (any QuantizeLinear/DequantizeLinear in the graph)
    The Q/DQ pairs are folded away. Every IR node's ``LayerGraph.tensors`` entry
    carries the QuantParams of its quantized output (the QuantizeLinear that
    follows it) and ``TensorInfo.name`` is that QuantizeLinear's *output*
    tensor (the int8/uint8 tensor), so a test can fetch onnxruntime's integer
    tensor for the node; the Input node's is the graph input's
    QuantizeLinear output. Conv2d/Gemm get ``weight`` int8 (OIHW, resp.
    [in, out]), ``weight_quant`` (scale per tensor or per output channel; axis
    0 for Conv2d, 1 for the [in, out] Gemm weight; zero points must be 0) and
    ``bias`` int32 in the accumulator scale (input scale x weight scale).

    What onnxruntime's ``quantize_static(quant_format=QDQ)`` (1.32) writes, and
    so what the graph contains:

    * Conv, Gemm, MatMul: DQ on input, weight (int8, zero point 0; per channel
      along the output channel: axis 0 of OIHW, axis 1 of a MatMul or
      transB=0 Gemm weight, axis 0 of a transB=1 Gemm weight) and bias (int32,
      scale = input scale x weight scale, zero point 0); Q on the output.
    * Relu/Clip whose input has a single consumer: *removed*; the producer's
      output is renamed and quantized with the activation's calibrated range
      (zero point = qmin, e.g. -128 for int8), so the activation is the
      saturation of the requantization. Relu/Clip whose input has other
      consumers (or with ``ActivationSymmetric``): kept with its own Q/DQ ->
      an IR Relu/Clip with its own (different) output quantization.
    * MatMul followed by Add of a constant bias: *not* fused; the MatMul gets
      its own output Q and the bias becomes an int8 constant with its own
      scale and (usually non-zero) zero point. The importer keeps this as
      Gemm (no bias) -> Add(Gemm, Constant): folding it into an int32 bias
      would skip the MatMul's saturation at its calibrated range (measured:
      up to 26 output quanta off onnxruntime when an input exceeds the
      calibration). Float models fold such an Add into the bias.
    * Add, GlobalAveragePool, Concat: Q/DQ on every input and on the output,
      the output with its own calibrated scale (a requantizing op).
    * MaxPool, AveragePool, Flatten, Reshape (and Transpose, Squeeze...):
      output Q/DQ with exactly the input's scale and zero point.
    * BatchNormalization is not folded by the quantizer (unless the model was
      pre-processed with ``onnxruntime.quantization.quant_pre_process``); it
      stays a float op with an int8 scale, which this importer rejects.

Errors: an unsupported operator or attribute raises :class:`OnnxImportError`
naming the node and operator type; an unreadable file one naming the file.
The graph is validated before it is returned; nothing half-built escapes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .graph import (Add, AveragePool, Clip, Concat, Constant, Conv2d, Flatten, Gemm, GlobalAveragePool, GraphError, Input,
                    Layer, LayerGraph, MatMul, MaxPool, QuantParams, Relu, Reshape, TensorInfo)

from hwgen.errors import HwgenError

__all__ = ["OnnxImportError", "Constant", "import_onnx"]


class OnnxImportError(HwgenError, ValueError):
    """The model cannot be imported; the message names the file, or the node and its operator type."""


_QDTYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.int32): "int32"}


# ------------------------------------------------------------------ loading
def _load(model: Any):
    import onnx

    if isinstance(model, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        return m, f"model '{m.graph.name or '<unnamed>'}'"
    path = Path(os.fspath(model))
    where = f"file '{path}'"
    try:
        data = path.read_bytes()
    except OSError as e:
        raise OnnxImportError(f"{where}: cannot read ({e.strerror or e})") from e
    try:
        m = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf DecodeError and friends
        raise OnnxImportError(f"{where}: not a valid ONNX model (truncated or not ONNX): {e}") from e
    if not m.HasField("graph") or len(m.graph.node) == 0 or not m.opset_import:
        raise OnnxImportError(f"{where}: not a valid ONNX model (no graph, nodes or opset)")
    try:
        onnx.checker.check_model(m)
    except Exception as e:
        raise OnnxImportError(f"{where}: invalid ONNX model: {str(e).splitlines()[0]}") from e
    return m, where


def _attrs(node) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _const_node_value(node) -> np.ndarray:
    from onnx import numpy_helper

    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    if a.name == "value_float":
        return np.array(a.f, np.float32)
    if a.name == "value_floats":
        return np.array(list(a.floats), np.float32)
    if a.name == "value_int":
        return np.array(a.i, np.int64)
    if a.name == "value_ints":
        return np.array(list(a.ints), np.int64)
    raise ValueError(f"Constant attribute '{a.name}' is not supported")


# ---------------------------------------------------------------- internals
@dataclass
class _QConst:
    """A constant behind a DequantizeLinear: integer values and their quantization."""

    q: np.ndarray
    quant: QuantParams
    source: str  # the initializer (or Constant output) holding q

    @property
    def real(self) -> np.ndarray:
        return _dequant(self.q, self.quant)


def _dequant(q: np.ndarray, qp: QuantParams) -> np.ndarray:
    s = np.asarray(qp.scale, np.float64)
    z = np.asarray(qp.zero_point, np.int64)
    if qp.axis is not None and s.ndim == 1:
        shape = [1] * q.ndim
        shape[qp.axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return ((q.astype(np.int64) - z) * s).astype(np.float32)


@dataclass
class _Node:
    layer: Layer
    inputs: list[str]
    onnx_nodes: list[str]
    shape: tuple[int, ...]
    tensor: str  # ONNX name of the tensor the node's value is (float output, or Q output in QDQ mode)
    quant: QuantParams | None = None
    extra: dict = field(default_factory=dict)


class _Importer:
    def __init__(self, m, where: str, name: str | None):
        import onnx

        self.m = m
        self.where = where
        self.graph_name = name or m.graph.name or "onnx"
        self.opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 13)
        try:
            self.inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        except Exception as e:
            raise OnnxImportError(f"{where}: shape inference failed: {str(e).splitlines()[0]}") from e
        g = self.inferred.graph
        self.onnx_shapes: dict[str, tuple] = {}
        for v in (*g.value_info, *g.output):
            dims = v.type.tensor_type.shape.dim
            if v.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
                self.onnx_shapes[v.name] = tuple(d.dim_value for d in dims)
        self.qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in m.graph.node)

        self.consts: dict[str, np.ndarray] = {}
        self.qconsts: dict[str, _QConst] = {}
        self.producer: dict[str, str] = {}  # activation tensor -> IR node whose value it is
        self.qalias: dict[str, str] = {}  # DQ output -> IR node (a quantized activation)
        self.nodes: dict[str, _Node] = {}
        self.used_names: set[str] = set()
        # consumers of each tensor (graph outputs count as one)
        self.consumers: dict[str, int] = {}
        for n in m.graph.node:
            for i in n.input:
                if i:
                    self.consumers[i] = self.consumers.get(i, 0) + 1
        for o in m.graph.output:
            self.consumers[o.name] = self.consumers.get(o.name, 0) + 1

    # errors ----------------------------------------------------------------
    def err(self, node, msg: str) -> OnnxImportError:
        return OnnxImportError(f"{self.where}: node '{node.name or node.output[0]}' ({node.op_type}): {msg}")

    # bookkeeping -------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def add(self, onnx_node, layer: Layer, inputs: list[str]) -> str:
        name = self._fresh(onnx_node.name or f"{onnx_node.op_type}_{onnx_node.output[0]}")
        where = f"graph '{self.graph_name}', node '{name}' ({layer.kind})"
        try:
            shape = tuple(int(d) for d in layer.infer([self.nodes[i].shape for i in inputs], where))
        except GraphError as e:
            raise self.err(onnx_node, str(e)) from e
        out = onnx_node.output[0]
        want = self.onnx_shapes.get(out)
        if want is not None and tuple(want) != shape:
            raise self.err(onnx_node, f"output '{out}' has shape {want} in ONNX shape inference, the IR infers {shape}")
        self.nodes[name] = _Node(layer, inputs, [onnx_node.name], shape, out)
        self.producer[out] = name
        return name

    def alias(self, onnx_node, src: str) -> None:
        """``onnx_node``'s output is the value of IR node ``src`` (dropped or folded node)."""
        out = onnx_node.output[0]
        self.producer[out] = src
        n = self.nodes[src]
        n.onnx_nodes.append(onnx_node.name)
        if not self.qdq:
            n.tensor = out

    # operand resolution ----------------------------------------------------------
    def act(self, node, tensor: str) -> tuple[str, QuantParams | None]:
        """IR node and quantization of an activation operand."""
        if tensor in self.qalias:
            src = self.qalias[tensor]
            return src, self.nodes[src].quant
        if tensor in self.producer:
            if self.qdq:
                raise self.err(node, f"input '{tensor}' is a float tensor in a QDQ model (no QuantizeLinear/"
                                     f"DequantizeLinear pair before the node); mixed float/int8 graphs are not "
                                     f"supported")
            return self.producer[tensor], None
        if tensor in self.consts or tensor in self.qconsts:
            raise self.err(node, f"input '{tensor}' is a constant where an activation is expected")
        raise self.err(node, f"input '{tensor}' is not produced by any node")

    def is_const(self, tensor: str) -> bool:
        return tensor in self.consts or tensor in self.qconsts

    def const(self, node, tensor: str) -> np.ndarray:
        """Real (dequantized) value of a constant operand."""
        if tensor in self.consts:
            return self.consts[tensor]
        if tensor in self.qconsts:
            return self.qconsts[tensor].real
        raise self.err(node, f"input '{tensor}' must be a constant (initializer or Constant node)")

    def single_use(self, src: str) -> bool:
        """Is IR node ``src``'s value consumed exactly once (and not a graph output)?"""
        n = self.nodes[src]
        names = [t for t, p in self.producer.items() if p == src] + [t for t, p in self.qalias.items() if p == src]
        # in QDQ mode the Q output is consumed by DequantizeLinear nodes, each consumed in turn
        total = sum(self.consumers.get(t, 0) for t in names if t not in self._q_inputs)
        return total == 1 and not any(t in self.graph_outputs for t in names) and not isinstance(n.layer, Input)

    # main ----------------------------------------------------------------------
    def run(self) -> LayerGraph:
        from onnx import numpy_helper

        g = self.m.graph
        for init in g.initializer:
            self.consts[init.name] = numpy_helper.to_array(init)
        self.graph_outputs = {o.name for o in g.output}
        self._q_inputs: set[str] = set()  # activation tensors followed by a QuantizeLinear
        self.qout: dict[str, tuple[str, QuantParams]] = {}  # Q output -> (IR node, quant)

        for inp in g.input:
            if inp.name in self.consts:
                continue
            tt = inp.type.tensor_type
            dims = []
            for k, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(int(d.dim_value))
                elif k == 0:
                    dims.append(1)  # symbolic batch: batch 1
                else:
                    raise OnnxImportError(f"{self.where}: graph input '{inp.name}' has a symbolic dimension "
                                          f"{k} ('{d.dim_param}'); only the batch dimension may be symbolic")
            name = self._fresh(inp.name)
            self.nodes[name] = _Node(Input(shape=tuple(dims)), [], [], tuple(dims), inp.name)
            self.producer[inp.name] = name
            if tt.elem_type in (2, 3):  # uint8/int8 graph input consumed through DequantizeLinear
                self.nodes[name].extra["int_input"] = True

        for node in g.node:
            handler = getattr(self, f"op_{node.op_type}", None)
            if node.domain not in ("", "ai.onnx") or handler is None:
                raise self.err(node, f"unsupported operator '{node.op_type}'"
                                     + (f" (domain '{node.domain}')" if node.domain not in ("", "ai.onnx") else ""))
            handler(node, _attrs(node))

        outputs = []
        for o in g.output:
            src = self.qalias.get(o.name) or self.producer.get(o.name)
            if src is None:
                raise OnnxImportError(f"{self.where}: graph output '{o.name}' is not produced by a supported node")
            if src not in outputs:
                outputs.append(src)

        if self.qdq:
            for n, nd in self.nodes.items():
                if nd.quant is None:
                    raise OnnxImportError(f"{self.where}: node '{n}' ({nd.layer.kind}): output '{nd.tensor}' is "
                                          f"not quantized (no QuantizeLinear after it); mixed float/int8 graphs "
                                          f"are not supported")

        lg = LayerGraph(self.graph_name)
        try:
            for n, nd in self.nodes.items():
                dtype = nd.quant.dtype if nd.quant is not None else "float32"
                lg.add(n, nd.layer, nd.inputs, TensorInfo(nd.tensor, nd.shape, dtype, nd.quant))
                lg.g.nodes[n]["onnx_nodes"] = [x for x in nd.onnx_nodes if x]
                lg.g.nodes[n].update(nd.extra)
            lg.outputs = outputs
            lg.validate()
        except GraphError as e:
            raise OnnxImportError(f"{self.where}: {e}") from e
        return lg

    # ---------------------------------------------------- constants and Q/DQ
    def op_Constant(self, node, a):
        try:
            self.consts[node.output[0]] = _const_node_value(node)
        except Exception as e:
            raise self.err(node, str(e)) from e

    def _qparams(self, node, a, scale_name: str, zp_name: str, ref_dtype=None) -> QuantParams:
        if not self.is_const(scale_name) or (zp_name and not self.is_const(zp_name)):
            raise self.err(node, "scale and zero point must be constants")
        scale = np.asarray(self.consts.get(scale_name), np.float32)
        if zp_name:
            zp_arr = np.asarray(self.consts[zp_name])
        else:
            zp_arr = np.zeros(scale.shape, ref_dtype or np.uint8)
        dtype = _QDTYPES.get(zp_arr.dtype)
        if dtype is None:
            raise self.err(node, f"quantized type {zp_arr.dtype} is not supported (int8, uint8, int32)")
        if a.get("block_size", 0):
            raise self.err(node, "blocked quantization is not supported")
        axis = None
        if scale.ndim == 1 and scale.size > 1:
            axis = int(a.get("axis", 1))
        elif scale.ndim == 1:  # a [1]-shaped scale is per tensor
            scale, zp_arr = scale.reshape(()), zp_arr.reshape(())
        return QuantParams(scale=scale, zero_point=zp_arr.astype(np.int64), dtype=dtype, axis=axis)

    def op_QuantizeLinear(self, node, a):
        x, s = node.input[0], node.input[1]
        zp = node.input[2] if len(node.input) > 2 else ""
        if a.get("output_dtype", 0) and not zp:
            raise self.err(node, "output_dtype without a zero point is not supported")
        qp = self._qparams(node, a, s, zp)
        if qp.dtype == "int32":
            raise self.err(node, "int32 activations are not supported")
        if self.is_const(x):  # quantizing a constant: fold it
            real = self.const(node, x)
            info = np.iinfo(np.dtype(qp.dtype))
            q = np.clip(np.rint(real / _bcast(qp.scale, qp.axis, real.ndim)) +
                        _bcast(qp.zero_point, qp.axis, real.ndim), info.min, info.max).astype(qp.dtype)
            self.consts[node.output[0]] = q  # the DequantizeLinear after it makes it a qconst
            return
        if qp.axis is not None:
            raise self.err(node, "per-channel activation quantization is not supported")
        src, _ = (self.producer[x], None) if x in self.producer else self.act(node, x)
        nd = self.nodes[src]
        if nd.quant is not None and nd.quant != qp:
            raise self.err(node, f"the value of '{x}' (node '{src}') is quantized twice with different parameters")
        nd.quant = qp
        nd.tensor = node.output[0]
        self._q_inputs.add(x)
        self.qout[node.output[0]] = (src, qp)

    def op_DequantizeLinear(self, node, a):
        x, s = node.input[0], node.input[1]
        zp = node.input[2] if len(node.input) > 2 else ""
        if self.is_const(x):
            q = np.asarray(self.consts.get(x))
            qp = self._qparams(node, a, s, zp, ref_dtype=q.dtype)
            if _QDTYPES.get(q.dtype) != qp.dtype:
                raise self.err(node, f"constant '{x}' has type {q.dtype}, zero point {qp.dtype}")
            if qp.axis is not None:
                qp = QuantParams(qp.scale, qp.zero_point, qp.dtype, qp.axis % q.ndim)
            self.qconsts[node.output[0]] = _QConst(q, qp, x)
            return
        qp = self._qparams(node, a, s, zp)
        if x in self.qout:
            src, qq = self.qout[x]
            if qq != qp:
                raise self.err(node, f"dequantizes '{x}' with other parameters than its QuantizeLinear")
        elif x in self.producer and isinstance(self.nodes[self.producer[x]].layer, Input) \
                and self.nodes[self.producer[x]].extra.get("int_input"):
            src = self.producer[x]
            self.nodes[src].quant = qp
        else:
            raise self.err(node, f"input '{x}' is neither a constant nor the output of a QuantizeLinear")
        self.qalias[node.output[0]] = src

    # ------------------------------------------------------------- compute
    def _pads(self, node, a, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto in ("NOTSET", ""):
            p = list(a.get("pads", [0, 0, 0, 0]))
            if len(p) != 4:
                raise self.err(node, f"pads {p}: only 2-D spatial operators are supported")
            return tuple(int(v) for v in p)  # ONNX order (top, left, bottom, right)
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = [], []
            for i in range(2):
                out = -(-in_hw[i] // stride[i])
                total = max(0, (out - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - in_hw[i])
                lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
                begin.append(lo)
                end.append(total - lo)
            return (begin[0], begin[1], end[0], end[1])
        raise self.err(node, f"auto_pad '{auto}' is not supported")

    def op_Conv(self, node, a):
        x, quant_x = self.act(node, node.input[0])
        wname = node.input[1]
        if not self.is_const(wname):
            raise self.err(node, f"weight '{wname}' must be a constant")
        xs = self.nodes[x].shape
        w_real = self.const(node, wname)
        if w_real.ndim != 4 or len(xs) != 4:
            raise self.err(node, f"only 2-D convolutions are supported (weight shape {w_real.shape}, input {xs})")
        kernel = tuple(int(k) for k in a.get("kernel_shape", w_real.shape[2:]))
        if kernel != tuple(w_real.shape[2:]):
            raise self.err(node, f"kernel_shape {kernel} does not match the weight {w_real.shape}")
        stride = tuple(int(v) for v in a.get("strides", [1, 1]))
        dilation = tuple(int(v) for v in a.get("dilations", [1, 1]))
        groups = int(a.get("group", 1))
        pads = self._pads(node, a, xs[2:], kernel, stride, dilation)
        layer = Conv2d(in_channels=xs[1], out_channels=w_real.shape[0], kernel=kernel, stride=stride, pads=pads,
                       dilation=dilation, groups=groups)
        bname = node.input[2] if len(node.input) > 2 and node.input[2] else None
        self._weights(node, layer, wname, bname, quant_x, w_axis=0, transpose=False)
        self.add(node, layer, [x])

    def _weights(self, node, layer, wname, bname, quant_x, w_axis: int, transpose: bool) -> None:
        """Fill weight, bias (and weight_quant) of a Conv2d/Gemm. ``w_axis``: output-channel axis of the ONNX weight."""
        if bname is not None and not self.is_const(bname):
            raise self.err(node, f"bias '{bname}' must be a constant")
        if not self.qdq:
            w = self.const(node, wname).astype(np.float32)
            layer.weight = w.T.copy() if transpose else w
            if bname is not None:
                layer.bias = self._bias_vector(node, self.const(node, bname), layer)
            return
        if wname not in self.qconsts:
            raise self.err(node, f"weight '{wname}' is not quantized (no DequantizeLinear) in a QDQ model")
        qc = self.qconsts[wname]
        if qc.quant.dtype != "int8":
            raise self.err(node, f"weight '{wname}' is {qc.quant.dtype}; only int8 weights are supported")
        if np.any(qc.quant.zero_point != 0):
            raise self.err(node, f"weight '{wname}' has a non-zero zero point; only symmetric weights are supported")
        if qc.quant.axis is not None and qc.quant.axis != w_axis:
            raise self.err(node, f"weight '{wname}' is quantized per channel along axis {qc.quant.axis}, not along "
                                 f"the output channels (axis {w_axis})")
        if quant_x is None or quant_x.axis is not None:
            raise self.err(node, "input activation must be quantized per tensor")
        w = qc.q.astype(np.int8)
        ir_axis = None
        if qc.quant.axis is not None:
            ir_axis = 1 if isinstance(layer, Gemm) else 0
        layer.weight = w.T.copy() if transpose else w
        layer.weight_quant = QuantParams(np.asarray(qc.quant.scale, np.float32),
                                         np.zeros(np.shape(qc.quant.scale), np.int64), "int8", ir_axis)
        if bname is not None:
            layer.bias = self._int_bias(node, bname, quant_x, layer)

    def _out_channels(self, layer) -> int:
        return layer.out_channels if isinstance(layer, Conv2d) else layer.out_features

    def _bias_vector(self, node, b: np.ndarray, layer) -> np.ndarray:
        n = self._out_channels(layer)
        b = np.asarray(b)
        if b.size == 1:
            return np.full(n, b.reshape(()), b.dtype)
        if b.size != n or sum(d != 1 for d in b.shape) > 1:
            raise self.err(node, f"bias of shape {b.shape} is not a per-output-channel vector of {n}")
        return b.reshape(n)

    def _acc_scale(self, quant_x: QuantParams, layer) -> np.ndarray:
        return (np.float32(quant_x.scale) * np.asarray(layer.weight_quant.scale, np.float32)).astype(np.float32)

    def _int_bias(self, node, bname: str, quant_x: QuantParams, layer) -> np.ndarray:
        """int32 bias in the accumulator scale (input scale x weight scale)."""
        acc = np.broadcast_to(self._acc_scale(quant_x, layer), (self._out_channels(layer),))
        qc = self.qconsts.get(bname)
        if qc is not None and qc.quant.dtype == "int32" and np.all(qc.quant.zero_point == 0):
            bs = np.broadcast_to(np.asarray(qc.quant.scale, np.float32), acc.shape)
            if np.allclose(bs, acc, rtol=1e-6, atol=0):
                return self._bias_vector(node, qc.q, layer).astype(np.int32)
        real = self._bias_vector(node, self.const(node, bname), layer).astype(np.float64)
        q = np.rint(real / acc.astype(np.float64))
        return np.clip(q, -2**31, 2**31 - 1).astype(np.int32)

    def op_Gemm(self, node, a):
        if a.get("transA", 0):
            raise self.err(node, "transA=1 is not supported")
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.err(node, f"alpha={a.get('alpha', 1.0)}, beta={a.get('beta', 1.0)}: only 1 is supported")
        trans_b = int(a.get("transB", 0))
        x, quant_x = self.act(node, node.input[0])
        wname = node.input[1]
        cname = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if not self.is_const(wname):
            if cname is None and not trans_b:
                y, _ = self.act(node, wname)
                self.add(node, MatMul(), [x, y])
                return
            raise self.err(node, f"B operand '{wname}' must be a constant (or an activation without transB and C)")
        w = self.const(node, wname)
        if w.ndim != 2:
            raise self.err(node, f"weight '{wname}' has shape {w.shape}, expected 2-D")
        k, n = (w.shape[1], w.shape[0]) if trans_b else w.shape
        layer = Gemm(in_features=int(k), out_features=int(n))
        self._weights(node, layer, wname, cname, quant_x, w_axis=0 if trans_b else 1, transpose=bool(trans_b))
        self.add(node, layer, [x])

    def op_MatMul(self, node, a):
        aname, bname = node.input[0], node.input[1]
        if self.is_const(aname):
            raise self.err(node, "a constant left operand is not supported")
        x, quant_x = self.act(node, aname)
        if not self.is_const(bname):
            y, _ = self.act(node, bname)
            self.add(node, MatMul(), [x, y])
            return
        w = self.const(node, bname)
        if w.ndim != 2:
            raise self.err(node, f"constant operand '{bname}' has shape {w.shape}, expected 2-D")
        layer = Gemm(in_features=int(w.shape[0]), out_features=int(w.shape[1]))
        self._weights(node, layer, bname, None, quant_x, w_axis=1, transpose=False)
        self.add(node, layer, [x])

    def op_BatchNormalization(self, node, a):
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.err(node, "training-mode outputs are not supported")
        src = self.producer.get(node.input[0]) if node.input[0] not in self.qalias else self.qalias[node.input[0]]
        conv = self.nodes.get(src) if src else None
        why = None
        if self.qdq:
            why = ("the model is quantized (onnxruntime's quantizer leaves BatchNormalization unfolded unless the "
                   "float model is pre-processed with onnxruntime.quantization.quant_pre_process)")
        elif conv is None or not isinstance(conv.layer, Conv2d):
            why = "its input is not produced by a Conv"
        elif not self.single_use(src):
            why = f"the Conv output '{node.input[0]}' has other consumers"
        elif not all(self.is_const(t) for t in node.input[1:5]):
            why = "scale, bias, mean and variance must be constants"
        if why:
            raise self.err(node, f"cannot fold BatchNormalization into the preceding Conv: {why}")
        gamma, beta, mean, var = (self.const(node, t).astype(np.float64) for t in node.input[1:5])
        eps = float(a.get("epsilon", 1e-5))
        f = gamma / np.sqrt(var + eps)
        L = conv.layer
        b = L.bias.astype(np.float64) if L.bias is not None else np.zeros(L.out_channels)
        L.weight = (L.weight.astype(np.float64) * f[:, None, None, None]).astype(np.float32)
        L.bias = ((b - mean) * f + beta).astype(np.float32)
        self.alias(node, src)

    def op_Relu(self, node, a):
        x, _ = self.act(node, node.input[0])
        self.add(node, Relu(), [x])

    def op_Clip(self, node, a):
        x, _ = self.act(node, node.input[0])
        if self.opset < 11:
            lo, hi = a.get("min", -math.inf), a.get("max", math.inf)
        else:
            vals = []
            for i, default in ((1, -math.inf), (2, math.inf)):
                t = node.input[i] if len(node.input) > i else ""
                if not t:
                    vals.append(default)
                elif not self.is_const(t):
                    raise self.err(node, f"bound '{t}' must be a constant")
                else:
                    vals.append(float(np.asarray(self.const(node, t)).reshape(())))
            lo, hi = vals
        if lo == -math.inf and hi == math.inf:
            self.alias(node, x)  # Clip without bounds is the identity
        elif lo == 0.0 and hi == math.inf:
            self.add(node, Relu(), [x])
        else:
            self.add(node, Clip(min=float(lo), max=float(hi)), [x])

    def _pool(self, node, a, cls, **extra):
        x, _ = self.act(node, node.input[0])
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "the Indices output is not supported")
        if a.get("ceil_mode", 0):
            raise self.err(node, "ceil_mode=1 is not supported")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.err(node, "dilated pooling is not supported")
        if a.get("storage_order", 0):
            raise self.err(node, "storage_order=1 is not supported")
        xs = self.nodes[x].shape
        kernel = tuple(int(k) for k in a["kernel_shape"])
        if len(kernel) != 2 or len(xs) != 4:
            raise self.err(node, "only 2-D pooling is supported")
        stride = tuple(int(v) for v in a.get("strides", [1, 1]))
        pads = self._pads(node, a, xs[2:], kernel, stride, (1, 1))
        self.add(node, cls(kernel=kernel, stride=stride, pads=pads, **extra), [x])

    def op_MaxPool(self, node, a):
        self._pool(node, a, MaxPool)

    def op_AveragePool(self, node, a):
        self._pool(node, a, AveragePool, count_include_pad=bool(a.get("count_include_pad", 0)))

    def op_GlobalAveragePool(self, node, a):
        x, _ = self.act(node, node.input[0])
        self.add(node, GlobalAveragePool(), [x])

    def op_Add(self, node, a):
        l, r = node.input[0], node.input[1]
        if self.is_const(l) and self.is_const(r):
            raise self.err(node, "both operands are constants")
        if self.is_const(l) or self.is_const(r):
            self._add_bias(node, r if self.is_const(r) else l, l if self.is_const(r) else r)
            return
        x, _ = self.act(node, l)
        y, _ = self.act(node, r)
        if self.nodes[x].shape != self.nodes[y].shape:
            raise self.err(node, f"broadcasting Add of {self.nodes[x].shape} and {self.nodes[y].shape} "
                                 f"is not supported")
        self.add(node, Add(), [x, y])

    def _add_bias(self, node, cname: str, xname: str) -> None:
        """Add of a constant. Float models: folded into the bias of a preceding Conv2d/Gemm whose output only the
        Add consumes. Otherwise, and always in QDQ models (onnxruntime requantizes the producer's output before
        the Add, which saturates at the calibrated range), a :class:`Constant` node broadcast to the other
        operand's shape feeds an ordinary Add."""
        x, _ = self.act(node, xname)
        nd = self.nodes[x]
        L = nd.layer
        c = np.asarray(self.const(node, cname))
        if not self.qdq and isinstance(L, (Conv2d, Gemm)) and self.single_use(x):
            n = self._out_channels(L)
            if isinstance(L, Conv2d):
                ok = c.size == 1 or (c.size == n and c.ndim >= 3 and c.shape[-3] == n and c.shape[-2:] == (1, 1))
            else:
                ok = c.size == 1 or (c.size == n and c.shape[-1] == n)
            if ok:
                c = np.broadcast_to(c.reshape(-1), (n,)) if c.size == 1 else c.reshape(n)
                L.bias = (L.bias if L.bias is not None else 0) + c.astype(np.float32)
                self.alias(node, x)
                return
        try:
            np.broadcast_to(c, nd.shape)
        except ValueError:
            raise self.err(node, f"constant operand of shape {c.shape} does not broadcast to {nd.shape}") from None
        if self.qdq:
            qc = self.qconsts.get(cname)
            if qc is None or qc.quant.axis is not None or qc.quant.dtype == "int32":
                raise self.err(node, f"constant operand '{cname}' is not quantized per tensor to 8 bits")
            value, quant, tname = np.broadcast_to(qc.q, nd.shape).copy(), qc.quant, qc.source
        else:
            value, quant, tname = np.broadcast_to(c, nd.shape).astype(np.float32), None, cname
        name = self._fresh(tname)
        self.nodes[name] = _Node(Constant(value=value), [], [], tuple(nd.shape), tname, quant)
        ins = [x, name] if xname == node.input[0] else [name, x]
        self.add(node, Add(), ins)

    def op_Flatten(self, node, a):
        x, _ = self.act(node, node.input[0])
        axis = int(a.get("axis", 1))
        if axis < 0:
            axis += len(self.nodes[x].shape)
        self.add(node, Flatten(axis=axis), [x])

    def op_Reshape(self, node, a):
        x, _ = self.act(node, node.input[0])
        sname = node.input[1]
        if not self.is_const(sname):
            raise self.err(node, f"shape '{sname}' must be a constant")
        shape = [int(v) for v in np.asarray(self.const(node, sname)).reshape(-1)]
        xs = self.nodes[x].shape
        if not a.get("allowzero", 0):
            shape = [xs[i] if v == 0 and i < len(xs) else v for i, v in enumerate(shape)]
        if shape.count(-1) > 1:
            raise self.err(node, f"shape {shape} has more than one -1")
        if -1 in shape:
            known = int(np.prod([v for v in shape if v != -1]))
            total = int(np.prod(xs))
            if known == 0 or total % known:
                raise self.err(node, f"cannot reshape {xs} to {shape}")
            shape[shape.index(-1)] = total // known
        self.add(node, Reshape(shape=tuple(shape)), [x])

    def op_Concat(self, node, a):
        ins = [self.act(node, t)[0] for t in node.input]
        axis = int(a["axis"])
        if axis < 0:
            axis += len(self.nodes[ins[0]].shape)
        self.add(node, Concat(axis=axis), ins)

    def op_Identity(self, node, a):
        x, _ = self.act(node, node.input[0])
        self.alias(node, x)

    def op_Dropout(self, node, a):
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.err(node, "the mask output is not supported")
        x, _ = self.act(node, node.input[0])
        self.alias(node, x)


def _bcast(v: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    v = np.asarray(v)
    if axis is None or v.ndim == 0:
        return v
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def import_onnx(model: Any, name: str | None = None) -> LayerGraph:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as a validated :class:`LayerGraph`.

    ``name`` names the graph (default: the ONNX graph's name).
    """
    m, where = _load(model)
    return _Importer(m, where, name).run()
