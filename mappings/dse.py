"""Design-space exploration: one network mapped onto every configuration of a sweep, resumably.

A :class:`Sweep` is a network (anything :func:`mappings.network_map.load_model` takes), a base
configuration and a few axes (configuration fields and the values each takes: :data:`AXES`). Its design
points are the product of the axes (:func:`design_points`). :func:`evaluate_point` builds a point's
configuration, prices its area with the calibrated ECP5 cost model (:func:`hwgen.cost_model.estimate`) and
runs :func:`mappings.network_map.map_graph` on it (the mapper and the exact analytical model), recording the
:data:`METRICS`; a point that is not a valid configuration, that the cost model cannot price, or on which a
layer does not fit, is a result with its status and message, not a failure. :func:`run_sweep` evaluates the
points not yet in the sweep's SQLite file (:mod:`mappings.sweep_store`), committing each as it finishes, in this
process, in worker processes or on a Dask cluster (:mod:`hwgen.workers`, the machinery of the
fault-injection campaigns); a run killed at any moment is continued by running it again.
:func:`pareto_front` keeps the non-dominated points over the objectives.

Why a table of metrics: each :class:`Objective` is a name, a unit, a getter of the value from the point's
:class:`PointContext` (its :class:`~mappings.network_map.NetworkMap` and its cost-model
:class:`~hwgen.cost_model.Estimate`, resources and Fmax, each computed once per point however many metrics
read it) and a direction, and whether the Pareto front trades it off. The database columns, the CSV and JSON outputs and the front all
follow the table, so a new objective is one more entry and nothing else. The default front trades latency
(cycles), area (LUTs) and energy per inference.

Written for scripts (``examples/dse_mlp.py``) as much as for ``hwgen dse``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from hwgen import workers
from hwgen.config import AcceleratorConfig, ConfigError, Dataflow
from hwgen.cost_model import CostModelError, Estimate, estimate
from hwgen.errors import HwgenError
from hwgen.limits import check_limit
from hwgen.sqlite_files import path_exists, quoted

from .network_map import NetworkMap, load_model, map_graph
from .sweep_store import PointResult, PointStatus, SweepStore, check_sweep_file

__all__ = ["SweepError", "Direction", "PointContext", "Objective", "METRICS", "FRONT", "AXES", "WIDTH_AXES",
           "mapping_groups", "evaluate_group_task", "Sweep", "SweepRun",
           "parse_axis", "design_points", "point_config", "sram_bytes", "evaluate_point", "run_sweep", "pareto_front",
           "PointResult", "PointStatus", "points_csv", "points_json", "front_png", "SCHEDULER_TIMEOUT"]

#: seconds to wait for a Dask scheduler (to connect, and again for it to answer; read when connecting)
SCHEDULER_TIMEOUT = workers.SCHEDULER_TIMEOUT


class SweepError(HwgenError, ValueError):
    """A sweep that cannot be started or continued (bad axes, another sweep's database, an unreachable
    scheduler); the message names the option or file and the limit."""


# ------------------------------------------------------------------ metrics and objectives
class Direction(StrEnum):
    """Whether less or more of a metric is better."""

    MIN = "min"
    MAX = "max"


@dataclass(frozen=True)
class PointContext:
    """What the metric getters of one mapped point read: its NetworkMap (``config`` included) and the cost
    model's resources of its configuration. Why a context rather than the map alone: six metrics (LUTs,
    FFs, DSPs, BRAMs, Fmax and the latency in time) come from one :func:`hwgen.cost_model.estimate`, which
    :func:`evaluate_point` makes once per point, not once per metric; the getters stay one-liners over
    values already computed."""

    nmap: NetworkMap
    resources: Estimate

    @property
    def config(self) -> AcceleratorConfig:
        return self.nmap.config


@dataclass(frozen=True)
class Objective:
    """One recorded metric of a design point.

    ``getter`` takes the point's :class:`PointContext`; ``kind`` is int or float (the database column's
    type); ``front``: whether :func:`pareto_front` trades it off by default (the others are recorded and
    reported only)."""

    name: str
    unit: str
    getter: Callable[[PointContext], int | float]
    direction: Direction
    kind: type = float
    front: bool = False

    def value(self, point: PointResult) -> float:
        """The metric of an ok point, signed so that smaller is better (for dominance)."""
        v = point.metrics[self.name]
        return v if self.direction is Direction.MIN else -v


def sram_bytes(cfg: AcceleratorConfig) -> int:
    """On-chip SRAM of a configuration, bytes (rounded up): the A scratchpad (``rows`` inputs a word), the W
    scratchpad (``cols`` weights a word) and the accumulator buffer (``cols`` accumulators a word)."""
    bits = (cfg.a_spad_depth * cfg.rows * cfg.input_width + cfg.w_spad_depth * cfg.cols * cfg.weight_width
            + cfg.acc_depth * cfg.cols * cfg.acc_width)
    return -(-bits // 8)


#: every metric a point records, in column order. The area metrics are the whole-design ECP5 resources of
#: hwgen.cost_model (calibrated on Yosys synthesis: DSPs and BRAMs exact; LUTs and FFs fitted, leave-one-out
#: within 12% and 1%), in the resource definitions of hwgen.synth; LUTs stand for area on the front. Fmax is
#: the cost model's (fitted to nextpnr's out-of-context Fmax on an LFE5U-85F, benchmarks/fit_fmax.py) and
#: latency_us the cycles at that clock: recorded, not on the default front (the cycles are; a clock the
#: model knows only to its stated error should not outrank an exact cycle count).
METRICS: tuple[Objective, ...] = (
    Objective("cycles", "cycles", lambda p: p.nmap.cycles, Direction.MIN, int, front=True),
    Objective("luts", "LUTs", lambda p: p.resources.luts, Direction.MIN, int, front=True),
    Objective("energy_uj", "uJ", lambda p: p.nmap.energy.total_uj, Direction.MIN, float, front=True),
    Objective("ffs", "FFs", lambda p: p.resources.ffs, Direction.MIN, int),
    Objective("dsps", "MULT18X18D", lambda p: p.resources.dsps, Direction.MIN, int),
    Objective("brams", "DP16KD", lambda p: p.resources.brams, Direction.MIN, int),
    Objective("pe_utilization", "fraction", lambda p: p.nmap.busy_utilization, Direction.MAX),
    Objective("mac_utilization", "fraction", lambda p: p.nmap.mac_utilization, Direction.MAX),
    Objective("roofline_ratio", "fraction", lambda p: p.nmap.roofline.ratio(p.nmap.cycles), Direction.MAX),
    Objective("sram_bytes", "bytes", lambda p: sram_bytes(p.config), Direction.MIN, int),
    Objective("pes", "PEs", lambda p: p.config.pes, Direction.MIN, int),
    Objective("fmax_mhz", "MHz", lambda p: p.resources.fmax_mhz, Direction.MAX, float),
    Objective("latency_us", "us", lambda p: p.nmap.cycles / p.resources.fmax_mhz, Direction.MIN, float),
)
#: the default Pareto objectives: latency (cycles), area (LUTs) and energy per inference
FRONT: tuple[Objective, ...] = tuple(m for m in METRICS if m.front)


def _columns() -> dict[str, type]:
    return {m.name: m.kind for m in METRICS}


# ------------------------------------------------------------------ axes
@dataclass(frozen=True)
class _Axis:
    option: str
    help: str


#: the configuration fields a sweep may vary, in the order points enumerate them (the last varies fastest)
AXES: dict[str, _Axis] = {
    "rows": _Axis("--rows", "array rows"),
    "cols": _Axis("--cols", "array columns"),
    "dataflow": _Axis("--dataflow", "os, ws or both"),
    "a_spad_depth": _Axis("--a-spad-depth", "input scratchpad words"),
    "w_spad_depth": _Axis("--w-spad-depth", "weight scratchpad words"),
    "acc_depth": _Axis("--acc-depth", "accumulator buffer rows"),
    "host_port_width": _Axis("--host-port-width", "host memory port bits"),
    "input_width": _Axis("--input-width", "input operand bits"),
    "weight_width": _Axis("--weight-width", "weight operand bits"),
}
#: the axes no plan depends on (:func:`mappings.mapper.best_plan` searches once per configuration up to
#: its widths): the points of a sweep that differ only in them are one task, so one worker maps the
#: network once for all of them and prices each (its area and energy follow its widths; its cycles do not)
WIDTH_AXES = ("input_width", "weight_width")


def _int(option: str, text: str, whole: str) -> int:
    try:
        return int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise SweepError(f"{option} {quoted(whole)}: {quoted(text.strip())} is not an integer") from None


def parse_axis(name: str, text: str) -> tuple:
    """The values of axis ``name`` from its option text: comma-separated items, each a value or (integer axes)
    a range ``lo:hi:step`` (``lo:hi``: step 1) that includes ``hi`` when it falls on the step. Duplicates are
    dropped (first kept). SweepError naming the option and the limit for an empty list or range, a step
    below 1, a value that is not an integer (or a dataflow) or below 1, and a list above the sweep_points
    limit (checked before a range is expanded)."""
    if name not in AXES:
        raise SweepError(f"unknown axis {quoted(name)}; the axes are {', '.join(AXES)}")
    option = AXES[name].option
    if not isinstance(text, str):
        raise SweepError(f"{option}: expected a text, got {quoted(text)}")
    items = [t.strip() for t in text.split(",")]
    if not text.strip() or any(not t for t in items):
        raise SweepError(f"{option} {quoted(text)}: empty value; give comma-separated values"
                         + (" (os, ws, both)" if name == "dataflow" else " or ranges lo:hi:step"))
    values: list = []
    if name == "dataflow":
        for t in items:
            if t.lower() not in tuple(Dataflow):
                raise SweepError(f"{option} {quoted(text)}: {quoted(t)} is not a dataflow; choose from "
                                 f"{', '.join(Dataflow)}")
            values.append(Dataflow(t.lower()))
    else:
        count = 0
        for t in items:
            parts = t.split(":")
            if len(parts) == 1:
                lo = hi = _int(option, t, text)
                step = 1
            elif len(parts) in (2, 3):
                lo, hi = _int(option, parts[0], text), _int(option, parts[1], text)
                step = _int(option, parts[2], text) if len(parts) == 3 else 1
                if step < 1:
                    raise SweepError(f"{option} {quoted(text)}: range {t}: the step must be at least 1, got {step}")
                if lo > hi:
                    raise SweepError(f"{option} {quoted(text)}: range {t} is empty (lo {lo} > hi {hi}); "
                                     f"ranges count up, lo:hi:step with lo <= hi")
            else:
                raise SweepError(f"{option} {quoted(text)}: {quoted(t)} is neither a value nor a range lo:hi:step")
            if lo < 1:
                raise SweepError(f"{option} {quoted(text)}: {lo} is below 1; every swept field is at least 1")
            count += (hi - lo) // step + 1
            check_limit("sweep_points", count, f"{option} {quoted(text)}: values")
            values.extend(range(lo, hi + 1, step))
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class Sweep:
    """A network, a base configuration and the axes varied over it.

    ``axes``: (field, values) pairs; fields from :data:`AXES`, each once, stored in AXES order. The base's
    other fields (controller, widths, queue depth ...) hold for every point."""

    network: str
    axes: tuple[tuple[str, tuple], ...]
    base: AcceleratorConfig = field(default_factory=AcceleratorConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.network, str) or not self.network:
            raise SweepError(f"network {quoted(self.network)}: give a model (zoo:NAME, .onnx or SCALE-Sim .csv)")
        if not isinstance(self.base, AcceleratorConfig):
            raise SweepError(f"base must be an AcceleratorConfig, not {type(self.base).__name__}")
        axes = dict(self.axes)
        if len(axes) != len(self.axes) or not axes:
            raise SweepError(f"axes {quoted(self.axes)}: give each axis once, at least one")
        for name, values in axes.items():
            if name not in AXES:
                raise SweepError(f"unknown axis {quoted(name)}; the axes are {', '.join(AXES)}")
            ok = (all(isinstance(v, Dataflow) or v in tuple(Dataflow) for v in values) if name == "dataflow"
                  else all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values))
            if not values or not ok or len(set(values)) != len(values):
                raise SweepError(f"{AXES[name].option}: values {quoted(values)}: give distinct "
                                 + ("dataflows (os, ws, both)" if name == "dataflow" else "integers of at least 1"))
        ordered = tuple((n, tuple(Dataflow(v) for v in axes[n]) if n == "dataflow" else tuple(axes[n]))
                        for n in AXES if n in axes)
        object.__setattr__(self, "axes", ordered)
        check_limit("sweep_points", self.n_points, "design points of the sweep (the product of the axes' lengths)")

    @classmethod
    def from_options(cls, network: str, base: AcceleratorConfig | None = None, **options: str | None) -> "Sweep":
        """A sweep from option texts: ``Sweep.from_options("zoo:mlp", rows="8,16", cols="8:32:8")``
        (:func:`parse_axis`; None or absent: not swept)."""
        axes = tuple((name, parse_axis(name, text)) for name, text in options.items() if text is not None)
        if not axes:
            raise SweepError(f"nothing to sweep: give at least one of {', '.join(a.option for a in AXES.values())}")
        return cls(network, axes, base if base is not None else AcceleratorConfig())

    @property
    def n_points(self) -> int:
        return math.prod(len(v) for _, v in self.axes)

    def identity(self, digest: str | None) -> dict:
        """What makes two sweeps the same (stored in the database; a re-run must match it): the network and
        its file's digest, the base configuration without the swept fields, the axes."""
        swept = {n for n, _ in self.axes}
        return {"network": self.network, "network_sha256": digest,
                "base": {k: v for k, v in self.base.to_dict().items() if k not in swept},
                "axes": {n: [str(v) if isinstance(v, Dataflow) else v for v in vals] for n, vals in self.axes}}


