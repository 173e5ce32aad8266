"""Plan search (mappings.mapper.best_plan) vs the estimate-based planner (plan_tiles), and the memory-split ILP.

Part 1: every layer of ResNet-50 (the SCALE-Sim topology, 54 layers, 'same'
padding, as benchmarks/perf_vs_cycle.py reads it) on a 16x16 'both' array
(depths 512/512/256 by default), planned by ``plan_tiles`` and by ``best_plan``
(per-layer dataflow choice), both costed by the exact analytical model: total
cycles before/after, the search time, plans evaluated, and the layers whose
dataflow changed.

Part 2 (``--ilp``): :func:`mappings.ilp.memory_split` for the same network and
array with candidate depths ``--a``, ``--w``, ``--acc`` and each budget of
``--budgets`` (KiB): the chosen depths, total cycles, candidate and solve times,
checked against :func:`brute_force_memory_split` (``--check``).

Usage: python benchmarks/mapper_search.py [--size 16] [--depths 512,512,256] [--ilp] [--budgets 16,24,32,48]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hwgen.config import AcceleratorConfig  # noqa: E402
from hwgen.dataflow import Dataflow  # noqa: E402
from mappings.ilp import brute_force_memory_split, memory_split, sram_bytes  # noqa: E402
from mappings.mapper import best_plan  # noqa: E402
from perf_vs_cycle import DATA, read_topology  # noqa: E402


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", default="resnet50")
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--depths", default="512,512,256", help="a,w,acc depths for part 1")
    ap.add_argument("--ilp", action="store_true", help="also run part 2")
    ap.add_argument("--a", default="128,256,512,1024")
    ap.add_argument("--w", default="128,256,512,1024")
    ap.add_argument("--acc", default="64,128,256,512")
    ap.add_argument("--budgets", default="12,16,24,32,48", help="SRAM budgets in KiB")
    ap.add_argument("--check", action="store_true", help="compare the ILP with the enumeration")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-layer table")
    args = ap.parse_args(argv)

    layers = read_topology(DATA / f"{args.net}.csv")
    a, w, acc = _ints(args.depths)
    cfg = AcceleratorConfig(name=f"b{args.size}", rows=args.size, cols=args.size, dataflow=Dataflow.BOTH, a_spad_depth=a,
                            w_spad_depth=w, acc_depth=acc, max_reduction=8192)
    t0 = time.perf_counter()
    results = [best_plan(cfg, shape) for _, shape in layers]
    dt = time.perf_counter() - t0
    before = sum(info["baseline_cycles"] for _, _, info in results)
    after = sum(perf.cycles for _, perf, _ in results)
    methods = Counter(info["method"] for _, _, info in results)
    changed = sum(info["baseline_plan"].dataflow != plan.dataflow for plan, _, info in results)
    exact = sum(info["evaluated"] for _, _, info in results)
    proxy = sum(info["proxy_evaluated"] for _, _, info in results)
    if args.verbose:
        for (name, shape), (plan, perf, info) in zip(layers, results):
            print(f"{name:10s} {str(shape.gemm):20s} {info['method']:10s} {info['baseline_cycles']:>10d} "
                  f"{perf.cycles:>10d} {1 - perf.cycles / info['baseline_cycles']:6.1%}  {plan}")
    print(f"{args.net}: {len(layers)} layers on {cfg.rows}x{cfg.cols} 'both', depths {a}/{w}/{acc}")
    print(f"  plan_tiles: {before:,} cycles; best_plan: {after:,} cycles ({1 - after / before:.1%} fewer)")
    print(f"  search: {dt:.1f} s ({dict(methods)}; {exact} plans costed exactly, {proxy} by the GEMM proxy, "
          f"repeated shapes memoised); dataflow changed on {changed} layers")

    if args.ilp:
        shapes = [s for _, s in layers]
        A, W, C = _ints(args.a), _ints(args.w), _ints(args.acc)
        for kib in _ints(args.budgets):
            budget = kib * 1024
            t0 = time.perf_counter()
            r = memory_split(shapes, cfg, A, W, C, budget)
            wall = time.perf_counter() - t0
            line = (f"  ILP budget {kib} KiB: a/w/acc = {r.cfg.a_spad_depth}/{r.cfg.w_spad_depth}/{r.cfg.acc_depth} "
                    f"({r.sram_bytes / 1024:g} KiB), {r.total_cycles:,} cycles, {r.status}; candidates "
                    f"{r.candidates} in {r.candidate_seconds:.1f} s, solve {r.solve_seconds:.2f} s (wall {wall:.1f} s)")
            if args.check:
                b = brute_force_memory_split(shapes, cfg, A, W, C, budget)
                line += f"; enumeration {b.total_cycles:,} in {b.solve_seconds:.2f} s"
                assert b.total_cycles == r.total_cycles
            print(line)
        print(f"  (the fixed split {a}/{w}/{acc} is {sram_bytes(cfg, a, w, acc) / 1024:g} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
