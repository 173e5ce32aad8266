"""Hypothesis-driven fuzzing of every input surface through the command line (issue 7).

For each surface (configuration JSON, program text and binary, ``.npy`` inputs, ONNX models, SCALE-Sim CSVs,
workload specs, campaign databases) random and mutated inputs go through ``hwgen.cli.main`` in a scratch
folder, and each run must:

* exit with 0 or 2 (never a traceback, never "internal error");
* leave every input byte-identical and touch nothing but the outputs it was asked to write;
* leave nothing half-written (no temporary siblings).

Sizes are kept small by lowering the limits (``HWGEN_LIMIT_*``), which is also what a user does; the
surfaces' own unit fuzzers (importers, store) are in tests/test_fuzz_importers.py and tests/test_fi_hostile.py.
"""

import contextlib
import io
import json
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fs_snapshot import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.isa import LAYOUT, Opcode

FUZZ = settings(max_examples=int(os.environ.get("HWGEN_FUZZ_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
SMALL_LIMITS = {"HWGEN_LIMIT_SIMULATED_MACS": "20000", "HWGEN_LIMIT_TENSOR_ELEMENTS": "200000",
                "HWGEN_LIMIT_RUN_BYTES": "4000000", "HWGEN_LIMIT_INJECTIONS": "50", "HWGEN_LIMIT_RTL_PES": "64"}


@contextlib.contextmanager
def scratch(files: dict[str, bytes]):
    """A fresh folder holding ``files``, as the current folder, with small limits; removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="hwgen-fuzz-"))
    old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in SMALL_LIMITS}
    try:
        for name, data in files.items():
            (d / name).parent.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(data)
        os.chdir(d)
        os.environ.update(SMALL_LIMITS)
        yield d
    finally:
        os.chdir(old_cwd)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(d, ignore_errors=True)


def check_run(argv: list[str], root: Path, outputs: set[str] = frozenset(), ok_codes=(0, 2)) -> int:
    """Run ``argv`` in ``root``; assert the contract above; return the exit status."""
    before = snapshot(root)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse usage errors
            rc = e.code
    text = err.getvalue()
    assert rc in ok_codes, (argv, rc, text)
    assert "Traceback" not in text and "internal error" not in text, (argv, text)
    if rc == 2:
        assert text.strip(), argv
    after = snapshot(root)
    for name, data in before.items():
        assert after.get(name) == data, (argv, f"{name} changed")
    new = set(after) - set(before)
    allowed = {n for n in new if any(n == o or n.startswith(o + "/") for o in outputs)}
    assert new == allowed, (argv, f"unexpected files: {sorted(new - allowed)}")
    assert not any(".tmp-" in n or ".old-" in n for n in after), (argv, sorted(after))
    if rc != 0:
        assert not new, (argv, f"failed but wrote {sorted(new)}")
    return rc


# ------------------------------------------------------------------ configuration JSON
FIELDS = list(AcceleratorConfig().to_dict())
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.sampled_from([0, 1, 2, 8, 64]),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                         st.sampled_from(["os", "ws", "both", ".", "..", "a/b", "x" * 70]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
config_docs = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS + ["bogus"]), json_values, max_size=6).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.sampled_from(['{"rows": 1' + "0" * 5000 + "}", "[" * 5000, '{"rows": NaN}', '{"rows": Infinity}', ""]),
)


@FUZZ
@given(doc=config_docs)
def test_fuzz_config_json(doc):
    with scratch({"c.json": doc.encode("utf-8", "surrogatepass")}) as root:
        check_run(["map", "zoo:mlp", "--config", "c.json", "--json", "m.json"], root, {"m.json"})


# ------------------------------------------------------------------ program text and binary
MNEMONICS = [op.name.lower() for op in Opcode] + ["lod", ""]
FIELD_NAMES = sorted({f.name for fields in LAYOUT.values() for f in fields}) + ["bogus"]
tokens = st.one_of(
    st.tuples(st.sampled_from(FIELD_NAMES),
              st.one_of(st.integers(-2 ** 40, 2 ** 40).map(str), st.sampled_from(["a", "w", "q", "os", "ws", "abc",
                                                                                  "0x10", "-0", "9" * 50])))
    .map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(alphabet="=#x -\t\u00e4", max_size=6))
lines = st.tuples(st.sampled_from(MNEMONICS), st.lists(tokens, max_size=6)).map(lambda t: " ".join([t[0], *t[1]]))


@FUZZ
@given(text=st.one_of(st.lists(lines, max_size=8).map("\n".join), st.text(max_size=100)))
def test_fuzz_program_text(text):
    with scratch({"p.s": text.encode("utf-8", "surrogatepass")}) as root:
        if check_run(["asm", "p.s", "-o", "p.bin"], root, {"p.bin"}) == 0:
            check_run(["disasm", "p.bin"], root, ok_codes=(0,))  # what asm writes, disasm reads


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_program_binary(data):
    with scratch({"p.bin": data}) as root:
        check_run(["disasm", "p.bin"], root)


# ------------------------------------------------------------------ .npy inputs and ONNX models
@pytest.fixture(scope="module")
def tiny_model():
    from mappings.onnx_models import mlp, quantize_qdq, random_inputs, save

    d = Path(tempfile.mkdtemp(prefix="hwgen-fuzz-model-"))
    fm = mlp(seed=3, features=(6, 5, 4, 3))
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "m.onnx", "int8", True, seed=3)
    np.save(d / "x.npy", next(iter(random_inputs(fm, seed=1)[0].values())))
    yield d  # a path, not the bytes: hypothesis prints the arguments of a failing example
    shutil.rmtree(d, ignore_errors=True)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: 0 flip a byte, 1 truncate, 2 insert a byte, 3 delete a byte."""
    b = bytearray(data)
    for kind, pos, val in edits:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] ^= val or 1
        elif kind == 1:
            del b[i:]
        elif kind == 2:
            b.insert(i, val)
        else:
            del b[i]
    return bytes(b)


edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2 ** 20), st.integers(0, 255)), min_size=1, max_size=4)


