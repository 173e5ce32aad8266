"""The read and write ports of the design's memories, read off the Verilog, for the RTL injector's
memory-liveness shortcut.

Why: most memory bits a campaign flips are either never read again (the flip is masked whatever
happens) or read only much later (simulating the cycles in between only re-confirms the golden run).
The native harness can decide both from the golden run's access schedule (see ``trace_memories`` in
``cpp/inject_shortcuts.cpp``), provided it knows *every* way the design touches a memory: the words each
read port samples at each clock edge, and the bits each write lane overwrites. This module finds those
ports in Amaranth's Verilog and gives the nets (address, enable) the harness must observe.

Exactness rests on completeness, so the parser accepts a memory only if every occurrence of its name
is one of: its declaration, a constant initial value (``mem[3] = 64'h0;`` inside ``initial``), a read
``reg <= mem[addr];`` (or ``mem[addr [hi:lo]]``), or a lane write ``if (en[k]) mem[addr][hi:lo] <=
data;`` in an ``always @(posedge clk)`` block made only of such lane writes. A memory used any other
way gets no ports, and its faults are simulated as given. Reads are allowed to be over-counted (a read
under a condition counts at every edge: that only makes the shortcut start earlier), writes never are
(an ``if`` nested in another condition is rejected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

__all__ = ["ReadPort", "WriteLane", "MemoryPorts", "memory_ports", "module_bodies", "clean_name", "VERILOG_ID"]

#: a Verilog identifier: escaped (``\\a$1`` up to white space) or plain
VERILOG_ID = r"(?:\\\S+|[A-Za-z_][\w$]*)"
_ID = VERILOG_ID


def clean_name(name: str) -> str:
    """A Verilog identifier without the escape backslash and its terminating space."""
    return name.strip().lstrip("\\").strip()


def module_bodies(vtext: str) -> dict[str, str]:
    """Module name -> its text (after ``module``, up to ``endmodule``)."""
    bodies: dict[str, str] = {}
    for chunk in re.split(r"^module ", vtext, flags=re.M)[1:]:
        bodies[clean_name(chunk.split("(", 1)[0])] = chunk.split("\nendmodule", 1)[0]
    return bodies


@dataclass(frozen=True)
class ReadPort:
    """At every clock edge the port samples word ``addr[hi:lo]`` of state var ``memory``."""

    memory: int
    addr: str
    lo: int
    hi: int


@dataclass(frozen=True)
class WriteLane:
    """At a clock edge with ``en[en_bit]`` set, bits ``[blo, bhi]`` of word ``addr[hi:lo]`` of ``memory``
    are overwritten."""

    memory: int
    addr: str
    lo: int
    hi: int
    en: str
    en_bit: int
    blo: int
    bhi: int


@dataclass(frozen=True)
class MemoryPorts:
    """Every port of the memories the parser could account for completely; ``wires``: the observed nets
    (Verilog path below the top, width), in the order the ports' indices refer to."""

    reads: tuple[ReadPort, ...] = ()
    lanes: tuple[WriteLane, ...] = ()
    wires: tuple[tuple[str, int], ...] = ()

    def wire_index(self, path: str) -> int:
        return [p for p, _ in self.wires].index(path)

    def to_json(self) -> dict:
        return {"reads": [list(vars(r).values()) for r in self.reads],
                "lanes": [list(vars(w).values()) for w in self.lanes],
                "wires": [list(w) for w in self.wires]}

    @classmethod
    def from_json(cls, d: dict) -> "MemoryPorts":
        return cls(tuple(ReadPort(*r) for r in d["reads"]), tuple(WriteLane(*w) for w in d["lanes"]),
                   tuple((str(p), int(w)) for p, w in d["wires"]))


def _decl_widths(body: str) -> dict[str, int]:
    out = {}
    for m in re.finditer(rf"^\s*(?:wire|reg)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?({_ID})\s*;", body, re.M):
        out[clean_name(m.group(3))] = abs(int(m.group(1)) - int(m.group(2))) + 1 if m.group(1) else 1
    return out


