"""Random lowered programs with their expected outputs, for the model and RTL regressions.

``random_programs(cfg, n, seed)`` returns ``n`` (Program, expected) pairs; the
expected output comes from the independent reference (:mod:`sim.reference`).
The set cycles through these kinds so that every set of four or more covers
them all:

* ``gemm``: M, N not multiples of the array (where the array allows it), several
  tiles in each direction, a random short reduction;
* ``gemm_longk``: a reduction longer than the scratchpads hold (the lowering
  accumulates across reduction chunks), capped by ``max_reduction``;
* ``gemm_extreme``: operands only at the extremes of their range (all minimum,
  all maximum, or a random mix of both);
* ``conv``: a convolution with stride 1-2 and padding 0-2, lowered to strided
  loads (sometimes with extreme operands too);
* ``conv_q``: a quantized-network style convolution: grouped or depthwise,
  dilation 1-2, asymmetric padding filled with a non-zero input zero point, and
  per-channel bias, multiplier and shift through the quantization table.

Requantization parameters are drawn so that outputs spread over the output
range (the shift is drawn over its whole useful range, the multiplier scaled to
match, sometimes negative), with int8 or uint8 outputs, ReLU on or off; the
dataflow is drawn among those the configuration supports. Each program's cycle
count (from :mod:`sim.timing`, as the model counts it) stays under
``max_cycles``: shapes are redrawn smaller until it does. Deterministic for a
seed.
"""

from __future__ import annotations

import math

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.program import Program
from sim.reference import ChannelQuant, Quant, conv2d_acc, conv2d_ref, conv_out_size, gemm_acc, gemm_ref
from sim.timing import instruction_cycles

from .lowering import lower_conv2d, lower_gemm

__all__ = ["random_programs", "random_quant", "random_channel_quant", "program_cycles", "KINDS"]

KINDS = ("gemm", "gemm_longk", "gemm_extreme", "conv", "conv_q")


def program_cycles(cfg: AcceleratorConfig, prog: Program) -> int:
    """Cycles of a straight-line program (every lowered program is one): the sum of its instructions'."""
    return sum(instruction_cycles(cfg, i) for i in prog.instructions)


def random_quant(rng: np.random.Generator, cfg: AcceleratorConfig, acc: np.ndarray) -> Quant:
    """Requantization parameters that map the spread of ``acc`` onto the output range."""
    ow = cfg.output_width
    unsigned = rng.random() < 0.3
    if unsigned:
        lo, hi = 0, (1 << ow) - 1
        zp = int(rng.integers(0, 1 << ow)) if rng.random() < 0.5 else 1 << (ow - 1)
    else:
        lo, hi = -(1 << (ow - 1)), (1 << (ow - 1)) - 1
        zp = int(rng.integers(-(1 << (ow - 3)), (1 << (ow - 3)) + 1)) if rng.random() < 0.6 else 0
    if rng.random() < 0.2:  # a narrower clamp
        third = (hi - lo) // 3
        lo, hi = int(rng.integers(lo, lo + third + 1)), int(rng.integers(hi - third, hi + 1))
    relu = bool(rng.random() < 0.5)
    spread = float(np.percentile(np.abs(acc), 90)) if acc.size else 1.0
    spread = max(spread, 1.0)
    target = float(rng.uniform(0.25, 1.0)) * (1 << (ow - 1))  # output magnitude of a 90th-percentile accumulator
    mmax = (1 << 31) - 1
    smin = max(0, math.ceil(math.log2(spread / target)))
    smax = min(62, math.floor(math.log2(mmax * spread / target)))
    if rng.random() < 0.05:
        shift, mult = 0, int(rng.integers(1, 4))  # no rounding, mostly saturated
    else:
        shift = int(rng.integers(smin, max(smin, smax) + 1))
        mult = int(min(mmax, max(1, round(target / spread * (1 << shift)))))
    if rng.random() < 0.1:
        mult = -mult
    return Quant(mult, shift, zp, lo, hi, relu)


