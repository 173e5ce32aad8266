"""hwgen.cost_model: the ECP5 resource model.

The default run needs no synthesis: the stated DSP and block-RAM rules on hand-computed cases, the exact
PE flip-flop rule and the composed DSP/BRAM counts against figures measured with ``hwgen synth``
(docs/ARCHITECTURE.md, "Synthesis"), monotonicity, and bad input. The ``synth``-marked test (``pytest
-m synth``) is the issue's done-when: the model against whole-design synthesis on the held-out
configurations of benchmarks/fit_cost_model.py (cached in the build cache; a fresh cache costs about
6 CPU-minutes of yosys).
"""

import importlib.util
from pathlib import Path

import pytest

from hwgen import cost_model as cm
from hwgen.config import AcceleratorConfig
from hwgen.synth import Resources


def _cfg(**kw) -> AcceleratorConfig:
    return AcceleratorConfig(**kw)


# ------------------------------------------------------------------ the stated rules, by hand
@pytest.mark.parametrize("lanes, lane_bits, depth, blocks", [
    (1, 128, 256, 4),     # no byte enables: ceil(128 / 36) at 36 x 512
    (4, 8, 256, 1),       # four 8-bit lanes, one 9-bit byte each: one 36-bit word
    (5, 4, 256, 2),       # five lanes never share a byte: ceil(5 / 4)
    (8, 8, 1024, 4),      # 2 deep x 2 wide at 36 x 512, or 1 x 4 at 18 x 1K
    (3, 6, 1024, 2),
    (1, 36, 2048, 4),     # 4 deep at 36 x 512, or 4 wide at 9 x 2K
    (1, 9, 4096, 2),      # 9 x 2K twice (the 4 x 4K mode would take 3)
    (1, 1, 16384, 1),
])
def test_dp16kd_rule(lanes, lane_bits, depth, blocks):
    assert cm.dp16kd_blocks(lanes, lane_bits, depth) == blocks


def test_read_ports_duplicate_and_shallow_memories_are_refused():
    assert cm.memory_blocks(cm.MemorySpec("acc", 1, 128, 256, 2)) == 8
    assert cm.memory_blocks(cm.MemorySpec("tie", 4, 8, 64, 1)) == 1      # cost 128 either way: block RAM
    with pytest.raises(cm.CostModelError, match="distributed RAM"):
        cm.memory_blocks(cm.MemorySpec("small", 4, 8, 32, 1))            # 16 DPR16X4 (cost 64) < 128
    with pytest.raises(cm.CostModelError, match="a_spad.*distributed RAM"):
        cm.estimate(_cfg(rows=4, cols=4, a_spad_depth=16))
    with pytest.raises(cm.CostModelError, match="at least one"):
        cm.dp16kd_blocks(0, 8, 256)


@pytest.mark.parametrize("a, b, n", [(8, 8, 1), (2, 2, 1), (18, 18, 1), (32, 32, 4), (32, 24, 4), (32, 16, 2),
                                     (36, 8, 2), (32, 19, 2), (19, 19, 1), (1, 8, 0)])
def test_multiplier_rule(a, b, n):
    assert cm.mult18_count(a, b) == n


# ------------------------------------------------------------------ against measured syntheses
#: composed ECP5 syntheses (docs/ARCHITECTURE.md, "Synthesis"; benchmarks/fit_cost_model.py)
MEASURED = [  # (config, DSP, BRAM, PE flip-flops)
    (dict(rows=2, cols=2), 26, 6, 210),
    (dict(rows=4, cols=4), 46, 10, 876),
    (dict(rows=8, cols=8), 110, 20, 3576),
    (dict(rows=16, cols=16), 302, 38, 14448),
    (dict(rows=4, cols=8, dataflow="os"), 78, 19, None),
    (dict(rows=8, cols=4, dataflow="ws", host_port_width=128), 70, 11, None),
    (dict(rows=3, cols=5, host_port_width=8, queue_depth=1), 30, 13, None),      # cols 5: column products
    (dict(rows=6, cols=6, dataflow="ws", host_port_width=16, queue_depth=2), 56, 16, None),
    (dict(rows=5, cols=3, input_width=4, weight_width=6, acc_width=24), 43, 7, None),  # 5 lanes of 4 bits
    (dict(rows=8, cols=4, dataflow="os", controller="in-order", host_port_width=32), 51, 7, None),
]


