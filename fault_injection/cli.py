"""``hwgen fi``: fault-injection campaigns from the command line.

    hwgen fi sites  --config FILE.json
    hwgen fi run    --config FILE.json --workload W (--injections N | --margin E --confidence C) --seed S
                    --db FILE.sqlite --backend rtl|model --jobs J [--scheduler ADDRESS] [--models seu,mbu,...]
    hwgen fi resume --db FILE.sqlite [--jobs J] [--scheduler ADDRESS]
    hwgen fi report --db FILE.sqlite [--json [FILE]] [--md FILE] [--png FILE] [--fit-per-bit X] [--watchdog]

:func:`add_fi_parser` adds the ``fi`` command to ``hwgen``'s subparsers. Bad input
raises a :class:`hwgen.errors.HwgenError` (one line, exit status 2, by
:func:`hwgen.cli_support.run_guarded`); ``main`` runs the commands standalone
(``python -m fault_injection.cli fi ...``).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_fi_parser", "main"]


def _models(text: str) -> tuple[str, ...]:
    from hwgen.cli_support import UserError

    from .faults import FAULT_MODELS

    models = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    bad = [m for m in models if m not in FAULT_MODELS]
    if bad or not models:
        raise UserError(f"--models {text[:80]!r}: unknown fault model(s) {', '.join(bad)[:200] or '(none)'}; "
                        f"known: {', '.join(FAULT_MODELS)}")
    return tuple(dict.fromkeys(models))


def cmd_sites(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hwgen.cli_support import config_from_args

    from .sites import inventory_table

    cfg = config_from_args(args)
    Console(width=160).print(inventory_table(cfg))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hwgen.cli_support import UserError, config_from_args

    from .campaign import DEFAULT_CONFIDENCE, run_campaign

    cfg = config_from_args(args)
    if (args.injections is None) == (args.margin is None):
        raise UserError("give --injections N, or --margin E (with --confidence C)")
    margin, conf = args.margin, args.confidence
    if margin is not None and conf is None:
        conf = DEFAULT_CONFIDENCE
    try:
        s = run_campaign(args.db, cfg, args.workload, args.injections, margin=margin, confidence=conf,
                         seed=args.seed, backend=args.backend, jobs=args.jobs, scheduler=args.scheduler,
                         progress=not args.no_progress, models=_models(args.models), batch_size=args.batch,
                         structures=[x for x in (args.structures or "").split(",") if x] or None)
    except KeyboardInterrupt:
        return _interrupted(args.db)
    _summary(s)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from .campaign import resume_campaign

    try:
        s = resume_campaign(args.db, jobs=args.jobs, scheduler=args.scheduler, progress=not args.no_progress,
                            batch_size=args.batch)
    except KeyboardInterrupt:
        return _interrupted(args.db)
    _summary(s)
    return 0


def _interrupted(db: str) -> int:
    from .store import CampaignStore

    with CampaignStore.open(db, readonly=True) as st:
        done, planned = st.n_results(), st.info.planned
    print(f"interrupted: {done:,} of {planned:,} results are recorded in {db}; "
          f"'hwgen fi resume --db {db}' continues", file=sys.stderr)
    return 130


def _summary(s) -> None:
    from .faults import OUTCOMES

    tot = {o: sum(c.get(o, 0) for c in s.counts.values()) for o in OUTCOMES}
    shown = ", ".join(f"{o} {n:,}" for o, n in tot.items() if n or o in ("masked", "sdc", "due"))
    print(f"{s.path}: {s.done:,} of {s.planned:,} injections recorded ({s.injected_now:,} now, "
          f"{s.rate:,.0f}/s); {shown}")
    print(f"report: hwgen fi report --db {s.path}")


def cmd_report(args: argparse.Namespace) -> int:
    from .report import campaign_report, to_markdown, write_outputs

    from hwgen.cli_support import UserError

    from .stats import FitRates

    kw: dict = {} if args.fit_per_bit is None else {"fit_per_bit": args.fit_per_bit}
    if args.fit_ff is not None or args.fit_mem is not None:
        if args.fit_per_bit is not None:
            raise UserError("--fit-per-bit sets every bit's FIT: give it alone, or --fit-ff and --fit-mem")
        base = FitRates()
        kw["fit_per_bit"] = FitRates(ff=args.fit_ff if args.fit_ff is not None else base.ff,
                                     mem=args.fit_mem if args.fit_mem is not None else base.mem)
    if args.lifetime_hours is not None:
        kw["lifetime_hours"] = args.lifetime_hours
    if args.method is not None:
        kw["method"] = args.method
    rep = campaign_report(args.db, watchdog=args.watchdog, **kw)
    write_outputs(rep, md=args.md, json_path=args.json, png=args.png, force=args.force)
    if "-" not in (args.md, args.json):
        sys.stdout.write(to_markdown(rep))
    return 0


def add_fi_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``fi`` (with sites, run, resume, report) to ``hwgen``'s subparsers."""
    from hwgen.cli_support import add_config_args, add_force_arg, fraction, int_at_least, positive_float

    from .campaign import DEFAULT_CONFIDENCE
    from .faults import FAULT_MODELS
    from .report import DEFAULT_FIT_PER_BIT
    from .workload import WORKLOAD_FORMS

    fi = subparsers.add_parser("fi", help="statistical soft-error fault injection (sites, run, resume, report)")
    sub = fi.add_subparsers(dest="fi_command", required=True)

    s = sub.add_parser("sites", help="print the fault-site inventory (state bits per structure)")
    add_config_args(s)
    s.set_defaults(func=cmd_sites)

    r = sub.add_parser("run", help="plan a campaign, store it, inject (resumes the same campaign if the db exists)")
    add_config_args(r)
    r.add_argument("--workload", required=True, metavar="W", help=WORKLOAD_FORMS)
    r.add_argument("--injections", type=int_at_least(1, limit="injections"), metavar="N",
                   help="number of injections")
    r.add_argument("--margin", type=fraction("0.01"), metavar="E",
                   help="error margin (0.01 = +-1%%): the Leveugle sample size at --confidence")
    r.add_argument("--confidence", type=fraction("0.99"), metavar="C",
                   help=f"confidence of the margin and of the report's intervals (default {DEFAULT_CONFIDENCE:g})")
    r.add_argument("--seed", type=int_at_least(0), default=1, help="seed of the workload operands and the fault plan (default 1)")
    r.add_argument("--db", required=True, metavar="FILE.sqlite", help="campaign database (created)")
    r.add_argument("--backend", default="model", metavar="rtl|model",
                   help="injector: rtl (Verilator) or model (cycle model); default model")
    r.add_argument("--jobs", type=int_at_least(1), default=1, metavar="J", help="local worker processes (default 1)")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786) instead of local")
    r.add_argument("--models", default="seu", help=f"fault models, comma-separated ({', '.join(FAULT_MODELS)}); "
                                                   f"default seu")
    r.add_argument("--structures", metavar="S1,S2", help="restrict the campaign to these structures "
                                                        "(names as `hwgen fi sites` lists them)")
    r.add_argument("--batch", type=int_at_least(1), metavar="B", help="faults per injector call and per commit (default: auto)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    re_ = sub.add_parser("resume", help="inject the planned faults of a campaign that have no result yet")
    re_.add_argument("--db", required=True, metavar="FILE.sqlite")
    re_.add_argument("--jobs", type=int_at_least(1), default=1, metavar="J", help="local worker processes (default 1)")
    re_.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address instead of local")
    re_.add_argument("--batch", type=int_at_least(1), metavar="B", help="faults per injector call and per commit (default: auto)")
    re_.add_argument("--no-progress", action="store_true", help="no progress bar")
    re_.set_defaults(func=cmd_resume)

    rp = sub.add_parser("report", help="AVF, FIT and SPFM per structure (Markdown on stdout)")
    rp.add_argument("--db", required=True, metavar="FILE.sqlite")
    rp.add_argument("--json", nargs="?", const="-", metavar="FILE", help="JSON to FILE (or, alone, on stdout)")
    rp.add_argument("--md", metavar="FILE", help="write the Markdown report ('-': stdout)")
    rp.add_argument("--png", metavar="FILE", help="write the AVF chart")
    rp.add_argument("--fit-per-bit", type=positive_float, metavar="X",
                    help=f"raw FIT per bit (default {DEFAULT_FIT_PER_BIT:g})")
    rp.add_argument("--fit-ff", type=positive_float, metavar="X", help="raw FIT per flip-flop bit")
    rp.add_argument("--fit-mem", type=positive_float, metavar="X", help="raw FIT per SRAM bit")
    rp.add_argument("--lifetime-hours", type=positive_float, metavar="H",
                    help="operating lifetime of the PMHF's latent-fault term")
    rp.add_argument("--method", choices=["pooled", "bonferroni"],
                    help="how per-structure counts combine into the bounds (default: pooled when one FIT per bit "
                         "covers every bit, else bonferroni)")
    rp.add_argument("--watchdog", action="store_true",
                    help="a watchdog is a declared safety mechanism: DUE (hang) counts as detected, not dangerous")
    add_force_arg(rp)
    rp.set_defaults(func=cmd_report)
    return fi


def main(argv: list[str] | None = None) -> int:
    """``hwgen fi ...`` standalone (the same parser and error handling as hwgen.cli.main)."""
    from hwgen.cli_support import run_guarded

    p = argparse.ArgumentParser(prog="hwgen")
    sub = p.add_subparsers(dest="command", required=True)
    add_fi_parser(sub)
    args = p.parse_args(argv)
    return run_guarded(f"{args.command} {args.fi_command}", args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
