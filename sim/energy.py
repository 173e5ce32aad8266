"""Energy of a layer from the exact analytical model's event counts (:class:`sim.perf.LayerPerf`) times the
per-operation energies of :mod:`hwgen.energy_table`.

Every count is exact (equal to the emitted program's instructions and to the cycle model), so the energy
is as exact as the table: what it prices is fixed by the program, not estimated from utilization.

=============  ==========================================================================================
component      events
=============  ==========================================================================================
``mac``        busy PE-cycles (the hardware counter: partial tiles' idle columns and merged groups'
               zero weights switch too) x one MAC of the operand and accumulator widths
``a_spad``     bits written by loads (lanes, zero fills included) and words read by computes, in an SRAM
               of ``a_spad_depth`` words of ``rows`` x ``input_width`` bits
``w_spad``     the same for the W scratchpad (``cols`` x ``weight_width``-bit words)
``acc``        rows written by computes and read by accumulating computes and stores (``cols`` x
               ``acc_width`` bits), in an SRAM of ``acc_depth`` rows
``qtable``     entry bytes loaded, and one entry read per stored output element when the table is used
``host``       bytes read, written and fetched over the host ports, as DRAM traffic
=============  ==========================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hwgen.config import AcceleratorConfig
from hwgen.energy_table import HOROWITZ_45NM, SCALING, EnergyTable
from hwgen.isa import QTABLE_BYTES

from .perf import LayerPerf

__all__ = ["Energy", "layer_energy", "COMPONENTS"]

#: the components of :class:`Energy`, in report order
COMPONENTS = ("mac", "a_spad", "w_spad", "acc", "qtable", "host")


@dataclass(frozen=True)
class Energy:
    """Dynamic energy in picojoules per component (:data:`COMPONENTS`); ``scaling`` says how the table was
    applied. Energies of layers add."""

    mac: float = 0.0
    a_spad: float = 0.0
    w_spad: float = 0.0
    acc: float = 0.0
    qtable: float = 0.0
    host: float = 0.0
    scaling: str = field(default=SCALING, compare=False)

    @property
    def total_pj(self) -> float:
        return sum(getattr(self, c) for c in COMPONENTS)

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6

    def __add__(self, other: "Energy") -> "Energy":
        return Energy(**{c: getattr(self, c) + getattr(other, c) for c in COMPONENTS}, scaling=self.scaling)

    def to_dict(self) -> dict:
        return {**{f"{c}_pj": getattr(self, c) for c in COMPONENTS}, "total_pj": self.total_pj}


def _sram(table: EnergyTable, word_bits: int, depth: int, bits_moved: float) -> float:
    """Energy of moving ``bits_moved`` bits in and out of an SRAM of ``depth`` words of ``word_bits``."""
    return table.sram_pj(64, depth * word_bits / 8) * bits_moved / 64


def layer_energy(cfg: AcceleratorConfig, perf: LayerPerf, table: EnergyTable = HOROWITZ_45NM) -> Energy:
    """The energy of the program ``perf`` counts, on ``cfg`` (see the module docstring)."""
    if perf.pes != cfg.pes:
        raise ValueError(f"LayerPerf of a {perf.pes}-PE array, config '{cfg.name}' has {cfg.pes} PEs")
    a_word, w_word, acc_word = cfg.rows * cfg.input_width, cfg.cols * cfg.weight_width, cfg.cols * cfg.acc_width
    entry = 8 * QTABLE_BYTES
    stored = perf.host_write_bytes if perf.q_spad_words else 0  # a store through the table reads an entry per output
    return Energy(
        mac=perf.busy_pe * table.mac_pj(cfg.input_width, cfg.weight_width, cfg.acc_width),
        a_spad=_sram(table, a_word, cfg.a_spad_depth, perf.a_spad_elems * cfg.input_width + perf.a_spad_reads * a_word),
        w_spad=_sram(table, w_word, cfg.w_spad_depth,
                     perf.w_spad_elems * cfg.weight_width + perf.w_spad_reads * w_word),
        acc=_sram(table, acc_word, cfg.acc_depth, (perf.acc_row_writes + perf.acc_row_reads) * acc_word),
        qtable=_sram(table, entry, cfg.cols, 8 * perf.q_spad_bytes + stored * entry),
        host=perf.host_bytes * table.dram_byte_pj(),
    )
