"""The ``hwgen`` command line, called in-process: generate, asm/disasm, verify, demo.

Bad user input must exit with status 2 and one line on stderr naming the file
or field, and must leave the file system as it was (no output folder, no
temporary leftovers); a successful generate replaces an earlier hwgen output
folder whole, and only with --force (tests/test_outputs.py has the rules).
"""

import json
import os
from pathlib import Path

import pytest

import hwgen.generate
from hwgen.cli import main
from hwgen.config import AcceleratorConfig
from hwgen.outputs import MARKER

#: Small, quick to convert (well under a second).
SMALL = ["--name", "small", "--rows", "2", "--cols", "3", "--a-spad-depth", "8", "--w-spad-depth", "8",
         "--acc-depth", "8"]
FILES = {"hwgen_accel.v", "config.json", "manifest.json"}
#: What a generated folder holds: the design and hwgen's marker.
FOLDER = FILES | {MARKER}


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _tree(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    return lines[0]


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------ generate
def test_generate_writes_design_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *SMALL, "--out", "d1"]) == 0
    out = tmp_path / "d1"
    assert set(_listing(out)) == FOLDER
    assert "wrote d1/" in capsys.readouterr().out
    # an ordinary folder and ordinary files (not mkdtemp's 0700)
    assert _mode(out) == 0o777 & ~_umask()
    assert all(_mode(out / f) == 0o666 & ~_umask() for f in FILES)
    assert _listing(tmp_path) == ["d1"]  # no temporary leftovers

    text = (out / "hwgen_accel.v").read_text()
    assert "module hwgen_accel(" in text
    for bad in (str(tmp_path), "/home", "/work", "/root", "/tmp", "src ="):
        assert bad not in text, f"Verilog contains {bad!r}"
    assert "src=" not in text.replace(" ", "")

    cfg = AcceleratorConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert cfg == AcceleratorConfig(name="small", rows=2, cols=3, a_spad_depth=8, w_spad_depth=8, acc_depth=8)
    assert AcceleratorConfig.load(out / "config.json") == cfg

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["top"] == "hwgen_accel" and manifest["verilog"] == "hwgen_accel.v"
    assert manifest["config_key"] == cfg.key() and manifest["parameters"] == cfg.to_dict()
    ports = {p["name"]: p for p in manifest["ports"]}
    for name, direction in (("clk", "in"), ("rst", "in"), ("start", "in"), ("done", "out"),
                            ("cycles", "out"), ("busy_pe", "out")):
        assert ports[name]["direction"] == direction
        assert isinstance(ports[name]["width"], int) and ports[name]["width"] >= 1
    assert ports["start"]["width"] == ports["done"]["width"] == 1
    assert ports["cycles"]["width"] > 1 and ports["busy_pe"]["width"] > 1
    assert all(f"{p['name']}" in text.split(");", 1)[0] for p in manifest["ports"])  # all in the module header
    assert manifest["verilog_lines"] == text.count("\n")


def test_generate_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *SMALL, "--out", "a"]) == 0
    assert main(["generate", *SMALL, "--out", "sub/b"]) == 0
    a, b = tmp_path / "a", tmp_path / "sub" / "b"
    assert (a / "hwgen_accel.v").read_bytes() == (b / "hwgen_accel.v").read_bytes()
    assert _tree(a) == _tree(b)  # config and manifest too (the manifest holds no paths or times)


def test_generate_default_out_dir_is_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *SMALL]) == 0
    assert set(_listing(tmp_path / "rtl_out" / "small")) == FOLDER
    assert main(["generate", "--rows", "2", "--cols", "2", "--a-spad-depth", "4", "--w-spad-depth", "4",
                 "--acc-depth", "4"]) == 0
    assert _listing(tmp_path / "rtl_out") == ["default", "small"]  # name defaults to "default"


def test_generate_config_file_with_flag_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = AcceleratorConfig(name="fromfile", rows=3, cols=2, dataflow="ws", a_spad_depth=8, w_spad_depth=8,
                             acc_depth=8, host_port_width=32)
    base.save(tmp_path / "c.json")
    assert main(["generate", "--config", "c.json", "--cols", "4", "--host-port-width", "16"]) == 0
    got = AcceleratorConfig.load(tmp_path / "rtl_out" / "fromfile" / "config.json")
    assert got == AcceleratorConfig(**{**base.to_dict(), "cols": 4, "host_port_width": 16})


