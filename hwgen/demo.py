"""``hwgen demo``: the main job on an embedded default.

Generates the default configuration into the output folder, lowers a built-in
convolution and GEMM for each dataflow the design supports, runs them on the
cycle model and on Verilator, and prints and writes (report.md, report.json)
cycles, PE utilization and the three-way agreement (RTL == model == numpy).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .config import AcceleratorConfig

__all__ = ["DEMO_CONFIG", "demo_workloads", "run_demo"]

DEMO_CONFIG = AcceleratorConfig(name="demo")


def demo_workloads(cfg: AcceleratorConfig, seed: int = 2026):
    """(label, Program, expected) for a 3x3 convolution and a GEMM, in each supported dataflow."""
    from mappings.lowering import lower_conv2d, lower_gemm
    from sim.reference import Quant, conv2d_ref, gemm_ref

    rng = np.random.default_rng(seed)
    X = rng.integers(-128, 128, (14, 14, 16), dtype=np.int8)
    Wc = rng.integers(-128, 128, (3, 3, 16, 24), dtype=np.int8)
    A = rng.integers(-128, 128, (50, 72), dtype=np.int8)
    Wg = rng.integers(-128, 128, (72, 40), dtype=np.int8)
    q_conv = Quant(1 << 24, 40, -3, -128, 127, True)   # ReLU
    q_gemm = Quant(3 << 22, 38, 5, -128, 127, False)
    out = []
    for df in cfg.dataflow.modes:
        p = lower_conv2d(cfg, X, Wc, 1, 1, q_conv, dataflow=df)
        p.meta["name"] = f"conv 14x14x16 3x3->24 s1 p1 relu ({df})"
        out.append((p.meta["name"], p, conv2d_ref(X, Wc, 1, 1, q_conv)))
        p = lower_gemm(cfg, A, Wg, q_gemm, dataflow=df)
        p.meta["name"] = f"gemm 50x72x40 ({df})"
        out.append((p.meta["name"], p, gemm_ref(A, Wg, q_gemm)))
    return out


def run_demo(out_dir: Path, rtl: bool = True, cfg: AcceleratorConfig = DEMO_CONFIG,
             echo: Callable[[str], None] = print, force: bool = False) -> int:
    """Run the demo into ``out_dir``, which appears whole at the end (or not at all, on failure).

    The folder is checked first (:mod:`hwgen.outputs`: an earlier demo output is replaced only with
    ``force``); the demo works in a hidden staging sibling renamed into place at the end.
    """
    from .outputs import Outputs

    with Outputs(force=force, command="demo") as outs:
        key = outs.folder(out_dir)
        status = _run_demo_into(outs.stage_folder(key), Path(out_dir), rtl, cfg, echo)
        outs.commit()
    echo(f"report: {out_dir}/report.md")
    return status


def _run_demo_into(work: Path, out_dir: Path, rtl: bool, cfg: AcceleratorConfig, echo: Callable[[str], None]) -> int:
    """The demo's steps, writing into ``work`` (messages name ``out_dir``, where the files will be)."""
    from rich.console import Console
    from rich.table import Table

    from .generate import design_files
    from .verify import verify_programs

    console = Console(width=120)
    t0 = time.perf_counter()
    for name, data in design_files(cfg).items():
        (work / name).write_bytes(data)
    echo(f"generated {cfg.rows}x{cfg.cols} '{cfg.dataflow}' accelerator into {out_dir}/ "
         f"({time.perf_counter() - t0:.1f} s)")
    cases = demo_workloads(cfg)
    t1 = time.perf_counter()
    result = verify_programs(cfg, [(p, e) for _, p, e in cases], rtl=rtl, echo=echo)
    t_run = time.perf_counter() - t1

    table = Table(title=f"hwgen demo: {cfg.rows}x{cfg.cols} '{cfg.dataflow}' array")
    for col in ("workload", "MACs", "model cycles", "RTL cycles", "PE utilization", "RTL == model == numpy"):
        table.add_column(col, justify="right" if col not in ("workload",) else "left")
    rows = []
    for (label, prog, _), check in zip(cases, result.checks):
        macs = int(np.prod([prog.meta[k] for k in ("M", "K", "N")])) if prog.meta.get("kind") == "gemm" else \
            int(np.prod(prog.outputs["out"].shape)) * prog.meta["KH"] * prog.meta["KW"] * prog.meta["Cin"]
        agree = "yes" if check.ok else "NO: " + "; ".join(check.problems)
        if not rtl:
            agree = "model == numpy" if check.ok else agree
        rows.append(dict(workload=label, macs=macs, model_cycles=check.model_cycles, rtl_cycles=check.rtl_cycles,
                         utilization=round(check.utilization, 4), agree=check.ok))
        table.add_row(label, f"{macs:,}", f"{check.model_cycles:,}",
                      "-" if check.rtl_cycles is None else f"{check.rtl_cycles:,}",
                      f"{100 * check.utilization:.1f}%", agree)
    console.print(table)
    echo(f"{result.passed} passed, {result.failed} failed ({t_run:.1f} s for model{' and Verilator' if rtl else ''})")

    md = ["# hwgen demo report", "",
          f"Design: {cfg.rows}x{cfg.cols} '{cfg.dataflow}', {cfg.input_width}-bit inputs, {cfg.weight_width}-bit "
          f"weights, {cfg.acc_width}-bit accumulators, scratchpads {cfg.a_spad_depth}/{cfg.w_spad_depth} words, "
          f"accumulator buffer {cfg.acc_depth} rows, {cfg.host_port_width}-bit host port. "
          f"Verilog: `hwgen_accel.v`; parameters: `config.json`.", "",
          "| workload | MACs | model cycles | RTL cycles | PE utilization | RTL == model == numpy |",
          "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        md.append(f"| {r['workload']} | {r['macs']:,} | {r['model_cycles']:,} | "
                  f"{'-' if r['rtl_cycles'] is None else format(r['rtl_cycles'], ',')} | "
                  f"{100 * r['utilization']:.1f}% | {'yes' if r['agree'] else 'NO'} |")
    md += ["", "PE utilization = busy PE-cycles / (cycles x PEs), from the hardware counters.", ""]
    cnn = _demo_cnn(cfg, work, rtl, console, echo)
    md += cnn["markdown"]
    fi = _demo_campaign(cfg, work, out_dir, rtl, echo)
    md += fi["markdown"]
    (work / "report.md").write_text("\n".join(md))
    (work / "report.json").write_text(json.dumps({"config": cfg.to_dict(), "workloads": rows,
                                                           "passed": result.passed, "failed": result.failed,
                                                           "small_cnn": cnn["json"], "fault_injection": fi["json"]},
                                                          indent=2))
    return 0 if result.failed == 0 and cnn["ok"] else 1


