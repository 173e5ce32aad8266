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

Untrusted models (checked in this order, before ONNX's checker, shape inference
or numpy see anything, so a hostile file fails in milliseconds)
    * The model file must be a regular file within the ``file_bytes`` limit
      (:mod:`hwgen.limits`); it is read through one descriptor.
    * Every name is UTF-8 text; every operator is supported.
    * Declared shapes (graph inputs, outputs, value_info, every tensor's dims)
      pass :func:`mappings.graph.check_shape` (each dimension within
      ``dimension``, the element count within ``tensor_elements``), and every
      tensor holds exactly the bytes (or values) its dims declare.
    * External data is read by this module, not by ONNX's loader: ``location``
      is relative to the *model file's own folder*, whatever the current one;
      absolute locations, ``..`` components and symbolic links (the file or any
      folder on the way) are refused without opening anything; ``offset`` and
      ``length`` must lie inside the file; the model and all its external data
      stay within ``file_bytes``. A ``ModelProto`` passed in memory cannot have
      external references (import it from its file).
    * Attributes are read typed and range-checked; every shape the importer
      computes passes the same shape check, and each compute layer's MACs the
      ``layer_macs`` limit.

Errors: anything the importer cannot import raises :class:`OnnxImportError`
naming the file and the node (and operator type), tensor or field; a size above
a limit raises :class:`OnnxLimitError` (an ``OnnxImportError`` and a
``hwgen.errors.LimitError``) with the size, the limit and the environment
variable that changes it. No other exception escapes for any input bytes
(tests/test_fuzz_importers.py). The graph is validated before it is returned;
nothing half-built escapes.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any, Iterator, Sequence

import numpy as np

from .graph import (FLOAT_STEPS, Add, AveragePool, Binary, BinaryFn, Clip, Concat, Constant, Conv2d, Flatten, Gather, Gemm,
                    GlobalAveragePool, GraphError, Input, Layer, LayerGraph, LayerNorm, MatMul, MaxPool, Pad,
                    QuantParams, ReduceMean, Relu, Reshape, Resize, Slice, Softmax, TensorInfo, Transpose, Unary, UnaryFn,
                    ceil_extra, check_shape, format_shape)

from hwgen.errors import HwgenError, LimitError
from hwgen.limits import check_limit, limits

__all__ = ["OnnxImportError", "OnnxLimitError", "Constant", "import_onnx", "SUPPORTED_OPS", "OP_PLACEMENT",
           "OpSupport", "op_support"]


class OnnxImportError(HwgenError, ValueError):
    """The model cannot be imported; the message names the file, or the node and its operator type."""


class OnnxLimitError(OnnxImportError, LimitError):
    """A size the model declares is above a stated limit (:mod:`hwgen.limits`): an import error that callers
    catching ``LimitError`` also see."""


_QDTYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8", np.dtype(np.int32): "int32"}

#: ONNX TensorProto data types this importer reads: numpy type and the typed field holding values without raw_data
_TENSOR_TYPES: dict[int, tuple[np.dtype, str]] = {
    1: (np.dtype(np.float32), "float_data"), 2: (np.dtype(np.uint8), "int32_data"),
    3: (np.dtype(np.int8), "int32_data"), 4: (np.dtype(np.uint16), "int32_data"),
    5: (np.dtype(np.int16), "int32_data"), 6: (np.dtype(np.int32), "int32_data"),
    7: (np.dtype(np.int64), "int64_data"), 9: (np.dtype(np.bool_), "int32_data"),
    10: (np.dtype(np.float16), "int32_data"), 11: (np.dtype(np.float64), "double_data"),
    12: (np.dtype(np.uint32), "uint64_data"), 13: (np.dtype(np.uint64), "uint64_data")}
_DEFAULT, _EXTERNAL = 0, 1  # TensorProto.DataLocation

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block
_DIGITS = re.compile(r"[0-9]{1,20}")


# ------------------------------------------------------------------ names and sizes in messages
def _name(text: object) -> str:
    """A name from the model as it may appear in a one-line message: control characters escaped, cut at 200."""
    s = str(text)
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s[:201])
    return s if len(s) <= 200 else s[:197] + "..."


def _one_line(e: BaseException) -> str:
    """A third-party exception's message as one short line (ONNX's checker writes several)."""
    return _name(" ".join(str(e).split()) or type(e).__name__)


def _node_label(node) -> str:
    name = node.name or (node.output[0] if len(node.output) else "") or "<unnamed>"
    return f"node '{_name(name)}' ({_name(node.op_type)})"


def _shape(shape: Sequence[object], what: str, min_dim: int = 1) -> tuple[int, ...]:
    """:func:`mappings.graph.check_shape` with its failures as this importer's errors."""
    try:
        return check_shape(shape, what, min_dim)
    except LimitError as e:
        raise OnnxLimitError(str(e)) from None
    except GraphError as e:
        raise OnnxImportError(str(e)) from None


def _limit(field_name: str, value: int, what: str) -> None:
    """:func:`hwgen.limits.check_limit` raising :class:`OnnxLimitError`."""
    try:
        check_limit(field_name, value, what)
    except LimitError as e:
        raise OnnxLimitError(str(e)) from None


# ------------------------------------------------------------------ reading
def _read_fd(fd: int, offset: int, length: int, what: str) -> bytes:
    """``length`` bytes at ``offset`` of an open file (what was checked through ``fd`` is what is read)."""
    parts, got = [], 0
    while got < length:
        chunk = os.pread(fd, min(length - got, 1 << 30), offset + got)
        if not chunk:
            raise OnnxImportError(f"{what}: the file ended after {got:,} of {length:,} bytes (changed while read?)")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file"


