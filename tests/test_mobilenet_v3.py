"""MobileNetV3-Small (torchvision's architecture at 1x3x64x64, random weights, quantized by onnxruntime) end to
end on the cycle model against onnxruntime (tests/ort_checks.py): hard-swish as ONNX's HardSwish (opset 17)
and as torch's HardSigmoid-and-Mul (opset 13), squeeze-excite channel scales, per-tensor and per-channel
weights, int8 and uint8 activations."""

import onnx
import pytest

from hwgen.config import AcceleratorConfig
from mappings.onnx_models import quantize_qdq, save
from mappings.onnx_vision import mobilenet_v3_small
from ort_checks import check_against_ort

CFG = AcceleratorConfig(name="mv3", rows=16, cols=16, host_port_width=128, a_spad_depth=8192, w_spad_depth=8192,
                        acc_depth=1024, controller="in-order")  # numerics do not depend on it; the in-order model is faster
CASES = [(17, "int8", False, 64), (13, "uint8", True, 32)]


@pytest.mark.parametrize("opset,act,pc,hw", CASES, ids=[f"opset{o}-{a}-{'pc' if p else 'pt'}-{h}" for o, a, p, h in CASES])
def test_mobilenet_v3_small_against_onnxruntime(tmp_path, opset, act, pc, hw):
    fm = mobilenet_v3_small(seed=opset, hw=hw, opset=opset)
    save(fm, tmp_path / "f.onnx")
    quantize_qdq(tmp_path / "f.onnx", tmp_path / "q.onnx", activation_type=act, per_channel=pc, seed=opset)
    ops = {n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node}
    assert {"HardSigmoid", "Mul", "GlobalAveragePool", "Add", "Conv", "Gemm"} <= ops
    assert ("HardSwish" in ops) == (opset >= 14)
    check_against_ort(tmp_path / "q.onnx", fm, CFG, opset, n=1)
