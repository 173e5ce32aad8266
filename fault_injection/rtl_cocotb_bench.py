"""The cocotb side of the RTL fault-injection cross-check (started by
:func:`fault_injection.rtl_injector.cocotb_crosscheck`; runs inside the simulator's Python).

The toplevel is :class:`hwgen.harness.Harness` (host memory in Verilog) with every
register and memory of the accelerator made visible by a ``.vlt``. Each fault is
one whole run: hold reset, clear every state element of the accelerator and the
memory's read register (a fresh simulator's state, as the native injector starts
from), load the image, release reset, pulse ``start``; wait to the fault's cycle
(cycle 0 is the state after the edge that samples ``start``), write the flipped /
forced value into the register or memory word (a cocotb deposit: ``.value =``),
re-apply it every cycle of a stuck-at window, and run to ``done``, ``error`` or
the timeout. No early stop: every run goes to the end, so this path checks the
native injector's early stops too.

Job: JSON named by ``$HWGEN_FI_JOB`` (written by ``cocotb_crosscheck``); results:
a JSON list of ``{"detail": code, "end": cycle}`` in fault order (codes of
:data:`fault_injection.rtl_injector.DETAILS`). Imports no Amaranth and nothing
of hwgen, so the simulator starts quickly.
"""

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, ReadOnly, ReadWrite, RisingEdge

JOB_ENV = "HWGEN_FI_JOB"
#: the host memory's read-data registers (hwgen.harness.MEM_RDATA; this module imports nothing of hwgen)
MEM_RDATA = ("f_rdata", "l_rdata")
# detail codes (fault_injection.rtl_injector.DETAILS)
SAME, MEMORY, OUTPUT, ERROR, TIMEOUT, OOB, AFTER_END, LATE, EARLY = 1, 2, 3, 4, 5, 6, 7, 8, 9


def _child(h: Any, name: str) -> Any:
    if "$" not in name and not name.startswith("_"):
        return getattr(h, name)
    for key in (name, f"\\{name}\\", f"\\{name} ", f"\\{name}"):
        try:
            return h[key]
        except (KeyError, AttributeError):
            pass
    for c in h:                                  # escaped identifiers: match by the bare name
        if c._name.strip().lstrip("\\").rstrip("\\").strip() == name:
            return c
    raise KeyError(f"{h._path} has no child {name!r} (children: {sorted(c._name for c in h)[:20]})")


def _handle(root: Any, path: str) -> Any:
    h = root
    for part in path.split("."):
        h = _child(h, part)
    return h


def _words(image: np.ndarray, nb: int) -> list[int]:
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if nb in (1, 2, 4, 8):
        return img.view(f"<u{nb}").tolist()
    halves = img.view("<u8").reshape(-1, nb // 8).tolist()
    return [sum(h << (64 * k) for k, h in enumerate(row)) for row in halves]


def _bytes(words: list[int], nb: int) -> np.ndarray:
    return np.frombuffer(b"".join(w.to_bytes(nb, "little") for w in words), dtype=np.uint8)


def _apply(handle: Any, f: dict, width: int) -> None:
    val = handle.value
    v = val.to_unsigned() if hasattr(val, "to_unsigned") else int(val)   # 1-bit signals give a Logic
    mask = 0
    for k in range(f["nbits"]):
        if f["bit"] + k < width:
            mask |= 1 << (f["bit"] + k)
    if f["model"] == "stuck0":
        v &= ~mask
    elif f["model"] == "stuck1":
        v |= mask
    else:
        v ^= mask
    handle.value = v


@cocotb.test()
async def run_faults(dut: Any) -> None:
    job = json.loads(Path(os.environ[JOB_ENV]).read_text())
    nb, period = int(job["port_bytes"]), int(job.get("period_ns", 10))
    mem_bytes = int(job["mem_bytes"])
    depth = mem_bytes // nb
    image = _words(np.load(job["image"]), nb)
    golden = np.load(job["golden"])
    golden_cycles, timeout = int(job["golden_cycles"]), int(job["timeout"])
    accel = _child(dut, job["accel"])
    mem = dut.hostmem.mem
    mem_h = [mem[i] for i in range(depth)]
    # state handles: a register, or every word of a memory
    state = []
    for v in job["vars"]:
        h = _handle(accel, v["path"])
        state.append((h, [h[i] for i in range(v["depth"])] if v["depth"] > 1 else [h], v["width"]))
    Clock(dut.clk, period, unit="ns").start(start_high=False)
    results = []
    for f in job["faults"]:
        if f["cycle"] >= golden_cycles:          # as the native injector: nothing left to corrupt
            results.append({"detail": AFTER_END, "end": golden_cycles})
            continue
        dut.rst.value = 1
        dut.start.value = 0
        await RisingEdge(dut.clk)
        for _h, words, _w in state:
            for w in words:
                w.value = 0
        for rd in MEM_RDATA:
            getattr(dut.hostmem, rd).value = 0
        for i in range(depth):
            mem_h[i].value = image[i]
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        dut.start.value = 1
        await RisingEdge(dut.clk)                # the edge that samples start: cycle 0 follows
        dut.start.value = 0
        t0 = get_sim_time("ns")
        if f["cycle"] > 0:
            await ClockCycles(dut.clk, f["cycle"])
        h, words, width = state[f["var"]]
        target = words[f["word"]]
        window = f["duration"] if f["model"] in ("stuck0", "stuck1") else 1
        ended = False
        for k in range(window):
            await ReadWrite()                    # the edge's register updates are visible: flip the new value
            _apply(target, f, width)
            await ReadOnly()
            if dut.done.value or dut.error.value:
                ended = True
                break
            await RisingEdge(dut.clk)
        if not ended:
            n = round((get_sim_time("ns") - t0) / period)
            await ReadOnly()
            if not (dut.done.value or dut.error.value) and n < timeout:
                await First(RisingEdge(dut.done), RisingEdge(dut.error), ClockCycles(dut.clk, timeout - n))
                await ReadOnly()
        end = round((get_sim_time("ns") - t0) / period)
        final = _bytes([w.value.to_unsigned() for w in mem_h], nb)
        if dut.error.value:
            detail = ERROR
        elif not dut.done.value:
            detail = TIMEOUT
        elif dut.mem_oob.value:
            detail = OOB
        elif any(not np.array_equal(final[lo:hi], golden[lo:hi]) for lo, hi in job["regions"]):
            detail = OUTPUT
        elif not np.array_equal(final, golden):
            detail = MEMORY
        else:
            detail = LATE if end > golden_cycles else EARLY if end < golden_cycles else SAME
        results.append({"detail": detail, "end": end})
        await RisingEdge(dut.clk)                # leave the read-only phase
    Path(job["results"]).write_text(json.dumps(results))
