"""A BERT-base encoder layer (Hugging Face's BertLayer as exported: hidden 768, 12 heads, feed-forward 3072,
post-norm, erf GELU) at sequence length 128, built with onnx.helper and quantized by onnxruntime, on the
cycle model of a 16x16 array against onnxruntime (tests/ort_checks.py: every node within one quantum on
ORT's inputs, end to end within two quanta or ORT's own spread): the attention MatMuls (Q·Kᵀ and
probabilities·V, both operands activations with zero points) run on the array, and ``hwgen map`` plans
every layer with the cycles ``hwgen run`` measures. A small post-norm layer covers the same graph on a
4x4 array."""

import onnx

from hwgen.config import AcceleratorConfig
from mappings.execute import run_quantized
from mappings.network_map import map_graph
from mappings.onnx_import import import_onnx
from mappings.onnx_models import bert_encoder_layer, encoder_layer, quantize_qdq, random_inputs, save
from ort_checks import check_against_ort

CFG16 = AcceleratorConfig(name="bert16", rows=16, cols=16, host_port_width=128, a_spad_depth=8192,
                          w_spad_depth=8192, acc_depth=1024)
CFG4 = AcceleratorConfig(name="bert4", rows=4, cols=4, a_spad_depth=256, w_spad_depth=256, acc_depth=64)


def _check(tmp_path, fm, cfg, act, pc):
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type=act, per_channel=pc, seed=11)
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {"LayerNormalization", "Softmax", "Transpose", "MatMul", "Erf", "Div", "Add"} <= ops
    check_against_ort(tmp_path / "q.onnx", fm, cfg, 12, n=1, classifier=False)
    g = import_onnx(tmp_path / "q.onnx")
    run = run_quantized(g, random_inputs(fm, seed=13)[0]["input"], cfg)
    where = {r.name: r.where for r in run.layers}
    assert where["scores"] == where["context"] == "accelerator"
    ran = {r.name: r.cycles for r in run.layers if r.where == "accelerator"}
    mapped = {r.layer: r.cycles for r in map_graph(g, cfg).rows if r.where == "accelerator"}
    assert ran == mapped and len(ran) == 8
    return run


def test_post_norm_encoder_layer_small(tmp_path):
    _check(tmp_path, encoder_layer(seed=9, post_norm=True, epsilon=1e-12), CFG4, "uint8", True)


def test_bert_base_layer_at_sequence_128(tmp_path):
    run = _check(tmp_path, bert_encoder_layer(seed=10, seq=128), CFG16, "int8", False)
    macs = sum(r.macs for r in run.layers if r.where == "accelerator")
    assert macs == 4 * 128 * 768 * 768 + 2 * 128 * 768 * 3072 + 2 * 12 * 128 * 128 * 64
    busy = sum(r.busy_pe for r in run.layers)
    assert busy / (run.cycles * CFG16.pes) > 0.9  # measured 96.6%
