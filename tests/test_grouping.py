"""Grouped and depthwise convolutions as block-diagonal groups (mappings.grouping).

The merged layer must compute exactly what the original computes: checked against an independent
numpy reference written here (a per-output-channel loop, no grouping logic shared with the code under
test), on the cycle model of both controllers. The merge must also pay: fewer cycles than the
original grouping on a depthwise layer, and hwgen map keeps the layer's own MAC count.
"""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.grouping import executed_conv, merge_factor, merge_weights
from mappings.lowering import lower_conv2d
from mappings.mapper import executed_plan
from sim.cycle import CycleModel
from sim.perf import ConvShape
from sim.reference import Quant

CFG = AcceleratorConfig(rows=8, cols=8, a_spad_depth=512, w_spad_depth=512, acc_depth=256, host_port_width=64)


def reference(X, Wt, groups, stride, pad):
    """Per output channel: its group's input channels, kernel offsets and pixels, summed in int64."""
    H, W, _ = X.shape
    KH, KW, Cg, Cout = Wt.shape
    Og = Cout // groups
    Xp = np.pad(X.astype(np.int64), ((pad, pad), (pad, pad), (0, 0)))
    OH, OW = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    acc = np.zeros((OH, OW, Cout), dtype=np.int64)
    for o in range(Cout):
        g = o // Og
        for y in range(OH):
            for x in range(OW):
                win = Xp[y * stride:y * stride + KH, x * stride:x * stride + KW, g * Cg:(g + 1) * Cg]
                acc[y, x, o] = int((win * Wt[:, :, :, o].astype(np.int64)).sum())
    return acc


def test_merge_factor():
    dw = ConvShape(8, 8, 32, 3, 3, 32, 1, 1, 1, 32)
    assert merge_factor(CFG, dw) == 8                      # 8 channels fill a k-tile and a column tile
    assert executed_conv(CFG, dw).groups == 4
    assert merge_factor(CFG, ConvShape(8, 8, 32, 3, 3, 64, 1, 1, 1, 32)) == 4   # channel multiplier 2
    assert merge_factor(CFG, ConvShape(8, 8, 24, 3, 3, 24, 1, 1, 1, 6)) == 2    # groups of 4 channels
    assert merge_factor(CFG, ConvShape(8, 8, 32, 3, 3, 32, 1, 1, 1, 2)) == 1    # 16 channels a group
    assert merge_factor(CFG, ConvShape(8, 8, 7, 3, 3, 7, 1, 1, 1, 7)) == 7      # a divisor of the groups
    assert merge_factor(CFG, ConvShape(8, 8, 16, 3, 3, 16, 1, 1, 1, 1)) == 1


@pytest.mark.parametrize("controller", ["in-order", "decoupled"])
@pytest.mark.parametrize("cin, cout, groups, stride", [(16, 16, 16, 1), (24, 48, 12, 2), (16, 16, 4, 1)])
def test_merged_layer_is_exact(controller, cin, cout, groups, stride):
    import dataclasses

    cfg = dataclasses.replace(CFG, controller=controller)
    rng = np.random.default_rng(cin * 100 + groups)
    X = rng.integers(-128, 128, (9, 7, cin), dtype=np.int8)
    Wt = rng.integers(-128, 128, (3, 3, cin // groups, cout), dtype=np.int8)
    shape = ConvShape(9, 7, cin, 3, 3, cout, stride, 1, 1, groups)
    run = executed_conv(cfg, shape)
    s = groups // run.groups
    assert s > 1
    merged = merge_weights(Wt, groups, s)
    q = Quant(1, 12, 0, -128, 127)
    out = {}
    for g, w in ((groups, Wt), (run.groups, merged)):
        sh = dataclasses.replace(shape, groups=g)
        prog = lower_conv2d(cfg, X, w, stride, 1, q, groups=g, plan=executed_plan(cfg, sh)[0])
        res = CycleModel(cfg).run(prog.image())
        out[g] = (prog.outputs["out"].read(res.memory), res.cycles)
    acc = reference(X, Wt, groups, stride, 1)
    want = np.clip((acc + (1 << 11)) >> 12, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(out[groups][0], want)
    np.testing.assert_array_equal(out[run.groups][0], want)
    if groups == cin:  # depthwise: the merged form is faster
        assert out[run.groups][1] < out[groups][1]


def test_map_keeps_the_layers_macs():
    from mappings.graph import Conv2d, Input, LayerGraph
    from mappings.network_map import map_graph

    g = LayerGraph("dw")
    g.add("x", Input(shape=(1, 32, 16, 16)), [])
    g.add("dw", Conv2d(in_channels=32, out_channels=32, kernel=(3, 3), pads=(1, 1, 1, 1), groups=32), ["x"])
    nmap = map_graph(g, CFG)
    row = [r for r in nmap.rows if r.where == "accelerator"][0]
    assert row.macs == 16 * 16 * 32 * 9
    assert "merged x8" in row.tiles


def test_map_in_processes_equals_one_process():
    """hwgen map --jobs: the distinct layer shapes planned in worker processes give the same map."""
    from mappings.network_map import load_model, map_graph

    g = load_model("zoo:mobilenet_v2")
    one, two = map_graph(g, CFG), map_graph(g, CFG, jobs=2)
    assert one.to_json() == two.to_json()
