"""Output targets that never cost a user a file: checked first, written all together or not at all.

Every command that writes files goes through :class:`Outputs`. The rules:

* An output that does not exist yet is created (with any missing parent
  folders, which are removed again if the command fails).
* An existing regular **file** is replaced only if hwgen wrote it and it is unchanged since
  (:mod:`hwgen.output_registry` records every file hwgen writes), and then only with ``--force``.
* An existing **folder** is replaced only if hwgen made it: it holds the marker
  file :data:`MARKER` listing what hwgen wrote there, and nothing else; and
  then only with ``--force``. An empty folder is used as if it did not exist.
  A folder holding files hwgen did not write is refused, ``--force`` or not.
* Symbolic links, devices, FIFOs and sockets are never replaced (nor written
  through); the current folder and its ancestors are never replaced.
* ``-`` names standard output, for one single-file output of a command.
* All outputs of a command are checked when they are declared (before the
  command's slow work), staged as hidden temporary siblings, and renamed into
  place together at :meth:`Outputs.commit`; if anything fails, every staged
  file is removed and every replaced target is put back.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable, Mapping

from .errors import HwgenError
from .output_registry import record_outputs, written_by_hwgen

__all__ = ["MARKER", "STDOUT", "OutputError", "Outputs", "check_file_target", "check_folder_target",
           "is_hwgen_folder"]

#: Name of the marker file in every folder hwgen writes (JSON: the tool, the command and the file names).
MARKER = ".hwgen-output"

#: The path that means standard output.
STDOUT = "-"


class OutputError(HwgenError):
    """An output target hwgen refuses to write; the message names the path and the reason."""


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"{path}: a parent of it is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"{path}: cannot be checked ({e.strerror or e})") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "a file"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _check_parent(path: Path) -> None:
    """The nearest existing ancestor must be a folder we can write into."""
    for parent in path.parents:
        st = _lstat(parent)
        if st is None:
            continue
        if stat.S_ISLNK(st.st_mode):
            st = parent.stat()  # a link to a folder is a fine place to write into
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: {parent} is not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: cannot write into {parent} (permission denied)")
        return


def _contains_cwd(path: Path) -> bool:
    try:
        here = Path.cwd().resolve()
        target = path.resolve()
    except OSError:
        return False
    return target == here or target in here.parents


def _existing(path: Path) -> os.stat_result | None:
    """``path``'s lstat, or None when it does not exist yet (then its nearest existing parent must be writable)."""
    st = _lstat(path)
    if st is None:
        _check_parent(path)
    return st


def check_file_target(path: Path, *, force: bool = False) -> bool:
    """Raise OutputError unless ``path`` may be written as a file; return whether it exists (will be replaced)."""
    st = _existing(path)
    if st is None:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{path}: is {_kind(st.st_mode)}; hwgen replaces only regular files"
                          + (" (use '-' for standard output)" if not stat.S_ISDIR(st.st_mode) else ""))
    if not written_by_hwgen(path):
        raise OutputError(f"{path}: exists and is not an output hwgen wrote (or was changed since); hwgen never "
                          f"replaces it, --force or not: choose another name")
    if not force:
        raise OutputError(f"{path}: exists (an earlier hwgen output); --force replaces it")
    _check_parent(path)
    return True


