"""Safety mechanisms of the memories (hwgen.safety, hwgen.ecc): the codes, their hardware, the configuration.

* The Python codes against their definition: SECDED corrects every single flip and detects every double
  flip of a code word (exhaustively at 8 data bits, sampled at 256), parity detects every single flip.
* The generated encoders and decoders (Amaranth simulation) equal the Python codes on random words with
  zero, one and two flipped stored bits, for per-lane parity, per-lane SECDED and whole-word SECDED.
* The ``safety`` field: every error names the entry and the limit; JSON round trip; unprotected
  configurations keep their keys (their builds stay cached).
* On Verilator, protected designs run random programs exactly as the model (the mechanisms are transparent
  without faults) on a decoupled and an in-order configuration.
* Under amaranth.sim: without faults the status counters stay 0; with DMR, a flipped register of a unit
  either leaves the output right or is detected; with ABFT, a flipped PE register or
  weight skew either leaves the output right or is detected (the checksum column), never an undetected
  wrong output, and a flip in the A skew (an input error every column sees alike) can pass undetected.
"""

import collections
import itertools
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from code_reference import decode_stored, encode_stored
from hwgen.config import AcceleratorConfig, ConfigError
from hwgen.ecc import decode_word, encode_word
from hwgen.hw_facts import memory_layouts
from hwgen.safety import (Mechanism, hamming_positions, memory_layout, normalise_safety, parity, secded_check_bits,
                          secded_decode, secded_encode)


# ------------------------------------------------------------------------------------------ the codes
@pytest.mark.parametrize("k,check", [(1, 3), (4, 4), (8, 5), (32, 7), (64, 8), (256, 10)])
def test_secded_check_bits(k, check):
    assert secded_check_bits(k) == check
    pos = hamming_positions(k)
    assert len(set(pos)) == k and all(p & (p - 1) for p in pos)  # never a check-bit position


def _flip(k: int, data: int, check: int, bit: int) -> tuple[int, int]:
    return (data ^ (1 << bit), check) if bit < k else (data, check ^ (1 << (bit - k)))


def test_secded_corrects_single_and_detects_double_flips_exhaustively_at_8_bits():
    k, n = 8, 8 + secded_check_bits(8)
    for data in range(256):
        check = secded_encode(k, data)
        assert secded_decode(k, data, check) == secded_decode(k, data, check).__class__(data, False, False)
        for b in range(n):
            d, c = _flip(k, data, check, b)
            got = secded_decode(k, d, c)
            assert (got.data, got.corrected, got.detected) == (data, True, False), (data, b)
        for b1, b2 in itertools.combinations(range(n), 2):
            d, c = _flip(k, *_flip(k, data, check, b1), b2)
            got = secded_decode(k, d, c)
            assert got.detected and not got.corrected, (data, b1, b2)


def test_secded_at_256_bits_sampled():
    rng = random.Random(1)
    k, n = 256, 256 + secded_check_bits(256)
    for _ in range(200):
        data = rng.getrandbits(k)
        check = secded_encode(k, data)
        b1, b2 = rng.sample(range(n), 2)
        got = secded_decode(k, *_flip(k, data, check, b1))
        assert (got.data, got.corrected, got.detected) == (data, True, False)
        got = secded_decode(k, *_flip(k, *_flip(k, data, check, b1), b2))
        assert got.detected and not got.corrected


def test_parity_detects_single_flips():
    for data in range(256):
        p = parity(data)
        assert p == bin(data).count("1") % 2
        assert all(parity(data ^ (1 << b)) != p for b in range(8))


# ----------------------------------------------------------------------------------- the hardware
LAYOUTS = [memory_layout("a_spad", Mechanism.PARITY, 4, 8), memory_layout("w_spad", Mechanism.SECDED, 3, 8),
           memory_layout("acc_buf", Mechanism.SECDED, 4, 32), memory_layout("acc_buf", Mechanism.PARITY, 2, 32)]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"{l.mechanism}-{l.codes}x{l.code_data_bits}")
