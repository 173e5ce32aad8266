"""A calibrated ECP5 resource model: LUTs, flip-flops, DSP and block RAM of a configuration, in microseconds.

Why
---
:func:`hwgen.synth.synthesize` answers exactly but a design's "rest" takes 1.5-3 CPU-minutes of yosys, too
slow inside a design-space search. This module answers from the configuration alone (pure Python, no
tool and no Amaranth at run time), in the resource definitions of :mod:`hwgen.synth` (its
:class:`~hwgen.synth.Resources`, ECP5 cells of Yosys 0.70), for the figure the issue's done-when names:
the **whole-design** synthesis (``hwgen synth --whole``).

How it is built
---------------
**DSP and block RAM: by construction** from the design's multipliers and memories and the mapping rules
below, each measured on small probe designs (benchmarks/fit_cost_model.py ``--probes``) and checked on
every synthesised configuration of the fitting and validation sets (exact on all of them).

* Multipliers (:func:`multipliers`): every PE's ``input_width x weight_width`` product; the store
  unit's requantizer, ``L = min(port bytes, cols)`` lanes (:func:`hwgen.hw_facts.store_lanes`) of an
  ``acc_width x 32`` product; and the instruction-decode products (:func:`decode_dsps`): those of
  operand fields, whose widths the ISA and the port fix (footprint spans ``(n - 1) * stride``, the
  store's beat count), measured counts per port width and for the decoupled dispatcher
  (:data:`STORE_DECODE_DSPS`, :data:`DISPATCHER_DSPS`), and the
  products by the constant ``cols``, DSPs unless it is a power of two (:func:`column_products`).
* **Multiplier rule** (yosys ``mul2dsp`` with 18 x 18 tiles, minimum width 2): each operand is cut into
  18-bit slices from the bottom, and every pair of slices of at least 2 bits is one MULT18X18D; a
  1-bit top slice is LUT logic (:func:`mult18_count`: 32 x 32 takes 4, 32 x 19 takes 2, 18 x 18 one).
  yosys infers no ALU54B.
* Memories (:func:`memories`): ``a_spad`` (``rows`` lanes of ``input_width`` bits, one write enable per
  lane), ``w_spad`` (``cols`` lanes of ``weight_width``), ``acc_buf`` (``cols * acc_width`` bits, one
  write enable), each with one write port and one synchronous read port, ``acc_buf`` two with the
  decoupled controller (compute and store read at once). The quantization table and the queues are
  registers, not memories.
* **Block RAM rule** (yosys ``memory_libmap`` with brams_16kd.txt): a memory with more read ports than
  one is duplicated, one copy per read port (a DP16KD's two ports cannot serve one write and two read
  addresses). A copy takes the cheapest DP16KD shape: ``ceil(depth / D) * ceil(lanes / (W / 9))`` blocks
  in the 9/18/36-bit modes (``W`` bits at depth ``D``: 36 x 512, 18 x 1K, 9 x 2K; a hardware byte is
  9 bits with one write enable, so a lane of up to 9 bits takes a whole byte and two lanes never share
  one), ``ceil(depth / D) * lanes * ceil(lane_bits / W)`` in the 1/2/4-bit modes (4 x 4K, 2 x 8K,
  1 x 16K); a memory without byte enables is one lane of its width (:func:`dp16kd_blocks`).
  memory_libmap weighs a DP16KD at cost 128 against distributed RAM (TRELLIS_DPR16X4, 16 x 4 bits, cost
  4; its synchronous read adds an output register) and flip-flops (cost 1 a bit), so a shallow memory
  goes to distributed RAM (probes: 36 bits x 16 words, 32 x 32 with byte enables): the model does not
  cover that, and :func:`memory_blocks` raises :class:`CostModelError` for a memory whose distributed-RAM
  cost is below its block-RAM cost (a tie went to block RAM: 32 bits x 64 words). Every depth from 128
  words on is block RAM at the design's widths.

**LUTs and flip-flops: fitted** by least squares (benchmarks/fit_cost_model.py) to composed
syntheses (:func:`hwgen.synth.synthesize`: PE classes plus the rest), so each part has its own model:

* a PE (:func:`pe_features`): what logic its class has, by width: the accumulator adder, the
  accumulate-or-pass mux, the product gate, the weight muxes (both dataflows; shadow weights). Its
  flip-flops are counted exactly (:func:`pe_ffs`): ``a_reg``, ``b_reg``, ``acc`` (and ``w_shadow``,
  ``a_tag`` with shadow weights), less the registers whose outputs nothing reads (the last column's
  ``a_reg`` and ``a_tag``, the last row's ``b_reg`` when output-stationary only) and, weight-stationary
  only, the first row's ``acc`` bits above the product's width (``0 + product`` sign-extended: yosys
  merges the copies of the sign bit);
* the rest (:func:`rest_features`, :data:`FEATURES` says which each quantity uses): the register bits
  outside the array (:data:`hwgen.hw_facts.REGISTERS`: queues, sequencers, pipelines), the array's skew
  and de-skew chains, the requantizer lanes and their C-way column selects, the accumulator row, the
  port's byte rotation. Fit (14 rests, 26 PE classes): residuals within 7% on LUTs and 0.4% on FFs,
  leave-one-out within 12% and 1%; the PE coefficients are all close to 1 (each feature is a count of
  LUTs).

The whole design keeps one flip-flop per delay of the merged ``a_tag`` chain (docs/ARCHITECTURE.md,
"Synthesis"): ``R*C - (R + C - 1)`` fewer with shadow weights, subtracted exactly; its LUTs are modelled
as the composed ones (measured -0.2% to +1.6% apart). The coefficients are in ONE table,
:data:`COEFFICIENTS`; the fit, its residuals and the held-out validation are in
benchmarks/fit_cost_model.py and docs/ARCHITECTURE.md "Synthesis".

Fmax
----
:func:`fmax_mhz` (and :func:`estimate`'s ``fmax_mhz``) models **nextpnr's achieved frequency of clk, out
of context, on an LFE5U-85F** (CABGA381, target 50 MHz, seed 1; :mod:`hwgen.pnr`): not a timing
sign-off, and not the in-context Fmax of a board design. The critical path is control, not the array:
with the decoupled controller the store unit's end count (the dispatcher's store state through the
closed-form beat count, :func:`hwgen.hw_facts.store_beats`, into ``exec_last``) or, with an 8- or 16-bit
port, the dispatcher's decode into a load-queue slot (within 4% of it); with the in-order controller the
compute unit's end count (the command payload into its ``exec_last``). Each passes one or two MULT18X18D
(the decode products) and is about 40% logic, 60% routing. The array's size, its dataflow, the operand
widths and the memory depths do not set it (2x2 and 8x8 within 1%), and the model is that path's delay
(:data:`FMAX_FEATURES`, coefficients :data:`FMAX_COEFFICIENTS` in ns)::

    critical_path_ns = const + decoupled * [controller is decoupled] + port_bytes * (host port bytes)
    fmax_mhz         = 1000 / critical_path_ns

``decoupled`` is the dispatcher's scoreboard and queue state in front of the end count. ``port_bytes``
covers the beat count, a sum with one term per port byte whose decode products grow with the port; the
in-order design's path slows by the same ns per byte, in its routing. Fitted by least squares
(benchmarks/fit_fmax.py; the measurements are in benchmarks/fmax_runs.json) on the table's ``fit`` runs:
2x2 and 4x4 arrays, both controllers, host ports of 8 to 128 bits, each dataflow, narrow widths, queue
depth 1 and a second placer seed (13 runs, 19.6-33.6 MHz). Fmax error: at most 8.2% on the fit runs
(the placer's own scatter, 4x4 at seed 1 against 2, is 1.4%) and 9.0% leave-one-out; on the 9 held-out
configurations (2x2 to 8x8, deeper memories, queue depth 2, other port/dataflow/controller pairs) at most
8.3% on 8, and one miss: a decoupled 3x5 with an 8-bit port and queue depth 1 runs at 36.9 MHz where the
model says 27.4 (-26%, on the safe side). There no control path is critical but the requantizer's data
path (27.1-27.6 ns in the three held-out runs where it is), and the model, which has no term for the
depth-1 queue's shorter decode, does not see it (benchmarks/fit_fmax.py ``KNOWN_MISSES``).

Only ECP5 is modelled; other targets raise :class:`CostModelError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import AcceleratorConfig, Controller
from .errors import HwgenError
from .hw_facts import REGISTERS, byte_bits, store_lanes
from .synth import TARGETS, Resources

__all__ = ["MODELLED_TARGETS", "CostModelError", "MemorySpec", "Multiplier", "memories", "dp16kd_blocks",
           "memory_blocks", "mult18_count", "multipliers", "STORE_DECODE_DSPS", "DISPATCHER_DSPS", "column_products",
           "decode_dsps",
           "PeClass", "pe_classes", "pe_ffs", "pe_features", "rest_features", "FEATURES", "COEFFICIENTS",
           "estimate", "estimate_parts", "tag_merge_ffs", "Estimate", "FMAX_FEATURES", "FMAX_COEFFICIENTS",
           "FMAX_RESIDUAL", "fmax_features", "critical_path_ns", "fmax_mhz"]

#: The targets this model covers (of :data:`hwgen.synth.TARGETS`).
MODELLED_TARGETS = ("ecp5",)

#: DP16KD shapes (data bits, depth) in the modes with 9-bit bytes and in the narrow modes without them.
_BYTE_MODES = ((36, 512), (18, 1024), (9, 2048))
_NARROW_MODES = ((4, 4096), (2, 8192), (1, 16384))
_BYTE_BITS = 9
#: memory_libmap's costs (brams_16kd.txt, lutrams.txt): a DP16KD block, a 16 x 4 TRELLIS_DPR16X4
_BRAM_COST, _LUTRAM_COST, _LUTRAM_DEPTH, _LUTRAM_WIDTH = 128, 4, 16, 4
#: MULT18X18D operand width and yosys mul2dsp's smallest operand it maps to a DSP.
_DSP_WIDTH, _DSP_MIN_WIDTH = 18, 2
#: Decode multipliers of the store unit by host-port bytes: the beat count's products (``rows * cols``,
#: and for a multi-byte port :func:`hwgen.hw_facts.store_beats`'s, whose widths the port's byte-offset bits
#: set). Measured: every fitting configuration's DSPs less its PE, requantizer, column-constant and
#: dispatcher products (each port width seen with both controllers agrees where both were synthesised).
STORE_DECODE_DSPS: dict[int, int] = {1: 1, 2: 2, 4: 3, 8: 6, 16: 14}
#: The decoupled dispatcher's footprint spans ``(n - 1) * stride`` (a 32-bit stride by a 16-bit count is
#: 2 MULT18X18D): two terms each for the load and the store footprint. Measured: decoupled minus in-order
#: at 32- and 64-bit ports (14 - 6, 11 - 3).
DISPATCHER_DSPS = 8


class CostModelError(HwgenError, ValueError):
    """A target or configuration the model does not cover; the message says what is covered."""


def _check_target(target: str) -> None:
    if target not in MODELLED_TARGETS:
        known = f"one of {', '.join(TARGETS)}" if target in TARGETS else "not a synthesis target at all"
        raise CostModelError(f"the cost model covers only {', '.join(MODELLED_TARGETS)} (Yosys 0.70 cells); "
                             f"target '{target}' is {known} but not modelled: run `hwgen synth --target {target}`")


# ------------------------------------------------------------------ memories and multipliers
@dataclass(frozen=True)
class MemorySpec:
    """One memory of the design: ``lanes`` write-enable lanes of ``lane_bits`` each (a memory written
    whole is one lane of its width), ``depth`` words, ``read_ports`` synchronous read ports."""

    name: str
    lanes: int
    lane_bits: int
    depth: int
    read_ports: int

    @property
    def width(self) -> int:
        return self.lanes * self.lane_bits


def memories(cfg: AcceleratorConfig) -> tuple[MemorySpec, ...]:
    """The design's memories (hwgen/top.py: the scratchpads and the accumulator buffer)."""
    acc_reads = 2 if cfg.controller is Controller.DECOUPLED else 1
    return (MemorySpec("a_spad", cfg.rows, cfg.input_width, cfg.a_spad_depth, 1),
            MemorySpec("w_spad", cfg.cols, cfg.weight_width, cfg.w_spad_depth, 1),
            MemorySpec("acc_buf", 1, cfg.cols * cfg.acc_width, cfg.acc_depth, acc_reads))


