"""SQLite store of one fault-injection campaign: its parameters, its fault plan, its results.

One file per campaign, four tables:

* ``campaign`` (one row): schema version, configuration (JSON), workload spec,
  seed, backend, fault models (JSON list), planned number of injections, margin
  and confidence, golden-run cycles, creation time, hwgen version;
* ``sites``: the fault-site inventory the plan was drawn from (name, structure,
  width, depth, kind), so that a report does not depend on later code changes;
* ``faults``: the plan, ``fault_index`` 0..n-1 with site, structure, model,
  cycle, word, bit, nbits, duration;
* ``results``: ``fault_index`` PRIMARY KEY (a second result for one fault is
  impossible), outcome, cycles, early_stop, detail, finished (UTC time).

Crash safety: a new campaign file is written completely (schema, parameters and
the whole plan, one transaction) as a temporary sibling and then linked into
place, so the path either does not exist or holds the whole plan. Each batch of
results is one transaction (SQLite's rollback journal, ``synchronous=FULL``):
a process killed at any moment loses at most the batch it was writing, which
:meth:`CampaignStore.pending` then still lists.

Foreign files: before SQLite touches a file its 100-byte header is read and
checked (the SQLite magic, this store's ``application_id`` and schema version,
both kept in the header). A file that is not SQLite, an SQLite database of
something else, or of another schema version is refused with
:class:`StoreError`, and left byte-identical.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

from .faults import OUTCOMES, Fault, InjectionResult, Site
from hwgen.errors import HwgenError

__all__ = ["StoreError", "CampaignInfo", "CampaignStore", "check_file", "SCHEMA_VERSION", "APPLICATION_ID"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x68774649  # "hwFI"
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = f"""
CREATE TABLE campaign (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    config TEXT NOT NULL,
    workload TEXT NOT NULL,
    seed INTEGER NOT NULL,
    backend TEXT NOT NULL,
    models TEXT NOT NULL,
    planned INTEGER NOT NULL,
    margin REAL,
    confidence REAL NOT NULL,
    golden_cycles INTEGER NOT NULL,
    created TEXT NOT NULL,
    hwgen_version TEXT NOT NULL
);
CREATE TABLE sites (
    name TEXT PRIMARY KEY,
    structure TEXT NOT NULL,
    width INTEGER NOT NULL,
    depth INTEGER NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE faults (
    fault_index INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    structure TEXT NOT NULL,
    model TEXT NOT NULL,
    cycle INTEGER NOT NULL,
    word INTEGER NOT NULL,
    bit INTEGER NOT NULL,
    nbits INTEGER NOT NULL,
    duration INTEGER NOT NULL
);
CREATE TABLE results (
    fault_index INTEGER PRIMARY KEY REFERENCES faults(fault_index),
    outcome TEXT NOT NULL CHECK (outcome IN ({", ".join(repr(o) for o in OUTCOMES)})),
    cycles INTEGER NOT NULL,
    early_stop INTEGER NOT NULL,
    detail TEXT NOT NULL,
    finished TEXT NOT NULL
);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_TABLES = {
    "campaign": {"id", "schema_version", "config", "workload", "seed", "backend", "models", "planned", "margin",
                 "confidence", "golden_cycles", "created", "hwgen_version"},
    "sites": {"name", "structure", "width", "depth", "kind"},
    "faults": {"fault_index", "site", "structure", "model", "cycle", "word", "bit", "nbits", "duration"},
    "results": {"fault_index", "outcome", "cycles", "early_stop", "detail", "finished"},
}


class StoreError(HwgenError, ValueError):
    """A campaign file that cannot be created, opened or written; the message names the file."""


@dataclass(frozen=True)
class CampaignInfo:
    """The parameters of a campaign (the ``campaign`` row)."""

    config: dict
    workload: str
    seed: int
    backend: str
    models: tuple[str, ...]
    planned: int
    confidence: float
    golden_cycles: int
    margin: float | None = None
    created: str = ""
    schema_version: int = SCHEMA_VERSION
    hwgen_version: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["models"] = list(self.models)
        return d


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _hwgen_version() -> str:
    try:
        from importlib.metadata import version

        return version("hwgen")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def check_file(path: str | os.PathLike[str]) -> None:
    """Raise StoreError unless ``path`` is a campaign database of this schema version (reads 100 bytes only)."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        raise StoreError(f"{p}: no such campaign database") from None
    except IsADirectoryError:
        raise StoreError(f"{p}: is a folder, not a campaign database") from None
    except OSError as e:
        raise StoreError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise StoreError(f"{p}: empty file, not a fault-injection campaign database")
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        raise StoreError(f"{p}: not a fault-injection campaign database (not an SQLite file)")
    app_id = int.from_bytes(head[68:72], "big")
    user_version = int.from_bytes(head[60:64], "big")
    if app_id != APPLICATION_ID:
        raise StoreError(f"{p}: an SQLite database, but not a hwgen fault-injection campaign "
                         f"(application_id {app_id:#x}, expected {APPLICATION_ID:#x})")
    if user_version != SCHEMA_VERSION:
        raise StoreError(f"{p}: campaign database schema version {user_version}; this hwgen reads version "
                         f"{SCHEMA_VERSION}")


class CampaignStore:
    """An open campaign database. Use :meth:`create` or :meth:`open`; a context manager."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self._conn = conn
        self._lock_fd: int | None = None
        self.info = self._read_info()

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike[str], info: CampaignInfo, sites: Sequence[Site],
               faults: Sequence[Fault]) -> "CampaignStore":
        """Write a new campaign file (parameters, sites and the whole plan) and open it.
        StoreError if ``path`` exists (it is never overwritten)."""
        p = Path(path)
        if p.exists() or p.is_symlink():
            raise StoreError(f"{p}: already exists (use 'hwgen fi resume' to continue a campaign)")
        if len(faults) != info.planned:
            raise ValueError(f"plan of {len(faults)} faults, but {info.planned} planned")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
            os.close(fd)
        except OSError as e:
            raise StoreError(f"{p}: cannot write ({e.strerror or e})") from None
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
                conn.execute("BEGIN")
                conn.execute("INSERT INTO campaign VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (SCHEMA_VERSION, json.dumps(info.config, sort_keys=True), info.workload, int(info.seed),
                              info.backend, json.dumps(list(info.models)), int(info.planned), info.margin,
                              float(info.confidence), int(info.golden_cycles), info.created or _now(),
                              info.hwgen_version or _hwgen_version()))
                conn.executemany("INSERT INTO sites VALUES (?, ?, ?, ?, ?)",
                                 [(s.name, s.structure, s.width, s.depth, s.kind) for s in sites])
                conn.executemany("INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                 [(i, f.site, f.structure, f.model, f.cycle, f.word, f.bit, f.nbits, f.duration)
                                  for i, f in enumerate(faults)])
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.chmod(tmp, 0o666 & ~_umask())
            try:
                os.link(tmp, p)  # atomic, and never replaces an existing file
            except FileExistsError:
                raise StoreError(f"{p}: already exists (created meanwhile by another process)") from None
            except OSError:  # a filesystem without hard links
                if p.exists():
                    raise StoreError(f"{p}: already exists") from None
                os.replace(tmp, p)
        except sqlite3.Error as e:
            raise StoreError(f"{p}: cannot write the campaign ({e})") from None
        except OSError as e:
            raise StoreError(f"{p}: cannot write ({e.strerror or e})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return cls.open(p)

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool = False) -> "CampaignStore":
        """Open an existing campaign file, after checking (read-only, 100 bytes) that it is one."""
        p = Path(path)
        check_file(p)
        try:
            if readonly:
                conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                                       timeout=30)
            else:
                conn = sqlite3.connect(p, isolation_level=None, timeout=30)
            try:
                conn.execute("PRAGMA synchronous = FULL")
                tables = {name: {r[1] for r in conn.execute(f"PRAGMA table_info({name})")} for name in _TABLES}
            except sqlite3.OperationalError:
                if not readonly:
                    raise
                conn.close()  # e.g. a hot journal left by a killed writer: a read-write open rolls it back
                return cls.open(p, readonly=False)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{p}: damaged campaign database ({e})") from None
        missing = [f"{t} ({', '.join(sorted(cols - tables[t]))})" for t, cols in _TABLES.items()
                   if not cols <= tables[t]]
        if missing:
            conn.close()
            raise StoreError(f"{p}: campaign database lacks table columns: {'; '.join(missing)}")
        try:
            return cls(p, conn)
        except (sqlite3.DatabaseError, StoreError, ValueError, TypeError) as e:
            conn.close()
            raise StoreError(f"{p}: damaged campaign database ({e})") from None

    def _read_info(self) -> CampaignInfo:
        row = self._conn.execute(
            "SELECT config, workload, seed, backend, models, planned, confidence, golden_cycles, margin, created, "
            "schema_version, hwgen_version FROM campaign WHERE id = 1").fetchone()
        if row is None:
            raise StoreError(f"{self.path}: campaign database has no campaign row")
        cfg, workload, seed, backend, models, planned, conf, golden, margin, created, ver, hv = row
        return CampaignInfo(json.loads(cfg), workload, int(seed), backend, tuple(json.loads(models)), int(planned),
                            float(conf), int(golden), margin, created, int(ver), hv)

    # ---------------------------------------------------------------- locking
    def lock(self) -> None:
        """Take an exclusive advisory lock (flock) for running injections; StoreError if another process has it."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(f"{self.path}: another process is running this campaign") from None
        self._lock_fd = fd

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:  # after SQLite has closed: closing an fd drops the process's POSIX locks
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "CampaignStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    def sites(self) -> list[Site]:
        return [Site(n, int(w), int(d), k) for n, w, d, k in
                self._conn.execute("SELECT name, width, depth, kind FROM sites ORDER BY rowid")]

    def faults(self) -> list[Fault]:
        """The whole plan, in index order."""
        return [f for _, f in self._faults("")]

    def _faults(self, where: str) -> list[tuple[int, Fault]]:
        rows = self._conn.execute(
            "SELECT f.fault_index, f.site, f.model, f.cycle, f.bit, f.word, f.nbits, f.duration FROM faults f "
            f"{where} ORDER BY f.fault_index")
        return [(int(i), Fault(s, m, int(c), int(b), int(w), int(nb), int(d))) for i, s, m, c, b, w, nb, d in rows]

    def pending(self) -> list[tuple[int, Fault]]:
        """(index, fault) of the planned faults that have no result yet, in index order."""
        return self._faults("WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.fault_index = f.fault_index)")

    def n_results(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def results(self) -> dict[int, InjectionResult]:
        return {int(i): InjectionResult(o, int(c), bool(e), d) for i, o, c, e, d in self._conn.execute(
            "SELECT fault_index, outcome, cycles, early_stop, detail FROM results ORDER BY fault_index")}

    def joined(self) -> list[tuple[int, Fault, InjectionResult]]:
        """(index, fault, result) of every finished injection."""
        res = self.results()
        return [(i, f, res[i]) for i, f in self._faults("") if i in res]

    def counts(self) -> dict[str, dict[str, int]]:
        """structure -> {"n", "masked", "sdc", "due"} over finished injections."""
        out: dict[str, dict[str, int]] = {}
        for structure, outcome, k in self._conn.execute(
                "SELECT f.structure, r.outcome, COUNT(*) FROM results r JOIN faults f USING (fault_index) "
                "GROUP BY f.structure, r.outcome"):
            e = out.setdefault(structure, {"n": 0, **{o: 0 for o in OUTCOMES}})
            e[outcome] += int(k)
            e["n"] += int(k)
        return out

    # ---------------------------------------------------------------- writing
    def add_results(self, results: Iterable[tuple[int, InjectionResult]]) -> None:
        """Commit a batch of results in one transaction (StoreError if one already has a result)."""
        rows = [(int(i), r.outcome, int(r.cycles), int(bool(r.early_stop)), str(r.detail), _now())
                for i, r in results]
        for _, o, *_ in rows:
            if o not in OUTCOMES:
                raise ValueError(f"outcome {o!r} is not one of {OUTCOMES}")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.IntegrityError as e:
            raise StoreError(f"{self.path}: result already recorded or fault not planned ({e})") from None
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot record results ({e})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
