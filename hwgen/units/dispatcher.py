"""The decoupled controller (submodule ``ctrl`` when ``cfg.controller`` is ``decoupled``): a dispatcher
that fetches and decodes in order and pushes each unit instruction into that unit's queue, and one
queue and sequencer per unit, so that load, compute and store execute in parallel. The rules are those
of ``sim.schedule`` (the specification; this module does not import it):

* **dispatch**: fetch (``fetch_beats`` + 1 cycles), decode (1), push (1, or more while the unit's
  queue is full; a slot freed by a pop in cycle t takes a push from t + 1); the next fetch follows the
  push. Fence and halt wait in the push state until every unit has finished everything before them;
  halt then raises ``done``.
* **scoreboard**: in the push cycle the instruction's footprint (:func:`hwgen.footprint.footprint`: scratchpad,
  accumulator, quantization-table word ranges and the bounding host byte interval) is compared with the
  footprint of every instruction in flight in the two other units (executing or queued). For each
  other unit V the entry records ``dep_v``: how many V instructions must still complete (the position
  of the youngest conflicting one in V's in-order completion sequence, 0 for none); each V completion
  counts it down.
* **units**: a unit pops its queue's head when its sequencer is idle or in its last execute cycle, the
  entry was pushed in an earlier cycle and both its ``dep`` counts are 0 (or 1 with that unit
  finishing now). The pop cycle offers the instruction on the unit's ``cmd`` (the unit latches its
  start state and gives its end count ``last``, as at the in-order decode); the execute phase follows
  with the sequencer's own counter. A config instruction occupies the store sequencer one cycle.

* **overlapping computes** (``cfg.shadow_weights``): the compute unit may pop a weight-stationary
  compute while the executing one (also weight-stationary) still streams or drains, from its
  ``issue_interval`` on (exec count + 1 >= max(rows + 1, ``min_interval``)); the executing one then moves
  to a tail entry (``c_tail<i>_*``: cycles left until its last write-back, footprint) that raises its
  completion when it ends. ``SHADOW_TAILS`` tails always suffice (hwgen.hw_facts.ComputeSchedule);
  completions stay in order (one per cycle at most), and positions in the completion sequence count
  the tails first.

Timing relative to ``sim.schedule``: pushes and the halt happen in the same cycles; a unit's pop is
the schedule's ``start`` and its execute phase runs one cycle later (``start + 1 .. end + 1``), which
keeps every comparison with a schedule time exact, so ``cycles`` equals ``schedule(...).cycles``.

Registers: the dispatcher's are the in-order controller's (``pc``, ``instr_reg``, ``fetch_cnt``,
``error_flag``, the counters, the FSM state); per unit ``<u>q_slot<j>`` (queue entries: instruction,
footprint, dep counts), ``<u>q_head``, ``<u>q_count``, ``<u>_busy``, ``<u>_cnt``, ``<u>_last``, ``<u>_cur``
(the executing instruction and its footprint) with ``u`` in ``l``, ``c``, ``s``, and ``s_cfg``; all from
:data:`hwgen.hw_facts.REGISTERS`.
"""

from types import SimpleNamespace

from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring

from ..config import INSTR_BITS, AcceleratorConfig
from ..dataflow import Dataflow
from ..hw_facts import DECOUPLED_UNITS, FSM_NAME, SHADOW_TAILS, compute_schedule, dep_width, footprint_fields
from ..isa import INSTR_BYTES, LoadTarget, Opcode
from .common import INSTRUCTION, controller_ports, fetch_state, unit_registers

__all__ = ["Dispatcher", "DISPATCHER_STATES"]

#: The dispatcher FSM's states (the first is the reset state).
DISPATCHER_STATES = ("IDLE", "FETCH", "DECODE", "PUSH", "HALTED")

_OPCODE = {"l": Opcode.LOAD, "c": Opcode.COMPUTE, "s": Opcode.STORE}


def _layout(fields) -> data.StructLayout:
    return data.StructLayout({n: (signed(w) if s else unsigned(w)) for n, w, s in fields})


def _span(base, terms):
    """Bounding host byte interval [lo, hi) of ``base + sum(i_k * stride_k)``, 0 <= i_k < n_k (signed)."""
    lo = hi = base
    for n, stride in terms:
        reach = (n - 1) * stride
        lo = lo + Mux(reach < 0, reach, 0)
        hi = hi + Mux(reach > 0, reach, 0)
    return lo, hi + 1


def _overlap(lo1, hi1, lo2, hi2):
    return (lo1 < hi2) & (lo2 < hi1)