def dp16kd_blocks(lanes: int, lane_bits: int, depth: int) -> int:
    """DP16KD blocks of one single-read-port copy of a memory (the module docstring's rule)."""
    if min(lanes, lane_bits, depth) < 1:
        raise CostModelError(f"a memory needs at least one lane, bit and word (got {lanes} x {lane_bits} bits, "
                             f"depth {depth})")
    best = math.inf
    for w, d in _BYTE_MODES:
        per_block = w // _BYTE_BITS
        across = math.ceil(lanes / per_block) if lane_bits <= _BYTE_BITS else \
            math.ceil(lanes * lane_bits / w)  # wider lanes: whole bytes each, so plain width
        best = min(best, math.ceil(depth / d) * across)
    for w, d in _NARROW_MODES:
        best = min(best, math.ceil(depth / d) * lanes * math.ceil(lane_bits / w))
    return int(best)


def memory_blocks(mem: MemorySpec) -> int:
    """DP16KD blocks of ``mem``: one copy per read port (module docstring). Raises :class:`CostModelError`
    for a memory that memory_libmap's costs would put in distributed RAM, which the model does not cover."""
    blocks = dp16kd_blocks(mem.lanes, mem.lane_bits, mem.depth)
    lutram = _LUTRAM_COST * math.ceil(mem.depth / _LUTRAM_DEPTH) * math.ceil(mem.width / _LUTRAM_WIDTH)
    if lutram < _BRAM_COST * blocks:  # a tie went to block RAM (probe 32 bits x 64 words)
        raise CostModelError(f"memory {mem.name} ({mem.depth} words of {mem.width} bits) is shallow enough for "
                             f"distributed RAM (memory_libmap cost {lutram} vs {_BRAM_COST * blocks} in DP16KD), "
                             f"which the cost model does not cover: make it deeper or run `hwgen synth`")
    return mem.read_ports * blocks


