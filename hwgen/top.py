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
from .ecc import decode_word, encode_word
from .hw_facts import COUNTER_WIDTH, abft, acc_lanes, byte_bits, memory_layouts, has_mechanisms
from .lockstep import lockstep
from .safety import LOCKSTEP_UNITS, STATUS_COUNTERS, TWIN_SUFFIX, Mechanism
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
        safety = {name: Out(COUNTER_WIDTH) for name in STATUS_COUNTERS} if has_mechanisms(cfg) else {}
        super().__init__({**status_ports(), **host_ports(cfg), **safety})
        R, C = cfg.rows, cfg.cols
        self.array = SystolicArray(R, C, cfg.input_width, cfg.weight_width, cfg.acc_width,
                                   os=cfg.supports_os, ws=cfg.supports_ws, shadow=cfg.shadow_weights,
                                   checksum=abft(cfg))
        #: each memory's stored word: its lanes, and the check bits of its mechanism (hwgen.safety)
        self.layouts = memory_layouts(cfg)
        self.a_spad = Memory(shape=unsigned(self.layouts["a_spad"].word_bits), depth=cfg.a_spad_depth, init=[])
        self.w_spad = Memory(shape=unsigned(self.layouts["w_spad"].word_bits), depth=cfg.w_spad_depth, init=[])
        self.acc_buf = Memory(shape=unsigned(self.layouts["acc_buf"].word_bits), depth=cfg.acc_depth, init=[])
        top_regs = unit_registers(cfg, "")
        #: per-column quantization table: bias[31:0], multiplier[63:32], shift[69:64]
        self.qtable = top_regs.qtable
        #: the mechanisms' status counters (protected configurations only)
        self.status_counters = [getattr(top_regs, name) for name in STATUS_COUNTERS] if safety else []
        make = {"ctrl": lambda: Dispatcher(cfg) if cfg.controller is ControllerKind.DECOUPLED else Controller(cfg),
                "load": lambda: LoadUnit(cfg), "compute": lambda: ComputeUnit(cfg), "store": lambda: StoreUnit(cfg)}
        self.ctrl, self.load, self.compute, self.store = (make[u]() for u in LOCKSTEP_UNITS)
        #: lockstep twins (DMR, hwgen.lockstep) of the units the configuration protects so
        self.twins = {u: make[u]() for u in LOCKSTEP_UNITS if cfg.mechanism(u) is Mechanism.DMR}

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
        mismatches = []
        for u, twin in self.twins.items():
            m.submodules[u + TWIN_SUFFIX] = twin
            mismatches.append(lockstep(m, getattr(self, u), twin))
        lay = self.layouts
        a_rd = self.a_spad.read_port()
        a_wr = self.a_spad.write_port(granularity=lay["a_spad"].code_bits)
        w_rd = self.w_spad.read_port()
        w_wr = self.w_spad.write_port(granularity=lay["w_spad"].code_bits)
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
        # (through the codes of the protected ones: encoded on the write, decoded behind the read port)
        a_dec = decode_word(m, lay["a_spad"], a_rd.data, "a_spad_ecc")
        w_dec = decode_word(m, lay["w_spad"], w_rd.data, "w_spad_ecc")
        acc_dec = decode_word(m, lay["acc_buf"], acc_rd.data, "acc_buf_ecc")
        acc_st_dec = acc_dec if acc_st_rd is acc_rd else decode_word(m, lay["acc_buf"], acc_st_rd.data,
                                                                     "acc_buf_st_ecc")
        m.d.comb += [a_wr.addr.eq(load.a_wr.addr), a_wr.data.eq(encode_word(lay["a_spad"], load.a_wr.data)),
                     a_wr.en.eq(load.a_wr.en),
                     w_wr.addr.eq(load.w_wr.addr), w_wr.data.eq(encode_word(lay["w_spad"], load.w_wr.data)),
                     w_wr.en.eq(load.w_wr.en),
                     a_rd.addr.eq(compute.a_rd.addr), compute.a_rd.data.eq(a_dec.data),
                     w_rd.addr.eq(compute.w_rd.addr), compute.w_rd.data.eq(w_dec.data),
                     compute.acc_rd.data.eq(acc_dec.data), store.acc_st_rd.data.eq(acc_st_dec.data),
                     acc_wr.addr.eq(compute.acc_wr.addr), acc_wr.data.eq(encode_word(lay["acc_buf"], compute.acc_wr.data)),
                     acc_wr.en.eq(compute.acc_wr.en)]
        if self.status_counters:
            self._count_events(m, mismatches, [(a_dec, [compute.a_used] * lay["a_spad"].codes),
                                   (w_dec, [compute.w_used] * lay["w_spad"].codes),
                                   *self._acc_uses(lay["acc_buf"], acc_dec, acc_st_dec, compute, store)])

        # the quantization table: written by loads (target q), read by the store unit's requantizer
        q = load.q_wr
        for j, entry in enumerate(self.qtable):
            m.d.comb += store.qtable[j].eq(entry)
            for b in range(QTABLE_BYTES):
                with m.If(q.en & (q.addr == j) & q.bytes[b]):
                    m.d.sync += entry[8 * b:8 * (b + 1)].eq(q.data[8 * b:8 * (b + 1)])
        return m

    def _acc_uses(self, layout, acc_dec, acc_st_dec, compute, store) -> list:
        """(decoder, per code word its consumption) of the accumulator buffer's read ports: the write-back
        takes a whole old row; the requantizer the lanes of its beat (a whole-word code: any of them)."""
        C = acc_lanes(self.cfg)
        st_lanes = [store.acc_used[j] for j in range(C)]
        if layout.codes == 1:
            st_codes = [store.acc_used.any()]
        else:
            st_codes = st_lanes
        cp_codes = [compute.acc_used] * layout.codes
        if acc_st_dec is acc_dec:  # in order: one port, read by whichever unit executes
            return [(acc_dec, [a | b for a, b in zip(cp_codes, st_codes)])]
        return [(acc_dec, cp_codes), (acc_st_dec, st_codes)]

    def _count_events(self, m, mismatches, uses) -> None:
        """The status counters (hwgen.safety.STATUS_COUNTERS) count, per cycle, the consumed code words
        whose decode corrected an error or detected one it cannot correct; the outputs show them."""
        corrected, detected = self.status_counters
        ev_c = [c & u for dec, used in uses for c, u in zip(dec.corrected, used)]
        ev_d = [d & u for dec, used in uses for d, u in zip(dec.detected, used)]
        if abft(self.cfg):
            ev_d.append(self.store.abft_mismatch)
        ev_d += mismatches  # a unit and its lockstep twin disagree

        def total(bits):
            out = 0
            for b in bits:
                out = out + b
            return out

        m.d.sync += [corrected.eq(corrected + total(ev_c)), detected.eq(detected + total(ev_d))]
        m.d.comb += [self.safety_corrected.eq(corrected), self.safety_detected.eq(detected)]
