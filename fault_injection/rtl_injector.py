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
  - ``inject``: replays the golden run once, with the faults sorted by cycle;
    at each injection cycle it ``fork()``\\ s a child (copy-on-write snapshot of
    the whole simulator at that cycle: golden-state reuse without re-running
    the prefix) that applies the fault and runs on, while the parent continues
    the golden run; up to ``jobs`` children run at once. A child compares its
    state fingerprint with the golden one at the same cycle (first at the
    cycle after the fault's window, then at doubling gaps up to
    ``check_gap``) and stops as soon as they are equal: equal state means an
    identical future, so the fault is masked (early stop). Otherwise it runs to
    ``done``/``error`` or the timeout. Each child writes its result into a
    shared memory page and exits.

Fault semantics (:mod:`fault_injection.faults`): cycle c counts like the
hardware cycle counter, 0 = the first cycle after ``start`` (the state after
the clock edge that samples ``start``). A fault at cycle c changes the state
held during cycle c: it is applied after the edge that ends cycle c-1 and the
model is re-evaluated, so the combinational logic (next-state, outputs) of
cycle c sees it. ``seu`` flips one bit once, ``mbu`` flips ``nbits`` adjacent
bits of one word, ``stuck0``/``stuck1`` force ``nbits`` bits (default 1) to 0/1
at every cycle of ``[cycle, cycle + duration)``.

Speed (2-core machine, 8x8 'both', 64x64x64 GEMM of 11,936 cycles, uniform
single-bit flips): about 530 injections/s with early stop, 400 without; a
10,000-injection campaign through ``campaign.run_campaign`` (backend "rtl",
``jobs=1``: the injector forks its own children, one per core) took 18-28 s.
Most of the remaining time goes to faults in memory words that are never read
or overwritten again (they never re-converge, so they run to the end).

Outcomes (decided here, documented for the reports):

* ``due``: the design raised its error flag (detail ``error``), did not halt
  within the timeout (``timeout``; default 2 x golden cycles + 1000), or
  accessed host memory outside the memory (``mem_oob``: a bus error in a real
  system; never seen in a golden run);
* ``sdc``: the design halted and the program's output region(s) differ from
  the golden run's (detail ``output``);
* ``masked``: otherwise. The detail says how: ``state re-converged`` (early
  stop), ``after the end`` (fault cycle >= golden cycles), ``same output``,
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

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.program import Program

from .faults import FAULT_MODELS, OUTCOMES, Fault, InjectionResult, Site

__all__ = ["RtlInjector", "RtlGolden", "StateVar", "RtlState", "rtl_state", "parse_verilog_state", "state_vlt",
           "make_rtl_injector", "cocotb_crosscheck", "INJECT_MAIN", "DETAILS"]

#: Detail strings of the C++ result codes (index = code).
DETAILS = ("state re-converged", "same output", "same output, other memory differs", "output", "error", "timeout",
           "mem_oob", "after the end", "same output, late", "same output, early")
_DETAIL_OUTCOME = ("masked", "masked", "masked", "sdc", "due", "due", "due", "masked", "masked", "masked")
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


_ID = r"(?:\\\S+|[A-Za-z_][\w$]*)"


def _clean(name: str) -> str:
    return name.strip().lstrip("\\").strip()


