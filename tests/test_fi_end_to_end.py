"""hwgen fi end to end with the real injectors: plan, run, report; model and RTL on the same plan."""

import json

import pytest

from fault_injection.store import CampaignStore
from hwgen.cli import main

BASE = ["--rows", "4", "--cols", "4", "--a-spad-depth", "64", "--w-spad-depth", "64", "--acc-depth", "64",
        "--workload", "gemm:12x20x10", "--injections", "150", "--seed", "4", "--models", "seu,mbu",
        "--no-progress"]


def _outcomes(db):
    with CampaignStore.open(db, readonly=True) as store:
        faults = store.faults()
        results = store.results()
    return faults, results


@pytest.mark.rtl
@pytest.mark.xdist_group("fi-rtl")
def test_rtl_and_model_campaigns_agree_on_the_modeled_structures(tmp_path, capsys):
    rtl_db, model_db = tmp_path / "rtl.sqlite", tmp_path / "model.sqlite"
    assert main(["fi", "run", *BASE, "--db", str(rtl_db), "--backend", "rtl"]) == 0
    assert main(["fi", "run", *BASE, "--db", str(model_db), "--backend", "model",
                 "--structures", "pe_operands,pe_accumulators,skew_regs,a_spad,w_spad,acc_buf"]) == 0
    assert main(["fi", "report", "--db", str(rtl_db), "--json", str(tmp_path / "r.json"),
                 "--md", str(tmp_path / "r.md"), "--png", str(tmp_path / "r.png")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["done"] == 150 and rep["asil"] in ("none", "B", "C", "D")
    assert sum(s["n"] for s in rep["structures"]) == 150
    rf, rr = _outcomes(rtl_db)
    mf, mr = _outcomes(model_db)
    assert len(rr) == 150 and len(mr) == 150
    # the model campaign's faults run on the RTL give the same outcomes fault by fault
    from fault_injection.model_injector import ModelInjector
    from fault_injection.rtl_injector import RtlInjector
    from fault_injection.workload import build_workload
    from hwgen.config import AcceleratorConfig

    cfg = AcceleratorConfig(rows=4, cols=4, a_spad_depth=64, w_spad_depth=64, acc_depth=64)
    prog = build_workload("gemm:12x20x10", cfg, 4)
    faults = list(mf)
    stored = [mr[i].outcome for i in range(len(faults))]
    with RtlInjector(cfg, prog) as rtl:
        on_rtl = rtl.inject(faults)
    on_model = ModelInjector(cfg, prog).inject(faults)
    assert [r.outcome for r in on_rtl] == [r.outcome for r in on_model] == stored
