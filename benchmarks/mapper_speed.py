"""Mapper speed (issue 10, item 4): CPU time of ``hwgen map`` (plan search + exact cost) against its goals.

For each (network, array) it runs what ``hwgen map zoo:NAME`` runs on the default (decoupled)
controller, 128-bit host port, 16x16 with depths 8192/8192/1024 or 32x32 with 4096/4096/512
(``map_graph``: every layer's plan search and exact decoupled cost), from cold caches
(``mappings.mapper.clear_cache``), and prints its CPU time (``time.process_time``: the machine may be
shared), the ratio to the issue's goal where it sets one (ResNet-50 16x16: 1 s, ResNet-18 32x32:
0.4 s) and whether the total cycles equal the expected ones. The expectations are the exact model's
totals (equal to the cycle model and the RTL, ``benchmarks/decoupled_exact.py``) recorded before the
mapper was sped up: a faster mapper must choose the same plans and report the same cycles.

Exit status 1 if any total differs. Usage::

    python benchmarks/mapper_speed.py [--cases resnet50:16,resnet18:32,mobilenet_v2:16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwgen.config import AcceleratorConfig  # noqa: E402
from mappings.mapper import clear_cache  # noqa: E402
from mappings.network_map import load_model, map_graph  # noqa: E402

#: array size -> (A, W, accumulator depths), as benchmarks/utilization.py
ARRAYS = {16: (8192, 8192, 1024), 32: (4096, 4096, 512)}
#: (network, array) -> total exact cycles of the decoupled map (the exact model, before the speed-up)
EXPECTED = {("resnet50", 16): 16_476_954, ("resnet50", 32): 6_315_924,
            ("resnet18", 16): 7_293_937, ("resnet18", 32): 2_998_225,
            ("mobilenet_v2", 16): 2_823_927, ("mobilenet_v2", 32): 2_348_257}
#: (network, array) -> the issue's CPU-time goal in seconds
GOALS = {("resnet50", 16): 1.0, ("resnet18", 32): 0.4}
DEFAULT_CASES = "resnet50:16,resnet18:32,mobilenet_v2:16"


def config(size: int) -> AcceleratorConfig:
    a, w, acc = ARRAYS[size]
    return AcceleratorConfig(name=f"speed{size}", rows=size, cols=size, host_port_width=128, a_spad_depth=a,
                             w_spad_depth=w, acc_depth=acc)


def measure(net: str, size: int) -> tuple[float, int]:
    """(CPU seconds, total cycles) of mapping ``net`` on the ``size`` array from cold caches."""
    graph = load_model(f"zoo:{net}")
    graph.validate()
    cfg = config(size)
    clear_cache()
    t0 = time.process_time()
    nmap = map_graph(graph, cfg)
    return time.process_time() - t0, nmap.cycles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help="network:array pairs, comma separated")
    args = ap.parse_args(argv)
    ok = True
    print(f"{'network':14s} {'array':>5s} {'CPU s':>8s} {'goal s':>7s} {'/goal':>7s} {'cycles':>12s}  exact")
    for case in args.cases.split(","):
        net, size = case.split(":")
        key = (net, int(size))
        cpu, cycles = measure(*key)
        goal = GOALS.get(key)
        want = EXPECTED.get(key)
        same = want is None or cycles == want
        ok &= same
        print(f"{net:14s} {size + 'x' + size:>5s} {cpu:8.2f} {goal if goal else '-':>7} "
              f"{f'{cpu / goal:.1f}x' if goal else '-':>7s} {cycles:12,d}  "
              f"{'unchecked' if want is None else 'same' if same else f'DIFFERS (expected {want:,})'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
