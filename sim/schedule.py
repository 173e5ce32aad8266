"""Generation-2 timing: load, compute and store units in parallel, ordered by a scoreboard.

This is the specification the decoupled controller (``controller = "decoupled"``) is built to
(docs/ARCHITECTURE.md, "Generation 2: the plan, and why"): pure Python, one pass over the
instructions, exact by construction once the RTL follows the same rules. The cycle model and the
mapper's cost of decoupled programs use it.

Rules (cycle numbers count from the first fetch cycle, 0):

* **Dispatch** is sequential: fetch ``F = fetch_cycles(cfg)`` cycles, decode one cycle, then push the
  instruction into its unit's queue (``queue_depth`` entries) in the next cycle, or later while the
  queue is full; the next fetch starts the cycle after the push. A slot freed by a unit's pop in cycle
  t takes a push from cycle t + 1.
* **Units.** load runs ``load``; compute runs ``compute``; store runs ``store`` and ``config`` (so a
  config changes the requantizer only for the stores after it). A unit executes its queue in order,
  one instruction at a time: start ``s = max(push + 1, previous end in the unit + 1, end of each
  dependency + 1)``, end ``e = s + duration - 1`` with the duration of :func:`sim.timing.exec_cycles`
  (at least one cycle).
* **Dependencies** (sequential semantics kept by hardware, no tokens in the ISA): when instruction i
  is decoded, the dispatcher compares its :func:`footprint` with every instruction still in flight in
  the *other* units (queued or executing); i waits for each one that conflicts (both touch the same
  structure in overlapping ranges and one of them writes). In-flight instructions of one unit finish
  in order, so only the youngest conflicting one per unit matters; a completed one no longer binds,
  so comparing against all older instructions gives the same times (this module does that, on the
  window of instructions that can still be in flight).
* **Overlapping computes** (``cfg.shadow_weights``: the PEs' shadow weight registers, see
  :class:`hwgen.hw_facts.ComputeSchedule`): a weight-stationary compute that follows a
  weight-stationary compute may start ``issue_interval(n)`` cycles after that one's start instead of
  after its end. Ends stay in order, so the dependency rules are unchanged; at most ``SHADOW_TAILS``
  earlier computes are still draining when one starts (the hardware's tail entries; checked here).
* **fence** is pushed once every unit has finished everything before it; **halt** likewise, and the
  run's cycle count is the halt's push cycle + 1.

Host ranges are the bounding interval of an instruction's strided pattern, so two accesses that
interleave without touching the same byte still count as a conflict: it costs time, never results.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.footprint import Access, Structure, conflict, footprint
from hwgen.hw_facts import SHADOW_TAILS, compute_schedule
from hwgen.isa import Instruction, Opcode

from .timing import DECODE_CYCLES, exec_cycles, fetch_cycles

__all__ = ["Unit", "Structure", "Access", "footprint", "conflict", "Schedule", "schedule", "UNIT_OF", "DEFAULT_QUEUE_DEPTH"]

#: Entries of each unit's instruction queue.
DEFAULT_QUEUE_DEPTH = 4


class Unit(enum.Enum):
    LOAD = "load"
    COMPUTE = "compute"
    STORE = "store"


#: The unit that executes each opcode; opcodes not listed (halt, fence) are the dispatcher's.
UNIT_OF: dict[Opcode, Unit] = {Opcode.LOAD: Unit.LOAD, Opcode.COMPUTE: Unit.COMPUTE,
                               Opcode.STORE: Unit.STORE, Opcode.CONFIG: Unit.STORE}

@dataclass(frozen=True)
class Schedule:
    """When each instruction was pushed, started and ended (-1 for the dispatcher's own halt/fence)."""

    push: tuple[int, ...]
    start: tuple[int, ...]
    end: tuple[int, ...]
    cycles: int

    def busy(self, units: Sequence[Unit | None]) -> dict[Unit, int]:
        """Cycles each unit spent executing (``units[i]`` is instruction i's unit)."""
        out = {u: 0 for u in Unit}
        for u, s, e in zip(units, self.start, self.end):
            if u is not None:
                out[u] += e - s + 1
        return out


def schedule(cfg: AcceleratorConfig, program: Sequence[Instruction], *,
             queue_depth: int = DEFAULT_QUEUE_DEPTH) -> Schedule:
    """The generation-2 timing of ``program`` (which ends with halt) on ``cfg``; see the module docstring."""
    if queue_depth < 1:
        raise ValueError(f"queue_depth must be at least 1, got {queue_depth}")
    F = fetch_cycles(cfg) + DECODE_CYCLES
    push, start, end = [], [], []
    # per unit: (end, footprint) of its instructions that may still be in flight, newest last, and the
    # start cycles of its last queue_depth instructions (the pops that free queue slots)
    window: dict[Unit, deque] = {u: deque() for u in Unit}
    pops: dict[Unit, deque] = {u: deque(maxlen=queue_depth) for u in Unit}
    last_end = {u: -1 for u in Unit}
    # overlapping computes: the earliest start of a following overlapping compute, and the ends of the
    # last SHADOW_TAILS + 1 computes
    overlap_free: int | None = None
    compute_ends: deque = deque(maxlen=SHADOW_TAILS + 1)
    shadow = cfg.shadow_weights
    t = 0                      # the dispatcher's next fetch cycle
    all_done = -1              # the latest end of any unit instruction so far
    for ins in program:
        decoded = t + F        # cycle after decode
        unit = UNIT_OF.get(ins.op)
        if unit is None:       # halt or fence: wait for every unit, then "push" (retire) it
            p = max(decoded, all_done + 1)
            push.append(p)
            start.append(-1)
            end.append(-1)
            t = p + 1
            if ins.op == Opcode.HALT:
                return Schedule(tuple(push), tuple(start), tuple(end), p + 1)
            continue
        q = pops[unit]
        p = decoded if len(q) < queue_depth else max(decoded, q[0] + 1)
        fp = footprint(cfg, ins)
        s = max(p + 1, last_end[unit] + 1)
        if unit is Unit.COMPUTE and shadow:
            cs = compute_schedule(cfg.rows, cfg.cols, Dataflow.from_code(ins.args["dataflow"]), True)
            if cs.overlaps and overlap_free is not None:
                s = max(p + 1, overlap_free)
        for other, win in window.items():
            if other is unit:
                continue
            while win and win[0][0] < p:  # finished before the push: cannot bind any later instruction
                win.popleft()
            for e_other, fp_other in reversed(win):
                if e_other + 1 <= s:
                    break  # older ones of that unit end earlier still
                if conflict(fp, fp_other):
                    s = e_other + 1
                    break
        e = s + max(1, exec_cycles(cfg, ins)) - 1
        if unit is Unit.COMPUTE and shadow and len(compute_ends) > SHADOW_TAILS:
            assert compute_ends[0] < s, "more draining computes than the dispatcher has tails"
        push.append(p)
        start.append(s)
        end.append(e)
        q.append(s)
        window[unit].append((e, fp))
        last_end[unit] = e
        if unit is Unit.COMPUTE and shadow:
            compute_ends.append(e)
            overlap_free = s + cs.issue_interval(ins.args[cs.streamed_field]) if cs.overlaps else None
        all_done = max(all_done, e)
        t = p + 1
    raise ValueError("program has no halt")
