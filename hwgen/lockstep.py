"""Dual modular redundancy for a unit: a twin instance that takes the same inputs, and a comparison of
every output every cycle (the DMR mechanism of :mod:`hwgen.safety`).

Generic over a :class:`amaranth.lib.wiring.Component`: its signature's flattened members are walked once,
so the twin's inputs are the primary's (as connected), and the detection is any output bit of the two
that differs. The primary's outputs drive the design as before; the twin's go only to the comparator, so
the design computes exactly what the unprotected one does, in the same cycles. A flip in either copy's
state is detected in the first cycle it shows at an output (a flip that never does is masked, as in the
unprotected design). (No ``from __future__ import annotations``: Amaranth pitfall, docs/ARCHITECTURE.md.)
"""

from amaranth import Value
from amaranth.lib.wiring import Flow

__all__ = ["lockstep"]


def _member(obj, path):
    for p in path:
        obj = obj[p] if isinstance(p, int) else getattr(obj, p)
    return obj


def lockstep(m, primary, twin) -> Value:
    """Drive ``twin``'s inputs from ``primary``'s in module ``m``; returns a 1-bit value that is 1 in any
    cycle an output of the two differs."""
    diff = []
    for path, member, value in primary.signature.flatten(primary):
        other = _member(twin, path)
        if member.flow is Flow.In:
            m.d.comb += other.eq(value)
        else:
            diff.append(Value.cast(value) != Value.cast(other))
    out = diff[0]
    for d in diff[1:]:
        out = out | d
    return out
