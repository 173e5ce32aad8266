"""Simulation speed: cycle model vs native Verilator vs Verilator under cocotb, on the same programs.

For each array size (default 8x8 and 16x16, 'both' dataflow) a GEMM is
lowered with :mod:`mappings.lowering` once output-stationary and once
weight-stationary (a few hundred thousand cycles each), and run on

* the cycle model (:meth:`sim.cycle.CycleModel.run`),
* the native C++ Verilator harness (:func:`hwgen.native.run_programs_native`),
* Verilator under cocotb (:func:`hwgen.rtlsim.run_programs_rtl`).

Rates are simulated cycles per wall second of the run phase only (builds,
Verilog generation, process start and memory load/read-back excluded; build
times are reported separately, with the process times of both RTL batches).
The script also checks that the three agree on the final memory, the cycle
count and the busy-PE count, and that the output equals the numpy reference.

Usage: python benchmarks/sim_speed.py [--sizes 8,16] [--gemm 8=128x128x128,16=192x192x192]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import STATIONARY, Dataflow
from hwgen.native import build_native, run_programs_native
from hwgen.rtlsim import build_rtl, harness_mem_bytes, run_programs_rtl
from mappings.lowering import lower_gemm
from sim.cycle import CycleModel
from sim.reference import Quant, gemm_ref

DEFAULT_GEMM = {8: (128, 128, 128), 16: (192, 192, 192)}


def _model_rate(cfg: AcceleratorConfig, image: np.ndarray, min_seconds: float = 1.0):
    """(result, cycles per second): repeated runs until ``min_seconds`` have passed."""
    model = CycleModel(cfg)
    res = model.run(image)
    n, t0 = 0, time.perf_counter()
    while True:
        model.run(image)
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return res, res.cycles * n / dt


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="8,16", help="array sizes (square), comma separated")
    ap.add_argument("--gemm", default="", help="per size MxKxN, e.g. 8=128x128x128,16=192x192x192")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    gemm = dict(DEFAULT_GEMM)
    for item in filter(None, args.gemm.split(",")):
        k, v = item.split("=")
        gemm[int(k)] = tuple(int(x) for x in v.split("x"))

    con = Console(width=max(Console().width, 150))
    speed = Table(title="Simulated cycles per wall second (run phase only)")
    for col in ("array", "GEMM", "dataflow", "cycles", "model", "native", "cocotb",
                "model/native", "native/cocotb", "model/cocotb", "agree"):
        speed.add_column(col, justify="right")
    builds = Table(title="Builds and RTL batch processes (wall seconds)")
    for col in ("array", "native build", "cocotb build", "native process", "cocotb process"):
        builds.add_column(col, justify="right")

    all_ok = True
    for n in (int(s) for s in args.sizes.split(",")):
        cfg = AcceleratorConfig(name=f"speed{n}x{n}", rows=n, cols=n, dataflow=Dataflow.BOTH)
        M, K, N = gemm.get(n, DEFAULT_GEMM[8])
        rng = np.random.default_rng(args.seed)
        A = rng.integers(-128, 128, (M, K)).astype(np.int8)
        W = rng.integers(-128, 128, (K, N)).astype(np.int8)
        q = Quant(multiplier=3 << 12, shift=24, zero_point=-3, clamp_lo=-128, clamp_hi=127, relu=False)
        want = gemm_ref(A, W, q)
        progs = [lower_gemm(cfg, A, W, q, dataflow=df) for df in STATIONARY]

        con.print(f"[bold]{n}x{n}[/]: building (cached builds report the time they took when made) ...")
        t0 = time.perf_counter()
        nat = build_native(cfg)
        t_nat = time.perf_counter() - t0
        mb = harness_mem_bytes(cfg, [p.mem_size for p in progs])
        t0 = time.perf_counter()
        rtl = build_rtl(cfg, mb)
        t_rtl = time.perf_counter() - t0

        def btxt(b, call):
            return f"{b.build_seconds:.1f}" + (f" (cached, {call:.1f} now)" if b.cached else "")

        model_runs = [_model_rate(cfg, p.image()) for p in progs]
        con.print(f"  native run ({sum(r.cycles for r, _ in model_runs):,} cycles) ...")
        nres = run_programs_native(cfg, progs)
        con.print("  cocotb run ...")
        cres = run_programs_rtl(cfg, progs, mem_bytes=mb)
        builds.add_row(f"{n}x{n}", btxt(nat, t_nat), btxt(rtl, t_rtl), f"{nres[0].process_seconds:.2f}",
                       f"{cres[0].process_seconds:.2f}")

        for df, prog, (mres, mrate), nr, cr in zip(STATIONARY, progs, model_runs, nres, cres):
            out = next(iter(prog.outputs.values()))
            ok = (np.array_equal(mres.memory, nr.memory) and np.array_equal(mres.memory, cr.memory)
                  and mres.cycles == nr.cycles == cr.cycles == nr.clock_cycles == cr.clock_cycles
                  and mres.busy_pe == nr.busy_pe == cr.busy_pe
                  and not (nr.error or nr.timed_out or cr.error or cr.timed_out)
                  and np.array_equal(out.read(mres.memory), want))
            all_ok &= ok
            nrate, crate = nr.cycles_per_second, cr.cycles_per_second
            speed.add_row(f"{n}x{n}", f"{M}x{K}x{N}", df,
                          f"{mres.cycles:,}", f"{mrate:,.0f}", f"{nrate:,.0f}", f"{crate:,.0f}",
                          f"{mrate / nrate:.2f}", f"{nrate / crate:.1f}", f"{mrate / crate:.1f}",
                          "[green]yes[/]" if ok else "[red]NO[/]")
    con.print(speed)
    con.print(builds)
    con.print("all three agree on memory, cycles and busy_pe, and match the numpy reference: "
              + ("[green]yes[/]" if all_ok else "[red]NO[/]"))


if __name__ == "__main__":
    main()
