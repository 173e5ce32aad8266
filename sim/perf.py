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
  same merged loads up to that shift, hence the same count and durations;
* the number of times each fill is issued follows from the loop order
  (:func:`sim.tiling.a_visits` & co, the closed forms of the lowering's
  "still resident" rule);
* the groups of a grouped convolution are identical GEMMs shifted in memory.

Traffic: host reads are the data elements loaded (one byte each, padding
excluded) plus 16 bytes per fetched instruction; host writes are the stored
outputs; scratchpad writes are counted in words and elements (one element is
one byte of the operand) per scratchpad, plus accumulator-buffer row writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from functools import lru_cache

from hwgen.config import AcceleratorConfig
from hwgen.isa import INSTR_BYTES, QTABLE_BYTES

from .reference import conv_out_size, pads4, pair
from .timing import DECODE_CYCLES, LOAD_LATENCY, STORE_LATENCY, fetch_cycles
from .tiling import ConvA, GemmA, LoweringError, Plan, a_block_loads, a_visits, blocks, cdiv, q_visits, w_block_loads, w_visits

__all__ = ["GemmShape", "ConvShape", "LayerPerf", "gemm_perf", "conv_perf", "layer_perf", "clear_cache", "Plan"]


# ------------------------------------------------------------------ shapes
@dataclass(frozen=True)
class GemmShape:
    """out[M, N] = A[M, K] @ W[K, N]."""

    M: int
    K: int
    N: int

    @property
    def gemm(self) -> tuple[int, int, int]:
        return self.M, self.K, self.N

    @property
    def macs(self) -> int:
        return self.M * self.K * self.N


@dataclass(frozen=True)
class ConvShape:
    """A 2-D convolution, batch 1, NHWC: X[H, W, Cin] * Wt[KH, KW, Cin/groups, Cout] -> out[OH, OW, Cout].

    ``stride`` and ``dilation`` as (h, w), ``pads`` as (top, left, bottom, right) (ints are expanded)."""

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


def _load_stats(loads) -> tuple[int, int, int, int, int]:
    """(instructions, execute cycles, words, elements, host bytes read) of a list of loads."""
    n = exe = words = elems = read = 0
    for ld in loads:
        n += 1
        words += ld.count
        elems += ld.count * ld.lanes
        if ld.zero:
            exe += ld.count
        else:
            exe += ld.count * ld.lanes + LOAD_LATENCY
            read += ld.count * ld.lanes
    return n, exe, words, elems, read


def _group(cfg: AcceleratorConfig, plan: Plan, aview, M: int, K: int, N: int, w_stride: int, qtable: bool) -> _Tally:
    """Execute-phase sums of the instructions ``mappings.lowering._emit`` produces for one GEMM
    (W[k, n] at k*w_stride + n: N for a GEMM, Cout for one group of a convolution)."""
    R, C = cfg.rows, cfg.cols
    os_ = plan.dataflow == "os"
    if plan.dataflow not in ("os", "ws"):
        raise LoweringError(f"plan dataflow must be 'os' or 'ws', not {plan.dataflow!r}")
    t = _Tally()
    Nt = cdiv(N, C)
    k_chunks = blocks(K, plan.kc)
    nk = len(k_chunks)
    m_blocks = blocks(M, plan.mb)
    nMB = len(m_blocks)
    nNB = cdiv(Nt, plan.nt)
    # n blocks: (tiles in the block, width of its last tile) -> multiplicity
    nb_classes: Counter = Counter()
    for b0 in range(0, Nt, plan.nt):
        b1 = min(Nt, b0 + plan.nt)
        nb_classes[(b1 - b0, min(N, b1 * C) - (b1 - 1) * C)] += 1

    # ---- computes and stores: closed forms
    if os_:
        m_tiles = (M // plan.mb) * cdiv(plan.mb, R) + cdiv(M % plan.mb, R)  # R-row tiles over all m blocks
        t.computes = m_tiles * Nt * nk
        t.compute_exec = m_tiles * Nt * (K + nk * (2 * R + C + 1))
        t.acc_rows = M * Nt * nk
        t.stores = m_tiles * Nt
    else:
        k_tiles = sum(cdiv(k1 - k0, R) for k0, k1 in k_chunks)  # R-deep k tiles over all chunks
        t.computes = nMB * Nt * k_tiles
        t.compute_exec = Nt * k_tiles * (M + nMB * (2 * R + C + 3))
        t.acc_rows = M * Nt * k_tiles
        t.stores = nMB * Nt
    t.busy = M * K * C * Nt
    t.store_exec = M * N + STORE_LATENCY * t.stores
    t.write_bytes = M * N

    # ---- A fills: once per equivalence class of m blocks and chunk
    times = a_visits(plan.order, nMB, nNB, nk)
    classes: dict[tuple, list] = {}
    for m0, m1 in m_blocks:
        key = aview.block_key(m0, m1)
        c = classes.get(key)
        if c is None:
            classes[key] = [m0, m1, 1]
        else:
            c[2] += 1
    a_stats: dict[tuple, tuple] = {}
    for bkey, (m0, m1, mult) in classes.items():
        for k0, k1 in k_chunks:
            key = (bkey, aview.chunk_key(m0, m1, k0, k1))
            st = a_stats.get(key)
            if st is None:
                st = a_stats[key] = _load_stats(a_block_loads(R, plan, aview, m0, m1, k0, k1))
            t.add_load_stats(st, mult * times, "a")

    # ---- W fills: W blocks are translation invariant in n and in k
    times = w_visits(plan.order, nMB, nNB, nk)
    chunk_sizes = Counter(k1 - k0 for k0, k1 in k_chunks)
    for (ntb, last), mult in nb_classes.items():
        tiles = [(j * C, j * C + C) for j in range(ntb - 1)] + [((ntb - 1) * C, (ntb - 1) * C + last)]
        for kcs, kmult in chunk_sizes.items():
            st = _load_stats(w_block_loads(R, plan, tiles, 0, kcs, w_stride, 0))
            t.add_load_stats(st, mult * kmult * times, "w")

    # ---- quantization-table loads (per-channel quantization)
    if qtable:
        for (ntb, last), mult in nb_classes.items():
            times = q_visits(plan.order, nMB, ntb, Nt)
            width_sum = (ntb - 1) * C + last
            t.add_load_stats((ntb, width_sum * QTABLE_BYTES + ntb * LOAD_LATENCY, width_sum,
                              width_sum * QTABLE_BYTES, width_sum * QTABLE_BYTES), mult * times, "q")
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
        acc_row_writes=groups * t.acc_rows, host_read_bytes=groups * t.read_bytes, host_fetch_bytes=n * INSTR_BYTES,
        host_write_bytes=groups * t.write_bytes)


