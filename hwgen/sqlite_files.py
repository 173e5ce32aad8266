"""What every hwgen SQLite file shares: recognising it, opening it safely, creating it atomically.

hwgen keeps long-running work in SQLite files that a killed process can resume (fault-injection campaigns,
:mod:`fault_injection.store`; design-space sweeps, :mod:`mappings.sweep_store`). Such a file is input like
any other: anyone may have replaced, truncated or edited it. The rules, in one place so each store states
only its own tables and fields:

* **Header first.** Before SQLite touches a file its 100-byte header is read (:func:`check_header`): the
  SQLite magic, the store's ``application_id`` and schema version (``user_version``), both in the header,
  and the rollback-journal format (1/1) every store writes. A file that is not SQLite, a database of
  something else or of another schema version is refused with the store's error, byte-identical.
* **A connection the file cannot steer** (:func:`connect`): ``trusted_schema = OFF`` (no schema-defined
  functions), ``synchronous = FULL`` (a committed transaction survives a power cut), ``query_only`` when
  read-only; and :func:`check_schema` refuses any table, trigger or view the store never writes (a trigger
  would run SQL of the file's choosing on our writes), missing columns, and a failing ``quick_check``.
* **New files appear whole** (:func:`create_new`): written as a temporary sibling, then hard-linked into
  place, so the path either does not exist or holds a complete file; an existing path is never replaced.
* **Every SQLite error is the store's error naming the file** (:func:`sql_reason` says "damaged" where it
  is the file's fault, so the message does not read like hwgen's bug).

Messages name the kind of file through a :class:`DatabaseKind` (``"campaign database"``,
``"fault-injection campaign"``), so each store keeps its own wording.
"""

from __future__ import annotations

import fcntl
import numbers
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar

from .errors import HwgenError
from .outputs import _umask

__all__ = ["DatabaseKind", "SQL_ERRORS", "SQLITE_MAGIC", "quoted", "is_int", "utc_now", "hwgen_version", "path_exists", "check_header",
           "sql_reason", "connect", "check_schema", "open_checked", "create_new", "insert_rows", "rollback_quietly",
           "SqliteStore"]

SQLITE_MAGIC = b"SQLite format 3\x00"
#: what SQLite raises on a damaged, locked or full file; UnicodeDecodeError when its message quotes the damaged
#: bytes (Python then cannot even decode the message)
SQL_ERRORS = (sqlite3.Error, UnicodeDecodeError)
#: characters of a bad value quoted in an error message
_QUOTE = 60


@dataclass(frozen=True)
class DatabaseKind:
    """One kind of hwgen SQLite file: how its header identifies it and how messages name it.

    ``noun`` names the file ("campaign database": "no such campaign database"); ``title`` names what it
    holds ("fault-injection campaign": "not a fault-injection campaign database"); ``error`` is the
    store's exception class (a :class:`HwgenError`), raised with the file's path first."""

    application_id: int
    schema_version: int
    noun: str
    title: str
    error: type[HwgenError]


def quoted(value: Any) -> str:
    """A bad value for an error message: its repr, cut to a few dozen characters (it may be megabytes)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"an integer of {value.bit_length():,} bits"
    text = repr(value)
    return text if len(text) <= _QUOTE else f"{text[:_QUOTE]}... ({len(text):,} characters)"


def is_int(value: Any, lo: float, hi: float) -> bool:
    """An integer (not a bool, which Python counts as one) with lo <= value <= hi: the one test of every count,
    index, seed and cycle read from a file or given to the library."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= value <= hi