def _operands(rng: np.random.Generator, shape: tuple[int, ...], width: int, extreme: bool) -> np.ndarray:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if not extreme:
        return rng.integers(lo, hi + 1, shape, dtype=np.int64).astype(np.int8)
    mode = rng.integers(0, 3)
    if mode == 0:
        return np.full(shape, lo, dtype=np.int8)
    if mode == 1:
        return np.full(shape, hi, dtype=np.int8)
    return np.where(rng.random(shape) < 0.5, lo, hi).astype(np.int8)


def _not_multiple(rng: np.random.Generator, lo: int, hi: int, tile: int) -> int:
    """A value in [lo, hi] that is not a multiple of ``tile`` (when tile > 1 allows it)."""
    for _ in range(20):
        v = int(rng.integers(lo, hi + 1))
        if tile == 1 or v % tile:
            return v
    return v


def _draw(rng: np.random.Generator, cfg: AcceleratorConfig, kind: str, scale: float):
    """One workload: (lower function args, accumulators, meta)."""
    R, C = cfg.rows, cfg.cols
    iw, ww = cfg.input_width, cfg.weight_width
    s = lambda n: max(1, int(round(n * scale)))  # noqa: E731
    if kind in ("gemm", "gemm_extreme"):
        M = _not_multiple(rng, R + 1, max(R + 1, s(3 * R + 2)), R)
        N = _not_multiple(rng, C + 1, max(C + 1, s(3 * C + 2)), C)
        K = int(rng.integers(1, max(2, s(3 * R + 8)) + 1))
        K = min(K, cfg.max_reduction)
        ext = kind == "gemm_extreme"
        A, W = _operands(rng, (M, K), iw, ext), _operands(rng, (K, N), ww, ext)
        return ("gemm", (A, W)), gemm_acc(A, W), dict(M=M, K=K, N=N)
    if kind == "gemm_longk":
        kmin = min(cfg.a_spad_depth, cfg.w_spad_depth)
        hi = min(cfg.max_reduction, max(kmin + 1, s(2 * kmin + R)))
        lo = min(kmin + 1, hi)
        K = int(rng.integers(lo, hi + 1))
        M = int(rng.integers(1, max(1, s(R + 2)) + 1))
        N = int(rng.integers(1, max(1, s(C + 2)) + 1))
        ext = bool(rng.random() < 0.3)
        A, W = _operands(rng, (M, K), iw, ext), _operands(rng, (K, N), ww, ext)
        return ("gemm", (A, W)), gemm_acc(A, W), dict(M=M, K=K, N=N)
    if kind == "conv_q":
        return _draw_conv_q(rng, cfg, s)
    # conv
    for _ in range(100):
        KH, KW = (int(v) for v in rng.integers(1, 4, 2))
        stride = int(rng.integers(1, 3))
        pad = int(rng.integers(0, 3))
        H, Wd = (int(v) for v in rng.integers(1, max(2, s(8)) + 1, 2))
        Cin = int(rng.integers(1, max(1, s(6)) + 1))
        Cout = int(rng.integers(1, max(1, s(2 * C + 1)) + 1))
        if conv_out_size(H, KH, stride, pad) >= 1 and conv_out_size(Wd, KW, stride, pad) >= 1 \
                and KH * KW * Cin <= cfg.max_reduction:
            break
    else:  # pragma: no cover - a 1x1 kernel always fits
        KH = KW = stride = 1
        pad = 0
    ext = rng.random() < 0.2
    X, Wt = _operands(rng, (H, Wd, Cin), iw, ext), _operands(rng, (KH, KW, Cin, Cout), ww, ext)
    meta = dict(H=H, W=Wd, Cin=Cin, KH=KH, KW=KW, Cout=Cout, stride=stride, padding=pad)
    return ("conv", (X, Wt, stride, pad)), conv2d_acc(X, Wt, stride, pad), meta


