"""DSE speed: the cost model's error against synthesis, hwgen design points per second, and ZigZag side by side.

Four sections, one run (``--sections`` picks some; 1-3 by default):

1. **Cost model vs synthesis.** :func:`hwgen.cost_model.estimate` against whole-design ECP5 synthesis
   (:func:`hwgen.synth.synthesize`, ``whole=True``) on the configurations the model was *not* fitted on
   (``HELD_OUT`` of benchmarks/fit_cost_model.py), printed by that script's own ``synth_all`` and
   ``validate``: LUT, FF, DSP, BRAM and the relative errors. The syntheses are cached in the build cache
   (instant once run; otherwise 1.5-3 CPU-minutes of yosys each): ``--no-synth`` skips the section.
2. **hwgen design points per second.** A sweep (:class:`mappings.dse.Sweep`, :func:`mappings.dse.run_sweep`,
   each point :func:`mappings.dse.evaluate_point`: the mapper and the exact analytical model) of
   ``--network`` (zoo:resnet18) over ``--points`` (a power of two: the first log2(N) axes of
   :data:`SWEEP_AXES`) configurations around the 32x32 of benchmarks/mapper_speed.py, from cold mapper caches,
   into a fresh SQLite file, as ``hwgen dse`` runs it: points/s (wall) and CPU seconds a point with
   ``jobs=1``; with ``--jobs N`` (N > 1) the same sweep again in N worker processes (their CPU time is not
   this process's to measure: their per-point seconds are printed instead).
3. **ZigZag on ResNet-18, side by side.** ZigZag (PyPI ``zigzag-dse``, pinned :data:`ZIGZAG_REQUIREMENTS`)
   in its own venv (``--zigzag-venv``, default build/zigzag-venv, git-ignored; ``--install-zigzag``
   creates it, otherwise the section says how and is skipped) runs ``zigzag.api.get_hardware_performance_zigzag``
   in a child process on its shipped ``inputs/workload/resnet18.onnx`` (a shape-only export of torchvision's
   ResNet-18, the same 1.81 GMAC network as zoo:resnet18) with its shipped TPU-like 32x32 accelerator
   (``inputs/hardware/tpu_like.yaml``) and mapping (``inputs/mapping/tpu_like.yaml``), LOMA, latency
   objective, its progress bar and INFO log off. hwgen maps zoo:resnet18 on mapper_speed's 32x32
   (``config(32)``: 128-bit host port, depths 4096/4096/512) as one :func:`~mappings.dse.evaluate_point`
   from cold caches. Both are one design point (one network mapped onto one accelerator); ZigZag's count
   of cost-model evaluations (layer x spatial x temporal mappings LOMA tried) is printed beside it.
   Printed: wall and CPU seconds per design point of each (ZigZag's API call, and its whole child
   process with interpreter start and imports), the ratio, and the latency each reports in cycles:
   two different models (ZigZag's TPU-like memory hierarchy and its latency model; hwgen's exact
   cycle model of its own decoupled array), not expected to agree.

4. **The issue's ResNet-50 sweep** (``--sections 4``, minutes): 648 points of zoo:resnet50 (:data:`RESNET50_AXES`)
   with ``--jobs`` (at least 2) workers into a fresh database, as ``hwgen dse`` runs it: points/s, wall
   time against the 10-minute goal, how many distinct mappings the points need (those equal but for operand
   widths share one, :data:`mappings.dse.WIDTH_AXES`).

CPU seconds are ``time.process_time`` (this process) or ``getrusage(RUSAGE_CHILDREN)`` (the ZigZag child):
the machine may be shared, so wall time alone says little. Exit status 0 when every section ran or was
skipped (a held-out configuration beyond the cost model's bound is reported, not an error; that check is
benchmarks/fit_cost_model.py's).

Usage::

    python benchmarks/dse_speed.py [--no-synth] [--points 8] [--jobs 2] [--sections 1,2,3]
                                   [--zigzag-venv build/zigzag-venv] [--install-zigzag]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO, REPO / "benchmarks"):  # run as a script from anywhere; the sibling benchmarks are modules
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from hwgen.config import AcceleratorConfig  # noqa: E402
from mapper_speed import ARRAYS, EXPECTED, config  # noqa: E402
from mappings.dse import PointResult, Sweep, evaluate_point, run_sweep  # noqa: E402
from mappings.mapper import clear_cache  # noqa: E402
from mappings.network_map import load_model  # noqa: E402

#: the array size of the side-by-side comparison: ZigZag's shipped TPU-like accelerator is 32x32
TPU_SIZE = 32
#: ZigZag as measured here. zigzag-dse 3.9.1 imports ``six`` (parser/upgraded_validator.py) without
#: declaring it, so it is pinned beside it.
ZIGZAG_REQUIREMENTS = ("zigzag-dse==3.9.1", "six==1.17.0")
DEFAULT_ZIGZAG_VENV = REPO / "build" / "zigzag-venv"
#: written into the venv once the requirements are installed and import (a half-made venv lacks it)
STAMP = "hwgen-requirements.txt"

#: section 2's axes, in the order --points takes them (2 values each: the first log2(N) axes are swept;
#: the others stay at the base's value). The depth values are mapper_speed's two arrays' depths.
SWEEP_AXES: tuple[tuple[str, tuple], ...] = (
    ("rows", (16, 32)),
    ("cols", (16, 32)),
    ("dataflow", ("ws", "both")),
    ("a_spad_depth", tuple(sorted({ARRAYS[16][0], ARRAYS[32][0]}))),
    ("acc_depth", tuple(sorted({ARRAYS[16][2], ARRAYS[32][2]}))),
)
MAX_POINTS = 2 ** len(SWEEP_AXES)


# ------------------------------------------------------------------ 1. cost model vs synthesis
def cost_model_section(no_synth: bool) -> None:
    """Held-out configurations: whole-design synthesis (cached) vs the cost model, printed by
    benchmarks/fit_cost_model.py's own functions (one definition of the set, the synthesis and the table)."""
    print("== 1. cost model (hwgen/cost_model.py) vs whole-design ECP5 synthesis, held-out configurations")
    if no_synth:
        print("  skipped (--no-synth); run without it (cached syntheses are instant) or "
              "benchmarks/fit_cost_model.py --synth-only to synthesise them")
        return
    from fit_cost_model import BOUND, HELD_OUT, configs, synth_all, validate

    print("held-out set (whole design; a line says 'cached' when read from the build cache):")
    reports = synth_all(configs(HELD_OUT), whole=True)
    ok = validate(reports, None)
    print(f"  {'all within' if ok else 'NOT all within'} the bound: LUT and FF within {BOUND:.0%}, DSP and BRAM exact")