@pytest.mark.parametrize("flags, needle", [
    (["--rows", "0"], "'rows'"),
    (["--dataflow", "xyz"], "'dataflow'"),
    (["--acc-width", "12"], "'acc_width'"),
    (["--host-port-width", "24"], "'host_port_width'"),
    (["--name", "../escape"], "'name'"),
])
def test_generate_bad_flags(tmp_path, monkeypatch, capsys, flags, needle):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *flags, "--out", "d"]) == 2
    line = _error_line(capsys)
    assert line.startswith("hwgen generate: error:") and needle in line and "command line" in line
    assert _listing(tmp_path) == []


def test_generate_bad_flag_type_is_argparse_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["generate", "--rows", "two"])
    assert e.value.code == 2 and "--rows" in capsys.readouterr().err
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("content, needle", [
    ("{ this is not json", "not valid JSON"),
    ('{"rows": 4, "colums": 4}', "unknown field(s) colums"),
    ('[1, 2]', "expected a JSON object"),
    ('{"rows": "4"}', "'rows'"),
    ('{"rows": 4, "acc_width": 9}', "'acc_width'"),
    (None, "cannot read"),  # no such file
])
def test_generate_bad_config_file(tmp_path, monkeypatch, capsys, content, needle):
    monkeypatch.chdir(tmp_path)
    cfg_file = tmp_path / "bad.json"
    if content is not None:
        cfg_file.write_text(content)
    before = _listing(tmp_path)
    assert main(["generate", "--config", "bad.json", "--out", "d"]) == 2
    line = _error_line(capsys)
    assert "bad.json" in line and needle in line, line
    assert _listing(tmp_path) == before  # no output folder, no temporary folder


def test_generate_config_file_not_utf8(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage\x80")
    assert main(["generate", "--config", "bin.json", "--out", "d"]) == 2
    assert "bin.json" in _error_line(capsys)
    assert _listing(tmp_path) == ["bin.json"]


def _boom(*a, **k):
    raise RuntimeError("conversion failed")


def _defect_lines(capsys) -> list[str]:
    """stderr of a command that hit a defect: it says so and where to report, and shows no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error RuntimeError" in err and "report it" in err, err
    return err.splitlines()


def test_generate_failure_leaves_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hwgen.generate, "verilog_text", _boom)
    for out in (["--out", "d"], ["--out", "new/deeper/d"], []):  # [] is rtl_out/small: rtl_out is created
        assert main(["generate", *SMALL, *out]) == 70  # a crash of our own code: exit 70, said so
        assert "conversion failed" in _defect_lines(capsys)[0]
        assert _listing(tmp_path) == [], out


def test_generate_failure_while_writing_leaves_nothing(tmp_path, monkeypatch, capsys):
    """A failure after the temporary folder exists (here: writing the manifest) removes it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hwgen.generate, "tool_versions", _boom)
    assert main(["generate", *SMALL, "--out", "x/d"]) == 70
    _defect_lines(capsys)
    assert _listing(tmp_path) == []