def _ports_of(body: str, mem: str, index: int, width: int, depth: int, widths: dict[str, int]
              ) -> tuple[list[ReadPort], list[tuple], list[str]] | None:
    """(reads, lanes with wire names, wire names) of memory ``mem`` in a module body, or None if some use
    of it is not a recognised port."""
    name = re.escape(mem)
    ref = rf"(?:\\{name}\s|(?<![\w$\\]){name}(?![\w$]))"
    idx = rf"\[\s*({_ID})\s*(?:\[(\d+):(\d+)\])?\s*\]"
    decl_re = re.compile(rf"^\s*reg\s+(?:\[\d+:\d+\]\s+)?{ref}\s*\[\d+:\d+\]\s*;\s*$")
    init_re = re.compile(rf"^\s*{ref}\s*\[\d+\]\s*=\s*[\w']+\s*;\s*$")
    read_re = re.compile(rf"^\s*({_ID})\s*<=\s*{ref}\s*{idx}\s*;\s*$")
    write_re = re.compile(rf"^\s*{ref}\s*{idx}\s*(?:\[(\d+):(\d+)\])?\s*<=\s*[^;]*;\s*$")
    if_re = re.compile(rf"^\s*if\s*\(\s*({_ID})\s*(?:\[(\d+)\])?\s*\)\s*$")
    lines = body.split("\n")
    initial: set[int] = set()
    start = None
    for i, line in enumerate(lines):
        if line.startswith("  initial"):
            start = i
        elif start is not None:
            initial.add(i)
            if line == "  end":
                start = None
    reads: list[ReadPort] = []
    lanes: list[tuple] = []
    wires: list[str] = []
    block_start = None
    for i, line in enumerate(lines):
        if line.strip().startswith("always"):
            block_start = i
        if not re.search(ref, line + " "):
            continue
        if decl_re.match(line + " "):
            continue
        if i in initial and init_re.match(line):
            continue
        m = read_re.match(line)
        clocked = block_start is not None and lines[block_start].strip().startswith("always @(posedge clk)")
        if m and clocked:
            addr = clean_name(m.group(2))
            lo = int(m.group(4)) if m.group(3) else 0
            hi = int(m.group(3)) if m.group(3) else widths.get(addr, 0) - 1
            reads.append(ReadPort(index, addr, lo, hi))
            wires.append(addr)
            continue
        m = write_re.match(line)
        cond = if_re.match(lines[i - 1]) if i > 0 else None
        if m and cond and block_start is not None and _flat_lane_block(lines, block_start, if_re, write_re):
            addr, en = clean_name(m.group(1)), clean_name(cond.group(1))
            lo = int(m.group(3)) if m.group(2) else 0
            hi = int(m.group(2)) if m.group(2) else widths.get(addr, 0) - 1
            bhi, blo = (int(m.group(4)), int(m.group(5))) if m.group(4) else (width - 1, 0)
            if cond.group(2) is None and widths.get(en) != 1:
                return None
            lanes.append((index, addr, lo, hi, en, int(cond.group(2) or 0), min(blo, bhi), max(blo, bhi)))
            wires += [addr, en]
            continue
        return None
    if not reads or any(r.hi < r.lo or r.addr not in widths for r in reads) or \
            any(ln[3] < ln[2] or ln[1] not in widths or ln[4] not in widths for ln in lanes):
        return None
    return reads, lanes, wires


def _flat_lane_block(lines: list[str], start: int, if_re, write_re) -> bool:
    """The ``always @(posedge clk) begin`` block at ``start`` holds only ``if (en) mem[...] <= ...;`` pairs."""
    if lines[start].strip() != "always @(posedge clk) begin":
        return False
    i = start + 1
    while i < len(lines) and lines[i].strip() != "end":
        if not (if_re.match(lines[i]) and i + 1 < len(lines) and write_re.match(lines[i + 1])):
            return False
        i += 2
    return i < len(lines)


def memory_ports(vtext: str, top: str, memories: Sequence[tuple[int, str, int, int]]) -> MemoryPorts:
    """The ports of ``memories`` (state var index, Verilog path below the top, width, depth) in Amaranth's
    Verilog whose top module is ``top``; a memory whose uses are not all recognised ports is left out.
    Module naming follows Amaranth: instance path ``a.b`` is module ``top.a.b``."""
    bodies = module_bodies(vtext)
    reads: list[ReadPort] = []
    lanes: list[WriteLane] = []
    wires: dict[str, int] = {}
    for index, path, width, depth in memories:
        inst, _, mem = path.rpartition(".")
        body = bodies.get(f"{top}.{inst}" if inst else top)
        if body is None:
            continue
        widths = _decl_widths(body)
        found = _ports_of(body, mem, index, width, depth, widths)
        if found is None:
            continue
        prefix = f"{inst}." if inst else ""
        for r in found[0]:
            reads.append(ReadPort(r.memory, prefix + r.addr, r.lo, r.hi))
        for (m, addr, lo, hi, en, bit, blo, bhi) in found[1]:
            lanes.append(WriteLane(m, prefix + addr, lo, hi, prefix + en, bit, blo, bhi))
        for w in found[2]:
            wires.setdefault(prefix + w, widths[w])
    return MemoryPorts(tuple(reads), tuple(lanes), tuple(wires.items()))