def footprint_of(cfg: AcceleratorConfig, unit: str, ir: data.View) -> dict:
    """The footprint fields (:func:`hwgen.hw_facts.footprint_fields`) of instruction ``ir`` for ``unit``, as
    :func:`hwgen.footprint.footprint` states them."""
    if unit == "l":
        a = ir.load
        # a word's host bytes (isa.load_word_bytes): half the lanes, rounded up, for packed 4-bit weights
        word_bytes = Mux(a.target == int(LoadTarget.W4), (a.lanes + 1) >> 1, a.lanes) if cfg.packed_weights else a.lanes
        lo, hi = _span(a.base, ((a.count, a.word_stride), (word_bytes, a.lane_stride)))
        return dict(tgt=a.target, zero=a.zero, s_lo=a.spad_addr, s_hi=a.spad_addr + a.count, h_lo=lo, h_hi=hi)
    if unit == "c":
        a = ir.compute
        a_words = Mux(a.dataflow == Dataflow.OS.code, a.depth, a.rows)
        return dict(a_lo=a.a_addr, a_hi=a.a_addr + a_words, w_lo=a.w_addr, w_hi=a.w_addr + a.depth,
                    o_lo=a.o_addr, o_hi=a.o_addr + a.rows)
    a = ir.store
    lo, hi = _span(a.base, ((a.rows, a.row_stride), (a.cols, a.col_stride)))
    return dict(st=ir.op == Opcode.STORE, qt=a.qtable, cols=a.cols, o_lo=a.o_addr, o_hi=a.o_addr + a.rows,
                h_lo=lo, h_hi=hi)


def conflict(u: str, fu, v: str, fv, packed_weights: bool = False):
    """Whether footprints ``fu`` (unit u) and ``fv`` (unit v != u) conflict (:func:`hwgen.footprint.conflict`);
    ``packed_weights``: loads may also write W as target w4."""
    if u > v:
        u, fu, v, fv = v, fv, u, fu
    pair = u + v  # sorted: "cl", "cs", "ls"
    if pair == "cl":   # the load writes a or w, the compute reads them
        writes_w = fv.tgt == 1
        if packed_weights:
            writes_w = writes_w | (fv.tgt == int(LoadTarget.W4))
        return (((fv.tgt == 0) & _overlap(fv.s_lo, fv.s_hi, fu.a_lo, fu.a_hi))
                | (writes_w & _overlap(fv.s_lo, fv.s_hi, fu.w_lo, fu.w_hi)))
    if pair == "cs":   # the compute writes acc, the store reads it
        return fv.st & _overlap(fu.o_lo, fu.o_hi, fv.o_lo, fv.o_hi)
    # "ls": the load writes q (the store reads [0, cols) with qtable), the store writes host bytes the load reads
    return fv.st & (((fu.tgt == 2) & fv.qt & _overlap(fu.s_lo, fu.s_hi, 0, fv.cols))
                    | (~fu.zero & _overlap(fu.h_lo, fu.h_hi, fv.h_lo, fv.h_hi)))