def _demo_cnn(cfg: AcceleratorConfig, out_dir: Path, rtl: bool, console, echo: Callable[[str], None]) -> dict:
    """Quantize the built-in small CNN with onnxruntime, map it, run it end to end on the model and the RTL."""
    from rich.table import Table

    from mappings.execute import run_quantized
    from mappings.network_map import chart_png, map_graph
    from mappings.onnx_import import import_onnx
    from mappings.onnx_models import quantize_qdq, random_inputs, run_ort, save, small_cnn

    fm = small_cnn(seed=7)
    save(fm, out_dir / "small_cnn.onnx")
    qpath = out_dir / "small_cnn_int8.onnx"
    quantize_qdq(out_dir / "small_cnn.onnx", qpath, activation_type="int8", per_channel=True, seed=7)
    graph = import_onnx(qpath)
    (iname, x), = random_inputs(fm, seed=11)[0].items()
    nmap = map_graph(graph, cfg, per_channel=True)  # the executor uses the quantization table
    (out_dir / "small_cnn_utilization.png").write_bytes(chart_png(nmap))
    model_run = run_quantized(graph, x, cfg, backend="model")
    ort = next(iter(run_ort(qpath, {iname: x}).values()))
    ours = next(iter(model_run.outputs.values()))
    scale = float(np.asarray(graph.tensors[graph.outputs[0]].quant.scale).reshape(-1)[0])
    ort_quanta = float(np.abs(ours - ort).max() / scale)
    same_argmax = bool(np.argmax(ours) == np.argmax(ort))
    problems: list[str] = []
    rtl_run = run_quantized(graph, x, cfg, backend="rtl") if rtl else None
    if rtl_run is not None:
        for node, t in model_run.values.items():
            if not np.array_equal(t.q, rtl_run.values[node].q):
                problems.append(f"layer {node}: RTL output differs from the model")
        for a, b in zip(model_run.layers, rtl_run.layers):
            if a.cycles != b.cycles:
                problems.append(f"layer {a.name}: RTL {b.cycles} cycles, model {a.cycles}")
    table = Table(title="small CNN (int8 QDQ, per-channel) end to end")
    for col in ("layer", "kind", "where", "dataflow", "model cycles", "RTL cycles", "util"):
        table.add_column(col, justify="right" if "cycles" in col or col == "util" else "left")
    rows = []
    for i, layer in enumerate(model_run.layers):
        rc = rtl_run.layers[i].cycles if rtl_run is not None else None
        rows.append(dict(layer=layer.name, kind=layer.kind, where=layer.where, dataflow=layer.dataflow,
                         model_cycles=layer.cycles, rtl_cycles=rc, utilization=round(layer.utilization, 4)))
        table.add_row(layer.name, layer.kind, layer.where, layer.dataflow or "-", f"{layer.cycles:,}",
                      "-" if rc is None else f"{rc:,}", f"{100 * layer.utilization:.1f}%" if layer.cycles else "")
    console.print(table)
    if rtl_run is None:
        agree = "model only (RTL skipped)"
    else:
        agree = "; ".join(problems) if problems else \
            "RTL == model (every layer's output bit-exact, every layer's cycles equal)"
    echo(f"small CNN: {model_run.cycles:,} cycles; vs onnxruntime: {ort_quanta:.0f} output quanta max, "
         f"argmax {'equal' if same_argmax else 'DIFFERENT'}; {agree}")
    md = ["## Small CNN end to end", "",
          "A conv3x3/relu, conv3x3 s2/relu, depthwise conv3x3/relu6, 1x1 conv, residual add, max pool, global "
          "average pool and fully connected classifier (`small_cnn.onnx`), quantized by onnxruntime's "
          "`quantize_static` to int8 QDQ with per-channel weights (`small_cnn_int8.onnx`), run on the accelerator "
          "(convolutions and the classifier) with host steps for the rest.", "",
          f"* total accelerator cycles: {model_run.cycles:,}",
          f"* output vs onnxruntime: {ort_quanta:.0f} quanta at most, argmax "
          f"{'equal' if same_argmax else 'different'}",
          f"* {agree}", "",
          "| layer | kind | where | dataflow | model cycles | RTL cycles | utilization |",
          "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        md.append(f"| {r['layer']} | {r['kind']} | {r['where']} | {r['dataflow'] or '-'} | {r['model_cycles']:,} | "
                  f"{'-' if r['rtl_cycles'] is None else format(r['rtl_cycles'], ',')} | "
                  f"{100 * r['utilization']:.1f}% |")
    md += ["", "Mapping (analytical model, equal to the cycle model):", "",
           "| layer | shape | tiles | dataflow | cycles | utilization |", "|---|---|---|---|---:|---:|"]
    for r in nmap.rows:
        if r.where == "accelerator":
            md.append(f"| {r.layer} | {r.shape} | {r.tiles} | {r.dataflow} | {r.cycles:,} | "
                      f"{100 * r.utilization:.1f}% |")
    md += ["", "![per-layer utilization](small_cnn_utilization.png)", ""]
    ok = not problems and same_argmax
    return {"ok": ok, "markdown": md, "json": {"layers": rows, "ort_max_quanta": ort_quanta,
                                               "same_argmax": same_argmax, "problems": problems,
                                               "total_cycles": model_run.cycles}}


