"""The command line against careless and hostile users (issue 7): one test per case the tester reported.

Every case must end with exit status 2 (or 0 where the input was valid), one line on stderr, no traceback,
and the file system exactly as it was outside the command's own new outputs. The importers' and the
campaign store's own hostile cases are in tests/test_hostile_models.py and tests/test_fi_hostile.py.
"""

import os
from pathlib import Path

import numpy as np
import pytest
from fs_snapshot import snapshot

from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.outputs import MARKER

SMALL = ["--rows", "2", "--cols", "3", "--a-spad-depth", "8", "--w-spad-depth", "8", "--acc-depth", "8"]


def refused(argv: list[str], capsys, *needles: str) -> str:
    """Run ``argv``: exit 2, one line on stderr holding every needle, no traceback; returns the line."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def usage_error(argv: list[str], capsys, *needles: str) -> None:
    """argparse's own refusal of a flag value: SystemExit(2) and the flag and the domain in the message."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    for n in needles:
        assert n in err, (n, err)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user's folder with files of their own, as the current folder."""
    (tmp_path / "victim.txt").write_text("the user's own file")
    (tmp_path / "mydir").mkdir()
    (tmp_path / "mydir" / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------ data loss
@pytest.fixture(scope="module")
def tiny_model(qdq_mlp):
    """The suite's quantized MLP and its input (tests/conftest.py)."""
    return qdq_mlp


def test_dump_layers_into_the_current_folder_deletes_nothing(home, tiny_model, capsys):
    model, x = tiny_model
    before = snapshot(home)
    for target in (".", str(home), "..", "mydir"):
        for force in ([], ["--force"]):
            refused(["run", str(model), "--input", str(x), "--output", "y.npy", "--dump-layers", target, *force],
                    capsys, target)
            assert snapshot(home) == before, target


def test_dump_layers_into_a_new_folder_then_force_replaces_only_it(home, tiny_model, capsys):
    model, x = tiny_model
    argv = ["run", str(model), "--input", str(x), "--output", "out/y.npy", "--dump-layers", "out/layers"]
    assert main(argv) == 0
    names = sorted(p.name for p in (home / "out" / "layers").iterdir())
    assert MARKER in names and len(names) > 3
    refused(argv, capsys, "an earlier hwgen output); --force replaces it")
    assert main(argv + ["--force"]) == 0
    (home / "out" / "layers" / "mine.txt").write_text("added later")
    refused(argv + ["--force"], capsys, "did not write")
    assert (home / "out" / "layers" / "mine.txt").read_text() == "added later"


@pytest.mark.parametrize("out", ["victim.txt", "mydir", ".", "SELF"])
def test_generate_never_replaces_what_it_did_not_make(home, capsys, out):
    before = snapshot(home)
    target = str(home) if out == "SELF" else out
    for force in ([], ["--force"]):
        refused(["generate", *SMALL, "--out", target, *force], capsys, target)
    assert snapshot(home) == before


def test_generate_into_a_folder_of_other_designs_is_refused(home, capsys):
    assert main(["generate", *SMALL, "--name", "one"]) == 0  # rtl_out/one
    assert main(["generate", *SMALL, "--name", "two"]) == 0
    capsys.readouterr()
    before = snapshot(home)
    refused(["generate", *SMALL, "--out", "rtl_out", "--force"], capsys, "rtl_out", "did not write")
    refused(["generate", *SMALL, "--name", "."], capsys, "'name'")
    refused(["generate", *SMALL, "--name", ".."], capsys, "'name'")
    assert snapshot(home) == before


def test_demo_into_a_foreign_folder_is_refused(home, capsys):
    before = snapshot(home)
    refused(["demo", "--no-rtl", "--out", "mydir", "--force"], capsys, "mydir", "did not write")
    assert snapshot(home) == before


@pytest.mark.parametrize("flag", ["--json", "--csv", "--png"])
def test_map_outputs_never_replace_links_or_devices(home, capsys, flag):
    os.symlink("victim.txt", home / "link.out")
    before = snapshot(home)
    for target, needle in (("link.out", "symbolic link"), ("/dev/null", "device"), ("mydir", "folder"),
                           ("victim.txt", "--force")):
        refused(["map", "zoo:mlp", flag, target], capsys, target, needle)
    assert snapshot(home) == before


def test_run_output_onto_a_link_or_device(home, tiny_model, capsys):
    model, x = tiny_model
    os.symlink("victim.txt", home / "y.npy")
    before = snapshot(home)
    for target in ("y.npy", "/dev/null"):
        for outputs in (["--output", target], ["--output", "ok.npy", "--report", target]):
            refused(["run", str(model), "--input", str(x), *outputs, "--force"], capsys, target)
    assert snapshot(home) == before


def test_multi_output_is_all_or_nothing(home, capsys):
    (home / "afile").write_text("x")
    before = snapshot(home)
    refused(["map", "zoo:mlp", "--json", "a.json", "--csv", "afile/x.csv", "--png", "c.png"], capsys, "afile")
    refused(["map", "zoo:mlp", "--json", "a.json", "--csv", "a.json"], capsys, "named twice")
    assert snapshot(home) == before


def test_stdout_dash(home, capsys):
    assert main(["map", "zoo:mlp", "--json", "-"]) == 0
    cap = capsys.readouterr()
    assert cap.out.lstrip().startswith("{") and "accelerator layers" in cap.err  # the table went to stderr
    refused(["map", "zoo:mlp", "--json", "-", "--csv", "-"], capsys, "only one output")
    (home / "p.s").write_text("halt\n")
    assert main(["asm", "p.s", "-o", "-"]) == 0
    cap = capsys.readouterr()
    assert len(cap.out) == 16 or cap.out == ""  # capsys captures text; the bytes went to sys.stdout.buffer


# ------------------------------------------------------------------ resource exhaustion and bad values
def test_huge_array_for_rtl_is_refused_fast(home, capsys):
    refused(["generate", "--rows", "256", "--cols", "256"], capsys, "65,536", "HWGEN_LIMIT_RTL_PES")
    assert snapshot(home).keys() == {"victim.txt", "mydir", "mydir/thesis.tex"}


def test_verify_program_count_is_limited(capsys):
    usage_error(["verify", "--programs", str(10 ** 12)], capsys, "--programs", "HWGEN_LIMIT_PROGRAMS")


@pytest.mark.parametrize("value, needle", [("1.5", "strictly between 0 and 1"), ("99", "0.99"), ("0", "between"),
                                           ("nan", "finite"), ("-0.5", "between")])
def test_confidence_must_be_a_fraction(home, capsys, value, needle):
    usage_error(["fi", "run", "--workload", "gemm:4x4x4", "--margin", "0.05", "--confidence", value, "--db",
                 "c.sqlite"], capsys, "--confidence", needle)
    assert not (home / "c.sqlite").exists()


def test_npy_header_claiming_a_huge_shape_is_refused_before_reading(home, tiny_model, capsys):
    model, _ = tiny_model
    def npy_header(descr: str) -> bytes:
        header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': (100000, 100000, 100000), }}"
        header += " " * (118 - len(header)) + "\n"
        return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()

    (home / "huge.npy").write_bytes(npy_header("<f4"))  # 4 PB of data declared, none present
    refused(["run", str(model), "--input", "huge.npy", "--output", "y.npy"], capsys, "huge.npy",
            "(100000, 100000, 100000)")
    (home / "obj.npy").write_bytes(npy_header("|O"))  # object arrays would need pickles
    refused(["run", str(model), "--input", "obj.npy", "--output", "y.npy"], capsys, "obj.npy", "dtype object")


# ------------------------------------------------------------------ tracebacks
@pytest.mark.parametrize("content, needle", [
    ('{"rows": 1' + "0" * 5000 + "}", "4,300 digits"),
    ("[" * 100_000, "nested 100000 levels"),
    ('{"rows": NaN}', "NaN"),
    ('{"name": "../../etc"}', "'name'"),
])
def test_config_json_hostile(home, capsys, content, needle):
    (home / "c.json").write_text(content)
    before = snapshot(home)
    refused(["generate", "--config", "c.json", "--out", "d"], capsys, "c.json", needle)
    assert snapshot(home) == before


def test_config_that_is_a_folder_or_device(home, capsys):
    refused(["generate", "--config", "mydir", "--out", "d"], capsys, "mydir", "folder")
    refused(["generate", "--config", "/dev/zero", "--out", "d"], capsys, "/dev/zero", "device")


@pytest.mark.parametrize("text, needle", [
    ("load target=a count=abc lanes=1\n", "'count'"),
    ("load count=" + "9" * 5000 + "\n", "'count'"),
    ("load tärget=a\n", "cannot parse"),
])
def test_asm_bad_values(home, capsys, text, needle):
    (home / "p.s").write_text(text)
    refused(["asm", "p.s", "-o", "p.bin"], capsys, "p.s:1", needle)
    assert not (home / "p.bin").exists()


def test_asm_binary_file_and_disasm_devices(home, capsys):
    (home / "b.s").write_bytes(bytes(range(256)))
    refused(["asm", "b.s", "-o", "p.bin"], capsys, "b.s", "UTF-8")
    refused(["disasm", "/dev/zero"], capsys, "/dev/zero", "device")
    refused(["disasm", "mydir"], capsys, "mydir", "folder")


def test_file_size_limit(home, capsys, monkeypatch):
    monkeypatch.setenv("HWGEN_LIMIT_FILE_BYTES", "1000")
    (home / "big.bin").write_bytes(bytes(16 * 100))
    refused(["disasm", "big.bin"], capsys, "big.bin", "1,600", "HWGEN_LIMIT_FILE_BYTES")
    monkeypatch.setenv("HWGEN_LIMIT_FILE_BYTES", "lots")
    refused(["disasm", "big.bin"], capsys, "HWGEN_LIMIT_FILE_BYTES", "positive whole number")


def test_a_defect_says_so_without_a_traceback(home, capsys, monkeypatch):
    import hwgen.isa

    def boom(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(hwgen.isa, "disassemble", boom)
    (home / "p.bin").write_bytes(bytes(16))
    assert main(["disasm", "p.bin"]) == 70
    err = capsys.readouterr().err
    assert "internal error ZeroDivisionError" in err and "report it" in err and "Traceback" not in err


def test_hwgen_cache_on_a_file(home, capsys, monkeypatch):
    """The build cache is checked before any Verilator work; a file in its place is a one-line error."""
    from hwgen.rtlsim import RtlSimError, cached_build

    (home / "cachefile").write_text("not a folder")
    with pytest.raises(RtlSimError, match="cachefile.*not a usable folder"):
        cached_build(home / "cachefile", "x", ["p"], ["a.out"], lambda d: None, {})
    assert (home / "cachefile").read_text() == "not a folder"


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    """An artefact truncated (or altered) after its build is noticed by its digest and built again."""
    from hwgen.rtlsim import cached_build

    builds = []

    def build(d: Path) -> None:
        builds.append(d)
        (d / "sim.exe").write_bytes(b"\x7fELF" + bytes(1000))

    args = (tmp_path / "cache", "t", ["recipe"], ["sim.exe"], build, {})
    _, d, _, cached = cached_build(*args)
    assert not cached and len(builds) == 1
    assert cached_build(*args)[3] is True and len(builds) == 1
    (d / "sim.exe").write_bytes(b"\x7fELF" + bytes(10))  # truncated
    assert cached_build(*args)[3] is False and len(builds) == 2
    assert (d / "sim.exe").stat().st_size == 1004
    (d / "sim.exe").unlink()
    assert cached_build(*args)[3] is False and len(builds) == 3


@pytest.mark.rtl
@pytest.mark.xdist_group("rtl-hostile-cache")
def test_truncated_cached_simulator_is_rebuilt(tmp_path, monkeypatch):
    """The real case: a native simulator truncated in the cache is rebuilt and runs correctly."""
    from hwgen import native, rtlsim
    from mappings.lowering import lower_gemm
    from sim.cycle import CycleModel
    from sim.reference import Quant

    monkeypatch.setenv("HWGEN_CACHE", str(tmp_path / "cache"))
    cfg = AcceleratorConfig(name="hostile2x2", rows=2, cols=2, a_spad_depth=16, w_spad_depth=16, acc_depth=8,
                            host_port_width=32)
    rng = np.random.default_rng(0)
    prog = lower_gemm(cfg, rng.integers(-8, 8, (3, 5)).astype(np.int8), rng.integers(-8, 8, (5, 2)).astype(np.int8),
                      Quant(multiplier=1, shift=0, zero_point=0, clamp_lo=-128, clamp_hi=127))
    first = native.run_programs_native(cfg, [prog])[0]
    (exe,) = (tmp_path / "cache").glob(f"native-*/obj_dir/{native.EXE_NAME}")
    exe.write_bytes(exe.read_bytes()[:4096])
    rtlsim._MEMO.clear()
    native._MEMO.clear()
    again = native.run_programs_native(cfg, [prog])[0]
    model = CycleModel(cfg).run(prog.image())
    assert again.cycles == first.cycles == model.cycles
    assert np.array_equal(again.memory, model.memory)


def test_scalesim_depthwise_row_expanding_to_millions_of_layers(home, capsys):
    """A DP row runs as one SCALE-Sim layer per channel: 5 million channels are refused before expansion."""
    (home / "dp.csv").write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                                 "Num Filter, Strides,\nDP1, 3, 3, 3, 3, 5000000, 1, 1,\n")
    for compat in ([], ["--scalesim-compat"]):
        refused(["map", "dp.csv", *compat], capsys, "dp.csv", "5,000,000", "HWGEN_LIMIT_LAYERS")


def test_force_replaces_only_files_hwgen_wrote(home, capsys):
    """--force onto a user's file is refused; onto an earlier output it replaces it; once edited, it is theirs."""
    before = snapshot(home)
    for flag in ("--json", "--csv", "--png"):
        refused(["map", "zoo:mlp", flag, "victim.txt", "--force"], capsys, "victim.txt", "not an output hwgen wrote")
    assert snapshot(home) == before
    assert main(["map", "zoo:mlp", "--json", "m.json"]) == 0
    refused(["map", "zoo:mlp", "--json", "m.json"], capsys, "--force replaces it")
    assert main(["map", "zoo:mlp", "--rows", "4", "--json", "m.json", "--force"]) == 0
    assert '"rows": 4' in (home / "m.json").read_text()
    (home / "m.json").write_text((home / "m.json").read_text() + "\n")  # the user touched it
    refused(["map", "zoo:mlp", "--json", "m.json", "--force"], capsys, "not an output hwgen wrote")
