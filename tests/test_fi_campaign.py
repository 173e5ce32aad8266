"""Fault-injection campaigns: workload specs, the SQLite store, planning, local / Dask execution, resume after
SIGKILL, foreign files, the report's statistics and the ``hwgen fi`` commands. All with a deterministic fake
injector (tests/fi_fake.py), so no simulator runs here."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fault_injection.campaign import CampaignError, plan_campaign, register_injector, resume_campaign, run_campaign
from fault_injection.faults import Fault, InjectionResult, Site
from fault_injection.report import ReportError, build_report, campaign_report, to_json, to_markdown, write_outputs
from fault_injection.stats import clopper_pearson, upper_bound
from fault_injection.store import SCHEMA_VERSION, CampaignInfo, CampaignStore, StoreError
from fault_injection.workload import WorkloadError, build_workload
from hwgen.config import AcceleratorConfig

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FAKE = "fake"  # tests/fi_fake.py's injectors, registered in-process (a backend name never names a module)
CFG = AcceleratorConfig(controller="in-order", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)
WL = "gemm:8x16x8"


@pytest.fixture(autouse=True)
def _fake_registered(monkeypatch):
    # worker processes (forkserver) unpickle the registered factory, so they import fi_fake from tests/
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if str(TESTS) not in sys.path:
        monkeypatch.syspath_prepend(str(TESTS))
    import fi_fake

    register_injector(FAKE, fi_fake.make)
    register_injector("fake_partial", fi_fake.make_partial)


def _outcomes(db) -> dict[int, str]:
    with CampaignStore.open(db, readonly=True) as st:
        return {i: r.outcome for i, r in st.results().items()}


def _plan(db) -> list[Fault]:
    with CampaignStore.open(db, readonly=True) as st:
        return st.faults()


# ------------------------------------------------------------------ workloads
def test_workload_specs():
    a = build_workload("gemm:8x16x8", CFG, 3)
    b = build_workload("gemm:8x16x8", CFG, 3)
    c = build_workload("gemm:8x16x8", CFG, 4)
    assert np.array_equal(a.image(), b.image()) and not np.array_equal(a.image(), c.image())
    conv = build_workload("conv:6x6x3:3x3:5:2:1", CFG, 1)
    assert conv.outputs["out"].shape == (3, 3, 5)
    assert build_workload("conv:5x5x2:3:4", CFG, 1).outputs["out"].shape == (3, 3, 4)
    for bad in ("gemm:8x8", "gemm", "fft:8", "gemm:0x4x4", "conv:6x6:3x3:5", "conv:6x6x3:3x3:5:1:1:1", "gemm:ax2x3"):
        with pytest.raises(WorkloadError, match="workload") as e:
            build_workload(bad, CFG, 1)
        assert bad.split(":")[0] in str(e.value)
    with pytest.raises(WorkloadError, match="does not fit|max_reduction"):
        build_workload("gemm:2x5000x2", CFG, 1)
    with pytest.raises(WorkloadError, match="empty output"):
        build_workload("conv:2x2x1:3x3:1", CFG, 1)


# ------------------------------------------------------------------ store
def _info(planned: int) -> CampaignInfo:
    return CampaignInfo(CFG.to_dict(), WL, 7, FAKE, ("seu", "mbu"), planned, 0.99, 400, None)


def test_store_round_trip(tmp_path):
    sites = [Site("a_spad", 16, 64, "mem"), Site("pc", 12)]
    faults = [Fault("a_spad", "mbu", 10, 3, word=5, nbits=2), Fault("pc", "seu", 2, 1), Fault("pc", "stuck1", 9, 0,
                                                                                           duration=4)]
    db = tmp_path / "c.sqlite"
    with CampaignStore.create(db, _info(3), sites, faults) as st:
        assert st.info.models == ("seu", "mbu") and st.info.planned == 3 and st.info.schema_version == SCHEMA_VERSION
        assert st.pending() == list(enumerate(faults))
        st.add_results([(1, InjectionResult("sdc", 400, False, "out differs"))])
        with pytest.raises(StoreError, match="already recorded"):
            st.add_results([(2, InjectionResult("masked")), (1, InjectionResult("masked"))])
        assert st.n_results() == 1  # the failed batch left nothing
    with pytest.raises(StoreError, match="already exists"):
        CampaignStore.create(db, _info(3), sites, faults)
    with CampaignStore.open(db, readonly=True) as st:
        assert st.info == CampaignStore.open(db).info
        assert st.info.config == CFG.to_dict() and st.info.workload == WL and st.info.seed == 7
        assert st.sites() == sites and st.faults() == faults
        assert st.pending() == [(0, faults[0]), (2, faults[2])]
        assert st.results() == {1: InjectionResult("sdc", 400, False, "out differs")}
        assert st.counts() == {"controller": {"n": 1, "masked": 0, "sdc": 1, "due": 0}}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def _foreign_files(tmp_path) -> dict[str, Path]:
    files = {}
    (p := tmp_path / "text.sqlite").write_text("hello, not a database\n" * 20)
    files["text"] = p
    (p := tmp_path / "empty.sqlite").write_bytes(b"")
    files["empty"] = p
    (p := tmp_path / "noise.sqlite").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)))
    files["noise"] = p
    p = tmp_path / "foreign.sqlite"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE results (x)")
    con.commit()
    con.close()
    files["foreign sqlite"] = p
    p = tmp_path / "old.sqlite"
    with CampaignStore.create(p, _info(1), [Site("pc", 12)], [Fault("pc", "seu", 0, 0)]):
        pass
    con = sqlite3.connect(p)
    con.execute("PRAGMA user_version = 99")
    con.close()
    files["other schema version"] = p
    return files


def test_foreign_files_refused_untouched(tmp_path):
    for what, p in _foreign_files(tmp_path).items():
        before = p.read_bytes()
        for call in (lambda: CampaignStore.open(p), lambda: CampaignStore.open(p, readonly=True),
                     lambda: resume_campaign(p, progress=False), lambda: campaign_report(p),
                     lambda: run_campaign(p, CFG, WL, 20, backend=FAKE, progress=False)):
            with pytest.raises(StoreError) as e:
                call()
            assert str(p) in str(e.value), what
        assert p.read_bytes() == before, what
        assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(p.name)) == [p.name], what
    assert "schema version 99" in str(pytest.raises(StoreError, CampaignStore.open, tmp_path / "old.sqlite").value)


# ------------------------------------------------------------------ planning
def test_same_seed_same_plan(tmp_path):
    _, _, f1, _ = plan_campaign(CFG, WL, 5, FAKE, 300, models=("seu", "mbu"))
    _, _, f2, _ = plan_campaign(CFG, WL, 5, FAKE, 300, models=("seu", "mbu"))
    _, _, f3, _ = plan_campaign(CFG, WL, 6, FAKE, 300, models=("seu", "mbu"))
    assert f1 == f2 and f1 != f3 and len(f1) == 300
    run_campaign(tmp_path / "a.db", CFG, WL, 120, seed=5, backend=FAKE, progress=False)
    run_campaign(tmp_path / "b.db", CFG, WL, 120, seed=5, backend=FAKE, progress=False, batch_size=7)
    assert _plan(tmp_path / "a.db") == _plan(tmp_path / "b.db")
    assert _outcomes(tmp_path / "a.db") == _outcomes(tmp_path / "b.db")
    info, _, f4, _ = plan_campaign(CFG, WL, 5, FAKE, margin=0.05, confidence=0.95)
    assert len(f4) == info.planned > 300 and info.margin == 0.05 and info.confidence == 0.95


def test_rerun_same_db(tmp_path):
    db = tmp_path / "c.db"
    s = run_campaign(db, CFG, WL, 60, seed=2, backend=FAKE, progress=False)
    assert s.complete and s.injected_now == 60
    s = run_campaign(db, CFG, WL, 60, seed=2, backend=FAKE, progress=False)  # the same campaign: nothing left to do
    assert s.complete and s.injected_now == 0
    before = db.read_bytes()
    with pytest.raises(CampaignError, match="different campaign.*seed"):
        run_campaign(db, CFG, WL, 60, seed=3, backend=FAKE, progress=False)
    assert db.read_bytes() == before
    with pytest.raises(CampaignError, match="unknown backend 'nope'"):
        run_campaign(tmp_path / "d.db", CFG, WL, 60, backend="nope", progress=False)
    with pytest.raises(CampaignError, match="fault model"):
        run_campaign(tmp_path / "d.db", CFG, WL, 60, backend=FAKE, models=("seu", "zap"), progress=False)
    assert not (tmp_path / "d.db").exists()


# ------------------------------------------------------------------ execution
def test_resume_after_sigkill(tmp_path):
    db = tmp_path / "k.db"
    n = 600
    code = ("import sys, fi_fake; from hwgen.config import AcceleratorConfig;"
            "from fault_injection.campaign import register_injector, run_campaign;"
            f"register_injector({FAKE!r}, fi_fake.make); run_campaign(sys.argv[1], AcceleratorConfig(**{CFG.to_dict()!r}), {WL!r}, {n}, seed=11, "
            f"backend={FAKE!r}, jobs=2, progress=False, batch_size=5)")
    env = dict(os.environ, FI_FAKE_DELAY="0.012")  # slow enough that the poll below (a checked open) sees it early
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if db.exists():
                with CampaignStore.open(db, readonly=True) as st:
                    done = st.n_results()
                if done >= 60:
                    break
        assert proc.poll() is None, proc.communicate()
        assert _group(proc.pid) - {proc.pid}  # its fork server and workers
        os.kill(proc.pid, signal.SIGKILL)  # the campaign process, at an arbitrary moment
        proc.wait(10)
        deadline = time.monotonic() + 10
        while _group(proc.pid) and time.monotonic() < deadline:  # the workers notice and exit
            time.sleep(0.1)
        assert not _group(proc.pid)
    finally:
        try:  # its worker processes exit by themselves (parent watch); make sure of it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with CampaignStore.open(db, readonly=True) as st:
        killed_at = st.n_results()
        assert 60 <= killed_at < n and len(st.pending()) == n - killed_at
    s = resume_campaign(db, jobs=2, progress=False)
    assert s.complete and s.injected_now == n - killed_at
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    (count, distinct), = con.execute("SELECT COUNT(*), COUNT(DISTINCT fault_index) FROM results").fetchall()
    (planned,), = con.execute("SELECT COUNT(*) FROM faults").fetchall()
    (orphans,), = con.execute("SELECT COUNT(*) FROM faults f LEFT JOIN results r USING (fault_index) "
                              "WHERE r.fault_index IS NULL").fetchall()
    con.close()
    assert count == distinct == planned == n and orphans == 0
    ref = tmp_path / "ref.db"
    run_campaign(ref, CFG, WL, n, seed=11, backend=FAKE, jobs=1, progress=False)
    assert _plan(ref) == _plan(db)
    assert _outcomes(ref) == _outcomes(db)
    with CampaignStore.open(ref, readonly=True) as a, CampaignStore.open(db, readonly=True) as b:
        assert a.counts() == b.counts()


def _group(pgid: int) -> set[int]:
    """Live (not zombie) processes of process group ``pgid``."""
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != b"Z":
                out.add(int(d.name))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler(tmp_path, monkeypatch):
    import fault_injection.campaign as camp

    monkeypatch.setattr(camp, "SCHEDULER_TIMEOUT", 1.0)
    addr = f"tcp://127.0.0.1:{_free_port()}"
    t = time.monotonic()
    with pytest.raises(CampaignError, match="cannot reach the Dask scheduler"):
        run_campaign(tmp_path / "n.db", CFG, WL, 50, backend=FAKE, scheduler=addr, progress=False)
    assert time.monotonic() - t < 5 and not (tmp_path / "n.db").exists()
    db = tmp_path / "r.db"
    run_campaign(db, CFG, WL, 50, backend=FAKE, progress=False, batch_size=10)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM results WHERE fault_index >= 20")
    con.commit()
    con.close()
    before = db.read_bytes()
    with pytest.raises(CampaignError, match="cannot reach"):
        resume_campaign(db, scheduler=addr, progress=False)
    assert db.read_bytes() == before


def test_dask_local_cluster_equals_local(tmp_path):
    from distributed import LocalCluster

    local = tmp_path / "local.db"
    run_campaign(local, CFG, WL, 200, seed=9, backend=FAKE, jobs=2, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        s = run_campaign(tmp_path / "dask.db", CFG, WL, 200, seed=9, backend=FAKE, scheduler=cluster.scheduler_address,
                         progress=False, batch_size=9)
    assert s.complete
    assert _plan(local) == _plan(tmp_path / "dask.db")
    assert _outcomes(local) == _outcomes(tmp_path / "dask.db")


# ------------------------------------------------------------------ report
def test_report_statistics():
    campaign = {"confidence": 0.99, "planned": 3000, "workload": WL, "config": CFG.to_dict(), "backend": FAKE,
                "models": ["seu"], "seed": 1, "golden_cycles": 100, "margin": None}
    bits = {"acc_buf": 8000, "controller": 2000}
    counts = {"acc_buf": {"masked": 2384, "sdc": 16, "due": 0}, "controller": {"masked": 580, "sdc": 4, "due": 16}}
    rep = build_report(campaign, bits, counts, fit_per_bit=1e-3)
    acc, ctl = rep.structures
    assert (acc.structure, acc.n, acc.sdc, acc.due) == ("acc_buf", 2400, 16, 0)
    assert acc.avf == pytest.approx(16 / 2400)
    assert (acc.avf_lo, acc.avf_hi) == pytest.approx(clopper_pearson(16, 2400, 0.99))
    assert ctl.avf == pytest.approx(20 / 600) and ctl.sdc_avf == pytest.approx(4 / 600)
    assert (ctl.sdc_lo, ctl.sdc_hi) == pytest.approx(clopper_pearson(4, 600, 0.99))
    assert acc.fit == pytest.approx(1e-3 * 8000 * 16 / 2400) and ctl.fit == pytest.approx(1e-3 * 2000 * 20 / 600)
    assert rep.total_fit == pytest.approx(acc.fit + ctl.fit) and rep.raw_fit == pytest.approx(10.0)
    # SPFM: dangerous = sdc + due (no watchdog) = 36 of 3000, allocation proportional to bits -> pooled bound
    assert rep.spfm["spfm"] == pytest.approx(1 - (8000 * 16 / 2400 + 2000 * 20 / 600) / 10000)
    assert rep.spfm["spfm_lower"] == pytest.approx(1 - upper_bound(36, 3000, 0.99))
    # 1.2% dangerous: the 99% upper bound is under 2%, so SPFM >= 98%: ASIL C (97%), not D (99%)
    assert 0.97 <= rep.spfm["spfm_lower"] < 0.99 and rep.asil == "C"
    assert "supports ASIL C at 99% confidence" in rep.verdict


def test_report_asil_and_watchdog(tmp_path):
    campaign = {"confidence": 0.99, "planned": 1000, "workload": WL, "config": CFG.to_dict(), "backend": FAKE,
                "models": ["seu"], "seed": 1, "golden_cycles": 100, "margin": None}
    bits = {"acc_buf": 1000}
    clean = build_report(campaign, bits, {"acc_buf": {"masked": 1000, "sdc": 0, "due": 0}})
    assert clean.spfm["spfm_lower"] == pytest.approx(1 - (1 - 0.01 ** (1 / 1000)))  # k = 0: 1 - alpha^(1/n)
    assert clean.asil == "D" and "supports ASIL D at 99% confidence" in clean.verdict
    hangs = {"acc_buf": {"masked": 850, "sdc": 0, "due": 150}}
    assert build_report(campaign, bits, hangs).asil == "none"
    assert "supports no ASIL" in build_report(campaign, bits, hangs).verdict
    wd = build_report(campaign, bits, hangs, watchdog=True)
    assert wd.asil == "D" and wd.structures[0].avf == pytest.approx(0.15)  # AVF still counts the DUE
    some = build_report(campaign, bits, {"acc_buf": {"masked": 960, "sdc": 40, "due": 0}})
    assert some.asil == "B" and 0.9 <= some.spfm["spfm_lower"] < 0.97
    with pytest.raises(ReportError, match="no results"):
        build_report(campaign, bits, {})
    with pytest.raises(ReportError, match="FIT per bit"):
        build_report(campaign, bits, {"acc_buf": {"masked": 1}}, fit_per_bit=0)
    write_outputs(some, md=tmp_path / "o/r.md", json_path=tmp_path / "o/r.json", png=tmp_path / "o/r.png")
    assert json.loads((tmp_path / "o/r.json").read_text())["asil"] == "B"
    assert "ASIL B" in (tmp_path / "o/r.md").read_text()
    assert (tmp_path / "o/r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in (tmp_path / "o").iterdir()) == ["r.json", "r.md", "r.png"]


def test_report_from_db(tmp_path):
    db = tmp_path / "c.db"
    run_campaign(db, CFG, WL, 300, seed=4, backend=FAKE, progress=False, confidence=0.95)
    rep = campaign_report(db)
    with CampaignStore.open(db, readonly=True) as st:
        counts = st.counts()
    assert rep.done == 300 and rep.confidence == 0.95
    assert {r.structure: (r.masked, r.sdc, r.due) for r in rep.structures if r.n} == \
        {k: (v["masked"], v["sdc"], v["due"]) for k, v in counts.items()}
    assert "at 95% confidence" in to_markdown(rep) and json.loads(to_json(rep))["done"] == 300


def test_partial_coverage(tmp_path):
    db = tmp_path / "p.db"
    run_campaign(db, CFG, WL, 100, seed=4, backend="fake_partial", progress=False)
    with CampaignStore.open(db, readonly=True) as st:
        assert {s.structure for s in st.sites()}.isdisjoint({"controller", "instruction_reg"})
        assert {f.structure for f in st.faults()}.isdisjoint({"controller", "instruction_reg"})
    rep = campaign_report(db)
    assert "controller" in rep.campaign["structures_not_covered"] and "does not inject into" in rep.limits[0]


# ------------------------------------------------------------------ command line
def test_cli(tmp_path, capsys):
    from fault_injection.cli import main

    cfg = tmp_path / "cfg.json"
    CFG.save(cfg)
    db = tmp_path / "c.sqlite"
    assert main(["fi", "sites", "--config", str(cfg)]) == 0
    assert "pe_accumulators" in capsys.readouterr().out
    assert main(["fi", "run", "--config", str(cfg), "--workload", WL, "--injections", "80", "--seed", "3",
                 "--db", str(db), "--backend", FAKE, "--jobs", "1", "--models", "seu,mbu", "--batch", "7",
                 "--no-progress"]) == 0
    assert "80 of 80" in capsys.readouterr().out
    assert main(["fi", "resume", "--db", str(db), "--no-progress"]) == 0
    assert main(["fi", "report", "--db", str(db), "--md", str(tmp_path / "r.md"), "--png", str(tmp_path / "r.png"),
                 "--fit-per-bit", "2e-4", "--watchdog"]) == 0
    out = capsys.readouterr().out
    assert "SPFM" in out and "watchdog is declared" in out and (tmp_path / "r.png").exists()
    assert main(["fi", "report", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fit_per_bit"] == 1e-4
    for argv, msg in (
            (["fi", "run", "--config", str(cfg), "--workload", "gemm:8x8", "--injections", "5", "--db",
              str(tmp_path / "x.db")], "workload 'gemm:8x8'"),
            (["fi", "run", "--config", str(cfg), "--workload", WL, "--db", str(tmp_path / "x.db")], "--injections"),
            (["fi", "run", "--config", str(cfg), "--workload", WL, "--injections", "5", "--margin", "0.01", "--db",
              str(tmp_path / "x.db")], "--injections"),
            (["fi", "run", "--config", str(cfg), "--workload", WL, "--injections", "5", "--models", "seu,zap",
              "--db", str(tmp_path / "x.db")], "zap"),
            (["fi", "resume", "--db", str(cfg)], "not an SQLite file"),
            (["fi", "report", "--db", str(tmp_path / "missing.db")], "no such campaign")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.db").exists()
    for argv, msg in ((["fi", "report", "--db", str(db), "--fit-per-bit", "-1"], "--fit-per-bit: must be positive"),
                      (["fi", "run", "--config", str(cfg), "--workload", WL, "--margin", "0.01", "--confidence", "1.5",
                        "--db", str(tmp_path / "x.db")], "--confidence: must be strictly between 0 and 1")):
        with pytest.raises(SystemExit) as e:  # option domains are argparse usage errors, exit 2
            main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err, argv
    assert not (tmp_path / "x.db").exists()


def test_decoupled_model_campaign_covers_the_stored_state(tmp_path, capsys):
    """On the decoupled controller the model backend plans over the memories, the quantization state and
    the counters only; asking it for the array's structures is refused, naming what it covers."""
    from hwgen.cli import main
    from fault_injection.store import CampaignStore

    db = tmp_path / "d.sqlite"
    args = ["fi", "run", "--rows", "2", "--cols", "2", "--a-spad-depth", "32", "--w-spad-depth", "32",
            "--acc-depth", "16", "--controller", "decoupled", "--workload", "gemm:4x6x3", "--seed", "2",
            "--db", str(db), "--backend", "model", "--no-progress"]
    assert main(args + ["--injections", "40", "--structures", "pe_accumulators"]) == 2
    err = capsys.readouterr().err
    assert "decoupled controller; it covers: a_spad, acc_buf, perf_counters, qtable, quant_config, w_spad" in err
    assert not db.exists()
    assert main(args + ["--injections", "300"]) == 0
    with CampaignStore.open(db, readonly=True) as store:
        faults = list(store.faults())
        assert {f.structure for f in faults} <= {"a_spad", "w_spad", "acc_buf", "qtable", "quant_config",
                                                 "perf_counters"}
        assert len(faults) == 300


def test_structures_restrict_the_plan_and_unknown_names_are_errors(tmp_path, capsys):
    from hwgen.cli import main

    db = tmp_path / "s.sqlite"
    args = ["fi", "run", "--rows", "2", "--cols", "2", "--a-spad-depth", "32", "--w-spad-depth", "32",
            "--acc-depth", "16", "--workload", "gemm:4x6x3", "--injections", "40", "--seed", "2", "--db", str(db),
            "--backend", "model", "--no-progress", "--controller", "in-order"]  # pe_accumulators: modeled in order
    assert main(args + ["--structures", "pe_accumulators,bogus"]) == 2
    assert "unknown structure(s) bogus" in capsys.readouterr().err
    assert not db.exists()
    assert main(args + ["--structures", "pe_accumulators,acc_buf"]) == 0
    from fault_injection.store import CampaignStore

    with CampaignStore.open(db, readonly=True) as store:
        assert {f.structure for f in store.faults()} == {"pe_accumulators", "acc_buf"}