@dataclass(frozen=True)
class Multiplier:
    """``count`` instances of an ``a x b`` product."""

    name: str
    a: int
    b: int
    count: int


def mult18_count(a: int, b: int) -> int:
    """MULT18X18D of one ``a x b`` product (0 when an operand is too narrow for mul2dsp: LUT logic)."""
    def tiles(w: int) -> int:  # 18-bit slices from the bottom; a last slice under 2 bits stays LUT logic
        return w // _DSP_WIDTH + (1 if w % _DSP_WIDTH >= _DSP_MIN_WIDTH else 0)

    return tiles(a) * tiles(b)


def column_products(cfg: AcceleratorConfig) -> int:
    """The compute unit's decode products by the constant ``cols`` (busy-PE increments ``rows * C``,
    ``depth * C``, and with shadow weights the stream's ``depth * C``): yosys turns a power of two into a
    shift and maps any other constant to a MULT18X18D; the os and ws increments sit in exclusive branches
    and ``share`` merges them into one."""
    C = cfg.cols
    if C & (C - 1) == 0:
        return 0
    return 1 + (1 if cfg.shadow_weights else 0)


def decode_dsps(cfg: AcceleratorConfig) -> int:
    """DSPs of the instruction-decode products: :data:`STORE_DECODE_DSPS`, :data:`DISPATCHER_DSPS`
    (decoupled) and :func:`column_products`."""
    decoupled = DISPATCHER_DSPS if cfg.controller is Controller.DECOUPLED else 0
    return STORE_DECODE_DSPS[cfg.host_port_bytes] + decoupled + column_products(cfg)