def marker_files(folder: Path) -> list[str] | None:
    """The file names an hwgen marker in ``folder`` lists, or None if there is no readable marker."""
    m = folder / MARKER
    try:
        st = m.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
            return None
        data = json.loads(m.read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("tool") == "hwgen" else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def is_hwgen_folder(folder: Path) -> bool:
    """True if ``folder`` holds an hwgen marker and exactly the files it lists (plain files, no links)."""
    listed = marker_files(folder)
    if listed is None:
        return False
    try:
        present = {e.name: e for e in os.scandir(folder)}
    except OSError:
        return False
    if set(present) != set(listed) | {MARKER}:
        return False
    return all(e.is_file(follow_symlinks=False) for e in present.values())


def check_folder_target(path: Path, *, force: bool = False) -> bool:
    """Raise OutputError unless ``path`` may be written as a folder; return whether a previous output is replaced."""
    st = _existing(path)
    if st is None:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{path}: exists and is {_kind(st.st_mode)}, not a folder")
    if _contains_cwd(path):
        raise OutputError(f"{path}: is the current folder or contains it; choose another output folder")
    try:
        entries = [e.name for e in os.scandir(path)]
    except OSError as e:
        raise OutputError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not entries:
        _check_parent(path)
        return True  # an empty folder: replaced by the new one, nothing lost
    if not is_hwgen_folder(path):
        listed = marker_files(path)
        if listed is None:
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(f"{path}: is a folder holding files hwgen did not write ({shown}); "
                              f"choose another output folder")
        extra = sorted(set(entries) - set(listed) - {MARKER})
        raise OutputError(f"{path}: holds an earlier hwgen output and files hwgen did not write "
                          f"({', '.join(extra[:3]) or 'links or folders'}); move them away first")
    if not force:
        raise OutputError(f"{path}: holds an earlier hwgen output; --force replaces it")
    _check_parent(path)
    return True


@dataclass
class _Target:
    path: Path
    folder: bool
    data: bytes | Mapping[str, bytes] | None = None
    staged: Path | None = None
    old: Path | None = None  # where the replaced target waits until commit succeeds
    placed: bool = False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}-{secrets.token_hex(4)}"


def _remove(p: Path) -> None:
    try:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    except FileNotFoundError:
        pass


