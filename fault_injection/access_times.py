"""When an instruction reads and writes one lane of a memory word or one quantization register.

The cycle model executes whole instructions; to place a flip at a cycle among the accesses of the
instructions that touch the flipped bits, an injector needs, per instruction, the execute cycles
(relative to its first execute cycle, 0) at which it reads and writes that lane. They follow the
RTL's schedules, from the tables that define them: the compute phases of
:class:`hwgen.hw_facts.ComputeSchedule`, the load beats of :func:`sim.timing.load_beats` and the wide
store beats of :func:`hwgen.hw_facts.store_wide`. A flip applied in cycle t is seen by a read in
cycle t and later, and is overwritten by a write in cycle t or later (writes land at the clock edge
that ends their cycle).

:class:`Lane` names what one flipped lane is: ``("a_spad" | "w_spad" | "acc_buf", word, lane)``, a
quantization-table byte ``("qtable", column, byte)`` or a quantization register
``("quant", key, 0)`` (``key`` a :attr:`sim.cycle.CycleModel.quant` key).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.hw_facts import HOST_READ_LATENCY, compute_schedule, store_wide
from hwgen.isa import Instruction, LoadTarget, Opcode, load_word_bytes
from sim.timing import load_beats

__all__ = ["Lane", "Accesses", "accesses", "load_write_cycle", "store_issue_cycles", "LOAD_TARGETS",
           "CONFIG_WRITE_CYCLE", "STORE_READ_OFFSETS"]

#: a load's ``target`` field -> the structure it writes
LOAD_TARGETS = {LoadTarget.A: "a_spad", LoadTarget.W: "w_spad", LoadTarget.Q: "qtable", LoadTarget.W4: "w_spad"}
#: the execute cycle at which a config instruction's registers are written (they hold the new values
#: from its first execute cycle on: a flip before it is overwritten, one during it stays)
CONFIG_WRITE_CYCLE = -1
#: cycles after a store element's beat issue at which it reads each quantization input (the
#: accumulator word at the beat, its lane from the read port's register, the table and
#: multiplier/shift one cycle later, zero point and clamps two cycles later)
STORE_READ_OFFSETS = {"acc_buf": 0, "acc_buf.rd_data": 1, "qtable": 1, "multiplier": 1, "shift": 1, "zero_point": 2, "clamp_lo": 2,
                      "clamp_hi": 2}


class Lane(NamedTuple):
    structure: str
    word: int | str
    lane: int


class Accesses(NamedTuple):
    """Execute cycles (relative to the instruction's first) of its reads and writes of one lane."""

    reads: tuple[int, ...] = ()
    writes: tuple[int, ...] = ()


NONE = Accesses()


def load_write_cycle(cfg: AcceleratorConfig, a: dict, word: int, lane: int) -> int | None:
    """Exec cycle at which a load writes (word, lane) of its target, or None if it does not."""
    w = word - a["spad_addr"]
    l = lane - a["lane_off"]
    if not (0 <= w < a["count"] and 0 <= l < a["lanes"]):
        return None
    if a["zero"]:
        return w
    if a["lane_stride"] != 1:
        return w * a["lanes"] + l + HOST_READ_LATENCY
    pb = cfg.host_port_bytes
    packed = a["target"] == LoadTarget.W4   # lane l is in the word's byte l // 2
    beats = load_beats(pb, a["base"], w, a["word_stride"], load_word_bytes(a["target"], a["lanes"]))
    o = (a["base"] + w * a["word_stride"]) % pb
    return beats + (o + (l // 2 if packed else l)) // pb + HOST_READ_LATENCY


def store_issue_cycles(cfg: AcceleratorConfig, a: dict) -> np.ndarray:
    """Exec cycle at which a store issues each element (row-major): narrow, one element per cycle; wide
    (:func:`hwgen.hw_facts.store_wide`), element (r, c) goes in beat ``(o_r + c) // PB`` of row r
    (``o_r`` the row's start offset in its port word) after the beats of the rows before it."""
    rows, cols = a["rows"], a["cols"]
    if not store_wide(a["col_stride"]):
        return np.arange(rows * cols)
    pb = cfg.host_port_bytes
    o = (a["base"] + np.arange(rows, dtype=np.int64) * a["row_stride"]) % pb
    beats = (o + cols - 1) // pb + 1
    first = np.concatenate([[0], np.cumsum(beats)[:-1]])
    return (first[:, None] + (o[:, None] + np.arange(cols)[None, :]) // pb).reshape(-1)


def _compute(cfg: AcceleratorConfig, a: dict, x: Lane) -> Accesses:
    sched = compute_schedule(cfg.rows, cfg.cols, Dataflow.from_code(a["dataflow"]), cfg.shadow_weights)
    if x.structure == "a_spad":
        n = a["depth"] if sched.os else a["rows"]
        k = x.word - a["a_addr"]
        return Accesses(reads=(sched.stream_start + k,)) if 0 <= k < n and x.lane < cfg.rows else NONE
    if x.structure == "w_spad":
        k = x.word - a["w_addr"]
        if x.lane >= cfg.cols:
            return NONE
        if sched.os:
            return Accesses(reads=(sched.stream_start + k,)) if 0 <= k < a["depth"] else NONE
        return Accesses(reads=(sched.preload_last - k,)) if 0 <= k < min(a["depth"], cfg.rows) else NONE
    if x.structure == "acc_buf":
        row = x.word - a["o_addr"]
        if not (0 <= row < a["rows"] and x.lane < cfg.cols):
            return NONE
        t1 = sched.readout(a[sched.streamed_field])
        e = t1 + (cfg.rows - 1 - row if sched.os else row)  # the row's read; its write one cycle later
        return Accesses(reads=(e,) if a["accumulate"] else (), writes=(e + 1,))
    return NONE


def _store(cfg: AcceleratorConfig, a: dict, x: Lane) -> Accesses:
    if x.structure not in ("acc_buf", "qtable", "quant"):
        return NONE
    t = store_issue_cycles(cfg, a).reshape(a["rows"], a["cols"])
    if x.structure == "acc_buf":
        row = x.word - a["o_addr"]
        hit = 0 <= row < a["rows"] and x.lane < a["cols"]
        return Accesses(reads=(int(t[row, x.lane]),)) if hit else NONE
    if x.structure == "qtable":
        if not a["qtable"] or x.word >= a["cols"]:
            return NONE
        return Accesses(reads=tuple(int(v) + STORE_READ_OFFSETS["qtable"] for v in t[:, x.word]))
    if a["qtable"] and x.word in ("multiplier", "shift"):  # a quantization register
        return NONE
    off = STORE_READ_OFFSETS[x.word]
    return Accesses(reads=tuple(int(v) + off for v in t.reshape(-1)))


def accesses(cfg: AcceleratorConfig, ins: Instruction, x: Lane) -> Accesses:
    """The execute cycles at which ``ins`` reads and writes lane ``x`` (see the module docstring)."""
    a = ins.args
    if ins.op == Opcode.LOAD:
        if LOAD_TARGETS.get(a["target"]) != x.structure:
            return NONE
        wc = load_write_cycle(cfg, a, int(x.word), x.lane)
        return NONE if wc is None else Accesses(writes=(wc,))
    if ins.op == Opcode.COMPUTE:
        return _compute(cfg, a, x)
    if ins.op == Opcode.STORE:
        return _store(cfg, a, x)
    if ins.op == Opcode.CONFIG and x.structure == "quant":
        return Accesses(writes=(CONFIG_WRITE_CYCLE,))
    return NONE
