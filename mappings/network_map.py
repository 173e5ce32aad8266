"""Map a whole network onto one configuration and report it layer by layer.

``load_model`` accepts an ONNX file, a SCALE-Sim topology CSV or ``zoo:NAME``;
``map_graph`` plans every compute layer (Conv2d, Gemm, MatMul) and costs it
with the exact analytical model (:mod:`sim.perf`, equal to the cycle model),
listing the other layers as host steps. Used by ``hwgen map`` and the demo.

By default a layer is planned and costed exactly as ``hwgen run``
(:func:`mappings.execute.run_quantized`) executes it: with per-channel
requantization, i.e. quantization-table loads (``load target=q``) and
``store qtable=1``, which the executor uses for every layer whether the model's
weights are quantized per tensor or per channel (the bias, with the input zero
point folded in, is per channel either way). ``per_channel=False`` costs the
per-tensor form (one ``config`` instruction per layer) that no network run emits.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hwgen.config import AcceleratorConfig
from hwgen.dataflow import Dataflow
from sim.energy import Energy, layer_energy
from sim.perf import ConvShape, GemmShape, LayerPerf, Roofline, can_pack, roofline

from .graph import Conv2d, Gemm, LayerGraph, MatMul
from .grouping import executed_conv
from .mapper import EXECUTED_PER_CHANNEL
from .zero_points import matmul_fills
from hwgen.errors import HwgenError

__all__ = ["ModelSpecError", "MapRow", "NetworkMap", "load_model", "map_graph", "default_planner", "chart_png", "layer_shape",
           "weights_fit_int4", "packed_shape",
           "executed_layer_shape"]


class ModelSpecError(HwgenError, ValueError):
    """A model argument that is neither an ONNX file, a SCALE-Sim CSV nor zoo:NAME."""


def load_model(spec: str, batch: int | None = None) -> LayerGraph:
    """``zoo:NAME``, ``*.onnx`` or a SCALE-Sim ``*.csv`` topology, as a validated LayerGraph.

    ``batch``: the size of an ONNX model's symbolic batch (:func:`mappings.onnx_import.import_onnx`); the
    zoo and SCALE-Sim topologies are batch 1.

    Every failure is a HwgenError naming the file (or zoo name) and, where it applies, the node, the size
    and the limit: the importers check the file (regular, within ``file_bytes``), every declared shape
    and each layer's MACs (``layer_macs``) before building anything, and every graph, zoo models included,
    passes ``LayerGraph.validate``'s limit checks, so the mapper only ever sees a graph it can cost."""
    if not spec or "\0" in spec:
        raise ModelSpecError(f"{spec!r}: not a model (an .onnx file, a SCALE-Sim .csv topology or zoo:NAME)")
    if batch not in (None, 1) and not spec.lower().endswith(".onnx"):
        raise ModelSpecError(f"{spec}: batch {batch}: only an ONNX model with a symbolic batch takes a batch size")
    if spec.startswith("zoo:"):
        from .zoo import get_model

        try:
            return get_model(spec[4:])
        except KeyError as e:
            raise ModelSpecError(str(e.args[0]) if e.args else str(e)) from None
    path = Path(spec)
    if path.suffix.lower() == ".csv":
        from .scalesim_csv import load_scalesim_csv

        return load_scalesim_csv(path)
    if path.suffix.lower() == ".onnx":
        from .onnx_import import import_onnx

        return import_onnx(path, batch=batch)
    raise ModelSpecError(f"{spec}: expected an .onnx file, a SCALE-Sim .csv topology or zoo:NAME")


