"""Fault injection into memories with a code (hwgen.safety): what a fault becomes behind the code, and the
model-level injector's outcomes (detected, corrected, or the data error the code leaves).

* :func:`fault_injection.code_faults.code_effects` against the codes decoded from a real stored word
  (encode random data, flip, decode with :func:`hwgen.safety.secded_decode` / parity): the effects are data
  independent, as the linearity argument says.
* The injector: a SECDED-protected memory never yields sdc for single flips; a parity-protected one
  never for single flips either; faults in words no instruction reads after them are masked whatever the
  code; an unprotected configuration gives the same outcome as before on the same data faults.
"""

import collections
import random

import numpy as np
import pytest

from code_reference import decode_stored, encode_stored
from fault_injection.code_faults import code_effects, data_view_bits
from fault_injection.faults import Fault
from fault_injection.model_injector import ModelInjector
from fault_injection.sites import model_sites
from hwgen.config import AcceleratorConfig
from hwgen.hw_facts import memory_layouts
from hwgen.safety import Mechanism, memory_layout
from mappings.lowering import lower_gemm
from sim.reference import Quant


def _decode_real(layout, data_word: int, bit: int, nbits: int):
    """Encode ``data_word``, flip stored bits, decode every code word: (data error mask, corrected, detected)."""
    stored = encode_stored(layout, data_word)
    for b in range(bit, min(bit + nbits, layout.word_bits)):
        stored ^= 1 << b
    data, corr, det = decode_stored(layout, stored)
    return data ^ data_word, any(corr), any(det)

@pytest.mark.parametrize("layout", [memory_layout("a_spad", Mechanism.PARITY, 4, 8),
                                    memory_layout("w_spad", Mechanism.SECDED, 4, 8),
                                    memory_layout("acc_buf", Mechanism.SECDED, 4, 32)],
                         ids=lambda l: f"{l.mechanism}-{l.codes}")
def test_code_effects_equal_decoding_a_real_word(layout):
    rng = random.Random(7)
    for _ in range(400):
        nbits = rng.choice([1, 1, 2, 3])
        bit = rng.randrange(layout.word_bits - nbits + 1)
        data = rng.getrandbits(layout.lanes * layout.lane_bits)
        effects = code_effects(layout, bit, nbits)
        err = 0
        for e in effects:
            for b in data_view_bits(layout, e):
                err |= 1 << b
        det = any(e.detected for e in effects)
        corr = any(e.corrected for e in effects)
        real_err, real_corr, real_det = _decode_real(layout, data, bit, nbits)
        assert (err, corr, det) == (real_err, real_corr, real_det), (bit, nbits)


PROTECTED = AcceleratorConfig(name="safe4x4", rows=4, cols=4, a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                              host_port_width=32, safety="a_spad=parity,w_spad=secded,acc_buf=secded")
PLAIN = AcceleratorConfig(name="plain4x4", rows=4, cols=4, a_spad_depth=32, w_spad_depth=32, acc_depth=16,
                          host_port_width=32)


def _program(cfg):
    rng = np.random.default_rng(0)
    return lower_gemm(cfg, rng.integers(-8, 8, (12, 20)), rng.integers(-8, 8, (20, 10)),
                      Quant(1, 4, 0, -128, 127, False))


def _faults(cfg, site: str, n: int, nbits: int, seed: int, cycles: int) -> list[Fault]:
    s = {x.name: x for x in model_sites(cfg)}[site]
    r = random.Random(seed)
    return [Fault(site, "seu" if nbits == 1 else "mbu", r.randrange(cycles), r.randrange(s.width - nbits + 1),
                  word=r.randrange(s.depth), nbits=nbits) for _ in range(n)]


@pytest.mark.parametrize("site", ["a_spad", "w_spad", "acc_buf"])
def test_single_flips_never_corrupt_a_protected_memory(site):
    inj = ModelInjector(PROTECTED, _program(PROTECTED))
    faults = _faults(PROTECTED, site, 300, 1, 3, inj.golden().cycles)
    got = collections.Counter(r.outcome for r in inj.inject(faults))
    assert got["sdc"] == got["due"] == 0
    caught = "detected" if PROTECTED.mechanism(site) is Mechanism.PARITY else "corrected"
    assert got[caught] > 0 and set(got) <= {"masked", caught}


