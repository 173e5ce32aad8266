"""``hwgen dse NETWORK``: the command line of :mod:`mappings.dse` (part of the application shell, with
:mod:`hwgen.cli` and :mod:`fault_injection.cli`; nothing below the shell imports it).

    hwgen dse NETWORK --rows 8,16 --cols 8:32:8 --dataflow ws,both [--a-spad-depth ...] [--w-spad-depth ...]
              [--acc-depth ...] [--host-port-width ...] --db sweep.sqlite [--csv all.csv] [--json all.json]
              [--pareto front.csv] [--png front.png] [--jobs N | --scheduler tcp://host:port]

The other configuration flags (``--config``, ``--controller``, widths, ``--queue-depth``) set the base every
point shares. Bad axes are refused (exit 2) before the database or any output is touched; the outputs are
checked first and written together at the end (:class:`hwgen.outputs.Outputs`); the database keeps every
point evaluated, so the same command continues an interrupted sweep.
"""

from __future__ import annotations

import argparse
import os
import sys

from hwgen.cli_support import CONFIG_FLAGS, UserError, add_force_arg, config_from_args, int_at_least
from hwgen.outputs import Outputs

from .dse import AXES, FRONT, METRICS

__all__ = ["add_dse_parser", "cmd_dse"]


def add_dse_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``hwgen dse`` on the top-level subparsers (``add_subparsers()``'s result); the parser."""
    d = subparsers.add_parser("dse", help="design-space exploration: map a network onto every configuration of a sweep "
                                   "(resumable SQLite results, CSV/JSON, Pareto front, plots)")
    d.add_argument("network", help="zoo:NAME, MODEL.onnx or a SCALE-Sim topology .csv")
    for name, axis in AXES.items():
        d.add_argument(axis.option, dest=f"axis_{name}", metavar="LIST",
                       help=f"{axis.help}: comma-separated values" + ("" if name == "dataflow" else
                                                                     " or ranges lo:hi:step (hi included)"))
    d.add_argument("--config", metavar="FILE.json", help="base configuration file (the flags below override it)")
    for flag, fld, typ, hlp in CONFIG_FLAGS:
        if fld not in AXES:
            d.add_argument(flag, dest=fld, type=typ, default=None, help=f"{hlp} (every point)")
    d.add_argument("--db", required=True, metavar="FILE.sqlite",
                   help="results database: created, or continued if it holds this sweep")
    d.add_argument("--csv", metavar="FILE", help="every point as CSV ('-': stdout)")
    d.add_argument("--json", metavar="FILE", help="the sweep and every point as JSON ('-': stdout)")
    objectives = ", ".join(o.name for o in FRONT)
    d.add_argument("--pareto", metavar="FILE", help=f"the Pareto front over {objectives} as CSV")
    d.add_argument("--png", metavar="FILE", help="plots: every point in the first two front objectives coloured by "
                                                "the third, the front ringed; utilization vs array size")
    d.add_argument("--jobs", type=int_at_least(1), default=1, metavar="N", help="local worker processes (default 1)")
    d.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786) instead of local")
    d.add_argument("--no-progress", action="store_true", help="no progress bar (there is none off a terminal)")
    add_force_arg(d)
    d.set_defaults(func=cmd_dse)
    return d


def cmd_dse(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .dse import Sweep, front_png, pareto_front, points_csv, points_json, run_sweep

    outs = Outputs(force=args.force, command="dse")
    keys = {f: outs.file(getattr(args, f)) for f in ("csv", "json", "pareto", "png") if getattr(args, f)}
    same = [f"--{f}" for f in keys if keys[f] != "-" and os.path.abspath(keys[f]) == os.path.abspath(args.db)]
    if same:
        raise UserError(f"{args.db}: named as --db and as {', '.join(same)}; the database is not an output file")
    if keys.get("png") == "-":
        raise UserError("--png cannot go to standard output; give a file name")
    log = sys.stderr if outs.uses_stdout else sys.stdout
    if args.jobs > 1 and args.scheduler:
        raise UserError("give --jobs (local processes) or --scheduler (a Dask cluster), not both")
    sweep = Sweep.from_options(args.network, config_from_args(args),
                               **{name: getattr(args, f"axis_{name}") for name in AXES})
    run = run_sweep(sweep, args.db, jobs=args.jobs, scheduler=args.scheduler, progress=not args.no_progress)
    front = pareto_front(run.points)
    if "csv" in keys:
        outs.put(keys["csv"], points_csv(sweep, run.points).encode())
    if "json" in keys:
        outs.put(keys["json"], points_json(sweep, run.points, front).encode())
    if "pareto" in keys:
        outs.put(keys["pareto"], points_csv(sweep, front).encode())
    if "png" in keys:
        outs.put(keys["png"], front_png(sweep, run.points, front))
    outs.commit()
    table = Table(title=f"Pareto front of {sweep.network} ({len(front)} of {len(run.points)} points)")
    swept = [n for n, _ in sweep.axes]
    for col in ("point", *swept, *(m.name for m in METRICS)):
        table.add_column(col, justify="left" if col == "dataflow" else "right")
    for p in front:
        table.add_row(str(p.index), *(str(p.params[n]) for n in swept),
                      *(f"{p.metrics[m.name]:,}" if m.kind is int else f"{p.metrics[m.name]:.4g}" for m in METRICS))
    Console(width=160, file=log).print(table)
    c = run.counts()
    print(f"{args.db}: {len(run.points)} points ({c['ok']} ok, {c['invalid']} invalid, {c['unfit']} unfit), "
          f"{run.evaluated_now} evaluated now in {run.elapsed:.1f} s", file=log)
    return 0
