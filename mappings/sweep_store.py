"""SQLite store of one design-space sweep: what was swept, and one row per evaluated point.

One file per sweep, two tables:

* ``sweep`` (one row): schema version, the sweep's identity (JSON: network spec and the digest of its file,
  base configuration, axes and their values, the metric columns), the number of points, creation time,
  hwgen version;
* ``points``: ``point_index`` PRIMARY KEY (a point is recorded once), its axis values (JSON), status
  (:class:`PointStatus`), the error message of a point that is not a valid configuration or does not fit,
  one column per metric (NULL unless the status is ``ok``), seconds the evaluation took, finished (UTC).

Crash safety: a new sweep file appears whole (schema and sweep row, written as a temporary sibling and
linked into place); each point is committed in its own transaction (``synchronous=FULL``), so a process
killed at any moment (SIGKILL included) leaves whole rows only and loses at most the points in flight, which
:meth:`SweepStore.done` then does not list. The file rules (header check before SQLite opens the file, the
``application_id``, no triggers or views, quick_check, every SQLite error as :class:`SweepStoreError` naming
the file) are :mod:`hwgen.sqlite_files`'s, shared with the fault-injection campaigns.

Every row read back is checked: a file may have been damaged or edited since it was written. The metric
columns are the caller's (:data:`mappings.dse.METRICS` gives them, name and integer or real), so adding a
metric adds a column and a file without it is refused ("lacks table columns"), never read half.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Mapping, Sequence

from hwgen.errors import HwgenError
from hwgen.sqlite_files import (SQL_ERRORS, DatabaseKind, SqliteStore, check_header, create_new, hwgen_version,
                                insert_rows, is_int, open_checked, path_exists, quoted, sql_reason, utc_now)

__all__ = ["SweepStoreError", "PointStatus", "PointResult", "SweepStore", "SCHEMA_VERSION", "APPLICATION_ID",
           "KIND", "BUSY_TIMEOUT", "check_sweep_file"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x68774453  # "hwDS"
#: seconds a reader or writer waits for another process's lock before "database is locked"
BUSY_TIMEOUT = 30.0
#: longest text (identity JSON, a point's parameters, an error message) a row may hold
_MAX_TEXT = 1 << 20
_INT64_MAX = (1 << 63) - 1


class SweepStoreError(HwgenError, ValueError):
    """A sweep file that cannot be created, opened or written; the message names the file."""


KIND = DatabaseKind(application_id=APPLICATION_ID, schema_version=SCHEMA_VERSION, noun="sweep database",
                    title="design-space sweep", error=SweepStoreError)


class PointStatus(StrEnum):
    """What evaluating a point gave: metrics (``ok``); a configuration the generator refuses (``invalid``,
    e.g. a weight scratchpad shallower than the rows of a weight-stationary tile); or a valid configuration
    on which a layer cannot be mapped (``unfit``). The last two are results, not failures: the sweep goes on."""

    OK = "ok"
    INVALID = "invalid"
    UNFIT = "unfit"


@dataclass(frozen=True)
class PointResult:
    """One evaluated point: its index in the sweep, its axis values, status, error text, metrics."""

    index: int
    params: dict[str, Any]
    status: PointStatus
    metrics: dict[str, int | float] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is PointStatus.OK


def check_sweep_file(path: str | os.PathLike[str]) -> None:
    """Raise SweepStoreError unless ``path`` is a sweep database of this schema version (reads 100 bytes)."""
    check_header(path, KIND)


def _tables(metrics: Mapping[str, type]) -> dict[str, set[str]]:
    return {"sweep": {"id", "schema_version", "identity", "points", "created", "hwgen_version"},
            "points": {"point_index", "params", "status", "error", "seconds", "finished", *metrics}}


def _schema(metrics: Mapping[str, type]) -> str:
    cols = "".join(f",\n    {name} {'INTEGER' if kind is int else 'REAL'}" for name, kind in metrics.items())
    return f"""
