"""Integer quantization helpers shared by the network executor and its tests.

* :func:`quantize_multiplier` turns a real rescale factor (input scale x weight
  scale / output scale) into the accelerator's (int32 multiplier, shift) pair.
* Values are kept in the *int8 domain* on the accelerator: a uint8 tensor
  (q in 0..255, zero point z) is held as q - 128 with zero point z - 128,
  which represents exactly the same real numbers, so every layer sees signed
  bytes and one datapath serves both activation types.
* :func:`quantize_linear` is ONNX QuantizeLinear (round half to even, saturate).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["quantize_multiplier", "to_int8_domain", "from_int8_domain", "quantize_linear", "dequantize_linear",
           "qrange"]


def quantize_multiplier(real: float, max_shift: int = 62) -> tuple[int, int]:
    """(multiplier, shift) with multiplier * 2**-shift ~= real, multiplier < 2**31.

    The multiplier is normalised into [2**30, 2**31) for 31 bits of precision
    (fewer only when ``max_shift`` caps a very small factor). A non-positive or
    non-finite factor is an error: quantized layers always rescale by a
    positive amount.
    """
    if not math.isfinite(real) or real <= 0:
        raise ValueError(f"rescale factor must be positive and finite, got {real}")
    mant, exp = math.frexp(real)  # real = mant * 2**exp, mant in [0.5, 1)
    shift = 31 - exp
    mult = round(mant * (1 << 31))
    if mult == 1 << 31:  # rounding carried into the next power of two
        mult //= 2
        shift -= 1
    while shift > max_shift:
        mult = (mult + 1) >> 1
        shift -= 1
    if shift < 0:
        raise ValueError(f"rescale factor {real} is too large for a 31-bit multiplier with a shift >= 0")
    if mult == 0:
        return 0, 0
    return int(mult), int(shift)


def qrange(dtype: str) -> tuple[int, int]:
    if dtype == "int8":
        return -128, 127
    if dtype == "uint8":
        return 0, 255
    raise ValueError(f"unsupported quantized type {dtype!r} (int8 or uint8)")


def to_int8_domain(q: np.ndarray, zero_point: int, dtype: str) -> tuple[np.ndarray, int]:
    """A quantized tensor and its zero point as signed bytes (uint8 shifts by -128)."""
    if dtype == "uint8":
        return (np.asarray(q, dtype=np.int16) - 128).astype(np.int8), int(zero_point) - 128
    return np.asarray(q).astype(np.int8), int(zero_point)


def from_int8_domain(q: np.ndarray, dtype: str) -> np.ndarray:
    """Back from signed bytes to the tensor's own type."""
    if dtype == "uint8":
        return (np.asarray(q, dtype=np.int16) + 128).astype(np.uint8)
    return np.asarray(q).astype(np.int8)


def quantize_linear(x: np.ndarray, scale, zero_point, dtype: str) -> np.ndarray:
    """ONNX QuantizeLinear: saturate(round_half_even(x / scale) + zero_point)."""
    lo, hi = qrange(dtype)
    q = np.rint(np.asarray(x, dtype=np.float32) / np.float32(scale)) + np.asarray(zero_point, dtype=np.float32)
    return np.clip(q, lo, hi).astype(dtype)


def dequantize_linear(q: np.ndarray, scale, zero_point) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zero_point) * scale, in float32."""
    return ((np.asarray(q, dtype=np.int32) - np.asarray(zero_point, dtype=np.int32)).astype(np.float32)
            * np.asarray(scale, dtype=np.float32))
