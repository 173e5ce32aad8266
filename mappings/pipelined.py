"""The exact cost of a layer on the decoupled controller: its software-pipelined program, scheduled.

On the in-order controller a program's cycles are a sum of closed forms (:mod:`sim.perf`). On the
decoupled controller (load, compute and store units with queues, ordered by a scoreboard,
:mod:`sim.schedule`) they are a max-plus recurrence over the instruction stream, which has no closed
form over the block grid; so the cost of a layer is computed the direct way: emit the instruction
stream :mod:`mappings.lowering` produces for the layer and the plan (no data is needed: the stream
depends on the plan, the A view and the tensor addresses, which depend on the sizes only), then run
:func:`sim.schedule.schedule` on it. Results are memoised per (config, shape, plan, per_channel).

Every count but the cycles (busy PEs, instructions, scratchpad and host traffic) is the in-order
program's: the double-buffered program has the same instructions at other addresses and in another
order. They come from :mod:`sim.perf` on the in-order copy of the config.

:func:`decoupled_bound` is the cheap lower bound the plan search ranks candidates by: the larger of
each unit's summed execute cycles (overlapping computes: their issue intervals) and the dispatcher's (fetch, decode and push of every instruction).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from hwgen.config import AcceleratorConfig, Controller
from hwgen.dataflow import Dataflow
from hwgen.hw_facts import WRITE_BACK_CYCLES
from hwgen.isa import QTABLE_BYTES, config, halt
from sim.perf import ConvShape, GemmShape, LayerPerf, layer_perf
from hwgen.footprint import Structure, conflict, footprint, load_span, span
from sim.schedule import (DEFAULT_QUEUE_DEPTH, Record, Schedule, Unit, periodic_cycles, record, schedule,
                          start_cycle)
from sim.tiling import GemmA, Load, LoweringError, Plan, w_host_bytes
from sim.timing import DECODE_CYCLES, compute_overhead, fetch_cycles

from .lowering import (_emit_layer, _layout, _Operands, _pipeline_regions, _pipeline_steps, _region_parts,
                       _region_positions, _relocate, _weight)

__all__ = ["layer_instructions", "layer_schedule", "layer_cycles", "decoupled_perf", "decoupled_cycles", "decoupled_bound",
           "decoupled_tight_bound", "in_order", "clear_cache"]


@lru_cache(maxsize=64)
def in_order(cfg: AcceleratorConfig) -> AcceleratorConfig:
    """``cfg`` with the in-order controller (the same memories and array; the queue depth, which the
    in-order controller does not have, at its default so that one in-order evaluation serves every
    queue depth): the config whose analytical model (:mod:`sim.perf`) and cycle model give the counts
    and results of a decoupled program. Memoised: the mapper asks for it for every plan it ranks, and
    building a config validates it."""
    if cfg.controller is Controller.IN_ORDER:
        return cfg
    return dataclasses.replace(cfg, controller=Controller.IN_ORDER, queue_depth=DEFAULT_QUEUE_DEPTH)


def _layer_gemms(shape: GemmShape | ConvShape, per_channel: bool) -> tuple[list, int, int, int, dict[str, int], int]:
    """(the layer's GEMMs as (A view, operands) pairs, M, K, N, input tensor sizes in layout order, output
    bytes), as ``lower_gemm`` / ``lower_conv2d`` lay them out."""
    M, K, N = shape.gemm
    packed = shape.packed_weights
    if isinstance(shape, ConvShape):
        G, Cout = shape.groups, shape.Cout
        gemms = [(shape.view(g), _Operands.of_group(Cout, N, g, packed)) for g in range(G)]
        inputs = {"X": shape.H * shape.W * shape.Cin, "W": w_host_bytes(K, Cout, packed)}
        out_bytes, total_n = shape.OH * shape.OW * Cout, Cout
    elif isinstance(shape, GemmShape):
        gemms = [(GemmA(M, K), _Operands.of_group(N, N, 0, packed))]
        inputs = {"A": M * K, "W": w_host_bytes(K, N, packed)}
        out_bytes, total_n = M * N, N
    else:
        raise TypeError(f"shape must be a GemmShape or a ConvShape, not {type(shape).__name__}")
    if per_channel:
        inputs["Q"] = total_n * QTABLE_BYTES
    return gemms, M, K, N, inputs, out_bytes


def _layer_stream(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool,
                  order: str, memo: bool) -> tuple[list[list], dict[str, int]]:
    """The layer's stream as regions (config first, halt last; :func:`mappings.lowering._pipeline_regions`
    on a decoupled ``cfg``, one region on an in-order one) and the tensor addresses they relocate to."""
    gemms, M, K, N, inputs, out_bytes = _layer_gemms(shape, per_channel)
    if cfg.controller is Controller.DECOUPLED:
        body = _pipeline_regions(cfg, plan, gemms, M, K, N, False, bool(per_channel), order, memo)
    else:
        body = [_emit_layer(cfg, plan, gemms, M, K, N, False, bool(per_channel), order, memo)]
    regions = [[config()], *body, [halt()]]
    addrs, out_addr, _ = _layout(cfg, sum(map(len, regions)), inputs, out_bytes)
    return regions, {**addrs, "out": out_addr}


def layer_instructions(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False,
                       order: str = "interleave", memo: bool = True, pad_value: int = 0) -> list:
    """The instructions (config, the layer, halt) that ``lower_gemm`` / ``lower_conv2d`` emit for ``shape``
    with ``plan`` on ``cfg`` (any controller), relocated exactly as they relocate them; the config
    instruction's fields (quantization parameters) are zeros, which changes no timing. ``order``: the
    decoupled lowering's step order (:data:`mappings.lowering.PIPELINE_ORDERS`); ``memo``: A fills
    computed once per equivalence class of (block, chunk) and shifted, and instructions built without
    the ISA constructors' field checks (the same instructions, faster; ``memo=False``: the lowering's way);
    ``pad_value``: a convolution's padding fill byte (the ``base`` field of fill loads; no timing)."""
    regions, addrs = _layer_stream(cfg, shape, plan, per_channel, order, memo)
    return _relocate([item for region in regions for item in region], addrs, pad_value, checked=not memo)


