"""Fault injection on the RTL: Verilator through a generated native C++ harness, with a cocotb cross-check.

What runs where
---------------

* The accelerator's Verilog (:func:`hwgen.generate.verilog_text`) is parsed for
  its state (:func:`rtl_state`): every register assigned in an ``always
  @(posedge clk)`` block of every module instance and every memory. Amaranth's
  Verilog does not always keep the Amaranth name on the flip-flop (a PE's
  ``acc`` is the flop ``acc_out``, the last skew register of a row becomes
  ``a_in$101``, a memory's read-data register is ``_0_``); the plain
  ``assign name = flop;`` lines and the ``flop <= mem[addr];`` read-port pattern
  give every flop the site names of :mod:`fault_injection.sites` as aliases
  (``array.pe_r0_c1.acc``, ``array.skew_a_r2_1``, ``a_spad.rd_data``,
  ``cycle_counter``, ``ctrl_state_state``...). One naming scheme serves both
  sides: sites name the state, this table maps each name to a Verilog path.
* A Verilator control file (``.vlt``) marks exactly those registers and
  memories ``public_flat_rw`` (not ``--public-flat-rw`` for the whole design);
  the C++ finds each one at run time through Verilator's scope table
  (``scopeFind("TOP.hwgen_accel.array")->varFind(...)``: data pointer and bytes
  per word), so the C++ source does not depend on the site list and one build
  per configuration serves every campaign. Measured cost of the visibility
  (``benchmarks/fi_speed.py``): 1.29x slower than the plain native harness at
  8x8, 1.21x at 16x16 (global ``--public-flat-rw`` costs 7-8x).
* The C++ main (:data:`INJECT_MAIN`, on :data:`hwgen.native.SIM_CORE`: the same
  host memory and reset/start protocol as :func:`hwgen.native.run_images_native`)
  has two modes:

  - ``golden``: runs the program once and records, for every cycle, a 64-bit
    fingerprint of the whole state (every register and memory of the design,
    the host memory, the memory's read-data register and out-of-range flag),
    plus the final memory and the final design state;
  - ``inject``: ``jobs`` worker processes, forked once, each take every
    ``jobs``-th fault in cycle order and replay the golden run; at a fault's
    cycle a worker checks its state against the golden fingerprint (which also
    checks the previous restore), saves a snapshot of the simulator (the
    Verilated root object, the host memory: a few memcpys, ``Snapshot`` in
    :data:`hwgen.native.SIM_CORE`), applies the fault, runs on, and restores
    the snapshot. (It used to ``fork()`` a child per fault: 0.4 ms of page
    faults each.) A faulty run compares its state fingerprint with the golden
    one at the same cycle (first at the cycle after the fault's window, then at
    doubling gaps up to ``check_gap``) and stops as soon as they are equal:
    equal state means an identical future, so the fault is masked (early stop).
    Otherwise it runs to ``done``/``error`` or the timeout. Results go to a
    shared memory page.

Shortcuts of early stop, each exact (same outcome as the full run; all off with
``early_stop=False``, which keeps full runs the reference) and each checked
fault by fault against full runs (``tests/test_fi_rtl.py``,
``benchmarks/fi_speed.py``). A pre-pass of the golden run records what they need.

* Memory liveness (:mod:`fault_injection.rtl_memports`: every read port and
  write lane of every memory, read off the Verilog; a memory used any other
  way gets none). A flip (seu, mbu) of a memory word held from cycle c changes
  nothing else until a port reads the word, and the lanes written meanwhile
  hold golden values again: with no read before the halt, or every flipped bit
  overwritten first, it is masked without simulation (detail ``not read
  again``); otherwise it is the same flip of the remaining bits at the read's
  cycle, simulated from there. Stuck-at faults persist: no shortcut. During a
  run, when the registers and host memory equal golden's but the memories do
  not, the same argument over every differing lane stops it as masked.
* Early SDC stop (:mod:`fault_injection.rtl_control`: the input cone of the
  outcome outputs, addresses, enables, ``done``, ``error``, computed by yosys).
  Once a run has stored a wrong value at golden's last store to an output
  byte, with golden's store commands all along, and its control state equals
  golden's, its future control is golden's: it is an SDC (detail ``output``)
  ending at the golden halt.
* Clock edges skip Verilator's input-combinational region when no data input
  changed (``Sim::eval_clock``; the same golden fingerprints cycle for cycle).

Fault semantics (:mod:`fault_injection.faults`): cycle c counts like the
hardware cycle counter, 0 = the first cycle after ``start`` (the state after
the clock edge that samples ``start``). A fault at cycle c changes the state
held during cycle c: it is applied after the edge that ends cycle c-1 and the
model is re-evaluated, so the combinational logic (next-state, outputs) of
cycle c sees it. ``seu`` flips one bit once, ``mbu`` flips ``nbits`` adjacent
bits of one word, ``stuck0``/``stuck1`` force ``nbits`` bits (default 1) to 0/1
at every cycle of ``[cycle, cycle + duration)``.

Speed (``benchmarks/fi_speed.py``; 2-core machine shared with other work, 8x8
'both' decoupled, 64x64x64 GEMM of 4,459 cycles, 2,000 uniform single-bit
flips, 2 jobs): 3,460 injections/s with early stop at load average 1.3;
1,660-1,910/s while other work kept the load at 2.6-3.8 (a yosys synthesis
alone takes one of the two cores); 250-530/s with full runs; the same outcome
for 2,000 of 2,000 faults, and for 2,000 of 2,000 mixing seu, mbu, stuck0/1
(1,830-1,890/s). 10,000 faults through one injector in 5.6-6.0 s including its
setup (1,650-1,770/s); a 10,000-fault ``run_campaign`` with ``jobs=2`` in
6.6-7.1 s (1,400-1,500/s overall). Before: 120-585/s. CPU per injection: ~0.5
ms for 289 simulated cycles on average, 80% of it the simulation itself
(Verilator's clocked region); 60% of the cycles are SDC runs waiting for their
first final wrong store, 20% accumulator flips that propagate before they
re-converge. (The largest fingerprint gap, ``check_gap``, barely matters: 64
or 8 give 289 or 286 cycles.)

Outcomes (decided here, documented for the reports):

* ``due``: the design raised its error flag (detail ``error``), did not halt
  within the timeout (``timeout``; default 2 x golden cycles + 1000), or
  accessed host memory outside the memory (``mem_oob``: a bus error in a real
  system; never seen in a golden run);
* ``sdc``: the design halted and the program's output region(s) differ from
  the golden run's (detail ``output``);
* ``masked``: otherwise. The detail says how: ``state re-converged`` (early
  stop), ``not read again`` (memory liveness), ``after the end`` (fault cycle >= golden cycles), ``same output``,
  ``same output, other memory differs`` (the output is right but some other
  host-memory byte differs, e.g. an input overwritten), ``same output, late``
  / ``early`` (halted at another cycle).

The output region is what the model injector compares too
(:mod:`fault_injection.model_injector`), so RTL and model outcomes are
comparable structure by structure.

Cross-check: :func:`cocotb_crosscheck` runs a few of the same faults through
the cocotb harness (:mod:`hwgen.harness` top, host memory in Verilog), writing
``.value`` of the visible register at the fault's cycle (a deposit), and
returns both outcome lists: same fault, same outcome.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.native import cpp_source
from hwgen.program import Program

from .faults import FAULT_MODELS, OUTCOMES, Fault, InjectionResult, Site
from .rtl_control import ControlSplit, control_split, outcome_outputs
from .rtl_memports import VERILOG_ID, MemoryPorts, clean_name, memory_ports, module_bodies
from .sites import model_sites, read_port_suffix

__all__ = ["RtlInjector", "RtlGolden", "StateVar", "RtlState", "rtl_state", "parse_verilog_state", "state_vlt",
           "make_rtl_injector", "cocotb_crosscheck", "INJECT_MAIN", "DETAILS", "random_state_faults"]

#: The C++ result codes (index = code, the enum in cpp/inject_state.cpp): (detail string, outcome). The
#: C++ decides the code (``decide_outcome``, and the shortcuts: early stop, after the end, not read again);
#: this table is the one place a code becomes an outcome.
DETAIL_OUTCOMES = (("state re-converged", "masked"), ("same output", "masked"),
                   ("same output, other memory differs", "masked"), ("output", "sdc"), ("error", "due"),
                   ("timeout", "due"), ("mem_oob", "due"), ("after the end", "masked"),
                   ("same output, late", "masked"), ("same output, early", "masked"),
                   ("not read again", "masked"),
                   # a design with safety mechanisms (its status counters at the end, hwgen.safety)
                   ("detected by a safety mechanism", "detected"), ("corrected by a safety mechanism", "corrected"))
#: Detail strings of the C++ result codes (index = code).
DETAILS = tuple(d for d, _ in DETAIL_OUTCOMES)
_DETAIL_OUTCOME = tuple(o for _, o in DETAIL_OUTCOMES)
_MODEL_CODE = {"seu": 0, "mbu": 1, "stuck0": 2, "stuck1": 3}


# ----------------------------------------------------------------------------- the design's state
@dataclass(frozen=True)
class StateVar:
    """One register or memory of the Verilog: ``path`` is the Verilog path below the top
    (instance names and the Verilog variable name, e.g. ``array.a_in$101``)."""

    path: str
    width: int
    depth: int = 1
    kind: str = "ff"
    #: site names (Amaranth dotted paths) that denote this state element
    aliases: tuple[str, ...] = ()

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass
class RtlState:
    """Every state element of one configuration's Verilog and the site-name -> element map."""

    vars: list[StateVar]
    by_name: dict[str, int] = field(default_factory=dict)
    #: the memories' read ports and write lanes (:mod:`fault_injection.rtl_memports`), for the
    #: memory-liveness shortcut; empty when not parsed
    ports: MemoryPorts = field(default_factory=MemoryPorts)
    #: the control state (:mod:`fault_injection.rtl_control`), for the early SDC stop; None: no split
    control: ControlSplit | None = None

    def index(self, name: str) -> int:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no RTL state element named {name!r} (known: {len(self.by_name)} names, "
                           f"e.g. {', '.join(sorted(self.by_name)[:6])}...)") from None

    def var(self, name: str) -> StateVar:
        return self.vars[self.index(name)]

    def sites(self) -> list[Site]:
        """One :class:`Site` per state element, named by its first alias (the Amaranth name)."""
        return sorted((Site(v.aliases[0] if v.aliases else v.path, v.width, v.depth, v.kind) for v in self.vars),
                      key=lambda s: s.name)

    @property
    def total_bits(self) -> int:
        return sum(v.bits for v in self.vars)


