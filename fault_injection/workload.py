"""Workloads for fault-injection campaigns, from a short text spec.

``gemm:MxKxN``
    out[M, N] = requantize(A[M, K] @ W[K, N]).
``conv:HxWxCin:KHxKW:Cout[:stride[:pad]]``
    NHWC convolution (batch 1), stride 1 and padding 0 by default
    (``KH`` alone means a square kernel: ``conv:8x8x4:3:8``).
``zoo:NAME[:LAYER]``
    one compute layer (Conv2d or Gemm; default: the first) of the zoo model ``NAME``
    (:mod:`mappings.zoo`) with its exact shape (stride, padding, dilation, groups),
    random operands and a random per-channel requantization (a
    :class:`~sim.reference.ChannelQuant`, like
    :func:`mappings.random_programs.random_channel_quant`), lowered with the mapper's best
    plan (:func:`mappings.mapper.executed_plan`), as the network executor does.
``onnx:PATH[:LAYER]`` (or just ``PATH.onnx[:LAYER]``)
    one compute layer (default: the first) of an int8 QDQ ONNX model, exactly as
    ``hwgen run`` executes it: the model runs (:func:`mappings.execute.run_quantized`,
    cycle model) on a random float input drawn from ``seed`` (standard normal, the
    graph input's shape; :func:`onnx_inputs`) up to the layer, and the workload is
    :func:`mappings.execute.layer_programs` of that layer on its real integer input (its
    quantized weights, folded bias and requantization). The file is read wherever the
    workload is built (every campaign worker).

For ``gemm``/``conv``/``zoo`` the operands are random over the whole operand range,
drawn from ``seed``; the requantization is drawn like
:func:`mappings.random_programs.random_quant` (per channel for ``zoo``) so that the
outputs spread over the output range (a draw whose outputs take fewer than a quarter
of the distinct values they could is redrawn: a saturated output would mask most
faults and make the campaign say little). ``gemm``/``conv`` are lowered with
:func:`mappings.lowering.lower_gemm` / ``lower_conv2d`` and their default plan.

A layer whose program would run more than :data:`MAX_CYCLES` cycles (the mapper's
exact estimate, :mod:`sim.perf`) is refused: pick a smaller layer. The same spec,
configuration and seed (and, for ONNX, the same file) always give the same program.

Sizes are checked before anything is allocated (a spec is a few characters that
can ask for terabytes): every field against the ``dimension`` limit (a
4,301-digit field is refused without being converted), each operand, padded
input and output against ``tensor_elements``, the multiply-accumulates against
``simulated_macs``, and the host memory the build needs (operands and exact
accumulators, the host image, the instruction list: from the analytical model's
exact instruction count) against ``run_bytes`` (:mod:`hwgen.limits`). The same
checks apply to the zoo or ONNX layer. :func:`check_workload` runs them without
building (a resumed campaign checks the spec stored in its file this way).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.errors import HwgenError, LimitError
from hwgen.isa import IsaError
from hwgen.limits import check_limit, env_name, limits
from hwgen.program import HOST_BYTES_PER_INSTRUCTION, Program, ProgramError

__all__ = ["WorkloadError", "build_workload", "parse_workload", "check_workload", "workload_shape", "onnx_inputs",
           "WORKLOAD_FORMS", "MAX_CYCLES", "MAX_SPEC_CHARS"]

WORKLOAD_FORMS = ("'gemm:MxKxN', 'conv:HxWxCin:KHxKW:Cout[:stride[:pad]]', 'zoo:NAME[:LAYER]' or "
                  "'onnx:PATH[:LAYER]' / 'PATH.onnx[:LAYER]' (e.g. gemm:16x32x16, conv:8x8x4:3x3:8:1:1, "
                  "zoo:mlp:fc3, onnx:model_int8.onnx:conv1)")

#: largest program (cycles, the mapper's estimate) a zoo or ONNX layer workload may have
MAX_CYCLES = 2_000_000
#: longest spec accepted (room for an ONNX path of PATH_MAX and a layer name)
MAX_SPEC_CHARS = 8192

_DIMS = re.compile(r"[0-9]+(x[0-9]+)*")
_ONNX = re.compile(r"^(?:onnx:)?(.+?\.onnx)(?::(.*))?$", re.IGNORECASE)
_FIELDS = {"gemm": ("M", "K", "N"), "conv": ("H", "W", "Cin", "KH", "KW", "Cout", "stride", "pad")}


class WorkloadError(HwgenError, ValueError):
    """A workload spec that is malformed or does not fit the configuration; the message names the spec."""


def _show(spec: str) -> str:
    """``spec`` quoted for a message: as typed when short and printable, else its repr, cut (one bounded line)."""
    text = f"'{spec}'" if spec.isprintable() else repr(spec)
    return text if len(text) <= 120 else f"{text[:100]}... ({len(spec):,} characters)"


def _why(e: BaseException) -> str:
    """An underlying error's message on one line (it may quote a name with a newline in it)."""
    return " ".join(str(e).split()) or type(e).__name__


