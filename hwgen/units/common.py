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
from ..hw_facts import EXEC_COUNTER_WIDTH, registers_of
from ..isa import OPCODE_BITS, Opcode, field_offsets

__all__ = ["INSTRUCTION", "EXEC", "UNIT_PORT", "unit_registers", "instruction_layout"]


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