_ID = VERILOG_ID
_clean = clean_name


def parse_verilog_state(vtext: str, top: str, read_ports: Mapping[str, Sequence[str]] | None = None,
                        known: frozenset[str] = frozenset()) -> RtlState:
    """The state of Amaranth-generated Verilog whose top module is ``top`` (see the module docstring).

    ``read_ports``: for a memory with several read ports, the names of their data signals in port order
    (:func:`read_port_data`); the read register whose data wire carries the k-th name is the site
    ``<memory>`` + ``read_port_suffix(k)``. A memory with one read port needs none."""
    read_ports = read_ports or {}
    bodies = module_bodies(vtext)
    if top not in bodies:
        raise ValueError(f"no module '{top}' in the Verilog")
    # instance paths: module -> (parent module, instance name)
    inst_re = re.compile(rf"^\s+({_ID})\s+({_ID})\s*\(", re.M)
    parent: dict[str, tuple[str, str]] = {}
    for mname, body in bodies.items():
        for m in inst_re.finditer(body):
            sub = _clean(m.group(1))
            if sub in bodies and sub != mname:
                parent[sub] = (mname, _clean(m.group(2)))

    def path_of(mname: str) -> str | None:
        parts = []
        while mname != top:
            if mname not in parent:
                return None              # not below the top (e.g. the harness's host memory)
            mname, inst = parent[mname]
            parts.append(inst)
        return ".".join(reversed(parts))

    decl_re = re.compile(rf"^\s*reg\s+(?:\[(\d+):(\d+)\]\s+)?({_ID})\s*(?:\[(\d+):(\d+)\])?", re.M)
    blk_re = re.compile(r"always @\(posedge clk\)(.*?)(?=\n  (?:always|assign|end\b|reg\b|wire\b|initial|\\|\w+ )|\Z)",
                        re.S)
    # an lvalue's indices may hold one level of nested slices (``mem[\addr$1 [5:0]][7:0]``)
    lhs_re = re.compile(rf"({_ID})\s*(?:\[(?:[^\[\]]|\[[^\]]*\])*\]\s*)*<=\s*([^;]*);")
    alias_re = re.compile(rf"^\s*assign\s+({_ID})\s*=\s*({_ID})\s*;", re.M)
    out: list[StateVar] = []
    for mname, body in bodies.items():
        prefix = path_of(mname)
        if prefix is None:
            continue
        decl: dict[str, tuple[int, int]] = {}
        for m in decl_re.finditer(body):
            w = abs(int(m.group(1)) - int(m.group(2))) + 1 if m.group(1) else 1
            d = abs(int(m.group(4)) - int(m.group(5))) + 1 if m.group(4) else 1
            decl[_clean(m.group(3))] = (w, d)
        flops: dict[str, list[str]] = {}
        read_of: dict[str, str] = {}
        for blk in blk_re.finditer(body):
            for m in lhs_re.finditer(blk.group(1)):
                name = _clean(m.group(1))
                names = flops.setdefault(name, [])
                rd = re.match(rf"({_ID})\s*\[", m.group(2).strip())
                if rd and decl.get(_clean(rd.group(1)), (0, 1))[1] > 1 and decl.get(name, (0, 1))[1] == 1:
                    read_of[name] = _clean(rd.group(1))                 # a memory's read-data register
        aliases: dict[str, list[str]] = {}
        for m in alias_re.finditer(body):
            src = _clean(m.group(2))
            if src in flops:
                aliases.setdefault(src, []).append(_clean(m.group(1)))
        for name, mem in read_of.items():
            ports = read_ports.get(mem, ())
            hits = [k for k, data in enumerate(ports) if data in aliases.get(name, ())]
            if len(ports) > 1 and len(hits) != 1:
                raise ValueError(f"{mname}: read register '{name}' of '{mem}' matches none or several of its read "
                                 f"ports' data signals {list(ports)}")
            flops[name].append(mem + read_port_suffix(hits[0] if hits else 0))
        for name in sorted(flops):
            if name not in decl:
                raise ValueError(f"{mname}: register '{name}' assigned but not declared")
            w, d = decl[name]
            local = [*flops[name], *aliases.get(name, [])]
            # the Amaranth name first: a plain identifier alias over the Verilog's own name
            names = [a for a in local if "$" not in a and not a.startswith("_")]
            if "$" not in name and not name.startswith("_"):
                names.append(name)
            names += [a for a in local if a not in names] + ([name] if name not in names else [])
            full = [f"{prefix}.{a}" if prefix else a for a in names]
            full = [a for a in full if a in known] + [a for a in full if a not in known]
            path = f"{prefix}.{name}" if prefix else name
            out.append(StateVar(path, w, d, "mem" if d > 1 else "ff", tuple(dict.fromkeys(full + [path]))))
    mems = [(i, v.path, v.width, v.depth) for i, v in enumerate(out) if v.depth > 1]
    state = RtlState(out, ports=memory_ports(vtext, top, mems))
    for i, v in enumerate(out):
        for a in v.aliases:
            state.by_name.setdefault(a, i)
    return state


