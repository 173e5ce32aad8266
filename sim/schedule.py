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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from hwgen.footprint import Access, Structure, conflict, footprint
from hwgen.hw_facts import SHADOW_TAILS, compute_schedule
from hwgen.isa import Instruction, Opcode

from .timing import DECODE_CYCLES, exec_cycles, fetch_cycles

__all__ = ["Unit", "Structure", "Access", "footprint", "conflict", "Schedule", "schedule", "Record", "record",
           "periodic_cycles", "start_cycle", "UNIT_OF", "DEFAULT_QUEUE_DEPTH"]

#: Entries of each unit's instruction queue.
DEFAULT_QUEUE_DEPTH = 4


class Unit(enum.Enum):
    LOAD = "load"
    COMPUTE = "compute"
    STORE = "store"

    # members are singletons compared by identity: the C-level identity hash serves, where Enum's
    # Python-level __hash__ (of the name) was a tenth of the decoupled schedule's time
    __hash__ = object.__hash__


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


class Record(NamedTuple):
    """What the timing needs of one instruction: its opcode, unit (None for halt and fence), execute
    cycles (at least 1), footprint, and (an overlapping compute) the cycles from its start to the
    earliest start of the next overlapping one, else None."""

    op: Opcode
    unit: Unit | None
    duration: int
    footprint: tuple
    interval: int | None


def record(cfg: AcceleratorConfig, ins: Instruction, fp: tuple | None = None) -> Record:
    """The :class:`Record` of ``ins`` on ``cfg`` (``fp``: its footprint, if already known)."""
    unit = UNIT_OF.get(ins.op)
    if unit is None:
        return Record(ins.op, None, 0, (), None)
    interval = None
    if unit is Unit.COMPUTE and cfg.shadow_weights:
        cs = compute_schedule(cfg.rows, cfg.cols, Dataflow.from_code(ins.args["dataflow"]), True)
        if cs.overlaps:
            interval = cs.issue_interval(ins.args[cs.streamed_field])
    return Record(ins.op, unit, max(1, exec_cycles(cfg, ins)), footprint(cfg, ins) if fp is None else fp, interval)


class _Machine:
    """The dispatcher and units of the module docstring, advanced one instruction at a time.

    State: the dispatcher's next fetch cycle ``t``; per unit its last end, the start cycles of its last
    ``queue_depth`` instructions (the pops that free queue slots) and the (end, footprint) of its
    instructions that may still be in flight; the latest end of any; overlapping computes: the
    earliest start of the next one and the ends of the last ``SHADOW_TAILS + 1``.

    ``shared_footprints``: every footprint stepped stays alive for the machine's life (the caller holds its
    records), so conflicts are memoised by the two footprints' identities; a timed stream compares the
    same few footprints millions of times."""

    def __init__(self, cfg: AcceleratorConfig, queue_depth: int, shared_footprints: bool = False):
        if queue_depth < 1:
            raise ValueError(f"queue_depth must be at least 1, got {queue_depth}")
        self.F = fetch_cycles(cfg) + DECODE_CYCLES
        self.queue_depth = queue_depth
        self.window: dict[Unit, deque] = {u: deque() for u in Unit}
        self.pops: dict[Unit, deque] = {u: deque(maxlen=queue_depth) for u in Unit}
        self.last_end = {u: -1 for u in Unit}
        self.overlap_free: int | None = None
        self.compute_ends: deque = deque(maxlen=SHADOW_TAILS + 1)
        self.t = 0
        self.all_done = -1
        self.cycles: int | None = None   # set by halt
        self._conflicts: dict[tuple[int, int], bool] | None = {} if shared_footprints else None

    def step(self, r: Record) -> tuple[int, int, int]:
        """Dispatch and time one instruction: (push, start, end), start and end -1 for halt and fence."""
        decoded = self.t + self.F          # cycle after decode
        unit = r.unit
        if unit is None:                   # halt or fence: wait for every unit, then "push" (retire) it
            p = max(decoded, self.all_done + 1)
            self.t = p + 1
            if r.op == Opcode.HALT:
                self.cycles = p + 1
            return p, -1, -1
        q = self.pops[unit]
        p = decoded if len(q) < self.queue_depth else max(decoded, q[0] + 1)
        fp = r.footprint
        s = max(p + 1, self.last_end[unit] + 1)
        compute = unit is Unit.COMPUTE
        if compute and r.interval is not None and self.overlap_free is not None:
            s = max(p + 1, self.overlap_free)
        memo = self._conflicts
        for other, win in self.window.items():
            if other is unit:
                continue
            while win and win[0][0] < p:  # finished before the push: cannot bind any later instruction
                win.popleft()
            for e_other, fp_other in reversed(win):
                if e_other + 1 <= s:
                    break  # older ones of that unit end earlier still
                if memo is None:
                    hit = conflict(fp, fp_other)
                else:
                    pair = (id(fp), id(fp_other))
                    hit = memo.get(pair)
                    if hit is None:
                        hit = memo[pair] = conflict(fp, fp_other)
                if hit:
                    s = e_other + 1
                    break
        e = s + r.duration - 1
        q.append(s)
        self.window[unit].append((e, fp))
        self.last_end[unit] = e
        if compute:
            ends = self.compute_ends
            assert len(ends) <= SHADOW_TAILS or ends[0] < s, "more draining computes than the dispatcher has tails"
            ends.append(e)
            self.overlap_free = None if r.interval is None else s + r.interval
        if e > self.all_done:
            self.all_done = e
        self.t = p + 1
        return p, s, e

    def key(self) -> tuple:
        """The state relative to ``t``, with every time that can no longer matter clamped: two equal
        keys followed by the same instructions give the same times, shifted by the difference of ``t``
        (a later push is at least ``t + F``, so a unit end, pop or overall end before ``t`` binds
        nothing, and an in-flight entry that ended before ``t`` can bind no later start)."""
        t = self.t
        lo = t - 1
        units = []
        for u in Unit:
            win = self.window[u]
            while win and win[0][0] < t:
                win.popleft()
            units.append((max(self.last_end[u], lo) - t, tuple(max(x, lo) - t for x in self.pops[u]),
                          tuple((e - t, fp) for e, fp in win)))
        free = None if self.overlap_free is None else max(self.overlap_free, t) - t
        tails = tuple(max(x, lo) - t for x in self.compute_ends)
        return tuple(units), max(self.all_done, lo) - t, free, tails

    def restore(self, key: tuple, t: int) -> None:
        """Take the state whose :meth:`key` is ``key`` with the dispatcher's next fetch at ``t`` (clamped
        times stay clamped: by :meth:`key`'s argument they bind nothing)."""
        units, all_done, free, tails = key
        self.t = t
        for u, (last_end, pops, win) in zip(Unit, units):
            self.last_end[u] = last_end + t
            self.pops[u] = deque((x + t for x in pops), maxlen=self.queue_depth)
            self.window[u] = deque((e + t, fp) for e, fp in win)
        self.all_done = all_done + t
        self.overlap_free = None if free is None else free + t
        self.compute_ends = deque((x + t for x in tails), maxlen=SHADOW_TAILS + 1)

    def shift(self, delta: int) -> None:
        """Move every time of the state ``delta`` cycles later."""
        self.t += delta
        self.all_done += delta
        for u in Unit:
            self.last_end[u] += delta
            self.pops[u] = deque((x + delta for x in self.pops[u]), maxlen=self.queue_depth)
            self.window[u] = deque((e + delta, fp) for e, fp in self.window[u])
        if self.overlap_free is not None:
            self.overlap_free += delta
        self.compute_ends = deque((x + delta for x in self.compute_ends), maxlen=SHADOW_TAILS + 1)


