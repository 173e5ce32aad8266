"""Design-space exploration (mappings.dse, mappings.sweep_store, ``hwgen dse``): axes and their bad inputs, the
Pareto front against a brute-force check, each point's metrics against map_graph and its area against the cost
model, resume after an interrupted and after a SIGKILLed run, foreign, older and other sweeps' databases refused
untouched, the command end to end.
Small and fast: zoo:mlp or a two-layer SCALE-Sim CSV on arrays of at most 8x8, the in-order controller."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.cost_model import CostModelError, estimate
from hwgen.errors import LimitError
from mappings.dse import (FRONT, METRICS, Direction, Objective, PointResult, PointStatus, Sweep, SweepError,
                          design_points, evaluate_point, pareto_front, parse_axis, point_config, run_sweep, sram_bytes)
from mappings.network_map import load_model, map_graph
from mappings.sweep_store import SweepStore, SweepStoreError

ROOT = Path(__file__).resolve().parent.parent
BASE = AcceleratorConfig(controller="in-order", a_spad_depth=64, w_spad_depth=64, acc_depth=64)
TOPOLOGY = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
            "conv1, 10, 10, 3, 3, 4, 8, 1,\nfc1, 1, 1, 1, 1, 64, 16, 1,\n")


def _sweep(**axes) -> Sweep:
    return Sweep.from_options("zoo:mlp", BASE, **(axes or {"rows": "4,8", "cols": "4:8:4"}))


# ------------------------------------------------------------------ axes
@pytest.mark.parametrize("name, text, values", [
    ("rows", "8,16", (8, 16)),
    ("cols", "8:32:8", (8, 16, 24, 32)),
    ("cols", "8:30:8", (8, 16, 24)),  # hi is included only when it falls on the step
    ("cols", "4:6", (4, 5, 6)),
    ("acc_depth", "64, 16:32:16,64", (64, 16, 32)),  # duplicates dropped, first kept
    ("a_spad_depth", "1_024", (1024,)),
    ("dataflow", "ws,both", ("ws", "both")),
    ("dataflow", "OS", ("os",)),
])
def test_parse_axis(name, text, values):
    assert parse_axis(name, text) == values


@pytest.mark.parametrize("name, text, says", [
    ("rows", "16:8:4", "--rows '16:8:4': range 16:8:4 is empty (lo 16 > hi 8)"),
    ("cols", "8:16:0", "--cols '8:16:0': range 8:16:0: the step must be at least 1, got 0"),
    ("cols", "8:16:-4", "--cols '8:16:-4': range 8:16:-4: the step must be at least 1, got -4"),
    ("rows", "8.5", "--rows '8.5': '8.5' is not an integer"),
    ("rows", "eight", "'eight' is not an integer"),
    ("w_spad_depth", "8:x:2", "--w-spad-depth '8:x:2': 'x' is not an integer"),
    ("rows", "", "--rows '': empty value"),
    ("rows", "8,,16", "empty value"),
    ("rows", "1:2:3:4", "is neither a value nor a range lo:hi:step"),
    ("rows", "0,8", "--rows '0,8': 0 is below 1"),
    ("host_port_width", "-8:64:8", "-8 is below 1"),
    ("dataflow", "ws,xs", "--dataflow 'ws,xs': 'xs' is not a dataflow; choose from os, ws, both"),
    ("dataflow", "ws:both", "is not a dataflow"),
    ("queue_depth", "4", "unknown axis 'queue_depth'; the axes are rows, cols"),
])
def test_parse_axis_refuses(name, text, says):
    with pytest.raises(SweepError) as e:
        parse_axis(name, text)
    assert says in str(e.value)


def test_points_limit(monkeypatch):
    monkeypatch.setenv("HWGEN_LIMIT_SWEEP_POINTS", "100")
    with pytest.raises(LimitError, match=r"--rows '1:1000000000000:1': values: 1,000,000,000,000; the limit is 100 "
                                         r"\(HWGEN_LIMIT_SWEEP_POINTS\)"):
        parse_axis("rows", "1:1000000000000:1")  # refused before the range is expanded
    with pytest.raises(LimitError, match="design points of the sweep.*121; the limit is 100"):
        Sweep.from_options("zoo:mlp", BASE, rows="1:11", cols="1:11")


def test_design_points_and_configs():
    sw = Sweep.from_options("zoo:mlp", BASE, dataflow="os,ws", cols="4,8", rows="2")
    assert [n for n, _ in sw.axes] == ["rows", "cols", "dataflow"]  # AXES order, whatever the call's order
    pts = design_points(sw)
    assert pts == [{"rows": 2, "cols": c, "dataflow": d} for c in (4, 8) for d in ("os", "ws")]
    cfg = point_config(BASE, pts[3])
    assert (cfg.rows, cfg.cols, cfg.dataflow, cfg.controller, cfg.acc_depth) == (2, 8, "ws", "in-order", 64)
    assert sram_bytes(cfg) == 64 * 2 * 1 + 64 * 8 * 1 + 64 * 8 * 4
    with pytest.raises(SweepError, match="nothing to sweep"):
        Sweep.from_options("zoo:mlp", BASE)
    with pytest.raises(SweepError, match="--rows: values"):
        Sweep("zoo:mlp", (("rows", (8, 8)),), BASE)


# ------------------------------------------------------------------ the front
def _brute_front(points, objectives):
    """The non-dominated ok points by the definition, O(n^2), signing each metric by its direction itself
    (not through Objective.value), so that the check does not share the code it checks."""
    vals = {p.index: [p.metrics[o.name] if o.direction is Direction.MIN else -p.metrics[o.name] for o in objectives]
            for p in points if p.ok}

    def dominated(i):
        return any(all(a <= b for a, b in zip(vals[j], vals[i])) and vals[j] != vals[i] for j in vals)

    return {i for i in vals if not dominated(i)}


#: the default front and one more objective to maximise (the direction's sign is exercised too)
_EXTRA = (*FRONT, next(m for m in METRICS if m.direction is Direction.MAX))


def test_default_front_is_latency_area_energy():
    assert [o.name for o in FRONT] == ["cycles", "luts", "energy_uj"]
    assert all(o.direction is Direction.MIN for o in FRONT)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 5), min_size=len(_EXTRA), max_size=len(_EXTRA)), st.booleans()),
                max_size=40),
       st.booleans())
def test_pareto_front_equals_brute_force(rows, extra):
    """Random points in every objective of the table's front (three: cycles, LUTs, energy), or in those and a
    maximised one; small ranges so that ties and duplicates are common."""
    objectives = _EXTRA if extra else FRONT
    assert len(objectives) >= 3
    points = [PointResult(i, {}, PointStatus.OK if ok else PointStatus.INVALID,
                          {o.name: (v if o.kind is int else v / 2) for o, v in zip(_EXTRA, vals)} if ok else {},
                          error="" if ok else "x")
              for i, (vals, ok) in enumerate(rows)]
    front = pareto_front(points, objectives)
    assert {p.index for p in front} == _brute_front(points, objectives)
    assert len(front) == len({p.index for p in front})
    keys = [[o.value(p) for o in objectives] for p in front]
    assert keys == sorted(keys)  # ordered by the objectives


# ------------------------------------------------------------------ evaluating
def test_points_equal_map_graph(tmp_path):
    graph = load_model("zoo:mlp")
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4,8", cols="8", dataflow="os,ws")
    run = run_sweep(sw, tmp_path / "s.sqlite")
    assert run.complete and run.evaluated_now == 4 and run.counts() == {"ok": 4, "invalid": 0, "unfit": 0}
    for p, params in zip(run.points, design_points(sw)):
        assert p.params == params
        m = map_graph(graph, point_config(BASE, params))
        assert p.metrics["cycles"] == m.cycles
        assert p.metrics["energy_uj"] == pytest.approx(m.energy.total_uj, rel=1e-12)
        assert p.metrics["pe_utilization"] == pytest.approx(m.busy_utilization)
        assert p.metrics["mac_utilization"] == pytest.approx(m.mac_utilization)
        assert p.metrics["roofline_ratio"] == pytest.approx(m.roofline.ratio(m.cycles))
        assert (p.metrics["pes"], p.metrics["sram_bytes"]) == (m.config.pes, sram_bytes(m.config))
    assert set(p.metrics) == {m.name for m in METRICS}


def test_area_equals_cost_model(tmp_path):
    """Each point's area metrics, through the database, equal hwgen.cost_model.estimate of the point's
    configuration built here (not by point_config): the whole-design ECP5 resources."""
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4,8", cols="4,8", dataflow="ws,both")
    run = run_sweep(sw, tmp_path / "s.sqlite")
    assert run.counts()["ok"] == sw.n_points
    for p in run.points:
        cfg = AcceleratorConfig(controller="in-order", a_spad_depth=64, w_spad_depth=64, acc_depth=64, **p.params)
        r = estimate(cfg)
        assert (p.metrics["luts"], p.metrics["ffs"], p.metrics["dsps"], p.metrics["brams"]) == \
            (r.luts, r.ffs, r.dsps, r.brams)
        assert all(isinstance(p.metrics[n], int) for n in ("luts", "ffs", "dsps", "brams"))
    luts = {(p.params["rows"], p.params["cols"], p.params["dataflow"]): p.metrics["luts"] for p in run.points}
    assert luts[(8, 8, "both")] > luts[(4, 4, "both")]  # more PEs, more area


def test_fmax_and_latency_from_the_estimate(tmp_path):
    """Each point's fmax_mhz is the cost model's Fmax of its configuration and latency_us its cycles at that
    clock (cycles / MHz = microseconds), through the database; a wider host port never raises the clock."""
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4", cols="4", host_port_width="32,128")
    run = run_sweep(sw, tmp_path / "s.sqlite")
    assert run.counts()["ok"] == sw.n_points
    for p in run.points:
        cfg = AcceleratorConfig(controller="in-order", a_spad_depth=64, w_spad_depth=64, acc_depth=64, **p.params)
        f = estimate(cfg).fmax_mhz
        assert p.metrics["fmax_mhz"] == pytest.approx(f) and 10 < f < 100
        assert p.metrics["latency_us"] == pytest.approx(p.metrics["cycles"] / f)
    by_port = {p.params["host_port_width"]: p.metrics["fmax_mhz"] for p in run.points}
    assert by_port[32] >= by_port[128]


def test_one_estimate_per_point(monkeypatch):
    """The four area metrics share one estimate (the context), not one call per metric."""
    import mappings.dse as dse

    calls = []

    def counted(cfg, *args, **kwargs):
        calls.append(cfg)
        return estimate(cfg, *args, **kwargs)

    monkeypatch.setattr(dse, "estimate", counted)
    r = evaluate_point(load_model("zoo:mlp"), BASE, {"rows": 4, "cols": 4})
    assert r.ok and len(calls) == 1 and r.metrics["luts"] == estimate(calls[0]).luts


def test_cost_model_refusal_is_unfit(tmp_path):
    """A 2-row array with 64-word scratchpads: the A scratchpad (64 x 16 bits) is distributed RAM, which the
    cost model refuses; the point is recorded unfit with the model's message (naming the memory and its
    limit), in the database too, and is not on the front."""
    cfg = AcceleratorConfig(controller="in-order", a_spad_depth=64, w_spad_depth=64, acc_depth=64, rows=2, cols=4)
    with pytest.raises(CostModelError) as e:
        estimate(cfg)
    r = evaluate_point(load_model("zoo:mlp"), BASE, {"rows": 2, "cols": 4}, 5)
    assert (r.index, r.status, r.metrics) == (5, PointStatus.UNFIT, {})
    assert r.error == f"CostModelError: {e.value}"
    assert "memory a_spad (64 words of 16 bits) is shallow enough for distributed RAM" in r.error
    run = run_sweep(Sweep.from_options("zoo:mlp", BASE, rows="2,4", cols="4"), tmp_path / "s.sqlite")
    bad, ok = run.points
    assert bad.status is PointStatus.UNFIT and bad.error == r.error and ok.ok
    assert run.counts() == {"ok": 1, "invalid": 0, "unfit": 1} and pareto_front(run.points) == [ok]


def test_invalid_point_is_recorded(tmp_path):
    # 64 words: shallower W scratchpads are distributed RAM, which the cost model refuses (unfit, not invalid)
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4,80", w_spad_depth="64", dataflow="ws")
    run = run_sweep(sw, tmp_path / "s.sqlite")
    ok, bad = run.points
    assert ok.ok and bad.status is PointStatus.INVALID and not bad.metrics
    assert "field 'w_spad_depth' = 64: must hold at least 80 words" in bad.error
    assert pareto_front(run.points) == [ok]


def test_unfit_point_is_recorded(monkeypatch):
    import mappings.dse as dse
    from sim.tiling import LoweringError

    def no_plan(graph, cfg):
        raise LoweringError(f"layer 'fc1' does not fit {cfg.rows}x{cfg.cols}")

    monkeypatch.setattr(dse, "map_graph", no_plan)
    r = evaluate_point(load_model("zoo:mlp"), BASE, {"rows": 4}, 3)
    assert (r.index, r.status, r.error) == (3, PointStatus.UNFIT, "LoweringError: layer 'fc1' does not fit 4x8")


def test_jobs_equal_in_process(tmp_path):
    sw = _sweep()
    one = run_sweep(sw, tmp_path / "one.sqlite")
    two = run_sweep(sw, tmp_path / "two.sqlite", jobs=2)
    assert [(p.index, p.metrics) for p in one.points] == [(p.index, p.metrics) for p in two.points]


# ------------------------------------------------------------------ resume
class _Stop(Exception):
    pass


def test_resume_after_an_interrupted_run(tmp_path):
    db, sw, k = tmp_path / "s.sqlite", _sweep(rows="2,4,8", cols="4,8"), 3
    first: list[int] = []

    def stop_after_k(r):
        first.append(r.index)
        if len(first) == k:
            raise _Stop

    with pytest.raises(_Stop):
        run_sweep(sw, db, on_point=stop_after_k)
    con = sqlite3.connect(db)
    assert sorted(i for (i,) in con.execute("SELECT point_index FROM points")) == sorted(first)
    con.close()
    again: list[int] = []
    run = run_sweep(sw, db, on_point=lambda r: again.append(r.index))
    assert run.complete and run.evaluated_now == sw.n_points - k
    assert not set(again) & set(first) and sorted(first + again) == list(range(sw.n_points))
    assert [p.index for p in run.points] == list(range(sw.n_points))
    assert run_sweep(sw, db).evaluated_now == 0


def test_resume_after_sigkill(tmp_path):
    db = tmp_path / "s.sqlite"
    code = ("import sys, time\n"
            "from hwgen.config import AcceleratorConfig\n"
            "from mappings.dse import Sweep, run_sweep\n"
            "base = AcceleratorConfig(controller='in-order', a_spad_depth=64, w_spad_depth=64, acc_depth=64)\n"
            "sw = Sweep.from_options('zoo:mlp', base, rows='2,4,8', cols='4,8')\n"
            "run_sweep(sw, sys.argv[1], on_point=lambda r: time.sleep(0.3))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", code, str(db)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if db.exists():
                con = sqlite3.connect(db)
                n = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                con.close()
                if n >= 2:
                    break
            assert proc.poll() is None, "the sweep finished before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    sw = _sweep(rows="2,4,8", cols="4,8")
    con = sqlite3.connect(db)
    recorded = [i for (i,) in con.execute("SELECT point_index FROM points")]
    con.close()
    assert 2 <= len(recorded) < sw.n_points
    again: list[int] = []
    run = run_sweep(sw, db, on_point=lambda r: again.append(r.index))
    assert run.complete and sorted(recorded + again) == list(range(sw.n_points))
    assert [p.index for p in run.points] == list(range(sw.n_points))


# ------------------------------------------------------------------ foreign files
def _siblings(p: Path) -> list[str]:
    return sorted(x.name for x in p.parent.iterdir())


def test_other_sweeps_database_refused_untouched(tmp_path):
    db = tmp_path / "s.sqlite"
    run_sweep(_sweep(), db)
    before = db.read_bytes()
    for other, says in ((_sweep(rows="4,8", cols="4:12:4"), r"differs in axes \(cols\)"),
                        (Sweep.from_options("zoo:mlp", AcceleratorConfig(controller="in-order"), rows="4,8",
                                            cols="4:8:4"), "differs in base"),
                        (Sweep("zoo:mobilenet_v1", _sweep().axes, BASE), "differs in network")):
        with pytest.raises(SweepError, match=f"{db}: holds a different sweep .*{says}"):
            run_sweep(other, db)
        assert db.read_bytes() == before and _siblings(db) == ["s.sqlite"]


def test_edited_network_file_is_another_sweep(tmp_path):
    topo = tmp_path / "net.csv"
    topo.write_text(TOPOLOGY)
    sw = Sweep.from_options(str(topo), BASE, rows="4,8")
    db = tmp_path / "s.sqlite"
    assert run_sweep(sw, db).counts()["ok"] == 2
    topo.write_text(TOPOLOGY.replace("conv1, 10, 10", "conv1, 12, 12"))
    before = db.read_bytes()
    with pytest.raises(SweepError, match="differs in network_sha256"):
        run_sweep(sw, db)
    assert db.read_bytes() == before


@pytest.mark.parametrize("how, says", [
    ("text", "not a design-space sweep database (not an SQLite file)"),
    ("empty", "empty file, not a design-space sweep database"),
    ("sqlite", "an SQLite database, but not a hwgen design-space sweep (application_id 0x0"),
    ("trigger", "sweep database holds trigger 'evil', which this store never writes"),
])
def test_foreign_file_refused_untouched(tmp_path, how, says):
    db = tmp_path / "s.sqlite"
    if how == "text":
        db.write_text("rows,cols\n8,8\n" * 20)
    elif how == "empty":
        db.write_bytes(b"")
    elif how == "sqlite":
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE points (x)")
        con.commit()
        con.close()
    else:
        run_sweep(_sweep(), db)
        con = sqlite3.connect(db)
        con.execute("CREATE TRIGGER evil AFTER INSERT ON points BEGIN DELETE FROM sweep; END")
        con.execute("DELETE FROM points WHERE point_index = 0")
        con.commit()
        con.close()
    before = db.read_bytes()
    with pytest.raises((SweepError, SweepStoreError)) as e:
        run_sweep(_sweep(), db)
    assert str(e.value).startswith(f"{db}: ") and says in str(e.value)
    assert db.read_bytes() == before and _siblings(db) == ["s.sqlite"]


def test_older_database_without_area_refused_untouched(tmp_path):
    """A sweep database written before the area metrics (its points table without their columns, the same
    sweep otherwise) is refused naming the file and the missing columns, and left as it was."""
    db, sw = tmp_path / "s.sqlite", _sweep()
    area = ("luts", "ffs", "dsps", "brams")
    old = {m.name: m.kind for m in METRICS if m.name not in area}
    with SweepStore.create(db, sw.identity(None), sw.n_points, old) as store:  # zoo:mlp: no file, no digest
        store.add(PointResult(0, design_points(sw)[0], PointStatus.OK, {n: k(1) for n, k in old.items()}))
    before = db.read_bytes()
    with pytest.raises(SweepError) as e:
        run_sweep(sw, db)
    msg = str(e.value)
    assert msg.startswith(f"{db}: a sweep database of an older hwgen: it lacks the metric columns "
                          f"luts, ffs, dsps, brams; ") and "another --db" in msg
    assert db.read_bytes() == before and _siblings(db) == ["s.sqlite"]


def test_older_database_without_fmax_refused_untouched(tmp_path):
    """A sweep database written before the Fmax metrics (fmax_mhz, latency_us) is refused the same way,
    naming them."""
    db, sw = tmp_path / "s.sqlite", _sweep()
    old = {m.name: m.kind for m in METRICS if m.name not in ("fmax_mhz", "latency_us")}
    with SweepStore.create(db, sw.identity(None), sw.n_points, old) as store:
        store.add(PointResult(0, design_points(sw)[0], PointStatus.OK, {n: k(1) for n, k in old.items()}))
    before = db.read_bytes()
    with pytest.raises(SweepError, match="it lacks the metric columns fmax_mhz, latency_us; .*another --db"):
        run_sweep(sw, db)
    assert db.read_bytes() == before and _siblings(db) == ["s.sqlite"]


def test_tampered_row_refused(tmp_path):
    db = tmp_path / "s.sqlite"
    run_sweep(_sweep(), db)
    con = sqlite3.connect(db)
    con.execute("UPDATE points SET params = '{\"rows\": 16, \"cols\": 4}' WHERE point_index = 0")
    con.commit()
    con.close()
    with pytest.raises(SweepError, match="point 0 is recorded with .*16.*the sweep's point 0 is"):
        run_sweep(_sweep(), db)


# ------------------------------------------------------------------ hwgen dse
def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["dse", "zoo:mlp", "--rows", "4,8", "--cols", "4:8:4", "--dataflow", "ws,both", "--controller", "in-order",
            "--a-spad-depth", "64", "--db", str(tmp_path / "s.sqlite"), "--csv", str(out / "all.csv"),
            "--json", str(out / "all.json"), "--pareto", str(out / "front.csv"), "--png", str(out / "front.png"),
            "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "Pareto front of zoo:mlp" in text and "8 points (8 ok, 0 invalid, 0 unfit), 8 evaluated now" in text
    rows = list(csv.DictReader(io.StringIO((out / "all.csv").read_text())))
    assert [(int(r["rows"]), int(r["cols"]), r["dataflow"]) for r in rows] == \
        [(r, c, d) for r in (4, 8) for c in (4, 8) for d in ("ws", "both")]
    assert {r["a_spad_depth"] for r in rows} == {"64"} and {r["status"] for r in rows} == {"ok"}
    data = json.loads((out / "all.json").read_text())
    assert len(data["points"]) == 8 and data["axes"]["cols"] == [4, 8]
    front = [int(r["point"]) for r in csv.DictReader(io.StringIO((out / "front.csv").read_text()))]
    assert front == data["pareto"] and front
    assert set(rows[0]) >= {m.name for m in METRICS} and [m["name"] for m in data["metrics"]] == \
        [m.name for m in METRICS]
    assert [m["name"] for m in data["metrics"] if m["front"]] == [o.name for o in FRONT]
    points = [PointResult(int(r["point"]), {}, PointStatus.OK, {o.name: o.kind(r[o.name]) for o in FRONT})
              for r in rows]
    assert set(front) == _brute_front(points, FRONT)
    assert (out / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(args) == 2  # outputs exist: replaced only with --force
    assert "exists" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert "0 evaluated now" in capsys.readouterr().out


@pytest.mark.parametrize("option, says", [
    (["--rows", "16:8:4"], "--rows '16:8:4': range 16:8:4 is empty"),
    (["--cols", "8:16:0"], "the step must be at least 1, got 0"),
    (["--cols", "8:16:-4"], "the step must be at least 1, got -4"),
    (["--rows", "eight"], "'eight' is not an integer"),
    (["--dataflow", "xs"], "'xs' is not a dataflow; choose from os, ws, both"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
    (["--rows", "8", "--scheduler", "tcp://no port"], "is not of the form tcp://host:port"),
    (["--rows", "8", "--png", "-"], "--png cannot go to standard output"),
    (["--rows", "8", "--json", "s.sqlite"], "s.sqlite: named as --db and as --json"),
    ([], "nothing to sweep"),
])
def test_cli_bad_input_writes_nothing(tmp_path, capsys, monkeypatch, option, says):
    monkeypatch.chdir(tmp_path)
    code = main(["dse", "zoo:mlp", *option, "--db", "s.sqlite", "--csv", "all.csv", "--pareto", "front.csv"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen dse: error: ") and says in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_dask_cluster_equals_in_process(tmp_path):
    from distributed import LocalCluster

    sw = _sweep()
    one = run_sweep(sw, tmp_path / "one.sqlite")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        dask = run_sweep(sw, tmp_path / "dask.sqlite", scheduler=cluster.scheduler_address)
    assert [(p.index, p.metrics) for p in one.points] == [(p.index, p.metrics) for p in dask.points]


def test_unreachable_scheduler_writes_nothing(tmp_path, monkeypatch):
    import socket

    import mappings.dse as dse

    monkeypatch.setattr(dse, "SCHEDULER_TIMEOUT", 1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SweepError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s"):
        run_sweep(_sweep(), tmp_path / "s.sqlite", scheduler=f"tcp://127.0.0.1:{port}")
    assert list(tmp_path.iterdir()) == []