def test_data_faults_behind_the_code_behave_as_without_it():
    """A parity-protected scratchpad's even double flip in one lane is not seen by the code: its outcome is
    the unprotected design's for the same data bits."""
    prot, plain = ModelInjector(PROTECTED, _program(PROTECTED)), ModelInjector(PLAIN, _program(PLAIN))
    layout = memory_layouts(PROTECTED)["a_spad"]
    cycles = plain.golden().cycles
    assert cycles == prot.golden().cycles
    r = random.Random(5)
    pairs = []
    for _ in range(200):
        lane, b = r.randrange(layout.lanes), r.randrange(layout.lane_bits - 1)
        word, cycle = r.randrange(PROTECTED.a_spad_depth), r.randrange(cycles)
        pairs.append((Fault("a_spad", "mbu", cycle, lane * layout.code_bits + b, word=word, nbits=2),
                      Fault("a_spad", "mbu", cycle, lane * layout.lane_bits + b, word=word, nbits=2)))
    got = [x.outcome for x in prot.inject([p for p, _ in pairs])]
    want = [x.outcome for x in plain.inject([q for _, q in pairs])]
    assert got == want and "sdc" in got


# ---------------------------------------------------------------------------------------- Verilator
RTL_PROTECTED = [
    AcceleratorConfig(name="fipr4x4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=32,
                      host_port_width=32, safety="a_spad=parity,w_spad=secded,acc_buf=secded"),
    AcceleratorConfig(name="fipa4x4", rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=32,
                      host_port_width=32, safety="array=abft,w_spad=parity,ctrl=dmr"),
]


@pytest.mark.rtl
@pytest.mark.parametrize("cfg", RTL_PROTECTED, ids=lambda c: c.name)
def test_model_and_rtl_injectors_agree_behind_the_mechanisms(cfg):
    """Fault by fault, over a plan on every site the model covers (the memories and their check bits, the
    quantization table and registers): the model's outcome through the codes and the checksum equals the
    RTL's, which reads the design's status counters at the end; and the RTL's shortcuts equal full runs on
    every site of the design (DMR twins, checksum column, counters included)."""
    from fault_injection.rtl_injector import RtlInjector
    from fault_injection.sampling import plan_faults
    from fault_injection.sites import rtl_sites
    from fault_injection.workload import build_workload

    prog = build_workload("gemm:16x16x16", cfg, 3)
    model = ModelInjector(cfg, prog)
    g = model.golden()
    with RtlInjector(cfg, prog) as rinj:
        assert rinj.golden().cycles == g.cycles
        faults = plan_faults(model.sites(), g.cycles, n=400, seed=9, models=("seu", "mbu"))
        m_res, r_res = model.inject(faults), rinj.inject(faults)
        every = plan_faults(rtl_sites(cfg), g.cycles, n=300, seed=4, models=("seu", "mbu", "stuck1"))
        early, full = rinj.inject(every), rinj.inject(every, early_stop=False)
    differ = [(f, a.outcome, b.outcome) for f, a, b in zip(faults, m_res, r_res) if a.outcome != b.outcome]
    assert not differ, f"{len(differ)} of {len(faults)} differ, first: {differ[:4]}"
    got = collections.Counter(r.outcome for r in r_res)
    assert got["detected"] > 0 and (got["corrected"] > 0 or cfg.mechanism("acc_buf") is None)
    assert [r.outcome for r in early] == [r.outcome for r in full]
    assert collections.Counter(r.outcome for r in full)["detected"] > 0


@pytest.mark.rtl
def test_protected_campaign_end_to_end(tmp_path, capsys):
    """``hwgen fi run --safety ...`` on the RTL and ``hwgen fi report`` with the ISO 26262 options: the
    mechanisms' outcomes are counted, the metrics use the FIT rates and lifetime given, and contradictory
    FIT options are refused (exit 2)."""
    import json

    from hwgen.cli import main

    cfg = RTL_PROTECTED[0]
    flags = ["--name", cfg.name, "--rows", "4", "--cols", "4", "--a-spad-depth", "64", "--w-spad-depth", "64",
             "--acc-depth", "32", "--host-port-width", "32", "--safety", "a_spad=parity,w_spad=secded,acc_buf=secded"]
    db = tmp_path / "p.sqlite"
    assert main(["fi", "run", *flags, "--workload", "gemm:16x16x16", "--injections", "600", "--db", str(db),
                 "--backend", "rtl", "--jobs", "1", "--no-progress"]) == 0
    assert "detected" in capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["fi", "report", "--db", str(db), "--json", str(out), "--fit-ff", "2e-4", "--fit-mem", "1e-4",
                 "--lifetime-hours", "20000", "--method", "bonferroni"]) == 0
    rep = json.loads(out.read_text())
    assert rep["fit_per_bit_ff"] == 2e-4 and rep["fit_per_bit_mem"] == 1e-4
    totals = collections.Counter()
    for s in rep["structures"]:
        for o in ("corrected", "detected", "sdc"):
            totals[o] += s.get(o, 0)
    assert totals["corrected"] > 0 and totals["detected"] > 0
    assert main(["fi", "report", "--db", str(db), "--fit-per-bit", "1e-4", "--fit-ff", "2e-4"]) == 2
    assert "--fit-per-bit" in capsys.readouterr().err
