"""Build a configuration's harness with Verilator once, then run many programs through it.

Why this module exists:

* A Verilator build is a C++ compile (tens of seconds to minutes), so builds
  are cached on disk by a hash of (configuration JSON, memory size, generated
  Verilog, control file, tool versions) and reused across runs and processes;
  a file lock makes concurrent processes (pytest-xdist workers) wait for one
  build instead of racing.
* cocotb's stock Verilator runner passes ``--public-flat-rw`` (every signal
  visible to VPI: 7-8x slower simulation, 4x more C++). :class:`LeanVerilator`
  drops it; the harness's ``.vlt`` file grants visibility to the ports and the
  host memory only.
* Starting a simulator costs seconds, so :class:`CocotbExecutor` (the ``"cocotb"``
  :class:`hwgen.program.Executor`) runs a whole
  batch in one process (see :mod:`hwgen.cocotb_bench`); images go in and
  results come back through files in a temporary folder.

Cache location (:func:`default_cache_dir`): ``$HWGEN_CACHE`` if set, else the
user cache folder ``$XDG_CACHE_HOME/hwgen`` (default ``~/.cache/hwgen``); never
the checkout or the installed package.

This module imports Amaranth and cocotb_tools lazily so that importing it stays
cheap; it never imports ``sim`` (imports point down the flow).
"""

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .config import AcceleratorConfig
from .program import Program, RunResult, run_programs, timeouts_for
from .toolchain import ensure_verilator_env
from .errors import HwgenError

__all__ = [
    "BuiltDesign", "CocotbExecutor", "RtlSimError", "build_rtl", "run_images_rtl", "run_programs_rtl",
    "default_cache_dir", "harness_mem_bytes", "LeanVerilator", "BENCH_MODULE", "DEFAULT_TIMEOUT_CYCLES",
]

#: The cocotb test module the simulator imports.
BENCH_MODULE = "hwgen.cocotb_bench"
#: Timeout per image when the caller gives none (the design should halt far sooner).
DEFAULT_TIMEOUT_CYCLES = 2_000_000
#: Bump when the build recipe (flags, bench protocol) changes, so old cache entries are not reused.
_RECIPE = "lean-verilator-2"
#: Extra Verilator arguments: Amaranth's Verilog has width warnings that are fatal by default.
_BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")
_MARKER = "hwgen_build.json"


class RtlSimError(HwgenError, RuntimeError):
    """A Verilator build or simulation failed; the message carries the log's tail."""


@dataclass(frozen=True)
class BuiltDesign:
    """A finished Verilator build of one (configuration, memory size, design) in the cache."""

    cfg: AcceleratorConfig
    mem_bytes: int
    key: str
    build_dir: Path
    #: Wall seconds the build took when it was made (not this call's time if ``cached``).
    build_seconds: float
    #: True if this call found the build in the cache (no Verilator run).
    cached: bool

    @property
    def executable(self) -> Path:
        from .harness import TOP_NAME

        return self.build_dir / TOP_NAME


def _lean_verilator_class() -> type:
    from cocotb_tools.runner import Verilator

    class _LeanVerilator(Verilator):
        """cocotb's Verilator runner without ``--public-flat-rw`` (see the module docstring)."""

        def _build_command(self) -> list:
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

    return _LeanVerilator


def LeanVerilator():  # noqa: N802 - a factory that reads like the class it returns
    """A cocotb_tools ``Verilator`` runner that does not make every signal public.

    A factory so that importing this module does not import cocotb_tools.
    """
    return _lean_verilator_class()()


