"""The compute unit (submodule ``compute``): it feeds the systolic array from the scratchpads, drives
the array's controls through the phases of :class:`hwgen.hw_facts.ComputeSchedule`, and writes the
rows that leave the array back into the accumulator buffer (adding to the old row when
``accumulate``).

The array itself is a sibling submodule of the top (``array``; its fault sites keep their names) and
connects to this unit's ``array`` port, the flipped signature of :class:`hwgen.array.SystolicArray`.
Scratchpad read data arrives one cycle after the address (:data:`hwgen.hw_facts.SPAD_READ_LATENCY`),
so each read is gated by a ``feed_*_valid`` flag one cycle later; the write-back is a token (row
address + data) per output row, read-modify-written one cycle later. The accumulator buffer's read
port is shared with the store unit: the top selects this unit's address while a compute executes.

With shadow weights (``cfg.shadow_weights``, the decoupled controller) a weight-stationary compute
runs as three overlapping parts, so the next one can start while it streams and drains
(:class:`hwgen.hw_facts.ComputeSchedule`, ``shadow``): the preload into the shadow chain (exec cycles
0 .. R-1 of the executing instruction), the stream (its own sequencer ``stream_*``, loaded from the
instruction at exec cycle R-1, so it runs on after the next compute has started), and the write-back,
driven by a token per streamed word (row address, accumulate) that a line of ``stream_lead``
registers (``wb_tok<k>``) delivers when that word's output row leaves the array.

Registers from :data:`hwgen.hw_facts.REGISTERS` (unit ``compute``).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..array import SystolicArray
from ..config import AcceleratorConfig
from ..dataflow import Dataflow
from ..hw_facts import abft, acc_lanes, has_mechanisms, CLEAR_CYCLES, EXEC_COUNTER_WIDTH, compute_schedule
from .common import ADDR_WIDTH, UNIT_PORT, unit_registers

__all__ = ["ComputeUnit"]



def read_port(data_width: int) -> wiring.Signature:
    """A synchronous memory read port, from the reader's side."""
    return wiring.Signature({"addr": Out(ADDR_WIDTH), "data": In(data_width)})


