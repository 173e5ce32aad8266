"""A design-space script on hwgen's Python API (mappings.dse): sweep array shapes and dataflows for a network,
keep the results in a resumable SQLite file, print the Pareto front over latency, area and energy.

Every metric of mappings.dse.METRICS is printed for the front, area included: LUTs, FFs, DSPs (MULT18X18D)
and BRAMs (DP16KD) of the whole ECP5 design, from the calibrated cost model (hwgen.cost_model), not from
synthesis, so the sweep stays at seconds.

    python examples/dse_mlp.py                       # zoo:mlp, 24 points, in-order controller: a few seconds
    python examples/dse_mlp.py --network zoo:resnet18 --db resnet18.sqlite   # minutes per point (decoupled)

Run it again with the same arguments and it evaluates nothing: every point is in the database already.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hwgen.config import AcceleratorConfig
from mappings.dse import FRONT, METRICS, Sweep, pareto_front, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default="zoo:mlp")
    ap.add_argument("--controller", default="in-order", help="in-order (fast to cost) or decoupled")
    ap.add_argument("--db", help="results database (default: a temporary file)")
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()

    base = AcceleratorConfig(controller=args.controller, a_spad_depth=1024, w_spad_depth=1024, acc_depth=512)
    sweep = Sweep.from_options(args.network, base, rows="4,8,16", cols="4:16:4", dataflow="ws,both")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(args.db) if args.db else Path(tmp) / "sweep.sqlite"
        run = run_sweep(sweep, db, jobs=args.jobs, progress=True)
    counts = run.counts()
    print(f"{sweep.network}: {sweep.n_points} points ({counts['ok']} ok, {counts['invalid']} invalid, "
          f"{counts['unfit']} unfit), {run.evaluated_now} evaluated in {run.elapsed:.1f} s")
    front = pareto_front(run.points, FRONT)
    print(f"Pareto front over {', '.join(o.name for o in FRONT)} ({len(front)} points):")
    names = [n for n, _ in sweep.axes]
    cols = [*names, *(m.name for m in METRICS)]
    rows = [[str(p.params[n]) for n in names]
            + [f"{p.metrics[m.name]:,}" if m.kind is int else f"{p.metrics[m.name]:.4g}" for m in METRICS]
            for p in front]
    # each column as wide as its name or widest value: fixed widths for 14 columns would overflow a terminal
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]
    print("  ".join(f"{c:>{w}}" for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(f"{v:>{w}}" for v, w in zip(r, widths)))
    units = {m.name: m.unit for m in METRICS}
    print("units: " + ", ".join(f"{n} {units[n]}" for n in cols if n in units))


if __name__ == "__main__":
    main()
