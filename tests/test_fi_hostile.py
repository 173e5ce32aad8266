"""Fault-injection inputs from careless and hostile users (issue 7): one test per measured case.

1. a campaign database never chooses code to import (closed backend registry), and every field read back from it
   is checked (configuration JSON, workload, models, numbers);
2. damaged databases (garbage pages, truncation, not a database, locked, disk full) are one StoreError naming the
   file on every path, and a failed open leaves the file byte-identical;
3. workload sizes are checked against hwgen.limits before anything is allocated;
4. campaign sizes (Leveugle for a tiny margin, an explicit count) against the injections limit; confidence and
   margin strictly in (0, 1);
5. Dask scheduler addresses: the form checked, an unreachable or silent peer refused within a bounded time, the
   database untouched.

Every error must be a HwgenError subclass with a one-line message; nothing here may leave a traceback.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bounds import LITTLE, no_hang, peak_allocation

import fault_injection.campaign as campaign
import fault_injection.store as store_module
from fault_injection.campaign import (CampaignError, injector_factory, register_injector, resume_campaign,
                                      run_campaign)
from fault_injection.report import campaign_report
from fault_injection.sampling import per_structure_n, plan_faults, sample_size
from fault_injection.sites import model_sites
from fault_injection.store import CampaignStore, StoreError
from fault_injection.workload import WorkloadError, build_workload, check_workload, parse_workload
from hwgen.config import AcceleratorConfig
from hwgen.errors import HwgenError, LimitError

ROOT = Path(__file__).resolve().parent.parent
CFG = AcceleratorConfig(controller="in-order", name="tiny", rows=2, cols=2, a_spad_depth=32, w_spad_depth=32, acc_depth=16)
WL = "gemm:4x6x3"
PLANNED = 40


@pytest.fixture(scope="module")
def partial_db(tmp_path_factory) -> Path:
    """A valid model-backend campaign with half its results: resume has work, report has numbers."""
    db = tmp_path_factory.mktemp("fi_hostile") / "partial.db"
    run_campaign(db, CFG, WL, PLANNED, seed=2, backend="model", progress=False)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM results WHERE fault_index >= 20")
    con.commit()
    con.close()
    return db


def _copy(src: Path, tmp_path: Path, name: str = "c.db") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _tamper(db: Path, *sql: str, params: tuple = ()) -> Path:
    """Edit ``db`` as anyone with sqlite3 can, CHECK constraints ignored."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA ignore_check_constraints = ON")
    for statement in sql:
        con.execute(statement, params if "?" in statement else ())
    con.commit()
    con.close()
    return db


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert isinstance(e, HwgenError), f"{type(e).__name__}: {text}"
    assert "\n" not in text and text, repr(text)
    return text


def _refused(call, *expected: str, kinds=(StoreError, CampaignError)) -> str:
    """Run ``call``; it must raise one of ``kinds`` whose one-line message contains every ``expected``."""
    with pytest.raises(kinds) as e:
        call()
    text = _one_line(e.value)
    for part in expected:
        assert part in text, (part, text)
    return text


def _known(text: str) -> set[str]:
    """The backend names a message lists after 'known: ' (other tests of the process may have registered some)."""
    return set(text.split("known: ", 1)[1].split(" (", 1)[0].split(", "))


def _siblings(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name))


def _every_path(db: Path) -> list:
    """The ways in: open (read-only and read-write), report, resume, and run_campaign on the existing file."""
    return [lambda: CampaignStore.open(db, readonly=True).close(), lambda: CampaignStore.open(db).close(),
            lambda: campaign_report(db), lambda: resume_campaign(db, progress=False),
            lambda: run_campaign(db, CFG, WL, PLANNED, seed=2, backend="model", progress=False)]


def _refused_everywhere(db: Path, *expected: str) -> None:
    before = db.read_bytes()
    for call in _every_path(db):
        _refused(call, str(db), *expected)
        assert db.read_bytes() == before
        assert _siblings(db) == [db.name]


