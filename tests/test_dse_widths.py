"""Operand widths as sweep axes, and the points that differ only in them run as one task.

Each point must still be what it would be alone: its cycles, energy and area equal ``map_graph`` and
``estimate`` on its own configuration from a cold mapper memo (the grouping may only save work), with
one worker or two."""

from __future__ import annotations

import pytest

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.cost_model import estimate
from mappings.dse import Sweep, design_points, mapping_groups, point_config, run_sweep
from mappings.mapper import clear_cache
from mappings.network_map import load_model, map_graph

BASE = AcceleratorConfig(controller="in-order", a_spad_depth=1024, w_spad_depth=1024, acc_depth=512, acc_width=24,
                         max_reduction=256)


def test_groups_are_the_points_equal_but_for_widths():
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4,8", input_width="4,8", weight_width="4,6,8")
    todo = list(enumerate(design_points(sw)))
    groups = mapping_groups(todo)
    assert sorted(i for g in groups for i, _ in g) == list(range(len(todo)))   # every point once
    assert len(groups) == 2 and all(len(g) == 6 for g in groups)
    for g in groups:
        assert len({p["rows"] for _, p in g}) == 1
        assert [i for i, _ in g] == sorted(i for i, _ in g)
    assert mapping_groups([]) == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_width_points_equal_their_own_evaluation(tmp_path, jobs):
    graph = load_model("zoo:mlp")
    sw = Sweep.from_options("zoo:mlp", BASE, rows="4", cols="4,8", input_width="4,8", weight_width="4,8")
    run = run_sweep(sw, tmp_path / "w.sqlite", jobs=jobs)
    assert run.complete and run.counts()["ok"] == 8
    luts = set()
    for p, params in zip(run.points, design_points(sw)):
        clear_cache()
        cfg = point_config(BASE, params)
        m = map_graph(graph, cfg)
        assert p.metrics["cycles"] == m.cycles
        assert p.metrics["energy_uj"] == pytest.approx(m.energy.total_uj, rel=1e-12)
        assert p.metrics["luts"] == estimate(cfg).luts
        luts.add(p.metrics["luts"])
    by_cols = {}
    for p in run.points:
        by_cols.setdefault(p.params["cols"], set()).add(p.metrics["cycles"])
    assert all(len(c) == 1 for c in by_cols.values())   # widths change no cycle count
    assert len(luts) > 2                                  # but they change the area


def test_cli_takes_width_lists(tmp_path, capsys):
    db = tmp_path / "c.sqlite"
    assert main(["dse", "zoo:mlp", "--controller", "in-order", "--a-spad-depth", "64", "--w-spad-depth", "64",
                 "--acc-depth", "64", "--acc-width", "24", "--max-reduction", "256", "--rows", "4",
                 "--input-width", "4,8", "--weight-width", "4:8:4", "--db", str(db), "--no-progress"]) == 0
    assert main(["dse", "zoo:mlp", "--input-width", "0,8", "--db", str(tmp_path / "bad.sqlite"),
                 "--no-progress"]) == 2
    assert "--input-width" in capsys.readouterr().err