# ------------------------------------------------------------------ 2. hwgen design points per second
def sweep_axes(points: int) -> tuple[tuple[str, tuple], ...]:
    """The first log2(points) axes of SWEEP_AXES (``points`` a power of two up to MAX_POINTS)."""
    k = int(math.log2(points)) if points >= 1 else -1
    if points < 2 or 2 ** k != points or k > len(SWEEP_AXES):
        raise ValueError(f"--points {points}: give a power of two from 2 to {MAX_POINTS}")
    return SWEEP_AXES[:k]


@dataclass
class SweepTiming:
    """One timed run_sweep: what a points/s figure needs."""

    jobs: int
    points: list[PointResult]
    wall: float
    cpu: float | None  # this process's CPU seconds; None with worker processes (theirs are not ours)

    @property
    def n(self) -> int:
        return len(self.points)


def time_sweep(network: str, points: int, jobs: int) -> SweepTiming:
    """Run the sweep into a fresh database from cold caches; wall and (jobs 1) CPU seconds of run_sweep,
    which includes loading the network once and committing every point, as ``hwgen dse`` does."""
    sweep = Sweep(network, sweep_axes(points), config(TPU_SIZE))
    with tempfile.TemporaryDirectory(prefix="dse_speed_") as tmp:
        clear_cache()
        c0, t0 = time.process_time(), time.perf_counter()
        run = run_sweep(sweep, Path(tmp) / "sweep.sqlite", jobs=jobs)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return SweepTiming(jobs, run.points, wall, cpu if jobs == 1 else None)