def default_cache_dir() -> Path:
    """The build cache: ``$HWGEN_CACHE`` if set, else ``$XDG_CACHE_HOME/hwgen`` (an absolute
    ``XDG_CACHE_HOME``, as the XDG base-directory rules say), else ``~/.cache/hwgen``.

    Never a folder of the checkout or of the installed package: one cache per user serves every checkout,
    virtualenv and process (pytest-xdist workers of one run wait for one build under the cache's file lock).
    """
    env = os.environ.get("HWGEN_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).expanduser().is_absolute():
        return Path(xdg).expanduser() / "hwgen"
    home = Path(os.path.expanduser("~"))
    if not home.is_absolute():
        raise RtlSimError("no home folder for the build cache (~/.cache/hwgen): set HWGEN_CACHE or "
                          "XDG_CACHE_HOME")
    return home / ".cache" / "hwgen"


def harness_mem_bytes(cfg: AcceleratorConfig, sizes: Sequence[int]) -> int:
    """The smallest power of two >= every size and >= one host-port word."""
    need = max([cfg.host_port_bytes, *sizes])
    return 1 << (need - 1).bit_length()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _digest(path: Path) -> list:
    """[size, sha256] of a file: what a cache entry records of each artefact, to notice truncation or edits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return [path.stat().st_size, h.hexdigest()]


def _entry_intact(build_dir: Path, marker: Path, artefacts: Sequence[str]) -> dict | None:
    """The marker's contents if every artefact is present with the size and digest recorded at build time."""
    try:
        info = json.loads(marker.read_text())
        recorded = info.get("artefacts", {})
        for rel in artefacts:
            if recorded.get(rel) != _digest(build_dir / rel):
                return None
    except (OSError, ValueError, AttributeError):
        return None
    return info


def _usable_cache(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if not os.access(cache, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
    except OSError as e:
        raise RtlSimError(f"build cache {cache} (set by HWGEN_CACHE, or the default): not a usable folder "
                          f"({e.strerror or e})") from None


def cached_build(cache: Path, prefix: str, parts: Sequence[str], artefacts: Sequence[str],
                 build: Callable[[Path], None], info: dict, marker_name: str = _MARKER
                 ) -> tuple[str, Path, float, bool]:
    """The one build-cache protocol of the Verilator builds (cocotb harness, native harness, injector).

    The key is a hash of ``parts``; the folder ``<cache>/<prefix>-<key>`` is
    complete when it holds the marker file and every file of ``artefacts``
    (paths relative to the folder) with the size and SHA-256 the marker recorded
    when the build finished, so a truncated or altered simulator is rebuilt,
    not run. Otherwise, under a file lock (concurrent processes wait for one
    build), an interrupted folder is removed, ``build(folder)`` runs in a fresh
    one (raising on failure), and the marker is written last with ``info``, the
    artefacts' digests and the build time. Returns (key, folder, build seconds,
    found in the cache).
    """
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    key = h.hexdigest()[:20]
    _usable_cache(cache)
    build_dir = cache / f"{prefix}-{key}"
    with _locked(cache / f"{build_dir.name}.lock"):
        marker = build_dir / marker_name
        found = _entry_intact(build_dir, marker, artefacts) if marker.is_file() else None
        if found is not None:
            return key, build_dir, float(found.get("build_seconds", 0.0)), True
        if build_dir.exists() or build_dir.is_symlink():  # an interrupted or damaged build: start clean
            if build_dir.is_dir() and not build_dir.is_symlink():
                shutil.rmtree(build_dir)
            else:
                build_dir.unlink()
        build_dir.mkdir(parents=True)
        t0 = time.perf_counter()
        build(build_dir)
        secs = time.perf_counter() - t0
        missing = [rel for rel in artefacts if not (build_dir / rel).is_file()]
        if missing:
            raise RtlSimError(f"build in {build_dir} finished without {', '.join(missing)}")
        digests = {rel: _digest(build_dir / rel) for rel in artefacts}
        marker.write_text(json.dumps({"build_seconds": secs, **info, "artefacts": digests,
                                      "python": sys.version.split()[0]}, indent=2))
        return key, build_dir, secs, False


def _tool_versions() -> str:
    from importlib.metadata import version

    return f"verilator={version('verilator')} cocotb={version('cocotb')} amaranth={version('amaranth')}"


def _cocotb_libs_dir() -> str:
    """Where this environment's cocotb keeps its VPI libraries.

    Why part of the cache key: the harness binary links ``libcocotbvpi_verilator.so`` by this absolute
    path, so a build made under another virtualenv (since deleted or moved) would fail to load; with the
    path in the key each environment gets, and keeps, its own build.
    """
    from cocotb_tools import config

    return str(Path(config.libs_dir).resolve())


#: In-process memo: (cfg key, mem_bytes, factory) -> BuiltDesign, so repeated calls skip Verilog generation.
_MEMO: dict[tuple, BuiltDesign] = {}


def build_rtl(cfg: AcceleratorConfig, mem_bytes: int, accel_factory=None, *,
              cache_dir: str | os.PathLike[str] | None = None, verbose: bool = False,
              use_memo: bool = True, variant: str = "",
              vlt_extra: Callable[[str], str] | None = None) -> BuiltDesign:
    """Build (or find in the cache) the Verilator model of the harness for ``cfg``.

    ``accel_factory(cfg)`` constructs the accelerator component (default
    ``hwgen.top.Accelerator``); ``mem_bytes`` is the host memory size (a
    power of two). The Verilog is generated each call in a new process (it is
    part of the cache key: an edited generator gives a new build), but within
    one process a repeated call returns the memo (``use_memo=False`` looks at
    the disk cache as a new process would). ``verbose`` streams the
    Verilator and compiler output instead of writing it to ``build.log``.
    ``vlt_extra(verilog) -> str`` adds Verilator control lines (e.g. more
    visible state for fault injection); ``variant`` names such a build.
    """
    from .harness import TOP_NAME, check_mem_bytes, harness_verilog, vlt_text

    check_mem_bytes(cfg, mem_bytes)
    cache = Path(cache_dir).resolve() if cache_dir is not None else default_cache_dir()
    memo_key = (cfg.to_json(), mem_bytes, accel_factory, str(cache), variant)
    if use_memo and memo_key in _MEMO and (_MEMO[memo_key].build_dir / _MARKER).is_file():
        d = _MEMO[memo_key]
        return BuiltDesign(d.cfg, d.mem_bytes, d.key, d.build_dir, d.build_seconds, True)

    vtext = harness_verilog(cfg, mem_bytes, accel_factory)
    ctrl = vlt_text() + (vlt_extra(vtext) if vlt_extra is not None else "")

    def build(build_dir: Path) -> None:
        vfile, cfile = build_dir / f"{TOP_NAME}.v", build_dir / f"{TOP_NAME}.vlt"
        vfile.write_text(vtext)
        cfile.write_text(ctrl)
        (build_dir / "config.json").write_text(cfg.to_json())
        ensure_verilator_env()
        log = build_dir / "build.log"
        try:
            LeanVerilator().build(
                sources=[cfile, vfile], hdl_toplevel=TOP_NAME, build_dir=build_dir,
                build_args=list(_BUILD_ARGS), log_file=None if verbose else log)
        except (RuntimeError, SystemExit) as e:
            raise RtlSimError(f"Verilator build of '{cfg.name}' (mem {mem_bytes} B) failed in "
                              f"{build_dir}: {e}\n{_tail(log)}") from None

    key, build_dir, secs, cached = cached_build(
        cache, f"{variant + '-' if variant else ''}{cfg.name}-{mem_bytes}",
        (_RECIPE, _tool_versions(), _cocotb_libs_dir(), cfg.to_json(), str(mem_bytes), vtext, ctrl,
         " ".join(_BUILD_ARGS)),
        [TOP_NAME], build,
        {"config": cfg.to_dict(), "mem_bytes": mem_bytes, "tools": _tool_versions()})
    built = BuiltDesign(cfg, mem_bytes, key, build_dir, secs, cached)
    _MEMO[memo_key] = built
    return built


class CocotbExecutor:
    """The ``"cocotb"`` :class:`hwgen.program.Executor`: ``cfg``'s harness on Verilator under cocotb.

    Each :meth:`run_all` is one simulator process. ``mem_bytes``: the harness memory (default: the next power
    of two of the batch's largest image); ``accel_factory(cfg)`` the accelerator component (default
    ``hwgen.top.Accelerator``); ``timeout_cycles`` the default timeout per image; between images the design
    is reset and the memory reloaded (only changed words when ``diff_load``); ``work_dir`` keeps the job files
    and the simulator log (default: a temporary folder, deleted). Results carry the whole harness memory and,
    in ``stats``, words_loaded, load_seconds and readback_seconds.
    """

    name = "cocotb"

    def __init__(self, cfg: AcceleratorConfig, *, mem_bytes: int | None = None, accel_factory=None,
                 timeout_cycles: int = DEFAULT_TIMEOUT_CYCLES, cache_dir: str | os.PathLike[str] | None = None,
                 work_dir: str | os.PathLike[str] | None = None, clock_impl: str = "gpi", reset_cycles: int = 2,
                 diff_load: bool = True, verbose: bool = False):
        self.cfg = cfg
        self.mem_bytes = mem_bytes
        self.accel_factory = accel_factory
        self.timeout_cycles = timeout_cycles
        self.cache_dir = cache_dir
        self.work_dir = work_dir
        self.clock_impl = clock_impl
        self.reset_cycles = reset_cycles
        self.diff_load = diff_load
        self.verbose = verbose

    def run(self, image: np.ndarray) -> RunResult:
        return self.run_all([image])[0]

    def run_all(self, images: Sequence[np.ndarray],
                timeout_cycles: int | Sequence[int] | None = None) -> list[RunResult]:
        """Run raw host-memory images (uint8 arrays) through one simulator process, in order.

        Each image is zero-padded to the harness memory; results come back in the same order with the whole
        harness memory. Raises :class:`RtlSimError` if the simulator fails.
        """
        cfg = self.cfg
        imgs = [np.asarray(im, dtype=np.uint8).reshape(-1) for im in images]
        if not imgs:
            return []
        mb = self.mem_bytes if self.mem_bytes is not None else harness_mem_bytes(cfg, [im.size for im in imgs])
        for n, im in enumerate(imgs):
            if im.size > mb:
                raise ValueError(f"image {n} has {im.size} bytes, more than the {mb}-byte harness memory")
        timeouts = timeouts_for(len(imgs), timeout_cycles, self.timeout_cycles)

        built = build_rtl(cfg, mb, self.accel_factory, cache_dir=self.cache_dir, verbose=self.verbose)
        from .cocotb_bench import JOB_ENV
        from .harness import MEM_INSTANCE, MEM_VAR, TOP_NAME

        ensure_verilator_env()
        tmp = None
        if self.work_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="hwgen_rtl_")
            wd = Path(tmp.name)
        else:
            wd = Path(self.work_dir).resolve()
            wd.mkdir(parents=True, exist_ok=True)
        try:
            items = []
            for n, (im, to) in enumerate(zip(imgs, timeouts)):
                full = np.zeros(mb, dtype=np.uint8)
                full[:im.size] = im
                p = wd / f"image_{n:05d}.npy"
                np.save(p, full)
                res = wd / f"result_{n:05d}.npz"
                res.unlink(missing_ok=True)
                items.append({"path": str(p), "timeout_cycles": int(to), "result": str(res)})
            job = {"mem_bytes": mb, "port_bytes": cfg.host_port_bytes, "mem_path": [MEM_INSTANCE, MEM_VAR],
                   "period_ns": 10, "reset_cycles": self.reset_cycles, "clock_impl": self.clock_impl,
                   "diff_load": self.diff_load, "images": items}
            job_file = wd / "job.json"
            job_file.write_text(json.dumps(job, indent=1))
            log = wd / "sim.log"
            t0 = time.perf_counter()
            failure = None
            try:
                LeanVerilator().test(
                    test_module=BENCH_MODULE, hdl_toplevel=TOP_NAME, hdl_toplevel_lang="verilog",
                    build_dir=built.build_dir, test_dir=wd, results_xml=str(wd / "results.xml"),
                    extra_env={JOB_ENV: str(job_file),
                               "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")},
                    log_file=None if self.verbose else log)
            except (RuntimeError, SystemExit) as e:
                failure = e
            secs = time.perf_counter() - t0
            results = []
            for n, item in enumerate(items):
                rp = Path(item["result"])
                if not rp.is_file():
                    raise RtlSimError(f"simulation of '{cfg.name}' stopped before image {n} finished "
                                      f"({failure or 'no result file'}); log {log}:\n{_tail(log)}")
                with np.load(rp, allow_pickle=False) as z:
                    results.append(RunResult(
                        memory=z["memory"], cycles=int(z["cycles"]), busy_pe=int(z["busy_pe"]),
                        error=bool(z["error"]), timed_out=bool(z["timed_out"]), mem_oob=bool(z["mem_oob"]),
                        clock_cycles=int(z["sim_cycles"]), run_seconds=float(z["run_seconds"]),
                        process_seconds=secs, executor=self.name,
                        stats={"words_loaded": int(z["words_loaded"]), "load_seconds": float(z["load_seconds"]),
                               "readback_seconds": float(z["readback_seconds"])}))
            if failure is not None:
                raise RtlSimError(f"simulation of '{cfg.name}' failed after all images ({failure}); log {log}:\n"
                                  f"{_tail(log)}")
            return results
        finally:
            if tmp is not None:
                tmp.cleanup()


def run_images_rtl(cfg: AcceleratorConfig, images: Sequence[np.ndarray], *,
                   timeout_cycles: int | Sequence[int] | None = None, **kwargs) -> list[RunResult]:
    """Run raw host-memory images through one cocotb simulator process (:meth:`CocotbExecutor.run_all`);
    other keyword arguments go to :class:`CocotbExecutor`."""
    return CocotbExecutor(cfg, **kwargs).run_all(images, timeout_cycles=timeout_cycles)


def run_programs_rtl(cfg: AcceleratorConfig, programs: Sequence[Program], *,
                     timeout_cycles: int | Sequence[int] | None = None, **kwargs) -> list[RunResult]:
    """Run Programs on the RTL under cocotb, all in one simulator process; results in program order.

    :func:`hwgen.program.run_programs` on a :class:`CocotbExecutor`: the harness memory is the next power of
    two of the largest ``mem_size`` (or ``mem_bytes``); each result's ``memory`` is cut back to ``mem_size``
    bytes (same shape as the cycle model's), with ``outside_bytes`` counting non-zero bytes the design left in
    the padding. Other keyword arguments go to :class:`CocotbExecutor`.
    """
    return run_programs(CocotbExecutor(cfg, **kwargs), programs, timeout_cycles=timeout_cycles)
