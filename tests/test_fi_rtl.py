"""The RTL fault injector (fault_injection.rtl_injector): native injection (snapshot/restore) with early
stop and its shortcuts (memory liveness, early SDC stop), checked against full runs, the cycle model
and, for a few faults, the cocotb harness.

One small configuration (4x4, a 16x16x16 GEMM: about a thousand cycles); the
native build takes seconds (ccache) and is shared by every test in the group.
"""

from collections import Counter

import numpy as np
import pytest

from fault_injection.faults import Fault
from fault_injection.rtl_control import OUTCOME_OUTPUTS
from fault_injection.rtl_injector import RtlInjector, cocotb_crosscheck, random_state_faults, rtl_state
from fault_injection.rtl_memports import memory_ports
from fault_injection.sites import rtl_sites
from fault_injection.workload import build_workload
from hwgen.config import AcceleratorConfig
from hwgen.isa import Opcode
from sim.cycle import CycleModel, _sign_extend_bytes
from sim.timing import fetch_cycles

pytestmark = [pytest.mark.rtl, pytest.mark.xdist_group("fi-rtl")]

CFG = AcceleratorConfig(name="fi4x4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)
WORKLOAD = "gemm:16x16x16"


@pytest.fixture(scope="module")
def rtl():
    """cfg -> (its workload program, an RtlInjector running it), built once per configuration."""
    opened: dict[str, tuple] = {}

    def get(cfg):
        if cfg.name not in opened:
            program = build_workload(WORKLOAD, cfg, 3)
            opened[cfg.name] = (program, RtlInjector(cfg, program))
        return opened[cfg.name]

    yield get
    for _, injector in opened.values():
        injector.close()


@pytest.fixture(scope="module")
def prog(rtl):
    return rtl(CFG)[0]


@pytest.fixture(scope="module")
def inj(rtl):
    return rtl(CFG)[1]


@pytest.fixture(scope="module")
def trace(prog):
    return CycleModel(CFG).run(prog.image()).trace


def test_state_names_cover_sites():
    """Every site of the inventory names exactly one Verilog state element of the same shape (on the
    decoupled controller too: its two accumulator read registers, the dispatcher's sequencer flops that
    Verilog names after the ports they drive, the shadow-weight registers)."""
    for cfg in (CFG, AcceleratorConfig(name="fiws3x5", rows=3, cols=5, dataflow="ws", host_port_width=32),
                AcceleratorConfig(name="fid2x2", rows=2, cols=2, dataflow="os", controller="decoupled", queue_depth=1),
                AcceleratorConfig(name="fid3x5", rows=3, cols=5, controller="decoupled", queue_depth=3)):
        _, state = rtl_state(cfg)
        sites = rtl_sites(cfg)
        assert len(state.vars) == len(sites)
        for s in sites:
            v = state.var(s.name)
            assert (v.width, v.depth, v.kind) == (s.width, s.depth, s.kind), s.name


def test_golden_matches_model(inj, prog):
    g = inj.golden()
    model = CycleModel(CFG)
    want = model.run(prog.image())
    assert g.cycles == want.cycles and g.busy_pe == want.busy_pe
    np.testing.assert_array_equal(g.memory, want.memory)
    np.testing.assert_array_equal(g.output, prog.outputs["out"].read(want.memory))
    # the state dump reads the scratchpads word by word, lane i at bits [i*w, (i+1)*w)
    st = inj.final_state()
    a = st["a_spad"][:, :CFG.rows].astype(np.uint8)     # int8 lanes, one byte each (input_width 8)
    np.testing.assert_array_equal(_sign_extend_bytes(a, 8), model.a_spad)
    w = st["w_spad"][:, :CFG.cols].astype(np.uint8)
    np.testing.assert_array_equal(_sign_extend_bytes(w, 8), model.w_spad)


def test_overwritten_register_masked_early(inj, trace):
    """Registers that are written before they are read: the state re-converges and the run stops early."""
    g = inj.golden()
    assert trace[0].instruction.op == Opcode.CONFIG
    decode = fetch_cycles(CFG)            # the config's decode cycle writes the q_* registers
    first_compute = next(t for t in trace if t.instruction.op == Opcode.COMPUTE).start
    faults = [Fault("store.q_multiplier", "seu", decode - 1, 7), Fault("store.q_shift", "seu", 0, 2),
              Fault("array.pe_r1_c2.acc", "seu", first_compute - 1, 20),   # cleared when the compute starts
              Fault("store.q_multiplier", "stuck1", 1, 3, duration=decode - 1)]
    for f, r in zip(faults, inj.inject(faults)):
        assert r.outcome == "masked" and r.early_stop and r.detail == "state re-converged", (f, r)
        assert r.cycles < g.cycles


def test_a_spad_flip_read_later_is_sdc(inj, prog, trace):
    """A flip in an A-scratchpad word between its load and the compute that reads it: SDC, and the faulty
    output equals a model run with the same word corrupted."""
    load_i = next(i for i, t in enumerate(trace)
                  if t.instruction.op == Opcode.LOAD and t.instruction.args["target"] == 0)
    load = trace[load_i]
    word, lane, bit = load.instruction.args["spad_addr"], 1, 6
    f = Fault("a_spad", "seu", load.end, lane * CFG.input_width + bit, word=word)
    (res, mem), = inj.inject_memories([f])
    assert res.outcome == "sdc" and res.detail == "output" and not res.early_stop
    # the model: execute up to the load, flip the same bit, execute the rest
    model = CycleModel(CFG)
    m = prog.image().copy()
    for t in trace[:load_i + 1]:
        model.execute(t.instruction, m, "golden")
    raw = np.array([model.a_spad[word, lane] & 0xFF], dtype=np.uint8) ^ np.uint8(1 << bit)
    model.a_spad[word, lane] = _sign_extend_bytes(raw, CFG.input_width)[0]
    for t in trace[load_i + 1:]:
        if t.instruction.op != Opcode.HALT:
            model.execute(t.instruction, m, "faulty")
    out = prog.outputs["out"]
    assert not np.array_equal(out.read(m), inj.golden().output)
    np.testing.assert_array_equal(out.read(mem), out.read(m))


def test_control_faults_due(inj, trace):
    """A corrupted opcode raises the error flag; a corrupted FSM state or pc hangs the controller."""
    g = inj.golden()
    decode = fetch_cycles(CFG)
    faults = [Fault("ctrl.instr_reg", "seu", decode, 3),        # config (4) -> 12: not an opcode
              Fault("ctrl.fsm_state", "seu", 100, 2),
              Fault("ctrl.pc", "seu", trace[2].start, 30)]        # fetch from far outside the memory
    res = inj.inject(faults)
    assert (res[0].outcome, res[0].detail) == ("due", "error") and res[0].cycles == decode + 1
    assert res[1].outcome == "due" and res[1].detail in ("timeout", "error", "mem_oob")
    assert res[2].outcome == "due", res[2]
    assert all(r.cycles <= inj.timeout_cycles() for r in res)
    assert inj.timeout_cycles() == 2 * g.cycles + 1000


def test_stuck_at_windows(inj, trace):
    g = inj.golden()
    comp = next(t for t in trace if t.instruction.op == Opcode.COMPUTE)
    faults = [
        # a-feed valid forced low through a whole compute: the operands never enter the array
        Fault("compute.feed_a_valid", "stuck0", comp.start, 0, duration=comp.end - comp.start),
        # the same for one cycle in the middle of the compute's feed phase
        Fault("compute.feed_a_valid", "stuck0", comp.start + fetch_cycles(CFG) + 3, 0, duration=1),
        # forcing a bit to the value it already has changes nothing: masked at once
        Fault("ctrl.error_flag", "stuck0", 10, 0, duration=50),
        # a spad word stuck over a long window spanning loads and computes
        Fault("w_spad", "stuck1", comp.start - 5, 0, word=comp.instruction.args["w_addr"], duration=g.cycles),
    ]
    res = inj.inject(faults)
    assert res[0].outcome == "sdc", res[0]
    assert res[1].outcome in ("sdc", "masked")
    assert res[2] == type(res[2])("masked", 60, True, "state re-converged")
    assert res[3].outcome == "sdc", res[3]
    # windows: a stuck-at never re-converges inside its window
    long = inj.inject([Fault("store.q_multiplier", "stuck1", 0, 3, duration=fetch_cycles(CFG) + 5)])[0]
    assert long.outcome in ("sdc", "masked") and (not long.early_stop or long.cycles >= fetch_cycles(CFG) + 5)


def _random_faults(inj, n, seed):
    return random_state_faults(inj, n, seed, ("seu", "seu", "mbu", "stuck0", "stuck1"),
                               cycles=inj.golden().cycles + 20, max_duration=39)


def test_deterministic_and_early_stop_agrees(inj):
    faults = _random_faults(inj, 300, seed=7)
    a = inj.inject(faults)
    b = inj.inject(faults, jobs=1)
    assert a == b
    full = inj.inject(faults, early_stop=False)
    assert [r.outcome for r in full] == [r.outcome for r in a]
    assert not any(r.early_stop and r.detail != "after the end" for r in full)
    assert any(r.early_stop and r.detail == "state re-converged" for r in a)
    counts = Counter(r.outcome for r in a)
    assert counts["masked"] and counts["sdc"]
    # a run that was not stopped early ends at the same cycle either way
    for x, y in zip(a, full):
        if not x.early_stop:
            assert x == y


def test_shortcuts_equal_full_runs(inj, trace):
    """Every shortcut of early stop gives each fault the outcome of its full run (every fault model):
    state re-convergence, a memory flip never read before overwritten ("not read again", no simulation),
    a flip moved to its word's next read (the same run from there: same detail and end cycle), the
    early SDC stop at a final wrong output byte with the control state golden's. Each one fires here,
    and none of them with early_stop=False."""
    st = next(t for t in trace if t.instruction.op == Opcode.STORE)
    row = st.instruction.args["o_addr"]
    targeted = [Fault("acc_buf", "seu", st.start, 24, word=row),                  # read by the store: SDC
                Fault("acc_buf", "mbu", st.start, 30, word=row, nbits=3),
                Fault("a_spad", "seu", 1, 3, word=CFG.a_spad_depth - 1)]          # never used: not read again
    faults = targeted + _random_faults(inj, 400, seed=13)
    early = inj.inject(faults)
    full = inj.inject(faults, early_stop=False)
    bad = [(f, a, b) for f, a, b in zip(faults, early, full) if a.outcome != b.outcome]
    assert not bad, f"{len(bad)} of {len(faults)} differ, first: {bad[:3]}"
    for a, b in zip(early, full):
        if not a.early_stop:
            assert a == b                       # simulated to the end (moved or not): the very same run
    details = Counter((r.detail, r.early_stop) for r in early)
    assert details[("not read again", True)] and details[("output", True)] and details[("state re-converged", True)]
    assert early[0].outcome == "sdc" and early[2] == type(early[2])("masked", 1, True, "not read again")
    assert not any(r.early_stop and r.detail != "after the end" for r in full)
    assert Counter(f.model for f in faults).keys() == {"seu", "mbu", "stuck0", "stuck1"}


def test_memory_ports_and_control_split():
    """The liveness shortcut knows every port of every memory (a memory used any other way gets none),
    and the control split holds the controller's state and none of the datapath's."""
    _, state = rtl_state(CFG)
    mems = {i for i, v in enumerate(state.vars) if v.depth > 1}
    assert {r.memory for r in state.ports.reads} == mems == {w.memory for w in state.ports.lanes}
    acc = state.index("acc_buf")
    assert sum(r.memory == acc for r in state.ports.reads) == 2      # compute and store read ports
    v = ("module top(clk);\n  reg [7:0] m [3:0];\n  reg [7:0] q;\n  wire [1:0] ra;\n  wire [1:0] wa;\n"
         "  wire we;\n  always @(posedge clk) begin\n    if (we)\n      m[wa] <= 8'h1;\n  end\n"
         "  always @(posedge clk) begin\n    q <= m[ra];\n  end\n{extra}endmodule\n")
    assert len(memory_ports(v.format(extra=""), "top", [(0, "m", 8, 4)]).reads) == 1
    assert memory_ports(v.format(extra="  assign x = m[2];\n"), "top", [(0, "m", 8, 4)]).reads == ()
    ctl = state.control
    assert ctl is not None and "fetch_rdata" in ctl.inputs and "st_wdata" not in OUTCOME_OUTPUTS
    names = {state.vars[i].aliases[0] for i in ctl.vars}
    assert "ctrl.fsm_state" in names and "ctrl.instr_reg" in names
    assert not any(n.startswith(("array.", "a_spad", "w_spad", "acc_buf", "qtable")) for n in names)


def test_bad_faults_rejected(inj):
    with pytest.raises(KeyError):
        inj.inject([Fault("no_such_reg", "seu", 1, 0)])
    with pytest.raises(ValueError):
        inj.inject([Fault("ctrl.pc", "seu", 1, 32)])
    with pytest.raises(ValueError):
        inj.inject([Fault("a_spad", "seu", 1, 0, word=CFG.a_spad_depth)])


def test_cocotb_crosscheck(inj, prog, trace):
    """Same fault, same outcome: the native injector against cocotb deposits on the Verilog harness."""
    comp = next(t for t in trace if t.instruction.op == Opcode.COMPUTE)
    store = next(t for t in trace if t.instruction.op == Opcode.STORE)
    faults = [Fault("ctrl.pc", "seu", 10, 5), Fault("array.pe_r0_c1.acc", "seu", comp.start + 9, 3),
              Fault("a_spad", "seu", 50, 2, word=3), Fault("ctrl.fsm_state", "seu", 100, 2),
              Fault("ctrl.instr_reg", "seu", fetch_cycles(CFG), 3), Fault("array.skew_a_r2_1", "seu", comp.start + 8, 7),
              Fault("a_spad.rd_data", "mbu", comp.start + 7, 3, nbits=4),
              Fault("acc_buf", "seu", store.start, 30, word=store.instruction.args["o_addr"]),
              Fault("store.q_multiplier", "stuck1", 0, 3, duration=fetch_cycles(CFG) + 2),
              Fault("compute.feed_b_valid", "stuck0", comp.start, 0, duration=6)]
    native, cocotb = cocotb_crosscheck(CFG, prog, faults, injector=inj)
    for f, a, b in zip(faults, native, cocotb):
        assert a.outcome == b.outcome, (f, a, b)
        if a.early_stop and a.outcome == "masked":
            assert b.detail == "same output", (f, a, b)
        else:                                   # run to the end, or stopped as an SDC at the golden halt
            assert (a.detail, a.cycles) == (b.detail, b.cycles), (f, a, b)
    assert {r.outcome for r in native} == {"masked", "sdc", "due"}


# ---------------------------------------------------------------- the decoupled controller
DEC = AcceleratorConfig(name="fid4x4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64,
                        controller="decoupled")


def test_decoupled_golden_matches_model(rtl):
    """The golden run equals the cycle model on the decoupled config (sim.schedule's cycles)."""
    dec_prog, dec_inj = rtl(DEC)
    g = dec_inj.golden()
    want = CycleModel(DEC).run(dec_prog.image())
    assert g.cycles == want.cycles and g.busy_pe == want.busy_pe
    np.testing.assert_array_equal(g.memory, want.memory)


def test_decoupled_faults(rtl):
    """An accumulator row corrupted after its last compute and before the store that reads it is an SDC;
    a flip in the store unit's own accumulator read register while no store runs is masked; random
    faults over every site (the dispatcher's queues, tails, the shadow weights) classify
    deterministically, with and without early stop."""
    dec_prog, dec_inj = rtl(DEC)
    g = dec_inj.golden()
    trace = CycleModel(DEC).run(dec_prog.image()).trace
    st = next(t for t in trace if t.instruction.op == Opcode.STORE)
    row = st.instruction.args["o_addr"]
    flip = Fault("acc_buf", "seu", st.start, 24, word=row)   # lane 0, bit 24: far beyond the requantized range
    idle = Fault("acc_buf.rd_data1", "seu", 2, 5)            # the store unit's read register, before any store
    res = dec_inj.inject([flip, idle])
    assert (res[0].outcome, res[0].detail) == ("sdc", "output"), res[0]
    assert res[1].outcome == "masked", res[1]
    faults = _random_faults(dec_inj, 200, seed=11)
    a = dec_inj.inject(faults)
    assert a == dec_inj.inject(faults, jobs=1)
    assert [r.outcome for r in dec_inj.inject(faults, early_stop=False)] == [r.outcome for r in a]
    counts = Counter(r.outcome for r in a)
    assert counts["masked"] and counts["sdc"] and g.cycles > 0


def _memory_faults(cfg, trace, rng, per_instruction: int = 6) -> list:
    """Faults in the words, table bytes and quantization registers each instruction touches, at cycles
    from one before its first execute cycle to one after its last (the edges of the flip's window)."""
    acc_w = cfg.acc_width
    quant = [(f"store.q_{k}", w) for k, w in (("multiplier", 32), ("shift", 6), ("zero_point", 16),
                                              ("clamp_lo", 16), ("clamp_hi", 16))]
    out = []
    for t in trace:
        ins, a = t.instruction, t.instruction.args
        if ins.op not in (Opcode.LOAD, Opcode.COMPUTE, Opcode.STORE, Opcode.CONFIG):
            continue
        for _ in range(per_instruction):
            cycle = int(rng.integers(t.start - 1, t.end + 2))
            model = "mbu" if rng.random() < 0.3 else "seu"
            nbits = int(rng.integers(2, 4)) if model == "mbu" else 1
            if ins.op == Opcode.LOAD and a["target"] in (0, 1):
                site, width = ("a_spad", cfg.input_width * cfg.rows) if a["target"] == 0 else \
                    ("w_spad", cfg.weight_width * cfg.cols)
                word = a["spad_addr"] + int(rng.integers(0, a["count"]))
                out.append(Fault(site, model, cycle, int(rng.integers(0, width - nbits)), word=word, nbits=nbits))
            elif ins.op == Opcode.LOAD or (ins.op == Opcode.STORE and a["qtable"] and rng.random() < 0.3):
                out.append(Fault(f"qtable_c{int(rng.integers(0, cfg.cols))}", model, cycle,
                                 int(rng.integers(0, 70)), nbits=nbits))
            elif ins.op == Opcode.COMPUTE:
                k = int(rng.integers(0, 3))
                if k == 0:
                    word = a["a_addr"] + int(rng.integers(0, max(a["depth"], a["rows"])))
                    out.append(Fault("a_spad", model, cycle, int(rng.integers(0, cfg.input_width * cfg.rows - nbits)),
                                     word=word, nbits=nbits))
                elif k == 1:
                    word = a["w_addr"] + int(rng.integers(0, a["depth"]))
                    out.append(Fault("w_spad", model, cycle, int(rng.integers(0, cfg.weight_width * cfg.cols - nbits)),
                                     word=word, nbits=nbits))
                else:
                    word = a["o_addr"] + int(rng.integers(0, a["rows"]))
                    out.append(Fault("acc_buf", model, cycle, int(rng.integers(0, acc_w * cfg.cols - nbits)),
                                     word=word, nbits=nbits))
            elif ins.op == Opcode.STORE and rng.random() < 0.6:
                word = a["o_addr"] + int(rng.integers(0, a["rows"]))
                out.append(Fault("acc_buf", model, cycle, int(rng.integers(0, acc_w * cfg.cols - nbits)),
                                 word=word, nbits=nbits))
            else:  # a config, or a store reading the registers element by element
                site, width = quant[int(rng.integers(0, len(quant)))]
                out.append(Fault(site, "seu", cycle, int(rng.integers(0, width))))
    return out


@pytest.mark.parametrize("cfg", [DEC, AcceleratorConfig(name="fid3x2os", rows=3, cols=2, dataflow="os",
                                                        a_spad_depth=64, w_spad_depth=64, acc_depth=64,
                                                        controller="decoupled", queue_depth=2)],
                         ids=lambda c: c.name)
def test_decoupled_model_injector_agrees(rtl, cfg):
    """The cycle-model injector on the decoupled controller (memories, the quantization table and
    registers, performance counters) gives the RTL's outcome fault by fault: faults at the edges of
    every instruction's accesses (loads writing, computes and stores reading while other units run),
    and a plan drawn over every site it covers."""
    from fault_injection.model_injector import ModelInjector
    from fault_injection.sampling import plan_faults

    prog, rinj = rtl(cfg)
    model = ModelInjector(cfg, prog)
    g = model.golden()
    assert g.cycles == rinj.golden().cycles
    trace = CycleModel(cfg).run(prog.image()).trace
    faults = _memory_faults(cfg, trace, np.random.default_rng(5))
    faults += plan_faults(model.sites(), g.cycles, n=300, seed=9, models=("seu", "mbu"))
    m_res = model.inject(faults)
    r_res = rinj.inject(faults)
    mismatches = [(f, a, b.outcome) for f, a, b in zip(faults, m_res, r_res) if a.outcome != b.outcome]
    assert not mismatches, f"{len(mismatches)} of {len(faults)} differ, first: {mismatches[:4]}"
    assert sum(a.outcome == "sdc" for a in m_res) > len(faults) // 20