def _read_model_file(path: Path, where: str) -> bytes:
    """The model file's bytes: a regular file, at most the ``file_bytes`` limit, refused before it is read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise OnnxImportError(f"{where}: cannot read ({e.strerror or e})") from None
    except ValueError as e:  # a NUL character in the path
        raise OnnxImportError(f"{where}: cannot read ({e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OnnxImportError(f"{where}: is {_file_kind(st.st_mode)}, not an ONNX model file")
        _limit("file_bytes", st.st_size, f"{where}: size in bytes")
        return _read_fd(fd, 0, st.st_size, where)
    except OSError as e:
        raise OnnxImportError(f"{where}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)


class _ExternalData:
    """Reads external tensor data, only from regular files inside the model's own folder.

    ONNX's own loader joins ``location`` to a base folder (the current one for a model loaded from bytes)
    and follows absolute paths, ``..`` and symbolic links. Here a location is refused, before any file is
    opened, when it is absolute or has a ``..`` component; every folder on the way and the file itself are
    opened relative to the model's folder without following symbolic links (``O_NOFOLLOW`` at each step),
    so nothing outside that folder is ever opened. ``offset`` and ``length`` must lie within the file and
    ``length`` must equal the declared shape's bytes; the model and all its external data together stay
    within the ``file_bytes`` limit.
    """

    def __init__(self, where: str, folder: Path | None, used: int):
        self.where, self.folder, self.used = where, folder, used

    def refuse(self, what: str, location: str, why: str) -> OnnxImportError:
        inside = f"the model's folder '{self.folder}'" if self.folder is not None else "the model's folder"
        return OnnxImportError(f"{self.where}: {what}: external data location '{_name(location)}' {why}; external "
                               f"data is read only from a file inside {inside} (no absolute path, '..' or "
                               f"symbolic link)")

    def parts(self, what: str, location: str) -> list[str]:
        """The location's path components, or an error when it could leave the model's folder."""
        if not location:
            raise self.refuse(what, location, "is empty")
        if "\0" in location:
            raise self.refuse(what, location, "contains a NUL character")
        if location.startswith(("/", "\\")) or os.path.isabs(location) or PureWindowsPath(location).drive:
            raise self.refuse(what, location, "is an absolute path")
        parts = [p for p in re.split(r"[\\/]", location) if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(what, location, "has a '..' component")
        if not parts:
            raise self.refuse(what, location, "names no file")
        return parts

    def load(self, t, what: str, nbytes: int) -> None:
        """Replace ``t``'s external reference by the ``nbytes`` bytes it points to."""
        info = {e.key: e.value for e in t.external_data}
        if not all(isinstance(v, str) for kv in info.items() for v in kv):
            raise OnnxImportError(f"{self.where}: {what}: its external data reference is not UTF-8 text")
        location = info.get("location", "")
        if self.folder is None:
            raise OnnxImportError(f"{self.where}: {what}: its data is in the external file '{_name(location)}'; "
                                  f"import the model from its file so the data can be found beside it")
        parts = self.parts(what, location)
        offset = self.number(what, location, info, "offset", 0)
        length = self.number(what, location, info, "length", None)
        if length is not None and length != nbytes:
            raise OnnxImportError(f"{self.where}: {what}: external data length {length:,} bytes, but its shape "
                                  f"{format_shape(t.dims)} needs {nbytes:,}")
        fd = self.open(what, location, parts)
        try:
            size = os.fstat(fd).st_size
            if length is None:
                length = size - offset
                if length != nbytes:
                    raise OnnxImportError(f"{self.where}: {what}: external data from offset {offset:,} to the end "
                                          f"of '{_name(location)}' is {max(length, 0):,} bytes, but its shape "
                                          f"{format_shape(t.dims)} needs {nbytes:,}")
            if offset + length > size:
                raise OnnxImportError(f"{self.where}: {what}: external data at offset {offset:,}, length {length:,} "
                                      f"runs past the end of '{_name(location)}' ({size:,} bytes)")
            self.used += length
            _limit("file_bytes", self.used, f"{self.where}: bytes of the model with its external data")
            data = _read_fd(fd, offset, length, f"{self.where}: {what}: '{_name(location)}'")
        except OSError as e:
            raise self.refuse(what, location, f"cannot be read ({e.strerror or e})") from None
        finally:
            os.close(fd)
        t.raw_data = data
        t.data_location = _DEFAULT
        del t.external_data[:]

    def number(self, what: str, location: str, info: dict[str, str], key: str, default: int | None) -> int | None:
        text = info.get(key)
        if text is None:
            return default
        if not _DIGITS.fullmatch(text.strip()):
            raise OnnxImportError(f"{self.where}: {what}: external data {key} '{_name(text)}' of "
                                  f"'{_name(location)}' is not a whole number of bytes")
        return int(text)

    def open(self, what: str, location: str, parts: list[str]) -> int:
        """A descriptor of the regular file ``parts`` inside the model's folder, never through a symbolic link."""
        try:
            fd = os.open(self.folder, _OPEN_FLAGS | os.O_DIRECTORY)
        except OSError as e:
            raise self.refuse(what, location, f"cannot be read: the model's folder cannot be opened "
                                              f"({e.strerror or e})") from None
        try:
            for k, part in enumerate(parts):
                last = k == len(parts) - 1
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except OSError as e:
                    raise self.refuse(what, location, f"cannot be read ('{_name(part)}': {e.strerror or e})") from None
                if stat.S_ISLNK(st.st_mode):
                    raise self.refuse(what, location, f"goes through the symbolic link '{_name(part)}'")
                if last and not stat.S_ISREG(st.st_mode):
                    raise self.refuse(what, location, f"is {_file_kind(st.st_mode)}, not a regular file")
                if not last and not stat.S_ISDIR(st.st_mode):
                    raise self.refuse(what, location, f"cannot be read ('{_name(part)}' is not a folder)")
                flags = _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0) | (0 if last else os.O_DIRECTORY)
                try:
                    nfd = os.open(part, flags, dir_fd=fd)
                except OSError as e:  # replaced by a link since the check: O_NOFOLLOW refuses it
                    raise self.refuse(what, location, f"cannot be read ('{_name(part)}': {e.strerror or e})") from None
                os.close(fd)
                fd = nfd
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self.refuse(what, location, "is not a regular file")
            return fd
        except BaseException:
            os.close(fd)
            raise


