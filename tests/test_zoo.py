"""The built-in model zoo: every model validates, has the published layer structure and shapes, and its
MAC count matches the well-known figure."""

import numpy as np
import pytest

from mappings.graph import Add, Conv2d, Gemm, LayerGraph, MatMul, Reshape
from mappings.zoo import ZOO, UnknownModelError, bert_base, get_model, model_names, total_macs

# name: (compute layers, residual Adds, exact MACs, published MACs, tolerance)
EXPECTED = {
    # torchvision resnet50 (v1.5) 4.09 GFLOPs(=MACs); the usual "4.1 GMACs"
    "resnet50": (54, 16, 4_089_184_256, 4.1e9, 0.01),
    # torchvision resnet18 1.81 GMACs; the usual "1.8 GMACs"
    "resnet18": (21, 8, 1_814_073_344, 1.8e9, 0.01),
    # Howard et al. 2017, Table 8: 569 million mult-adds
    "mobilenet_v1": (28, 0, 568_740_352, 569e6, 0.002),
    # Sandler et al. 2018, Table 4: 300 million mult-adds
    "mobilenet_v2": (53, 10, 300_774_272, 300e6, 0.005),
    # one BERT-base layer at seq 128: 4*128*768*768 + 2*128*768*3072 + 2*12*128*128*64
    "bert_base": (8, 2, 931_135_488, 4 * 128 * 768 * 768 + 2 * 128 * 768 * 3072 + 2 * 12 * 128 * 128 * 64, 0.0),
    "mlp": (3, 0, 535_040, 784 * 512 + 512 * 256 + 256 * 10, 0.0),
    # the ONNX-built ones (mappings.zoo.ONNX_ZOO): Howard et al. 2019, Tables 3 and 4: 56M and 219M MAdds
    "mobilenet_v3_small": (54, 6, 56_510_400, 56e6, 0.01),
    "mobilenet_v3_large": (64, 10, 216_589_760, 219e6, 0.015),
    # Tan and Le 2019, Table 2: 0.39B FLOPs (multiply-adds)
    "efficientnet_b0": (82, 9, 385_814_752, 0.39e9, 0.015),
    # torchvision's model card: 0.35 GFLOPS
    "squeezenet1_1": (26, 0, 349_151_936, 0.35e9, 0.005),
    # Ma et al. 2018, Table 5: 41M FLOPs (multiply-adds)
    "shufflenet_v2_x0_5": (57, 0, 40_476_448, 41e6, 0.015),
    # the whole layer graph: the same GEMMs as bert_base, plus the two residuals and GELU's erf + 1
    "bert_base_encoder": (8, 3, 931_135_488, 4 * 128 * 768 * 768 + 2 * 128 * 768 * 3072 + 2 * 12 * 128 * 128 * 64,
                          0.0),
}


@pytest.fixture(scope="module")
def models() -> dict[str, LayerGraph]:
    return {n: get_model(n) for n in model_names()}


def _count(g: LayerGraph, kind) -> int:
    return sum(isinstance(layer, kind) for _, layer in g)


def test_registry():
    assert set(ZOO) == set(EXPECTED)
    assert model_names() == sorted(EXPECTED)


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownModelError) as e:
        get_model("resnet51")
    assert isinstance(e.value, KeyError)
    msg = str(e.value)
    assert "resnet51" in msg and all(n in msg for n in ZOO)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_structure_and_macs(models, name):
    g = models[name]
    n_compute, n_add, exact, published, tol = EXPECTED[name]
    assert g.validate() is g  # validates (again) without error
    assert len(g.compute_layers()) == n_compute
    assert _count(g, Add) == n_add
    assert len(g.outputs) == 1
    macs = total_macs(g)
    assert macs == exact
    assert abs(macs - published) <= tol * published
    # no weights unless asked for
    assert all(getattr(layer, "weight", None) is None for _, layer in g)