@FUZZ
@given(e=edits, header_only=st.booleans())
def test_fuzz_npy_input(tiny_model, e, header_only):
    model, x = (tiny_model / "m.onnx").read_bytes(), (tiny_model / "x.npy").read_bytes()
    data = mutate(x[:128], e) + x[128:] if header_only else mutate(x, e)
    with scratch({"m.onnx": model, "x.npy": data}) as root:
        check_run(["run", "m.onnx", "--input", "x.npy", "--output", "y.npy"], root, {"y.npy"})


@FUZZ
@given(e=edits)
def test_fuzz_onnx_model(tiny_model, e):
    model, x = (tiny_model / "m.onnx").read_bytes(), (tiny_model / "x.npy").read_bytes()
    with scratch({"m.onnx": mutate(model, e), "x.npy": x}) as root:
        check_run(["map", "m.onnx", "--csv", "m.csv"], root, {"m.csv"})
        check_run(["run", "m.onnx", "--input", "x.npy", "--output", "y.npy"], root, {"y.npy"})


# ------------------------------------------------------------------ SCALE-Sim CSVs
csv_cells = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["", "x", "1e3", "9" * 40, " 3 ", "-0"]))
csv_rows = st.lists(st.lists(csv_cells, min_size=0, max_size=9).map(",".join), max_size=5)
HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"


@FUZZ
@given(rows=csv_rows, header=st.booleans(), compat=st.booleans())
def test_fuzz_scalesim_csv(rows, header, compat):
    text = "\n".join(([HEADER] if header else []) + [f"L{i}," + r for i, r in enumerate(rows)]) + "\n"
    with scratch({"t.csv": text.encode()}) as root:
        check_run(["map", "t.csv", "--rows", "4", "--cols", "4", "--json", "t.json",
                   *(["--scalesim-compat"] if compat else [])], root, {"t.json"})


