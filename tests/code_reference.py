"""The memories' codes applied to whole stored words for the tests, from the Python codes of hwgen.safety
(the generated hardware and the injectors' code_faults are what tests/test_safety.py and
tests/test_fi_protected.py compare with these)."""

from hwgen.safety import Mechanism, parity, secded_decode, secded_encode


def encode_stored(layout, data: int) -> int:
    """The stored word of ``data`` (every code word: its data bits, then its check bits)."""
    k, n = layout.code_data_bits, layout.code_bits
    out = 0
    for c in range(layout.codes):
        d = data >> (c * k) & ((1 << k) - 1)
        chk = parity(d) if layout.mechanism is Mechanism.PARITY else secded_encode(k, d)
        out |= (d | chk << k) << (c * n)
    return out


def decode_stored(layout, stored: int) -> tuple[int, list[bool], list[bool]]:
    """(the decoded data, per code word corrected, per code word detected) of a stored word."""
    k, n = layout.code_data_bits, layout.code_bits
    data, corr, det = 0, [], []
    for c in range(layout.codes):
        word = stored >> (c * n) & ((1 << n) - 1)
        d, chk = word & ((1 << k) - 1), word >> k
        if layout.mechanism is Mechanism.PARITY:
            corr.append(False)
            det.append(parity(d) != chk)
            out = d
        else:
            r = secded_decode(k, d, chk)
            corr.append(r.corrected)
            det.append(r.detected)
            out = r.data
        data |= out << (c * k)
    return data, corr, det

