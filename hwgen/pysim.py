"""Run a Program on the Accelerator RTL under amaranth.sim (no Verilator).

Slow (a Python event loop per cycle) but needs no C++ toolchain: the fast unit
tests use it on tiny arrays to check the RTL against the cycle model before the
Verilator regression runs.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from .config import AcceleratorConfig
from .top import Accelerator

__all__ = ["PySimResult", "run_program_pysim"]


@dataclass
class PySimResult:
    memory: np.ndarray
    cycles: int
    busy_pe: int
    error: bool


def run_program_pysim(cfg: AcceleratorConfig, image: np.ndarray, max_cycles: int = 200_000) -> PySimResult:
    """Execute ``image`` (uint8 host memory with the program at 0) until done."""
    dut = Accelerator(cfg)
    pb = cfg.host_port_bytes
    mem = np.array(image, dtype=np.uint8, copy=True)
    if mem.size % pb:
        mem = np.concatenate([mem, np.zeros(pb - mem.size % pb, np.uint8)])
    words = mem.reshape(-1, pb)
    out: dict = {}

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(max_cycles):
            *_, re, we, addr, strb, wdata, done = await ctx.tick().sample(
                dut.mem_re, dut.mem_we, dut.mem_addr, dut.mem_wstrb, dut.mem_wdata, dut.done)
            if done:
                break
            if we:
                for b in range(pb):
                    if (strb >> b) & 1:
                        words[addr, b] = (wdata >> (8 * b)) & 0xFF
            if re:
                ctx.set(dut.mem_rdata, int.from_bytes(words[addr].tobytes(), "little"))
        else:
            raise TimeoutError(f"no done within {max_cycles} cycles")
        out["cycles"] = ctx.get(dut.cycles)
        out["busy"] = ctx.get(dut.busy_pe)
        out["error"] = bool(ctx.get(dut.error))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return PySimResult(words.reshape(-1)[:image.size].copy(), out["cycles"], out["busy"], out["error"])
