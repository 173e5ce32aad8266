"""Safety mechanisms: what a configuration may ask for, and the codes the memories store.

A configuration's ``safety`` field names one mechanism per protected structure (the fault-report
structures of :mod:`fault_injection.faults`), e.g. ``{"a_spad": "parity", "acc_buf": "secded"}``.
This module is the one home of

* :class:`Mechanism` and :data:`APPLICABLE`: which mechanism each structure can take, so the
  configuration check, the generator, the fault-site formula and the protection ILP share one table;
* the error-detecting codes, as pure functions over Python integers: per-lane even parity and
  extended Hamming SECDED (single error corrected, double detected). The generator
  (:mod:`hwgen.ecc`) builds its encoders and decoders from the same bit-position tables
  (:func:`hamming_positions`), and the model-level fault injector uses these functions, so the
  hardware and its models cannot disagree on a code;
* :func:`stored_lane_bits` / :func:`memory_layout`: the word layout of a protected memory.

Why per lane for the scratchpads: loads write any run of lanes (byte-enabled), so a code over a whole
word would need a read-modify-write; a code per lane keeps writes as they are. The accumulator buffer
is always written a whole word at a time, so one SECDED code covers the word (10 check bits for 256
data bits on the default 8x8, where 8 lane codes would need 56).

Detection is counted when the protected data is *consumed* (the array takes a scratchpad word, the
write-back adds an old accumulator row, the requantizer reads one), not on every read-port cycle:
the ports read every cycle from whatever address they hold, and a flag raised on a value nobody uses
would be a false alarm the models could not predict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping

from .errors import HwgenError

__all__ = ["Mechanism", "APPLICABLE", "COVERS", "LOCKSTEP_UNITS", "TWIN_SUFFIX", "checksum_weight_bits", "MEMORY_STRUCTURES", "SafetyError", "normalise_safety", "parity_bits",
           "secded_check_bits", "hamming_positions", "secded_encode", "secded_decode", "Decoded", "parity",
           "stored_lane_bits", "MemoryLayout", "memory_layout", "STATUS_COUNTERS"]


class SafetyError(HwgenError, ValueError):
    """A safety field that names an unknown structure or mechanism, or a mechanism a structure cannot take."""


class Mechanism(enum.StrEnum):
    """A safety mechanism. ``PARITY`` detects one flipped bit per lane; ``SECDED`` corrects one and detects
    two per code word; ``ABFT`` (algorithm-based fault tolerance, on the array) computes a checksum column
    beside the array, whose accumulator is the sum of the row's outputs, and the store checks it; ``DMR``
    runs a unit in lockstep with a twin and detects any cycle their outputs differ."""

    PARITY = "parity"
    SECDED = "secded"
    ABFT = "abft"
    DMR = "dmr"


#: what the configuration may protect -> the mechanisms it can take (the memories: their words carry the
#: check bits; "array": the systolic array, whose fault structures :data:`COVERS` lists)
APPLICABLE: dict[str, tuple[Mechanism, ...]] = {
    "a_spad": (Mechanism.PARITY, Mechanism.SECDED),
    "w_spad": (Mechanism.PARITY, Mechanism.SECDED),
    "acc_buf": (Mechanism.PARITY, Mechanism.SECDED),
    "array": (Mechanism.ABFT,),
    # the units (submodules): a lockstep twin whose outputs are compared every cycle (hwgen.lockstep)
    "ctrl": (Mechanism.DMR,),
    "load": (Mechanism.DMR,),
    "compute": (Mechanism.DMR,),
    "store": (Mechanism.DMR,),
}

#: the units that can run in lockstep (DMR); the twin of unit ``u`` is the submodule ``u + TWIN_SUFFIX``
LOCKSTEP_UNITS = ("ctrl", "load", "compute", "store")
TWIN_SUFFIX = "_dmr"

#: the fault-report structures (fault_injection.faults.STRUCTURES) each protectable part other than a unit
#: holds (a unit's are its registers': hwgen.hw_facts.REGISTERS)
COVERS: dict[str, tuple[str, ...]] = {
    "a_spad": ("a_spad",), "w_spad": ("w_spad",), "acc_buf": ("acc_buf",),
    "array": ("pe_operands", "pe_accumulators", "skew_regs"),
}

#: the structures whose mechanism is a code in their memory words
MEMORY_STRUCTURES = ("a_spad", "w_spad", "acc_buf")

#: The mechanisms' status counters (top-level outputs and registers of the ``safety`` structure):
#: consumptions of a protected value whose code said corrected, or detected (uncorrectable).
STATUS_COUNTERS = ("safety_corrected", "safety_detected")


def normalise_safety(value: object) -> tuple[tuple[str, Mechanism], ...]:
    """The ``safety`` field as a sorted tuple of (structure, mechanism): from a mapping, from pairs, or from
    ``"a_spad=parity,acc_buf=secded"`` (the CLI's form). Raises :class:`SafetyError` naming the entry."""
    if value is None or value == "" or value == ():
        return ()
    if isinstance(value, str):
        pairs = []
        for item in value.split(","):
            structure, sep, mech = item.strip().partition("=")
            if not sep or not structure or not mech:
                raise SafetyError(f"safety entry {item.strip()!r}: expected STRUCTURE=MECHANISM "
                                  f"(e.g. a_spad=parity)")
            pairs.append((structure.strip(), mech.strip()))
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Iterable):
        pairs = [tuple(p) for p in value]
    else:
        raise SafetyError(f"safety must be a mapping of structure to mechanism, not {type(value).__name__}")
    out: dict[str, Mechanism] = {}
    for p in pairs:
        if len(p) != 2 or not all(isinstance(x, str) for x in p):
            raise SafetyError(f"safety entry {p!r}: expected (structure, mechanism) strings")
        structure, mech = p
        if structure not in APPLICABLE:
            raise SafetyError(f"safety entry '{structure}': no mechanism can protect this structure; "
                              f"protectable: {', '.join(APPLICABLE)}")
        try:
            m = Mechanism(mech)
        except ValueError:
            raise SafetyError(f"safety entry '{structure}={mech}': unknown mechanism; known: "
                              f"{', '.join(Mechanism)}") from None
        if m not in APPLICABLE[structure]:
            raise SafetyError(f"safety entry '{structure}={mech}': {structure} can take "
                              f"{', '.join(APPLICABLE[structure])}")
        if structure in out and out[structure] is not m:
            raise SafetyError(f"safety entry '{structure}': given twice ({out[structure]} and {m})")
        out[structure] = m
    return tuple(sorted(out.items()))


