"""Facts of the accelerator RTL that pure-Python code needs without elaborating it.

``hwgen.top`` and its units (``hwgen.units``) build the hardware from these (they import Amaranth);
the fault-site formula (``fault_injection.sites.model_sites``), the timing closed forms
(``sim.timing``), the model fault injector and other pure-Python code read them here, so nothing
restates them. The RTL-vs-formula site parity test (tests/test_fi_sites.py) still elaborates the RTL
and compares it with this table, and the RTL-vs-model tests compare the schedules cycle for cycle.

Two tables:

* :data:`REGISTERS`: every state register of the design outside the systolic array and the memories:
  the unit (submodule) that drives it, its ``Signal`` name, its width as a function of the
  configuration, its signedness and the fault-report structure it belongs to. A unit creates its
  ``Signal`` objects from it (:func:`hwgen.units.common.unit_registers`); the site formula iterates it.
* the execute schedule of every instruction kind: named constants and closed forms
  (:class:`ComputeSchedule`, :func:`load_last`, :func:`store_last`...). The RTL evaluates the closed
  forms on Amaranth values (the decode cycle latches them), ``sim.timing`` and the model injector on
  integers; every form is written so that both work.

Pure Python: no Amaranth import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .config import INSTR_BITS, AcceleratorConfig
from .dataflow import Dataflow
from .isa import QTABLE_BYTES
from .safety import MEMORY_STRUCTURES, STATUS_COUNTERS, TWIN_SUFFIX, Mechanism, MemoryLayout, memory_layout

__all__ = ["COUNTER_WIDTH", "CONTROLLER_STATES", "FSM_NAME", "EXEC_COUNTER_WIDTH", "Register", "REGISTERS",
           "UNITS", "registers_of", "memory_layouts", "has_mechanisms", "abft", "acc_lanes", "array_pes", "twinned_units", "register_structure", "bits_for", "byte_bits",
           "FETCH_LATENCY", "DECODE_CYCLES", "HOST_READ_LATENCY", "LOAD_LATENCY", "STORE_PIPELINE",
           "CLEAR_CYCLES", "SPAD_READ_LATENCY", "WRITE_BACK_CYCLES", "ComputeSchedule", "compute_schedule", "SHADOW_TAILS",
           "DECOUPLED_UNITS", "HOST_SPAN_WIDTH", "footprint_fields", "dep_width",
           "load_last", "store_last", "store_issuing", "store_wide", "store_lanes", "store_beats", "store_issues"]

#: Width of the ``cycles`` and ``busy_pe`` performance counters (output ports, valid after ``done``).
COUNTER_WIDTH = 48

#: The controller FSM's states (the first is the reset state); their number sets the state register's width.
CONTROLLER_STATES = ("IDLE", "FETCH", "DECODE", "LOAD", "COMPUTE", "STORE", "HALTED")
#: The controller FSM's name; Amaranth names its state register ``<name>_state``.
FSM_NAME = "fsm"

#: Width of the execute-cycle counter and of everything compared with it (exec_cnt, exec_last, cp_phase).
EXEC_COUNTER_WIDTH = 26


def bits_for(n: int) -> int:
    """Bits to hold values 0..n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


def byte_bits(port_bytes: int) -> int:
    """Bits of the byte offset inside one host-port word (0 for a one-byte port)."""
    return bits_for(port_bytes) if port_bytes > 1 else 0


# ============================================================================ registers
#: The units of the design, as submodule names of the top (``""``: the top itself). A register's site
#: name is ``<unit>.<name>`` (``<name>`` for the top).
UNITS = ("ctrl", "load", "compute", "store", "")

Width = Callable[[AcceleratorConfig], int]


def _const(n: int) -> Width:
    return lambda cfg: n


