"""Hostile and careless inputs to the importers and the executor (issue 7): external data that tries to leave
the model's folder, declared sizes far beyond the limits, malformed attributes and files.

Every case must fail fast with the importer's own error class (a HwgenError) naming the file, the node or
tensor, the size and the limit, and must never read a file outside the model's folder."""

from __future__ import annotations

import builtins
import contextlib
import os
from pathlib import Path
from typing import Iterator
from unittest import mock

import numpy as np
import onnx
import pytest
from bounds import LITTLE, peak_allocation
from onnx import TensorProto, helper, numpy_helper

from hwgen.errors import HwgenError, LimitError
from mappings.graph import GraphError, check_shape
from mappings.network_map import load_model
from mappings.onnx_import import OnnxImportError, OnnxLimitError, import_onnx
from mappings.onnx_models import mlp, save
from mappings.scalesim_csv import ScaleSimFormatError, ScaleSimLimitError, read_topology



# ------------------------------------------------------------------ helpers
def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@contextlib.contextmanager
def record_opens() -> Iterator[list[str]]:
    """Record the real path of every file opened through ``os.open`` or ``open`` while active (Linux)."""
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, flags, mode=0o777, *, dir_fd=None):
        fd = real_os_open(path, flags, mode, dir_fd=dir_fd)
        opened.append(_fd_path(fd))
        return fd

    def b_open(file, *args, **kwargs):
        f = real_open(file, *args, **kwargs)
        with contextlib.suppress(Exception):
            opened.append(_fd_path(f.fileno()))
        return f

    with mock.patch("os.open", os_open), mock.patch("builtins.open", b_open):
        yield opened


def assert_inside(opened: list[str], folder: Path) -> None:
    root = os.path.realpath(folder)
    outside = [p for p in opened if os.path.commonpath([root, os.path.realpath(p)]) != root]
    assert not outside, f"opened outside the model's folder: {outside}"