@dataclass
class MapRow:
    layer: str
    kind: str
    shape: str
    where: str                 # accelerator | host
    dataflow: str | None = None
    tiles: str = ""
    gemm: tuple[int, int, int] | None = None
    macs: int = 0
    cycles: int = 0
    utilization: float = 0.0
    instructions: int = 0
    host_read_bytes: int = 0
    host_write_bytes: int = 0
    spad_bytes: int = 0
    host_fetch_bytes: int = 0
    #: the layer's roofline bound (:meth:`sim.perf.LayerPerf.roofline`): max(MACs / PEs, host bytes / port
    #: bytes per cycle) in cycles, the resource that sets it ("compute" or "host"; None for a host step),
    #: and bound / cycles (1.0: the layer runs at its bound)
    roofline_cycles: int = 0
    roofline_bound: str | None = None
    roofline_ratio: float = 0.0
    #: dynamic energy of the layer's program (:func:`sim.energy.layer_energy`), picojoules
    energy_pj: float = 0.0

    @property
    def host_bytes(self) -> int:
        """Host-port bytes: operands read, outputs written, instructions fetched."""
        return self.host_read_bytes + self.host_write_bytes + self.host_fetch_bytes

    @property
    def bound_text(self) -> str:
        """The bound for a table: cycles and the binding resource ("-" for a host step)."""
        return f"{self.roofline_cycles:,} {self.roofline_bound}" if self.roofline_bound else "-"

    @property
    def of_bound_text(self) -> str:
        """bound / cycles as a percentage ("-" for a host step)."""
        return f"{100 * self.roofline_ratio:.1f}%" if self.roofline_bound else "-"


