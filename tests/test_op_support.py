"""Which operators a model needs and where they run: `hwgen check`, and the importer naming every
unsupported operator and node at once."""

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.cli import main
from mappings.onnx_import import OP_PLACEMENT, SUPPORTED_OPS, OnnxImportError, import_onnx, op_support
from mappings.onnx_models import quantize_qdq, save, small_cnn


def _unsupported_model() -> onnx.ModelProto:
    """A Conv followed by operators hwgen does not run: three of them, four nodes."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])
    w = numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Softplus", ["c"], ["s"], name="sp1"),
             helper.make_node("LpNormalization", ["s"], ["m"], name="lpn", axis=1),
             helper.make_node("Hardmax", ["m"], ["h"], name="hm"),
             helper.make_node("Softplus", ["h"], ["y"], name="sp2")]
    return helper.make_model(helper.make_graph(nodes, "t", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 13)])


def test_every_unsupported_operator_and_node_in_one_error():
    with pytest.raises(OnnxImportError) as e:
        import_onnx(_unsupported_model())
    msg = str(e.value)
    assert "4 nodes of 3 unsupported operators" in msg
    for op, node in (("Softplus", "sp1"), ("Softplus", "sp2"), ("LpNormalization", "lpn"), ("Hardmax", "hm")):
        assert f"'{op}'" in msg and f"node '{node}'" in msg
    assert "Conv" not in msg.replace("(Conv", "")  # the supported one is not listed


def test_map_refuses_unsupported_model_naming_all_and_writes_nothing(tmp_path, capsys):
    model, out = tmp_path / "m.onnx", tmp_path / "m.json"
    onnx.save(_unsupported_model(), model)
    assert main(["map", str(model), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(n in err for n in ("sp1", "sp2", "lpn", "hm"))
    assert not out.exists()


def test_check_table_counts_every_node_of_a_qdq_model(tmp_path, capsys):
    d = tmp_path
    save(small_cnn(seed=5), d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "q.onnx", activation_type="uint8", per_channel=True, seed=5)
    m = onnx.load(d / "q.onnx")
    rows = op_support(d / "q.onnx")
    by_op: Counter = Counter()
    for r in rows:
        by_op[r.op] += r.count
        assert r.where == OP_PLACEMENT[r.op]
    assert by_op == Counter(n.op_type for n in m.graph.node)  # independent count: the model's own nodes
    assert {"Conv": "accelerator", "QuantizeLinear": "folded"}.items() <= {r.op: r.where for r in rows}.items()
    assert main(["check", str(d / "q.onnx")]) == 0
    out = capsys.readouterr().out
    assert "accelerator" in out and "imports:" in out and "0 unsupported nodes" in out


def test_check_places_every_matmul_on_the_array_and_lists_unsupported(tmp_path, capsys):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])
    w = numpy_helper.from_array(np.ones((8, 4), np.float32), "w")
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"], name="proj"),       # weights: on the array
             helper.make_node("Softplus", ["p"], ["pt"], name="t"),
             helper.make_node("MatMul", ["p", "pt"], ["y"], name="scores")]      # two activations: the array too
    model = helper.make_model(helper.make_graph(nodes, "mm", [a], [y], [w]), opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "mm.onnx"
    onnx.save(model, path)
    rows = {(r.op, r.where): r.nodes for r in op_support(path)}
    assert rows == {("MatMul", "accelerator"): ("proj", "scores"), ("Softplus", "unsupported"): ("t",)}
    assert main(["check", str(path)]) == 2
    io = capsys.readouterr()
    assert "unsupported" in io.out and "node 't' (Softplus)" in io.err


def test_placement_table_covers_exactly_the_supported_operators():
    assert set(OP_PLACEMENT) == SUPPORTED_OPS
    assert set(OP_PLACEMENT.values()) <= {"accelerator", "host", "folded"}


def test_check_refuses_a_file_that_is_not_onnx(tmp_path, capsys):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00\x01not onnx")
    assert main(["check", str(bad)]) == 2
    assert "x.onnx" in capsys.readouterr().err