def _graph_tensors(g, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every TensorProto of graph ``g`` and its subgraphs, with a label naming where it is."""
    for t in g.initializer:
        yield f"{prefix}initializer '{_name(t.name)}'", t
    for s in g.sparse_initializer:
        yield f"{prefix}sparse initializer '{_name(s.values.name)}' values", s.values
        yield f"{prefix}sparse initializer '{_name(s.values.name)}' indices", s.indices
    for node in g.node:
        for a in node.attribute:
            label = f"{prefix}{_node_label(node)}, attribute '{_name(a.name)}'"
            if a.HasField("t"):
                yield label, a.t
            for t in a.tensors:
                yield label, t
            for s in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
                yield f"{label} values", s.values
                yield f"{label} indices", s.indices
            for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _graph_tensors(sub, f"{label}, subgraph: ")


def _check_tensor(t, what: str, external: _ExternalData) -> None:
    """Declared dims within the limits, a supported data type, external data read from inside the model's
    folder, and exactly as many bytes (or values) as the dims declare, before numpy ever reshapes it."""
    dims = _shape(list(t.dims), f"{external.where}: {what}", min_dim=0)
    if t.data_type not in _TENSOR_TYPES:
        raise OnnxImportError(f"{external.where}: {what}: data type {_tensor_type_name(t.data_type)} is not "
                              f"supported (numeric types only)")
    dtype, typed_field = _TENSOR_TYPES[t.data_type]
    count = math.prod(dims)
    if t.data_location == _EXTERNAL:
        external.load(t, what, count * dtype.itemsize)
    elif t.data_location != _DEFAULT:
        raise OnnxImportError(f"{external.where}: {what}: unknown data location {t.data_location}")
    if t.HasField("raw_data"):
        have, want, unit = len(t.raw_data), count * dtype.itemsize, "bytes"
    else:
        have, want, unit = len(getattr(t, typed_field)), count, "values"
    if have != want:
        raise OnnxImportError(f"{external.where}: {what}: shape {format_shape(dims)} ({dtype.name}) needs "
                              f"{want:,} {unit}, the tensor holds {have:,}")


def _tensor_type_name(code: int) -> str:
    from onnx import TensorProto

    try:
        return TensorProto.DataType.Name(code)
    except ValueError:
        return str(code)


def _check_declared_shapes(g, where: str) -> None:
    """Graph inputs, outputs and value_info: every fixed dimension and element count within the limits
    (symbolic dimensions count as 1), before the checker, shape inference or the importer use them."""
    inits = {t.name for t in g.initializer}
    for kind, infos in (("input", g.input), ("output", g.output), ("value_info", g.value_info)):
        for v in infos:
            what = f"{where}: {kind} '{_name(v.name)}'"
            if not v.type.HasField("tensor_type"):
                if kind == "input" and v.name not in inits:
                    raise OnnxImportError(f"{what} is not a tensor (sequences, maps and optionals are not supported)")
                continue
            tt = v.type.tensor_type
            if tt.HasField("shape"):
                _shape([d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim], what)


def _check_text(g, opsets, where: str) -> None:
    """Every name the importer uses is text. Protobuf returns a string field that is not valid UTF-8 as
    ``bytes``, which would later break sorting and lookups; it is refused here once, naming the field."""
    def need(value: object, what: str) -> None:
        if not isinstance(value, str):
            raise OnnxImportError(f"{where}: {what} {_name(repr(value))} is not UTF-8 text")

    need(g.name, "the graph name")
    for o in opsets:
        need(o.domain, "an opset domain")
    for kind, infos in (("input", g.input), ("output", g.output), ("value_info", g.value_info),
                        ("initializer", g.initializer)):
        for v in infos:
            need(v.name, f"the name of {kind}")
    for node in g.node:
        for value, what in ((node.name, "the name of a node"), (node.op_type, "the operator of a node"),
                            (node.domain, "the domain of a node")):
            need(value, what)
        for t in (*node.input, *node.output):
            need(t, f"a tensor name of {_node_label(node)}")
        for a in node.attribute:
            need(a.name, f"an attribute name of {_node_label(node)}")


def _inference_message(text: str) -> str:
    """ONNX's shape inference message, led by the node it names in this importer's words."""
    first = text.splitlines()[0] if text else "unknown error"
    found = re.search(r"\(op_type:([^,]*), node name: ([^)]*)\): (.*)", first)
    if found is None:
        return f"shape inference failed: {_name(first)}"
    op, node, why = found.groups()
    why = why.replace("[ShapeInferenceError] ", "")
    return f"node '{_name(node)}' ({_name(op)}): shape inference failed: {_name(why)}"


def _check_nodes(m, where: str) -> None:
    """ONNX's checker on each node alone, so that an attribute of the wrong type, a missing required one or
    a wrong number of inputs is reported naming the node (the whole-model checker does not always)."""
    import onnx

    ctx = onnx.checker.C.CheckerContext()
    try:
        ctx.ir_version = m.ir_version
        ctx.opset_imports = {o.domain: o.version for o in m.opset_import}
    except (TypeError, ValueError, OverflowError) as e:
        raise OnnxImportError(f"{where}: invalid ONNX model: bad IR version or opset imports ({_name(e)})") from None
    for node in m.graph.node:
        try:
            onnx.checker.check_node(node, ctx)
        except (onnx.checker.ValidationError, ValueError, TypeError, RuntimeError) as e:
            raise OnnxImportError(f"{where}: {_node_label(node)}: invalid node: {_one_line(e)}") from None


def _unsupported(g) -> dict[str, list[str]]:
    """Unsupported operators of a graph: op label -> the labels of its nodes, in graph order."""
    out: dict[str, list[str]] = {}
    for node in g.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
            dom = f" (domain '{_name(node.domain)}')" if node.domain not in ("", "ai.onnx") else ""
            out.setdefault(f"'{_name(node.op_type)}'{dom}", []).append(_node_label(node))
    return out


def _check_operators(g, where: str) -> None:
    """Refuse unsupported operators before the checker and shape inference look at them: every one of
    them and its nodes in one message (the first five nodes of each op)."""
    bad = _unsupported(g)
    if not bad:
        return
    parts = []
    for op, nodes in bad.items():
        more = f" and {len(nodes) - 5} more" if len(nodes) > 5 else ""
        parts.append(f"{op} at {', '.join(nodes[:5])}{more}")
    if len(bad) == 1 and len(next(iter(bad.values()))) == 1:
        op, (node,) = next(iter(bad.items()))
        raise OnnxImportError(f"{where}: {node}: unsupported operator {op}")
    n = sum(map(len, bad.values()))
    raise OnnxImportError(f"{where}: {n} nodes of {len(bad)} unsupported operator{'s' if len(bad) > 1 else ''}: "
                          + "; ".join(parts))


def _parse(data: bytes, where: str):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        return onnx.load_model_from_string(data)
    except (DecodeError, ValueError, TypeError, RuntimeError, RecursionError, UnicodeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise OnnxImportError(f"{where}: not a valid ONNX model (truncated or not ONNX): {_name(why)}") from None


def _prepare(m, where: str, folder: Path | None, used: int) -> None:
    """Everything checked before the ONNX checker, shape inference or numpy see the model (in this order):
    structure, operators, declared shapes, every tensor's dims, type and bytes (external data read here,
    from inside the model's folder only), then the ONNX checker."""
    import onnx

    if not m.HasField("graph") or len(m.graph.node) == 0 or not m.opset_import:
        raise OnnxImportError(f"{where}: not a valid ONNX model (no graph, nodes or opset)")
    _check_text(m.graph, m.opset_import, where)
    _check_operators(m.graph, where)
    _check_declared_shapes(m.graph, where)
    external = _ExternalData(where, folder, used)
    for what, t in _graph_tensors(m.graph):
        _check_tensor(t, what, external)
    _check_nodes(m, where)
    try:
        onnx.checker.check_model(m)
    except (onnx.checker.ValidationError, ValueError, TypeError, RuntimeError) as e:
        raise OnnxImportError(f"{where}: invalid ONNX model: {_one_line(e)}") from None


def _load(model: Any):
    """The model (a copy when given a ModelProto) and the phrase naming it in messages, fully checked."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(model)
        where = f"model '{_name(m.graph.name or '<unnamed>')}'"
        _prepare(m, where, None, 0)
        return m, where
    path = Path(os.fspath(model))
    where = f"file '{path}'"
    data = _read_model_file(path, where)
    m = _parse(data, where)
    _prepare(m, where, path.parent, len(data))
    return m, where


def _folded_size(node, present: list) -> int:
    """An upper bound on the elements a folded node produces from its constant inputs ``present`` (in
    order, absent optional inputs left out), checked before it is evaluated (a hostile ConstantOfShape,
    broadcast or Gather must not allocate first)."""
    if node.op_type == "ConstantOfShape":
        dims = [int(d) for d in np.asarray(present[0]).reshape(-1)] if present else []
        return math.prod(max(d, 0) for d in dims)
    if node.op_type in ("Mul", "Add", "Sub", "Div"):
        try:
            return math.prod(np.broadcast_shapes(*(np.shape(v) for v in present)))
        except ValueError:
            return 0  # the evaluator reports the shapes
    if node.op_type == "Gather" and len(present) == 2:
        data, idx = present
        return data.size * max(1, idx.size)  # out = data.size / data.shape[axis] * idx.size
    return sum(v.size for v in present)


def _f32(v) -> np.ndarray:
    return np.asarray(v, np.float32)


#: ONNX Resize's coordinate transformations (output index x, scale s, input and output lengths d, o) to the
#: input coordinate, in float32 as onnxruntime computes them.
_RESIZE_COORDS = {
    "half_pixel": lambda x, s, d, o: _f32((x + np.float32(0.5)) / s - np.float32(0.5)),
    "pytorch_half_pixel": lambda x, s, d, o: _f32((x + np.float32(0.5)) / s - np.float32(0.5)) if o > 1 else _f32(x * 0),
    "align_corners": lambda x, s, d, o: _f32(x * np.float32(d - 1) / np.float32(o - 1)) if o > 1 else _f32(x * 0),
    "asymmetric": lambda x, s, d, o: _f32(x / s),
    "tf_half_pixel_for_nn": lambda x, s, d, o: _f32((x + np.float32(0.5)) / s),
}
#: ONNX Resize's nearest modes: the input index a coordinate reads.
_RESIZE_ROUNDING = {
    "round_prefer_floor": lambda c: np.where(c - np.floor(c) == np.float32(0.5), np.floor(c), np.round(c)),
    "round_prefer_ceil": lambda c: np.where(c - np.floor(c) == np.float32(0.5), np.ceil(c), np.round(c)),
    "floor": np.floor,
    "ceil": np.ceil,
}


class _Attrs:
    """A node's attributes with typed, range-checked access.

    A wrong attribute type (a float kernel, a string stride) or an absurd value (stride 0, negative pads,
    a 10^9 kernel) becomes an :class:`OnnxImportError` naming the node here, instead of a ``TypeError`` or a
    division by zero somewhere later."""

    def __init__(self, imp: "_Importer", node):
        import onnx

        self.imp, self.node = imp, node
        self.values: dict[str, Any] = {}
        for a in node.attribute:
            try:
                self.values[a.name] = onnx.helper.get_attribute_value(a)
            except (ValueError, TypeError) as e:
                raise imp.err(node, f"attribute '{_name(a.name)}' cannot be read: {_name(e)}") from None

    def has(self, name: str) -> bool:
        return name in self.values

    def _bad(self, name: str, value: object, want: str) -> OnnxImportError:
        return self.imp.err(self.node, f"attribute '{name}' must be {want}, got {_name(repr(value))}")

    def get_int(self, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        v = self.values.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._bad(name, v, "an integer")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"in [{lo}, {hi}]" if lo is not None and hi is not None else (f">= {lo}" if lo is not None
                                                                               else f"<= {hi}")
            raise self._bad(name, v, f"an integer {rng}")
        return v

    def get_ints(self, name: str, default: Sequence[int], n: int | None = None, lo: int = 0) -> tuple[int, ...]:
        """A list of ints, each >= ``lo`` and at most the ``dimension`` limit (kernels, strides, pads)."""
        v = self.values.get(name, default)
        if not isinstance(v, (list, tuple)) or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
            raise self._bad(name, v, "a list of integers")
        if n is not None and len(v) != n:
            raise self.imp.err(self.node, f"attribute '{name}' has {len(v)} values, expected {n} (only 2-D "
                                          f"spatial operators are supported)")
        for x in v:
            if x < lo:
                raise self._bad(name, list(v), f"integers >= {lo}")
            _limit("dimension", x, f"{self.imp.where}: {_node_label(self.node)}: attribute '{name}' value")
        return tuple(v)

    def get_float(self, name: str, default: float) -> float:
        v = self.values.get(name, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise self._bad(name, v, "a number")
        return float(v)

    def get_str(self, name: str, default: str) -> str:
        v = self.values.get(name, default)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if not isinstance(v, str):
            raise self._bad(name, v, "a string")
        return v


def _const_node_value(node) -> np.ndarray:
    """The value of a Constant node (exactly one value attribute; its tensor was checked by _check_tensor)."""
    from onnx import numpy_helper

    if len(node.attribute) != 1:
        raise ValueError(f"needs exactly one value attribute, has {len(node.attribute)}")
    a = node.attribute[0]
    if a.name == "value" and a.HasField("t"):
        return numpy_helper.to_array(a.t)
    if a.name == "value_float" and a.type == a.FLOAT:
        return np.array(a.f, np.float32)
    if a.name == "value_floats" and a.type == a.FLOATS:
        return np.array(list(a.floats), np.float32)
    if a.name == "value_int" and a.type == a.INT:
        return np.array(a.i, np.int64)
    if a.name == "value_ints" and a.type == a.INTS:
        return np.array(list(a.ints), np.int64)
    raise ValueError(f"Constant attribute '{_name(a.name)}' is not supported")


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
        except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError, ValueError, TypeError,
                RuntimeError) as e:
            raise OnnxImportError(f"{where}: {_inference_message(str(e))}") from None
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
        return OnnxImportError(f"{self.where}: {_node_label(node)}: {msg}")

    # bookkeeping -------------------------------------------------------------
    def _fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used_names:
            k += 1
            name = f"{base}_{k}"
        self.used_names.add(name)
        return name

    def add(self, onnx_node, layer: Layer, inputs: list[str], out: str | None = None) -> str:
        if len(set(inputs)) != len(inputs):  # the layer graph has one edge per (producer, consumer)
            raise self.err(onnx_node, "the same value feeds two of its inputs (e.g. x + x, Concat of x with "
                                      "itself); the layer graph does not support that")
        out = onnx_node.output[0] if out is None else out
        base = onnx_node.name or f"{onnx_node.op_type}_{onnx_node.output[0]}"
        name = self._fresh(base if out == onnx_node.output[0] else f"{base}_{out}")
        where = f"graph '{self.graph_name}', node '{name}' ({layer.kind})"
        try:
            shape = tuple(int(d) for d in layer.infer([self.nodes[i].shape for i in inputs], where))
        except GraphError as e:
            raise self.err(onnx_node, str(e)) from e
        shape = _shape(shape, f"{self.where}: {_node_label(onnx_node)}: output '{_name(out)}'")
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
    def act(self, node, tensor: str, float_ok: bool = False) -> tuple[str, QuantParams | None]:
        """IR node and quantization of an activation operand. ``float_ok``: the consumer is an element-wise
        host step, which may take the float output of another (a chain that onnxruntime's quantizer leaves
        unquantized, such as Sub then Div)."""
        if tensor in self.qalias:
            src = self.qalias[tensor]
            return src, self.nodes[src].quant
        if tensor in self.producer:
            src = self.producer[tensor]
            if self.qdq and float_ok and src in self.nodes and isinstance(self.nodes[src].layer, FLOAT_STEPS):
                return src, None
            if self.qdq:
                raise self.err(node, f"input '{tensor}' is a float tensor in a QDQ model (no QuantizeLinear/"
                                     f"DequantizeLinear pair before the node); mixed float/int8 graphs are not "
                                     f"supported")
            return self.producer[tensor], None
        if tensor in self.consts or tensor in self.qconsts:
            raise self.err(node, f"input '{tensor}' is a constant where an activation is expected")
        raise self.err(node, f"input '{tensor}' is not produced by any node")

    def real_const(self, node, tensor: str, what: str) -> np.ndarray:
        """The float32 values of a constant operand: an initializer or Constant, or a quantized constant
        behind a DequantizeLinear (its dequantized values)."""
        qc = self.qconsts.get(tensor)
        if qc is not None:
            return np.asarray(qc.real, np.float32)
        if not self.is_const(tensor):
            raise self.err(node, f"{what} '{_name(tensor)}' must be a constant")
        return np.asarray(self.const(node, tensor), np.float32)

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

    def _input_shape(self, inp) -> tuple[int, ...]:
        """A graph input's shape: fixed dimensions (checked against the limits), a symbolic batch as 1."""
        what = f"{self.where}: graph input '{_name(inp.name)}'"
        tt = inp.type.tensor_type
        if not tt.HasField("shape") or not tt.shape.dim:
            raise OnnxImportError(f"{what} has no shape (or is a scalar); a fixed-shape tensor is needed")
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif k == 0:
                dims.append(1)  # symbolic batch: batch 1
            else:
                raise OnnxImportError(f"{what} has a symbolic dimension {k} ('{_name(d.dim_param)}'); only the "
                                      f"batch dimension may be symbolic")
        return _shape(dims, what)

    # main ----------------------------------------------------------------------
    def run(self) -> LayerGraph:
        from onnx import numpy_helper

        g = self.m.graph
        for init in g.initializer:  # dims, type and bytes already checked by _check_tensor
            self.consts[init.name] = numpy_helper.to_array(init)
        self.graph_outputs = {o.name for o in g.output}
        self._q_inputs: set[str] = set()  # activation tensors followed by a QuantizeLinear
        self.qout: dict[str, tuple[str, QuantParams]] = {}  # Q output -> (IR node, quant)

        for inp in g.input:
            if inp.name in self.consts:
                continue
            dims = self._input_shape(inp)
            tt = inp.type.tensor_type
            name = self._fresh(inp.name)
            self.nodes[name] = _Node(Input(shape=tuple(dims)), [], [], tuple(dims), inp.name)
            self.producer[inp.name] = name
            if tt.elem_type in (2, 3):  # uint8/int8 graph input consumed through DequantizeLinear
                self.nodes[name].extra["int_input"] = True

        for node in g.node:  # _check_operators refused every operator without a handler
            if not node.output or not node.output[0]:
                raise self.err(node, "has no output")
            if node.op_type in FOLDED_WHEN_CONSTANT and node.input and \
                    all(not t or (t in self.consts and t not in self.qconsts) for t in node.input):
                self._fold(node)
                continue
            getattr(self, f"op_{node.op_type}")(node, _Attrs(self, node))

        outputs = []
        for o in g.output:
            src = self.qalias.get(o.name) or self.producer.get(o.name)
            if src is None:
                raise OnnxImportError(f"{self.where}: graph output '{o.name}' is not produced by a supported node")
            if src not in outputs:
                outputs.append(src)

        if self.qdq:
            consumers: dict[str, list[Layer]] = {}
            for nd in self.nodes.values():
                for i in nd.inputs:
                    consumers.setdefault(i, []).append(nd.layer)
            for n, nd in self.nodes.items():
                if nd.quant is None and isinstance(nd.layer, FLOAT_STEPS) and n not in outputs and \
                        all(isinstance(c, FLOAT_STEPS) for c in consumers.get(n, [])):
                    continue  # a float32 value between element-wise host steps (FloatTensor in the executor)
                if nd.quant is None:
                    raise OnnxImportError(f"{self.where}: node '{n}' ({nd.layer.kind}): output '{nd.tensor}' is "
                                          f"not quantized (no QuantizeLinear after it); mixed float/int8 graphs "
                                          f"are not supported")

        lg = LayerGraph(self.graph_name)
        try:  # validate() also checks every shape and each compute layer's MACs (layer_macs) once more
            for n, nd in self.nodes.items():
                dtype = nd.quant.dtype if nd.quant is not None else "float32"
                lg.add(n, nd.layer, nd.inputs, TensorInfo(nd.tensor, nd.shape, dtype, nd.quant))
                lg.g.nodes[n]["onnx_nodes"] = [x for x in nd.onnx_nodes if x]
                lg.g.nodes[n].update(nd.extra)
            lg.outputs = outputs
            lg.validate()
        except LimitError as e:
            raise OnnxLimitError(f"{self.where}: {e}") from None
        except GraphError as e:
            raise OnnxImportError(f"{self.where}: {e}") from e
        return lg

    # ---------------------------------------------------- constants and Q/DQ
    def _fold(self, node) -> None:
        """Evaluate a node whose inputs are all constants (the Shape-derived subgraphs exporters write
        around Reshape, Slice and Expand) with onnx's reference evaluator: its outputs become constants."""
        from onnx.reference import ReferenceEvaluator

        feeds = {t: np.asarray(self.consts[t]) for t in node.input if t}
        _limit("tensor_elements", _folded_size(node, list(feeds.values())),
               f"{self.where}: {_node_label(node)}: elements of its folded output")
        try:
            outs = ReferenceEvaluator(node).run(None, feeds)
        except Exception as e:  # the evaluator raises what numpy raises on bad operands
            raise self.err(node, f"cannot fold this constant subexpression: {_one_line(e)}") from None
        for name, v in zip(node.output, outs):
            if name:
                self.consts[name] = np.asarray(v)

    def op_Shape(self, node, a):
        """The static shape of a tensor (start/end as ONNX slices it), a constant for the subgraph after it."""
        t = node.input[0]
        if t in self.consts:
            shape = np.shape(self.consts[t])
        else:
            shape = self.nodes[self.act(node, t, float_ok=True)[0]].shape
        start, end = a.get_int("start", 0), a.get_int("end", len(shape))
        self.consts[node.output[0]] = np.array(tuple(shape)[start:end], np.int64)  # Python clamps as ONNX does

    def op_Cast(self, node, a):
        raise self.err(node, f"Cast of the activation '{_name(node.input[0])}' is not supported (only of constants, "
                             f"which are folded)")

    def op_ConstantOfShape(self, node, a):
        raise self.err(node, "ConstantOfShape needs a constant shape")

    def op_Constant(self, node, a):
        try:
            self.consts[node.output[0]] = _const_node_value(node)
        except ValueError as e:
            raise self.err(node, str(e)) from None

    def _qparams(self, node, a, scale_name: str, zp_name: str, ref_dtype=None) -> QuantParams:
        if scale_name not in self.consts or (zp_name and zp_name not in self.consts):
            raise self.err(node, "scale and zero point must be constants (initializers or Constant nodes)")
        scale = np.asarray(self.consts[scale_name])
        if scale.ndim > 1 or scale.size == 0 or not np.issubdtype(scale.dtype, np.number):
            raise self.err(node, f"scale '{_name(scale_name)}' of shape {scale.shape} ({scale.dtype}) is not a "
                                 f"number or a 1-D vector of numbers")
        with np.errstate(over="ignore", invalid="ignore"):
            scale = scale.astype(np.float32)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise self.err(node, f"scale '{_name(scale_name)}' must be positive and finite")
        if zp_name:
            zp_arr = np.asarray(self.consts[zp_name])
            if zp_arr.size != scale.size:
                raise self.err(node, f"zero point '{_name(zp_name)}' has {zp_arr.size} values, the scale "
                                     f"{scale.size}")
            zp_arr = zp_arr.reshape(scale.shape)
        else:
            zp_arr = np.zeros(scale.shape, ref_dtype or np.uint8)
        dtype = _QDTYPES.get(zp_arr.dtype)
        if dtype is None:
            raise self.err(node, f"quantized type {zp_arr.dtype} is not supported (int8, uint8, int32)")
        if a.get_int("block_size", 0):
            raise self.err(node, "blocked quantization is not supported")
        axis = None
        if scale.ndim == 1 and scale.size > 1:
            axis = a.get_int("axis", 1)
        elif scale.ndim == 1:  # a [1]-shaped scale is per tensor
            scale, zp_arr = scale.reshape(()), zp_arr.reshape(())
        return QuantParams(scale=scale, zero_point=zp_arr.astype(np.int64), dtype=dtype, axis=axis)

    def _const_axis(self, node, qp: QuantParams, shape: tuple[int, ...], tensor: str) -> QuantParams:
        """``qp`` with its per-channel axis checked against the constant it quantizes and made non-negative."""
        if qp.axis is None:
            return qp
        r = len(shape)
        if not -r <= qp.axis < r:
            raise self.err(node, f"axis {qp.axis} is out of range for '{_name(tensor)}' of shape {shape}")
        axis = qp.axis % r
        if shape[axis] != np.size(qp.scale):
            raise self.err(node, f"{np.size(qp.scale)} scales for the {shape[axis]} channels of '{_name(tensor)}' "
                                 f"(shape {shape}, axis {axis})")
        return QuantParams(qp.scale, qp.zero_point, qp.dtype, axis)

    def op_QuantizeLinear(self, node, a):
        x, s = node.input[0], node.input[1]
        zp = node.input[2] if len(node.input) > 2 else ""
        if a.get_int("output_dtype", 0) and not zp:
            raise self.err(node, "output_dtype without a zero point is not supported")
        qp = self._qparams(node, a, s, zp)
        if qp.dtype == "int32":
            raise self.err(node, "int32 activations are not supported")
        if self.is_const(x):  # quantizing a constant: fold it
            real = np.asarray(self.const(node, x))
            if not np.issubdtype(real.dtype, np.number) or not np.all(np.isfinite(real)):
                raise self.err(node, f"constant '{_name(x)}' is not finite numbers")
            qp = self._const_axis(node, qp, real.shape, x)
            info = np.iinfo(np.dtype(qp.dtype))
            with np.errstate(over="ignore"):
                q = np.rint(real / _bcast(qp.scale, qp.axis, real.ndim)) + _bcast(qp.zero_point, qp.axis, real.ndim)
            self.consts[node.output[0]] = np.clip(q, info.min, info.max).astype(qp.dtype)  # DQ makes it a qconst
            return
        if qp.axis is not None:
            raise self.err(node, "per-channel activation quantization is not supported")
        src, _ = (self.producer[x], None) if x in self.producer else self.act(node, x)
        nd = self.nodes[src]
        if nd.quant is not None and nd.quant != qp:
            raise self.err(node, f"the value of '{_name(x)}' (node '{_name(src)}') is quantized twice with "
                                 f"different parameters")
        nd.quant = qp
        nd.tensor = node.output[0]
        self._q_inputs.add(x)
        self.qout[node.output[0]] = (src, qp)

    def op_DequantizeLinear(self, node, a):
        x, s = node.input[0], node.input[1]
        zp = node.input[2] if len(node.input) > 2 else ""
        if x in self.qconsts:
            raise self.err(node, f"input '{_name(x)}' is already dequantized")
        if self.is_const(x):
            q = np.asarray(self.consts[x])
            qp = self._qparams(node, a, s, zp, ref_dtype=q.dtype)
            if _QDTYPES.get(q.dtype) != qp.dtype:
                raise self.err(node, f"constant '{_name(x)}' has type {q.dtype}, zero point {qp.dtype}")
            self.qconsts[node.output[0]] = _QConst(q, self._const_axis(node, qp, q.shape, x), x)
            return
        qp = self._qparams(node, a, s, zp)
        if qp.axis is not None:
            raise self.err(node, "per-channel activation quantization is not supported")
        if x in self.qout:
            src, qq = self.qout[x]
            if qq != qp:
                raise self.err(node, f"dequantizes '{_name(x)}' with other parameters than its QuantizeLinear")
        elif x in self.producer and isinstance(self.nodes[self.producer[x]].layer, Input) \
                and self.nodes[self.producer[x]].extra.get("int_input"):
            src = self.producer[x]
            self.nodes[src].quant = qp
        else:
            raise self.err(node, f"input '{_name(x)}' is neither a constant nor the output of a QuantizeLinear")
        self.qalias[node.output[0]] = src

    # ------------------------------------------------------------- compute
    def _pads(self, node, a, in_hw, kernel, stride, dilation) -> tuple[int, int, int, int]:
        auto = a.get_str("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            return a.get_ints("pads", (0, 0, 0, 0), n=4, lo=0)  # ONNX order (top, left, bottom, right)
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
        raise self.err(node, f"auto_pad '{_name(auto)}' is not supported")

    def op_Conv(self, node, a):
        x, quant_x = self.act(node, node.input[0])
        wname = node.input[1]
        if not self.is_const(wname):
            raise self.err(node, f"weight '{_name(wname)}' must be a constant")
        xs = self.nodes[x].shape
        w_real = self.const(node, wname)
        if w_real.ndim != 4 or len(xs) != 4 or 0 in w_real.shape:
            raise self.err(node, f"only 2-D convolutions are supported (weight shape {w_real.shape}, input {xs})")
        kernel = a.get_ints("kernel_shape", w_real.shape[2:], n=2, lo=1)
        if kernel != tuple(w_real.shape[2:]):
            raise self.err(node, f"kernel_shape {kernel} does not match the weight {w_real.shape}")
        stride = a.get_ints("strides", (1, 1), n=2, lo=1)
        dilation = a.get_ints("dilations", (1, 1), n=2, lo=1)
        groups = a.get_int("group", 1, lo=1, hi=xs[1])
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
        if a.get_int("transA", 0):
            raise self.err(node, "transA=1 is not supported")
        alpha, beta = a.get_float("alpha", 1.0), a.get_float("beta", 1.0)
        if alpha != 1.0 or beta != 1.0:
            raise self.err(node, f"alpha={alpha}, beta={beta}: only 1 is supported")
        trans_b = a.get_int("transB", 0, lo=0, hi=1)
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
        elif len(node.input) != 5 or not all(self.is_const(t) for t in node.input[1:5]):
            why = "scale, bias, mean and variance must be constants"
        elif any(np.size(self.const(node, t)) != conv.layer.out_channels for t in node.input[1:5]):
            why = f"scale, bias, mean and variance must have one value per channel ({conv.layer.out_channels})"
        if why:
            raise self.err(node, f"cannot fold BatchNormalization into the preceding Conv: {why}")
        gamma, beta, mean, var = (np.asarray(self.const(node, t), np.float64).reshape(-1) for t in node.input[1:5])
        eps = a.get_float("epsilon", 1e-5)
        if not np.all(var + eps > 0) or not all(np.all(np.isfinite(v)) for v in (gamma, beta, mean, var)):
            raise self.err(node, "cannot fold BatchNormalization: variance + epsilon must be positive and every "
                                 "parameter finite")
        f = gamma / np.sqrt(var + eps)
        L = conv.layer
        b = L.bias.astype(np.float64) if L.bias is not None else np.zeros(L.out_channels)
        L.weight = (L.weight.astype(np.float64) * f[:, None, None, None]).astype(np.float32)
        L.bias = ((b - mean) * f + beta).astype(np.float32)
        self.alias(node, src)

    def _unary(self, node, fn: UnaryFn, **params) -> None:
        x, _ = self.act(node, node.input[0], float_ok=True)
        self.add(node, Unary(fn=fn, **params), [x])

    def op_Sigmoid(self, node, a):
        self._unary(node, UnaryFn.SIGMOID)

    def op_HardSigmoid(self, node, a):
        self._unary(node, UnaryFn.HARD_SIGMOID, alpha=a.get_float("alpha", 0.2), beta=a.get_float("beta", 0.5))

    def op_HardSwish(self, node, a):
        self._unary(node, UnaryFn.HARD_SWISH)

    def op_Erf(self, node, a):
        self._unary(node, UnaryFn.ERF)

    def op_Gelu(self, node, a):
        approx = a.get_str("approximate", "none")
        if approx not in ("none", "tanh"):
            raise self.err(node, f"attribute 'approximate' is '{_name(approx)}', expected 'none' or 'tanh'")
        self._unary(node, UnaryFn.GELU if approx == "none" else UnaryFn.GELU_TANH)

    def op_Softmax(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        rank = len(self.nodes[x].shape)
        axis = a.get_int("axis", -1 if self.opset >= 13 else 1)
        (ax,) = self._axes(node, [axis], rank, "attribute 'axis'")
        if self.opset < 13 and ax != rank - 1:
            raise self.err(node, f"attribute 'axis' {axis}: before opset 13 Softmax flattens from the axis on; only "
                                 f"the last axis ({rank - 1}) is supported there")
        self.add(node, Softmax(axis=ax), [x])

    def op_LayerNormalization(self, node, a):
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.err(node, "the Mean and InvStdDev outputs are not supported")
        if a.get_int("stash_type", 1) != 1:
            raise self.err(node, "attribute 'stash_type' must be 1 (float32)")
        x, _ = self.act(node, node.input[0], float_ok=True)
        rank = len(self.nodes[x].shape)
        (ax,) = self._axes(node, [a.get_int("axis", -1)], rank, "attribute 'axis'")
        params = []
        for k, what in ((1, "scale"), (2, "bias")):
            if len(node.input) <= k or not node.input[k]:
                params.append(None)
                continue
            params.append(self.real_const(node, node.input[k], what))
        self.add(node, LayerNorm(axis=ax, epsilon=a.get_float("epsilon", 1e-5), scale=params[0], bias=params[1]), [x])

    def _binary(self, node, fn: BinaryFn) -> None:
        """Mul, Sub, Div of two activations or of an activation and a constant (a quantized constant is
        taken at its dequantized values), broadcast as ONNX broadcasts."""
        l, r = node.input[0], node.input[1]
        if self.is_const(l) and self.is_const(r):
            raise self.err(node, "both operands are constants")
        if self.is_const(l) or self.is_const(r):
            cname, xname = (l, r) if self.is_const(l) else (r, l)
            c = self.real_const(node, cname, "constant operand")
            x, _ = self.act(node, xname, float_ok=True)
            layer = Binary(fn=fn, const=c, const_left=cname == l)
            self.add(node, layer, [x])
            return
        x, _ = self.act(node, l, float_ok=True)
        y, _ = self.act(node, r, float_ok=True)
        self.add(node, Binary(fn=fn), [x, y])

    def op_Mul(self, node, a):
        self._binary(node, BinaryFn.MUL)

    def op_Sub(self, node, a):
        self._binary(node, BinaryFn.SUB)

    def op_Div(self, node, a):
        self._binary(node, BinaryFn.DIV)

    def op_Relu(self, node, a):
        x, _ = self.act(node, node.input[0])
        self.add(node, Relu(), [x])

    def op_Clip(self, node, a):
        x, _ = self.act(node, node.input[0])
        if self.opset < 11:
            lo, hi = a.get_float("min", -math.inf), a.get_float("max", math.inf)
        else:
            vals = []
            for i, default in ((1, -math.inf), (2, math.inf)):
                t = node.input[i] if len(node.input) > i else ""
                if not t:
                    vals.append(default)
                elif not self.is_const(t):
                    raise self.err(node, f"bound '{_name(t)}' must be a constant")
                else:
                    v = np.asarray(self.const(node, t))
                    if v.size != 1 or not np.issubdtype(v.dtype, np.number) or np.isnan(v).any():
                        raise self.err(node, f"bound '{_name(t)}' must be a single number")
                    vals.append(float(v.reshape(())))
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
        if any(d != 1 for d in a.get_ints("dilations", (1, 1))):
            raise self.err(node, "dilated pooling is not supported")
        if a.get_int("storage_order", 0):
            raise self.err(node, "storage_order=1 is not supported")
        xs = self.nodes[x].shape
        if not a.has("kernel_shape"):
            raise self.err(node, "attribute 'kernel_shape' is required")
        if len(xs) != 4:
            raise self.err(node, "only 2-D pooling is supported")
        kernel = a.get_ints("kernel_shape", (), n=2, lo=1)
        stride = a.get_ints("strides", (1, 1), n=2, lo=1)
        pads = self._pads(node, a, xs[2:], kernel, stride, (1, 1))
        ceil = (0, 0)
        if a.get_int("ceil_mode", 0, lo=0, hi=1):
            if a.get_str("auto_pad", "NOTSET") not in ("NOTSET", "", "VALID"):
                raise self.err(node, "ceil_mode=1 with auto_pad SAME_UPPER/SAME_LOWER is not supported")
            ceil = tuple(ceil_extra(n, k, st, lo, hi) for n, k, st, lo, hi in
                         zip(xs[2:], kernel, stride, pads[:2], pads[2:]))
        self.add(node, cls(kernel=kernel, stride=stride, pads=pads, ceil_pads=ceil, **extra), [x])

    def op_MaxPool(self, node, a):
        self._pool(node, a, MaxPool)

    def op_AveragePool(self, node, a):
        self._pool(node, a, AveragePool, count_include_pad=bool(a.get_int("count_include_pad", 0)))

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
        x, _ = self.act(node, node.input[0], float_ok=True)
        r = len(self.nodes[x].shape)
        axis = a.get_int("axis", 1, lo=-r, hi=r)
        self.add(node, Flatten(axis=axis + r if axis < 0 else axis), [x])

    def op_Reshape(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        sname = node.input[1]
        if not self.is_const(sname):
            raise self.err(node, f"shape '{_name(sname)}' must be a constant")
        value = np.asarray(self.const(node, sname))
        if not np.issubdtype(value.dtype, np.integer) or value.ndim != 1:
            raise self.err(node, f"shape '{_name(sname)}' must be a 1-D integer tensor, got {value.dtype} "
                                 f"{value.shape}")
        shape = [int(v) for v in value]
        xs = self.nodes[x].shape
        if not a.get_int("allowzero", 0):
            shape = [xs[i] if v == 0 and i < len(xs) else v for i, v in enumerate(shape)]
        if shape.count(-1) > 1 or any(v < -1 for v in shape):
            raise self.err(node, f"shape {format_shape(shape)}: at most one -1 and no other negative size")
        if -1 in shape:
            known = math.prod(_shape([v for v in shape if v != -1], f"{self.where}: {_node_label(node)}: shape"))
            if known == 0 or math.prod(xs) % known:
                raise self.err(node, f"cannot reshape {format_shape(xs)} to {format_shape(shape)}")
            shape[shape.index(-1)] = math.prod(xs) // known
        self.add(node, Reshape(shape=tuple(shape)), [x])

    def _ints_input(self, node, k: int, what: str) -> list[int] | None:
        """Input ``k`` of ``node`` as a list of ints (it must be a constant), or None if absent."""
        if len(node.input) <= k or not node.input[k]:
            return None
        name = node.input[k]
        if not self.is_const(name):
            raise self.err(node, f"{what} '{_name(name)}' must be a constant")
        v = np.asarray(self.const(node, name))
        if not np.issubdtype(v.dtype, np.integer) or v.ndim > 1:
            raise self.err(node, f"{what} '{_name(name)}' must be a 1-D integer tensor, got {v.dtype} {v.shape}")
        return [int(x) for x in v.reshape(-1)]

    def _axes(self, node, axes: Sequence[int], rank: int, what: str = "axes") -> list[int]:
        out = []
        for ax in axes:
            if not -rank <= ax < rank:
                raise self.err(node, f"{what} {list(axes)}: axis {ax} out of range for rank {rank}")
            out.append(ax % rank)
        if len(set(out)) != len(out):
            raise self.err(node, f"{what} {list(axes)} repeat an axis")
        return out

    def op_Transpose(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        rank = len(self.nodes[x].shape)
        perm = a.get_ints("perm", tuple(reversed(range(rank))))
        if sorted(perm) != list(range(rank)):
            raise self.err(node, f"attribute 'perm' {list(perm)} is not a permutation of {rank} axes")
        self.add(node, Transpose(perm=tuple(perm)), [x])

    def op_Slice(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        xs = self.nodes[x].shape
        starts, ends = self._ints_input(node, 1, "starts"), self._ints_input(node, 2, "ends")
        if starts is None or ends is None or len(starts) != len(ends):
            raise self.err(node, "starts and ends must be constants of one length")
        axes = self._axes(node, self._ints_input(node, 3, "axes") or list(range(len(starts))), len(xs))
        steps = self._ints_input(node, 4, "steps") or [1] * len(starts)
        if len(axes) != len(starts) or len(steps) != len(starts):
            raise self.err(node, "starts, ends, axes and steps must have one length")
        if any(st < 1 for st in steps):
            raise self.err(node, f"steps {steps}: only positive steps are supported")
        slices = [(0, d, 1) for d in xs]
        for ax, b, e, st in zip(axes, starts, ends, steps):
            slices[ax] = slice(b, e, st).indices(xs[ax])  # positive steps: ONNX's clamping is Python's
        self.add(node, Slice(slices=tuple(slices)), [x])

    def op_Split(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        xs = self.nodes[x].shape
        (axis,) = self._axes(node, [a.get_int("axis", 0)], len(xs), "attribute 'axis'")
        sizes = self._ints_input(node, 1, "split") if self.opset >= 13 else list(a.get_ints("split", ())) or None
        n = len(node.output)
        if sizes is None:
            k = a.get_int("num_outputs", n, lo=1)
            if k != n:
                raise self.err(node, f"attribute 'num_outputs' {k} != {n} outputs")
            step = -(-xs[axis] // n)
            sizes = [min(step, xs[axis] - i * step) for i in range(n)]
        if len(sizes) != n or sum(sizes) != xs[axis] or min(sizes) < 1:
            raise self.err(node, f"split {sizes} does not divide axis {axis} of {format_shape(xs)} into {n} parts")
        lo = 0
        for out, size in zip(node.output, sizes):
            slices = [(0, d, 1) for d in xs]
            slices[axis] = (lo, lo + size, 1)
            lo += size
            if out:
                self.add(node, Slice(slices=tuple(slices)), [x], out=out)

    def op_Pad(self, node, a):
        x, quant = self.act(node, node.input[0])
        xs = self.nodes[x].shape
        mode = a.get_str("mode", "constant")
        if mode not in ("constant", "reflect", "edge"):
            raise self.err(node, f"attribute 'mode' is '{_name(mode)}', expected constant, reflect or edge")
        pads = self._ints_input(node, 1, "pads") if self.opset >= 11 else list(a.get_ints("pads", ()))
        if pads is None or len(pads) % 2:
            raise self.err(node, "pads must be a constant of even length")
        axes = self._axes(node, self._ints_input(node, 3, "axes") or list(range(len(pads) // 2)), len(xs))
        if len(axes) * 2 != len(pads) or min(pads, default=0) < 0:
            raise self.err(node, f"pads {pads}: one begin and one end per axis, none negative")
        per_axis = [(0, 0)] * len(xs)
        for i, ax in enumerate(axes):
            per_axis[ax] = (pads[i], pads[i + len(axes)])
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            v = self.real_const(node, node.input[2], "constant_value").reshape(-1)
            if v.size != 1:
                raise self.err(node, f"constant_value '{_name(node.input[2])}' must be one value")
            value = float(v[0])
        elif self.opset < 11:
            value = a.get_float("value", 0.0)
        self.add(node, Pad(pads=tuple(per_axis), mode=mode, value=value), [x])

    def op_Gather(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        xs = self.nodes[x].shape
        (axis,) = self._axes(node, [a.get_int("axis", 0)], len(xs), "attribute 'axis'")
        if not self.is_const(node.input[1]):
            raise self.err(node, f"indices '{_name(node.input[1])}' must be a constant")
        idx = np.asarray(self.const(node, node.input[1]))
        if not np.issubdtype(idx.dtype, np.integer):
            raise self.err(node, f"indices '{_name(node.input[1])}' must be integers, got {idx.dtype}")
        if idx.size and (idx.min() < -xs[axis] or idx.max() >= xs[axis]):
            raise self.err(node, f"indices {idx.min()}..{idx.max()} outside axis {axis} of {format_shape(xs)}")
        self.add(node, Gather(axis=axis, indices=np.where(idx < 0, idx + xs[axis], idx).astype(np.int64)), [x])

    def op_Resize(self, node, a):
        """Nearest-neighbour Resize: per axis, the input index each output index reads (ONNX's coordinate
        transformations and nearest rounding, in float32 as onnxruntime computes them)."""
        x, _ = self.act(node, node.input[0], float_ok=True)
        xs = self.nodes[x].shape
        mode = a.get_str("mode", "nearest")
        if mode != "nearest":
            raise self.err(node, f"attribute 'mode' is '{_name(mode)}': only 'nearest' is supported")
        ctm = a.get_str("coordinate_transformation_mode", "half_pixel")
        if ctm not in _RESIZE_COORDS:
            raise self.err(node, f"attribute 'coordinate_transformation_mode' '{_name(ctm)}' is not supported "
                                 f"(one of {', '.join(_RESIZE_COORDS)})")
        nearest = a.get_str("nearest_mode", "round_prefer_floor")
        if nearest not in _RESIZE_ROUNDING:
            raise self.err(node, f"attribute 'nearest_mode' '{_name(nearest)}' is not supported")
        if a.get_int("antialias", 0) or a.get_ints("axes", ()) or a.get_str("keep_aspect_ratio_policy", "stretch") != "stretch":
            raise self.err(node, "antialias, axes and keep_aspect_ratio_policy other than the defaults are not supported")
        k_scales, k_sizes = (1, None) if self.opset < 11 else (2, 3)
        scales = sizes = None
        if len(node.input) > k_scales and node.input[k_scales]:
            t = node.input[k_scales]
            if not self.is_const(t):
                raise self.err(node, f"scales '{_name(t)}' must be a constant")
            scales = [float(v) for v in np.asarray(self.const(node, t), np.float32).reshape(-1)]
        if k_sizes is not None:
            sizes = self._ints_input(node, k_sizes, "sizes")
        if not scales and not sizes:
            raise self.err(node, "needs constant scales or sizes")
        if scales and (len(scales) != len(xs) or min(scales) <= 0):
            raise self.err(node, f"scales {scales}: one positive scale per axis of {format_shape(xs)}")
        if sizes and (len(sizes) != len(xs) or min(sizes) < 1):
            raise self.err(node, f"sizes {sizes}: one size >= 1 per axis of {format_shape(xs)}")
        index = []
        for ax, d in enumerate(xs):
            if sizes:
                o = sizes[ax]
                if o % d and not (d % o == 0 and (d // o) & (d // o - 1) == 0):
                    # onnxruntime's float rounding of output / input differs between its coordinate modes
                    raise self.err(node, f"sizes {sizes}: axis {ax} resized from {d} to {o}; only sizes that are "
                                         f"whole multiples of the input, or a power-of-two fraction of it, are "
                                         f"supported (give scales instead)")
                sc = np.float32(o) / np.float32(d)
            else:
                sc = np.float32(scales[ax])
                o = int(np.floor(np.float32(d) * sc))
            _limit("dimension", o, f"{self.where}: {_node_label(node)}: output axis {ax}")
            if o < 1:
                raise self.err(node, f"axis {ax} of {format_shape(xs)} resizes to {o} elements")
            orig = _RESIZE_COORDS[ctm](np.arange(o, dtype=np.float32), sc, d, o)
            index.append(tuple(int(i) for i in np.clip(_RESIZE_ROUNDING[nearest](orig), 0, d - 1)))
        if all(len(ix) == d for ix, d in zip(index, xs)):  # onnxruntime copies a resize to the same shape
            index = [tuple(range(d)) for d in xs]
        self.add(node, Resize(index=tuple(index)), [x])

    def op_ReduceMean(self, node, a):
        x, _ = self.act(node, node.input[0], float_ok=True)
        xs = self.nodes[x].shape
        axes = self._ints_input(node, 1, "axes") if self.opset >= 18 else (list(a.get_ints("axes", ())) or None)
        if axes is None or not axes:
            if a.get_int("noop_with_empty_axes", 0):
                raise self.err(node, "noop_with_empty_axes=1 is not supported")
            axes = list(range(len(xs)))
        axes = sorted(self._axes(node, axes, len(xs)))
        self.add(node, ReduceMean(axes=tuple(axes), keepdims=bool(a.get_int("keepdims", 1, lo=0, hi=1))), [x])

    def _reshape_to(self, node, shape: Sequence[int]) -> None:
        x, _ = self.act(node, node.input[0], float_ok=True)
        self.add(node, Reshape(shape=tuple(int(d) for d in shape)), [x])

    def op_Squeeze(self, node, a):
        xs = self.nodes[self.act(node, node.input[0], float_ok=True)[0]].shape
        axes = self._ints_input(node, 1, "axes") if self.opset >= 13 else (list(a.get_ints("axes", ())) or None)
        axes = [i for i, d in enumerate(xs) if d == 1] if axes is None else self._axes(node, axes, len(xs))
        if any(xs[ax] != 1 for ax in axes):
            raise self.err(node, f"axes {axes}: cannot squeeze a dimension that is not 1 in {format_shape(xs)}")
        self._reshape_to(node, [d for i, d in enumerate(xs) if i not in axes])

    def op_Unsqueeze(self, node, a):
        xs = self.nodes[self.act(node, node.input[0], float_ok=True)[0]].shape
        axes = self._ints_input(node, 1, "axes") if self.opset >= 13 else list(a.get_ints("axes", ()))
        if not axes:
            raise self.err(node, "axes are required")
        rank = len(xs) + len(axes)
        axes = self._axes(node, axes, rank)
        it = iter(xs)
        self._reshape_to(node, [1 if i in axes else next(it) for i in range(rank)])

    def op_Concat(self, node, a):
        ins = [self.act(node, t)[0] for t in node.input]
        if not a.has("axis"):
            raise self.err(node, "attribute 'axis' is required")
        r = len(self.nodes[ins[0]].shape)
        axis = a.get_int("axis", 0, lo=-r, hi=r - 1)
        self.add(node, Concat(axis=axis + r if axis < 0 else axis), ins)

    def op_Identity(self, node, a):
        x, _ = self.act(node, node.input[0])
        self.alias(node, x)

    def op_Dropout(self, node, a):
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            raise self.err(node, "the mask output is not supported")
        x, _ = self.act(node, node.input[0])
        self.alias(node, x)


#: the operators the importer handles (domain "" or "ai.onnx"); anything else is refused before the ONNX
#: checker and shape inference run
#: Operators evaluated at import when every input is a constant (not a quantized one): what exporters build
#: from Shape to compute the operands of Reshape, Slice or Expand.
FOLDED_WHEN_CONSTANT = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Add", "Sub",
                                  "Div", "Reshape", "ConstantOfShape", "Transpose", "Identity"})

SUPPORTED_OPS = frozenset(n[3:] for n in vars(_Importer) if n.startswith("op_"))

#: Where the nodes of each supported operator run once imported (``hwgen check``; docs/ARCHITECTURE.md's
#: op table): on the array, as a host step of the executor, or folded at import (quantization nodes,
#: constants, BatchNormalization into the Conv before it, identities). A MatMul runs on the array whether its
#: right operand is a constant (a Gemm) or an activation (mappings.zero_points).
OP_PLACEMENT: dict[str, str] = {
    "Conv": "accelerator", "Gemm": "accelerator", "MatMul": "accelerator",
    "QuantizeLinear": "folded", "DequantizeLinear": "folded", "Constant": "folded", "BatchNormalization": "folded",
    "Identity": "folded", "Dropout": "folded", "Squeeze": "host", "Unsqueeze": "host",
    "Transpose": "host", "Slice": "host", "Split": "host", "ReduceMean": "host", "Softmax": "host",
    "LayerNormalization": "host", "Erf": "host", "Gelu": "host", "Pad": "host", "Gather": "host",
    "Shape": "folded", "Cast": "folded", "ConstantOfShape": "folded", "Resize": "host",
    "Relu": "host", "Clip": "host", "Sigmoid": "host", "HardSigmoid": "host", "HardSwish": "host",
    "Mul": "host", "Sub": "host", "Div": "host", "MaxPool": "host", "AveragePool": "host", "GlobalAveragePool": "host",
    "Add": "host", "Flatten": "host", "Reshape": "host", "Concat": "host",
}
assert set(OP_PLACEMENT) == SUPPORTED_OPS, "every supported operator has a placement"


@dataclass(frozen=True)
class OpSupport:
    """One row of a model's op-support table: ``count`` nodes of operator ``op`` that run ``where``
    ("accelerator", "host", "folded" or "unsupported"); ``nodes``: their names, in graph order."""

    op: str
    where: str
    count: int
    nodes: tuple[str, ...]


def op_support(model: Any) -> list[OpSupport]:
    """The op-support table of an ONNX model (a path or a ModelProto) without importing it: per operator
    and placement (:data:`OP_PLACEMENT`), how many nodes, in order of first appearance. The file is read
    and parsed as :func:`import_onnx` reads it (no external data, nothing executed); raises
    :class:`OnnxImportError` for a file that is not an ONNX model."""
    import onnx

    if isinstance(model, onnx.ModelProto):
        m, where = model, f"model '{_name(model.graph.name or '<unnamed>')}'"
    else:
        path = Path(os.fspath(model))
        where = f"file '{path}'"
        m = _parse(_read_model_file(path, where), where)
    if not m.HasField("graph") or len(m.graph.node) == 0:
        raise OnnxImportError(f"{where}: not a valid ONNX model (no graph or nodes)")
    rows: dict[tuple[str, str], list[str]] = {}
    for node in m.graph.node:
        standard = node.domain in ("", "ai.onnx")
        op = node.op_type if standard else f"{node.domain}.{node.op_type}"
        where_ = OP_PLACEMENT.get(node.op_type, "unsupported") if standard else "unsupported"
        label = node.name or (node.output[0] if len(node.output) else "") or "<unnamed>"
        rows.setdefault((_name(op), where_), []).append(_name(label))
    return [OpSupport(op, w, len(nodes), tuple(nodes)) for (op, w), nodes in rows.items()]


def _bcast(v: np.ndarray, axis: int | None, ndim: int) -> np.ndarray:
    v = np.asarray(v)
    if axis is None or v.ndim == 0:
        return v
    shape = [1] * ndim
    shape[axis] = -1
    return v.reshape(shape)


def import_onnx(model: Any, name: str | None = None, batch: int | None = None) -> LayerGraph:
    """Import an ONNX model (a path or an ``onnx.ModelProto``) as a validated :class:`LayerGraph`.

    ``name`` names the graph (default: the ONNX graph's name). ``batch``: the size a symbolic batch
    dimension (the first dimension of a graph input) takes, before shape inference, so every shape and
    every Shape-derived constant follows it (None: 1); a graph input whose batch is fixed must have this
    size.
    """
    m, where = _load(model)
    if batch is not None:
        _set_batch(m, where, batch)
    return _Importer(m, where, name).run()


def _set_batch(m, where: str, batch: int) -> None:
    """Give the symbolic batch dimension of every graph input the size ``batch`` (checked: an integer from 1
    to the ``tensor_elements`` limit; a fixed batch must already be it)."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= limits().tensor_elements:
        raise OnnxImportError(f"{where}: batch {batch!r}: must be an integer from 1 to {limits().tensor_elements}")
    inits = {i.name for i in m.graph.initializer}
    for inp in m.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name in inits or not inp.type.tensor_type.HasField("shape") or not dims:
            continue
        if dims[0].HasField("dim_value"):
            if dims[0].dim_value != batch:
                raise OnnxImportError(f"{where}: graph input '{_name(inp.name)}' has a fixed batch of "
                                      f"{dims[0].dim_value}, not {batch}")
        else:
            dims[0].dim_value = int(batch)
