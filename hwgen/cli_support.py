"""What every ``hwgen`` subcommand shares: configuration flags, checked option types, input files, outputs,
and the one place where failures become messages and exit statuses.

Part of the application shell (with :mod:`hwgen.cli` and :mod:`fault_injection.cli`): the foundation never
imports it. Exit statuses: 0 success, 1 a verification mismatch (the command's own verdict), 2 bad input or
an unmet precondition (one line naming the file, field or node and the limit), 70 a defect in hwgen itself,
130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

from .config import AcceleratorConfig
from .errors import HwgenError
from .limits import check_limit, env_name

__all__ = ["UserError", "CONFIG_FLAGS", "add_config_args", "config_from_args", "add_force_arg", "int_at_least",
           "fraction", "yes_no", "positive_float", "run_guarded", "EXIT_USER", "EXIT_DEFECT",
           "EXIT_INTERRUPTED", "ISSUES_HINT"]

EXIT_USER = 2
EXIT_DEFECT = 70
EXIT_INTERRUPTED = 130

#: Where the message of a defect sends the user.
ISSUES_HINT = ("this is a defect in hwgen, not in your input: please report it on the project's issue tracker "
               "with the command line and the traceback that HWGEN_TRACEBACK=1 prints")

def yes_no(text: str) -> bool:
    """A boolean option's value: true/false, yes/no, on/off or 1/0 (argparse names the option on a bad one)."""
    v = text.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


CONFIG_FLAGS = (
    # flag, field, type, help
    ("--name", "name", str, "design name (default output folder rtl_out/<name>)"),
    ("--rows", "rows", int, "array rows"),
    ("--cols", "cols", int, "array columns"),
    ("--dataflow", "dataflow", str, "os, ws or both"),
    ("--input-width", "input_width", int, "input operand bits"),
    ("--weight-width", "weight_width", int, "weight operand bits"),
    ("--acc-width", "acc_width", int, "accumulator bits"),
    ("--output-width", "output_width", int, "requantized output bits"),
    ("--max-reduction", "max_reduction", int, "longest reduction the accumulators must hold"),
    ("--a-spad-depth", "a_spad_depth", int, "input scratchpad words"),
    ("--w-spad-depth", "w_spad_depth", int, "weight scratchpad words"),
    ("--acc-depth", "acc_depth", int, "accumulator buffer rows"),
    ("--host-port-width", "host_port_width", int, "host memory port bits"),
    ("--controller", "controller", str, "decoupled (the default: load, compute and store units in parallel) or in-order"),
    ("--queue-depth", "queue_depth", int, "instructions each unit's queue holds (decoupled controller)"),
    ("--packed-weights", "packed_weights", yes_no, "true: the load unit also unpacks 4-bit weights stored two "
                                                    "per byte (load target w4)"),
    ("--safety", "safety", str, "safety mechanisms per structure, e.g. a_spad=parity,w_spad=parity,acc_buf=secded "
                                "(memories: parity or secded)"),
)


class UserError(HwgenError):
    """Bad input found by the command line itself: printed as one line, exit status 2."""


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--config FILE.json`` and every flag of :data:`CONFIG_FLAGS` (read back by :func:`config_from_args`):
    the same array options for every command that builds or runs a configuration (generate, verify, map, run,
    fi sites, fi run)."""
    p.add_argument("--config", metavar="FILE.json", help="configuration file (flags override its fields)")
    for flag, fld, typ, hlp in CONFIG_FLAGS:
        p.add_argument(flag, dest=fld, type=typ, default=None, help=hlp)


def config_from_args(args: argparse.Namespace) -> AcceleratorConfig:
    """The configuration file (if any) with the flags' fields over it; ConfigError names the file and field."""
    base = AcceleratorConfig.load(args.config).to_dict() if args.config else AcceleratorConfig().to_dict()
    for _, fld, _, _ in CONFIG_FLAGS:
        v = getattr(args, fld, None)
        if v is not None:
            base[fld] = v
    return AcceleratorConfig.from_dict(base, source=args.config or "command line")


def add_force_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="replace existing output files, and output folders that hold an earlier hwgen output "
                        "(never links, devices or folders with other files)")


# ------------------------------------------------------------ option types (argparse prints their errors, exit 2)
def int_at_least(lo: int, limit: str | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= ``lo`` (and, with ``limit``, within that hwgen.limits field)."""

    def parse(text: str) -> int:
        try:
            v = int(text.replace("_", ""), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {v}")
        if limit is not None:
            try:
                check_limit(limit, v, "value")
            except HwgenError as e:
                raise argparse.ArgumentTypeError(str(e)) from None
        return v

    return parse


def _float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return v


def fraction(example: str) -> Callable[[str], float]:
    """An argparse type: a number strictly between 0 and 1 (``example`` shows one in the message)."""

    def parse(text: str) -> float:
        v = _float(text)
        if not 0 < v < 1:
            hint = f" (a fraction: {example}; {v:g} % would be {v / 100:g})" if 1 <= v < 100 else f" (e.g. {example})"
            raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1{hint}, got {v:g}")
        return v

    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    v = _float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {v:g}")
    return v


# ------------------------------------------------------------ failures -> messages
def _say(label: str, msg: str) -> None:
    print(f"hwgen {label}: error: {msg}", file=sys.stderr)


def run_guarded(label: str, func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command handler; every expected failure becomes one line on stderr and exit status 2.

    A failure hwgen does not expect (a defect) says so and where to report it, exit 70; its traceback is
    printed only with ``HWGEN_TRACEBACK=1``.
    """
    try:
        return int(func(args) or 0)
    except HwgenError as e:
        _say(label, str(e))
        return EXIT_USER
    except KeyboardInterrupt:
        print(f"hwgen {label}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        _say(label, "ran out of memory; the input is larger than this machine can hold (the size limits, "
                    f"e.g. {env_name('tensor_elements')}, refuse such inputs earlier when set lower)")
        return EXIT_USER
    except BrokenPipeError:  # `hwgen ... | head`: the reader left; not an error of ours
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_USER
    except OSError as e:
        where = e.filename or "a file"
        _say(label, f"{where}: {e.strerror or e}")
        return EXIT_USER
    except RecursionError:
        _say(label, "an input is nested too deeply to process")
        return EXIT_USER
    except Exception as e:  # noqa: BLE001 - the last line of defence: no traceback reaches a user
        tb = traceback.extract_tb(e.__traceback__)
        where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        _say(label, f"internal error {type(e).__name__}{where}: {str(e)[:200]}")
        print(f"hwgen {label}: {ISSUES_HINT}", file=sys.stderr)
        if os.environ.get("HWGEN_TRACEBACK"):
            traceback.print_exc()
        return EXIT_DEFECT
