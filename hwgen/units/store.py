"""The store unit (submodule ``store``) with its requantizer.

A store reads accumulator rows and sends one element per cycle through a
:data:`hwgen.hw_facts.STORE_PIPELINE`-stage pipeline: (1) lane select, bias and multiply (the
per-column quantization table or the config registers); (2) round, shift, zero point, clamp; (3) the
byte write to host memory. One requantizer serves any C. The requantization parameters
(``q_*``) are this unit's registers: the controller hands it config instructions too, so a later queue
in front of the unit keeps config and store in program order. The rule is the one of
:func:`hwgen.isa.requantize`.

The accumulator buffer's read port is shared with the compute unit (the top selects this unit's
address outside computes); the quantization table is read through ``qtable`` (the top's registers).
Registers from :data:`hwgen.hw_facts.REGISTERS` (unit ``store``).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..hw_facts import bits_for, byte_bits, store_issuing, store_last
from ..isa import QTABLE_BYTES, Opcode
from .common import UNIT_PORT, unit_registers

__all__ = ["StoreUnit"]

#: width of the accumulator-buffer row address this unit computes (the ISA's o_addr field)
ADDR_WIDTH = 16


class StoreUnit(wiring.Component):
    """Stores and config instructions for one configuration (columns, accumulator width, host port)."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        self.byte_bits = byte_bits(cfg.host_port_bytes)
        C, pb = cfg.cols, cfg.host_port_bytes
        super().__init__({
            "ctl": In(UNIT_PORT),
            "acc_rd": Out(wiring.Signature({"addr": Out(ADDR_WIDTH), "data": In(C * cfg.acc_width)})),
            "qtable": In(data.ArrayLayout(8 * QTABLE_BYTES, C)),
            "mem_addr": Out(32 - self.byte_bits),
            "mem_we": Out(1),
            "mem_wstrb": Out(pb),
            "mem_wdata": Out(cfg.host_port_width),
        })
        self.regs = unit_registers(cfg, "store")

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        C, accw = cfg.cols, cfg.acc_width
        PB, BB = cfg.host_port_bytes, self.byte_bits
        cmd = self.ctl.cmd
        ST, CF = cmd.payload.store, cmd.payload.config
        in_store, e, e_last = self.ctl.exec.active, self.ctl.exec.cnt, self.ctl.exec.last
        q_mult, q_shift, q_zp, q_lo, q_hi = r.q_multiplier, r.q_shift, r.q_zero_point, r.q_clamp_lo, r.q_clamp_hi
        st_r, st_c, st_row_ptr, st_ptr = r.st_row, r.st_col, r.st_row_ptr, r.st_ptr
        s1_valid, s1_lane, s1_ptr = r.rq1_valid, r.rq1_lane, r.rq1_ptr
        s2_valid, s2_prod, s2_shift, s2_ptr = r.rq2_valid, r.rq2_product, r.rq2_shift, r.rq2_ptr
        s3_valid, s3_byte, s3_ptr = r.rq3_valid, r.rq3_byte, r.rq3_ptr

        # decode: a config sets the requantization parameters; a store its start state and end count
        m.d.comb += [cmd.ready.eq(1), self.ctl.last.eq(store_last(ST.rows * ST.cols))]
        with m.If(cmd.valid & (cmd.payload.op == Opcode.CONFIG)):
            m.d.sync += [q_mult.eq(CF.multiplier), q_shift.eq(CF.shift), q_zp.eq(CF.zero_point),
                         q_lo.eq(CF.clamp_lo), q_hi.eq(CF.clamp_hi)]
        with m.If(cmd.valid & (cmd.payload.op == Opcode.STORE)):
            m.d.sync += [st_r.eq(0), st_c.eq(0), st_row_ptr.eq(ST.base), st_ptr.eq(ST.base)]
        m.d.comb += self.ctl.done.eq(e == e_last)

        # stage 1: issue one element per cycle (the accumulator row is read at the same time)
        st_issue = Signal()
        m.d.comb += st_issue.eq(in_store & store_issuing(e, e_last))
        m.d.comb += self.acc_rd.addr.eq(ST.o_addr + st_r)
        m.d.sync += [s1_valid.eq(st_issue), s2_valid.eq(s1_valid), s3_valid.eq(s2_valid)]
        with m.If(st_issue):
            m.d.sync += [s1_lane.eq(st_c), s1_ptr.eq(st_ptr)]
            with m.If(st_c == ST.cols - 1):
                m.d.sync += [st_c.eq(0), st_r.eq(st_r + 1), st_row_ptr.eq(st_row_ptr + ST.row_stride),
                             st_ptr.eq(st_row_ptr + ST.row_stride)]
            with m.Else():
                m.d.sync += [st_c.eq(st_c + 1), st_ptr.eq(st_ptr + ST.col_stride)]
        # stage 2: lane select, bias (at the accumulator width), multiply
        lane_val = self.acc_rd.data.word_select(s1_lane[:bits_for(C)], accw).as_signed()
        entry = Array(self.qtable[j] for j in range(C))[s1_lane[:bits_for(C)]]
        use_table = ST.qtable
        biased = Signal(signed(accw), name="rq_biased")  # wraps at the accumulator width
        m.d.comb += biased.eq(lane_val + Mux(use_table, entry[0:32].as_signed(), 0))
        m.d.sync += [s2_prod.eq(biased * Mux(use_table, entry[32:64].as_signed(), q_mult)),
                     s2_shift.eq(Mux(use_table, entry[64:70], q_shift)), s2_ptr.eq(s1_ptr)]
        # stage 3: round, shift, zero point, clamp
        rnd = (Const(1, 64) << s2_shift)[1:64]  # 2**(shift-1), or 0 when shift == 0
        shifted = Signal(signed(accw + 34), name="rq_shifted")
        m.d.comb += shifted.eq((s2_prod + rnd) >> s2_shift)
        with_zp = Signal(signed(accw + 35), name="rq_with_zp")
        m.d.comb += with_zp.eq(shifted + q_zp)
        lo = Mux(ST.relu & (q_zp > q_lo), q_zp, q_lo)
        clamped_lo = Mux(with_zp < lo, lo, with_zp)
        clamped = Mux(clamped_lo > q_hi, q_hi, clamped_lo)
        m.d.sync += [s3_byte.eq(clamped[:8]), s3_ptr.eq(s2_ptr)]
        # the byte write
        with m.If(in_store & s3_valid):
            m.d.comb += [self.mem_we.eq(1), self.mem_addr.eq(s3_ptr >> BB),
                         self.mem_wdata.eq(Cat(*[s3_byte] * PB)),
                         self.mem_wstrb.eq((Const(1, PB) << s3_ptr[:BB])[:PB] if BB else 1)]
        return m