# ------------------------------------------------------------------ workload specs and campaign databases
FI_ARGS = ["--rows", "2", "--cols", "2", "--a-spad-depth", "16", "--w-spad-depth", "16", "--acc-depth", "8",
           "--backend", "model", "--no-progress", "--injections", "3"]
spec_parts = st.one_of(st.integers(-3, 40).map(str), st.sampled_from(["", "x", "0", "9" * 30, "1.5", "3x3", "zoo",
                                                                      "mlp", "onnx", "../m.onnx", "gemm", "conv"]))
specs = st.one_of(
    st.tuples(st.sampled_from(["gemm", "conv", "zoo", "onnx", "bogus", ""]), st.lists(spec_parts, max_size=4))
    .map(lambda t: ":".join([t[0], "x".join(t[1][:3]), *t[1][3:]])),
    st.text(max_size=30))


@FUZZ
@given(spec=specs)
def test_fuzz_workload_spec(spec):
    with scratch({}) as root:
        check_run(["fi", "run", *FI_ARGS, "--workload", spec, "--db", "c.sqlite"], root, {"c.sqlite"})


@pytest.fixture(scope="module")
def campaign_db():
    """A small finished campaign database (its path: hypothesis prints the arguments of a failing example)."""
    d = Path(tempfile.mkdtemp(prefix="hwgen-fuzz-db-"))
    with scratch({}) as root:
        assert main(["fi", "run", *FI_ARGS[:-1], "12", "--workload", "gemm:3x4x2", "--db", "c.sqlite"]) == 0
        shutil.copy(root / "c.sqlite", d / "c.sqlite")
    yield d / "c.sqlite"
    shutil.rmtree(d, ignore_errors=True)


tamper = st.one_of(
    st.tuples(st.sampled_from(["backend", "workload", "config", "models", "planned", "seed", "confidence",
                               "golden_cycles", "margin"]),
              st.one_of(st.text(max_size=20), st.integers(-2 ** 63, 2 ** 63 - 1), st.floats(), st.none(),
                        st.sampled_from(["this:s", "os:system", '{"rows": 99999}', "[" * 2000, "gemm:99999x99999x9"]))),
    st.sampled_from(["DROP TABLE results", "DROP TABLE campaign", "DELETE FROM campaign",
                     "INSERT INTO campaign SELECT * FROM campaign", "UPDATE results SET outcome = 'boom'"]))


@FUZZ
@given(e=st.one_of(edits, st.none()), t=st.one_of(tamper, st.none()), resume=st.booleans())
def test_fuzz_campaign_database(campaign_db, e, t, resume):
    with scratch({"c.sqlite": campaign_db.read_bytes()}) as root:
        if t is not None:
            con = sqlite3.connect(root / "c.sqlite")
            try:
                with con:
                    if isinstance(t, str):
                        con.execute(t)
                    else:
                        con.execute(f"UPDATE campaign SET {t[0]} = ?", (t[1],))
            except sqlite3.Error:
                pass  # a constraint refused the tampering: still a fine test input
            finally:
                con.close()
        if e is not None:
            p = root / "c.sqlite"
            p.write_bytes(mutate(p.read_bytes(), e))
        if resume:  # resume may add results to a campaign it accepts: there the database is its output
            _resume_check(root)
        else:
            check_run(["fi", "report", "--db", "c.sqlite", "--md", "r.md"], root, {"r.md"})


def _resume_check(root: Path) -> None:
    """``fi resume`` on a (tampered) database: exit 0 or 2, no traceback; if it refused, the file is unchanged."""
    before = (root / "c.sqlite").read_bytes()
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(["fi", "resume", "--db", "c.sqlite", "--no-progress"])
        except SystemExit as ex:
            rc = ex.code
    assert rc in (0, 2), (rc, err.getvalue())
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue(), err.getvalue()
    if rc == 2:
        assert (root / "c.sqlite").read_bytes() == before
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("c.sqlite")) == []