def tiny_model(input_shape=(1, 4), features: int = 3, name: str = "tiny") -> onnx.ModelProto:
    """input [1, 4] -> Gemm (weight 'w' [4, 3]) -> output."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, features), "w")
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")
    g = helper.make_graph([node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [input_shape[0], features])],
                          initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def conv_model(input_shape, cin: int = 1, cout: int = 2, k: int = 1, **attrs) -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((cout, cin, k, k), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    g = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])],
                          initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def save_external(model: onnx.ModelProto, folder: Path, location: str = "weights.bin") -> Path:
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    copy = onnx.ModelProto()
    copy.CopyFrom(model)  # onnx.save_model converts the proto it is given in place
    onnx.save_model(copy, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=location,
                    size_threshold=0, convert_attribute=True)
    return path


def rewrite_location(path: Path, location: str) -> None:
    """Point every external tensor of the model file at ``location`` (without touching any data)."""
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    path.write_bytes(m.SerializeToString())


def raises_fast(cls, fn, *words):
    """``fn`` raises ``cls`` naming every word, on one line, before allocating what the input declares."""
    err, peak = peak_allocation(fn)
    assert isinstance(err, cls), err
    assert peak < LITTLE, f"{peak:,} bytes allocated before the refusal"
    for w in words:
        assert w in str(err), (w, str(err))
    assert "\n" not in str(err)
    return err


def weights_of(graph) -> dict[str, np.ndarray]:
    return {n: np.asarray(L.weight) for n, L in graph if getattr(L, "weight", None) is not None}


# ------------------------------------------------------------ external data
def test_external_data_resolves_in_the_model_folder_from_any_cwd(tmp_path, monkeypatch):
    model = mlp(seed=2)
    path = save_external(model, tmp_path / "model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # a decoy with the same name in the current folder: ONNX's own loader (base folder '') would read it
    (elsewhere / "weights.bin").write_bytes((path.parent / "weights.bin").read_bytes()[::-1])
    monkeypatch.chdir(elsewhere)
    with record_opens() as opened:
        g = import_onnx(path)
    assert_inside(opened, path.parent)
    ref = weights_of(import_onnx(model))
    got = weights_of(g)
    assert ref.keys() == got.keys()
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])
    # the same with a relative model path
    monkeypatch.chdir(tmp_path)
    assert weights_of(import_onnx(Path("model") / "model.onnx")).keys() == ref.keys()


def test_external_data_in_a_subfolder_and_in_constant_nodes(tmp_path, monkeypatch):
    c = numpy_helper.from_array(np.full((3,), 0.5, np.float32), "cval")
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    nodes = [helper.make_node("Constant", [], ["bias"], name="const", value=c),
             helper.make_node("Gemm", ["x", "w", "bias"], ["y"], name="fc")]
    g = helper.make_graph(nodes, "constext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = save_external(m, tmp_path / "m", location="data/weights.bin")
    raw = onnx.load(str(path), load_external_data=False)
    assert raw.graph.node[0].attribute[0].t.data_location == TensorProto.EXTERNAL  # onnx externalises it too
    monkeypatch.chdir(tmp_path)
    with record_opens() as opened:
        graph = import_onnx(path)
    assert_inside(opened, path.parent)
    np.testing.assert_array_equal(graph.layer("fc").bias, np.full(3, 0.5, np.float32))


def _outside_copy(tmp_path: Path, path: Path) -> Path:
    """A perfectly valid copy of the weights outside the model folder: a successful load would mean it was read."""
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    target = outside / "weights.bin"
    target.write_bytes((path.parent / "weights.bin").read_bytes())
    (path.parent / "weights.bin").unlink()
    return target


def test_external_data_absolute_location_refused(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model")
    target = _outside_copy(tmp_path, path)
    rewrite_location(path, str(target))
    with record_opens() as opened:
        raises_fast(OnnxImportError, lambda: import_onnx(path), "model.onnx", "initializer 'w'", str(target),
                    "absolute path")
    assert_inside(opened, path.parent)


def test_external_data_dotdot_location_refused(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model")
    _outside_copy(tmp_path, path)
    for location in ("../outside/weights.bin", "sub/../../outside/weights.bin", "..\\outside\\weights.bin"):
        rewrite_location(path, location)
        with record_opens() as opened:
            raises_fast(OnnxImportError, lambda: import_onnx(path), "model.onnx", "initializer 'w'", location,
                        "'..'")
        assert_inside(opened, path.parent)


def test_external_data_symlinked_file_refused(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model")
    target = _outside_copy(tmp_path, path)
    (path.parent / "weights.bin").symlink_to(target)
    with record_opens() as opened:
        raises_fast(OnnxImportError, lambda: import_onnx(path), "model.onnx", "initializer 'w'", "weights.bin",
                    "symbolic link")
    assert_inside(opened, path.parent)


def test_external_data_symlinked_folder_refused(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model", location="sub/weights.bin")
    outside = tmp_path / "outside"
    (path.parent / "sub").rename(outside)
    (path.parent / "sub").symlink_to(outside, target_is_directory=True)
    with record_opens() as opened:
        raises_fast(OnnxImportError, lambda: import_onnx(path), "model.onnx", "initializer 'w'",
                    "sub/weights.bin", "symbolic link 'sub'")
    assert_inside(opened, path.parent)


def test_external_data_missing_file_and_bad_ranges(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model")
    (path.parent / "weights.bin").unlink()
    raises_fast(OnnxImportError, lambda: import_onnx(path), "model.onnx", "initializer 'w'", "weights.bin")

    def with_info(**info: str) -> Path:
        p = save_external(tiny_model(), tmp_path / "ranges")
        m = onnx.load(str(p), load_external_data=False)
        t = m.graph.initializer[0]
        keep = {e.key: e.value for e in t.external_data}
        keep.update(info)
        del t.external_data[:]
        for k, v in keep.items():
            t.external_data.add(key=k, value=v)
        p.write_bytes(m.SerializeToString())
        return p

    raises_fast(OnnxImportError, lambda: import_onnx(with_info(offset="40")), "'w'", "runs past the end")
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(length="8")), "'w'", "needs 48")
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(offset="-4")), "'w'", "offset", "not a whole number")
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(offset="9" * 5000)), "'w'", "not a whole number")
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(location="")), "'w'", "is empty")
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(location=".")), "'w'", "names no file")
    fifo = tmp_path / "ranges" / "pipe.bin"
    os.mkfifo(fifo)
    raises_fast(OnnxImportError, lambda: import_onnx(with_info(location="pipe.bin")), "'w'", "FIFO")


def test_external_data_of_an_in_memory_model_refused(tmp_path):
    path = save_external(tiny_model(), tmp_path / "model")
    m = onnx.load(str(path), load_external_data=False)
    raises_fast(OnnxImportError, lambda: import_onnx(m), "'w'", "weights.bin", "import the model from its file")


def test_external_data_counts_against_file_bytes(tmp_path, monkeypatch):
    path = save_external(mlp(seed=0), tmp_path / "model")
    monkeypatch.setenv("HWGEN_LIMIT_FILE_BYTES", str(path.stat().st_size + 100))
    e = raises_fast(OnnxLimitError, lambda: import_onnx(path), "model.onnx", "external data",
                    "HWGEN_LIMIT_FILE_BYTES")
    assert isinstance(e, LimitError) and isinstance(e, OnnxImportError)


# ------------------------------------------------------------- the model file
def test_model_file_must_be_a_regular_file_within_the_size_limit(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    raises_fast(OnnxImportError, lambda: import_onnx(fifo), "pipe.onnx", "FIFO")  # and it does not block
    raises_fast(OnnxImportError, lambda: import_onnx(tmp_path), "folder")
    if os.path.exists("/dev/zero"):
        raises_fast(OnnxImportError, lambda: import_onnx("/dev/zero"), "/dev/zero", "device")
    good = save(mlp(seed=0), tmp_path / "mlp.onnx")
    monkeypatch.setenv("HWGEN_LIMIT_FILE_BYTES", "100")
    raises_fast(OnnxLimitError, lambda: import_onnx(good), "mlp.onnx", "HWGEN_LIMIT_FILE_BYTES", "100")
    raises_fast(OnnxImportError, lambda: import_onnx(tmp_path / "a\0b.onnx"), "a")


# ------------------------------------------------------------- declared sizes
def test_huge_declared_input_refused_in_milliseconds(tmp_path):
    path = save(conv_model((1, 3, 100000, 100000), cin=3, cout=8, k=3), tmp_path / "big.onnx")
    assert path.stat().st_size < 2048
    e = raises_fast(OnnxLimitError, lambda: import_onnx(path), "big.onnx", "input 'x'", "1x3x100000x100000",
                    "30,000,000,000", "268,435,456", "HWGEN_LIMIT_TENSOR_ELEMENTS")
    assert isinstance(e, LimitError)


@pytest.mark.parametrize("dim, words", [
    (2 ** 31, ["2,147,483,648", "HWGEN_LIMIT_DIMENSION"]),
    (2 ** 62, ["HWGEN_LIMIT_DIMENSION"]),
    (0, ["dimension 2", "is 0"]),
    (-5, ["is -5"]),
])
def test_absurd_input_dimensions(tmp_path, dim, words):
    path = save(conv_model((1, 1, dim, 4)), tmp_path / "dims.onnx")
    raises_fast(OnnxImportError, lambda: import_onnx(path), "dims.onnx", "'x'", *words)


def test_huge_value_info_and_output_shapes(tmp_path):
    m = tiny_model()
    m.graph.value_info.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2 ** 40]))
    raises_fast(OnnxLimitError, lambda: import_onnx(m), "value_info 'y'", "HWGEN_LIMIT_DIMENSION")
    m = tiny_model()
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 70000
    m.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 70000
    raises_fast(OnnxLimitError, lambda: import_onnx(m), "output 'y'", "HWGEN_LIMIT_TENSOR_ELEMENTS")


def test_initializer_dims_must_match_its_bytes(tmp_path):
    m = tiny_model()
    w = m.graph.initializer[0]
    del w.dims[:]
    w.dims.extend([10000, 10000])  # declares 10^8 floats, holds 48 bytes
    raises_fast(OnnxImportError, lambda: import_onnx(save(m, tmp_path / "liar.onnx")), "liar.onnx",
                "initializer 'w'", "400,000,000 bytes", "holds 48")
    w.dims[:] = [2 ** 40, 1]
    raises_fast(OnnxLimitError, lambda: import_onnx(m), "initializer 'w'", "HWGEN_LIMIT_DIMENSION")
    w.dims[:] = [4, 3]
    w.raw_data = w.raw_data[:20]
    raises_fast(OnnxImportError, lambda: import_onnx(m), "initializer 'w'", "needs 48 bytes", "holds 20")
    m = tiny_model()
    m.graph.initializer[0].data_type = TensorProto.STRING
    raises_fast(OnnxImportError, lambda: import_onnx(m), "initializer 'w'", "STRING")
    m = tiny_model()
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.float_data.extend([1.0] * 11)
    raises_fast(OnnxImportError, lambda: import_onnx(m), "initializer 'w'", "needs 12 values", "holds 11")


def test_inferred_layer_shape_above_the_limit():
    # the input (256M elements) is within the limit; the conv's 8 output channels are not
    m = conv_model((1, 1, 16000, 16000), cin=1, cout=8)
    raises_fast(OnnxLimitError, lambda: import_onnx(m), "node 'conv' (Conv)", "2,048,000,000",
                "HWGEN_LIMIT_TENSOR_ELEMENTS")


def test_layer_macs_limit(monkeypatch):
    monkeypatch.setenv("HWGEN_LIMIT_LAYER_MACS", "100")
    raises_fast(OnnxLimitError, lambda: import_onnx(mlp(seed=0)), "fc1_matmul", "multiply-accumulates",
                "HWGEN_LIMIT_LAYER_MACS")


def test_check_shape_helper():
    assert check_shape((1, 3, 224, 224), "t") == (1, 3, 224, 224)
    assert check_shape((0, 3), "t", min_dim=0) == (0, 3)
    with pytest.raises(GraphError, match="not a whole number"):
        check_shape((1, 2.5), "t")
    with pytest.raises(GraphError, match="at least 1"):
        check_shape((1, 0), "t")
    with pytest.raises(LimitError, match="HWGEN_LIMIT_DIMENSION"):
        check_shape((1, 1 << 40), "t")
    with pytest.raises(LimitError, match="HWGEN_LIMIT_TENSOR_ELEMENTS"):
        check_shape((1 << 20, 1 << 20), "t")


# --------------------------------------------------------------- SCALE-Sim CSVs
HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
GEMM_HEADER = "Layer, M, N, K,\n"


def _csv(tmp_path: Path, text: str, name: str = "topo.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_one_line_with_huge_layers_refused_fast(tmp_path):
    p = _csv(tmp_path, HEADER + "huge, 1000000, 1000000, 3, 3, 3, 64, 1,\n")
    e = raises_fast(ScaleSimLimitError, lambda: read_topology(p), "topo.csv:2", "layer 'huge'", "ifmap",
                    "3,000,000,000,000", "HWGEN_LIMIT_TENSOR_ELEMENTS")
    assert isinstance(e, LimitError) and e.line == 2
    p = _csv(tmp_path, GEMM_HEADER + "g, 1000000, 1000000, 1000000,\n", "gemm.csv")
    raises_fast(ScaleSimLimitError, lambda: read_topology(p), "gemm.csv:2", "layer 'g'", "input",
                "HWGEN_LIMIT_TENSOR_ELEMENTS")
    # the ofmap of 4096 filters over a 512x512 ifmap (ifmap and filters within the limits)
    p = _csv(tmp_path, HEADER + "wide, 512, 512, 1, 1, 1, 4096, 1,\n", "wide.csv")
    raises_fast(ScaleSimLimitError, lambda: read_topology(p), "wide.csv:2", "ofmap", "1,073,741,824")


def test_csv_macs_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("HWGEN_LIMIT_LAYER_MACS", "1000")
    p = _csv(tmp_path, HEADER + "small, 8, 8, 1, 1, 2, 2, 1,\nbig, 32, 32, 3, 3, 8, 8, 1,\n")
    raises_fast(ScaleSimLimitError, lambda: read_topology(p), "topo.csv:3", "layer 'big'", "multiply-accumulates",
                "HWGEN_LIMIT_LAYER_MACS")


@pytest.mark.parametrize("field, words", [
    ("1" * 4301, ["column 'IFMAP Height'", "4,301 characters"]),
    ("9" * 20, ["column 'IFMAP Height'", "99,999,999,999,999,999,999", "HWGEN_LIMIT_DIMENSION"]),
    ("16777217", ["HWGEN_LIMIT_DIMENSION"]),
    ("0", ["positive integer, got 0"]),
    ("-7", ["positive integer, got -7"]),
    ("1e9", ["'1e9'"]),
])
def test_csv_absurd_fields(tmp_path, field, words):
    p = _csv(tmp_path, HEADER + f"a, {field}, 8, 1, 1, 2, 2, 1,\n")
    e = raises_fast(ScaleSimFormatError, lambda: read_topology(p), "topo.csv:2", *words)
    assert len(str(e)) < 300


def test_csv_file_size_limit_before_reading(tmp_path, monkeypatch):
    p = _csv(tmp_path, HEADER + "a, 8, 8, 1, 1, 2, 2, 1,\n" * 100)
    monkeypatch.setenv("HWGEN_LIMIT_FILE_BYTES", "1000")
    raises_fast(ScaleSimLimitError, lambda: read_topology(p), "topo.csv", "HWGEN_LIMIT_FILE_BYTES")
    monkeypatch.delenv("HWGEN_LIMIT_FILE_BYTES")
    sparse = tmp_path / "sparse.csv"  # 5 GiB declared, nothing written: refused from its size alone
    with open(sparse, "wb") as f:
        f.truncate(5 << 30)
    with record_opens() as opened:
        raises_fast(ScaleSimLimitError, lambda: read_topology(sparse), "sparse.csv", "5,368,709,120",
                    "HWGEN_LIMIT_FILE_BYTES")
    assert not opened
    raises_fast(ScaleSimFormatError, lambda: read_topology(tmp_path / "a\0.csv"), "NUL")


# ------------------------------------------------------------------- load_model
def test_load_model_dispatch_refuses_cleanly(tmp_path):
    p = _csv(tmp_path, HEADER + "huge, 1000000, 1000000, 3, 3, 3, 64, 1,\n")
    raises_fast(ScaleSimLimitError, lambda: load_model(str(p)), "topo.csv:2", "HWGEN_LIMIT_TENSOR_ELEMENTS")
    big = save(conv_model((1, 3, 100000, 100000), cin=3, cout=8, k=3), tmp_path / "big.onnx")
    raises_fast(OnnxLimitError, lambda: load_model(str(big)), "big.onnx", "HWGEN_LIMIT_TENSOR_ELEMENTS")
    for spec in ("", "a\0.onnx", "model.txt", "zoo:nope", "zoo:"):
        raises_fast(HwgenError, lambda: load_model(spec))
    raises_fast(OnnxImportError, lambda: load_model(str(tmp_path / "missing.onnx")), "missing.onnx")
    raises_fast(ScaleSimFormatError, lambda: load_model(str(tmp_path / "missing.csv")), "missing.csv")
    assert len(load_model("zoo:mlp").compute_layers()) > 0


def test_zoo_graphs_pass_through_the_limits(monkeypatch):
    monkeypatch.setenv("HWGEN_LIMIT_LAYER_MACS", "1000")
    raises_fast(LimitError, lambda: load_model("zoo:mlp"), "multiply-accumulates", "HWGEN_LIMIT_LAYER_MACS")


# --------------------------------------------------------------------- executor
@pytest.fixture(scope="module")
def qdq_chain(tmp_path_factory):
    from mappings.onnx_models import conv_chain, quantize_qdq

    d = tmp_path_factory.mktemp("qdq")
    f = save(conv_chain(seed=3, n=2, hw=8, channels=4), d / "chain.onnx")
    return import_onnx(quantize_qdq(f, d / "chain_q.onnx", per_channel=True))


def _no_simulation(monkeypatch):
    import mappings.execute as ex

    def refuse(cfg, prog):
        raise AssertionError("a layer was simulated although the run is over a limit")
    monkeypatch.setitem(ex.BACKENDS, "model", refuse)


def test_run_refuses_simulated_macs_before_simulating(qdq_chain, monkeypatch):
    from hwgen.config import AcceleratorConfig
    from mappings.execute import ExecutionLimitError, run_quantized
    from mappings.network_map import map_graph

    cfg = AcceleratorConfig(name="t4", rows=4, cols=4)
    x = np.zeros((1, 3, 8, 8), np.float32)
    monkeypatch.setenv("HWGEN_LIMIT_SIMULATED_MACS", "5000")
    _no_simulation(monkeypatch)
    e = raises_fast(ExecutionLimitError, lambda: run_quantized(qdq_chain, x, cfg), "node 'conv1' (Conv2d)",
                    "6,912", "5,000", "HWGEN_LIMIT_SIMULATED_MACS")
    assert isinstance(e, LimitError)
    assert map_graph(qdq_chain, cfg).macs > 5000  # mapping (analytical) is not limited by simulated_macs


def test_run_refuses_long_programs_before_lowering(qdq_chain, monkeypatch):
    from hwgen.config import AcceleratorConfig
    from mappings.execute import ExecutionLimitError, run_quantized

    monkeypatch.setenv("HWGEN_LIMIT_INSTRUCTIONS", "10")
    _no_simulation(monkeypatch)
    raises_fast(ExecutionLimitError, lambda: run_quantized(qdq_chain, np.zeros((1, 3, 8, 8), np.float32),
                                                           AcceleratorConfig(name="t4", rows=4, cols=4)),
                "node 'conv1' (Conv2d)", "instructions of its program", "HWGEN_LIMIT_INSTRUCTIONS")


def test_run_refuses_run_bytes_before_simulating(qdq_chain, monkeypatch):
    from hwgen.config import AcceleratorConfig
    from mappings.execute import ExecutionLimitError, check_run_limits, run_quantized

    cfg = AcceleratorConfig(name="t4", rows=4, cols=4)
    need = check_run_limits(qdq_chain, cfg)
    assert 0 < need < 1 << 24
    monkeypatch.setenv("HWGEN_LIMIT_RUN_BYTES", str(need - 1))
    _no_simulation(monkeypatch)
    raises_fast(ExecutionLimitError, lambda: run_quantized(qdq_chain, np.zeros((1, 3, 8, 8), np.float32), cfg),
                "node '", "host memory", "HWGEN_LIMIT_RUN_BYTES")


def test_run_counts_padded_pooling_input():
    from hwgen.config import AcceleratorConfig
    from mappings.execute import ExecutionLimitError, run_quantized
    from mappings.graph import Input, LayerGraph, MaxPool, QuantParams, TensorInfo

    qp = QuantParams(np.float32(0.1), np.int64(0), "int8")
    big = 1 << 20  # pads of 2^20 with stride 2^20: a 3x3 output, but np.pad would allocate 4.4e12 bytes
    g = LayerGraph("pads")
    g.add("x", Input(shape=(1, 1, 4, 4)), tensor=TensorInfo("x", (1, 1, 4, 4), "int8", qp))
    g.add("pool", MaxPool(kernel=(1, 1), stride=(big, big), pads=(big,) * 4), ["x"],
          tensor=TensorInfo("pool", (1, 1, 3, 3), "int8", qp))
    g.validate()
    raises_fast(ExecutionLimitError, lambda: run_quantized(g, np.zeros((1, 1, 4, 4), np.float32),
                                                           AcceleratorConfig()), "node 'pool' (MaxPool)",
                "HWGEN_LIMIT_RUN_BYTES")


# ------------------------------------------------------- malformed graphs, one per case
def _pool_model(**attrs) -> onnx.ModelProto:
    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", **attrs)
    g = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _set_attr(m: onnx.ModelProto, key: str, value) -> onnx.ModelProto:
    node = m.graph.node[-1]
    for a in list(node.attribute):
        if a.name == key:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(key, value))
    return m


def _qdq_tiny(scale: float = 0.1, axis: int | None = None, n_scales: int = 1) -> onnx.ModelProto:
    """x -> Q -> DQ -> MatMul(DQ(int8 w)) -> Q -> DQ."""
    inits = [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int8(0), "z"),
             numpy_helper.from_array(np.ones((4, 3), np.int8), "wq"),
             numpy_helper.from_array(np.full(n_scales, scale, np.float32) if n_scales > 1 else np.float32(scale),
                                     "ws")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_in"),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["wd"], name="dq_w",
                              **({} if axis is None else {"axis": axis})),
             helper.make_node("MatMul", ["xd", "wd"], ["y"], name="mm"),
             helper.make_node("QuantizeLinear", ["y", "s", "z"], ["yq"], name="q_out"),
             helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["yd"], name="dq_out")]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("yd", TensorProto.FLOAT, [1, 3])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _non_utf8_name() -> onnx.ModelProto:
    data = bytearray(tiny_model().SerializeToString())
    i = data.find(b"fc")
    data[i] = 0x80  # the node name is no longer UTF-8: protobuf hands it back as bytes
    m = onnx.ModelProto()
    m.ParseFromString(bytes(data))
    return m


def _out_of_order() -> onnx.ModelProto:
    m = _pool_model(kernel_shape=[2, 2])
    m.graph.node.append(helper.make_node("Relu", ["y"], ["z"], name="relu"))
    m.graph.output[0].name = "z"
    first = onnx.NodeProto()
    first.CopyFrom(m.graph.node[0])
    m.graph.node[0].CopyFrom(m.graph.node[1])
    m.graph.node[1].CopyFrom(first)
    return m


def _duplicate_output() -> onnx.ModelProto:
    m = _pool_model(kernel_shape=[2, 2])
    m.graph.node.append(helper.make_node("Relu", ["x"], ["y"], name="relu"))
    return m


MALFORMED = {
    "stride 0": (lambda: conv_model((1, 1, 6, 6), strides=[0, 0]), ["node 'conv' (Conv)", "strides"]),
    "negative pads": (lambda: conv_model((1, 1, 6, 6), pads=[-1, 0, 0, 0]), ["node 'conv'", "pads"]),
    "kernel 10^9": (lambda: _pool_model(kernel_shape=[10 ** 9, 1]), ["node 'pool' (MaxPool)"]),
    "kernel 2^40": (lambda: _pool_model(kernel_shape=[1 << 40, 1]), ["node 'pool'", "HWGEN_LIMIT_DIMENSION"]),
    "pool stride 0": (lambda: _pool_model(kernel_shape=[2, 2], strides=[0, 1]), ["node 'pool'", "strides"]),
    "pool without kernel_shape": (lambda: _pool_model(), ["node 'pool'"]),
    "float kernel": (lambda: _set_attr(_pool_model(kernel_shape=[2, 2]), "kernel_shape", [2.0, 2.0]),
                     ["node 'pool'", "kernel_shape"]),
    "string strides": (lambda: _set_attr(_pool_model(kernel_shape=[2, 2]), "strides", "fast"),
                       ["node 'pool'", "strides"]),
    "group does not divide channels": (lambda: conv_model((1, 3, 6, 6), cin=3, cout=4, group=2),
                                       ["node 'conv'"]),
    "group > channels": (lambda: conv_model((1, 2, 6, 6), cin=2, cout=4, group=10 ** 9), ["node 'conv'", "group"]),
    "1-D kernel": (lambda: _pool_model(kernel_shape=[2]), ["node 'pool'"]),
    "nodes out of order": (_out_of_order, ["topologically sorted"]),
    "duplicate output": (_duplicate_output, ["'y'"]),
    "zero scale": (lambda: _qdq_tiny(scale=0.0), ["node 'dq_w'", "positive and finite"]),
    "negative scale": (lambda: _qdq_tiny(scale=-1.0), ["node 'dq_w'", "positive and finite"]),
    "axis out of range": (lambda: _qdq_tiny(axis=5, n_scales=3), ["node 'dq_w'", "axis 5"]),
    "scales for the wrong axis": (lambda: _qdq_tiny(axis=0, n_scales=3), ["node 'dq_w'", "3 scales for the 4"]),
    "non-UTF-8 name": (_non_utf8_name, ["not UTF-8 text"]),
    "unsupported operator": (lambda: _op(_pool_model(kernel_shape=[2, 2]), "Loop"),
                             ["node 'pool' (Loop)", "unsupported"]),
}


def _op(m: onnx.ModelProto, op: str) -> onnx.ModelProto:
    m.graph.node[0].op_type = op
    return m


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_graphs_name_the_node(case):
    build, words = MALFORMED[case]
    raises_fast(OnnxImportError, lambda: import_onnx(build()), *words)


def test_valid_qdq_and_odd_names_still_import():
    g = import_onnx(_qdq_tiny())
    assert g.layer("mm").weight.dtype == np.int8
    g = import_onnx(_qdq_tiny(axis=1, n_scales=3))
    assert g.layer("mm").weight_quant.axis == 1
    m = tiny_model()
    m.graph.node[0].name = "/fc/Gemm"  # PyTorch's exporter names nodes like paths: names are never paths here
    m.graph.node[0].output[0] = "/fc/Gemm_output_0"
    m.graph.output[0].name = "/fc/Gemm_output_0"
    assert import_onnx(m).outputs == ["/fc/Gemm"]


@pytest.mark.parametrize("data", [b"", b"\x00" * 64, b"\x08\x07\x12", bytes(range(256)) * 4])
def test_garbage_and_truncated_protobuf(tmp_path, data):
    path = tmp_path / "junk.onnx"
    good = save(mlp(seed=1), tmp_path / "good.onnx").read_bytes()
    for blob in (data, good[:len(good) // 3], good[:-1], good + b"\xff"):
        path.write_bytes(blob)
        raises_fast(OnnxImportError, lambda: import_onnx(path), "junk.onnx")


def test_same_value_twice_is_refused_clearly():
    node = helper.make_node("Add", ["x", "x"], ["y"], name="double")
    g = helper.make_graph([node], "xx", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    raises_fast(OnnxImportError, lambda: import_onnx(m), "node 'double' (Add)", "the same value")