def _dims(spec: str, part: str, names: tuple[str, ...], what: str) -> tuple[int, ...]:
    """The ``x``-separated fields of ``part``, one per name in ``names`` (a kernel may give one for two)."""
    part = part.strip().lower()
    fields = part.split("x")
    if not _DIMS.fullmatch(part) or len(fields) not in (len(names), 1 if names == ("KH", "KW") else len(names)):
        raise WorkloadError(f"workload {_show(spec)}: {_show(part)} is not {what}; expected {WORKLOAD_FORMS}")
    return tuple(_field_value(spec, name, text) for name, text in zip(names, fields))


def _field_value(spec: str, name: str, digits: str) -> int:
    """One field, within the ``dimension`` limit; a field with more digits than the limit is refused
    unconverted (Python will not even convert 4,301 digits)."""
    bound = limits().dimension
    digits = digits.lstrip("0") or "0"
    what = f"workload {_show(spec)}: field {name}"
    if len(digits) > len(str(bound)):
        raise LimitError(f"{what}: a number of {len(digits):,} digits; the limit is {bound:,} "
                         f"({env_name('dimension')})")
    value = int(digits)
    check_limit("dimension", value, what)
    return value


def _is_file(path: str) -> bool:
    """Whether ``path`` names a file; False for what the system cannot look up (too long, NUL byte)."""
    try:
        return os.path.isfile(path)
    except (OSError, ValueError):
        return False


def _parse_onnx(spec: str) -> dict | None:
    s = spec.strip()
    m = _ONNX.match(s)
    if m and (s.lower().startswith("onnx:") or m.group(1).lower().endswith(".onnx")):
        path, layer = m.group(1), m.group(2)
    elif s.lower().startswith("onnx:"):
        rest = s[5:]
        path, layer = (rest, None) if _is_file(rest) or ":" not in rest else tuple(rest.rsplit(":", 1))
    else:
        return None
    if s.lower().startswith("onnx:") and path.lower().startswith("onnx:"):
        path = path[5:]
    if not path:
        raise WorkloadError(f"workload {_show(spec)}: no ONNX file; expected {WORKLOAD_FORMS}")
    if layer is not None and not layer.strip():
        raise WorkloadError(f"workload {_show(spec)}: empty layer name; expected {WORKLOAD_FORMS}")
    return dict(path=path, layer=layer.strip() if layer is not None else None)


