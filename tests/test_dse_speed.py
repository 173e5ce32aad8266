"""benchmarks/dse_speed.py, fast parts only: its options, the sweep section on a tiny network, the ZigZag
section's skip without a venv and its reading of the child's answer (a stand-in child, not ZigZag: the real
run takes minutes and its own venv)."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import sys
from pathlib import Path

import pytest


def _script():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "dse_speed.py"
    spec = importlib.util.spec_from_file_location("dse_speed", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


ds = _script()


def test_sweep_axes_take_a_power_of_two():
    for n in (2, 4, 8, ds.MAX_POINTS):
        axes = ds.sweep_axes(n)
        assert 2 ** len(axes) == n and axes == ds.SWEEP_AXES[:len(axes)]
    for bad in (0, 1, 3, 6, 2 * ds.MAX_POINTS):
        with pytest.raises(ValueError, match="power of two"):
            ds.sweep_axes(bad)


@pytest.mark.parametrize("argv", [["--points", "5"], ["--sections", "5"], ["--jobs", "0"]])
def test_bad_options_exit_2(argv):
    with pytest.raises(SystemExit) as e:
        ds.main(argv)
    assert e.value.code == 2


def test_sweep_and_skips_exit_0(tmp_path, capsys):
    """Section 2 on zoo:mlp (about a second), section 1 skipped by --no-synth, section 3 without a venv."""
    assert ds.main(["--no-synth", "--network", "zoo:mlp", "--points", "2",
                    "--zigzag-venv", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "skipped (--no-synth)" in out
    row = next(ln for ln in out.splitlines() if ln.split()[:3] == ["1", "2", "2"])  # jobs 1, 2 points, 2 ok
    assert float(row.split()[4]) > 0  # points/s
    assert f"no ZigZag venv at {tmp_path / 'none'}" in out and "--install-zigzag" in out


def _fake_python(tmp_path: Path, body: str) -> Path:
    py = tmp_path / "python"
    py.write_text(f"#!/bin/sh\n{body}\n")
    py.chmod(py.stat().st_mode | stat.S_IXUSR)
    return py


def test_run_zigzag_reads_the_child_answer(tmp_path):
    answer = {"latency_cycles": 3.0, "evaluations": 7}
    py = _fake_python(tmp_path, f"echo noise; echo 'HWGEN_ZIGZAG {json.dumps(answer)}'")
    run = ds.run_zigzag(py)
    assert run.result == answer and run.child_wall >= 0 and run.child_cpu >= 0


def test_run_zigzag_failure_names_the_child(tmp_path):
    py = _fake_python(tmp_path, "echo 'No module named zigzag' >&2; exit 3")
    with pytest.raises(RuntimeError, match="exited 3: No module named zigzag"):
        ds.run_zigzag(py)


def test_ready_needs_the_stamp(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _fake_python(venv / "bin", "exit 0")
    assert not ds.zigzag_ready(venv)
    (venv / ds.STAMP).write_text("\n".join(ds.ZIGZAG_REQUIREMENTS) + "\n")
    assert ds.zigzag_ready(venv)
    (venv / ds.STAMP).write_text("zigzag-dse==0.0\n")
    assert not ds.zigzag_ready(venv)
    assert os.path.basename(ds.venv_python(venv)) == "python"
