"""The load unit (submodule ``load``): host-memory gathers into the A / W scratchpads and the
quantization table.

Two gather modes. Narrow (any lane stride): one element per cycle. Wide (lane_stride == 1, the word's
bytes are contiguous): one host-port word per cycle, writing every lane whose byte it holds; a word
spanning k port words takes k cycles (``sim.timing.load_beats``). A zero-fill load (``zero``) writes
one fill word per cycle and ends at ``exec_last`` (:func:`hwgen.hw_facts.load_last`); a gathering load
ends once every word is issued and the last read is back (:data:`hwgen.hw_facts.LOAD_LATENCY`).

It owns its host read port and three write ports (A, W, quantization table); the top connects them to
the memories and the table registers. Registers from :data:`hwgen.hw_facts.REGISTERS` (unit ``load``).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AcceleratorConfig
from ..hw_facts import bits_for, byte_bits, load_last
from ..isa import QTABLE_BYTES, LoadTarget
from .common import ADDR_WIDTH, UNIT_PORT, host_read_port, unit_registers

__all__ = ["LoadUnit", "write_port"]



def write_port(data_width: int, enables: int) -> wiring.Signature:
    """A lane-enabled write port, from the writer's side."""
    return wiring.Signature({"addr": Out(ADDR_WIDTH), "data": Out(data_width), "en": Out(enables)})