def test_generate_replaces_earlier_output_whole_or_not_at_all(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d"
    assert main(["generate", *SMALL, "--out", "d"]) == 0
    first = _tree(out)

    # without --force: refused, untouched
    assert main(["generate", *SMALL, "--rows", "3", "--out", "d"]) == 2
    assert "--force" in _error_line(capsys)
    assert _tree(out) == first

    # failure with --force: the old folder stays exactly as it was, nothing else appears
    with monkeypatch.context() as m:
        m.setattr(hwgen.generate, "verilog_text", _boom)
        assert main(["generate", *SMALL, "--out", "d", "--force"]) == 70
    assert _tree(out) == first
    assert _listing(tmp_path) == ["d"]

    # success with --force: replaced whole, no leftovers
    assert main(["generate", *SMALL, "--rows", "3", "--out", "d", "--force"]) == 0
    assert set(_listing(out)) == FOLDER
    assert json.loads((out / "config.json").read_text())["rows"] == 3
    assert _listing(tmp_path) == ["d"]


def test_generate_never_replaces_a_foreign_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "d"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for force in ([], ["--force"]):
        assert main(["generate", *SMALL, "--out", "d", *force]) == 2
        assert "did not write" in _error_line(capsys)
        assert _tree(out) == {"notes.txt": b"mine"}


def test_generate_unwritable_out_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert main(["generate", *SMALL, "--out", "afile/d"]) == 2  # the parent is a file
    assert "afile" in _error_line(capsys)
    assert _listing(tmp_path) == ["afile"]


# ------------------------------------------------------------------ asm / disasm
PROGRAM_TEXT = """\
# a small program
config multiplier=1 shift=0 zero_point=0 clamp_lo=-128 clamp_hi=127
load target=a zero=0 spad_addr=0 count=4 lane_off=0 lanes=2 base=64 word_stride=1 lane_stride=4
load target=w count=4 lanes=3 base=72 word_stride=3 lane_stride=1   # fields default to 0
compute dataflow=os accumulate=0 a_addr=0 w_addr=0 o_addr=0 rows=2 depth=4
fence
store relu=1 o_addr=0 rows=2 cols=3 base=96 row_stride=3 col_stride=-1
halt
"""


def test_asm_disasm_round_trip(tmp_path, monkeypatch, capsys):
    from hwgen.isa import format_program_text, parse_program_text

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.s").write_text(PROGRAM_TEXT)
    assert main(["asm", "p.s", "-o", "p.bin"]) == 0
    assert "7 instructions" in capsys.readouterr().out
    data = (tmp_path / "p.bin").read_bytes()
    assert len(data) == 7 * 16
    assert _mode(tmp_path / "p.bin") == 0o666 & ~_umask()
    assert main(["disasm", "p.bin"]) == 0
    text = capsys.readouterr().out
    assert text == format_program_text(parse_program_text(PROGRAM_TEXT))
    assert text.splitlines()[0].startswith("config multiplier=1 ")
    assert "col_stride=-1" in text and "target=w" in text
    # the disassembly assembles to the same bytes
    (tmp_path / "q.s").write_text(text)
    assert main(["asm", "q.s", "-o", "out/q.bin"]) == 0
    assert (tmp_path / "out" / "q.bin").read_bytes() == data
    assert _listing(tmp_path) == ["out", "p.bin", "p.s", "q.s"]


@pytest.mark.parametrize("line, needles", [
    ("lod target=a count=1 lanes=1", ["unknown mnemonic", "'lod'"]),
    ("load target=a count=70000 lanes=1", ["'count'", "70000", "out of range"]),
    ("store row_stride=-600000", ["'row_stride'", "out of range"]),
    ("load target=x count=1", ["'target'", "must be one of a, w"]),
    ("compute bogus=1", ["unknown field(s) bogus"]),
    ("load count", ["cannot parse 'count'"]),
])
def test_asm_bad_line(tmp_path, monkeypatch, capsys, line, needles):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.s").write_text("halt\n# comment\n" + line + "\nhalt\n")
    assert main(["asm", "bad.s", "-o", "bad.bin"]) == 2
    msg = _error_line(capsys)
    assert msg.startswith("hwgen asm: error:") and "bad.s:3" in msg, msg
    for n in needles:
        assert n in msg, msg
    assert _listing(tmp_path) == ["bad.s"]  # no output, no temporary file


def test_asm_missing_source_and_unwritable_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["asm", "nope.s", "-o", "x.bin"]) == 2
    assert "nope.s" in _error_line(capsys)
    (tmp_path / "p.s").write_text("halt\n")
    (tmp_path / "adir").mkdir()
    assert main(["asm", "p.s", "-o", "adir"]) == 2  # output is a folder
    assert "adir" in _error_line(capsys)
    assert _listing(tmp_path) == ["adir", "p.s"] and _listing(tmp_path / "adir") == []