# ------------------------------------------------------------------------------------------- codes
def parity_bits(k: int) -> int:
    """Check bits of even parity over ``k`` data bits."""
    return 1


def parity(value: int) -> int:
    """Even parity of the bits of ``value``."""
    return bin(value).count("1") & 1


def secded_check_bits(k: int) -> int:
    """Check bits of the extended Hamming code over ``k`` data bits: r Hamming bits (2**r >= k + r + 1)
    plus one overall parity bit."""
    if k < 1:
        raise ValueError(f"a code needs at least one data bit, not {k}")
    r = 1
    while (1 << r) < k + r + 1:
        r += 1
    return r + 1


def hamming_positions(k: int) -> tuple[int, ...]:
    """The Hamming code-word position (1-based, never a power of two) of each of ``k`` data bits, in order.
    Check bit i (i < r) covers the positions with bit i set; the overall parity covers everything."""
    out = []
    pos = 1
    while len(out) < k:
        if pos & (pos - 1):
            out.append(pos)
        pos += 1
    return tuple(out)


def secded_encode(k: int, data: int) -> int:
    """The check bits (low r: Hamming bits by index, bit r: overall parity) of ``data`` (``k`` bits)."""
    r = secded_check_bits(k) - 1
    pos = hamming_positions(k)
    check = 0
    for i in range(r):
        bit = 0
        for d, p in enumerate(pos):
            if p >> i & 1:
                bit ^= data >> d & 1
        check |= bit << i
    overall = parity(data) ^ parity(check)
    return check | overall << r


@dataclass(frozen=True)
class Decoded:
    """A code word read back: the (corrected) data, and whether one error was corrected or an
    uncorrectable one detected."""

    data: int
    corrected: bool
    detected: bool


def secded_decode(k: int, data: int, check: int) -> Decoded:
    """Decode ``data`` (``k`` bits) with its stored ``check`` bits (:func:`secded_encode`'s layout)."""
    r = secded_check_bits(k) - 1
    pos = hamming_positions(k)
    syndrome = 0
    for i in range(r):
        bit = check >> i & 1
        for d, p in enumerate(pos):
            if p >> i & 1:
                bit ^= data >> d & 1
        syndrome |= bit << i
    overall = parity(data) ^ parity(check)
    if overall:  # an odd number of flips: one, at ``syndrome`` (0: the overall parity bit itself)
        for d, p in enumerate(pos):
            if p == syndrome:
                return Decoded(data ^ (1 << d), True, False)
        return Decoded(data, True, False)  # a check bit: the data is right
    if syndrome:
        return Decoded(data, False, True)
    return Decoded(data, False, False)


def checksum_weight_bits(weight_width: int, cols: int) -> int:
    """Bits of the ABFT checksum column's weight: the sum of ``cols`` signed ``weight_width``-bit weights."""
    return weight_width + max(0, (cols - 1).bit_length())


# ---------------------------------------------------------------------------------- word layouts
@dataclass(frozen=True)
class MemoryLayout:
    """How a protected memory stores a word of ``lanes`` lanes of ``lane_bits`` data bits: ``codes`` code
    words, each over ``code_lanes`` lanes, its data bits followed by ``check_bits`` check bits, so a code
    word is ``code_lanes * lane_bits + check_bits`` stored bits and a word ``codes`` of them."""

    mechanism: Mechanism | None
    lanes: int
    lane_bits: int
    code_lanes: int
    check_bits: int

    @property
    def codes(self) -> int:
        return self.lanes // self.code_lanes

    @property
    def code_data_bits(self) -> int:
        return self.code_lanes * self.lane_bits

    @property
    def code_bits(self) -> int:
        return self.code_data_bits + self.check_bits

    @property
    def word_bits(self) -> int:
        return self.codes * self.code_bits


def stored_lane_bits(mechanism: Mechanism | None, lane_bits: int) -> int:
    """Stored bits of one lane when the code is per lane (the scratchpads)."""
    if mechanism is None:
        return lane_bits
    return lane_bits + (parity_bits(lane_bits) if mechanism is Mechanism.PARITY else secded_check_bits(lane_bits))


def memory_layout(structure: str, mechanism: Mechanism | None, lanes: int, lane_bits: int) -> MemoryLayout:
    """The layout of memory ``structure``: per lane for the scratchpads (written by lanes), per word for the
    accumulator buffer with SECDED (written whole), per lane with parity everywhere."""
    if mechanism is None:
        return MemoryLayout(None, lanes, lane_bits, 1, 0)
    code_lanes = lanes if (structure == "acc_buf" and mechanism is Mechanism.SECDED) else 1
    k = code_lanes * lane_bits
    check = parity_bits(k) if mechanism is Mechanism.PARITY else secded_check_bits(k)
    return MemoryLayout(mechanism, lanes, lane_bits, code_lanes, check)