def test_generated_codes_equal_the_python_codes(layout):
    m = Module()
    data_in = Signal(layout.lanes * layout.lane_bits)
    stored_out = Signal(layout.word_bits)
    stored_in = Signal(layout.word_bits)
    m.d.comb += stored_out.eq(encode_word(layout, data_in))
    dec = decode_word(m, layout, stored_in, "t")
    rng = random.Random(layout.word_bits)
    cases = []
    for _ in range(60):
        data = rng.getrandbits(layout.lanes * layout.lane_bits)
        flips = rng.sample(range(layout.word_bits), rng.choice([0, 1, 1, 2]))
        cases.append((data, flips))

    sim = Simulator(m)

    async def bench(ctx):
        for data, flips in cases:
            ctx.set(data_in, data)
            stored = ctx.get(stored_out)
            assert stored == encode_stored(layout, data)
            for b in flips:
                stored ^= 1 << b
            ctx.set(stored_in, stored)
            got = (ctx.get(dec.data), [bool(ctx.get(c)) for c in dec.corrected],
                   [bool(ctx.get(d)) for d in dec.detected])
            assert got == decode_stored(layout, stored), (data, flips)
            if len(flips) == 1 and layout.mechanism is Mechanism.SECDED:
                assert got[0] == data

    sim.add_testbench(bench)
    sim.run()


# ------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("value,match", [
    ("pc=tmr", "'pc': no mechanism can protect this structure; protectable: a_spad, w_spad, acc_buf"),
    ("a_spad=ecc", "'a_spad=ecc': unknown mechanism; known: parity, secded"),
    ("a_spad", "expected STRUCTURE=MECHANISM"),
    ("a_spad=parity,a_spad=secded", "'a_spad': given twice"),
    (3, "must be a mapping"),
])
def test_bad_safety_fields_name_the_entry(value, match):
    with pytest.raises(ConfigError, match="field 'safety'.*" + match.replace("(", r"\(").replace(")", r"\)")):
        AcceleratorConfig(name="bad", safety=value)


def test_safety_round_trips_and_keeps_unprotected_keys():
    cfg = AcceleratorConfig(name="p", safety={"acc_buf": "secded", "a_spad": "parity"})
    assert cfg.safety == (("a_spad", Mechanism.PARITY), ("acc_buf", Mechanism.SECDED))
    assert AcceleratorConfig.from_json(cfg.to_json()) == cfg
    assert cfg.mechanism("acc_buf") is Mechanism.SECDED and cfg.mechanism("w_spad") is None
    assert "safety" not in AcceleratorConfig().to_json()
    assert normalise_safety("acc_buf=secded, a_spad=parity") == cfg.safety
    lay = memory_layouts(cfg)
    assert (lay["a_spad"].word_bits, lay["w_spad"].word_bits, lay["acc_buf"].word_bits) == (8 * 9, 64, 256 + 10)


# ---------------------------------------------------------------------------------------- Verilator
PROTECTED = [
    AcceleratorConfig(name="safe4x4", rows=4, cols=4, a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                      host_port_width=32,
                      safety="a_spad=parity,w_spad=secded,acc_buf=secded,array=abft,ctrl=dmr,load=dmr"),
    AcceleratorConfig(name="safe3x5io", rows=3, cols=5, controller="in-order", a_spad_depth=32, w_spad_depth=32,
                      acc_depth=16, host_port_width=16,
                      safety="a_spad=secded,w_spad=parity,acc_buf=parity,array=abft,compute=dmr,store=dmr"),
]


@pytest.mark.rtl
@pytest.mark.parametrize("cfg", PROTECTED, ids=lambda c: c.name)
def test_protected_designs_run_random_programs_exactly(cfg):
    from hwgen.verify import verify_config

    result = verify_config(cfg, 24, seed=3)
    bad = [(c.name, c.problems) for c in result.checks if c.problems]
    assert not bad, bad
    assert len(result.checks) == 24


# ------------------------------------------------------------------------------- amaranth.sim: ABFT
def _abft_case(dataflow: str):
    import numpy as np

    from mappings.lowering import lower_gemm
    from sim.reference import Quant

    cfg = AcceleratorConfig(name=f"abft{dataflow}", rows=2, cols=3, dataflow=dataflow, a_spad_depth=16,
                            w_spad_depth=16, acc_depth=8, host_port_width=16, safety="array=abft")
    rng = np.random.default_rng(4)
    prog = lower_gemm(cfg, rng.integers(-8, 8, (4, 6)), rng.integers(-8, 8, (6, 3)),
                      Quant(1, 2, 0, -128, 127, False), dataflow)
    return cfg, prog


