"""Independent integer reference for GEMM and convolution.

This module deliberately shares no code with the cycle model (:mod:`sim.cycle`)
nor with :func:`hwgen.isa.requantize`: the accumulation is a plain numpy int64
matmul (GEMM) or a sum of shifted slices of a zero-padded input (convolution,
no im2col), and the requantization is written again from its documented rule
with Python integers and floor division:

    y = floor((acc * multiplier + 2**(shift-1)) / 2**shift)   (shift > 0)
    y = acc * multiplier                                       (shift = 0)
    y = y + zero_point
    y = min(max(y, lo), clamp_hi), lo = max(clamp_lo, zero_point) if relu else clamp_lo

The accumulation is exact (no wrap): callers keep the reduction within the
configuration's ``max_reduction`` so that the hardware's accumulators do not
wrap either.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

__all__ = ["Quant", "ChannelQuant", "output_dtype", "requantize_ref", "requantize_any_ref", "gemm_acc", "gemm_ref",
           "conv2d_acc", "conv2d_ref", "conv_out_size", "pair", "pads4", "range_quant"]


class Quant(NamedTuple):
    """Requantization parameters (the ``config`` instruction's fields plus the store's ``relu``)."""

    multiplier: int
    shift: int
    zero_point: int
    clamp_lo: int
    clamp_hi: int
    relu: bool = False


def output_dtype(quant: Sequence[int]) -> str:
    """'uint8' when the clamp range reaches above 127, else 'int8'.

    A range that needs both negative values and values above 127 has no single
    byte type; that is an error.
    """
    q = Quant(*quant)
    lo = max(q.clamp_lo, q.zero_point) if q.relu else q.clamp_lo
    if q.clamp_hi > 127:
        if min(lo, q.clamp_hi) < 0:
            raise ValueError(f"clamp range [{lo}, {q.clamp_hi}] fits neither int8 nor uint8")
        return "uint8"
    return "int8"


def requantize_ref(acc: np.ndarray, quant: Sequence[int]) -> np.ndarray:
    """Apply the requantization rule element-wise with Python integers; returns int64."""
    q = Quant(*quant)
    flat = [int(v) for v in np.asarray(acc).reshape(-1)]
    lo = max(q.clamp_lo, q.zero_point) if q.relu else q.clamp_lo
    mult, shift, zp, hi = int(q.multiplier), int(q.shift), int(q.zero_point), int(q.clamp_hi)
    div = 1 << shift
    half = div // 2  # 2**(shift-1) when shift > 0, else 0
    out = []
    for v in flat:
        y = (v * mult + half) // div + zp
        out.append(min(max(y, lo), hi))
    return np.array(out, dtype=np.int64).reshape(np.shape(acc))


def _to_bytes(y: np.ndarray, quant: Sequence[int]) -> np.ndarray:
    dt = output_dtype(quant)
    info = np.iinfo(dt)
    if y.size and (y.min() < info.min or y.max() > info.max):
        raise ValueError(f"requantized values {y.min()}..{y.max()} do not fit {dt}")
    return y.astype(dt)


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    """An int or a pair of ints, as a pair (height, width)."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def conv_out_size(size: int, kernel: int, stride: int, padding: int, padding_end: int | None = None,
                  dilation: int = 1) -> int:
    """Output size along one axis; ``padding_end`` defaults to ``padding`` (symmetric)."""
    end = padding if padding_end is None else padding_end
    return (size + padding + end - dilation * (kernel - 1) - 1) // stride + 1


def pads4(v: int | Sequence[int]) -> tuple[int, int, int, int]:
    """Padding as (top, left, bottom, right) from an int, an (h, w) pair or a 4-tuple."""
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 4
    v = tuple(int(x) for x in v)
    if len(v) == 2:
        return (v[0], v[1], v[0], v[1])
    if len(v) == 4:
        return v  # type: ignore[return-value]
    raise ValueError(f"padding must be an int, a pair or (top, left, bottom, right), not {v}")


class ChannelQuant(NamedTuple):
    """Per-output-channel requantization (the accelerator's quantization table):
    acc + bias[n], times multiplier[n], rounding shift by shift[n], then the
    shared zero point, ReLU and clamp."""

    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: int
    clamp_lo: int
    clamp_hi: int
    relu: bool = False

    def channel(self, n: int) -> Quant:
        return Quant(int(self.multiplier[n]), int(self.shift[n]), self.zero_point, self.clamp_lo, self.clamp_hi,
                     self.relu)