def utc_now() -> str:
    """The time a row is written: UTC, ISO 8601 to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def hwgen_version() -> str:
    """The installed hwgen's version, recorded in a store's header row ("unknown" when not installed)."""
    try:
        from importlib.metadata import version

        return version("hwgen")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def path_exists(path: str | os.PathLike[str], error: type[HwgenError]) -> bool:
    """Whether anything (a dangling link included) is at ``path``; ``error`` for a path the system cannot even
    look up (too long, a NUL byte, a file where a folder should be), instead of an OSError later."""
    try:
        os.lstat(path)
        return True
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as e:
        raise error(f"{quoted(str(path))}: not a usable path ({getattr(e, 'strerror', None) or e})") from None


def check_header(path: str | os.PathLike[str], kind: DatabaseKind) -> None:
    """Raise ``kind.error`` unless ``path`` is a database of ``kind`` at its schema version (reads 100 bytes)."""
    p, err = Path(path), kind.error
    try:
        with open(p, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        raise err(f"{p}: no such {kind.noun}") from None
    except IsADirectoryError:
        raise err(f"{p}: is a folder, not a {kind.noun}") from None
    except OSError as e:
        raise err(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise err(f"{p}: empty file, not a {kind.title} database")
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise err(f"{p}: not a {kind.title} database (not an SQLite file)")
    app_id = int.from_bytes(head[68:72], "big")
    user_version = int.from_bytes(head[60:64], "big")
    if app_id != kind.application_id:
        raise err(f"{p}: an SQLite database, but not a hwgen {kind.title} "
                  f"(application_id {app_id:#x}, expected {kind.application_id:#x})")
    if user_version != kind.schema_version:
        raise err(f"{p}: {kind.noun} schema version {user_version}; this hwgen reads version {kind.schema_version}")
    if head[18:20] != b"\x01\x01":  # every store writes rollback-journal files; WAL would create sibling files
        raise err(f"{p}: not a {kind.title} database (SQLite file format "
                  f"{head[18]}/{head[19]}, expected the rollback-journal format 1/1)")


def sql_reason(e: BaseException, kind: DatabaseKind) -> str:
    """SQLite's message, saying 'damaged' where the file is (the message alone reads like our bug)."""
    if isinstance(e, UnicodeDecodeError):
        return f"damaged {kind.noun}: SQLite's message quotes bytes that are not text"
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, (sqlite3.OperationalError,
                                                                  sqlite3.IntegrityError)):
        return f"damaged {kind.noun}: {text}"
    return text


def connect(p: Path, readonly: bool, timeout: float) -> sqlite3.Connection:
    """A connection that cannot be steered by the file: no schema-defined functions (trusted_schema off),
    every commit synced (synchronous FULL), read-only when ``readonly``; ``timeout``: seconds to wait for
    another process's lock. Reads the schema, so a damaged one fails here (SQLite's error, for the caller
    to name the file)."""
    if readonly:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=timeout)
    else:
        conn = sqlite3.connect(p, isolation_level=None, timeout=timeout)
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA synchronous = FULL")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn


def check_schema(p: Path, conn: sqlite3.Connection, tables: Mapping[str, set[str]], kind: DatabaseKind) -> None:
    """Exactly the store's ``tables`` (name -> columns) and their automatic indices; no triggers or views,
    which would run SQL of the file's choosing on our writes; then SQLite's quick_check of every page."""
    objects = conn.execute("SELECT type, name, tbl_name FROM sqlite_master").fetchall()
    extra = sorted(f"{typ} '{name}'" for typ, name, table in objects
                   if not ((typ == "table" and name in tables)
                           or (typ == "index" and str(name).startswith("sqlite_autoindex_") and table in tables)))
    if extra:
        raise kind.error(f"{p}: {kind.noun} holds {', '.join(extra)}, which this store never writes")
    present = {name: {r[1] for r in conn.execute(f"PRAGMA table_info({name})")} for name in tables}
    missing = [f"{t} ({', '.join(sorted(cols - present[t]))})" for t, cols in tables.items() if not cols <= present[t]]
    if missing:
        raise kind.error(f"{p}: {kind.noun} lacks table columns: {'; '.join(missing)}")
    verdict = conn.execute("PRAGMA quick_check(1)").fetchone()
    if verdict is None or verdict[0] != "ok":
        found = " ".join(str(verdict[0] if verdict else "no verdict").split())
        raise kind.error(f"{p}: damaged {kind.noun} (SQLite quick_check: {found[:200]})")


