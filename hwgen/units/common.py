"""What the units share: the instruction as a data layout, the controller-to-unit port, and the
helper that creates a unit's registers from the register table (:data:`hwgen.hw_facts.REGISTERS`).

The controller-to-unit port (:data:`UNIT_PORT`, from the controller's side):

* ``cmd``: an ``amaranth.lib.stream`` of :data:`INSTRUCTION` (valid in the decode cycle of an
  instruction for this unit; the unit latches its own start state on ``valid``; ``ready`` is 1 in this
  in-order generation and the controller does not wait for it);
* ``last`` (unit -> controller): the end count of the offered command, which the controller latches
  into its ``exec_last`` at decode (each unit owns its schedule's closed form);
* ``exec`` (controller -> unit): ``active`` while the controller is in this unit's execute state,
  the shared execute counter ``cnt`` and its end ``last``;
* ``done`` (unit -> controller): the execute phase ends this cycle.

What this generation still shares, and what a queued generation changes: the payload is the
controller's instruction register (stable until ``done``, so units do not copy it), and the execute
counter is the controller's. With a ``stream`` FIFO between them, a unit keeps its own copy of the
payload and its own counter (``exec`` disappears), and ``done`` becomes a completion token.
"""

from types import SimpleNamespace

from amaranth import Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..config import INSTR_BITS, AcceleratorConfig
from ..hw_facts import COUNTER_WIDTH, EXEC_COUNTER_WIDTH, byte_bits, registers_of
from ..isa import OPCODE_BITS, Opcode, field_offsets

__all__ = ["INSTRUCTION", "EXEC", "UNIT_PORT", "ADDR_WIDTH", "unit_registers", "instruction_layout",
           "status_ports", "host_read_port", "host_write_port", "controller_ports", "fetch_state"]

#: Width of the scratchpad and accumulator-buffer word addresses the units compute (the ISA's 16-bit
#: spad_addr, a_addr, w_addr and o_addr fields).
ADDR_WIDTH = 16


def instruction_layout(op: Opcode) -> data.FlexibleLayout:
    """The fields of ``op`` at their ISA offsets (``hwgen.isa.field_offsets``), signed where the ISA says."""
    return data.FlexibleLayout(INSTR_BITS, {
        name: data.Field(signed(f.width) if f.signed else unsigned(f.width), off)
        for name, (off, f) in field_offsets(op).items()})


#: One 128-bit instruction, viewed as any opcode's fields: ``payload.op``, ``payload.load.count``,
#: ``payload.compute.dataflow``, ``payload.store.base``, ``payload.config.multiplier``...
INSTRUCTION = data.UnionLayout({
    "op": unsigned(OPCODE_BITS),
    "load": instruction_layout(Opcode.LOAD),
    "compute": instruction_layout(Opcode.COMPUTE),
    "store": instruction_layout(Opcode.STORE),
    "config": instruction_layout(Opcode.CONFIG),
})

#: The controller's execute phase as a unit sees it (from the controller's side): ``payload`` is the
#: executing instruction (the in-order controller's instruction register, like ``cmd.payload``; the
#: decoupled one's per-unit copy, while ``cmd.payload`` may already offer the next instruction in the
#: last execute cycle).
EXEC = wiring.Signature({
    "active": Out(1),
    "cnt": Out(EXEC_COUNTER_WIDTH),
    "last": Out(EXEC_COUNTER_WIDTH),
    "payload": Out(INSTRUCTION),
})

#: The controller's port to one unit (from the controller's side; a unit has ``In(UNIT_PORT)``).
UNIT_PORT = wiring.Signature({
    "cmd": Out(stream.Signature(INSTRUCTION)),
    "last": In(EXEC_COUNTER_WIDTH),
    "exec": Out(EXEC),
    "done": In(1),
})


def unit_registers(cfg: AcceleratorConfig, unit: str) -> SimpleNamespace:
    """The ``Signal`` of every register of ``unit`` in the register table, by name (a family is a
    list; a register the configuration lacks is None). The one place a register's name, width and
    signedness turn into hardware."""
    out = {}
    for reg in registers_of(unit):
        if reg.kind != "ff":
            continue  # the FSM's state register: Amaranth creates it
        w = reg.width(cfg)
        shape = signed(w) if reg.signed else unsigned(w)
        names = reg.names(cfg)
        if reg.count is not None:
            out[reg.group] = [Signal(shape, name=n) for n in names]
        else:
            out[reg.name] = Signal(shape, name=reg.name) if names else None
    return SimpleNamespace(**out)


# ------------------------------------------------------------------ port groups (signature members)
def status_ports() -> dict:
    """start / done / error and the performance counters: the accelerator's and each controller's."""
    return {"start": In(1), "done": Out(1), "error": Out(1),
            "cycles": Out(COUNTER_WIDTH), "busy_pe": Out(COUNTER_WIDTH)}


def host_read_port(cfg: AcceleratorConfig) -> dict:
    """One host read port, from the reader's side: word address, read enable, data a cycle later."""
    return {"mem_addr": Out(32 - byte_bits(cfg.host_port_bytes)), "mem_re": Out(1),
            "mem_rdata": In(cfg.host_port_width)}


def host_write_port(cfg: AcceleratorConfig) -> dict:
    """One host write port, from the writer's side: word address, write enable, byte strobes, data."""
    return {"mem_addr": Out(32 - byte_bits(cfg.host_port_bytes)), "mem_we": Out(1),
            "mem_wstrb": Out(cfg.host_port_bytes), "mem_wdata": Out(cfg.host_port_width)}


def controller_ports(cfg: AcceleratorConfig) -> dict:
    """The members both controllers (in-order and decoupled) have: status, the fetch port, one
    :data:`UNIT_PORT` per unit and the compute unit's busy-PE accounting."""
    return {**status_ports(), **host_read_port(cfg),
            "load": Out(UNIT_PORT), "compute": Out(UNIT_PORT), "store": Out(UNIT_PORT),
            "busy_en": In(1), "busy_inc": In(EXEC_COUNTER_WIDTH)}


def fetch_state(m, ctl, cfg: AcceleratorConfig, *, pc, fetch_cnt, ir, cycles) -> None:
    """The body of both controllers' FETCH state: ``fetch_beats`` reads of the fetch port from ``pc``,
    each beat's data (one cycle later) into its slice of the instruction register ``ir``, then DECODE
    (:data:`hwgen.hw_facts.FETCH_LATENCY`: the cycle after the last read)."""
    P, BB, beats = cfg.host_port_width, byte_bits(cfg.host_port_bytes), cfg.fetch_beats
    m.d.sync += cycles.eq(cycles + 1)
    with m.If(fetch_cnt < beats):
        m.d.comb += [ctl.mem_re.eq(1), ctl.mem_addr.eq((pc >> BB) + fetch_cnt)]
    with m.If(fetch_cnt > 0):
        for b in range(beats):
            with m.If(fetch_cnt == b + 1):
                m.d.sync += ir[b * P:(b + 1) * P].eq(ctl.mem_rdata)
    m.d.sync += fetch_cnt.eq(fetch_cnt + 1)
    with m.If(fetch_cnt == beats):
        m.next = "DECODE"