def requantize_any_ref(acc: np.ndarray, quant) -> np.ndarray:
    """:func:`requantize_ref` for a Quant, or per channel (last axis) with bias for a ChannelQuant."""
    if isinstance(quant, ChannelQuant):
        acc = np.asarray(acc, dtype=np.int64)
        cols = [requantize_ref(acc[..., n] + int(quant.bias[n]), quant.channel(n)) for n in range(acc.shape[-1])]
        return np.stack(cols, axis=-1) if cols else acc
    return requantize_ref(acc, quant)


def range_quant(quant) -> Quant:
    """The (zero point, clamp, relu) part of a quantization, for the output type."""
    if isinstance(quant, ChannelQuant):
        return Quant(1, 0, quant.zero_point, quant.clamp_lo, quant.clamp_hi, quant.relu)
    return Quant(*quant)


def gemm_acc(A: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The exact int64 accumulators A[M, K] @ W[K, N]."""
    A = np.asarray(A)
    W = np.asarray(W)
    if A.ndim != 2 or W.ndim != 2 or A.shape[1] != W.shape[0]:
        raise ValueError(f"gemm: shapes {A.shape} and {W.shape} do not chain")
    return A.astype(np.int64) @ W.astype(np.int64)


def gemm_ref(A: np.ndarray, W: np.ndarray, quant) -> np.ndarray:
    """out[M, N] = requantize(A[M, K] @ W[K, N]) as int8 (or uint8, see :func:`output_dtype`)."""
    return _to_bytes(requantize_any_ref(gemm_acc(A, W), quant), range_quant(quant))


def conv2d_ref(X: np.ndarray, Wt: np.ndarray, stride: int | Sequence[int], padding: int | Sequence[int],
               quant, groups: int = 1, dilation: int | Sequence[int] = 1, pad_value: int = 0) -> np.ndarray:
    """NHWC convolution, batch 1: X[H, W, Cin], Wt[KH, KW, Cin/groups, Cout] -> out[OH, OW, Cout], requantized."""
    acc = conv2d_acc(X, Wt, stride, padding, groups, dilation, pad_value)
    return _to_bytes(requantize_any_ref(acc, quant), range_quant(quant))


def conv2d_acc(X: np.ndarray, Wt: np.ndarray, stride: int | Sequence[int], padding: int | Sequence[int],
               groups: int = 1, dilation: int | Sequence[int] = 1, pad_value: int = 0) -> np.ndarray:
    """The exact int64 accumulators of an NHWC convolution (batch 1), [OH, OW, Cout].

    Computed directly: the sum over kernel offsets (kh, kw) of the strided slice
    of the padded input (padding holds ``pad_value``, e.g. the input zero point)
    times the (Cin/groups x Cout/groups) weight matrix of that offset, per group.
    """
    X = np.asarray(X)
    Wt = np.asarray(Wt)
    if X.ndim != 3 or Wt.ndim != 4 or groups < 1 or X.shape[2] != Wt.shape[2] * groups or Wt.shape[3] % groups:
        raise ValueError(f"conv2d: shapes {X.shape} and {Wt.shape} do not match (NHWC, KH KW Cin/groups Cout) "
                         f"with groups={groups}")
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    pt, pl, pb, pr = pads4(padding)
    H, Wd, Cin = X.shape
    KH, KW, Cg, Cout = Wt.shape
    OH, OW = conv_out_size(H, KH, sh, pt, pb, dh), conv_out_size(Wd, KW, sw, pl, pr, dw)
    if OH < 1 or OW < 1:
        raise ValueError(f"conv2d: empty output {OH}x{OW}")
    Xp = np.full((H + pt + pb, Wd + pl + pr, Cin), pad_value, dtype=np.int64)
    Xp[pt:pt + H, pl:pl + Wd, :] = X
    acc = np.zeros((OH, OW, Cout), dtype=np.int64)
    Og = Cout // groups
    for g in range(groups):
        for kh in range(KH):
            for kw in range(KW):
                patch = Xp[kh * dh:kh * dh + sh * (OH - 1) + 1:sh, kw * dw:kw * dw + sw * (OW - 1) + 1:sw,
                           g * Cg:(g + 1) * Cg]  # OH x OW x Cg
                acc[..., g * Og:(g + 1) * Og] += np.tensordot(patch, Wt[kh, kw, :, g * Og:(g + 1) * Og].astype(np.int64),
                                                              axes=([2], [0]))
    return acc