def parse_verilog_state(vtext: str, top: str) -> RtlState:
    """The state of Amaranth-generated Verilog whose top module is ``top`` (see the module docstring)."""
    bodies: dict[str, str] = {}
    for chunk in re.split(r"^module ", vtext, flags=re.M)[1:]:
        name = _clean(chunk.split("(", 1)[0])
        bodies[name] = chunk.split("\nendmodule", 1)[0]
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
    lhs_re = re.compile(rf"({_ID})\s*(?:\[[^\]]*\]\s*)*<=\s*([^;]*);")
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
        for blk in blk_re.finditer(body):
            for m in lhs_re.finditer(blk.group(1)):
                name = _clean(m.group(1))
                names = flops.setdefault(name, [])
                rd = re.match(rf"({_ID})\s*\[", m.group(2).strip())
                if rd and decl.get(_clean(rd.group(1)), (0, 1))[1] > 1 and decl.get(name, (0, 1))[1] == 1:
                    names.append(f"{_clean(rd.group(1))}.rd_data")      # a memory's read-data register
        aliases: dict[str, list[str]] = {}
        for m in alias_re.finditer(body):
            src = _clean(m.group(2))
            if src in flops:
                aliases.setdefault(src, []).append(_clean(m.group(1)))
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
            path = f"{prefix}.{name}" if prefix else name
            out.append(StateVar(path, w, d, "mem" if d > 1 else "ff", tuple(dict.fromkeys(full + [path]))))
    state = RtlState(out)
    for i, v in enumerate(out):
        for a in v.aliases:
            state.by_name.setdefault(a, i)
    return state


_STATE_MEMO: dict[str, tuple[str, RtlState]] = {}


def rtl_state(cfg: AcceleratorConfig) -> tuple[str, RtlState]:
    """(Verilog of the native top, its state) for ``cfg``; memoised per process."""
    from hwgen.generate import verilog_text
    from hwgen.native import TOP

    key = cfg.to_json()
    if key not in _STATE_MEMO:
        vtext, _ = verilog_text(cfg, name=TOP)
        _STATE_MEMO[key] = (vtext, parse_verilog_state(vtext, TOP))
    return _STATE_MEMO[key]