def multipliers(cfg: AcceleratorConfig) -> tuple[Multiplier, ...]:
    """The design's data-path products (module docstring); the decode products are :func:`decode_dsps`."""
    return (Multiplier("pe", cfg.input_width, cfg.weight_width, cfg.pes),
            Multiplier("requantizer", cfg.acc_width, 32, store_lanes(cfg)))


# ------------------------------------------------------------------ PEs
@dataclass(frozen=True)
class PeClass:
    """PEs of one position class: first row or not, last row or not, last column or not."""

    first_row: bool
    last_row: bool
    last_col: bool
    count: int


def pe_classes(cfg: AcceleratorConfig) -> tuple[PeClass, ...]:
    """The array's PEs by the edges they touch (what Amaranth prunes differs per edge: hwgen.synth)."""
    R, C = cfg.rows, cfg.cols
    out = []
    for first, last, nrows in ((True, R == 1, 1), (False, False, max(0, R - 2)), (False, True, 1 if R > 1 else 0)):
        for last_col, ncols in ((False, C - 1), (True, 1)):
            if nrows * ncols:
                out.append(PeClass(first, last, last_col, nrows * ncols))
    return tuple(out)


def pe_ffs(cfg: AcceleratorConfig, pe: PeClass) -> int:
    """Flip-flops of one PE of class ``pe``, exactly (module docstring)."""
    iw, ww, accw, shadow = cfg.input_width, cfg.weight_width, cfg.acc_width, cfg.shadow_weights
    a_reg = 0 if pe.last_col else iw
    b_reg = 0 if (pe.last_row and not cfg.supports_ws) else ww
    # ws-only first row: acc is a sign-extended product, its copies of the sign bit merge into one
    acc = min(accw, iw + ww) if (pe.first_row and not cfg.supports_os) else accw
    extra = (ww + (0 if pe.last_col else 1)) if shadow else 0
    return a_reg + b_reg + acc + extra


