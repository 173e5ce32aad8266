"""AcceleratorConfig validation and serialisation; ISA encoding, text form and checks (pure Python, fast)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.config import INSTR_BITS, AcceleratorConfig, ConfigError
from hwgen.isa import (
    INSTR_BYTES, LAYOUT, OPCODE_BITS, Instruction, IsaError, Opcode, assemble, check_instruction, compute, config,
    decode, disassemble, encode, field_offsets, format_instruction, format_program_text, halt, load,
    parse_instruction, parse_program_text, store,
)
from hwgen.program import Program, ProgramError, Region


# ------------------------------------------------------------------ config
BAD_FIELDS = [
    ("rows", 0), ("rows", 257), ("rows", True), ("rows", "4"), ("cols", 0), ("cols", 1000),
    ("dataflow", "is"), ("dataflow", "OS"), ("input_width", 9), ("input_width", 1), ("weight_width", 16),
    ("output_width", 0), ("acc_width", 40), ("acc_width", 7), ("acc_width", 16), ("max_reduction", 0),
    ("a_spad_depth", 0), ("a_spad_depth", 1 << 17), ("w_spad_depth", 4), ("acc_depth", 7),
    ("host_port_width", 24), ("host_port_width", 256), ("name", ""), ("name", "a b"), ("name", 3),
    ("max_reduction", 2.5),
]


@pytest.mark.parametrize("fld,value", BAD_FIELDS)
def test_config_error_names_field(fld, value):
    kw = dict(rows=8, cols=8)
    kw[fld] = value
    with pytest.raises(ConfigError) as e:
        AcceleratorConfig(**kw)
    assert f"'{fld}'" in str(e.value)


def test_config_acc_width_names_requirement():
    with pytest.raises(ConfigError, match="acc_width.*max_reduction=4096.*28 bits"):
        AcceleratorConfig(acc_width=27)
    AcceleratorConfig(acc_width=28)  # exactly enough
    AcceleratorConfig(acc_width=16, max_reduction=1)


def test_config_defaults_and_derived():
    cfg = AcceleratorConfig()
    assert cfg.supports_os and cfg.supports_ws
    assert cfg.host_port_bytes * 8 == cfg.host_port_width
    assert cfg.fetch_beats * cfg.host_port_width == INSTR_BITS
    assert cfg.pes == cfg.rows * cfg.cols
    assert not AcceleratorConfig(dataflow="os").supports_ws
    assert not AcceleratorConfig(dataflow="ws").supports_os
    with pytest.raises(Exception):
        cfg.rows = 4  # frozen


configs = st.builds(
    lambda r, c, df, iw, ww, ow, mr, extra, ad, wd, accd, port, name: AcceleratorConfig(
        name=name, rows=r, cols=c, dataflow=df, input_width=iw, weight_width=ww, output_width=ow,
        max_reduction=mr, acc_width=max(8, min(32, iw + ww + max(0, (mr - 1).bit_length()) + extra)),
        a_spad_depth=ad, w_spad_depth=max(r, wd), acc_depth=max(r, accd), host_port_width=port),
    st.integers(1, 64), st.integers(1, 64), st.sampled_from(["os", "ws", "both"]), st.integers(2, 8),
    st.integers(2, 8), st.integers(2, 8), st.integers(1, 1 << 14), st.integers(0, 4), st.integers(1, 4096),
    st.integers(1, 4096), st.integers(1, 4096), st.sampled_from([8, 16, 32, 64, 128]),
    st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}", fullmatch=True),
)


@settings(max_examples=60, deadline=None)
@given(configs)
def test_config_json_round_trip(cfg):
    assert AcceleratorConfig.from_json(cfg.to_json()) == cfg
    assert AcceleratorConfig.from_dict(cfg.to_dict()) == cfg
    assert AcceleratorConfig.from_json(cfg.to_json()).key() == cfg.key()


def test_config_save_load(tmp_path):
    cfg = AcceleratorConfig(name="t4x4", rows=4, cols=4, dataflow="ws", a_spad_depth=32)
    p = tmp_path / "cfg.json"
    cfg.save(p)
    assert AcceleratorConfig.load(p) == cfg
    assert cfg.key() != AcceleratorConfig(name="t4x4", rows=4, cols=4, dataflow="os", a_spad_depth=32).key()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["cfg.json"]  # no temporary left behind


def test_config_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown field.*colums"):
        AcceleratorConfig.from_dict({"rows": 4, "colums": 4})
    with pytest.raises(ConfigError, match="not valid JSON"):
        AcceleratorConfig.from_json("{rows: 4")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        AcceleratorConfig.from_json("[1, 2]")
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"rows": 0}))
    with pytest.raises(ConfigError, match=r"bad\.json.*'rows'"):
        AcceleratorConfig.load(p)
    with pytest.raises(ConfigError, match="cannot read"):
        AcceleratorConfig.load(tmp_path / "missing.json")


# --------------------------------------------------------------------- ISA
def test_layout_fits_128_bits():
    for op in Opcode:
        offs = field_offsets(op)
        end = OPCODE_BITS + sum(f.width for f in LAYOUT[op])
        assert end <= INSTR_BITS
        pos = OPCODE_BITS
        for f in LAYOUT[op]:  # packed in order, no overlap
            assert offs[f.name] == (pos, f)
            pos += f.width


def instructions(op: Opcode | None = None):
    ops = st.sampled_from(list(Opcode)) if op is None else st.just(op)
    return ops.flatmap(lambda o: st.fixed_dictionaries(
        {f.name: st.integers(f.lo, len(f.names) - 1 if f.names else f.hi) for f in LAYOUT[o]}).map(lambda kw: Instruction(o, kw)))


@settings(max_examples=400, deadline=None)
@given(instructions())
def test_encode_decode_text_round_trip(ins):
    word = encode(ins)
    assert 0 <= word < 1 << INSTR_BITS
    assert word & ((1 << OPCODE_BITS) - 1) == int(ins.op)
    assert decode(word) == ins
    assert parse_instruction(format_instruction(ins)) == ins
    assert disassemble(assemble([ins]), stop_at_halt=False) == [ins]


@pytest.mark.parametrize("op", list(Opcode))
def test_round_trip_each_opcode(op):
    @settings(max_examples=50, deadline=None)
    @given(instructions(op))
    def run(ins):
        assert decode(encode(ins)) == ins
        assert parse_instruction(str(ins)) == ins
    run()


@settings(max_examples=30, deadline=None)
@given(st.lists(instructions(), min_size=1, max_size=20))
def test_program_text_and_binary_round_trip(instrs):
    assert parse_program_text(format_program_text(instrs)) == instrs
    code = assemble(instrs)
    assert len(code) == INSTR_BYTES * len(instrs)
    assert disassemble(code, stop_at_halt=False) == instrs
    cut = next((i for i, x in enumerate(instrs) if x.op == Opcode.HALT), len(instrs) - 1)
    assert disassemble(code) == instrs[:cut + 1]


def test_all_zero_word_is_halt():
    assert decode(0) == halt()
    assert assemble([halt()]) == bytes(INSTR_BYTES)


@pytest.mark.parametrize("op,fld", [(op, f) for op in Opcode for f in LAYOUT[op]], ids=lambda x: getattr(x, "name", x))
def test_out_of_range_field_errors(op, fld):
    for bad in (fld.hi + 1, fld.lo - 1):
        with pytest.raises(IsaError, match=f"'{fld.name}' = {bad}"):
            {Opcode.LOAD: load, Opcode.COMPUTE: compute, Opcode.STORE: store, Opcode.CONFIG: config}[op](**{fld.name: bad})
        with pytest.raises(IsaError, match=fld.name):
            parse_instruction(f"{op.name.lower()} {fld.name}={bad}")
    if fld.names:
        with pytest.raises(IsaError, match=fld.name):
            parse_instruction(f"{op.name.lower()} {fld.name}=bogus")


def test_isa_misc_errors():
    with pytest.raises(IsaError, match="unknown field"):
        load(colour=1)
    with pytest.raises(IsaError, match="illegal opcode 9"):
        decode(9)
    with pytest.raises(IsaError, match="unknown mnemonic"):
        parse_instruction("jump base=3")
    with pytest.raises(IsaError, match="prog:2"):
        parse_program_text("halt\nload count=x=1\n", source="prog")
    with pytest.raises(IsaError, match="whole number"):
        disassemble(bytes(17))
    ins = compute(dataflow="ws", rows=3, depth=2)
    assert ins.dataflow == 1 and "dataflow=ws" in str(ins)
    with pytest.raises(AttributeError, match="no field 'base'"):
        _ = ins.base
    assert parse_program_text("# comment\n  halt  # stop\n\n") == [halt()]


CFG = AcceleratorConfig(rows=4, cols=6, dataflow="os", a_spad_depth=32, w_spad_depth=16, acc_depth=8,
                        output_width=6, acc_width=28)


@pytest.mark.parametrize("ins,fld", [
    (load(target="a", count=0, lanes=1), "count"),
    (load(target="a", spad_addr=30, count=3, lanes=1), "count"),
    (load(target="w", spad_addr=14, count=3, lanes=1), "count"),
    (load(target="a", count=1, lanes=0), "lanes"),
    (load(target="a", count=1, lanes=5), "lanes"),
    (load(target="w", count=1, lane_off=3, lanes=4), "lanes"),
    (compute(dataflow="ws", rows=1, depth=1), "dataflow"),
    (compute(rows=0, depth=1), "rows"),
    (compute(rows=1, depth=0), "depth"),
    (compute(rows=5, depth=1), "rows"),
    (compute(rows=4, depth=17), "depth"),
    (compute(rows=4, depth=4, a_addr=30), "depth"),
    (compute(rows=4, depth=4, o_addr=5), "rows"),
    (store(rows=0, cols=1), "rows"),
    (store(rows=9, cols=1), "rows"),
    (store(rows=1, cols=7), "cols"),
    (store(rows=1, cols=0), "cols"),
    (config(shift=63, clamp_hi=1), "shift"),
    (config(clamp_lo=-33), "clamp_lo"),
    (config(clamp_hi=64), "clamp_hi"),
    (config(clamp_lo=5, clamp_hi=4), "clamp_lo"),
])
def test_check_instruction_names_field(ins, fld):
    with pytest.raises(IsaError, match=f"field '{fld}'"):
        check_instruction(ins, CFG)


def test_check_instruction_accepts_limits():
    for ins in (load(target="a", spad_addr=31, count=1, lane_off=3, lanes=1),
                load(target="w", count=16, lanes=6, zero=1),
                compute(rows=4, depth=16, o_addr=4), store(rows=8, cols=6),
                config(clamp_lo=-32, clamp_hi=63, shift=62), halt()):
        check_instruction(ins, CFG)
    ws = AcceleratorConfig(rows=4, cols=4, dataflow="ws", a_spad_depth=32, w_spad_depth=16, acc_depth=8)
    check_instruction(compute(dataflow="ws", rows=8, depth=4, a_addr=24, w_addr=12), ws)
    with pytest.raises(IsaError, match="'depth'"):
        check_instruction(compute(dataflow="ws", rows=1, depth=5), ws)


# ------------------------------------------------------------------ program
def test_program_save_load_and_checks(tmp_path):
    cfg = AcceleratorConfig(rows=2, cols=2, host_port_width=32)
    a = np.arange(-4, 4, dtype=np.int8).reshape(2, 4)
    prog = Program([load(target="a", count=4, lanes=2, base=16, word_stride=1, lane_stride=4), halt()],
                   {"A": (Region(32, (2, 4)), a)}, {"out": Region(40, (2, 2), "uint8")}, 44, {"kind": "t"})
    prog.check(cfg)
    img = prog.image()
    assert img.size == 44 and np.array_equal(prog.inputs["A"][0].read(img), a)
    p = tmp_path / "p.npz"
    prog.save(p)
    back = Program.load(p)
    assert back.code == prog.code and back.mem_size == 44 and back.meta == {"kind": "t"}
    assert back.outputs == prog.outputs and np.array_equal(back.image(), img)
    with pytest.raises(ProgramError, match="end with halt"):
        Program([load(count=1, lanes=1)], mem_size=16).check(cfg)
    with pytest.raises(ProgramError, match="multiple"):
        Program([halt()], mem_size=18).check(cfg)
    with pytest.raises(ProgramError, match="overlaps the code"):
        Program([halt()], {"A": (Region(8, (2, 4)), a)}, mem_size=64).image()
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ProgramError, match="not a hwgen program"):
        Program.load(tmp_path / "junk.npz")


def test_dataflow_codes_are_checked():
    """The compute field has one code per stationary dataflow; anything else is refused by name."""
    from hwgen.dataflow import STATIONARY, Dataflow
    from hwgen.isa import Instruction, IsaError, Opcode, check_instruction

    assert [Dataflow.from_code(i) for i in range(2)] == [Dataflow.OS, Dataflow.WS] == list(STATIONARY)
    assert [d.code for d in STATIONARY] == [0, 1]
    for bad in (2, -1, True, 1.0, "0"):
        with pytest.raises(ValueError, match="dataflow code"):
            Dataflow.from_code(bad)
    with pytest.raises(ValueError):
        Dataflow.BOTH.code
    ins = Instruction(Opcode.COMPUTE, dict(dataflow=2, accumulate=0, a_addr=0, w_addr=0, o_addr=0, rows=1, depth=1))
    with pytest.raises(IsaError, match="field 'dataflow' = 2"):
        check_instruction(ins, AcceleratorConfig())
