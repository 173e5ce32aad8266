"""Three-way agreement check: RTL (Verilator) == cycle model == numpy reference.

Used by ``hwgen verify`` and by the cocotb regression in tests/, so that a
user's own configuration gets exactly the checks the project's CI runs:
output bytes equal the reference, the whole final host memory of the RTL
equals the model's, and the RTL's cycle and busy-PE counters equal the model's.
Both sides are :class:`hwgen.program.Executor` runs (:class:`hwgen.program.RunResult`):
the cycle model against cocotb on Verilator by default, or any other RTL executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .config import AcceleratorConfig
from .program import Executor, Program, RunResult, run_programs

__all__ = ["ProgramCheck", "VerifyResult", "compare_run", "verify_programs", "verify_config"]


@dataclass
class ProgramCheck:
    name: str
    problems: list[str]
    model_cycles: int
    rtl_cycles: int | None
    utilization: float

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyResult:
    checks: list[ProgramCheck] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(c.ok for c in self.checks)

    @property
    def failed(self) -> int:
        return sum(not c.ok for c in self.checks)


def _first_diff(a: np.ndarray, b: np.ndarray) -> str:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    idx = np.flatnonzero(a.reshape(-1) != b.reshape(-1))
    i = int(idx[0])
    return f"{idx.size} differ, first at flat index {i}: {a.reshape(-1)[i]} vs {b.reshape(-1)[i]}"


def compare_run(cfg: AcceleratorConfig, prog: Program, expected: np.ndarray | None, model: RunResult,
                rtl: RunResult | None) -> list[str]:
    """Mismatches between reference, model result and RTL result (empty when all agree)."""
    problems: list[str] = []
    out = prog.outputs["out"]
    model_out = out.read(model.memory)
    if expected is not None and not np.array_equal(model_out, expected):
        problems.append(f"model output != numpy reference ({_first_diff(model_out, expected)})")
    if rtl is None:
        return problems
    if rtl.timed_out:
        problems.append("RTL did not halt within the timeout")
    if rtl.error:
        problems.append("RTL raised its illegal-instruction error")
    if rtl.mem_oob or rtl.outside_bytes:
        problems.append("RTL wrote outside the program's memory")
    if rtl.memory.shape != model.memory.shape or not np.array_equal(rtl.memory, model.memory):
        if rtl.memory.shape != model.memory.shape:
            problems.append(f"RTL memory size {rtl.memory.shape} != model {model.memory.shape}")
        else:
            rtl_out = out.read(rtl.memory)
            what = "output" if not np.array_equal(rtl_out, model_out) else "memory outside the output"
            problems.append(f"RTL {what} != model ({_first_diff(rtl.memory, model.memory)})")
    if rtl.cycles != model.cycles:
        problems.append(f"cycles: RTL {rtl.cycles} != model {model.cycles}")
    if rtl.busy_pe != model.busy_pe:
        problems.append(f"busy PE-cycles: RTL {rtl.busy_pe} != model {model.busy_pe}")
    return problems


def verify_programs(cfg: AcceleratorConfig, cases: Sequence[tuple[Program, np.ndarray | None]],
                    rtl: bool | Executor = True, echo: Callable[[str], None] | None = None) -> VerifyResult:
    """Run every program on the model and (in one batch) on the RTL, and compare.

    ``rtl``: True for cocotb on Verilator (:class:`hwgen.rtlsim.CocotbExecutor`), False for the model and
    the reference only, or the RTL :class:`hwgen.program.Executor` to use. Each program runs on a fresh
    model; the RTL's timeout is twice the model's cycles plus 1000.
    """
    from sim.cycle import CycleModel

    if not isinstance(rtl, bool) and rtl.cfg != cfg:
        raise ValueError(f"verify_programs: the {rtl.name} executor is built for config '{rtl.cfg.name}', "
                         f"not for '{cfg.name}' ({rtl.cfg.key()} != {cfg.key()})")
    models = [CycleModel(cfg).run(p.image()) for p, _ in cases]
    rtl_results: list[RunResult | None] = [None] * len(cases)
    executor = rtl if not isinstance(rtl, (bool, int)) else None
    if executor is None and rtl:
        from .rtlsim import CocotbExecutor

        executor = CocotbExecutor(cfg)
    if executor is not None:
        timeouts = [2 * m.cycles + 1000 for m in models]
        rtl_results = list(run_programs(executor, [p for p, _ in cases], timeout_cycles=timeouts))
    result = VerifyResult()
    for (prog, exp), mres, rres in zip(cases, models, rtl_results):
        name = prog.meta.get("name", f"program{len(result.checks)}")
        problems = compare_run(cfg, prog, exp, mres, rres)
        result.checks.append(ProgramCheck(name, problems, mres.cycles, None if rres is None else rres.cycles,
                                          mres.utilization(cfg)))
        if problems and echo:
            for p in problems:
                echo(f"MISMATCH {cfg.name} {name}: {p}")
    return result


def verify_config(cfg: AcceleratorConfig, n_programs: int, seed: int, rtl: bool | Executor = True,
                  echo: Callable[[str], None] | None = None) -> VerifyResult:
    """``n_programs`` random GEMM and convolution programs for ``cfg`` (see mappings.random_programs)."""
    from mappings.random_programs import random_programs

    from .limits import check_limit

    if n_programs < 1:
        raise ValueError(f"--programs must be at least 1, got {n_programs}")
    check_limit("programs", n_programs, "random programs to verify")  # all are built before the run
    return verify_programs(cfg, random_programs(cfg, n_programs, seed), rtl=rtl, echo=echo)
