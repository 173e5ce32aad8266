"""Per-layer compute cycles and utilization of a SCALE-Sim topology, as SCALE-Sim 3.0.0 reports them.

:func:`scalesim_compat_report` takes a :class:`~mappings.scalesim_csv.ScaleSimTopology`
(from :func:`~mappings.scalesim_csv.read_topology`), an ideal ``rows x cols`` array and a
dataflow (``os``, ``ws`` or ``is``) and gives, for each layer SCALE-Sim simulates (a ``DP``
row is one layer per channel, named ``<row>Channel_<i>``, as in SCALE-Sim's reports), the
spatio-temporal mapping ``(S_r, S_c, T)``, SCALE-Sim's stall-free "Total Cycles" and its
"Compute Util %", plus MACs and folds. The cost model is :func:`sim.scalesim_compat.compute_cycles`
(its docstring derives each formula from SCALE-Sim's source). :func:`format_report` renders a
report as plain text; the CLI is a thin shell over these two functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sim.scalesim_compat import DATAFLOWS, compute_cycles

from .scalesim_csv import ScaleSimLayer, ScaleSimTopology

__all__ = ["CompatLayer", "CompatReport", "scalesim_compat_report", "format_report"]


@dataclass(frozen=True)
class CompatLayer:
    """One SCALE-Sim layer (its ``LayerID`` is ``index``)."""

    index: int
    name: str
    Sr: int
    Sc: int
    T: int
    #: SCALE-Sim's "Total Cycles" (stall-free)
    cycles: int
    #: SCALE-Sim's "Compute Util %" / 100
    utilization: float
    macs: int
    row_folds: int
    col_folds: int
    #: "Mapping Efficiency %" / 100
    mapping_efficiency: float
    #: "Overall Util %" / 100 (MACs / (cycles * rows * cols))
    overall_utilization: float


@dataclass(frozen=True)
class CompatReport:
    name: str
    rows: int
    cols: int
    dataflow: str
    layers: tuple[CompatLayer, ...]

    @property
    def total_cycles(self) -> int:
        """Sum of the layers' cycles (SCALE-Sim runs the layers one after the other)."""
        return sum(layer.cycles for layer in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def overall_utilization(self) -> float:
        """Whole network: MACs / (total cycles * PEs)."""
        denom = self.total_cycles * self.rows * self.cols
        return self.total_macs / denom if denom else float("inf")

    @property
    def mean_utilization(self) -> float:
        """Cycle-weighted mean of the layers' compute utilization."""
        tc = self.total_cycles
        return sum(layer.utilization * layer.cycles for layer in self.layers) / tc if tc else 0.0

    def __len__(self) -> int:
        return len(self.layers)


def scalesim_compat_report(topology: ScaleSimTopology | Iterable[ScaleSimLayer], rows: int, cols: int,
                           dataflow: str, name: str | None = None) -> CompatReport:
    """SCALE-Sim 3.0.0's per-layer compute cycles and utilization of ``topology`` on an ideal
    (stall-free) ``rows x cols`` array with ``dataflow``. ``topology`` is a
    :class:`ScaleSimTopology` or an iterable of :class:`ScaleSimLayer` (taken as SCALE-Sim's layer
    list: DP rows are expanded per channel either way). A bad dataflow or array size raises
    :class:`ValueError`."""
    df = str(dataflow).lower()
    if df not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}: SCALE-Sim's dataflows are 'os', 'ws' and 'is'")
    for what, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"array {what} must be a positive integer, got {v!r}")
    if isinstance(topology, ScaleSimTopology):
        layers = topology.layers
        name = name or topology.name
    else:
        layers = [lay for row in topology for lay in row.expanded()]
        name = name or "scalesim"
    out = []
    for i, lay in enumerate(layers):
        sr, sc, t = lay.spatiotemporal(df)
        c = compute_cycles(rows, cols, df, sr, sc, t)
        out.append(CompatLayer(i, lay.name, sr, sc, t, c.cycles, c.utilization, c.macs, c.row_folds, c.col_folds,
                               c.mapping_efficiency, c.overall_utilization))
    return CompatReport(name, rows, cols, df, tuple(out))


def format_report(report: CompatReport, percent_digits: int = 2) -> str:
    """Plain-text table: one line per layer, then the totals."""
    head = ("LayerID", "Layer", "Sr", "Sc", "T", "Folds", "Cycles", "Util %", "MACs")
    body = [(str(l.index), l.name, str(l.Sr), str(l.Sc), str(l.T), f"{l.row_folds}x{l.col_folds}", str(l.cycles),
             f"{100 * l.utilization:.{percent_digits}f}", str(l.macs)) for l in report.layers]
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(head)]
    left = {1}  # the name column is left-aligned, numbers right-aligned

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [f"{report.name}: {len(report)} layers on a {report.rows}x{report.cols} array, dataflow "
             f"{report.dataflow.upper()} (SCALE-Sim 3.0.0 compute cycles, stall-free)",
             line(head), line(["-" * w for w in widths])]
    lines += [line(r) for r in body]
    lines.append(f"total: {report.total_cycles} cycles, {report.total_macs} MACs, overall utilization "
                 f"{100 * report.overall_utilization:.{percent_digits}f}% (MACs / (cycles x "
                 f"{report.rows * report.cols} PEs))")
    return "\n".join(lines)
