"""hwgen.verify.compare_run reports every kind of disagreement between the numpy
reference, the cycle model and an (here fabricated) RTL result; verify_programs
passes the problems through to its result and its echo."""

import dataclasses

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.program import Executor, RunResult
from hwgen.verify import compare_run, verify_config, verify_programs
from mappings.random_programs import random_programs
from sim.cycle import CycleModel

CFG = AcceleratorConfig(name="v2x2", rows=2, cols=2, dataflow="both", a_spad_depth=16, w_spad_depth=16,
                        acc_depth=16, host_port_width=32)


@pytest.fixture(scope="module")
def case():
    prog, expected = random_programs(CFG, 1, seed=5, max_cycles=3000)[0]
    model = CycleModel(CFG).run(prog.image())
    assert np.array_equal(prog.outputs["out"].read(model.memory), expected)
    return prog, expected, model


def _rtl(model, **changes):
    """An RTL result that agrees with ``model`` except for ``changes``."""
    return dataclasses.replace(RunResult(memory=model.memory.copy(), cycles=model.cycles, busy_pe=model.busy_pe,
                                         executor="fake"), **changes)


def test_agreement_has_no_problems(case):
    prog, expected, model = case
    assert compare_run(CFG, prog, expected, model, _rtl(model)) == []
    assert compare_run(CFG, prog, None, model, _rtl(model)) == []
    assert compare_run(CFG, prog, expected, model, None) == []  # model only
    # a result that states only what every executor knows (the flags default to a clean run) agrees too
    minimal = RunResult(memory=model.memory.copy(), cycles=model.cycles, busy_pe=model.busy_pe)
    assert compare_run(CFG, prog, expected, model, minimal) == []


def _one(problems: list[str], needle: str) -> None:
    assert len(problems) == 1 and needle in problems[0], problems


def test_output_bytes_differ(case):
    prog, expected, model = case
    mem = model.memory.copy()
    reg = prog.outputs["out"]
    mem[reg.addr + reg.nbytes - 1] ^= 0x01
    _one(compare_run(CFG, prog, expected, model, _rtl(model, memory=mem)), "RTL output != model")


def test_memory_outside_the_output_differs(case):
    prog, expected, model = case
    reg = prog.outputs["out"]
    for addr in (0, reg.addr - 1, model.memory.size - 1):  # code, just before the output, the last byte
        if reg.addr <= addr < reg.addr + reg.nbytes:
            continue
        mem = model.memory.copy()
        mem[addr] ^= 0x80
        problems = compare_run(CFG, prog, expected, model, _rtl(model, memory=mem))
        _one(problems, "RTL memory outside the output != model")
        assert f"flat index {addr}:" in problems[0]


def test_memory_size_differs(case):
    prog, expected, model = case
    mem = np.concatenate([model.memory, np.zeros(4, np.uint8)])
    _one(compare_run(CFG, prog, expected, model, _rtl(model, memory=mem)), "RTL memory size")


@pytest.mark.parametrize("changes, needle", [
    (dict(cycles=+1), "cycles: RTL"),
    (dict(cycles=-1), "cycles: RTL"),
    (dict(busy_pe=+1), "busy PE-cycles: RTL"),
    (dict(busy_pe=-4), "busy PE-cycles: RTL"),
    (dict(error=True), "illegal-instruction error"),
    (dict(timed_out=True), "did not halt within the timeout"),
    (dict(mem_oob=True), "wrote outside the program's memory"),
    (dict(outside_bytes=3), "wrote outside the program's memory"),
])
def test_each_flag_and_counter_mismatch(case, changes, needle):
    prog, expected, model = case
    changes = {k: (getattr(model, k) + v if k in ("cycles", "busy_pe") else v) for k, v in changes.items()}
    problems = compare_run(CFG, prog, expected, model, _rtl(model, **changes))
    _one(problems, needle)
    if "cycles" in changes:
        assert f"RTL {changes['cycles']} != model {model.cycles}" in problems[0]


def test_several_problems_are_all_reported(case):
    prog, expected, model = case
    mem = model.memory.copy()
    mem[prog.outputs["out"].addr] ^= 0xFF
    rtl = _rtl(model, memory=mem, cycles=model.cycles + 7, busy_pe=0, error=True, timed_out=True)
    problems = compare_run(CFG, prog, expected, model, rtl)
    assert len(problems) == 5, problems
    wrong = expected.copy()
    wrong.reshape(-1)[0] ^= 1
    assert len(compare_run(CFG, prog, wrong, model, rtl)) == 6