class _Stream:
    """A layer's double-buffered stream as the cost path sees it: its steps (items built lazily, keyed by
    what their timing depends on), the tensor addresses, and the :class:`~sim.schedule.Record` of each
    item, built once per timing key (:func:`_timing_key`; equal records share one index, so regions
    are compared by tuples of ints). Host footprints are left out of the records: a layer's loads read
    only its inputs and its stores write only its output, which lies after them (checked here for every
    step's fills), so no host range of one can conflict with the other's."""

    def __init__(self, cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool):
        gemms, M, K, N, inputs, out_bytes = _layer_gemms(shape, per_channel)
        self.cfg = cfg
        self.steps = _pipeline_steps(cfg, plan, gemms, M, K, N, False, per_channel, True)
        n_instructions = 2 + sum(st.n_loads + st.n_computes + len(st.stores) for st in self.steps)
        in_addrs, out_lo, _ = _layout(cfg, n_instructions, inputs, out_bytes)
        self.addrs, self.out_lo = {**in_addrs, "out": out_lo}, out_lo
        hi: dict[str, int] = {}
        for st in self.steps:
            for tensor, h in st.host_hi:
                if h > hi.get(tensor, -1):
                    hi[tensor] = h
        for tensor, h in hi.items():
            if self.addrs[tensor] + h > out_lo:
                raise AssertionError(f"loads of '{tensor}' read up to byte {self.addrs[tensor] + h - 1}, past the "
                                     f"output at {out_lo}")
        self._keys: dict[tuple, int] = {}        # timing key -> index of its record
        self._distinct: dict[Record, int] = {}   # equal records (other keys, same timing) share an index
        self.by_index: list[Record] = []
        self._store_keys: dict[int, tuple] = {}
        self._lists: dict[tuple, tuple[tuple[int, ...], list[int]]] = {}

    def key(self, item) -> tuple:
        """:func:`_timing_key` of a stream item at this stream's addresses."""
        return _timing_key(item, self.addrs, self.cfg.host_port_bytes, self.out_lo)

    def indices(self, items) -> tuple[int, ...]:
        """The record index of each item."""
        ids = []
        for item in items:
            key = self.key(item)
            k = self._keys.get(key)
            if k is None:
                ins = _relocate([item], self.addrs, 0, checked=False)[0]
                fp = footprint(self.cfg, ins)
                r = record(self.cfg, ins, tuple(a for a in fp if a.structure is not Structure.HOST))
                k = self._keys[key] = self._distinct.setdefault(r, len(self._distinct))
                if k == len(self.by_index):
                    self.by_index.append(r)
            ids.append(k)
        return tuple(ids)

    def records(self, items) -> list[Record]:
        """The record of each item."""
        return [self.by_index[k] for k in self.indices(items)]

    def part_list(self, kind: int, s: int | None) -> tuple[tuple[int, ...], list[int]]:
        """(record indices, :func:`mappings.lowering._weight` s) of step ``s``'s computes (``kind`` 0),
        loads (1) or stores (2), memoised by the step's key for that list: steps with equal keys have
        lists with equal records and weights (:func:`mappings.lowering._pipeline_steps`), so a list is
        built (and a compute list emitted at all) once per key."""
        if s is None:
            return (), []
        st = self.steps[s]
        key = (kind, st.compute_key if kind == 0 else st.load_key if kind == 1 else self.stores_key(s))
        hit = self._lists.get(key)
        if hit is None:
            items = st.computes if kind == 0 else st.loads if kind == 1 else st.stores
            hit = self._lists[key] = (self.indices(items), [_weight(self.cfg, x) for x in items])
        return hit

    def stores_key(self, s: int) -> tuple:
        """The timing keys of step ``s``'s stores (and quantization-table loads)."""
        k = self._store_keys.get(s)
        if k is None:
            k = self._store_keys[s] = tuple(self.key(item) for item in self.steps[s].stores)
        return k


