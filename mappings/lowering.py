"""Lowering of a GEMM and of a 2-D convolution to a :class:`hwgen.program.Program`.

Host memory: instructions at address 0, then the inputs, then the output, each
aligned to the host-port width; ``mem_size`` is a whole number of port words.

A GEMM is ``out[M, N] = requantize(A[M, K] @ W[K, N])`` with A and W row-major
int8. A convolution (NHWC input ``X[H, W, Cin]``, batch 1; weights
``Wt[KH, KW, Cin, Cout]``, i.e. ``W[k = (kh, kw, cin), cout]`` row-major) is the
same GEMM with ``M = OH*OW`` output pixels, ``K = KH*KW*Cin`` and ``N = Cout``;
its A operand (im2col) is never built on the host: every A scratchpad word is
filled by strided loads straight from X, and the padding is written with
``zero=1`` loads.

Scratchpad layouts (see the ISA docstring in :mod:`hwgen.isa`):

* output-stationary (``os``): the output is cut into R x C tiles. A block of
  ``mt`` x ``nt`` tiles lives in the accumulator buffer (R rows per tile) while
  the reduction is walked in chunks of ``kc``: A-spad words ``i*kc + k`` hold
  ``A[m0_i : m0_i+R, k0+k]`` (lanes = tile rows), W-spad words ``j*kc + k`` hold
  ``W[k0+k, n0_j : n0_j+C]``. Each (tile, chunk) is one compute of depth <= kc,
  accumulating from the second chunk on.
* weight-stationary (``ws``): a block of ``mb`` output rows by ``nt`` column
  tiles lives in the accumulator buffer (``mb`` rows per column tile); the
  reduction is walked in chunks of ``kt`` tiles of R: A-spad words ``t*mb + m``
  hold ``A[m0+m, k0_t : k0_t+R]``, W-spad words ``(j*kt + t)*R + i`` hold the
  weight rows ``W[k0_t+i, n0_j : n0_j+C]``. Each (column tile, k tile) is one
  compute streaming ``mb`` rows.

Loads whose scratchpad contents are already resident are skipped (tiles are
reused across blocks where the scratchpad holds them), and adjacent load
pieces are merged into one instruction. The tile sizes and loop order are
chosen with a closed-form estimate of the cycle cost (:mod:`sim.timing`'s
phase lengths).

What decides the load instructions of a block (the A views with their padding
rectangles, the pieces, their merging, the residency rules) and the
:class:`Plan` itself live in :mod:`sim.tiling`, shared with the analytical
model :mod:`sim.perf`, which gives this module's programs' exact cycle counts
without emitting them (``sim`` may not import ``mappings``; ``Plan`` and
``LoweringError`` are re-exported here). This module keeps the planner
(``plan_tiles``), the loop nest, computes, stores and relocation.

Lanes that a load does not write keep stale values. For the GEMM this is
harmless: in ``os`` the stale A lanes produce accumulator rows beyond the
compute's ``rows`` (never written) and stale W lanes produce columns beyond the
store's ``cols``; in ``ws`` the compute reads only the first ``depth`` lanes of
each A word. Inside the region a compute reads, every padded element of a
convolution is explicitly zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial
from typing import NamedTuple, Sequence

import numpy as np

from hwgen.config import AcceleratorConfig, Controller
from hwgen.dataflow import STATIONARY, Dataflow
from hwgen.isa import INSTR_BYTES, LAYOUT, Instruction, Opcode, compute, config, halt, load, qtable_entry, store
from hwgen.footprint import load_span
from hwgen.program import Program, Region
from sim.reference import ChannelQuant, Quant, range_quant, output_dtype, pads4, pair
from sim.perf import ConvShape, GemmShape, check_packed
from sim.tiling import (ConvA, GemmA, Load, LoweringError, Plan, a_block_loads, a_visits, blocks, cdiv, q_tile_load,
                         w_block_loads, w_byte_offset, w_row_stride, w_visits)
from sim.timing import LOAD_LATENCY, STORE_LATENCY, compute_overhead, exec_cycles

__all__ = ["lower_gemm", "lower_conv2d", "pack_weights", "Plan", "plan_tiles", "plan_needs", "check_plan",
           "LoweringError", "ChannelQuant", "Quant"]


_cdiv = cdiv
_blocks = blocks


def _align(x: int, a: int) -> int:
    return _cdiv(x, a) * a


# ------------------------------------------------------------------ planning
def _overhead(cfg: AcceleratorConfig) -> int:
    return cfg.fetch_beats + 2  # fetch (beats + read latency) + decode


def _order_costs(nk: int, nMB: int, nNB: int, a_pass: int, w_pass: int, fixed: int) -> list[tuple[str, int]]:
    """Estimated cycles of each loop order ('m': M blocks outer, 'n': N blocks outer).

    With a single reduction chunk the operand of the outer loop is loaded once
    (and the inner one once per outer block, or once if it has one block);
    with several chunks both operands are reloaded for every block of the other.
    """
    out = []
    for order in ("m", "n"):
        if nk == 1 and order == "n":
            ap, wp = (1 if nMB == 1 else nNB), 1
        elif nk == 1:
            ap, wp = 1, (1 if nNB == 1 else nMB)
        else:
            ap, wp = nNB, nMB
        out.append((order, ap * a_pass + wp * w_pass + fixed))
    return out


def _plan_os(cfg: AcceleratorConfig, M: int, K: int, N: int) -> Plan:
    R, C = cfg.rows, cfg.cols
    ov = _overhead(cfg)
    Mt, Nt = _cdiv(M, R), _cdiv(N, C)
    kmax = min(K, cfg.a_spad_depth, cfg.w_spad_depth)
    nk0 = _cdiv(K, kmax)
    best: Plan | None = None
    slots = cfg.acc_depth // R
    for nk in sorted({nk0, nk0 + 1, nk0 + 2, 2 * nk0, 4 * nk0}):
        if nk > K:
            continue
        kc = _cdiv(K, nk)
        nk = _cdiv(K, kc)
        for mt in range(1, min(Mt, cfg.a_spad_depth // kc, slots) + 1):
            nt = min(Nt, cfg.w_spad_depth // kc, slots // mt)
            if nt < 1:
                break
            nMB, nNB = _cdiv(Mt, mt), _cdiv(Nt, nt)
            mt_b, nt_b = _cdiv(Mt, nMB), _cdiv(Nt, nNB)  # balanced blocks
            a_pass = M * K + Mt * nk * (ov + 1)
            w_pass = K * N + Nt * nk * (ov + 1)
            comp = Mt * Nt * (K + nk * (compute_overhead(cfg, Dataflow.OS) + ov))
            stores = Mt * Nt * (ov + STORE_LATENCY)
            for order, cost in _order_costs(nk, nMB, nNB, a_pass, w_pass, comp + stores):
                if best is None or cost < best.cost:
                    best = Plan(Dataflow.OS, kc, mt_b, mt_b * R, nt_b, order, cost)
    assert best is not None
    return best


def _spread(n: int, cap: int = 48) -> list[int]:
    """1..n, thinned to about ``cap`` values (geometric) when n is large."""
    if n <= cap:
        return list(range(1, n + 1))
    vals = {int(round(n ** (i / (cap - 1)))) for i in range(cap)}
    return sorted(v for v in vals if 1 <= v <= n)


def _plan_ws(cfg: AcceleratorConfig, M: int, K: int, N: int) -> Plan:
    R, C = cfg.rows, cfg.cols
    ov = _overhead(cfg)
    Kt, Nt = _cdiv(K, R), _cdiv(N, C)
    best: Plan | None = None
    for kt in _spread(min(Kt, cfg.w_spad_depth // R, cfg.a_spad_depth)):
        nk = _cdiv(Kt, kt)
        kt = _cdiv(Kt, nk)  # balanced chunks
        for nt in _spread(min(Nt, cfg.w_spad_depth // (kt * R), cfg.acc_depth)):
            mb = min(M, cfg.a_spad_depth // kt, cfg.acc_depth // nt)
            if mb < 1:
                continue
            nMB, nNB = _cdiv(M, mb), _cdiv(Nt, nt)
            mb_b, nt_b = _cdiv(M, nMB), _cdiv(Nt, nNB)
            a_pass = M * K + nMB * Kt * (ov + 1)
            w_pass = K * N + Nt * nk * (ov + 1)
            comp = Nt * Kt * (M + nMB * (compute_overhead(cfg, Dataflow.WS) + ov))
            stores = Nt * nMB * (ov + STORE_LATENCY)
            for order, cost in _order_costs(nk, nMB, nNB, a_pass, w_pass, comp + stores):
                if best is None or cost < best.cost:
                    best = Plan(Dataflow.WS, min(K, kt * R), 1, mb_b, nt_b, order, cost)
    assert best is not None
    return best


def plan_tiles(cfg: AcceleratorConfig, M: int, K: int, N: int, dataflow: str | None = None) -> Plan:
    """Choose tile sizes and loop order for an M x K x N GEMM (``dataflow`` None: the cheaper supported one)."""
    if min(M, K, N) < 1:
        raise LoweringError(f"empty GEMM {M}x{K}x{N}")
    if cfg.controller is Controller.DECOUPLED:  # plan for one half of each memory (double buffering)
        cfg = _half_cfg(cfg)
    if dataflow is None:
        plans = ([_plan_os(cfg, M, K, N)] if cfg.supports_os else []) + \
                ([_plan_ws(cfg, M, K, N)] if cfg.supports_ws else [])
        return min(plans, key=lambda p: p.cost)
    if dataflow not in STATIONARY:
        raise LoweringError(f"dataflow must be 'os' or 'ws', not {dataflow!r}")
    if dataflow not in cfg.dataflow.modes:
        raise LoweringError(f"config '{cfg.name}' (dataflow '{cfg.dataflow}') does not support '{dataflow}'")
    return _plan_os(cfg, M, K, N) if dataflow == Dataflow.OS else _plan_ws(cfg, M, K, N)


def _half_cfg(cfg: AcceleratorConfig) -> AcceleratorConfig:
    """``cfg`` with half of each memory (at least the validation minimum) and the in-order controller: the
    estimate-based planner's view of a double-buffered config (a plan that fits it fits double-buffered)."""
    import dataclasses

    R = cfg.rows
    return dataclasses.replace(
        cfg, controller=Controller.IN_ORDER, a_spad_depth=max(1, cfg.a_spad_depth // 2),
        w_spad_depth=max(R if cfg.supports_ws else 1, cfg.w_spad_depth // 2),
        acc_depth=max(R if cfg.supports_os else 1, cfg.acc_depth // 2))


def _fills(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, groups: int) -> tuple[int, int, int]:
    """(A fills, W fills, output blocks) the emitted program of ``groups`` identical GEMMs issues (the
    residency rules of :mod:`sim.tiling`, unchanged by double buffering)."""
    nMB, nNB, nk = _cdiv(M, plan.mb), _cdiv(_cdiv(N, cfg.cols), plan.nt), _cdiv(K, plan.kc)
    return (groups * nMB * nk * a_visits(plan.order, nMB, nNB, nk),
            groups * nNB * nk * w_visits(plan.order, nMB, nNB, nk), groups * nMB * nNB)


def plan_needs(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, groups: int = 1) -> tuple[int, int, int]:
    """(A-scratchpad words, W-scratchpad words, accumulator rows) the emitted program addresses for
    ``groups`` M x K x N GEMMs (a grouped convolution) with ``plan`` on ``cfg``.

    In-order controller: :func:`_single_needs` (``groups`` does not matter). Decoupled controller
    (double buffering, :func:`_emit_pipelined`): a memory that receives at least two fills (two
    output blocks for the accumulator buffer) over the layer needs twice the single-buffer words
    (half 1 is filled top-aligned, so its highest address is exactly 2 * single - 1); one that
    receives a single fill needs the single-buffer words."""
    single = _single_needs(cfg, M, K, N, plan)
    if cfg.controller is not Controller.DECOUPLED:
        return single
    return tuple(2 * h if n >= 2 else h for h, n in zip(single, _fills(cfg, M, K, N, plan, groups)))


def _single_needs(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan) -> tuple[int, int, int]:
    """(A-scratchpad words, W-scratchpad words, accumulator rows) that :func:`_emit` addresses for an
    M x K x N GEMM with ``plan``: the highest address + 1 over its loads, computes and stores (the
    first block and chunk are the largest). A plan fits a config iff each is <= its depth.

    os (T = R-row tiles in the first m block, k = first chunk, n = tiles in the first n block):
    A words ``i*kc + k`` -> (T-1)*kc + k; W words ``j*kc + k`` -> (n-1)*kc + k; accumulator rows
    ``(i*nt + j)*R`` + tile rows -> ((T-1)*nt + n-1)*R + rows of tile T-1 (mt*nt*R for full tiles).
    ws (t = R-deep k tiles in the first chunk, d = depth of its last, b = rows of the first m block):
    A words ``t*mb + m`` -> (t-1)*mb + b; W words ``(j*kt + t)*R + i`` (kt = ceil(kc/R)) ->
    ((n-1)*kt + t-1)*R + d; accumulator rows ``j*mb + m`` -> (n-1)*mb + b."""
    R, C = cfg.rows, cfg.cols
    Nt = _cdiv(N, C)
    b = min(plan.mb, M)  # rows of the first m block
    k = min(plan.kc, K)  # length of the first chunk
    n = min(plan.nt, Nt)  # column tiles of the first n block
    if plan.dataflow == Dataflow.OS:
        T = _cdiv(b, R)
        return ((T - 1) * plan.kc + k, (n - 1) * plan.kc + k, ((T - 1) * plan.nt + n - 1) * R + b - (T - 1) * R)
    t = _cdiv(k, R)
    kt = _cdiv(plan.kc, R)
    return ((t - 1) * plan.mb + b, ((n - 1) * kt + t - 1) * R + k - (t - 1) * R, (n - 1) * plan.mb + b)


def check_plan(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan, dataflow: str | None = None,
               groups: int = 1) -> None:
    """Raise LoweringError (naming the field or the scratchpad) unless the lowering can emit an
    M x K x N GEMM (``groups`` of them: a grouped convolution) with ``plan`` on ``cfg`` (and, if
    ``dataflow`` is given, the plan uses it)."""
    if not isinstance(plan, Plan):
        raise LoweringError(f"plan must be a Plan, not {type(plan).__name__}")
    if min(M, K, N) < 1:
        raise LoweringError(f"empty GEMM {M}x{K}x{N}")
    if plan.dataflow not in STATIONARY:
        raise LoweringError(f"plan dataflow must be 'os' or 'ws', not {plan.dataflow!r}")
    if dataflow is not None and plan.dataflow != dataflow:
        raise LoweringError(f"plan dataflow '{plan.dataflow}' differs from the requested dataflow '{dataflow}'")
    if plan.dataflow not in cfg.dataflow.modes:
        raise LoweringError(f"config '{cfg.name}' (dataflow '{cfg.dataflow}') does not support '{plan.dataflow}'")
    for fld in ("kc", "mt", "mb", "nt"):
        v = getattr(plan, fld)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise LoweringError(f"plan field '{fld}' = {v!r} must be a positive integer")
    if plan.order not in ("m", "n"):
        raise LoweringError(f"plan order must be 'm' or 'n', not {plan.order!r}")
    if plan.dataflow == Dataflow.OS and plan.mb != plan.mt * cfg.rows:
        raise LoweringError(f"os plan: mb = {plan.mb} must be mt * rows = {plan.mt} * {cfg.rows}")
    if plan.dataflow == Dataflow.WS and plan.mt != 1:
        raise LoweringError(f"ws plan: mt = {plan.mt} must be 1")
    needs = plan_needs(cfg, M, K, N, plan, groups)
    for need, fld in zip(needs, ("a_spad_depth", "w_spad_depth", "acc_depth")):
        if need > getattr(cfg, fld):
            db = " (double-buffered: decoupled controller)" if cfg.controller is Controller.DECOUPLED else ""
            raise LoweringError(f"plan {plan} does not fit config '{cfg.name}': it needs {need} words{db} of "
                                f"{fld} = {getattr(cfg, fld)} for a {M}x{K}x{N} GEMM")


# ------------------------------------------------------------------ emission
@dataclass(frozen=True)
class _Operands:
    """Where one GEMM (one group of a convolution) finds W and puts its output, relative to the tensors.

    W[k, n] is weight ``k*w_stride + w_off + n`` of W (its byte, or with ``packed`` its nibble:
    :func:`sim.tiling.w_row_stride`); out[m, n] at ``out + m*out_stride + out_off + n``;
    output column n is quantization-table entry ``out_off + n``."""

    w_stride: int
    w_off: int
    out_stride: int
    out_off: int
    packed: bool = False

    @classmethod
    def of_group(cls, n_total: int, n_group: int, g: int, packed: bool) -> "_Operands":
        """Group ``g`` of a layer of ``n_total`` output channels, ``n_group`` a group (a GEMM: one group)."""
        return cls(w_row_stride(n_total, packed), g * n_group, n_total, g * n_group, packed)


def _block_grid(cfg: AcceleratorConfig, M: int, K: int, N: int, plan: Plan):
    """(column tiles, reduction chunks, m blocks, n blocks, (m block, n block) visiting order) of a plan:
    the loop structure both emitters (in order and double-buffered) walk."""
    n_tiles = _blocks(N, cfg.cols)
    k_chunks = _blocks(K, plan.kc)
    m_blocks = _blocks(M, plan.mb)
    n_blocks = _blocks(len(n_tiles), plan.nt)
    if plan.order == "n":
        order = [(mi, ni) for ni in range(len(n_blocks)) for mi in range(len(m_blocks))]
    else:
        order = [(mi, ni) for mi in range(len(m_blocks)) for ni in range(len(n_blocks))]
    return n_tiles, k_chunks, m_blocks, n_blocks, order


def _emit(cfg: AcceleratorConfig, plan: Plan, aview, M: int, K: int, N: int, ops: _Operands, relu: bool,
          qtable: bool) -> list:
    """The instructions of one GEMM (no config/halt), with load/store bases as (tensor, offset) to relocate.

    The load instructions of each block come from :mod:`sim.tiling` (shared with the analytical
    model :mod:`sim.perf`, which counts this stream's cycles without emitting it); a fill whose
    scratchpad contents are still resident is skipped (the closed forms of that rule are
    ``sim.tiling.a_visits``/``w_visits``/``q_visits``)."""
    R = cfg.rows
    prog: list = []
    relu_i = int(bool(relu))
    n_tiles, k_chunks, m_blocks, n_blocks, order = _block_grid(cfg, M, K, N, plan)
    a_res = w_res = q_res = None
    os_ = plan.dataflow == Dataflow.OS
    for mi, ni in order:
        m0, m1 = m_blocks[mi]
        tiles = n_tiles[n_blocks[ni][0]:n_blocks[ni][1]]
        m_tiles = [(m0 + a, m0 + b) for a, b in (_blocks(m1 - m0, R) if os_ else [(0, m1 - m0)])]
        for ci, (k0, k1) in enumerate(k_chunks):
            k_tiles = [(k0 + a, k0 + b) for a, b in _blocks(k1 - k0, R)]
            if a_res != (mi, ci):
                a_res = (mi, ci)
                prog.extend(a_block_loads(R, plan, aview, m0, m1, k0, k1))
            if w_res != (ni, ci):
                w_res = (ni, ci)
                prog.extend(w_block_loads(R, plan, tiles, k0, k1, ops.w_stride, ops.w_off, ops.packed))
            if os_:
                for i, (ta, tb) in enumerate(m_tiles):
                    for j in range(len(tiles)):
                        prog.append(compute(dataflow=Dataflow.OS.code, accumulate=int(ci > 0), a_addr=i * plan.kc, w_addr=j * plan.kc,
                                            o_addr=(i * plan.nt + j) * R, rows=tb - ta, depth=k1 - k0))
            else:
                kt = _cdiv(plan.kc, R)
                for j in range(len(tiles)):
                    for t, (ka, kb) in enumerate(k_tiles):
                        prog.append(compute(dataflow=Dataflow.WS.code, accumulate=int(ci > 0 or t > 0), a_addr=t * plan.mb,
                                            w_addr=(j * kt + t) * R, o_addr=j * plan.mb, rows=m1 - m0, depth=kb - ka))
        for j, (na, nb) in enumerate(tiles):
            if qtable and q_res != ops.out_off + na:
                q_res = ops.out_off + na
                prog.append(q_tile_load(q_res, nb - na))
            for i, (ta, tb) in enumerate(m_tiles):
                o_addr = (i * plan.nt + j) * R if os_ else j * plan.mb
                prog.append(("store", dict(relu=relu_i, qtable=int(qtable), o_addr=o_addr, rows=tb - ta, cols=nb - na,
                                           row_stride=ops.out_stride, col_stride=1),
                             ("out", ta * ops.out_stride + ops.out_off + na)))
    return prog


def _emit_layer(cfg: AcceleratorConfig, plan: Plan, gemms: Sequence[tuple[object, "_Operands"]], M: int, K: int,
                N: int, relu: bool, qtable: bool, order: str = "interleave", memo: bool = False) -> list:
    """The instructions of a layer of ``len(gemms)`` identical GEMMs (the groups of a convolution; each
    an (A view, operands) pair), without config and halt: :func:`_emit` per GEMM for the in-order
    controller, :func:`_emit_pipelined` (all GEMMs one pipeline) for the decoupled one (``order``,
    ``memo``: see there and :func:`_a_fill`)."""
    if cfg.controller is Controller.DECOUPLED:
        return _emit_pipelined(cfg, plan, gemms, M, K, N, relu, qtable, order, memo)
    prog: list = []
    for aview, ops in gemms:
        prog += _emit(cfg, plan, aview, M, K, N, ops, relu, qtable)
    return prog


class _Step:
    """One (block, reduction chunk) of the loop nest in the double-buffered lowering: the loads that fill
    its operands (empty when they are still resident), its computes, and, for a block's last chunk,
    the quantization-table loads and stores of the block.

    ``loads`` and ``computes`` are built when first read: the cost path reads them only for steps
    whose ``load_key`` / ``compute_key`` (what the items' timing depends on, see
    :func:`_pipeline_steps`) it has not met before. ``n_loads`` / ``n_computes`` count them either way;
    ``host_hi`` holds (tensor, one past the last byte read) of each of the step's fills (A, W)."""

    __slots__ = ("_loads", "_computes", "stores", "load_key", "compute_key", "n_loads", "n_computes", "host_hi")

    def __init__(self, loads, computes, stores: list, load_key=None, compute_key=None, n_loads: int = 0,
                 n_computes: int = 0, host_hi: tuple[tuple[str, int], ...] = ()):
        self._loads, self._computes, self.stores = loads, computes, stores
        self.load_key, self.compute_key = load_key, compute_key
        self.n_loads, self.n_computes, self.host_hi = n_loads, n_computes, host_hi

    @property
    def loads(self) -> list:
        if not isinstance(self._loads, list):
            self._loads = self._loads()
        return self._loads

    @property
    def computes(self) -> list:
        if not isinstance(self._computes, list):
            self._computes = self._computes()
        return self._computes


def _top(base_half: int, single: int, extent: int) -> int:
    """First word of a fill of ``extent`` words in half ``base_half`` of a double buffer of 2 x ``single``
    words: half 0 from word 0, half 1 top-aligned (ending at word 2*single - 1)."""
    return 0 if base_half == 0 else 2 * single - extent


class _Fill(NamedTuple):
    """A fill's loads at scratchpad word 0 (``loads``), their extent in words, the class id the cost path
    keys them by, and one past the last tensor byte they read (non-zero loads; -1 if none)."""

    loads: Sequence[Load]
    extent: int
    cid: int
    host_hi: int


def _fill(loads: Sequence[Load], cid: int) -> _Fill:
    hi = max((load_span(ld.target, ld.offset, ld.count, ld.word_stride, ld.lanes, ld.lane_stride)[1]
              for ld in loads if not ld.zero), default=-1)
    return _Fill(loads, max(ld.spad_addr + ld.count for ld in loads), cid, hi)


def _a_fill(R: int, plan: Plan, aview, m0: int, m1: int, k0: int, k1: int, memo: dict | None) -> tuple[_Fill, int]:
    """(the fill's class, the shift of its tensor offsets): :func:`sim.tiling.a_block_loads` (shift 0), or
    with a ``memo`` (dict, shared by the groups of a layer) the loads of the first block and chunk, in
    any group, with the same ``block_key`` and ``chunk_key``, to be shifted by the difference of their
    ``fill_origin`` (the equivalence :mod:`sim.perf` relies on; the cost path uses it, the lowering does
    not, and tests/test_pipelined.py checks the two streams are equal)."""
    if memo is None:
        return _fill(a_block_loads(R, plan, aview, m0, m1, k0, k1), -1), 0
    key = (aview.block_key(m0, m1), aview.chunk_key(m0, m1, k0, k1))
    org = aview.fill_origin(m0, k0)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (_fill(a_block_loads(R, plan, aview, m0, m1, k0, k1), len(memo)), org)
    return hit[0], org - hit[1]


def _w_fill(R: int, plan: Plan, tiles: list[tuple[int, int]], k0: int, k1: int, ops: _Operands,
            memo: dict | None) -> tuple[_Fill, int]:
    """(the fill's class, the shift of its tensor offsets) of the W fill of column tiles ``tiles`` x chunk
    [k0, k1): :func:`sim.tiling.w_block_loads` (shift 0), or with a ``memo`` (dict) the loads of the
    class (tile widths relative to the first tile, chunk length, row stride) built at column 0 and
    row 0, to be shifted by the byte of weight ``k0 * w_stride + w_off`` + the first tile's column. A W fill is translation
    invariant: the pieces' scratchpad words depend on the tile widths and the chunk length only, and
    merging on offset differences only (as for :func:`_a_fill`, the cost path uses it and
    tests/test_pipelined.py checks the streams are equal)."""
    w_stride, packed = ops.w_stride, ops.packed
    if memo is None:
        return _fill(w_block_loads(R, plan, tiles, k0, k1, w_stride, ops.w_off, packed), -1), 0
    n0 = tiles[0][0]
    key = (tuple((a - n0, b - n0) for a, b in tiles), k1 - k0, w_stride, packed)
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = _fill(w_block_loads(R, plan, list(key[0]), 0, k1 - k0, w_stride, 0, packed), len(memo))
    return hit, w_byte_offset(k0 * w_stride + ops.w_off + n0, packed)


def _shifted(loads: list, d: int, base: int) -> list:
    """Loads with tensor offsets ``d`` bytes on (zero fills keep theirs) and scratchpad words ``base`` up
    (``Load._replace``, without its per-call cost)."""
    return [Load(t, z, sa + base, c, lo, la, te, off if z else off + d, ws, ls)
            for (t, z, sa, c, lo, la, te, off, ws, ls) in loads]


def _step_computes(make_compute, plan: Plan, R: int, os_: bool, m_tiles, ntiles: int, k_tiles, first_chunk: bool,
                   a_base: int, w_base: int, c_base: int) -> list:
    comps: list = []
    acc = int(not first_chunk)
    if os_:
        for i, (ta, tb) in enumerate(m_tiles):
            for j in range(ntiles):
                comps.append(make_compute(dataflow=Dataflow.OS.code, accumulate=acc, a_addr=a_base + i * plan.kc,
                                          w_addr=w_base + j * plan.kc, o_addr=c_base + (i * plan.nt + j) * R,
                                          rows=tb - ta, depth=k_tiles[-1][1] - k_tiles[0][0]))
    else:
        kt = _cdiv(plan.kc, R)
        rows = m_tiles[0][1] - m_tiles[0][0]
        for j in range(ntiles):
            for t, (ka, kb) in enumerate(k_tiles):
                comps.append(make_compute(dataflow=Dataflow.WS.code, accumulate=int(acc or t > 0),
                                          a_addr=a_base + t * plan.mb, w_addr=w_base + (j * kt + t) * R,
                                          o_addr=c_base + j * plan.mb, rows=rows, depth=kb - ka))
    return comps


def _pipeline_steps(cfg: AcceleratorConfig, plan: Plan, gemms, M: int, K: int, N: int, relu: bool,
                    qtable: bool, memo: bool = False) -> list[_Step]:
    """The steps of the double-buffered lowering (see :func:`_emit_pipelined`), in loop order.

    ``memo`` (the cost path): A and W fills through the equivalence-class memos of :func:`_a_fill` and
    :func:`_w_fill`, instructions without the ISA constructors' checks, and every step keyed
    by what its items' timing depends on once host footprints are left out: its loads by (A class,
    A shift modulo the port width, A base word; W class, W shift modulo the port width, W base word),
    its computes by (block rows,
    tiles, chunk length, first chunk or not, the three base words). Steps with equal keys have loads
    and computes whose records (:func:`sim.schedule.record` without host ranges) are equal."""
    R = cfg.rows
    pb = cfg.host_port_bytes
    relu_i = int(bool(relu))
    Ha, Hw, Hc = _single_needs(cfg, M, K, N, plan)
    n_tiles, k_chunks, m_blocks, n_blocks, order = _block_grid(cfg, M, K, N, plan)
    os_ = plan.dataflow == Dataflow.OS
    make_compute = _compute_unchecked if memo else compute
    ha = hw = hc = 1  # the half of the last fill / block: the first one goes to half 0
    a_base = w_base = 0
    steps: list[_Step] = []
    w_memo: dict[tuple, _Fill] | None = {} if memo else None  # W classes, shared by the groups
    chunk_tiles = [[(k0 + a, k0 + b) for a, b in _blocks(k1 - k0, R)] for k0, k1 in k_chunks]  # R-deep k tiles
    a_memo: dict | None = {} if memo else None  # A classes, shared by the groups (fill_origin has the channels)
    for aview, ops in gemms:
        a_res = w_res = q_res = None  # residency is per GEMM and per half: a new fill always flips the half
        for mi, ni in order:
            m0, m1 = m_blocks[mi]
            tiles = n_tiles[n_blocks[ni][0]:n_blocks[ni][1]]
            m_tiles = [(m0 + a, m0 + b) for a, b in (_blocks(m1 - m0, R) if os_ else [(0, m1 - m0)])]
            hc ^= 1
            if os_:
                extent = ((len(m_tiles) - 1) * plan.nt + len(tiles) - 1) * R + m_tiles[-1][1] - m_tiles[-1][0]
            else:
                extent = (len(tiles) - 1) * plan.mb + m1 - m0
            c_base = _top(hc, Hc, extent)
            for ci, (k0, k1) in enumerate(k_chunks):
                k_tiles = chunk_tiles[ci]
                a_key = w_key = None
                host_hi: list[tuple[str, int]] = []
                parts: list = []
                n_loads = 0
                if a_res != (mi, ci):
                    a_res = (mi, ci)
                    ha ^= 1
                    fa, d = _a_fill(R, plan, aview, m0, m1, k0, k1, a_memo)
                    a_base = _top(ha, Ha, fa.extent)
                    a_key = (fa.cid, d % pb, a_base)
                    host_hi.append((aview.tensor, fa.host_hi + d))
                    parts.append((fa.loads, d, a_base))
                    n_loads += len(fa.loads)
                if w_res != (ni, ci):
                    w_res = (ni, ci)
                    hw ^= 1
                    fw, dw = _w_fill(R, plan, tiles, k0, k1, ops, w_memo)
                    w_base = _top(hw, Hw, fw.extent)
                    w_key = (fw.cid, dw % pb, w_base)
                    host_hi.append(("W", fw.host_hi + dw))
                    parts.append((fw.loads, dw, w_base))
                    n_loads += len(fw.loads)
                loads = partial(_join_fills, tuple(parts)) if memo else _join_fills(tuple(parts))
                cargs = (make_compute, plan, R, os_, m_tiles, len(tiles), k_tiles, ci == 0, a_base, w_base, c_base)
                comps = partial(_step_computes, *cargs) if memo else _step_computes(*cargs)
                n_comps = len(m_tiles) * len(tiles) if os_ else len(tiles) * len(k_tiles)
                steps.append(_Step(loads, comps, [], (a_key, w_key),
                                   (m1 - m0, len(tiles), k1 - k0, ci == 0, a_base, w_base, c_base),
                                   n_loads, n_comps, tuple(host_hi)))
            stores = steps[-1].stores
            for j, (na, nb) in enumerate(tiles):
                if qtable and q_res != ops.out_off + na:
                    q_res = ops.out_off + na
                    stores.append(q_tile_load(q_res, nb - na))
                for i, (ta, tb) in enumerate(m_tiles):
                    o_addr = c_base + ((i * plan.nt + j) * R if os_ else j * plan.mb)
                    stores.append(("store", dict(relu=relu_i, qtable=int(qtable), o_addr=o_addr, rows=tb - ta,
                                                 cols=nb - na, row_stride=ops.out_stride, col_stride=1),
                                   ("out", ta * ops.out_stride + ops.out_off + na)))
    return steps


def _join_fills(parts: tuple) -> list:
    """The loads of a step: each (fill's loads, tensor shift, scratchpad base) in turn."""
    out: list = []
    for loads, d, base in parts:
        out += _shifted(loads, d, base)
    return out


def _unchecked(op: Opcode, kw: dict) -> Instruction:
    """The instruction the ISA constructor of ``op`` builds from ``kw`` (missing fields 0), without its
    field checks: the cost path builds millions, whose fields are in range by construction."""
    return Instruction(op, {f: kw.get(f, 0) for f in _FIELDS[op]})


def _compute_unchecked(**kw: int) -> Instruction:
    """A compute from every one of its fields in the layout's order (as :func:`_step_computes` passes them):
    ``kw`` is already the instruction's argument dict, so none is rebuilt (the cost path builds millions)."""
    return Instruction(Opcode.COMPUTE, kw)


@lru_cache(maxsize=1 << 12)
def _compute_weight(cfg: AcceleratorConfig, dataflow: int, rows: int, depth: int) -> int:
    return exec_cycles(cfg, Instruction(Opcode.COMPUTE, {"dataflow": dataflow, "rows": rows, "depth": depth}))


def _weight(cfg: AcceleratorConfig, item) -> int:
    """An item's execute cycles, exact for computes, close for loads and stores (their host address, hence
    their port alignment, is not known before relocation): the interleaving key of :func:`_interleave`."""
    pb = cfg.host_port_bytes
    if isinstance(item, Load):
        if item.zero:
            return item.count
        if item.lane_stride == 1:
            return item.count * _cdiv(item.lanes, pb) + LOAD_LATENCY
        return item.count * item.lanes + LOAD_LATENCY
    if isinstance(item, tuple):
        kw = item[1]
        return kw["rows"] * _cdiv(kw["cols"], pb) + STORE_LATENCY
    if item.op == Opcode.COMPUTE:
        a = item.args
        return _compute_weight(cfg, a["dataflow"], a["rows"], a["depth"])
    return exec_cycles(cfg, item)


def _interleave(cfg: AcceleratorConfig, streams: Sequence[list]) -> list:
    """The items of ``streams`` (one per unit's work of a step) merged by the fraction of its stream's
    execute cycles that precede each item, so that each stream's work is spread evenly over the merged
    sequence (ties: the earlier stream first). Within a stream the order is kept."""
    positions = _interleave_positions([[_weight(cfg, x) for x in items] for items in streams])
    return [streams[si][i] for si, i in positions]


def _interleave_positions(weights: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """:func:`_interleave`'s order as (stream, position) pairs, from each stream's item weights."""
    keyed = []
    for si, w in enumerate(weights):
        if not w:
            continue
        total = sum(w)
        acc = 0
        for idx, wx in enumerate(w):
            keyed.append((acc / total, si, idx))
            acc += wx
    keyed.sort()
    return [(si, idx) for _, si, idx in keyed]


#: How :func:`_emit_pipelined` orders a step's work (``"interleave"``, the default) and the simpler
#: alternative it was measured against (``"blocked"``).
PIPELINE_ORDERS = ("interleave", "blocked")


def _emit_pipelined(cfg: AcceleratorConfig, plan: Plan, gemms, M: int, K: int, N: int, relu: bool, qtable: bool,
                    order: str = "interleave", memo: bool = False) -> list:
    """The double-buffered (software-pipelined) instruction stream of a layer for the decoupled controller.

    Programs keep sequential semantics (the dispatcher's scoreboard orders conflicting accesses), so
    the lowering controls only addresses and order:

    * **Addresses: halves.** Each memory is used as two halves of the single-buffer size ``H`` of
      :func:`_single_needs` (the first block/chunk is the largest). Every A fill and every W fill
      (issued by exactly the in-order residency rules, so the same load instructions: a block resident
      in the other half is never reused) goes to the half the previous fill did not use; consecutive
      output blocks alternate accumulator halves. Half 0 starts at word 0, half 1 is top-aligned (a
      fill of ``e`` words starts at ``2H - e``), so a memory with at least two fills needs exactly
      ``2H`` words (:func:`plan_needs`). The parity runs across the groups of a grouped convolution,
      so group g+1's loads overlap group g's computes (depthwise layers are a pipeline of tiny GEMMs).
    * **Order.** With steps s = (block, chunk) in loop order, the program is the loads of step 0,
      then for every step s the interleaving of its computes, the loads of step s+1 (the other
      half: they overlap computes(s) and wait only for computes(s-1), which read that half) and the
      quantization-table loads and stores of the block step s-1 finished (its accumulator half is
      not the one computes(s) write), then the last block's stores. The three lists are merged by
      the fraction of each list's execute cycles before each instruction (:func:`_interleave`): the
      dispatcher is in order and can run at most ``queue_depth`` instructions ahead in each unit,
      so a list emitted whole (``order="blocked"``: computes(s), loads(s+1), stores(s)) leaves a unit
      idle while the dispatcher waits on another unit's full queue. Measured with
      :func:`sim.schedule.schedule` (16x16, 128-bit port, depths 8192/8192/1024, queue 4, plan_tiles'
      plans, per-channel): never slower on the 18 ResNet-18/50 and MobileNetV2 layers tried, equal on
      most, faster where one step has many computes or many loads: ResNet-18 layer4 3x3 (49 x 4608 x
      512) 1.615M -> 1.200M cycles, MobileNetV2 stem 110.8k -> 98.6k, ResNet stem 1.960M -> 1.916M,
      ResNet-50 layer2 1x1 (784 x 128 x 512) 398k -> 340k.
    """
    return [item for region in _pipeline_regions(cfg, plan, gemms, M, K, N, relu, qtable, order, memo)
            for item in region]


def _pipeline_regions(cfg: AcceleratorConfig, plan: Plan, gemms, M: int, K: int, N: int, relu: bool, qtable: bool,
                      order: str = "interleave", memo: bool = False) -> list[list]:
    """:func:`_emit_pipelined`'s stream cut where the steps join: the loads of step 0, then per step s
    its part (computes(s) with the loads of s+1 and the stores of s-1), then the last block's stores.
    The cost path times the stream region by region (:func:`sim.schedule.periodic_cycles`)."""
    steps = _pipeline_steps(cfg, plan, gemms, M, K, N, relu, qtable, memo)
    return [_region_items(cfg, steps, part, order) for part in _region_parts(len(steps), order)]


def _region_parts(n_steps: int, order: str) -> list[tuple[int | None, int | None, int | None]]:
    """Per region of a pipelined stream of ``n_steps`` steps: (the step whose computes, the step whose
    loads, the step whose stores it holds; None for none)."""
    if order not in PIPELINE_ORDERS:
        raise LoweringError(f"pipeline order must be one of {', '.join(PIPELINE_ORDERS)}, not {order!r}")
    parts: list[tuple[int | None, int | None, int | None]] = [(None, 0, None)]
    for s in range(n_steps):
        nxt = s + 1 if s + 1 < n_steps else None
        parts.append((s, nxt, s) if order == "blocked" else (s, nxt, s - 1 if s else None))
    if order != "blocked":
        parts.append((None, None, n_steps - 1))
    return parts


def _region_items(cfg: AcceleratorConfig, steps: Sequence[_Step], part: tuple, order: str) -> list:
    """The items of one region (:func:`_region_parts`): the three lists in turn (``"blocked"``), or merged
    by :func:`_interleave`."""
    c, ld, st = part
    streams = [steps[c].computes if c is not None else [], steps[ld].loads if ld is not None else [],
               steps[st].stores if st is not None else []]
    positions = _region_positions([[_weight(cfg, x) for x in items] for items in streams], order)
    return [streams[si][i] for si, i in positions]


def _region_positions(weights: Sequence[Sequence[int]], order: str) -> list[tuple[int, int]]:
    """(list, position) of each item of a region, in stream order, from the execute-cycle weights
    (:func:`_weight`) of its three lists (computes, loads, stores): the lists in turn (``"blocked"``),
    or merged by :func:`_interleave_positions`. The cost path orders record indices with it, and
    :func:`_region_items` the items."""
    if order == "blocked":
        return [(si, i) for si, w in enumerate(weights) for i in range(len(w))]
    return _interleave_positions(weights)


def _config_for(quant) -> Instruction:
    """The config instruction: per-tensor multiplier/shift (unused by table stores), zero point, clamp."""
    if isinstance(quant, ChannelQuant):
        return config(multiplier=0, shift=0, zero_point=quant.zero_point, clamp_lo=quant.clamp_lo,
                      clamp_hi=quant.clamp_hi)
    return config(multiplier=quant.multiplier, shift=quant.shift, zero_point=quant.zero_point,
                  clamp_lo=quant.clamp_lo, clamp_hi=quant.clamp_hi)


def _qtable_bytes(quant: ChannelQuant, N: int) -> np.ndarray:
    for name in ("bias", "multiplier", "shift"):
        if np.shape(getattr(quant, name)) != (N,):
            raise LoweringError(f"per-channel quantization: '{name}' has shape {np.shape(getattr(quant, name))}, "
                                f"expected ({N},)")
    try:
        raw = b"".join(qtable_entry(int(b), int(m), int(s)) for b, m, s in zip(quant.bias, quant.multiplier, quant.shift))
    except ValueError as e:
        raise LoweringError(str(e)) from None
    return np.frombuffer(raw, dtype=np.uint8).copy()


def _layout(cfg: AcceleratorConfig, n_instructions: int, inputs: dict[str, int], out_bytes: int
            ) -> tuple[dict[str, int], int, int]:
    """Host addresses of a program of ``n_instructions`` with inputs of the given sizes (bytes, in
    order) and ``out_bytes`` of output: (input name -> address, output address, mem_size). The
    instructions sit at 0, then the inputs, then the output, each aligned to the port width."""
    port = cfg.host_port_bytes
    addr = _align(n_instructions * INSTR_BYTES, port)
    addrs: dict[str, int] = {}
    for name, size in inputs.items():
        addrs[name] = addr
        addr = _align(addr + size, port)
    return addrs, addr, _align(addr + out_bytes, port)


def _relocate(prog: list, addrs: dict[str, int], pad_value: int = 0, checked: bool = True) -> list[Instruction]:
    """``prog`` (instructions, :class:`~sim.tiling.Load` s and store tuples with tensor-relative bases)
    with every base resolved against the tensor addresses ``addrs``. ``checked=False`` builds the
    instructions without the ISA constructors' field checks (the cost path: the same instructions,
    about 3x faster; tests/test_pipelined.py compares them with the lowering's)."""
    if not checked:
        return _relocate_unchecked(prog, addrs, pad_value)
    instrs: list[Instruction] = []
    for p in prog:
        if isinstance(p, Load):
            base = (pad_value & 0xFF) if p.zero else addrs[p.tensor] + p.offset
            instrs.append(load(target=p.target, zero=p.zero, spad_addr=p.spad_addr, count=p.count,
                               lane_off=p.lane_off, lanes=p.lanes, base=base, word_stride=p.word_stride,
                               lane_stride=p.lane_stride))
        elif isinstance(p, tuple):
            _, kw, (tensor, off) = p
            instrs.append(store(base=addrs[tensor] + off, **kw))
        else:
            instrs.append(p)
    return instrs


_FIELDS = {op: tuple(f.name for f in LAYOUT[op]) for op in (Opcode.LOAD, Opcode.STORE, Opcode.COMPUTE)}


def _relocate_unchecked(prog: list, addrs: dict[str, int], pad_value: int) -> list[Instruction]:
    instrs: list[Instruction] = []
    fill = pad_value & 0xFF
    for p in prog:
        if isinstance(p, Load):
            kw = p._asdict()
            kw["base"] = fill if p.zero else addrs[p.tensor] + p.offset
            instrs.append(_unchecked(Opcode.LOAD, kw))
        elif isinstance(p, tuple):
            _, kw, (tensor, off) = p
            instrs.append(_unchecked(Opcode.STORE, {**kw, "base": addrs[tensor] + off}))
        else:
            instrs.append(p)
    return instrs


def _finish(cfg: AcceleratorConfig, prog: list, inputs: dict[str, np.ndarray], out_shape: tuple[int, ...],
            out_dtype: str, meta: dict, pad_value: int = 0) -> Program:
    out_bytes = Region(0, tuple(out_shape), out_dtype).nbytes
    addrs, out_addr, mem_size = _layout(cfg, len(prog), {name: arr.size for name, arr in inputs.items()}, out_bytes)
    regions = {name: Region(addrs[name], tuple(arr.shape), "uint8" if arr.dtype == np.uint8 else "int8")
               for name, arr in inputs.items()}
    out = Region(out_addr, tuple(out_shape), out_dtype)
    instrs = _relocate(prog, {**addrs, "out": out_addr}, pad_value)
    program = Program(instrs, {name: (regions[name], arr) for name, arr in inputs.items()}, {"out": out},
                      mem_size, meta)
    program.check(cfg)
    return program


def _check_operand(cfg: AcceleratorConfig, name: str, arr: np.ndarray, width: int, ndim: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != ndim:
        raise LoweringError(f"{name} must have {ndim} dimensions, has shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise LoweringError(f"{name} must be an integer array, is {arr.dtype}")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise LoweringError(f"{name} values {arr.min()}..{arr.max()} exceed the {width}-bit range [{lo}, {hi}]")
    return arr.astype(np.int8)


def pack_weights(w: np.ndarray) -> np.ndarray:
    """W (rows x n, values in [-8, 7]) in the packed host layout of :func:`sim.tiling.w_row_stride`: two
    weights per byte, low nibble first, each row padded to whole bytes (``load target=w4`` reads it)."""
    rows, n = w.shape
    if w.size and (w.min() < -8 or w.max() > 7):
        raise LoweringError(f"packed weights must be 4-bit: W values {w.min()}..{w.max()} exceed [-8, 7]")
    nib = np.zeros((rows, w_row_stride(n, True)), np.uint8)
    nib[:, :n] = w.astype(np.int64) & 0xF
    return (nib[:, 0::2] | (nib[:, 1::2] << 4)).astype(np.uint8)


def _quant_meta(quant) -> list:
    if isinstance(quant, ChannelQuant):
        return ["per-channel", quant.zero_point, quant.clamp_lo, quant.clamp_hi, int(bool(quant.relu))]
    return list(map(int, quant))


def _prepare_quant(quant, N: int) -> tuple[object, dict[str, np.ndarray]]:
    """(quant as Quant or ChannelQuant, extra inputs: the quantization table "Q" when per-channel)."""
    if isinstance(quant, ChannelQuant):
        return quant, {"Q": _qtable_bytes(quant, N)}
    return Quant(*quant), {}


def _choose_plan(cfg: AcceleratorConfig, M: int, K: int, N: int, dataflow: str | None, plan: Plan | None,
                 groups: int = 1) -> Plan:
    if plan is None:
        plan = plan_tiles(cfg, M, K, N, dataflow)
        if cfg.controller is Controller.DECOUPLED:
            check_plan(cfg, M, K, N, plan, dataflow, groups)
        return plan
    if dataflow is not None and dataflow not in STATIONARY:
        raise LoweringError(f"dataflow must be 'os' or 'ws', not {dataflow!r}")
    check_plan(cfg, M, K, N, plan, dataflow, groups)
    return plan


def lower_gemm(cfg: AcceleratorConfig, A: np.ndarray, W: np.ndarray, quant,
               dataflow: str | None = None, plan: Plan | None = None, packed_weights: bool = False) -> Program:
    """out[M, N] = requantize(A[M, K] @ W[K, N]); inputs "A", "W" (and "Q", the quantization
    table, for a :class:`ChannelQuant`); output "out".

    ``plan``: the tiling to emit (e.g. from :func:`mappings.mapper.best_plan`), checked with
    :func:`check_plan`; None: :func:`plan_tiles` chooses one. ``packed_weights``: W (values in [-8, 7])
    is held packed (:func:`pack_weights`) and loaded so, on a configuration with ``packed_weights``
    (:func:`sim.perf.check_packed`)."""
    A = _check_operand(cfg, "A", A, cfg.input_width, 2)
    W = _check_operand(cfg, "W", W, cfg.weight_width, 2)
    (M, K), (K2, N) = A.shape, W.shape
    if K != K2:
        raise LoweringError(f"A is {M}x{K} but W is {K2}x{N}")
    packed = bool(packed_weights)
    check_packed(cfg, GemmShape(M, K, N, packed))
    q, extra = _prepare_quant(quant, N)
    plan = _choose_plan(cfg, M, K, N, dataflow, plan)
    prog = [_config_for(q)] + _emit_layer(cfg, plan, [(GemmA(M, K), _Operands.of_group(N, N, 0, packed))], M, K, N,
                                          q.relu, bool(extra))
    prog.append(halt())
    meta = dict(kind="gemm", M=M, K=K, N=N, quant=_quant_meta(q), plan=plan.__dict__, packed_weights=packed)
    w_host = pack_weights(W) if packed else W
    return _finish(cfg, prog, {"A": A, "W": w_host, **extra}, (M, N), output_dtype(range_quant(q)), meta)


def lower_conv2d(cfg: AcceleratorConfig, X: np.ndarray, Wt: np.ndarray, stride: int | Sequence[int],
                 padding: int | Sequence[int], quant, dataflow: str | None = None, groups: int = 1,
                 dilation: int | Sequence[int] = 1, pad_value: int = 0, plan: Plan | None = None,
                 packed_weights: bool = False) -> Program:
    """NHWC conv (batch 1): X[H, W, Cin], Wt[KH, KW, Cin/groups, Cout] -> out[OH, OW, Cout].

    Inputs "X", "W" (and "Q" for a :class:`ChannelQuant`). ``padding`` is an
    int, an (h, w) pair or (top, left, bottom, right); padded pixels read
    ``pad_value`` (the input zero point of a quantized layer). Each of the
    ``groups`` groups is its own GEMM over its channel slice (depthwise:
    groups == Cin, one output column per group). ``plan``: as for :func:`lower_gemm`, a plan for one
    group's GEMM (M = OH*OW, K = KH*KW*Cin/groups, N = Cout/groups). ``packed_weights``: as for
    :func:`lower_gemm` (W as its KH*KW*Cin/groups x Cout matrix, packed)."""
    X = _check_operand(cfg, "X", X, cfg.input_width, 3)
    Wt = _check_operand(cfg, "W", Wt, cfg.weight_width, 4)
    H, Wd, Cin = X.shape
    KH, KW, Cg, Cout = Wt.shape
    if groups < 1 or Cin % groups or Cout % groups or Cg * groups != Cin:
        raise LoweringError(f"X has {Cin} channels, weights {Wt.shape} (KH, KW, Cin/groups, Cout) with "
                            f"groups={groups} do not match")
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    pt, pl, pb, pr = pads4(padding)
    if min(sh, sw, dh, dw) < 1 or min(pt, pl, pb, pr) < 0:
        raise LoweringError(f"bad stride {stride}, dilation {dilation} or padding {padding}")
    lo_in = -(1 << (cfg.input_width - 1))
    if not lo_in <= pad_value < -lo_in:
        raise LoweringError(f"pad_value {pad_value} is outside the {cfg.input_width}-bit input range")
    Og = Cout // groups
    views = [ConvA(H, Wd, Cg, KH, KW, sh, sw, pt, pl, pb, pr, dh, dw, c_total=Cin, c_off=g * Cg)
             for g in range(groups)]
    OH, OW = views[0].OH, views[0].OW
    if OH < 1 or OW < 1:
        raise LoweringError(f"empty convolution output {OH}x{OW}")
    packed = bool(packed_weights)
    check_packed(cfg, ConvShape(H, Wd, Cin, KH, KW, Cout, (sh, sw), (pt, pl, pb, pr), (dh, dw), groups, packed))
    q, extra = _prepare_quant(quant, Cout)
    M, K = OH * OW, KH * KW * Cg
    plan = _choose_plan(cfg, M, K, Og, dataflow, plan, groups)
    prog: list = [_config_for(q)]
    prog += _emit_layer(cfg, plan, [(view, _Operands.of_group(Cout, Og, g, packed)) for g, view in enumerate(views)],
                        M, K, Og, q.relu, bool(extra))
    prog.append(halt())
    meta = dict(kind="conv2d", H=H, W=Wd, Cin=Cin, KH=KH, KW=KW, Cout=Cout, stride=[sh, sw],
                padding=[pt, pl, pb, pr], dilation=[dh, dw], groups=groups, pad_value=pad_value,
                quant=_quant_meta(q), plan=plan.__dict__, packed_weights=packed)
    w_host = pack_weights(Wt.reshape(K, Cout)) if packed else Wt
    return _finish(cfg, prog, {"X": X, "W": w_host, **extra}, (OH, OW, Cout), output_dtype(range_quant(q)), meta,
                   pad_value)