def test_wrong_reference_is_reported(case):
    prog, expected, model = case
    wrong = expected.copy()
    wrong.reshape(-1)[-1] = ~wrong.reshape(-1)[-1]
    problems = compare_run(CFG, prog, wrong, model, None)
    _one(problems, "model output != numpy reference")
    assert f"flat index {wrong.size - 1}:" in problems[0]
    # with an agreeing RTL result only the reference problem remains
    _one(compare_run(CFG, prog, wrong, model, _rtl(model)), "model output != numpy reference")


def test_reference_of_the_wrong_shape_is_reported(case):
    prog, expected, model = case
    for wrong in (expected.reshape(-1)[:-1], np.zeros((1, *expected.shape), expected.dtype)):
        problems = compare_run(CFG, prog, wrong, model, None)
        _one(problems, "model output != numpy reference")
        assert f"shape {expected.shape} vs {wrong.shape}" in problems[0]


# ------------------------------------------------------------------ verify_programs plumbing
def test_verify_programs_model_only_and_wrong_reference():
    cases = random_programs(CFG, 3, seed=9, max_cycles=2000)
    res = verify_programs(CFG, cases, rtl=False)
    assert (res.passed, res.failed) == (3, 0)
    assert all(c.rtl_cycles is None and c.model_cycles > 0 and 0 < c.utilization <= 1 for c in res.checks)

    bad = [(p, e) for p, e in cases]
    bad[1] = (cases[1][0], cases[1][1] ^ 1)
    lines: list[str] = []
    res = verify_programs(CFG, bad, rtl=False, echo=lines.append)
    assert (res.passed, res.failed) == (2, 1) and not res.checks[1].ok
    assert len(lines) == 1 and lines[0].startswith(f"MISMATCH v2x2 {cases[1][0].meta['name']}: model output")


class FakeRtl:
    """An RTL executor that returns the model's results (the second one with a wrong busy-PE count) in
    harness-sized memories, and records the timeouts it was given."""

    name = "fake"

    def __init__(self, cfg):
        self.cfg = cfg
        self.timeouts = None

    def run(self, image):
        return self.run_all([image])[0]

    def run_all(self, images, timeout_cycles=None):
        self.timeouts = list(timeout_cycles)
        out = []
        for im in images:
            m = CycleModel(self.cfg).run(im)
            out.append(_rtl(m, memory=np.concatenate([m.memory, np.zeros(64, np.uint8)])))
        out[1].busy_pe += 1
        return out


def test_verify_programs_with_a_fake_rtl():
    """The RTL path: timeouts from the model's cycles, memories cut to the program, results matched in order."""
    cases = random_programs(CFG, 2, seed=11, max_cycles=2000)
    fake = FakeRtl(CFG)
    assert isinstance(fake, Executor)
    lines: list[str] = []
    res = verify_programs(CFG, cases, rtl=fake, echo=lines.append)
    models = [CycleModel(CFG).run(p.image()) for p, _ in cases]
    assert fake.timeouts == [2 * m.cycles + 1000 for m in models]
    assert [c.ok for c in res.checks] == [True, False]
    assert [c.rtl_cycles for c in res.checks] == [m.cycles for m in models]
    assert len(lines) == 1 and "busy PE-cycles" in lines[0]


def test_verify_programs_rtl_true_means_cocotb(monkeypatch):
    """rtl=True runs the programs on cocotb on Verilator (here replaced by the fake)."""
    import hwgen.rtlsim

    monkeypatch.setattr(hwgen.rtlsim, "CocotbExecutor", FakeRtl)
    res = verify_programs(CFG, random_programs(CFG, 2, seed=11, max_cycles=2000), rtl=True)
    assert [c.ok for c in res.checks] == [True, False]


def test_verify_config_needs_a_program():
    with pytest.raises(ValueError, match="at least 1"):
        verify_config(CFG, n_programs=0, seed=1, rtl=False)
    res = verify_config(CFG, n_programs=4, seed=1, rtl=False)
    assert (res.passed, res.failed) == (4, 0)


def test_verify_programs_refuses_an_executor_of_another_config():
    """An executor built for other parameters would compare two different designs: refused by name."""
    cases = random_programs(CFG, 1, seed=12, max_cycles=2000)
    other = dataclasses.replace(CFG, name="other", acc_depth=CFG.acc_depth * 2)
    with pytest.raises(ValueError, match="built for config 'other'"):
        verify_programs(CFG, cases, rtl=FakeRtl(other))