@dataclass
class NetworkMap:
    name: str
    config: AcceleratorConfig
    rows: list[MapRow]
    #: the accelerator layers' energy by component (host steps run on the host and are not priced)
    energy: Energy = dataclasses.field(default_factory=Energy)

    @property
    def cycles(self) -> int:
        return sum(r.cycles for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def busy_utilization(self) -> float:
        busy = sum(r.utilization * r.cycles for r in self.rows)
        return busy / self.cycles if self.cycles else 0.0

    @property
    def mac_utilization(self) -> float:
        """Useful MACs over PE-cycles (the busy-PE counter also counts partial tiles' idle columns and
        the zero weights of merged groups, mappings.grouping)."""
        return self.macs / (self.cycles * self.config.pes) if self.cycles else 0.0

    @property
    def roofline(self) -> Roofline:
        """The network's roofline bound: :func:`sim.perf.roofline` of its total MACs and host bytes."""
        return roofline(self.config, self.macs, sum(r.host_read_bytes for r in self.rows),
                        sum(r.host_write_bytes for r in self.rows), sum(r.host_fetch_bytes for r in self.rows))

    @property
    def roofline_text(self) -> str:
        """The totals line's roofline clause."""
        rl = self.roofline
        return f"bound {rl.cycles:,} cycles ({rl.bound}), {100 * rl.ratio(self.cycles):.1f}% of bound"

    def to_json(self) -> str:
        rl = self.roofline
        return json.dumps({"model": self.name, "config": self.config.to_dict(), "total_cycles": self.cycles,
                           "total_macs": self.macs, "utilization": self.busy_utilization,
                           "mac_utilization": self.mac_utilization,
                           "roofline_cycles": rl.cycles, "roofline_bound": rl.bound,
                           "roofline_ratio": rl.ratio(self.cycles),
                           "energy_uj": self.energy.total_uj, "energy_pj": self.energy.to_dict(),
                           "energy_scaling": self.energy.scaling,
                           "layers": [asdict(r) for r in self.rows]}, indent=2) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        names = list(MapRow.__dataclass_fields__)
        w = csv.DictWriter(buf, fieldnames=names)
        w.writeheader()
        for r in self.rows:
            w.writerow(asdict(r))
        return buf.getvalue()


Planner = Callable[[AcceleratorConfig, "GemmShape | ConvShape", bool], tuple[object, LayerPerf]]


def default_planner(cfg: AcceleratorConfig, shape, per_channel: bool = EXECUTED_PER_CHANNEL):
    """The mapper's search (mappings.mapper.best_plan); the default is the plan the executor runs
    (:func:`mappings.mapper.executed_plan`)."""
    from .mapper import best_plan

    plan, perf, _ = best_plan(cfg, shape, per_channel=per_channel)
    return plan, perf


def layer_shape(graph: LayerGraph, node: str) -> tuple[GemmShape | ConvShape, int]:
    """The accelerator shape of a compute node and how many times it runs: once per image of a convolution's
    batch, once per batch index of a MatMul (a Gemm's batch is rows of its one GEMM)."""
    layer = graph.layer(node)
    src = graph.shapes[graph.inputs_of(node)[0]]
    if isinstance(layer, Conv2d):
        n, c, h, w = src
        return ConvShape(h, w, c, layer.kernel[0], layer.kernel[1], layer.out_channels, layer.stride, layer.pads,
                         layer.dilation, layer.groups), n
    if isinstance(layer, Gemm):
        return GemmShape(int(np.prod(src[:-1])), layer.in_features, layer.out_features), 1
    if isinstance(layer, MatMul):
        b = graph.shapes[graph.inputs_of(node)[1]]
        return GemmShape(src[-2], src[-1], b[-1]), int(np.prod(src[:-2]))
    raise ValueError(f"node '{node}' ({layer.kind}) is not a compute layer")


def weights_fit_int4(layer) -> bool:
    """Whether a Conv2d's or Gemm's integer weights all lie in [-8, 7] (a MatMul of two activations has none)."""
    w = getattr(layer, "weight", None)
    if w is None or isinstance(layer, MatMul):
        return False
    w = np.asarray(w)
    return bool(np.issubdtype(w.dtype, np.integer) and (w.size == 0 or (w.min() >= -8 and w.max() <= 7)))


def packed_shape(cfg: AcceleratorConfig, run: GemmShape | ConvShape, four_bit: bool) -> GemmShape | ConvShape:
    """``run`` with its weights packed (:class:`sim.perf.GemmShape`) when they are ``four_bit`` and ``cfg``
    can load them so (:func:`sim.perf.can_pack`): the one rule of the executor and of every cost of it."""
    return dataclasses.replace(run, packed_weights=True) if four_bit and can_pack(cfg, run) else run


def executed_layer_shape(cfg: AcceleratorConfig, graph: LayerGraph, node: str
                         ) -> tuple[GemmShape | ConvShape, GemmShape | ConvShape, int]:
    """(the layer's shape, the shape that runs for it on ``cfg``, repeats): grouped convolutions run as
    block-diagonal groups (mappings.grouping), a MatMul of two activations with its reduction extended by
    the zero-point fills (mappings.zero_points), weights in [-8, 7] packed two to a byte where ``cfg`` has
    ``packed_weights`` (:func:`packed_shape`); ``hwgen map`` and ``hwgen run`` both plan this one."""
    shape, repeat = layer_shape(graph, node)
    layer = graph.layer(node)
    if isinstance(layer, MatMul):
        return shape, GemmShape(shape.M, shape.K * (1 + len(matmul_fills(graph, node))), shape.N), repeat
    run = executed_conv(cfg, shape) if isinstance(shape, ConvShape) else shape
    return shape, packed_shape(cfg, run, cfg.packed_weights and weights_fit_int4(layer)), repeat


def _plan_all(cfg: AcceleratorConfig, shapes: list, planner: Planner, per_channel: bool, jobs: int,
              progress: Callable[[int, int, str], None] | None, names: dict) -> dict:
    """shape -> planner's (plan, perf), for the distinct ``shapes``; ``jobs`` > 1: in that many processes."""
    out: dict = {}
    if jobs <= 1 or len(shapes) <= 1:
        for i, sh in enumerate(shapes):
            if progress is not None:
                progress(i, len(shapes), names[sh])
            out[sh] = planner(cfg, sh, per_channel)
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(jobs, len(shapes))) as pool:
        futures = {pool.submit(planner, cfg, sh, per_channel): sh for sh in shapes}
        for i, fut in enumerate(as_completed(futures)):
            if progress is not None:
                progress(i, len(shapes), names[futures[fut]])
            out[futures[fut]] = fut.result()
    return out


