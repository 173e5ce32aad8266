"""Both zero points of a MatMul of two activations, exact on an array that multiplies int8 by int8.

A quantized product of two activations (attention's Q·Kᵀ and probabilities·V) is, per output element,
``sa·sb · Σ_k (a - za)(b - zb)`` (gemmlowp's decomposition)::

    Σ_k (a - za)(b - zb) = Σ_k a·b  -  zb·rowsum(a)  -  za·Σ_k (b - zb)

The last term is a per-column constant and goes into the quantization table's bias, as the input zero
point of every Conv and Gemm does. The middle term is per *row*, which the per-column table cannot hold,
and ``b - zb`` needs nine bits, which the W operand does not have. So the array computes it itself, in the
same accumulation: the reduction is extended by ``A`` once more per *fill*, against W rows that all hold the
int8 fill value, the fills summing to ``-zb``::

    A' = [A | A (| A)]        W' = [B ; f1·1 (; f2·1)]        A'·W' = A·B - zb·rowsum(A)·1ᵀ

One fill when ``-zb`` fits int8 (zb in [-127, 127]), two when zb = -128 (127 and 1), none when zb = 0.
The array spends ``len(fills)·K`` more reduction steps on it (the attention MatMuls of a BERT-base layer are
2.7% of its MACs); nothing is computed on the host but the bias, and the result is exact.

:func:`fills` is the one home of the rule: :func:`mappings.network_map.executed_layer_shape` (what ``hwgen
map`` plans and costs) and the network executor (what ``hwgen run`` lowers) both take the reduction length
from it.
"""

from __future__ import annotations

import numpy as np

from .graph import LayerGraph, QuantParams

__all__ = ["fills", "int8_zero_point", "matmul_fills", "extend_operands"]

#: The zero point assumed for an operand without quantization parameters (a float graph being mapped):
#: onnxruntime's static quantizer gives activations an asymmetric range, so a zero point other than 0.
_UNKNOWN_ZERO_POINT = 1


def fills(zb: int) -> tuple[int, ...]:
    """The int8 W fill values, summing to ``-zb`` (int8 domain), that correct for B's zero point ``zb``."""
    zb = int(zb)
    if not -128 <= zb <= 127:
        raise ValueError(f"zero point {zb} is not an int8 value")
    if zb == 0:
        return ()
    return (127, 1) if zb == -128 else (-zb,)


def int8_zero_point(qp: QuantParams) -> int:
    """A per-tensor zero point in the int8 domain the accelerator uses (uint8 values are offset by -128)."""
    zp = int(np.asarray(qp.zero_point).reshape(-1)[0])
    return zp - 128 if qp.dtype == "uint8" else zp


def matmul_fills(graph: LayerGraph, node: str) -> tuple[int, ...]:
    """:func:`fills` of MatMul ``node``'s second operand, from its quantization parameters (a graph without
    them is taken to be quantized asymmetrically, as onnxruntime quantizes activations: one fill)."""
    b = graph.inputs_of(node)[1]
    t = graph.tensors.get(b)
    if t is None or t.quant is None or t.quant.per_channel:
        return fills(_UNKNOWN_ZERO_POINT)
    return fills(int8_zero_point(t.quant))


def extend_operands(a: np.ndarray, b: np.ndarray, zb: int) -> tuple[np.ndarray, np.ndarray]:
    """(A', W') of the module docstring for int8-domain ``a`` [M, K] and ``b`` [K, N]: ``A'·W'`` equals
    ``a·(b - zb)`` exactly; both int8."""
    f = fills(zb)
    K, N = b.shape
    a8, b8 = np.asarray(a, np.int8), np.asarray(b, np.int8)
    A = np.concatenate([a8] * (1 + len(f)), axis=1)
    W = np.concatenate([b8] + [np.full((K, N), v, np.int8) for v in f], axis=0)
    return A, W
