"""A native C++ Verilator harness for the accelerator top (no cocotb, no VPI).

Why: under cocotb the simulator yields to Python at least for reset, start and
done, and pays VPI costs for every memory word it loads or reads back; a plain
C++ main around the Verilated model runs the same design several times faster
and starts in milliseconds. This harness is the base of the fast RTL fault
injector (copy the golden state, flip, run, compare), so its C++ is a template
kept readable: :data:`MAIN_TEMPLATE`.

What the C++ main does (see :data:`MAIN_TEMPLATE`):

* it instantiates the Verilated ``hwgen_accel`` (the bare :class:`hwgen.top.Accelerator`,
  Verilog from :func:`hwgen.generate.verilog_text`) and implements the host
  memory in C++ (a ``std::vector<uint8_t>``) with exactly the contract of
  :class:`hwgen.harness.Harness` on the three host ports (fetch, load, store):
  word addresses, read data one cycle after ``fetch_re`` / ``ld_re`` (old data on
  a same-cycle write), byte-enabled writes (``st_wstrb``); accesses past the memory raise a sticky ``mem_oob`` flag,
  such writes are dropped and reads wrap (the memory size is a power of two);
* it reads a job file: the memory size, then one line per image
  ``<timeout_cycles> <image.bin> <final_memory.bin>``; per image it loads the raw
  bytes (zero-padded), resets the design (rst for 3 edges, as the cocotb bench
  does), pulses ``start``, clocks until ``done`` or ``error`` or the timeout,
  writes the final memory and appends one result line to the results file
  (flushed per image, so a crash keeps the finished images):
  ``index cycles busy_pe error timed_out mem_oob host_cycles wall_seconds``.
  ``host_cycles`` counts clock edges from the edge that samples ``start`` to the
  first one after which ``done`` is high, as ``sim_cycles`` in the cocotb bench
  (both become :attr:`hwgen.program.RunResult.clock_cycles`).

Results are :class:`hwgen.program.RunResult`; :class:`NativeExecutor` is the
``"native"`` :class:`hwgen.program.Executor`.

Ports wider than 64 bits (``*_rdata``/``st_wdata`` at host_port_width=128)
are ``VlWide<N>`` arrays of 32-bit words in Verilator; overloaded helpers in the
template pack and unpack host bytes for both scalar and wide ports.

Build: ``verilator --cc --exe --build -O3`` (C++ at -O2) with the wheel's environment
(:func:`hwgen.toolchain.verilator_env`), no ``--public-flat-rw`` and no VPI;
cached under :func:`hwgen.rtlsim.default_cache_dir` by a hash of (recipe, tool
versions, Verilog, C++ source, flags), so one build serves every later process.
The memory size is a run-time argument, not part of the build.

This module imports Amaranth lazily (Verilog generation only) and never imports
``sim`` (imports point down the flow).
"""

import os
from importlib import resources
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import AcceleratorConfig
from .program import Program, RunResult, run_programs, timeouts_for
from .rtlsim import DEFAULT_TIMEOUT_CYCLES, RtlSimError, _tail, cached_build, default_cache_dir, harness_mem_bytes
from .toolchain import verilator_env

__all__ = ["NativeDesign", "NativeExecutor", "build_native", "build_native_variant", "run_images_native",
           "run_programs_native", "MAIN_TEMPLATE", "SIM_CORE", "main_cpp", "fill_template", "NATIVE_FLAGS",
           "EXE_NAME", "RESET_EDGES", "TOP"]

#: Name of the Verilog top (``hwgen.generate.TOP_NAME``) and so of the Verilated class ``V<top>``.
TOP = "hwgen_accel"
#: The executable's file name inside the build folder.
EXE_NAME = "hwgen_native"
#: Clock edges with ``rst`` held before each image (the cocotb bench holds it for 1 + reset_cycles=2).
RESET_EDGES = 3
#: Verilator arguments (besides sources, top and output names). Part of the cache key.
#: ``OPT_FAST``/``OPT_GLOBAL=-O2`` replace verilated.mk's ``-Os``: 2.1x faster at 8x8, 1.2x at 16x16,
#: for 0.5-2 s more compile time (measured on these machines).
NATIVE_FLAGS = ("--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
                "-Wno-fatal", "-Wno-lint", "-Wno-style", "-MAKEFLAGS", "OPT_FAST=-O2 OPT_GLOBAL=-O2")