def design_points(sweep: Sweep) -> list[dict[str, Any]]:
    """Every point of ``sweep``: {axis: value}, the product of the axes in AXES order (index = position)."""
    names = [n for n, _ in sweep.axes]
    return [{n: (str(v) if isinstance(v, Dataflow) else v) for n, v in zip(names, combo)}
            for combo in itertools.product(*(vals for _, vals in sweep.axes))]


def point_config(base: AcceleratorConfig, params: Mapping[str, Any]) -> AcceleratorConfig:
    """The configuration of a point: ``base`` with the point's fields (ConfigError naming the field and the
    limit if it is not a valid configuration)."""
    return AcceleratorConfig.from_dict({**base.to_dict(), **params}, source="design point")


# ------------------------------------------------------------------ evaluating
def evaluate_point(graph, base: AcceleratorConfig, params: Mapping[str, Any], index: int = 0) -> PointResult:
    """Price the point's configuration with the cost model, map ``graph`` onto it and record :data:`METRICS`.
    Not a valid configuration: status ``invalid``; a configuration the cost model does not cover (a
    CostModelError, naming the memory or target and the limit) or a layer that cannot be mapped on it (any
    HwgenError of the mapper, which names the layer and the limit): ``unfit``; both with the message. The
    estimate (~0.2 ms) comes first: a point without an area is not evaluated further, and it is made once
    for all the area metrics (:class:`PointContext`)."""
    t0 = time.monotonic()
    params = dict(params)
    try:
        cfg = point_config(base, params)
    except ConfigError as e:
        return PointResult(index, params, PointStatus.INVALID, error=str(e), seconds=time.monotonic() - t0)

    def unfit(e: HwgenError) -> PointResult:
        return PointResult(index, params, PointStatus.UNFIT, error=f"{type(e).__name__}: {e}",
                           seconds=time.monotonic() - t0)

    try:
        resources = estimate(cfg)
    except CostModelError as e:  # names the memory (or target) and the limit, as the mapper's errors do
        return unfit(e)
    try:
        nmap = map_graph(graph, cfg)
    except HwgenError as e:
        return unfit(e)
    ctx = PointContext(nmap, resources)
    metrics = {m.name: m.kind(m.getter(ctx)) for m in METRICS}
    return PointResult(index, params, PointStatus.OK, metrics, seconds=time.monotonic() - t0)