# ------------------------------------------------------------------ 1. the database never chooses code
@pytest.fixture
def probe_module(tmp_path, monkeypatch) -> Path:
    """An importable module that leaves a marker file when imported: a backend naming it must not import it."""
    marker = tmp_path / "imported"
    (tmp_path / "hwgen_hostile_probe.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\ndef f(cfg, program):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


@pytest.mark.parametrize("backend", ["hwgen_hostile_probe:f", "this:s", "os:system", "hwgen_hostile_probe",
                                     "nope", "model "])
def test_backend_from_database_is_never_imported(partial_db, tmp_path, probe_module, backend):
    db = _tamper(_copy(partial_db, tmp_path), "UPDATE campaign SET backend = ?", params=(backend,))
    had_this = "this" in sys.modules
    before = db.read_bytes()
    for call in (lambda: resume_campaign(db, progress=False), lambda: resume_campaign(db, jobs=2, progress=False)):
        text = _refused(call, str(db), "campaign field 'backend'", "register_injector")
        assert repr(backend) in text and _known(text) >= {"model", "rtl"}
    assert db.read_bytes() == before and not probe_module.exists()
    assert "hwgen_hostile_probe" not in sys.modules and ("this" in sys.modules) == had_this
    rep = campaign_report(db)  # reporting names the backend, it never loads it
    assert rep.campaign["backend"] == backend and not probe_module.exists()


def test_backend_names_from_arguments_are_never_imported(tmp_path, probe_module):
    for name in ("hwgen_hostile_probe:f", "hwgen_hostile_probe"):
        text = _refused(lambda: injector_factory(name), f"unknown backend '{name}'", kinds=CampaignError)
        assert _known(text) >= {"model", "rtl"}
        _refused(lambda: run_campaign(tmp_path / "n.db", CFG, WL, 10, backend=name, progress=False),
                 "unknown backend", kinds=CampaignError)
    assert not probe_module.exists() and not (tmp_path / "n.db").exists()
    _refused(lambda: injector_factory(["model"]), "unknown backend", kinds=CampaignError)


def test_register_injector_is_the_way_in(tmp_path):
    from fault_injection.model_injector import ModelInjector

    register_injector("hostile.model-copy", ModelInjector)
    s = run_campaign(tmp_path / "r.db", CFG, WL, 12, seed=3, backend="hostile.model-copy", progress=False)
    assert s.complete and campaign_report(tmp_path / "r.db").done == 12
    for name in ("a:b", "", "x" * 65, "../x", 3):
        _refused(lambda: register_injector(name, ModelInjector), "backend name", kinds=CampaignError)
    _refused(lambda: register_injector("ok", "not callable"), "not callable", kinds=CampaignError)
    register_injector("hostile-lambda", lambda cfg, program: ModelInjector(cfg, program))
    _refused(lambda: run_campaign(tmp_path / "l.db", CFG, WL, 12, backend="hostile-lambda", jobs=2,
                                  progress=False), "cannot be sent to worker processes", kinds=CampaignError)


BIG = "9" * 4301
DEEP = "[" * 100_000 + "]" * 100_000
FIELDS = [  # (column, value, what the message must say)
    ("config", '{"rows": ' + BIG + "}", "4,300 digits"),
    ("config", DEEP, "nested 100000 levels deep"),
    ("config", '{"rows": 0}', "rows"),
    ("config", '"a text"', "expected a JSON object"),
    ("config", "not json", "not valid JSON"),
    ("config", b"\x00\x01", "not a JSON text"),
    ("models", '["seu", "zap"]', "fault models"),
    ("models", "[]", "fault models"),
    ("models", '["seu", "seu"]', "distinct"),
    ("models", DEEP, "fault models"),
    ("models", "[" + BIG + "]", "4,300 digits"),
    ("seed", -1, "non-negative"),
    ("seed", "abc", "non-negative"),
    ("seed", 1.5, "non-negative"),
    ("planned", 0, "positive"),
    ("planned", 10**12, "HWGEN_LIMIT_INJECTIONS"),
    ("planned", BIG, "positive"),
    ("confidence", 1.0, "strictly between 0 and 1"),
    ("confidence", 0.0, "strictly between 0 and 1"),
    ("confidence", float("inf"), "strictly between 0 and 1"),
    ("confidence", "x", "strictly between 0 and 1"),
    ("margin", 2.0, "strictly between 0 and 1"),
    ("margin", "x", "strictly between 0 and 1"),
    ("golden_cycles", 0, "positive"),
    ("golden_cycles", -7, "positive"),
    ("backend", "", "backend name"),
    ("backend", "x\nimport os", "backend name"),
    ("workload", "", "workload spec"),
    ("workload", b"gemm:4x6x3", "workload spec"),
    ("workload", "w" * 10_000, "workload spec"),
    ("schema_version", 3, "schema_version"),
    ("created", b"\x00", "not a text"),
]


@pytest.mark.parametrize("column,value,says", FIELDS, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(FIELDS)])
def test_campaign_fields_read_back_are_checked(partial_db, tmp_path, column, value, says):
    db = _tamper(_copy(partial_db, tmp_path), f"UPDATE campaign SET {column} = ?", params=(value,))
    _refused_everywhere(db, f"campaign field '{column}'", says)


