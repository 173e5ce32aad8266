"""SCALE-Sim 3.0.0's compute cycle count and utilization, as closed forms.

SCALE-Sim (``pip install scalesim==3.0.0``) does not compute a layer's cycle
count from a formula: it builds demand matrices (one line per cycle) in
``scalesim/compute/systolic_compute_{os,ws,is}.py`` and then walks them line by
line through its memory model. With stall-free memories the number it reports
is fixed by the shape of those matrices alone, and this module gives it in
closed form from the layer's spatio-temporal mapping ``(S_r, S_c, T)`` (see
``ScaleSimLayer.spatiotemporal`` in ``mappings/scalesim_csv.py``, i.e.
``topologies.calc_spatio_temporal_params``) and the array size ``R x C``.
Nothing here imports ``mappings``: the inputs are plain integers.

Folds (all three dataflows; ``set_params`` of each ``systolic_compute_*`` class)::

    row_folds = ceil(S_r / R)      col_folds = ceil(S_c / C)
    folds     = row_folds * col_folds

(For WS the demand matrices loop over ``row_fold_demand_matrices =
ceil(filter_op_mat.shape[0] / R)``, which equals ``ceil(S_r / R)`` without
sparsity support.)

Lines per fold of the OFMAP demand matrix, i.e. cycles per fold:

* OS, ``systolic_compute_os.create_ofmap_demand_mat``: a prefix of ``T - 1``
  null lines, the ``R`` (padded) output rows, then ``skew_matrix`` adds
  ``C - 1`` lines: ``T + R + C - 2``.
* WS, ``systolic_compute_ws.create_ofmap_demand_mat``: a prefix of ``2R - 1``
  lines (weights load + reduce), the ``T`` output lines, then the skew's
  ``C - 1``: ``2R + C + T - 2``.
* IS, ``systolic_compute_is.create_ofmap_demand_mat``: the same construction
  as WS: ``2R + C + T - 2``.

(The IFMAP and filter demand matrices of each dataflow have the same number of
lines per fold; the classes assert it for OS and IS.)

Cycles: ``double_buffered_scratchpad.service_memory_requests``
(``scalesim/memory/double_buffered_scratchpad_mem.py``) serves demand line
``i`` at cycle ``i + stalls`` and sets ``total_cycles = max(ofmap serviced
cycles)``, the cycle of the *last* line, so with no stall::

    cycles = folds * lines_per_fold - 1

This is the "Total Cycles" column of ``COMPUTE_REPORT.csv``
(``single_layer_sim.calc_report_data``: ``total_cycles =
memory_system.get_total_compute_cycles()``), the "Compute cycles" SCALE-Sim
prints per layer. (SCALE-Sim adds its "Stall Cycles" into that same number
when its memories stall; the first column, "Total Cycles (incl. prefetch)",
comes from the DRAM traces and is not a compute quantity.)

Utilization ("Compute Util %" of ``COMPUTE_REPORT.csv``,
``get_avg_compute_utilization``): the mean over folds of ``mac_used * T /
(R * C * fold_cycles)``, where ``mac_used`` is the PEs the fold maps
(``rows_used * cols_used``). The per-fold denominator ``fold_cycles`` is
``shape[0] + shape[1] - 1`` of a matrix taken *before* any skew:

* OS (in ``create_ofmap_demand_mat``): ``(T - 1 + R) + C - 1 = T + R + C - 2``,
  equal to the lines per fold;
* WS (``create_filter_demand_mat``) and IS (``create_ifmap_demand_mat``): the
  ``R`` (flipped) rows plus a suffix of ``R + C + T - 2`` lines, ``C`` wide:
  ``2R + 2C + T - 3``, i.e. ``C - 1`` more than the lines per fold (SCALE-Sim
  counts the skew twice there; reproduced as is).

Since every fold has the same ``fold_cycles`` and the ``mac_used`` of all
folds add up to ``S_r * S_c``::

    compute_util = S_r * S_c * T / (R * C * fold_cycles * folds)

Mapping efficiency ("Mapping Efficiency %"): the mean of ``mac_used / (R *
C)``, ``S_r * S_c / (R * C * folds)`` (WS counts the null entries of the padded
filter fold instead, which is the same number on a dense layer).

Overall utilization ("Overall Util %", ``single_layer_sim.calc_report_data``):
``num_compute / (cycles * R * C)`` with ``num_compute`` = ofmap pixels x
filters x window = the layer's MACs = ``S_r * S_c * T`` in every dataflow.

All of this is SCALE-Sim with ``sparsity_support`` off (topology sparsity
ratios do not change its compute cycles then) and stall-free memories
(``InterfaceBandwidth = CALC``, large SRAMs).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hwgen.dataflow import Dataflow

__all__ = ["DATAFLOWS", "ComputeCycles", "compute_cycles", "fold_lines", "util_fold_cycles"]

#: SCALE-Sim's dataflows (``scale_config.valid_df_list``)
DATAFLOWS = (Dataflow.OS.value, Dataflow.WS.value, "is")  # hwgen's two, and input-stationary


class ComputeCycles(NamedTuple):
    """One layer on an ideal ``rows x cols`` array, as SCALE-Sim 3.0.0 reports it."""

    #: "Total Cycles" of COMPUTE_REPORT.csv with no stall: ``folds * fold_lines - 1``
    cycles: int
    #: "Compute Util %" / 100 (SCALE-Sim's compute utilization, mean over folds)
    utilization: float
    row_folds: int
    col_folds: int
    #: demand-matrix lines (cycles) per fold
    fold_lines: int
    #: "Mapping Efficiency %" / 100
    mapping_efficiency: float
    #: "Overall Util %" / 100: MACs / (cycles * rows * cols) (inf when cycles is 0)
    overall_utilization: float
    #: MACs of the layer, ``S_r * S_c * T``
    macs: int

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds


def _check_df(dataflow: str) -> str:
    df = str(dataflow).lower()
    if df not in DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}: SCALE-Sim's dataflows are 'os', 'ws' and 'is'")
    return df


def _check_pos(**kw: int) -> None:
    for name, v in kw.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def fold_lines(rows: int, cols: int, dataflow: str, T: int) -> int:
    """Cycles of one fold (demand-matrix lines): OS ``T + R + C - 2``; WS/IS ``2R + C + T - 2``."""
    df = _check_df(dataflow)
    if df == Dataflow.OS:
        return T + rows + cols - 2
    return 2 * rows + cols + T - 2


def util_fold_cycles(rows: int, cols: int, dataflow: str, T: int) -> int:
    """The per-fold denominator of SCALE-Sim's compute utilization: OS ``T + R + C - 2``;
    WS/IS ``2R + 2C + T - 3`` (see the module docstring)."""
    df = _check_df(dataflow)
    if df == Dataflow.OS:
        return T + rows + cols - 2
    return 2 * rows + 2 * cols + T - 3


def compute_cycles(rows: int, cols: int, dataflow: str, Sr: int, Sc: int, T: int) -> ComputeCycles:
    """SCALE-Sim 3.0.0's stall-free compute cycles and utilizations of a layer with spatio-temporal
    mapping ``(Sr, Sc, T)`` for ``dataflow`` on a ``rows x cols`` array (see the module docstring)."""
    df = _check_df(dataflow)
    _check_pos(rows=rows, cols=cols, Sr=Sr, Sc=Sc, T=T)
    rf, cf = math.ceil(Sr / rows), math.ceil(Sc / cols)
    folds = rf * cf
    lines = fold_lines(rows, cols, df, T)
    cycles = folds * lines - 1
    pes = rows * cols
    macs = Sr * Sc * T
    util = macs / (pes * util_fold_cycles(rows, cols, df, T) * folds)
    mapping = (Sr * Sc) / (pes * folds)
    # cycles is 0 only for T = R = C = 1 on one fold (OS): SCALE-Sim divides by zero there
    overall = macs / (cycles * pes) if cycles else math.inf
    return ComputeCycles(cycles, util, rf, cf, lines, mapping, overall, macs)
