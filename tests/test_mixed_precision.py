"""Mixed-precision widths (mappings.mixed_precision): lowering, exact execution of lowered graphs, measured
sensitivity, the cost table, and the ILP against enumeration.

* Lowered weights lie in the narrow symmetric range of their width, per output channel, and stay within
  half a step of the int8 weights' real values; a lowered activation's values lie in the abits range.
* A lowered graph validates and runs on the executor (cycle model) unchanged; its values equal
  ``run_numpy`` node by node, and, on a conv chain, an independent reference built here from
  ``sim.reference`` (no code of the executor or of the module under test).
* Sensitivity on squeezenet1_1 (the zoo's ONNX graph, quantized by onnxruntime): 0 at all-int8, positive
  otherwise, and non-decreasing as the weights narrow (8 -> 4 -> 2) at each activation width.
* The ILP equals brute force in objective value (and in the choice when the optimum is unique) on
  small_cnn's measured tables and on random tables with producer-consumer pairs, ties included;
  infeasible budgets raise WidthBudgetError naming the budget and the least achievable value.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from mappings.execute import run_quantized
from mappings.graph import Clip, Conv2d, GraphError
from mappings.mixed_precision import (DEFAULT_OPTIONS, INT8, CostTerms, MixedPrecisionError, Objective,
                                      WidthBudgetError, WidthOption, activation_producer, applicable_options,
                                      brute_force_widths, choose_widths, cost_table, datapath8_cost, lower_graph,
                                      lower_layer, measure_sensitivity, output_error, run_numpy, size_table,
                                      weight_bytes, width_report, widths_of)
from mappings.mapper import executed_plan
from mappings.network_map import executed_layer_shape, map_graph
from mappings.onnx_import import import_onnx
from mappings.onnx_models import conv_chain, encoder_layer, quantize_qdq, random_inputs, save, small_cnn
from mappings.quantize import quantize_linear, quantize_multiplier, to_int8_domain
from mappings.zoo import onnx_model
from sim.reference import ChannelQuant, conv2d_ref

CFG = AcceleratorConfig(name="mp4x4", rows=4, cols=4)


def _quantized(tmp_path_factory, name, fm, act="int8", per_channel=False, seed=3):
    d = tmp_path_factory.mktemp(name)
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "q.onnx", act, per_channel, seed=seed)
    return import_onnx(d / "q.onnx")


def _inputs(fm, n, seed=11):
    return [next(iter(f.values())) for f in random_inputs(fm, seed=seed, n=n)]


@pytest.fixture(scope="module", params=["int8", "uint8"])
def cnn(request, tmp_path_factory):
    """small_cnn quantized (per-tensor int8 or per-channel uint8) and four inputs."""
    act = request.param
    fm = small_cnn(seed=31)
    return _quantized(tmp_path_factory, f"cnn_{act}", fm, act, per_channel=act == "uint8"), _inputs(fm, 4)


@pytest.fixture(scope="module")
def squeezenet(tmp_path_factory):
    """The zoo's squeezenet1_1 at 32x32, quantized by onnxruntime (int8, per tensor), and two inputs."""
    fm = onnx_model("squeezenet1_1", seed=0, resolution=32)
    return _quantized(tmp_path_factory, "squeezenet", fm, seed=1), _inputs(fm, 2)


@pytest.fixture(scope="module")
def tables(cnn):
    g, xs = cnn
    return g, cost_table(CFG, g), size_table(g), measure_sensitivity(g, xs)


