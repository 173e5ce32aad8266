"""Fault injection on the cycle model.

The cycle model executes whole instructions with numpy; to inject a fault at a
given cycle it re-executes the one instruction that holds that cycle at the
level of detail the fault needs, following the RTL's schedule exactly:

* a fault in the array (PE operand registers and accumulators, skew and
  de-skew registers), in the write-back pipeline (wb_valid, wb_addr,
  wb_data, in unit ``compute``), in the feed-valid flags, the compute phase registers
  (ctrl.exec_cnt, ctrl.exec_last, compute.cp_phase) or in a scratchpad or the accumulator
  buffer during a compute: the compute is simulated cycle by cycle
  (:func:`simulate_compute`), with scratchpad reads at their issue cycles;
* a scratchpad / accumulator-buffer / quantization-table fault during a load:
  the flip happens before or after the element that the load writes, by the
  load's write schedule;
* an accumulator-buffer, quantization-table or quantization-register fault
  during a store: every element uses the values it reads at its own cycles (those of its
  beat: a wide store requantizes a port word's bytes of one row together);
* any of these outside an instruction that touches the state: applied at the
  instruction boundary (the array registers are cleared by the next compute,
  so faults there between computes are masked); performance counters never
  reach the outputs (masked).

On the decoupled controller the load, compute and store units run several instructions at once
(and weight-stationary computes overlap in the array), so only faults whose effect is the value of
a stored lane are modeled there: the scratchpads, the accumulator buffer, the quantization table
and registers (and the performance counters, masked). Each flipped lane is read flipped by the
reads of it from the fault's cycle until the next write of it, at the cycles
:mod:`fault_injection.access_times` gives on the scoreboard's schedule (:mod:`sim.schedule`);
the array, write-back and read-port registers are left to the RTL injector.

Instruction-sequencing state (pc, instruction register, FSM state, fetch,
load and store address generators) is not modeled: its faults change control
flow, which the RTL injector covers. :data:`MODELED_STRUCTURES` lists what
this injector accepts; ``inject`` raises for the rest. Fault models: ``seu``
and ``mbu``.

Outcome: ``sdc`` when the program's output region differs from the golden
run's, ``due`` when a corrupted phase counter keeps the compute from ending
within the timeout, else ``masked``. Early stop: after the faulty
instruction, the model state is compared with the golden state at every
instruction boundary; equal state means the rest of the run is the golden run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from hwgen.config import AcceleratorConfig, Controller
from hwgen.dataflow import Dataflow
from hwgen.hw_facts import EXEC_COUNTER_WIDTH, REGISTERS, abft, compute_schedule, memory_layouts, twinned_units
from hwgen.safety import TWIN_SUFFIX
from hwgen.isa import INSTR_BYTES, QTABLE_BYTES, Instruction, LoadTarget, Opcode, decode, loads_w, requantize
from hwgen.program import Program
from sim.cycle import CycleModel, wrap
from sim.schedule import schedule
from sim.timing import DECODE_CYCLES, exec_cycles, fetch_cycles, instruction_cycles

from .access_times import STORE_READ_OFFSETS, Lane, accesses, load_write_cycle, store_issue_cycles
from .code_faults import code_effects, data_view_bits
from .faults import Fault, InjectionResult, structure_of
from .sites import READ_PORT_SUFFIX, model_sites

__all__ = ["ModelInjector", "MODELED_STRUCTURES", "DECOUPLED_STRUCTURES", "simulate_compute", "ModelGolden"]

MODELED_STRUCTURES = ("pe_operands", "pe_accumulators", "skew_regs", "a_spad", "w_spad", "acc_buf", "qtable",
                      "quant_config", "write_back", "perf_counters")
#: what the injector models on the decoupled controller: stored lanes (the read-port registers excepted)
DECOUPLED_STRUCTURES = ("a_spad", "w_spad", "acc_buf", "qtable", "quant_config", "perf_counters")
#: what the injector leaves to the RTL on an array with the ABFT checksum column
_ABFT_RTL_ONLY = ("pe_operands", "pe_accumulators", "skew_regs", "write_back")
#: site name -> register-table entry, for the registers named below (hwgen.hw_facts.REGISTERS)
_REG = {r.site(r.name): r for r in REGISTERS if r.count is None}
#: the site name of a register of the table, by its Signal name ("exec_cnt" -> "ctrl.exec_cnt")
_S = {r.name: site for site, r in _REG.items()}
#: controller registers the compute simulation holds (the rest of 'controller' is not modeled)
_COMPUTE_CTRL = tuple(_S[n] for n in ("exec_cnt", "exec_last", "cp_phase", "feed_a_valid", "feed_b_valid",
                                      "busy_inc"))
#: the registers simulate_compute holds, by Signal name
_SIM_REGS = ("exec_cnt", "exec_last", "cp_phase", "feed_a_valid", "feed_b_valid", "wb_valid", "wb_addr")
#: quantization registers (sites) -> (CycleModel.quant key, signed)
_QUANT = {_S["q_" + k]: (k, _REG[_S["q_" + k]].signed)
          for k in ("multiplier", "shift", "zero_point", "clamp_lo", "clamp_hi")}


def _flip_signed(v: int, bits: int, mask: int) -> int:
    u = (int(v) & ((1 << bits) - 1)) ^ mask
    return u - (1 << bits) if u >> (bits - 1) else u


def _flip_lanes(vec: np.ndarray, width: int, f: Fault) -> None:
    """Flip bits f.bit .. f.bit+nbits of a vector of ``width``-bit signed lanes, in place."""
    for b in range(f.bit, f.bit + f.nbits):
        lane, lb = divmod(b, width)
        if lane < vec.shape[0]:
            vec[lane] = _flip_signed(vec[lane], width, 1 << lb)


def _bitmask(f: Fault, width: int) -> int:
    return (((1 << f.nbits) - 1) << f.bit) & ((1 << width) - 1)


# --------------------------------------------------------------- model state
class _State:
    """The cycle model's architectural state plus host memory, copyable and hashable."""

    def __init__(self, model: CycleModel, mem: np.ndarray):
        self.model, self.mem = model, mem

    def copy(self) -> "_State":
        return _State(self.model.copy(), self.mem.copy())

    def digest(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        for arr in (self.model.a_spad, self.model.w_spad, self.model.acc_buf, self.model.qtable, self.mem):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr(sorted(self.model.quant.items())).encode())
        return h.digest()