CREATE TABLE sweep (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    identity TEXT NOT NULL,
    points INTEGER NOT NULL,
    created TEXT NOT NULL,
    hwgen_version TEXT NOT NULL
);
CREATE TABLE points (
    point_index INTEGER PRIMARY KEY,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s.value) for s in PointStatus)})),
    error TEXT NOT NULL,
    seconds REAL NOT NULL,
    finished TEXT NOT NULL{cols}
);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""


def _check_names(metrics: Mapping[str, type]) -> None:
    """Metric names become column names: plain identifiers only, never text SQL would read as more."""
    for name, kind in metrics.items():
        if not (name.isidentifier() and name.isascii() and kind in (int, float)
                and name not in _tables({})["points"]):
            raise ValueError(f"metric {name!r} ({kind}): a column needs an ASCII identifier and int or float")


class SweepStore(SqliteStore):
    """An open sweep database. Use :meth:`create` or :meth:`open`; a context manager.

    ``metrics``: metric name -> int or float, the ``points`` columns beside the fixed ones."""

    KIND = KIND

    def __init__(self, path: Path, conn: sqlite3.Connection, metrics: Mapping[str, type]):
        super().__init__(path, conn)
        self._metrics = dict(metrics)
        self.identity, self.n_points = self._read_sweep()

    @classmethod
    def create(cls, path: str | os.PathLike[str], identity: dict, n_points: int,
               metrics: Mapping[str, type]) -> "SweepStore":
        """Write a new sweep file (schema and sweep row) and open it; SweepStoreError if ``path`` exists."""
        _check_names(metrics)
        p = Path(path)
        if path_exists(p, SweepStoreError):
            raise SweepStoreError(f"{p}: already exists")
        text = json.dumps(identity, sort_keys=True)

        def write(conn: sqlite3.Connection) -> None:
            conn.executescript(_schema(metrics))
            conn.execute("BEGIN")
            conn.execute("INSERT INTO sweep VALUES (1, ?, ?, ?, ?, ?)",
                         (SCHEMA_VERSION, text, int(n_points), utc_now(), hwgen_version()))
            conn.execute("COMMIT")

        create_new(p, write, KIND, "the sweep")
        return cls.open(p, metrics)

    @classmethod
    def open(cls, path: str | os.PathLike[str], metrics: Mapping[str, type], readonly: bool = False) -> "SweepStore":
        """Open an existing sweep file after checking its header (read-only, 100 bytes), then its schema, SQLite's
        quick_check and its sweep row. SweepStoreError naming the file on any failure, the file unchanged."""
        _check_names(metrics)
        p = Path(path)
        return open_checked(p, KIND, _tables(metrics), readonly, BUSY_TIMEOUT, lambda conn: cls(p, conn, metrics))

    def _read_sweep(self) -> tuple[dict, int]:
        rows = self.query("SELECT schema_version, identity, points FROM sweep")
        if len(rows) != 1:
            raise SweepStoreError(f"{self.path}: sweep database holds {len(rows)} sweep rows; a sweep file holds one")
        ver, text, n = rows[0]
        if ver != SCHEMA_VERSION:
            raise SweepStoreError(f"{self.path}: sweep field 'schema_version' = {quoted(ver)}: this hwgen reads "
                                  f"version {SCHEMA_VERSION}")
        identity = _json_field(self.path, "sweep field 'identity'", text)
        if not isinstance(identity, dict):
            raise SweepStoreError(f"{self.path}: sweep field 'identity' = {quoted(text)}: not a JSON object")
        if not is_int(n, 1, _INT64_MAX):
            raise SweepStoreError(f"{self.path}: sweep field 'points' = {quoted(n)}: not a positive integer")
        (k, lo, hi), = self.query("SELECT COUNT(*), MIN(point_index), MAX(point_index) FROM points")
        if k and not (is_int(lo, 0, n - 1) and is_int(hi, 0, n - 1)):
            raise SweepStoreError(f"{self.path}: points with indices {quoted(lo)}..{quoted(hi)}, outside the sweep's "
                                  f"0..{n - 1}")
        return identity, n

    def lock(self) -> None:
        """Take an exclusive advisory lock (flock) for evaluating points; SweepStoreError if another process has it."""
        super().lock("another process is running this sweep")

    # ---------------------------------------------------------------- reading
    def done(self) -> set[int]:
        """Indices of the points already recorded."""
        return {int(i) for (i,) in self.query("SELECT point_index FROM points")}

    def results(self) -> list[PointResult]:
        """Every recorded point, in index order, each row checked."""
        names = list(self._metrics)
        cols = "".join(f", {n}" for n in names)
        rows = self.query(f"SELECT point_index, params, status, error, seconds{cols} FROM points ORDER BY point_index")
        return [self._row(r, names) for r in rows]

    def _row(self, row: Sequence[Any], names: list[str]) -> PointResult:
        i, params_text, status, error, seconds, *values = row

        def bad(why: str) -> SweepStoreError:
            return SweepStoreError(f"{self.path}: point {quoted(i)}: {why}")

        params = _json_field(self.path, f"point {quoted(i)} field 'params'", params_text)
        if not isinstance(params, dict):
            raise bad(f"params {quoted(params_text)} is not a JSON object")
        if status not in tuple(PointStatus):
            raise bad(f"status {quoted(status)} is not one of {', '.join(PointStatus)}")
        status = PointStatus(status)
        if not (isinstance(error, str) and len(error) <= _MAX_TEXT):
            raise bad(f"error {quoted(error)} is not a text")
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise bad(f"seconds {quoted(seconds)} is not a non-negative number")
        metrics: dict[str, int | float] = {}
        for name, v in zip(names, values):
            kind = self._metrics[name]
            if status is PointStatus.OK:
                good = (is_int(v, 0, _INT64_MAX) if kind is int
                        else isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
                if not good:
                    raise bad(f"metric '{name}' = {quoted(v)} is not {'an integer' if kind is int else 'a number'}")
                metrics[name] = kind(v)
            elif v is not None:
                raise bad(f"status '{status}' with metric '{name}' = {quoted(v)} (only an ok point has metrics)")
        if status is not PointStatus.OK and not error:
            raise bad(f"status '{status}' without an error message")
        return PointResult(i, params, status, metrics, error, float(seconds))

    # ---------------------------------------------------------------- writing
    def add(self, r: PointResult) -> None:
        """Commit one point as its own transaction (SweepStoreError if it is recorded already, or the file cannot
        take it: damaged, locked, disk full; the points committed before stay)."""
        if r.ok and set(r.metrics) != set(self._metrics):
            raise ValueError(f"point {r.index}: metrics {sorted(r.metrics)}, expected {sorted(self._metrics)}")
        names = list(self._metrics)
        row = (int(r.index), json.dumps(r.params, sort_keys=True), PointStatus(r.status).value, str(r.error),
               float(r.seconds), utc_now(), *[r.metrics.get(n) if r.ok else None for n in names])
        cols = "".join(f", {n}" for n in names)
        marks = ", ?" * len(names)
        try:
            insert_rows(self.conn, f"INSERT INTO points (point_index, params, status, error, seconds, finished{cols}) "
                                    f"VALUES (?, ?, ?, ?, ?, ?{marks})", [row])
        except sqlite3.IntegrityError as e:
            raise SweepStoreError(f"{self.path}: point {r.index} already recorded ({e})") from None
        except (*SQL_ERRORS, OverflowError) as e:
            reason = str(e) if isinstance(e, OverflowError) else sql_reason(e, KIND)
            raise SweepStoreError(f"{self.path}: cannot record point {r.index} ({reason}); the points committed "
                                  f"before are kept") from None


def _json_field(path: Path, where: str, text: Any) -> Any:
    """A JSON text from the file, parsed within hwgen's JSON limits (SweepStoreError naming the field)."""
    from hwgen.fileio import parse_json

    if not (isinstance(text, str) and 2 <= len(text) <= _MAX_TEXT):
        raise SweepStoreError(f"{path}: {where} = {quoted(text)}: not a JSON text of at most {_MAX_TEXT:,} characters")
    try:
        return parse_json(text, f"{path}: {where}")
    except HwgenError as e:
        raise SweepStoreError(str(e)) from None
