"""SCALE-Sim 3.0.0 vs hwgen's SCALE-Sim-compatible cost model, on the same topologies.

For each topology and each configuration (array rows x cols, dataflow) this
script runs the real SCALE-Sim (the ``scalesim`` package from PyPI) in a
subprocess and :func:`mappings.scalesim_compat_report.scalesim_compat_report`
in this process, then compares per layer SCALE-Sim's COMPUTE_REPORT.csv
("Total Cycles", "Compute Util %", "Mapping Efficiency %", "Overall Util %")
with ours, prints every difference (there should be none) and the runtime
ratio (SCALE-Sim's run time / ours).

SCALE-Sim 3.0.0 crashes with NumPy >= 2.4 (the project's venv has 2.4), so it
runs from its own virtual environment, created once under
``.hwgen_cache/scalesim-venv`` (git-ignored) with ``scalesim==3.0.0`` and
``numpy>=2.3,<2.4`` from PyPI (about 20 s). Its config is an ideal array: the
given size and dataflow, 64 MiB SRAMs, ``InterfaceBandwidth = CALC`` (its
stall-free "estimate bandwidth" memory mode), no sparsity, no custom layout,
traces not saved. A layer where SCALE-Sim still reports stall cycles is flagged.

Run times: "SCALE-Sim" is the time of its ``scalesim(...)`` constructor and
``run_scale()`` inside the subprocess (interpreter start and imports excluded;
the whole subprocess wall time is printed too); "ours" is the time of
``read_topology`` + ``scalesim_compat_report``, best of several repeats.
SCALE-Sim walks its demand matrices cycle by cycle in Python, so its time
grows with the cycle count (about 65-140 us per simulated cycle): the default
plan (MobileNet at 32x32 and ResNet-50 at 64x64, each OS/WS/IS) takes about 18
minutes on a 2-core machine; ``--quick`` (MobileNet at 64x64) about 4.

Usage: python benchmarks/scalesim_compare.py [--quick]
       python benchmarks/scalesim_compare.py --topologies resnet50,mobilenet --configs 32x32:os,16x64:ws
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from mappings.scalesim_compat_report import CompatReport, scalesim_compat_report  # noqa: E402
from sim.scalesim_compat import DATAFLOWS  # noqa: E402
from mappings.scalesim_csv import read_topology  # noqa: E402

DATA = Path(os.environ.get("HWGEN_SHARED", REPO.parent / "shared")) / "data" / "scalesim"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/scalesim")
VENV = REPO / ".hwgen_cache" / "scalesim-venv"
REQUIREMENTS = ("scalesim==3.0.0", "numpy>=2.3,<2.4")
_STAMP = VENV / "hwgen-requirements.txt"

#: (topology, "ROWSxCOLS:DATAFLOW") runs by default: about 18 minutes on a 2-core machine
#: (SCALE-Sim needs ~65-140 us per simulated cycle; ResNet-50 at 32x32 would take ~25 minutes more)
DEFAULT_PLAN = tuple([("mobilenet", f"32x32:{df}") for df in DATAFLOWS]
                     + [("resnet50", f"64x64:{df}") for df in DATAFLOWS])
#: --quick: about 4 minutes
QUICK_PLAN = tuple(("mobilenet", f"64x64:{df}") for df in DATAFLOWS)

#: relative tolerance on the utilizations: SCALE-Sim averages per-fold floats, we divide once
REL_TOL = 1e-9

_RUNNER = r"""
import sys, time
cfg, topo, layout, out, gemm = sys.argv[1:6]
from scalesim.scale_sim import scalesim
t0 = time.perf_counter()
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
             input_type_gemm=(gemm == "gemm"))