def _check_plan(cfg: AcceleratorConfig, plan: Plan) -> None:
    ok = cfg.supports_os if plan.dataflow == "os" else cfg.supports_ws if plan.dataflow == "ws" else False
    if not ok:
        raise LoweringError(f"config '{cfg.name}' (dataflow '{cfg.dataflow}') does not support '{plan.dataflow}'")


@lru_cache(maxsize=4096)
def _gemm_cached(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, per_channel: bool) -> LayerPerf:
    return _finish(cfg, _group(cfg, plan, GemmA(M, K), M, K, N, N, per_channel), 1, M * K * N)


@lru_cache(maxsize=4096)
def _conv_cached(cfg: AcceleratorConfig, shape: ConvShape, plan: Plan, per_channel: bool) -> LayerPerf:
    M, K, N = shape.gemm
    # every group is the same GEMM with its tensors shifted by a constant: count one, multiply.
    return _finish(cfg, _group(cfg, plan, shape.view(0), M, K, N, shape.Cout, per_channel), shape.groups, shape.macs)


def clear_cache() -> None:
    """Forget memoised layers (results are memoised by (config, shape, plan, per_channel): a
    network's repeated layers and a sweep's repeated points are costed once)."""
    _gemm_cached.cache_clear()
    _conv_cached.cache_clear()


def gemm_perf(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, per_channel: bool = False) -> LayerPerf:
    """The program ``lower_gemm`` emits for an M x K x N GEMM with ``plan`` (``per_channel``: a
    ChannelQuant, i.e. quantization-table loads), as the cycle model would count it."""
    if min(M, K, N) < 1:
        raise LoweringError(f"empty GEMM {M}x{K}x{N}")
    _check_plan(cfg, plan)
    return _gemm_cached(cfg, int(M), int(K), int(N), plan, bool(per_channel))


def conv_perf(cfg: AcceleratorConfig, shape: ConvShape, plan: Plan, per_channel: bool = False) -> LayerPerf:
    """The program ``lower_conv2d`` emits for ``shape`` with ``plan`` (a plan for ``shape.gemm``, one
    group's GEMM), as the cycle model would count it. Padding values do not change the timing."""
    if shape.OH < 1 or shape.OW < 1:
        raise LoweringError(f"empty convolution output {shape.OH}x{shape.OW}")
    _check_plan(cfg, plan)
    return _conv_cached(cfg, shape, plan, bool(per_channel))


def layer_perf(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False) -> LayerPerf:
    """:func:`gemm_perf` or :func:`conv_perf` by the shape's type."""
    if isinstance(shape, ConvShape):
        return conv_perf(cfg, shape, plan, per_channel)
    return gemm_perf(cfg, shape.M, shape.K, shape.N, plan, per_channel)