# ------------------------------------------------------------------------------------------- lowering
@pytest.mark.parametrize("wbits", [4, 2])
def test_lowered_weights_lie_in_the_stated_range(cnn, wbits):
    g, _ = cnn
    qmax = 2 ** (wbits - 1) - 1
    for name in g.compute_layers():
        old = g.layer(name)
        before = np.array(old.weight, copy=True)
        low = lower_layer(g, name, wbits, 8)
        new = low.layer(name)
        axis = 0 if isinstance(new, Conv2d) else 1
        w = np.asarray(new.weight)
        assert w.dtype == np.int8 and np.abs(w).max() <= qmax
        other = tuple(a for a in range(w.ndim) if a != axis)
        n_out = w.shape[axis]
        assert new.weight_quant.axis == axis and new.weight_quant.scale.shape == (n_out,)
        assert np.all(new.weight_quant.zero_point == 0)
        peak = np.abs(w.astype(np.int64)).max(axis=other)
        assert np.all((peak == qmax) | (peak == 0)), name  # each channel's largest weight reaches the range's end
        bshape = [1] * w.ndim
        bshape[axis] = n_out
        s_old = np.broadcast_to(np.asarray(old.weight_quant.scale, np.float64).reshape(-1), (n_out,)).reshape(bshape)
        s_new = np.asarray(new.weight_quant.scale, np.float64).reshape(bshape)
        real_old, real_new = before * s_old, w * s_new
        assert np.all(np.abs(real_new - real_old) <= 0.5 * s_new * (1 + 1e-6)), name
        if old.bias is not None:  # the bias keeps its real value within half a step of the new accumulator scale
            sx = float(g.tensors[g.inputs_of(name)[0]].quant.scale)
            b_old = np.asarray(old.bias, np.float64) * sx * s_old.reshape(-1)
            b_new = np.asarray(new.bias, np.float64) * sx * s_new.reshape(-1)
            assert np.all(np.abs(b_new - b_old) <= 0.5 * sx * s_new.reshape(-1) * (1 + 1e-6))
        np.testing.assert_array_equal(old.weight, before)  # the int8 graph is unchanged
        assert g.layer(name) is old and widths_of(g) == {} and widths_of(low) == {name: WidthOption(wbits, 8)}
        assert low.tensors[name].quant == g.tensors[name].quant  # weights only: the activation keeps int8


def test_lowered_activation_lies_in_the_abits_range(cnn):
    g, xs = cnn
    for name in g.compute_layers():
        low = lower_layer(g, name, 8, 4)
        clip = f"{name}/clip_a4"
        assert isinstance(low.layer(clip), Clip) and low.inputs_of(clip) == [name]
        assert set(low.g.successors(name)) == {clip}
        assert set(low.g.successors(clip)) == set(g.g.successors(name))
        qp = low.tensors[clip].quant
        assert qp == low.tensors[name].quant and qp.dtype == g.tensors[name].quant.dtype
        assert np.isclose(float(qp.scale), float(g.tensors[name].quant.scale) * 17)
        lo, hi = (0, 15) if qp.dtype == "uint8" else (-8, 7)
        assert lo <= int(qp.zero_point) <= hi
        run = run_numpy(low, xs[0])
        v = run.values[clip].native().astype(np.int64)
        assert v.min() >= lo and v.max() <= hi
        assert len(np.unique(v)) > 2  # the range is used, not collapsed
        assert low.outputs == [clip if o == name else o for o in g.outputs]


def test_lowered_graph_runs_exactly_on_the_executor(cnn):
    """Several layers lowered at once: the cycle model's values equal run_numpy's at every node, and a
    partial re-run (reuse) equals a full one."""
    g, xs = cnn
    names = g.compute_layers()
    widths = dict(zip(names, [WidthOption(4, 4), WidthOption(2, 8), WidthOption(8, 4), WidthOption(4, 8),
                              WidthOption(2, 4)]))
    low = lower_graph(g, widths)
    assert widths_of(low) == widths
    ref = run_numpy(g, xs[0])
    for x in xs[:2]:
        model = run_quantized(low, x, CFG, backend="model")
        mine = run_numpy(low, x)
        for n in low.order():
            np.testing.assert_array_equal(model.values[n].q, mine.values[n].q, err_msg=n)
        np.testing.assert_array_equal(model.outputs[low.outputs[0]], mine.outputs[0])
    # the int8 graph through run_numpy is the executor too
    model8 = run_quantized(g, xs[0], CFG)
    for n in g.order():
        np.testing.assert_array_equal(model8.values[n].q, ref.values[n].q, err_msg=n)
    one = lower_layer(g, names[2], 4, 4)
    part = run_numpy(one, xs[0], reuse=ref.values, changed=[names[2]])
    full = run_numpy(one, xs[0])
    for n in one.order():
        np.testing.assert_array_equal(part.values[n].q, full.values[n].q, err_msg=n)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    fm = conv_chain(seed=8, n=3, hw=6, channels=4)
    return _quantized(tmp_path_factory, "chain", fm, seed=9), _inputs(fm, 2)


