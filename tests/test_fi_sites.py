"""Fault-site parity (contract 4): the inventory elaborated from the Amaranth design equals
the one the configuration gives by formula, name for name, width for width."""

import pytest

from fault_injection.faults import STRUCTURES, Site
from fault_injection.sites import (FSM_STATE_SITE, MEMORIES, READ_PORT_SUFFIX, RtlStateError, design_sites,
                                   inventory, inventory_rows, inventory_table, model_sites, rtl_sites)
from hwgen.config import AcceleratorConfig

CONFIGS = {
    "2x2-os": AcceleratorConfig(controller="in-order", name="a", rows=2, cols=2, dataflow="os"),
    "4x4-ws": AcceleratorConfig(controller="in-order", name="b", rows=4, cols=4, dataflow="ws"),
    "8x8-both": AcceleratorConfig(controller="in-order"),
    "3x5-both-p8": AcceleratorConfig(controller="in-order", name="c", rows=3, cols=5, host_port_width=8, a_spad_depth=32,
                                     w_spad_depth=16, acc_depth=64),
    "3x5-both-p128": AcceleratorConfig(controller="in-order", name="d", rows=3, cols=5, host_port_width=128),
    "narrow": AcceleratorConfig(controller="in-order", name="e", rows=3, cols=2, dataflow="both", input_width=4, weight_width=3,
                                acc_width=12, output_width=4, max_reduction=16, host_port_width=16,
                                a_spad_depth=8, w_spad_depth=4, acc_depth=5),
    "1x1-os-p32": AcceleratorConfig(controller="in-order", name="f", rows=1, cols=1, dataflow="os", host_port_width=32,
                                    a_spad_depth=1, w_spad_depth=1, acc_depth=1),
    # the decoupled controller: queues, dependency counts, sequencers, the store's accumulator read port
    "2x2-os-decoupled-q1": AcceleratorConfig(name="g", rows=2, cols=2, dataflow="os", host_port_width=32,
                                             controller="decoupled", queue_depth=1),
    "3x5-both-decoupled-q3": AcceleratorConfig(name="h", rows=3, cols=5, controller="decoupled", queue_depth=3),
    # safety mechanisms: check bits in the memory words, the status counters (hwgen.safety)
    "4x4-safe-decoupled": AcceleratorConfig(name="i", rows=4, cols=4, host_port_width=32,
                                            safety="a_spad=parity,w_spad=secded,acc_buf=secded"),
    "3x5-safe-in-order": AcceleratorConfig(name="j", rows=3, cols=5, controller="in-order",
                                           safety="a_spad=secded,acc_buf=parity"),
    "4x3-abft-decoupled": AcceleratorConfig(name="k", rows=4, cols=3, safety="array=abft,acc_buf=secded"),
    "3x4-abft-in-order-os": AcceleratorConfig(name="l", rows=3, cols=4, controller="in-order", dataflow="os",
                                              safety="array=abft,w_spad=parity"),
    "3x3-dmr-decoupled": AcceleratorConfig(name="m", rows=3, cols=3, host_port_width=32,
                                           safety="ctrl=dmr,load=dmr,compute=dmr,store=dmr"),
    "2x3-dmr-in-order": AcceleratorConfig(name="n", rows=2, cols=3, controller="in-order", safety="ctrl=dmr,store=dmr"),
}


@pytest.mark.parametrize("key", sorted(CONFIGS))
@pytest.mark.parametrize("read_ports", [True, False])
def test_rtl_equals_model(key, read_ports):
    cfg = CONFIGS[key]
    rtl = rtl_sites(cfg, read_ports=read_ports)
    model = model_sites(cfg, read_ports=read_ports)
    missing = sorted(set(rtl) - set(model), key=lambda s: s.name)
    extra = sorted(set(model) - set(rtl), key=lambda s: s.name)
    assert not missing and not extra, f"RTL only: {missing}\nmodel only: {extra}"
    assert rtl == model  # same order (sorted by name), same widths, depths, kinds
    assert len({s.name for s in rtl}) == len(rtl)


