"""The controller (submodule ``ctrl``): fetch, decode and the in-order execute sequencing.

Every instruction is fetched (``fetch_beats`` host reads + :data:`hwgen.hw_facts.FETCH_LATENCY`),
decoded (one cycle: halt, fence and config end here) and handed to its unit on that unit's port
(:data:`hwgen.units.common.UNIT_PORT`): the decode cycle offers the instruction on ``cmd``, latches
the unit's ``last`` into ``exec_last`` and enters the unit's execute state, where ``exec_cnt`` counts
until the unit says ``done``. Config instructions go to the store unit (the requantizer's parameters
live there). Also here: the error flag (an unknown opcode halts) and the ``cycles`` / ``busy_pe``
performance counters (the compute unit says when and how much to add to ``busy_pe``).

Registers and their widths come from :data:`hwgen.hw_facts.REGISTERS` (unit ``ctrl``), the FSM's
states from :data:`hwgen.hw_facts.CONTROLLER_STATES`.
"""

from amaranth import Module
from amaranth.lib import data, wiring

from ..config import INSTR_BITS, AcceleratorConfig
from ..hw_facts import CONTROLLER_STATES, FSM_NAME, registers_of
from ..isa import INSTR_BYTES, Opcode
from .common import INSTRUCTION, controller_ports, fetch_state, unit_registers

__all__ = ["Controller"]


class Controller(wiring.Component):
    """Fetch / decode / execute sequencing of one configuration (``cfg``: host port width, fetch beats)."""

    def __init__(self, cfg: AcceleratorConfig):
        self.cfg = cfg
        super().__init__(controller_ports(cfg))  # the fetch port is its own; load and store have theirs
        self.regs = unit_registers(cfg, "ctrl")
        self.fsm_state = None  #: the FSM's state register, after elaboration

    def elaborate(self, platform):
        cfg, r = self.cfg, self.regs
        m = Module()
        pc, ir, fetch_cnt, e, e_last = r.pc, r.instr_reg, r.fetch_cnt, r.exec_cnt, r.exec_last
        cycles, busy, err = r.cycle_counter, r.busy_pe_counter, r.error_flag
        units = {Opcode.LOAD: self.load, Opcode.COMPUTE: self.compute, Opcode.STORE: self.store}

        op = data.View(INSTRUCTION, ir).op

        m.d.comb += [self.cycles.eq(cycles), self.busy_pe.eq(busy), self.error.eq(err)]
        for port in units.values():
            m.d.comb += [port.cmd.payload.eq(ir), port.exec.payload.eq(ir), port.exec.cnt.eq(e),
                         port.exec.last.eq(e_last)]

        next_pc = pc + INSTR_BYTES
        with m.FSM(init=CONTROLLER_STATES[0], name=FSM_NAME) as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), cycles.eq(0), busy.eq(0), err.eq(0), fetch_cnt.eq(0)]
                    m.next = "FETCH"

            with m.State("FETCH"):
                fetch_state(m, self, cfg, pc=pc, fetch_cnt=fetch_cnt, ir=ir, cycles=cycles)

            with m.State("DECODE"):
                m.d.sync += [cycles.eq(cycles + 1), fetch_cnt.eq(0), e.eq(0)]
                with m.Switch(op):
                    with m.Case(Opcode.HALT):
                        m.next = "HALTED"
                    with m.Case(Opcode.FENCE):
                        m.d.sync += pc.eq(next_pc)
                        m.next = "FETCH"
                    with m.Case(Opcode.CONFIG):  # the requantizer's parameters: the store unit's
                        m.d.sync += pc.eq(next_pc)
                        m.d.comb += self.store.cmd.valid.eq(1)
                        m.next = "FETCH"
                    for opcode, port in units.items():
                        with m.Case(opcode):
                            m.d.sync += [pc.eq(next_pc), e_last.eq(port.last)]
                            m.d.comb += port.cmd.valid.eq(1)
                            m.next = opcode.name
                    with m.Default():
                        m.d.sync += err.eq(1)
                        m.next = "HALTED"

            for opcode, port in units.items():
                with m.State(opcode.name):
                    m.d.comb += port.exec.active.eq(1)
                    m.d.sync += [cycles.eq(cycles + 1), e.eq(e + 1)]
                    with m.If(port.done):
                        m.next = "FETCH"

            with m.State("HALTED"):
                m.d.comb += self.done.eq(1)
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), cycles.eq(0), busy.eq(0), err.eq(0), fetch_cnt.eq(0)]
                    m.next = "FETCH"
        with m.If(self.busy_en):
            m.d.sync += busy.eq(busy + self.busy_inc)

        if set(fsm.encoding) != set(CONTROLLER_STATES):  # hw_facts is what pure-Python code reads of this FSM
            raise AssertionError(f"controller states {sorted(fsm.encoding)} != hwgen.hw_facts {CONTROLLER_STATES}")
        fsm_reg = next(reg for reg in registers_of("ctrl") if reg.kind == "fsm")
        if (fsm.state.name, len(fsm.state)) != (fsm_reg.name, fsm_reg.width(cfg)):
            raise AssertionError(f"FSM state register {fsm.state.name}[{len(fsm.state)}] != hwgen.hw_facts "
                                 f"{fsm_reg.name}[{fsm_reg.width(cfg)}]")
        assert len(ir) == INSTR_BITS
        self.fsm_state = fsm.state
        return m