@pytest.mark.parametrize("name", ["resnet50", "resnet18", "mobilenet_v1", "mobilenet_v2"])
def test_classifier_head(models, name):
    g = models[name]
    assert g.shapes["input"] == (1, 3, 224, 224)
    assert g.shapes[g.outputs[0]] == (1, 1000)
    assert g.outputs == ["fc"]
    fc = g.layer("fc")
    assert isinstance(fc, Gemm) and fc.out_features == 1000


def test_resnet50_stages(models):
    g = models["resnet50"]
    assert g.shapes["stem.conv"] == (1, 64, 112, 112)
    assert g.shapes["stem.maxpool"] == (1, 64, 56, 56)
    ends = {"layer1.2.relu": (1, 256, 56, 56), "layer2.3.relu": (1, 512, 28, 28),
            "layer3.5.relu": (1, 1024, 14, 14), "layer4.2.relu": (1, 2048, 7, 7)}
    for node, shape in ends.items():
        assert g.shapes[node] == shape
    assert g.shapes["avgpool"] == (1, 2048, 1, 1)
    # v1.5: the stride sits on the 3x3 conv of each stage's first block
    assert g.layer("layer2.0.conv2").stride == (2, 2) and g.layer("layer2.0.conv1").stride == (1, 1)
    assert sorted(n for n in g.order() if n.endswith("downsample")) == [f"layer{i}.0.downsample" for i in range(1, 5)]
    # residual: Add of the block output and the shortcut, then ReLU
    assert g.inputs_of("layer1.1.add") == ["layer1.1.conv3", "layer1.0.relu"]


def test_resnet50_v1_variant():
    g = get_model("resnet50", stride_on_3x3=False)
    assert g.layer("layer2.0.conv1").stride == (2, 2) and g.layer("layer2.0.conv2").stride == (1, 1)
    assert total_macs(g) == 3_857_973_248  # the original v1's 3.86 GMACs


def test_resnet18_stages(models):
    g = models["resnet18"]
    for i, shape in enumerate([(1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7)], start=1):
        assert g.shapes[f"layer{i}.1.relu"] == shape
    assert "layer1.0.downsample" not in g.g  # identity shortcut where nothing changes
    assert g.layer("layer2.0.downsample").kernel == (1, 1)


def test_mobilenet_v1_blocks(models):
    g = models["mobilenet_v1"]
    dws = [g.layer(f"block{i}.dw") for i in range(1, 14)]
    assert all(d.depthwise and d.groups == d.in_channels == d.out_channels and d.kernel == (3, 3) for d in dws)
    assert [g.layer(f"block{i}.pw").out_channels for i in range(1, 14)] == \
        [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    assert g.shapes["block13.pw"] == (1, 1024, 7, 7)
    assert g.shapes["stem.conv"] == (1, 32, 112, 112)


def test_mobilenet_v2_bottlenecks(models):
    g = models["mobilenet_v2"]
    proj = [n for n in g.order() if n.endswith(".project")]
    proj.sort(key=lambda n: int(n.split(".")[0][5:]))
    assert [g.shapes[n][1] for n in proj] == [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320]
    assert [g.shapes[n][2] for n in proj] == [112, 56, 56, 28, 28, 28, 14, 14, 14, 14, 14, 14, 14, 7, 7, 7, 7]
    # expansion 6 (block 1 has none), ReLU6 as Clip(0, 6), linear projection
    assert "block1.expand" not in g.g
    assert g.layer("block2.expand").out_channels == 16 * 6
    clip = g.layer("block2.expand.relu6")
    assert (clip.kind, clip.min, clip.max) == ("Clip", 0.0, 6.0)
    # linear bottleneck: the projection feeds the next block (and its residual Add), never an activation
    assert sorted(g.g.successors("block2.project")) == ["block3.add", "block3.expand"]
    # residual Add exactly where stride is 1 and channels match
    adds = sorted(int(n.split(".")[0][5:]) for n in g.order() if n.endswith(".add"))
    assert adds == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]
    assert g.shapes["last.conv"] == (1, 1280, 7, 7)


