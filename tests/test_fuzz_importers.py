"""Fuzzing the importers (issue 7): whatever the bytes, an importer returns a graph or raises its own error
class, never anything else, and never opens a file outside the model's folder.

(a) random byte strings and mutations (bit flips, truncations, insertions) of a serialized model whose
    weights are external data beside it, and random external-data locations, offsets and lengths;
(b) structurally valid onnx.helper graphs (float and QDQ) with random shapes and attributes, absurd ones
    included (huge, zero and negative sizes, wrong attribute types, bad axes, bad scales);
(c) random CSV text and mutated valid SCALE-Sim topologies.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from mappings.graph import LayerGraph
from mappings.onnx_import import OnnxImportError, import_onnx
from mappings.onnx_models import mlp
from mappings.scalesim_csv import ScaleSimFormatError, parse_topology, read_topology
from test_hostile_models import assert_inside, record_opens, save_external

#: examples per fuzz test; HWGEN_FUZZ_EXAMPLES=5000 for a long hunt
FUZZ = settings(max_examples=int(os.environ.get("HWGEN_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def _import_or_refuse(model) -> LayerGraph | None:
    """The importer's contract: a graph or an OnnxImportError (anything else propagates and fails the test)."""
    try:
        g = import_onnx(model)
    except OnnxImportError as e:
        assert "\n" not in str(e) and len(str(e)) < 2000, str(e)
        return None
    assert isinstance(g, LayerGraph) and g.shapes
    return g


