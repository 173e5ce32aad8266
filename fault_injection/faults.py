"""Fault sites, fault models and outcomes: the vocabulary every injector shares.

A *site* is one piece of state of the accelerator: a register (flip-flops) or a
memory, named by its dotted path in the Amaranth hierarchy ("ctrl.pc",
"array.pe_r0_c1.acc", "a_spad") and grouped into a *structure* (PE
accumulators, scratchpads, controller state...). The RTL inventory is derived
from the elaborated design, the model's from the configuration, and the two
must be equal (fault_injection.sites).

Time: ``cycle`` counts like the hardware cycle counter (0 = the first cycle
after ``start``). A fault at cycle c changes the state the design holds
during cycle c: it is applied after the clock edge that ends cycle c-1.

Fault models:

* ``seu``: one bit of a register or memory word flips once;
* ``mbu``: ``nbits`` adjacent bits of one memory word flip at once;
* ``stuck0`` / ``stuck1``: one bit is forced to 0 / 1 for ``duration`` cycles
  starting at ``cycle`` (re-applied every cycle of the window).

Outcomes (:class:`Outcome`; :data:`OUTCOMES` is the tuple of their values, in report order):

* ``masked``: outputs and final state as the golden run's (or the difference
  provably gone: nothing of the fault is left);
* ``corrected``: a correcting safety mechanism (SECDED, TMR) fired and the
  output is right;
* ``detected``: a detecting mechanism (parity, DMR, checksum, watchdog) flagged
  the fault: the design reached its safe state;
* ``latent``: the output is right and no mechanism fired, but the fault is
  still in the state at the end: a multiple-point fault neither detected nor
  perceived, which a second fault can make dangerous;
* ``sdc``: silent data corruption, the output regions differ and nothing
  detected it (ISO 26262's single-point or *residual* fault: ``Outcome.RESIDUAL``
  is the same member);
* ``due``: the design raised its error flag, did not halt within the timeout or
  accessed memory out of range, with no safety mechanism's detection.

The first three of schema version 1 (masked, sdc, due) keep their names and
values; :data:`LEGACY_OUTCOMES` lists them. How each outcome counts in the
ISO 26262-5 metrics is :func:`fault_injection.stats.fault_class`'s (one home).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum

from hwgen.errors import HwgenError
from hwgen.hw_facts import register_structure

__all__ = ["Site", "Fault", "InjectionResult", "Outcome", "OUTCOMES", "LEGACY_OUTCOMES", "FAULT_MODELS", "STRUCTURES",
           "structure_of", "CampaignError"]


class CampaignError(HwgenError, ValueError):
    """A campaign that cannot be started, continued or finished; the message says why.

    Defined with the shared vocabulary so that planning (fault_injection.sampling) and running
    (fault_injection.campaign, which re-exports it) raise the same class without importing each other."""



class Outcome(StrEnum):
    """What one injection did (the module docstring defines each). A ``str``: ``Outcome.SDC == "sdc"``, and
    the value is what the store records, so code and files written with plain strings keep working."""

    MASKED = "masked"
    CORRECTED = "corrected"
    DETECTED = "detected"
    LATENT = "latent"
    SDC = "sdc"
    RESIDUAL = "sdc"    #: ISO 26262's name for an SDC past a safety mechanism: an alias of SDC
    DUE = "due"


#: every outcome's value, in report order (aliases listed once)
OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)
#: the outcomes before safety mechanisms (campaign schema version 1)
LEGACY_OUTCOMES: tuple[str, ...] = (Outcome.MASKED.value, Outcome.SDC.value, Outcome.DUE.value)
FAULT_MODELS = ("seu", "mbu", "stuck0", "stuck1")

#: structure name -> description, in report order
STRUCTURES: dict[str, str] = {
    "pe_operands": "PE operand registers (a_reg, b_reg: inputs moving right / weights)",
    "pe_accumulators": "PE accumulators / partial sums",
    "skew_regs": "input skew and output de-skew registers",
    "a_spad": "input scratchpad (memory)",
    "w_spad": "weight scratchpad (memory)",
    "acc_buf": "accumulator buffer (memory)",
    "qtable": "per-column quantization table",
    "quant_config": "requantization parameters (config instruction)",
    "instruction_reg": "instruction register",
    "controller": "controller state, program counter, phase counters",
    "load_unit": "load unit address generation and pipeline",
    "store_unit": "store unit and requantization pipeline",
    "write_back": "accumulator-buffer write-back pipeline",
    "perf_counters": "cycle and busy-PE counters",
    "safety": "safety mechanisms' status counters (corrected, detected)",
}

# the array's registers and the memories; every other register's structure is the register table's
# (hwgen.hw_facts.REGISTERS); a name in neither is the controller's. First match wins.
_RULES: list[tuple[str, str]] = [
    (r"^array\.pe_r\d+_c\d+\.(a_reg|b_reg)$", "pe_operands"),
    (r"^array\.pe_r\d+_c\d+\.acc$", "pe_accumulators"),
    (r"^array\.(skew_a|skew_b|deskew)_", "skew_regs"),
    (r"^a_spad(\.rd_data)?$", "a_spad"),
    (r"^w_spad(\.rd_data)?$", "w_spad"),
    (r"^acc_buf(\.rd_data\d*)?$", "acc_buf"),
]


def structure_of(name: str) -> str:
    """The structure a site belongs to, from its dotted name."""
    for pattern, structure in _RULES:
        if re.search(pattern, name):
            return structure
    return register_structure(name) or "controller"


@dataclass(frozen=True)
class Site:
    name: str
    width: int          #: bits per word
    depth: int = 1      #: words (1 for a register)
    kind: str = "ff"    #: "ff" (flip-flops) or "mem"

    @property
    def structure(self) -> str:
        return structure_of(self.name)

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass(frozen=True)
class Fault:
    site: str
    model: str
    cycle: int
    bit: int
    word: int = 0
    nbits: int = 1
    duration: int = 1

    @property
    def structure(self) -> str:
        return structure_of(self.site)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InjectionResult:
    """What one injection did. ``cycles`` is the faulty run's length (or where it stopped early);
    ``early_stop`` is True when the injector proved the fault masked before the end of the run."""

    outcome: str
    cycles: int = 0
    early_stop: bool = False
    detail: str = ""