def _demo_campaign(cfg: AcceleratorConfig, work: Path, out_dir: Path, rtl: bool, echo: Callable[[str], None]) -> dict:
    """A small statistical fault-injection campaign on a GEMM, with its report (fi_report.md/.json/.png)."""
    from fault_injection.campaign import run_campaign
    from fault_injection.report import campaign_report, write_outputs

    db = work / "fi_campaign.sqlite"
    backend = "rtl" if rtl else "model"
    summary = run_campaign(db, cfg, "gemm:32x48x24", 400, seed=1, backend=backend, jobs=1, progress=False,
                           models=("seu", "mbu"))
    rep = campaign_report(db)
    write_outputs(rep, md=work / "fi_report.md", json_path=work / "fi_report.json", png=work / "fi_avf.png")
    counts = {k: sum(v[k] for v in summary.counts.values()) for k in ("masked", "sdc", "due")}
    echo(f"fault injection ({backend}, {summary.done} injections, {summary.elapsed:.1f} s): "
         f"masked {counts['masked']}, sdc {counts['sdc']}, due {counts['due']}; {rep.verdict}")
    echo(f"fault-injection report: {out_dir}/fi_report.md")
    md = ["## Fault injection", "",
          f"400 single- and multi-bit upsets on the {backend} backend, stratified by structure (bits x cycles), "
          "on a 32x48x24 GEMM: per-structure AVF with 99% Clopper-Pearson intervals, FIT, SPFM and the ASIL "
          "it supports in [fi_report.md](fi_report.md); chart: ![AVF](fi_avf.png)", ""]
    return {"markdown": md, "json": {"backend": backend, "db": db.name, "report": "fi_report.json",
                                     "counts": counts, "verdict": rep.verdict}}
