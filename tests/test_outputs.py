"""hwgen.outputs: what a command may replace, and all-or-nothing writes (the rules in the module docstring)."""

import io
import os
from pathlib import Path

import pytest
from fs_snapshot import snapshot

from hwgen.outputs import MARKER, OutputError, Outputs, is_hwgen_folder


def _write(outs_args: dict, files: dict, folders: dict | None = None) -> None:
    with Outputs(**outs_args) as outs:
        keys = {p: outs.file(p) for p in files}
        fkeys = {p: outs.folder(p) for p in (folders or {})}
        for p, data in files.items():
            outs.put(keys[p], data)
        for p, data in (folders or {}).items():
            outs.put(fkeys[p], data)
        outs.commit()


def test_new_file_and_folder_are_created_with_parents(tmp_path):
    _write({}, {tmp_path / "a/b/x.json": b"{}"}, {tmp_path / "c/d": {"y.npy": b"1", "z.npy": b"2"}})
    assert (tmp_path / "a/b/x.json").read_bytes() == b"{}"
    assert sorted(p.name for p in (tmp_path / "c/d").iterdir()) == [MARKER, "y.npy", "z.npy"]
    assert is_hwgen_folder(tmp_path / "c/d")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"]  # no temporaries


def test_existing_user_file_is_never_replaced(tmp_path):
    f = tmp_path / "x.json"
    f.write_bytes(b"user data")
    for force in (False, True):
        with pytest.raises(OutputError, match="not an output hwgen wrote"):
            _write({"force": force}, {f: b"new"})
    assert f.read_bytes() == b"user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_earlier_output_file_replaced_only_with_force_and_only_if_unchanged(tmp_path):
    f = tmp_path / "x.json"
    _write({}, {f: b"first"})
    with pytest.raises(OutputError, match=r"an earlier hwgen output\); --force replaces it"):
        _write({}, {f: b"second"})
    _write({"force": True}, {f: b"second"})
    assert f.read_bytes() == b"second"
    f.write_bytes(b"second, edited by the user")  # now it is theirs
    with pytest.raises(OutputError, match="not an output hwgen wrote"):
        _write({"force": True}, {f: b"third"})
    assert f.read_bytes() == b"second, edited by the user"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_unreadable_record_means_nothing_is_replaceable(tmp_path, monkeypatch):
    f = tmp_path / "x.json"
    _write({}, {f: b"ours"})
    monkeypatch.setenv("HWGEN_STATE", str(tmp_path / "state-is-a-file"))
    (tmp_path / "state-is-a-file").write_text("not a folder")
    with pytest.raises(OutputError, match="not an output hwgen wrote"):
        _write({"force": True}, {f: b"new"})
    assert f.read_bytes() == b"ours"