def test_model_sites_import_no_amaranth():
    import subprocess
    import sys

    code = ("import sys; from fault_injection.sites import model_sites, inventory; "
            "from hwgen.config import AcceleratorConfig; model_sites(AcceleratorConfig(controller='in-order')); "
            "inventory(AcceleratorConfig(controller='in-order')); assert 'amaranth' not in sys.modules, 'amaranth imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_inventory_counts():
    cfg = AcceleratorConfig(controller="in-order")  # 8x8 both, port 64
    sites = {s.name: s for s in model_sites(cfg)}
    assert sites["a_spad"] == Site("a_spad", 64, 256, "mem")
    assert sites["w_spad"] == Site("w_spad", 64, 256, "mem")
    assert sites["acc_buf"] == Site("acc_buf", 256, 256, "mem")
    assert sites["acc_buf" + READ_PORT_SUFFIX] == Site("acc_buf.rd_data", 256)
    assert sites[FSM_STATE_SITE].width == 3  # 7 states
    assert sites["array.pe_r7_c7.acc"].width == 32
    assert sites["qtable_c7"].width == 72
    assert sites["ctrl.fetch_cnt"].width == 2 and sites["load.ld_p_byte"].width == 3
    inv = inventory(cfg)
    assert list(inv) == [s for s in STRUCTURES if s in inv]
    assert set(inv) == set(STRUCTURES) - {"safety"}  # no mechanism, no status counters
    assert inv["pe_operands"] == {"sites": 128, "bits": 1024}
    assert inv["pe_accumulators"] == {"sites": 64, "bits": 2048}
    # skew_a 28 x 8 bits, skew_b 28 x 8, deskew 28 x 32
    assert inv["skew_regs"] == {"sites": 84, "bits": 28 * 8 + 28 * 8 + 28 * 32}
    assert inv["a_spad"] == {"sites": 2, "bits": 256 * 64 + 64}
    assert inv["acc_buf"] == {"sites": 2, "bits": 256 * 256 + 256}
    assert inv["qtable"] == {"sites": 8, "bits": 8 * 72}
    assert inv["perf_counters"] == {"sites": 2, "bits": 96}
    assert inv["instruction_reg"] == {"sites": 1, "bits": 128}
    # the store's requantizer: min(8 port bytes, 8 columns) = 8 lanes of (product 64 + shift 6 + byte 8)
    # bits, and a 4-bit beat byte count per stage
    assert sites["store.rq2_product_l7"].width == 64 and "store.rq2_product_l8" not in sites
    assert sites["store.rq3_bytes"].width == 4
    assert sum(v["bits"] for v in inv.values()) == 104_824 + 7 * (64 + 6 + 8) + 3 * 4


def test_structures_of_every_site():
    cfg = CONFIGS["3x5-both-p128"]
    sites = rtl_sites(cfg)
    for s in sites:
        assert s.structure in STRUCTURES
        if s.kind == "mem":
            assert s.name in MEMORIES and s.structure == s.name
    controller = sorted(s.name for s in sites if s.structure == "controller")
    # what falls into the catch-all rule is exactly the controller's own state
    assert controller == sorted([FSM_STATE_SITE, "ctrl.pc", "ctrl.fetch_cnt", "ctrl.exec_cnt", "ctrl.exec_last",
                                 "ctrl.error_flag", "compute.feed_a_valid", "compute.feed_b_valid", "compute.cp_phase",
                                 "compute.busy_inc"])
    for m in MEMORIES:
        assert Site(m + READ_PORT_SUFFIX, 1).structure == m


def test_port_width_dependent_registers():
    narrow = {s.name for s in model_sites(CONFIGS["3x5-both-p8"])}
    assert "load.ld_p_byte" not in narrow and "load.ld_p_rot" not in narrow  # one byte per port word
    wide = {s.name: s.width for s in model_sites(CONFIGS["3x5-both-p128"])}
    assert wide["load.ld_p_byte"] == 4 and wide["ctrl.fetch_cnt"] == 1


def test_dataflow_dependent_registers():
    os_names = {s.name for s in model_sites(CONFIGS["2x2-os"])}
    ws_names = {s.name for s in model_sites(CONFIGS["4x4-ws"])}
    assert "array.skew_b_c1_0" in os_names and not any(".deskew_" in n for n in os_names)
    assert "array.deskew_c0_2" in ws_names and not any(".skew_b_" in n for n in ws_names)


def test_inventory_rows_and_table():
    cfg = CONFIGS["2x2-os"]
    rows = inventory_rows(cfg)
    assert rows[-1][0] == "total"
    assert all(len(r) == 5 for r in rows)
    shares = sum(float(r[4].rstrip("%")) for r in rows[:-1])
    assert abs(shares - 100.0) < 0.1
    assert int(rows[-1][3].replace(",", "")) == sum(s.bits for s in model_sites(cfg))
    table = inventory_table(cfg)
    assert table.row_count == len(rows)
    with pytest.raises(TypeError):
        inventory()


def test_design_sites_refuses_unnamed_state():
    from amaranth import Module, Signal
    from amaranth.lib.memory import Memory

    m = Module()
    x = Signal(4, name="x")
    m.d.sync += [x.eq(x + 1), Signal(3).eq(1)]
    with pytest.raises(RtlStateError, match=r"automatic name '\$signal'"):
        design_sites(m)

    m = Module()
    m.submodules.mem = mem = Memory(shape=8, depth=4, init=[])
    mem.read_port(domain="comb")
    with pytest.raises(RtlStateError, match="asynchronous read port"):
        design_sites(m)

    m = Module()
    with m.FSM(name="f"):
        with m.State("A"):
            m.next = "B"
        with m.State("B"):
            m.next = "A"
    assert design_sites(m) == [Site("f_state", 1)]


def _hand_registers(R: int, C: int, port_bytes: int, accw: int = 32) -> dict[str, int]:
    """The in-order design's registers outside the array and memories, written out by hand from the
    design (ISA field widths: 16-bit scratchpad addresses and counts, 9-bit lane counts, 32-bit host
    addresses; 26-bit execute counter; 48-bit performance counters; 7 controller states) — not read from
    hwgen.hw_facts.REGISTERS, which both the RTL and the formula are built from."""
    byte_bits = (port_bytes - 1).bit_length() if port_bytes > 1 else 0
    lanes = min(port_bytes, C)
    regs = {
        "ctrl.fsm_state": 3, "ctrl.pc": 32, "ctrl.instr_reg": 128,
        "ctrl.fetch_cnt": max(1, (128 // (8 * port_bytes)).bit_length()),
        "ctrl.exec_cnt": 26, "ctrl.exec_last": 26, "ctrl.error_flag": 1,
        "ctrl.cycle_counter": 48, "ctrl.busy_pe_counter": 48,
        "load.ld_word": 16, "load.ld_lane": 9, "load.ld_row_ptr": 32, "load.ld_ptr": 32, "load.ld_p_valid": 1,
        "load.ld_p_spad_addr": 16, "load.ld_p_lane": 9, "load.ld_p_wide": 1, "load.ld_p_lo": 10, "load.ld_p_hi": 10,
        "compute.feed_a_valid": 1, "compute.feed_b_valid": 1, "compute.cp_phase": 26, "compute.busy_inc": 26,
        "compute.wb_valid": 1, "compute.wb_addr": 16, "compute.wb_data": C * accw,
        "store.q_multiplier": 32, "store.q_shift": 6, "store.q_zero_point": 16, "store.q_clamp_lo": 16,
        "store.q_clamp_hi": 16, "store.st_row": 16, "store.st_col": 9, "store.st_row_ptr": 32, "store.st_ptr": 32,
        "store.rq1_valid": 1, "store.rq1_lane": 9, "store.rq1_ptr": 32,
        "store.rq2_valid": 1, "store.rq2_ptr": 32, "store.rq3_valid": 1, "store.rq3_ptr": 32,
    }
    if byte_bits:
        regs.update({"load.ld_p_byte": byte_bits, "load.ld_p_rot": byte_bits})
    for k in range(lanes):  # one requantizer lane per byte a beat can hold
        regs.update({f"store.rq2_product_l{k}": accw + 32, f"store.rq2_shift_l{k}": 6, f"store.rq3_byte_l{k}": 8})
    if lanes > 1:  # the beat's byte count, 0..lanes
        regs.update({f"store.rq{s}_bytes": lanes.bit_length() for s in (1, 2, 3)})
    regs.update({f"qtable_c{j}": 72 for j in range(C)})
    return regs


@pytest.mark.parametrize("R, C, port", [(2, 2, 8), (2, 4, 32), (4, 4, 128), (3, 8, 64)])
def test_register_widths_match_a_hand_written_list(R, C, port):
    """The register table (and so the RTL and the formula, which both read it) against the design by hand:
    a wrong width or a lost register in hwgen.hw_facts would pass the RTL-vs-formula parity."""
    cfg = AcceleratorConfig(controller="in-order", rows=R, cols=C, host_port_width=port)
    got = {s.name: s.width for s in model_sites(cfg)
           if not s.name.startswith("array.") and s.name.split(".")[0] not in ("a_spad", "w_spad", "acc_buf")}
    assert got == _hand_registers(R, C, port // 8)