@dataclass
class ModelGolden:
    cycles: int
    instructions: list[Instruction]
    #: per instruction, in order: its fetch cycle (in-order controller); its unit's first execute cycle,
    #: -1 for halt and fence (decoupled controller)
    starts: list[int]
    digests: list[bytes]  #: state digest before each instruction (and after the last)
    output: np.ndarray


# ------------------------------------------------------- cycle-level compute
def simulate_compute(cfg: AcceleratorConfig, ins: Instruction, st: _State, fault: Fault | None = None,
                     fault_exec_cycle: int = -1, timeout: int = 1 << 20) -> tuple[bool, int]:
    """Execute one compute instruction cycle by cycle, as the RTL does, optionally applying
    ``fault`` to the state held during exec cycle ``fault_exec_cycle``. Returns (ended, exec cycles)."""
    R, C = cfg.rows, cfg.cols
    accw = cfg.acc_width
    a = ins.args
    sched = compute_schedule(R, C, Dataflow.from_code(a["dataflow"]))
    os_ = sched.os
    ecnt_mask = (1 << EXEC_COUNTER_WIDTH) - 1
    m = st.model
    z = lambda *shape: np.zeros(shape, dtype=np.int64)  # noqa: E731
    a_reg, b_reg, acc = z(R, C), z(R, C), z(R, C)
    skew_a = [z(i) for i in range(R)]
    skew_b = [z(j) for j in range(C)] if cfg.supports_os else [z(0) for _ in range(C)]
    deskew = [z(C - 1 - j) for j in range(C)] if cfg.supports_ws else [z(0) for _ in range(C)]
    ctrl = {"exec_cnt": 0, "feed_a_valid": 0, "feed_b_valid": 0, "wb_valid": 0, "wb_addr": 0}
    ctrl["cp_phase"] = sched.readout(a[sched.streamed_field])
    ctrl["exec_last"] = exec_cycles(cfg, ins) - 1
    wb_data = z(C)
    a_rd, w_rd = z(R), z(C)  # read-port data registers
    widths = {n: _REG[_S[n]].width(cfg) for n in _SIM_REGS}
    st_old = z(C)  # accumulator-buffer word read for the pending write-back
    for n in range(timeout):
        if fault is not None and n == fault_exec_cycle:
            if fault.site.endswith(".rd_data"):  # the scratchpad / accumulator read-port data registers
                reg, width = {"a_spad.rd_data": (a_rd, cfg.input_width), "w_spad.rd_data": (w_rd, cfg.weight_width),
                              "acc_buf.rd_data": (st_old, accw)}[fault.site]
                _flip_lanes(reg, width, fault)
            else:
                _apply_compute_fault(cfg, fault, st, a_reg, b_reg, acc, skew_a, skew_b, deskew, ctrl, wb_data,
                                     widths)
        e = ctrl["exec_cnt"]
        t1 = ctrl["cp_phase"]
        # ---- combinational: requests, feeds, controls, outputs
        if os_:
            k = (e - sched.stream_start) & ecnt_mask
            a_req = b_req = e >= sched.stream_start and k < a["depth"]
            a_addr, w_addr = a["a_addr"] + k, a["w_addr"] + k
        else:
            b_req = sched.preload_start <= e <= sched.preload_last and (sched.preload_last - e) < a["depth"]
            w_addr = a["w_addr"] + (sched.preload_last - e)
            mm = (e - sched.stream_start) & ecnt_mask
            a_req = e >= sched.stream_start and mm < a["rows"]
            a_addr = a["a_addr"] + mm
        a_feed = a_rd if ctrl["feed_a_valid"] else z(R)
        b_feed = w_rd if ctrl["feed_b_valid"] else z(C)
        clear = e == 0
        if os_:
            b_shift, b_skew, use_b_reg, deskew_on = 1, 1, 0, 0
            acc_self = mul_en = int(e < t1)
        else:
            b_shift, b_skew, use_b_reg, deskew_on = int(e < sched.stream_start), 0, 1, 1
            acc_self, mul_en = 0, int(e >= sched.stream_start)
        a_in0 = np.array([a_feed[i] if i == 0 else skew_a[i][-1] for i in range(R)], dtype=np.int64)
        if cfg.supports_os and (b_skew or not cfg.supports_ws):
            top = np.array([b_feed[j] if j == 0 else skew_b[j][-1] for j in range(C)], dtype=np.int64)
        else:
            top = b_feed
        a_in = np.concatenate([a_in0[:, None], a_reg[:, :-1]], axis=1)
        b_in = np.concatenate([top[None, :], b_reg[:-1, :]], axis=0)
        psum_in = np.concatenate([z(1, C), acc[:-1, :]], axis=0)
        bottom = acc[R - 1].copy()
        if cfg.supports_ws and (deskew_on or not cfg.supports_os):
            out = np.array([bottom[j] if C - 1 - j == 0 else deskew[j][-1] for j in range(C)], dtype=np.int64)
        else:
            out = bottom
        if os_:
            wb_row = (R - 1) - (e - t1)
            wb_req = t1 <= e < t1 + R and 0 <= wb_row < a["rows"]
        else:
            wb_row = e - t1
            wb_req = e >= t1 and 0 <= wb_row < a["rows"]
        acc_rd_addr = a["o_addr"] + wb_row
        finish = e == ctrl["exec_last"]
        # ---- memory reads happen at this cycle (the state held during it)
        new_a_rd = m.a_spad[a_addr % cfg.a_spad_depth].copy()
        new_w_rd = m.w_spad[w_addr % cfg.w_spad_depth].copy()
        old_acc = m.acc_buf[acc_rd_addr % cfg.acc_depth].copy() if wb_req else None
        # ---- write-back write (uses this cycle's registers)
        if ctrl["wb_valid"]:
            addr = ctrl["wb_addr"] % cfg.acc_depth
            base = st_old if a["accumulate"] else z(C)
            m.acc_buf[addr] = wrap(base + wb_data, accw)
        # ---- clock edge
        if clear:
            a_reg, b_reg, acc = z(R, C), z(R, C), z(R, C)
            skew_a = [z(i) for i in range(R)]
            skew_b = [z(len(s)) for s in skew_b]
            deskew = [z(len(s)) for s in deskew]
        else:
            b_mul = b_reg if use_b_reg else b_in
            prod = a_in * b_mul if mul_en else 0
            acc = wrap((acc if acc_self else psum_in) + prod, accw)
            if b_shift:
                b_reg = b_in.copy()
            a_reg = a_in.copy()
            skew_a = [np.concatenate([[a_feed[i]], s[:-1]]) if len(s) else s for i, s in enumerate(skew_a)]
            skew_b = [np.concatenate([[b_feed[j]], s[:-1]]) if len(s) else s for j, s in enumerate(skew_b)]
            deskew = [np.concatenate([[bottom[j]], s[:-1]]) if len(s) else s for j, s in enumerate(deskew)]
        st_old = old_acc if old_acc is not None else z(C)
        ctrl["wb_valid"], ctrl["wb_addr"] = int(wb_req), (a["o_addr"] + wb_row) & 0xFFFF
        wb_data = out.copy()
        ctrl["feed_a_valid"], ctrl["feed_b_valid"] = int(a_req), int(b_req)
        a_rd, w_rd = new_a_rd, new_w_rd
        ctrl["exec_cnt"] = (e + 1) & ecnt_mask
        if finish:
            return True, n + 1
    return False, timeout


