"""The decoupled analytical cost against the cycle model, layer by layer, at full size.

For every distinct compute layer of each network (the zoo's ResNet-50, MobileNetV1, MobileNetV2 by
default) on the decoupled 16x16 configuration of benchmarks/utilization.py: the plan ``hwgen map``
chooses (grouped layers in their executed, block-diagonal form), its cost from
:func:`mappings.pipelined.decoupled_perf` (the stream timed region by region), and the cycle model
(:class:`sim.cycle.CycleModel`, which times decoupled programs with :func:`sim.schedule.schedule`) on the
program ``lower_conv2d`` / ``lower_gemm`` emit for random operands. Prints per layer both cycle counts
and busy-PE counts and the seconds each took, and the totals; exits 1 if any layer differs.

Usage: python benchmarks/decoupled_exact.py [--networks resnet50,mobilenet_v1,mobilenet_v2] [--array 16]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from mappings.graph import Conv2d, Gemm
from mappings.grouping import executed_conv
from mappings.lowering import lower_conv2d, lower_gemm
from mappings.mapper import executed_plan
from mappings.network_map import layer_shape, load_model
from mappings.pipelined import decoupled_perf
from sim.cycle import CycleModel
from sim.perf import ConvShape
from sim.reference import Quant

from utilization import config


def lowered(cfg, shape, plan, rng):
    """The program of ``shape`` with ``plan`` for random int8 operands."""
    q = Quant(1, 12, 0, -128, 127)
    if isinstance(shape, ConvShape):
        X = rng.integers(-128, 128, (shape.H, shape.W, shape.Cin), dtype=np.int8)
        W = rng.integers(-128, 128, (shape.KH, shape.KW, shape.Cin // shape.groups, shape.Cout), dtype=np.int8)
        return lower_conv2d(cfg, X, W, shape.stride, shape.pads, q, groups=shape.groups, dilation=shape.dilation,
                            plan=plan)
    M, K, N = shape.gemm
    return lower_gemm(cfg, rng.integers(-128, 128, (M, K), dtype=np.int8),
                      rng.integers(-128, 128, (K, N), dtype=np.int8), q, plan=plan)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default="resnet50,mobilenet_v1,mobilenet_v2")
    ap.add_argument("--array", type=int, default=16, choices=(16, 32))
    args = ap.parse_args(argv)
    cfg = config(args.array, "decoupled")
    rng = np.random.default_rng(0)
    console = Console(width=160)
    bad = 0
    for net in args.networks.split(","):
        graph = load_model(f"zoo:{net}")
        table = Table(title=f"{net} on {cfg.rows}x{cfg.cols} decoupled: analytical cost vs cycle model")
        for col in ("layer", "GEMM", "analytical", "cycle model", "busy PE equal", "analytical s", "model s"):
            table.add_column(col, justify="left" if col in ("layer", "GEMM") else "right")
        seen: set = set()
        tot_a = tot_m = 0.0
        for node, layer in graph:
            if not isinstance(layer, (Conv2d, Gemm)):
                continue
            shape, _ = layer_shape(graph, node)
            if isinstance(shape, ConvShape):
                shape = executed_conv(cfg, shape)
            if shape in seen:
                continue
            seen.add(shape)
            plan, _ = executed_plan(cfg, shape)
            t0 = time.perf_counter()
            perf = decoupled_perf(cfg, shape, plan, False)
            t1 = time.perf_counter()
            prog = lowered(cfg, shape, plan, rng)
            t2 = time.perf_counter()
            res = CycleModel(cfg).run(prog.image())
            t3 = time.perf_counter()
            ok = res.cycles == perf.cycles and res.busy_pe == perf.busy_pe
            bad += not ok
            tot_a += t1 - t0
            tot_m += t3 - t2
            table.add_row(node, "x".join(map(str, shape.gemm)), f"{perf.cycles:,}", f"{res.cycles:,}",
                          "yes" if res.busy_pe == perf.busy_pe else "NO", f"{t1 - t0:.2f}", f"{t3 - t2:.2f}")
        console.print(table)
        console.print(f"{net}: {len(seen)} distinct layers, analytical {tot_a:.1f} s, cycle model {tot_m:.1f} s; "
                      f"{'all equal' if not bad else f'{bad} differ'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
