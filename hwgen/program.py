"""Program: instructions plus the host-memory image they run against, and what running an image gives.

The same bytes are loaded by the cocotb testbench into the harness memory and
by the cycle model into its memory array: instructions start at host address 0
(the controller fetches from there), data tensors follow, each aligned to the
host-port width.

Every executor of an image (the cycle model :class:`sim.cycle.CycleModel`, the
native Verilator harness :class:`hwgen.native.NativeExecutor`, cocotb on
Verilator :class:`hwgen.rtlsim.CocotbExecutor`, amaranth.sim
:class:`hwgen.pysim.PySimExecutor`) satisfies one protocol, :class:`Executor`,
and returns one result type, :class:`RunResult`. They live here, at the bottom
of the import graph, so that the model (``sim``) and the RTL executors (``hwgen``)
share them without importing each other.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .config import AcceleratorConfig, Controller
from .footprint import host_writes
from .fileio import atomic_write
from .isa import INSTR_BYTES, Instruction, IsaError, Opcode, assemble, check_instruction, disassemble
from .errors import HwgenError

__all__ = ["Region", "Program", "ProgramError", "HOST_BYTES_PER_INSTRUCTION", "RunResult", "TraceEntry", "Executor",
           "run_programs", "timeouts_for"]

#: Host bytes one instruction costs while a program is built and run: the lowering's ``Instruction`` (an
#: args dict), the cycle model's decoded copy and its trace entry. Measured about 1 KB per instruction at the
#: peak of a small CNN run (420-500 B while only building); twice that, so size estimates stay upper bounds.
HOST_BYTES_PER_INSTRUCTION = 2048


class ProgramError(HwgenError, ValueError):
    """A malformed program or program file; the message names the part."""


@dataclass(frozen=True)
class Region:
    """A tensor in host memory: row-major int8 (or uint8) of ``shape`` at byte ``addr``."""

    addr: int
    shape: tuple[int, ...]
    dtype: str = "int8"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def read(self, memory: np.ndarray) -> np.ndarray:
        raw = np.asarray(memory[self.addr:self.addr + self.nbytes], dtype=np.uint8)
        return raw.view(np.dtype(self.dtype)).reshape(self.shape).copy()


@dataclass
class Program:
    """Instructions, initial data, and the named output regions to check."""

    instructions: list[Instruction]
    inputs: dict[str, tuple[Region, np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, Region] = field(default_factory=dict)
    mem_size: int = 0
    #: Free-form description (workload parameters), kept for reports.
    meta: dict = field(default_factory=dict)

    @property
    def code(self) -> bytes:
        return assemble(self.instructions)

    def image(self) -> np.ndarray:
        """The initial host memory, uint8[mem_size]."""
        mem = np.zeros(self.mem_size, dtype=np.uint8)
        code = self.code
        if len(code) > self.mem_size:
            raise ProgramError(f"program of {len(code)} bytes does not fit a {self.mem_size}-byte memory")
        mem[:len(code)] = np.frombuffer(code, dtype=np.uint8)
        for name, (reg, arr) in self.inputs.items():
            data = np.ascontiguousarray(arr.astype(reg.dtype)).view(np.uint8).reshape(-1)
            if reg.addr < len(code) or reg.addr + data.size > self.mem_size:
                raise ProgramError(f"input '{name}' at {reg.addr}..{reg.addr + data.size} overlaps the code or "
                                   f"leaves the {self.mem_size}-byte memory")
            mem[reg.addr:reg.addr + data.size] = data
        return mem

    def check(self, cfg: AcceleratorConfig) -> None:
        """Raise IsaError/ProgramError if any instruction cannot run on ``cfg``."""
        if not self.instructions or self.instructions[-1].op != Opcode.HALT:
            raise ProgramError("program must end with halt")
        code_end = len(self.instructions) * INSTR_BYTES
        for n, ins in enumerate(self.instructions):
            check_instruction(ins, cfg, where=f"instruction {n}")
            span = host_writes(cfg, ins) if cfg.controller is Controller.DECOUPLED else None
            if span is not None and span[0] < code_end:
                raise ProgramError(f"instruction {n} ({ins.op.name.lower()}): writes host bytes {span[0]}.."
                                   f"{span[1] - 1}, inside the program's instructions (0..{code_end - 1}); the "
                                   f"decoupled controller fetches ahead of stores")
        if self.mem_size % cfg.host_port_bytes:
            raise ProgramError(f"mem_size {self.mem_size} is not a multiple of the {cfg.host_port_bytes}-byte port")

    # ------------------------------------------------------------ file format
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write an .npz (code bytes, inputs, output regions); atomic."""
        arrays: dict[str, np.ndarray] = {"code": np.frombuffer(self.code, dtype=np.uint8)}
        desc = {"mem_size": self.mem_size, "meta": self.meta, "inputs": {}, "outputs": {}}
        for name, (reg, arr) in self.inputs.items():
            arrays[f"in_{name}"] = np.asarray(arr)
            desc["inputs"][name] = {"addr": reg.addr, "shape": list(reg.shape), "dtype": reg.dtype}
        for name, reg in self.outputs.items():
            desc["outputs"][name] = {"addr": reg.addr, "shape": list(reg.shape), "dtype": reg.dtype}
        arrays["desc"] = np.frombuffer(json.dumps(desc).encode(), dtype=np.uint8)
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Program":
        p = Path(path)
        try:
            with open(p, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ProgramError(f"{p}: cannot read ({e.strerror})") from None
        if magic != b"PK\x03\x04":
            raise ProgramError(f"{p}: not a hwgen program file (not an .npz archive)")
        try:
            with np.load(p, allow_pickle=False) as z:
                code = bytes(z["code"].astype(np.uint8))
                desc = json.loads(bytes(z["desc"].astype(np.uint8)).decode())
                if not isinstance(desc, dict):
                    raise TypeError(f"description is a {type(desc).__name__}, not an object")
                inputs = {name: (Region(int(d["addr"]), tuple(int(x) for x in d["shape"]), str(d["dtype"])),
                                 z[f"in_{name}"])
                          for name, d in desc["inputs"].items()}
            outputs = {name: Region(int(d["addr"]), tuple(int(x) for x in d["shape"]), str(d["dtype"]))
                       for name, d in desc["outputs"].items()}
            mem_size = int(desc["mem_size"])
            meta = desc.get("meta", {})
            instrs = disassemble(code)
        except IsaError as e:
            raise ProgramError(f"{p}: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as e:
            raise ProgramError(f"{p}: not a hwgen program file ({type(e).__name__}: {e})") from None
        return cls(instrs, inputs, outputs, mem_size, meta)


# ------------------------------------------------------------ executors
@dataclass(frozen=True)
class TraceEntry:
    """One executed instruction: its address, the decoded instruction, its start and end cycle."""

    pc: int
    instruction: Instruction
    start: int
    end: int  # exclusive


@dataclass
class RunResult:
    """What an executor did with one host-memory image (the one result type of every executor).

    ``memory`` is the host memory after the run: the image's size for the cycle
    model and amaranth.sim, the whole (power-of-two) harness memory for the
    Verilator executors' raw images, and ``program.mem_size`` bytes after
    :func:`run_programs`. ``cycles`` and ``busy_pe`` are the hardware counters
    (the model's equal them by construction). A flag that an executor cannot
    raise stays False (the model raises :class:`sim.cycle.ModelError` or
    :class:`hwgen.isa.IsaError` instead of setting ``error``).
    """

    memory: np.ndarray
    cycles: int
    busy_pe: int
    #: The design raised its illegal-instruction error.
    error: bool = False
    #: No done/error within the timeout (memory and counters are a snapshot).
    timed_out: bool = False
    #: The design accessed a word outside the harness memory (sticky since reset).
    mem_oob: bool = False
    #: Non-zero bytes past ``program.mem_size`` (set by :func:`run_programs`): writes outside the program's memory.
    outside_bytes: int = 0
    #: Instructions executed, halt included, where the executor knows it (the cycle model), else None.
    instructions: int | None = None
    #: Each instruction's start and end cycle (the cycle model), else None.
    trace: list[TraceEntry] | None = None
    #: Clock edges from the start edge to done as the simulation harness counted them (Verilator executors:
    #: a cross-check of ``cycles``), else None.
    clock_cycles: int | None = None
    #: Wall seconds of the run phase (start to done), without the image load and read-back; 0 if not measured.
    run_seconds: float = 0.0
    #: Wall seconds of the whole simulator process of the batch this result came from (shared by its results).
    process_seconds: float = 0.0
    #: The executor's :attr:`Executor.name`.
    executor: str = ""
    #: Executor-specific measurements (cocotb: words_loaded, load_seconds, readback_seconds).
    stats: dict[str, float] = field(default_factory=dict)
    #: The safety mechanisms' status counters at the end (``hwgen.safety.STATUS_COUNTERS``: corrected,
    #: detected) where the design has them and the executor reads them, else None.
    safety_counters: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        """The run ended by halt, with no error flag and no access outside the program's memory."""
        return not (self.error or self.timed_out or self.mem_oob or self.outside_bytes)

    def utilization(self, cfg: AcceleratorConfig) -> float:
        return self.busy_pe / (self.cycles * cfg.pes) if self.cycles else 0.0

    @property
    def cycles_per_second(self) -> float:
        """Simulation speed of this run: clock cycles per wall second of the run phase (0 if not measured)."""
        n = self.clock_cycles if self.clock_cycles is not None else self.cycles
        return n / self.run_seconds if self.run_seconds > 0 else 0.0


@runtime_checkable
class Executor(Protocol):
    """Runs host-memory images (the program at address 0) of one configuration.

    Each image starts from reset (program counter, counters, controller). What
    scratchpads hold from an earlier image is not part of the contract: the cycle
    model keeps it across calls, the Verilator executors within one ``run_all``
    batch, amaranth.sim never; programs load what they read (every program the
    mapper, the random generator and the workloads emit does). ``run_all`` runs a batch in
    order (the Verilator executors in one simulator process); ``timeout_cycles``
    (one for all, or one per image; default: the executor's) bounds the RTL
    executors, a run past it has ``timed_out`` set; the cycle model has no clock
    to time out and ignores it (a program without halt raises ModelError).
    """

    #: "model", "native", "cocotb" or "pysim".
    name: str
    cfg: AcceleratorConfig

    def run(self, image: np.ndarray) -> RunResult: ...

    def run_all(self, images: Sequence[np.ndarray],
                timeout_cycles: int | Sequence[int] | None = None) -> list[RunResult]: ...


def timeouts_for(n: int, timeout_cycles: int | Sequence[int] | None, default: int) -> list[int]:
    """``timeout_cycles`` as one timeout per image (``default`` when None); ValueError on a length mismatch."""
    if timeout_cycles is None:
        return [default] * n
    if isinstance(timeout_cycles, (int, np.integer)):
        return [int(timeout_cycles)] * n
    out = [int(t) for t in timeout_cycles]
    if len(out) != n:
        raise ValueError(f"{len(out)} timeouts for {n} images")
    return out


def run_programs(executor: Executor, programs: Sequence[Program],
                 timeout_cycles: int | Sequence[int] | None = None) -> list[RunResult]:
    """Run Programs on ``executor`` (one batch); each result's memory is cut back to the program's ``mem_size``
    (the shape the cycle model gives), with ``outside_bytes`` counting the non-zero bytes the run left past it."""
    results = executor.run_all([p.image() for p in programs], timeout_cycles=timeout_cycles)
    for prog, res in zip(programs, results):
        if res.memory.size != prog.mem_size:
            res.outside_bytes = int(np.count_nonzero(res.memory[prog.mem_size:]))
            res.memory = res.memory[:prog.mem_size].copy()
    return results
