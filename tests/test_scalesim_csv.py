"""SCALE-Sim topology import: the shared CSVs, SCALE-Sim's size conventions, GEMM files, and every kind of
malformed input failing with the file, line and column."""

import math
from pathlib import Path

import pytest

from mappings.graph import Conv2d, Gemm, Input
from mappings.scalesim_csv import (ScaleSimFormatError, ScaleSimLayer, load_scalesim_csv, parse_topology,
                                   read_topology)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scalesim"
HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"

needs_data = pytest.mark.skipif(not (DATA / "resnet50.csv").exists(), reason="shared SCALE-Sim CSVs not present")


def _scalesim_ofmap(i: int, f: int, s: int) -> int:
    # topology_utils.topo_calc_hyperparams (SCALE-Sim 3.0.0)
    return int(math.ceil((i - f + s) / s))


@needs_data
def test_resnet50_csv():
    t = read_topology(DATA / "resnet50.csv")
    assert t.kind == "conv" and len(t) == 54 and len(t.layers) == 54
    assert t.rows[0] == ScaleSimLayer("Conv1", 224, 224, 7, 7, 3, 64, 2)
    assert t.rows[0].line == 3  # header, blank line, then the first row
    assert t.rows[-1].name == "FC6" and t.rows[-1].mnk == (1, 1000, 2048)
    g = t.graph
    assert len(g) == 2 * 54 and len(g.compute_layers()) == 54
    assert g.outputs == [r.name for r in t.rows]
    for r in t.rows:
        assert isinstance(g.layer(f"{r.name}.ifmap"), Input)
        assert g.inputs_of(r.name) == [f"{r.name}.ifmap"]
        assert g.shapes[r.name] == (1, r.num_filter, _scalesim_ofmap(r.ifmap_h, r.filter_h, r.stride),
                                    _scalesim_ofmap(r.ifmap_w, r.filter_w, r.stride))
    # SCALE-Sim rounds up: 7x7/2 on 224 -> 110 (not 109), 1x1/2 on 56 -> 29 (not 28)
    assert g.shapes["Conv1"] == (1, 64, 110, 110)
    assert g.shapes["CB3a_1"] == (1, 128, 29, 29) and g.layer("CB3a_1").pads == (0, 0, 1, 1)
    assert g.shapes["CB2a_2"] == (1, 64, 54, 54) and g.layer("CB2a_2").pads == (0, 0, 0, 0)  # no padding
    macs = sum(r["macs"] for r in g.summary())
    assert macs == t.macs == sum(r.macs for r in t.rows) == 3_479_536_384
    # the plain no-padding convention
    gf = load_scalesim_csv(DATA / "resnet50.csv", rounding="floor")
    assert gf.shapes["Conv1"] == (1, 64, 109, 109) and gf.shapes["CB3a_1"] == (1, 128, 28, 28)
    assert all(gf.layer(n).pads == (0, 0, 0, 0) for n in gf.compute_layers())


@needs_data
def test_mobilenet_csv():
    t = read_topology(DATA / "mobilenet.csv")
    assert len(t) == 27 and t.graph.name == "mobilenet"
    # depthwise rows are written as one filter over all channels and read as exactly that
    conv2 = t.graph.layer("Conv2")
    assert isinstance(conv2, Conv2d) and (conv2.in_channels, conv2.out_channels, conv2.groups) == (32, 1, 1)
    assert t.graph.shapes["Conv1"] == (1, 32, 112, 112)
    assert t.graph.shapes["Conv2"] == (1, 1, 110, 110)
    assert t.graph.shapes["Conv4"] == (1, 1, 56, 56)
    assert t.graph.shapes["Conv26"] == (1, 1, 3, 3)
    assert t.rows[1].spatiotemporal("os") == (110 * 110, 1, 9 * 32)
    assert t.rows[1].spatiotemporal("ws") == (9 * 32, 1, 110 * 110)
    assert t.rows[1].spatiotemporal("is") == (9 * 32, 110 * 110, 1)
    assert t.macs == sum(r["macs"] for r in t.graph.summary())


