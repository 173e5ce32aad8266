"""Packed 4-bit weights on the load path (``load target=w4``, configurations with ``packed_weights``).

The reference is independent of the model's load path: each weight is unpacked here element by element
from the host bytes (byte ``base + w*word_stride + l//2``, low nibble first, sign-extended), the tile's
product and requantization computed with numpy, and the RTL must then equal the model in memory,
cycles and busy PE-cycles (:func:`hwgen.verify.verify_programs`). The loads cover every alignment of the
row start in the port word, odd and even lane counts, lane offsets, and strides that are not multiples
of the port.
"""

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig, ConfigError
from hwgen.footprint import footprint
from hwgen.isa import IsaError, LoadTarget, check_instruction, compute, config, halt, load, requantize, store
from hwgen.program import Program, Region
from sim.cycle import CycleModel
from sim.timing import exec_cycles

CFG = AcceleratorConfig(name="pk4x6", rows=4, cols=6, dataflow="os", a_spad_depth=16, w_spad_depth=16,
                        acc_depth=8, host_port_width=32, packed_weights=True)
#: the other corners: a one-byte port (no rotation of bytes, only of the two nibbles), an odd number of
#: columns, the in-order controller
CFG_NARROW = AcceleratorConfig(name="pk3x5io", rows=3, cols=5, dataflow="both", a_spad_depth=16, w_spad_depth=16,
                               acc_depth=8, host_port_width=8, controller="in-order", packed_weights=True)
MULT, SHIFT = 1 << 20, 22  # out = round(acc / 4): the products of 4-bit values stay well inside int8
MEM = 2048
A_AT, W_AT, OUT_AT = 512, 768, 1536


