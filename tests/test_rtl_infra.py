"""The Verilator/cocotb infrastructure, proven with a stub accelerator (tests/rtl_stub.py).

Why a stub: the harness, build cache and batch bench must work (and keep
working) independently of the real accelerator RTL. The stub reads words,
writes a byte sum with a partial write strobe, counts cycles, can raise error
and can hang, which covers everything the bench relies on.

The Verilator tests build into a per-session temporary cache (one ~6-10 s
build), so they also prove that a build is made once and then reused.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from rtl_stub import StubAccelerator, expected, stub_image  # noqa: E402

from hwgen.config import AcceleratorConfig  # noqa: E402
from hwgen.program import Program, Region  # noqa: E402

CFG = AcceleratorConfig(name="rtlstub")
MEM = 16384


def _program(img: np.ndarray, mem_size: int) -> Program:
    """A Program without instructions whose image is ``img`` (the stub reads no ISA)."""
    return Program([], {"img": (Region(0, (img.size,), "uint8"), img)}, {}, mem_size)


# --------------------------------------------------------------- no Verilator
def test_toolchain_env():
    from hwgen.toolchain import verilator_env

    env = verilator_env({"PATH": "/usr/bin", "MAKEFLAGS": "-s"})
    root = Path(env["VERILATOR_ROOT"])
    assert (root / "include" / "verilated.mk").is_file()
    path = env["PATH"].split(os.pathsep)
    assert path[0] == str(root / "bin") and path[1] == str(Path(sys.executable).parent)
    assert env["MAKEFLAGS"] == "-s CFG_CXXFLAGS_PCH_I=-include"


def test_vlt_grants_only_ports_and_memory():
    from hwgen.harness import vlt_text

    text = vlt_text()
    assert text.startswith("`verilator_config")
    assert 'public_flat_rw -module "hwgen_hostmem" -var "mem"' in text
    assert 'public_flat_rw -module "hwgen_harness" -var "done"' in text
    assert "*" not in text


def test_harness_amaranth_sim_matches_stub_contract():
    """The Amaranth-memory form of the harness under amaranth.sim agrees with expected()."""
    from amaranth.sim import Simulator

    from hwgen.harness import Harness
    from hwgen.rtlsim import CocotbExecutor  # noqa: F401  (import check: no Verilator needed)

    mem_bytes = 512
    rng = np.random.default_rng(3)
    img = stub_image(CFG, mem_bytes, rng.integers(0, 256, 40, dtype=np.uint8), dst_word=60)
    img[60 * 8 + 4:60 * 8 + 8] = 0xAB  # the stub's write strobe must leave these bytes alone
    want_mem, want_cycles, want_busy, _ = expected(CFG, img)
    dut = Harness(CFG, mem_bytes, StubAccelerator(CFG))
    words = img.view("<u8")
    out = {}

    async def bench(ctx):
        for i, w in enumerate(words.tolist()):
            ctx.set(dut.memory.data[i], w)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(200):
            await ctx.tick()
            if ctx.get(dut.done):
                break
        out["cycles"], out["busy"] = ctx.get(dut.cycles), ctx.get(dut.busy_pe)
        out["mem"] = np.array([ctx.get(dut.memory.data[i]) for i in range(len(words))], dtype="<u8").view(np.uint8)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert (out["cycles"], out["busy"]) == (want_cycles, want_busy)
    np.testing.assert_array_equal(out["mem"], want_mem)


def test_build_key_names_the_cocotb_install(tmp_path, monkeypatch):
    """The harness links cocotb's VPI library by absolute path: a build from another virtualenv is not reused.

    (A CI run once found a cached simulator whose venv was gone: 'libcocotbvpi_verilator.so: cannot open'.)
    """
    from hwgen import rtlsim

    keys = []

    def fake_cached_build(cache, prefix, parts, artefacts, build, info, *rest):
        keys.append(tuple(parts))
        return "k", tmp_path, 0.0, True

    monkeypatch.setattr(rtlsim, "cached_build", fake_cached_build)
    rtlsim.build_rtl(CFG, MEM, StubAccelerator, cache_dir=tmp_path, use_memo=False)
    monkeypatch.setattr(rtlsim, "_cocotb_libs_dir", lambda: str(tmp_path / "other-venv" / "cocotb" / "libs"))
    rtlsim.build_rtl(CFG, MEM, StubAccelerator, cache_dir=tmp_path, use_memo=False)
    assert len(keys) == 2 and keys[0] != keys[1]
    import cocotb_tools.config
    assert str(Path(cocotb_tools.config.libs_dir).resolve()) in keys[0]


# ------------------------------------------------------------------ Verilator
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hwgen_cache")


@pytest.fixture(scope="module")
def built(cache_dir):
    from hwgen.rtlsim import build_rtl

    return build_rtl(CFG, MEM, StubAccelerator, cache_dir=cache_dir)


@pytest.mark.rtl
def test_build_is_cached(built, cache_dir):
    from hwgen.rtlsim import build_rtl

    assert not built.cached and built.executable.is_file()
    stamp = built.executable.stat().st_mtime_ns
    again = build_rtl(CFG, MEM, StubAccelerator, cache_dir=cache_dir)            # in-process memo
    disk = build_rtl(CFG, MEM, StubAccelerator, cache_dir=cache_dir, use_memo=False)  # as a new process would
    for b in (again, disk):
        assert b.cached and b.build_dir == built.build_dir
    assert built.executable.stat().st_mtime_ns == stamp
    other = AcceleratorConfig(name="rtlstub", host_port_width=32)
    from hwgen.harness import harness_verilog
    assert harness_verilog(other, MEM, StubAccelerator) != harness_verilog(CFG, MEM, StubAccelerator)


@pytest.mark.rtl
def test_batch_of_images_in_one_process(built, cache_dir):
    from hwgen.rtlsim import run_images_rtl

    rng = np.random.default_rng(7)
    images = []
    for n_bytes, dst in ((8, 1000), (800, 1500), (8000, 2040), (0, 3)):
        images.append(stub_image(CFG, MEM, rng.integers(0, 256, n_bytes, dtype=np.uint8), dst_word=dst))
    images.append(images[1].copy())                       # same image again: nothing left over from before
    images.append(stub_image(CFG, MEM, rng.integers(0, 256, 64, dtype=np.uint8), dst_word=5, error=True))
    images[2][2040 * 8 + 4:2040 * 8 + 8] = [1, 2, 3, 4]   # bytes the write strobe must keep
    results = run_images_rtl(CFG, images, mem_bytes=MEM, accel_factory=StubAccelerator, cache_dir=cache_dir,
                             timeout_cycles=5000)
    assert len(results) == len(images)
    assert len({r.process_seconds for r in results}) == 1   # one simulator process for the batch
    for n, (img, res) in enumerate(zip(images, results)):
        want_mem, want_cycles, want_busy, want_err = expected(CFG, img)
        assert not res.timed_out and not res.mem_oob, n
        assert (res.cycles, res.busy_pe, res.error) == (want_cycles, want_busy, want_err), n
        assert res.clock_cycles == res.cycles and res.executor == "cocotb", n
        np.testing.assert_array_equal(res.memory, want_mem, err_msg=f"image {n}")
    assert results[0].stats["words_loaded"] == MEM // 8        # first image: the whole memory
    assert results[4].stats["words_loaded"] < 200              # later: only the words that differ


@pytest.mark.rtl
def test_timeout_then_recovers_and_programs_are_padded(built, cache_dir):
    from hwgen.rtlsim import run_programs_rtl

    rng = np.random.default_rng(11)
    hang = stub_image(CFG, 4096, rng.integers(0, 256, 4000, dtype=np.uint8), dst_word=10)   # 502 cycles
    small = stub_image(CFG, 1024, rng.integers(0, 256, 100, dtype=np.uint8), dst_word=1800)  # writes past 1 KiB
    oob = stub_image(CFG, 1024, rng.integers(0, 256, 16, dtype=np.uint8), dst_word=3000)     # past the harness
    progs = [_program(hang, 4096), _program(small, 1024), _program(oob, 1024)]
    results = run_programs_rtl(CFG, progs, mem_bytes=MEM, accel_factory=StubAccelerator, cache_dir=cache_dir,
                               timeout_cycles=[100, 1000, 1000])
    r_hang, r_small, r_oob = results
    assert r_hang.timed_out and r_hang.clock_cycles == 100 and r_hang.memory.size == 4096
    assert not r_small.timed_out and r_small.memory.size == 1024
    np.testing.assert_array_equal(r_small.memory, small)       # the hung program's data was cleared
    assert 0 < r_small.outside_bytes <= 4 and not r_small.mem_oob  # only its sum, at word 1800 (past 1 KiB)
    assert r_oob.mem_oob and r_oob.outside_bytes == 0          # dropped, flagged
    np.testing.assert_array_equal(r_oob.memory, oob)
