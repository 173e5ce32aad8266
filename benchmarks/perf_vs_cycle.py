"""Analytical model (sim.perf) vs cycle model (sim.cycle) on real networks: equal cycles, speed ratio.

For each network (SCALE-Sim topology CSVs: ResNet-50 by default, MobileNet with
``--nets resnet50,mobilenet``) every convolution layer is planned with
``mappings.lowering.plan_tiles`` ('same' padding, (k-1)//2 on each side; a
SCALE-Sim depthwise row, Num Filter 1, becomes a depthwise convolution with
groups = channels) and

* costed by the analytical model (:func:`sim.perf.conv_perf`): all layers, best
  of ``--repeat`` passes;
* lowered to a program (random int8 data; lowering time not counted) and run
  on the cycle model (:meth:`sim.cycle.CycleModel.run`, timed) -- on every
  ``--every``-th layer only if asked (then the cycle model's time is
  extrapolated to the whole network by instruction count and said so).

The script checks that cycles and busy-PE counts are equal on every layer both
ran, and prints per-network totals: cycles, utilisation, instructions, the two
times and their ratio. The analytical model's totals on more array sizes
(``--sizes``) come without the cycle model.

Usage: python benchmarks/perf_vs_cycle.py [--nets resnet50] [--sizes 16,32] [--cycle-size 16] [--every 1]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from mappings.lowering import lower_conv2d, plan_tiles
from sim.cycle import CycleModel
from sim.perf import ConvShape, clear_cache, conv_perf
from sim.reference import Quant

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scalesim"


def read_topology(path: Path) -> list[tuple[str, ConvShape]]:
    """(name, shape) per row of a SCALE-Sim topology CSV."""
    out = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            row = [c.strip() for c in row]
            if not row or not row[0] or row[0].lower().startswith("layer"):
                continue
            name, (H, W, KH, KW, C, N, s) = row[0], (int(v) for v in row[1:8])
            groups, cout = (C, C) if N == 1 and C > 1 else (1, N)  # SCALE-Sim's depthwise rows
            ph, pw = (KH - 1) // 2, (KW - 1) // 2
            out.append((name, ConvShape(H, W, C, KH, KW, cout, s, (ph, pw, ph, pw), 1, groups)))
    return out


def config(size: int, a: int, w: int, acc: int) -> AcceleratorConfig:
    return AcceleratorConfig(name=f"b{size}", rows=size, cols=size, dataflow=Dataflow.BOTH, a_spad_depth=a,
                             w_spad_depth=w, acc_depth=acc, max_reduction=8192)


def analytical(cfg: AcceleratorConfig, layers, repeat: int):
    """(plans, per-layer LayerPerf, seconds of one pass over all layers with the memo cleared before
    every layer, the same with it cleared once per pass (repeated layers costed once), seconds of
    planning); times are the best of ``repeat`` passes."""
    t0 = time.perf_counter()
    plans = [plan_tiles(cfg, *shape.gemm) for _, shape in layers]
    t_plan = time.perf_counter() - t0
    cold = warm = float("inf")
    for _ in range(repeat):
        dt = 0.0
        for (_, shape), plan in zip(layers, plans):
            clear_cache()
            t0 = time.perf_counter()
            conv_perf(cfg, shape, plan)
            dt += time.perf_counter() - t0
        cold = min(cold, dt)
        clear_cache()
        t0 = time.perf_counter()
        perfs = [conv_perf(cfg, shape, plan) for (_, shape), plan in zip(layers, plans)]
        warm = min(warm, time.perf_counter() - t0)
    return plans, perfs, cold, warm, t_plan


def cycle_run(cfg: AcceleratorConfig, shape: ConvShape, rng: np.random.Generator):
    X = rng.integers(-128, 128, (shape.H, shape.W, shape.Cin), dtype=np.int8)
    Wt = rng.integers(-128, 128, (shape.KH, shape.KW, shape.Cin // shape.groups, shape.Cout), dtype=np.int8)
    prog = lower_conv2d(cfg, X, Wt, shape.stride, shape.pads, Quant(1, 12, 0, -128, 127, True),
                        groups=shape.groups, dilation=shape.dilation)
    image = prog.image()
    t0 = time.perf_counter()
    res = CycleModel(cfg).run(image)
    return res, len(prog.instructions), time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nets", default="resnet50", help="comma separated: resnet50, mobilenet")
    ap.add_argument("--sizes", default="16,32", help="array sizes for the analytical totals")
    ap.add_argument("--cycle-size", type=int, default=16, help="array size on which the cycle model also runs (0: none)")
    ap.add_argument("--every", type=int, default=1, help="run the cycle model on every n-th layer only (extrapolate)")
    ap.add_argument("--depths", default="512,512,256", help="A, W scratchpad and accumulator depths")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--verbose", action="store_true", help="print every layer")
    args = ap.parse_args(argv)
    a, w, acc = (int(v) for v in args.depths.split(","))
    rng = np.random.default_rng(0)
    for net in args.nets.split(","):
        layers = read_topology(DATA / f"{net}.csv")
        print(f"== {net}: {len(layers)} conv layers, 'both' arrays, depths A {a} / W {w} / acc {acc}")
        for size in sorted({int(s) for s in args.sizes.split(",")} | ({args.cycle_size} if args.cycle_size else set())):
            cfg = config(size, a, w, acc)
            plans, perfs, t_perf, t_warm, t_plan = analytical(cfg, layers, args.repeat)
            tot = perfs[0]
            for p in perfs[1:]:
                tot = tot + p
            print(f"  {size}x{size} analytical: cycles {tot.cycles:,}  utilization {tot.utilization:.4f}"
                  f"  (useful MACs / PE-cycles {tot.mac_utilization:.4f})  instructions {tot.instructions:,}"
                  f"  load/compute/store cycles {tot.load_cycles / tot.cycles:.1%}/{tot.compute_cycles / tot.cycles:.1%}"
                  f"/{tot.store_cycles / tot.cycles:.1%}  host read {tot.host_read_bytes / 1e6:.1f} MB"
                  f" (+{tot.host_fetch_bytes / 1e6:.1f} MB instructions) write {tot.host_write_bytes / 1e6:.1f} MB")
            print(f"    analytical time {t_perf * 1e3:.1f} ms for all layers, each costed from scratch "
                  f"({t_warm * 1e3:.1f} ms when repeated layers are costed once; best of {args.repeat}; "
                  f"planning {t_plan * 1e3:.1f} ms more)")
            if size != args.cycle_size:
                continue
            t_cyc = 0.0
            n_run = instr_run = instr_all = 0
            cyc_sum = busy_sum = perf_sum = perf_busy = 0
            for i, ((name, shape), plan, p) in enumerate(zip(layers, plans, perfs)):
                instr_all += p.instructions
                if i % args.every:
                    continue
                res, n_instr, dt = cycle_run(cfg, shape, rng)
                ok = res.cycles == p.cycles and res.busy_pe == p.busy_pe and n_instr == p.instructions
                if not ok:
                    raise SystemExit(f"MISMATCH on {name} {shape}: cycle model {res.cycles} cycles, {res.busy_pe} "
                                     f"busy, {n_instr} instructions; analytical {p.cycles}, {p.busy_pe}, "
                                     f"{p.instructions}")
                t_cyc += dt
                n_run += 1
                instr_run += n_instr
                cyc_sum += res.cycles
                busy_sum += res.busy_pe
                perf_sum += p.cycles
                perf_busy += p.busy_pe
                if args.verbose:
                    print(f"    {name:8s} {shape.gemm} x{shape.groups} {plan.dataflow} cycles {res.cycles:,} "
                          f"util {p.utilization:.3f} instr {n_instr:,} cycle model {dt:.2f} s")
            extrap = t_cyc * instr_all / instr_run
            print(f"    cycle model on {n_run}/{len(layers)} layers: cycles {cyc_sum:,} (analytical {perf_sum:,}: "
                  f"{'equal' if cyc_sum == perf_sum else 'DIFFERENT'}), busy PE {'equal' if busy_sum == perf_busy else 'DIFFERENT'}"
                  f", {instr_run:,} instructions in {t_cyc:.2f} s ({t_cyc / instr_run * 1e6:.1f} us each)")
            if n_run == len(layers):
                print(f"    speed ratio (cycle model / analytical, whole network): {t_cyc / t_perf:.0f}x with every "
                      f"layer costed from scratch, {t_cyc / t_warm:.0f}x with repeated layers costed once")
            else:
                print(f"    whole network extrapolated by instruction count: cycle model {extrap:.1f} s; speed ratio "
                      f"{extrap / t_perf:.0f}x from scratch, {extrap / t_warm:.0f}x with repeated layers costed once "
                      f"(EXTRAPOLATED from {n_run} of {len(layers)} layers)")


if __name__ == "__main__":
    main()