_STATE_MEMO: dict[str, tuple[str, RtlState]] = {}


def read_port_data(design) -> dict[str, list[str]]:
    """Memory (site name) -> the names of its read ports' data signals, in port order, for every memory of
    an Amaranth design with more than one read port (the decoupled accumulator buffer: compute, store)."""
    from amaranth.hdl import Fragment
    from amaranth.hdl._mem import MemoryInstance  # Amaranth 0.5: the fragment a Memory elaborates to

    out: dict[str, list[str]] = {}

    def walk(frag, path: tuple[str, ...]) -> None:
        if isinstance(frag, MemoryInstance) and len(frag._read_ports) > 1:
            out[".".join(path)] = [port._data.name for port in frag._read_ports]
        for sub, name, *_ in frag.subfragments:
            walk(sub, path + (name,))

    walk(Fragment.get(design, None), ())
    return out


def rtl_state(cfg: AcceleratorConfig, *, cache_dir=None) -> tuple[str, RtlState]:
    """(Verilog of the native top, its state) for ``cfg``; memoised per process and on disk.

    Generating and parsing the Verilog takes seconds (4 s at 8x8), and every campaign worker process
    needs it: so the result is kept in the build cache (``cache_dir``, default
    :func:`hwgen.rtlsim.default_cache_dir`) as ``fi-state-<name>-<key>.json.gz``, keyed by the
    configuration and a digest of the sources it derives from (:func:`state_key`)."""
    key = cfg.to_json()
    if key not in _STATE_MEMO:
        path = _state_cache_path(cfg, cache_dir)
        got = _read_state_cache(path)
        if got is None:
            got = _make_rtl_state(cfg)
            _write_state_cache(path, *got)
        _STATE_MEMO[key] = got
    return _STATE_MEMO[key]