class Dispatcher(wiring.Component):
    """The decoupled controller of one configuration; the same ports as :class:`hwgen.units.controller.Controller`."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        super().__init__(controller_ports(cfg))
        self.regs = unit_registers(cfg, "ctrl")
        self.fsm_state = None

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        D = cfg.queue_depth
        pc, ir, fetch_cnt = r.pc, r.instr_reg, r.fetch_cnt
        cycles, busy_pe, err = r.cycle_counter, r.busy_pe_counter, r.error_flag
        ports = {"l": self.load, "c": self.compute, "s": self.store}
        units = DECOUPLED_UNITS
        irv = data.View(INSTRUCTION, ir)
        op = irv.op
        m.d.comb += [self.cycles.eq(cycles), self.busy_pe.eq(busy_pe), self.error.eq(err)]

        fp_layout = {u: _layout(footprint_fields(u)) for u in units}
        kw = dep_width(cfg)
        entry_layout = {u: data.StructLayout({
            "ins": INSTRUCTION, "fp": fp_layout[u],
            **{f"dep_{v}": kw for v in units if v != u}}) for u in units}
        cur_layout = {u: data.StructLayout({"ins": INSTRUCTION, "fp": fp_layout[u]}) for u in units}

        # ---- per unit: queue slots, head/count, sequencer
        slots = {u: [data.View(entry_layout[u], s) for s in getattr(r, f"{u}q_slot")] for u in units}
        head = {u: getattr(r, f"{u}q_head") for u in units}
        count = {u: getattr(r, f"{u}q_count") for u in units}
        busy = {u: getattr(r, f"{u}_busy") for u in units}
        cnt = {u: getattr(r, f"{u}_cnt") for u in units}
        last = {u: getattr(r, f"{u}_last") for u in units}
        cur = {u: data.View(cur_layout[u], getattr(r, f"{u}_cur")) for u in units}
        s_cfg = r.s_cfg

        done = {u: Signal(name=f"{u}_done") for u in units}      # the executing instruction's last cycle
        issue = {u: Signal(name=f"{u}_issue") for u in units}    # pop the head this cycle
        push = {u: Signal(name=f"{u}_push") for u in units}
        head_entry = {u: Array(slots[u])[head[u]] if D > 1 else slots[u][0] for u in units}

        # overlapping computes: the draining ones (oldest first) and the executing one's end
        shadow = cfg.shadow_weights
        tails = [SimpleNamespace(valid=r.c_tail_valid[i], left=r.c_tail_left[i],
                                 fp=data.View(fp_layout["c"], r.c_tail_fp[i])) for i in range(SHADOW_TAILS)] \
            if shadow else []
        cur_done = {u: Signal(name=f"{u}_cur_done") for u in units}
        early = Signal(name="c_early")          # pop the next compute while the executing one drains
        tail_done = Signal(name="c_tail_done")  # the oldest tail's last cycle
        for u in units:
            port = ports[u]
            active = busy[u] & ~s_cfg if u == "s" else busy[u]
            m.d.comb += cur_done[u].eq(busy[u] & ((s_cfg | port.done) if u == "s" else port.done))
            if u == "c" and shadow:
                m.d.comb += [tail_done.eq(tails[0].valid & (tails[0].left == 0)),
                             done[u].eq(cur_done[u] | tail_done)]
            else:
                m.d.comb += done[u].eq(cur_done[u])
            deps_met = Const(1)
            for v in units:
                if v != u:
                    k = head_entry[u][f"dep_{v}"]
                    deps_met = deps_met & ((k == 0) | ((k == 1) & done[v]))
            free = ~busy[u] | cur_done[u]
            if u == "c" and shadow:
                ws = compute_schedule(cfg.rows, cfg.cols, Dataflow.WS, True)
                now, nxt = cur[u].ins.compute, head_entry[u].ins.compute
                m.d.comb += early.eq(busy[u] & ~cur_done[u] & (now.dataflow == Dataflow.WS.code)
                                     & (nxt.dataflow == Dataflow.WS.code) & ws.may_follow(cnt[u], now.rows))
                free = free | early
            m.d.comb += issue[u].eq((count[u] != 0) & free & deps_met)
            m.d.comb += [port.cmd.valid.eq(issue[u]),
                         port.cmd.payload.eq(Mux(issue[u], head_entry[u].ins, cur[u].ins)),
                         port.exec.payload.eq(cur[u].ins), port.exec.active.eq(active),
                         port.exec.cnt.eq(cnt[u]), port.exec.last.eq(last[u])]
            with m.If(busy[u]):
                m.d.sync += cnt[u].eq(cnt[u] + 1)
            with m.If(cur_done[u]):
                m.d.sync += busy[u].eq(0)
            with m.If(issue[u]):
                m.d.sync += [busy[u].eq(1), cnt[u].eq(0), last[u].eq(port.last),
                             cur[u].ins.eq(head_entry[u].ins), cur[u].fp.eq(head_entry[u].fp),
                             head[u].eq(Mux(head[u] == D - 1, 0, head[u] + 1))]
                if u == "s":
                    m.d.sync += s_cfg.eq(head_entry[u].ins.op == Opcode.CONFIG)
            m.d.sync += count[u].eq(count[u] + push[u] - issue[u])

        if shadow:
            self._tails(m, tails, tail_done, early & issue["c"], last["c"] - cnt["c"] - 1, cur["c"].fp.as_value())

        # ---- the scoreboard: the decoded instruction's footprint against the other units' in-flight ones
        fp_new = {u: data.View(fp_layout[u], Signal(fp_layout[u], name=f"{u}_fp_new")) for u in units}
        for u in units:
            m.d.comb += [getattr(fp_new[u], k).eq(x) for k, x in footprint_of(cfg, u, irv).items()]
        deps_new = {}
        for u in units:
            for v in units:
                if v == u:
                    continue
                # candidates: V's draining computes (positions 1 .. T), its executing instruction
                # (position T + 1 when busy), then queue offset j at position T + busy + j + 1; the
                # youngest conflicting one is the largest position
                pos = Signal(kw, name=f"{u}_dep_{v}_new")
                best = Const(0, kw)
                drained = Const(0, kw)   # T: valid tails (contiguous from the oldest)
                if v == "c":
                    for i, t in enumerate(tails):
                        best = Mux(t.valid & conflict(u, fp_new[u], v, t.fp, cfg.packed_weights), i + 1, best)
                        drained = drained + t.valid
                best = Mux(busy[v] & conflict(u, fp_new[u], v, cur[v].fp, cfg.packed_weights), drained + 1, best)
                for i, slot in enumerate(slots[v]):
                    off = Mux(Const(i) >= head[v], i - head[v], i + D - head[v])
                    p = drained + busy[v] + off + 1
                    hit = (off < count[v]) & conflict(u, fp_new[u], v, slot.fp, cfg.packed_weights)
                    best = Mux(hit & (p > best), p, best)
                m.d.comb += pos.eq(best)
                deps_new[u, v] = pos

        # dep counts count down with the other units' completions (also for the entry being pushed)
        def counted(k, v):
            return Mux((k != 0) & done[v], k - 1, k)

        for u in units:
            tail = Signal(range(max(2, 2 * D)), name=f"{u}_tail")
            m.d.comb += tail.eq(head[u] + count[u])
            tail_i = Mux(tail >= D, tail - D, tail)
            for i, slot in enumerate(slots[u]):
                with m.If(push[u] & (tail_i == i)):
                    m.d.sync += [slot.ins.eq(ir), slot.fp.eq(fp_new[u])]
                    for v in units:
                        if v != u:
                            m.d.sync += slot[f"dep_{v}"].eq(counted(deps_new[u, v], v))
                with m.Else():
                    for v in units:
                        if v != u:
                            m.d.sync += slot[f"dep_{v}"].eq(counted(slot[f"dep_{v}"], v))

        all_idle = Const(1)
        for u in units:
            all_idle = all_idle & (count[u] == 0) & (~busy[u] | cur_done[u])  # tails end before cur

        next_pc = pc + INSTR_BYTES
        restart = [pc.eq(0), cycles.eq(0), busy_pe.eq(0), err.eq(0), fetch_cnt.eq(0)]
        with m.FSM(init=DISPATCHER_STATES[0], name=FSM_NAME) as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += restart
                    m.next = "FETCH"

            with m.State("FETCH"):
                fetch_state(m, self, cfg, pc=pc, fetch_cnt=fetch_cnt, ir=ir, cycles=cycles)

            with m.State("DECODE"):
                m.d.sync += [cycles.eq(cycles + 1), fetch_cnt.eq(0)]
                with m.Switch(op):
                    with m.Case(Opcode.HALT, Opcode.FENCE, Opcode.LOAD, Opcode.COMPUTE, Opcode.STORE,
                                Opcode.CONFIG):
                        m.next = "PUSH"
                    with m.Default():
                        m.d.sync += err.eq(1)
                        m.next = "HALTED"

            with m.State("PUSH"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.Switch(op):
                    with m.Case(Opcode.HALT):
                        with m.If(all_idle):
                            m.next = "HALTED"
                    with m.Case(Opcode.FENCE):
                        with m.If(all_idle):
                            m.d.sync += pc.eq(next_pc)
                            m.next = "FETCH"
                    for u in units:
                        ops = (Opcode.STORE, Opcode.CONFIG) if u == "s" else (_OPCODE[u],)
                        with m.Case(*ops):
                            with m.If(count[u] < D):
                                m.d.comb += push[u].eq(1)
                                m.d.sync += pc.eq(next_pc)
                                m.next = "FETCH"

            with m.State("HALTED"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += restart
                    m.next = "FETCH"
        with m.If(self.busy_en):
            m.d.sync += busy_pe.eq(busy_pe + self.busy_inc)

        assert set(fsm.encoding) == set(DISPATCHER_STATES)
        assert len(ir) == INSTR_BITS
        self.fsm_state = fsm.state
        return m

    @staticmethod
    def _tails(m: Module, tails: list, tail_done, move, left, fp) -> None:
        """The draining computes: each counts down to its last cycle; the oldest leaves when it ends
        (the rest shift towards it); ``move``: the executing compute joins at the first free entry with
        ``left`` cycles to go after this one."""
        n = len(tails)
        kept = [SimpleNamespace(valid=Mux(tail_done, tails[i + 1].valid if i + 1 < n else 0, tails[i].valid),
                                left=Mux(tail_done, tails[i + 1].left if i + 1 < n else 0, tails[i].left),
                                fp=Mux(tail_done, tails[i + 1].fp.as_value() if i + 1 < n else 0,
                                       tails[i].fp.as_value()))
                for i in range(n)]
        for i, (t, k) in enumerate(zip(tails, kept)):
            first_free = ~k.valid if i == 0 else (~k.valid & kept[i - 1].valid)
            with m.If(move & first_free):
                m.d.sync += [t.valid.eq(1), t.left.eq(left), t.fp.eq(fp)]
            with m.Else():
                m.d.sync += [t.valid.eq(k.valid), t.left.eq(Mux(k.valid, k.left - 1, 0)), t.fp.eq(k.fp)]