def _flip_at(cycle: int, site):
    def poke(ctx, dut, c):
        if c == cycle:
            sig = site(dut)
            ctx.set(sig, ctx.get(sig) ^ 1)
    return poke


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_abft_detects_every_wrong_output_from_the_array(dataflow):
    import numpy as np

    from hwgen.pysim import PySimExecutor
    from sim.cycle import CycleModel

    cfg, prog = _abft_case(dataflow)
    image = prog.image()
    golden = CycleModel(cfg).run(image)
    want = prog.outputs["out"].read(golden.memory)
    clean = PySimExecutor(cfg).run(image)
    assert clean.safety_counters == (0, 0) and np.array_equal(prog.outputs["out"].read(clean.memory), want)
    sites = {"acc r1c1": lambda d: d.array.pes[1][1].acc, "b_reg r0c2": lambda d: d.array.pes[0][2].b_reg,
             "a_reg r1c0": lambda d: d.array.pes[1][0].a_reg, "checksum acc": lambda d: d.array.chk_pes[1].acc}
    seen = collections.Counter()
    for cycle in range(2, golden.cycles, 17):
        for name, site in sites.items():
            r = PySimExecutor(cfg, poke=_flip_at(cycle, site)).run(image)
            wrong = not np.array_equal(prog.outputs["out"].read(r.memory), want)
            detected = r.safety_counters[1] > 0
            assert detected or not wrong, (name, cycle)
            seen["detected" if detected else "masked"] += 1
    assert seen["detected"] > 0


def test_abft_does_not_see_input_errors():
    """A flip in the A skew reaches every column and the checksum alike: a wrong output, not detected."""
    import numpy as np

    from hwgen.pysim import PySimExecutor
    from sim.cycle import CycleModel

    cfg, prog = _abft_case("os")
    image = prog.image()
    golden = CycleModel(cfg).run(image)
    want = prog.outputs["out"].read(golden.memory)
    undetected_sdc = 0
    for cycle in range(0, golden.cycles, 6):
        r = PySimExecutor(cfg, poke=_flip_at(cycle, lambda d: d.array.skew_a[1][0])).run(image)
        if not np.array_equal(prog.outputs["out"].read(r.memory), want) and r.safety_counters[1] == 0:
            undetected_sdc += 1
    assert undetected_sdc > 0


# -------------------------------------------------------------------------------- amaranth.sim: DMR
@pytest.mark.parametrize("controller", ["in-order", "decoupled"])
def test_dmr_detects_every_wrong_output_from_a_unit(controller):
    import numpy as np

    from hwgen.pysim import PySimExecutor
    from mappings.lowering import lower_gemm
    from sim.cycle import CycleModel
    from sim.reference import Quant

    cfg = AcceleratorConfig(name=f"dmr{controller[0]}", rows=2, cols=2, controller=controller, a_spad_depth=16,
                            w_spad_depth=16, acc_depth=8, host_port_width=32,
                            safety="ctrl=dmr,load=dmr,compute=dmr,store=dmr")
    rng = np.random.default_rng(5)
    prog = lower_gemm(cfg, rng.integers(-8, 8, (3, 5)), rng.integers(-8, 8, (5, 2)),
                      Quant(1, 2, 0, -128, 127, False), "os")
    image = prog.image()
    golden = CycleModel(cfg).run(image)
    want = prog.outputs["out"].read(golden.memory)
    clean = PySimExecutor(cfg).run(image)
    assert clean.safety_counters == (0, 0) and np.array_equal(prog.outputs["out"].read(clean.memory), want)
    sites = {"ctrl pc": lambda d: d.ctrl.regs.pc, "load ld_ptr": lambda d: d.load.regs.ld_ptr,
             "store st_ptr": lambda d: d.store.regs.st_ptr, "twin pc": lambda d: d.twins["ctrl"].regs.pc}
    seen = collections.Counter()
    for cycle in range(1, golden.cycles, 23):
        for name, site in sites.items():
            r = PySimExecutor(cfg, max_cycles=3 * golden.cycles, poke=_flip_at(cycle, site)).run(image)
            wrong = r.timed_out or r.error or not np.array_equal(prog.outputs["out"].read(r.memory), want)
            detected = r.safety_counters[1] > 0
            assert detected or not wrong, (name, cycle)
            seen["detected" if detected else "masked"] += 1
    assert seen["detected"] > 0