def create_new(p: Path, write: Callable[[sqlite3.Connection], None], kind: DatabaseKind, what: str) -> None:
    """Create the database ``p`` whole: ``write(conn)`` fills a fresh temporary sibling (schema and first rows,
    its own transactions), which is then hard-linked into place (atomic, and never replacing a file that
    appeared meanwhile). ``what`` names the contents in a message ("the campaign": "cannot write the
    campaign (...)"). On any failure nothing is left at ``p`` or beside it."""
    err = kind.error
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise err(f"{p}: cannot write ({e.strerror or e})") from None
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            write(conn)
        finally:
            conn.close()
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.link(tmp, p)  # atomic, and never replaces an existing file
        except FileExistsError:
            raise err(f"{p}: already exists (created meanwhile by another process)") from None
        except OSError:  # a filesystem without hard links
            if p.exists():
                raise err(f"{p}: already exists") from None
            os.replace(tmp, p)
    except (*SQL_ERRORS, OverflowError) as e:
        raise err(f"{p}: cannot write {what} ({sql_reason(e, kind)})") from None
    except OSError as e:
        raise err(f"{p}: cannot write ({e.strerror or e})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """End a failed transaction, keeping the error that failed it: SQLite may have rolled back already
    (a full disk, an I/O error), and a second failure here would hide the first."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except SQL_ERRORS:
            pass


def insert_rows(conn: sqlite3.Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """``sql`` over ``rows`` as one transaction (BEGIN IMMEDIATE: the write lock first, so a busy file fails
    before anything is written); all rows or none. SQLite's errors propagate for the caller to name."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    except BaseException:
        rollback_quietly(conn)
        raise


T = TypeVar("T")


def open_checked(p: Path, kind: DatabaseKind, tables: Mapping[str, set[str]], readonly: bool, timeout: float,
                 build: Callable[[sqlite3.Connection], T]) -> T:
    """``build(conn)`` on the database ``p`` opened after every check: its header (read-only, 100 bytes), then
    a safe connection (:func:`connect`; read-only falls back to read-write when SQLite must first roll back a
    hot journal a killed writer left), its schema and quick_check. ``build`` reads the store's own rows.
    ``kind.error`` naming the file on any failure, the connection closed and the file unchanged."""
    check_header(p, kind)
    try:
        conn = connect(p, readonly, timeout)
    except sqlite3.OperationalError as e:
        if readonly:
            return open_checked(p, kind, tables, False, timeout, build)
        raise kind.error(f"{p}: cannot open ({sql_reason(e, kind)})") from None
    except SQL_ERRORS as e:
        raise kind.error(f"{p}: cannot open ({sql_reason(e, kind)})") from None
    try:
        check_schema(p, conn, tables, kind)
        return build(conn)
    except SQL_ERRORS as e:
        conn.close()
        raise kind.error(f"{p}: cannot read ({sql_reason(e, kind)})") from None
    except BaseException:
        conn.close()
        raise


class SqliteStore:
    """An open store database: its path, its connection, an optional writer's lock; a context manager.

    Subclasses set :attr:`KIND` and read (and check) their own rows; :meth:`query` turns every SQLite error
    into ``KIND.error`` naming the file."""

    KIND: ClassVar[DatabaseKind]

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self._lock_fd: int | None = None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """All rows of ``sql``; any SQLite error (damaged page, locked file) as the store's error naming the file."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except SQL_ERRORS as e:
            raise self.KIND.error(f"{self.path}: cannot read ({sql_reason(e, self.KIND)})") from None

    def lock(self, busy: str) -> None:
        """An exclusive advisory lock (flock) for one writer at a time; the store's error saying ``busy`` if
        another process holds it."""
        if self._lock_fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise self.KIND.error(f"{self.path}: cannot open for locking ({e.strerror or e})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self.KIND.error(f"{self.path}: {busy}") from None
        self._lock_fd = fd

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            if self._lock_fd is not None:  # after SQLite has closed: closing an fd drops the process's POSIX locks
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