def state_vlt(state: RtlState, top: str, module_of=None) -> str:
    """A Verilator control file making every state element ``public_flat_rw`` (and nothing else).

    ``module_of(path_prefix)`` gives the Verilog module name of an instance path
    (default: Amaranth's convention, ``top.path``)."""
    lines = ["`verilator_config", "// hwgen fault injection: every register and memory of the accelerator"]
    for v in state.vars:
        inst, _, name = v.path.rpartition(".")
        module = module_of(inst) if module_of else (f"{top}.{inst}" if inst else top)
        lines.append(f'public_flat_rw -module "{module}" -var "{name}"')
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the C++ main
INJECT_MAIN = r"""
// ---------------------------------------------------------------- fault injection (fault_injection/rtl_injector.py)
//   @EXE@ golden <job> <prefix>   -> <prefix>.txt, .hash (uint64 per cycle), .mem, .state
//   @EXE@ inject <job> <results>  -> one line per fault: "id outcome_code detail_code end_cycle early"
// Job file: "key value..." lines: mem_bytes, image, timeout, jobs, check_gap, early_stop, golden,
// golden_oob, verify, region <lo> <hi>, var <path> <width> <depth>, fault <id> <var> <model> <cycle>
// <bit> <word> <nbits> <duration>.
#include "verilated_syms.h"
#include <algorithm>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct Var { std::string path; uint8_t* p = nullptr; uint32_t width = 0, depth = 1, stride = 0; };
struct FaultSpec { long long id; int var, model; uint64_t cycle; uint32_t bit, word, nbits, duration; };
struct Slot { int32_t filled, detail, early, pad; uint64_t end; };
enum { M_SEU = 0, M_MBU = 1, M_STUCK0 = 2, M_STUCK1 = 3 };
enum { D_CONVERGED = 0, D_SAME, D_MEMORY, D_OUTPUT, D_ERROR, D_TIMEOUT, D_OOB, D_AFTER_END, D_LATE, D_EARLY };

struct Job {
    uint64_t mem_bytes = 0, timeout = 0, check_gap = 64;
    int jobs = 1, early_stop = 1, golden_oob = 0, verify = 1;
    std::string image, golden, dump;
    std::vector<std::pair<uint64_t, uint64_t>> regions;
    std::vector<Var> vars;
    std::vector<FaultSpec> faults;
};

static Job g_job;
static std::vector<uint64_t> g_hash;    // golden fingerprint per cycle (inject mode)
static std::vector<uint8_t> g_mem;      // golden final memory (inject mode)
static std::vector<uint8_t> g_scratch;  // gathered design state

static bool parse_job(const char* path, Job& job) {
    std::ifstream in(path);
    if (!in) return false;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string key;
        if (!(ls >> key)) continue;
        if (key == "mem_bytes") ls >> job.mem_bytes;
        else if (key == "image") ls >> job.image;
        else if (key == "timeout") ls >> job.timeout;
        else if (key == "jobs") ls >> job.jobs;
        else if (key == "check_gap") ls >> job.check_gap;
        else if (key == "early_stop") ls >> job.early_stop;
        else if (key == "golden") ls >> job.golden;
        else if (key == "dump") ls >> job.dump;
        else if (key == "golden_oob") ls >> job.golden_oob;
        else if (key == "verify") ls >> job.verify;
        else if (key == "region") { uint64_t lo, hi; ls >> lo >> hi; job.regions.push_back({lo, hi}); }
        else if (key == "var") { Var v; ls >> v.path >> v.width >> v.depth; job.vars.push_back(v); }
        else if (key == "fault") {
            FaultSpec f;
            ls >> f.id >> f.var >> f.model >> f.cycle >> f.bit >> f.word >> f.nbits >> f.duration;
            job.faults.push_back(f);
        } else { std::fprintf(stderr, "job: unknown key %s\n", key.c_str()); return false; }
        if (ls.fail()) { std::fprintf(stderr, "job: bad line: %s\n", line.c_str()); return false; }
    }
    return true;
}

template <typename T>
static bool read_vec(const std::string& path, std::vector<T>& out) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) return false;
    const size_t n = static_cast<size_t>(f.tellg());
    out.resize(n / sizeof(T));
    f.seekg(0);
    return static_cast<bool>(f.read(reinterpret_cast<char*>(out.data()), n)) || n == 0;
}
template <typename T>
static bool write_vec(const std::string& path, const std::vector<T>& v) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    return static_cast<bool>(f);
}

static std::string norm_name(const char* s) {
    std::string n(s);
    if (!n.empty() && n[0] == '\\') n.erase(0, 1);
    while (!n.empty() && n.back() == ' ') n.pop_back();
    return n;
}

// Find each state element in Verilator's scope table (public_flat_rw in the .vlt).
static bool resolve_vars(VerilatedContext* ctx, std::vector<Var>& vars) {
    for (Var& v : vars) {
        const auto dot = v.path.rfind('.');
        const std::string scope = "TOP." + v.path.substr(0, dot), name = v.path.substr(dot + 1);
        const VerilatedScope* sc = ctx->scopeFind(scope.c_str());
        if (sc && sc->varsp()) {
            for (auto& kv : *sc->varsp()) {
                if (norm_name(kv.first) == name) {
                    v.p = static_cast<uint8_t*>(kv.second.datap());
                    v.stride = kv.second.entSize();
                    break;
                }
            }
        }
        if (!v.p) {
            std::fprintf(stderr, "state element %s not found (scope %s)\n", v.path.c_str(), scope.c_str());
            return false;
        }
        if (v.stride * 8 < v.width) {
            std::fprintf(stderr, "%s: %u bytes per word for %u bits\n", v.path.c_str(), v.stride, v.width);
            return false;
        }
    }
    return true;
}

// ---- fingerprint: xxh64-style rounds on 4 lanes, then an avalanche
static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
static constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull;
static inline uint64_t round64(uint64_t acc, uint64_t x) { return rotl(acc + x * P2, 31) * P1; }
static uint64_t hash_bytes(uint64_t seed, const uint8_t* p, size_t n) {
    uint64_t a = seed + P1, b = seed ^ P2, c = seed + P3, d = seed - P1;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a = round64(a, rd64(p + i)); b = round64(b, rd64(p + i + 8));
        c = round64(c, rd64(p + i + 16)); d = round64(d, rd64(p + i + 24));
    }
    uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + n;
    for (; i + 8 <= n; i += 8) h = rotl(h ^ round64(0, rd64(p + i)), 27) * P1 + P3;
    for (; i < n; ++i) h = rotl(h ^ (p[i] * P3), 11) * P1;
    h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32;
    return h;
}

static void gather_state(std::vector<uint8_t>& buf) {
    size_t n = 0;
    for (const Var& v : g_job.vars) n += size_t(v.stride) * v.depth;
    buf.resize(n);
    uint8_t* o = buf.data();
    for (const Var& v : g_job.vars) {
        const size_t k = size_t(v.stride) * v.depth;
        std::memcpy(o, v.p, k);
        o += k;
    }
}

static uint64_t state_hash(Sim& s) {
    gather_state(g_scratch);
    uint64_t h = hash_bytes(0x6877676e, g_scratch.data(), g_scratch.size());
    h = hash_bytes(h, s.mem.bytes.data(), s.mem.bytes.size());
    uint8_t tail[PORT_BYTES + 1];
    std::memcpy(tail, s.rdata, PORT_BYTES);
    tail[PORT_BYTES] = s.mem.oob ? 1 : 0;
    return hash_bytes(h, tail, sizeof tail);
}

// ---- faults
static inline void bit_op(const Var& v, uint32_t word, uint32_t bit, int op) {   // 0 flip, 1 clear, 2 set
    uint8_t* w = v.p + size_t(word) * v.stride + (bit >> 3);
    const uint8_t m = uint8_t(1u << (bit & 7));
    if (op == 0) *w ^= m; else if (op == 1) *w &= uint8_t(~m); else *w |= m;
}
static void apply_fault(const FaultSpec& f) {
    const Var& v = g_job.vars[f.var];
    const int op = f.model == M_STUCK0 ? 1 : f.model == M_STUCK1 ? 2 : 0;
    const uint32_t n = f.nbits ? f.nbits : 1;
    for (uint32_t k = 0; k < n && f.bit + k < v.width; ++k) bit_op(v, f.word, f.bit + k, op);
}

static bool regions_differ(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    for (auto& r : g_job.regions)
        if (std::memcmp(a.data() + r.first, b.data() + r.first, r.second - r.first)) return true;
    return false;
}

// The child: apply the fault at cycle n and run on; early stop on a golden fingerprint.
static void run_child(Sim& s, const FaultSpec& f, uint64_t n, Slot& out) {
    const bool stuck = f.model == M_STUCK0 || f.model == M_STUCK1;
    const uint64_t win_end = n + (stuck ? std::max<uint32_t>(1, f.duration) : 1);
    const uint64_t last = g_hash.size() - 1;   // golden halt cycle
    uint64_t next_check = win_end, gap = 1;
    bool timed_out = false;
    for (;;) {
        if (n < win_end) { apply_fault(f); s.top->eval(); }
        if (s.top->done || s.top->error) break;
        if (n >= g_job.timeout) { timed_out = true; break; }
        if (g_job.early_stop && n == next_check) {
            if (n <= last && state_hash(s) == g_hash[n]) {
                out.detail = D_CONVERGED; out.early = 1; out.end = n; out.filled = 1;
                return;
            }
            gap = std::min<uint64_t>(gap * 2, g_job.check_gap);
            next_check = n + gap;
        }
        s.tick();
        ++n;
    }
    out.end = n;
    if (!g_job.dump.empty()) write_vec(g_job.dump + "/fault_" + std::to_string(f.id) + ".mem", s.mem.bytes);
    if (s.top->error) out.detail = D_ERROR;
    else if (timed_out) out.detail = D_TIMEOUT;
    else if (s.mem.oob && !g_job.golden_oob) out.detail = D_OOB;
    else if (regions_differ(s.mem.bytes, g_mem)) out.detail = D_OUTPUT;
    else if (s.mem.bytes != g_mem) out.detail = D_MEMORY;
    else if (n > last) out.detail = D_LATE;
    else if (n < last) out.detail = D_EARLY;
    else out.detail = D_SAME;
    out.filled = 1;
}

static bool load_image(Sim& s) {
    std::ifstream f(g_job.image, std::ios::binary | std::ios::ate);
    if (!f) return false;
    const uint64_t n = static_cast<uint64_t>(f.tellg());
    if (n > g_job.mem_bytes) return false;
    f.seekg(0);
    return static_cast<bool>(f.read(reinterpret_cast<char*>(s.mem.bytes.data()), n)) || n == 0;
}

static void start_run(Sim& s) {
    s.reset();
    s.set_inputs(false, true);
    s.tick();   // the edge that samples start: the state of cycle 0 follows
    s.set_inputs(false, false);
}

static int golden_mode(Sim& s, const std::string& prefix) {
    std::vector<uint64_t> hashes;
    const auto t0 = std::chrono::steady_clock::now();
    start_run(s);
    uint64_t n = 0;
    double hash_s = 0;
    for (;;) {
        const auto h0 = std::chrono::steady_clock::now();
        hashes.push_back(state_hash(s));
        hash_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - h0).count();
        if (s.top->done || s.top->error || n >= g_job.timeout) break;
        s.tick();
        ++n;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool timed_out = !(s.top->done || s.top->error);
    gather_state(g_scratch);
    if (!write_vec(prefix + ".hash", hashes) || !write_vec(prefix + ".mem", s.mem.bytes) ||
        !write_vec(prefix + ".state", g_scratch)) {
        std::fprintf(stderr, "cannot write %s.*\n", prefix.c_str());
        return 3;
    }
    FILE* t = std::fopen((prefix + ".txt").c_str(), "w");
    if (!t) return 3;
    std::fprintf(t, "%" PRIu64 " %" PRIu64 " %d %d %d %" PRIu64 " %.9f %.9f\n",
                 static_cast<uint64_t>(s.top->cycles), static_cast<uint64_t>(s.top->busy_pe), s.top->error ? 1 : 0,
                 timed_out ? 1 : 0, s.mem.oob ? 1 : 0, n, wall, hash_s);
    std::fclose(t);
    return 0;
}

static int inject_mode(Sim& s, const std::string& results_path) {
    if (!read_vec(g_job.golden + ".hash", g_hash) || g_hash.empty() || !read_vec(g_job.golden + ".mem", g_mem) ||
        g_mem.size() != g_job.mem_bytes) {
        std::fprintf(stderr, "cannot read the golden run %s.*\n", g_job.golden.c_str());
        return 3;
    }
    const uint64_t last = g_hash.size() - 1;
    const size_t nf = g_job.faults.size();
    std::vector<size_t> order(nf);
    for (size_t i = 0; i < nf; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [](size_t a, size_t b) { return g_job.faults[a].cycle < g_job.faults[b].cycle; });
    Slot* slots = static_cast<Slot*>(mmap(nullptr, sizeof(Slot) * std::max<size_t>(nf, 1), PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (slots == MAP_FAILED) { std::perror("mmap"); return 3; }
    std::memset(slots, 0, sizeof(Slot) * std::max<size_t>(nf, 1));
    std::fflush(nullptr);
    start_run(s);
    uint64_t n = 0, verified = UINT64_MAX;
    int running = 0;
    for (size_t k = 0; k < nf; ++k) {
        const FaultSpec& f = g_job.faults[order[k]];
        Slot& slot = slots[order[k]];
        if (f.cycle >= last) {   // the design has halted (or halts in this very cycle): nothing to corrupt
            slot.detail = D_AFTER_END; slot.early = 1; slot.end = last; slot.filled = 1;
            continue;
        }
        while (n < f.cycle) { s.tick(); ++n; }
        if (g_job.verify && verified != n) {
            if (state_hash(s) != g_hash[n]) {
                std::fprintf(stderr, "replay diverged from the golden run at cycle %" PRIu64 "\n", n);
                return 4;
            }
            verified = n;
        }
        if (running >= g_job.jobs) { int st; if (wait(&st) > 0) --running; }
        const pid_t pid = fork();
        if (pid < 0) { std::perror("fork"); return 3; }
        if (pid == 0) {
            run_child(s, f, n, slot);
            _exit(0);
        }
        ++running;
    }
    while (running > 0) { int st; if (wait(&st) <= 0) break; --running; }
    FILE* r = std::fopen(results_path.c_str(), "w");
    if (!r) return 3;
    for (size_t i = 0; i < nf; ++i)
        std::fprintf(r, "%lld %d %d %" PRIu64 " %d\n", g_job.faults[i].id, slots[i].filled, slots[i].detail,
                     slots[i].end, slots[i].early);
    std::fclose(r);
    return 0;
}

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s golden|inject <job file> <output>\n", argv[0]);
        return 2;
    }
    if (!parse_job(argv[2], g_job) || g_job.mem_bytes < PORT_BYTES || (g_job.mem_bytes & (g_job.mem_bytes - 1))) {
        std::fprintf(stderr, "job %s: bad job\n", argv[2]);
        return 2;
    }
    Sim sim;
    sim.mem.resize(g_job.mem_bytes);
    if (!load_image(sim)) { std::fprintf(stderr, "cannot read image %s\n", g_job.image.c_str()); return 3; }
    if (!resolve_vars(sim.ctx.get(), g_job.vars)) return 3;
    for (const FaultSpec& f : g_job.faults) {
        if (f.var < 0 || size_t(f.var) >= g_job.vars.size() || f.word >= g_job.vars[f.var].depth ||
            f.bit >= g_job.vars[f.var].width || f.model < 0 || f.model > 3) {
            std::fprintf(stderr, "fault %lld: bad site, word, bit or model\n", f.id);
            return 2;
        }
    }
    const std::string mode = argv[1];
    int rc = 2;
    if (mode == "golden") rc = golden_mode(sim, argv[3]);
    else if (mode == "inject") rc = inject_mode(sim, argv[3]);
    else std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    // no destructors: Verilator's scope teardown is not needed and a forked process must not run it
    std::fflush(nullptr);
    _exit(rc);
}
"""