@lru_cache(maxsize=16)
def _stream(cfg: AcceleratorConfig, shape, plan: Plan, per_channel: bool) -> _Stream:
    """:class:`_Stream`, kept for the plans in flight: the mapper bounds its finalists
    (:func:`decoupled_tight_bound`, about 8) and then costs the few whose bound does not lose
    (:func:`layer_cycles`)."""
    return _Stream(cfg, shape, plan, per_channel)


def layer_cycles(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False,
                 order: str = "interleave") -> tuple[int, dict[Unit, int]]:
    """(cycles, each unit's execute cycles) of the layer's stream on the decoupled ``cfg``: equal to
    :func:`layer_schedule`'s, computed region by region with :func:`sim.schedule.periodic_cycles`
    (repeated steps are timed once per period).

    The stream is not built whole: a region is keyed by its steps' keys (``_Step.load_key`` /
    ``compute_key``) and its stores' timing keys, and only the items of regions with a new key are
    built and recorded (:class:`_Stream`)."""
    _require_decoupled(cfg)
    stream = _stream(cfg, shape, dataclasses.replace(plan, cost=0), bool(per_channel))
    steps = stream.steps
    region_ids: dict[tuple[int, ...], int] = {}
    bodies: dict[int, tuple[Record, ...]] = {}

    def rid_of_body(body: tuple[int, ...]) -> int:
        rid = region_ids.get(body)
        if rid is None:
            rid = region_ids[body] = len(region_ids)
            bodies[rid] = tuple(stream.by_index[k] for k in body)
        return rid

    by_part: dict[tuple, int] = {}
    sequence = [rid_of_body(stream.indices([config()]))]
    for part in _region_parts(len(steps), order):
        c, ld, st = part
        pkey = (None if c is None else steps[c].compute_key, None if ld is None else steps[ld].load_key,
                None if st is None else stream.stores_key(st))
        rid = by_part.get(pkey)
        if rid is None:  # the region's records in stream order, from its three lists' memoised records
            lists = [stream.part_list(kind, s) for kind, s in enumerate(part)]
            positions = _region_positions([w for _, w in lists], order)
            rid = by_part[pkey] = rid_of_body(tuple(lists[si][0][i] for si, i in positions))
        sequence.append(rid)
    sequence.append(rid_of_body(stream.indices([halt()])))
    busy = {u: 0 for u in Unit}
    for rid in sequence:
        for r in bodies[rid]:
            if r.unit is not None:
                busy[r.unit] += r.duration
    return periodic_cycles(cfg, sequence, bodies, queue_depth=cfg.queue_depth), busy