@pytest.mark.parametrize("kw, dsps, brams, pe_ffs", MEASURED)
def test_exact_counts_match_synthesis(kw, dsps, brams, pe_ffs):
    parts = cm.estimate_parts(_cfg(**kw))
    total = parts["pe"] + parts["rest"]
    assert (total.dsps, total.brams) == (dsps, brams)
    if pe_ffs is not None:
        assert parts["pe"].ffs == pe_ffs


def test_pe_rules_on_measured_classes():
    # hwgen synth PE classes (benchmarks/fit_cost_model.py PE_SWEEP): (config, class, LUTs, FFs)
    both = _cfg(rows=2, cols=2)
    first_inner, first_last_col = cm.pe_classes(both)[0], cm.pe_classes(both)[1]
    assert cm.pe_ffs(both, first_inner) == 57 and cm.pe_ffs(both, first_last_col) == 48
    ws_io = _cfg(rows=2, cols=2, dataflow="ws", controller="in-order")
    assert [cm.pe_ffs(ws_io, c) for c in cm.pe_classes(ws_io)] == [32, 24, 48, 40]
    os_ = _cfg(rows=2, cols=2, dataflow="os")
    assert [cm.pe_ffs(os_, c) for c in cm.pe_classes(os_)] == [48, 40, 40, 32]
    assert sum(c.count for c in cm.pe_classes(_cfg(rows=5, cols=3))) == 15
    assert sum(c.count for c in cm.pe_classes(_cfg(rows=1, cols=1, acc_depth=1, w_spad_depth=1))) == 1


def test_whole_design_merges_the_tag_chain():
    cfg = _cfg(rows=4, cols=4)
    assert cm.tag_merge_ffs(cfg) == 9
    assert cm.estimate(cfg, whole=False).ffs - cm.estimate(cfg).ffs == 9
    assert cm.tag_merge_ffs(_cfg(rows=4, cols=4, dataflow="os")) == 0


# ------------------------------------------------------------------ shape of the model
def test_more_pes_cost_more():
    prev = Resources()
    for n in (2, 4, 6, 8, 12, 16):
        r = cm.estimate(_cfg(rows=n, cols=n))
        assert r.luts > prev.luts and r.ffs > prev.ffs and r.dsps > prev.dsps and r.brams >= prev.brams
        prev = r
    for df in ("os", "ws", "both"):
        assert cm.estimate(_cfg(rows=8, cols=4, dataflow=df)).luts < cm.estimate(_cfg(rows=8, cols=8, dataflow=df)).luts


def test_one_coefficient_table():
    assert set(cm.COEFFICIENTS) == set(cm.FEATURES)
    for quantity, names in cm.FEATURES.items():
        assert tuple(cm.COEFFICIENTS[quantity]) == names
    cfg = _cfg()
    assert set(cm.FEATURES["pe_luts"]) <= set(cm.pe_features(cfg, cm.pe_classes(cfg)[0]))
    assert set(cm.FEATURES["rest_luts"]) | set(cm.FEATURES["rest_ffs"]) <= set(cm.rest_features(cfg))


@pytest.mark.parametrize("target", ["ice40", "generic", "xc7"])
def test_unsupported_targets(target):
    with pytest.raises(ValueError, match="covers only ecp5"):
        cm.estimate(_cfg(), target)


