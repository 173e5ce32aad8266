"""Fit hwgen.cost_model's coefficients to ECP5 syntheses, then validate it on held-out whole designs.

Synthesises (through :mod:`hwgen.synth`, so every run is cached in the build cache and a re-run is
instant; one yosys process at a time):

* with ``--probes``, one-memory and one-multiplier designs: the block-RAM and DSP mapping rules of
  hwgen/cost_model.py's docstring, each compared with the rule (seconds each);
* the PE sweep (:func:`hwgen.synth.synthesize_pe_classes`: widths, dataflows, shadow weights on 2x2
  arrays, seconds each) and the fitting set, composed (PE classes + rest, 1-3 CPU-minutes a rest);

fits by least squares the PE LUTs (every distinct PE class) and the rest's LUTs and flip-flops
(:data:`hwgen.cost_model.FEATURES`), checks the exact rules (PE flip-flops, DSP, BRAM) on every
configuration, prints the residuals with each rest's leave-one-out error and the coefficients as the
``COEFFICIENTS`` table of hwgen/cost_model.py (paste it there); then synthesises the held-out
configurations as whole designs (the figure the issue's done-when names) and prints per configuration
model vs synthesis and the relative errors, with the module's coefficients (``--use-fitted``: the ones
just fitted). Exits 1 if a rule misses or a held-out configuration misses the bound: LUTs and FFs
within 10%, DSP and BRAM exact.

Usage: python benchmarks/fit_cost_model.py [--probes] [--use-fitted] [--no-validate] [--synth-only]
"""

from __future__ import annotations

import argparse
import re
import sys
import time

import numpy as np

from hwgen.config import AcceleratorConfig

#: composed syntheses the model is fitted on (the default configuration but for the fields named)
FIT_SET: tuple[dict, ...] = (
    dict(name="fit-2x2", rows=2, cols=2),
    dict(name="fit-4x4", rows=4, cols=4),
    dict(name="fit-8x8", rows=8, cols=8),
    dict(name="fit-16x16", rows=16, cols=16),
    dict(name="fit-4x8-os", rows=4, cols=8, dataflow="os"),
    dict(name="fit-8x4-ws-p128", rows=8, cols=4, dataflow="ws", host_port_width=128),
    dict(name="fit-3x5-p8-q1", rows=3, cols=5, host_port_width=8, queue_depth=1),
    dict(name="fit-2x4-ws-p128", rows=2, cols=4, dataflow="ws", host_port_width=128),
    dict(name="fit-5x3-narrow", rows=5, cols=3, input_width=4, weight_width=6, acc_width=24),
    dict(name="fit-2x8-p32-q8", rows=2, cols=8, host_port_width=32, queue_depth=8),
    dict(name="fit-4x4-inorder", rows=4, cols=4, controller="in-order"),
    dict(name="fit-6x6-ws-p16-q2", rows=6, cols=6, dataflow="ws", host_port_width=16, queue_depth=2),
    dict(name="fit-4x4-os-p128-acc24", rows=4, cols=4, dataflow="os", host_port_width=128, queue_depth=2,
         acc_width=24, max_reduction=256, a_spad_depth=512, w_spad_depth=512, acc_depth=512),
    dict(name="fit-8x4-inorder-os-p32", rows=8, cols=4, dataflow="os", controller="in-order", host_port_width=32),
)

#: PE-only syntheses (seconds each): the PE's widths, dataflow and shadow weights, on 2x2 arrays
PE_SWEEP: tuple[dict, ...] = tuple(
    dict(name=f"pe-{df}-{ctl}-{iw}x{ww}-{acc}", rows=2, cols=2, dataflow=df, controller=ctl, input_width=iw,
         weight_width=ww, acc_width=acc, max_reduction=1)
    for df in ("os", "ws", "both") for ctl in ("decoupled", "in-order") if not (df == "os" and ctl == "in-order")
    for iw, ww, acc in ((8, 8, 32), (4, 4, 16), (8, 4, 24), (2, 6, 12))
)

#: whole-design syntheses the model is validated on (not in the fitting set)
HELD_OUT: tuple[dict, ...] = (
    dict(name="val-4x4-ws-p32", rows=4, cols=4, dataflow="ws", host_port_width=32),
    dict(name="val-6x4-os", rows=6, cols=4, dataflow="os"),
    dict(name="val-8x8-q2", rows=8, cols=8, queue_depth=2),
)