def _reference_chain(g, x):
    """conv_chain (convolutions, ReLU fused into the output range) computed from sim.reference: zero points
    folded into the bias, scales into (multiplier, shift), an abits Clip as a clamp to its values."""
    (inp,) = g.graph_inputs
    qp = g.tensors[inp].quant
    s, z = float(qp.scale), int(qp.zero_point)
    q, z8 = to_int8_domain(quantize_linear(x, s, z, qp.dtype), z, qp.dtype)
    q = q.astype(np.int64)[0]  # C, H, W
    node = inp
    while True:
        (node,) = list(g.g.successors(node)) or [None]
        if node is None:
            break
        layer, oq = g.layer(node), g.tensors[node].quant
        so, zo = float(oq.scale), int(oq.zero_point) - (128 if oq.dtype == "uint8" else 0)
        if isinstance(layer, Clip):
            lo = int(np.rint(layer.min / so)) + zo
            hi = int(np.rint(layer.max / so)) + zo
            q = np.clip(q, lo, hi)
        else:
            w = np.asarray(layer.weight, np.int64)
            sw = np.broadcast_to(np.asarray(layer.weight_quant.scale, np.float64).reshape(-1), (w.shape[0],))
            bias = np.asarray(layer.bias, np.int64) - z8 * w.reshape(w.shape[0], -1).sum(axis=1)
            mults = [quantize_multiplier(s * float(c) / so) for c in sw]
            quant = ChannelQuant(bias, np.array([m for m, _ in mults]), np.array([k for _, k in mults]), zo, -128, 127)
            out = conv2d_ref(np.transpose(q, (1, 2, 0)), np.transpose(w, (2, 3, 1, 0)), layer.stride, layer.pads,
                             quant, pad_value=z8)
            q = np.transpose(out.astype(np.int64), (2, 0, 1))
        s, z8 = so, zo
    return (q - z8).astype(np.float32) * np.float32(s)


def test_lowered_chain_equals_an_independent_reference(chain):
    g, xs = chain
    names = g.compute_layers()
    assert len(names) == 3
    for widths in ({names[1]: WidthOption(4, 4)}, {names[0]: WidthOption(2, 4), names[2]: WidthOption(4, 8)}, {}):
        low = lower_graph(g, widths)
        for x in xs:
            want = _reference_chain(low, x)
            got = run_quantized(low, x, CFG).outputs[low.outputs[0]][0]
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(run_numpy(low, x).outputs[0][0], want)


def test_new_scale_passes_through_moving_steps(squeezenet):
    """squeezenet's conv1 -> MaxPool -> fire0_squeeze: the pool takes conv1's 4-bit quantization and the
    squeeze's bias follows its new input scale; its MACs see conv1's width (activation_producer)."""
    g, xs = squeezenet
    pool = g.inputs_of("fire0_squeeze")[0]
    assert g.layer(pool).kind == "MaxPool" and activation_producer(g, "fire0_squeeze") == "conv1"
    assert activation_producer(g, "conv1") is None
    assert activation_producer(g, "fire1_squeeze") is None  # after a Concat (requantizing)
    low = lower_layer(g, "conv1", 8, 4)
    assert low.tensors[pool].quant == low.tensors["conv1"].quant != g.tensors[pool].quant
    ratio = float(g.tensors["conv1"].quant.scale) / float(low.tensors["conv1"].quant.scale)
    b_old = np.asarray(g.layer("fire0_squeeze").bias, np.float64)
    np.testing.assert_array_equal(low.layer("fire0_squeeze").bias, np.rint(b_old * ratio).astype(np.int32))
    v = run_numpy(low, xs[0]).values[pool].native().astype(int)
    assert v.min() >= -8 and v.max() <= 7


