"""The ``hwgen`` command line: a thin shell over the Python API.

Each subcommand imports its stage inside its handler, so ``hwgen --help`` and
the pure-Python commands start without loading Amaranth or cocotb.
Errors in user input (configuration, program files) print one line naming the
file and field and exit with status 2; a verification mismatch exits with 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import AcceleratorConfig, ConfigError

__all__ = ["main", "build_parser"]

_CONFIG_FLAGS = (
    # flag, field, type, help
    ("--name", "name", str, "design name (default output folder rtl_out/<name>)"),
    ("--rows", "rows", int, "array rows"),
    ("--cols", "cols", int, "array columns"),
    ("--dataflow", "dataflow", str, "os, ws or both"),
    ("--input-width", "input_width", int, "input operand bits"),
    ("--weight-width", "weight_width", int, "weight operand bits"),
    ("--acc-width", "acc_width", int, "accumulator bits"),
    ("--output-width", "output_width", int, "requantized output bits"),
    ("--max-reduction", "max_reduction", int, "longest reduction the accumulators must hold"),
    ("--a-spad-depth", "a_spad_depth", int, "input scratchpad words"),
    ("--w-spad-depth", "w_spad_depth", int, "weight scratchpad words"),
    ("--acc-depth", "acc_depth", int, "accumulator buffer rows"),
    ("--host-port-width", "host_port_width", int, "host memory port bits"),
)


class UserError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _add_config_args(p: argparse.ArgumentParser, flags: bool = True) -> None:
    p.add_argument("--config", metavar="FILE.json", help="configuration file (flags override its fields)")
    if flags:
        for flag, fld, typ, hlp in _CONFIG_FLAGS:
            p.add_argument(flag, dest=fld, type=typ, default=None, help=hlp)


def _config_from_args(args: argparse.Namespace) -> AcceleratorConfig:
    base = AcceleratorConfig.load(args.config).to_dict() if args.config else AcceleratorConfig().to_dict()
    for _, fld, _, _ in _CONFIG_FLAGS:
        v = getattr(args, fld, None)
        if v is not None:
            base[fld] = v
    return AcceleratorConfig.from_dict(base, source=args.config or "command line")


# ------------------------------------------------------------------ commands
def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate

    cfg = _config_from_args(args)
    out = Path(args.out) if args.out else Path("rtl_out") / cfg.name
    try:
        path = generate(cfg, out)
    except OSError as e:
        raise UserError(f"{e.filename or out}: cannot write ({e.strerror})") from None
    print(f"wrote {path}/ (hwgen_accel.v, config.json, manifest.json) for {cfg.rows}x{cfg.cols} '{cfg.dataflow}'")
    return 0


def _read(path: Path, binary: bool = False):
    """A file's text (or bytes); a one-line UserError naming the file when it cannot be read."""
    try:
        return path.read_bytes() if binary else path.read_text()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def cmd_asm(args: argparse.Namespace) -> int:
    from .isa import assemble, parse_program_text

    src = Path(args.source)
    code = assemble(parse_program_text(_read(src), source=str(src)))
    try:
        _atomic_write(Path(args.output), code)
    except OSError as e:
        raise UserError(f"{args.output}: cannot write ({e.strerror})") from None
    print(f"wrote {args.output}: {len(code) // 16} instructions")
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    from .isa import disassemble, format_program_text

    src = Path(args.binary)
    data = _read(src, binary=True)
    try:
        sys.stdout.write(format_program_text(disassemble(data, stop_at_halt=False)))
    except ValueError as e:
        raise UserError(f"{src}: {e}") from None
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_config

    cfg = _config_from_args(args)
    if args.programs < 1:
        raise UserError(f"--programs must be at least 1, got {args.programs}")
    if args.seed < 0:
        raise UserError(f"--seed must be at least 0, got {args.seed}")
    result = verify_config(cfg, n_programs=args.programs, seed=args.seed, echo=print)
    print(f"{result.passed} passed, {result.failed} failed")
    return 0 if result.failed == 0 else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(out_dir=Path(args.out), rtl=not args.no_rtl, echo=print)


