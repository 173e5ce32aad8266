"""Analytical performance model: per-layer cycles, PE utilisation and memory traffic, exact.

For one layer (a GEMM ``M x K x N`` or a convolution given by its geometry,
:class:`ConvShape`), a tiling :class:`~sim.tiling.Plan` and an
:class:`~hwgen.config.AcceleratorConfig`, :func:`gemm_perf` / :func:`conv_perf`
return a :class:`LayerPerf` whose ``cycles``, ``busy_pe`` and ``instructions``
equal what :class:`sim.cycle.CycleModel` reports for the program that
``mappings.lowering`` emits for that layer and plan (the lowered program is
straight-line and the controller in-order, so its cycle count is the sum of the
closed-form instruction durations of :mod:`sim.timing`). The model sums those
durations without building the instruction stream:

* computes and stores have closed forms over the block grid (block, tile and
  chunk sizes take at most two values per dimension, so the sums are products);
* loads: the load instructions of one scratchpad fill come from the same
  functions the lowering uses (:mod:`sim.tiling`), evaluated once per
  *equivalence class* of blocks: blocks whose rectangles differ only by a
  constant shift of every host offset (``block_key`` of the A view: the
  block's position within an output row, its length and the padding class of
  each output row it touches; for W, the tile widths and chunk length) get the
  same merged loads up to that shift, hence the same count and shapes. Their
  durations are the same up to the shift's residue modulo the host-port bytes
  (a load with contiguous lanes reads whole port words, :func:`sim.timing.load_beats`,
  so its cost depends on its address modulo the port width; tensors are port
  aligned, so on its tensor offset modulo the port width): the shift is the
  difference of ``block_origin`` + ``chunk_origin`` (A) or of the n block's first
  column + the chunk's first row times the row stride (W), and each class is
  costed once per residue that occurs;
* the number of times each fill is issued follows from the loop order
  (:func:`sim.tiling.a_visits` & co, the closed forms of the lowering's
  "still resident" rule);
* the groups of a grouped convolution are identical GEMMs shifted in memory:
  they are counted by the residue of their shifts (first input channel for X,
  first output channel for W and the quantization table) modulo the port bytes.

Traffic: host reads are the data elements loaded (one byte each, padding
excluded) plus 16 bytes per fetched instruction; host writes are the stored
outputs; scratchpad writes are counted in words and elements (one element is
one byte of the operand) per scratchpad, plus accumulator-buffer row writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from functools import lru_cache
from math import gcd
from typing import NamedTuple

from hwgen.config import AcceleratorConfig, Controller
from hwgen.dataflow import STATIONARY, Dataflow
from hwgen.hw_facts import store_beats
from hwgen.isa import INSTR_BYTES, load_word_bytes

from .reference import conv_out_size, pads4, pair
from .timing import DECODE_CYCLES, LOAD_LATENCY, STORE_LATENCY, compute_overhead, fetch_cycles, load_beats
from .tiling import (ConvA, GemmA, LoweringError, Plan, a_block_loads, a_visits, blocks, cdiv, q_tile_load,
                     q_visits, w_block_loads, w_byte_offset, w_packable, w_row_stride, w_visits)

__all__ = ["GemmShape", "ConvShape", "LayerPerf", "Roofline", "roofline", "gemm_perf", "conv_perf", "layer_perf", "closed_perf",
           "check_packed", "can_pack",
           "clear_cache", "Plan"]


# ------------------------------------------------------------------ shapes
@dataclass(frozen=True)
class GemmShape:
    """out[M, N] = A[M, K] @ W[K, N]. ``packed_weights``: W is held packed, two 4-bit weights per byte
    (:func:`sim.tiling.w_row_stride`), and loaded so (target w4): on configurations with
    ``packed_weights``, for weights in [-8, 7]."""

    M: int
    K: int
    N: int
    packed_weights: bool = False

    @property
    def gemm(self) -> tuple[int, int, int]:
        return self.M, self.K, self.N

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N


@dataclass(frozen=True)
class ConvShape:
    """A 2-D convolution, batch 1, NHWC: X[H, W, Cin] * Wt[KH, KW, Cin/groups, Cout] -> out[OH, OW, Cout].

    ``stride`` and ``dilation`` as (h, w), ``pads`` as (top, left, bottom, right) (ints are expanded);
    ``packed_weights`` as for :class:`GemmShape`."""

    H: int
    W: int
    Cin: int
    KH: int
    KW: int
    Cout: int
    stride: tuple[int, int] | int = 1
    pads: tuple[int, int, int, int] | int = 0
    dilation: tuple[int, int] | int = 1
    groups: int = 1
    packed_weights: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "stride", pair(self.stride))
        object.__setattr__(self, "dilation", pair(self.dilation))
        object.__setattr__(self, "pads", pads4(self.pads))
        g = self.groups
        if g < 1 or self.Cin % g or self.Cout % g:
            raise LoweringError(f"{self.Cin} input / {self.Cout} output channels do not split into {g} groups")
        if min(*self.stride, *self.dilation) < 1 or min(self.pads) < 0:
            raise LoweringError(f"bad stride {self.stride}, dilation {self.dilation} or padding {self.pads}")

    @property
    def OH(self) -> int:
        return conv_out_size(self.H, self.KH, self.stride[0], self.pads[0], self.pads[2], self.dilation[0])

    @property
    def OW(self) -> int:
        return conv_out_size(self.W, self.KW, self.stride[1], self.pads[1], self.pads[3], self.dilation[1])

    @property
    def gemm(self) -> tuple[int, int, int]:
        """(M, K, N) of one group's GEMM: the shape a plan is made for."""
        return self.OH * self.OW, self.KH * self.KW * (self.Cin // self.groups), self.Cout // self.groups

    @property
    def macs(self) -> int:
        M, K, N = self.gemm
        return M * K * N * self.groups

    def view(self, group: int = 0) -> ConvA:
        Cg = self.Cin // self.groups
        (sh, sw), (dh, dw), (pt, pl, pb, pr) = self.stride, self.dilation, self.pads
        return ConvA(self.H, self.W, Cg, self.KH, self.KW, sh, sw, pt, pl, pb, pr, dh, dw,
                     c_total=self.Cin, c_off=group * Cg)


# ------------------------------------------------------------------ result
class Roofline(NamedTuple):
    """The roofline lower bound of a layer (or a network) on a config, in whole cycles.

    No program doing ``macs`` multiply-accumulates can take fewer than ``compute_cycles = ceil(macs /
    PEs)`` cycles (every PE does at most one MAC a cycle), nor fewer than ``host_cycles``: each of the
    three host ports (instruction fetch, load reads, store writes; ``hwgen.top.HOST_PORTS``) moves at
    most one port word a cycle, and the in-order controller uses one of them at a time (so its bound is
    all host bytes over one port), the decoupled one all three at once (the busiest port's bytes).
    ``cycles`` is the larger, ``bound`` says which ("compute" on a tie)."""

    cycles: int
    bound: str              #: "compute" or "host"
    compute_cycles: int
    host_cycles: int

    def ratio(self, cycles: int) -> float:
        """How close ``cycles`` comes to the bound: bound / cycles (1.0 = on the roofline; 0 if no cycles)."""
        return self.cycles / cycles if cycles else 0.0


def roofline(cfg: AcceleratorConfig, macs: int, read_bytes: int, write_bytes: int = 0,
             fetch_bytes: int = 0) -> Roofline:
    """:class:`Roofline` of ``macs`` MACs and the host bytes loads read, stores write and fetch reads on
    ``cfg`` (see there for why the controller decides how the three ports add up)."""
    pb = cfg.host_port_bytes
    ports = (read_bytes, write_bytes, fetch_bytes)
    if cfg.controller is Controller.DECOUPLED:
        host = max(cdiv(b, pb) for b in ports)
    else:
        host = cdiv(sum(ports), pb)
    comp = cdiv(macs, cfg.pes)
    return Roofline(max(comp, host), "compute" if comp >= host else "host", comp, host)


@dataclass(frozen=True)
class LayerPerf:
    """Cycles, counters and traffic of one lowered layer (one program: config, the layer, halt)."""

    cycles: int
    busy_pe: int            #: the hardware busy-PE counter (sim.timing.macs summed)
    pes: int
    macs: int               #: useful multiply-accumulates of the layer
    instructions: int       #: including config and halt
    loads: int
    computes: int
    stores: int
    load_cycles: int        #: cycles of load instructions (fetch and decode included)
    compute_cycles: int
    store_cycles: int
    other_cycles: int       #: config and halt
    a_spad_words: int       #: scratchpad words written by loads (zero fills included)
    a_spad_elems: int       #: elements (bytes) written into those words
    w_spad_words: int
    w_spad_elems: int
    q_spad_words: int
    q_spad_bytes: int
    acc_row_writes: int     #: accumulator-buffer rows written by computes
    a_spad_reads: int       #: A-scratchpad words read by computes (os: depth per compute; ws: rows)
    w_spad_reads: int       #: W-scratchpad words read by computes (the tile's depth, either dataflow)
    acc_row_reads: int      #: accumulator-buffer rows read: by accumulating computes and by stores
    host_read_bytes: int    #: operand bytes read by loads (padding fills read nothing)
    host_fetch_bytes: int   #: instruction bytes fetched
    host_write_bytes: int   #: output bytes written by stores

    @property
    def utilization(self) -> float:
        """Busy PE-cycles over PE-cycles (what the hardware counters give)."""
        return self.busy_pe / (self.cycles * self.pes) if self.cycles else 0.0

    @property
    def mac_utilization(self) -> float:
        """Useful MACs over PE-cycles (busy_pe also counts columns of partial tiles)."""
        return self.macs / (self.cycles * self.pes) if self.cycles else 0.0

    @property
    def host_bytes(self) -> int:
        return self.host_read_bytes + self.host_fetch_bytes + self.host_write_bytes

    def roofline(self, cfg: AcceleratorConfig) -> Roofline:
        """The layer's roofline bound on ``cfg`` (its array, host ports and controller): :func:`roofline` of
        its useful MACs and its host bytes (operands read, outputs written, instructions fetched)."""
        if cfg.pes != self.pes:
            raise ValueError(f"LayerPerf of a {self.pes}-PE array, config '{cfg.name}' has {cfg.pes} PEs")
        return roofline(cfg, self.macs, self.host_read_bytes, self.host_write_bytes, self.host_fetch_bytes)

    def __add__(self, other: "LayerPerf") -> "LayerPerf":
        if self.pes != other.pes:
            raise ValueError("adding LayerPerf of arrays of different sizes")
        return LayerPerf(**{f.name: getattr(self, f.name) + (0 if f.name == "pes" else getattr(other, f.name))
                            for f in fields(self)})


@dataclass
class _Tally:
    """Execute-phase sums of one group's instruction stream (fetch/decode added per instruction later)."""

    loads: int = 0
    load_exec: int = 0
    computes: int = 0
    compute_exec: int = 0
    stores: int = 0
    store_exec: int = 0
    busy: int = 0
    a_words: int = 0
    a_elems: int = 0
    w_words: int = 0
    w_elems: int = 0
    q_words: int = 0
    q_bytes: int = 0
    acc_rows: int = 0
    a_reads: int = 0
    w_reads: int = 0
    acc_reads: int = 0
    read_bytes: int = 0
    write_bytes: int = 0

    def add_load_stats(self, st: tuple[int, int, int, int, int], times: int, spad: str) -> None:
        n, exe, words, elems, read = st
        self.loads += n * times
        self.load_exec += exe * times
        self.read_bytes += read * times
        if spad == "a":
            self.a_words += words * times
            self.a_elems += elems * times
        elif spad == "w":
            self.w_words += words * times
            self.w_elems += elems * times
        else:
            self.q_words += words * times
            self.q_bytes += elems * times


def _prep(loads, pb: int) -> tuple:
    """A list of loads summarised for :func:`_stats`: (instructions, execute cycles of the loads whose
    duration does not depend on their host address, words, elements, host bytes read, the
    address-dependent loads as ((offset mod pb, count, word_stride mod pb, host bytes a word), how many))."""
    n = exe = words = elems = read = 0
    wide: Counter = Counter()
    for ld in loads:
        n += 1
        words += ld.count
        elems += ld.count * ld.lanes
        if ld.zero:
            exe += ld.count
        else:
            nbytes = load_word_bytes(ld.target, ld.lanes)
            read += ld.count * nbytes
            exe += LOAD_LATENCY
            if ld.lane_stride == 1 and pb > 1:  # whole port words: beats depend on the alignment
                wide[(ld.offset % pb, ld.count, ld.word_stride % pb, nbytes)] += 1
            else:  # one-byte port beats, or one element per cycle (the wide rule gives this too)
                exe += ld.count * (nbytes if ld.lane_stride == 1 else ld.lanes)
    return n, exe, words, elems, read, tuple(wide.items())


_beats = lru_cache(maxsize=1 << 16)(load_beats)


def _stats(prep: tuple, pb: int, shift: int) -> tuple[int, int, int, int, int]:
    """(instructions, execute cycles, words, elements, host bytes read) of the summarised loads
    with every host offset moved by ``shift`` (only its residue modulo the port bytes ``pb`` matters:
    tensors are aligned to the port width)."""
    n, exe, words, elems, read, wide = prep
    for (off, count, ws, lanes), k in wide:
        exe += k * _beats(pb, (off + shift) % pb, count, ws, lanes)
    return n, exe, words, elems, read


def _load_stats(loads, port_bytes: int = 1, shift: int = 0) -> tuple[int, int, int, int, int]:
    """(instructions, execute cycles, words, elements, host bytes read) of a list of loads whose
    tensors start at port-aligned addresses, each offset moved by ``shift``: :func:`sim.timing.exec_cycles`
    (zero fill: ``count``; ``lane_stride == 1``: :func:`sim.timing.load_beats` + latency; otherwise
    ``count * lanes`` + latency)."""
    return _stats(_prep(loads, port_bytes), port_bytes, shift)


def _shift_sum(a: Counter, b: Counter, pb: int) -> Counter:
    """Residues modulo ``pb`` of x + y over the pairs of the multisets ``a`` and ``b`` (with multiplicities)."""
    if pb == 1:
        return Counter({0: sum(a.values()) * sum(b.values())})
    if len(b) == 1 and 0 in b:
        k = b[0]
        return Counter({x: i * k for x, i in a.items()})
    out: Counter = Counter()
    for x, i in a.items():
        for y, j in b.items():
            out[(x + y) % pb] += i * j
    return out


_ONE = Counter({0: 1})


def _block_residues(n: int, size: int, stride: int, pb: int) -> Counter:
    """(start * stride mod ``pb``, length) -> how many, over the ranges of ``blocks(n, size)``."""
    out: Counter = Counter()
    full, rest = divmod(n, size)
    for r, k in _residues(size * stride, full, pb).items():
        if k:
            out[(r, size)] += k
    if rest:
        out[((full * size * stride) % pb, rest)] += 1
    return out


def _store_exec(cfg: AcceleratorConfig, plan: Plan, M: int, N: int, out_stride: int, go: Counter) -> int:
    """Beats of the stores of one GEMM, summed over the groups (``go``: the groups by the residue modulo
    the port bytes of their output shift, the first output channel). The lowering stores every (m tile,
    n tile) once, wide (col_stride 1): out[m, n] at m*out_stride + n + group shift, so a store's beats
    (:func:`hwgen.hw_facts.store_beats`) depend on its rows, columns and start residue only."""
    pb, R, C = cfg.host_port_bytes, cfg.rows, cfg.cols
    G = sum(go.values())
    if pb == 1:
        return M * N * G
    m_blocks = _block_residues(M, plan.mb, out_stride, pb)
    if plan.dataflow == Dataflow.OS:  # R-row tiles inside each m block
        m_tiles: Counter = Counter()
        for (r0, size), k in m_blocks.items():
            for (r1, rows), j in _block_residues(size, R, out_stride, pb).items():
                m_tiles[((r0 + r1) % pb, rows)] += k * j
    else:
        m_tiles = m_blocks
    by_rows: dict[int, Counter] = {}
    for (r, rows), k in m_tiles.items():
        by_rows.setdefault(rows, Counter())[r] += k
    by_cols: dict[int, Counter] = {}
    for (r, cols), k in _block_residues(N, C, 1, pb).items():
        by_cols.setdefault(cols, Counter())[r] += k
    total = 0
    for rows, rm in by_rows.items():
        rmg = _shift_sum(rm, go, pb)
        for cols, rn in by_cols.items():
            for r, k in _shift_sum(rmg, rn, pb).items():
                total += k * _store_beats(pb, r, rows, out_stride % pb, cols)
    return total


_store_beats = lru_cache(maxsize=1 << 16)(store_beats)


def _closed(cfg: AcceleratorConfig, plan: Plan, M: int, K: int, N: int, w_stride: int, gq: Counter = _ONE) -> _Tally:
    """The closed-form part of :func:`_group`: computes, stores and their traffic, summed over the groups
    (``gq`` as there), without any load. Microseconds, so the plan search can bound a plan's cycles before
    it pays for the fills (:func:`closed_perf`)."""
    R, C = cfg.rows, cfg.cols
    os_ = plan.dataflow == Dataflow.OS
    if plan.dataflow not in STATIONARY:
        raise LoweringError(f"plan dataflow must be 'os' or 'ws', not {plan.dataflow!r}")
    G = sum(gq.values())
    t = _Tally()
    Nt = cdiv(N, C)
    nk = cdiv(K, plan.kc)
    nMB = cdiv(M, plan.mb)
    if os_:
        m_tiles = (M // plan.mb) * cdiv(plan.mb, R) + cdiv(M % plan.mb, R)  # R-row tiles over all m blocks
        t.computes = m_tiles * Nt * nk
        t.compute_exec = m_tiles * Nt * (K + nk * compute_overhead(cfg, Dataflow.OS))
        t.acc_rows = M * Nt * nk
        t.a_reads = t.w_reads = m_tiles * Nt * K  # each tile's computes read its K-deep operands once
        t.acc_reads = M * Nt * (nk - 1) + M * Nt  # every chunk after the first accumulates; the store
        t.stores = m_tiles * Nt
    else:
        full, rest = divmod(K, plan.kc)
        k_tiles = full * cdiv(plan.kc, R) + cdiv(rest, R)  # R-deep k tiles over all chunks
        t.computes = nMB * Nt * k_tiles
        t.compute_exec = Nt * k_tiles * (M + nMB * compute_overhead(cfg, Dataflow.WS))
        t.acc_rows = M * Nt * k_tiles
        t.a_reads = M * Nt * k_tiles  # each k tile streams the m block's rows
        t.w_reads = nMB * Nt * K  # and preloads its depth of weight rows
        t.acc_reads = M * Nt * (k_tiles - 1) + M * Nt
        t.stores = nMB * Nt
    t.busy = M * K * C * Nt
    t.write_bytes = M * N
    for f in ("computes", "compute_exec", "acc_rows", "a_reads", "w_reads", "acc_reads", "stores", "busy",
              "write_bytes"):
        setattr(t, f, getattr(t, f) * G)
    t.store_exec = _store_exec(cfg, plan, M, N, w_stride, gq) + STORE_LATENCY * t.stores
    return t


def _group(cfg: AcceleratorConfig, plan: Plan, aview, M: int, K: int, N: int, w_stride: int, qtable: bool,
           ga: Counter = _ONE, gw: Counter = _ONE, gq: Counter = _ONE, packed: bool = False) -> _Tally:
    """Execute-phase sums of the instructions ``mappings.lowering._emit`` produces for one GEMM
    (W[k, n] at k*w_stride + n: N for a GEMM, Cout for one group of a convolution), summed over
    the groups of a grouped convolution: ``ga``, ``gw``, ``gq`` count the groups by the residue,
    modulo the port bytes, of the group's shift of the A offsets (its first channel), of the W
    offsets and of the quantization-table entries and outputs (its first output channel; the output
    rows are w_stride apart too). ``aview`` is group 0's. ``packed``: W is packed (its rows
    :func:`sim.tiling.w_row_stride` weights apart, its residues those of byte offsets)."""
    R, C = cfg.rows, cfg.cols
    pb = cfg.host_port_bytes
    t = _closed(cfg, plan, M, K, N, w_stride, gq)
    Nt = cdiv(N, C)
    k_chunks = blocks(K, plan.kc)
    nk = len(k_chunks)
    m_blocks = blocks(M, plan.mb)
    nMB = len(m_blocks)
    nNB = cdiv(Nt, plan.nt)

    # ---- A fills: once per equivalence class of m blocks and chunk, and residue of the shift
    # (block origin + chunk origin + group shift) relative to the class representative
    times = a_visits(plan.order, nMB, nNB, nk)
    classes: dict[tuple, list] = {}
    for m0, m1 in m_blocks:
        key = aview.block_key(m0, m1)
        o = aview.block_origin(m0)
        c = classes.get(key)
        if c is None:
            classes[key] = [m0, m1, o, Counter({0: 1})]
        else:
            c[3][(o - c[2]) % pb] += 1
    a_reps: dict[tuple, list] = {}
    for bkey, (m0, m1, o0, res) in classes.items():
        res = _shift_sum(res, ga, pb)
        total = sum(res.values())
        for k0, k1 in k_chunks:
            key = (bkey, aview.chunk_key(m0, m1, k0, k1))
            org = o0 + aview.chunk_origin(k0)
            rep = a_reps.get(key)
            if rep is None:
                rep = a_reps[key] = [_prep(a_block_loads(R, plan, aview, m0, m1, k0, k1), pb), org, {}]
            prep, memo = rep[0], rep[2]
            if not prep[5]:  # no address-dependent load
                t.add_load_stats(prep[:5], total * times, "a")
                continue
            d = org - rep[1]
            for r, cnt in res.items():
                s = (d + r) % pb
                st = memo.get(s)
                if st is None:
                    st = memo[s] = _stats(prep, pb, s)
                t.add_load_stats(st, cnt * times, "a")

    # ---- W fills: W blocks are translation invariant in n and in k up to the residue of the shift
    # (n block's first column + chunk's first row * w_stride + group shift)
    times = w_visits(plan.order, nMB, nNB, nk)
    w_row = w_row_stride(w_stride, packed)
    nb_classes: dict[tuple, Counter] = {}  # (tiles in the block, width of its last tile) -> residues
    for b0 in range(0, Nt, plan.nt):
        b1 = min(Nt, b0 + plan.nt)
        nb_classes.setdefault((b1 - b0, min(N, b1 * C) - (b1 - 1) * C),
                              Counter())[w_byte_offset(b0 * C, packed) % pb] += 1
    chunk_classes: dict[int, Counter] = {}  # chunk length -> residues
    for k0, k1 in k_chunks:
        chunk_classes.setdefault(k1 - k0, Counter())[w_byte_offset(k0 * w_row, packed) % pb] += 1
    for (ntb, last), rn in nb_classes.items():
        rn = _shift_sum(rn, gw, pb)
        tiles = [(j * C, j * C + C) for j in range(ntb - 1)] + [((ntb - 1) * C, (ntb - 1) * C + last)]
        for kcs, rk in chunk_classes.items():
            prep = _prep(w_block_loads(R, plan, tiles, 0, kcs, w_row, 0, packed), pb)
            for s, cnt in _shift_sum(rn, rk, pb).items():
                t.add_load_stats(_stats(prep, pb, s), cnt * times, "w")

    # ---- quantization-table loads (per-channel quantization): one per column tile, at entry
    # (group's first channel + tile's first column) * QTABLE_BYTES
    if qtable:
        tiles_q: Counter = Counter()  # (width, times issued, first column mod pb) -> tiles
        for b0 in range(0, Nt, plan.nt):
            b1 = min(Nt, b0 + plan.nt)
            times = q_visits(plan.order, nMB, b1 - b0, Nt)
            for j in range(b0, b1):
                tiles_q[(min(N, j * C + C) - j * C, times, (j * C) % pb)] += 1
        q_memo: dict[tuple, tuple] = {}
        for (width, times, r), cnt in tiles_q.items():
            for gr, gcnt in gq.items():
                e = (r + gr) % pb
                st = q_memo.get((width, e))
                if st is None:
                    st = q_memo[(width, e)] = _load_stats([q_tile_load(e, width)], pb)
                t.add_load_stats(st, cnt * gcnt * times, "q")
    return t


def _finish(cfg: AcceleratorConfig, t: _Tally, groups: int, macs: int) -> LayerPerf:
    ov = fetch_cycles(cfg) + DECODE_CYCLES
    loads, computes, stores = groups * t.loads, groups * t.computes, groups * t.stores
    n = loads + computes + stores + 2  # + config, halt
    load_c = loads * ov + groups * t.load_exec
    comp_c = computes * ov + groups * t.compute_exec
    store_c = stores * ov + groups * t.store_exec
    other = 2 * ov
    return LayerPerf(
        cycles=load_c + comp_c + store_c + other, busy_pe=groups * t.busy, pes=cfg.pes, macs=macs, instructions=n,
        loads=loads, computes=computes, stores=stores, load_cycles=load_c, compute_cycles=comp_c,
        store_cycles=store_c, other_cycles=other,
        a_spad_words=groups * t.a_words, a_spad_elems=groups * t.a_elems, w_spad_words=groups * t.w_words,
        w_spad_elems=groups * t.w_elems, q_spad_words=groups * t.q_words, q_spad_bytes=groups * t.q_bytes,
        acc_row_writes=groups * t.acc_rows, a_spad_reads=groups * t.a_reads, w_spad_reads=groups * t.w_reads,
        acc_row_reads=groups * t.acc_reads, host_read_bytes=groups * t.read_bytes, host_fetch_bytes=n * INSTR_BYTES,
        host_write_bytes=groups * t.write_bytes)


def _check_plan(cfg: AcceleratorConfig, plan: Plan) -> None:
    cfg.require_in_order("the analytical model (sim.perf)")
    if plan.dataflow not in cfg.dataflow.modes:
        raise LoweringError(f"config '{cfg.name}' (dataflow '{cfg.dataflow}') does not support '{plan.dataflow}'")


def check_packed(cfg: AcceleratorConfig, shape: GemmShape | ConvShape) -> None:
    """Raise LoweringError if ``shape`` asks for packed weights that ``cfg`` cannot load
    (:func:`sim.tiling.w_packable`)."""
    if not shape.packed_weights:
        return
    if not cfg.packed_weights:
        raise LoweringError(f"packed 4-bit weights need a configuration with packed_weights (config '{cfg.name}')")
    groups = getattr(shape, "groups", 1)
    n = shape.gemm[2]
    if not w_packable(cfg.cols, n, groups):
        raise LoweringError(f"packed 4-bit weights need column tiles and groups that start on whole bytes: "
                            f"cols={cfg.cols} and {n} output channels per group (of {groups}) must be even")


def can_pack(cfg: AcceleratorConfig, shape: GemmShape | ConvShape) -> bool:
    """Whether ``shape``'s weights can be loaded packed on ``cfg`` (weights in [-8, 7] assumed)."""
    return cfg.packed_weights and w_packable(cfg.cols, shape.gemm[2], getattr(shape, "groups", 1))


@lru_cache(maxsize=4096)
def _gemm_cached(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, per_channel: bool,
                 packed: bool) -> LayerPerf:
    return _finish(cfg, _group(cfg, plan, GemmA(M, K), M, K, N, N, per_channel, packed=packed), 1, M * K * N)


def _residues(step: int, n: int, pb: int) -> Counter:
    """Residues modulo ``pb`` of g * step for g in range(n) (periodic in g with period pb / gcd)."""
    if pb == 1 or step % pb == 0:
        return Counter({0: n})
    period = pb // gcd(step % pb, pb)
    full, rest = divmod(n, period)
    return Counter({(g * step) % pb: full + (g < rest) for g in range(min(period, n))})


@lru_cache(maxsize=4096)
def _conv_cached(cfg: AcceleratorConfig, shape: ConvShape, plan: Plan, per_channel: bool) -> LayerPerf:
    M, K, N = shape.gemm
    # every group is the same GEMM with its tensors shifted by a constant (g*Cin/groups in X,
    # g*Cout/groups in W and the quantization table): count one per residue of the shifts modulo
    # the port bytes (tensors are port aligned, so the load durations depend on that residue only).
    pb, G = cfg.host_port_bytes, shape.groups
    ga = _residues(shape.Cin // G, G, pb)
    packed = shape.packed_weights
    gq = _residues(N, G, pb)
    gw = _residues(w_byte_offset(N, packed), G, pb) if packed else gq
    return _finish(cfg, _group(cfg, plan, shape.view(0), M, K, N, shape.Cout, per_channel, ga, gw, gq, packed), 1,
                   shape.macs)


def clear_cache() -> None:
    """Forget memoised layers (results are memoised by (config, shape, plan, per_channel): a
    network's repeated layers and a sweep's repeated points are costed once)."""
    _gemm_cached.cache_clear()
    _conv_cached.cache_clear()


def gemm_perf(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, per_channel: bool = False,
              packed_weights: bool = False) -> LayerPerf:
    """The program ``lower_gemm`` emits for an M x K x N GEMM with ``plan`` (``per_channel``: a
    ChannelQuant, i.e. quantization-table loads; ``packed_weights``: W packed, as :class:`GemmShape`),
    as the cycle model would count it."""
    if min(M, K, N) < 1:
        raise LoweringError(f"empty GEMM {M}x{K}x{N}")
    _check_plan(cfg, plan)
    check_packed(cfg, GemmShape(M, K, N, bool(packed_weights)))
    return _gemm_cached(cfg, int(M), int(K), int(N), plan, bool(per_channel), bool(packed_weights))


def conv_perf(cfg: AcceleratorConfig, shape: ConvShape, plan: Plan, per_channel: bool = False) -> LayerPerf:
    """The program ``lower_conv2d`` emits for ``shape`` with ``plan`` (a plan for ``shape.gemm``, one
    group's GEMM), as the cycle model would count it. Padding values do not change the timing."""
    if shape.OH < 1 or shape.OW < 1:
        raise LoweringError(f"empty convolution output {shape.OH}x{shape.OW}")
    _check_plan(cfg, plan)
    check_packed(cfg, shape)
    return _conv_cached(cfg, shape, plan, bool(per_channel))


def closed_perf(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan) -> LayerPerf:
    """The counts of :func:`layer_perf` without any load (no fill, no quantization-table load): computes and
    stores exactly, so every cycle field is a lower bound on :func:`layer_perf`'s and the compute and store
    fields equal them. Closed forms only (microseconds against the fills' milliseconds): the plan search
    bounds a plan with it and skips the plans that cannot win (:mod:`mappings.mapper`)."""
    _check_plan(cfg, plan)
    M, K, N = shape.gemm if isinstance(shape, ConvShape) else (shape.M, shape.K, shape.N)
    if isinstance(shape, ConvShape):
        t = _closed(cfg, plan, M, K, N, shape.Cout, _residues(N, shape.groups, cfg.host_port_bytes))
        return _finish(cfg, t, 1, shape.macs)
    return _finish(cfg, _closed(cfg, plan, M, K, N, N), 1, M * K * N)


def layer_perf(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False) -> LayerPerf:
    """:func:`gemm_perf` or :func:`conv_perf` by the shape's type."""
    if isinstance(shape, ConvShape):
        return conv_perf(cfg, shape, plan, per_channel)
    return gemm_perf(cfg, shape.M, shape.K, shape.N, plan, per_channel, shape.packed_weights)