@dataclass(frozen=True)
class Register:
    """One state register (or, with ``count``, a family ``name.format(j)`` for j < count(cfg))."""

    unit: str
    name: str
    width: Width
    structure: str
    signed: bool = False
    #: whether the configuration has this register at all (e.g. a byte offset only on a multi-byte port)
    present: Callable[[AcceleratorConfig], bool] = lambda cfg: True
    #: a family: how many (``name`` is then a format string with one ``{}``), and the family's name
    count: Callable[[AcceleratorConfig], int] | None = None
    group: str = ""
    #: "ff": a Signal the unit creates; "fsm": the state register Amaranth creates for the FSM
    kind: str = "ff"

    def names(self, cfg: AcceleratorConfig) -> list[str]:
        """The Signal names of this entry in ``cfg`` (empty when absent)."""
        if not self.present(cfg):
            return []
        if self.count is None:
            return [self.name]
        return [self.name.format(j) for j in range(self.count(cfg))]

    def site(self, name: str) -> str:
        """The dotted site name of one of :meth:`names`."""
        return f"{self.unit}.{name}" if self.unit else name


def _reg(unit: str, structure: str, name: str, width: int | Width, **kw: Any) -> Register:
    return Register(unit, name, width if callable(width) else _const(width), structure, **kw)


def _ctrl(name, width, structure="controller", **kw):
    return _reg("ctrl", structure, name, width, **kw)


def _load(name, width, **kw):
    return _reg("load", "load_unit", name, width, **kw)


def _compute(name, width, structure, **kw):
    return _reg("compute", structure, name, width, **kw)


def _store(name, width, structure="store_unit", **kw):
    return _reg("store", structure, name, width, **kw)


def _packed_weights(cfg: AcceleratorConfig) -> bool:
    return cfg.packed_weights


def memory_layouts(cfg: AcceleratorConfig) -> dict[str, MemoryLayout]:
    """The stored word layout of each memory (:func:`hwgen.safety.memory_layout`: its lanes, their data
    bits and the check bits of its mechanism), by structure name, which is also its site name."""
    lanes = {"a_spad": (cfg.rows, cfg.input_width), "w_spad": (cfg.cols, cfg.weight_width),
             "acc_buf": (acc_lanes(cfg), cfg.acc_width)}
    return {s: memory_layout(s, cfg.mechanism(s), *lanes[s]) for s in MEMORY_STRUCTURES}


def abft(cfg: AcceleratorConfig) -> bool:
    """Whether the array has the ABFT checksum column (:class:`hwgen.safety.Mechanism`)."""
    return cfg.mechanism("array") is not None


def acc_lanes(cfg: AcceleratorConfig) -> int:
    """Lanes of an accumulator row: the columns, and the ABFT checksum after them."""
    return cfg.cols + abft(cfg)


def twinned_units(cfg: AcceleratorConfig) -> tuple[str, ...]:
    """The units that run with a lockstep twin (DMR) in ``cfg``."""
    return tuple(u for u in UNITS if u and cfg.mechanism(u) is Mechanism.DMR)


def array_pes(cfg: AcceleratorConfig) -> int:
    """PE instances of the array: the rows x cols grid and the ABFT checksum column's rows."""
    return cfg.rows * (cfg.cols + abft(cfg))


def has_mechanisms(cfg: AcceleratorConfig) -> bool:
    """Whether the design has any safety mechanism (and so the status counters, and the units report
    when they consume protected data)."""
    return bool(cfg.safety)


def _multi_byte_port(cfg: AcceleratorConfig) -> bool:
    return byte_bits(cfg.host_port_bytes) > 0


def store_lanes(cfg: AcceleratorConfig) -> int:
    """Requantizer lanes of the store unit: ``min(port bytes, C)``, the most elements one beat (the
    bytes of one accumulator row inside one host-port word) can hold."""
    return min(cfg.host_port_bytes, cfg.cols)


def _lanes(cfg: AcceleratorConfig) -> int:
    return store_lanes(cfg)


def _multi_lane(cfg: AcceleratorConfig) -> bool:
    return store_lanes(cfg) > 1


