"""One check of an imported QDQ model against onnxruntime, shared by the operator tests.

Layer by layer: every node fed onnxruntime's inputs (its unoptimised graph, the operators' own
definitions) is within one quantum of ORT, or, for a value the quantizer leaves float, equal to ORT's
float32 within rounding. End to end: within two output quanta, or ORT's own spread between its
unoptimised and optimised graphs where that is larger, of each of them; the same argmax."""

import numpy as np

from mappings.execute import FloatTensor, run_quantized
from mappings.onnx_import import import_onnx
from mappings.onnx_models import random_inputs, run_ort


def check_against_ort(path, float_model, cfg, seed: int, n: int = 2, classifier: bool = True,
                      batch: int | None = None) -> dict:
    """Run the checks of the module docstring on ``n`` random inputs; returns the imported graph's
    counts: {"float": nodes whose value stayed float, "spread": ORT's largest spread in quanta}
    (``classifier``: the output's argmax per row is compared too; ``batch``: the size of the model's
    symbolic batch, see :func:`mappings.onnx_import.import_onnx`)."""
    g = import_onnx(path, batch=batch)
    nodes = [v for v in g.order() if g.layer(v).kind != "Constant"]
    names = {v: g.tensors[v].name for v in nodes}
    (out,) = g.outputs
    scale = float(g.tensors[out].quant.scale)
    floats, spread_max = 0, 0.0
    if batch is None:
        feeds = random_inputs(float_model, seed=seed, n=n)
    else:
        (inp,) = g.graph_inputs
        rng = np.random.default_rng(seed)
        name = float_model.graph.input[0].name
        feeds = [{name: rng.standard_normal(g.shapes[inp]).astype(np.float32)} for _ in range(n)]
    for feed in feeds:
        ref = run_ort(path, feed, list(names.values()), opt_level="disable")
        (x,) = feed.values()
        run = run_quantized(g, x, cfg, feed={v: ref[names[v]] for v in nodes})
        for v in nodes:
            want, got = ref[names[v]], run.own[v].native()
            assert got.shape == want.shape and got.dtype == want.dtype, v
            if isinstance(run.own[v], FloatTensor):
                floats += 1
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=v)
            else:
                assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 1, v
        ours = run_quantized(g, x, cfg).outputs[out]
        plain = next(iter(run_ort(path, feed, opt_level="disable").values()))
        best = next(iter(run_ort(path, feed, opt_level="all").values()))
        spread = float(np.abs(best - plain).max()) / scale
        spread_max = max(spread_max, spread)
        assert ours.shape == plain.shape == best.shape
        # the tolerance: two quanta, or ORT's own spread between its optimisation levels if larger
        assert np.abs(ours - plain).max() / scale <= max(2.0, spread) + 1e-3
        assert np.abs(ours - best).max() / scale <= max(2.0, spread) + 1e-3
        if classifier:
            assert np.array_equal(ours.argmax(axis=-1), plain.argmax(axis=-1))
    return {"float": floats, "spread": spread_max}