class LoadUnit(wiring.Component):
    """Loads for one configuration (array shape, element widths, host port width)."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        self.byte_bits = byte_bits(cfg.host_port_bytes)
        R, C = cfg.rows, cfg.cols
        super().__init__({
            "ctl": In(UNIT_PORT),
            **host_read_port(cfg),
            "a_wr": Out(write_port(R * cfg.input_width, R)),
            "w_wr": Out(write_port(C * cfg.weight_width, C)),
            #: quantization-table bytes: en says the load targets the table, data/bytes the entry's bytes
            "q_wr": Out(wiring.Signature({"en": Out(1), "addr": Out(ADDR_WIDTH), "data": Out(8 * QTABLE_BYTES),
                                          "bytes": Out(QTABLE_BYTES)})),
        })
        self.regs = unit_registers(cfg, "load")

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        R, C = cfg.rows, cfg.cols
        iw, ww = cfg.input_width, cfg.weight_width
        P, PB, BB = cfg.host_port_width, cfg.host_port_bytes, self.byte_bits
        LD = self.ctl.exec.payload.load   # the executing load
        NEW = self.ctl.cmd.payload.load   # the offered one (its start state and end count)
        in_load, e, e_last = self.ctl.exec.active, self.ctl.exec.cnt, self.ctl.exec.last
        ld_w, ld_l, ld_row_ptr, ld_ptr = r.ld_word, r.ld_lane, r.ld_row_ptr, r.ld_ptr
        ld_p_valid, ld_p_off, ld_p_addr, ld_p_lane = r.ld_p_valid, r.ld_p_byte, r.ld_p_spad_addr, r.ld_p_lane
        ld_p_wide, ld_p_rot, ld_p_lo, ld_p_hi = r.ld_p_wide, r.ld_p_rot, r.ld_p_lo, r.ld_p_hi
        rdata = self.mem_rdata
        packed = cfg.packed_weights
        if packed:  # target w4: two weights per host byte (hwgen.isa.load_word_bytes)
            w4 = Signal(name="ld_w4")
            m.d.comb += w4.eq(LD.target == int(LoadTarget.W4))

        # decode: start state; the end count of a zero-fill load
        m.d.comb += [self.ctl.cmd.ready.eq(1), self.ctl.last.eq(load_last(NEW.count))]
        with m.If(self.ctl.cmd.valid):
            m.d.sync += [ld_w.eq(0), ld_l.eq(0), ld_row_ptr.eq(NEW.base), ld_ptr.eq(NEW.base)]
        m.d.comb += self.ctl.done.eq(Mux(LD.zero, e == e_last, ld_w == LD.count))

        wide = Signal(name="ld_wide")
        m.d.comb += wide.eq(LD.lane_stride == 1)
        issuing = Signal(name="ld_issuing")
        m.d.comb += issuing.eq(in_load & ~LD.zero & (ld_w != LD.count))
        o = ld_row_ptr[:BB] if BB else Const(0, 1)
        avail = Mux(ld_l == 0, PB - o, PB)  # bytes of the current word in this beat
        hi_raw = Signal(10, name="ld_beat_end")
        m.d.comb += hi_raw.eq(ld_l + (Mux(w4, avail << 1, avail) if packed else avail))  # lanes it ends at
        last_beat = hi_raw >= LD.lanes
        hi = Mux(last_beat, LD.lanes, hi_raw)
        m.d.sync += ld_p_valid.eq(issuing)
        with m.If(issuing):
            m.d.comb += self.mem_re.eq(1)
            m.d.sync += [ld_p_addr.eq(LD.spad_addr + ld_w), ld_p_lane.eq(LD.lane_off + ld_l), ld_p_wide.eq(wide),
                         ld_p_lo.eq(LD.lane_off + ld_l), ld_p_hi.eq(LD.lane_off + hi)]
            if BB:
                m.d.sync += [ld_p_off.eq(ld_ptr[:BB]), ld_p_rot.eq(o - LD.lane_off[:BB])]
            if packed:
                m.d.sync += r.ld_p_nrot.eq(((o << 1) - LD.lane_off)[:BB + 1])
            with m.If(wide):
                byte_pos = Mux(w4, ld_l >> 1, ld_l) if packed else ld_l  # the beat's first byte in the word
                m.d.comb += self.mem_addr.eq((ld_row_ptr + byte_pos) >> BB)
                with m.If(last_beat):
                    m.d.sync += [ld_l.eq(0), ld_w.eq(ld_w + 1), ld_row_ptr.eq(ld_row_ptr + LD.word_stride)]
                with m.Else():
                    m.d.sync += ld_l.eq(hi_raw)
            with m.Else():
                m.d.comb += self.mem_addr.eq(ld_ptr >> BB)
                with m.If(ld_l == LD.lanes - 1):
                    m.d.sync += [ld_l.eq(0), ld_w.eq(ld_w + 1), ld_row_ptr.eq(ld_row_ptr + LD.word_stride),
                                 ld_ptr.eq(ld_row_ptr + LD.word_stride)]
                with m.Else():
                    m.d.sync += [ld_l.eq(ld_l + 1), ld_ptr.eq(ld_ptr + LD.lane_stride)]

        byte = Signal(8, name="ld_byte")
        m.d.comb += byte.eq(rdata.word_select(ld_p_off, 8) if BB else rdata[:8])
        # wide: lane L takes byte (rot + L) mod PB of the port word
        rotated = Signal(P, name="ld_rotated")
        m.d.comb += rotated.eq((Cat(rdata, rdata) >> (ld_p_rot * 8))[:P] if BB else rdata)

        def lane_mask(n: int, lo, count):
            lanes = count[:n.bit_length()]
            off = lo[:bits_for(n)]
            return ((((Const(1, n + 1) << lanes) - 1)[:n + 1]) << off)[:n]

        # one write per cycle into the target: a fill word (zero mode), a gathered byte, or a beat's lanes
        ld_we = Signal(name="ld_we")
        ld_wr_addr = Signal(ADDR_WIDTH, name="ld_wr_addr")
        ld_wr_byte = Signal(8, name="ld_wr_byte")
        ld_wr_wide = Signal(name="ld_wr_wide")
        with m.If(in_load & LD.zero):
            m.d.comb += [ld_we.eq(1), ld_wr_addr.eq(LD.spad_addr + e), ld_wr_byte.eq(LD.base[:8])]
        with m.Elif(in_load & ld_p_valid):
            m.d.comb += [ld_we.eq(1), ld_wr_addr.eq(ld_p_addr), ld_wr_byte.eq(byte), ld_wr_wide.eq(ld_p_wide)]

        def lane_enables(n: int):
            one_hot = (Const(1, n) << ld_p_lane[:bits_for(n)])[:n]
            beat = lane_mask(n, ld_p_lo, ld_p_hi - ld_p_lo)
            return Mux(LD.zero, lane_mask(n, LD.lane_off, LD.lanes), Mux(ld_wr_wide, beat, one_hot))

        def lane_data(n: int, width: int):
            narrow = Cat(*[ld_wr_byte[:width]] * n)
            wide_v = Cat(*[rotated.word_select(L % PB, 8)[:width] for L in range(n)])
            return Mux(ld_wr_wide, wide_v, narrow)

        with m.If(ld_we & (LD.target == 0)):
            m.d.comb += [self.a_wr.addr.eq(ld_wr_addr), self.a_wr.data.eq(lane_data(R, iw)),
                         self.a_wr.en.eq(lane_enables(R))]
        w_data = lane_data(C, ww)
        writes_w = LD.target == 1
        if packed:  # lane L takes nibble (nrot + L) mod 2*PB of the port word, sign-extended to ww bits
            nib_rot = Signal(P, name="ld_nibbles")
            m.d.comb += nib_rot.eq((Cat(rdata, rdata) >> (r.ld_p_nrot * 4))[:P])

            def weight(L: int):
                nib = nib_rot.word_select(L % (2 * PB), 4)
                return Cat(nib, nib[3].replicate(ww - 4)) if ww > 4 else nib

            w_data = Mux(w4, Cat(*[weight(L) for L in range(C)]), w_data)
            writes_w = writes_w | w4
        with m.If(ld_we & writes_w):
            m.d.comb += [self.w_wr.addr.eq(ld_wr_addr), self.w_wr.data.eq(w_data),
                         self.w_wr.en.eq(lane_enables(C))]
        m.d.comb += [self.q_wr.en.eq(ld_we & (LD.target == 2)), self.q_wr.addr.eq(ld_wr_addr),
                     self.q_wr.data.eq(lane_data(QTABLE_BYTES, 8)), self.q_wr.bytes.eq(lane_enables(QTABLE_BYTES))]
        return m
