"""Cycle-accurate model of the accelerator.

Executes the Program bytes from a host-memory image exactly as the RTL
controller does (fetch from address 0, in order, until halt) and returns the
memory afterwards, the cycle count, the busy-PE count and each instruction's
start and end cycle, as a :class:`hwgen.program.RunResult` (the result type of
every executor; :class:`CycleModel` is the ``"model"`` :class:`hwgen.program.Executor`).
Data movement and arithmetic are vectorised with numpy at
tile granularity; timing comes from :mod:`sim.timing`, the closed forms of the
controller's phases, summed in order for the in-order controller and scheduled
by :mod:`sim.schedule` for the decoupled one. Arithmetic wraps at the
accumulator width like the RTL.

A program computes the same on both controllers (the decoupled one's
scoreboard keeps sequential semantics) with one exception the model refuses
for the decoupled controller: a store into the program's own instructions,
which a fetch that runs ahead of the stores would not see.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hwgen.config import AcceleratorConfig, Controller
from hwgen.isa import (INSTR_BYTES, QTABLE_BYTES, Instruction, IsaError, LoadTarget, Opcode, check_instruction, decode,
                       load_word_bytes, requantize)
from hwgen.program import RunResult, TraceEntry

from hwgen.footprint import host_writes

from .schedule import schedule
from .timing import instruction_cycles, macs
from hwgen.errors import HwgenError

__all__ = ["CycleModel", "RunResult", "TraceEntry", "ModelError", "wrap"]


class ModelError(HwgenError, RuntimeError):
    """The program did something the hardware cannot (bad address, no halt)."""


def wrap(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap of int64 values to ``bits`` bits."""
    half = np.int64(1) << np.int64(bits - 1)
    return ((x + half) & ((half << np.int64(1)) - np.int64(1))) - half


def _sign_extend_bytes(raw: np.ndarray, bits: int) -> np.ndarray:
    v = raw.astype(np.int64) & ((1 << bits) - 1)
    return np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)