def pe_features(cfg: AcceleratorConfig, pe: PeClass) -> dict[str, float]:
    """The LUT features of one PE of class ``pe`` (bits of each kind of logic it has)."""
    iw, ww, accw = cfg.input_width, cfg.weight_width, cfg.acc_width
    both = cfg.supports_os and cfg.supports_ws
    # ws-only first row: acc <= 0 + product, no adder, and the product's enable becomes the flip-flops' reset
    adds = cfg.supports_os or not pe.first_row
    return {
        "const": 1.0,
        "adder": accw if adds else 0.0,
        "gate": iw + ww if adds else 0.0,
        "acc_mux": accw if cfg.supports_os else 0.0,
        "b_mux": ww if both else 0.0,
        "shadow": 2 * ww + 1 if cfg.shadow_weights else 0.0,
    }


# ------------------------------------------------------------------ the rest
def _register_bits(cfg: AcceleratorConfig) -> int:
    return sum(r.width(cfg) * len(r.names(cfg)) for r in REGISTERS)


def _chain_bits(cfg: AcceleratorConfig) -> int:
    """The array's skew (A rows; B columns when output-stationary; tags with shadow weights) and de-skew
    (weight-stationary) registers (hwgen/array.py)."""
    R, C = cfg.rows, cfg.cols
    tri_r, tri_c = R * (R - 1) // 2, C * (C - 1) // 2
    return (tri_r * cfg.input_width + (tri_r if cfg.shadow_weights else 0)
            + (tri_c * cfg.weight_width if cfg.supports_os else 0)
            + (tri_c * cfg.acc_width if cfg.supports_ws else 0))