def test_lowering_errors(cnn, tmp_path_factory):
    g, _ = cnn
    with pytest.raises(MixedPrecisionError, match="no layer 'nope'"):
        lower_layer(g, "nope", 4, 8)
    pool = next(n for n in g.order() if g.layer(n).kind == "MaxPool")
    with pytest.raises(MixedPrecisionError, match=f"layer '{pool}' \\(MaxPool\\)"):
        lower_layer(g, pool, 4, 8)
    low = lower_layer(g, "conv1", 4, 8)
    with pytest.raises(MixedPrecisionError, match="'conv1': already lowered to w4a8"):
        lower_layer(low, "conv1", 8, 4)
    for bad in ((1, 8), (8, 9), (4.0, 8)):
        with pytest.raises(MixedPrecisionError, match="whole numbers of bits from 2 to 8"):
            WidthOption(*bad)
    # a MatMul of two activations: no weights to lower, its output activation can be
    fm = encoder_layer(seed=2)
    enc = _quantized(tmp_path_factory, "enc", fm, seed=4)
    mm = next(n for n in enc.compute_layers() if enc.layer(n).kind == "MatMul")
    with pytest.raises(MixedPrecisionError, match=f"'{mm}' \\(MatMul\\): a MatMul of two activations has no weights"):
        lower_layer(enc, mm, 4, 8)
    assert all(o.wbits == 8 for o in applicable_options(enc, mm, DEFAULT_OPTIONS))
    assert weight_bytes(enc, mm, 8) == 0
    lowm = lower_layer(enc, mm, 8, 4)
    x = _inputs(fm, 1)[0]
    model, mine = run_quantized(lowm, x, CFG), run_numpy(lowm, x)
    for n in lowm.order():
        np.testing.assert_array_equal(np.asarray(model.values[n].q), np.asarray(mine.values[n].q), err_msg=n)


def test_lowered_graph_validates(cnn):
    g, _ = cnn
    low = lower_graph(g, {n: WidthOption(2, 4) for n in g.compute_layers()})
    low.validate()
    low.g.remove_edge(*next(iter(low.g.in_edges(f"{g.compute_layers()[0]}/clip_a4"))))
    with pytest.raises(GraphError):
        low.validate()


# ---------------------------------------------------------------------------------------- sensitivity
def test_sensitivity_on_a_zoo_network(squeezenet):
    g, xs = squeezenet
    layers = ["conv1", "fire3_expand3x3", "final_conv"]
    sens = measure_sensitivity(g, xs, DEFAULT_OPTIONS, layers=layers)
    assert sens.inputs == 2 and set(sens.values) == set(layers)
    for name, row in sens.values.items():
        assert set(row) == set(DEFAULT_OPTIONS)
        assert row[INT8] == 0.0
        assert all(v > 0 for o, v in row.items() if o != INT8), name
        # one source of error narrowed at a time: the error grows as its bits drop
        chain = [row[WidthOption(w, 8)] for w in (8, 4, 2)]
        assert chain == sorted(chain), (name, chain)
        assert row[WidthOption(8, 4)] >= row[INT8]
        assert row[WidthOption(2, 8)] > 5 * row[WidthOption(4, 8)]  # 2-bit (ternary) weights: far more
        # both narrowed: 2-bit weights dominate whatever the activations. (4-bit weights on 4-bit activations
        # are not always worse than 8-bit weights on them: conv1 measured 0.00440 against 0.00464 on these
        # two inputs; the two errors partly cancel, one reason the additive model is an approximation)
        assert row[WidthOption(2, 4)] > row[WidthOption(8, 4)] and row[WidthOption(2, 4)] > row[WidthOption(4, 4)]


def test_sensitivity_needs_inputs_and_varying_outputs(cnn):
    g, _ = cnn
    with pytest.raises(MixedPrecisionError, match="no calibration inputs"):
        measure_sensitivity(g, [])
    with pytest.raises(MixedPrecisionError, match="x: graph output 0 is constant over the 2 calibration input"):
        output_error([[np.ones(3)], [np.ones(3)]], [[np.ones(3)], [np.zeros(3)]], "x")
    assert output_error([[np.arange(3.0)]], [[np.arange(3.0) + 1]]) == pytest.approx(3 / 2)