@pytest.mark.parametrize("data, needle", [
    (bytes(17), "not a whole number of 16-byte"),
    (bytes(15), "not a whole number of 16-byte"),
    (bytes(16) + (15).to_bytes(16, "little"), "illegal opcode 15"),
])
def test_disasm_bad_binary(tmp_path, monkeypatch, capsys, data, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.bin").write_bytes(data)
    assert main(["disasm", "b.bin"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "b.bin" in lines[0] and needle in lines[0], captured.err
    assert captured.out == ""


def test_disasm_missing_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["disasm", "missing.bin"]) == 2
    assert "missing.bin" in _error_line(capsys)


# ------------------------------------------------------------------ verify / demo
@pytest.mark.parametrize("flags, needle", [
    (["--programs", "0"], "argument --programs: must be at least 1, got 0"),
    (["--programs", "-3"], "argument --programs: must be at least 1"),
    (["--programs", "1000000000000"], "HWGEN_LIMIT_PROGRAMS"),
    (["--seed", "-1"], "argument --seed: must be at least 0"),
])
def test_verify_bad_arguments(tmp_path, monkeypatch, capsys, flags, needle):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:  # argparse's own usage error, exit 2
        main(["verify", "--rows", "2", "--cols", "2", *flags])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("hwgen verify: error:") and needle in err, err
    assert _listing(tmp_path) == []


def test_verify_bad_config_field(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "--rows", "0", "--cols", "2"]) == 2
    line = _error_line(capsys)
    assert line.startswith("hwgen verify: error:") and "'rows'" in line, line


@pytest.mark.rtl
@pytest.mark.xdist_group("rtl-cli")
def test_verify_cli_small_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["verify", "--name", "cli2x3", "--rows", "2", "--cols", "3", "--dataflow", "both",
               "--a-spad-depth", "16", "--w-spad-depth", "16", "--acc-depth", "16", "--host-port-width", "32",
               "--programs", "4"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert out.strip().splitlines()[-1] == "4 passed, 0 failed"
    assert "MISMATCH" not in out


def test_demo_model_only(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--no-rtl", "--out", "demo_out"]) == 0
    out = tmp_path / "demo_out"
    assert FOLDER | {"report.md", "report.json", "small_cnn.onnx", "small_cnn_int8.onnx",
                    "small_cnn_utilization.png", "fi_campaign.sqlite", "fi_report.md", "fi_report.json",
                    "fi_avf.png"} == set(_listing(out))
    report = json.loads((out / "report.json").read_text())
    cnn = report["small_cnn"]
    assert cnn["same_argmax"] and cnn["problems"] == [] and cnn["total_cycles"] > 0
    assert all(layer["rtl_cycles"] is None for layer in cnn["layers"])
    assert report["failed"] == 0 and report["passed"] == len(report["workloads"]) == 4  # conv + gemm, os + ws
    assert all(w["rtl_cycles"] is None and w["model_cycles"] > 0 and 0 < w["utilization"] <= 1
               for w in report["workloads"])
    assert AcceleratorConfig.from_dict(report["config"]) == AcceleratorConfig.load(out / "config.json")
    md = (out / "report.md").read_text()
    assert md.startswith("# hwgen demo report") and "| gemm 50x72x40 (ws) |" in md
    assert "4 passed, 0 failed" in capsys.readouterr().out
    assert _listing(tmp_path) == ["demo_out"]


def test_python_dash_m_and_version():
    import subprocess
    import sys
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "hwgen", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"hwgen {version('hwgen')}"
    bad = subprocess.run([sys.executable, "-m", "hwgen", "disasm", "/dev/zero"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("hwgen disasm: error: /dev/zero") and not bad.stdout


# ------------------------------------------------------------------ run and fi run take the array flags
#: A small array for the run and fi run tests (the defaults are 8x8).
RUN_SMALL = ["--rows", "2", "--cols", "2", "--a-spad-depth", "64", "--w-spad-depth", "64", "--acc-depth", "32"]


# qdq_mlp: tests/conftest.py


def _run_report(qdq_mlp, tmp_path, name, *flags) -> dict:
    model, x = qdq_mlp
    report = tmp_path / f"{name}.json"
    assert main(["run", str(model), "--input", str(x), "--output", str(tmp_path / f"{name}.npy"),
                 "--report", str(report), *flags]) == 0
    return json.loads(report.read_text())


def test_run_takes_the_array_flags(qdq_mlp, tmp_path, capsys):
    default = _run_report(qdq_mlp, tmp_path, "default")
    small = _run_report(qdq_mlp, tmp_path, "small", *RUN_SMALL, "--dataflow", "ws")
    assert (default["config"]["rows"], default["config"]["cols"]) == (8, 8)
    assert (small["config"]["rows"], small["config"]["cols"], small["config"]["dataflow"]) == (2, 2, "ws")
    assert small["config"]["acc_depth"] == 32
    assert small["total_cycles"] != default["total_cycles"]
    assert "on 2x2 (model)" in capsys.readouterr().out


def test_run_flags_override_the_config_file(qdq_mlp, tmp_path):
    cfg_file = tmp_path / "c.json"
    AcceleratorConfig(name="fromfile", rows=4, cols=4, dataflow="os", a_spad_depth=64, w_spad_depth=64,
                      acc_depth=32).save(cfg_file)
    from_file = _run_report(qdq_mlp, tmp_path, "file", "--config", str(cfg_file))
    assert (from_file["config"]["name"], from_file["config"]["rows"], from_file["config"]["cols"]) == ("fromfile", 4, 4)
    over = _run_report(qdq_mlp, tmp_path, "over", "--config", str(cfg_file), "--cols", "2")
    assert (over["config"]["name"], over["config"]["rows"], over["config"]["cols"]) == ("fromfile", 4, 2)
    assert over["config"]["dataflow"] == "os"
    assert over["total_cycles"] != from_file["total_cycles"]


@pytest.mark.parametrize("flags, needle", [
    (["--rows", "0"], "'rows' = 0"),
    (["--dataflow", "diagonal"], "'dataflow' = 'diagonal'"),
    (["--host-port-width", "12"], "host_port_width"),
])
def test_run_bad_array_flags(qdq_mlp, tmp_path, capsys, flags, needle):
    model, x = qdq_mlp
    out = tmp_path / "y.npy"
    assert main(["run", str(model), "--input", str(x), "--output", str(out), *flags]) == 2
    line = _error_line(capsys)
    assert line.startswith("hwgen run: error:") and needle in line
    assert not out.exists()


def test_run_bad_array_flag_type_is_a_usage_error(qdq_mlp, tmp_path, capsys):
    model, x = qdq_mlp
    with pytest.raises(SystemExit) as e:
        main(["run", str(model), "--input", str(x), "--output", str(tmp_path / "y.npy"), "--rows", "two"])
    assert e.value.code == 2
    assert "argument --rows: invalid int value: 'two'" in capsys.readouterr().err


FI_BASE = ["--workload", "gemm:4x6x3", "--injections", "20", "--seed", "2", "--backend", "model", "--no-progress"]


def _fi_config(db: Path) -> dict:
    from fault_injection.store import CampaignStore

    with CampaignStore.open(db, readonly=True) as store:
        return store.info.config


def test_fi_run_takes_the_array_flags(tmp_path, capsys):
    small = tmp_path / "small.sqlite"
    assert main(["fi", "run", *RUN_SMALL, "--dataflow", "os", *FI_BASE, "--db", str(small)]) == 0
    cfg = _fi_config(small)
    assert (cfg["rows"], cfg["cols"], cfg["dataflow"], cfg["acc_depth"]) == (2, 2, "os", 32)
    cfg_file = tmp_path / "c.json"
    AcceleratorConfig(name="fifile", rows=3, cols=3, a_spad_depth=64, w_spad_depth=64, acc_depth=32).save(cfg_file)
    over = tmp_path / "over.sqlite"
    assert main(["fi", "run", "--config", str(cfg_file), "--rows", "2", *FI_BASE, "--db", str(over)]) == 0
    cfg = _fi_config(over)
    assert (cfg["name"], cfg["rows"], cfg["cols"]) == ("fifile", 2, 3)
    capsys.readouterr()


@pytest.mark.parametrize("flags, needle", [
    (["--rows", "0"], "'rows' = 0"),
    (["--dataflow", "diagonal"], "'dataflow' = 'diagonal'"),
])
def test_fi_run_bad_array_flags(tmp_path, capsys, flags, needle):
    db = tmp_path / "bad.sqlite"
    assert main(["fi", "run", *flags, *FI_BASE, "--db", str(db)]) == 2
    line = _error_line(capsys)
    assert line.startswith("hwgen fi run: error:") and needle in line
    assert not db.exists()