def rest_features(cfg: AcceleratorConfig) -> dict[str, float]:
    """The LUT and flip-flop features of everything but the PEs (module docstring): register bits outside
    the array (queues, sequencers, pipelines: each has its enable and input muxes), the array's chains,
    per requantizer lane its data path (``acc_width + 32`` bits wide) and its C-way selects of the
    accumulator and the quantization-table entry, the accumulator row (write-back), the port's byte
    rotation (load) and byte shift (store)."""
    L, C, accw = store_lanes(cfg), cfg.cols, cfg.acc_width
    return {
        "const": 1.0,
        "register_bits": float(_register_bits(cfg)),
        "chain_bits": float(_chain_bits(cfg)),
        "lanes": float(L * (accw + 32)),
        "lane_selects": float(L * (C - 1) * (accw + 70)),
        "acc_row": float(C * accw),
        "rotate": float(cfg.host_port_width * byte_bits(cfg.host_port_bytes)),
    }


#: Which features each fitted quantity uses (the fit script fits these, in this order).
FEATURES = {
    "pe_luts": ("const", "adder", "gate", "acc_mux", "b_mux", "shadow"),
    "rest_luts": ("const", "register_bits", "lanes", "lane_selects", "rotate"),
    "rest_ffs": ("const", "register_bits", "chain_bits", "lanes", "lane_selects", "acc_row"),
}

#: The fitted coefficients (benchmarks/fit_cost_model.py prints this table; paste it here).
COEFFICIENTS: dict[str, dict[str, float]] = {
    "pe_luts": {"const": 1.6448, "adder": 1.0158, "gate": 0.9114, "acc_mux": 1.0061, "b_mux": 0.9682,
                "shadow": 1.0094},
    "rest_luts": {"const": 1422.1092, "register_bits": 1.2472, "lanes": 25.9912, "lane_selects": 0.7147,
                  "rotate": 3.0216},
    "rest_ffs": {"const": 137.6672, "register_bits": 0.7858, "chain_bits": 1.0148, "lanes": 0.9373,
                 "lane_selects": -0.0271, "acc_row": 2.7009},
}


def _dot(features: dict[str, float], coefficients: dict[str, float]) -> float:
    return sum(coefficients[k] * features[k] for k in coefficients)


def tag_merge_ffs(cfg: AcceleratorConfig) -> int:
    """Flip-flops a whole-design synthesis saves over the composed one: the merged ``a_tag`` chain."""
    return cfg.pes - (cfg.rows + cfg.cols - 1) if cfg.shadow_weights else 0


def estimate_parts(cfg: AcceleratorConfig, target: str = "ecp5",
                   coefficients: dict[str, dict[str, float]] | None = None) -> dict[str, Resources]:
    """The composed model by part: ``pe`` (all PEs), ``rest``; their sum is the composed synthesis."""
    _check_target(target)
    if cfg.packed_weights:  # its nibble rotator is in no synthesis the coefficients were fitted on
        raise CostModelError(f"config '{cfg.name}': field 'packed_weights' = True: the cost model is fitted on "
                             f"designs without the packed-weight load path; run `hwgen synth --config F.json`")
    if cfg.safety:  # codes, checksum column and status counters are in no synthesis it was fitted on
        raise CostModelError(f"config '{cfg.name}': field 'safety' is set: the cost model is fitted on designs "
                             f"without safety mechanisms; run `hwgen synth --config F.json`")
    co = COEFFICIENTS if coefficients is None else coefficients
    pe_luts = sum(c.count * _dot(pe_features(cfg, c), co["pe_luts"]) for c in pe_classes(cfg))
    pe_ff = sum(c.count * pe_ffs(cfg, c) for c in pe_classes(cfg))
    feats = rest_features(cfg)
    mults = {m.name: m.count * mult18_count(m.a, m.b) for m in multipliers(cfg)}
    brams = sum(memory_blocks(m) for m in memories(cfg))
    return {
        "pe": Resources(luts=round(pe_luts), ffs=pe_ff, dsps=mults["pe"]),
        "rest": Resources(luts=round(_dot(feats, co["rest_luts"])), ffs=round(_dot(feats, co["rest_ffs"])),
                          dsps=mults["requantizer"] + decode_dsps(cfg), brams=brams),
    }


