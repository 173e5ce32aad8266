"""One executor interface (hwgen.program.Executor) and one result type (hwgen.program.RunResult) for the
cycle model, the native Verilator harness, cocotb on Verilator and amaranth.sim; and the build cache's
place (hwgen.rtlsim.default_cache_dir). Nothing here builds Verilator."""

from pathlib import Path

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.program import Executor, RunResult, run_programs, timeouts_for
from mappings.random_programs import random_programs
from sim.cycle import CycleModel

CFG = AcceleratorConfig(name="ex2x2", rows=2, cols=2, dataflow="both", a_spad_depth=16, w_spad_depth=16,
                        acc_depth=16, host_port_width=32)
ROOT = Path(__file__).resolve().parent.parent


def _executors():
    from hwgen.native import NativeExecutor
    from hwgen.pysim import PySimExecutor
    from hwgen.rtlsim import CocotbExecutor

    return [CycleModel(CFG), NativeExecutor(CFG), CocotbExecutor(CFG), PySimExecutor(CFG)]


def test_the_four_executors_share_the_protocol():
    names = []
    for ex in _executors():
        assert isinstance(ex, Executor), type(ex).__name__
        assert ex.cfg is CFG
        names.append(ex.name)
    assert names == ["model", "native", "cocotb", "pysim"]


def test_model_result_is_the_one_result_type():
    prog = random_programs(CFG, 1, seed=3, max_cycles=3000)[0][0]
    res = CycleModel(CFG).run(prog.image())
    assert type(res) is RunResult and res.executor == "model"
    assert res.instructions == len(res.trace) == len(prog.instructions)
    assert res.ok and not res.error and res.clock_cycles is None
    assert res.trace[-1].end == res.cycles
    batch = CycleModel(CFG).run_all([prog.image(), prog.image()], timeout_cycles=1)  # no clock: ignored
    assert [r.cycles for r in batch] == [res.cycles] * 2


def test_pysim_executor_agrees_with_the_model():
    """amaranth.sim through the protocol: same memory, counters; a too-short timeout is reported, not raised."""
    from hwgen.pysim import PySimExecutor

    progs = [p for p, _ in random_programs(CFG, 2, seed=7, max_cycles=1500)]
    models = run_programs(CycleModel(CFG), progs)
    rtl = run_programs(PySimExecutor(CFG), progs, timeout_cycles=[2 * m.cycles + 100 for m in models])
    for m, r in zip(models, rtl):
        assert type(r) is RunResult and r.executor == "pysim" and r.ok
        assert (r.cycles, r.busy_pe) == (m.cycles, m.busy_pe)
        np.testing.assert_array_equal(r.memory, m.memory)
    (late,) = PySimExecutor(CFG).run_all([progs[0].image()], timeout_cycles=5)
    assert late.timed_out and not late.ok


def test_run_programs_cuts_the_memory_and_counts_bytes_outside():
    prog = random_programs(CFG, 1, seed=3, max_cycles=3000)[0][0]

    class Padded:
        """An executor whose memory is a larger harness memory, with a stray write past the program."""

        name = "padded"
        cfg = CFG

        def run(self, image):
            return self.run_all([image])[0]

        def run_all(self, images, timeout_cycles=None):
            out = []
            for im, to in zip(images, timeouts_for(len(images), timeout_cycles, 99)):
                m = CycleModel(CFG).run(im)
                mem = np.concatenate([m.memory, np.zeros(64, np.uint8)])
                mem[-1] = 7
                out.append(RunResult(mem, m.cycles, m.busy_pe, clock_cycles=to))
            return out

    (res,) = run_programs(Padded(), [prog])
    assert res.memory.size == prog.mem_size and res.outside_bytes == 1 and not res.ok
    assert res.clock_cycles == 99


def test_timeouts_for():
    assert timeouts_for(3, None, 5) == [5, 5, 5]
    assert timeouts_for(2, np.int64(4), 5) == [4, 4]
    assert timeouts_for(2, [1, 2], 5) == [1, 2]
    with pytest.raises(ValueError, match="3 timeouts for 2 images"):
        timeouts_for(2, [1, 2, 3], 5)


def test_result_utilization_and_speed():
    r = RunResult(np.zeros(4, np.uint8), cycles=100, busy_pe=200, clock_cycles=100, run_seconds=0.5)
    assert r.utilization(CFG) == pytest.approx(0.5)
    assert r.cycles_per_second == pytest.approx(200)
    assert RunResult(np.zeros(4, np.uint8), 0, 0).utilization(CFG) == 0.0


# ------------------------------------------------------------------ build cache location
def test_cache_under_xdg_cache_home(tmp_path, monkeypatch):
    from hwgen.rtlsim import default_cache_dir

    monkeypatch.delenv("HWGEN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hwgen"


def test_hwgen_cache_wins(tmp_path, monkeypatch):
    from hwgen.rtlsim import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == (tmp_path / "mine").resolve()


def test_cache_defaults_to_the_home_cache_never_the_checkout(tmp_path, monkeypatch):
    from hwgen.rtlsim import default_cache_dir

    monkeypatch.delenv("HWGEN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "hwgen"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")   # not absolute: ignored, as the XDG rules say
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "hwgen"


def test_cache_without_a_home_is_a_clear_error(monkeypatch):
    from hwgen.errors import HwgenError
    from hwgen.rtlsim import default_cache_dir

    monkeypatch.delenv("HWGEN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr("os.path.expanduser", lambda p: p)
    with pytest.raises(HwgenError, match="HWGEN_CACHE"):
        default_cache_dir()
