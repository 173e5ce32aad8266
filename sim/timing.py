"""Cycle cost of each instruction, exactly as the RTL controller sequences it.

The controller is in-order and never stalls on data, so every instruction's
duration is a closed form of the configuration and its fields. The RTL
(hwgen/units: the controller and the load, compute and store units)
implements these phases; tests/test_rtl_timing.py and the cocotb regression
check the sum against the hardware cycle counter.

Phases of one instruction:

* fetch: ``fetch_beats`` reads of the host port plus one cycle for the last beat's
  data (the read latency is one cycle);
* decode: one cycle (halt, fence and config end here);
* execute:

  - load: a gather of ``count`` words of ``lanes`` elements, plus one cycle of
    read latency. With ``lane_stride == 1`` (a word's elements are contiguous
    in host memory) the load unit reads whole port words: word w costs the
    number of port beats its bytes span, ``((base + w*word_stride) % PB +
    lanes - 1) // PB + 1`` (PB = port bytes), all lanes of a beat written in
    one cycle. Otherwise one element per cycle: ``count * lanes``. With
    ``zero``: ``count`` (one word per cycle, no latency);
  - compute, output-stationary: ``depth + 2*R + C + 1``: one clear cycle, one
    scratchpad read-latency cycle, ``depth`` words streamed, ``R + C - 2``
    cycles of skew until PE(R-1, C-1) has its last product, R cycles shifting
    the accumulators out of the bottom row, one accumulator-buffer write cycle;
  - compute, weight-stationary: ``rows + 2*R + C + 3``: clear, R+1 cycles of
    weight preload, one read-latency cycle, ``rows`` words streamed, R + C - 1
    cycles through the array and the de-skew registers, one write cycle; with
    shadow weights (the decoupled controller's array) ``rows + 2*R + C + 1``:
    no clear, and the stream starts as the preload's last row shifts in (the
    overlap with the next compute is :mod:`sim.schedule`'s);
  - store: ``beats + 3``: one beat per cycle through a three-stage requantization
    pipeline. With ``col_stride == 1`` (a row's bytes contiguous in host memory) a beat is the
    bytes of one row inside one port word, requantized by parallel lanes: row r costs
    ``((base + r*row_stride) % PB + cols - 1) // PB + 1`` beats, the same count as a
    contiguous-lane load of those rows (:func:`hwgen.hw_facts.store_beats`, the closed form the
    RTL latches at decode). Otherwise one element per beat: ``rows * cols``.

The constants and closed forms live in :mod:`hwgen.hw_facts` (the schedule table the RTL is built
from); this module sums them per instruction.
"""

from __future__ import annotations

import math

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.hw_facts import (DECODE_CYCLES, FETCH_LATENCY, LOAD_LATENCY, STORE_PIPELINE, compute_schedule,
                            load_last, store_issues, store_last)
from hwgen.isa import Instruction, Opcode, load_word_bytes

__all__ = ["fetch_cycles", "exec_cycles", "instruction_cycles", "macs", "load_beats", "compute_overhead",
           "DECODE_CYCLES", "LOAD_LATENCY", "STORE_LATENCY"]

#: Cycles a store adds to its beats (the requantization pipeline's depth).
STORE_LATENCY = STORE_PIPELINE


def fetch_cycles(cfg: AcceleratorConfig) -> int:
    return cfg.fetch_beats + FETCH_LATENCY


def compute_overhead(cfg: AcceleratorConfig, dataflow: Dataflow | str) -> int:
    """A compute's execute cycles beyond the words it streams (``depth`` for os, ``rows`` for ws).
    ``dataflow``: a :class:`Dataflow` (OS or WS; its string value works too)."""
    return compute_schedule(cfg.rows, cfg.cols, Dataflow(dataflow), cfg.shadow_weights).overhead


def load_beats(port_bytes: int, base: int, count: int, word_stride: int, lanes: int) -> int:
    """Port beats of a contiguous-lane (lane_stride == 1) load: the sum over its words of the
    port words each word's ``lanes`` bytes touch. Exact for any alignment; the word offsets
    modulo the port width repeat with a period of at most ``port_bytes`` words."""
    pb = port_bytes
    if lanes < 1 or count < 1:
        return 0
    period = pb // math.gcd(word_stride % pb, pb) if word_stride % pb else 1
    def beats(w: int) -> int:
        return ((base + w * word_stride) % pb + lanes - 1) // pb + 1
    per = [beats(w) for w in range(min(period, count))]
    full, rest = divmod(count, len(per))
    return full * sum(per) + sum(per[:rest])


def exec_cycles(cfg: AcceleratorConfig, ins: Instruction) -> int:
    """Cycles after decode that ``ins`` keeps the controller busy."""
    a = ins.args
    if ins.op == Opcode.LOAD:
        if a["zero"]:
            return load_last(a["count"]) + 1
        if a["lane_stride"] == 1:
            return load_beats(cfg.host_port_bytes, a["base"], a["count"], a["word_stride"],
                              load_word_bytes(a["target"], a["lanes"])) + LOAD_LATENCY
        return a["count"] * a["lanes"] + LOAD_LATENCY
    if ins.op == Opcode.COMPUTE:
        sched = compute_schedule(cfg.rows, cfg.cols, Dataflow.from_code(a["dataflow"]), cfg.shadow_weights)
        return sched.exec_cycles(a[sched.streamed_field])
    if ins.op == Opcode.STORE:
        return store_last(store_issues(cfg.host_port_bytes, a["base"], a["rows"], a["row_stride"], a["cols"],
                                       a["col_stride"])) + 1
    return 0


def instruction_cycles(cfg: AcceleratorConfig, ins: Instruction) -> int:
    """Total cycles of one instruction, fetch to the last cycle of its execution."""
    return fetch_cycles(cfg) + DECODE_CYCLES + exec_cycles(cfg, ins)


def macs(cfg: AcceleratorConfig, ins: Instruction) -> int:
    """Busy PE-cycles the hardware counter adds for ``ins``: each streamed word
    keeps (valid rows x cols) PEs busy (os: ``rows`` output rows; ws: ``depth``
    weight rows)."""
    if ins.op != Opcode.COMPUTE:
        return 0
    a = ins.args
    sched = compute_schedule(cfg.rows, cfg.cols, Dataflow.from_code(a["dataflow"]))
    return a[sched.streamed_field] * a[sched.busy_field] * cfg.cols