def _lane_count_bits(cfg: AcceleratorConfig) -> int:
    return bits_for(store_lanes(cfg) + 1)


def _in_order(cfg: AcceleratorConfig) -> bool:
    return cfg.controller.value == "in-order"


def _decoupled(cfg: AcceleratorConfig) -> bool:
    return not _in_order(cfg)


def _shadow(cfg: AcceleratorConfig) -> bool:
    return cfg.shadow_weights


def wb_token_stages(cfg: AcceleratorConfig) -> int:
    """Shadow weights: stages of the write-back token line (a token per streamed A word: its output row
    address and accumulate bit, from the read to the row leaving the array: ``stream_lead``)."""
    return compute_schedule(cfg.rows, cfg.cols, Dataflow.WS, True).stream_lead


#: The decoupled controller's units, as register-name prefixes: load, compute, store (queues and
#: sequencers ``lq_slot0``, ``c_busy``...; hwgen.units.dispatcher).
DECOUPLED_UNITS = ("l", "c", "s")
#: Width of a footprint's host byte bounds (signed: a negative stride can reach below the base).
HOST_SPAN_WIDTH = 41


def footprint_fields(unit: str) -> tuple[tuple[str, int, bool], ...]:
    """(name, width, signed) of the footprint the decoupled dispatcher keeps per queued instruction of
    ``unit`` (``l``, ``c``, ``s``; sim.schedule.footprint): word ranges [lo, hi) of the structures the
    unit touches and the bounding host byte interval."""
    H = HOST_SPAN_WIDTH
    if unit == "l":   # writes the target (a, w, q) range, reads host bytes unless a fill
        return (("tgt", 2, False), ("zero", 1, False), ("s_lo", 16, False), ("s_hi", 17, False),
                ("h_lo", H, True), ("h_hi", H, True))
    if unit == "c":   # reads a and w ranges, writes an accumulator range
        return (("a_lo", 16, False), ("a_hi", 17, False), ("w_lo", 16, False), ("w_hi", 17, False),
                ("o_lo", 16, False), ("o_hi", 17, False))
    if unit == "s":   # a store (not a config): reads accumulators and q [0, cols) when qtable, writes host bytes
        return (("st", 1, False), ("qt", 1, False), ("cols", 9, False), ("o_lo", 16, False), ("o_hi", 17, False),
                ("h_lo", H, True), ("h_hi", H, True))
    raise ValueError(f"no decoupled unit {unit!r}")


def dep_width(cfg: AcceleratorConfig) -> int:
    """Bits of a queue entry's dependency count: up to queue_depth + 1 instructions of a unit in flight
    (plus the draining computes, :data:`SHADOW_TAILS`, with shadow weights)."""
    return bits_for(cfg.queue_depth + 2 + (SHADOW_TAILS if cfg.shadow_weights else 0))


def _fp_bits(unit: str) -> int:
    return sum(w for _, w, _ in footprint_fields(unit))


def _dq_regs(u: str) -> tuple[Register, ...]:
    """The decoupled controller's queue and sequencer registers of unit ``u``."""
    dec = dict(present=_decoupled)
    return (
        _ctrl(f"{u}q_slot{{}}", lambda cfg: INSTR_BITS + _fp_bits(u) + 2 * dep_width(cfg), "controller",
              count=lambda cfg: cfg.queue_depth, group=f"{u}q_slot", **dec),
        _ctrl(f"{u}q_head", lambda cfg: bits_for(cfg.queue_depth), "controller", **dec),
        _ctrl(f"{u}q_count", lambda cfg: bits_for(cfg.queue_depth + 1), "controller", **dec),
        _ctrl(f"{u}_busy", 1, **dec),
        _ctrl(f"{u}_cnt", EXEC_COUNTER_WIDTH, **dec),
        _ctrl(f"{u}_last", EXEC_COUNTER_WIDTH, **dec),
        _ctrl(f"{u}_cur", INSTR_BITS + _fp_bits(u), "instruction_reg", **dec),
    )