def parse_workload(spec: str) -> tuple[str, dict]:
    """("gemm", {M, K, N}), ("conv", {H, W, Cin, KH, KW, Cout, stride, pad}), ("zoo", {model, layer}) or
    ("onnx", {path, layer}) (layer None: the first compute layer); WorkloadError if malformed, LimitError if a
    field exceeds the ``dimension`` limit."""
    if not isinstance(spec, str):
        raise WorkloadError(f"workload {_show(repr(spec))}: expected {WORKLOAD_FORMS}")
    if len(spec) > MAX_SPEC_CHARS:
        raise WorkloadError(f"workload {_show(spec)}: a spec of {len(spec):,} characters; at most "
                            f"{MAX_SPEC_CHARS:,}")
    if not spec.strip().isprintable():
        raise WorkloadError(f"workload {_show(spec)}: contains control characters; expected {WORKLOAD_FORMS}")
    onnx_d = _parse_onnx(spec)
    if onnx_d is not None:
        return "onnx", onnx_d
    if ":" not in spec:
        raise WorkloadError(f"workload {_show(spec)}: expected {WORKLOAD_FORMS}")
    kind, *parts = spec.strip().split(":")
    kind = kind.lower()
    if kind == "zoo":
        if not 1 <= len(parts) <= 2 or not parts[0].strip() or (len(parts) == 2 and not parts[1].strip()):
            raise WorkloadError(f"workload {_show(spec)}: a zoo workload is zoo:NAME or zoo:NAME:LAYER; "
                                f"expected {WORKLOAD_FORMS}")
        return "zoo", dict(model=parts[0].strip(), layer=parts[1].strip() if len(parts) == 2 else None)
    if kind == "gemm":
        if len(parts) != 1:
            raise WorkloadError(f"workload {_show(spec)}: a GEMM takes one MxKxN part; expected {WORKLOAD_FORMS}")
        M, K, N = _dims(spec, parts[0], ("M", "K", "N"), "MxKxN")
        d = dict(M=M, K=K, N=N)
    elif kind == "conv":
        if not 3 <= len(parts) <= 5:
            raise WorkloadError(f"workload {_show(spec)}: a convolution takes 3 to 5 parts; "
                                f"expected {WORKLOAD_FORMS}")
        H, W, Cin = _dims(spec, parts[0], ("H", "W", "Cin"), "HxWxCin")
        k = _dims(spec, parts[1], ("KH", "KW"), "a kernel size KHxKW")
        KH, KW = (k[0], k[0]) if len(k) == 1 else k
        (Cout,) = _dims(spec, parts[2], ("Cout",), "an output channel count")
        (stride,) = _dims(spec, parts[3], ("stride",), "a stride") if len(parts) > 3 else (1,)
        (pad,) = _dims(spec, parts[4], ("pad",), "a padding") if len(parts) > 4 else (0,)
        d = dict(H=H, W=W, Cin=Cin, KH=KH, KW=KW, Cout=Cout, stride=stride, pad=pad)
    else:
        raise WorkloadError(f"workload {_show(spec)}: unknown kind {_show(kind)}; expected {WORKLOAD_FORMS}")
    zero = [name for name, v in d.items() if v < 1 and name != "pad"]
    if zero:
        raise WorkloadError(f"workload {_show(spec)}: {', '.join(zero)} must be at least 1")
    return kind, d


def workload_shape(kind: str, d: dict):
    """The :class:`~sim.perf.GemmShape` / :class:`~sim.perf.ConvShape` of a parsed gemm or conv workload."""
    from sim.perf import ConvShape, GemmShape

    if kind == "gemm":
        return GemmShape(d["M"], d["K"], d["N"])
    return ConvShape(d["H"], d["W"], d["Cin"], d["KH"], d["KW"], d["Cout"], d["stride"], d["pad"])


