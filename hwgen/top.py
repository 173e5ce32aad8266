"""The accelerator: the controller and the load, compute and store units (:mod:`hwgen.units`), with
the state they share: the scratchpads, the accumulator buffer, the per-column quantization table and
the systolic array.

The controller is in-order and data-independent: every instruction is fetched (``fetch_beats`` + 1
cycles), decoded (1 cycle) and executed for a number of cycles that the decode cycle latches from the
executing unit's closed form (``exec_last``). The schedules are those of :mod:`hwgen.hw_facts`, which
:mod:`sim.timing` sums; the cycle model and this RTL are checked against each other cycle for cycle.

This module only instantiates and wires: submodules ``ctrl``, ``load``, ``compute``, ``store`` and
``array`` (each unit's registers are fault sites under its name, ``load.ld_word``), the memories
``a_spad``, ``w_spad``, ``acc_buf`` and the registers ``qtable_c<j>`` at the top. The accumulator
buffer's read port takes the compute unit's address while a compute executes, else the store unit's.

Three host ports, one per requester, so nothing arbitrates: instruction fetch (``fetch_addr``,
``fetch_re``, ``fetch_rdata``), load reads (``ld_addr``, ``ld_re``, ``ld_rdata``) and store writes
(``st_addr``, ``st_we``, ``st_wstrb``, ``st_wdata``). Each: word address (host_port_width bits a
word), read data one cycle after the read, byte-enabled writes. All three see one host memory.
"""

from amaranth import Module, Mux, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .config import AcceleratorConfig, ConfigError
from .config import Controller as ControllerKind
from .hw_facts import COUNTER_WIDTH, byte_bits
from .isa import QTABLE_BYTES
from .limits import LimitError, check_limit
from .units.common import status_ports, unit_registers
from .units.compute import ComputeUnit
from .units.controller import Controller
from .units.dispatcher import Dispatcher
from .units.load import LoadUnit
from .units.store import StoreUnit

__all__ = ["Accelerator", "COUNTER_WIDTH", "host_ports", "HOST_PORTS"]

#: The host ports: (prefix, reads, writes). Fetch and load read, store writes.
HOST_PORTS = (("fetch", True, False), ("ld", True, False), ("st", False, True))


def host_ports(cfg: AcceleratorConfig) -> dict:
    """The accelerator's host-port members (the signature of :class:`Accelerator` minus the control ports)."""
    bb = byte_bits(cfg.host_port_bytes)
    out = {}
    for name, reads, writes in HOST_PORTS:
        out[f"{name}_addr"] = Out(32 - bb)
        if reads:
            out[f"{name}_re"] = Out(1)
            out[f"{name}_rdata"] = In(cfg.host_port_width)
        if writes:
            out[f"{name}_we"] = Out(1)
            out[f"{name}_wstrb"] = Out(cfg.host_port_bytes)
            out[f"{name}_wdata"] = Out(cfg.host_port_width)
    return out


class Accelerator(wiring.Component):
    """Top-level accelerator for one :class:`AcceleratorConfig`."""

    def __init__(self, cfg: AcceleratorConfig):
        # Elaboration time and memory grow with the PE count: refuse an array no run can finish with.
        try:
            check_limit("rtl_pes", cfg.pes, f"config '{cfg.name}': a {cfg.rows}x{cfg.cols} array to elaborate "
                                            f"into RTL, processing elements")
        except (LimitError, ConfigError):
            self._MustUse__silence = True  # never built: no "created but never used" warning
            raise
        self.cfg = cfg
        super().__init__({**status_ports(), **host_ports(cfg)})
        R, C = cfg.rows, cfg.cols
        self.array = SystolicArray(R, C, cfg.input_width, cfg.weight_width, cfg.acc_width,
                                   os=cfg.supports_os, ws=cfg.supports_ws, shadow=cfg.shadow_weights)
        self.a_spad = Memory(shape=unsigned(R * cfg.input_width), depth=cfg.a_spad_depth, init=[])
        self.w_spad = Memory(shape=unsigned(C * cfg.weight_width), depth=cfg.w_spad_depth, init=[])
        self.acc_buf = Memory(shape=unsigned(C * cfg.acc_width), depth=cfg.acc_depth, init=[])
        #: per-column quantization table: bias[31:0], multiplier[63:32], shift[69:64]
        self.qtable = unit_registers(cfg, "").qtable
        self.ctrl = Dispatcher(cfg) if cfg.controller is ControllerKind.DECOUPLED else Controller(cfg)
        self.load = LoadUnit(cfg)
        self.compute = ComputeUnit(cfg)
        self.store = StoreUnit(cfg)

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
        # decoupled: compute and store run at once, so the store unit has its own accumulator read port
        # (a plain assignment, so that its signals are named acc_st_rd__* like the store unit's port: the
        # RTL fault injector tells the two read registers apart by them)
        acc_st_rd = acc_rd
        if cfg.controller is ControllerKind.DECOUPLED:
            acc_st_rd = self.acc_buf.read_port()
        acc_wr = self.acc_buf.write_port()

        # controller <-> units, compute <-> array
        wiring.connect(m, ctrl.load, load.ctl)
        wiring.connect(m, ctrl.compute, compute.ctl)
        wiring.connect(m, ctrl.store, store.ctl)
        wiring.connect(m, compute.array, self.array)
        m.d.comb += [ctrl.start.eq(self.start), self.done.eq(ctrl.done), self.error.eq(ctrl.error),
                     self.cycles.eq(ctrl.cycles), self.busy_pe.eq(ctrl.busy_pe),
                     ctrl.busy_en.eq(compute.busy_en), ctrl.busy_inc.eq(compute.busy_inc)]

        # host ports: fetch, load reads, store writes
        m.d.comb += [self.fetch_addr.eq(ctrl.mem_addr), self.fetch_re.eq(ctrl.mem_re),
                     ctrl.mem_rdata.eq(self.fetch_rdata),
                     self.ld_addr.eq(load.mem_addr), self.ld_re.eq(load.mem_re), load.mem_rdata.eq(self.ld_rdata),
                     self.st_addr.eq(store.mem_addr), self.st_we.eq(store.mem_we), self.st_wstrb.eq(store.mem_wstrb),
                     self.st_wdata.eq(store.mem_wdata)]

        # memories
        if acc_st_rd is acc_rd:
            m.d.comb += acc_rd.addr.eq(Mux(ctrl.compute.exec.active, compute.acc_rd.addr, store.acc_st_rd.addr))
        else:
            m.d.comb += [acc_rd.addr.eq(compute.acc_rd.addr), acc_st_rd.addr.eq(store.acc_st_rd.addr)]
        m.d.comb += [a_wr.addr.eq(load.a_wr.addr), a_wr.data.eq(load.a_wr.data), a_wr.en.eq(load.a_wr.en),
                     w_wr.addr.eq(load.w_wr.addr), w_wr.data.eq(load.w_wr.data), w_wr.en.eq(load.w_wr.en),
                     a_rd.addr.eq(compute.a_rd.addr), compute.a_rd.data.eq(a_rd.data),
                     w_rd.addr.eq(compute.w_rd.addr), compute.w_rd.data.eq(w_rd.data),
                     compute.acc_rd.data.eq(acc_rd.data), store.acc_st_rd.data.eq(acc_st_rd.data),
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