def test_dp_rows_are_depthwise():
    t = parse_topology(HEADER + "convDP, 8, 8, 3, 3, 4, 1, 1,\nplain, 8, 8, 3, 3, 4, 1, 1,\n")
    assert [x.name for x in t.layers] == [f"convDPChannel_{i}" for i in range(4)] + ["plain"]
    assert all(x.channels == 1 for x in t.layers[:4])
    dw = t.graph.layer("convDP")
    assert dw.depthwise and (dw.groups, dw.out_channels) == (4, 4)
    assert t.rows[0].macs == sum(x.macs for x in t.layers[:4]) == 6 * 6 * 9 * 4
    assert sum(r["macs"] for r in t.graph.summary()) == t.macs


def test_variants_of_the_row_format():
    text = ("\n" + HEADER + "\n  a, 9, 9, 3, 3, 2, 4, 2\n\nb, 9, 7, 3, 3, 2, 4, 2, 2:4,\n"
            "c, 9, 9, 3, 3, 2, 4, 2, 1,\r\n")
    t = parse_topology(text, name="v")
    a, b, c = t.rows
    assert (a.name, a.line, a.ofmap_h) == ("a", 4, 4)  # no trailing comma is fine too
    assert b.sparsity == "2:4" and b.stride_w is None and t.graph.shapes["b"] == (1, 4, 4, 3)
    assert c.stride_w == 1 and c.strides == (2, 1) and t.graph.shapes["c"] == (1, 4, 4, 7)


def test_duplicate_names_are_kept_apart():
    t = parse_topology(HEADER + "x, 4, 4, 1, 1, 1, 1, 1,\nx, 4, 4, 1, 1, 1, 2, 1,\n")
    assert [r.name for r in t.rows] == ["x", "x"]
    assert t.graph.outputs == ["x", "x#2"] and t.graph.shapes["x#2"] == (1, 2, 4, 4)


def test_name_collision_is_a_format_error(tmp_path):
    e = _err(tmp_path, HEADER + "x, 4, 4, 1, 1, 1, 1, 1,\nx.ifmap, 4, 4, 1, 1, 1, 1, 1,\n")
    assert "cannot build the layer graph" in str(e) and "x.ifmap" in str(e)


def test_gemm_topology(tmp_path):
    p = tmp_path / "mnk.csv"
    p.write_text("Layer Name, M, N, K,\nTest 1, 256, 128, 64,\nQKT, 1024, 1024, 64, 2:4,\n")
    t = read_topology(p)
    assert t.kind == "gemm" and len(t) == 2
    r = t.rows[0]
    # SCALE-Sim's conv form of a GEMM: [M, K, 1, K, 1, N, 1, 1]
    assert (r.ifmap_h, r.ifmap_w, r.filter_h, r.filter_w, r.channels, r.num_filter, r.stride) == \
        (256, 64, 1, 64, 1, 128, 1)
    assert r.gemm == (256, 128, 64) and r.mnk == (256, 128, 64) and (r.ofmap_h, r.ofmap_w) == (256, 1)
    assert t.rows[1].sparsity == "2:4"
    g = t.graph
    assert isinstance(g.layer("Test 1"), Gemm) and g.shapes["Test 1.ifmap"] == (256, 64)
    assert g.shapes["Test 1"] == (256, 128)
    assert sum(x["macs"] for x in g.summary()) == t.macs == 256 * 128 * 64 + 1024 * 1024 * 64
    # header without trailing comma; format forced
    assert parse_topology("Layer,M,N,K\nL,2,3,4\n").kind == "gemm"
    assert parse_topology("x,y,z,w\nL,2,3,4\n", fmt="gemm").rows[0].gemm == (2, 3, 4)


# ----------------------------------------------------------------- bad input
def _err(tmp_path, text: str, **kw) -> ScaleSimFormatError:
    p = tmp_path / "topo.csv"
    p.write_text(text)
    with pytest.raises(ScaleSimFormatError) as e:
        read_topology(p, **kw)
    assert isinstance(e.value, ValueError)
    assert str(p) in str(e.value)
    return e.value


