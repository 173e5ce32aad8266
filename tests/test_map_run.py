"""``hwgen map`` plans a quantized ONNX network exactly as ``hwgen run`` executes it.

For every model mappings.onnx_models builds (int8 activations with per-tensor weights, uint8 activations
with per-channel weights), the mapped total and per-layer
cycles and dataflows (``hwgen map --json``) equal the cycle model's (``hwgen run --report``) on small arrays
of each dataflow choice. Issue 8: ``map`` used to cost per-tensor requantization (one ``config``
instruction) while the executor always loads the quantization table (``load target=q``, ``store
qtable=1``), so ``map`` reported fewer cycles than ``run`` on every model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwgen.cli import main
from mappings.onnx_models import BUILDERS, quantize_qdq, random_inputs, save

#: the operator models (the networks of mappings.onnx_vision are too large for these small arrays)
MODELS = {k: BUILDERS[k] for k in ("small_cnn", "conv_chain", "mlp", "ceil_pool_cnn", "activation_cnn", "shuffle_cnn",
                                   "encoder_layer", "pad_gather_cnn", "shape_subgraph_cnn")}
QUANT = (("int8", False), ("uint8", True))  # (activations, per-channel weights)
#: small arrays (several blocks and chunks per layer), one per dataflow choice
CONFIGS = {
    "both4": ["--rows", "4", "--cols", "4", "--dataflow", "both", "--a-spad-depth", "96", "--w-spad-depth", "96",
              "--acc-depth", "64"],
    "os4x8": ["--rows", "4", "--cols", "8", "--dataflow", "os", "--a-spad-depth", "64", "--w-spad-depth", "64",
              "--acc-depth", "32"],
    "ws8": ["--rows", "8", "--cols", "8", "--dataflow", "ws", "--host-port-width", "32"],
}


@pytest.mark.parametrize("act,pc", QUANT, ids=[f"{a}-{'pc' if p else 'pt'}" for a, p in QUANT])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_map_equals_run(tmp_path, capsys, kind, act, pc):
    fm = MODELS[kind](seed=17)
    save(fm, tmp_path / "f.onnx")
    q = quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", act, pc, seed=18)
    x = tmp_path / "x.npy"
    np.save(x, next(iter(random_inputs(fm, seed=19)[0].values())))
    for name, flags in CONFIGS.items():
        mj, rj = tmp_path / f"{name}_map.json", tmp_path / f"{name}_run.json"
        assert main(["map", str(q), "--json", str(mj), *flags]) == 0
        assert main(["run", str(q), "--input", str(x), "--output", str(tmp_path / f"{name}_y.npy"),
                     "--report", str(rj), *flags]) == 0
        capsys.readouterr()
        mapped, run = json.loads(mj.read_text()), json.loads(rj.read_text())
        m = {r["layer"]: (r["cycles"], r["dataflow"]) for r in mapped["layers"] if r["where"] == "accelerator"}
        r = {r["name"]: (r["cycles"], r["dataflow"]) for r in run["layers"] if r["where"] == "accelerator"}
        assert m == r and len(m) >= 3, (kind, name)
        assert mapped["total_cycles"] == run["total_cycles"] > 0, (kind, name)