@dataclass
class Outputs:
    """The outputs of one command: declared (and checked) first, written together at :meth:`commit`.

    Parameters
    ----------
    force:
        Replace existing regular files and earlier hwgen output folders (the command's ``--force``).
    command:
        Recorded in the folder marker (for example ``"generate"``).
    stdout:
        Where ``-`` goes (binary); standard output by default.

    Use as a context manager: leaving the block by an exception removes everything staged.
    """

    force: bool = False
    command: str = "hwgen"
    stdout: BinaryIO | None = None
    _targets: dict[Path, _Target] = field(default_factory=dict, init=False, repr=False)
    _stdout_data: bytes | None = field(default=None, init=False, repr=False)
    _to_stdout: bool = field(default=False, init=False, repr=False)
    _made_dirs: list[Path] = field(default_factory=list, init=False, repr=False)

    # ------------------------------------------------------------ declaring
    def file(self, path: str | os.PathLike[str]) -> Path | str:
        """Declare a single-file output (``-``: standard output); checked now. Returns the key for :meth:`put`."""
        if str(path) == STDOUT:
            if self._to_stdout:
                raise OutputError("only one output can go to standard output ('-')")
            self._to_stdout = True
            return STDOUT
        if str(path).endswith(("/", os.sep)):
            raise OutputError(f"{path}: names a folder; this output is a file (give its name)")
        p = self._declare(Path(path))
        check_file_target(p, force=self.force)
        self._targets[p] = _Target(p, folder=False)
        return p

    def folder(self, path: str | os.PathLike[str]) -> Path:
        """Declare a folder output; checked now. Returns the key for :meth:`put` / :meth:`stage_folder`."""
        if str(path) == STDOUT:
            raise OutputError("a folder output cannot be standard output ('-')")
        p = self._declare(Path(path))
        check_folder_target(p, force=self.force)
        self._targets[p] = _Target(p, folder=True)
        return p

    def _declare(self, p: Path) -> Path:
        if str(p) in ("", "."):
            raise OutputError(f"'{p}': not a usable output path")
        ap = Path(os.path.abspath(p))
        for other in self._targets:
            ao = Path(os.path.abspath(other))
            if ap == ao:
                raise OutputError(f"{p}: named twice as an output")
            if ao in ap.parents or ap in ao.parents:
                raise OutputError(f"{p} and {other}: one output lies inside the other")
        return p

    @property
    def uses_stdout(self) -> bool:
        """True if one output goes to standard output (human-readable text should go to stderr then)."""
        return self._to_stdout

    # ------------------------------------------------------------ contents
    def put(self, key: Path | str, data: bytes | Mapping[str, bytes]) -> None:
        """The contents of a declared output: bytes for a file, {name: bytes} for a folder."""
        if key == STDOUT:
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError("standard output takes bytes")
            self._stdout_data = bytes(data)
            return
        t = self._targets[Path(key)]
        if t.folder != (not isinstance(data, (bytes, bytearray))):
            raise TypeError(f"{key}: {'folder' if t.folder else 'file'} output given the wrong kind of contents")
        for name in (data if t.folder else ()):
            if name in ("", ".", "..", MARKER) or "/" in name or os.sep in name or "\0" in name:
                raise OutputError(f"{key}: '{name}' is not a file name hwgen writes")
        t.data = data

    def put_with(self, key: Path | str, writer: Callable[[BinaryIO], None]) -> None:
        """Contents of a single-file output produced by ``writer(file object)`` (e.g. matplotlib's savefig)."""
        import io

        buf = io.BytesIO()
        writer(buf)
        self.put(key, buf.getvalue())

    def stage_folder(self, key: Path) -> Path:
        """Create and return the (hidden, sibling) staging folder of a declared folder output now.

        For commands whose later steps write into the folder themselves (the demo); its files at commit
        time are recorded in the marker.
        """
        t = self._targets[Path(key)]
        if not t.folder:
            raise TypeError(f"{key}: not a folder output")
        if t.staged is None:
            self._mkparents(t.path)
            t.staged = self._fresh_dir(t.path)
        return t.staged

    # ------------------------------------------------------------ writing
    def _mkparents(self, p: Path) -> None:
        missing = [d for d in p.parents if not d.exists() and not d.is_symlink()]
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{p}: cannot create {p.parent} ({e.strerror or e})") from None
        self._made_dirs.extend(missing)

    def _fresh_dir(self, p: Path) -> Path:
        while True:
            d = _sibling(p, "tmp")
            try:
                d.mkdir(mode=0o777)  # umask applies: ordinary permissions, unlike mkdtemp's 0700
                return d
            except FileExistsError:
                continue
            except OSError as e:
                raise OutputError(f"{p}: cannot write ({e.strerror or e})") from None

    def _stage(self, t: _Target, mask: int) -> None:
        if t.folder:
            d = t.staged or self._fresh_dir(t.path)
            t.staged = d
            for name, data in (t.data or {}).items():
                (d / name).write_bytes(data)
            names = sorted(e.name for e in os.scandir(d) if e.name != MARKER)
            (d / MARKER).write_text(json.dumps({"tool": "hwgen", "command": self.command, "files": names},
                                               indent=1) + "\n")
            return
        tmp = _sibling(t.path, "tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666 & ~mask)
        t.staged = tmp
        with os.fdopen(fd, "wb") as f:
            f.write(t.data or b"")

    def commit(self) -> None:
        """Stage every output, re-check the targets, then rename them into place together (or write nothing)."""
        missing = [str(t.path) for t in self._targets.values() if t.data is None and t.staged is None]
        if missing or (self._to_stdout and self._stdout_data is None):
            raise TypeError(f"outputs without contents: {', '.join(missing) or '-'}")
        mask = _umask()
        current: Path | None = None
        try:
            for t in self._targets.values():
                current = t.path
                self._mkparents(t.path)
                self._stage(t, mask)
            for t in self._targets.values():  # the world may have changed while the command worked
                current = t.path
                (check_folder_target if t.folder else check_file_target)(t.path, force=self.force)
            for t in self._targets.values():
                current = t.path
                if t.path.exists():
                    t.old = _sibling(t.path, "old")
                    os.replace(t.path, t.old)
                os.replace(t.staged, t.path)
                t.placed = True
        except BaseException as e:
            self._rollback()
            if isinstance(e, OSError):
                raise OutputError(f"{current}: cannot write ({e.strerror or e})") from None
            raise
        for t in self._targets.values():
            if t.old is not None:
                _remove(t.old)
        record_outputs({t.path: t.data for t in self._targets.values() if not t.folder})
        self._targets.clear()
        if self._stdout_data is not None:
            out = self.stdout or sys.stdout.buffer
            out.write(self._stdout_data)
            out.flush()

    def _rollback(self) -> None:
        for t in reversed(list(self._targets.values())):
            try:
                if t.placed:
                    os.replace(t.path, t.staged)
                    t.placed = False
                if t.old is not None:
                    os.replace(t.old, t.path)
                    t.old = None
            except OSError:
                pass
            if t.staged is not None:
                _remove(t.staged)
                t.staged = None
        for d in sorted(set(self._made_dirs), key=lambda d: len(d.parts), reverse=True):  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        self._made_dirs.clear()

    def abort(self) -> None:
        """Remove everything staged; the targets stay as they were."""
        self._rollback()
        self._targets.clear()

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
