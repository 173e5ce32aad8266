"""Run a Program on the Accelerator RTL under amaranth.sim (no Verilator).

Slow (a Python event loop per cycle) but needs no C++ toolchain: the fast unit
tests use it on tiny arrays to check the RTL against the cycle model before the
Verilator regression runs. :class:`PySimExecutor` is the ``"pysim"``
:class:`hwgen.program.Executor`; results are :class:`hwgen.program.RunResult`.
"""

from typing import Callable, Sequence

import numpy as np
from amaranth.sim import Simulator

from .config import AcceleratorConfig
from .program import RunResult, timeouts_for
from .safety import STATUS_COUNTERS
from .top import Accelerator

__all__ = ["PySimExecutor", "run_program_pysim", "DEFAULT_MAX_CYCLES"]

#: Cycles after start without done before a run counts as timed out.
DEFAULT_MAX_CYCLES = 200_000


class PySimExecutor:
    """The ``"pysim"`` :class:`hwgen.program.Executor`: ``cfg``'s accelerator under amaranth.sim.

    Each image runs in a fresh simulation of the design (nothing carries over between images). The memory
    comes back with the image's size; a run without done within ``timeout_cycles`` (default
    ``max_cycles``) has ``timed_out`` set, with the memory and counters at that point.
    """

    name = "pysim"

    def __init__(self, cfg: AcceleratorConfig, *, max_cycles: int = DEFAULT_MAX_CYCLES,
                 poke: Callable[[object, Accelerator, int], None] | None = None):
        self.cfg = cfg
        self.max_cycles = max_cycles
        #: called as ``poke(ctx, dut, cycle)`` before each cycle's edge (cycle 0: the first after start):
        #: the seam a test uses to write a register or memory word mid-run (a fault), as the injectors do
        self.poke = poke

    def run(self, image: np.ndarray) -> RunResult:
        return self._run(image, self.max_cycles)

    def run_all(self, images: Sequence[np.ndarray],
                timeout_cycles: int | Sequence[int] | None = None) -> list[RunResult]:
        return [self._run(im, to) for im, to in zip(images, timeouts_for(len(images), timeout_cycles,
                                                                        self.max_cycles))]

    def _run(self, image: np.ndarray, max_cycles: int) -> RunResult:
        cfg = self.cfg
        dut = Accelerator(cfg)
        pb = cfg.host_port_bytes
        mem = np.array(image, dtype=np.uint8, copy=True).reshape(-1)
        size = mem.size
        if mem.size % pb:
            mem = np.concatenate([mem, np.zeros(pb - mem.size % pb, np.uint8)])
        words = mem.reshape(-1, pb)
        out: dict = {"timed_out": True}

        async def bench(ctx):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for cycle in range(max_cycles):
                if self.poke is not None:
                    self.poke(ctx, dut, cycle)
                *_, f_re, f_addr, l_re, l_addr, we, addr, strb, wdata, done = await ctx.tick().sample(
                    dut.fetch_re, dut.fetch_addr, dut.ld_re, dut.ld_addr,
                    dut.st_we, dut.st_addr, dut.st_wstrb, dut.st_wdata, dut.done)
                if done:
                    out["timed_out"] = False
                    break
                # the reads see the memory before this cycle's write (old data)
                f_word = int.from_bytes(words[f_addr].tobytes(), "little") if f_re else None
                l_word = int.from_bytes(words[l_addr].tobytes(), "little") if l_re else None
                if we:
                    for b in range(pb):
                        if (strb >> b) & 1:
                            words[addr, b] = (wdata >> (8 * b)) & 0xFF
                if f_re:
                    ctx.set(dut.fetch_rdata, f_word)
                if l_re:
                    ctx.set(dut.ld_rdata, l_word)
            out["cycles"] = ctx.get(dut.cycles)
            out["busy"] = ctx.get(dut.busy_pe)
            out["error"] = bool(ctx.get(dut.error))
            if STATUS_COUNTERS[0] in dut.signature.members:
                out["safety"] = tuple(int(ctx.get(getattr(dut, n))) for n in STATUS_COUNTERS)

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        return RunResult(words.reshape(-1)[:size].copy(), out["cycles"], out["busy"], error=out["error"],
                         timed_out=out["timed_out"], executor=self.name, safety_counters=out.get("safety"))


def run_program_pysim(cfg: AcceleratorConfig, image: np.ndarray, max_cycles: int = DEFAULT_MAX_CYCLES) -> RunResult:
    """Execute ``image`` (uint8 host memory with the program at 0) until done; TimeoutError without done
    within ``max_cycles`` (:class:`PySimExecutor` reports that as ``timed_out`` instead)."""
    res = PySimExecutor(cfg, max_cycles=max_cycles).run(image)
    if res.timed_out:
        raise TimeoutError(f"no done within {max_cycles} cycles")
    return res
