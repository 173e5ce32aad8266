"""Program: instructions plus the host-memory image they run against.

The same bytes are loaded by the cocotb testbench into the harness memory and
by the cycle model into its memory array: instructions start at host address 0
(the controller fetches from there), data tensors follow, each aligned to the
host-port width.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import AcceleratorConfig
from .fileio import atomic_write
from .isa import Instruction, IsaError, Opcode, assemble, check_instruction, disassemble
from .errors import HwgenError

__all__ = ["Region", "Program", "ProgramError", "HOST_BYTES_PER_INSTRUCTION"]

#: Host bytes one instruction costs while a program is built and run: the lowering's ``Instruction`` (an
#: args dict), the cycle model's decoded copy and its trace entry. Measured about 1 KB per instruction at the
#: peak of a small CNN run (420-500 B while only building); twice that, so size estimates stay upper bounds.
HOST_BYTES_PER_INSTRUCTION = 2048


class ProgramError(HwgenError, ValueError):
    """A malformed program or program file; the message names the part."""


@dataclass(frozen=True)
class Region:
    """A tensor in host memory: row-major int8 (or uint8) of ``shape`` at byte ``addr``."""

    addr: int
    shape: tuple[int, ...]
    dtype: str = "int8"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def read(self, memory: np.ndarray) -> np.ndarray:
        raw = np.asarray(memory[self.addr:self.addr + self.nbytes], dtype=np.uint8)
        return raw.view(np.dtype(self.dtype)).reshape(self.shape).copy()


@dataclass
class Program:
    """Instructions, initial data, and the named output regions to check."""

    instructions: list[Instruction]
    inputs: dict[str, tuple[Region, np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, Region] = field(default_factory=dict)
    mem_size: int = 0
    #: Free-form description (workload parameters), kept for reports.
    meta: dict = field(default_factory=dict)

    @property
    def code(self) -> bytes:
        return assemble(self.instructions)

    def image(self) -> np.ndarray:
        """The initial host memory, uint8[mem_size]."""
        mem = np.zeros(self.mem_size, dtype=np.uint8)
        code = self.code
        if len(code) > self.mem_size:
            raise ProgramError(f"program of {len(code)} bytes does not fit a {self.mem_size}-byte memory")
        mem[:len(code)] = np.frombuffer(code, dtype=np.uint8)
        for name, (reg, arr) in self.inputs.items():
            data = np.ascontiguousarray(arr.astype(reg.dtype)).view(np.uint8).reshape(-1)
            if reg.addr < len(code) or reg.addr + data.size > self.mem_size:
                raise ProgramError(f"input '{name}' at {reg.addr}..{reg.addr + data.size} overlaps the code or "
                                   f"leaves the {self.mem_size}-byte memory")
            mem[reg.addr:reg.addr + data.size] = data
        return mem

    def check(self, cfg: AcceleratorConfig) -> None:
        """Raise IsaError/ProgramError if any instruction cannot run on ``cfg``."""
        if not self.instructions or self.instructions[-1].op != Opcode.HALT:
            raise ProgramError("program must end with halt")
        for n, ins in enumerate(self.instructions):
            check_instruction(ins, cfg, where=f"instruction {n}")
        if self.mem_size % cfg.host_port_bytes:
            raise ProgramError(f"mem_size {self.mem_size} is not a multiple of the {cfg.host_port_bytes}-byte port")

    # ------------------------------------------------------------ file format
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write an .npz (code bytes, inputs, output regions); atomic."""
        arrays: dict[str, np.ndarray] = {"code": np.frombuffer(self.code, dtype=np.uint8)}
        desc = {"mem_size": self.mem_size, "meta": self.meta, "inputs": {}, "outputs": {}}
        for name, (reg, arr) in self.inputs.items():
            arrays[f"in_{name}"] = np.asarray(arr)
            desc["inputs"][name] = {"addr": reg.addr, "shape": list(reg.shape), "dtype": reg.dtype}
        for name, reg in self.outputs.items():
            desc["outputs"][name] = {"addr": reg.addr, "shape": list(reg.shape), "dtype": reg.dtype}
        arrays["desc"] = np.frombuffer(json.dumps(desc).encode(), dtype=np.uint8)
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Program":
        p = Path(path)
        try:
            with open(p, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ProgramError(f"{p}: cannot read ({e.strerror})") from None
        if magic != b"PK\x03\x04":
            raise ProgramError(f"{p}: not a hwgen program file (not an .npz archive)")
        try:
            with np.load(p, allow_pickle=False) as z:
                code = bytes(z["code"].astype(np.uint8))
                desc = json.loads(bytes(z["desc"].astype(np.uint8)).decode())
                if not isinstance(desc, dict):
                    raise TypeError(f"description is a {type(desc).__name__}, not an object")
                inputs = {name: (Region(int(d["addr"]), tuple(int(x) for x in d["shape"]), str(d["dtype"])),
                                 z[f"in_{name}"])
                          for name, d in desc["inputs"].items()}
            outputs = {name: Region(int(d["addr"]), tuple(int(x) for x in d["shape"]), str(d["dtype"]))
                       for name, d in desc["outputs"].items()}
            mem_size = int(desc["mem_size"])
            meta = desc.get("meta", {})
            instrs = disassemble(code)
        except IsaError as e:
            raise ProgramError(f"{p}: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError) as e:
            raise ProgramError(f"{p}: not a hwgen program file ({type(e).__name__}: {e})") from None
        return cls(instrs, inputs, outputs, mem_size, meta)
