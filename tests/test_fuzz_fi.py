"""Fuzzing the fault-injection inputs (issue 7): workload specs and campaign databases.

* workload specs, random text and mutations of valid specs, into ``parse_workload`` / ``build_workload`` on a
  small configuration (with small limits, so that a mutation into a valid large spec is refused quickly, not
  built): each returns a program or raises a HwgenError subclass, nothing else;
* campaign databases: one small valid model-backend campaign (half its results recorded) per module, then random
  byte mutations and truncations, or SQL-level tampering (campaign fields set to random values, tables dropped,
  rows added, deleted or altered, triggers and views), then open / report / resume: only HwgenError subclasses,
  and a file that failed to open is byte-identical afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fault_injection.campaign import resume_campaign, run_campaign
from fault_injection.report import campaign_report
from fault_injection.store import CampaignStore
from fault_injection.workload import build_workload, parse_workload
from hwgen.config import AcceleratorConfig
from hwgen.errors import HwgenError

CFG = AcceleratorConfig(name="tiny", rows=2, cols=2, a_spad_depth=32, w_spad_depth=32, acc_depth=16)
WL = "gemm:4x6x3"
FUZZ = settings(max_examples=int(os.environ.get("HWGEN_FUZZ_EXAMPLES", "100")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
DB_FUZZ = settings(max_examples=int(os.environ.get("HWGEN_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: small limits while fuzzing specs: every valid mutation builds in milliseconds, every larger one is refused
SMALL_LIMITS = {"HWGEN_LIMIT_SIMULATED_MACS": "4000", "HWGEN_LIMIT_TENSOR_ELEMENTS": "4000",
                "HWGEN_LIMIT_DIMENSION": "4096"}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ------------------------------------------------------------------ workload specs
VALID_SPECS = ["gemm:4x6x3", "gemm:2x2x2", "conv:5x5x2:3:4", "conv:6x6x3:3x3:5:2:1", "conv:4x4x1:1x1:2:1:0",
               "zoo:mlp:fc3", "zoo:mlp", "onnx:model.onnx:conv1", "m.onnx"]
ALPHABET = "0123456789xX:;-+.e \t\n\x00\u0663\uff18/onnxgemconvzoo" + "9" * 10


def _run_spec(spec: str) -> None:
    """The spec parsed and built: a program or a HwgenError (a ValueError, TypeError... fails the test)."""
    with _environment(SMALL_LIMITS):
        try:
            parse_workload(spec)
        except HwgenError as e:
            assert str(e) and "\n" not in str(e)
        try:
            prog = build_workload(spec, CFG, 1)
        except HwgenError as e:
            assert str(e) and "\n" not in str(e)
        else:
            assert prog.instructions


@st.composite
def mutated_specs(draw) -> str:
    spec = draw(st.sampled_from(VALID_SPECS))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        i = draw(st.integers(0, len(spec)))
        ch = draw(st.one_of(st.sampled_from(ALPHABET), st.characters()))
        if op == "insert":
            spec = spec[:i] + ch + spec[i:]
        elif op == "delete":
            spec = spec[:i] + spec[i + 1:]
        elif op == "replace":
            spec = spec[:i] + ch + spec[i + 1:]
        else:
            spec = spec[:i] + spec[i:i + 3] * draw(st.integers(2, 2000)) + spec[i + 3:]
    return spec


@FUZZ
@given(st.one_of(st.text(max_size=80), st.from_regex(r"(gemm|conv|zoo|onnx|GEMM)?:?[0-9x:]{0,40}", fullmatch=True)))
def test_random_text_specs(spec):
    _run_spec(spec)


@FUZZ
@given(mutated_specs())
def test_mutated_valid_specs(spec):
    _run_spec(spec)


# ------------------------------------------------------------------ campaign databases
@pytest.fixture(scope="module")
def campaign_bytes(tmp_path_factory) -> bytes:
    db = tmp_path_factory.mktemp("fuzz_fi") / "valid.db"
    run_campaign(db, CFG, WL, 40, seed=2, backend="model", progress=False)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM results WHERE fault_index >= 20")
    con.commit()
    con.close()
    return db.read_bytes()


def _exercise(db: Path) -> None:
    """Open (read-only, read-write), report, resume: each succeeds or raises a HwgenError; a failed open
    leaves the file as it was."""
    for readonly in (True, False):
        before = db.read_bytes()
        try:
            CampaignStore.open(db, readonly=readonly).close()
        except HwgenError as e:
            assert str(db) in str(e) and "\n" not in str(e)
            assert db.read_bytes() == before, "a failed open changed the file"
            assert sorted(p.name for p in db.parent.iterdir()) == [db.name]
            opened = False
        else:
            opened = True
    try:
        campaign_report(db)
    except HwgenError as e:
        assert "\n" not in str(e)
    if opened:  # resume only what a read-write open accepts (it then injects the pending faults)
        try:
            resume_campaign(db, progress=False)
        except HwgenError as e:
            assert "\n" not in str(e)


@st.composite
def byte_mutations(draw, size: int):
    kind = draw(st.sampled_from(["flip", "block", "truncate", "zero page", "header"]))
    if kind == "flip":
        return kind, draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=16))
    if kind == "block":
        return kind, (draw(st.integers(100, size - 1)), draw(st.binary(min_size=1, max_size=4096)))
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1))
    if kind == "zero page":
        return kind, draw(st.integers(0, size // 4096))
    return kind, draw(st.lists(st.tuples(st.integers(16, 99), st.integers(0, 255)), min_size=1, max_size=4))


def _mutate(data: bytes, mutation) -> bytes:
    kind, arg = mutation
    out = bytearray(data)
    if kind in ("flip", "header"):
        for i, b in arg:
            out[i] = b
    elif kind == "block":
        at, block = arg
        out[at:at + len(block)] = block
    elif kind == "truncate":
        del out[arg:]
    else:
        out[arg * 4096:(arg + 1) * 4096] = bytes(len(out[arg * 4096:(arg + 1) * 4096]))
    return bytes(out)


@DB_FUZZ
@given(data=st.data())
def test_byte_mutated_databases(campaign_bytes, data):
    mutation = data.draw(byte_mutations(len(campaign_bytes)))
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "c.db"
        db.write_bytes(_mutate(campaign_bytes, mutation))
        _exercise(db)


COLUMNS = {
    "campaign": ["config", "workload", "seed", "backend", "models", "planned", "margin", "confidence",
                 "golden_cycles", "created", "hwgen_version", "schema_version", "id"],
    "faults": ["fault_index", "site", "structure", "model", "cycle", "word", "bit", "nbits", "duration"],
    "results": ["fault_index", "outcome", "cycles", "early_stop", "detail", "finished"],
    "sites": ["name", "structure", "width", "depth", "kind"],
}
BIG = "9" * 4301
CHOSEN = ["gemm:4x6x3", "gemm:100000x16x100000", "gemm:" + BIG + "x1x1", "model", "rtl", "this:s",
          "fault_injection.model_injector:ModelInjector", '["seu"]', '["mbu", "seu"]', '["zap"]', "[" * 1000,
          "[" + BIG + "]", '{"rows": 2}', '{"rows": ' + BIG + "}", '{"name": "tiny"}', CFG.to_json(), "sdc", "due",
          "masked", "mem", "ff", "pc", "a_spad", "seu", "mbu", "stuck0", BIG]
VALUES = st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1), st.integers(-3, 50),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.binary(max_size=16),
                   st.sampled_from(CHOSEN))


@st.composite
def tamperings(draw) -> list[tuple[str, tuple]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(sorted(COLUMNS)))
        kind = draw(st.sampled_from(["update", "update row", "insert", "delete", "drop", "object", "pragma"]))
        column = draw(st.sampled_from(COLUMNS[table]))
        if kind == "update":
            out.append((f"UPDATE {table} SET {column} = ?", (draw(VALUES),)))
        elif kind == "update row":
            out.append((f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (draw(VALUES), draw(st.integers(0, 45)))))
        elif kind == "insert":
            n = len(COLUMNS[table])
            out.append((f"INSERT INTO {table} VALUES ({', '.join('?' * n)})",
                        tuple(draw(VALUES) for _ in range(n))))
        elif kind == "delete":
            out.append((f"DELETE FROM {table} WHERE rowid % ? = 0", (draw(st.integers(1, 7)),)))
        elif kind == "drop":
            out.append((f"DROP TABLE {table}", ()))
        elif kind == "object":
            out.append((draw(st.sampled_from([
                f"CREATE TRIGGER t_{table} AFTER INSERT ON {table} BEGIN DELETE FROM faults; END",
                f"CREATE VIEW v_{table} AS SELECT * FROM {table}", "CREATE TABLE extra (x)",
                f"CREATE INDEX i_{table} ON {table} ({column})"])), ()))
        else:
            out.append((draw(st.sampled_from(["PRAGMA user_version = 2", "PRAGMA application_id = 7",
                                               "PRAGMA journal_mode = WAL", "PRAGMA page_size = 512",
                                               "VACUUM"])), ()))
    return out


@DB_FUZZ
@given(tamperings())
def test_sql_tampered_databases(campaign_bytes, edits):
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "c.db"
        db.write_bytes(campaign_bytes)
        con = sqlite3.connect(db, isolation_level=None)
        con.execute("PRAGMA ignore_check_constraints = ON")
        for sql, params in edits:
            try:
                con.execute(sql, params)
            except (sqlite3.IntegrityError, sqlite3.OperationalError, OverflowError):
                pass  # NOT NULL, duplicate keys, a table dropped by an earlier edit: the edit did not happen
        con.close()
        _exercise(db)