def cpp_source(name: str, package: str = "hwgen") -> str:
    """A C++ source shipped as package data (``<package>/cpp/<name>``): C++ kept in C++ files, where editors,
    compilers' diagnostics and reviewers read it, rather than in Python strings. A missing file is a
    packaging defect, not the user's input: it is raised as such (the CLI's exit 70)."""
    path = resources.files(package) / "cpp" / name
    try:
        return path.read_text()
    except FileNotFoundError:
        raise RuntimeError(f"hwgen is installed without its package data: {path} is missing "
                           "(a packaging defect; reinstall hwgen)") from None


#: Bump when the build recipe changes so old cache entries are not reused.
_RECIPE = "native-2"
_MARKER = "hwgen_native.json"

_MAIN_HEADER = cpp_source("native_header.cpp")

#: The shared C++ core of every native harness: includes, port packing, :class:`HostMemory`-like
#: host memory and the ``Sim`` class (model + memory, ``tick``, ``reset``, ``run``). Placeholders
#: ``@TOP@``, ``@PORT_BYTES@``, ``@RESET_EDGES@`` (see :func:`fill_template`).
SIM_CORE = cpp_source("sim_core.inc")

_MAIN_BODY = cpp_source("native_main.cpp")

#: The C++ main of :func:`run_images_native` (header + :data:`SIM_CORE` + the batch main).
MAIN_TEMPLATE = _MAIN_HEADER + SIM_CORE + _MAIN_BODY


def fill_template(template: str, cfg: AcceleratorConfig) -> str:
    """``template`` with the harness placeholders (``@TOP@``, ``@EXE@``, ``@PORT_BYTES@``,
    ``@RESET_EDGES@``) filled for ``cfg``."""
    return (template.replace("@TOP@", TOP).replace("@EXE@", EXE_NAME)
            .replace("@PORT_BYTES@", str(cfg.host_port_bytes)).replace("@RESET_EDGES@", str(RESET_EDGES)))


def main_cpp(cfg: AcceleratorConfig) -> str:
    """The C++ main for ``cfg`` (:data:`MAIN_TEMPLATE` with its placeholders filled)."""
    return fill_template(MAIN_TEMPLATE, cfg)


@dataclass(frozen=True)
class NativeDesign:
    """A finished native build of one configuration in the cache."""

    cfg: AcceleratorConfig
    key: str
    build_dir: Path
    #: Wall seconds the build took when it was made (not this call's time if ``cached``).
    build_seconds: float
    #: True if this call found the build in the cache (no Verilator run).
    cached: bool

    @property
    def executable(self) -> Path:
        return self.build_dir / "obj_dir" / EXE_NAME


def _tool_versions() -> str:
    from importlib.metadata import version

    return f"verilator={version('verilator')} amaranth={version('amaranth')} cxx={_cxx_version()}"


def _cxx_version() -> str:
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        return "none"
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    except OSError:
        return "unknown"


_MEMO: dict[tuple, NativeDesign] = {}


def build_native(cfg: AcceleratorConfig, *, cache_dir: str | os.PathLike[str] | None = None,
                 verbose: bool = False, use_memo: bool = True, jobs: int | None = None) -> NativeDesign:
    """Build (or find in the cache) the native simulator of ``cfg``'s accelerator.

    The Verilog is generated in each new process (it is part of the key, so an
    edited generator gives a new build); within a process a repeated call returns
    the memo. A file lock makes concurrent processes wait for one build.
    ``verbose`` streams Verilator's and the compiler's output instead of writing
    ``build.log``; ``jobs`` is the make parallelism (default: all cores).
    """
    return build_native_variant(cfg, "", main_cpp(cfg), cache_dir=cache_dir, verbose=verbose,
                                use_memo=use_memo, jobs=jobs)


