"""The dataflows of a systolic array, as one type.

An array is built for one of three choices (:attr:`AcceleratorConfig.dataflow`); each compute
instruction runs one of the two *stationary* dataflows, encoded in its one-bit ``dataflow`` field.
A ``StrEnum`` keeps the configuration's JSON, its cache key and every ``== "os"`` written by a user's
script unchanged, while code inside hwgen compares members and asks the member what it means
(:attr:`Dataflow.code`, :attr:`Dataflow.modes`), never restating the encoding.

Pure Python (no Amaranth), like the rest of the foundation. Gemmini's ``Dataflow`` (OS, WS, BOTH)
is the model.
"""

from __future__ import annotations

import operator
from enum import StrEnum

__all__ = ["Dataflow", "STATIONARY"]


class Dataflow(StrEnum):
    """Output-stationary, weight-stationary, or an array reconfigurable between them per instruction."""

    OS = "os"
    WS = "ws"
    BOTH = "both"

    @property
    def code(self) -> int:
        """The compute instruction's ``dataflow`` field value (OS 0, WS 1); BOTH has none."""
        if self is Dataflow.BOTH:
            raise ValueError("'both' is an array's choice, not an instruction's dataflow")
        return STATIONARY.index(self)

    @classmethod
    def from_code(cls, code: int) -> "Dataflow":
        """The stationary dataflow a compute instruction's ``dataflow`` field encodes (ValueError for any
        other value: the field has one code per stationary dataflow, nothing else)."""
        try:
            index = operator.index(code)  # ints and numpy integers, not floats or strings
        except TypeError:
            index = -1
        if isinstance(code, bool) or not 0 <= index < len(STATIONARY):
            raise ValueError(f"dataflow code {code!r}: must be one of "
                             + ", ".join(f"{i} ({d})" for i, d in enumerate(STATIONARY)))
        return STATIONARY[index]

    @property
    def modes(self) -> tuple["Dataflow", ...]:
        """The stationary dataflows an array built for this choice runs."""
        return STATIONARY if self is Dataflow.BOTH else (self,)


#: the two stationary dataflows in the order of their ISA codes
STATIONARY: tuple[Dataflow, ...] = (Dataflow.OS, Dataflow.WS)