def _tail_regs() -> tuple[Register, ...]:
    """Shadow weights: the dispatcher's entries for computes still draining after the next one started
    (valid, cycles left until the last write-back, footprint), oldest first."""
    sh = dict(present=_shadow, count=lambda cfg: SHADOW_TAILS)
    return (_ctrl("c_tail{}_valid", 1, group="c_tail_valid", **sh),
            _ctrl("c_tail{}_left", EXEC_COUNTER_WIDTH, group="c_tail_left", **sh),
            _ctrl("c_tail{}_fp", _fp_bits("c"), group="c_tail_fp", **sh))


_E = EXEC_COUNTER_WIDTH

#: Every state register outside the systolic array (``hwgen.array``) and the memories, by unit.
REGISTERS: tuple[Register, ...] = (
    # ---- controller: fetch, decode, the execute counter, performance counters
    _ctrl(f"{FSM_NAME}_state", lambda cfg: bits_for(len(CONTROLLER_STATES)), kind="fsm"),
    _ctrl("pc", 32),
    _ctrl("instr_reg", INSTR_BITS, "instruction_reg"),
    _ctrl("fetch_cnt", lambda cfg: bits_for(cfg.fetch_beats + 1)),
    _ctrl("exec_cnt", _E, present=_in_order),
    _ctrl("exec_last", _E, present=_in_order),
    _ctrl("error_flag", 1),
    _ctrl("cycle_counter", COUNTER_WIDTH, "perf_counters"),
    _ctrl("busy_pe_counter", COUNTER_WIDTH, "perf_counters"),
    # ---- load unit: address generation and the one-cycle read pipeline
    _load("ld_word", 16),
    _load("ld_lane", 9),
    _load("ld_row_ptr", 32),
    _load("ld_ptr", 32),
    _load("ld_p_valid", 1),
    _load("ld_p_byte", lambda cfg: byte_bits(cfg.host_port_bytes), present=_multi_byte_port),
    _load("ld_p_spad_addr", 16),
    _load("ld_p_lane", 9),
    _load("ld_p_wide", 1),
    _load("ld_p_rot", lambda cfg: byte_bits(cfg.host_port_bytes), present=_multi_byte_port),
    # packed 4-bit weights: lane L takes nibble (nrot + L) mod 2*port bytes of the port word
    _load("ld_p_nrot", lambda cfg: byte_bits(cfg.host_port_bytes) + 1, present=_packed_weights),
    _load("ld_p_lo", 10),
    _load("ld_p_hi", 10),
    # ---- compute: array feed (sequencing state, reported with the controller) and write-back
    _compute("feed_a_valid", 1, "controller"),
    _compute("feed_b_valid", 1, "controller"),
    _compute("cp_phase", _E, "controller"),
    _compute("busy_inc", _E, "controller"),
    _compute("wb_valid", 1, "write_back"),
    _compute("wb_addr", 16, "write_back"),
    _compute("wb_data", lambda cfg: acc_lanes(cfg) * cfg.acc_width, "write_back"),
    # shadow weights: the preload's shift enable and the first-word tag (one cycle after the reads),
    # the stream sequencer (its own context: the next compute's preload runs beside it), the
    # write-back token line and the accumulate bit of the row being written
    _compute("feed_w_shift", 1, "controller", present=_shadow),
    _compute("feed_a_first", 1, "controller", present=_shadow),
    _compute("stream_active", 1, "controller", present=_shadow),
    _compute("stream_cnt", 16, "controller", present=_shadow),
    _compute("stream_rows", 16, "controller", present=_shadow),
    _compute("stream_a_addr", 16, "controller", present=_shadow),
    _compute("stream_o_addr", 16, "controller", present=_shadow),
    _compute("stream_acc", 1, "controller", present=_shadow),
    _compute("stream_busy", _E, "controller", present=_shadow),
    _compute("wb_tok{}", 18, "write_back", present=_shadow, count=wb_token_stages, group="wb_tok"),
    _compute("wb_acc", 1, "write_back", present=_shadow),
    # ---- store unit: requantization parameters (config instruction), address generation, pipeline
    _store("q_multiplier", 32, "quant_config", signed=True),
    _store("q_shift", 6, "quant_config"),
    _store("q_zero_point", 16, "quant_config", signed=True),
    _store("q_clamp_lo", 16, "quant_config", signed=True),
    _store("q_clamp_hi", 16, "quant_config", signed=True),
    _store("st_row", 16),
    _store("st_col", 9),
    _store("st_row_ptr", 32),
    _store("st_ptr", 32),
    # the requantizer pipeline: per beat its first column, first byte address and byte count; per lane
    # (store_lanes: one element of the beat each) the product, the shift and the result byte
    _store("rq1_valid", 1),
    _store("rq1_lane", 9),
    _store("rq1_ptr", 32),
    _store("rq1_bytes", _lane_count_bits, present=_multi_lane),
    _store("rq2_valid", 1),
    _store("rq2_product_l{}", lambda cfg: cfg.acc_width + 32, signed=True, count=_lanes, group="rq2_product"),
    _store("rq2_shift_l{}", 6, count=_lanes, group="rq2_shift"),
    _store("rq2_ptr", 32),
    _store("rq2_bytes", _lane_count_bits, present=_multi_lane),
    _store("rq3_valid", 1),
    _store("rq3_byte_l{}", 8, count=_lanes, group="rq3_byte"),
    _store("rq3_ptr", 32),
    _store("rq3_bytes", _lane_count_bits, present=_multi_lane),
    # ---- decoupled controller (ctrl): per unit its queue, dependency counts and execute sequencer
    *_dq_regs("l"), *_dq_regs("c"), *_dq_regs("s"),
    _ctrl("s_cfg", 1, present=_decoupled),
    *_tail_regs(),
    # ---- top: the per-column quantization table (written by loads, read by stores, like a memory)
    _reg("", "qtable", "qtable_c{}", 8 * QTABLE_BYTES, count=lambda cfg: cfg.cols, group="qtable"),
    # ---- top: the safety mechanisms' status counters (hwgen.safety.STATUS_COUNTERS)
    *(_reg("", "safety", name, COUNTER_WIDTH, present=has_mechanisms) for name in STATUS_COUNTERS),
)


