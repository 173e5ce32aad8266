"""Place and route (hwgen/pnr.py, ``hwgen synth --pnr``): a design that cannot fit the chosen ECP5 is refused
before any tool runs, naming the resource and the limit (exit 2, nothing written); bad devices and
frequencies are refused; and (marked synth: minutes) a 4x4 design placed and routed out of context reports
an Fmax and uses exactly the DSPs and block RAMs its synthesis counts."""

import pytest

import hwgen.pnr as pnr
import hwgen.synth as synth
from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.synth import Resources, SynthReport


def _fake_synthesis(monkeypatch, total: Resources) -> None:
    def fake(cfg, target="ecp5", **_kw):
        return SynthReport(config=cfg.to_dict(), config_key=cfg.key(), target=target, mode="composed",
                           yosys="fake", parts=[], total=total, cells={})

    monkeypatch.setattr(synth, "synthesize", fake)
    monkeypatch.setattr(pnr, "synthesize", fake)
    monkeypatch.setattr(pnr, "run_tool", lambda *a, **k: pytest.fail("a tool ran for a design that cannot fit"))


@pytest.mark.parametrize("device,total,words", [
    ("85k", Resources(luts=61_166, ffs=28_260, dsps=302, brams=38), ("302 DSP multipliers", "has 156")),
    ("25k", Resources(luts=34_933, ffs=11_437, dsps=110, brams=20), ("34,933 LUTs", "has 24,288")),
    ("45k", Resources(luts=30_000, dsps=60, brams=120), ("120 block RAMs", "has 108")),
])
def test_a_design_that_cannot_fit_is_refused_before_placement(tmp_path, monkeypatch, capsys, device, total, words):
    _fake_synthesis(monkeypatch, total)
    cfg = AcceleratorConfig(name="big", rows=16, cols=16)
    with pytest.raises(pnr.DeviceFitError) as e:
        pnr.place_and_route(cfg, device, cache_dir=tmp_path)
    assert all(w in str(e.value) for w in words) and f"ECP5 {device}" in str(e.value)
    out = tmp_path / "r.json"
    assert main(["synth", "--rows", "16", "--cols", "16", "--pnr", "--device", device, "--json", str(out)]) == 2
    assert words[0] in capsys.readouterr().err and not out.exists()


def test_bad_device_frequency_and_target(tmp_path, capsys):
    cfg = AcceleratorConfig(rows=2, cols=2)
    with pytest.raises(pnr.PnrError, match="unknown ECP5 device '12k'"):
        pnr.place_and_route(cfg, "12k", cache_dir=tmp_path)
    with pytest.raises(pnr.PnrError, match="must be positive"):
        pnr.place_and_route(cfg, "85k", 0.0, cache_dir=tmp_path)
    assert main(["synth", "--pnr", "--target", "ice40"]) == 2
    assert "ECP5 only" in capsys.readouterr().err


@pytest.mark.synth
def test_4x4_places_and_routes_with_the_synthesised_dsps_and_brams(tmp_path):
    cfg = AcceleratorConfig(name="pnr4", rows=4, cols=4)
    r = pnr.place_and_route(cfg, "85k", cache_dir=tmp_path)
    total = synth.synthesize(cfg, "ecp5", whole=True, cache_dir=tmp_path).total
    assert 10 < r.fmax_mhz < 500
    assert r.utilization["MULT18X18D"][0] == total.dsps
    assert r.utilization["DP16KD"][0] == total.brams
    assert pnr.place_and_route(cfg, "85k", cache_dir=tmp_path).cached


def _step(kind, delay, cell_from, cell_to):
    return {"type": kind, "delay": delay, "from": {"cell": cell_from, "port": "A"}, "to": {"cell": cell_to, "port": "F"}}


def test_critical_path_summary_of_a_report():
    """nextpnr's --report critical path, summarised (no tool: a report of its shape): start and end cells,
    logic (cells, clock-to-q and setup) and routing nanoseconds, the MULT18X18D stages (a step over 2 ns)."""
    path = [_step("clk-to-q", 0.525, "a_FF", "a_FF"), _step("routing", 1.0, "a_FF", "lut"),
            _step("logic", 0.236, "lut", "lut"), _step("routing", 0.5, "lut", "dsp"),
            _step("logic", 3.927, "dsp_MULT18X18D", "dsp_MULT18X18D"), _step("routing", 0.0, "dsp", "ccu"),
            _step("logic", 0.447, "ccu", "ccu"), _step("routing", 0.2, "ccu", "b_FF"), _step("setup", 0.1, "b_FF", "b_FF")]
    s = pnr.critical_path_summary({"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": path}]})
    assert (s["from"], s["to"], s["dsp_stages"], s["logic_steps"], s["nets"]) == ("a_FF", "b_FF", 1, 3, 3)
    assert s["logic_ns"] == pytest.approx(0.525 + 0.236 + 3.927 + 0.447 + 0.1) and s["routing_ns"] == pytest.approx(1.7)
    assert pnr.critical_path_summary({"critical_paths": []}) is None and pnr.critical_path_summary({}) is None
    text = pnr.format_pnr(pnr.PnrReport("k", "85k", 20.0, 50.0, {}, 1.0, 1.0, critical_path=s))
    assert "critical path 6.9 ns" in text and "a_FF -> b_FF" in text