class CycleModel:
    """The model of one configuration; state persists across ``run`` calls like the RTL's.

    An :class:`hwgen.program.Executor` named ``"model"``.
    """

    name = "model"

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        c = self.cfg
        self.a_spad = np.zeros((c.a_spad_depth, c.rows), dtype=np.int64)
        self.w_spad = np.zeros((c.w_spad_depth, c.cols), dtype=np.int64)
        self.acc_buf = np.zeros((c.acc_depth, c.cols), dtype=np.int64)
        self.quant = dict(multiplier=0, shift=0, zero_point=0, clamp_lo=0, clamp_hi=0)
        self.qtable = np.zeros((c.cols, QTABLE_BYTES), dtype=np.uint8)

    def copy(self) -> "CycleModel":
        """An independent model with the same state (fault injection forks the golden state)."""
        m = CycleModel.__new__(CycleModel)
        m.cfg = self.cfg
        m.a_spad, m.w_spad, m.acc_buf, m.qtable = (self.a_spad.copy(), self.w_spad.copy(), self.acc_buf.copy(),
                                                   self.qtable.copy())
        m.quant = dict(self.quant)
        return m

    # ------------------------------------------------------------------ run
    def run(self, image: np.ndarray, max_instructions: int = 10_000_000) -> RunResult:
        if self.cfg.controller is Controller.DECOUPLED:
            return self._run_decoupled(image, max_instructions)
        mem = np.array(image, dtype=np.uint8, copy=True)
        cycle = 0
        busy = 0
        pc = 0
        trace: list[TraceEntry] = []
        for _ in range(max_instructions):
            if pc + INSTR_BYTES > mem.size:
                raise ModelError(f"fetch at {pc} runs past the {mem.size}-byte memory (no halt)")
            word = int.from_bytes(mem[pc:pc + INSTR_BYTES].tobytes(), "little")
            where = f"instruction at address {pc}"
            ins = decode(word, where=where)
            check_instruction(ins, self.cfg, where=where)
            dur = instruction_cycles(self.cfg, ins)
            trace.append(TraceEntry(pc, ins, cycle, cycle + dur))
            cycle += dur
            busy += macs(self.cfg, ins)
            if ins.op == Opcode.HALT:
                return RunResult(mem, cycle, busy, instructions=len(trace), trace=trace, executor=self.name)
            self.execute(ins, mem, where)
            pc += INSTR_BYTES
        raise ModelError(f"no halt within {max_instructions} instructions")

    def _run_decoupled(self, image: np.ndarray, max_instructions: int) -> RunResult:
        """Sequential semantics, :func:`sim.schedule.schedule` timing. The program is decoded up to its
        halt from the image as loaded (the dispatcher may fetch any instruction before earlier stores run)."""
        mem = np.array(image, dtype=np.uint8, copy=True)
        program: list[Instruction] = []
        for n in range(max_instructions):
            pc = n * INSTR_BYTES
            if pc + INSTR_BYTES > mem.size:
                raise ModelError(f"fetch at {pc} runs past the {mem.size}-byte memory (no halt)")
            where = f"instruction at address {pc}"
            ins = decode(int.from_bytes(mem[pc:pc + INSTR_BYTES].tobytes(), "little"), where=where)
            check_instruction(ins, self.cfg, where=where)
            program.append(ins)
            if ins.op == Opcode.HALT:
                break
        else:
            raise ModelError(f"no halt within {max_instructions} instructions")
        code_end = len(program) * INSTR_BYTES
        for n, ins in enumerate(program[:-1]):
            where = f"instruction at address {n * INSTR_BYTES}"
            span = host_writes(self.cfg, ins)
            if span is not None and span[0] < code_end:
                raise ModelError(f"{where} (store): writes host bytes {span[0]}..{span[1] - 1}, inside the "
                                 f"program's own instructions (0..{code_end - 1}): the decoupled controller "
                                 f"fetches ahead of stores")
            self.execute(ins, mem, where)
        sched = schedule(self.cfg, program, queue_depth=self.cfg.queue_depth)
        trace = [TraceEntry(n * INSTR_BYTES, ins, s if s >= 0 else p, (e if s >= 0 else p) + 1)
                 for n, (ins, p, s, e) in enumerate(zip(program, sched.push, sched.start, sched.end))]
        busy = sum(macs(self.cfg, ins) for ins in program)
        return RunResult(mem, sched.cycles, busy, instructions=len(program), trace=trace, executor=self.name)

    def run_all(self, images: Sequence[np.ndarray], timeout_cycles: int | Sequence[int] | None = None
                ) -> list[RunResult]:
        """:meth:`run` on each image in order (state carries over, as on the RTL). ``timeout_cycles`` is
        accepted for the :class:`hwgen.program.Executor` protocol and ignored: the model has no clock to time
        out, a program without halt raises :class:`ModelError`."""
        return [self.run(im) for im in images]

    # ------------------------------------------------------------ semantics
    def _addresses(self, base: int, n0: int, s0: int, n1: int, s1: int, mem: np.ndarray, where: str) -> np.ndarray:
        addr = base + np.arange(n0, dtype=np.int64)[:, None] * s0 + np.arange(n1, dtype=np.int64)[None, :] * s1
        if addr.min() < 0 or addr.max() >= mem.size:
            raise ModelError(f"{where}: host address range {addr.min()}..{addr.max()} leaves the "
                             f"{mem.size}-byte memory")
        return addr

    def execute(self, ins: Instruction, mem: np.ndarray, where: str = "instruction") -> None:
        """Execute one decoded instruction on this model's state and ``mem`` (host memory, uint8, changed in
        place by stores), without fetch, checks or timing: what :meth:`run` does per instruction after
        decoding it (the fault injector replays and re-executes instructions with it). ``where`` names the
        instruction in error messages. Halt is not an instruction to execute here."""
        c = self.cfg
        a = ins.args
        if ins.op == Opcode.LOAD:
            spad = (self.a_spad, self.w_spad, self.qtable, self.w_spad)[a["target"]]
            width = (c.input_width, c.weight_width, 8, 4)[a["target"]]
            rows = slice(a["spad_addr"], a["spad_addr"] + a["count"])
            lanes = slice(a["lane_off"], a["lane_off"] + a["lanes"])
            if a["zero"]:
                raw = np.full((a["count"], a["lanes"]), a["base"] & 0xFF, dtype=np.uint8)
            else:
                addr = self._addresses(a["base"], a["count"], a["word_stride"],
                                       load_word_bytes(a["target"], a["lanes"]), a["lane_stride"], mem, where)
                raw = mem[addr]
                if a["target"] == LoadTarget.W4:  # lane l: nibble l of the word's bytes, low nibble first
                    raw = np.stack([raw & 0xF, raw >> 4], axis=-1).reshape(a["count"], -1)[:, :a["lanes"]]
            spad[rows, lanes] = raw if a["target"] == 2 else _sign_extend_bytes(raw, width)
        elif ins.op == Opcode.COMPUTE:
            if a["dataflow"] == 0:  # output-stationary: R x C tile, reduction over depth words
                A = self.a_spad[a["a_addr"]:a["a_addr"] + a["depth"], :]  # depth x R
                W = self.w_spad[a["w_addr"]:a["w_addr"] + a["depth"], :]  # depth x C
                out = (A.T @ W)[:a["rows"], :]
            else:  # weight-stationary: depth weight rows, rows streamed A words
                A = self.a_spad[a["a_addr"]:a["a_addr"] + a["rows"], :a["depth"]]  # rows x depth
                W = self.w_spad[a["w_addr"]:a["w_addr"] + a["depth"], :]  # depth x C
                out = A @ W
            dst = slice(a["o_addr"], a["o_addr"] + a["rows"])
            if a["accumulate"]:
                out = out + self.acc_buf[dst]
            self.acc_buf[dst] = wrap(out, c.acc_width)
        elif ins.op == Opcode.STORE:
            q = self.quant
            acc = self.acc_buf[a["o_addr"]:a["o_addr"] + a["rows"], :a["cols"]]
            mult, shift = q["multiplier"], q["shift"]
            if a["qtable"]:
                entries = self.qtable[:a["cols"]]
                bias = entries[:, 0:4].copy().view("<i4").reshape(-1).astype(np.int64)
                mult = entries[:, 4:8].copy().view("<i4").reshape(-1).astype(np.int64)
                shift = (entries[:, 8] & 63).astype(np.int64)
                acc = wrap(acc + bias, c.acc_width)
            x = requantize(acc, mult, shift, q["zero_point"], q["clamp_lo"], q["clamp_hi"], bool(a["relu"]))
            addr = self._addresses(a["base"], a["rows"], a["row_stride"], a["cols"], a["col_stride"], mem, where)
            mem[addr.reshape(-1)] = (x.reshape(-1) & 0xFF).astype(np.uint8)
        elif ins.op == Opcode.CONFIG:
            self.quant = {k: a[k] for k in self.quant}
        elif ins.op == Opcode.FENCE:
            pass
        else:  # pragma: no cover - decode only yields known opcodes
            raise IsaError(f"{where}: cannot execute {ins.op.name}")