@pytest.mark.parametrize("workload,says", [
    ("gemm:100000x16x100000", "HWGEN_LIMIT_TENSOR_ELEMENTS"),
    ("gemm:" + BIG + "x2x2", "field M: a number of 4,301 digits"),
    ("gemm:4x6", "MxKxN"),
    ("fft:8", "unknown kind"),
    ("gemm:4x5000x3", "max_reduction"),
])
def test_stored_workload_is_checked_before_resume(partial_db, tmp_path, workload, says):
    db = _tamper(_copy(partial_db, tmp_path), "UPDATE campaign SET workload = ?", params=(workload,))
    before = db.read_bytes()
    for jobs in (1, 2):
        _refused(lambda: resume_campaign(db, jobs=jobs, progress=False), str(db), "campaign field 'workload'", says)
        assert db.read_bytes() == before


@pytest.mark.parametrize("sql,says", [
    ("UPDATE faults SET bit = 100000 WHERE fault_index = 25", "planned fault 25"),
    ("UPDATE faults SET site = 'nosuch' WHERE fault_index = 30", "planned fault 30"),
    ("UPDATE faults SET model = 'zap' WHERE fault_index = 30", "planned fault 30"),
    ("UPDATE faults SET cycle = -1 WHERE fault_index = 21", "planned fault 21"),
    ("UPDATE faults SET cycle = 'x' WHERE fault_index = 21", "planned fault 21"),
    ("UPDATE campaign SET golden_cycles = 1", "1-cycle golden run"),
])
def test_planned_faults_read_back_are_checked(partial_db, tmp_path, sql, says):
    db = _tamper(_copy(partial_db, tmp_path), sql)
    before = db.read_bytes()
    _refused(lambda: resume_campaign(db, progress=False), str(db), says, kinds=StoreError)
    assert db.read_bytes() == before


@pytest.mark.parametrize("sql,says", [
    ("INSERT INTO faults VALUES (4000, 'pc', 'controller', 'seu', 0, 0, 0, 1, 1)", "the plan holds 41 faults"),
    ("DELETE FROM faults WHERE fault_index = 3", "the plan holds 39 faults"),
    ("INSERT INTO results VALUES (9999, 'sdc', 1, 0, '', 'x')", "outside the plan"),
    ("INSERT INTO results VALUES (-1, 'sdc', 1, 0, '', 'x')", "outside the plan"),
    ("DELETE FROM sites", "no fault sites"),
    ("INSERT INTO campaign SELECT 2, schema_version, config, workload, seed, backend, models, planned, margin, "
     "confidence, golden_cycles, created, hwgen_version FROM campaign", "holds 2 campaign rows"),
    ("DROP TABLE results", "lacks table columns: results"),
    ("ALTER TABLE sites RENAME TO sites_old", "sites_old"),
    ("CREATE TABLE extra (x)", "table 'extra'"),
    ("CREATE VIEW v AS SELECT 1", "view 'v'"),
    ("CREATE TRIGGER t AFTER INSERT ON results BEGIN DELETE FROM faults; END", "trigger 't'"),
    ("UPDATE results SET outcome = 'boom' WHERE fault_index = 0", "outcome 'boom'"),
    ("UPDATE sites SET width = 0 WHERE rowid = 1", "site row"),
])
def test_tables_read_back_are_checked(partial_db, tmp_path, sql, says):
    db = _tamper(_copy(partial_db, tmp_path), sql)
    before = db.read_bytes()
    for call in (lambda: campaign_report(db), lambda: resume_campaign(db, progress=False)):
        text = _refused(call, str(db), kinds=StoreError)
        assert says in text or "CHECK constraint failed" in text, text  # resume: quick_check catches it first
        assert db.read_bytes() == before and _siblings(db) == [db.name]


