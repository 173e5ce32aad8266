"""What a memory fault becomes behind the memory's code (parity, SECDED: :mod:`hwgen.safety`).

A protected memory stores each word as code words (data bits, then check bits: :class:`hwgen.safety.
MemoryLayout`); a fault site's bits count stored bits. The codes are linear, so what a read of a flipped
code word delivers depends on the flipped positions only, never on the data: decoding the error pattern
alone (as if the data were 0) gives whether the decoder corrects or detects, and which data bits stay
wrong after it (none for one SECDED flip; all of them for an even number under parity; a miscorrected
triple under SECDED). The model-level injector turns a fault in a protected memory into those effects
per code word, then injects the remaining data-bit error into the model's data view of the memory
(lanes of data bits, no check bits) as it would in an unprotected one.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwgen.safety import Mechanism, MemoryLayout, parity, secded_decode

__all__ = ["CodeEffect", "code_effects", "data_view_bits"]


@dataclass(frozen=True)
class CodeEffect:
    """One flipped code word: ``lanes`` it covers (the reads of any of them decode it), the data bits still
    wrong after decoding (a mask over the code word's data bits), and whether the decoder corrects or
    detects (it does so at every consumption until the word is written again)."""

    code: int
    lanes: tuple[int, ...]
    residual: int
    corrected: bool
    detected: bool


def code_effects(layout: MemoryLayout, bit: int, nbits: int) -> list[CodeEffect]:
    """The code words that stored bits ``[bit, bit + nbits)`` of one word flip, and what each decodes to
    (bits beyond the word are not state: left out)."""
    if layout.mechanism is None:
        raise ValueError("an unprotected memory has no code")
    k, n = layout.code_data_bits, layout.code_bits
    patterns: dict[int, list[int]] = {}
    for b in range(bit, min(bit + nbits, layout.word_bits)):
        c, local = divmod(b, n)
        e = patterns.setdefault(c, [0, 0])
        if local < k:
            e[0] |= 1 << local
        else:
            e[1] |= 1 << (local - k)
    out = []
    for c, (e_data, e_check) in sorted(patterns.items()):
        lanes = tuple(range(c * layout.code_lanes, (c + 1) * layout.code_lanes))
        if layout.mechanism is Mechanism.PARITY:
            odd = bool(parity(e_data) ^ parity(e_check))
            out.append(CodeEffect(c, lanes, e_data, False, odd))
        else:
            d = secded_decode(k, e_data, e_check)
            out.append(CodeEffect(c, lanes, d.data, d.corrected, d.detected))
    return out


def data_view_bits(layout: MemoryLayout, effect: CodeEffect) -> list[int]:
    """The bits of the memory word's data view (lane l's data at ``l * lane_bits``) still wrong after
    decoding ``effect``'s code word."""
    k = layout.code_data_bits
    return [effect.code * k + i for i in range(k) if effect.residual >> i & 1]