def _apply_compute_fault(cfg, f: Fault, st: _State, a_reg, b_reg, acc, skew_a, skew_b, deskew, ctrl, wb_data,
                         widths) -> None:
    name = f.site
    iw, ww, accw = cfg.input_width, cfg.weight_width, cfg.acc_width
    if name.startswith("array.pe_r"):
        ij, reg = name[len("array.pe_r"):].split(".")
        i, j = (int(v) for v in ij.split("_c"))
        arr, width = {"a_reg": (a_reg, iw), "b_reg": (b_reg, ww), "acc": (acc, accw)}[reg]
        arr[i, j] = _flip_signed(arr[i, j], width, _bitmask(f, width))
    elif name.startswith("array.skew_a_r"):
        i, k = (int(v) for v in name[len("array.skew_a_r"):].split("_"))
        skew_a[i][k] = _flip_signed(skew_a[i][k], iw, _bitmask(f, iw))
    elif name.startswith("array.skew_b_c"):
        j, k = (int(v) for v in name[len("array.skew_b_c"):].split("_"))
        skew_b[j][k] = _flip_signed(skew_b[j][k], ww, _bitmask(f, ww))
    elif name.startswith("array.deskew_c"):
        j, k = (int(v) for v in name[len("array.deskew_c"):].split("_"))
        deskew[j][k] = _flip_signed(deskew[j][k], accw, _bitmask(f, accw))
    elif name == _S["wb_data"]:
        lane = f.bit // accw
        wb_data[lane] = _flip_signed(wb_data[lane], accw, _bitmask(Fault(name, f.model, f.cycle, f.bit % accw,
                                                                         nbits=f.nbits), accw))
    elif _REG.get(name) is not None and _REG[name].name in ctrl:
        local = _REG[name].name
        w = widths[local]
        ctrl[local] = (ctrl[local] ^ _bitmask(f, w)) & ((1 << w) - 1)
    elif name == _S["busy_inc"]:
        pass  # only the busy-PE counter reads it
    else:
        _flip_memory(cfg, st, f)