def registers_of(unit: str) -> tuple[Register, ...]:
    """The entries of :data:`REGISTERS` one unit drives."""
    if unit not in UNITS:
        raise ValueError(f"no unit {unit!r} (units: {', '.join(repr(u) for u in UNITS)})")
    return tuple(r for r in REGISTERS if r.unit == unit)


def _structure_patterns() -> list[tuple[re.Pattern, str]]:
    out = []
    for r in REGISTERS:
        name = re.escape(r.name).replace(r"\{\}", r"\d+") if r.count else re.escape(r.name)
        # a unit's lockstep twin (hwgen.lockstep) holds registers of the same structures
        unit = re.escape(r.unit) + f"(?:{re.escape(TWIN_SUFFIX)})?" + r"\."
        out.append((re.compile(unit + name + "$" if r.unit else name + "$"), r.structure))
    return out


_STRUCTURE_PATTERNS = _structure_patterns()


def register_structure(site: str) -> str | None:
    """The structure of a site that is a register of :data:`REGISTERS`, else None."""
    for pattern, structure in _STRUCTURE_PATTERNS:
        if pattern.match(site):
            return structure
    return None


# ============================================================================ schedule
# Execute cycles are counted from 0 (the first cycle after decode) by the controller's exec_cnt; an
# instruction's execute phase ends at exec_last (latched at decode from the closed forms below).

