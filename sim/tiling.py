"""The instruction structure of a tiled GEMM: one definition shared by the lowering and the analytical model.

:mod:`mappings.lowering` emits programs and :mod:`sim.perf` counts their cycles
without emitting them; both must agree to the instruction, so everything that
decides *which* load instructions a block of the loop nest needs lives here,
as pure functions of the plan and the block's coordinates:

* :class:`Plan`: tile sizes and loop order (chosen by ``mappings.lowering.plan_tiles``);
* the A-operand views :class:`GemmA` (a row-major matrix) and :class:`ConvA`
  (the im2col view of an NHWC input, one group of a grouped convolution),
  which cut a block of A into rectangles (:class:`Rect`: tensor data or padding);
* :func:`a_block_loads`, :func:`w_block_loads`, :func:`q_tile_load`: the load
  instructions (:class:`Load`, before relocation) that fill the scratchpads for
  one block and reduction chunk, after :func:`merge` has joined adjacent pieces;
* the host layout of W, plain or packed two 4-bit weights per byte
  (:func:`w_row_stride`, :func:`w_host_bytes`, :func:`w_packable`);
* the block grid (:func:`blocks`) and the residency rules
  (:func:`a_visits`, :func:`w_visits`, :func:`q_visits`): how often each
  scratchpad fill is issued in the loop order.

This module lives in ``sim`` (not ``mappings``) because the analytical model
needs it and ``sim`` must not import ``mappings``. It imports only the
ISA (the stride field's range) and ``sim.reference.conv_out_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, NamedTuple, Sequence

from hwgen.dataflow import STATIONARY, Dataflow
from hwgen.isa import LAYOUT, QTABLE_BYTES, LoadTarget, Opcode

from .reference import conv_out_size
from hwgen.errors import HwgenError

__all__ = ["LoweringError", "Plan", "Rect", "GemmA", "ConvA", "Load", "piece", "merge", "blocks",
           "a_block_loads", "w_block_loads", "q_tile_load",
           "w_row_stride", "w_host_bytes", "w_byte_offset", "w_packable", "a_visits", "w_visits", "q_visits", "cdiv", "clear_cache"]


class LoweringError(HwgenError, ValueError):
    """A workload that cannot be lowered to this configuration (names the reason)."""


_STRIDE_FIELD = {f.name: f for f in LAYOUT[Opcode.LOAD]}["word_stride"]
#: builds a named tuple from a tuple of all its fields without its Python-level ``__new__`` (the
#: analytical model and the mapper build millions of rectangles and loads)
_new = tuple.__new__
_W4 = int(LoadTarget.W4)


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def blocks(n: int, size: int) -> list[tuple[int, int]]:
    """[0, n) cut into consecutive ranges of ``size`` (the last one shorter)."""
    return [(i, min(n, i + size)) for i in range(0, n, size)]


# ------------------------------------------------------------------ the plan
@dataclass(frozen=True)
class Plan:
    """Tile sizes and loop order of one lowering.

    os: ``kc`` reduction chunk, ``mt`` x ``nt`` R x C tiles per block (``mb`` = ``mt`` * R rows).
    ws: ``kc`` reduction chunk (a multiple of R, except when K is shorter),
    ``mb`` output rows per block, ``nt`` column tiles per block.
    ``order`` is 'm' (m blocks outer) or 'n' (n blocks outer); ``cost`` the
    planner's estimated cycle count (:mod:`sim.perf` gives the exact one).

    ``dataflow`` is held as a :class:`~hwgen.dataflow.Dataflow` member when it names a stationary
    dataflow (``"os"`` / ``"ws"`` are accepted and converted); anything else is kept as given for
    :func:`mappings.lowering.check_plan` to reject with a message."""

    dataflow: Dataflow
    kc: int
    mt: int
    mb: int
    nt: int
    order: str
    cost: int

    def __post_init__(self) -> None:
        if type(self.dataflow) is not Dataflow and isinstance(self.dataflow, str) and self.dataflow in STATIONARY:
            object.__setattr__(self, "dataflow", Dataflow(self.dataflow))

    def __repr__(self) -> str:  # the dataflow by its value, as before it was an enum
        return (f"Plan(dataflow={str(self.dataflow)!r}, kc={self.kc!r}, mt={self.mt!r}, mb={self.mb!r}, "
                f"nt={self.nt!r}, order={self.order!r}, cost={self.cost!r})")


# --------------------------------------------------------------- operand views
class Rect(NamedTuple):
    """A rectangle [m0, m1) x [k0, k1) of the A operand (im2col space).

    ``offset`` is the byte offset of element (m0, k0) in its tensor, or None if
    the rectangle is padding (zeros)."""

    m0: int
    m1: int
    k0: int
    k1: int
    offset: int | None
    m_stride: int = 0
    k_stride: int = 0


class _View:
    """Equality and hashing by the parameters that define a view (``_key``): the memoised block loads
    (:func:`a_block_loads`) are shared by every equal view, e.g. across the plans the mapper costs."""

    _key: tuple
    _hash: int

    def _set_key(self, *key) -> None:
        self._key, self._hash = key, hash(key)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key == self._key

    def __hash__(self) -> int:
        return self._hash


class GemmA(_View):
    """A row-major M x K matrix."""

    tensor = "A"

    def __init__(self, M: int, K: int):
        self.M, self.K = M, K
        self._set_key(M, K)

    def rects(self, m0: int, m1: int, k0: int, k1: int) -> list[Rect]:
        return [Rect(m0, m1, k0, k1, m0 * self.K + k0, self.K, 1)]

    def block_key(self, m0: int, m1: int) -> tuple:
        """Blocks with equal keys have the same rects up to one constant offset shift (see ConvA.block_key)."""
        return (m1 - m0,)

    def chunk_key(self, m0: int, m1: int, k0: int, k1: int) -> tuple:
        """See ConvA.chunk_key: a row-major matrix is translation invariant along k."""
        return (k1 - k0,)

    def block_origin(self, m0: int) -> int:
        """See ConvA.block_origin."""
        return m0 * self.K

    def chunk_origin(self, k0: int) -> int:
        """See ConvA.chunk_origin."""
        return k0

    def fill_origin(self, m0: int, k0: int) -> int:
        """See ConvA.fill_origin."""
        return self.block_origin(m0) + k0


class ConvA(_View):
    """The im2col view of (one group of) an NHWC input:
    A[m = oh*OW + ow, k = (kh*KW + kw)*Cin + c] = X[oh*sh + kh*dh - ph, ow*sw + kw*dw - pw, c_off + c],
    where X has ``c_total`` channels and the group reads ``Cin`` of them from ``c_off``."""

    tensor = "X"

    def __init__(self, H: int, W: int, Cin: int, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int,
                 pb: int | None = None, pr: int | None = None, dh: int = 1, dw: int = 1,
                 c_total: int | None = None, c_off: int = 0):
        self.H, self.W, self.Cin, self.KH, self.KW = H, W, Cin, KH, KW
        self.sh, self.sw, self.ph, self.pw, self.dh, self.dw = sh, sw, ph, pw, dh, dw
        self.c_total = Cin if c_total is None else c_total
        self.c_off = c_off
        self.OH = conv_out_size(H, KH, sh, ph, pb, dh)
        self.OW = conv_out_size(W, KW, sw, pw, pr, dw)
        self.M, self.K = self.OH * self.OW, KH * KW * Cin
        self._set_key(H, W, Cin, KH, KW, sh, sw, ph, pw, self.OH, self.OW, dh, dw, self.c_total, c_off)
        self._row_classes: tuple[int, ...] | None = None
        self._valid: list[tuple[bool, ...]] = []  # row class -> validity of each kernel row kh
        self._vpatterns: dict[tuple[int, ...], tuple] = {}
        # kernel column kw -> the clamped range [first ow, past last ow) whose input column is inside X
        self._hclass = tuple((min(self.OW, max(0, cdiv(pw - kw * dw, sw))),
                              max(0, min(self.OW, (W - 1 + pw - kw * dw) // sw + 1))) for kw in range(KW))
        # kernel offset g = kh*KW + kw -> its offset in X relative to the input pixel under the output pixel
        self._koff = tuple((kh * dh * W + kw * dw) * self.c_total for kh in range(KH) for kw in range(KW))

    def rects(self, m0: int, m1: int, k0: int, k1: int) -> list[Rect]:
        out: list[Rect] = []
        OW, Cin, sw, ct = self.OW, self.Cin, self.sw, self.c_total
        m = m0
        while m < m1:  # one output row at a time
            oh = m // OW
            ma, mb = m, min(m1, (oh + 1) * OW)
            owa, owb = ma - oh * OW, mb - oh * OW
            k = k0
            while k < k1:  # one kernel offset (kh, kw) at a time
                g = k // Cin
                ka, kb = k, min(k1, (g + 1) * Cin)
                kh, kw = divmod(g, self.KW)
                c = ka - g * Cin
                ih = oh * self.sh + kh * self.dh - self.ph
                kwd = kw * self.dw
                if not 0 <= ih < self.H:
                    out.append(_new(Rect, (ma, mb, ka, kb, None, 0, 0)))
                else:
                    lo = max(owa, cdiv(self.pw - kwd, sw))  # first ow with iw >= 0
                    hi = min(owb, (self.W - 1 + self.pw - kwd) // sw + 1)  # past the last ow with iw < W
                    if lo >= hi:
                        out.append(_new(Rect, (ma, mb, ka, kb, None, 0, 0)))
                    else:
                        base_m = oh * OW
                        if lo > owa:
                            out.append(_new(Rect, (ma, base_m + lo, ka, kb, None, 0, 0)))
                        iw = lo * sw + kwd - self.pw
                        out.append(_new(Rect, (base_m + lo, base_m + hi, ka, kb,
                                               (ih * self.W + iw) * ct + self.c_off + c, sw * ct, 1)))
                        if hi < owb:
                            out.append(_new(Rect, (base_m + hi, mb, ka, kb, None, 0, 0)))
                k = kb
            m = mb
        return out

    @property
    def row_classes(self) -> tuple[int, ...]:
        """For each output row oh, an id of the set of kernel rows kh that read inside the input
        (rows with equal ids differ only by a vertical translation of their input rows)."""
        if self._row_classes is None:
            ids: dict[tuple[bool, ...], int] = {}
            rows = []
            for oh in range(self.OH):
                valid = tuple(0 <= oh * self.sh + kh * self.dh - self.ph < self.H for kh in range(self.KH))
                rows.append(ids.setdefault(valid, len(ids)))
            self._row_classes = tuple(rows)
            self._valid = list(ids)
        return self._row_classes

    def block_key(self, m0: int, m1: int) -> tuple:
        """A key such that two m ranges with equal keys have, for any k range, the same rects up to
        one constant shift of every tensor offset: the position of m0 in its output row, the length,
        and the padding class of each output row touched (the rows' input rows then differ by
        (oh - oh') * sh throughout). Load merging depends on offset differences only, so the merged
        loads of such blocks have the same shapes, strides and timing.

        A block inside one output row is also translation invariant along the row as long as each
        kernel column clips it the same way: its key is then the length, the row's class and, per
        kw, the clipped valid range relative to the block."""
        OW = self.OW
        oh = m0 // OW
        if (m1 - 1) // OW == oh:
            owa, n = m0 - oh * OW, m1 - m0
            return (-1, n, self.row_classes[oh],
                    tuple((min(n, max(0, lo - owa)), max(0, min(n, hi - owa))) for lo, hi in self._hclass))
        return (m0 % OW, m1 - m0, self.row_classes[oh:(m1 - 1) // OW + 1])

    def chunk_key(self, m0: int, m1: int, k0: int, k1: int) -> tuple:
        """A key such that, among blocks with one ``block_key``, two (block, chunk [k0, k1)) pairs with
        equal keys have the same rects up to one constant offset shift.

        A valid element's offset is separable: base(m) + koff(g) + c (g = kh*KW + kw the kernel
        offset, c the channel), and whether it is padding depends on (row, kh) and (ow, kw) only.
        So the chunk is described by its segments (one per kernel offset it touches): the block's
        validity pattern of kh, the clamped valid ow range of kw, the segment's length and the
        offset of its first element relative to the chunk's first."""
        OW, Cin, KW = self.OW, self.Cin, self.KW
        rows = self.row_classes[m0 // OW:(m1 - 1) // OW + 1]
        uniq = tuple(sorted(set(rows)))
        vk = self._vpatterns.get(uniq)
        if vk is None:
            vk = self._vpatterns[uniq] = tuple(tuple(self._valid[rc][kh] for rc in uniq) for kh in range(self.KH))
        g = k0 // Cin
        base = self._koff[g] + k0 - g * Cin
        segs = []
        k = k0
        while k < k1:
            g = k // Cin
            kb = min(k1, (g + 1) * Cin)
            kh, kw = divmod(g, KW)
            segs.append((vk[kh], self._hclass[kw], kb - k, self._koff[g] + k - g * Cin - base))
            k = kb
        return tuple(segs)

    def block_origin(self, m0: int) -> int:
        """The part of the tensor offsets of a block starting at row ``m0`` that depends on ``m0``:
        two blocks with equal ``block_key`` (and chunks with equal ``chunk_key``) have rects shifted
        by exactly the difference of their ``block_origin`` (plus that of their ``chunk_origin``).
        A valid element's offset is ``block_origin(m) + chunk_origin(k) + constant``."""
        oh, ow = divmod(m0, self.OW)
        return (oh * self.sh * self.W + ow * self.sw) * self.c_total

    def chunk_origin(self, k0: int) -> int:
        """The part of the tensor offsets of a chunk starting at ``k0`` that depends on ``k0`` (the
        ``base`` of :meth:`chunk_key`): see :meth:`block_origin`."""
        g = k0 // self.Cin
        return self._koff[g] + k0 - g * self.Cin

    def fill_origin(self, m0: int, k0: int) -> int:
        """``block_origin(m0) + chunk_origin(k0)`` + the group's first channel: the views of a grouped
        convolution's groups differ only in that channel offset, which moves every offset by itself, so
        fills with equal ``block_key`` and ``chunk_key`` in any of them are one fill shifted by the
        difference of their ``fill_origin``."""
        return self.block_origin(m0) + self.chunk_origin(k0) + self.c_off


# ---------------------------------------------------------------- load pieces
class Load(NamedTuple):
    """One load instruction before relocation (``offset`` is relative to ``tensor``).

    (A named tuple rather than a dataclass: the analytical model builds many of them.)"""

    target: int
    zero: int
    spad_addr: int
    count: int
    lane_off: int
    lanes: int
    tensor: str | None
    offset: int
    word_stride: int
    lane_stride: int


_SLO, _SHI = _STRIDE_FIELD.lo, _STRIDE_FIELD.hi


def _fits_stride(s: int) -> bool:
    return _SLO <= s <= _SHI


def piece(target: int, spad_addr: int, count: int, lane_off: int, lanes: int, tensor: str, offset: int | None,
          word_stride: int, lane_stride: int) -> Load:
    if offset is None:
        return _new(Load, (target, 1, spad_addr, count, lane_off, lanes, None, 0, 0, 0))
    ws = word_stride if count > 1 else 0
    ls = lane_stride if lanes > 1 or target == _W4 else 0  # packed lanes are always contiguous nibbles
    if not (_SLO <= ws <= _SHI and _SLO <= ls <= _SHI):
        raise LoweringError(f"load stride {ws if not _fits_stride(ws) else ls} does not fit the "
                            f"{_STRIDE_FIELD.width}-bit stride field")
    return _new(Load, (target, 0, spad_addr, count, lane_off, lanes, tensor, offset, ws, ls))


def _join_stride(n_p: int, s_p: int, n_q: int, s_q: int, d_off: int) -> int | None:
    """The common stride of two runs of n_p and n_q elements, the second starting d_off after the first."""
    if n_p > 1:
        s = s_p
    elif n_q > 1:
        s = s_q
    else:
        s = d_off // n_p
    if d_off != n_p * s or (n_q > 1 and s_q != s) or not _fits_stride(s):
        return None
    return s


def _try_merge(p: Load, q: Load) -> Load | None:
    """p and q as one load, when q continues p along the words or along the lanes. (Fields unpacked once
    and the result built with ``tuple.__new__``: ``Load._replace`` was most of the merge's time.)
    Packed-weight loads (target w4) join along the words only: their offsets count bytes, their lanes
    nibbles."""
    pt, pz, psa, pn, plo, pln, pten, poff, pws, pls = p
    qt, qz, qsa, qn, qlo, qln, qten, qoff, qws, qls = q
    if pt != qt or pz != qz or pten != qten:
        return None
    if plo == qlo and pln == qln and qsa == psa + pn:
        if pz:
            return _new(Load, (pt, pz, psa, pn + qn, plo, pln, pten, poff, pws, pls))
        if pln > 1 and pls != qls:
            return None
        s = _join_stride(pn, pws, qn, qws, qoff - poff)
        if s is not None:
            return _new(Load, (pt, pz, psa, pn + qn, plo, pln, pten, poff, s, max(pls, qls)))
    if psa == qsa and pn == qn and qlo == plo + pln and pt != _W4:
        if pz:
            return _new(Load, (pt, pz, psa, pn, plo, pln + qln, pten, poff, pws, pls))
        if pn > 1 and pws != qws:
            return None
        s = _join_stride(pln, pls, qln, qls, qoff - poff)
        if s is not None:
            return _new(Load, (pt, pz, psa, pn, plo, pln + qln, pten, poff, max(pws, qws), s))
    return None


def merge(pieces: Iterable[Load]) -> list[Load]:
    """Merge disjoint load pieces (their order is free) into fewer, larger loads.

    Greedy: each piece in turn is joined with the earliest kept load it continues
    (along the words or the lanes, in either order), repeatedly; the result keeps
    insertion order. Kept loads are indexed by the address ranges a partner must
    abut (``_try_merge`` needs one of these four to match), so this is linear in
    the number of pieces; the result is the same as trying every kept load in order."""
    alive: dict[int, Load] = {}
    # (lane_off, lanes, end word) / (lane_off, lanes, first word) / (first word, count, end lane) /
    # (first word, count, first lane) -> kept loads (by sequence number) with that range
    w_end: dict[tuple, list[int]] = {}
    w_start: dict[tuple, list[int]] = {}
    l_end: dict[tuple, list[int]] = {}
    l_start: dict[tuple, list[int]] = {}
    we_get, ws_get, le_get, ls_get = w_end.get, w_start.get, l_end.get, l_start.get
    empty: tuple = ()
    seq = 0
    for q in pieces:
        while True:
            _, _, sa, n, lo, ln = q[:6]
            cands = [*we_get((lo, ln, sa), empty), *ws_get((lo, ln, sa + n), empty),
                     *le_get((sa, n, lo), empty), *ls_get((sa, n, lo + ln), empty)]
            if not cands:
                break
            if len(cands) > 1:
                cands = sorted(set(cands))
            for i in cands:
                p = alive[i]
                r = _try_merge(p, q) or _try_merge(q, p)
                if r is not None:
                    del alive[i]
                    _, _, sa, n, lo, ln = p[:6]
                    w_end[(lo, ln, sa + n)].remove(i)
                    w_start[(lo, ln, sa)].remove(i)
                    l_end[(sa, n, lo + ln)].remove(i)
                    l_start[(sa, n, lo)].remove(i)
                    q = r
                    break
            else:
                break
        alive[seq] = q
        _, _, sa, n, lo, ln = q[:6]
        for index, key in ((w_end, (lo, ln, sa + n)), (w_start, (lo, ln, sa)), (l_end, (sa, n, lo + ln)),
                           (l_start, (sa, n, lo))):
            bucket = index.get(key)
            if bucket is None:
                index[key] = [seq]
            else:
                bucket.append(seq)
        seq += 1
    return list(alive.values())


# ------------------------------------------------------ loads of one block
def a_block_loads(R: int, plan: Plan, aview, m0: int, m1: int, k0: int, k1: int) -> Sequence[Load]:
    """The loads filling the A scratchpad with rows [m0, m1) x reduction chunk [k0, k1).

    os: the block is cut into R-row tiles; A word ``i*kc + k`` holds tile i's rows at k0+k.
    ws: the chunk is cut into R-wide k tiles; A word ``t*mb + m`` holds row m0+m, k tile t.
    Memoised by value (the plan enters only through its dataflow and that one layout field, so the
    mapper's candidate plans share fills): the tuple returned is shared."""
    os_ = plan.dataflow is Dataflow.OS
    return _a_block_loads(R, os_, plan.kc if os_ else plan.mb, aview, m0, m1, k0, k1)


@lru_cache(maxsize=1 << 15)
def _a_block_loads(R: int, os_: bool, layout: int, aview, m0: int, m1: int, k0: int, k1: int) -> tuple[Load, ...]:
    """:func:`a_block_loads` (``os_``: output-stationary; ``layout``: the plan's ``kc`` for os, ``mb`` for
    ws; the dataflow as a bool, whose hash is cheaper than the enum's)."""
    pieces = []
    tensor = aview.tensor
    if os_:  # words along k, lanes along m
        for i, ta in enumerate(range(m0, m1, R)):
            tb = min(m1, ta + R)
            w0 = i * layout - k0
            for r in aview.rects(ta, tb, k0, k1):
                pieces.append(piece(0, w0 + r.k0, r.k1 - r.k0, r.m0 - ta, r.m1 - r.m0, tensor, r.offset,
                                    r.k_stride, r.m_stride))
    else:  # words along m, lanes along k
        for t, ka in enumerate(range(k0, k1, R)):
            kb = min(k1, ka + R)
            w0 = t * layout - m0
            for r in aview.rects(m0, m1, ka, kb):
                pieces.append(piece(0, w0 + r.m0, r.m1 - r.m0, r.k0 - ka, r.k1 - r.k0, tensor, r.offset,
                                    r.m_stride, r.k_stride))
    return tuple(merge(pieces))


def w_row_stride(n: int, packed: bool) -> int:
    """The distance, in weights, between W's rows of ``n`` columns in host memory: ``n``, or packed (two
    4-bit weights per byte, low nibble first) each row padded to whole bytes so that it starts on one."""
    return 2 * cdiv(n, 2) if packed else n


def w_host_bytes(rows: int, n: int, packed: bool) -> int:
    """Host bytes of a ``rows`` x ``n`` W tensor in the layout of :func:`w_row_stride`."""
    return rows * w_row_stride(n, packed) // (2 if packed else 1)


def w_byte_offset(element: int, packed: bool) -> int:
    """The host byte of W's element (weight) offset ``element`` (even when packed: see :func:`w_packable`)."""
    return element // 2 if packed else element


def w_packable(cols: int, group_cols: int, groups: int) -> bool:
    """Whether W can be loaded packed (target w4) on an array of ``cols`` columns when each of ``groups``
    groups has ``group_cols`` output channels: a packed load's lane 0 is the low nibble of a byte, so every
    column tile (``cols`` apart) and every group (``group_cols`` apart) must start on an even weight."""
    return cols % 2 == 0 and (groups == 1 or group_cols % 2 == 0)


def w_block_loads(R: int, plan: Plan, tiles: Sequence[tuple[int, int]], k0: int, k1: int, w_stride: int,
                  w_off: int, packed: bool = False) -> Sequence[Load]:
    """The loads filling the W scratchpad with column tiles ``tiles`` x reduction chunk [k0, k1);
    W[k, n] is weight ``k*w_stride + w_off + n`` of the W tensor (its byte when plain; packed, two per
    byte, :func:`w_row_stride`: loads of target w4 at byte offsets half the weight offsets, which the
    caller keeps even, :func:`w_packable`).

    os: W word ``j*kc + k`` holds W[k0+k, tile j]; ws: words ``(j*kt + t)*R + i`` hold W[k0 + t*R + i, tile j].
    Memoised by value, as :func:`a_block_loads` (the tuple returned is shared)."""
    os_ = plan.dataflow is Dataflow.OS
    return _w_block_loads(R, os_, plan.kc if os_ else cdiv(plan.kc, R), tuple(tiles), k0, k1, w_stride, w_off,
                          packed)


@lru_cache(maxsize=1 << 15)
def _w_block_loads(R: int, os_: bool, layout: int, tiles: tuple[tuple[int, int], ...], k0: int, k1: int,
                   w_stride: int, w_off: int, packed: bool) -> tuple[Load, ...]:
    """:func:`w_block_loads` (``os_``, ``layout``: the plan's ``kc`` for os, its k tiles per chunk for ws)."""
    pieces = []
    target, d = (_W4, 2) if packed else (1, 1)
    stride = w_stride // d
    for j, (na, nb) in enumerate(tiles):
        if os_:
            pieces.append(piece(target, j * layout, k1 - k0, 0, nb - na, "W", (k0 * w_stride + w_off + na) // d,
                                stride, 1))
        else:
            for t, ka in enumerate(range(k0, k1, R)):
                kb = min(k1, ka + R)
                pieces.append(piece(target, (j * layout + t) * R, kb - ka, 0, nb - na, "W",
                                    (ka * w_stride + w_off + na) // d, stride, 1))
    return tuple(merge(pieces))


def clear_cache() -> None:
    """Forget the memoised block loads (:func:`a_block_loads`, :func:`w_block_loads`)."""
    _a_block_loads.cache_clear()
    _w_block_loads.cache_clear()


def q_tile_load(entry: int, n: int) -> Load:
    """The quantization-table load of ``n`` entries from entry ``entry`` (one output column tile)."""
    return Load(2, 0, 0, n, 0, QTABLE_BYTES, "Q", entry * QTABLE_BYTES, QTABLE_BYTES if n > 1 else 0, 1)


# ------------------------------------------------------------ residency rules
# The emitter skips a load whose scratchpad contents are still resident: it keeps the
# (block, chunk) whose A / W it loaded last. Walking the blocks in ``order`` with the
# reduction chunks innermost, these closed forms give how many times each fill is issued.
def a_visits(order: str, nMB: int, nNB: int, nk: int) -> int:
    """Times the A fill of each (m block, chunk) is issued."""
    return 1 if nk == 1 and (order == "m" or nMB == 1) else nNB


def w_visits(order: str, nMB: int, nNB: int, nk: int) -> int:
    """Times the W fill of each (n block, chunk) is issued."""
    return 1 if nk == 1 and (order == "n" or nNB == 1) else nMB


def q_visits(order: str, nMB: int, tiles_in_block: int, Nt: int) -> int:
    """Times the quantization-table load of each column tile (in an n block of ``tiles_in_block``
    tiles, of ``Nt`` tiles in all) is issued: it is skipped when the previous block stored the same
    single tile."""
    if order == "n":
        return 1 if tiles_in_block == 1 else nMB
    return 1 if Nt == 1 else nMB