def build_native_variant(cfg: AcceleratorConfig, variant: str, cpp: str | None = None, vlt: str | None = None, *,
                         cpp_factory=None, vlt_factory=None, vtext: str | None = None,
                         cache_dir: str | os.PathLike[str] | None = None, verbose: bool = False,
                         use_memo: bool = True, jobs: int | None = None) -> NativeDesign:
    """Build (or find in the cache) a native harness of ``cfg`` with another C++ main.

    ``variant`` names the build (part of the folder name and of the memo key; ""
    is :func:`build_native`'s); ``cpp`` is the whole C++ source of the main
    (typically :data:`SIM_CORE` plus a main, filled by :func:`fill_template`);
    ``vlt`` an optional Verilator control file (``public_flat_rw`` lines that
    make chosen registers and memories visible to the C++ through the scope
    table: ``VerilatedContext::scopeFind``). Either may be given as a factory
    ``f(verilog_text) -> str`` (``cpp_factory``/``vlt_factory``) when it derives
    from the generated Verilog. Both are part of the cache key. ``vtext``: the
    Verilog of ``cfg`` when the caller has it already (saves generating it again).
    """
    from .generate import verilog_text

    cache = Path(cache_dir).resolve() if cache_dir is not None else default_cache_dir()
    memo_key = (cfg.to_json(), str(cache), variant)
    if use_memo and memo_key in _MEMO and (_MEMO[memo_key].build_dir / _MARKER).is_file():
        d = _MEMO[memo_key]
        return NativeDesign(d.cfg, d.key, d.build_dir, d.build_seconds, True)

    if vtext is None:
        vtext, _ports = verilog_text(cfg, name=TOP)
    if cpp_factory is not None:
        cpp = cpp_factory(vtext)
    if vlt_factory is not None:
        vlt = vlt_factory(vtext)
    if cpp is None:
        raise ValueError("build_native_variant needs cpp or cpp_factory")
    parts = [_RECIPE, _tool_versions(), vtext, cpp, " ".join(NATIVE_FLAGS)]
    if vlt is not None:
        parts.append(vlt)

    def build(build_dir: Path) -> None:
        exe = build_dir / "obj_dir" / EXE_NAME
        (build_dir / f"{TOP}.v").write_text(vtext)
        (build_dir / "main.cpp").write_text(cpp)
        (build_dir / "config.json").write_text(cfg.to_json())
        sources = [f"{TOP}.v", "main.cpp"]
        if vlt is not None:
            (build_dir / f"{TOP}.vlt").write_text(vlt)
            sources.insert(0, f"{TOP}.vlt")
        env = {**os.environ, **verilator_env()}
        cmd = ["verilator", *NATIVE_FLAGS, "-j", str(jobs or os.cpu_count() or 1), "--top-module", TOP,
               "-Mdir", "obj_dir", "-o", EXE_NAME, *sources]
        log = build_dir / "build.log"
        with open(log, "w") as lf:
            proc = subprocess.run(cmd, cwd=build_dir, env=env, stdout=None if verbose else lf,
                                  stderr=None if verbose else subprocess.STDOUT, check=False)
        if proc.returncode != 0 or not exe.is_file():
            raise RtlSimError(f"native Verilator build of '{cfg.name}' failed (exit {proc.returncode}) in "
                              f"{build_dir}:\n{_tail(log)}")

    key, build_dir, secs, cached = cached_build(
        cache, f"native{'-' + variant if variant else ''}-{cfg.name}", parts,
        [f"obj_dir/{EXE_NAME}"], build,
        {"config": cfg.to_dict(), "flags": list(NATIVE_FLAGS), "variant": variant, "tools": _tool_versions()},
        _MARKER)
    built = NativeDesign(cfg, key, build_dir, secs, cached)
    _MEMO[memo_key] = built
    return built