@dataclass(frozen=True)
class Estimate(Resources):
    """:func:`estimate`'s answer: the resources (a :class:`~hwgen.synth.Resources`, so it adds and compares
    field by field like a synthesis report's) and the modelled Fmax (:func:`fmax_mhz`), so one call prices
    a configuration's area and speed."""

    fmax_mhz: float = 0.0


def estimate(cfg: AcceleratorConfig, target: str = "ecp5", *, whole: bool = True,
             coefficients: dict[str, dict[str, float]] | None = None) -> Estimate:
    """The resources of ``cfg``'s design on ``target``: of the whole-design synthesis by default
    (``whole=False``: of the composed one, which keeps the ``a_tag`` chain unmerged), with its modelled
    Fmax (:func:`fmax_mhz`: nextpnr's out-of-context Fmax on an LFE5U-85F, the same for both modes)."""
    parts = estimate_parts(cfg, target, coefficients)
    total = parts["pe"] + parts["rest"]
    ffs = total.ffs - tag_merge_ffs(cfg) if whole else total.ffs
    return Estimate(luts=total.luts, ffs=ffs, dsps=total.dsps, brams=total.brams, dist_rams=total.dist_rams,
                    fmax_mhz=fmax_mhz(cfg, target))


# ------------------------------------------------------------------ Fmax
#: The Fmax model's features (:func:`fmax_features`), in the order benchmarks/fit_fmax.py fits them.
FMAX_FEATURES: tuple[str, ...] = ("const", "decoupled", "port_bytes")

#: Critical-path nanoseconds per feature (benchmarks/fit_fmax.py prints this table; paste it here).
FMAX_COEFFICIENTS: dict[str, float] = {'const': 22.8989, 'decoupled': 12.7578, 'port_bytes': 0.8364}

#: The largest relative Fmax residual of the fit runs (benchmarks/fit_fmax.py: ``fit residual``), the
#: tolerance tests/test_cost_model.py holds the model to on the committed measurements it was fitted on.
FMAX_RESIDUAL = 0.09


def fmax_features(cfg: AcceleratorConfig) -> dict[str, float]:
    """The terms of the critical path (module docstring, "Fmax")."""
    return {
        "const": 1.0,
        "decoupled": 1.0 if cfg.controller is Controller.DECOUPLED else 0.0,
        "port_bytes": float(cfg.host_port_bytes),
    }


def critical_path_ns(cfg: AcceleratorConfig, target: str = "ecp5",
                     coefficients: dict[str, float] | None = None) -> float:
    """The modelled critical-path delay of ``cfg``'s design, nanoseconds (module docstring, "Fmax")."""
    _check_target(target)
    co = FMAX_COEFFICIENTS if coefficients is None else coefficients
    return _dot(fmax_features(cfg), co)


def fmax_mhz(cfg: AcceleratorConfig, target: str = "ecp5", coefficients: dict[str, float] | None = None) -> float:
    """The modelled Fmax of ``cfg``'s design, MHz: ``1000 / critical_path_ns`` (module docstring, "Fmax")."""
    return 1000.0 / critical_path_ns(cfg, target, coefficients)