def _flip_memory(cfg: AcceleratorConfig, st: _State, f: Fault) -> None:
    """Flip bits of a scratchpad, accumulator-buffer word, quantization-table entry or quantization register."""
    m = st.model
    if f.site in ("a_spad", "w_spad", "acc_buf"):
        arr = {"a_spad": m.a_spad, "w_spad": m.w_spad, "acc_buf": m.acc_buf}[f.site]
        _flip_lanes(arr[f.word], _lane_width(cfg, f.site), f)
    elif f.site.endswith(".rd_data"):
        pass  # a read-port register is reloaded every cycle: only the cycle's consumer sees the flip
    elif f.site.startswith("qtable_c"):
        j = int(f.site[len("qtable_c"):])
        for b in range(f.bit, f.bit + f.nbits):
            if b < 8 * QTABLE_BYTES:
                m.qtable[j, b // 8] ^= np.uint8(1 << (b % 8))
    elif f.site in _QUANT:
        key, signed = _QUANT[f.site]
        width = _REG[f.site].width(cfg)
        v = m.quant[key]
        m.quant[key] = _flip_signed(v, width, _bitmask(f, width)) if signed else (v ^ _bitmask(f, width))
    else:
        raise ValueError(f"site '{f.site}' is not a memory or quantization register")


# ------------------------------------------------------------ load and store
def _store(cfg: AcceleratorConfig, ins: Instruction, st: _State, f: Fault | None, fault_exec_cycle: int) -> None:
    """A store where each element uses the accumulator, table and quantization values of its beat's cycles:
    the accumulator row is read at the beat's issue cycle t (the read port's data register holds it at
    t + 1), the lane select, table and multiplier/shift at t + 1, zero point and clamps at t + 2."""
    a = ins.args
    rows, cols = a["rows"], a["cols"]
    r_idx, c_idx = np.divmod(np.arange(rows * cols), cols)
    t = store_issue_cycles(cfg, a)  # issue cycle of each element: the cycle of its beat
    before = st.copy()
    if f is not None:
        _flip_memory(cfg, st, f)
    after = st

    off = STORE_READ_OFFSETS

    def pick(cycle_offset: int, getter) -> np.ndarray:
        """Per element: the value read at exec cycle t + cycle_offset, before or after the fault."""
        b, aft = getter(before), getter(after)
        return np.where(t + cycle_offset >= fault_exec_cycle, aft, b) if f is not None else b

    acc = pick(off["acc_buf"], lambda s: s.model.acc_buf[a["o_addr"] + r_idx, c_idx])
    if f is not None and f.site == "acc_buf.rd_data":  # the lane select reads the port at t + 1
        for k in np.flatnonzero(t + off["acc_buf.rd_data"] == fault_exec_cycle):
            lo_bit = c_idx[k] * cfg.acc_width
            for b in range(f.bit, f.bit + f.nbits):
                if lo_bit <= b < lo_bit + cfg.acc_width:
                    acc[k] = _flip_signed(acc[k], cfg.acc_width, 1 << (b - lo_bit))

    def table(s: _State, lo: int, hi: int) -> np.ndarray:
        return s.model.qtable[c_idx, lo:hi].copy().view("<i4").reshape(-1).astype(np.int64)

    if a["qtable"]:
        bias = pick(off["qtable"], lambda s: table(s, 0, 4))
        mult = pick(off["qtable"], lambda s: table(s, 4, 8))
        shift = pick(off["qtable"], lambda s: (s.model.qtable[c_idx, 8] & 63).astype(np.int64))
        acc = wrap(acc + bias, cfg.acc_width)
    else:
        mult = pick(off["multiplier"], lambda s: np.full(t.shape, s.model.quant["multiplier"], dtype=np.int64))
        shift = pick(off["shift"], lambda s: np.full(t.shape, s.model.quant["shift"], dtype=np.int64))
    zp = pick(off["zero_point"], lambda s: np.full(t.shape, s.model.quant["zero_point"], dtype=np.int64))
    lo = pick(off["clamp_lo"], lambda s: np.full(t.shape, s.model.quant["clamp_lo"], dtype=np.int64))
    hi = pick(off["clamp_hi"], lambda s: np.full(t.shape, s.model.quant["clamp_hi"], dtype=np.int64))
    x = requantize(acc, mult, shift, zp, lo, hi, bool(a["relu"]))
    addr = a["base"] + r_idx * a["row_stride"] + c_idx * a["col_stride"]
    st.mem[addr] = (x & 0xFF).astype(np.uint8)


# ------------------------------------------------------------------ injector
class ModelInjector:
    """Inject faults into the cycle model running ``program`` (see the module docstring)."""

    def __init__(self, cfg: AcceleratorConfig, program: Program, timeout_factor: int = 2, early_stop: bool = True):
        self.cfg, self.program = cfg, program
        self.decoupled = cfg.controller is Controller.DECOUPLED
        self.early_stop = early_stop
        self.image = program.image()
        self.out = program.outputs["out"]
        self.timeout_factor = timeout_factor
        self._golden: ModelGolden | None = None

    def covers(self, site) -> bool:
        """Whether this injector models faults in ``site`` (a Site): the campaign plans over these only.
        In-order: every site of MODELED_STRUCTURES; decoupled: those of DECOUPLED_STRUCTURES. With the ABFT
        checksum column the array, the write-back and the compute's sequencing registers are left to the
        RTL injector (the compute simulation has no checksum column), and so are the registers of a unit
        in lockstep (DMR) and of its twin: the comparator sees every one of its outputs (the performance
        counters too), which the model does not follow."""
        if abft(self.cfg) and (site.structure in _ABFT_RTL_ONLY or site.name in _COMPUTE_CTRL):
            return False
        unit = site.name.split(".", 1)[0].removesuffix(TWIN_SUFFIX) if "." in site.name else ""
        if unit in twinned_units(self.cfg):  # a lockstep unit's registers, its twin's: the comparator's
            return False
        if self.decoupled:
            return _decoupled_site(site.name)
        return site.structure in MODELED_STRUCTURES

    def sites(self) -> list:
        """The fault sites this injector models (:meth:`covers`)."""
        return [s for s in model_sites(self.cfg) if self.covers(s)]

    def _fresh(self) -> _State:
        return _State(CycleModel(self.cfg), self.image.copy())

    def golden(self) -> ModelGolden:
        if self._golden is None:
            st = self._fresh()
            instrs, starts, digests = [], [], []
            pc = cycle = 0
            while True:
                ins = decode(int.from_bytes(st.mem[pc:pc + INSTR_BYTES].tobytes(), "little"))
                instrs.append(ins)
                starts.append(cycle)
                digests.append(st.digest())
                cycle += instruction_cycles(self.cfg, ins)
                if ins.op == Opcode.HALT:
                    break
                st.model.execute(ins, st.mem, "golden")
                pc += INSTR_BYTES
            digests.append(st.digest())
            if self.decoupled:  # the units' execute starts, by the scoreboard's schedule: a unit takes an
                # instruction from its queue in the schedule's start cycle, and its execute counter is 0 in
                # the next (fault by fault against the RTL, tests/test_fi_rtl.py)
                sched = schedule(self.cfg, instrs, queue_depth=self.cfg.queue_depth)
                cycle, starts = sched.cycles, [x + 1 if x >= 0 else x for x in sched.start]
            self._golden = ModelGolden(cycle, instrs, starts, digests, self.out.read(st.mem))
        return self._golden

    def _state_before(self, index: int) -> _State:
        st = self._fresh()
        for ins in self.golden().instructions[:index]:
            st.model.execute(ins, st.mem, "replay")
        return st

    def inject(self, faults: Sequence[Fault]) -> list[InjectionResult]:
        """The outcome of each fault. A fault in a memory with a code (:mod:`hwgen.safety`) is first taken
        through the code (:meth:`_through_code`): a consumed code word that the decoder flags makes the
        fault ``detected``; what the decoder leaves wrong is injected as a fault of the data; a consumed
        corrected word makes a run that is otherwise masked ``corrected``."""
        results: list[InjectionResult | None] = [None] * len(faults)
        plain, plain_idx, corrected = [], [], []
        for i, f in enumerate(faults):
            if f.site == "acc_buf" and abft(self.cfg):
                results[i] = self._through_abft(f)
                continue
            if self.cfg.mechanism(f.site) is None:
                plain.append(f)
                plain_idx.append(i)
                corrected.append(False)
                continue
            result, data_fault, was_corrected = self._through_code(f)
            if result is not None:
                results[i] = result
            else:
                plain.append(data_fault)
                plain_idx.append(i)
                corrected.append(was_corrected)
        for i, fixed, r in zip(plain_idx, corrected, self._inject_data(plain)):
            results[i] = InjectionResult("corrected", r.cycles, r.early_stop, "corrected on read") \
                if fixed and r.outcome == "masked" else r
        return results  # type: ignore[return-value]

    def _through_code(self, f: Fault) -> tuple[InjectionResult | None, Fault | None, bool]:
        """(a final result, or None and the fault of the data bits left wrong after decoding, whether a
        consumed code word was corrected) for a fault ``f`` in a protected memory (its bits count stored
        bits). A code word is consumed when a lane of it is read at or after the fault and before that
        lane's next write (:mod:`fault_injection.access_times`)."""
        if f.model not in ("seu", "mbu"):
            raise ValueError(f"fault model '{f.model}' is not supported by the cycle-model injector")
        layout = memory_layouts(self.cfg)[f.site]
        g = self.golden()
        every = code_effects(layout, f.bit, f.nbits)
        effects = [e for e in every if self._consumed(f.cycle, [Lane(f.site, f.word, x) for x in e.lanes])]
        if any(e.detected for e in effects):
            return InjectionResult("detected", g.cycles, False, "detected on read"), None, False
        corrected = any(e.corrected for e in effects)
        wrong = sorted(b for e in every if not e.detected
                       for b in data_view_bits(layout, e))
        if not wrong:
            outcome = "corrected" if corrected else "masked"
            return InjectionResult(outcome, g.cycles, True, "corrected on read" if corrected else
                                   "no data bit wrong after the code, or never read"), None, corrected
        if wrong != list(range(wrong[0], wrong[-1] + 1)):
            raise ValueError(f"fault {f}: the data bits left wrong by the code are not contiguous (not modeled)")
        return None, Fault(f.site, f.model, f.cycle, wrong[0], word=f.word, nbits=len(wrong)), corrected

    def _through_abft(self, f: Fault) -> InjectionResult:
        """A fault in the accumulator buffer of an array with the ABFT checksum (lane C of each row): after
        the row's code, if any, a row left wrong is detected by the first store that reads it (every beat
        checks the whole row: a contiguous flip of at most acc_width bits never keeps a row's sum equal
        to its checksum, since the lowest flipped bit of the data and of the checksum differ), unless a
        compute overwrites it first; an accumulating compute carries the error along (it adds to the
        wrong value, and the checksum lane keeps its own sum), unless it read the row before the fault."""
        g = self.golden()
        layout = memory_layouts(self.cfg)["acc_buf"]
        corrected, wrong = False, False
        if layout.mechanism is None:
            wrong = f.bit < layout.word_bits
        else:
            read = self._row_checked(f.cycle, f.word, stores_only=False)  # the row's decoder sees it
            for e in code_effects(layout, f.bit, f.nbits) if read else ():
                if e.detected:
                    return InjectionResult("detected", g.cycles, False, "detected on read")
                corrected |= e.corrected
                wrong |= e.residual != 0
        if wrong and self._row_checked(f.cycle, f.word, stores_only=True):
            return InjectionResult("detected", g.cycles, False, "checksum mismatch")
        if corrected:
            return InjectionResult("corrected", g.cycles, False, "corrected on read")
        return InjectionResult("masked", g.cycles, True, "overwritten or never read")

    def _row_checked(self, cycle: int, row: int, stores_only: bool) -> bool:
        """Whether accumulator row ``row`` is read at or after ``cycle`` before a compute overwrites it:
        by a store (``stores_only``), or by any reader (the code's decoder); an accumulating compute that
        reads it at or after ``cycle`` carries it to its write."""
        g = self.golden()
        for ins, s in zip(g.instructions, self._exec_starts()):
            if s < 0:
                continue
            acc = accesses(self.cfg, ins, Lane("acc_buf", row, 0))
            if ins.op == Opcode.STORE and any(s + r >= cycle for r in acc.reads):
                return True
            if ins.op == Opcode.COMPUTE and acc.writes and s + acc.writes[0] >= cycle:
                if not (acc.reads and s + acc.reads[0] >= cycle):
                    return False  # overwritten with a value computed before the fault
                if not stores_only:
                    return True
        return False

    def _exec_starts(self) -> list[int]:
        """Each instruction's first execute cycle (the origin of :func:`access_times.accesses`)."""
        g = self.golden()
        if self.decoupled:
            return list(g.starts)
        off = fetch_cycles(self.cfg) + DECODE_CYCLES
        return [s + off for s in g.starts]

    def _consumed(self, cycle: int, lanes: list[Lane]) -> bool:
        """Whether any of ``lanes`` is read at or after ``cycle`` before its next write."""
        g = self.golden()
        starts = self._exec_starts()
        for x in lanes:
            for ins, s in zip(g.instructions, starts):
                if s < 0:  # (decoupled: never scheduled, the halt)
                    continue
                acc = accesses(self.cfg, ins, x)
                reads = [s + r for r in acc.reads if s + r >= cycle]
                writes = [s + w for w in acc.writes if s + w >= cycle]
                if reads and (not writes or min(reads) < min(writes)):
                    return True
                if writes:
                    break
        return False

    def _inject_data(self, faults: Sequence[Fault]) -> list[InjectionResult]:
        """The outcomes of faults on the model's data (no code in the way)."""
        if self.decoupled:
            return self._inject_decoupled(faults)
        g = self.golden()
        order = sorted(range(len(faults)), key=lambda i: faults[i].cycle)
        results: list[InjectionResult | None] = [None] * len(faults)
        st = self._fresh()
        idx = 0
        for fi in order:
            f = faults[fi]
            if f.structure not in MODELED_STRUCTURES and f.site not in _COMPUTE_CTRL:
                raise ValueError(f"fault site '{f.site}' ({f.structure}) is not modeled by the cycle-model injector")
            if f.model not in ("seu", "mbu"):
                raise ValueError(f"fault model '{f.model}' is not supported by the cycle-model injector")
            i = max(0, int(np.searchsorted(g.starts, f.cycle, side="right")) - 1)
            while idx < i:  # advance the golden state to the boundary before instruction i
                st.model.execute(g.instructions[idx], st.mem, "golden")
                idx += 1
            results[fi] = self._one(f, i, st.copy())
        return results  # type: ignore[return-value]

    def _one(self, f: Fault, i: int, st: _State) -> InjectionResult:
        cfg, g = self.cfg, self.golden()
        ins = g.instructions[i]
        exec_start = g.starts[i] + fetch_cycles(cfg) + DECODE_CYCLES
        ec = f.cycle - exec_start  # exec cycle of the fault (negative: during fetch/decode)
        if f.structure == "perf_counters" or f.site == _S["busy_inc"]:
            return InjectionResult("masked", g.cycles, True, "performance counter")
        array_like = f.structure in ("pe_operands", "pe_accumulators", "skew_regs", "write_back") \
            or f.site in _COMPUTE_CTRL
        ended = True
        if ins.op == Opcode.COMPUTE and ec >= 0:
            ended, _ = simulate_compute(cfg, ins, st, f, ec, timeout=self.timeout_factor * g.cycles + 1000)
        elif f.site in (_S["exec_cnt"], _S["exec_last"]) and ec >= 0 and ins.op in (Opcode.LOAD, Opcode.STORE):
            raise ValueError(f"fault in '{f.site}' during a {ins.op.name.lower()} is not modeled")
        elif array_like:  # cleared or reloaded before it is next used
            return InjectionResult("masked", g.cycles, True, "array/compute state outside a compute")
        elif ins.op == Opcode.LOAD and ec >= 0 and self._load_touches(ins, f):
            wc = load_write_cycle(cfg, ins.args, f.word if f.site in ("a_spad", "w_spad") else
                                   int(f.site[len("qtable_c"):]),
                                   f.bit // (cfg.input_width if f.site == "a_spad" else cfg.weight_width
                                             if f.site == "w_spad" else 8))
            if wc is not None and wc >= ec:  # the load writes the bit after the flip: flip first
                _flip_memory(cfg, st, f)
                st.model.execute(ins, st.mem, "faulty")
            else:
                st.model.execute(ins, st.mem, "faulty")
                _flip_memory(cfg, st, f)
        elif ins.op == Opcode.STORE and ec >= 0:
            _store(cfg, ins, st, f, ec)
        else:
            if ins.op == Opcode.HALT:
                return InjectionResult("masked", g.cycles, True, "after the last instruction")
            if ec < 0:  # during fetch/decode: the flip is there before the instruction executes
                _flip_memory(cfg, st, f)
                st.model.execute(ins, st.mem, "faulty")
            else:
                st.model.execute(ins, st.mem, "faulty")
                _flip_memory(cfg, st, f)
        if not ended:
            return InjectionResult("due", self.timeout_factor * g.cycles, False, "compute did not end")
        next_check = i + 1  # compare with the golden state at doubling distances (a digest costs a full hash)
        for j in range(i + 1, len(g.instructions)):
            if self.early_stop and j == next_check:
                if st.digest() == g.digests[j]:
                    return InjectionResult("masked", g.starts[j], True, "state re-converged")
                next_check = i + 2 * (j - i)
            if g.instructions[j].op == Opcode.HALT:
                break
            st.model.execute(g.instructions[j], st.mem, "faulty")
        outcome = "sdc" if not np.array_equal(self.out.read(st.mem), g.output) else "masked"
        return InjectionResult(outcome, g.cycles, False, "")

    @staticmethod
    def _load_touches(ins: Instruction, f: Fault) -> bool:
        t = ins.args["target"]
        return (t == LoadTarget.A and f.site == "a_spad") or (loads_w(t) and f.site == "w_spad") or \
            (t == LoadTarget.Q and f.site.startswith("qtable_c"))

    # ------------------------------------------------------- the decoupled controller
    def _inject_decoupled(self, faults: Sequence[Fault]) -> list[InjectionResult]:
        """Memory and quantization faults on the decoupled controller, whose units run several
        instructions at once: each flipped lane is seen by the reads of it from the fault's cycle until
        the next write of it (:mod:`fault_injection.access_times`). The scoreboard orders every
        conflicting pair of accesses as the program does, so those readers precede that write in the
        program, and the instructions before the first of them run as in the golden run."""
        g = self.golden()
        plans = []
        for f in faults:
            if f.structure == "perf_counters":
                plans.append({})
                continue
            if not _decoupled_site(f.site):
                raise ValueError(f"fault site '{f.site}' ({f.structure}) is not modeled by the cycle-model injector "
                                 f"on the decoupled controller")
            if f.model not in ("seu", "mbu"):
                raise ValueError(f"fault model '{f.model}' is not supported by the cycle-model injector")
            plans.append(self._readers(f))
        order = sorted(range(len(faults)), key=lambda i: min(plans[i], default=len(g.instructions)))
        results: list[InjectionResult | None] = [None] * len(faults)
        st = self._fresh()
        idx = 0
        for fi in order:
            readers = plans[fi]
            if not readers:
                results[fi] = InjectionResult("masked", g.cycles, True, "performance counter"
                                              if faults[fi].structure == "perf_counters" else "overwritten or never read")
                continue
            first = min(readers)
            while idx < first:
                st.model.execute(g.instructions[idx], st.mem, "golden")
                idx += 1
            results[fi] = self._one_decoupled(faults[fi], readers, st.copy())
        return results  # type: ignore[return-value]

    def _readers(self, f: Fault) -> dict[int, tuple[Fault, bool]]:
        """Instruction index -> (the part of ``f`` it reads flipped, whether it then writes those lanes)."""
        cfg, g = self.cfg, self.golden()
        lanes = _lanes(cfg, f)
        hits: dict[int, list[tuple[Lane, bool]]] = {}
        for x in lanes:
            window_end, found = None, []
            for j, (ins, s) in enumerate(zip(g.instructions, g.starts)):
                if s < 0 or (window_end is not None and s > window_end):
                    continue
                acc = accesses(cfg, ins, x)
                if not acc.reads and not acc.writes:
                    continue
                reads = [s + r for r in acc.reads if s + r >= f.cycle]
                writes = [s + w for w in acc.writes if s + w >= f.cycle]
                if writes and (window_end is None or min(writes) < window_end):
                    window_end = min(writes)
                if reads:
                    found.append((j, min(reads), bool(acc.writes)))
            for j, t, writes in found:
                if window_end is None or t < window_end:
                    hits.setdefault(j, []).append((x, writes))
        out = {}
        for j, xs in hits.items():
            sub = _sub_fault(cfg, f, [x for x, _ in xs])
            out[j] = (sub, any(w for _, w in xs))
        return out

    def _one_decoupled(self, f: Fault, readers: dict[int, tuple[Fault, bool]], st: _State) -> InjectionResult:
        cfg, g = self.cfg, self.golden()
        first, last = min(readers), max(readers)
        next_check = last + 1
        for j in range(first, len(g.instructions)):
            ins = g.instructions[j]
            if self.early_stop and j == next_check:
                if st.digest() == g.digests[j]:
                    return InjectionResult("masked", g.starts[j], True, "state re-converged")
                next_check = last + 2 * (j - last)
            if ins.op == Opcode.HALT:
                break
            hit = readers.get(j)
            if hit is None:
                st.model.execute(ins, st.mem, "faulty")
                continue
            sub, writes = hit
            if ins.op == Opcode.STORE:
                _store(cfg, ins, st, sub, f.cycle - g.starts[j])  # reads before the fault see the old value
                _flip_memory(cfg, st, sub)
            else:
                _flip_memory(cfg, st, sub)
                st.model.execute(ins, st.mem, "faulty")
                if not writes:  # a read-only pass: the flip stays for the readers after it, not in this state
                    _flip_memory(cfg, st, sub)
        outcome = "sdc" if not np.array_equal(self.out.read(st.mem), g.output) else "masked"
        return InjectionResult(outcome, g.cycles, False, "")


