"""Cycle cost of each instruction, exactly as the RTL controller sequences it.

The controller is in-order and never stalls on data, so every instruction's
duration is a closed form of the configuration and its fields. The RTL
(hwgen/top.py) implements these phases; tests/test_rtl_timing.py and the cocotb
regression check the sum against the hardware cycle counter.

Phases of one instruction:

* fetch: ``fetch_beats`` reads of the host port plus one cycle for the last beat's
  data (the read latency is one cycle);
* decode: one cycle (halt, fence and config end here);
* execute:

  - load: ``count * lanes + 1`` (one element per cycle, one cycle of read
    latency); with ``zero``: ``count`` (one word per cycle);
  - compute, output-stationary: ``depth + 2*R + C + 1``: one clear cycle, one
    scratchpad read-latency cycle, ``depth`` words streamed, ``R + C - 2``
    cycles of skew until PE(R-1, C-1) has its last product, R cycles shifting
    the accumulators out of the bottom row, one accumulator-buffer write cycle;
  - compute, weight-stationary: ``rows + 2*R + C + 3``: clear, R+1 cycles of
    weight preload, one read-latency cycle, ``rows`` words streamed, R + C - 1
    cycles through the array and the de-skew registers, one write cycle;
  - store: ``rows * cols + 3`` (one element per cycle through a three-stage
    requantization pipeline).
"""

from __future__ import annotations

from hwgen.config import AcceleratorConfig
from hwgen.isa import Instruction, Opcode

__all__ = ["fetch_cycles", "exec_cycles", "instruction_cycles", "macs"]

DECODE_CYCLES = 1
LOAD_LATENCY = 1
STORE_LATENCY = 3


def fetch_cycles(cfg: AcceleratorConfig) -> int:
    return cfg.fetch_beats + 1


def exec_cycles(cfg: AcceleratorConfig, ins: Instruction) -> int:
    """Cycles after decode that ``ins`` keeps the controller busy."""
    R, C = cfg.rows, cfg.cols
    a = ins.args
    if ins.op == Opcode.LOAD:
        return a["count"] if a["zero"] else a["count"] * a["lanes"] + LOAD_LATENCY
    if ins.op == Opcode.COMPUTE:
        if a["dataflow"] == 0:
            return a["depth"] + 2 * R + C + 1
        return a["rows"] + 2 * R + C + 3
    if ins.op == Opcode.STORE:
        return a["rows"] * a["cols"] + STORE_LATENCY
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
    if a["dataflow"] == 0:
        return a["depth"] * a["rows"] * cfg.cols
    return a["rows"] * a["depth"] * cfg.cols