@pytest.mark.parametrize("text, line, column, words", [
    # wrong column count
    (HEADER + "Conv1, 224, 224, 3, 3, 3, 32,\n", 2, "Strides", "missing"),
    (HEADER + "Conv1, 224, 224, 3, 3, 3, 32, 2, 1, 7,\n", 2, "#10", "too many"),
    # truncated mid-row (the file ends inside the third layer)
    (HEADER + "a, 8, 8, 1, 1, 2, 2, 1,\nb, 8, 8, 1, 1, 2, 2, 1,\nc, 8, 8, 1", 4, "Filter Width", "missing"),
    # non-integer values
    (HEADER + "a, 8, 8, 1, 1, 2, 2, 1,\nb, 8, 8, 3x, 1, 2, 2, 1,\n", 3, "Filter Height", "'3x'"),
    (HEADER + "a, 8, 8, 1, 1, 2.5, 2, 1,\n", 2, "Channels", "'2.5'"),
    (HEADER + "a, 8, 8, 1, 1, , 2, 1,\n", 2, "Channels", "empty"),
    (HEADER + "a, 8, 8, 1, 1, 2, 0, 1,\n", 2, "Num Filter", "positive"),
    (HEADER + "a, 8, 8, 1, 1, 2, 2, -1,\n", 2, "Strides", "positive"),
    (HEADER + "a, 8, 8, 1, 1, 2, 2, 1, x:y,\n", 2, "Sparsity", "N:M"),
    (HEADER + "a, 8, 8, 1, 1, 2, 2, 1, 0.5,\n", 2, "Stride width", "'0.5'"),
    (HEADER + ", 8, 8, 1, 1, 2, 2, 1,\n", 2, "Layer name", "empty"),
    # SCALE-Sim's own check
    (HEADER + "a, 2, 8, 3, 1, 2, 2, 1,\n", 2, "Filter Height", "IFMAP height"),
    (HEADER + "a, 8, 2, 1, 3, 2, 2, 1,\n", 2, "Filter Width", "IFMAP width"),
    # missing header: the first line is a layer
    ("Conv1, 224, 224, 3, 3, 3, 32, 2,\nConv2, 112, 112, 3, 3, 32, 1, 1,\n", 1, None, "header"),
    ("\n\nConv1, 224, 224, 3, 3, 3, 32, 2,\n", 3, None, "header"),
    ("Layer name, IFMAP Height, IFMAP Width,\na, 8, 8,\n", 1, "Filter Height", "header"),
    (HEADER, 1, None, "no layers"),
    # GEMM rows
    ("Layer, M, N, K,\nL, 4, 4,\n", 2, "K", "missing"),
    ("Layer, M, N, K,\nL, 4, four, 4,\n", 2, "N", "'four'"),
    ("Layer, M, N, K,\nL, 4, 4, 4, 3:2,\n", 2, "Sparsity", "N > M"),
])
def test_malformed(tmp_path, text, line, column, words):
    e = _err(tmp_path, text)
    assert (e.line, e.column) == (line, column)
    assert f":{line}" in str(e) and words in str(e)
    if column is not None:
        assert f"column '{column}'" in str(e)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    e = _err(tmp_path, text)
    assert e.line is None and "empty" in str(e)


def test_nonexistent_file(tmp_path):
    p = tmp_path / "nope.csv"
    with pytest.raises(ScaleSimFormatError, match=r"nope.csv: cannot read \(No such file"):
        read_topology(p)
    with pytest.raises(ScaleSimFormatError, match="is a folder"):
        read_topology(tmp_path)


def test_binary_file(tmp_path):
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00garbage\x9c")
    with pytest.raises(ScaleSimFormatError, match="bin.csv: not a text"):
        read_topology(p)


def test_bad_options():
    with pytest.raises(ValueError, match="fmt"):
        parse_topology(HEADER + "a, 8, 8, 1, 1, 2, 2, 1,\n", fmt="csv")
    with pytest.raises(ValueError, match="rounding"):
        parse_topology(HEADER + "a, 8, 8, 1, 1, 2, 2, 1,\n", rounding="ceil")
    with pytest.raises(ValueError, match="dataflow"):
        ScaleSimLayer("a", 8, 8, 1, 1, 2, 2, 1).spatiotemporal("rs")