def cmd_run(args: argparse.Namespace) -> int:
    """Run an int8 QDQ ONNX model; every check (model, configuration, input array, layer fit) happens before
    anything is written, and the outputs are staged as temporary siblings renamed into place at the end."""
    import io
    import json

    import numpy as np

    from mappings.execute import ExecutionError, run_quantized
    from mappings.onnx_import import import_onnx

    cfg = _config_from_args(args)
    model = Path(args.model)
    graph = import_onnx(model)  # OnnxImportError names the file (or the node and its operator)
    if len(graph.outputs) != 1:
        raise UserError(f"{model}: the model has {len(graph.outputs)} outputs ({', '.join(graph.outputs)}); "
                        f"hwgen run writes exactly one")
    if len(graph.graph_inputs) != 1:
        raise UserError(f"{model}: the model has {len(graph.graph_inputs)} inputs "
                        f"({', '.join(graph.graph_inputs)}); hwgen run takes exactly one")
    (inp,) = graph.graph_inputs
    x = _load_input(Path(args.input), inp, tuple(graph.shapes[inp]), model)
    try:
        run = run_quantized(graph, x, cfg, backend=args.backend)
    except ExecutionError as e:
        raise UserError(f"{model}: {e}") from None
    (out_name,) = graph.outputs
    y = run.outputs[out_name].astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, y)
    files = {Path(args.output): buf.getvalue()}
    if args.report:
        report = {"model": str(model), "backend": args.backend, "config": cfg.to_dict(), **run.report()}
        files[Path(args.report)] = (json.dumps(report, indent=2) + "\n").encode()
    dump = None
    if args.dump_layers:
        dump = {}
        for name, t in run.values.items():
            arr = io.BytesIO()
            np.save(arr, t.native())
            dump[_safe_name(name, dump)] = arr.getvalue()
    _write_all(files, Path(args.dump_layers) if dump is not None else None, dump or {})
    acc = [layer for layer in run.layers if layer.where == "accelerator"]
    print(f"{model}: {len(acc)} accelerator layers, {len(run.layers) - len(acc)} host steps, "
          f"{run.cycles:,} cycles on {cfg.rows}x{cfg.cols} ({args.backend}); output {y.shape} -> {args.output}")
    return 0


def _load_input(path: Path, name: str, shape: tuple[int, ...], model: Path):
    """The input array from a .npy file, checked against the model's input ``name`` (shape, float dtype)."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise UserError(f"{path}: not a .npy array file (no NPY header)")
            f.seek(0)
            x = np.load(f, allow_pickle=False)
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, EOFError) as e:  # truncated, object arrays
        raise UserError(f"{path}: not a readable .npy array ({str(e).splitlines()[0] if str(e) else 'truncated'})") \
            from None
    if not np.issubdtype(x.dtype, np.floating):
        raise UserError(f"{path}: dtype {x.dtype}; input '{name}' of {model} takes float32")
    if x.shape != shape:
        raise UserError(f"{path}: shape {x.shape}; input '{name}' of {model} has shape {shape}")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{path}: contains NaN or infinite values")
    return x


def _safe_name(name: str, taken) -> str:
    """``name`` as a file name <node>.npy (characters outside [A-Za-z0-9-_.] become '_'), unique among ``taken``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    cand, i = f"{safe}.npy", 1
    while cand in taken:
        cand, i = f"{safe}-{i}.npy", i + 1
    return cand


def _write_all(files: dict[Path, bytes], folder: Path | None, folder_files: dict[str, bytes]) -> None:
    """Write every file and the folder, or nothing: all are staged as temporary siblings first (ordinary
    permissions), then renamed into place; a failure while staging removes every temporary and names the path."""
    import os
    import shutil
    import tempfile

    mask = os.umask(0)
    os.umask(mask)
    staged: list[tuple[Path, Path]] = []
    made_dirs: list[Path] = []

    def mkparent(p: Path) -> None:
        missing = [d for d in (p.parent, *p.parent.parents) if not d.exists()]
        p.parent.mkdir(parents=True, exist_ok=True)
        made_dirs.extend(missing)

    current = None
    try:
        for path, data in files.items():
            current = path
            if path.is_dir():
                raise UserError(f"{path}: is a folder, not a file")
            mkparent(path)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((Path(tmp), path))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o666 & ~mask)
        if folder is not None:
            current = folder
            if folder.exists() and not folder.is_dir():
                raise UserError(f"{folder}: exists and is not a folder")
            mkparent(folder)
            tmpdir = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
            staged.append((tmpdir, folder))
            os.chmod(tmpdir, 0o777 & ~mask)
            for name, data in folder_files.items():
                (tmpdir / name).write_bytes(data)
    except BaseException as e:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        for d in sorted(set(made_dirs), key=lambda d: len(d.parts), reverse=True):  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        if isinstance(e, OSError):
            raise UserError(f"{current}: cannot write ({e.strerror or e})") from None
        raise
    for i, (tmp, dest) in enumerate(staged):
        try:
            if tmp.is_dir() and dest.is_dir():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        except OSError as e:
            for t, _ in staged[i:]:
                shutil.rmtree(t, ignore_errors=True) if t.is_dir() else t.unlink(missing_ok=True)
            raise UserError(f"{dest}: cannot write ({e.strerror or e})") from None