def map_graph(graph: LayerGraph, cfg: AcceleratorConfig, planner: Planner = default_planner,
              per_channel: bool = EXECUTED_PER_CHANNEL,
              progress: Callable[[int, int, str], None] | None = None, jobs: int = 1) -> NetworkMap:
    """Plan and cost every compute layer of ``graph`` on ``cfg`` (``per_channel``: see the module docstring;
    the default gives the cycles ``hwgen run`` measures, layer by layer). Each distinct layer shape is
    planned once, in ``jobs`` processes (a decoupled configuration's exact costs take minutes on a large
    network); ``progress(done, total, node)`` is called as they are planned."""
    if not graph.shapes:
        graph.validate()
    compute = [(node, layer) for node, layer in graph if isinstance(layer, (Conv2d, Gemm, MatMul))]
    shapes = {node: executed_layer_shape(cfg, graph, node) for node, _ in compute}
    names = {}
    for node, (_, run, _) in shapes.items():
        names.setdefault(run, node)
    planned = _plan_all(cfg, list(names), planner, per_channel, jobs, progress, names)
    rows: list[MapRow] = []
    energy = Energy()
    for node, layer in graph:
        shape_s = "x".join(map(str, graph.shapes[node]))
        if node not in shapes:
            rows.append(MapRow(node, layer.kind, shape_s, "host"))
            continue
        shape, run_shape, repeat = shapes[node]
        plan, perf = planned[run_shape]
        # the useful MACs (and so the roofline's compute bound) stay the layer's own
        perf = dataclasses.replace(perf, macs=shape.macs) if isinstance(shape, ConvShape) or shape != run_shape else perf
        perf_total = perf
        for _ in range(repeat - 1):
            perf_total = perf_total + perf
        groups = getattr(shape, "groups", 1)
        merged = groups // getattr(run_shape, "groups", 1)
        tiles = (f"kc={plan.kc} mb={plan.mb} nt={plan.nt} order={plan.order}"
                 + (f" groups={groups}" if groups > 1 else "") + (f" merged x{merged}" if merged > 1 else "")
                 + (f" x{repeat}" if repeat > 1 else "")
                 + (f" K={shape.K}+{run_shape.K - shape.K} zero-point fill" if isinstance(shape, GemmShape)
                    and run_shape != shape else ""))
        spad = perf_total.a_spad_elems + perf_total.w_spad_elems + perf_total.q_spad_bytes
        rl = perf_total.roofline(cfg)
        e = layer_energy(cfg, perf_total)
        energy = energy + e
        rows.append(MapRow(node, layer.kind, shape_s, "accelerator", plan.dataflow, tiles, run_shape.gemm,
                           perf_total.macs, perf_total.cycles, perf_total.utilization, perf_total.instructions,
                           perf_total.host_read_bytes, perf_total.host_write_bytes, spad,
                           host_fetch_bytes=perf_total.host_fetch_bytes, roofline_cycles=rl.cycles,
                           roofline_bound=rl.bound, roofline_ratio=rl.ratio(perf_total.cycles),
                           energy_pj=e.total_pj))
    return NetworkMap(graph.name, cfg, rows, energy)


def chart_png(nmap: NetworkMap) -> bytes:
    """A PNG bar chart of per-layer PE utilization (accelerator layers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import io

    acc = [r for r in nmap.rows if r.where == "accelerator"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(acc) + 2), 4))
    ax.bar(range(len(acc)), [100 * r.utilization for r in acc],
           color=["tab:blue" if r.dataflow == Dataflow.OS else "tab:orange" for r in acc])
    ax.set_xticks(range(len(acc)))
    ax.set_xticklabels([r.layer for r in acc], rotation=90, fontsize=6)
    ax.set_ylabel("PE utilization (%)")
    cfg = nmap.config
    ax.set_title(f"{nmap.name} on {cfg.rows}x{cfg.cols} '{cfg.dataflow}': {nmap.cycles:,} cycles, "
                 f"{100 * nmap.busy_utilization:.1f}% utilization (blue os, orange ws)", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
