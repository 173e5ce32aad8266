"""The store unit (submodule ``store``) with its requantizer.

A store reads accumulator rows and sends them, one *beat* per cycle, through a
:data:`hwgen.hw_facts.STORE_PIPELINE`-stage pipeline: (1) lane select, bias and multiply (the
per-column quantization table or the config registers); (2) round, shift, zero point, clamp; (3) the
write to host memory with the beat's byte strobes. The rule is the one of :func:`hwgen.isa.requantize`.

Two modes, like the load unit's:

* wide (``col_stride == 1``, :func:`hwgen.hw_facts.store_wide`: a row's output bytes are contiguous
  in host memory): a beat is the bytes of one accumulator row that fall into one host-port word, at
  most ``L = min(PB, C)`` of them (:func:`hwgen.hw_facts.store_lanes`, PB = port bytes), requantized
  by L parallel lanes; a row at byte offset o with ``cols`` bytes takes ``(o + cols - 1) // PB + 1``
  beats (:func:`hwgen.hw_facts.store_beats`, the closed form latched at decode);
* narrow (any other column stride): one element per beat, on lane 0.

**Area.** L requantizer lanes instead of one: each lane has a 32 x acc_width multiplier (bias adder,
rounding shifter, zero-point adder and clamp included) and a C-way column select of the accumulator
and of the quantization-table entry; the beat's bytes are placed into the port word by a byte shift.
For a 128-bit port on a 16x16 array that is 16 multipliers instead of 1.

The requantization parameters (``q_*``) are this unit's registers: the controller hands it config
instructions too, so a later queue in front of the unit keeps config and store in program order.
The accumulator buffer's read port is shared with the compute unit (the top selects this unit's
address outside computes); the quantization table is read through ``qtable`` (the top's registers).
Registers from :data:`hwgen.hw_facts.REGISTERS` (unit ``store``; the lane registers are families).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..hw_facts import abft, acc_lanes, has_mechanisms, bits_for, byte_bits, store_beats, store_issuing, store_lanes, store_last, store_wide
from ..isa import QTABLE_BYTES, Opcode
from .common import ADDR_WIDTH, UNIT_PORT, host_write_port, unit_registers

__all__ = ["StoreUnit"]



class StoreUnit(wiring.Component):
    """Stores and config instructions for one configuration (columns, accumulator width, host port)."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        self.byte_bits = byte_bits(cfg.host_port_bytes)
        C = cfg.cols
        super().__init__({
            "ctl": In(UNIT_PORT),
            "acc_st_rd": Out(wiring.Signature({"addr": Out(ADDR_WIDTH), "data": In(acc_lanes(cfg) * cfg.acc_width)})),
            "qtable": In(data.ArrayLayout(8 * QTABLE_BYTES, C)),
            **host_write_port(cfg),
            # protected memories (hwgen.safety): the accumulator lanes the requantizer takes this cycle
            **({"acc_used": Out(acc_lanes(cfg))} if has_mechanisms(cfg) else {}),
            # ABFT: the row the requantizer takes does not sum to its checksum
            **({"abft_mismatch": Out(1)} if abft(cfg) else {}),
        })
        self.regs = unit_registers(cfg, "store")

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        C, accw = cfg.cols, cfg.acc_width
        P, PB, BB = cfg.host_port_width, cfg.host_port_bytes, self.byte_bits
        L = store_lanes(cfg)
        cmd = self.ctl.cmd
        ST, CF = cmd.payload.store, cmd.payload.config
        in_store, e, e_last = self.ctl.exec.active, self.ctl.exec.cnt, self.ctl.exec.last
        q_mult, q_shift, q_zp, q_lo, q_hi = r.q_multiplier, r.q_shift, r.q_zero_point, r.q_clamp_lo, r.q_clamp_hi
        st_r, st_c, st_row_ptr, st_ptr = r.st_row, r.st_col, r.st_row_ptr, r.st_ptr
        s1_valid, s1_lane, s1_ptr = r.rq1_valid, r.rq1_lane, r.rq1_ptr
        s2_valid, s2_prod, s2_shift, s2_ptr = r.rq2_valid, r.rq2_product, r.rq2_shift, r.rq2_ptr
        s3_valid, s3_byte, s3_ptr = r.rq3_valid, r.rq3_byte, r.rq3_ptr
        # bytes in the beat (1 when there is a single lane)
        s1_n, s2_n, s3_n = (r.rq1_bytes, r.rq2_bytes, r.rq3_bytes) if L > 1 else (Const(1, 1),) * 3

        wide = Signal(name="st_wide")
        m.d.comb += wide.eq(store_wide(ST.col_stride) if L > 1 else 0)
        # decode: a config sets the requantization parameters; a store its start state and end count
        issues = Mux(wide, store_beats(PB, ST.base, ST.rows, ST.row_stride, ST.cols), ST.rows * ST.cols) \
            if L > 1 else ST.rows * ST.cols
        m.d.comb += [cmd.ready.eq(1), self.ctl.last.eq(store_last(issues))]
        with m.If(cmd.valid & (cmd.payload.op == Opcode.CONFIG)):
            m.d.sync += [q_mult.eq(CF.multiplier), q_shift.eq(CF.shift), q_zp.eq(CF.zero_point),
                         q_lo.eq(CF.clamp_lo), q_hi.eq(CF.clamp_hi)]
        with m.If(cmd.valid & (cmd.payload.op == Opcode.STORE)):
            m.d.sync += [st_r.eq(0), st_c.eq(0), st_row_ptr.eq(ST.base), st_ptr.eq(ST.base)]
        m.d.comb += self.ctl.done.eq(e == e_last)

        # stage 1: issue one beat per cycle (the accumulator row is read at the same time). st_ptr is
        # the host byte address of the beat's first element, st_c its column.
        st_issue = Signal()
        m.d.comb += st_issue.eq(in_store & store_issuing(e, e_last))
        m.d.comb += self.acc_st_rd.addr.eq(ST.o_addr + st_r)
        m.d.sync += [s1_valid.eq(st_issue), s2_valid.eq(s1_valid), s3_valid.eq(s2_valid)]
        next_row = [st_c.eq(0), st_r.eq(st_r + 1), st_row_ptr.eq(st_row_ptr + ST.row_stride),
                    st_ptr.eq(st_row_ptr + ST.row_stride)]
        with m.If(st_issue):
            m.d.sync += [s1_lane.eq(st_c), s1_ptr.eq(st_ptr)]
            if L > 1:
                o = st_ptr[:BB]
                avail = Signal(range(PB + 1), name="st_avail")  # bytes up to the end of the port word
                m.d.comb += avail.eq(PB - o)
                beat_end = Signal(10, name="st_beat_end")
                m.d.comb += beat_end.eq(st_c + avail)
                with m.If(wide):
                    with m.If(beat_end >= ST.cols):
                        m.d.sync += [s1_n.eq(ST.cols - st_c)] + next_row
                    with m.Else():
                        m.d.sync += [s1_n.eq(avail), st_c.eq(beat_end), st_ptr.eq(st_ptr + avail)]
                with m.Else():
                    m.d.sync += s1_n.eq(1)
            with m.If(~wide):
                with m.If(st_c == ST.cols - 1):
                    m.d.sync += next_row
                with m.Else():
                    m.d.sync += [st_c.eq(st_c + 1), st_ptr.eq(st_ptr + ST.col_stride)]
        # stage 2, per lane k (column rq1_lane + k): lane select, bias (at the accumulator width), multiply
        use_table = ST.qtable
        table = Array(self.qtable[j] for j in range(C))
        for k in range(L):
            col = Signal(range(max(2, 1 << bits_for(C))), name=f"rq_col_l{k}")
            m.d.comb += col.eq(s1_lane + k)
            lane_val = self.acc_st_rd.data.word_select(col, accw).as_signed() if C > 1 else \
                self.acc_st_rd.data.as_signed()
            entry = table[col]
            biased = Signal(signed(accw), name=f"rq_biased_l{k}")  # wraps at the accumulator width
            m.d.comb += biased.eq(lane_val + Mux(use_table, entry[0:32].as_signed(), 0))
            m.d.sync += [s2_prod[k].eq(biased * Mux(use_table, entry[32:64].as_signed(), q_mult)),
                         s2_shift[k].eq(Mux(use_table, entry[64:70], q_shift))]
        if has_mechanisms(cfg):  # stage 1 takes columns s1_lane .. s1_lane + s1_n - 1 of the row read
            used = Mux(s1_valid, (((Const(1, C + 1) << s1_n) - 1)[:C]) << s1_lane, 0)[:C]
            if abft(cfg):  # and checks the whole row against its checksum lane
                row = self.acc_st_rd.data
                total = 0
                for j in range(C):
                    total = total + row[j * accw:(j + 1) * accw]
                m.d.comb += [self.acc_used.eq(Cat(used, s1_valid)),
                             self.abft_mismatch.eq(s1_valid & (total[:accw] != row[C * accw:(C + 1) * accw]))]
            else:
                m.d.comb += self.acc_used.eq(used)
        m.d.sync += s2_ptr.eq(s1_ptr)
        if L > 1:
            m.d.sync += s2_n.eq(s1_n)
        # stage 3, per lane: round, shift, zero point, clamp
        lo = Mux(ST.relu & (q_zp > q_lo), q_zp, q_lo)
        for k in range(L):
            rnd = (Const(1, 64) << s2_shift[k])[1:64]  # 2**(shift-1), or 0 when shift == 0
            shifted = Signal(signed(accw + 34), name=f"rq_shifted_l{k}")
            m.d.comb += shifted.eq((s2_prod[k] + rnd) >> s2_shift[k])
            with_zp = Signal(signed(accw + 35), name=f"rq_with_zp_l{k}")
            m.d.comb += with_zp.eq(shifted + q_zp)
            clamped_lo = Mux(with_zp < lo, lo, with_zp)
            clamped = Mux(clamped_lo > q_hi, q_hi, clamped_lo)
            m.d.sync += s3_byte[k].eq(clamped[:8])
        m.d.sync += s3_ptr.eq(s2_ptr)
        if L > 1:
            m.d.sync += s3_n.eq(s2_n)
        # the write: lane k is byte (ptr mod PB) + k of the port word (a beat never crosses a word)
        with m.If(in_store & s3_valid):
            m.d.comb += [self.mem_we.eq(1), self.mem_addr.eq(s3_ptr >> BB)]
            if BB:
                off = s3_ptr[:BB]
                m.d.comb += [self.mem_wdata.eq((Cat(*s3_byte) << (off * 8))[:P]),
                             self.mem_wstrb.eq(((((Const(1, L + 1) << s3_n) - 1)[:L]) << off)[:PB])]
            else:
                m.d.comb += [self.mem_wdata.eq(s3_byte[0]), self.mem_wstrb.eq(1)]
        return m