def sweep_section(network: str, points: int, jobs: int) -> None:
    print(f"\n== 2. hwgen design points per second: {network}, {points} points (mappings.dse.run_sweep)")
    axes = sweep_axes(points)
    base = config(TPU_SIZE)
    print(f"  base: mapper_speed config({TPU_SIZE}) ({base.rows}x{base.cols}, {base.dataflow}, "
          f"{base.host_port_width}-bit port, depths {base.a_spad_depth}/{base.w_spad_depth}/{base.acc_depth}); "
          f"axes: " + ", ".join(f"{n}={'/'.join(map(str, v))}" for n, v in axes))
    runs = [time_sweep(network, points, 1)] + ([time_sweep(network, points, jobs)] if jobs > 1 else [])
    print(f"  {'jobs':>4} {'points':>6} {'ok':>4} {'wall s':>8} {'points/s':>9} {'CPU s/point':>11} "
          f"{'point s (mean/min/max)':>24}")
    for r in runs:
        secs = [p.seconds for p in r.points]
        ok = sum(p.ok for p in r.points)
        cpu = f"{r.cpu / r.n:11.2f}" if r.cpu is not None else f"{'(workers)':>11}"
        print(f"  {r.jobs:>4} {r.n:>6} {ok:>4} {r.wall:8.1f} {r.n / r.wall:9.3f} {cpu} "
              f"{sum(secs) / len(secs):10.2f} /{min(secs):6.2f} /{max(secs):6.2f}")
    print("  (point s: each point's evaluate_point wall time as the sweep records it; CPU s/point: this "
          "process's CPU time over the run / points, mapper caches warm after the first point)")
    bad = [p for r in runs for p in r.points if not p.ok]
    for p in bad[:3]:
        print(f"  point {p.index} {p.params}: {p.status.value}: {p.error}")


# ------------------------------------------------------------------ 4. the ResNet-50 sweep
#: the ResNet-50 sweep of issue 10 (>= 500 points in <= 10 minutes on 2 cores): arrays 8-32 each way, the
#: three dataflows, two port widths, mapper_speed's 16x16 depths, and 12 operand-width pairs (which share
#: one mapping: mappings.dse.WIDTH_AXES), as ``hwgen dse zoo:resnet50 --rows 8,16,32 --cols 8,16,32
#: --dataflow os,ws,both --host-port-width 64,128 --input-width 2,4,6,8 --weight-width 2,4,8
#: --a-spad-depth 8192 --w-spad-depth 8192 --acc-depth 1024 --jobs 2`` runs it
RESNET50_AXES: dict[str, str] = {"rows": "8,16,32", "cols": "8,16,32", "dataflow": "os,ws,both",
                                 "host_port_width": "64,128", "input_width": "2,4,6,8", "weight_width": "2,4,8"}
RESNET50_GOAL_SECONDS = 600.0


def resnet50_section(jobs: int) -> None:
    """The whole sweep from cold caches into a fresh database with ``jobs`` workers: points, distinct
    mappings, wall time against the goal, the slowest mapping."""
    from mappings.dse import design_points, mapping_groups

    base = AcceleratorConfig(name="dse", a_spad_depth=8192, w_spad_depth=8192, acc_depth=1024)
    sweep = Sweep.from_options("zoo:resnet50", base, **RESNET50_AXES)
    groups = mapping_groups(list(enumerate(design_points(sweep))))
    print(f"\n== 4. the issue's sweep: zoo:resnet50, {sweep.n_points} points ({len(groups)} distinct mappings: "
          f"points equal but for operand widths share one), jobs={jobs}")
    print("  axes: " + ", ".join(f"{k}={v}" for k, v in RESNET50_AXES.items()) + "; depths 8192/8192/1024")
    with tempfile.TemporaryDirectory(prefix="dse_speed_r50_") as tmp:
        clear_cache()
        t0 = time.perf_counter()
        run = run_sweep(sweep, Path(tmp) / "sweep.sqlite", jobs=jobs)
        wall = time.perf_counter() - t0
    counts = run.counts()
    slow = max(run.points, key=lambda p: p.seconds)
    print(f"  {run.evaluated_now} points ({counts}) in {wall:.0f} s wall: {run.evaluated_now / wall:.2f} points/s; "
          f"goal {RESNET50_GOAL_SECONDS:.0f} s: ratio {wall / RESNET50_GOAL_SECONDS:.2f} (<= 1 meets it)")
    print(f"  slowest point {slow.index} {slow.params}: {slow.seconds:.1f} s (the first of its mapping group)")


# ------------------------------------------------------------------ 3. ZigZag side by side
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def zigzag_ready(venv: Path) -> bool:
    """True when ``venv`` has the pinned ZigZag requirements installed (its stamp; no network needed)."""
    stamp = venv / STAMP
    return venv_python(venv).exists() and stamp.exists() and stamp.read_text().split() == list(ZIGZAG_REQUIREMENTS)


