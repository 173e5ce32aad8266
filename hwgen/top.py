"""The accelerator: the controller and the load, compute and store units (:mod:`hwgen.units`), with
the state they share: the scratchpads, the accumulator buffer, the per-column quantization table and
the systolic array.

The controller is in-order and data-independent: every instruction is fetched (``fetch_beats`` + 1
cycles), decoded (1 cycle) and executed for a number of cycles that the decode cycle latches from the
executing unit's closed form (``exec_last``). The schedules are those of :mod:`hwgen.hw_facts`, which
:mod:`sim.timing` sums; the cycle model and this RTL are checked against each other cycle for cycle.

This module only instantiates and wires: submodules ``ctrl``, ``load``, ``compute``, ``store`` and
``array`` (each unit's registers are fault sites under its name, ``load.ld_word``), the memories
``a_spad``, ``w_spad``, ``acc_buf`` and the registers ``qtable_c<j>`` at the top. The units' host-port
accesses never overlap (fetch, load and store run in different controller states, and an idle unit
drives zeros), so the host port is their OR; the accumulator buffer's read port takes the compute
unit's address while a compute executes, else the store unit's.

Host port: word address ``mem_addr`` (host_port_width bits a word), read data
one cycle after ``mem_re``; byte-enabled writes.
"""

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import AcceleratorConfig, ConfigError
from .hw_facts import COUNTER_WIDTH, byte_bits
from .isa import QTABLE_BYTES
from .limits import LimitError, check_limit
from .units.common import unit_registers
from .units.compute import ComputeUnit
from .units.controller import Controller
from .units.load import LoadUnit
from .units.store import StoreUnit

__all__ = ["Accelerator", "COUNTER_WIDTH"]


class Accelerator(wiring.Component):
    """Top-level accelerator for one :class:`AcceleratorConfig`."""

    def __init__(self, cfg: AcceleratorConfig):
        # Elaboration time and memory grow with the PE count: refuse an array no run can finish with.
        try:
            cfg.require_in_order("the RTL generator (hwgen.top)")
            check_limit("rtl_pes", cfg.pes, f"config '{cfg.name}': a {cfg.rows}x{cfg.cols} array to elaborate "
                                            f"into RTL, processing elements")
        except (LimitError, ConfigError):
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise
        self.cfg = cfg
        pb = cfg.host_port_bytes
        self.byte_bits = byte_bits(pb)
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
        self.qtable = unit_registers(cfg, "").qtable
        self.ctrl = Controller(cfg)
        self.load = LoadUnit(cfg)
        self.compute = ComputeUnit(cfg)
        self.store = StoreUnit(cfg)
        c, s = self.ctrl.regs, self.store.regs
        self.state_regs = dict(pc=c.pc, instr_reg=c.instr_reg, fetch_cnt=c.fetch_cnt, exec_cnt=c.exec_cnt,
                               exec_last=c.exec_last)
        self.counter_regs = dict(cycles=c.cycle_counter, busy_pe=c.busy_pe_counter)
        self.quant_regs = dict(multiplier=s.q_multiplier, shift=s.q_shift, zero_point=s.q_zero_point,
                               clamp_lo=s.q_clamp_lo, clamp_hi=s.q_clamp_hi)

    @property
    def fsm_state(self):
        """The controller FSM's state register (after elaboration)."""
        return self.ctrl.fsm_state

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        ctrl, load, compute, store = self.ctrl, self.load, self.compute, self.store
        m.submodules.ctrl = ctrl
        m.submodules.load = load
        m.submodules.compute = compute
        m.submodules.store = store
        m.submodules.array = self.array
        m.submodules.a_spad = self.a_spad
        m.submodules.w_spad = self.w_spad
        m.submodules.acc_buf = self.acc_buf
        a_rd = self.a_spad.read_port()
        a_wr = self.a_spad.write_port(granularity=cfg.input_width)
        w_rd = self.w_spad.read_port()
        w_wr = self.w_spad.write_port(granularity=cfg.weight_width)
        acc_rd = self.acc_buf.read_port()
        acc_wr = self.acc_buf.write_port()

        # controller <-> units, compute <-> array
        wiring.connect(m, ctrl.load, load.ctl)
        wiring.connect(m, ctrl.compute, compute.ctl)
        wiring.connect(m, ctrl.store, store.ctl)
        wiring.connect(m, compute.array, self.array)
        m.d.comb += [ctrl.start.eq(self.start), self.done.eq(ctrl.done), self.error.eq(ctrl.error),
                     self.cycles.eq(ctrl.cycles), self.busy_pe.eq(ctrl.busy_pe),
                     ctrl.busy_en.eq(compute.busy_en), ctrl.busy_inc.eq(compute.busy_inc)]

        # host port: fetch, load reads and store writes never overlap
        m.d.comb += [self.mem_addr.eq(ctrl.mem_addr | load.mem_addr | store.mem_addr),
                     self.mem_re.eq(ctrl.mem_re | load.mem_re),
                     ctrl.mem_rdata.eq(self.mem_rdata), load.mem_rdata.eq(self.mem_rdata),
                     self.mem_we.eq(store.mem_we), self.mem_wstrb.eq(store.mem_wstrb),
                     self.mem_wdata.eq(store.mem_wdata)]

        # memories
        m.d.comb += [a_wr.addr.eq(load.a_wr.addr), a_wr.data.eq(load.a_wr.data), a_wr.en.eq(load.a_wr.en),
                     w_wr.addr.eq(load.w_wr.addr), w_wr.data.eq(load.w_wr.data), w_wr.en.eq(load.w_wr.en),
                     a_rd.addr.eq(compute.a_rd.addr), compute.a_rd.data.eq(a_rd.data),
                     w_rd.addr.eq(compute.w_rd.addr), compute.w_rd.data.eq(w_rd.data),
                     acc_rd.addr.eq(Mux(ctrl.compute.exec.active, compute.acc_rd.addr, store.acc_rd.addr)),
                     compute.acc_rd.data.eq(acc_rd.data), store.acc_rd.data.eq(acc_rd.data),
                     acc_wr.addr.eq(compute.acc_wr.addr), acc_wr.data.eq(compute.acc_wr.data),
                     acc_wr.en.eq(compute.acc_wr.en)]

        # the quantization table: written by loads (target q), read by the store unit's requantizer
        q = load.q_wr
        for j, entry in enumerate(self.qtable):
            m.d.comb += store.qtable[j].eq(entry)
            for b in range(QTABLE_BYTES):
                with m.If(q.en & (q.addr == j) & q.bytes[b]):
                    m.d.sync += entry[8 * b:8 * (b + 1)].eq(q.data[8 * b:8 * (b + 1)])
        return m