def cmd_map(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    cfg = _config_from_args(args)
    console = Console(width=160)
    if args.scalesim_compat:
        return _map_scalesim_compat(args, cfg, console)
    from mappings.network_map import load_model, map_graph, write_chart

    nmap = map_graph(load_model(args.model), cfg)
    outputs: list[tuple[Path, bytes]] = []
    if args.json:
        outputs.append((Path(args.json), nmap.to_json().encode()))
    if args.csv:
        outputs.append((Path(args.csv), nmap.to_csv().encode()))
    for path, data in outputs:
        _atomic_write(path, data)
    if args.png:
        write_chart(nmap, args.png)
    table = Table(title=f"{args.model} on {cfg.rows}x{cfg.cols} '{cfg.dataflow}' ({cfg.name})")
    for col in ("layer", "kind", "shape", "tiles", "dataflow", "cycles", "util", "host bytes"):
        table.add_column(col, justify="right" if col in ("cycles", "util", "host bytes") else "left")
    for r in nmap.rows:
        if r.where == "host" and not args.all:
            continue
        table.add_row(r.layer, r.kind, r.shape, r.tiles or "host step", r.dataflow or "-", f"{r.cycles:,}",
                      f"{100 * r.utilization:.1f}%", f"{r.host_read_bytes + r.host_write_bytes:,}")
    console.print(table)
    n_acc = sum(r.where == "accelerator" for r in nmap.rows)
    print(f"{n_acc} accelerator layers, {len(nmap.rows) - n_acc} host steps; {nmap.cycles:,} cycles, "
          f"{nmap.macs:,} MACs, {100 * nmap.busy_utilization:.2f}% PE utilization")
    return 0


def _map_scalesim_compat(args: argparse.Namespace, cfg, console) -> int:
    from mappings.scalesim_compat_report import format_report, scalesim_compat_report
    from mappings.scalesim_csv import read_topology

    if not args.model.lower().endswith(".csv"):
        raise UserError(f"{args.model}: --scalesim-compat takes a SCALE-Sim topology .csv")
    df = args.scalesim_dataflow or ("os" if cfg.dataflow == "both" else cfg.dataflow)
    report = scalesim_compat_report(read_topology(args.model), cfg.rows, cfg.cols, df)
    text = format_report(report)
    if args.json:
        import json
        from dataclasses import asdict

        data = {"model": args.model, "rows": cfg.rows, "cols": cfg.cols, "dataflow": df,
                "total_cycles": report.total_cycles, "layers": [asdict(layer) for layer in report.layers]}
        _atomic_write(Path(args.json), (json.dumps(data, indent=2) + "\n").encode())
    print(text)
    return 0


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary sibling (removed on failure), with umask permissions."""
    from .fileio import atomic_write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwgen", description="Systolic accelerator generator, model and verifier")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write Verilog, config.json and a manifest")
    _add_config_args(g)
    g.add_argument("--out", metavar="DIR", help="output folder (default rtl_out/<name>)")
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("verify", help="run random programs on Verilator and on the model; compare")
    _add_config_args(v)
    v.add_argument("--programs", type=int, default=30, help="number of random programs (default 30)")
    v.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("demo", help="generate the default design and run a convolution and a GEMM on model and RTL")
    d.add_argument("--out", default="rtl_out/demo", help="output folder (default rtl_out/demo)")
    d.add_argument("--no-rtl", action="store_true", help="model only (skip the Verilator build)")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run an int8 QDQ ONNX model end to end on the accelerator")
    r.add_argument("model", help="int8 QDQ ONNX file (as onnxruntime's quantize_static writes it)")
    r.add_argument("--input", required=True, metavar="X.npy", help="float32 input in the model's input shape")
    r.add_argument("--output", required=True, metavar="Y.npy", help="dequantized float32 output")
    _add_config_args(r, flags=False)
    r.add_argument("--backend", choices=("model", "rtl"), default="model", help="cycle model or Verilator RTL")
    r.add_argument("--report", metavar="R.json", help="total and per-layer cycles")
    r.add_argument("--dump-layers", metavar="DIR", help="write every layer's integer output as DIR/<node>.npy")
    r.set_defaults(func=cmd_run)

    mp = sub.add_parser("map", help="map a network (ONNX, SCALE-Sim CSV or zoo:NAME) and report it per layer")
    mp.add_argument("model", help="MODEL.onnx, a SCALE-Sim topology .csv, or zoo:NAME "
                                  "(mobilenet_v1, mobilenet_v2, resnet18, resnet50, bert_base, mlp)")
    _add_config_args(mp)
    mp.add_argument("--json", metavar="FILE", help="write the per-layer table as JSON")
    mp.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV")
    mp.add_argument("--png", metavar="FILE", help="write a per-layer utilization chart")
    mp.add_argument("--all", action="store_true", help="also list host steps in the table")
    mp.add_argument("--scalesim-compat", action="store_true",
                    help="report compute cycles and utilization as SCALE-Sim computes them for an ideal array")
    mp.add_argument("--scalesim-dataflow", choices=("os", "ws", "is"),
                    help="dataflow for --scalesim-compat (default: the config's; os for 'both')")
    mp.set_defaults(func=cmd_map)

    a = sub.add_parser("asm", help="assemble a text program into binary")
    a.add_argument("source")
    a.add_argument("-o", "--output", required=True)
    a.set_defaults(func=cmd_asm)

    da = sub.add_parser("disasm", help="print a binary program as text")
    da.add_argument("binary")
    da.set_defaults(func=cmd_disasm)

    from fault_injection.cli import add_fi_parser

    add_fi_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .isa import IsaError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, IsaError, UserError) as e:
        print(f"hwgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # ProgramError and friends
        if type(e).__name__.endswith("Error") and type(e).__module__.startswith(("hwgen", "sim", "mappings",
                                                                                 "fault_injection")):
            print(f"hwgen {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
