"""Networks users bring, from ONNX as onnxruntime quantizes them: per model, opset and weight quantization,
the cycles and PE utilization ``hwgen map`` reports and ``hwgen run`` measures (and whether they agree layer
by layer), the output's distance from onnxruntime in output quanta (and ORT's own spread between
optimisation levels), whether the argmax agrees, and the wall time of map and run; with ``--rtl``, the
MobileNetV3-Small runs on native Verilator too, compared layer by layer with the cycle model (integer
outputs, cycles, busy PEs).

    python benchmarks/onnx_networks.py [--models squeezenet1_1,shufflenet_v2_x0_5] [--opsets 13,17]
                                       [--rtl] [--bert]

The networks are mappings.onnx_vision's builders of torchvision's architectures as torch.onnx.export writes
them (torch is not a dependency) at 1x3x64x64, the operator models of the tests, and with ``--bert`` a
BERT-base encoder layer (mappings.onnx_models.bert_encoder_layer: sequence 128, width 768, 12 heads,
feed-forward 3072, post-norm). Random weights, quantized by onnxruntime's ``quantize_static`` (QDQ, int8
activations, per-channel and per-tensor weights, calibration on random inputs). "layer quanta": the largest
distance from ORT of any node run on ORT's own inputs. Exit 1 if that exceeds one quantum, map and run
disagree, or the RTL differs from the model; a run further from ORT end to end than two quanta or ORT's
own spread is marked "beyond" and listed (a tie rounded exactly by hwgen and the other way by ORT's
float32 grows through the layers after it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwgen.config import AcceleratorConfig  # noqa: E402
from mappings.execute import FloatTensor, run_quantized  # noqa: E402
from mappings.network_map import map_graph  # noqa: E402
from mappings.onnx_import import import_onnx  # noqa: E402
from mappings.onnx_models import (activation_cnn, bert_encoder_layer, ceil_pool_cnn, encoder_layer,  # noqa: E402
                                  quantize_qdq, random_inputs, run_ort, save, shuffle_cnn)
from mappings.onnx_vision import VISION_BUILDERS  # noqa: E402

#: name -> (builder of the float model at an opset, the opsets it exports at: LayerNormalization and
#: HardSwish need 17 and 14)
MODELS = {
    **{name: ((lambda build: lambda opset: build(seed=1, hw=64, opset=opset))(build), (13, 17))
       for name, build in VISION_BUILDERS.items()},
    "ceil_pool_cnn": (lambda opset: ceil_pool_cnn(seed=1, hw=65), (13,)),
    "activation_cnn": (lambda opset: activation_cnn(seed=1, hw=64, opset=opset), (17,)),
    "shuffle_cnn": (lambda opset: shuffle_cnn(seed=1, hw=64, opset=opset), (13, 17)),
    "encoder_layer": (lambda opset: encoder_layer(seed=1, seq=32, d=64, heads=4, ff=256, opset=opset), (17,)),
}
BERT = (lambda opset: bert_encoder_layer(seed=1, seq=128, opset=opset), (17,))
#: not classifiers: their argmax means nothing
NOT_CLASSIFIERS = ("encoder_layer", "bert_base_layer")
#: the network --rtl runs on Verilator too
RTL_MODEL = "mobilenet_v3_small"

#: Gemmini-equal resources (issue 8's configuration)
CFG = AcceleratorConfig(name="net16", rows=16, cols=16, host_port_width=128, a_spad_depth=8192, w_spad_depth=8192,
                        acc_depth=1024)


def measure(name: str, fm, per_channel: bool, folder: Path, rtl: bool) -> dict:
    save(fm, folder / f"{name}.onnx")
    q = quantize_qdq(folder / f"{name}.onnx", folder / f"{name}_q.onnx", "int8", per_channel, seed=3)
    g = import_onnx(q)
    (out,) = g.outputs
    scale = float(g.tensors[out].quant.scale)
    feed = random_inputs(fm, seed=4)[0]
    (x,) = feed.values()
    t0 = time.perf_counter()
    nmap = map_graph(g, CFG)
    map_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = run_quantized(g, x, CFG)
    run_s = time.perf_counter() - t0
    best = next(iter(run_ort(q, feed, opt_level="all").values()))
    plain = next(iter(run_ort(q, feed, opt_level="disable").values()))
    ours = run.outputs[out]
    # layer by layer: every quantized node on onnxruntime's own inputs (its unoptimised graph)
    nodes = [v for v in g.order() if g.layer(v).kind != "Constant"]
    names = {v: g.tensors[v].name for v in nodes}
    ref = run_ort(q, feed, list(names.values()), opt_level="disable")
    fed = run_quantized(g, x, CFG, feed={v: ref[names[v]] for v in nodes})
    layer_quanta = max(int(np.abs(fed.own[v].native().astype(np.int64) - ref[names[v]].astype(np.int64)).max())
                       for v in nodes if not isinstance(fed.own[v], FloatTensor))
    mapped = {r.layer: r.cycles for r in nmap.rows if r.where == "accelerator"}
    ran = {r.name: r.cycles for r in run.layers if r.where == "accelerator"}
    row = dict(model=name, nodes=len(g.order()), accel=sum(r.where == "accelerator" for r in run.layers),
               map_cycles=nmap.cycles, run_cycles=run.cycles, map_eq_run=mapped == ran,
               util=sum(r.busy_pe for r in run.layers) / (run.cycles * CFG.pes) if run.cycles else 0.0,
               quanta=float(np.abs(ours - best).max()) / scale, quanta_plain=float(np.abs(ours - plain).max()) / scale,
               spread=float(np.abs(best - plain).max()) / scale,
               layer_quanta=layer_quanta, argmax=bool(np.array_equal(ours.argmax(-1), best.argmax(-1))),
               map_s=map_s, run_s=run_s, rtl="-")
    if rtl:
        t0 = time.perf_counter()
        hw = run_quantized(g, x, CFG, backend="rtl")
        same = all(np.array_equal(hw.values[n].q, run.values[n].q) for n in run.values) and all(
            (a.cycles, a.busy_pe, a.instructions) == (b.cycles, b.busy_pe, b.instructions)
            for a, b in zip(hw.layers, run.layers))
        row["rtl"] = f"{'exact' if same else 'DIFFERS'} ({time.perf_counter() - t0:.0f} s)"
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--opsets", default="13,17", help="comma-separated export opsets (default 13,17; a model "
                                                      "runs at those of them it can be exported at)")
    ap.add_argument("--rtl", action="store_true", help=f"also run {RTL_MODEL} on native Verilator, layer by layer "
                                                       f"against the model")
    ap.add_argument("--bert", action="store_true", help="also a BERT-base encoder layer at sequence 128")
    args = ap.parse_args(argv)
    todo = {m: MODELS[m] for m in args.models.split(",") if m}
    if args.bert:
        todo["bert_base_layer"] = BERT
    table = Table(title=f"ONNX networks on {CFG.rows}x{CFG.cols} ({CFG.controller} controller), int8 QDQ by onnxruntime")
    cols = ("model", "opset", "weights", "nodes", "accel", "map cycles", "run cycles", "map=run", "PE util",
            "layer quanta", "quanta vs ORT", "vs ORT(no opt)", "ORT spread", "argmax", "map s", "run s", "RTL")
    for c in cols:
        table.add_column(c, justify="left" if c in ("model", "RTL", "argmax", "weights", "map=run") else "right")
    bad, drift = 0, []
    with tempfile.TemporaryDirectory() as d:
        for name, (build, opsets) in todo.items():
            for k, opset in enumerate(o for o in map(int, args.opsets.split(",")) if o in opsets):
                for per_channel in (True, False):
                    rtl = args.rtl and name == RTL_MODEL and k == 0 and per_channel
                    r = measure(name, build(opset), per_channel, Path(d), rtl)
                    bad += r["layer_quanta"] > 1 or not r["map_eq_run"] or "DIFFERS" in r["rtl"]
                    beyond = r["quanta_plain"] > max(2.0, r["spread"]) + 1e-3
                    drift.extend([f"{name} opset {opset} {'per-channel' if per_channel else 'per-tensor'}"] if beyond else [])
                    table.add_row(r["model"], str(opset), "per-channel" if per_channel else "per-tensor",
                                  str(r["nodes"]), str(r["accel"]), f"{r['map_cycles']:,}", f"{r['run_cycles']:,}",
                                  "yes" if r["map_eq_run"] else "NO", f"{r['util']:.1%}", str(r["layer_quanta"]),
                                  f"{r['quanta']:.0f}", f"{r['quanta_plain']:.0f}" + (" (beyond)" if beyond else ""),
                                  f"{r['spread']:.0f}",
                                  "-" if name in NOT_CLASSIFIERS else "same" if r["argmax"] else "differs",
                                  f"{r['map_s']:.1f}", f"{r['run_s']:.1f}", r["rtl"])
    console = Console(width=230)
    console.print(table)
    if drift:
        console.print(f"beyond two quanta or ORT's spread end to end, every layer within {1} quantum on ORT's inputs: "
                      f"{', '.join(drift)} (where the layers differ, hwgen's requantization is the exactly rounded "
                      f"one and onnxruntime's float32 rounds a tie the other way; the layers after it amplify it)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