@pytest.mark.parametrize("force", [False, True])
def test_links_and_devices_are_never_replaced(tmp_path, force):
    target = tmp_path / "target.txt"
    target.write_bytes(b"precious")
    (tmp_path / "link.json").symlink_to(target)
    (tmp_path / "dirlink").symlink_to(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    before = snapshot(tmp_path)
    for p, needle in ((tmp_path / "link.json", "symbolic link"), ("/dev/null", "device"),
                      (tmp_path / "fifo", "FIFO")):
        with pytest.raises(OutputError, match=needle):
            _write({"force": force}, {p: b"x"})
    with pytest.raises(OutputError, match="symbolic link"):
        _write({"force": force}, {}, {tmp_path / "dirlink": {"a": b"x"}})
    assert snapshot(tmp_path) == before


def test_foreign_folder_is_never_replaced(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    (d / "thesis.tex").write_bytes(b"years of work")
    for force in (False, True):
        with pytest.raises(OutputError, match="did not write"):
            _write({"force": force}, {}, {d: {"a.npy": b"x"}})
    assert snapshot(d) == {"thesis.tex": ("file", b"years of work")}


def test_own_folder_replaced_only_with_force_and_only_if_unchanged(tmp_path):
    d = tmp_path / "dump"
    _write({}, {}, {d: {"a.npy": b"1"}})
    with pytest.raises(OutputError, match="--force replaces it"):
        _write({}, {}, {d: {"b.npy": b"2"}})
    _write({"force": True}, {}, {d: {"b.npy": b"2"}})
    assert sorted(p.name for p in d.iterdir()) == [MARKER, "b.npy"]
    (d / "my_notes.txt").write_text("added by the user")  # now it holds a file hwgen did not write
    with pytest.raises(OutputError, match="files hwgen did not write"):
        _write({"force": True}, {}, {d: {"c.npy": b"3"}})
    assert (d / "my_notes.txt").read_text() == "added by the user" and (d / "b.npy").read_bytes() == b"2"


def test_forged_marker_does_not_make_a_folder_replaceable(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / MARKER).write_text('{"tool": "hwgen", "files": []}')
    (d / "secret").write_text("x")
    with pytest.raises(OutputError):
        _write({"force": True}, {}, {d: {"a": b"1"}})
    assert (d / "secret").read_text() == "x"


def test_empty_folder_is_used(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    _write({}, {}, {d: {"a": b"1"}})
    assert (d / "a").read_bytes() == b"1"


def test_current_folder_and_its_parents_are_refused(tmp_path, monkeypatch):
    here = tmp_path / "proj"
    _write({}, {}, {here: {"a": b"1"}})  # even an hwgen folder
    monkeypatch.chdir(here)
    for p in (".", str(here), "..", str(tmp_path)):
        with pytest.raises(OutputError):
            _write({"force": True}, {}, {p: {"b": b"2"}})
    assert (here / "a").read_bytes() == b"1"


def test_overlapping_and_duplicate_targets_are_refused(tmp_path):
    with pytest.raises(OutputError, match="named twice"):
        _write({}, {f"{tmp_path}/x": b"1", f"{tmp_path}/sub/../x": b"2"})
    with pytest.raises(OutputError, match="inside the other"):
        _write({}, {tmp_path / "d/y.npy": b"1"}, {tmp_path / "d": {"a": b"2"}})
    assert list(tmp_path.iterdir()) == []


def test_one_stdout_output(tmp_path):
    buf = io.BytesIO()
    with Outputs(stdout=buf) as outs:
        k = outs.file("-")
        assert outs.uses_stdout
        with pytest.raises(OutputError, match="only one output"):
            outs.file("-")
        outs.put(k, b"payload")
        outs.commit()
    assert buf.getvalue() == b"payload"


def test_all_or_nothing_when_a_later_target_fails(tmp_path, monkeypatch):
    """A failure renaming the second output puts the first back as it was and leaves no temporaries."""
    a = tmp_path / "a.json"
    _write({}, {a: b"old a"})  # an earlier output, replaceable with --force
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if Path(dst).name == "b.csv":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OutputError, match="b.csv: cannot write"):
        _write({"force": True}, {a: b"new a", tmp_path / "b.csv": b"new b"}, {tmp_path / "dump": {"x": b"1"}})
    monkeypatch.undo()
    assert snapshot(tmp_path) == {"a.json": ("file", b"old a")}


def test_failure_before_commit_removes_staging_and_made_parents(tmp_path):
    with pytest.raises(RuntimeError):
        with Outputs() as outs:
            k = outs.folder(tmp_path / "new/deep/demo")
            work = outs.stage_folder(k)
            (work / "partial.v").write_text("half")
            raise RuntimeError("simulation failed")
    assert list(tmp_path.iterdir()) == []


def test_target_changed_during_the_work_is_rechecked(tmp_path):
    f = tmp_path / "out.json"
    with Outputs() as outs:
        k = outs.file(f)
        f.write_text("the user saved a file here meanwhile")
        outs.put(k, b"ours")
        with pytest.raises(OutputError, match="exists"):
            outs.commit()
    assert f.read_text() == "the user saved a file here meanwhile"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_trailing_slash_and_bad_names(tmp_path):
    with pytest.raises(OutputError, match="names a folder"):
        _write({}, {f"{tmp_path}/x/": b"1"})
    with pytest.raises(OutputError, match="not a file name"):
        _write({}, {}, {tmp_path / "d": {"../escape": b"1"}})
    assert list(tmp_path.iterdir()) == []
