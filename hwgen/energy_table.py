"""Per-operation energies: the one table every energy figure of hwgen is computed from.

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, the
energy table of its Figure 1.1.9 (45 nm, 0.9 V):

=====================================  ==========
operation                              energy
=====================================  ==========
8-bit integer add                      0.03 pJ
32-bit integer add                     0.1 pJ
8-bit integer multiply                 0.2 pJ
32-bit integer multiply                3.1 pJ
64-bit SRAM read, 8 KB array           10 pJ
64-bit SRAM read, 32 KB array          20 pJ
64-bit SRAM read, 1 MB array           100 pJ
64-bit DRAM access                     1.3-2.6 nJ
=====================================  ==========

How it is scaled (stated in every report, :data:`SCALING`):

* an integer multiply by the product of its operand widths (an array multiplier's partial-product
  area), from the 8 x 8-bit figure; an add by its width, from the 32-bit figure; a MAC is one of each
  (operand widths, accumulator width);
* an SRAM access by its word width (the 64-bit figures times width / 64) and by capacity along the
  table's own curve: log-log interpolation between its three sizes, extrapolated with the slope of the
  nearest pair (about capacity^0.5 below 32 KB, capacity^0.46 above);
* host memory as DRAM at the table's lower figure, 1.3 nJ per 64 bits, per byte moved.

What it leaves out: leakage and clock power (dynamic energy of the counted events only), wires and the
array's operand registers, the controller. No technology scaling: the figures are 45 nm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["EnergyTable", "HOROWITZ_45NM", "SCALING"]


@dataclass(frozen=True)
class EnergyTable:
    """Per-operation energies in picojoules and the SRAM curve they are scaled from."""

    source: str
    add32_pj: float
    mul8x8_pj: float
    #: (capacity in bytes, energy of one 64-bit read in pJ), increasing capacity
    sram64_pj: tuple[tuple[int, float], ...]
    dram64_pj: float

    def mac_pj(self, a_bits: int, b_bits: int, acc_bits: int) -> float:
        """One multiply-accumulate: an ``a_bits`` x ``b_bits`` multiply and an ``acc_bits`` add."""
        return self.mul8x8_pj * a_bits * b_bits / 64 + self.add32_pj * acc_bits / 32

    def sram_pj(self, word_bits: int, capacity_bytes: float) -> float:
        """One access of a ``word_bits``-wide word in an SRAM of ``capacity_bytes``."""
        if capacity_bytes <= 0 or word_bits <= 0:
            raise ValueError(f"SRAM of {capacity_bytes} bytes with {word_bits}-bit words")
        pts = self.sram64_pj
        # the pair of table points to interpolate (or extrapolate) between
        i = 0 if capacity_bytes <= pts[0][0] else len(pts) - 2 if capacity_bytes >= pts[-1][0] else next(
            j for j in range(len(pts) - 1) if pts[j][0] <= capacity_bytes <= pts[j + 1][0])
        (c0, e0), (c1, e1) = pts[i], pts[i + 1]
        slope = math.log(e1 / e0) / math.log(c1 / c0)
        return e0 * (capacity_bytes / c0) ** slope * word_bits / 64

    def dram_byte_pj(self) -> float:
        """One byte moved to or from host memory."""
        return self.dram64_pj / 8


HOROWITZ_45NM = EnergyTable(
    source="Horowitz, ISSCC 2014 (45 nm, 0.9 V)", add32_pj=0.1, mul8x8_pj=0.2,
    sram64_pj=((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0)), dram64_pj=1300.0)

#: How the table is applied, for the reports that print an energy figure.
SCALING = ("dynamic energy, 45 nm (Horowitz ISSCC 2014): MAC = multiply scaled by operand-width product + add "
           "scaled by accumulator width; SRAM access scaled by word width and by capacity along the table's "
           "8 KB/32 KB/1 MB curve; host bytes at 1.3 nJ per 64 bits; no leakage, clock or wires")
