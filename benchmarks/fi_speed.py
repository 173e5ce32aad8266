"""RTL fault-injection speed: injections per second with and without early stop, and a 10k campaign.

For each array size (default 8x8 with a 64x64x64 GEMM; ``--sizes 8,16`` adds 16x16 with 128x128x128;
'both' dataflow, default buffers) the GEMM is lowered with
:func:`mappings.lowering.lower_gemm` from random int8 operands and a
requantization from :func:`mappings.random_programs.random_quant`. Faults are
uniform over the fault space: a state element drawn with probability
proportional to its bits, then a uniform word, bit and cycle in the golden run
(single-bit flips, ``seu``). The same faults run through
:class:`fault_injection.rtl_injector.RtlInjector` once with early stop and once
without (every run to the end); the outcomes must agree. A second set of as many faults mixes every
fault model (seu, mbu in memories, stuck0/stuck1 over windows of 1-40 cycles), again both ways: the
shortcuts of early stop (state re-convergence, memory liveness, the early SDC stop) must give every
fault the outcome of its full run. The machine's 1-minute load average is printed before and after
each timed run (the rates are wall-clock, on a machine that may be shared). Printed side by side:
the golden cycles, the simulation speed of the plain native harness
(:func:`hwgen.native.run_programs_native`, nothing public) and of the
injector's build (every register and memory ``public_flat_rw``), the cost of
the per-cycle state fingerprint, the injection rates and outcome counts.

Then a 10,000-injection campaign on the 8x8 GEMM: through
:func:`fault_injection.campaign.run_campaign` (backend "rtl", ``--jobs`` worker processes,
each injector one faulty run at a time), wall time from the call to the last
result in the store, including Verilog generation, the build lookup, the golden
run, planning and the store; and the same number of faults straight through one
``RtlInjector`` (batches of ``preferred_batch``).

Usage: python benchmarks/fi_speed.py [--sizes 8,16] [--n 2000] [--campaign 10000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter

import numpy as np
from rich.console import Console
from rich.table import Table

from fault_injection.faults import Fault
from fault_injection.rtl_injector import RtlInjector, build_injector, random_state_faults
from hwgen.config import AcceleratorConfig
from hwgen.native import build_native, run_programs_native
from mappings.lowering import lower_gemm
from mappings.random_programs import random_quant

DEFAULT_GEMM = {8: (64, 64, 64), 16: (128, 128, 128)}


def gemm_program(cfg: AcceleratorConfig, M: int, K: int, N: int, seed: int):
    rng = np.random.default_rng(seed)
    A = rng.integers(-128, 128, (M, K), dtype=np.int64).astype(np.int8)
    W = rng.integers(-128, 128, (K, N), dtype=np.int64).astype(np.int8)
    acc = A.astype(np.int64) @ W.astype(np.int64)
    return lower_gemm(cfg, A, W, random_quant(rng, cfg, acc))


def uniform_faults(inj: RtlInjector, n: int, seed: int) -> list[Fault]:
    """n single-bit flips uniform over (state bits x golden cycles)."""
    return random_state_faults(inj, n, seed)


def mixed_faults(inj: RtlInjector, n: int, seed: int) -> list[Fault]:
    """n faults of every model: seu, mbu (2-4 adjacent bits, memories only), stuck0/stuck1 over 1-40
    cycles, in the ratio 2:1:1:1."""
    return random_state_faults(inj, n, seed, ("seu", "seu", "mbu", "stuck0", "stuck1"))


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def _counts(results) -> str:
    c = Counter(r.outcome for r in results)
    return " / ".join(f"{c[k]}" for k in ("masked", "sdc", "due"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="8", help="array sizes (square), comma separated (e.g. 8,16)")
    ap.add_argument("--gemm", default="", help="per size MxKxN, e.g. 8=64x64x64,16=128x128x128")
    ap.add_argument("--n", type=int, default=2000, help="faults per size for the rate comparison")
    ap.add_argument("--campaign", type=int, default=10_000, help="injections of the 8x8 campaign (0: skip)")
    ap.add_argument("--jobs", type=int, default=2, help="faulty runs at once, and campaign workers (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    gemm = dict(DEFAULT_GEMM)
    for item in filter(None, args.gemm.split(",")):
        k, v = item.split("=")
        gemm[int(k)] = tuple(int(x) for x in v.split("x"))
    console = Console()
    console.print(f"{os.cpu_count()} CPUs; jobs = {args.jobs}; load average {_load()}")

    rows: dict[str, list[str]] = {}
    sizes = [int(s) for s in args.sizes.split(",")]
    for size in sizes:
        cfg = AcceleratorConfig(name=f"fi{size}x{size}", rows=size, cols=size)
        M, K, N = gemm[size]
        prog = gemm_program(cfg, M, K, N, args.seed)
        t0 = time.perf_counter()
        plain_build = build_native(cfg)
        fi_build = build_injector(cfg)
        builds = time.perf_counter() - t0
        build_note = f"{builds:.0f}" + (" (cached)" if plain_build.cached and fi_build.cached else "")
        plain = run_programs_native(cfg, [prog])[0]
        inj = RtlInjector(cfg, prog, jobs=args.jobs)
        g = inj.golden()
        assert g.cycles == plain.cycles and np.array_equal(g.memory, plain.memory)
        faults = uniform_faults(inj, args.n, args.seed + size)
        inj.inject(faults[:20])                       # warm up (page cache)
        load0 = _load()
        t0 = time.perf_counter()
        early = inj.inject(faults, early_stop=True)
        t_early = time.perf_counter() - t0
        load1 = _load()
        t0 = time.perf_counter()
        full = inj.inject(faults, early_stop=False)
        t_full = time.perf_counter() - t0
        same = sum(a.outcome == b.outcome for a, b in zip(early, full))
        n_early = sum(r.early_stop for r in early)
        mixed = mixed_faults(inj, args.n, args.seed + size + 1)
        t0 = time.perf_counter()
        m_early = inj.inject(mixed, early_stop=True)
        t_mixed = time.perf_counter() - t0
        m_full = inj.inject(mixed, early_stop=False)
        m_same = sum(a.outcome == b.outcome for a, b in zip(m_early, m_full))
        # the cycle model on the same faults, restricted to the structures it models
        from fault_injection.model_injector import ModelInjector

        covering = ModelInjector(cfg, prog)
        mfaults = [f for f in faults if covering.covers(inj.site(f.site))]
        rates = {}
        for es in (True, False):
            mi = ModelInjector(cfg, prog, early_stop=es)
            mi.golden()
            t0 = time.perf_counter()
            mres = mi.inject(mfaults)
            rates[es] = len(mfaults) / (time.perf_counter() - t0)
        rtl_same = {f: r.outcome for f, r in zip(faults, early)}
        model_same = sum(rtl_same[f] == r.outcome for f, r in zip(mfaults, mres))
        for key, val in (
                ("GEMM", f"{M}x{K}x{N}"), ("golden cycles", f"{g.cycles:,}"),
                ("state bits (sites)", f"{inj.state.total_bits:,} ({len(inj.state.vars)})"),
                ("builds, s (plain + injector)", build_note),
                ("plain native, cycles/s", f"{plain.cycles_per_second:,.0f}"),
                ("injector build, cycles/s", f"{g.cycles_per_second:,.0f}"),
                ("visibility slowdown", f"{plain.cycles_per_second / g.cycles_per_second:.2f}x"),
                ("state fingerprint", f"{1e6 * g.hash_seconds / (g.cycles + 1):.1f} us"),
                ("inj/s, early stop", f"{args.n / t_early:,.0f}"),
                ("load average before / after", f"{load0} / {load1}"),
                ("inj/s, full runs", f"{args.n / t_full:,.0f}"),
                ("early-stop speed-up", f"{t_full / t_early:.2f}x"),
                ("early-stopped", f"{100 * n_early / args.n:.0f}%"),
                ("masked / sdc / due", _counts(early)),
                ("same outcome both ways", f"{same}/{args.n}"),
                ("all models: inj/s, early stop", f"{args.n / t_mixed:,.0f}"),
                ("all models: masked / sdc / due", _counts(m_early)),
                ("all models: same outcome both ways", f"{m_same}/{args.n}"),
                ("model inj/s, early stop (datapath faults)", f"{rates[True]:,.0f}"),
                ("model inj/s, full runs", f"{rates[False]:,.0f}"),
                ("RTL/model same outcome (datapath faults)", f"{model_same}/{len(mfaults)}")):
            rows.setdefault(key, []).append(val)
        inj.close()
    table = Table(title=f"RTL fault injection: {args.n} uniform single-bit flips per size, "
                        f"{args.jobs} at once")
    table.add_column("")
    for size in sizes:
        table.add_column(f"{size}x{size}", justify="right")
    for key, vals in rows.items():
        table.add_row(key, *vals)
    console.print(table)

    if args.campaign:
        cfg = AcceleratorConfig(name="fi8x8", rows=8, cols=8)
        spec = "gemm:64x64x64"
        try:
            from fault_injection.campaign import run_campaign
        except ImportError as e:          # pragma: no cover - campaign.py is optional here
            run_campaign = None
            console.print(f"campaign module not available: {e}")
        if run_campaign is not None:
            with tempfile.TemporaryDirectory() as d:
                load0 = _load()
                t0 = time.perf_counter()
                summary = run_campaign(os.path.join(d, "fi.db"), cfg, spec, n=args.campaign, seed=args.seed,
                                       backend="rtl", jobs=args.jobs, progress=False)
                wall = time.perf_counter() - t0
            console.print(f"campaign: {summary.done:,} of {summary.planned:,} injections ({spec} on 8x8, backend rtl, "
                          f"{args.jobs} jobs) in {wall:.1f} s wall ({summary.done / wall:,.0f} inj/s overall, "
                          f"{summary.rate:,.0f} inj/s injecting; load average {load0} / {_load()}); "
                          f"counts {summary.counts}")
        # the same number of faults straight through one injector
        prog = gemm_program(cfg, 64, 64, 64, args.seed)
        load0 = _load()
        t0 = time.perf_counter()
        inj = RtlInjector(cfg, prog, jobs=args.jobs)
        g = inj.golden()
        faults = uniform_faults(inj, args.campaign, args.seed)
        res = []
        for i in range(0, len(faults), RtlInjector.preferred_batch):
            res += inj.inject(faults[i:i + RtlInjector.preferred_batch])
        wall = time.perf_counter() - t0
        console.print(f"direct: {len(res):,} uniform flips on the 8x8 64x64x64 GEMM ({g.cycles:,} cycles) in "
                      f"{wall:.1f} s wall ({len(res) / wall:,.0f} inj/s, load average {load0} / {_load()}); "
                      f"masked / sdc / due = {_counts(res)}; "
                      f"early-stopped {sum(r.early_stop for r in res):,}")
        inj.close()


if __name__ == "__main__":
    main()