#: memory probes (lane bits, lanes, depth, read ports; lanes 1 = no byte enables) and multiplier probes
#: (a, b): the mapping rules of hwgen.cost_model's docstring, measured on one-memory / one-product designs
MEMORY_PROBES: tuple[tuple[int, int, int, int], ...] = (
    (4, 5, 256, 1), (6, 4, 256, 1), (8, 8, 1024, 1), (128, 1, 256, 2), (72, 1, 256, 2), (8, 5, 256, 1),
    (6, 3, 1024, 1), (8, 4, 128, 1), (36, 1, 2048, 1), (9, 1, 4096, 1), (256, 1, 512, 1), (8, 16, 2048, 1),
    (8, 4, 64, 1),                                   # the tie of costs: block RAM
    (36, 1, 16, 1), (8, 4, 32, 1), (256, 1, 16, 2),  # shallow: distributed RAM, which the model refuses
)
MULTIPLIER_PROBES: tuple[tuple[int, int], ...] = ((8, 8), (32, 32), (32, 24), (32, 16), (32, 19), (19, 19),
                                                  (2, 2), (8, 2), (36, 8), (18, 18))


def configs(specs: tuple[dict, ...]) -> list[AcceleratorConfig]:
    return [AcceleratorConfig(**s) for s in specs]


def synth_all(cfgs: list[AcceleratorConfig], whole: bool) -> list:
    """Synthesise (or read from the cache) each configuration, one yosys run at a time."""
    from hwgen.synth import synthesize

    out = []
    for cfg in cfgs:
        t0 = time.perf_counter()
        r = synthesize(cfg, "ecp5", whole=whole)
        print(f"  {cfg.name:<28} {'whole' if whole else 'composed':<8} LUT {r.total.luts:>7,} FF {r.total.ffs:>7,} "
              f"DSP {r.total.dsps:>4} BRAM {r.total.brams:>3} DPR {r.total.dist_rams:>3}  "
              f"{'cached' if r.cached else f'{r.cpu_seconds:.0f} CPU s, {time.perf_counter() - t0:.0f} s'}"
              f"  (yosys CPU s when run: {sum(p.cpu_seconds for p in r.parts):.0f})", flush=True)
        out.append(r)
    return out


def pe_sweep() -> list[tuple[AcceleratorConfig, list]]:
    from hwgen.synth import synthesize_pe_classes

    return [(cfg, synthesize_pe_classes(cfg)) for cfg in configs(PE_SWEEP)]


# ------------------------------------------------------------------ probes
def _probe_designs():
    from amaranth import Module, Signal, signed, unsigned
    from amaranth.lib import wiring
    from amaranth.lib.memory import Memory
    from amaranth.lib.wiring import In, Out

    class MemProbe(wiring.Component):
        """One memory with the design's port structure (hwgen/top.py): a byte-enabled write, sync reads."""

        def __init__(self, lane_bits: int, lanes: int, depth: int, reads: int):
            self.shape_ = (lane_bits, lanes, depth, reads)
            ab = max(1, (depth - 1).bit_length())
            super().__init__({"wa": In(ab), "wd": In(lane_bits * lanes), "we": In(lanes),
                              **{f"ra{i}": In(ab) for i in range(reads)},
                              **{f"rd{i}": Out(lane_bits * lanes) for i in range(reads)}})

        def elaborate(self, platform):
            lane_bits, lanes, depth, reads = self.shape_
            m = Module()
            m.submodules.mem = mem = Memory(shape=unsigned(lane_bits * lanes), depth=depth, init=[])
            wp = mem.write_port(granularity=lane_bits) if lanes > 1 else mem.write_port()
            m.d.comb += [wp.addr.eq(self.wa), wp.data.eq(self.wd), wp.en.eq(self.we)]
            for i in range(reads):
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(getattr(self, f"ra{i}")), getattr(self, f"rd{i}").eq(rp.data)]
            return m

    class MulProbe(wiring.Component):
        """One registered signed a x b product."""

        def __init__(self, a: int, b: int):
            self.ab = (a, b)
            super().__init__({"a": In(signed(a)), "b": In(signed(b)), "y": Out(signed(a + b))})

        def elaborate(self, platform):
            a, b = self.ab
            m = Module()
            ra, rb = Signal(signed(a)), Signal(signed(b))
            m.d.sync += [ra.eq(self.a), rb.eq(self.b), self.y.eq(ra * rb)]
            return m

    return MemProbe, MulProbe