# ------------------------------------------------------------------ the done-when (slow)
def _benchmark(name: str):
    """benchmarks/<name>.py as a module (the fits' tables and functions, one definition with the scripts)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fit_script():
    return _benchmark("fit_cost_model")


@pytest.mark.synth
def test_held_out_whole_designs():
    """Within 10% on LUTs and flip-flops, exact on DSP and BRAM, on configurations not fitted on."""
    from hwgen.synth import synthesize

    fit = _fit_script()
    fitted = {AcceleratorConfig(**s).key() for s in fit.FIT_SET}
    for cfg in fit.configs(fit.HELD_OUT):
        assert cfg.key() not in fitted
        r = synthesize(cfg, "ecp5", whole=True).total
        m = cm.estimate(cfg)
        assert (m.dsps, m.brams) == (r.dsps, r.brams), cfg.name
        assert abs(m.luts - r.luts) <= fit.BOUND * r.luts, (cfg.name, m.luts, r.luts)
        assert abs(m.ffs - r.ffs) <= fit.BOUND * r.ffs, (cfg.name, m.ffs, r.ffs)


# ------------------------------------------------------------------ Fmax (against the committed P&R table)
def _fmax_script():
    return _benchmark("fit_fmax")


def test_fmax_table_is_the_scripts_runs():
    """benchmarks/fmax_runs.json holds the runs of benchmarks/fit_fmax.py's RUNS (name, role, seed and the
    fields of a valid configuration), on the stated device and target. (Its config_key is the key when the
    table was written: a configuration field added later changes every key, not the design measured.)"""
    fit = _fmax_script()
    rows = fit.read_table()
    spec = {name: (role, seed, fields) for name, role, seed, fields in fit.RUNS}
    assert rows and {r["role"] for r in rows} == {"fit", "held-out"}
    for r in rows:
        assert (r["role"], r["seed"], r["fields"]) == spec[r["name"]], r["name"]
        AcceleratorConfig(name=r["name"], **r["fields"])
        assert (r["device"], r["target_mhz"]) == (fit.DEVICE, fit.TARGET_MHZ)
        cp = r["critical_path"]
        if cp is not None:  # nextpnr's path is the clock period: 1000 / Fmax
            assert cp["logic_ns"] + cp["routing_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=1e-3)


def test_fmax_model_is_the_fit_of_the_table():
    """The module's coefficients are the least-squares fit of the table's fit runs (refitted here), and
    reproduce every fit run within FMAX_RESIDUAL and every held-out run within the script's bound, but the
    script's stated misses, where the model's Fmax is below the measured one (the safe side)."""
    fit = _fmax_script()
    rows = fit.read_table()
    refit = fit.fit([r for r in rows if r["role"] == "fit"])
    assert set(refit) == set(cm.FMAX_COEFFICIENTS) == set(cm.FMAX_FEATURES)
    assert all(refit[k] == pytest.approx(cm.FMAX_COEFFICIENTS[k], abs=1e-3) for k in refit)
    for r in rows:
        cfg = AcceleratorConfig(name=r["name"], **r["fields"])
        if r["name"] in fit.KNOWN_MISSES:
            assert r["role"] == "held-out" and cm.fmax_mhz(cfg) < r["fmax_mhz"]
            continue
        bound = cm.FMAX_RESIDUAL if r["role"] == "fit" else fit.BOUND
        assert abs(cm.fmax_mhz(cfg) - r["fmax_mhz"]) <= bound * r["fmax_mhz"], (r["name"], cm.fmax_mhz(cfg))
    assert set(fit.KNOWN_MISSES) <= {r["name"] for r in rows}


def test_fmax_in_the_estimate_and_its_shape():
    cfg = _cfg(rows=4, cols=4)
    e = cm.estimate(cfg)
    assert isinstance(e, Resources) and e.fmax_mhz == cm.fmax_mhz(cfg) == cm.estimate(cfg, whole=False).fmax_mhz
    assert cm.critical_path_ns(cfg) * cm.fmax_mhz(cfg) == pytest.approx(1000)
    assert set(cm.fmax_features(cfg)) == set(cm.FMAX_FEATURES)
    for ctl in ("decoupled", "in-order"):  # a wider port: a longer store beat count, never a faster clock
        f = [cm.fmax_mhz(_cfg(rows=4, cols=4, controller=ctl, host_port_width=w)) for w in (8, 16, 32, 64, 128)]
        assert f == sorted(f, reverse=True) and f[0] > f[-1]
    assert cm.fmax_mhz(_cfg(controller="in-order")) > cm.fmax_mhz(_cfg())  # no dispatcher: a shorter path
    assert all(10 < cm.fmax_mhz(_cfg(rows=n, cols=n)) < 100 for n in (2, 4, 8, 16))


@pytest.mark.parametrize("target", ["ice40", "generic", "xc7"])
def test_fmax_unsupported_targets(target):
    with pytest.raises(cm.CostModelError, match="covers only ecp5"):
        cm.fmax_mhz(_cfg(), target)
    with pytest.raises(cm.CostModelError, match="covers only ecp5"):
        cm.critical_path_ns(_cfg(), target)


def test_packed_weight_designs_are_refused_naming_the_field():
    """The packed-weight load path's LUTs are in none of the fitted syntheses: no estimate rather than a wrong one."""
    with pytest.raises(cm.CostModelError, match="packed_weights"):
        cm.estimate(AcceleratorConfig(name="pk", packed_weights=True))
