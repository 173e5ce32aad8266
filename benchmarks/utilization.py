"""PE utilization of whole networks against issue 8's goals, with the roofline, and simulator speeds.

For each network (ResNet-50, ResNet-18, MobileNetV2 from the zoo), controller (in-order, and decoupled
with the mapper's software-pipelined programs) and array (16x16 with depths
8192/8192/1024, 32x32 with 4096/4096/512; int8, 128-bit host port, 'both' dataflow: Gemmini-equal
resources at 16x16) it runs what ``hwgen map`` runs (the mapper's search and the exact analytical
model, every layer requantized through the quantization table as ``hwgen run`` executes it) and
prints: cycles, PE utilization (the hardware busy-PE counter over PE-cycles), MAC utilization
(useful MACs over PE-cycles), the network's roofline bound max(MACs / PEs, host bytes / port bytes)
and how close the cycles come to it, the goal and the mapper's wall time.

``--speed`` also lowers one representative layer per array and controller (a 3x3 convolution,
14x14x256 -> 256) and runs it on the cycle model and on native Verilator (built once per
configuration, cached): simulated cycles per wall second of the run phase, and checks that both agree
on cycles and memory.

Usage: python benchmarks/utilization.py [--networks resnet50,resnet18,mobilenet_v2] [--arrays 16,32]
[--controllers in-order,decoupled] [--speed]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from hwgen.config import AcceleratorConfig
from mappings.lowering import lower_conv2d
from mappings.mapper import executed_plan
from mappings.network_map import load_model, map_graph
from sim.cycle import CycleModel
from sim.perf import ConvShape
from sim.reference import Quant

#: array size -> (A, W, accumulator depths) of issue 8's measurements
ARRAYS = {16: (8192, 8192, 1024), 32: (4096, 4096, 512)}
#: issue 8's utilization goals
GOALS = {("resnet50", 16): 0.80, ("resnet50", 32): 0.60, ("mobilenet_v2", 16): 0.50, ("mobilenet_v2", 32): 0.35}
#: the layer the speed measurement runs: 14x14x256 input, 3x3 kernel, 256 outputs, padding 1
SPEED_LAYER = ConvShape(14, 14, 256, 3, 3, 256, (1, 1), (1, 1, 1, 1), (1, 1), 1)


def config(size: int, controller: str = "in-order") -> AcceleratorConfig:
    a, w, acc = ARRAYS[size]
    return AcceleratorConfig(name=f"util{size}", rows=size, cols=size, host_port_width=128,
                             a_spad_depth=a, w_spad_depth=w, acc_depth=acc, controller=controller)


def speed(cfg: AcceleratorConfig, seed: int = 0) -> tuple[int, float, float]:
    """(cycles, model cycles/s, native Verilator cycles/s) of SPEED_LAYER on ``cfg``."""
    from hwgen.native import NativeExecutor, build_native

    s = SPEED_LAYER
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (s.H, s.W, s.Cin), dtype=np.int8)
    w = rng.integers(-128, 128, (s.KH, s.KW, s.Cin, s.Cout), dtype=np.int8)
    plan, _ = executed_plan(cfg, s)
    prog = lower_conv2d(cfg, x, w, s.stride, s.pads, Quant(1, 10, 0, -128, 127), plan=plan)
    image = prog.image()
    t0 = time.perf_counter()
    model = CycleModel(cfg).run(image)
    model_s = time.perf_counter() - t0
    build_native(cfg)
    native = NativeExecutor(cfg).run(image)
    if native.cycles != model.cycles or not np.array_equal(native.memory[:image.size], model.memory[:image.size]):
        raise SystemExit(f"{cfg.name}: native Verilator and the cycle model disagree "
                         f"({native.cycles} vs {model.cycles} cycles)")
    return model.cycles, model.cycles / model_s, native.cycles_per_second


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", default="resnet50,resnet18,mobilenet_v2")
    ap.add_argument("--arrays", default="16,32")
    ap.add_argument("--controllers", default="in-order,decoupled",
                    help="controllers to map with (the decoupled one with software-pipelined programs)")
    ap.add_argument("--speed", action="store_true", help="also measure model and native Verilator speed")
    args = ap.parse_args(argv)
    sizes = [int(v) for v in args.arrays.split(",")]
    console = Console(width=200)
    table = Table(title="Network PE utilization (hwgen map, exact analytical model)")
    for col in ("network", "array", "controller", "cycles", "PE util", "MAC util", "roofline bound", "of bound", "goal",
                "map s"):
        table.add_column(col, justify="left" if col in ("network", "array", "controller") else "right")
    for net in [n for n in args.networks.split(",") if n]:   # --networks "" with --speed: speeds only
        for size, controller in ((z, c) for z in sizes for c in args.controllers.split(",")):
            cfg = config(size, controller)
            t0 = time.perf_counter()
            nmap = map_graph(load_model(f"zoo:{net}"), cfg)
            secs = time.perf_counter() - t0
            roof = nmap.roofline
            goal = GOALS.get((net, size))
            table.add_row(net, f"{size}x{size}", controller, f"{nmap.cycles:,}", f"{nmap.busy_utilization:.1%}",
                          f"{nmap.macs / (nmap.cycles * cfg.pes):.1%}", f"{roof.cycles:,} {roof.bound}",
                          f"{roof.ratio(nmap.cycles):.1%}",
                          "-" if goal is None else f">= {goal:.0%} ({'met' if nmap.busy_utilization >= goal else 'not met'})",
                          f"{secs:.1f}")
    if table.row_count:
        console.print(table)
    if args.speed:
        sp = Table(title=f"Simulator speed on one layer ({SPEED_LAYER.H}x{SPEED_LAYER.W}x{SPEED_LAYER.Cin}, "
                         f"{SPEED_LAYER.KH}x{SPEED_LAYER.KW} -> {SPEED_LAYER.Cout})")
        for col in ("array", "controller", "cycles", "model cycles/s", "native Verilator cycles/s", "model / Verilator"):
            sp.add_column(col, justify="right")
        for size, controller in ((z, c) for z in sizes for c in args.controllers.split(",")):
            cycles, m, v = speed(config(size, controller))
            sp.add_row(f"{size}x{size}", controller, f"{cycles:,}", f"{m:,.0f}", f"{v:,.0f}", f"{m / v:.1f}")
        console.print(sp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