def decoupled_tight_bound(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan,
                          per_channel: bool = False) -> int:
    """A lower bound on :func:`layer_cycles` (default order) that also counts the pipeline's fill and
    drain, which :func:`decoupled_bound` leaves out (about 1% of a layer, as much as its candidate plans
    differ by): the mapper orders and prunes its finalists by it, so fewer are costed exactly.

    The machine is causal, so the first compute's start is exact from the program's prefix (config,
    the loads of step 0, that compute). Each later compute starts at least the previous one's issue
    interval (overlapping computes) or duration after it (:mod:`sim.schedule`'s rules), which gives
    the last compute's earliest end. The store unit then runs, one after the other, the last block's
    stores from the first one that reads the last compute's accumulator rows, and halt follows the
    last end by two cycles. Every term is exact from the records; only the gaps are minima."""
    _require_decoupled(cfg)
    stream = _stream(cfg, shape, dataclasses.replace(plan, cost=0), bool(per_channel))
    steps = stream.steps
    first = stream.records([config(), *steps[0].loads, steps[0].computes[0]])
    start = start_cycle(cfg, first, queue_depth=cfg.queue_depth)
    gaps: dict[tuple, int] = {}   # a step's compute shape (rows, tiles, chunk length) -> its computes' gaps
    total = 0
    for st in steps:
        shape_key = st.compute_key[:3]
        g = gaps.get(shape_key)
        if g is None:  # a plan has one dataflow: its computes all overlap or none does
            g = gaps[shape_key] = sum(r.duration if r.interval is None else r.interval
                                      for r in stream.records(st.computes))
        total += g
    last = stream.records(steps[-1].computes[-1:])[0]
    end = start + total - (last.duration if last.interval is None else last.interval) + last.duration - 1
    tail = stream.records(steps[-1].stores)
    store_unit = [r for r in tail if r.unit is Unit.STORE]
    hit = next((i for i, r in enumerate(store_unit) if conflict(r.footprint, last.footprint)), len(store_unit))
    return end + sum(r.duration for r in store_unit[hit:]) + 2


def _timing_key(item, addrs: dict[str, int], pb: int, out_lo: int) -> tuple:
    """What the :class:`~sim.schedule.Record` of a stream item (a :class:`~sim.tiling.Load`, a store tuple
    or an instruction) depends on once host footprints are left out: for a load or a store every field
    but its host base, and the base modulo the port width (its beats, :func:`sim.timing.load_beats`,
    :func:`hwgen.hw_facts.store_beats`, depend on nothing else). Raises AssertionError if a load reads
    at or after the output or a store writes before it (the condition for leaving host ranges out)."""
    if isinstance(item, Load):
        if item.zero:
            return (0, *item[:6], item.word_stride, item.lane_stride)
        base = addrs[item.tensor] + item.offset
        lo, hi = load_span(item.target, base, item.count, item.word_stride, item.lanes, item.lane_stride)
        if hi > out_lo:
            raise AssertionError(f"{item}: host bytes {lo}..{hi - 1} cross the output at {out_lo}")
        return (0, *item[:6], item.word_stride, item.lane_stride, base % pb)
    if isinstance(item, tuple):
        _, kw, (tensor, off) = item
        base = addrs[tensor] + off
        lo, _ = span(base, ((kw["rows"], kw["row_stride"]), (kw["cols"], kw["col_stride"])))
        if lo < out_lo:
            raise AssertionError(f"store {kw}: host bytes from {lo} cross the output at {out_lo}")
        return (1, *kw.values(), base % pb)
    return (2, item.op, *item.args.values())