#: Fetch: ``fetch_beats`` host-port reads plus this many cycles for the last beat's data.
FETCH_LATENCY = 1
#: Decode (halt, fence and config end here).
DECODE_CYCLES = 1
#: Host port: read data one cycle after the address.
HOST_READ_LATENCY = 1
#: A gathering load ends this many cycles after its last host read (the data coming back).
LOAD_LATENCY = HOST_READ_LATENCY
#: Store: one beat per cycle (narrow: one element) through lane select, bias + multiply; round, shift,
#: zero point, clamp; write.
STORE_PIPELINE = 3
#: Every compute starts with this many cycles clearing every array register.
CLEAR_CYCLES = 1
#: Scratchpad read data one cycle after the address (synchronous read ports).
SPAD_READ_LATENCY = 1
#: Accumulator-buffer write-back: the read-modify-write one cycle after a row leaves the array.
WRITE_BACK_CYCLES = 1


def load_last(count):
    """exec_last of a zero-fill load of ``count`` words (one word per cycle); an int or an Amaranth value.
    A gathering load ends when its last word is issued and its data is back, not at a count."""
    return count - 1


def store_last(issues):
    """exec_last of a store that issues ``issues`` beats (:func:`store_issues`): one issued per cycle,
    then the pipeline drains."""
    return issues + (STORE_PIPELINE - 1)


def store_issuing(e, last):
    """Whether a store issues a beat at exec cycle ``e`` (its last issue is ``STORE_PIPELINE``
    cycles before the end)."""
    return e < last - (STORE_PIPELINE - 1)


def store_wide(col_stride):
    """Whether a store runs wide (a row's bytes contiguous in host memory: one host-port word per beat)."""
    return col_stride == 1


def _low(x, bits: int):
    """``x mod 2**bits``: an int's low bits, or an Amaranth value's low ``bits`` bits."""
    if isinstance(x, int):
        return x & ((1 << bits) - 1)
    return x[:bits]


def store_beats(port_bytes: int, base, rows, row_stride, cols):
    """Beats of a wide store (:func:`store_wide`): row r starts at byte offset ``o_r = (base +
    r*row_stride) mod PB`` of a port word and takes ``(o_r + cols - 1) // PB + 1`` beats (the port
    words its ``cols`` bytes touch), so the sum over the rows is (with ``cols - 1 = q*PB + s``)
    ``rows*(q + 1)`` plus the number of rows with ``o_r + s >= PB``. ``o_r`` is periodic in r with a
    period dividing PB (a power of two), so that count is ``(rows // PB)`` times the count over
    r < PB plus the count over r < ``rows mod PB``: a fixed expression of PB terms, exact for any
    alignment and any signed ``row_stride``, on ints or Amaranth values (the RTL evaluates it at
    decode). Equals :func:`sim.timing.load_beats` of the same rows."""
    if port_bytes == 1:
        return rows * cols
    bb = byte_bits(port_bytes)
    assert 1 << bb == port_bytes, "the host port is a power of two bytes wide"
    c = cols + (port_bytes - 1)
    per_row, s = c >> bb, _low(c, bb)  # q + 1 and s
    rem = _low(rows, bb)
    extra = [(_low(base + row_stride * r, bb) + s) >> bb for r in range(port_bytes)]  # row r has q + 2 beats
    full = sum(extra)
    part = sum(x & (rem > r) for r, x in enumerate(extra))
    return rows * per_row + (rows >> bb) * full + part


def store_issues(port_bytes: int, base, rows, row_stride, cols, col_stride: int):
    """Beats a store issues (ints): :func:`store_beats` when wide, else ``rows * cols`` (one element per
    beat). The RTL selects between the two forms with a Mux on :func:`store_wide`."""
    return store_beats(port_bytes, base, rows, row_stride, cols) if store_wide(col_stride) else rows * cols