def install_zigzag(venv: Path) -> None:
    """Create ``venv`` with the pinned ZigZag from PyPI (its dependencies are not the project's, so never in
    the project venv), check it imports, then stamp it."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    print(f"  creating {venv} with {' '.join(ZIGZAG_REQUIREMENTS)} (a minute or two) ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    for cmd in ([base, "-m", "venv", "--clear", str(venv)],
                [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 *ZIGZAG_REQUIREMENTS],
                [str(venv_python(venv)), "-c", "import zigzag.api"]):
        # pip's output is kept out of the benchmark's unless a step fails
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-3000:]}")
    (venv / STAMP).write_text("\n".join(ZIGZAG_REQUIREMENTS) + "\n")


#: runs in ZigZag's venv: its API on its shipped ResNet-18 and TPU-like 32x32; one JSON line on stdout.
#: CostModelStage.run is wrapped only to count the cost-model evaluations (one generator hop each).
_ZIGZAG_RUNNER = r"""
import json, logging, os, resource, sys, tempfile, time
logging.basicConfig(level=logging.WARNING)  # before the API's basicConfig(INFO), which is then a no-op
t_import = time.perf_counter()
from importlib import metadata
import zigzag
from zigzag.api import get_hardware_performance_zigzag
from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
t_import = time.perf_counter() - t_import
evaluations = 0
_run = CostModelStage.run
def counted(self):
    global evaluations
    evaluations += 1
    yield from _run(self)
CostModelStage.run = counted
inputs = os.path.join(os.path.dirname(zigzag.__file__), "inputs")
workload, hardware, mapping = (os.path.join(inputs, *p) for p in (("workload", "resnet18.onnx"),
                               ("hardware", "tpu_like.yaml"), ("mapping", "tpu_like.yaml")))
