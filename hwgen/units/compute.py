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

Registers from :data:`hwgen.hw_facts.REGISTERS` (unit ``compute``).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..array import SystolicArray
from ..config import AcceleratorConfig
from ..dataflow import Dataflow
from ..hw_facts import CLEAR_CYCLES, EXEC_COUNTER_WIDTH, compute_schedule
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
                                                     cfg.acc_width).flip()),
            "a_rd": Out(read_port(R * cfg.input_width)),
            "w_rd": Out(read_port(C * cfg.weight_width)),
            "acc_rd": Out(read_port(C * cfg.acc_width)),
            "acc_wr": Out(wiring.Signature({"addr": Out(ADDR_WIDTH), "data": Out(C * cfg.acc_width),
                                            "en": Out(1)})),
            # busy-PE accounting: add busy_inc to the controller's busy_pe counter while busy_en
            "busy_en": Out(1),
            "busy_inc": Out(EXEC_COUNTER_WIDTH),
        })
        self.regs = unit_registers(cfg, "compute")

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        R, C, accw = cfg.rows, cfg.cols, cfg.acc_width
        CP = self.ctl.exec.payload.compute   # the executing compute
        NEW = self.ctl.cmd.payload.compute   # the offered one (its end count and phase registers)
        in_compute, e, e_last = self.ctl.exec.active, self.ctl.exec.cnt, self.ctl.exec.last
        a_valid, b_valid, cp_t1, busy_inc = r.feed_a_valid, r.feed_b_valid, r.cp_phase, r.busy_inc
        wb_valid, wb_addr, wb_data = r.wb_valid, r.wb_addr, r.wb_data
        arr = self.array
        OS = compute_schedule(R, C, Dataflow.OS)
        WS = compute_schedule(R, C, Dataflow.WS)
        os_mode = CP.dataflow == Dataflow.OS.code

        # decode: the end count, the phase register (os: readout start; ws: first aligned output row)
        # and the busy-PE increment per streamed word
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
                m.d.sync += [cp_t1.eq(WS.readout(NEW.rows)), busy_inc.eq(NEW.depth * C)]
        m.d.comb += self.ctl.done.eq(e == e_last)

        # scratchpad read scheduling (data arrives one cycle later, gated by *_valid)
        os_k = Signal(EXEC_COUNTER_WIDTH)
        ws_m = Signal(EXEC_COUNTER_WIDTH)
        m.d.comb += [os_k.eq(e - OS.stream_start), ws_m.eq(e - WS.stream_start)]
        a_req = Signal()
        b_req = Signal()
        with m.If(in_compute):
            with m.If(os_mode):
                m.d.comb += [a_req.eq((e >= OS.stream_start) & (os_k < CP.depth)),
                             b_req.eq((e >= OS.stream_start) & (os_k < CP.depth)),
                             self.a_rd.addr.eq(CP.a_addr + os_k), self.w_rd.addr.eq(CP.w_addr + os_k)]
            with m.Else():
                # preload weight rows R-1 .. 0 at e = preload_start .. preload_last; rows >= depth are zeros
                m.d.comb += [b_req.eq((e >= WS.preload_start) & (e <= WS.preload_last)
                                      & ((WS.preload_last - e) < CP.depth)),
                             self.w_rd.addr.eq(CP.w_addr + (WS.preload_last - e)),
                             a_req.eq((e >= WS.stream_start) & (ws_m < CP.rows)),
                             self.a_rd.addr.eq(CP.a_addr + ws_m)]
        m.d.sync += [a_valid.eq(a_req), b_valid.eq(b_req)]
        m.d.comb += [arr.a_feed.eq(Mux(a_valid, self.a_rd.data, 0)), arr.b_feed.eq(Mux(b_valid, self.w_rd.data, 0))]
        m.d.comb += [self.busy_en.eq(in_compute & a_valid), self.busy_inc.eq(busy_inc)]

        with m.If(in_compute):
            m.d.comb += arr.clear.eq(e < CLEAR_CYCLES)
            with m.If(os_mode):
                m.d.comb += [arr.b_shift.eq(1), arr.b_skew.eq(1), arr.use_b_reg.eq(0), arr.deskew.eq(0),
                             arr.acc_self.eq(e < cp_t1), arr.mul_en.eq(e < cp_t1)]
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
        m.d.sync += [wb_valid.eq(wb_req), wb_addr.eq(CP.o_addr + wb_row), wb_data.eq(arr.out)]
        m.d.comb += self.acc_rd.addr.eq(CP.o_addr + wb_row)

        summed = []
        old_row = self.acc_rd.data
        for j in range(C):
            old = old_row[j * accw:(j + 1) * accw].as_signed()
            new = wb_data[j * accw:(j + 1) * accw].as_signed()
            summed.append((Mux(CP.accumulate, old, 0) + new)[:accw])
        with m.If(in_compute & wb_valid):
            m.d.comb += [self.acc_wr.addr.eq(wb_addr), self.acc_wr.data.eq(Cat(*summed)), self.acc_wr.en.eq(1)]
        return m