s.run_scale(top_path=out)
print("HWGEN_SCALESIM_SECONDS", time.perf_counter() - t0)
"""


# ------------------------------------------------------------------ the venv
def venv_python() -> Path:
    return VENV / "bin" / "python"


def venv_ready() -> bool:
    """True when the SCALE-Sim venv exists with the pinned requirements (no network needed)."""
    return venv_python().exists() and _STAMP.exists() and _STAMP.read_text().split() == list(REQUIREMENTS)


def ensure_venv(quiet: bool = True) -> Path:
    """Create (once) the SCALE-Sim venv under .hwgen_cache/ and return its python."""
    if venv_ready():
        return venv_python()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(VENV)], check=True)
    cmd = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", *REQUIREMENTS]
    if quiet:
        cmd.insert(4, "-q")
    subprocess.run(cmd, check=True)
    subprocess.run([str(venv_python()), "-c", "import scalesim.scale_sim, numpy"], check=True)
    _STAMP.write_text("\n".join(REQUIREMENTS) + "\n")
    return venv_python()


# ------------------------------------------------------------ running SCALE-Sim
CONFIG_TEMPLATE = """\
[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {sram_kb}
FilterSramSzkB : {sram_kb}
OfmapSramSzkB : {sram_kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : 10,10,10
Dataflow : {dataflow}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : 10
IfmapSRAMBankNum : 10
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : 10
FilterSRAMBankNum : 10
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : CALC
UseRamulatorTrace : False
"""


def write_config(path: Path, rows: int, cols: int, dataflow: str, run_name: str = "hwgen_cmp",
                 sram_kb: int = 65536) -> Path:
    """An ideal-array SCALE-Sim config: large SRAMs, CALC (stall-free estimate) bandwidth mode."""
    path.write_text(CONFIG_TEMPLATE.format(run_name=run_name, rows=rows, cols=cols, dataflow=dataflow,
                                           sram_kb=sram_kb))
    return path


@dataclass(frozen=True)
class ScaleSimRow:
    """One line of SCALE-Sim's COMPUTE_REPORT.csv."""

    layer_id: int
    total_cycles_incl_prefetch: int
    total_cycles: int
    stall_cycles: int
    overall_util_pct: float
    mapping_eff_pct: float
    compute_util_pct: float


def parse_compute_report(path: Path) -> list[ScaleSimRow]:
    rows = []
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)  # header
        for rec in reader:
            f = [x.strip() for x in rec if x.strip() != ""]
            if not f:
                continue
            rows.append(ScaleSimRow(int(f[0]), int(float(f[1])), int(float(f[2])), int(float(f[3])), float(f[4]),
                                    float(f[5]), float(f[6])))
    return rows


def run_scalesim(topology: Path, rows: int, cols: int, dataflow: str, timeout: float = 900.0,
                 gemm: bool = False, workdir: Path | None = None) -> tuple[list[ScaleSimRow], float, float]:
    """Run SCALE-Sim 3.0.0 on ``topology``: (COMPUTE_REPORT rows, its run seconds, subprocess wall seconds)."""
    py = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="hwgen-scalesim-", dir=workdir) as tmp:
        tmpd = Path(tmp)
        cfg = write_config(tmpd / "ideal.cfg", rows, cols, dataflow)
        layout = tmpd / "layout.csv"  # SCALE-Sim opens a layout file even with custom layouts off
        layout.write_text("Layer name, IFMAP Height Intraline Factor,\n")
        out = tmpd / "out"
        t0 = time.perf_counter()
        proc = subprocess.run([str(py), "-c", _RUNNER, str(cfg), str(Path(topology).resolve()), str(layout), str(out),
                               "gemm" if gemm else "conv"],
                              cwd=tmpd, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"SCALE-Sim failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                               f"{proc.stderr[-4000:]}")
        inner = next((float(ln.split()[1]) for ln in proc.stdout.splitlines()
                      if ln.startswith("HWGEN_SCALESIM_SECONDS")), wall)
        report = out / "hwgen_cmp" / "COMPUTE_REPORT.csv"
        return parse_compute_report(report), inner, wall


# ----------------------------------------------------------------- comparing
def compare(ours: CompatReport, theirs: list[ScaleSimRow]) -> list[str]:
    """Every difference between our report and SCALE-Sim's, as text (empty: identical)."""
    diffs = []
    if len(ours.layers) != len(theirs):
        diffs.append(f"layer count: ours {len(ours.layers)}, SCALE-Sim {len(theirs)}")
    for o, t in zip(ours.layers, theirs):
        where = f"layer {o.index} ({o.name})"
        if t.stall_cycles:
            diffs.append(f"{where}: SCALE-Sim reports {t.stall_cycles} stall cycles (not an ideal array)")
        if o.cycles != t.total_cycles:
            diffs.append(f"{where}: cycles ours {o.cycles}, SCALE-Sim {t.total_cycles} "
                         f"(diff {o.cycles - t.total_cycles:+d})")
        for label, mine, pct in (("compute util", o.utilization, t.compute_util_pct),
                                 ("mapping efficiency", o.mapping_efficiency, t.mapping_eff_pct),
                                 ("overall util", o.overall_utilization, t.overall_util_pct)):
            if not math.isclose(100 * mine, pct, rel_tol=REL_TOL, abs_tol=1e-12):
                diffs.append(f"{where}: {label} ours {100 * mine!r}%, SCALE-Sim {pct!r}%")
    return diffs


def _time_ours(path: Path, rows: int, cols: int, df: str, repeats: int = 5) -> tuple[CompatReport, float]:
    best, rep = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        rep = scalesim_compat_report(read_topology(path), rows, cols, df)
        best = min(best, time.perf_counter() - t0)
    return rep, best


def _parse_config(text: str) -> tuple[int, int, str]:
    size, _, df = text.partition(":")
    r, _, c = size.lower().partition("x")
    return int(r), int(c or r), (df or DATAFLOWS[0]).lower()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topologies", help="names in shared/data/scalesim/ or paths to topology CSVs "
                    "(with --configs: every topology in every configuration)")
    ap.add_argument("--configs", help="ROWSxCOLS:DATAFLOW,... (e.g. 32x32:os,16x64:ws)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per SCALE-Sim run")
    ap.add_argument("--quick", action="store_true", help="MobileNet at 64x64 OS/WS/IS only (about 4 minutes)")
    args = ap.parse_args(argv)
    if args.topologies or args.configs:
        topos = [t for t in (args.topologies or "mobilenet").split(",") if t]
        cfgs = [c for c in (args.configs or "32x32:os").split(",") if c]
        plan = [(t, c) for t in topos for c in cfgs]
    else:
        plan = list(QUICK_PLAN if args.quick else DEFAULT_PLAN)

    t0 = time.perf_counter()
    ensure_venv(quiet=False)
    print(f"SCALE-Sim venv: {VENV} ({time.perf_counter() - t0:.1f} s)")
    header = (f"{'topology':<10} {'array':>7} {'df':>3} {'layers':>6} {'total cycles':>13} {'SCALE-Sim s':>11} "
              f"{'(wall s)':>9} {'ours ms':>8} {'ratio':>9} {'diffs':>5}")
    print(header)
    print("-" * len(header))
    all_diffs: list[str] = []
    tot_ss = tot_ours = 0.0
    for name, cfg in plan:
        path = Path(name)
        if not path.exists():
            path = DATA / f"{name}.csv"
        rows, cols, df = _parse_config(cfg)
        theirs, t_ss, wall = run_scalesim(path, rows, cols, df, timeout=args.timeout)
        ours, t_ours = _time_ours(path, rows, cols, df)
        tot_ss, tot_ours = tot_ss + t_ss, tot_ours + t_ours
        diffs = compare(ours, theirs)
        all_diffs += [f"{path.stem} {rows}x{cols} {df}: {d}" for d in diffs]
        print(f"{path.stem:<10} {f'{rows}x{cols}':>7} {df:>3} {len(theirs):>6} {ours.total_cycles:>13} "
              f"{t_ss:>11.2f} {wall:>9.2f} {1e3 * t_ours:>8.2f} {t_ss / t_ours:>9.0f} {len(diffs):>5}",
              flush=True)
    print(f"all runs: SCALE-Sim {tot_ss:.1f} s, ours {1e3 * tot_ours:.1f} ms, ratio {tot_ss / tot_ours:.0f}")
    print()
    if all_diffs:
        print(f"{len(all_diffs)} differences:")
        for d in all_diffs:
            print("  " + d)
        return 1
    print("no differences: cycles equal on every layer, utilizations equal within "
          f"a relative {REL_TOL:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
