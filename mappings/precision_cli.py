"""``hwgen precision MODEL``: the command line of :mod:`mappings.mixed_precision` (part of the application
shell, with :mod:`hwgen.cli` and :mod:`mappings.dse_cli`; nothing below the shell imports it).

    hwgen precision MODEL.onnx|zoo:NAME [--config F.json ...] [--resolution R] --budget-size 0.5
                    [--budget-sensitivity S|least] [--objective energy|latency] [--calib N] [--seed K]
                    --out DIR [--verify model|rtl] [--force]

From a float or int8 QDQ ONNX model (a float one, and every zoo model, is quantized first by onnxruntime's
static QDQ quantizer, :func:`mappings.onnx_models.quantize_qdq`), it measures each compute layer's
sensitivity to every width option on ``--calib`` random inputs, prices the options on the configuration
(the exact model), chooses one option per layer by the ILP within a weight-size budget (a fraction of the
int8 weight bytes) and a sensitivity budget, and prints the choice against all-int8 (latency, energy,
size). ``--verify`` then runs the lowered network on the cycle model (``model``), or on the cycle model
and Verilator (``rtl``), and checks every layer's value bit-exact with :func:`~mappings.mixed_precision.run_numpy`
and, for ``rtl``, every accelerator layer's cycles equal to the model's (exit 1 on a mismatch).

DIR gets ``widths.json`` (the choice; :func:`~mappings.mixed_precision.widths_from_json` reads it back),
``int8.onnx`` (the QDQ model the widths apply to: ``lower_graph(import_onnx(int8.onnx), widths)`` is the
network that was verified), ``report.json`` (tables, budgets, figures, timings, verification) and
``report.txt`` (what is printed); all written together at the end through :class:`hwgen.outputs.Outputs`
(staged, then renamed; nothing half-written). Bad input exits 2 with one line naming the option and limit.

The zoo's LayerGraph networks (ResNet, MobileNet V1/V2, the MLP) have no ONNX builder in
:mod:`mappings.zoo`; :func:`graph_to_onnx` writes their float graph (random He-normal weights) as the
ONNX that ``torch.onnx.export`` would give for it (BatchNorm folded), so that they take the same path as
the ONNX zoo: onnxruntime quantizes, :func:`mappings.onnx_import.import_onnx` imports.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hwgen.cli_support import UserError, add_config_args, add_force_arg, config_from_args, int_at_least, positive_float
from hwgen.outputs import Outputs

__all__ = ["add_precision_parser", "cmd_precision", "graph_to_onnx", "zoo_float_onnx", "min_resolution",
           "MIN_IMAGE_RESOLUTION", "CALIB_LIMIT", "OBJECTIVES", "is_qdq"]

#: The zoo's image networks downsample by 32 (five stride-2 stages); below that their last stages run on
#: padding alone (a 1x1 map padded to 3x3), which measures nothing about the network.
MIN_IMAGE_RESOLUTION = 32
#: ``--objective`` values: :class:`mappings.mixed_precision.Objective`'s (spelled out, so that building the
#: parser does not import the module; a test keeps them equal)
OBJECTIVES = ("energy", "latency")
#: Calibration inputs at most: each is run (numpy) once per layer and option.
CALIB_LIMIT = 256


# ------------------------------------------------------------------------------------ model sources
def graph_to_onnx(graph, opset: int = 13):
    """The float ONNX model of a zoo :class:`~mappings.graph.LayerGraph` with weights (``with_weights=True``):
    one node per layer, named as the layer, its output tensor named as the layer. Covers the layer kinds
    the zoo's vision networks and MLP are built from (Conv, Gemm, Relu, Clip, Add, MaxPool,
    GlobalAveragePool, Flatten); another kind is refused naming it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .graph import Add, Clip, Conv2d, Flatten, Gemm, GlobalAveragePool, Input, MaxPool, Relu

    nodes, inits, inputs = [], [], []

    def const(name: str, arr) -> str:
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    for name in graph.order():
        layer = graph.layer(name)
        ins = graph.inputs_of(name)
        if isinstance(layer, Input):
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(graph.shapes[name])))
            continue
        if isinstance(layer, (Conv2d, Gemm)) and (layer.weight is None or layer.bias is None):
            raise UserError(f"zoo model '{graph.name}', layer '{name}': no weights (build it with with_weights=True)")
        if isinstance(layer, Conv2d):
            node = helper.make_node("Conv", [ins[0], const(f"{name}.weight", layer.weight.astype(np.float32)),
                                             const(f"{name}.bias", layer.bias.astype(np.float32))], [name], name=name,
                                    kernel_shape=list(layer.kernel), strides=list(layer.stride),
                                    pads=list(layer.pads), dilations=list(layer.dilation), group=layer.groups)
        elif isinstance(layer, Gemm):  # W stored [in, out]: Gemm with transB=0
            node = helper.make_node("Gemm", [ins[0], const(f"{name}.weight", layer.weight.astype(np.float32)),
                                             const(f"{name}.bias", layer.bias.astype(np.float32))], [name], name=name)
        elif isinstance(layer, Relu):
            node = helper.make_node("Relu", ins, [name], name=name)
        elif isinstance(layer, Clip):
            node = helper.make_node("Clip", [ins[0], const(f"{name}.min", np.float32(layer.min)),
                                             const(f"{name}.max", np.float32(layer.max))], [name], name=name)
        elif isinstance(layer, Add):
            node = helper.make_node("Add", ins, [name], name=name)
        elif isinstance(layer, MaxPool) and layer.ceil_pads == (0, 0):
            node = helper.make_node("MaxPool", ins, [name], name=name, kernel_shape=list(layer.kernel),
                                    strides=list(layer.stride), pads=list(layer.pads))
        elif isinstance(layer, GlobalAveragePool):
            node = helper.make_node("GlobalAveragePool", ins, [name], name=name)
        elif isinstance(layer, Flatten):
            node = helper.make_node("Flatten", ins, [name], name=name, axis=layer.axis)
        else:
            raise UserError(f"zoo model '{graph.name}', layer '{name}': a {layer.kind} layer has no ONNX form here; "
                            f"hwgen precision takes the zoo's vision networks, the MLP and the ONNX zoo")
        nodes.append(node)
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(graph.shapes[o])) for o in graph.outputs]
    model = helper.make_model(helper.make_graph(nodes, graph.name, inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", opset)], producer_name="hwgen")
    onnx.checker.check_model(model)
    return model


def _takes_resolution(name: str) -> bool:
    import inspect

    from .zoo import ONNX_ZOO, ZOO

    return name in ONNX_ZOO or "resolution" in inspect.signature(ZOO[name]).parameters


def min_resolution(name: str) -> int:
    """The least ``--resolution`` zoo model ``name`` takes: :data:`MIN_IMAGE_RESOLUTION` for an image
    network, 1 for BERT's sequence length."""
    return 1 if name.startswith("bert") else MIN_IMAGE_RESOLUTION


def zoo_float_onnx(name: str, resolution: int | None = None, seed: int = 0):
    """The float ONNX model of zoo model ``name`` at ``resolution`` (None: the builder's default), random
    weights from ``seed``: an ONNX zoo graph (:func:`mappings.zoo.onnx_model`) or a LayerGraph network
    exported by :func:`graph_to_onnx`. Unknown names and resolutions the network cannot take are
    :class:`~hwgen.cli_support.UserError` naming the limit."""
    from .zoo import ONNX_ZOO, UnknownModelError, get_model, model_names, onnx_model

    if name not in model_names():
        raise UserError(f"zoo:{name}: unknown zoo model; known models: {', '.join(model_names())}")
    if resolution is not None:
        if not _takes_resolution(name):
            raise UserError(f"--resolution: zoo model '{name}' has no input resolution (its input size is fixed)")
        least = min_resolution(name)
        if resolution < least:
            raise UserError(f"--resolution {resolution}: zoo model '{name}' takes at least {least} "
                            f"(it downsamples by {least}; below that its last stages see only padding)")
    try:
        if name in ONNX_ZOO:
            return onnx_model(name, seed=seed, resolution=resolution)
        if name.startswith("bert"):
            raise UserError(f"zoo:{name}: the LayerGraph BERT stands in for attention with Reshapes (shape-exact, "
                            f"not value-exact); use zoo:bert_base_encoder, its ONNX graph")
        kw = {} if resolution is None else {"resolution": resolution}
        return graph_to_onnx(get_model(name, with_weights=True, seed=seed, **kw))
    except UnknownModelError as e:
        raise UserError(str(e)) from None


def is_qdq(model) -> bool:
    """True if the ONNX model holds QuantizeLinear/DequantizeLinear nodes (an int8 QDQ model)."""
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _load_source(source: str, resolution: int | None, seed: int, tmp: Path):
    """(the int8 QDQ ONNX path, its ModelProto, what was done to get it): a zoo model or a float .onnx file
    is quantized by onnxruntime (per tensor, int8, calibrated on 8 random inputs from ``seed``)."""
    import onnx

    from hwgen.fileio import read_input_file

    from .onnx_models import quantize_qdq, save

    if source.startswith("zoo:"):
        fm = zoo_float_onnx(source[4:], resolution, seed)
        how = f"zoo model '{source[4:]}'" + (f" at {resolution}x{resolution}" if resolution else "")
    else:
        if resolution is not None:
            raise UserError(f"--resolution applies to zoo:NAME models only; {source} has its own input shape")
        data = read_input_file(source, what="ONNX model")
        try:
            fm = onnx.load_from_string(data)
        except Exception as e:  # noqa: BLE001 - protobuf raises several kinds for a file that is not ONNX
            raise UserError(f"{source}: not an ONNX model ({str(e).splitlines()[0][:120] if str(e) else 'unreadable'})"
                            ) from None
        how = source
        if is_qdq(fm):
            path = tmp / "int8.onnx"
            path.write_bytes(data)
            return path, fm, f"{how} (int8 QDQ as given)"
    save(fm, tmp / "float.onnx")
    path = quantize_qdq(tmp / "float.onnx", tmp / "int8.onnx", "int8", False, seed=seed)
    return path, onnx.load(str(path)), f"{how}, quantized by onnxruntime (QDQ, int8 per tensor)"


# ------------------------------------------------------------------------------------------ parser
def _sensitivity_budget(text: str) -> float | None:
    """An argparse type: ``least`` (None: the least achievable within the size budget) or a number > 0."""
    if text.strip().lower() == "least":
        return None
    return positive_float(text)


def add_precision_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``hwgen precision`` on the top-level subparsers (``add_subparsers()``'s result); the parser."""
    p = subparsers.add_parser("precision", help="choose per-layer weight/activation widths by ILP on measured "
                                                "sensitivity; report latency, energy and size against int8")
    p.add_argument("model", help="MODEL.onnx (float, or int8 QDQ as onnxruntime writes it) or zoo:NAME "
                                 "(random weights, quantized by onnxruntime)")
    add_config_args(p)
    p.add_argument("--resolution", type=int_at_least(1), default=None, metavar="R",
                   help=f"a zoo model's input height and width (BERT: sequence length); at least "
                        f"{MIN_IMAGE_RESOLUTION} for the image networks")
    p.add_argument("--budget-size", type=positive_float, required=True, metavar="F",
                   help="packed weight bytes allowed, as a fraction of the int8 weight bytes (e.g. 0.5)")
    p.add_argument("--budget-sensitivity", type=_sensitivity_budget, default=None, metavar="S|least",
                   help="summed per-layer sensitivity allowed (normalised output MSE); 'least' (the default): "
                        "the least any choice within the size budget reaches")
    p.add_argument("--objective", choices=OBJECTIVES, default="energy",
                   help="what the ILP minimises within the budgets (default energy)")
    p.add_argument("--calib", type=int_at_least(1), default=4, metavar="N",
                   help=f"random calibration inputs the sensitivity is measured on (default 4, at most {CALIB_LIMIT})")
    p.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of the zoo weights, the quantizer's calibration (seed), the sensitivity inputs "
                        "(seed+1) and the verification input (seed+2); default 0")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="new folder: widths.json, int8.onnx, report.json, report.txt")
    p.add_argument("--verify", choices=("model", "rtl"), default=None,
                   help="run the lowered network on the cycle model (model) or on it and Verilator (rtl): values "
                        "bit-exact with the numpy definition, cycles equal between model and RTL (exit 1 if not)")
    add_force_arg(p)
    p.set_defaults(func=cmd_precision)
    return p


# ----------------------------------------------------------------------------------------- command
def _inputs(model, seed: int, n: int) -> list[np.ndarray]:
    from .onnx_models import random_inputs

    return [next(iter(f.values())) for f in random_inputs(model, seed=seed, n=n)]


def cmd_precision(args: argparse.Namespace) -> int:
    """Quantize (if needed), measure, price, choose, report, and optionally verify (module docstring)."""
    from .mixed_precision import (INT8, MixedPrecisionError, Objective, WidthBudgetError, applicable_options,
                                  choose_widths, cost_table, least_sensitivity, lower_graph, measure_sensitivity,
                                  size_table, verify_lowered, width_report, widths_to_json)
    from .execute import ExecutionError
    from .onnx_import import import_onnx

    if args.calib > CALIB_LIMIT:
        raise UserError(f"--calib {args.calib}: at most {CALIB_LIMIT} calibration inputs (each runs once per layer "
                        f"and option)")
    outs = Outputs(force=args.force, command="precision")
    key = outs.folder(args.out)
    cfg = config_from_args(args)
    objective = Objective(args.objective)
    timings: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="hwgen-precision-") as tmp:
        t0 = time.perf_counter()
        qpath, qmodel, how = _load_source(args.model, args.resolution, args.seed, Path(tmp))
        int8_bytes = qpath.read_bytes()
        graph = import_onnx(qpath, name=Path(args.model[4:] if args.model.startswith("zoo:") else args.model).stem)
        step("quantize_import", t0)
    if len(graph.graph_inputs) != 1:
        raise UserError(f"{args.model}: {len(graph.graph_inputs)} inputs ({', '.join(graph.graph_inputs)}); "
                        f"hwgen precision draws random values for exactly one")
    layers = graph.compute_layers()
    if not layers:
        raise UserError(f"{args.model}: no Conv, Gemm or MatMul layer, so no widths to choose")
    # the size budget is checked before the slow measurement: the least size needs no sensitivity
    size = size_table(graph)
    full = float(sum(size[n][INT8] for n in layers))
    if full <= 0:
        raise UserError(f"{args.model}: its compute layers hold no weights (only MatMuls of activations): "
                        f"--budget-size has nothing to bound")
    size_budget = args.budget_size * full
    least_size = float(sum(min(size[n].values()) for n in layers))
    if least_size > size_budget * (1 + 1e-9):
        raise UserError(f"--budget-size {args.budget_size:g}: no choice fits {size_budget:,.0f} of the "
                        f"{full:,.0f} int8 weight bytes; the least is {least_size / full:.4g} "
                        f"({least_size:,.0f} bytes, every layer at its narrowest weights)")
    say(f"{how}: {len(layers)} compute layers; measuring sensitivity on {args.calib} input(s)")
    calib = _inputs(qmodel, args.seed + 1, args.calib)
    try:
        t0 = time.perf_counter()
        sens = measure_sensitivity(graph, calib)
        step("sensitivity", t0)
        t0 = time.perf_counter()
        costs = cost_table(cfg, graph)
        step("costs", t0)
    except MixedPrecisionError as e:
        raise UserError(f"{args.model}: {e}") from None
    options = {n: applicable_options(graph, n, sens.values[n]) for n in layers}
    t0 = time.perf_counter()
    try:
        if args.budget_sensitivity is None:
            sens_budget = least_sensitivity(layers, options, size, sens, size_budget)
        else:
            sens_budget = args.budget_sensitivity
        choice = choose_widths(layers, options, costs, size, sens, size_budget, sens_budget, objective)
    except WidthBudgetError as e:
        if e.budget == "model size":
            raise UserError(f"--budget-size {args.budget_size:g}: no choice fits {size_budget:,.0f} of the "
                            f"{full:,.0f} int8 weight bytes; the least is {e.least / full:.4g} "
                            f"({e.least:,.0f} bytes, every layer at its narrowest weights)") from None
        given = "least" if args.budget_sensitivity is None else f"{args.budget_sensitivity:g}"
        raise UserError(f"--budget-sensitivity {given}: no choice within --budget-size "
                        f"{args.budget_size:g} reaches it; the least achievable is {e.least:.4g}") from None
    step("ilp", t0)
    t0 = time.perf_counter()
    report = width_report(choice, costs, size, sens, graph, calib)
    lowered = lower_graph(graph, choice.widths)
    step("report", t0)
    text = report.format()

    checks = []
    if args.verify:
        x = _inputs(qmodel, args.seed + 2, 1)[0]
        t0 = time.perf_counter()
        try:
            checks = verify_lowered(lowered, x, cfg, ("model",) if args.verify == "model" else ("model", "rtl"),
                                    echo=say)
        except ExecutionError as e:
            raise UserError(f"--verify {args.verify}: {e}") from None
        step("verify", t0)
        for c in checks:
            timings[f"verify_{c.backend}"] = round(c.seconds, 3)
        lines = []
        for c in checks:
            what = "bit-exact with run_numpy" if not c.mismatched else \
                f"{len(c.mismatched)} node(s) differ from run_numpy (first {c.mismatched[0]})"
            if c.backend != "model":
                what += ", cycles equal the model's" if not c.cycle_mismatches else \
                    (f", cycles differ from the model's at {len(c.cycle_mismatches)} layer(s) "
                     f"(first {c.cycle_mismatches[0]})")
            lines.append(f"verify {c.backend}: {c.cycles:,} cycles, {c.accelerator_layers} accelerator layers, {what} "
                         f"({c.seconds:.1f} s)")
        text += "\n" + "\n".join(lines)

    budget_line = (f"budgets: size {args.budget_size:g} x {full:,.0f} int8 weight bytes = {size_budget:,.0f}; "
                   f"sensitivity {sens_budget:.4g}" + (" (least achievable)" if args.budget_sensitivity is None else "")
                   + f"; objective {objective.value}; {cfg.rows}x{cfg.cols} '{cfg.name}'")
    text = f"{how}\n{budget_line}\n{text}\n"
    data = {
        "model": args.model, "source": how, "resolution": args.resolution, "seed": args.seed,
        "config": cfg.to_dict(), "objective": objective.value,
        "budgets": {"size_fraction": args.budget_size, "size_bytes": size_budget, "int8_weight_bytes": full,
                    "sensitivity": sens_budget, "sensitivity_is_least": args.budget_sensitivity is None},
        "choice": {"widths": {n: str(o) for n, o in choice.widths.items()}, "cost": choice.cost,
                   "size_bytes": choice.size_bytes, "sensitivity": choice.sensitivity, "status": choice.status,
                   "seconds": choice.seconds},
        "report": report.to_dict(),
        "sensitivity": {"metric": sens.metric, "inputs": sens.inputs, "seconds": sens.seconds,
                        "values": {n: {str(o): v for o, v in row.items()} for n, row in sens.values.items()}},
        "verify": [{"backend": c.backend, "ok": c.ok, "cycles": c.cycles, "accelerator_layers": c.accelerator_layers,
                    "mismatched": c.mismatched, "cycle_mismatches": c.cycle_mismatches, "seconds": c.seconds}
                   for c in checks],
        "timings_s": timings,
    }
    files = {
        "widths.json": widths_to_json(choice.widths, model=args.model, applies_to="int8.onnx",
                                      objective=objective.value).encode(),
        "int8.onnx": int8_bytes,
        "report.json": (json.dumps(data, indent=2, default=_jsonable) + "\n").encode(),
        "report.txt": text.encode(),
    }
    outs.put(key, files)
    outs.commit()
    print(text, end="")
    print(f"wrote {args.out}/ (widths.json, int8.onnx, report.json, report.txt)", file=sys.stderr)
    return 0 if all(c.ok for c in checks) else 1


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        f = float(v)
        return f if math.isfinite(f) else str(f)
    return str(v)