def _unpack(mem: np.ndarray, base: int, count: int, word_stride: int, lanes: int) -> np.ndarray:
    out = np.zeros((count, lanes), dtype=np.int64)
    for w in range(count):
        for e in range(lanes):
            nib = (int(mem[base + w * word_stride + e // 2]) >> (4 * (e % 2))) & 0xF
            out[w, e] = nib - 16 if nib >= 8 else nib
    return out


def _case(cfg: AcceleratorConfig, rng: np.random.Generator, depth: int) -> tuple[Program, np.ndarray]:
    """A program: A (depth x rows, plain loads), W zero-filled then written by 2-3 packed loads of random
    placement, one os compute, one store; and the numpy reference of its output."""
    R, C = cfg.rows, cfg.cols
    a = rng.integers(-8, 8, (depth, R), dtype=np.int64)
    wbytes = rng.integers(0, 256, 192, dtype=np.uint8)
    image = np.zeros(MEM, dtype=np.uint8)
    image[W_AT:W_AT + wbytes.size] = wbytes
    w_ref = np.zeros((depth, C), dtype=np.int64)
    ins = [config(multiplier=MULT, shift=SHIFT, zero_point=0, clamp_lo=-128, clamp_hi=127),
           load(target=LoadTarget.A, zero=0, spad_addr=0, count=depth, lane_off=0, lanes=R, base=A_AT,
                word_stride=R, lane_stride=1),
           load(target=LoadTarget.W, zero=1, spad_addr=0, count=depth, lane_off=0, lanes=C, base=0,
                word_stride=0, lane_stride=0)]
    for _ in range(int(rng.integers(2, 4))):
        w0 = int(rng.integers(0, depth))
        count = int(rng.integers(1, depth - w0 + 1))
        lane_off = int(rng.integers(0, C))
        lanes = int(rng.integers(1, C - lane_off + 1))
        offset = int(rng.integers(0, 40))            # any byte alignment within the 4-byte port word
        stride = int(rng.choice([(lanes + 1) // 2, 3, 5, 7]))
        ins.append(load(target=LoadTarget.W4, zero=0, spad_addr=w0, count=count, lane_off=lane_off, lanes=lanes,
                        base=W_AT + offset, word_stride=stride, lane_stride=1))
        w_ref[w0:w0 + count, lane_off:lane_off + lanes] = _unpack(image, W_AT + offset, count, stride, lanes)
    ins += [compute(dataflow=0, accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=R, depth=depth),
            store(relu=0, qtable=0, o_addr=0, rows=R, cols=C, base=OUT_AT, row_stride=C, col_stride=1), halt()]
    prog = Program(ins, {"A": (Region(A_AT, (depth, R)), a.astype(np.int8)),
                         "W": (Region(W_AT, (wbytes.size,), "uint8"), wbytes)},
                   {"out": Region(OUT_AT, (R, C))}, MEM, {"name": f"w4-depth{depth}"})
    expected = requantize(a.T @ w_ref, MULT, SHIFT, 0, -128, 127, False).astype(np.int8)
    return prog, expected


def _cases(cfg: AcceleratorConfig, n: int, seed: int) -> list[tuple[Program, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [_case(cfg, rng, int(rng.integers(1, 9))) for _ in range(n)]


# ------------------------------------------------------------------- no Verilator
@pytest.mark.parametrize("cfg", [CFG, CFG_NARROW], ids=lambda c: c.name)
def test_model_unpacks_nibbles_as_the_reference(cfg):
    for prog, expected in _cases(cfg, 40, seed=4):
        prog.check(cfg)
        res = CycleModel(cfg).run(prog.image())
        assert np.array_equal(prog.outputs["out"].read(res.memory), expected), prog.meta


def test_packed_load_reads_half_the_bytes_and_beats():
    """A w4 word of ``lanes`` weights reads ceil(lanes/2) bytes: its footprint and its beats are those of a
    plain load of that many lanes."""
    for lanes in range(1, 7):
        for base in range(4):
            w4 = load(target=LoadTarget.W4, zero=0, spad_addr=0, count=5, lane_off=0, lanes=lanes, base=100 + base,
                      word_stride=9, lane_stride=1)
            plain = load(target=LoadTarget.W, zero=0, spad_addr=0, count=5, lane_off=0, lanes=(lanes + 1) // 2,
                         base=100 + base, word_stride=9, lane_stride=1)
            assert footprint(CFG, w4) == footprint(CFG, plain)
            assert exec_cycles(CFG, w4) == exec_cycles(CFG, plain)


@pytest.mark.parametrize("field, args, match", [
    ("target", {}, "packed_weights"),
    ("zero", {"zero": 1}, "zero must be 0"),
    ("lane_stride", {"lane_stride": 2}, "lane_stride must be 1"),
])
def test_bad_packed_loads_name_the_field(field, args, match):
    base = dict(target=LoadTarget.W4, zero=0, spad_addr=0, count=1, lane_off=0, lanes=4, base=64, word_stride=2,
                lane_stride=1)
    cfg = AcceleratorConfig(name="plain", rows=4, cols=6) if field == "target" else CFG
    with pytest.raises(IsaError, match=f"field '{field}'.*{match}"):
        check_instruction(load(**{**base, **args}), cfg)


def test_packed_weights_need_four_bit_weights():
    with pytest.raises(ConfigError, match="packed_weights.*weight_width >= 4"):
        AcceleratorConfig(name="narrow", weight_width=3, packed_weights=True)
    with pytest.raises(ConfigError, match="packed_weights.*true or false"):
        AcceleratorConfig(name="bad", packed_weights=1)


def test_plain_configurations_generate_the_same_verilog():
    """packed_weights is the only switch: without it the nibble path is not generated at all."""
    from hwgen.harness import harness_verilog

    plain = AcceleratorConfig(name="p", rows=4, cols=6, host_port_width=32)
    packed = AcceleratorConfig(name="p", rows=4, cols=6, host_port_width=32, packed_weights=True)
    vp, vk = harness_verilog(plain, MEM, None), harness_verilog(packed, MEM, None)
    assert "ld_p_nrot" in vk and "ld_p_nrot" not in vp


# ---------------------------------------------------------------------- Verilator
@pytest.mark.rtl
@pytest.mark.parametrize("cfg", [CFG, CFG_NARROW], ids=lambda c: c.name)
def test_rtl_equals_model_and_reference_on_packed_loads(cfg):
    from hwgen.verify import verify_programs

    cases = _cases(cfg, 24, seed=9)
    result = verify_programs(cfg, cases, rtl=True)
    bad = [(c.name, c.problems) for c in result.checks if c.problems]
    assert not bad, bad
    assert len(result.checks) == 24