def _decoupled_site(name: str) -> bool:
    """Whether the decoupled injector models site ``name``: a site of DECOUPLED_STRUCTURES other than a
    read-port register (whose one reader is the instruction of that cycle)."""
    return structure_of(name) in DECOUPLED_STRUCTURES and READ_PORT_SUFFIX not in name


def _lane_width(cfg: AcceleratorConfig, site: str) -> int:
    """Bits of one lane of a memory word (a quantization-table byte: 8; a quantization register: all)."""
    if site in _QUANT:
        return _REG[site].width(cfg)
    return {"a_spad": cfg.input_width, "w_spad": cfg.weight_width, "acc_buf": cfg.acc_width}.get(site, 8)


def _lanes(cfg: AcceleratorConfig, f: Fault) -> list[Lane]:
    """The lanes a fault flips (bits beyond the word are not state: left out)."""
    if f.site in _QUANT:
        return [Lane("quant", _QUANT[f.site][0], 0)]
    w = _lane_width(cfg, f.site)
    if f.site.startswith("qtable_c"):
        structure, word, count = "qtable", int(f.site[len("qtable_c"):]), QTABLE_BYTES
    else:
        structure, word = f.site, f.word
        count = cfg.rows if f.site == "a_spad" else cfg.cols
    return [Lane(structure, word, k) for k in sorted({b // w for b in range(f.bit, f.bit + f.nbits)}) if k < count]


def _sub_fault(cfg: AcceleratorConfig, f: Fault, lanes: list[Lane]) -> Fault:
    """The bits of ``f`` in ``lanes`` (contiguous lanes: a multi-bit upset's lanes are neighbours)."""
    if f.site in _QUANT:
        return f
    w = _lane_width(cfg, f.site)
    ks = sorted(x.lane for x in lanes)
    if ks != list(range(ks[0], ks[-1] + 1)):
        raise ValueError(f"fault {f}: its lanes are read at different times by one instruction (not modeled)")
    lo, hi = max(f.bit, ks[0] * w), min(f.bit + f.nbits, (ks[-1] + 1) * w)
    return Fault(f.site, f.model, f.cycle, lo, word=f.word, nbits=hi - lo)