def layer_schedule(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False,
                   order: str = "interleave") -> tuple[list, Schedule]:
    """(instructions, :func:`sim.schedule.schedule` of them with ``cfg.queue_depth``) for a decoupled ``cfg``."""
    _require_decoupled(cfg)
    instrs = layer_instructions(cfg, shape, plan, per_channel, order)
    return instrs, schedule(cfg, instrs, queue_depth=cfg.queue_depth)


def _require_decoupled(cfg: AcceleratorConfig) -> None:
    if cfg.controller is not Controller.DECOUPLED:
        raise LoweringError(f"config '{cfg.name}' has the '{cfg.controller}' controller: its exact cost is "
                            f"sim.perf's, not the decoupled schedule's")


@lru_cache(maxsize=1 << 14)
def _decoupled(cfg: AcceleratorConfig, shape, plan: Plan, per_channel: bool) -> LayerPerf:
    base = layer_perf(in_order(cfg), shape, plan, per_channel)
    cycles, busy = layer_cycles(cfg, shape, plan, per_channel)
    return dataclasses.replace(base, cycles=cycles, load_cycles=busy[Unit.LOAD],
                               compute_cycles=busy[Unit.COMPUTE], store_cycles=busy[Unit.STORE], other_cycles=0)


def decoupled_perf(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan,
                   per_channel: bool = False) -> LayerPerf:
    """The :class:`~sim.perf.LayerPerf` of ``shape`` lowered with ``plan`` on the decoupled ``cfg``:
    ``cycles`` from the schedule of the emitted program; ``load_cycles`` / ``compute_cycles`` /
    ``store_cycles`` each unit's execute (busy) cycles, which overlap, so they do not add up to
    ``cycles`` (``other_cycles`` is 0; config runs on the store unit); every other field is the
    in-order program's (same instructions). Capacity is not checked (the cycles do not depend on the
    depths); memoised."""
    _require_decoupled(cfg)
    return _decoupled(cfg, shape, dataclasses.replace(plan, cost=0), bool(per_channel))


def decoupled_cycles(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan,
                     per_channel: bool = False) -> int:
    """The exact cycles of ``shape`` lowered with ``plan`` on the decoupled ``cfg`` (:func:`decoupled_perf`)."""
    return decoupled_perf(cfg, shape, plan, per_channel).cycles


def decoupled_bound(cfg: AcceleratorConfig, perf: LayerPerf, dataflow: Dataflow | str) -> int:
    """A lower bound on the decoupled cycles of a program whose in-order counts are ``perf``
    (:mod:`sim.perf` on :func:`in_order` of ``cfg``) and whose computes run ``dataflow``: each unit
    runs its instructions one at a time (load; compute; store with config), and the dispatcher spends
    fetch + decode + one push cycle on every instruction. With shadow weights consecutive
    weight-stationary computes overlap, but each keeps the unit at least its streamed words plus the
    write-back cycle before the next may start (``ComputeSchedule.issue_interval``)."""
    ov = fetch_cycles(cfg) + DECODE_CYCLES
    compute = perf.compute_cycles - perf.computes * ov
    if cfg.shadow_weights and Dataflow(dataflow) is Dataflow.WS:
        streamed = compute - perf.computes * compute_overhead(in_order(cfg), Dataflow.WS)
        compute = streamed + perf.computes * WRITE_BACK_CYCLES
    return max(perf.load_cycles - perf.loads * ov, compute,
               perf.store_cycles - perf.stores * ov, perf.instructions * (ov + 1))


def clear_cache() -> None:
    """Forget memoised layers."""
    _decoupled.cache_clear()
    _stream.cache_clear()
