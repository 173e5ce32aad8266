"""Workloads for fault-injection campaigns, from a short text spec.

``gemm:MxKxN``
    out[M, N] = requantize(A[M, K] @ W[K, N]).
``conv:HxWxCin:KHxKW:Cout[:stride[:pad]]``
    NHWC convolution (batch 1), stride 1 and padding 0 by default
    (``KH`` alone means a square kernel: ``conv:8x8x4:3:8``).

The operands are random over the whole operand range, drawn from ``seed``; the
requantization is drawn like :func:`mappings.random_programs.random_quant` so that
the outputs spread over the output range (a draw whose outputs take fewer than
a quarter of the distinct values they could is redrawn: a saturated output would
mask most faults and make the campaign say little). The program is lowered with
:func:`mappings.lowering.lower_gemm` / ``lower_conv2d``. The same spec, configuration
and seed always give the same program.
"""

from __future__ import annotations

import re

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.isa import IsaError
from hwgen.program import Program, ProgramError

__all__ = ["WorkloadError", "build_workload", "parse_workload", "WORKLOAD_FORMS"]

WORKLOAD_FORMS = "'gemm:MxKxN' or 'conv:HxWxCin:KHxKW:Cout[:stride[:pad]]' (e.g. gemm:16x32x16, conv:8x8x4:3x3:8:1:1)"

_DIMS = re.compile(r"^\d+(x\d+)*$")


class WorkloadError(ValueError):
    """A workload spec that is malformed or does not fit the configuration; the message names the spec."""


def _dims(spec: str, part: str, n: tuple[int, ...], what: str) -> tuple[int, ...]:
    part = part.strip().lower()
    if not _DIMS.match(part):
        raise WorkloadError(f"workload '{spec}': '{part}' is not {what}; expected {WORKLOAD_FORMS}")
    vals = tuple(int(v) for v in part.split("x"))
    if len(vals) not in n:
        raise WorkloadError(f"workload '{spec}': '{part}' is not {what}; expected {WORKLOAD_FORMS}")
    return vals


def parse_workload(spec: str) -> tuple[str, dict]:
    """("gemm", {M, K, N}) or ("conv", {H, W, Cin, KH, KW, Cout, stride, pad}); WorkloadError if malformed."""
    if not isinstance(spec, str) or ":" not in spec:
        raise WorkloadError(f"workload {spec!r}: expected {WORKLOAD_FORMS}")
    kind, *parts = spec.strip().split(":")
    kind = kind.lower()
    if kind == "gemm":
        if len(parts) != 1:
            raise WorkloadError(f"workload '{spec}': a GEMM takes one MxKxN part; expected {WORKLOAD_FORMS}")
        M, K, N = _dims(spec, parts[0], (3,), "MxKxN")
        d = dict(M=M, K=K, N=N)
    elif kind == "conv":
        if not 3 <= len(parts) <= 5:
            raise WorkloadError(f"workload '{spec}': a convolution takes 3 to 5 parts; expected {WORKLOAD_FORMS}")
        H, W, Cin = _dims(spec, parts[0], (3,), "HxWxCin")
        k = _dims(spec, parts[1], (1, 2), "a kernel size KHxKW")
        KH, KW = (k[0], k[0]) if len(k) == 1 else k
        (Cout,) = _dims(spec, parts[2], (1,), "an output channel count")
        (stride,) = _dims(spec, parts[3], (1,), "a stride") if len(parts) > 3 else (1,)
        (pad,) = _dims(spec, parts[4], (1,), "a padding") if len(parts) > 4 else (0,)
        d = dict(H=H, W=W, Cin=Cin, KH=KH, KW=KW, Cout=Cout, stride=stride, pad=pad)
    else:
        raise WorkloadError(f"workload '{spec}': unknown kind '{kind}'; expected {WORKLOAD_FORMS}")
    zero = [name for name, v in d.items() if v < 1 and name != "pad"]
    if zero:
        raise WorkloadError(f"workload '{spec}': {', '.join(zero)} must be at least 1")
    return kind, d


def _quant(rng: np.random.Generator, cfg: AcceleratorConfig, acc: np.ndarray):
    """random_quant, redrawn (up to 20 times, keeping the best) until the outputs take at least a quarter
    of the distinct values they could (judged on up to 4096 accumulators)."""
    from mappings.random_programs import random_quant
    from sim.reference import requantize_ref

    flat = acc.reshape(-1)
    sample = flat if flat.size <= 4096 else flat[np.linspace(0, flat.size - 1, 4096).astype(np.int64)]
    possible = min(sample.size, 1 << cfg.output_width)
    best, best_distinct = None, -1
    for _ in range(20):
        q = random_quant(rng, cfg, acc)
        distinct = len(np.unique(requantize_ref(sample, q)))
        if distinct > best_distinct:
            best, best_distinct = q, distinct
        if 4 * distinct >= possible:
            break
    return best


def build_workload(spec: str, cfg: AcceleratorConfig, seed: int) -> Program:
    """The lowered program of ``spec`` on ``cfg`` with operands and requantization drawn from ``seed``."""
    from mappings.lowering import LoweringError, lower_conv2d, lower_gemm
    from sim.reference import conv2d_acc, conv_out_size, gemm_acc

    kind, d = parse_workload(spec)
    rng = np.random.default_rng(seed)
    ilo, ihi = -(1 << (cfg.input_width - 1)), (1 << (cfg.input_width - 1)) - 1
    wlo, whi = -(1 << (cfg.weight_width - 1)), (1 << (cfg.weight_width - 1)) - 1
    where = f"workload '{spec}' on config '{cfg.name}' ({cfg.rows}x{cfg.cols} '{cfg.dataflow}')"
    if kind == "gemm":
        K = d["K"]
    else:
        K = d["KH"] * d["KW"] * d["Cin"]
        OH = conv_out_size(d["H"], d["KH"], d["stride"], d["pad"])
        OW = conv_out_size(d["W"], d["KW"], d["stride"], d["pad"])
        if OH < 1 or OW < 1:
            raise WorkloadError(f"workload '{spec}': the {d['KH']}x{d['KW']} kernel does not fit the "
                                f"{d['H']}x{d['W']} input (padding {d['pad']}): empty output")
    if K > cfg.max_reduction:
        raise WorkloadError(f"{where}: reduction K = {K} exceeds max_reduction = {cfg.max_reduction} "
                            f"(the accumulators could overflow)")
    try:
        if kind == "gemm":
            A = rng.integers(ilo, ihi + 1, (d["M"], d["K"]), dtype=np.int64).astype(np.int8)
            W = rng.integers(wlo, whi + 1, (d["K"], d["N"]), dtype=np.int64).astype(np.int8)
            prog = lower_gemm(cfg, A, W, _quant(rng, cfg, gemm_acc(A, W)))
        else:
            X = rng.integers(ilo, ihi + 1, (d["H"], d["W"], d["Cin"]), dtype=np.int64).astype(np.int8)
            Wt = rng.integers(wlo, whi + 1, (d["KH"], d["KW"], d["Cin"], d["Cout"]), dtype=np.int64).astype(np.int8)
            acc = conv2d_acc(X, Wt, d["stride"], d["pad"])
            prog = lower_conv2d(cfg, X, Wt, d["stride"], d["pad"], _quant(rng, cfg, acc))
    except (LoweringError, IsaError, ProgramError) as e:
        raise WorkloadError(f"{where} does not fit: {e}") from None
    prog.meta.update(workload=spec, workload_seed=seed)
    return prog
