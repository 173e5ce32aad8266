"""Encoders and decoders of the memories' error-detecting codes, in Amaranth.

The codes and their layouts are :mod:`hwgen.safety`'s (one home: this module builds its XOR trees from
:func:`hwgen.safety.hamming_positions` and :class:`hwgen.safety.MemoryLayout`). A stored word is
``layout.codes`` code words, each its data bits followed by its check bits, so a per-lane code keeps
the lane a contiguous, separately writable slice of the word (write-port granularity
``layout.code_bits``).

The decoder is combinational, behind the memory's read port: it adds logic to the read path but no
cycle, so a protected design runs the schedule of the unprotected one (``tests/test_safety_rtl.py``).
(No ``from __future__ import annotations`` here: see the Amaranth notes in docs/ARCHITECTURE.md.)
"""

from amaranth import Cat, Const, Signal, Value

from .safety import Mechanism, MemoryLayout, hamming_positions

__all__ = ["encode_word", "Decoder", "decode_word"]


def _xor(bits: list) -> Value:
    if not bits:
        return Const(0, 1)
    out = bits[0]
    for b in bits[1:]:
        out = out ^ b
    return out


def _check_bits(layout: MemoryLayout, data: Value) -> list:
    """The check bits of one code word's data, in stored order."""
    k = layout.code_data_bits
    if layout.mechanism is Mechanism.PARITY:
        return [data.xor()]
    r = layout.check_bits - 1
    pos = hamming_positions(k)
    hamming = [_xor([data[d] for d, p in enumerate(pos) if p >> i & 1]) for i in range(r)]
    return hamming + [_xor([data.xor(), *hamming])]


def encode_word(layout: MemoryLayout, data: Value) -> Value:
    """The stored form of ``data`` (``lanes * lane_bits`` bits, lane 0 lowest)."""
    if layout.mechanism is None:
        return data
    k = layout.code_data_bits
    parts = []
    for c in range(layout.codes):
        d = data[c * k:(c + 1) * k]
        parts += [d, *_check_bits(layout, d)]
    return Cat(*parts)


class Decoder:
    """A decoded read: ``data`` (the word's data bits, corrected where the code can), and per code word
    ``corrected[c]`` / ``detected[c]`` (1-bit values: one error corrected; an error the code can only
    detect)."""

    def __init__(self, data: Value, corrected: list, detected: list):
        self.data, self.corrected, self.detected = data, corrected, detected


def decode_word(m, layout: MemoryLayout, stored: Value, name: str) -> Decoder:
    """Decode the stored word ``stored`` (``layout.word_bits``) in module ``m``; ``name`` prefixes the
    signals (the syndromes are combinational: no fault site)."""
    k, n = layout.code_data_bits, layout.code_bits
    if layout.mechanism is None:
        return Decoder(stored, [], [])
    datas, corrected, detected = [], [], []
    for c in range(layout.codes):
        word = stored[c * n:(c + 1) * n]
        d, chk = word[:k], word[k:]
        if layout.mechanism is Mechanism.PARITY:
            bad = Signal(name=f"{name}_par{c}")
            m.d.comb += bad.eq(d.xor() ^ chk[0])
            datas.append(d)
            corrected.append(Const(0, 1))
            detected.append(bad)
            continue
        r = layout.check_bits - 1
        pos = hamming_positions(k)
        syndrome = Signal(r, name=f"{name}_syn{c}")
        overall = Signal(name=f"{name}_odd{c}")
        m.d.comb += [syndrome[i].eq(_xor([chk[i], *[d[j] for j, p in enumerate(pos) if p >> i & 1]]))
                     for i in range(r)]
        m.d.comb += overall.eq(d.xor() ^ chk.xor())
        fixed = Signal(k, name=f"{name}_fix{c}")
        m.d.comb += fixed.eq(Cat(*[d[j] ^ (overall & (syndrome == p)) for j, p in enumerate(pos)]))
        datas.append(fixed)
        corrected.append(overall)
        det = Signal(name=f"{name}_dbl{c}")
        m.d.comb += det.eq(~overall & (syndrome != 0))
        detected.append(det)
    return Decoder(Cat(*datas), corrected, detected)