# ----------------------------------------------------------- (a) bytes of a model file
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A folder with an external-data model in 'model/' and, outside it, tempting copies of its weights."""
    root = tmp_path_factory.mktemp("fuzz_onnx")
    path = save_external(mlp(seed=5, features=(6, 5, 4, 3)), root / "model")
    weights = (path.parent / "weights.bin").read_bytes()
    (root / "weights.bin").write_bytes(weights)  # what '../weights.bin' would read
    (root / "model" / "link.bin").symlink_to(root / "weights.bin")
    return root


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("set"), st.integers(0, 1 << 20), st.integers(0, 255)),
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        if not b:
            break
        pos %= len(b)
        if op == "flip":
            b[pos] ^= 1 << arg
        elif op == "truncate":
            del b[pos:]
        elif op == "insert":
            b[pos:pos] = arg
        else:
            b[pos] = arg
    return bytes(b)


def _fresh_copy(model_dir: Path, data: bytes) -> Path:
    """A new folder inside model/ (so the weights and link are beside it) holding ``data`` as the model."""
    folder = Path(tempfile.mkdtemp(dir=model_dir / "model"))
    for name in ("weights.bin", "link.bin"):
        src = model_dir / "model" / name
        (folder / name).symlink_to(os.readlink(src)) if src.is_symlink() else (folder / name).write_bytes(
            src.read_bytes())
    path = folder / "m.onnx"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.one_of(st.binary(max_size=512), st.none()), ops=st.lists(MUTATION, min_size=1, max_size=6))
def test_fuzz_model_bytes(model_dir, data, ops):
    base = (model_dir / "model" / "model.onnx").read_bytes()
    raw = data if data is not None else _mutate(base, ops)
    path = _fresh_copy(model_dir, raw)
    with record_opens() as opened:
        _import_or_refuse(path)
    assert_inside(opened, path.parent)


HOSTILE_LOCATIONS = ["weights.bin", "../weights.bin", "link.bin", "/etc/passwd", str(Path("/") / "tmp"),
                     "sub/../weights.bin", "..", ".", "", "weights.bin\0x", "C:\\weights.bin", "\\\\server\\share",
                     "./weights.bin", "missing.bin", "m.onnx", "weights.bin/", "//weights.bin"]


@FUZZ
@given(location=st.one_of(st.sampled_from(HOSTILE_LOCATIONS), st.text(max_size=30)),
       offset=st.one_of(st.none(), st.sampled_from(["0", "-1", "4", "1e3", "99999999999999999999999", "", " 0"]),
                        st.integers(0, 5000).map(str)),
       length=st.one_of(st.none(), st.sampled_from(["0", "-1", "120", "1" * 30, "x"]),
                        st.integers(0, 5000).map(str)))
def test_fuzz_external_data_references(model_dir, location, offset, length):
    m = onnx.load(str(model_dir / "model" / "model.onnx"), load_external_data=False)
    t = m.graph.initializer[0]
    del t.external_data[:]
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            t.external_data.add(key=key, value=value)
    path = _fresh_copy(model_dir, m.SerializeToString())
    with record_opens() as opened:
        _import_or_refuse(path)
    assert_inside(opened, path.parent)


# --------------------------------------------- (b) structurally valid graphs, absurd contents
SMALL = st.integers(1, 6)
DIM = st.one_of(SMALL, SMALL, SMALL, st.sampled_from([0, -1, -7, 1 << 24, (1 << 24) + 1, 1 << 31, 10 ** 9,
                                                       (1 << 63) - 1]))
INT_ATTR = st.one_of(st.integers(-2, 4), st.sampled_from([0, -1, 10 ** 9, 1 << 40, -(1 << 40)]))


def _ints(n_min: int = 0, n_max: int = 5):
    return st.lists(INT_ATTR, min_size=n_min, max_size=n_max)


def _attr_value(kind: str):
    """An attribute value: usually of the expected kind, sometimes of another type."""
    good = {"ints": _ints(), "int": INT_ATTR, "float": st.floats(allow_nan=True, allow_infinity=True),
            "str": st.sampled_from(["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "bogus", ""])}[kind]
    wrong = st.one_of(st.floats(-3, 3), st.text(max_size=4), st.lists(st.floats(-2, 2), min_size=1, max_size=3),
                      st.integers(-3, 3), st.lists(st.integers(-2, 5), min_size=1, max_size=4))
    return st.one_of(good, good, good, wrong)


ATTRS = {
    "Conv": {"kernel_shape": "ints", "strides": "ints", "pads": "ints", "dilations": "ints", "group": "int",
             "auto_pad": "str"},
    "MaxPool": {"kernel_shape": "ints", "strides": "ints", "pads": "ints", "ceil_mode": "int", "auto_pad": "str",
                "dilations": "ints", "storage_order": "int"},
    "AveragePool": {"kernel_shape": "ints", "strides": "ints", "pads": "ints", "count_include_pad": "int"},
    "Gemm": {"transA": "int", "transB": "int", "alpha": "float", "beta": "float"},
    "Flatten": {"axis": "int"}, "Concat": {"axis": "int"}, "Reshape": {"allowzero": "int"},
    "BatchNormalization": {"epsilon": "float"}, "QuantizeLinear": {"axis": "int"},
    "DequantizeLinear": {"axis": "int"}, "Clip": {}, "Relu": {}, "GlobalAveragePool": {}, "Add": {},
    "MatMul": {}, "Identity": {}, "Dropout": {}, "Sigmoid": {},
}
#: extra constant inputs each operator takes after the activation: (rank range, dtype)
CONST_INPUTS = {"Conv": [(4, 4, "f"), (1, 1, "f")], "Gemm": [(2, 2, "f"), (1, 1, "f")], "MatMul": [(2, 2, "f")],
                "Reshape": [(1, 1, "i")], "Clip": [(0, 1, "f"), (0, 1, "f")], "Add": [(0, 4, "f")],
                "BatchNormalization": [(1, 1, "f")] * 4, "QuantizeLinear": [(0, 1, "s"), (0, 1, "z")],
                "DequantizeLinear": [(0, 1, "s"), (0, 1, "z")]}
CONST_DTYPES = {"f": [np.float32, np.float32, np.float64, np.int64], "i": [np.int64, np.int64, np.float32],
                "s": [np.float32, np.float32, np.int64], "z": [np.int8, np.uint8, np.int32, np.int16, np.float32]}


@st.composite
def constants(draw, rank_lo: int, rank_hi: int, kind: str, name: str) -> onnx.TensorProto:
    shape = draw(st.lists(st.integers(0, 4), min_size=rank_lo, max_size=rank_hi))
    dtype = np.dtype(draw(st.sampled_from(CONST_DTYPES[kind])))
    n = math.prod(shape)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        vals = draw(st.lists(st.integers(max(info.min, -300), min(info.max, 300)), min_size=n, max_size=n))
    else:
        vals = draw(st.lists(st.floats(-4, 4, width=32) | st.sampled_from([0.0, -1.0, np.inf, np.nan]),
                             min_size=n, max_size=n))
    return numpy_helper.from_array(np.array(vals, dtype).reshape(shape), name)


@st.composite
def wild_models(draw) -> onnx.ModelProto:
    """A chain of 1-4 operators on one input, optionally wrapped in Q/DQ pairs, with drawn attributes and
    constants (mostly absurd: most of these are refused, many by the ONNX checker)."""
    qdq = draw(st.booleans())
    shape = draw(st.lists(DIM, min_size=1, max_size=5))
    nodes, inits, x = [], [], "x"
    count = 0

    def name(base: str) -> str:
        nonlocal count
        count += 1
        return f"{base}{count}"

    def qdq_pair(t: str) -> str:
        s, z = name("s"), name("z")
        inits.append(numpy_helper.from_array(np.array(draw(st.sampled_from([0.05, 0.1, 0.0, -1.0])), np.float32), s))
        inits.append(numpy_helper.from_array(np.array(draw(st.integers(0, 3)),
                                                      draw(st.sampled_from([np.int8, np.uint8]))), z))
        q, dq = name("q"), name("dq")
        nodes.append(helper.make_node("QuantizeLinear", [t, s, z], [q], name=name("Q")))
        nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [dq], name=name("DQ")))
        return dq

    if qdq:
        x = qdq_pair(x)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(sorted(ATTRS)))
        ins = [x]
        if op == "Concat" or (op in ("Add", "MatMul") and draw(st.booleans())):
            ins.append(x)  # an activation operand (the same value)
        else:
            for k, (lo, hi, kind) in enumerate(CONST_INPUTS.get(op, [])):
                if k and not draw(st.booleans()):
                    break
                c = name("c")
                t = draw(constants(lo, hi, kind, c))
                if qdq and kind in "fi" and op in ("Conv", "Gemm", "MatMul") and draw(st.booleans()):
                    q8 = np.clip(np.nan_to_num(numpy_helper.to_array(t)), -8, 8).astype(np.int8)
                    inits.append(numpy_helper.from_array(q8, c))
                    s = name("ws")
                    inits.append(draw(constants(0, 1, "s", s)))
                    dq = name("wdq")
                    nodes.append(helper.make_node("DequantizeLinear", [c, s], [dq], name=name("WDQ"),
                                                  **({"axis": draw(INT_ATTR)} if draw(st.booleans()) else {})))
                    ins.append(dq)
                else:
                    inits.append(t)
                    ins.append(c)
        attrs = {k: draw(_attr_value(kind)) for k, kind in ATTRS[op].items() if draw(st.integers(0, 2)) == 0}
        if op in ("MaxPool", "AveragePool") and "kernel_shape" not in attrs and draw(st.booleans()):
            attrs["kernel_shape"] = [draw(SMALL), draw(SMALL)]
        if op == "Concat" and "axis" not in attrs:
            attrs["axis"] = draw(st.integers(-2, 2))
        out = name("t")
        try:
            nodes.append(helper.make_node(op, ins, [out], name=name(op.lower()), **attrs))
        except (ValueError, TypeError):  # onnx.helper refuses some Python values outright
            nodes.append(helper.make_node(op, ins, [out], name=name(op.lower())))
        x = qdq_pair(out) if qdq else out
    if draw(st.booleans()):  # a Constant node with a drawn attribute feeding nothing (still checked)
        c = draw(constants(0, 2, "f", "cv"))
        kind = draw(st.sampled_from(["value", "value_floats", "value_ints", "value_float", "sparse_value"]))
        value = {"value": c, "value_floats": [1.0, 2.0], "value_ints": [1, -2], "value_float": 0.5,
                 "sparse_value": helper.make_sparse_tensor(c, numpy_helper.from_array(np.zeros(0, np.int64), "i"),
                                                           [4])}[kind]
        nodes.insert(0, helper.make_node("Constant", [], [name("const")], name=name("constant"), **{kind: value}))
    g = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", draw(st.sampled_from([13, 13, 17, 10])))])
    m.ir_version = 8
    try:  # give the output the inferred type, so that more examples get past the checker
        inferred = onnx.shape_inference.infer_shapes(m)
        vi = {v.name: v for v in inferred.graph.value_info}
        if x in vi and vi[x].type.tensor_type.HasField("shape"):
            m.graph.output[0].CopyFrom(vi[x])
    except Exception:  # noqa: BLE001 - onnx's own inference on an absurd model: the importer will see it
        pass
    return m


class _Chain:
    """Builds a plausible model: float, or QDQ as onnxruntime writes it (int8 weights behind DequantizeLinear,
    int32 biases, a Q/DQ pair after every operator)."""

    def __init__(self, qdq: bool, per_channel: bool, seed: int):
        self.qdq, self.per_channel = qdq, per_channel
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, arr: np.ndarray) -> str:
        n = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(self, op: str, ins: list[str], **attrs) -> str:
        out = self.name("t")
        self.nodes.append(helper.make_node(op, ins, [out], name=self.name(op.lower()), **attrs))
        return self.qpair(out) if self.qdq else out

    def qpair(self, t: str) -> str:
        s, z = self.const(np.float32(0.1)), self.const(np.int8(0))
        q = self.name("q")
        self.nodes.append(helper.make_node("QuantizeLinear", [t, s, z], [q], name=self.name("Q")))
        dq = self.name("dq")
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [dq], name=self.name("DQ")))
        return dq

    def weight(self, shape: tuple[int, ...], axis: int) -> str:
        w = self.rng.standard_normal(shape).astype(np.float32)
        if not self.qdq:
            return self.const(w)
        scale = np.full(shape[axis], 0.02, np.float32) if self.per_channel else np.float32(0.02)
        q = self.const(np.clip(np.rint(w / 0.02), -127, 127).astype(np.int8))
        s = self.const(scale)
        z = self.const(np.zeros_like(scale, dtype=np.int8))
        dq = self.name("wdq")
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [dq], name=self.name("WDQ"), axis=axis))
        return dq

    def bias(self, n: int) -> str:
        b = (self.rng.standard_normal(n) * 0.1).astype(np.float32)
        if not self.qdq:
            return self.const(b)
        q = self.const(np.rint(b / 0.002).astype(np.int32))
        s = self.const(np.full(n, 0.002, np.float32) if self.per_channel else np.float32(0.002))
        dq = self.name("bdq")
        self.nodes.append(helper.make_node("DequantizeLinear", [q, s], [dq], name=self.name("BDQ"), axis=0))
        return dq


@st.composite
def sane_models(draw) -> onnx.ModelProto:
    """A shape-consistent chain of 1-4 supported operators (float or QDQ), then, one time in two, one
    "spoil": an absurd attribute, an initializer whose dims lie about its bytes, a bad input dimension,
    nodes out of order, a duplicated output, a wrong data type or an unsupported operator."""
    b = _Chain(draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 1 << 16)))
    spatial = draw(st.booleans())
    shape = ([1, draw(st.integers(1, 4)), draw(st.integers(3, 8)), draw(st.integers(3, 8))] if spatial
             else [1, draw(st.integers(1, 6))])
    in_shape = list(shape)
    x = b.qpair("x") if b.qdq else "x"
    for _ in range(draw(st.integers(1, 4))):
        ops = (["Conv", "Conv", "MaxPool", "AveragePool", "Relu", "Clip", "Add", "GlobalAveragePool", "Flatten",
                "Identity", "Concat"] if len(shape) == 4 else
               ["Gemm", "Gemm", "MatMul", "Relu", "Clip", "Add", "Flatten", "Reshape", "Identity", "Concat"])
        op = draw(st.sampled_from(ops))
        if op == "Conv":
            c, h, w = shape[1:]
            k = draw(st.integers(1, min(3, h, w)))
            groups = draw(st.sampled_from([1, c]))
            cout = groups * draw(st.integers(1, 3))
            stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
            ins = [x, b.weight((cout, c // groups, k, k), 0)] + ([b.bias(cout)] if draw(st.booleans()) else [])
            x = b.node("Conv", ins, kernel_shape=[k, k], strides=[stride] * 2, pads=[pad] * 4, group=groups)
            shape = [1, cout, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1]
        elif op in ("MaxPool", "AveragePool"):
            k = draw(st.integers(1, min(2, *shape[2:])))
            x = b.node(op, [x], kernel_shape=[k, k], strides=[k, k])
            shape = [1, shape[1], (shape[2] - k) // k + 1, (shape[3] - k) // k + 1]
        elif op in ("Gemm", "MatMul"):
            n = draw(st.integers(1, 5))
            if op == "MatMul":
                x = b.node("MatMul", [x, b.weight((shape[1], n), 1)])
            elif draw(st.booleans()):
                x = b.node("Gemm", [x, b.weight((n, shape[1]), 0), b.bias(n)], transB=1)
            else:
                x = b.node("Gemm", [x, b.weight((shape[1], n), 1)])
            shape = [1, n]
        elif op == "Clip":
            x = b.node("Clip", [x, b.const(np.float32(0.0)), b.const(np.float32(6.0))])
        elif op == "Add":
            x = b.node("Add", [x, x])
        elif op == "GlobalAveragePool":
            x = b.node(op, [x])
            shape = shape[:2] + [1, 1]
        elif op == "Flatten":
            x = b.node(op, [x], axis=1)
            shape = [1, math.prod(shape[1:])]
        elif op == "Reshape":
            x = b.node(op, [x, b.const(np.array([1, -1], np.int64))])
        elif op == "Concat":
            x = b.node(op, [x, x], axis=1)
            shape = [shape[0], 2 * shape[1], *shape[2:]]
        else:
            x = b.node(op, [x])
    m = _model(b, in_shape, x, shape)
    if draw(st.booleans()):
        _spoil(draw, m)
    return m


def _model(b: _Chain, in_shape: list[int], x: str, shape: list[int]) -> onnx.ModelProto:
    g = helper.make_graph(b.nodes, "sane", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], initializer=b.inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _spoil(draw, m: onnx.ModelProto) -> None:
    """One careless or hostile edit of a plausible model."""
    g = m.graph
    how = draw(st.sampled_from(["attribute", "dims", "input_dim", "order", "duplicate", "dtype", "operator",
                                "raw_data", "names", "drop_input"]))
    node = g.node[draw(st.integers(0, len(g.node) - 1))]
    if how == "attribute":
        kind = draw(st.sampled_from(["ints", "int", "float", "str"]))
        key = draw(st.sampled_from(["kernel_shape", "strides", "pads", "dilations", "group", "axis", "transB",
                                    "alpha", "auto_pad", "allowzero", "ceil_mode", "count_include_pad"]))
        for a in list(node.attribute):
            if a.name == key:
                node.attribute.remove(a)
        try:
            node.attribute.append(helper.make_attribute(key, draw(_attr_value(kind))))
        except (ValueError, TypeError):
            pass
    elif how in ("dims", "dtype", "raw_data") and g.initializer:
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        if how == "dims":
            t.dims[:] = draw(st.lists(DIM, max_size=4))
        elif how == "dtype":
            t.data_type = draw(st.sampled_from([0, 8, 14, 16, 21, 99, 1, 3, 6, 7]))
        else:
            t.raw_data = t.raw_data[:draw(st.integers(0, len(t.raw_data)))] + draw(st.binary(max_size=4))
    elif how == "input_dim":
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[draw(st.integers(0, len(dims) - 1))]
        d.dim_value = draw(DIM) if draw(st.booleans()) else 0
        if draw(st.booleans()):
            d.dim_param = "n"
    elif how == "order" and len(g.node) > 1:
        i, j = draw(st.integers(0, len(g.node) - 1)), draw(st.integers(0, len(g.node) - 1))
        a, b = onnx.NodeProto(), onnx.NodeProto()
        a.CopyFrom(g.node[i])
        b.CopyFrom(g.node[j])
        g.node[i].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif how == "duplicate":
        dup = onnx.NodeProto()
        dup.CopyFrom(node)
        g.node.append(dup)
    elif how == "operator":
        node.op_type = draw(st.sampled_from(["Sigmoid", "Loop", "If", "Conv", "Gemm", "Relu", "Constant", ""]))
    elif how == "names":
        node.name = draw(st.sampled_from(["a/b", "../x", "/abs", "", "n\0", "x" * 300, "\x1b[31m"]))
        if node.output:
            node.output[0] = node.name or "t"
    elif how == "drop_input" and len(node.input) > 0:
        del node.input[draw(st.integers(0, len(node.input) - 1))]


@FUZZ
@given(m=st.one_of(sane_models(), wild_models()))
def test_fuzz_structured_graphs(m):
    _import_or_refuse(m)


def test_fuzz_structured_graphs_reach_the_importer():
    """The generator is not vacuous: many of its models pass the checker and some import."""
    outcomes = {"graph": 0, "checker": 0, "node": 0}

    @settings(max_examples=100, deadline=None, database=None)
    @given(m=sane_models())
    def probe(m):
        try:
            import_onnx(m)
            outcomes["graph"] += 1
        except OnnxImportError as e:
            outcomes["checker" if "invalid ONNX model" in str(e) else "node"] += 1

    probe()
    assert outcomes["graph"] >= 20 and outcomes["node"] >= 10, outcomes


# ---------------------------------------------------------------- (c) SCALE-Sim CSVs
HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
ROWS = ["Conv1, 224, 224, 7, 7, 3, 64, 2,", "CB2a_1, 56, 56, 1, 1, 64, 64, 1,", "DP1, 112, 112, 3, 3, 32, 1, 1,",
        "FC, 1, 1, 1, 1, 2048, 1000, 1,", "s, 28, 28, 3, 3, 8, 8, 2, 1:4,", "v2, 28, 28, 3, 3, 8, 8, 2, 1,"]
FIELD = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["0", "-1", "1" * 4301, "9" * 24, "9" * 25,
                                                                  str(1 << 24), str(10 ** 6), "1:2", "3:1", "",
                                                                  "x", "1e6", "+4", " 7 ", "٣", "0x10", "1_000"]))


def _check_csv(text: str, tmp: Path | None = None) -> None:
    try:
        topo = parse_topology(text) if tmp is None else read_topology(tmp)
    except ScaleSimFormatError as e:
        assert "\n" not in str(e) and len(str(e)) < 2000, str(e)
        return
    assert topo.rows and topo.graph.shapes
    assert topo.macs == sum(r.macs for r in topo.rows)


@FUZZ
@given(text=st.one_of(st.text(max_size=400),
                      st.text(alphabet="0123456789,:- \nabDPM\t\r\x00", max_size=400),
                      st.lists(st.lists(FIELD, min_size=0, max_size=11).map(", ".join), max_size=6).map(
                          lambda rows: HEADER + "\n".join(rows))))
def test_fuzz_csv_text(text):
    _check_csv(text)


@FUZZ
@given(rows=st.lists(st.sampled_from(ROWS), min_size=1, max_size=5),
       edits=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 9), FIELD, st.sampled_from(["set", "drop", "add"])),
                      max_size=4),
       gemm=st.booleans(), bom=st.booleans(), names=st.lists(st.sampled_from(["a", "a.ifmap", "DP", "x/y", "a"]),
                                                             max_size=3))
def test_fuzz_mutated_topologies(tmp_path_factory, rows, edits, gemm, bom, names):
    header = "Layer, M, N, K,\n" if gemm else HEADER
    table = [[f.strip() for f in r.rstrip(",").split(",")] for r in rows]
    if gemm:
        table = [[r[0], r[1], r[6], r[5]] for r in table]
    for i, n in enumerate(names):
        table[i % len(table)][0] = n
    for row, col, value, how in edits:
        r = table[row % len(table)]
        col %= len(r) + 1
        if how == "set" and col < len(r):
            r[col] = value
        elif how == "drop" and col < len(r):
            del r[col]
        else:
            r.insert(col, value)
    text = header + "".join(", ".join(r) + ",\n" for r in table)
    _check_csv(text)
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "t.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8", "surrogatepass"))
    with record_opens() as opened:
        _check_csv(text, path)
    assert_inside(opened, path.parent)