def test_bert_layer(models):
    g = models["bert_base"]
    assert g.shapes["input"] == (128, 768)
    assert g.shapes["layer0.attn.scores"] == (12, 128, 128)
    assert g.shapes["layer0.attn.context"] == (12, 128, 64)
    assert g.shapes["layer0.ffn.fc1"] == (128, 3072)
    assert g.shapes[g.outputs[0]] == (128, 768)
    assert _count(g, MatMul) == 2 and _count(g, Gemm) == 6 and _count(g, Reshape) == 4
    rows = {r["name"]: r["macs"] for r in g.summary()}
    assert rows["layer0.attn.scores"] == rows["layer0.attn.context"] == 12 * 128 * 128 * 64
    assert g.g.graph["approximations"]  # what the IR cannot express is recorded


def test_bert_twelve_layers_is_bert_base():
    g = bert_base(num_layers=12)
    macs = total_macs(g)
    assert macs == 12 * 931_135_488
    assert abs(macs - 11.2e9) <= 0.01 * 11.2e9  # the usual "~11.2 GMACs (22.4 GFLOPs)" at seq 128
    g = bert_base(seq_len=64, batch=2)
    assert g.shapes["layer0.attn.scores"] == (24, 64, 64)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_with_weights(name):
    g = get_model(name, with_weights=True, seed=3)
    assert total_macs(g) == EXPECTED[name][2]
    for _, layer in g:
        if isinstance(layer, Conv2d):
            assert layer.weight.shape == (layer.out_channels, layer.in_channels // layer.groups, *layer.kernel)
            assert layer.bias.shape == (layer.out_channels,)
        elif isinstance(layer, Gemm):
            assert layer.weight.shape == (layer.in_features, layer.out_features)
            assert layer.bias.shape == (layer.out_features,)
        else:
            continue
        assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
        assert np.isfinite(layer.weight).all()


def test_weights_follow_the_seed():
    a, b, c = (get_model("mlp", with_weights=True, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.layer("fc1").weight, b.layer("fc1").weight)
    assert not np.array_equal(a.layer("fc1").weight, c.layer("fc1").weight)


def test_mlp(models):
    g = models["mlp"]
    assert [g.shapes[n] for n in ("fc1", "fc2", "fc3")] == [(1, 512), (1, 256), (1, 10)]
    assert g.outputs == ["fc3"] and "relu3" not in g.g
    assert get_model("mlp", sizes=(16, 8)).shapes["fc1"] == (1, 8)


def test_run_zoo_quantizes_the_onnx_graph_and_map_agrees(tmp_path):
    """``hwgen run zoo:NAME`` quantizes the zoo's ONNX graph with onnxruntime and runs it; ``map`` of the
    same name plans the same accelerator layers (cycles need the quantized graph's zero points: only the
    convolutions here, none an activation MatMul, so they are equal)."""
    import json

    from hwgen.cli import main

    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = ["--rows", "16", "--cols", "16", "--host-port-width", "128"]
    assert main(["run", "zoo:shufflenet_v2_x0_5", "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "y.npy"), "--report", str(tmp_path / "r.json"), *flags]) == 0
    assert np.load(tmp_path / "y.npy").shape == (1, 1000)
    assert main(["map", "zoo:shufflenet_v2_x0_5", "--json", str(tmp_path / "m.json"), *flags]) == 0
    ran = {r["name"]: r["cycles"] for r in json.loads((tmp_path / "r.json").read_text())["layers"]
           if r["where"] == "accelerator"}
    mapped = {r["layer"]: r["cycles"] for r in json.loads((tmp_path / "m.json").read_text())["layers"]
              if r["where"] == "accelerator"}
    assert ran == mapped and len(ran) == 57
    assert main(["run", "zoo:resnet50", "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "z.npy")]) == 2
