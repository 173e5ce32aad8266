"""Size limits checked before anything is allocated or simulated.

Untrusted inputs (ONNX models, SCALE-Sim CSVs, ``.npy`` headers, workload specs,
command-line counts) declare sizes; each importer and parser checks them here
against a stated limit before allocating, so a 1 KB file declaring a
100000x100000 tensor is refused in milliseconds with the node, the size and the
limit, instead of exhausting memory.

The defaults fit every network of the zoo at full size with room to spare. Each
limit can be raised (or lowered) with an environment variable named in the
error message, ``HWGEN_LIMIT_<NAME>`` (for example
``HWGEN_LIMIT_TENSOR_ELEMENTS=1e9``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from .errors import LimitError

__all__ = ["Limits", "LimitError", "limits", "check_limit", "env_name"]


@dataclass(frozen=True)
class Limits:
    """Stated limits. Every field is an upper bound (inclusive).

    Attributes
    ----------
    tensor_elements:
        Elements of one tensor as declared by a model, a CSV or an ``.npy`` header.
    dimension:
        One dimension of a declared shape (also a GEMM's M, K or N).
    layer_macs:
        Multiply-accumulates of one layer (mapping and analytical costing stay cheap below this).
    run_bytes:
        Host memory an executed program (network run, workload, ``.npy`` input) may allocate.
    layers:
        Layers of one network (graph nodes; a SCALE-Sim DP row counts one per channel, as SCALE-Sim runs it).
    simulated_macs:
        MACs of a layer or workload that is *simulated* (cycle model or RTL), not only costed.
    instructions:
        Instructions of one lowered program (a layer or a workload): lowering time and memory grow with it
        (about 1 s and 1 GB per million on this project's machines); the largest ResNet-50 layer on a 16x16
        array needs about 30,000.
    file_bytes:
        Size of an input file read whole (ONNX models with their external data, CSVs, configs, programs).
    programs:
        Random programs of one ``hwgen verify`` run.
    injections:
        Planned injections of one fault-injection campaign.
    sweep_points:
        Design points of one design-space sweep (``hwgen dse``: the product of its axes' lengths).
    rtl_pes:
        Processing elements of a design that is elaborated into RTL (generate, verify, RTL runs).
    json_depth:
        Nesting depth of a JSON document (configs, reports read back).
    """

    tensor_elements: int = 1 << 28
    dimension: int = 1 << 24
    layer_macs: int = 1 << 44
    layers: int = 100_000
    run_bytes: int = 1 << 31
    simulated_macs: int = 1 << 34
    instructions: int = 1_000_000
    file_bytes: int = 1 << 32
    programs: int = 10_000
    injections: int = 10_000_000
    sweep_points: int = 100_000
    rtl_pes: int = 64 * 64
    json_depth: int = 64

    @classmethod
    def from_env(cls, environ: "os._Environ[str] | dict[str, str] | None" = None) -> "Limits":
        """Defaults, overridden by ``HWGEN_LIMIT_<NAME>`` variables (integers; ``1e9`` and ``1_000`` accepted)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is None:
                continue
            try:
                v = float(raw.replace("_", ""))
                if not math.isfinite(v) or v < 1 or v != int(v):
                    raise ValueError
            except ValueError:
                raise LimitError(f"{env_name(f.name)}={raw!r}: must be a positive whole number") from None
            values[f.name] = int(v)
        return cls(**values)


def env_name(field: str) -> str:
    """The environment variable that sets limit ``field``."""
    return f"HWGEN_LIMIT_{field.upper()}"


def limits() -> Limits:
    """The limits in force now (read from the environment each call, so tests and scripts can change them)."""
    return Limits.from_env()


def check_limit(field: str, value: int, what: str) -> None:
    """Raise LimitError if ``value`` exceeds limit ``field``; ``what`` names the thing measured.

    Example message: ``model.onnx: input 'x' declares 30,000,000,000 elements (1x3x100000x100000);
    the limit is 268,435,456 (HWGEN_LIMIT_TENSOR_ELEMENTS)``.
    """
    bound = getattr(limits(), field)
    if value > bound:
        raise LimitError(f"{what}: {value:,}; the limit is {bound:,} ({env_name(field)})")
