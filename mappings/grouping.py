"""Grouped and depthwise convolutions as block-diagonal grouped convolutions the array can fill.

A grouped convolution is one GEMM per group (M = OH*OW, K = KH*KW*Cin/g, N = Cout/g). A depthwise
layer (Cin/g = 1) thus streams GEMMs with one weight column and K = 9: one array column of C busy,
and every A word a gather of single bytes strided by the channel count (SCALE-Sim's users report
such layers under 3% mapping efficiency). Merging ``s`` neighbouring groups into one whose weights
are block-diagonal (group t of the s keeps its own Cin/g x Cout/g block, zeros elsewhere) gives the
same outputs exactly (the zeros add nothing to any accumulator), ``s`` times wider GEMMs (N = s*Cout/g
columns) and, because a pixel's channels are contiguous in NHWC, A words that are whole host-port
words. ``s`` is the largest divisor of the group count with s*Cin/g <= R (one k-tile holds a tap of
every merged channel) and s*Cout/g <= C (one column tile holds every output): no new hardware, and no
area. Measured (16x16, 128-bit port, depths 8192/8192/1024): MobileNetV2's 3x3 depthwise layers
9x faster in order and 12-16x with the decoupled controller.

The useful MACs stay those of the original layer; the busy-PE counter also counts the zero weights'
PEs, so a merged layer's busy utilization overstates its MAC utilization (``hwgen map`` prints both).

``hwgen map`` and ``hwgen run`` both plan and execute the merged form (:func:`executed_conv`), so
they agree layer by layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hwgen.config import AcceleratorConfig
from sim.perf import ConvShape

__all__ = ["merge_factor", "executed_conv", "merge_weights"]


def merge_factor(cfg: AcceleratorConfig, shape: ConvShape) -> int:
    """How many neighbouring groups of ``shape`` run as one block-diagonal group on ``cfg`` (1: none)."""
    g = shape.groups
    cin, cout = shape.Cin // g, shape.Cout // g
    best = 1
    for s in range(2, g + 1):
        if g % s == 0 and s * cin <= cfg.rows and s * cout <= cfg.cols:
            best = s
    return best


def executed_conv(cfg: AcceleratorConfig, shape: ConvShape) -> ConvShape:
    """The convolution that runs for ``shape``: its groups merged by :func:`merge_factor`."""
    s = merge_factor(cfg, shape)
    return shape if s == 1 else dataclasses.replace(shape, groups=shape.groups // s)


def merge_weights(wt: np.ndarray, groups: int, s: int) -> np.ndarray:
    """``wt`` (KH, KW, Cin/groups, Cout) as the weights of ``groups // s`` groups: (KH, KW, s*Cin/groups,
    Cout), group h's block for its t-th merged group at input rows t*Cin/g.. and that group's output
    columns, zeros elsewhere."""
    KH, KW, cg, cout = wt.shape
    if groups % s or cout % groups:
        raise ValueError(f"{groups} groups of {cout} outputs do not merge by {s}")
    og = cout // groups
    out = np.zeros((KH, KW, s * cg, cout), dtype=wt.dtype)
    for g in range(groups):
        t = g % s
        out[:, :, t * cg:(t + 1) * cg, g * og:(g + 1) * og] = wt[:, :, :, g * og:(g + 1) * og]
    return out
