"""Atomic file writes: a temporary sibling, then a rename.

A reader (or a crash) never sees a half-written file: the data goes into a
temporary file in the same folder, which is renamed over the target only once
complete, and removed if anything fails. The file gets ordinary permissions
(0666 less the umask), not mkstemp's private 0600.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "read_input_file", "parse_json"]


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], None]) -> None:
    """Call ``writer`` with a binary file object, then move the result to ``path``."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_input_file(path: str | os.PathLike[str], *, text: bool = False, what: str = "file") -> bytes | str:
    """The contents of an input file, refused (HwgenError naming the path) before anything is read when it
    is a folder, a device or a socket, or larger than the ``file_bytes`` limit; ``text`` decodes UTF-8.

    Regular files and FIFOs are read; a FIFO is read only up to the limit, so ``/dev/zero`` or an endless
    pipe cannot exhaust memory.
    """
    import stat

    from .errors import HwgenError
    from .limits import check_limit, limits

    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise HwgenError(f"{p}: cannot read ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        raise HwgenError(f"{p}: is a folder, not a {what}")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise HwgenError(f"{p}: is a device or socket, not a {what}")
    bound = limits().file_bytes
    if stat.S_ISREG(st.st_mode):
        check_limit("file_bytes", st.st_size, f"{p}: size in bytes")
    try:
        with open(p, "rb") as f:
            data = _read_capped(f, bound + 1, st.st_size + 1 if stat.S_ISREG(st.st_mode) else 1 << 20)
    except OSError as e:
        raise HwgenError(f"{p}: cannot read ({e.strerror or e})") from None
    check_limit("file_bytes", len(data), f"{p}: size in bytes")
    if not text:
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HwgenError(f"{p}: not a text (UTF-8) {what} (byte {e.start} is not UTF-8)") from None


def _read_capped(f: IO[bytes], cap: int, chunk: int) -> bytes:
    """At most ``cap`` bytes of ``f``, read in pieces of ``chunk``: ``f.read(cap)`` would reserve ``cap``
    bytes up front (gigabytes, for the limit), whatever the file holds."""
    parts, have = [], 0
    while have < cap:
        piece = f.read(min(chunk, cap - have))
        if not piece:
            break
        parts.append(piece)
        have += len(piece)
    return b"".join(parts)


def parse_json(text: str, source: str) -> object:
    """``json.loads`` with every failure (syntax, 4,301-digit integers, deep nesting, NaN) as one HwgenError
    naming ``source``; nesting deeper than the ``json_depth`` limit is refused before parsing."""
    import json

    from .errors import HwgenError
    from .limits import limits

    depth, deepest, in_string, escaped = 0, 0, False, False
    for ch in text:  # a cheap pre-scan: Python's parser recurses per level
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    bound = limits().json_depth
    if deepest > bound:
        raise HwgenError(f"{source}: JSON nested {deepest} levels deep; the limit is {bound} "
                         f"(HWGEN_LIMIT_JSON_DEPTH)")

    def no_constant(name: str) -> None:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise HwgenError(f"{source}: not valid JSON ({e})") from None
    except (ValueError, RecursionError) as e:  # int digits limit, NaN/Infinity
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "integer string conversion" in why:
            why = "an integer with more than 4,300 digits"
        raise HwgenError(f"{source}: not usable JSON ({why})") from None