# ---------------------------------------------------------------------------------------------- costs
def test_cost_table_is_the_exact_model(tables):
    g, ct, sz, _ = tables
    nmap = map_graph(g, CFG)
    rows = {r.layer: r for r in nmap.rows if r.where == "accelerator"}
    assert set(rows) == set(ct.cycles.own) == set(g.compute_layers())
    for n, r in rows.items():
        assert ct.cycles.own[n][INT8] == r.cycles
        assert ct.energy_pj.own[n][INT8] == pytest.approx(r.energy_pj, rel=1e-12)
        assert len(set(ct.cycles.own[n].values())) == 1  # the 8-bit array: width changes no cycle
        e = ct.energy_pj.own[n]
        for a in (8, 4):
            assert e[WidthOption(8, a)] > e[WidthOption(4, a)] > e[WidthOption(2, a)]
            assert e[WidthOption(8, a)] == e[WidthOption(8, 8)]  # the layer's own output width: no cost today
        assert sz[n][WidthOption(4, 8)] == -(-sz[n][INT8] // 2) and sz[n][WidthOption(2, 4)] == -(-sz[n][INT8] // 4)
    assert ct.cycles.pairs == {}
    assert set(ct.energy_pj.pairs) == {(n, activation_producer(g, n)) for n in g.compute_layers()
                                       if activation_producer(g, n)}
    # a choice's total is the layer cost model evaluated at each layer's own and input widths
    choice = {n: DEFAULT_OPTIONS[i % len(DEFAULT_OPTIONS)] for i, n in enumerate(g.compute_layers())}
    want = 0.0
    for n in g.compute_layers():
        _, run_shape, repeat = executed_layer_shape(CFG, g, n)
        assert repeat == 1
        p = activation_producer(g, n)
        a = choice[p].abits if p else 8
        perf = executed_plan(CFG, run_shape)[1]
        want += datapath8_cost(CFG, perf, a, choice[n].wbits, choice[n].abits).energy.total_pj
    assert ct.energy_pj.total(choice) == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------------------------------------- choice
def _check_same(ilp, bf):
    assert ilp.cost == pytest.approx(bf.cost, rel=1e-9, abs=1e-9)
    assert ilp.size_bytes <= ilp.size_budget and ilp.sensitivity <= ilp.sensitivity_budget * (1 + 1e-9) + 1e-12
    if bf.optima == 1:
        assert ilp.widths == bf.widths


def test_ilp_equals_brute_force_on_measured_tables(tables):
    g, ct, sz, sens = tables
    layers = g.compute_layers()
    full = sum(sz[n][INT8] for n in layers)
    # a layer whose output no compute layer multiplies directly (the classifier; pwconv, before the residual
    # Add) has a free output width under the energy objective: its optima tie. With those kept at 8-bit
    # activations the energy optima are unique
    producers = {p for _, p in ct.energy_pj.pairs}
    out8 = {n: [o for o in DEFAULT_OPTIONS if o.abits == 8 or n in producers] for n in layers}
    seen_unique = seen_ties = 0
    for objective, opts in ((Objective.ENERGY, DEFAULT_OPTIONS), (Objective.ENERGY, out8),
                            (Objective.LATENCY, DEFAULT_OPTIONS)):
        for size_budget in (full, 0.6 * full, 0.4 * full):
            for sens_budget in (0.01, 0.05, 1.0):
                try:
                    bf = brute_force_widths(layers, opts, ct, sz, sens, size_budget, sens_budget, objective)
                except WidthBudgetError as e:
                    with pytest.raises(WidthBudgetError) as info:
                        choose_widths(layers, opts, ct, sz, sens, size_budget, sens_budget, objective)
                    assert str(info.value) == str(e)
                    continue
                ilp = choose_widths(layers, opts, ct, sz, sens, size_budget, sens_budget, objective)
                _check_same(ilp, bf)
                seen_unique += bf.optima == 1
                seen_ties += bf.optima > 1
    assert seen_unique and seen_ties  # the latency objective ties everything


def test_ilp_equals_brute_force_on_random_tables():
    """4 layers, a chain of producer-consumer pairs with costs of either sign, integer costs (ties likely),
    budgets across the achievable range."""
    rng = np.random.default_rng(5)
    opts = list(DEFAULT_OPTIONS)
    layers = ["a", "b", "c", "d"]
    ties = 0
    for trial in range(4):
        own = {n: {o: float(rng.integers(0, 6)) for o in opts} for n in layers}
        pairs = {(c, p): {(oc, op): float(rng.integers(-3, 4)) for oc in opts for op in opts}
                 for c, p in zip(layers[1:], layers[:-1])}
        terms = CostTerms(own, pairs)
        size = {n: {o: int(rng.integers(1, 20)) * o.wbits for o in opts} for n in layers}
        sens = {n: {o: (0.0 if o == INT8 else float(rng.random()) * (9 - o.wbits) * (9 - o.abits)) for o in opts}
                for n in layers}
        sizes = sorted({sum(size[n][o] for n, o in zip(layers, c)) for c in itertools.product(opts, repeat=4)})
        for sb in (sizes[len(sizes) // 4] + 0.5, sizes[len(sizes) // 2] + 0.5, sizes[-1]):
            for eb in (5.0, 30.0):
                try:
                    bf = brute_force_widths(layers, opts, terms, size, sens, sb, eb)
                except WidthBudgetError:
                    with pytest.raises(WidthBudgetError):
                        choose_widths(layers, opts, terms, size, sens, sb, eb)
                    continue
                ilp = choose_widths(layers, opts, terms, size, sens, sb, eb)
                _check_same(ilp, bf)
                assert terms.total(ilp.widths) == pytest.approx(ilp.cost)
                ties += bf.optima > 1
    assert ties


def test_per_layer_options_and_plain_tables():
    layers = ["x", "y"]
    opts = {"x": [INT8, WidthOption(4, 8)], "y": [INT8]}
    cost = {"x": {INT8: 2.0, WidthOption(4, 8): 1.0}, "y": {INT8: 1.0}}
    size = {"x": {INT8: 8, WidthOption(4, 8): 4}, "y": {INT8: 8}}
    sens = {"x": {INT8: 0.0, WidthOption(4, 8): 0.1}, "y": {INT8: 0.0}}
    c = choose_widths(layers, opts, cost, size, sens, 16, 1.0, Objective.LATENCY)
    assert c.widths == {"x": WidthOption(4, 8), "y": INT8} and c.cost == 2.0 and c.size_bytes == 12
    with pytest.raises(MixedPrecisionError, match="layer 'y': no size for option w8a8"):
        choose_widths(layers, opts, cost, {"x": size["x"], "y": {}}, sens, 16, 1.0)
    with pytest.raises(MixedPrecisionError, match="objective must be an Objective"):
        choose_widths(layers, opts, cost, size, sens, 16, 1.0, "energy")


def test_infeasible_budgets_name_the_budget_and_the_least_value(tables):
    g, ct, sz, sens = tables
    layers = g.compute_layers()
    least_size = sum(sz[n][WidthOption(2, 8)] for n in layers)
    for solve in (choose_widths, brute_force_widths):
        with pytest.raises(WidthBudgetError) as e:
            solve(layers, DEFAULT_OPTIONS, ct, sz, sens, least_size - 1, 10.0)
        assert e.value.budget == "model size" and e.value.least == least_size and e.value.limit == least_size - 1
        assert f"model size budget {least_size - 1} bytes" in str(e.value)
        assert f"least achievable model size is {least_size} bytes" in str(e.value)
        with pytest.raises(WidthBudgetError, match="sensitivity budget -1 cannot be met: the least achievable "
                                                   "sensitivity is 0 "):
            solve(layers, DEFAULT_OPTIONS, ct, sz, sens, 10 ** 6, -1.0)
        with pytest.raises(WidthBudgetError) as e:  # each alone is achievable, not both
            solve(layers, DEFAULT_OPTIONS, ct, sz, sens, least_size, 1e-4)
        assert e.value.budget == "sensitivity" and e.value.least > 1e-4
        assert e.value.least == pytest.approx(sum(min(sens.values[n][o] for o in DEFAULT_OPTIONS if o.wbits == 2)
                                                  for n in layers))
        assert f"within the model size budget of {least_size} bytes" in str(e.value)


def test_report_against_int8(tables, cnn):
    g, ct, sz, sens = tables
    _, xs = cnn
    layers = g.compute_layers()
    full = sum(sz[n][INT8] for n in layers)
    choice = choose_widths(layers, DEFAULT_OPTIONS, ct, sz, sens, full // 2, 0.2)
    rep = width_report(choice, ct, sz, sens, g, xs)
    assert rep.cycles == rep.int8_cycles == map_graph(g, CFG).cycles
    assert rep.int8_energy_pj == pytest.approx(map_graph(g, CFG).energy.total_pj)
    assert rep.energy_pj == pytest.approx(choice.cost) and rep.energy_pj < rep.int8_energy_pj
    assert rep.size_bytes == choice.size_bytes <= full // 2 and rep.int8_size_bytes == full
    assert rep.sensitivity_sum == pytest.approx(choice.sensitivity)
    assert rep.measured_error is not None and rep.measured_error > 0
    text = rep.format()
    assert "latency" in text and "vs int8" in text and all(n in text for n in layers)
    assert rep.to_dict()["ratios"]["size"] <= 0.5
    int8 = width_report({}, ct, sz, sens, g, xs[:2])
    assert int8.measured_error == 0.0 and int8.ratios() == {"cycles": 1.0, "energy": 1.0, "size": 1.0}
