"""The instruction set: one table of fields, shared by the assembler, the
disassembler, the cycle model and the RTL decoder.

Every instruction is 128 bits, stored little-endian in host memory (16 bytes).
Bits [3:0] hold the opcode; each opcode's fields follow from bit 4 upwards in
the order of :data:`LAYOUT`. The RTL decoder slices the instruction register
with the offsets computed here, so the encoding exists in exactly one place.

Semantics (timing is in :mod:`sim.timing`):

``halt``      stop; the accelerator raises ``done``. The all-zero word is halt.
``load``      host memory -> scratchpad ``target`` (a, w or q). For word w in
              [0, count) and lane l in [0, lanes): scratchpad[spad_addr + w]
              lane (lane_off + l) <- host byte at base + w*word_stride +
              l*lane_stride (sign-extended). Lanes outside the range keep their
              value. With ``zero`` set, host memory is not read and the lanes
              are written with the fill byte ``base[7:0]`` (the padding of a
              convolution: 0, or the input's zero point).
              Target q is the per-column quantization table: word c is column
              c's entry (``cols`` entries), its lanes are the entry's
              QTABLE_BYTES bytes (little-endian int32 bias, int32 multiplier,
              shift in byte 8), stored raw.
              Target w4 (configurations with ``packed_weights``) writes the W
              scratchpad from packed 4-bit weights: lane l's element is the
              nibble l of the word's bytes (low nibble first: host byte
              base + w*word_stride + l//2), sign-extended; the lanes must be
              contiguous (lane_stride 1) and zero is not allowed, and a word
              reads ceil(lanes/2) host bytes (:func:`load_word_bytes`).
``compute``   one tile matmul into the accumulator buffer.
              os: A words a_addr..+depth (``rows`` lanes = rows of the tile),
              W words w_addr..+depth (cols lanes) -> ``rows`` output rows at
              o_addr.. (rows <= array rows).
              ws: W words w_addr..+depth are the stationary weights (depth <=
              array rows), A words a_addr..+rows are streamed -> ``rows``
              output rows at o_addr..
              ``accumulate`` adds to the buffer, otherwise overwrites it.
``store``     accumulator rows o_addr..+rows, lanes 0..cols -> requantize
              (see :func:`requantize`) -> host byte at base + r*row_stride +
              c*col_stride. With ``qtable`` set, column c adds the table's
              bias (wrapping at the accumulator width) and uses its multiplier
              and shift instead of the config instruction's (per-channel
              quantization); zero point and clamp come from config.
``config``    set the requantization parameters used by later stores.
``fence``     wait for all earlier instructions (the controller is in-order,
              so this costs its fetch and one cycle).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .config import INSTR_BITS, AcceleratorConfig
from .dataflow import STATIONARY, Dataflow
from .errors import HwgenError

__all__ = [
    "Opcode", "LoadTarget", "Field", "LAYOUT", "OPCODE_BITS", "INSTR_BYTES", "Instruction", "IsaError",
    "encode", "decode", "assemble", "disassemble", "format_instruction", "parse_instruction",
    "parse_program_text", "format_program_text", "check_instruction", "field_offsets", "requantize",
    "load_word_bytes", "loads_w", "halt", "load", "compute", "store", "config", "fence", "QTABLE_BYTES", "qtable_entry",
]

OPCODE_BITS = 4
INSTR_BYTES = INSTR_BITS // 8
#: Bytes of one quantization-table entry: int32 bias, int32 multiplier, shift.
QTABLE_BYTES = 9


class IsaError(HwgenError, ValueError):
    """An instruction that cannot be encoded or executed; the message names it and the field."""


class LoadTarget(enum.IntEnum):
    """What a load writes (its ``target`` field): the A scratchpad, the W scratchpad, or the per-column
    quantization table. The text form's names are the members' names in lower case."""

    A = 0
    W = 1
    Q = 2
    #: the W scratchpad from packed 4-bit weights (two per host byte), on configurations built for it
    W4 = 3


def load_word_bytes(target: int, lanes: int) -> int:
    """Host bytes one word of a gathering load with contiguous lanes reads: ``lanes``, or half of them
    rounded up for packed 4-bit weights (:attr:`LoadTarget.W4`). The one home of that rule: the timing,
    footprints, the cycle model and the RTL all ask here."""
    return (lanes + 1) // 2 if target == LoadTarget.W4 else lanes


def loads_w(target: int) -> bool:
    """Whether a load with this target writes the W scratchpad (plain or packed weights)."""
    return target in (LoadTarget.W, LoadTarget.W4)


class Opcode(enum.IntEnum):
    HALT = 0
    LOAD = 1
    COMPUTE = 2
    STORE = 3
    CONFIG = 4
    FENCE = 5


@dataclass(frozen=True)
class Field:
    name: str
    width: int
    signed: bool = False
    #: Symbolic names for the values of a one-bit field, for the text form.
    names: tuple[str, ...] = ()

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1


#: The encoding. Fields are packed from bit OPCODE_BITS upwards in this order.
LAYOUT: dict[Opcode, tuple[Field, ...]] = {
    Opcode.HALT: (),
    Opcode.LOAD: (
        Field("target", 2, names=tuple(t.name.lower() for t in LoadTarget)),
        Field("zero", 1),
        Field("spad_addr", 16),
        Field("count", 16),
        Field("lane_off", 8),
        Field("lanes", 9),
        Field("base", 32),
        Field("word_stride", 20, signed=True),
        Field("lane_stride", 20, signed=True),
    ),
    Opcode.COMPUTE: (
        Field("dataflow", 1, names=tuple(d.value for d in STATIONARY)),
        Field("accumulate", 1),
        Field("a_addr", 16),
        Field("w_addr", 16),
        Field("o_addr", 16),
        Field("rows", 16),
        Field("depth", 16),
    ),
    Opcode.STORE: (
        Field("relu", 1),
        Field("qtable", 1),
        Field("o_addr", 16),
        Field("rows", 16),
        Field("cols", 9),
        Field("base", 32),
        Field("row_stride", 20, signed=True),
        Field("col_stride", 20, signed=True),
    ),
    Opcode.CONFIG: (
        Field("multiplier", 32, signed=True),
        Field("shift", 6),
        Field("zero_point", 16, signed=True),
        Field("clamp_lo", 16, signed=True),
        Field("clamp_hi", 16, signed=True),
    ),
    Opcode.FENCE: (),
}


def field_offsets(op: Opcode) -> dict[str, tuple[int, Field]]:
    """Bit offset of each field of ``op`` within the 128-bit word."""
    out: dict[str, tuple[int, Field]] = {}
    pos = OPCODE_BITS
    for f in LAYOUT[op]:
        out[f.name] = (pos, f)
        pos += f.width
    assert pos <= INSTR_BITS, op
    return out


@dataclass(frozen=True)
class Instruction:
    op: Opcode
    args: Mapping[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> int:
        try:
            return self.args[name]  # type: ignore[index]
        except KeyError:
            raise AttributeError(f"{self.op.name.lower()} has no field '{name}'") from None

    def __str__(self) -> str:
        return format_instruction(self)


def _make(op: Opcode, kw: dict[str, int]) -> Instruction:
    fields = {f.name: f for f in LAYOUT[op]}
    unknown = set(kw) - set(fields)
    if unknown:
        raise IsaError(f"{op.name.lower()}: unknown field(s) {', '.join(sorted(unknown))}")
    args = {}
    for name, f in fields.items():
        v = kw.get(name, 0)
        if f.names and isinstance(v, str):
            if v not in f.names:
                raise IsaError(f"{op.name.lower()}: field '{name}' = {v!r}: must be one of {', '.join(f.names)}")
            v = f.names.index(v)
        if not isinstance(v, int):
            raise IsaError(f"{op.name.lower()}: field '{name}' = {str(v)[:40]!r}: must be an integer"
                           + (f" or one of {', '.join(f.names)}" if f.names else "")
                           + (f" in [{f.lo}, {f.hi}]" if not f.names else ""))
        if f.names and not 0 <= v < len(f.names):
            raise IsaError(f"{op.name.lower()}: field '{name}' = {v}: must be one of {', '.join(f.names)}")
        if not f.lo <= v <= f.hi:
            raise IsaError(f"{op.name.lower()}: field '{name}' = {v} out of range [{f.lo}, {f.hi}] ({f.width}-bit"
                           f"{' signed' if f.signed else ''})")
        args[name] = v
    return Instruction(op, args)


def halt() -> Instruction:
    return _make(Opcode.HALT, {})


def fence() -> Instruction:
    return _make(Opcode.FENCE, {})


def load(**kw: int) -> Instruction:
    return _make(Opcode.LOAD, kw)


def compute(**kw: int) -> Instruction:
    return _make(Opcode.COMPUTE, kw)


def store(**kw: int) -> Instruction:
    return _make(Opcode.STORE, kw)


def config(**kw: int) -> Instruction:
    return _make(Opcode.CONFIG, kw)


# ----------------------------------------------------------------- binary form
def encode(instr: Instruction) -> int:
    word = int(instr.op)
    for name, (off, f) in field_offsets(instr.op).items():
        v = instr.args[name]
        word |= (v & ((1 << f.width) - 1)) << off
    return word


def decode(word: int, where: str = "instruction") -> Instruction:
    opv = word & ((1 << OPCODE_BITS) - 1)
    try:
        op = Opcode(opv)
    except ValueError:
        raise IsaError(f"{where}: illegal opcode {opv}") from None
    args = {}
    for name, (off, f) in field_offsets(op).items():
        v = (word >> off) & ((1 << f.width) - 1)
        if f.signed and v >> (f.width - 1):
            v -= 1 << f.width
        args[name] = v
    return Instruction(op, args)


def assemble(instrs: Iterable[Instruction]) -> bytes:
    return b"".join(encode(i).to_bytes(INSTR_BYTES, "little") for i in instrs)


def disassemble(data: bytes, stop_at_halt: bool = True) -> list[Instruction]:
    if len(data) % INSTR_BYTES:
        raise IsaError(f"program of {len(data)} bytes is not a whole number of {INSTR_BYTES}-byte instructions")
    out = []
    for i in range(0, len(data), INSTR_BYTES):
        ins = decode(int.from_bytes(data[i:i + INSTR_BYTES], "little"), where=f"instruction {i // INSTR_BYTES}")
        out.append(ins)
        if stop_at_halt and ins.op == Opcode.HALT:
            break
    return out


# ------------------------------------------------------------------- text form
def format_instruction(instr: Instruction) -> str:
    parts = [instr.op.name.lower()]
    for f in LAYOUT[instr.op]:
        v = instr.args[f.name]
        parts.append(f"{f.name}={f.names[v] if f.names and v < len(f.names) else v}")
    return " ".join(parts)


def parse_instruction(line: str, where: str = "line") -> Instruction:
    toks = line.split()
    try:
        op = Opcode[toks[0].upper()]
    except (KeyError, IndexError):
        raise IsaError(f"{where}: unknown mnemonic {toks[0] if toks else ''!r}") from None
    kw: dict[str, int | str] = {}
    for t in toks[1:]:
        m = re.fullmatch(r"([A-Za-z_]\w*)=(-?[A-Za-z0-9_]+)", t, flags=re.ASCII)
        if not m:
            raise IsaError(f"{where}: cannot parse {t!r} (expected name=value)")
        k, v = m.groups()
        try:
            kw[k] = int(v, 0)
        except ValueError:
            kw[k] = v
    try:
        return _make(op, kw)  # type: ignore[arg-type]
    except IsaError as e:
        raise IsaError(f"{where}: {e}") from None


def format_program_text(instrs: Iterable[Instruction]) -> str:
    return "".join(format_instruction(i) + "\n" for i in instrs)


def parse_program_text(text: str, source: str = "program") -> list[Instruction]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(parse_instruction(line, where=f"{source}:{n}"))
    return out


# ------------------------------------------------------- checks against a config
def check_instruction(instr: Instruction, cfg: AcceleratorConfig, where: str = "instruction") -> None:
    """Raise IsaError if ``instr`` cannot run on ``cfg`` (names the field and the limit)."""
    a = instr.args
    name = instr.op.name.lower()

    def need(cond: bool, fld: str, msg: str) -> None:
        if not cond:
            raise IsaError(f"{where} ({name}): field '{fld}' = {a[fld]}: {msg}")

    if instr.op == Opcode.LOAD:
        need(a["target"] in set(LoadTarget), "target", f"must be one of {', '.join(t.name.lower() for t in LoadTarget)}")
        if a["target"] == LoadTarget.W4:
            need(cfg.packed_weights, "target", "packed 4-bit weights (w4) need a configuration with packed_weights")
            need(not a["zero"], "zero", "a packed-weight (w4) load reads host memory: zero must be 0")
            need(a["lane_stride"] == 1, "lane_stride",
                 "a packed-weight (w4) load's lanes are contiguous nibbles: lane_stride must be 1")
        lanes = (cfg.rows, cfg.cols, QTABLE_BYTES, cfg.cols)[a["target"]]
        depth = (cfg.a_spad_depth, cfg.w_spad_depth, cfg.cols, cfg.w_spad_depth)[a["target"]]
        need(a["count"] >= 1, "count", "must be at least 1")
        need(a["spad_addr"] + a["count"] <= depth, "count",
             f"spad_addr {a['spad_addr']} + count exceeds the {depth}-word scratchpad")
        need(a["lanes"] >= 1, "lanes", "must be at least 1")
        need(a["lane_off"] + a["lanes"] <= lanes, "lanes", f"lane_off {a['lane_off']} + lanes exceeds the {lanes} lanes")
    elif instr.op == Opcode.COMPUTE:
        try:
            df = Dataflow.from_code(a["dataflow"])
        except ValueError as e:
            raise IsaError(f"{where} ({name}): field 'dataflow' = {a['dataflow']!r}: {e}") from None
        need(df in cfg.dataflow.modes, "dataflow",
             f"this array's dataflow is '{cfg.dataflow}'")
        need(a["rows"] >= 1 and a["depth"] >= 1, "rows" if a["rows"] < 1 else "depth", "must be at least 1")
        if df is Dataflow.OS:
            need(a["rows"] <= cfg.rows, "rows", f"an output-stationary tile has at most {cfg.rows} rows")
            need(a["a_addr"] + a["depth"] <= cfg.a_spad_depth, "depth", f"A words exceed the {cfg.a_spad_depth}-word scratchpad")
            need(a["w_addr"] + a["depth"] <= cfg.w_spad_depth, "depth", f"W words exceed the {cfg.w_spad_depth}-word scratchpad")
        else:
            need(a["depth"] <= cfg.rows, "depth", f"a weight-stationary tile has at most {cfg.rows} weight rows")
            need(a["a_addr"] + a["rows"] <= cfg.a_spad_depth, "rows", f"A words exceed the {cfg.a_spad_depth}-word scratchpad")
            need(a["w_addr"] + a["depth"] <= cfg.w_spad_depth, "depth", f"W words exceed the {cfg.w_spad_depth}-word scratchpad")
        need(a["o_addr"] + a["rows"] <= cfg.acc_depth, "rows", f"output rows exceed the {cfg.acc_depth}-row accumulator buffer")
    elif instr.op == Opcode.STORE:
        need(a["rows"] >= 1, "rows", "must be at least 1")
        need(a["o_addr"] + a["rows"] <= cfg.acc_depth, "rows", f"rows exceed the {cfg.acc_depth}-row accumulator buffer")
        need(1 <= a["cols"] <= cfg.cols, "cols", f"must be between 1 and {cfg.cols}")
    elif instr.op == Opcode.CONFIG:
        lo, hi = -(1 << (cfg.output_width - 1)), (1 << cfg.output_width) - 1
        need(a["shift"] <= 62, "shift", "must be at most 62")
        need(lo <= a["clamp_lo"] <= hi, "clamp_lo", f"must be within [{lo}, {hi}] for {cfg.output_width}-bit outputs")
        need(lo <= a["clamp_hi"] <= hi, "clamp_hi", f"must be within [{lo}, {hi}] for {cfg.output_width}-bit outputs")
        need(a["clamp_lo"] <= a["clamp_hi"], "clamp_lo", f"must not exceed clamp_hi {a['clamp_hi']}")


def requantize(acc: "int | object", multiplier: "int | object", shift: "int | object", zero_point: int,
               clamp_lo: int, clamp_hi: int, relu: bool) -> "int | object":
    """The requantization rule, in one place (ints or int64 numpy arrays; every parameter
    may be an array that broadcasts against ``acc``: per column, or per element).

    y = (acc * multiplier + round) >> shift, with round = 2**(shift-1) when
    shift > 0 (round half up, i.e. towards +infinity; >> is an arithmetic shift,
    i.e. floor division), then y += zero_point, then y is clamped to
    [max(clamp_lo, zero_point) if relu else clamp_lo, clamp_hi]. The stored byte
    is y's low 8 bits: y lies in the clamp range, so for narrower outputs this is
    the value sign-extended (or, for an unsigned range, zero-extended) to a byte.
    """
    import numpy as np

    x = np.asarray(acc, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    sh = np.asarray(shift, dtype=np.int64)
    rnd = np.where(sh > 0, np.left_shift(np.int64(1), np.maximum(sh - 1, 0)), 0)
    x = (x + rnd) >> sh
    x = x + np.asarray(zero_point, dtype=np.int64)
    lo = np.maximum(clamp_lo, zero_point) if relu else clamp_lo
    return np.minimum(np.maximum(x, lo), clamp_hi)  # max, then min: the RTL order when lo > clamp_hi


def qtable_entry(bias: int, multiplier: int, shift: int) -> bytes:
    """The QTABLE_BYTES bytes of one quantization-table entry, as host memory holds them."""
    if not (-(1 << 31) <= bias < (1 << 31) and -(1 << 31) <= multiplier < (1 << 31) and 0 <= shift <= 62):
        raise IsaError(f"qtable entry out of range: bias {bias}, multiplier {multiplier}, shift {shift}")
    return (bias & 0xFFFFFFFF).to_bytes(4, "little") + (multiplier & 0xFFFFFFFF).to_bytes(4, "little") + bytes([shift])
