"""Which single files hwgen wrote: the record that lets ``--force`` replace an earlier output and nothing else.

A folder carries its own marker (:data:`hwgen.outputs.MARKER`); a single file (a JSON report, a CSV, a
PNG, an ``.npy`` array, a binary program) cannot carry one in every format. So every file hwgen writes is
recorded here by its resolved path, size and SHA-256, and ``--force`` replaces an existing file only while
it is exactly what hwgen wrote there. A file the user wrote, or edited after hwgen wrote it, is theirs and
is never replaced.

The record is an SQLite file under ``$HWGEN_STATE`` (default ``$XDG_STATE_HOME/hwgen``, else
``~/.local/state/hwgen``), one row per output path. If it cannot be read or written, hwgen behaves as if
it had recorded nothing: an earlier output is then refused like a user's file (safe, never lossy).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

__all__ = ["registry_path", "record_outputs", "written_by_hwgen", "file_digest"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS outputs (path TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL)"


def registry_path() -> Path:
    """Where the record lives (``$HWGEN_STATE``, ``$XDG_STATE_HOME/hwgen`` or ``~/.local/state/hwgen``)."""
    base = os.environ.get("HWGEN_STATE")
    if base:
        return Path(base).expanduser() / "outputs.sqlite"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "hwgen" / "outputs.sqlite"


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-256) of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _connect(create: bool) -> sqlite3.Connection | None:
    p = registry_path()
    try:
        if create:
            p.parent.mkdir(parents=True, exist_ok=True)
        elif not p.is_file():
            return None
        con = sqlite3.connect(p, timeout=10)
        con.execute(_SCHEMA)
        return con
    except (OSError, sqlite3.Error):
        return None


def _key(path: Path) -> str:
    return str(Path(os.path.abspath(path)).resolve())


def record_outputs(written: dict[Path, bytes]) -> None:
    """Record files hwgen has just written (path -> the bytes written). Failures are ignored (see above)."""
    if not written:
        return
    con = _connect(create=True)
    if con is None:
        return
    try:
        with con:
            con.executemany("INSERT OR REPLACE INTO outputs (path, size, sha256) VALUES (?, ?, ?)",
                            [(_key(p), len(data), hashlib.sha256(data).hexdigest()) for p, data in written.items()])
    except (OSError, sqlite3.Error):
        pass
    finally:
        con.close()


def written_by_hwgen(path: Path) -> bool:
    """True if ``path`` is a regular file holding exactly the bytes hwgen last recorded writing there."""
    con = _connect(create=False)
    if con is None:
        return False
    try:
        row = con.execute("SELECT size, sha256 FROM outputs WHERE path = ?", (_key(path),)).fetchone()
    except sqlite3.Error:
        return False
    finally:
        con.close()
    if row is None:
        return False
    try:
        if path.stat().st_size != row[0]:
            return False
        return file_digest(path) == (row[0], row[1])
    except OSError:
        return False