@dataclass(frozen=True)
class ComputeSchedule:
    """The execute phases of one compute instruction on an R x C array (``e`` = exec cycle).

    Output-stationary (``n`` = depth, the streamed A/W words):

    * e = 0: clear; A and W word k are read at e = ``stream_start`` + k (k < depth), one read latency;
    * ``R + C - 2`` cycles of skew until PE(R-1, C-1) has its last product; then at e = ``readout(n)``
      the accumulators shift out of the bottom row for R cycles (row R-1-r at readout + r), each
      written back one cycle later; ``last(n) = readout(n) + R``.

    Weight-stationary (``n`` = rows, the streamed A words):

    * e = 0: clear; weight rows R-1 .. 0 are read at e = ``preload_start`` .. ``preload_last`` (row
      ``preload_last - e``) and shift down while e < ``stream_start`` (R + 1 cycles);
    * A word m is read at e = ``stream_start`` + m (m < rows), multiplies from ``stream_start`` on;
      ``R + C - 1`` cycles through the array and the de-skew registers, so output row m leaves at
      ``readout + m`` and is written one cycle later; ``last(n) = readout + n``.

    Weight-stationary with ``shadow`` (the decoupled controller's array, ``cfg.shadow_weights``): the
    preload goes into the PEs' shadow weight registers, and the first A word carries a tag that swaps
    shadow into active in each PE as it passes (PE(i, j) at e = ``stream_start + 1 + i + j``), so
    nothing is cleared and the next weight-stationary compute may start while this one streams and
    drains:

    * weight rows R-1 .. 0 are read at e = 0 .. R-1 (``preload_start`` = 0) and shift into the shadow
      chain at e = 1 .. R; A word m is read at e = R + m (``stream_start`` = R);
    * the next weight-stationary compute starts ``issue_interval(n)`` cycles after this one:
      ``max(n + 1, 2R + C - 2)`` (its A reads follow this one's; its first accumulator read comes after
      this one's last write, so a row written and read back needs no bypass; its first shadow shift,
      at its e = 1, comes after this one's last swap, in PE(R-1, C-1) at e = 2R + C - 1); every other successor
      waits for this compute's end. So at most ``SHADOW_TAILS`` = 2 earlier computes are still
      draining when one starts: compute k ends at s_k + n_k + 2R + C, and s_(k+3) >= s_k + (n_k + 1)
      + 2 * max(2, 2R + C - 2), which is later for every array.

    Every form takes an int or an Amaranth value for ``n`` and keeps the RTL's expression shape.
    """

    dataflow: Dataflow
    rows: int
    cols: int
    shadow: bool = False

    @property
    def os(self) -> bool:
        return self.dataflow is Dataflow.OS

    @property
    def overlaps(self) -> bool:
        """Whether consecutive computes of this kind overlap (weight-stationary with shadow weights)."""
        return self.shadow and not self.os

    @property
    def streamed_field(self) -> str:
        """The compute field whose value is the number of streamed words (``n``)."""
        return "depth" if self.os else "rows"

    @property
    def busy_field(self) -> str:
        """The compute field that, times C, is the PEs each streamed word keeps busy."""
        return "rows" if self.os else "depth"

    @property
    def skew(self) -> int:
        """Cycles after the last streamed word's data enters until its result reaches the readout."""
        R, C = self.rows, self.cols
        return R + C - 2 if self.os else R + C - 1

    @property
    def clears(self) -> bool:
        """Whether e = 0 .. CLEAR_CYCLES - 1 clear every array register (not when computes overlap)."""
        return not self.overlaps

    @property
    def preload_start(self) -> int:
        """ws: exec cycle of the first weight-row read."""
        return CLEAR_CYCLES if self.clears else 0

    @property
    def preload_last(self) -> int:
        """ws: exec cycle of the last weight-row read (row 0); row ``preload_last - e`` is read at e."""
        return self.preload_start + self.rows - 1

    @property
    def stream_start(self) -> int:
        """Exec cycle of the first streamed word's read (os: A and W; ws: A, after the weight preload)."""
        if self.os:
            return CLEAR_CYCLES
        # R + 1 preload cycles (R reads, one latency) before the stream; with shadow weights the
        # stream's first word meets the shadow as it is written, so one cycle earlier
        return self.preload_last + (1 if self.overlaps else 2)

    @property
    def stream_lead(self) -> int:
        """Cycles from a streamed word's read to its output row leaving the array (ws)."""
        return SPAD_READ_LATENCY + self.skew

    def readout(self, n):
        """os: exec cycle of the first readout shift (multiplies stop); ws: the first aligned output row."""
        if self.os:
            return n + self.rows + self.cols
        return self.stream_start + self.stream_lead

    def last(self, n):
        """exec_last: the last execute cycle (the last write-back)."""
        if self.os:
            return self.readout(n) + self.rows + WRITE_BACK_CYCLES - 1
        return self.readout(n) + n + WRITE_BACK_CYCLES - 1

    def exec_cycles(self, n):
        """Execute cycles: ``last(n) + 1``."""
        return self.last(n) + 1

    @property
    def overhead(self) -> int:
        """Execute cycles beyond the ``n`` streamed words."""
        return self.exec_cycles(0)

    @property
    def min_interval(self) -> int:
        """Overlapping computes: the fewest cycles between consecutive starts (the shadow rule)."""
        return max(1, 2 * self.rows + self.cols - 2)

    def issue_interval(self, n: int) -> int:
        """Overlapping computes: cycles from this compute's start (n streamed words) to the earliest
        start of the next overlapping one."""
        return max(n + WRITE_BACK_CYCLES, self.min_interval)

    def may_follow(self, cnt, n):
        """Whether the next overlapping compute may start in the cycle this one (n streamed words) is at
        exec count ``cnt`` (started ``cnt + 1`` cycles earlier): ``cnt + 1 >= issue_interval(n)``, on
        ints or Amaranth values."""
        return (cnt + 1 >= n + WRITE_BACK_CYCLES) & (cnt + 1 >= self.min_interval)


