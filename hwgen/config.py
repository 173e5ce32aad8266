"""AcceleratorConfig: the single source of truth for hwgen, sim, mappings and fault_injection.

Every parameter of the accelerator is declared here once. The Amaranth generator
elaborates it, the cycle model is built from it, the mapper tiles against it.
Nothing else re-declares a width or a depth by hand.

This module is pure Python (no Amaranth import) so the model and design-space
scripts stay light.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from .dataflow import Dataflow
from .errors import HwgenError

__all__ = ["AcceleratorConfig", "ConfigError", "DATAFLOWS", "Dataflow", "Controller", "INSTR_BITS"]

#: the array choices, in the order the CLI lists them
DATAFLOWS = tuple(Dataflow)

class Controller(StrEnum):
    """How instructions are sequenced (docs/ARCHITECTURE.md, "Generation 2").

    ``in-order``: fetch, decode and execute one instruction at a time (generation 1, the timing of
    :mod:`sim.timing`). ``decoupled``: load, compute and store units with their own queues run in
    parallel, ordered by the dispatcher's scoreboard (the timing of :mod:`sim.schedule`); a program
    computes the same results either way."""

    IN_ORDER = "in-order"
    DECOUPLED = "decoupled"


#: Every instruction is 128 bits (see hwgen.isa); the host port must fetch it in whole beats.
INSTR_BITS = 128

#: Limits that the ISA encoding imposes (field widths in hwgen.isa).
_MAX_SPAD_DEPTH = 1 << 16
_MAX_LANES = 256
#: Deepest unit instruction queue (each entry is an instruction and its footprint in registers).
_MAX_QUEUE_DEPTH = 64


class ConfigError(HwgenError, ValueError):
    """An invalid configuration. The message names the field and the limit."""


@dataclass(frozen=True)
class AcceleratorConfig:
    """Parameters of one systolic accelerator.

    rows x cols processing elements; ``dataflow`` is ``os`` (output-stationary),
    ``ws`` (weight-stationary) or ``both`` (reconfigurable per compute instruction).
    Scratchpad words are vectors: an A-scratchpad word holds ``rows`` input
    elements, a W-scratchpad word ``cols`` weight elements, an accumulator-buffer
    word ``cols`` accumulators.
    """

    name: str = "default"
    rows: int = 8
    cols: int = 8
    dataflow: Dataflow = Dataflow.BOTH
    input_width: int = 8
    weight_width: int = 8
    acc_width: int = 32
    output_width: int = 8
    #: Longest reduction (K) that the accumulators promise to hold without overflow.
    max_reduction: int = 4096
    a_spad_depth: int = 256
    w_spad_depth: int = 256
    acc_depth: int = 256
    #: Host-memory port width in bits (one beat per cycle).
    host_port_width: int = 64
    #: Instruction sequencing (:class:`Controller`).
    controller: Controller = Controller.DECOUPLED
    #: Entries of each unit's instruction queue (decoupled controller).
    queue_depth: int = 4
    #: The load unit also unpacks 4-bit weights stored two per host byte (``load target=w4``): half the
    #: host bytes and port beats for a layer whose weights the mixed-precision ILP narrowed to 4 bits or
    #: fewer. Off by default (a nibble rotator beside the byte one costs LUTs).
    packed_weights: bool = False
    #: Safety mechanisms, one per protected structure (:mod:`hwgen.safety`): a mapping such as
    #: ``{"a_spad": "parity", "acc_buf": "secded"}``, held as sorted (structure, mechanism) pairs. Empty
    #: (the default): no mechanism, and the field is left out of the JSON so that unprotected designs keep
    #: their keys.
    safety: tuple = ()

    def __post_init__(self) -> None:
        for fld, kind in (("dataflow", Dataflow), ("controller", Controller)):
            v = getattr(self, fld)
            if isinstance(v, str) and not isinstance(v, kind):
                try:  # JSON and the CLI give strings
                    object.__setattr__(self, fld, kind(v))
                except ValueError:
                    pass  # validate() names the field
        from .safety import SafetyError, normalise_safety

        try:
            object.__setattr__(self, "safety", normalise_safety(self.safety))
        except SafetyError as e:
            raise ConfigError(f"config '{self.name}': field 'safety': {e}") from None
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ConfigError naming the first field that breaks a limit."""

        def need(cond: bool, fld: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"config '{self.name}': field '{fld}' = {getattr(self, fld)!r}: {msg}")

        for fld in ("rows", "cols", "input_width", "weight_width", "acc_width", "output_width",
                    "max_reduction", "a_spad_depth", "w_spad_depth", "acc_depth", "host_port_width", "queue_depth"):
            v = getattr(self, fld)
            need(isinstance(v, int) and not isinstance(v, bool), fld, "must be an integer")
        need(isinstance(self.packed_weights, bool), "packed_weights", "must be true or false")
        need(isinstance(self.name, str) and 0 < len(self.name) <= 64 and not self.name.startswith(".")
             and all(c.isascii() and (c.isalnum() or c in "-_.") for c in self.name),
             "name", "must be 1 to 64 ASCII letters, digits, '-', '_' or '.', not starting with '.' "
                     "(it names the output folder)")
        need(1 <= self.rows <= _MAX_LANES, "rows", f"must be between 1 and {_MAX_LANES}")
        need(1 <= self.cols <= _MAX_LANES, "cols", f"must be between 1 and {_MAX_LANES}")
        need(isinstance(self.dataflow, Dataflow), "dataflow", f"must be one of {', '.join(DATAFLOWS)}")
        need(isinstance(self.controller, Controller), "controller", f"must be one of {', '.join(Controller)}")
        need(1 <= self.queue_depth <= _MAX_QUEUE_DEPTH, "queue_depth", f"must be between 1 and {_MAX_QUEUE_DEPTH}")
        need(2 <= self.input_width <= 8, "input_width", "must be between 2 and 8 (one host byte per element)")
        need(2 <= self.weight_width <= 8, "weight_width", "must be between 2 and 8 (one host byte per element)")
        need(2 <= self.output_width <= 8, "output_width", "must be between 2 and 8 (one host byte per element)")
        need(not self.packed_weights or self.weight_width >= 4, "packed_weights",
             f"4-bit packed weights need weight_width >= 4, not {self.weight_width}")
        need(8 <= self.acc_width <= 32, "acc_width", "must be between 8 and 32")
        need(self.max_reduction >= 1, "max_reduction", "must be at least 1")
        need_bits = self.input_width + self.weight_width + math.ceil(math.log2(self.max_reduction)) if self.max_reduction > 1 \
            else self.input_width + self.weight_width
        need(self.acc_width >= need_bits, "acc_width",
             f"too narrow: {self.input_width}-bit x {self.weight_width}-bit products summed over "
             f"max_reduction={self.max_reduction} need at least {need_bits} bits")
        for fld, minimum, why in (
            ("a_spad_depth", 1, "one A word"),
            ("w_spad_depth", self.rows if self.supports_ws else 1,
             f"the {self.rows} weight rows of one weight-stationary tile" if self.supports_ws else "one W word"),
            ("acc_depth", self.rows if self.supports_os else 1,
             f"the {self.rows} output rows of one output-stationary tile" if self.supports_os else "one output row"),
        ):
            v = getattr(self, fld)
            need(minimum <= v <= _MAX_SPAD_DEPTH, fld,
                 f"must hold at least {minimum} words ({why}) and at most {_MAX_SPAD_DEPTH}")
        need(self.host_port_width in (8, 16, 32, 64, 128), "host_port_width",
             "must be 8, 16, 32, 64 or 128 bits (a whole number of beats per 128-bit instruction)")

    def require_in_order(self, what: str) -> None:
        """Raise ConfigError if this configuration's controller is not the in-order one: ``what`` (a part of
        hwgen) does not model the decoupled controller yet, and must not answer with in-order timing."""
        if self.controller is not Controller.IN_ORDER:
            raise ConfigError(f"config '{self.name}': field 'controller' = '{self.controller}': {what} does not "
                              f"support the decoupled controller yet (docs/ARCHITECTURE.md, 'Generation 2')")

    # --------------------------------------------------------------- derived
    @property
    def supports_os(self) -> bool:
        return Dataflow.OS in self.dataflow.modes

    @property
    def supports_ws(self) -> bool:
        return Dataflow.WS in self.dataflow.modes

    @property
    def shadow_weights(self) -> bool:
        """Whether the PEs have a shadow weight register, so that a weight-stationary compute's preload
        and stream overlap the previous one's (the decoupled controller's array; the in-order controller
        runs one instruction at a time and has no use for it). Timing: :class:`hwgen.hw_facts.ComputeSchedule`."""
        return self.controller is Controller.DECOUPLED and self.supports_ws

    @property
    def host_port_bytes(self) -> int:
        return self.host_port_width // 8

    @property
    def fetch_beats(self) -> int:
        """Host-port beats needed to fetch one instruction."""
        return INSTR_BITS // self.host_port_width

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    def mechanism(self, structure: str):
        """The safety mechanism (:class:`hwgen.safety.Mechanism`) protecting ``structure``, or None."""
        return dict(self.safety).get(structure)

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (the dataflow as its string), so the dict round-trips through ``repr`` too."""
        d = dataclasses.asdict(self)
        d["dataflow"] = self.dataflow.value
        d["controller"] = self.controller.value
        if self.safety:
            d["safety"] = {structure: str(m) for structure, m in self.safety}
        else:
            del d["safety"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "AcceleratorConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "config") -> "AcceleratorConfig":
        from .fileio import parse_json

        try:
            data = parse_json(text, source)
        except HwgenError as e:
            raise ConfigError(str(e)) from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "AcceleratorConfig":
        from .fileio import read_input_file

        try:
            text = read_input_file(path, text=True, what="JSON configuration")
        except HwgenError as e:
            raise ConfigError(str(e)) from None
        return cls.from_json(text, source=str(path))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temporary file, then rename)."""
        from .fileio import atomic_write_text

        atomic_write_text(path, self.to_json())

    def key(self) -> str:
        """A short stable hash of the parameters, for build caches."""
        import hashlib

        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