def _make_rtl_state(cfg: AcceleratorConfig) -> tuple[str, RtlState]:
    from hwgen.config import Controller
    from hwgen.generate import verilog_text
    from hwgen.native import TOP
    from hwgen.top import Accelerator

    vtext, _ = verilog_text(cfg, name=TOP)
    ports = read_port_data(Accelerator(cfg)) if cfg.controller is Controller.DECOUPLED else {}
    known = frozenset(s.name for s in model_sites(cfg))
    state = parse_verilog_state(vtext, TOP, ports, known)
    state.control = control_split(vtext, TOP, [(v.path, *v.aliases) for v in state.vars], outcome_outputs(cfg))
    return vtext, state


def state_key(cfg: AcceleratorConfig) -> str:
    """The disk memo's key of ``cfg``'s state: its configuration, the Amaranth version and every source of
    the generator (``hwgen``) and of the parser and site names (``fault_injection``): an edit to any of
    them regenerates."""
    from importlib.metadata import version

    import hwgen

    h = hashlib.sha256(f"fi-state-1\0{cfg.to_json()}\0amaranth={version('amaranth')}\0".encode())
    for pkg in (Path(hwgen.__file__).parent, Path(__file__).parent):
        for f in sorted(pkg.rglob("*")):
            if f.suffix in (".py", ".cpp", ".inc") and f.is_file():
                h.update(f.relative_to(pkg.parent).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def _state_cache_path(cfg: AcceleratorConfig, cache_dir) -> Path:
    from hwgen.rtlsim import default_cache_dir

    cache = Path(cache_dir).resolve() if cache_dir is not None else default_cache_dir()
    return cache / f"fi-state-{cfg.name}-{state_key(cfg)}.json.gz"


def _read_state_cache(path: Path) -> tuple[str, RtlState] | None:
    """The memoised (Verilog, state), or None if absent or unreadable (then it is made again)."""
    try:
        d = json.loads(gzip.decompress(path.read_bytes()))
        state = RtlState([StateVar(v["path"], int(v["width"]), int(v["depth"]), v["kind"], tuple(v["aliases"]))
                          for v in d["vars"]], {str(k): int(i) for k, i in d["by_name"].items()},
                         MemoryPorts.from_json(d["ports"]), ControlSplit.from_json(d["control"]))
        return str(d["vtext"]), state
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


def _write_state_cache(path: Path, vtext: str, state: RtlState) -> None:
    d = {"vtext": vtext, "by_name": state.by_name, "ports": state.ports.to_json(),
         "control": state.control.to_json() if state.control is not None else None,
         "vars": [{"path": v.path, "width": v.width, "depth": v.depth, "kind": v.kind, "aliases": list(v.aliases)}
                  for v in state.vars]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(gzip.compress(json.dumps(d).encode(), compresslevel=1))
        os.replace(tmp, path)          # atomic: a concurrent reader sees the old file or the whole new one
    except OSError:
        pass                           # a read-only cache only costs the regeneration next time


def state_vlt(state: RtlState, top: str, module_of=None) -> str:
    """A Verilator control file making every state element ``public_flat_rw`` (and nothing else).

    ``module_of(path_prefix)`` gives the Verilog module name of an instance path
    (default: Amaranth's convention, ``top.path``)."""
    lines = ["`verilator_config", "// hwgen fault injection: every register and memory of the accelerator"]
    for v in state.vars:
        inst, _, name = v.path.rpartition(".")
        module = module_of(inst) if module_of else (f"{top}.{inst}" if inst else top)
        lines.append(f'public_flat_rw -module "{module}" -var "{name}"')
    own = {v.path for v in state.vars}
    for path, _ in state.ports.wires:           # the memories' port nets, observed by the liveness shortcut
        if path not in own:
            inst, _, name = path.rpartition(".")
            module = module_of(inst) if module_of else (f"{top}.{inst}" if inst else top)
            lines.append(f'public_flat_rd -module "{module}" -var "{name}"')
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the C++ main
#: The C++ main of the injector: job file and state (inject_state.cpp), the shortcuts of early stop
#: (inject_shortcuts.cpp), the outcome decision, runs and modes (inject_main.cpp).
INJECT_MAIN = "".join(cpp_source(name, "fault_injection")
                      for name in ("inject_state.cpp", "inject_shortcuts.cpp", "inject_main.cpp"))

_INJECT_HEADER = cpp_source("inject_header.cpp", "fault_injection")


def inject_cpp(cfg: AcceleratorConfig) -> str:
    from hwgen.hw_facts import has_mechanisms
    from hwgen.native import SIM_CORE, fill_template

    # the design's status counters (hwgen.safety) decide detected and corrected (decide_outcome)
    counters = "#define HWGEN_SAFETY_COUNTERS 1\n" if has_mechanisms(cfg) else ""
    return fill_template(counters + _INJECT_HEADER + SIM_CORE + INJECT_MAIN, cfg)


def build_injector(cfg: AcceleratorConfig, *, cache_dir=None, verbose: bool = False):
    """The native fault-injection build of ``cfg`` (cached like :func:`hwgen.native.build_native`)."""
    from hwgen.native import TOP, build_native_variant

    vtext, state = rtl_state(cfg, cache_dir=cache_dir)
    return build_native_variant(cfg, "fi", inject_cpp(cfg), state_vlt(state, TOP), vtext=vtext,
                                cache_dir=cache_dir, verbose=verbose)


# ----------------------------------------------------------------------------- Python API
@dataclass
class RtlGolden:
    """The fault-free RTL run."""

    cycles: int
    busy_pe: int
    #: final host memory, uint8[program.mem_size]
    memory: np.ndarray
    #: each output region's final contents (``program.outputs``)
    outputs: dict[str, np.ndarray]
    error: bool
    timed_out: bool
    mem_oob: bool
    #: wall seconds of the golden run, of which fingerprinting every cycle took ``hash_seconds``
    wall_seconds: float
    hash_seconds: float
    #: final value of every state element (site name -> list of word ints)
    state_path: Path | None = None

    @property
    def output(self) -> np.ndarray:
        """The output region "out" (or the first output) as the model injector's golden gives it."""
        return self.outputs["out"] if "out" in self.outputs else next(iter(self.outputs.values()))

    @property
    def cycles_per_second(self) -> float:
        """Simulation speed without the fingerprints (golden run time minus hashing)."""
        sim = self.wall_seconds - self.hash_seconds
        return self.cycles / sim if sim > 0 else 0.0


class RtlInjector:
    """Inject faults into the Verilated accelerator running ``program`` (see the module docstring).

    ``jobs``: faulty runs at once in one simulator process (default: the CPU count);
    ``early_stop``: stop a run as soon as its state equals the golden state;
    ``check_gap``: the largest gap, in cycles, between two fingerprint checks;
    the timeout is ``timeout_factor * golden cycles + timeout_margin``.
    """

    #: faults per ``inject`` call that campaign.py should send (one simulator process per call costs a
    #: few ms plus two golden replays, ~2% of a batch; smaller batches balance the campaign's workers)
    preferred_batch = 1000
    #: campaign.py may pass ``jobs`` (its worker processes' share of the CPUs)
    accepts_jobs = True

    def __init__(self, cfg: AcceleratorConfig, program: Program, *, jobs: int | None = None,
                 early_stop: bool = True, check_gap: int = 64, timeout_factor: float = 2.0,
                 timeout_margin: int = 1000, cache_dir=None, work_dir=None, verify: bool = True):
        from hwgen.rtlsim import harness_mem_bytes

        self.cfg, self.program = cfg, program
        self.image = program.image()
        self.mem_bytes = harness_mem_bytes(cfg, [self.image.size])
        self.jobs = jobs or os.cpu_count() or 1
        self.early_stop, self.check_gap = early_stop, check_gap
        self.timeout_factor, self.timeout_margin = timeout_factor, timeout_margin
        self.cache_dir, self.verify = cache_dir, verify
        _, self.state = rtl_state(cfg, cache_dir=cache_dir)
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hwgen_fi_rtl_")
            self.work_dir = Path(self._tmp.name)
        else:
            self.work_dir = Path(work_dir).resolve()
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self._design = None
        self._golden: RtlGolden | None = None
        self._calls = 0
        #: wall seconds of the last inject() call's simulator process
        self.last_process_seconds = 0.0

    # ------------------------------------------------------------------ helpers
    @property
    def design(self):
        if self._design is None:
            self._design = build_injector(self.cfg, cache_dir=self.cache_dir)
        return self._design

    def sites(self) -> list[Site]:
        """The state elements this injector can reach, as sites (Amaranth names)."""
        return self.state.sites()

    def site(self, name: str) -> Site:
        v = self.state.var(name)
        return Site(name, v.width, v.depth, v.kind)

    def _job_lines(self) -> list[str]:
        img = self.work_dir / "image.bin"
        if not img.is_file():
            self.image.tofile(img)
        lines = [f"mem_bytes {self.mem_bytes}", f"image {img}"]
        for reg in self.program.outputs.values():
            lines.append(f"region {reg.addr} {reg.addr + reg.nbytes}")
        for v in self.state.vars:
            lines.append(f"var {_top()}.{v.path} {v.width} {v.depth}")
        ports = self.state.ports
        lines += [f"wire {_top()}.{path} {width}" for path, width in ports.wires]
        lines += [f"rport {r.memory} {ports.wire_index(r.addr)} {r.lo} {r.hi}" for r in ports.reads]
        lines += [f"wlane {w.memory} {ports.wire_index(w.addr)} {w.lo} {w.hi} {ports.wire_index(w.en)} {w.en_bit} "
                  f"{w.blo} {w.bhi}" for w in ports.lanes]
        ctl = self.state.control
        if ctl is not None and set(ctl.inputs) <= _CONTROL_INPUTS:
            lines += ["control 1", f"ctrl_fetch {int('fetch_rdata' in ctl.inputs)}",
                      f"ctrl_ld {int('ld_rdata' in ctl.inputs)}"] + [f"ctrl {i}" for i in ctl.vars]
        return lines

    def _run(self, mode: str, lines: list[str], out: Path) -> float:
        job = self.work_dir / f"{mode}_{self._calls}.job"
        self._calls += 1
        job.write_text("\n".join(lines) + "\n")
        log = job.with_suffix(".log")
        t0 = time.perf_counter()
        with open(log, "w") as lf:
            proc = subprocess.run([str(self.design.executable), mode, str(job), str(out)], stdout=lf,
                                  stderr=subprocess.STDOUT, check=False)
        secs = time.perf_counter() - t0
        if proc.returncode != 0:
            from hwgen.rtlsim import RtlSimError

            raise RtlSimError(f"RTL fault injector ({mode}) failed with exit {proc.returncode}: "
                              f"{log.read_text(errors='replace')[-3000:]}")
        return secs

    # ------------------------------------------------------------------ API
    def golden(self) -> RtlGolden:
        """The fault-free run (once per injector): cycles, final memory, outputs, per-cycle fingerprints."""
        if self._golden is None:
            prefix = self.work_dir / "golden"
            lines = self._job_lines() + [f"timeout {_DEFAULT_GOLDEN_TIMEOUT}"]
            self._run("golden", lines, prefix)
            f = Path(str(prefix) + ".txt").read_text().split()
            cycles, busy, err, to, oob, host = (int(x) for x in f[:6])
            wall, hash_s = (float(x) for x in f[6:8])
            if err or to or oob or host != cycles:
                raise RuntimeError(f"golden RTL run of '{self.cfg.name}' failed: error={err} timed_out={to} "
                                   f"mem_oob={oob} cycles={cycles} host_cycles={host}")
            mem = np.fromfile(str(prefix) + ".mem", dtype=np.uint8)[:self.program.mem_size].copy()
            outs = {name: reg.read(mem) for name, reg in self.program.outputs.items()}
            self._golden = RtlGolden(cycles, busy, mem, outs, bool(err), bool(to), bool(oob), wall, hash_s,
                                     Path(str(prefix) + ".state"))
        return self._golden

    def final_state(self) -> dict[str, np.ndarray]:
        """The golden run's final value of every state element: site name -> uint8[depth, bytes per word]
        (little-endian words as Verilator stores them)."""
        g = self.golden()
        raw = np.fromfile(g.state_path, dtype=np.uint8)
        out, off = {}, 0
        sizes = _verilator_sizes(self.state)
        for v, sz in zip(self.state.vars, sizes):
            n = sz * v.depth
            out[v.aliases[0]] = raw[off:off + n].reshape(v.depth, sz)
            off += n
        if off != raw.size:
            raise RuntimeError(f"state dump has {raw.size} bytes, expected {off}")
        return out

    def timeout_cycles(self) -> int:
        return int(self.timeout_factor * self.golden().cycles) + self.timeout_margin

    def inject(self, faults: Sequence[Fault], *, early_stop: bool | None = None,
               jobs: int | None = None) -> list[InjectionResult]:
        """Run every fault (one simulator process for the whole batch); results in the order given."""
        return self._inject(faults, early_stop, jobs, None)

    def inject_memories(self, faults: Sequence[Fault], *, early_stop: bool | None = None,
                        jobs: int | None = None) -> list[tuple[InjectionResult, np.ndarray]]:
        """As :meth:`inject`, with each faulty run's final host memory (uint8[program.mem_size]; the
        golden memory for a fault stopped early or after the end), for debugging and tests."""
        dump = self.work_dir / f"dump_{self._calls}"
        dump.mkdir()
        results = self._inject(faults, early_stop, jobs, dump)
        out = []
        for i, r in enumerate(results):
            p = dump / f"fault_{i}.mem"
            mem = np.fromfile(p, dtype=np.uint8)[:self.program.mem_size] if p.is_file() else self.golden().memory
            out.append((r, mem.copy()))
        return out

    def _inject(self, faults, early_stop, jobs, dump) -> list[InjectionResult]:
        g = self.golden()
        if not faults:
            return []
        lines = self._job_lines() + [
            f"timeout {self.timeout_cycles()}", f"jobs {jobs or self.jobs}", f"check_gap {self.check_gap}",
            f"early_stop {int(self.early_stop if early_stop is None else early_stop)}",
            f"golden {self.work_dir / 'golden'}", f"golden_oob {int(g.mem_oob)}", f"verify {int(self.verify)}"]
        if dump is not None:
            lines.append(f"dump {dump}")
        for i, f in enumerate(faults):
            if f.model not in FAULT_MODELS:
                raise ValueError(f"fault {i}: unknown fault model {f.model!r} (known: {', '.join(FAULT_MODELS)})")
            idx = self.state.index(f.site)
            v = self.state.vars[idx]
            nbits = max(1, int(f.nbits))
            if not (0 <= f.word < v.depth and 0 <= f.bit and f.bit + nbits <= v.width and f.cycle >= 0):
                raise ValueError(f"fault {i} ({f}): word/bit/cycle outside site '{f.site}' "
                                 f"({v.depth} words of {v.width} bits)")
            lines.append(f"fault {i} {idx} {_MODEL_CODE[f.model]} {int(f.cycle)} {int(f.bit)} {int(f.word)} "
                         f"{nbits} {max(1, int(f.duration))}")
        out = self.work_dir / f"results_{self._calls}.txt"
        self.last_process_seconds = self._run("inject", lines, out)
        rows = [ln.split() for ln in out.read_text().splitlines()]
        if len(rows) != len(faults):
            raise RuntimeError(f"injector returned {len(rows)} results for {len(faults)} faults")
        results = []
        for i, row in enumerate(rows):
            idx, filled, detail, end, early = (int(x) for x in row)
            if idx != i or not filled:
                from hwgen.rtlsim import RtlSimError

                raise RtlSimError(f"fault {i} ({faults[i]}): the faulty simulator process died without a result")
            results.append(InjectionResult(_DETAIL_OUTCOME[detail], end, bool(early), DETAILS[detail]))
        return results

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: The top inputs the control cone may read for the early SDC stop to apply: the clock, reset, start (the
#: same in every run) and the host read data, which the C++ checks cannot differ from the golden run's.
_CONTROL_INPUTS = frozenset({"clk", "rst", "start", "fetch_rdata", "ld_rdata"})

#: Timeout of the golden run (the design halts far sooner).
_DEFAULT_GOLDEN_TIMEOUT = 50_000_000


def _top() -> str:
    from hwgen.native import TOP

    return TOP


def _verilator_sizes(state: RtlState) -> list[int]:
    """Bytes per word as Verilator stores each element (CData/SData/IData/QData or VlWide of 32-bit words)."""
    out = []
    for v in state.vars:
        w = v.width
        out.append(1 if w <= 8 else 2 if w <= 16 else 4 if w <= 32 else 8 if w <= 64 else 4 * ((w + 31) // 32))
    return out


def random_state_faults(inj: RtlInjector, n: int, seed: int, models: Sequence[str] = ("seu",), *,
                        cycles: int | None = None, max_duration: int = 40) -> list[Fault]:
    """``n`` faults over ``inj``'s state elements weighted by their bits, each with a uniform word, cycle
    (below ``cycles``, default the golden run's) and bit, and a model drawn from ``models`` (repeats weigh
    it): mbu 2-4 adjacent bits (memories only: elsewhere an seu), stuck-at windows of 1..``max_duration``
    cycles. The benchmark's and the tests' faults for comparing early stops with full runs."""
    rng = np.random.default_rng(seed)
    horizon = inj.golden().cycles if cycles is None else cycles
    vars_ = inj.state.vars
    p = np.array([v.bits for v in vars_], dtype=float)
    out = []
    for i in rng.choice(len(vars_), size=n, p=p / p.sum()):
        v = vars_[i]
        model = models[int(rng.integers(len(models)))]
        if model == "mbu" and v.kind != "mem":
            model = "seu"
        nbits = min(v.width, int(rng.integers(2, 5))) if model == "mbu" else 1
        out.append(Fault(v.aliases[0], model, int(rng.integers(0, horizon)), int(rng.integers(0, v.width - nbits + 1)),
                         word=int(rng.integers(0, v.depth)), nbits=nbits,
                         duration=int(rng.integers(1, max_duration + 1)) if model.startswith("stuck") else 1))
    return out


def make_rtl_injector(cfg: AcceleratorConfig, program: Program, **kwargs) -> RtlInjector:
    """The factory campaign.py registers as ``"rtl"``: ``RtlInjector(cfg, program, **kwargs)``."""
    return RtlInjector(cfg, program, **kwargs)


assert set(_DETAIL_OUTCOME) <= set(OUTCOMES)


# ----------------------------------------------------------------------------- cocotb cross-check
def cocotb_crosscheck(cfg: AcceleratorConfig, program: Program, faults: Sequence[Fault], *,
                      injector: RtlInjector | None = None, cache_dir=None, work_dir=None,
                      verbose: bool = False) -> tuple[list[InjectionResult], list[InjectionResult]]:
    """Run ``faults`` through the native injector and through the cocotb harness; returns (native, cocotb).

    The cocotb path (:mod:`fault_injection.rtl_cocotb_bench`) runs each fault as a
    full simulation of :class:`hwgen.harness.Harness` (host memory in Verilog), with
    the accelerator's registers and memories made visible by a ``.vlt`` and the
    fault applied by writing ``.value`` (a deposit) at the fault's cycle; no
    early stop. Outcomes are decided by the same rules (output region, error flag,
    timeout, out-of-range access); the detail of a masked fault is not compared.
    """
    from hwgen.harness import TOP_NAME
    from hwgen.rtlsim import LeanVerilator, RtlSimError
    from hwgen.toolchain import ensure_verilator_env

    inj = injector or RtlInjector(cfg, program, cache_dir=cache_dir)
    native = inj.inject(faults, early_stop=True)
    g = inj.golden()
    built = _build_cocotb(cfg, inj.mem_bytes, cache_dir=cache_dir, verbose=verbose)
    ensure_verilator_env()
    tmp = tempfile.TemporaryDirectory(prefix="hwgen_fi_cocotb_") if work_dir is None else None
    wd = Path(tmp.name if tmp else work_dir).resolve()
    wd.mkdir(parents=True, exist_ok=True)
    try:
        img = np.zeros(inj.mem_bytes, dtype=np.uint8)
        img[:inj.image.size] = inj.image
        np.save(wd / "image.npy", img)
        golden_mem = np.zeros(inj.mem_bytes, dtype=np.uint8)
        golden_mem[:g.memory.size] = g.memory
        np.save(wd / "golden.npy", golden_mem)
        job = {
            "mem_bytes": inj.mem_bytes, "port_bytes": cfg.host_port_bytes, "period_ns": 10,
            "image": str(wd / "image.npy"), "golden": str(wd / "golden.npy"), "golden_cycles": g.cycles,
            "timeout": inj.timeout_cycles(), "accel": _COCOTB_ACCEL,
            "regions": [[r.addr, r.addr + r.nbytes] for r in program.outputs.values()],
            "vars": [{"path": v.path, "width": v.width, "depth": v.depth} for v in inj.state.vars],
            "faults": [{"var": inj.state.index(f.site), "model": f.model, "cycle": int(f.cycle), "bit": int(f.bit),
                        "word": int(f.word), "nbits": max(1, int(f.nbits)), "duration": max(1, int(f.duration))}
                       for f in faults],
            "results": str(wd / "results.json"),
        }
        (wd / "job.json").write_text(json.dumps(job))
        log = wd / "sim.log"
        try:
            LeanVerilator().test(
                test_module="fault_injection.rtl_cocotb_bench", hdl_toplevel=TOP_NAME, hdl_toplevel_lang="verilog",
                build_dir=built, test_dir=wd, results_xml=str(wd / "results.xml"),
                extra_env={"HWGEN_FI_JOB": str(wd / "job.json"),
                           "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING")},
                log_file=None if verbose else log)
        except (RuntimeError, SystemExit) as e:
            tail = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
            raise RtlSimError(f"cocotb fault-injection run failed ({e}); log {log}:\n{tail}") from None
        res_file = wd / "results.json"
        if not res_file.is_file():
            raise RtlSimError(f"cocotb fault-injection run left no results; log {log}:\n"
                              f"{log.read_text(errors='replace')[-3000:] if log.is_file() else ''}")
        rows = json.loads(res_file.read_text())
        cocotb = [InjectionResult(_DETAIL_OUTCOME[r["detail"]], r["end"], False, DETAILS[r["detail"]]) for r in rows]
        return native, cocotb
    finally:
        if tmp is not None:
            tmp.cleanup()
        if injector is None:
            inj.close()


#: instance name of the accelerator inside hwgen.harness.Harness (``m.submodules.accel``)
_COCOTB_ACCEL = "accel"


def _build_cocotb(cfg: AcceleratorConfig, mem_bytes: int, *, cache_dir=None, verbose: bool = False) -> Path:
    """The cocotb harness build (hwgen.rtlsim.build_rtl) with the accelerator's state and the host memory's
    read registers also visible."""
    from hwgen.harness import MEM_MODULE, MEM_RDATA, TOP_NAME
    from hwgen.rtlsim import build_rtl

    def extra(vtext: str) -> str:
        state = parse_verilog_state(vtext, f"{TOP_NAME}.{_COCOTB_ACCEL}")
        return ("\n" + state_vlt(state, f"{TOP_NAME}.{_COCOTB_ACCEL}").split("\n", 1)[1]
                + "".join(f'public_flat_rw -module "{MEM_MODULE}" -var "{v}"\n' for v in MEM_RDATA))

    return build_rtl(cfg, mem_bytes, cache_dir=cache_dir, verbose=verbose, variant="fi-cocotb",
                     vlt_extra=extra).build_dir