def run_probes() -> bool:
    """Synthesise the probes and compare with the model's rules; True if all agree."""
    from amaranth.back import verilog

    from hwgen import cost_model as cm
    from hwgen.synth import resources_of, synth_verilog

    MemProbe, MulProbe = _probe_designs()
    ok = True
    print("memory probes (lane bits x lanes, depth, read ports): DP16KD synthesised / rule")
    for lb, lanes, depth, reads in MEMORY_PROBES:
        text = verilog.convert(MemProbe(lb, lanes, depth, reads), name="probe", emit_src=False)
        cells, _, cpu, _, cached = synth_verilog(text, "probe", "ecp5", what=f"memory probe {lb}x{lanes}x{depth}")
        r = resources_of("ecp5", cells)
        try:
            rule: int | str = cm.memory_blocks(cm.MemorySpec("probe", lanes, lb, depth, reads))
            good = r.brams == rule and r.dist_rams == 0
        except cm.CostModelError:
            rule, good = "distributed RAM (refused)", r.brams == 0 and r.dist_rams > 0
        ok &= good
        print(f"  {lb:>3} x {lanes:<2} x {depth:<5} r{reads}: {r.brams:>3} / {rule!s:<3} DPR {r.dist_rams} "
              f"LUT {r.luts} FF {r.ffs} {'' if good else ' MISMATCH'}", flush=True)
    print("multiplier probes (a x b signed): MULT18X18D synthesised / rule")
    for a, b in MULTIPLIER_PROBES:
        text = verilog.convert(MulProbe(a, b), name="probe", emit_src=False)
        cells, _, cpu, _, cached = synth_verilog(text, "probe", "ecp5", what=f"multiplier probe {a}x{b}")
        r = resources_of("ecp5", cells)
        rule = cm.mult18_count(a, b)
        ok &= r.dsps == rule
        print(f"  {a:>3} x {b:<3}: {r.dsps:>3} / {rule:<3} LUT {r.luts}{'' if r.dsps == rule else '  MISMATCH'}",
              flush=True)
    return ok


# ------------------------------------------------------------------ fit
_PE_RE = re.compile(r"pe_r(\d+)_c(\d+)$")


def pe_class_of(cfg: AcceleratorConfig, module: str, count: int):
    from hwgen.cost_model import PeClass

    i, j = map(int, _PE_RE.search(module).groups())
    return PeClass(first_row=i == 0, last_row=i == cfg.rows - 1, last_col=j == cfg.cols - 1, count=count)


def lstsq(rows: list[dict[str, float]], ys: list[float], names: tuple[str, ...]) -> dict[str, float]:
    X = np.array([[r[n] for n in names] for r in rows], dtype=float)
    coef, *_ = np.linalg.lstsq(X, np.array(ys, dtype=float), rcond=None)
    return {n: float(round(c, 4)) for n, c in zip(names, coef)}


def fit(fit_reports: list, sweep: list) -> tuple[dict[str, dict[str, float]], bool]:
    """Least-squares coefficients of hwgen.cost_model.FEATURES; also checks the exact rules (PE FFs, DSP, BRAM)."""
    from hwgen import cost_model as cm

    exact = True
    pe_rows, pe_y, seen = [], [], set()
    pe_sources = [(AcceleratorConfig.from_dict(r.config), [p for p in r.parts if p.name != "rest"])
                  for r in fit_reports]
    for cfg, parts in pe_sources + list(sweep):
        for p in parts:
            cls = pe_class_of(cfg, p.module, p.count)
            f = cm.pe_features(cfg, cls)
            if cm.pe_ffs(cfg, cls) != p.resources.ffs:
                exact = False
                print(f"  PE FF rule misses {cfg.name} {p.name}: {cm.pe_ffs(cfg, cls)} vs {p.resources.ffs}")
            key = (tuple(f.values()), p.resources.luts)
            if key not in seen:  # one point per distinct (features, LUTs): the many 8/8/32 PEs do not dominate
                seen.add(key)
                pe_rows.append(f)
                pe_y.append(p.resources.luts)
    rest_rows, rest_luts, rest_ffs = [], [], []
    for r in fit_reports:
        cfg = AcceleratorConfig.from_dict(r.config)
        rest = next(p for p in r.parts if p.name == "rest")
        rest_rows.append(cm.rest_features(cfg))
        rest_luts.append(rest.resources.luts)
        rest_ffs.append(rest.resources.ffs)
    co = {"pe_luts": lstsq(pe_rows, pe_y, cm.FEATURES["pe_luts"]),
          "rest_luts": lstsq(rest_rows, rest_luts, cm.FEATURES["rest_luts"]),
          "rest_ffs": lstsq(rest_rows, rest_ffs, cm.FEATURES["rest_ffs"])}
    print(f"fitted on {len(pe_rows)} distinct PE classes and {len(rest_rows)} rests")
    # leave-one-out: each rest predicted by a fit without it (how far the model carries off its points)
    loo = []
    for k in range(len(rest_rows)):
        keep = [i for i in range(len(rest_rows)) if i != k]
        lu = lstsq([rest_rows[i] for i in keep], [rest_luts[i] for i in keep], cm.FEATURES["rest_luts"])
        ff = lstsq([rest_rows[i] for i in keep], [rest_ffs[i] for i in keep], cm.FEATURES["rest_ffs"])
        loo.append((rel(sum(lu[n] * rest_rows[k][n] for n in lu), rest_luts[k]),
                    rel(sum(ff[n] * rest_rows[k][n] for n in ff), rest_ffs[k])))
    print("residuals (composed synthesis vs model, fitted coefficients):")
    print(f"  {'config':<28} {'LUT synth':>9} {'model':>9} {'err':>7} {'FF synth':>9} {'model':>9} {'err':>7}  "
          f"DSP  BRAM  (rest left out of the fit: LUT, FF error)")
    for r, (lo_l, lo_f) in zip(fit_reports, loo):
        cfg = AcceleratorConfig.from_dict(r.config)
        m = cm.estimate(cfg, whole=False, coefficients=co)
        ok_db = m.dsps == r.total.dsps and m.brams == r.total.brams
        exact &= ok_db
        print(f"  {cfg.name:<28} {r.total.luts:>9,} {m.luts:>9,} {rel(m.luts, r.total.luts):>+7.1%} "
              f"{r.total.ffs:>9,} {m.ffs:>9,} {rel(m.ffs, r.total.ffs):>+7.1%}  "
              f"{m.dsps}/{r.total.dsps} {m.brams}/{r.total.brams}  ({lo_l:+.1%}, {lo_f:+.1%})"
              f"{'' if ok_db else '  MISMATCH'}")
    return co, exact