def schedule(cfg: AcceleratorConfig, program: Sequence[Instruction], *,
             queue_depth: int = DEFAULT_QUEUE_DEPTH) -> Schedule:
    """The generation-2 timing of ``program`` (which ends with halt) on ``cfg``; see the module docstring."""
    m = _Machine(cfg, queue_depth)
    push, start, end = [], [], []
    for ins in program:
        p, s, e = m.step(record(cfg, ins))
        push.append(p)
        start.append(s)
        end.append(e)
        if m.cycles is not None:
            return Schedule(tuple(push), tuple(start), tuple(end), m.cycles)
    raise ValueError("program has no halt")


def start_cycle(cfg: AcceleratorConfig, records: Sequence[Record], *, queue_depth: int = DEFAULT_QUEUE_DEPTH) -> int:
    """The start cycle of the last of ``records`` (not halt or fence) when they begin a program: the same in
    every program that begins with them, since an instruction's times depend only on those before it."""
    m = _Machine(cfg, queue_depth, shared_footprints=True)
    s = -1
    for r in records:
        _, s, _ = m.step(r)
    return s


def periodic_cycles(cfg: AcceleratorConfig, sequence: Sequence[int], regions: Mapping[int, Sequence[Record]], *,
                    queue_depth: int = DEFAULT_QUEUE_DEPTH) -> int:
    """The cycles of the program that is the concatenation of ``regions[i]`` for i in ``sequence`` (the
    last one ends with halt): the same as :func:`schedule` of it, faster when the sequence repeats.

    At each region boundary the state's :meth:`_Machine.key` and the next region id are looked up; when
    they repeat an earlier boundary's, P regions back, and the next regions repeat the P before them,
    the machine would pass through the same states shifted by the same number of cycles once per
    period, so whole periods are skipped by shifting the state. A region met again in a state with an
    earlier boundary's key (not in a period) is not stepped either: the state after it is that
    boundary's successor, shifted. Exact by construction; tests compare it with :func:`schedule` of
    the concatenated instructions."""
    m = _Machine(cfg, queue_depth, shared_footprints=True)  # ``regions`` holds every record
    seen: dict[tuple, tuple[int, int]] = {}
    after: dict[tuple, tuple[tuple, int, int | None]] = {}  # (state key, region) -> (key after, cycles, halt)
    j, n = 0, len(sequence)
    while j < n:
        rid = sequence[j]
        key = m.key()
        sig = (key, rid)
        prev = seen.get(sig)
        if prev is not None:
            j0, t0 = prev
            P = j - j0
            L = 0
            while j + L < n and sequence[j + L] == sequence[j0 + L % P]:
                L += 1
            reps = L // P
            if reps:
                m.shift(reps * (m.t - t0))
                j += reps * P
                seen.clear()
                continue
        seen[sig] = (j, m.t)
        hit = after.get(sig)
        if hit is not None:      # this region from this state was timed before: take its end state
            key_after, dt, halt_at = hit
            t = m.t
            m.restore(key_after, t + dt)
            if halt_at is not None:
                m.cycles = t + halt_at
        else:
            t = m.t
            for r in regions[rid]:
                m.step(r)
            after[sig] = (m.key(), m.t - t, None if m.cycles is None else m.cycles - t)
        j += 1
    if m.cycles is None:
        raise ValueError("program has no halt")
    return m.cycles