# ------------------------------------------------------------------ 2. damaged databases
def test_garbage_pages_after_a_valid_header(partial_db, tmp_path):
    db = _copy(partial_db, tmp_path)
    data = bytearray(db.read_bytes())
    page = 4096
    data[page:] = bytes((i * 131 + 7) % 251 for i in range(len(data) - page))  # every page but the first
    db.write_bytes(bytes(data))
    _refused_everywhere(db, "damaged campaign database")


def test_garbage_in_the_middle(partial_db, tmp_path):
    db = _copy(partial_db, tmp_path)
    data = bytearray(db.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = os.urandom(2000)
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    for call in _every_path(db):  # a page nobody reads may survive; whatever fails, fails as a StoreError
        try:
            call()
        except HwgenError as e:
            assert str(db) in _one_line(e)
    with pytest.raises(StoreError, match="damaged campaign database"):
        resume_campaign(db, progress=False)  # the read-write open runs quick_check: never writes into it
    assert db.read_bytes() == before


@pytest.mark.parametrize("how", ["page size", "truncated", "half a header", "WAL", "zeroed"])
def test_not_a_database_any_more(partial_db, tmp_path, how):
    db = _copy(partial_db, tmp_path)
    data = bytearray(db.read_bytes())
    if how == "page size":
        data[16:18] = b"\x00\x03"  # not a power of two: "file is not a database"
    elif how == "truncated":
        data = data[:4096 + 1500]
    elif how == "half a header":
        data = data[:60]
    elif how == "WAL":
        data[18:20] = b"\x02\x02"
    else:
        data[100:] = bytes(len(data) - 100)
    db.write_bytes(bytes(data))
    _refused_everywhere(db)


def test_locked_database(partial_db, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)
    db = _copy(partial_db, tmp_path)
    before = db.read_bytes()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        for call in (lambda: campaign_report(db), lambda: resume_campaign(db, progress=False),
                     lambda: CampaignStore.open(db, readonly=True)):
            _refused(call, str(db), "database is locked", kinds=StoreError)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert db.read_bytes() == before


def test_locked_while_writing_results(partial_db, tmp_path, monkeypatch):
    """A write that cannot get the lock (another process holds it): StoreError, the recorded results kept."""
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT", 0.2)
    db = _copy(partial_db, tmp_path)
    from fault_injection.faults import InjectionResult

    with CampaignStore.open(db) as st:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            _refused(lambda: st.add_results([(25, InjectionResult("masked"))]), str(db), "cannot record results",
                     "database is locked", kinds=StoreError)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert st.n_results() == 20


def test_disk_full_during_a_run(partial_db, tmp_path):
    """Writes fail at the file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: the write returns EFBIG, as on a full
    disk): the run stops with one StoreError naming the file, which keeps what it had."""
    db = _copy(partial_db, tmp_path)
    before = db.read_bytes()
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "from fault_injection.campaign import resume_campaign\n"
            "from hwgen.errors import HwgenError\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))\n"
            "try:\n"
            "    resume_campaign(sys.argv[1], progress=False, batch_size=1)\n"
            "except HwgenError as e:\n"
            "    print(type(e).__name__, e)\n"
            "    sys.exit(3)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stdout.startswith(f"StoreError {db}: cannot record results (") and r.stdout.count("\n") == 1
    assert "Traceback" not in r.stderr
    assert db.read_bytes() == before and _siblings(db) == [db.name]
    assert resume_campaign(db, progress=False).complete  # with room again, the run continues


# ------------------------------------------------------------------ 3. workload sizes before allocation
SIZE_CASES = [
    ("gemm:100000x16x100000", LimitError, "elements of the output (MxN): 10,000,000,000",
     "HWGEN_LIMIT_TENSOR_ELEMENTS"),
    (f"gemm:{(1 << 24) + 1}x1x1", LimitError, "field M", "HWGEN_LIMIT_DIMENSION"),
    (f"gemm:1x{(1 << 24) + 1}x1", LimitError, "field K", "HWGEN_LIMIT_DIMENSION"),
    (f"gemm:1x1x{(1 << 24) + 1}", LimitError, "field N", "HWGEN_LIMIT_DIMENSION"),
    ("gemm:8x" + BIG + "x8", LimitError, "field K: a number of 4,301 digits", "HWGEN_LIMIT_DIMENSION"),
    ("gemm:4096x4096x4096", LimitError, "multiply-accumulates", "HWGEN_LIMIT_SIMULATED_MACS"),
    ("gemm:16384x16x16384", LimitError, "instructions of its program: 167,780,354", "HWGEN_LIMIT_INSTRUCTIONS"),
    ("conv:100000x100000x3:3:8", LimitError, "elements of the input X", "HWGEN_LIMIT_TENSOR_ELEMENTS"),
    (f"conv:{(1 << 24) + 1}x8x4:3:8", LimitError, "field H", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x{(1 << 24) + 1}x4:3:8", LimitError, "field W", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x{(1 << 24) + 1}:3:8", LimitError, "field Cin", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x4:{(1 << 24) + 1}:8", LimitError, "field KH", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x4:3x{(1 << 24) + 1}:8", LimitError, "field KW", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x4:3:{(1 << 24) + 1}", LimitError, "field Cout", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x4:3:8:{(1 << 24) + 1}", LimitError, "field stride", "HWGEN_LIMIT_DIMENSION"),
    (f"conv:8x8x4:3:8:1:{(1 << 24) + 1}", LimitError, "field pad", "HWGEN_LIMIT_DIMENSION"),
    ("conv:8x8x4:3:8:1:20000", LimitError, "elements of the padded input", "HWGEN_LIMIT_TENSOR_ELEMENTS"),
    ("conv:8x8x4:3:" + BIG, LimitError, "field Cout: a number of 4,301 digits", "HWGEN_LIMIT_DIMENSION"),
    ("gemm:0x4x4", WorkloadError, "M must be at least 1", ""),
    ("conv:8x8x4:0:8", WorkloadError, "KH, KW must be at least 1", ""),
    ("gemm:-1x4x4", WorkloadError, "is not MxKxN", ""),
    ("gemm:1.5x4x4", WorkloadError, "is not MxKxN", ""),
    ("gemm:1e3x4x4", WorkloadError, "is not MxKxN", ""),
    ("gemm:\uff14x4x4", WorkloadError, "is not MxKxN", ""),  # a fullwidth digit is not an ASCII field
    ("gemm:" + "x" * 10_000, WorkloadError, "10,005 characters; at most", ""),
]


@pytest.mark.parametrize("spec,kind,says,limit", SIZE_CASES, ids=[f"case{i}" for i in range(len(SIZE_CASES))])
def test_workload_sizes_before_allocation(spec, kind, says, limit):
    for call in (lambda: build_workload(spec, CFG, 1), lambda: check_workload(spec, CFG)):
        (text, peak) = peak_allocation(lambda: _refused(call, says, limit, kinds=kind))
        assert isinstance(text, str), text
        assert peak < LITTLE, f"{peak:,} bytes allocated before the refusal"
        assert len(text) < 400  # a 4,301-digit field is not pasted whole into the message


def test_workload_limits_follow_the_environment(monkeypatch):
    assert build_workload("gemm:4x6x3", CFG, 1).outputs["out"].shape == (4, 3)
    monkeypatch.setenv("HWGEN_LIMIT_SIMULATED_MACS", "50")
    _refused(lambda: build_workload("gemm:4x6x3", CFG, 1), "multiply-accumulates", "72", "the limit is 50",
             "HWGEN_LIMIT_SIMULATED_MACS", kinds=LimitError)
    _refused(lambda: build_workload("zoo:mlp:fc3", CFG, 1), "workload 'zoo:mlp:fc3'", "multiply-accumulates",
             "HWGEN_LIMIT_SIMULATED_MACS", kinds=LimitError)
    monkeypatch.setenv("HWGEN_LIMIT_SIMULATED_MACS", "1e12")
    monkeypatch.setenv("HWGEN_LIMIT_TENSOR_ELEMENTS", "100")
    _refused(lambda: build_workload("zoo:mlp:fc3", CFG, 1), "HWGEN_LIMIT_TENSOR_ELEMENTS", kinds=HwgenError)
    monkeypatch.setenv("HWGEN_LIMIT_TENSOR_ELEMENTS", "1e9")
    monkeypatch.setenv("HWGEN_LIMIT_INSTRUCTIONS", "1e9")  # the host bytes of 168M instructions come next
    _refused(lambda: build_workload("gemm:16384x16x16384", CFG, 1), "host bytes", "HWGEN_LIMIT_RUN_BYTES",
             kinds=LimitError)


def test_workload_strings_that_are_not_paths(tmp_path):
    for spec in ("onnx:" + "a" * 5000 + ".onnx", "onnx:/dev/null", f"onnx:{tmp_path}"):
        _refused(lambda: build_workload(spec, CFG, 1), "no ONNX file", kinds=WorkloadError)
    for spec in ("onnx:a\x00b.onnx", "zoo:m\nlp:fc3", "gemm:4x\r6x3"):
        _refused(lambda: build_workload(spec, CFG, 1), "contains control characters", kinds=WorkloadError)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08" * 1000)
    _refused(lambda: build_workload(f"onnx:{junk}", CFG, 1), "cannot import", kinds=WorkloadError)
    for bad in (None, 12, b"gemm:4x4x4", ["gemm:4x4x4"]):
        _refused(lambda: parse_workload(bad), "expected 'gemm:MxKxN'", kinds=WorkloadError)
    for seed in (-1, 1 << 64, 1.5, "1"):
        _refused(lambda: build_workload(WL, CFG, seed), "seed", kinds=WorkloadError)


# ------------------------------------------------------------------ 4. campaign sizes
def test_tiny_margin_is_refused_before_planning(tmp_path):
    text = _refused(lambda: run_campaign(tmp_path / "m.db", AcceleratorConfig(controller="in-order"), "gemm:16x16x16", margin=1e-9,
                                         confidence=0.99, progress=False),
                    "margin 1e-09 at confidence 0.99", "Leveugle sample size", "HWGEN_LIMIT_INJECTIONS",
                    kinds=LimitError)
    count = int(text.split("Leveugle sample size: ")[1].split(";")[0].replace(",", ""))
    assert count > 10_000_000
    assert not (tmp_path / "m.db").exists()
    sites = model_sites(CFG)
    for call in (lambda: sample_size(sites, 10**9, 1e-9, 0.99), lambda: per_structure_n(sites, 10**9, margin=1e-9,
                                                                                        confidence=0.99),
                 lambda: per_structure_n(sites, 10**9, margin=1e-9, confidence=0.99, each=True),
                 lambda: plan_faults(sites, 10**9, margin=1e-9, confidence=0.99)):
        _refused(call, "Leveugle sample size", "HWGEN_LIMIT_INJECTIONS", kinds=LimitError)


def test_explicit_injections_against_the_limit(tmp_path):
    _refused(lambda: run_campaign(tmp_path / "n.db", CFG, WL, 10**9, progress=False), "number of injections",
             "1,000,000,000", "HWGEN_LIMIT_INJECTIONS", kinds=LimitError)
    _refused(lambda: plan_faults(model_sites(CFG), 100, 10**9), "HWGEN_LIMIT_INJECTIONS", kinds=LimitError)
    assert not (tmp_path / "n.db").exists()
    for n in (0, -5, 2.5, "10", True):
        _refused(lambda: run_campaign(tmp_path / "n.db", CFG, WL, n, progress=False), "injections",
                 kinds=CampaignError)


@pytest.mark.parametrize("value", [0, 1, 1.0, 0.0, 1.5, -0.1, math.nan, math.inf, "0.99", True, None])
def test_confidence_and_margin_strictly_inside_zero_one(tmp_path, value):
    sites = model_sites(CFG)
    if value is not None:
        _refused(lambda: run_campaign(tmp_path / "c.db", CFG, WL, margin=0.01, confidence=value, progress=False),
                 "confidence must be a number strictly between 0 and 1", kinds=CampaignError)
        _refused(lambda: run_campaign(tmp_path / "c.db", CFG, WL, 10, confidence=value, progress=False),
                 "confidence", kinds=CampaignError)
    _refused(lambda: run_campaign(tmp_path / "c.db", CFG, WL, margin=value, confidence=0.99, progress=False),
             "margin", kinds=CampaignError)
    for call in (lambda: sample_size(sites, 100, 0.01, value), lambda: plan_faults(sites, 100, margin=0.01,
                                                                                  confidence=value),
                 lambda: per_structure_n(sites, 100, margin=value, confidence=0.99),
                 lambda: per_structure_n(sites, 100, margin=0.01, confidence=value, each=True)):
        _refused(call, "0 and 1" if value is not None else "", kinds=CampaignError)
    assert not (tmp_path / "c.db").exists()


def test_other_run_arguments(tmp_path):
    for kw, says in ((dict(jobs=0), "jobs"), (dict(jobs=10**6), "jobs"), (dict(seed=-1), "seed"),
                     (dict(seed=1 << 64), "seed"), (dict(batch_size=0), "batch size"), (dict(models="zap"), "fault model"),
                     (dict(models=5), "fault models"), (dict(structures=["bogus"]), "unknown structure(s) bogus"),
                     (dict(structures=[["x"]]), "unknown structure(s)")):
        _refused(lambda: run_campaign(tmp_path / "a.db", CFG, WL, 10, progress=False, **kw), says,
                 kinds=CampaignError)
    _refused(lambda: run_campaign(tmp_path / ("x" * 5000), CFG, WL, 10, progress=False), "not a usable path",
             kinds=StoreError)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 5. Dask scheduler addresses
@pytest.fixture
def quick_scheduler_timeout(monkeypatch):
    monkeypatch.setattr(campaign, "SCHEDULER_TIMEOUT", 1.0)


@pytest.mark.parametrize("address", ["not an address", "", "tcp://", "tcp://127.0.0.1", "tcp://127.0.0.1:0",
                                     "tcp://127.0.0.1:99999", "foo://x:1", "127.0.0.1:8786", "tcp://a b:1",
                                     "tcp://x:1/../y", 8786, b"tcp://127.0.0.1:8786"])
def test_scheduler_address_form(partial_db, tmp_path, address):
    _refused(lambda: run_campaign(tmp_path / "s.db", CFG, WL, 10, scheduler=address, progress=False),
             "is not of the form tcp://host:port", kinds=CampaignError)
    db = _copy(partial_db, tmp_path, "r.db")
    before = db.read_bytes()
    _refused(lambda: resume_campaign(db, scheduler=address, progress=False), "tcp://host:port", kinds=CampaignError)
    assert db.read_bytes() == before and not (tmp_path / "s.db").exists()


def _silent_listener() -> tuple[socket.socket, int]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    return srv, srv.getsockname()[1]


def _garbage_server() -> tuple[socket.socket, int]:
    """A peer that answers every connection with bytes that are not Dask's protocol, then hangs up."""
    srv, port = _silent_listener()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
            finally:
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, port


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("peer", ["refused", "silent", "not dask"])
def test_unreachable_scheduler_within_a_bounded_time(partial_db, tmp_path, quick_scheduler_timeout, peer):
    srv = None
    if peer == "refused":
        port = _closed_port()
    elif peer == "silent":
        srv, port = _silent_listener()
    else:
        srv, port = _garbage_server()
    address = f"tcp://127.0.0.1:{port}"
    db = _copy(partial_db, tmp_path, "r.db")
    before = db.read_bytes()
    try:
        for call in (lambda: run_campaign(tmp_path / "n.db", CFG, WL, 10, scheduler=address, progress=False),
                     lambda: resume_campaign(db, scheduler=address, progress=False)):
            with no_hang(60):  # the probe gives up after SCHEDULER_TIMEOUT; distributed.Client alone would not
                _refused(call, f"cannot reach the Dask scheduler at {address} within 1 s (", "tcp://host:port",
                         kinds=CampaignError)
    finally:
        if srv is not None:
            srv.close()
    assert not (tmp_path / "n.db").exists()
    assert db.read_bytes() == before and _siblings(db) == ["r.db"]