def rel(model: float, synth: float) -> float:
    return (model - synth) / synth if synth else 0.0


def print_table(co: dict[str, dict[str, float]]) -> None:
    print("COEFFICIENTS: dict[str, dict[str, float]] = {")
    for k, v in co.items():
        print(f"    {k!r}: {{" + ", ".join(f"{n!r}: {c!r}" for n, c in v.items()) + "},")
    print("}")


def validate(reports: list, co: dict[str, dict[str, float]] | None) -> bool:
    """Model vs whole-design synthesis; True if every configuration is within the done-when bound."""
    from hwgen import cost_model as cm

    ok = True
    print("held-out validation (whole-design synthesis vs model):")
    print(f"  {'config':<22} {'LUT synth':>9} {'model':>9} {'err':>7} {'FF synth':>9} {'model':>9} {'err':>7} "
          f"{'DSP s/m':>8} {'BRAM s/m':>8} {'yosys CPU s':>11}")
    for r in reports:
        cfg = AcceleratorConfig.from_dict(r.config)
        t0 = time.perf_counter()
        m = cm.estimate(cfg, coefficients=co)
        us = (time.perf_counter() - t0) * 1e6
        el, ef = rel(m.luts, r.total.luts), rel(m.ffs, r.total.ffs)
        good = abs(el) <= BOUND and abs(ef) <= BOUND and m.dsps == r.total.dsps and m.brams == r.total.brams
        ok &= good
        print(f"  {cfg.name:<22} {r.total.luts:>9,} {m.luts:>9,} {el:>+7.1%} {r.total.ffs:>9,} {m.ffs:>9,} {ef:>+7.1%} "
              f"{r.total.dsps:>4}/{m.dsps:<3} {r.total.brams:>4}/{m.brams:<3} "
              f"{sum(p.cpu_seconds for p in r.parts):>11.0f}  model {us:.0f} us{'' if good else '  MISSES THE BOUND'}")
    return ok


#: the done-when bound on LUTs and flip-flops
BOUND = 0.10


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth-only", action="store_true", help="only run (or find cached) the syntheses")
    ap.add_argument("--probes", action="store_true", help="also synthesise the mapping-rule probes")
    ap.add_argument("--use-fitted", action="store_true",
                    help="validate with the coefficients just fitted instead of hwgen.cost_model's table")
    ap.add_argument("--no-validate", action="store_true", help="skip the held-out whole-design syntheses")
    args = ap.parse_args(argv)
    t0 = time.process_time()
    ok = True
    if args.probes:
        ok &= run_probes()
    print("PE sweep (PE classes only):")
    sweep = pe_sweep()
    print("fitting set (composed):")
    fit_reports = synth_all(configs(FIT_SET), whole=False)
    if not args.no_validate:
        print("held-out set (whole):")
        held = synth_all(configs(HELD_OUT), whole=True)
    if args.synth_only:
        return 0
    co, exact = fit(fit_reports, sweep)
    ok &= exact
    print_table(co)
    if not args.no_validate:
        ok &= validate(held, co if args.use_fitted else None)
    print(f"this run: {time.process_time() - t0:.1f} CPU s in this process (yosys runs are child processes, "
          f"their CPU s are in the lines above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
