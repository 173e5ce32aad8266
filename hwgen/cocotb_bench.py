"""The cocotb test module that runs a batch of memory images through one simulator process.

It runs inside the Verilator simulator's embedded Python (started by
:func:`hwgen.rtlsim.run_images_rtl`), so it lives in the hwgen package: the
simulator imports it by module name, and cocotb's runner passes the parent's
``sys.path`` on, which includes the installed package. It imports neither
Amaranth nor the rest of hwgen, to keep the simulator's start-up short.

Why this shape: a simulator process costs seconds to start and cocotb
round-trips cost microseconds per clock if Python drives the clock, so one
process runs every image, the clock is cocotb's C++ (GPI) clock, and Python
only wakes up for reset, the memory load, the ``start`` pulse, ``done`` (or the
timeout) and the read-back.

Job protocol (all files in one folder that the parent owns):

* the environment variable :data:`JOB_ENV` names a JSON file ``{"mem_bytes",
  "port_bytes", "mem_path" (names from the toplevel down to the memory array), "period_ns", "reset_cycles", "clock_impl", "diff_load",
  "images": [{"path": .npy of uint8[mem_bytes], "timeout_cycles": int,
  "result": .npz path}, ...]}``;
* for each image, in order, the bench writes its ``result`` npz (see
  :func:`run_images` for the fields) as soon as that image is done, so a crash
  leaves the results of the images before it.

The parent (:class:`hwgen.rtlsim.CocotbExecutor`) turns each npz into a
:class:`hwgen.program.RunResult` (``sim_cycles`` becomes ``clock_cycles``,
``words_loaded`` and the load and read-back seconds go to ``stats``).
"""

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

__all__ = ["JOB_ENV", "run_images", "words_from_bytes", "bytes_from_words"]

#: Environment variable holding the path of the job JSON file.
JOB_ENV = "HWGEN_BENCH_JOB"


def words_from_bytes(image: np.ndarray, port_bytes: int) -> list[int]:
    """Little-endian host-port words of a uint8 image, as Python ints (what VPI writes take)."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if port_bytes in (1, 2, 4, 8):
        return img.view(f"<u{port_bytes}").tolist()
    halves = img.view("<u8").reshape(-1, port_bytes // 8).tolist()
    return [sum(h << (64 * k) for k, h in enumerate(row)) for row in halves]


def bytes_from_words(words: list[int], port_bytes: int) -> np.ndarray:
    """Inverse of :func:`words_from_bytes`."""
    if port_bytes in (1, 2, 4, 8):
        return np.array(words, dtype=f"<u{port_bytes}").view(np.uint8)
    mask = (1 << 64) - 1
    parts = [(w >> (64 * k)) & mask for w in words for k in range(port_bytes // 8)]
    return np.array(parts, dtype="<u8").view(np.uint8)


def _write_words(handles: list[Any], words: list[int], indices: Any) -> None:
    for i in indices:
        handles[i].value = words[i]


def _read_words(handles: list[Any]) -> list[int]:
    return [h.value.to_unsigned() for h in handles]


@cocotb.test()
async def run_images(dut: Any) -> None:
    """Run every image of the job; write one result npz per image.

    Per image: hold ``rst`` (the design stops writing after the first reset
    edge), load the image into the memory (only words that differ from the
    last read-back, unless that is unknown), release reset, pulse ``start``,
    wait for the rising edge of ``done`` or ``error`` or the timeout, then read
    the counters and the whole memory. Result fields: memory (uint8[mem_bytes]),
    cycles, busy_pe, error, timed_out, mem_oob, sim_cycles (clock cycles from
    the start edge to done as the bench counted them), words_loaded and the wall
    seconds of the load, the run and the read-back.
    """
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    mem_bytes = int(job["mem_bytes"])
    nb = int(job["port_bytes"])
    period = int(job.get("period_ns", 10))
    depth = mem_bytes // nb

    mem = dut
    for name in job.get("mem_path", ["hostmem", "mem"]):
        mem = getattr(mem, name)
    if len(mem) != depth:
        raise RuntimeError(f"harness memory has {len(mem)} words, the job expects {depth}")
    handles = [mem[i] for i in range(depth)]
    shadow: list[int] | None = None  # what the memory holds now, when known

    Clock(dut.clk, period, unit="ns", impl=job.get("clock_impl", "gpi")).start(start_high=False)
    dut.rst.value = 1
    dut.start.value = 0

    for item in job["images"]:
        image = np.load(item["path"], allow_pickle=False)
        if image.dtype != np.uint8 or image.size != mem_bytes:
            raise RuntimeError(f"{item['path']}: expected uint8[{mem_bytes}], got {image.dtype}[{image.size}]")
        words = words_from_bytes(image, nb)

        dut.rst.value = 1
        dut.start.value = 0
        await RisingEdge(dut.clk)        # from here on the design is in reset and writes nothing
        t0 = time.perf_counter()
        if shadow is None or not job.get("diff_load", True):
            todo = range(depth)
        else:
            todo = [i for i, (a, b) in enumerate(zip(words, shadow)) if a != b]
        _write_words(handles, words, todo)
        t_load = time.perf_counter() - t0
        await ClockCycles(dut.clk, max(1, int(job.get("reset_cycles", 2))))
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        dut.start.value = 1
        await RisingEdge(dut.clk)        # the edge that samples start
        dut.start.value = 0
        start_ns = get_sim_time("ns")
        t0 = time.perf_counter()
        timeout = int(item["timeout_cycles"])
        fired = await First(RisingEdge(dut.done), RisingEdge(dut.error), Timer(timeout * period, unit="ns"))
        timed_out = isinstance(fired, Timer)
        await ReadOnly()
        t_run = time.perf_counter() - t0
        sim_cycles = round((get_sim_time("ns") - start_ns) / period)

        t0 = time.perf_counter()
        cycles = dut.cycles.value.to_unsigned()
        busy_pe = dut.busy_pe.value.to_unsigned()
        error = bool(dut.error.value)
        oob = bool(dut.mem_oob.value)
        final = _read_words(handles)
        memory = bytes_from_words(final, nb)
        t_read = time.perf_counter() - t0
        # After a timeout the design may still write at the next edges: the memory is unknown then.
        shadow = None if timed_out else final

        np.savez(item["result"], memory=memory, cycles=cycles, busy_pe=busy_pe, error=error,
                 timed_out=timed_out, mem_oob=oob, sim_cycles=sim_cycles, words_loaded=len(todo),
                 load_seconds=t_load, run_seconds=t_run, readback_seconds=t_read)
        await RisingEdge(dut.clk)        # leave the read-only phase before the next writes