def _digest(network: str) -> str | None:
    """SHA-256 of the network's file (None for zoo:NAME): a re-run on an edited file is another sweep."""
    if network.startswith("zoo:"):
        return None
    h = hashlib.sha256()
    try:
        with open(network, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise SweepError(f"{network}: cannot read ({e.strerror or e})") from None
    return h.hexdigest()


_Ctx = tuple  # (network spec, its digest, base configuration JSON)
_GRAPHS: dict = {}
_GRAPHS_LOCK = threading.Lock()


def _graph(ctx: _Ctx):
    """This process's graph of the sweep's network, loaded once and checked against the sweep's digest."""
    network, digest, _ = ctx
    with _GRAPHS_LOCK:
        if (network, digest) not in _GRAPHS:
            got = _digest(network)
            if got != digest:
                raise SweepError(f"{network}: the file changed since the sweep began (SHA-256 {got}, the sweep's "
                                 f"{digest})")
            _GRAPHS[(network, digest)] = load_model(network)
        return _GRAPHS[(network, digest)]


def evaluate_group_task(ctx: _Ctx, group: tuple[tuple[int, dict], ...]) -> list[PointResult]:
    """The points of one :func:`mapping_groups` group, in order, in one worker: the first maps the network,
    the others find every layer's plan in the mapper's memo."""
    graph, base = _graph(ctx), AcceleratorConfig.from_json(ctx[2], source="sweep")
    return [evaluate_point(graph, base, params, index) for index, params in group]


def mapping_groups(todo: Sequence[tuple[int, dict]]) -> list[tuple[tuple[int, dict], ...]]:
    """``todo`` (index, params) cut into groups of points equal but for :data:`WIDTH_AXES`, each group in
    index order, the groups in the order of their first point."""
    groups: dict[tuple, list] = {}
    for index, params in todo:
        key = tuple(sorted((k, str(v)) for k, v in params.items() if k not in WIDTH_AXES))
        groups.setdefault(key, []).append((index, params))
    return [tuple(g) for g in groups.values()]


# ------------------------------------------------------------------ running
@dataclass
class SweepRun:
    """What :func:`run_sweep` gives: every recorded point (index order), how many were evaluated now."""

    path: Path
    sweep: Sweep
    points: list[PointResult]
    evaluated_now: int
    elapsed: float

    @property
    def complete(self) -> bool:
        return len(self.points) == self.sweep.n_points

    def counts(self) -> dict[str, int]:
        return {s.value: sum(p.status is s for p in self.points) for s in PointStatus}


def _same_metrics(p: Path, store: SweepStore) -> None:
    """Refuse a sweep database without a column per :data:`METRICS` entry: one written before a metric was
    added (the area metrics, say) cannot be continued, since its ok points lack the new metrics and a
    front over them would be wrong; re-evaluating into another file is the remedy, so the message says so."""
    present = {row[1] for row in store.query("PRAGMA table_info(points)")}
    missing = [m.name for m in METRICS if m.name not in present]
    if missing:
        raise SweepError(f"{p}: a sweep database of an older hwgen: it lacks the metric columns "
                         f"{', '.join(missing)}; this hwgen records {', '.join(m.name for m in METRICS)}. "
                         f"Choose another --db to run the sweep again (the file is left as it is)")


def _same_sweep(p: Path, stored: dict, n_stored: int, mine: dict, n_points: int) -> None:
    diffs = [k for k in sorted(set(stored) | set(mine)) if stored.get(k) != mine.get(k)]
    if "axes" in diffs:
        a, b = stored.get("axes") or {}, mine["axes"]
        diffs[diffs.index("axes")] = "axes (" + ", ".join(
            n for n in AXES if (a.get(n) if isinstance(a, dict) else None) != b.get(n)) + ")"
    if not diffs and n_stored != n_points:
        diffs.append(f"number of points ({n_stored} there, {n_points} asked)")
    if diffs:
        raise SweepError(f"{p}: holds a different sweep (differs in {', '.join(diffs)}); choose another --db")


def run_sweep(sweep: Sweep, db_path: str | os.PathLike[str], *, jobs: int = 1, scheduler: str | None = None,
              progress: bool = False, on_point: Callable[[PointResult], None] | None = None) -> SweepRun:
    """Evaluate the points of ``sweep`` not yet in ``db_path`` and return every recorded point.

    A new path becomes the sweep's database; a database of the same sweep is continued (only the points not
    there are evaluated); anything else at the path (another file, another sweep's database: a different
    network, file contents, base or axes) is refused with a SweepError or SweepStoreError naming it, and left
    untouched. Each point is committed in its own transaction as it finishes (then ``on_point(result)`` is
    called in this process), so a run killed at any moment loses only the points in flight.
    ``jobs`` > 1: that many worker processes; ``scheduler``: a Dask scheduler address instead. Every
    argument, the network and the database are checked before a scheduler is contacted or anything is written."""
    if not isinstance(sweep, Sweep):
        raise SweepError(f"sweep must be a Sweep, not {type(sweep).__name__}")
    workers.check_jobs(jobs, SweepError)
    if scheduler is not None:
        workers.check_scheduler_address(scheduler, SweepError)
    p = Path(db_path)
    digest = _digest(sweep.network)
    graph = load_model(sweep.network)
    identity = sweep.identity(digest)
    points = design_points(sweep)
    exists = path_exists(p, SweepError)
    if exists:
        check_sweep_file(p)  # a foreign file is refused untouched, before SQLite opens it
        with SweepStore.open(p, {}, readonly=True) as st:  # the fixed columns only: then say what is missing
            _same_metrics(p, st)
            _same_sweep(p, st.identity, st.n_points, identity, sweep.n_points)
    client = workers.connect_scheduler(scheduler, SCHEDULER_TIMEOUT, SweepError) if scheduler else None
    try:
        store = SweepStore.open(p, _columns()) if exists else SweepStore.create(p, identity, sweep.n_points, _columns())
        with store:
            store.lock()
            _check_rows(store, points)
            done = store.done()
            todo = [(i, pt) for i, pt in enumerate(points) if i not in done]
            ctx = (sweep.network, digest, sweep.base.to_json())
            if client is None and jobs == 1:
                with _GRAPHS_LOCK:
                    _GRAPHS[(sweep.network, digest)] = graph
            evaluated = _execute(store, ctx, todo, len(done), sweep.n_points, jobs, client, progress, on_point)
            return SweepRun(p, sweep, _check_rows(store, points), evaluated[0], evaluated[1])
    finally:
        if client is not None:
            client.close()


def _check_rows(store: SweepStore, points: list[dict]) -> list[PointResult]:
    """The recorded points, each row's parameters equal to the sweep's point of that index."""
    rows = store.results()
    for r in rows:
        if r.params != points[r.index]:
            raise SweepError(f"{store.path}: point {r.index} is recorded with {quoted(r.params)}; the sweep's point "
                             f"{r.index} is {quoted(points[r.index])}")
    return rows


def _execute(store: SweepStore, ctx: _Ctx, todo: list, done0: int, total: int, jobs: int, client, progress: bool,
             on_point) -> tuple[int, float]:
    t0 = time.monotonic()
    evaluated = 0
    bar, task = workers.progress_bar(progress, total, done0, f"{store.path.name} ({ctx[0]})")

    def commit(r: PointResult) -> None:
        nonlocal evaluated
        store.add(r)
        evaluated += 1
        el = time.monotonic() - t0
        bar.update(task, advance=1, rate=f"{evaluated / el:,.2f} points/s" if el > 0 else "")
        if on_point is not None:
            on_point(r)

    def failed(item, e: BaseException) -> SweepError:
        why = str(e) if isinstance(e, HwgenError) else " ".join(f"{type(e).__name__}: {e}".split())
        return SweepError(f"{store.path}: evaluating point {item[0]} ({quoted(item[1])}) failed ({why}); "
                          f"{done0 + evaluated} of {total} points are recorded, running the sweep again continues")

    def commit_group(results: list[PointResult]) -> None:
        for r in results:
            commit(r)

    def failed_group(group, e: BaseException) -> SweepError:
        return failed(group[0], e)

    with bar:  # a group's points commit together when it finishes: a kill loses at most the groups in flight
        workers.run_tasks(evaluate_group_task, ctx, mapping_groups(todo), commit_group, failed_group, jobs=jobs,
                          client=client)
    return evaluated, time.monotonic() - t0


# ------------------------------------------------------------------ the front
def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(points: Iterable[PointResult], objectives: Sequence[Objective] = FRONT) -> list[PointResult]:
    """The ok points no other ok point dominates (no worse in every objective, better in one), ordered by the
    objectives. Points with equal objective values are all kept. In lexicographic order a point can only be
    dominated by one before it, and never by one it precedes, so each point is compared with the front so far."""
    if not objectives:
        raise SweepError("pareto_front: give at least one objective")
    ok = sorted((p for p in points if p.ok), key=lambda p: ([o.value(p) for o in objectives], p.index))
    front: list[tuple[list[float], PointResult]] = []
    for p in ok:
        v = [o.value(p) for o in objectives]
        if not any(_dominates(f, v) for f, _ in front):
            front.append((v, p))
    return [p for _, p in front]


# ------------------------------------------------------------------ outputs
def _row(sweep: Sweep, p: PointResult) -> dict[str, Any]:
    base = sweep.base.to_dict()
    return {"point": p.index, "status": p.status.value, **{n: p.params.get(n, base[n]) for n in AXES},
            **{m.name: p.metrics.get(m.name, "") for m in METRICS}, "seconds": round(p.seconds, 3), "error": p.error}


def points_csv(sweep: Sweep, points: Iterable[PointResult]) -> str:
    """A CSV of points: index, status, every axis field (the base's value where not swept), the metrics
    (empty unless ok), seconds, error."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["point", "status", *AXES, *(m.name for m in METRICS), "seconds", "error"])
    w.writeheader()
    for p in points:
        w.writerow(_row(sweep, p))
    return buf.getvalue()


def points_json(sweep: Sweep, points: Sequence[PointResult], front: Sequence[PointResult]) -> str:
    """The sweep (network, base, axes), the metrics' units and directions, every point, the front's indices."""
    return json.dumps({"network": sweep.network, "base": sweep.base.to_dict(),
                       "axes": sweep.identity(None)["axes"],
                       "metrics": [{"name": m.name, "unit": m.unit, "direction": m.direction.value, "front": m.front}
                                   for m in METRICS],
                       "points": [_row(sweep, p) for p in points], "pareto": [p.index for p in front]},
                      indent=2) + "\n"


def _label(o: Objective) -> str:
    return o.name if o.unit.lower() == o.name.lower() else f"{o.name} ({o.unit})"


def front_png(sweep: Sweep, points: Sequence[PointResult], front: Sequence[PointResult]) -> bytes:
    """Two panels. Left: every ok point in the first two front objectives (cycles against LUTs), coloured by
    the third (energy; by PEs if the front has two), the front ringed; a front over three objectives projects
    onto no curve, so the line joins only its points that trade off the two plotted ones (the cycles-area
    staircase). Right: PE and MAC utilization against the array size (PEs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {m.name: m for m in METRICS}
    x, y = FRONT[0], FRONT[1] if len(FRONT) > 1 else by_name["pes"]
    colour = FRONT[2] if len(FRONT) > 2 else by_name["pes"]
    ok = [p for p in points if p.ok]
    fig, (ax, au) = plt.subplots(1, 2, figsize=(11, 4.5))
    if ok:
        sc = ax.scatter([p.metrics[x.name] for p in ok], [p.metrics[y.name] for p in ok],
                        c=[p.metrics[colour.name] for p in ok], cmap="viridis", s=22)
        fig.colorbar(sc, ax=ax, label=_label(colour))
        fr = [p for p in front if p.ok]
        ax.scatter([p.metrics[x.name] for p in fr], [p.metrics[y.name] for p in fr], facecolors="none",
                   edgecolors="tab:red", s=70, label=f"Pareto front over {', '.join(o.name for o in FRONT)} "
                                                   f"({len(fr)})")
        two = sorted(pareto_front(fr, (x, y)), key=lambda p: x.value(p))
        ax.step([p.metrics[x.name] for p in two], [p.metrics[y.name] for p in two], "-", where="post",
                color="tab:red", lw=1, zorder=0, label=f"{x.name}-{y.name} trade-off ({len(two)})")
        ax.legend(fontsize=8)
        pes = [p.metrics["pes"] for p in ok]
        au.scatter(pes, [100 * p.metrics["pe_utilization"] for p in ok], s=18, label="PE (busy) utilization")
        au.scatter(pes, [100 * p.metrics["mac_utilization"] for p in ok], s=18, marker="x", label="MAC utilization")
        au.set_xscale("log", base=2)
        au.legend(fontsize=8)
    ax.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4))  # six-digit cycle counts would overlap
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y) + (" (ECP5 cost model)" if y.name == "luts" else ""))
    ax.set_title(f"{sweep.network}: {len(ok)} of {len(points)} points ok", fontsize=9)
    au.set_xlabel("array size (PEs)")
    au.set_ylabel("utilization (%)")
    au.set_title("utilization against array size", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