_INJECT_HEADER = r"""// hwgen native fault-injection harness (generated by fault_injection/rtl_injector.py;
// do not edit).
// The accelerator V@TOP@ with a C++ host memory (hwgen/native.py SIM_CORE) and every register and
// memory of the design visible through Verilator's scope table (public_flat_rw, see the .vlt).
"""


def inject_cpp(cfg: AcceleratorConfig) -> str:
    from hwgen.native import SIM_CORE, fill_template

    return fill_template(_INJECT_HEADER + SIM_CORE + INJECT_MAIN, cfg)


def build_injector(cfg: AcceleratorConfig, *, cache_dir=None, verbose: bool = False):
    """The native fault-injection build of ``cfg`` (cached like :func:`hwgen.native.build_native`)."""
    from hwgen.native import TOP, build_native_variant

    vtext, state = rtl_state(cfg)
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

    #: faults per ``inject`` call that campaign.py should send (one simulator process per call
    #: costs a few ms plus one golden replay; larger batches keep the forked children busy)
    preferred_batch = 2000

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
        _, self.state = rtl_state(cfg)
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
    read register also visible."""
    from hwgen.harness import MEM_MODULE, TOP_NAME
    from hwgen.rtlsim import build_rtl

    def extra(vtext: str) -> str:
        state = parse_verilog_state(vtext, f"{TOP_NAME}.{_COCOTB_ACCEL}")
        return ("\n" + state_vlt(state, f"{TOP_NAME}.{_COCOTB_ACCEL}").split("\n", 1)[1]
                + f'public_flat_rw -module "{MEM_MODULE}" -var "rdata"\n')

    return build_rtl(cfg, mem_bytes, cache_dir=cache_dir, verbose=verbose, variant="fi-cocotb",
                     vlt_extra=extra).build_dir