def _draw_conv_q(rng: np.random.Generator, cfg: AcceleratorConfig, s):
    C = cfg.cols
    for _ in range(100):
        depthwise = rng.random() < 0.5
        groups = int(rng.integers(2, 5)) if not depthwise else int(rng.integers(2, max(2, s(2 * C)) + 1))
        Cg = 1 if depthwise else int(rng.integers(1, 4))
        Og = int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, max(1, s(C + 2)) + 1))
        KH, KW = (int(v) for v in rng.integers(1, 4, 2))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pads = tuple(int(v) for v in rng.integers(0, 3, 4))
        H, Wd = (int(v) for v in rng.integers(1, max(2, s(7)) + 1, 2))
        if conv_out_size(H, KH, stride[0], pads[0], pads[2], dil[0]) >= 1 and \
                conv_out_size(Wd, KW, stride[1], pads[1], pads[3], dil[1]) >= 1 and KH * KW * Cg <= cfg.max_reduction:
            break
    else:  # pragma: no cover
        groups, Cg, Og, KH, KW, stride, dil, pads = 2, 1, 1, 1, 1, (1, 1), (1, 1), (0, 0, 0, 0)
    iw, ww = cfg.input_width, cfg.weight_width
    X = _operands(rng, (H, Wd, groups * Cg), iw, False)
    Wt = _operands(rng, (KH, KW, Cg, groups * Og), ww, False)
    pad_value = int(rng.integers(-(1 << (iw - 1)), 1 << (iw - 1)))
    kwargs = dict(groups=groups, dilation=dil, pad_value=pad_value)
    acc = conv2d_acc(X, Wt, stride, pads, **kwargs)
    meta = dict(H=H, W=Wd, Cin=groups * Cg, KH=KH, KW=KW, Cout=groups * Og, stride=list(stride), padding=list(pads),
                groups=groups, dilation=list(dil), pad_value=pad_value)
    return ("conv", (X, Wt, stride, pads), kwargs), acc, meta


def random_channel_quant(rng: np.random.Generator, cfg: AcceleratorConfig, acc: np.ndarray) -> ChannelQuant:
    """Per-channel bias, multiplier and shift (each channel scaled to its own spread), shared range."""
    N = acc.shape[-1]
    flat = acc.reshape(-1, N)
    bias = rng.integers(-1, 2, N) * rng.integers(0, 1 + int(np.abs(flat).max(initial=1)), N)
    chans = [random_quant(rng, cfg, flat[:, n] + bias[n]) for n in range(N)]
    base = random_quant(rng, cfg, flat)
    return ChannelQuant(bias.astype(np.int64), np.array([q.multiplier for q in chans]),
                        np.array([q.shift for q in chans]), base.zero_point, base.clamp_lo, base.clamp_hi, base.relu)


def random_programs(cfg: AcceleratorConfig, n: int, seed: int = 0, max_cycles: int = 30_000,
                    kinds: tuple[str, ...] = KINDS) -> list[tuple[Program, np.ndarray]]:
    """``n`` random programs for ``cfg`` with their expected outputs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    dataflows = cfg.dataflow.modes
    out: list[tuple[Program, np.ndarray]] = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        df = dataflows[int(rng.integers(len(dataflows)))]
        scale = 1.0
        while True:
            drawn, acc, meta = _draw(rng, cfg, kind, scale)
            fn, args, kwargs = drawn if len(drawn) == 3 else (*drawn, {})
            q = random_channel_quant(rng, cfg, acc) if kind == "conv_q" else random_quant(rng, cfg, acc)
            if fn == "gemm":
                prog = lower_gemm(cfg, *args, q, dataflow=df)
            else:
                prog = lower_conv2d(cfg, *args, q, dataflow=df, **kwargs)
            cyc = program_cycles(cfg, prog)
            if cyc <= max_cycles or scale < 0.05:
                break
            scale *= 0.7
        expected = gemm_ref(*args, q) if fn == "gemm" else conv2d_ref(*args, q, **kwargs)
        prog.meta.update(name=f"random{seed}_{i}_{kind}", random_kind=kind, seed=seed, index=i,
                         est_cycles=cyc, **{f"shape_{k}": v for k, v in meta.items()})
        out.append((prog, expected))
    return out