class NativeExecutor:
    """The ``"native"`` :class:`hwgen.program.Executor`: ``cfg``'s accelerator in the native Verilator harness.

    Each :meth:`run_all` is one simulator process (the design is reset before each image; its scratchpads
    keep their contents within the batch). ``mem_bytes``: the harness memory (default: the next power of two
    of the batch's largest image); ``timeout_cycles``: the default timeout per image; ``cache_dir``: the build
    cache (default :func:`hwgen.rtlsim.default_cache_dir`); ``work_dir`` keeps the job files (default: a
    temporary folder, deleted). Results carry the whole harness memory (see :func:`hwgen.program.run_programs`).
    """

    name = "native"

    def __init__(self, cfg: AcceleratorConfig, *, mem_bytes: int | None = None,
                 timeout_cycles: int = DEFAULT_TIMEOUT_CYCLES, cache_dir: str | os.PathLike[str] | None = None,
                 work_dir: str | os.PathLike[str] | None = None):
        self.cfg = cfg
        self.mem_bytes = mem_bytes
        self.timeout_cycles = timeout_cycles
        self.cache_dir = cache_dir
        self.work_dir = work_dir

    def run(self, image: np.ndarray) -> RunResult:
        return self.run_all([image])[0]

    def run_all(self, images: Sequence[np.ndarray],
                timeout_cycles: int | Sequence[int] | None = None) -> list[RunResult]:
        """Run raw host-memory images (uint8 arrays) through one native simulator process, in order.

        Each image is zero-padded to the memory and each result carries the whole memory.
        Raises :class:`hwgen.rtlsim.RtlSimError` if the simulator fails.
        """
        from .harness import check_mem_bytes

        cfg = self.cfg
        imgs = [np.ascontiguousarray(im, dtype=np.uint8).reshape(-1) for im in images]
        if not imgs:
            return []
        mb = self.mem_bytes if self.mem_bytes is not None else harness_mem_bytes(cfg, [im.size for im in imgs])
        check_mem_bytes(cfg, mb)
        for n, im in enumerate(imgs):
            if im.size > mb:
                raise ValueError(f"image {n} has {im.size} bytes, more than the {mb}-byte memory")
        timeouts = timeouts_for(len(imgs), timeout_cycles, self.timeout_cycles)

        built = build_native(cfg, cache_dir=self.cache_dir)
        tmp = None
        if self.work_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="hwgen_native_")
            wd = Path(tmp.name)
        else:
            wd = Path(self.work_dir).resolve()
            wd.mkdir(parents=True, exist_ok=True)
        try:
            lines = [str(mb)]
            finals = []
            for n, (im, to) in enumerate(zip(imgs, timeouts)):
                ip, fp = wd / f"image_{n:05d}.bin", wd / f"final_{n:05d}.bin"
                im.tofile(ip)
                fp.unlink(missing_ok=True)
                finals.append(fp)
                lines.append(f"{to} {ip} {fp}")
            job, res_file, log = wd / "job.txt", wd / "results.txt", wd / "sim.log"
            job.write_text("\n".join(lines) + "\n")
            t0 = time.perf_counter()
            with open(log, "w") as lf:
                proc = subprocess.run([str(built.executable), str(job), str(res_file)], stdout=lf,
                                      stderr=subprocess.STDOUT, check=False)
            secs = time.perf_counter() - t0
            rows = [ln.split() for ln in res_file.read_text().splitlines()] if res_file.is_file() else []
            if proc.returncode != 0 or len(rows) != len(imgs):
                raise RtlSimError(f"native simulation of '{cfg.name}' failed (exit {proc.returncode}) after "
                                  f"{len(rows)} of {len(imgs)} images; log {log}:\n{_tail(log)}")
            results = []
            for row, fp in zip(rows, finals):
                _idx, cyc, busy, err, to, oob, hc = (int(v) for v in row[:7])
                results.append(RunResult(memory=np.fromfile(fp, dtype=np.uint8), cycles=cyc, busy_pe=busy,
                                         error=bool(err), timed_out=bool(to), mem_oob=bool(oob), clock_cycles=hc,
                                         run_seconds=float(row[7]), process_seconds=secs, executor=self.name))
            return results
        finally:
            if tmp is not None:
                tmp.cleanup()


def run_images_native(cfg: AcceleratorConfig, images: Sequence[np.ndarray], *,
                      timeout_cycles: int | Sequence[int] | None = None, mem_bytes: int | None = None,
                      cache_dir: str | os.PathLike[str] | None = None,
                      work_dir: str | os.PathLike[str] | None = None) -> list[RunResult]:
    """Run raw host-memory images through one native simulator process (:meth:`NativeExecutor.run_all`)."""
    ex = NativeExecutor(cfg, mem_bytes=mem_bytes, cache_dir=cache_dir, work_dir=work_dir)
    return ex.run_all(images, timeout_cycles=timeout_cycles)


def run_programs_native(cfg: AcceleratorConfig, programs: Sequence[Program], *,
                        timeout_cycles: int | Sequence[int] | None = None, **kwargs) -> list[RunResult]:
    """Run Programs natively (:func:`hwgen.program.run_programs` on a :class:`NativeExecutor`); each result's
    memory is cut back to the program's ``mem_size``, ``outside_bytes`` counts non-zero bytes the design left
    past it. Other keyword arguments go to :class:`NativeExecutor`."""
    return run_programs(NativeExecutor(cfg, **kwargs), programs, timeout_cycles=timeout_cycles)
