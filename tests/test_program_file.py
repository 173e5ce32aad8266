"""Program.load on damaged or foreign files: always a ProgramError naming the file, never another exception."""

import io
import json

import numpy as np
import pytest

from hwgen.config import AcceleratorConfig
from hwgen.program import Program, ProgramError
from mappings.random_programs import random_programs

CFG = AcceleratorConfig(name="pf", rows=2, cols=2, a_spad_depth=16, w_spad_depth=16, acc_depth=16,
                        host_port_width=32)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    prog, _ = random_programs(CFG, 1, seed=3, max_cycles=2000)[0]
    path = tmp_path_factory.mktemp("prog") / "good.npz"
    prog.save(path)
    return prog, path.read_bytes()


def _load_error(path) -> str:
    with pytest.raises(ProgramError) as e:
        Program.load(path)
    assert str(path) in str(e.value)
    assert len(str(e.value).splitlines()) == 1
    return str(e.value)


def test_round_trip(saved, tmp_path):
    prog, data = saved
    (tmp_path / "p.npz").write_bytes(data)
    back = Program.load(tmp_path / "p.npz")
    assert back.code == prog.code and back.mem_size == prog.mem_size and back.outputs == prog.outputs
    assert np.array_equal(back.image(), prog.image()) and back.meta == json.loads(json.dumps(prog.meta))


@pytest.mark.parametrize("cut", [0, 3, 4, 30, 0.5, -1, -22])
def test_truncated_file(saved, tmp_path, cut):
    _, data = saved
    n = int(len(data) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(data) + cut)
    p = tmp_path / f"cut{n}.npz"
    p.write_bytes(data[:n])
    assert "not a hwgen program file" in _load_error(p)


def test_corrupt_bytes(saved, tmp_path):
    _, data = saved
    for i in (60, len(data) // 3, len(data) // 2):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        p = tmp_path / f"flip{i}.npz"
        p.write_bytes(bytes(bad))
        try:
            Program.load(p)  # a flip in slack bytes may go unnoticed; anything noticed must be a ProgramError
        except ProgramError as e:
            assert str(p) in str(e)


@pytest.mark.parametrize("content", [b"", b"junk", b"PK\x03\x04junk", b"\x93NUMPY" + bytes(40), b"{}"])
def test_not_an_npz(tmp_path, content):
    p = tmp_path / "x.npz"
    p.write_bytes(content)
    assert "not a hwgen program file" in _load_error(p)


def test_missing_file_and_folder(tmp_path):
    assert "cannot read (No such file or directory)" in _load_error(tmp_path / "missing.npz")
    (tmp_path / "d.npz").mkdir()
    assert "cannot read" in _load_error(tmp_path / "d.npz")


def _rewrite(data: bytes, path, change) -> None:
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    desc = json.loads(bytes(arrays["desc"]).decode())
    change(arrays, desc)
    arrays["desc"] = np.frombuffer(json.dumps(desc).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _set_opcode(arrays, desc, index=1, opcode=11):
    code = arrays["code"].copy()
    code[16 * index] = (code[16 * index] & 0xF0) | opcode
    arrays["code"] = code


@pytest.mark.parametrize("what, change, needle", [
    ("bad opcode", _set_opcode, "instruction 1: illegal opcode 11"),
    ("ragged code", lambda a, d: a.__setitem__("code", a["code"][:-3]), "not a whole number of 16-byte"),
    ("no code", lambda a, d: a.pop("code"), "not a hwgen program file"),
    ("no mem_size", lambda a, d: d.pop("mem_size"), "'mem_size'"),
    ("no outputs", lambda a, d: d.pop("outputs"), "'outputs'"),
    ("inputs a list", lambda a, d: d.__setitem__("inputs", []), "not a hwgen program file"),
    ("input array missing", lambda a, d: a.pop(next(k for k in a if k.startswith("in_"))), "not a hwgen program"),
    ("bad region", lambda a, d: d["outputs"]["out"].__setitem__("shape", "2x2"), "not a hwgen program file"),
    ("mem_size text", lambda a, d: d.__setitem__("mem_size", "big"), "not a hwgen program file"),
])
def test_malformed_contents(saved, tmp_path, what, change, needle):
    _, data = saved
    p = tmp_path / "m.npz"
    _rewrite(data, p, change)
    assert needle in _load_error(p)


def test_description_not_an_object(saved, tmp_path):
    _, data = saved
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    for desc in (b"[1, 2]", b"not json", b"\xff\xfe"):
        arrays["desc"] = np.frombuffer(desc, np.uint8)
        p = tmp_path / "d.npz"
        with open(p, "wb") as f:
            np.savez(f, **arrays)
        assert "not a hwgen program file" in _load_error(p)


def test_pickled_arrays_are_refused(saved, tmp_path):
    _, data = saved
    with np.load(io.BytesIO(data)) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["code"] = np.array([object()], dtype=object)
    p = tmp_path / "pickle.npz"
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    assert "not a hwgen program file" in _load_error(p)


def test_save_leaves_no_temporary_and_has_ordinary_permissions(saved, tmp_path):
    import os

    prog, _ = saved
    prog.save(tmp_path / "s.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "s.npz").stat().st_mode & 0o777 == 0o666 & ~mask
