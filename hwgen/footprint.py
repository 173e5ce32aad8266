"""What each instruction reads and writes: its footprint, the facts the decoupled controller's
scoreboard compares (docs/ARCHITECTURE.md, "Generation 2").

Ranges of the accelerator's structures (scratchpad words, quantization-table entries, accumulator
rows) and the bounding interval of the host bytes a strided pattern touches. Two instructions
conflict when they touch one structure in overlapping ranges and one of them writes there; the
decoupled timing (``sim.schedule``) and ``Program.check`` read this, and the RTL dispatcher computes
the same ranges. Pure Python, part of the foundation (it states ISA semantics, hwgen/isa.py).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .config import AcceleratorConfig
from .dataflow import Dataflow
from .isa import Instruction, LoadTarget, Opcode, load_word_bytes

__all__ = ["Structure", "Access", "footprint", "conflict", "host_writes", "span", "load_span"]


class Structure(enum.Enum):
    """What an instruction's footprint ranges are ranges of."""

    # members are singletons compared by identity: the C-level identity hash serves, where Enum's
    # Python-level __hash__ (of the name) was a tenth of the decoupled schedule's time
    __hash__ = object.__hash__

    A = "a"          #: A scratchpad words
    W = "w"          #: W scratchpad words
    Q = "q"          #: quantization-table entries
    ACC = "acc"      #: accumulator-buffer rows
    HOST = "host"    #: host-memory bytes


#: The structure each load target writes.
_LOADED = {LoadTarget.A: Structure.A, LoadTarget.W: Structure.W, LoadTarget.Q: Structure.Q,
           LoadTarget.W4: Structure.W}


@dataclass(frozen=True)
class Access:
    """One range of one structure an instruction reads or writes: ``[lo, hi)`` in words (bytes for host)."""

    structure: Structure
    lo: int
    hi: int
    write: bool


def span(base: int, terms: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """Bounding byte interval ``[lo, hi)`` of ``base + sum(i_k * stride_k)`` for ``0 <= i_k < n_k``."""
    lo = hi = base
    for n, stride in terms:
        reach = (n - 1) * stride
        lo += min(0, reach)
        hi += max(0, reach)
    return lo, hi + 1


def load_span(target: int, base: int, count: int, word_stride: int, lanes: int, lane_stride: int) -> tuple[int, int]:
    """The host bytes ``[lo, hi)`` a (non-zero) load reads: its words' bytes (:func:`hwgen.isa.load_word_bytes`)."""
    return span(base, ((count, word_stride), (load_word_bytes(target, lanes), lane_stride)))


def footprint(cfg: AcceleratorConfig, ins: Instruction) -> tuple[Access, ...]:
    """What ``ins`` reads and writes, as ranges of the accelerator's structures and of host memory."""
    a = ins.args
    if ins.op == Opcode.LOAD:
        out = [Access(_LOADED[LoadTarget(a["target"])], a["spad_addr"], a["spad_addr"] + a["count"], True)]
        if not a["zero"]:
            lo, hi = load_span(a["target"], a["base"], a["count"], a["word_stride"], a["lanes"], a["lane_stride"])
            out.append(Access(Structure.HOST, lo, hi, False))
        return tuple(out)
    if ins.op == Opcode.COMPUTE:
        # os streams `depth` A and W words; ws preloads `depth` weight rows and streams `rows` A words
        a_words = a["depth"] if Dataflow.from_code(a["dataflow"]) is Dataflow.OS else a["rows"]
        return (Access(Structure.A, a["a_addr"], a["a_addr"] + a_words, False),
                Access(Structure.W, a["w_addr"], a["w_addr"] + a["depth"], False),
                Access(Structure.ACC, a["o_addr"], a["o_addr"] + a["rows"], True))
    if ins.op == Opcode.STORE:
        lo, hi = span(a["base"], ((a["rows"], a["row_stride"]), (a["cols"], a["col_stride"])))
        out = [Access(Structure.ACC, a["o_addr"], a["o_addr"] + a["rows"], False),
               Access(Structure.HOST, lo, hi, True)]
        if a["qtable"]:
            out.append(Access(Structure.Q, 0, a["cols"], False))
        return tuple(out)
    return ()


def conflict(x: Sequence[Access], y: Sequence[Access]) -> bool:
    """True if the two footprints touch one structure in overlapping ranges and one of them writes there."""
    return any(p.structure == q.structure and (p.write or q.write) and p.lo < q.hi and q.lo < p.hi
               for p in x for q in y)


def host_writes(cfg: AcceleratorConfig, ins: Instruction) -> tuple[int, int] | None:
    """The bounding host byte interval ``[lo, hi)`` that ``ins`` writes, or None."""
    for acc in footprint(cfg, ins):
        if acc.structure is Structure.HOST and acc.write:
            return acc.lo, acc.hi
    return None