with tempfile.TemporaryDirectory(prefix="zigzag_") as dump:
    c0, t0 = time.process_time(), time.perf_counter()
    energy, latency, cmes = get_hardware_performance_zigzag(workload, hardware, mapping, opt="latency",
                                                            dump_folder=dump, loma_show_progress_bar=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
layers = [c for c, _ in cmes[0][1]]
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print("HWGEN_ZIGZAG " + json.dumps({
    "version": metadata.version("zigzag-dse"), "workload": workload, "hardware": hardware, "mapping": mapping,
    "import_seconds": t_import, "api_wall": wall, "api_cpu": cpu + kids.ru_utime + kids.ru_stime,
    "latency_cycles": latency, "energy_pj": energy, "layers": len(layers),
    "macs": sum(int(c.layer.total_mac_count) for c in layers), "evaluations": evaluations}))
"""


@dataclass
class ZigZagRun:
    """What the ZigZag child reported, and its wall and CPU time as the parent measured it."""

    result: dict
    child_wall: float
    child_cpu: float


def run_zigzag(python: Path) -> ZigZagRun:
    """Run ZigZag's API once in a child process of ``python``; RUSAGE_CHILDREN measures the child's CPU."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(python), "-c", _ZIGZAG_RUNNER], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("HWGEN_ZIGZAG ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"ZigZag ({python}) exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return ZigZagRun(json.loads(lines[-1][len("HWGEN_ZIGZAG "):]), wall, cpu)


def time_hwgen_point(cfg: AcceleratorConfig) -> tuple[PointResult, float, float, int]:
    """One design point as a sweep evaluates it: zoo:resnet18 on ``cfg`` from cold caches; (result, wall s,
    CPU s, network MACs). The network is loaded before the clock starts, as a sweep loads it once."""
    from mappings.zoo import total_macs

    graph = load_model("zoo:resnet18")
    clear_cache()
    c0, t0 = time.process_time(), time.perf_counter()
    point = evaluate_point(graph, cfg, {})
    return point, time.perf_counter() - t0, time.process_time() - c0, total_macs(graph)


def zigzag_section(venv: Path, install: bool) -> None:
    print(f"\n== 3. ZigZag vs hwgen on ResNet-18, {TPU_SIZE}x{TPU_SIZE}: seconds per design point")
    if not zigzag_ready(venv):
        if not install:
            print(f"  skipped: no ZigZag venv at {venv}. Create it with this script's --install-zigzag, or by hand:\n"
                  f"    python -m venv {venv} && {venv_python(venv)} -m pip install {' '.join(ZIGZAG_REQUIREMENTS)}"
                  f" && echo {' '.join(ZIGZAG_REQUIREMENTS)} > {venv / STAMP}")
            return
        install_zigzag(venv)
    print(f"  running ZigZag in {venv} (a minute or more) ...", flush=True)
    zz = run_zigzag(venv_python(venv))
    z = zz.result
    cfg = config(TPU_SIZE)
    point, hw_wall, hw_cpu, hw_macs = time_hwgen_point(cfg)
    if not point.ok:
        raise RuntimeError(f"hwgen's {cfg.name} point is {point.status.value}: {point.error}")
    cycles = int(point.metrics["cycles"])
    want = EXPECTED.get(("resnet18", TPU_SIZE))
    print(f"  ZigZag {z['version']}: {Path(z['workload']).name} on {Path(z['hardware']).name} / "
          f"{Path(z['mapping']).name} (LOMA, opt=latency): {z['layers']} layers, {z['macs']:,} MACs; "
          f"1 design point = the network mapped once; inside it {z['evaluations']:,} cost-model evaluations")
    print(f"  hwgen: zoo:resnet18 on mapper_speed config({TPU_SIZE}) ({cfg.rows}x{cfg.cols}, {cfg.dataflow}, "
          f"{cfg.host_port_width}-bit port, depths {cfg.a_spad_depth}/{cfg.w_spad_depth}/{cfg.acc_depth}), "
          f"{hw_macs:,} MACs; 1 design point = mappings.dse.evaluate_point, cold caches")
    print(f"  {'':34} {'wall s':>8} {'CPU s':>8}")
    print(f"  {'ZigZag, API call':34} {z['api_wall']:8.1f} {z['api_cpu']:8.1f}")
    print(f"  {'ZigZag, whole child process':34} {zz.child_wall:8.1f} {zz.child_cpu:8.1f}   "
          f"(+ interpreter start, imports {z['import_seconds']:.1f} s)")
    print(f"  {'hwgen, evaluate_point':34} {hw_wall:8.1f} {hw_cpu:8.1f}")
    print(f"  seconds per design point, ZigZag / hwgen: {z['api_cpu'] / hw_cpu:.1f}x CPU, "
          f"{z['api_wall'] / hw_wall:.1f}x wall (API call vs evaluate_point)")
    print(f"  ZigZag per cost-model evaluation: {1e3 * z['api_cpu'] / max(1, z['evaluations']):.2f} CPU ms")
    print("  latency, cycles (different models, not expected to agree: ZigZag's TPU-like memory hierarchy and "
          "latency model, hwgen's exact cycle model of its own array):")
    print(f"    ZigZag {z['latency_cycles']:>14,.0f}")
    print(f"    hwgen  {cycles:>14,}"
          + ("" if want is None else f"   ({'equal to' if cycles == want else 'DIFFERS from'} "
                                     f"benchmarks/mapper_speed.py's expected {want:,})"))


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="1,2,3",
                    help="which sections to run, comma separated (default 1,2,3; 4, the issue's ResNet-50 sweep of "
                         "648 points, takes minutes)")
    ap.add_argument("--no-synth", action="store_true",
                    help="skip section 1 (its syntheses take minutes each unless already in the build cache)")
    ap.add_argument("--network", default="zoo:resnet18", help="section 2's network (default zoo:resnet18)")
    ap.add_argument("--points", type=int, default=8, help=f"section 2's design points: a power of two, 2-{MAX_POINTS}")
    ap.add_argument("--jobs", type=int, default=1,
                    help="section 2: also run the sweep in this many worker processes (default 1: only jobs=1); "
                         "section 4 runs with this many (at least 2)")
    ap.add_argument("--zigzag-venv", type=Path, default=DEFAULT_ZIGZAG_VENV,
                    help=f"ZigZag's own venv (default {DEFAULT_ZIGZAG_VENV.relative_to(REPO)})")
    ap.add_argument("--install-zigzag", action="store_true",
                    help=f"create --zigzag-venv with {' '.join(ZIGZAG_REQUIREMENTS)} if it is not there")
    args = ap.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if not sections or sections - {"1", "2", "3", "4"}:
        ap.error(f"--sections {args.sections!r}: give some of 1, 2, 3, 4")
    try:
        sweep_axes(args.points)
    except ValueError as e:
        ap.error(str(e))
    if args.jobs < 1:
        ap.error(f"--jobs {args.jobs}: at least 1")
    if "1" in sections:
        cost_model_section(args.no_synth)
    if "2" in sections:
        sweep_section(args.network, args.points, args.jobs)
    if "3" in sections:
        zigzag_section(args.zigzag_venv.resolve(), args.install_zigzag)
    if "4" in sections:
        resnet50_section(max(args.jobs, 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