class ComputeUnit(wiring.Component):
    """Compute instructions for one configuration (array shape, widths)."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        R, C = cfg.rows, cfg.cols
        super().__init__({
            "ctl": In(UNIT_PORT),
            "array": Out(SystolicArray.signature_for(R, C, cfg.input_width, cfg.weight_width,
                                                     cfg.acc_width, cfg.shadow_weights, abft(cfg)).flip()),
            "a_rd": Out(read_port(R * cfg.input_width)),
            "w_rd": Out(read_port(C * cfg.weight_width)),
            "acc_rd": Out(read_port(acc_lanes(cfg) * cfg.acc_width)),
            "acc_wr": Out(wiring.Signature({"addr": Out(ADDR_WIDTH), "data": Out(acc_lanes(cfg) * cfg.acc_width),
                                            "en": Out(1)})),
            # busy-PE accounting: add busy_inc to the controller's busy_pe counter while busy_en
            "busy_en": Out(1),
            "busy_inc": Out(EXEC_COUNTER_WIDTH),
            # protected memories (hwgen.safety): the cycles the read data is consumed, when the codes count
            **({"a_used": Out(1), "w_used": Out(1), "acc_used": Out(1)} if has_mechanisms(cfg) else {}),
        })
        self.regs = unit_registers(cfg, "compute")

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        R, C, accw = cfg.rows, cfg.cols, cfg.acc_width
        shadow = cfg.shadow_weights
        CP = self.ctl.exec.payload.compute   # the executing compute
        NEW = self.ctl.cmd.payload.compute   # the offered one (its end count and phase registers)
        in_compute, e, e_last = self.ctl.exec.active, self.ctl.exec.cnt, self.ctl.exec.last
        a_valid, b_valid, cp_t1, busy_inc = r.feed_a_valid, r.feed_b_valid, r.cp_phase, r.busy_inc
        wb_valid, wb_addr, wb_data = r.wb_valid, r.wb_addr, r.wb_data
        arr = self.array
        OS = compute_schedule(R, C, Dataflow.OS)
        WS = compute_schedule(R, C, Dataflow.WS, shadow)
        os_mode = CP.dataflow == Dataflow.OS.code

        # decode: the end count, the phase register (os: readout start; ws: first aligned output row)
        # and the busy-PE increment per streamed word (shadow ws: the stream sequencer's)
        new_os = NEW.dataflow == Dataflow.OS.code
        m.d.comb += self.ctl.cmd.ready.eq(1)
        with m.If(new_os):
            m.d.comb += self.ctl.last.eq(OS.last(NEW.depth))
        with m.Else():
            m.d.comb += self.ctl.last.eq(WS.last(NEW.rows))
        with m.If(self.ctl.cmd.valid):
            with m.If(new_os):
                m.d.sync += [cp_t1.eq(OS.readout(NEW.depth)), busy_inc.eq(NEW.rows * C)]
            with m.Else():
                if shadow:
                    m.d.sync += cp_t1.eq(WS.readout(NEW.rows))
                else:
                    m.d.sync += [cp_t1.eq(WS.readout(NEW.rows)), busy_inc.eq(NEW.depth * C)]
        m.d.comb += self.ctl.done.eq(e == e_last)

        # scratchpad read scheduling (data arrives one cycle later, gated by *_valid)
        os_k = Signal(EXEC_COUNTER_WIDTH)
        ws_m = Signal(EXEC_COUNTER_WIDTH)   # (shadow weights: the stream sequencer counts instead)
        m.d.comb += os_k.eq(e - OS.stream_start)
        if not shadow:
            m.d.comb += ws_m.eq(e - WS.stream_start)
        a_req = Signal()
        b_req = Signal()
        preload = Signal() if shadow else None   # ws: a weight-row read of the preload
        with m.If(in_compute):
            with m.If(os_mode):
                m.d.comb += [a_req.eq((e >= OS.stream_start) & (os_k < CP.depth)),
                             b_req.eq((e >= OS.stream_start) & (os_k < CP.depth)),
                             self.a_rd.addr.eq(CP.a_addr + os_k), self.w_rd.addr.eq(CP.w_addr + os_k)]
            with m.Else():
                # preload weight rows R-1 .. 0 at e = preload_start .. preload_last; rows >= depth are zeros
                if shadow:
                    m.d.comb += [preload.eq((e >= WS.preload_start) & (e <= WS.preload_last)),
                                 b_req.eq(preload & ((WS.preload_last - e) < CP.depth)),
                                 self.w_rd.addr.eq(CP.w_addr + (WS.preload_last - e))]
                else:
                    m.d.comb += [b_req.eq((e >= WS.preload_start) & (e <= WS.preload_last)
                                          & ((WS.preload_last - e) < CP.depth)),
                                 self.w_rd.addr.eq(CP.w_addr + (WS.preload_last - e)),
                                 a_req.eq((e >= WS.stream_start) & (ws_m < CP.rows)),
                                 self.a_rd.addr.eq(CP.a_addr + ws_m)]
        if shadow:
            self._shadow_stream(m, a_req, preload)
        m.d.sync += [a_valid.eq(a_req), b_valid.eq(b_req)]
        m.d.comb += [arr.a_feed.eq(Mux(a_valid, self.a_rd.data, 0)), arr.b_feed.eq(Mux(b_valid, self.w_rd.data, 0))]
        if abft(cfg):  # the checksum column's weight: the sum of the word's weights (hwgen.array)
            ww = cfg.weight_width
            total = 0
            for j in range(C):
                total = total + self.w_rd.data[j * ww:(j + 1) * ww].as_signed()
            m.d.comb += arr.chk_feed.eq(Mux(b_valid, total, 0))
        m.d.comb += [self.busy_en.eq(in_compute & a_valid), self.busy_inc.eq(busy_inc)]

        with m.If(in_compute):
            # shadow weights: only an output-stationary compute clears (overlapping ones must not)
            m.d.comb += arr.clear.eq((os_mode & (e < CLEAR_CYCLES)) if shadow else (e < CLEAR_CYCLES))
            with m.If(os_mode):
                m.d.comb += [arr.b_shift.eq(1), arr.b_skew.eq(1), arr.use_b_reg.eq(0), arr.deskew.eq(0),
                             arr.acc_self.eq(e < cp_t1), arr.mul_en.eq(e < cp_t1)]
            with m.Elif(shadow):
                # the preload shifts the shadow chain; the stream's tag swaps it in (hwgen.pe)
                m.d.comb += [arr.b_shift.eq(0), arr.b_skew.eq(0), arr.use_b_reg.eq(1),
                             arr.deskew.eq(1), arr.acc_self.eq(0), arr.mul_en.eq(1)]
            with m.Else():
                m.d.comb += [arr.b_shift.eq(e < WS.stream_start), arr.b_skew.eq(0), arr.use_b_reg.eq(1),
                             arr.deskew.eq(1), arr.acc_self.eq(0), arr.mul_en.eq(e >= WS.stream_start)]

        # write-back: a token (row address + data) per output row, read-modify-write one cycle later
        wb_req = Signal()
        wb_row = Signal(EXEC_COUNTER_WIDTH)
        with m.If(os_mode):
            # readout cycle r = e - t1 leaves tile row R-1-r at the bottom
            m.d.comb += wb_row.eq((R - 1) - (e - cp_t1))
            m.d.comb += wb_req.eq(in_compute & (e >= cp_t1) & (e < cp_t1 + R) & (wb_row < CP.rows))
        with m.Else():
            m.d.comb += wb_row.eq(e - cp_t1)
            m.d.comb += wb_req.eq(in_compute & (e >= cp_t1) & (wb_row < CP.rows))
        if shadow:
            # ws rows come from the token line (the instruction that streamed them may be gone)
            tok = r.wb_tok[-1]
            row_req, row_addr = Signal(), Signal(16)
            m.d.comb += [row_req.eq(Mux(os_mode, wb_req, tok[0])),
                         row_addr.eq(Mux(os_mode, CP.o_addr + wb_row, tok[1:17]))]
            m.d.sync += [wb_valid.eq(row_req), wb_addr.eq(row_addr), wb_data.eq(arr.out),
                         r.wb_acc.eq(Mux(os_mode, CP.accumulate, tok[17]))]
            m.d.comb += self.acc_rd.addr.eq(row_addr)
            accumulate, write = r.wb_acc, wb_valid
        else:
            m.d.sync += [wb_valid.eq(wb_req), wb_addr.eq(CP.o_addr + wb_row), wb_data.eq(arr.out)]
            m.d.comb += self.acc_rd.addr.eq(CP.o_addr + wb_row)
            accumulate, write = CP.accumulate, in_compute & wb_valid

        summed = []
        old_row = self.acc_rd.data
        for j in range(acc_lanes(cfg)):
            old = old_row[j * accw:(j + 1) * accw].as_signed()
            new = wb_data[j * accw:(j + 1) * accw].as_signed()
            summed.append((Mux(accumulate, old, 0) + new)[:accw])
        with m.If(write):
            m.d.comb += [self.acc_wr.addr.eq(wb_addr), self.acc_wr.data.eq(Cat(*summed)), self.acc_wr.en.eq(1)]
        if has_mechanisms(cfg):  # the array takes the fed words; the write-back adds the old row
            m.d.comb += [self.a_used.eq(a_valid), self.w_used.eq(b_valid), self.acc_used.eq(write & accumulate)]
        return m

    def _shadow_stream(self, m: Module, a_req: Signal, preload: Signal) -> None:
        """Shadow weights: the stream sequencer, the shift enable and first-word tag, the token line."""
        cfg, r, arr = self.cfg, self.regs, self.array
        CP = self.ctl.exec.payload.compute
        in_compute, e = self.ctl.exec.active, self.ctl.exec.cnt
        WS = compute_schedule(cfg.rows, cfg.cols, Dataflow.WS, True)
        ws_mode = CP.dataflow == Dataflow.WS.code
        active, cnt = r.stream_active, r.stream_cnt
        # the weight rows read at e = 0 .. R-1 shift into the shadow chain one cycle later
        m.d.sync += r.feed_w_shift.eq(in_compute & ws_mode & preload)
        m.d.comb += [arr.w_shift.eq(r.feed_w_shift), arr.a_first.eq(r.feed_a_first)]
        # the stream: one A word per cycle from its own context
        with m.If(active):   # (an output-stationary compute never runs beside a stream)
            m.d.comb += [a_req.eq(1), self.a_rd.addr.eq(r.stream_a_addr + cnt)]
            m.d.sync += [cnt.eq(cnt + 1), self.regs.busy_inc.eq(r.stream_busy)]
            with m.If(cnt == r.stream_rows - 1):
                m.d.sync += active.eq(0)
        m.d.sync += r.feed_a_first.eq(active & (cnt == 0))
        with m.If(in_compute & ws_mode & (e == WS.stream_start - 1)):   # the next stream may start as one ends
            m.d.sync += [active.eq(1), cnt.eq(0), r.stream_rows.eq(CP.rows), r.stream_a_addr.eq(CP.a_addr),
                         r.stream_o_addr.eq(CP.o_addr), r.stream_acc.eq(CP.accumulate),
                         r.stream_busy.eq(CP.depth * cfg.cols)]
        # the token line: (valid, output row address, accumulate) per read, stream_lead cycles long
        head = Cat(active, (r.stream_o_addr + cnt)[:16], r.stream_acc)
        for k, reg in enumerate(r.wb_tok):
            m.d.sync += reg.eq(head if k == 0 else r.wb_tok[k - 1])