#: Overlapping computes: how many earlier computes can still be draining when one starts (the
#: decoupled dispatcher's tail entries; :class:`ComputeSchedule` proves the bound, sim.schedule checks it).
SHADOW_TAILS = 2


def compute_schedule(rows: int, cols: int, dataflow: Dataflow | str | int, shadow: bool = False) -> ComputeSchedule:
    """The schedule of a compute in ``dataflow`` (a Dataflow, its string, or its ISA code); ``shadow``:
    the array has shadow weight registers (``cfg.shadow_weights``)."""
    df = Dataflow.from_code(dataflow) if isinstance(dataflow, int) else Dataflow(dataflow)
    if df is Dataflow.BOTH:
        raise ValueError("a compute runs one stationary dataflow, not 'both'")
    return ComputeSchedule(df, rows, cols, shadow)


def _check_schedule() -> None:
    """The closed forms decompose into the phases the docstrings state (import-time self-check)."""
    for R, C in ((1, 1), (2, 3), (8, 8)):
        os_ = compute_schedule(R, C, Dataflow.OS)
        ws = compute_schedule(R, C, Dataflow.WS)
        sh = compute_schedule(R, C, Dataflow.WS, shadow=True)
        for n in (0, 5):
            assert os_.readout(n) == os_.stream_start + SPAD_READ_LATENCY + n + os_.skew
            assert os_.last(n) == os_.readout(n) + R + WRITE_BACK_CYCLES - 1
            assert os_.last(n) == n + 2 * R + C
            assert ws.last(n) == ws.readout(n) + n + WRITE_BACK_CYCLES - 1 == n + 2 * R + C + 2
            assert sh.last(n) == n + 2 * R + C
        assert ws.stream_start == ws.preload_last + 2  # R + 1 preload cycles: R reads, one latency
        assert sh.preload_start == 0 and sh.stream_start == R
        # the next shadow preload's first shift (its e = 1) follows this compute's last swap
        assert sh.min_interval + 1 >= sh.stream_start + SPAD_READ_LATENCY + (R - 1) + (C - 1)


_check_schedule()