def _check_shape(spec: str, shape) -> None:
    """Every tensor the build allocates within ``tensor_elements``, the MACs within ``simulated_macs``:
    arithmetic on the declared shape only, before any allocation."""
    from sim.perf import ConvShape

    show = _show(spec)
    M, K, N = shape.gemm
    if isinstance(shape, ConvShape):
        pt, pl, pb, pr = shape.pads
        tensors = {"input X (HxWxCin)": shape.H * shape.W * shape.Cin,
                   "padded input": (shape.H + pt + pb) * (shape.W + pl + pr) * shape.Cin,
                   "weights (KHxKWxCinxCout)": shape.KH * shape.KW * (shape.Cin // shape.groups) * shape.Cout,
                   "output (OHxOWxCout)": shape.OH * shape.OW * shape.Cout}
    else:
        tensors = {"operand A (MxK)": M * K, "weights W (KxN)": K * N, "output (MxN)": M * N}
    for name, elements in tensors.items():
        check_limit("tensor_elements", elements, f"workload {show}: elements of the {name}")
    check_limit("simulated_macs", shape.macs, f"workload {show}: multiply-accumulates ({M}x{K}x{N} GEMM"
                                              f"{f' x {shape.groups} groups' if getattr(shape, 'groups', 1) > 1 else ''})")


def _check_host_bytes(spec: str, shape, perf) -> None:
    """The host memory the build needs within ``run_bytes``: each input element drawn as int64 and kept as
    int8, the exact int64 accumulators (with the int64 padded input of a convolution's reference), the host
    image and the instruction list (the analytical model's exact count)."""
    from sim.perf import ConvShape

    M, K, N = shape.gemm
    groups = getattr(shape, "groups", 1)
    if isinstance(shape, ConvShape):
        pt, pl, pb, pr = shape.pads
        inputs = shape.H * shape.W * shape.Cin + shape.KH * shape.KW * (shape.Cin // groups) * shape.Cout
        padded = (shape.H + pt + pb) * (shape.W + pl + pr) * shape.Cin
    else:
        inputs, padded = M * K + K * N, 0
    outputs = M * N * groups
    check_limit("instructions", perf.instructions, f"workload {_show(spec)}: instructions of its program")
    image = 16 * perf.instructions + inputs + outputs
    need = 9 * inputs + 9 * outputs + 8 * padded + image + HOST_BYTES_PER_INSTRUCTION * perf.instructions
    check_limit("run_bytes", need, f"workload {_show(spec)}: host bytes to build it ({perf.instructions:,} "
                                   f"instructions, {inputs + outputs:,} operand and output elements)")


def _plan_checked(spec: str, kind: str, d: dict, cfg: AcceleratorConfig) -> None:
    """A gemm/conv workload's sizes and fit on ``cfg``, checked without allocating: empty output, element
    counts and MACs, max_reduction, the default plan and its analytical instruction count, host memory."""
    from mappings.lowering import LoweringError, plan_tiles
    from mappings.pipelined import in_order
    from sim.perf import layer_perf

    where = _where(spec, cfg)
    shape = workload_shape(kind, d)
    if kind == "conv" and (shape.OH < 1 or shape.OW < 1):
        raise WorkloadError(f"workload {_show(spec)}: the {d['KH']}x{d['KW']} kernel does not fit the "
                            f"{d['H']}x{d['W']} input (padding {d['pad']}): empty output")
    _check_shape(spec, shape)
    K = shape.gemm[1]
    if K > cfg.max_reduction:
        raise WorkloadError(f"{where}: reduction K = {K} exceeds max_reduction = {cfg.max_reduction} "
                            f"(the accumulators could overflow)")
    try:
        # the counts (instructions, host bytes) are the in-order program's on either controller
        perf = layer_perf(in_order(cfg), shape, plan_tiles(cfg, *shape.gemm))
    except (LoweringError, IsaError, ProgramError) as e:
        raise WorkloadError(f"{where} does not fit: {_why(e)}") from None
    _check_host_bytes(spec, shape, perf)


def check_workload(spec: str, cfg: AcceleratorConfig) -> None:
    """Raise what :func:`build_workload` would raise about the spec's form and sizes, without building it:
    every check for gemm/conv; the form only for zoo/onnx (their sizes need the model, read when built)."""
    kind, d = parse_workload(spec)
    if kind in _FIELDS:
        _plan_checked(spec, kind, d, cfg)


def _quant(rng: np.random.Generator, cfg: AcceleratorConfig, acc: np.ndarray, per_channel: bool = False):
    """random_quant (random_channel_quant if ``per_channel``: last axis), redrawn (up to 20 times, keeping
    the best) until the outputs take at least a quarter of the distinct values they could (judged on up to
    4096 accumulators, or rows of accumulators)."""
    from mappings.random_programs import random_channel_quant, random_quant
    from sim.reference import requantize_any_ref

    flat = acc.reshape(-1, acc.shape[-1]) if per_channel else acc.reshape(-1)
    sample = flat if flat.shape[0] <= 4096 else flat[np.linspace(0, flat.shape[0] - 1, 4096).astype(np.int64)]
    possible = min(sample.size, 1 << cfg.output_width)
    draw = random_channel_quant if per_channel else random_quant
    best, best_distinct = None, -1
    for _ in range(20):
        q = draw(rng, cfg, acc)
        distinct = len(np.unique(requantize_any_ref(sample, q)))
        if distinct > best_distinct:
            best, best_distinct = q, distinct
        if 4 * distinct >= possible:
            break
    return best


def _where(spec: str, cfg: AcceleratorConfig) -> str:
    return f"workload {_show(spec)} on config '{cfg.name}' ({cfg.rows}x{cfg.cols} '{cfg.dataflow}')"


def _pick_layer(spec: str, graph, layer: str | None, what: str) -> str:
    """The named Conv2d/Gemm node of ``graph`` (None: the first); WorkloadError listing them otherwise."""
    from mappings.graph import Conv2d, Gemm

    layers = [n for n in graph.order() if isinstance(graph.layer(n), (Conv2d, Gemm))]
    if not layers:
        raise WorkloadError(f"workload {_show(spec)}: {what} has no Conv2d or Gemm layer")
    if layer is None:
        return layers[0]
    if layer not in layers:
        known = ", ".join(layers if len(layers) <= 60 else layers[:60] + ["..."])
        why = (f"{_show(layer)} is a {graph.layer(layer).kind} layer, not a Conv2d or Gemm" if layer in graph.g
               else f"no layer {_show(layer)}")
        raise WorkloadError(f"workload {_show(spec)}: {what} has {why}; its compute layers are: {known}")
    return layer


def _check_size(spec: str, cfg: AcceleratorConfig, graph, node: str, what: str):
    """(shape, plan) of the mapper's best per-channel plan; the layer's sizes checked like a gemm/conv
    workload's (LimitError), WorkloadError if over MAX_CYCLES."""
    from mappings.lowering import LoweringError
    from mappings.mapper import executed_plan
    from mappings.network_map import layer_shape

    shape, _ = layer_shape(graph, node)
    _check_shape(spec, shape)
    try:
        plan, perf = executed_plan(cfg, shape)
    except (LoweringError, IsaError, ProgramError, ValueError) as e:
        raise WorkloadError(f"{_where(spec, cfg)}: layer '{node}' does not fit: {_why(e)}") from None
    _check_host_bytes(spec, shape, perf)
    if perf.cycles > MAX_CYCLES:
        smaller = sorted((r["macs"], r["name"]) for r in graph.summary() if r["kind"] in ("Conv2d", "Gemm"))[:4]
        raise WorkloadError(
            f"{_where(spec, cfg)}: layer '{node}' of {what} ({shape.gemm[0]}x{shape.gemm[1]}x{shape.gemm[2]} "
            f"GEMM) would run about {perf.cycles:,} cycles, more than the {MAX_CYCLES:,} a fault-injection "
            f"workload may have; choose a smaller layer (its smallest: "
            f"{', '.join(name for _, name in smaller)}) or a gemm:/conv: workload")
    return shape, plan


def _zoo_program(spec: str, d: dict, cfg: AcceleratorConfig, rng: np.random.Generator) -> Program:
    from mappings.graph import Conv2d
    from mappings.lowering import lower_conv2d, lower_gemm
    from mappings.zoo import UnknownModelError, get_model
    from sim.reference import conv2d_acc, gemm_acc

    try:
        graph = get_model(d["model"])
    except UnknownModelError as e:
        raise WorkloadError(f"workload {_show(spec)}: {_why(e)}; expected {WORKLOAD_FORMS}") from None
    if not graph.shapes:
        graph.validate()
    what = f"zoo model '{d['model']}'"
    node = _pick_layer(spec, graph, d["layer"], what)
    shape, plan = _check_size(spec, cfg, graph, node, what)
    K = shape.gemm[1]
    if K > cfg.max_reduction:
        raise WorkloadError(f"{_where(spec, cfg)}: layer '{node}': reduction K = {K} exceeds max_reduction = "
                            f"{cfg.max_reduction} (the accumulators could overflow)")
    ilo, ihi = -(1 << (cfg.input_width - 1)), (1 << (cfg.input_width - 1)) - 1
    wlo, whi = -(1 << (cfg.weight_width - 1)), (1 << (cfg.weight_width - 1)) - 1
    layer = graph.layer(node)
    if isinstance(layer, Conv2d):
        g = layer.groups
        _, c, h, w = graph.shapes[graph.inputs_of(node)[0]]
        X = rng.integers(ilo, ihi + 1, (h, w, c), dtype=np.int64).astype(np.int8)
        Wt = rng.integers(wlo, whi + 1, (*layer.kernel, c // g, layer.out_channels), dtype=np.int64).astype(np.int8)
        acc = conv2d_acc(X, Wt, layer.stride, layer.pads, g, layer.dilation)
        prog = lower_conv2d(cfg, X, Wt, layer.stride, layer.pads, _quant(rng, cfg, acc, True), groups=g,
                            dilation=layer.dilation, plan=plan)
    else:
        M, K, N = shape.gemm
        A = rng.integers(ilo, ihi + 1, (M, K), dtype=np.int64).astype(np.int8)
        W = rng.integers(wlo, whi + 1, (K, N), dtype=np.int64).astype(np.int8)
        prog = lower_gemm(cfg, A, W, _quant(rng, cfg, gemm_acc(A, W), True), plan=plan)
    prog.meta.update(layer=node, model=f"zoo:{d['model']}")
    return prog


def onnx_inputs(graph, seed: int) -> dict[str, np.ndarray]:
    """The float inputs an ONNX workload runs its model on: standard normal float32 per graph input (in graph
    order), from ``seed``."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(graph.shapes[n]).astype(np.float32) for n in graph.graph_inputs}


def _onnx_program(spec: str, d: dict, cfg: AcceleratorConfig, seed: int) -> Program:
    import networkx as nx

    from mappings.execute import ExecutionError, layer_programs, run_quantized
    from mappings.graph import LayerGraph
    from mappings.onnx_import import import_onnx

    path = Path(d["path"])
    if not _is_file(d["path"]):
        raise WorkloadError(f"workload {_show(spec)}: no ONNX file '{path}'; expected {WORKLOAD_FORMS}")
    try:
        graph = import_onnx(path)
    except Exception as e:  # OnnxImportError, LimitError, GraphError, onnx's own errors on a damaged file
        raise WorkloadError(f"workload {_show(spec)}: cannot import {_show(str(path))}: "
                            f"{_why(e)}") from None
    if not graph.shapes:
        graph.validate()
    what = f"ONNX model '{path}'"
    node = _pick_layer(spec, graph, d["layer"], what)
    _check_size(spec, cfg, graph, node, what)
    src = graph.inputs_of(node)[0]
    # run the part of the network that computes the layer's input, exactly as run_quantized runs all of it
    sub = LayerGraph(graph.name)
    keep = nx.ancestors(graph.g, src) | {src}
    sub.g = graph.g.subgraph(keep).copy()
    sub.shapes = {n: graph.shapes[n] for n in keep}
    sub.tensors = graph.tensors
    sub.outputs = [src]
    try:
        run = run_quantized(sub, onnx_inputs(graph, seed), cfg)
        # the layer's first program: its only one at batch 1
        prog = layer_programs(cfg, graph, node, [run.values[src]]).programs[0]
    except ExecutionError as e:
        raise WorkloadError(f"{_where(spec, cfg)}: {_why(e)}") from None
    prog.meta.update(layer=node, model=str(path))
    return prog


def build_workload(spec: str, cfg: AcceleratorConfig, seed: int) -> Program:
    """The lowered program of ``spec`` on ``cfg`` with operands and requantization drawn from ``seed``; every
    size checked first (see the module's docstring)."""
    from mappings.lowering import LoweringError, lower_conv2d, lower_gemm
    from sim.reference import conv2d_acc, gemm_acc

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 1 << 63:
        raise WorkloadError(f"workload seed must be an integer from 0 to 2**63-1, got {seed!r:.60}")
    kind, d = parse_workload(spec)
    rng = np.random.default_rng(seed)
    where = _where(spec, cfg)
    try:
        if kind == "zoo":
            prog = _zoo_program(spec, d, cfg, rng)
        elif kind == "onnx":
            prog = _onnx_program(spec, d, cfg, seed)
        else:
            _plan_checked(spec, kind, d, cfg)
            ilo, ihi = -(1 << (cfg.input_width - 1)), (1 << (cfg.input_width - 1)) - 1
            wlo, whi = -(1 << (cfg.weight_width - 1)), (1 << (cfg.weight_width - 1)) - 1
            if kind == "gemm":
                A = rng.integers(ilo, ihi + 1, (d["M"], d["K"]), dtype=np.int64).astype(np.int8)
                W = rng.integers(wlo, whi + 1, (d["K"], d["N"]), dtype=np.int64).astype(np.int8)
                prog = lower_gemm(cfg, A, W, _quant(rng, cfg, gemm_acc(A, W)))
            else:
                X = rng.integers(ilo, ihi + 1, (d["H"], d["W"], d["Cin"]), dtype=np.int64).astype(np.int8)
                Wt = rng.integers(wlo, whi + 1, (d["KH"], d["KW"], d["Cin"], d["Cout"]),
                                  dtype=np.int64).astype(np.int8)
                acc = conv2d_acc(X, Wt, d["stride"], d["pad"])
                prog = lower_conv2d(cfg, X, Wt, d["stride"], d["pad"], _quant(rng, cfg, acc))
    except (LoweringError, IsaError, ProgramError) as e:
        raise WorkloadError(f"{where} does not fit: {_why(e)}") from None
    prog.meta.update(workload=spec, workload_seed=seed)
    return prog
