"""The accelerator: controller, scratchpads, accumulator buffer, systolic array,
requantization, host-memory port and performance counters.

The controller is in-order and data-independent: every instruction is fetched
(``fetch_beats`` + 1 cycles), decoded (1 cycle) and executed for a number of
cycles that the decode cycle computes from its fields (``e_last``). The
execution schedules below are the ones :mod:`sim.timing` states in closed form;
the cycle model and this RTL are checked against each other cycle for cycle.

Host port: word address ``mem_addr`` (host_port_width bits a word), read data
one cycle after ``mem_re``; byte-enabled writes.
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import INSTR_BITS, AcceleratorConfig
from .isa import OPCODE_BITS, QTABLE_BYTES, Opcode, field_offsets
from .hw_facts import CONTROLLER_STATES, COUNTER_WIDTH
from .limits import LimitError, check_limit

__all__ = ["Accelerator", "COUNTER_WIDTH"]



def _bits(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


class _Fields:
    """Slices of the instruction register, from the ISA's field table."""

    def __init__(self, ir: Signal, op: Opcode):
        for name, (off, f) in field_offsets(op).items():
            v = ir[off:off + f.width]
            setattr(self, name, v.as_signed() if f.signed else v)


class Accelerator(wiring.Component):
    """Top-level accelerator for one :class:`AcceleratorConfig`."""

    def __init__(self, cfg: AcceleratorConfig):
        # Elaboration time and memory grow with the PE count: refuse an array no run can finish with.
        try:
            check_limit("rtl_pes", cfg.pes, f"config '{cfg.name}': a {cfg.rows}x{cfg.cols} array to elaborate "
                                            f"into RTL, processing elements")
        except LimitError:
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise
        self.cfg = cfg
        pb = cfg.host_port_bytes
        self.byte_bits = _bits(pb) if pb > 1 else 0
        super().__init__({
            "start": In(1),
            "done": Out(1),
            "error": Out(1),
            "cycles": Out(COUNTER_WIDTH),
            "busy_pe": Out(COUNTER_WIDTH),
            "mem_addr": Out(32 - self.byte_bits),
            "mem_re": Out(1),
            "mem_rdata": In(cfg.host_port_width),
            "mem_we": Out(1),
            "mem_wstrb": Out(pb),
            "mem_wdata": Out(cfg.host_port_width),
        })
        R, C = cfg.rows, cfg.cols
        self.array = SystolicArray(R, C, cfg.input_width, cfg.weight_width, cfg.acc_width,
                                   os=cfg.supports_os, ws=cfg.supports_ws)
        self.a_spad = Memory(shape=unsigned(R * cfg.input_width), depth=cfg.a_spad_depth, init=[])
        self.w_spad = Memory(shape=unsigned(C * cfg.weight_width), depth=cfg.w_spad_depth, init=[])
        self.acc_buf = Memory(shape=unsigned(C * cfg.acc_width), depth=cfg.acc_depth, init=[])
        #: per-column quantization table: bias[31:0], multiplier[63:32], shift[69:64]
        self.qtable = [Signal(8 * QTABLE_BYTES, name=f"qtable_c{j}") for j in range(C)]

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        R, C = cfg.rows, cfg.cols
        iw, ww, accw = cfg.input_width, cfg.weight_width, cfg.acc_width
        P, PB, BB = cfg.host_port_width, cfg.host_port_bytes, self.byte_bits
        beats = cfg.fetch_beats

        m.submodules.array = arr = self.array
        m.submodules.a_spad = self.a_spad
        m.submodules.w_spad = self.w_spad
        m.submodules.acc_buf = self.acc_buf
        a_rd = self.a_spad.read_port()
        a_wr = self.a_spad.write_port(granularity=iw)
        w_rd = self.w_spad.read_port()
        w_wr = self.w_spad.write_port(granularity=ww)
        acc_rd = self.acc_buf.read_port()
        acc_wr = self.acc_buf.write_port()

        # ---------------------------------------------------------- controller state
        pc = Signal(32, name="pc")
        ir = Signal(INSTR_BITS, name="instr_reg")
        fetch_cnt = Signal(_bits(beats + 1), name="fetch_cnt")
        e = Signal(26, name="exec_cnt")
        e_last = Signal(26, name="exec_last")
        cycles = Signal(COUNTER_WIDTH, name="cycle_counter")
        busy = Signal(COUNTER_WIDTH, name="busy_pe_counter")
        err = Signal(name="error_flag")
        # requantization parameters (config instruction)
        q_mult = Signal(signed(32), name="q_multiplier")
        q_shift = Signal(6, name="q_shift")
        q_zp = Signal(signed(16), name="q_zero_point")
        q_lo = Signal(signed(16), name="q_clamp_lo")
        q_hi = Signal(signed(16), name="q_clamp_hi")
        self.state_regs = dict(pc=pc, instr_reg=ir, fetch_cnt=fetch_cnt, exec_cnt=e, exec_last=e_last)
        self.counter_regs = dict(cycles=cycles, busy_pe=busy)
        self.quant_regs = dict(multiplier=q_mult, shift=q_shift, zero_point=q_zp, clamp_lo=q_lo, clamp_hi=q_hi)

        op = ir[:OPCODE_BITS]
        LD = _Fields(ir, Opcode.LOAD)
        CP = _Fields(ir, Opcode.COMPUTE)
        ST = _Fields(ir, Opcode.STORE)
        CF = _Fields(ir, Opcode.CONFIG)

        m.d.comb += [self.cycles.eq(cycles), self.busy_pe.eq(busy), self.error.eq(err)]

        # ------------------------------------------------------------------ load unit
        ld_w = Signal(16, name="ld_word")
        ld_l = Signal(9, name="ld_lane")
        ld_row_ptr = Signal(32, name="ld_row_ptr")
        ld_ptr = Signal(32, name="ld_ptr")
        ld_p_valid = Signal(name="ld_p_valid")
        ld_p_off = Signal(max(BB, 1), name="ld_p_byte")
        ld_p_addr = Signal(16, name="ld_p_spad_addr")
        ld_p_lane = Signal(9, name="ld_p_lane")

        # ------------------------------------------------------------------ compute
        a_valid = Signal(name="feed_a_valid")
        b_valid = Signal(name="feed_b_valid")
        cp_t1 = Signal(26, name="cp_phase")   # os: readout start; ws: first aligned output row
        busy_inc = Signal(26, name="busy_inc")
        wb_valid = Signal(name="wb_valid")
        wb_addr = Signal(16, name="wb_addr")
        wb_data = Signal(C * accw, name="wb_data")

        # ------------------------------------------------------------------ store unit
        st_r = Signal(16, name="st_row")
        st_c = Signal(9, name="st_col")
        st_row_ptr = Signal(32, name="st_row_ptr")
        st_ptr = Signal(32, name="st_ptr")
        s1_valid = Signal(name="rq1_valid")
        s1_lane = Signal(9, name="rq1_lane")
        s1_ptr = Signal(32, name="rq1_ptr")
        s2_valid = Signal(name="rq2_valid")
        s2_prod = Signal(signed(accw + 32), name="rq2_product")
        s2_shift = Signal(6, name="rq2_shift")
        s2_ptr = Signal(32, name="rq2_ptr")
        s3_valid = Signal(name="rq3_valid")
        s3_byte = Signal(8, name="rq3_byte")
        s3_ptr = Signal(32, name="rq3_ptr")

        # defaults for the array controls: idle (all zero) unless a compute phase drives them
        in_compute = Signal()
        in_load = Signal()
        in_store = Signal()

        with m.FSM(init=CONTROLLER_STATES[0], name="ctrl_state") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), cycles.eq(0), busy.eq(0), err.eq(0), fetch_cnt.eq(0)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                m.d.sync += cycles.eq(cycles + 1)
                with m.If(fetch_cnt < beats):
                    m.d.comb += [self.mem_re.eq(1), self.mem_addr.eq((pc >> BB) + fetch_cnt)]
                with m.If(fetch_cnt > 0):
                    for b in range(beats):
                        with m.If(fetch_cnt == b + 1):
                            m.d.sync += ir[b * P:(b + 1) * P].eq(self.mem_rdata)
                m.d.sync += fetch_cnt.eq(fetch_cnt + 1)
                with m.If(fetch_cnt == beats):
                    m.next = "DECODE"

            with m.State("DECODE"):
                m.d.sync += [cycles.eq(cycles + 1), fetch_cnt.eq(0), e.eq(0)]
                with m.Switch(op):
                    with m.Case(Opcode.HALT):
                        m.next = "HALTED"
                    with m.Case(Opcode.FENCE):
                        m.d.sync += pc.eq(pc + INSTR_BITS // 8)
                        m.next = "FETCH"
                    with m.Case(Opcode.CONFIG):
                        m.d.sync += [pc.eq(pc + INSTR_BITS // 8), q_mult.eq(CF.multiplier), q_shift.eq(CF.shift),
                                     q_zp.eq(CF.zero_point), q_lo.eq(CF.clamp_lo), q_hi.eq(CF.clamp_hi)]
                        m.next = "FETCH"
                    with m.Case(Opcode.LOAD):
                        m.d.sync += [pc.eq(pc + INSTR_BITS // 8), ld_w.eq(0), ld_l.eq(0),
                                     ld_row_ptr.eq(LD.base), ld_ptr.eq(LD.base), e_last.eq(LD.count - 1)]
                        m.next = "LOAD"
                    with m.Case(Opcode.COMPUTE):
                        m.d.sync += pc.eq(pc + INSTR_BITS // 8)
                        with m.If(CP.dataflow == 0):
                            m.d.sync += [e_last.eq(CP.depth + 2 * R + C),
                                         cp_t1.eq(CP.depth + R + C),
                                         busy_inc.eq(CP.rows * C)]
                        with m.Else():
                            m.d.sync += [e_last.eq(CP.rows + 2 * R + C + 2),
                                         cp_t1.eq(2 * R + C + 2),
                                         busy_inc.eq(CP.depth * C)]
                        m.next = "COMPUTE"
                    with m.Case(Opcode.STORE):
                        m.d.sync += [pc.eq(pc + INSTR_BITS // 8), st_r.eq(0), st_c.eq(0),
                                     st_row_ptr.eq(ST.base), st_ptr.eq(ST.base),
                                     e_last.eq(ST.rows * ST.cols + 2)]
                        m.next = "STORE"
                    with m.Default():
                        m.d.sync += err.eq(1)
                        m.next = "HALTED"

            # a zero-fill load, a compute and a store end at e_last; a gathering load once every
            # word is issued (ld_word == count) and the last read has come back
            load_done = Mux(LD.zero, e == e_last, ld_w == LD.count)
            for name, flag, finish in (("LOAD", in_load, load_done), ("COMPUTE", in_compute, e == e_last),
                                       ("STORE", in_store, e == e_last)):
                with m.State(name):
                    m.d.comb += flag.eq(1)
                    m.d.sync += [cycles.eq(cycles + 1), e.eq(e + 1)]
                    with m.If(finish):
                        m.next = "FETCH"

            with m.State("HALTED"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), cycles.eq(0), busy.eq(0), err.eq(0), fetch_cnt.eq(0)]
                    m.next = "FETCH"
        if set(fsm.encoding) != set(CONTROLLER_STATES):  # hw_facts is what pure-Python code reads of this FSM
            raise AssertionError(f"controller states {sorted(fsm.encoding)} != hwgen.hw_facts {CONTROLLER_STATES}")
        self.fsm_state = fsm.state

        # ------------------------------------------------------------ load datapath
        # Two gather modes. Narrow (any lane stride): one element per cycle. Wide (lane_stride == 1,
        # the word's bytes are contiguous): one host-port word per cycle, writing every lane whose
        # byte it holds; a word spanning k port words takes k cycles (sim.timing.load_beats).
        wide = Signal(name="ld_wide")
        m.d.comb += wide.eq(LD.lane_stride == 1)
        issuing = Signal(name="ld_issuing")
        m.d.comb += issuing.eq(in_load & ~LD.zero & (ld_w != LD.count))
        o = ld_row_ptr[:BB] if BB else Const(0, 1)
        avail = Mux(ld_l == 0, PB - o, PB)  # bytes of the current word in this beat
        hi_raw = Signal(10, name="ld_beat_end")
        m.d.comb += hi_raw.eq(ld_l + avail)
        last_beat = hi_raw >= LD.lanes
        hi = Mux(last_beat, LD.lanes, hi_raw)
        ld_p_wide = Signal(name="ld_p_wide")
        ld_p_rot = Signal(max(BB, 1), name="ld_p_rot")
        ld_p_lo = Signal(10, name="ld_p_lo")
        ld_p_hi = Signal(10, name="ld_p_hi")
        m.d.sync += ld_p_valid.eq(issuing)
        with m.If(issuing):
            m.d.comb += self.mem_re.eq(1)
            m.d.sync += [ld_p_addr.eq(LD.spad_addr + ld_w), ld_p_lane.eq(LD.lane_off + ld_l), ld_p_wide.eq(wide),
                         ld_p_lo.eq(LD.lane_off + ld_l), ld_p_hi.eq(LD.lane_off + hi)]
            if BB:
                m.d.sync += [ld_p_off.eq(ld_ptr[:BB]), ld_p_rot.eq(o - LD.lane_off[:BB])]
            with m.If(wide):
                m.d.comb += self.mem_addr.eq((ld_row_ptr + ld_l) >> BB)
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
        m.d.comb += byte.eq(self.mem_rdata.word_select(ld_p_off, 8) if BB else self.mem_rdata[:8])
        # wide: lane L takes byte (rot + L) mod PB of the port word
        rotated = Signal(P, name="ld_rotated")
        m.d.comb += rotated.eq((Cat(self.mem_rdata, self.mem_rdata) >> (ld_p_rot * 8))[:P] if BB else self.mem_rdata)

        def lane_mask(n: int, lo, count):
            lanes = count[:n.bit_length()]
            off = lo[:_bits(n)]
            return ((((Const(1, n + 1) << lanes) - 1)[:n + 1]) << off)[:n]

        # one write per cycle into the target: a fill word (zero mode), a gathered byte, or a beat's lanes
        ld_we = Signal(name="ld_we")
        ld_wr_addr = Signal(16, name="ld_wr_addr")
        ld_wr_byte = Signal(8, name="ld_wr_byte")
        ld_wr_wide = Signal(name="ld_wr_wide")
        with m.If(in_load & LD.zero):
            m.d.comb += [ld_we.eq(1), ld_wr_addr.eq(LD.spad_addr + e), ld_wr_byte.eq(LD.base[:8])]
        with m.Elif(in_load & ld_p_valid):
            m.d.comb += [ld_we.eq(1), ld_wr_addr.eq(ld_p_addr), ld_wr_byte.eq(byte), ld_wr_wide.eq(ld_p_wide)]

        def lane_enables(n: int):
            one_hot = (Const(1, n) << ld_p_lane[:_bits(n)])[:n]
            beat = lane_mask(n, ld_p_lo, ld_p_hi - ld_p_lo)
            return Mux(LD.zero, lane_mask(n, LD.lane_off, LD.lanes), Mux(ld_wr_wide, beat, one_hot))

        def lane_data(n: int, width: int):
            narrow = Cat(*[ld_wr_byte[:width]] * n)
            wide_v = Cat(*[rotated.word_select(L % PB, 8)[:width] for L in range(n)])
            return Mux(ld_wr_wide, wide_v, narrow)

        with m.If(ld_we & (LD.target == 0)):
            m.d.comb += [a_wr.addr.eq(ld_wr_addr), a_wr.data.eq(lane_data(R, iw)), a_wr.en.eq(lane_enables(R))]
        with m.If(ld_we & (LD.target == 1)):
            m.d.comb += [w_wr.addr.eq(ld_wr_addr), w_wr.data.eq(lane_data(C, ww)), w_wr.en.eq(lane_enables(C))]
        q_en = lane_enables(QTABLE_BYTES)
        q_data = lane_data(QTABLE_BYTES, 8)
        for j, entry in enumerate(self.qtable):
            for b in range(QTABLE_BYTES):
                with m.If(ld_we & (LD.target == 2) & (ld_wr_addr == j) & q_en[b]):
                    m.d.sync += entry[8 * b:8 * (b + 1)].eq(q_data[8 * b:8 * (b + 1)])

        # --------------------------------------------------------- compute datapath
        os_mode = CP.dataflow == 0
        # scratchpad read scheduling (data arrives one cycle later, gated by *_valid)
        os_k = Signal(26)
        ws_p = Signal(26)
        ws_m = Signal(26)
        m.d.comb += [os_k.eq(e - 1), ws_p.eq(e - 1), ws_m.eq(e - (R + 2))]
        a_req = Signal()
        b_req = Signal()
        with m.If(in_compute):
            with m.If(os_mode):
                m.d.comb += [a_req.eq((e >= 1) & (os_k < CP.depth)), b_req.eq((e >= 1) & (os_k < CP.depth)),
                             a_rd.addr.eq(CP.a_addr + os_k), w_rd.addr.eq(CP.w_addr + os_k)]
            with m.Else():
                # preload weight rows R-1 .. 0 at e = 1 .. R; rows >= depth are zeros
                m.d.comb += [b_req.eq((e >= 1) & (e <= R) & ((R - e) < CP.depth)),
                             w_rd.addr.eq(CP.w_addr + (R - e)),
                             a_req.eq((e >= R + 2) & (ws_m < CP.rows)),
                             a_rd.addr.eq(CP.a_addr + ws_m)]
        m.d.sync += [a_valid.eq(a_req), b_valid.eq(b_req)]
        m.d.comb += [arr.a_feed.eq(Mux(a_valid, a_rd.data, 0)), arr.b_feed.eq(Mux(b_valid, w_rd.data, 0))]
        with m.If(in_compute & a_valid):
            m.d.sync += busy.eq(busy + busy_inc)

        with m.If(in_compute):
            m.d.comb += arr.clear.eq(e == 0)
            with m.If(os_mode):
                m.d.comb += [arr.b_shift.eq(1), arr.b_skew.eq(1), arr.use_b_reg.eq(0), arr.deskew.eq(0),
                             arr.acc_self.eq(e < cp_t1), arr.mul_en.eq(e < cp_t1)]
            with m.Else():
                m.d.comb += [arr.b_shift.eq(e <= R + 1), arr.b_skew.eq(0), arr.use_b_reg.eq(1),
                             arr.deskew.eq(1), arr.acc_self.eq(0), arr.mul_en.eq(e >= R + 2)]

        # write-back: a token (row address + data) per output row, read-modify-write one cycle later
        wb_req = Signal()
        wb_row = Signal(26)
        with m.If(os_mode):
            # readout cycle r = e - t1 leaves tile row R-1-r at the bottom
            m.d.comb += wb_row.eq((R - 1) - (e - cp_t1))
            m.d.comb += wb_req.eq(in_compute & (e >= cp_t1) & (e < cp_t1 + R) & (wb_row < CP.rows))
        with m.Else():
            m.d.comb += wb_row.eq(e - cp_t1)
            m.d.comb += wb_req.eq(in_compute & (e >= cp_t1) & (wb_row < CP.rows))
        m.d.sync += [wb_valid.eq(wb_req), wb_addr.eq(CP.o_addr + wb_row), wb_data.eq(arr.out)]

        summed = []
        for j in range(C):
            old = acc_rd.data[j * accw:(j + 1) * accw].as_signed()
            new = wb_data[j * accw:(j + 1) * accw].as_signed()
            summed.append((Mux(CP.accumulate, old, 0) + new)[:accw])
        with m.If(in_compute & wb_valid):
            m.d.comb += [acc_wr.addr.eq(wb_addr), acc_wr.data.eq(Cat(*summed)), acc_wr.en.eq(1)]

        # ----------------------------------------------------------- store datapath
        st_issue = Signal()
        m.d.comb += st_issue.eq(in_store & (e < e_last - 2))
        with m.If(in_compute):
            m.d.comb += acc_rd.addr.eq(CP.o_addr + wb_row)
        with m.Else():
            m.d.comb += acc_rd.addr.eq(ST.o_addr + st_r)
        m.d.sync += [s1_valid.eq(st_issue), s2_valid.eq(s1_valid), s3_valid.eq(s2_valid)]
        with m.If(st_issue):
            m.d.sync += [s1_lane.eq(st_c), s1_ptr.eq(st_ptr)]
            with m.If(st_c == ST.cols - 1):
                m.d.sync += [st_c.eq(0), st_r.eq(st_r + 1), st_row_ptr.eq(st_row_ptr + ST.row_stride),
                             st_ptr.eq(st_row_ptr + ST.row_stride)]
            with m.Else():
                m.d.sync += [st_c.eq(st_c + 1), st_ptr.eq(st_ptr + ST.col_stride)]
        lane_val = acc_rd.data.word_select(s1_lane[:_bits(C)], accw).as_signed()
        entry = Array(self.qtable)[s1_lane[:_bits(C)]]
        use_table = ST.qtable
        biased = Signal(signed(accw), name="rq_biased")  # wraps at the accumulator width
        m.d.comb += biased.eq(lane_val + Mux(use_table, entry[0:32].as_signed(), 0))
        m.d.sync += [s2_prod.eq(biased * Mux(use_table, entry[32:64].as_signed(), q_mult)),
                     s2_shift.eq(Mux(use_table, entry[64:70], q_shift)), s2_ptr.eq(s1_ptr)]
        rnd = (Const(1, 64) << s2_shift)[1:64]  # 2**(shift-1), or 0 when shift == 0
        shifted = Signal(signed(accw + 34), name="rq_shifted")
        m.d.comb += shifted.eq((s2_prod + rnd) >> s2_shift)
        with_zp = Signal(signed(accw + 35), name="rq_with_zp")
        m.d.comb += with_zp.eq(shifted + q_zp)
        lo = Mux(ST.relu & (q_zp > q_lo), q_zp, q_lo)
        clamped_lo = Mux(with_zp < lo, lo, with_zp)
        clamped = Mux(clamped_lo > q_hi, q_hi, clamped_lo)
        m.d.sync += [s3_byte.eq(clamped[:8]), s3_ptr.eq(s2_ptr)]
        with m.If(in_store & s3_valid):
            m.d.comb += [self.mem_we.eq(1), self.mem_addr.eq(s3_ptr >> BB),
                         self.mem_wdata.eq(Cat(*[s3_byte] * PB)),
                         self.mem_wstrb.eq((Const(1, PB) << s3_ptr[:BB])[:PB] if BB else 1)]
        return m
