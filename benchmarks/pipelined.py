"""Software-pipelined programs on the decoupled controller vs the in-order controller, per network.

For each model: ``map_graph`` on the in-order config and on the decoupled config (queue depths from
``--queues``), total cycles, PE utilization, the mapper's wall time, and per-layer figures for the
layers named by ``--layers`` (in-order plan and cycles; decoupled plan, cycles, and each unit's busy
cycles). Usage::

    python benchmarks/pipelined.py zoo:resnet50 --queues 4 8 16 --layers stem.conv layer1.0.conv2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwgen.config import AcceleratorConfig  # noqa: E402
from mappings.network_map import load_model, map_graph  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--cols", type=int, default=16)
    ap.add_argument("--queues", type=int, nargs="+", default=[4])
    ap.add_argument("--layers", nargs="*", default=[])
    a = ap.parse_args(argv)
    base = AcceleratorConfig(rows=a.rows, cols=a.cols, host_port_width=128, a_spad_depth=8192, w_spad_depth=8192,
                             acc_depth=1024)
    for spec in a.models:
        g = load_model(spec)
        t = time.perf_counter()
        imap = map_graph(g, base)
        ti = time.perf_counter() - t
        print(f"{spec} {a.rows}x{a.cols} in-order: {imap.cycles:,} cycles, {100 * imap.busy_utilization:.1f}% PE "
              f"utilization, mapper {ti:.1f} s")
        rows_i = {r.layer: r for r in imap.rows}
        for q in a.queues:
            cfg = dataclasses.replace(base, controller="decoupled", queue_depth=q)
            t = time.perf_counter()
            dmap = map_graph(g, cfg)
            td = time.perf_counter() - t
            print(f"{spec} {a.rows}x{a.cols} decoupled q={q}: {dmap.cycles:,} cycles, "
                  f"{100 * dmap.busy_utilization:.1f}% PE utilization ({imap.cycles / dmap.cycles:.2f}x), "
                  f"mapper {td:.1f} s")
            for r in dmap.rows:
                if r.layer in a.layers:
                    ri = rows_i[r.layer]
                    print(f"  {r.layer} {r.gemm}: in-order {ri.cycles:,} ({100 * ri.utilization:.1f}%, {ri.dataflow} "
                          f"{ri.tiles}) -> decoupled {r.cycles:,} ({100 * r.utilization:.1f}%, {r.dataflow} {r.tiles})")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
