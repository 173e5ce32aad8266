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

Schema versions: 1 took the outcomes masked, sdc and due; 2 (this one) takes
every :data:`~fault_injection.faults.OUTCOMES` (corrected, detected and latent
too, for designs with safety mechanisms), its tables otherwise the same. A
version-1 file is read as it is (a report never writes), and migrated when it
is opened for writing (``hwgen fi resume``): the results table is rebuilt with
the new outcome check, and the campaign row and header say version 2, all in
one transaction, so a process killed meanwhile leaves the version-1 file
intact. Why rebuild rather than edit: SQLite cannot alter a CHECK constraint
(https://www.sqlite.org/lang_altertable.html, "other kinds of table schema
changes"). A file of a later version, written by a newer hwgen, is refused
with a message saying so, and left untouched.

The rules below that every hwgen SQLite file follows (header check, safe connection, schema check, atomic
creation) are implemented once in :mod:`hwgen.sqlite_files`; this module states its tables and fields.

Crash safety: a new campaign file is written completely (schema, parameters and
the whole plan, one transaction) as a temporary sibling and then linked into
place, so the path either does not exist or holds the whole plan. Each batch of
results is one transaction (SQLite's rollback journal, ``synchronous=FULL``):
a process killed at any moment loses at most the batch it was writing, which
:meth:`CampaignStore.pending` then still lists.

Foreign files: before SQLite touches a file its 100-byte header is read and
checked (the SQLite magic, this store's ``application_id`` and schema version,
both kept in the header, and the rollback-journal format this store writes). A
file that is not SQLite, an SQLite database of something else, or of a schema
version this hwgen does not read is refused with :class:`StoreError`, and left byte-identical.

Damaged and tampered files: a campaign file is input like any other (it may be
truncated, overwritten in the middle or edited with ``sqlite3``). Opening it
checks that its schema holds exactly this store's four tables (no triggers or
views, which would run SQL on our writes), that the campaign row's every field
has its type and range (the configuration is validated as a configuration, the
fault models against :data:`~fault_injection.faults.FAULT_MODELS`), and that
the plan is exactly ``fault_index`` 0..planned-1 with results only for planned
faults; and SQLite's ``quick_check`` passes (linear in the file, a fraction of
a second per million faults), so results are never written into, nor reports
drawn from, a damaged file.
Every row read later is checked the same way (a fault's site, bit, word and
cycle against the site inventory and the golden run). Any failure, and any
SQLite error on any path ("malformed", "file is not a database", "database is
locked", a full disk), is one :class:`StoreError` naming the file; an open that
fails writes nothing.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from hwgen.errors import HwgenError
from hwgen.sqlite_files import (SQL_ERRORS, SQLITE_MAGIC, DatabaseKind, SqliteStore, check_header, create_new,
                                hwgen_version, insert_rows, is_int, open_checked, quoted, rollback_quietly, sql_reason,
                                utc_now)
from hwgen.sqlite_files import path_exists as _path_exists

from .faults import FAULT_MODELS, LEGACY_OUTCOMES, OUTCOMES, Fault, InjectionResult, Site, structure_of

__all__ = ["StoreError", "CampaignInfo", "CampaignStore", "check_file", "path_exists", "quoted", "is_int",
           "SCHEMA_VERSION", "READABLE_VERSIONS", "APPLICATION_ID", "BUSY_TIMEOUT", "SQL_ERRORS", "KIND"]

SCHEMA_VERSION = 2
#: schema version -> the outcomes its results table takes (every version here is read; older ones migrated)
_VERSION_OUTCOMES: dict[int, tuple[str, ...]] = {1: LEGACY_OUTCOMES, 2: OUTCOMES}
READABLE_VERSIONS: tuple[int, ...] = tuple(_VERSION_OUTCOMES)
APPLICATION_ID = 0x68774649  # "hwFI"


def _results_table(name: str, outcomes: Sequence[str]) -> str:
    """The results table's CREATE statement, taking ``outcomes``: one text for new files and for migration."""
    return f"""CREATE TABLE {name} (
    fault_index INTEGER PRIMARY KEY REFERENCES faults(fault_index),
    outcome TEXT NOT NULL CHECK (outcome IN ({", ".join(repr(str(o)) for o in outcomes)})),
    cycles INTEGER NOT NULL,
    early_stop INTEGER NOT NULL,
    detail TEXT NOT NULL,
    finished TEXT NOT NULL
)"""


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
{_results_table("results", OUTCOMES)};
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
#: SQLite's 64-bit integer range: the bound of every count, cycle and seed read back
_INT64_MAX = (1 << 63) - 1
#: bounds of a site read back (the widest word is acc_buf's read register, 256 x 32 bits; depths fit 16 bits)
_MAX_SITE_WIDTH = 1 << 16
_MAX_SITE_DEPTH = 1 << 24
#: longest text field (workload spec, backend name, site name, version strings) a campaign row may hold
_MAX_TEXT = 8192
#: seconds a reader or writer waits for another process's lock before "database is locked"
BUSY_TIMEOUT = 30.0
#: longest configuration JSON read back (a configuration is a few hundred characters; deep nesting and
#: huge integers below this are parse_json's errors, naming the json_depth limit)
_MAX_CONFIG_TEXT = 1 << 20


class StoreError(HwgenError, ValueError):
    """A campaign file that cannot be created, opened or written; the message names the file."""


#: how the header identifies a campaign file and how messages name it (hwgen.sqlite_files)
KIND = DatabaseKind(application_id=APPLICATION_ID, schema_version=SCHEMA_VERSION, noun="campaign database",
                    title="fault-injection campaign", error=StoreError)
#: the kind of each readable version's files (the header check wants one exact version)
_KINDS: dict[int, DatabaseKind] = {v: DatabaseKind(application_id=APPLICATION_ID, schema_version=v,
                                                   noun=KIND.noun, title=KIND.title, error=StoreError)
                                   for v in READABLE_VERSIONS}


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


def path_exists(path: str | os.PathLike[str]) -> bool:
    """Whether anything (a dangling link included) is at ``path``; StoreError for a path the system cannot even
    look up (too long, a NUL byte, a file where a folder should be), instead of an OSError later."""
    return _path_exists(path, StoreError)


def check_file(path: str | os.PathLike[str]) -> int:
    """The schema version of the campaign database ``path`` (one of :data:`READABLE_VERSIONS`); StoreError
    otherwise, saying so when a newer hwgen wrote it. Reads the 100-byte header only."""
    return _file_kind(Path(path)).schema_version


def _header_version(p: Path) -> int | None:
    """The schema version (SQLite's ``user_version``, header bytes 60-63) of a file whose header is a campaign
    database's (SQLite magic, ``application_id`` at bytes 68-71); None for anything else, which
    :func:`hwgen.sqlite_files.check_header` then names. Why here: that check wants one exact version, and
    refusing a newer file needs its number."""
    try:
        with open(p, "rb") as f:
            head = f.read(100)
    except OSError:
        return None
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC) or int.from_bytes(head[68:72], "big") != APPLICATION_ID:
        return None
    return int.from_bytes(head[60:64], "big")


def _file_kind(p: Path) -> DatabaseKind:
    """The :class:`DatabaseKind` of the campaign file ``p`` after its header check; StoreError otherwise."""
    version = _header_version(p)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"{p}: campaign database schema version {version}, written by a newer hwgen; this hwgen "
                         f"reads versions {', '.join(map(str, READABLE_VERSIONS))}: use that hwgen (or a later "
                         f"one) for this file")
    kind = _KINDS.get(version, KIND) if version is not None else KIND
    check_header(p, kind)
    return kind


# ---------------------------------------------------------------- checking what a file holds
def _is_fraction(value: Any) -> bool:
    """A float strictly between 0 and 1 (SQLite returns REAL columns as float; NaN fails the comparison)."""
    return isinstance(value, float) and 0.0 < value < 1.0


def _is_text(value: Any, min_len: int = 0) -> bool:
    return isinstance(value, str) and min_len <= len(value) <= _MAX_TEXT


def _campaign_fields(path: Path, row: Sequence[Any], version: int = SCHEMA_VERSION) -> CampaignInfo:
    """The campaign row as a CampaignInfo, every field checked (StoreError naming the field otherwise).

    The row comes from a file, so nothing in it is trusted: the configuration must be a valid
    configuration, the models known fault models, the numbers integers (or fractions) in their range."""
    from hwgen.config import AcceleratorConfig
    from hwgen.fileio import parse_json

    cfg, workload, seed, backend, models, planned, conf, golden, margin, created, ver, hv = row

    def bad(field: str, value: Any, why: str) -> StoreError:
        return StoreError(f"{path}: campaign field '{field}' = {quoted(value)}: {why}")

    if not (isinstance(cfg, str) and 2 <= len(cfg) <= _MAX_CONFIG_TEXT):
        raise bad("config", cfg, f"not a JSON text of at most {_MAX_CONFIG_TEXT:,} characters")
    try:
        config = AcceleratorConfig.from_dict(parse_json(cfg, f"{path}: campaign field 'config'"),
                                             source=f"{path}: campaign field 'config'").to_dict()
    except HwgenError as e:  # ConfigError, or parse_json's error: already names the field
        raise StoreError(str(e)) from None
    if not _is_text(workload, 1):
        raise bad("workload", workload, f"not a workload spec (text of 1 to {_MAX_TEXT} characters)")
    if not is_int(seed, 0, _INT64_MAX):
        raise bad("seed", seed, "not a non-negative integer")
    if not _is_text(backend, 1) or not backend.isprintable():
        raise bad("backend", backend, "not a backend name")
    model_list = _models_field(path, models)
    if not is_int(planned, 1, _INT64_MAX):
        raise bad("planned", planned, "not a positive integer")
    from hwgen.limits import check_limit

    try:
        check_limit("injections", planned, f"{path}: campaign field 'planned' (injections)")
    except HwgenError as e:
        raise StoreError(str(e)) from None
    if not _is_fraction(conf):
        raise bad("confidence", conf, "not a number strictly between 0 and 1")
    if not is_int(golden, 1, _INT64_MAX):
        raise bad("golden_cycles", golden, "not a positive integer")
    if margin is not None and not _is_fraction(margin):
        raise bad("margin", margin, "neither empty nor a number strictly between 0 and 1")
    for field, value in (("created", created), ("hwgen_version", hv)):
        if not _is_text(value):
            raise bad(field, value, "not a text")
    if ver != version:
        raise bad("schema_version", ver, f"the file's header says version {version}")
    return CampaignInfo(config, workload, seed, backend, model_list, planned, conf, golden, margin, created, ver, hv)


def _models_field(path: Path, text: Any) -> tuple[str, ...]:
    """The ``models`` field: a JSON list of distinct known fault models."""
    from hwgen.fileio import parse_json

    where = f"{path}: campaign field 'models'"
    if not _is_text(text, 2):
        raise StoreError(f"{where} = {quoted(text)}: not a JSON list of fault models")
    try:
        models = parse_json(text, where)
    except HwgenError as e:
        raise StoreError(str(e)) from None
    if (not isinstance(models, list) or not models or len(set(map(repr, models))) != len(models)
            or not all(isinstance(m, str) and m in FAULT_MODELS for m in models)):
        raise StoreError(f"{where} = {quoted(text)}: not a list of distinct fault models among "
                         f"{', '.join(FAULT_MODELS)}")
    return tuple(models)


def _sql_reason(e: BaseException) -> str:
    return sql_reason(e, KIND)


class CampaignStore(SqliteStore):
    """An open campaign database. Use :meth:`create` or :meth:`open`; a context manager.

    Every method turns SQLite's errors into :class:`StoreError` naming the file, and checks each row it
    reads (a file may have been damaged or edited since it was written)."""

    KIND = KIND

    def __init__(self, path: Path, conn: sqlite3.Connection, schema_version: int = SCHEMA_VERSION):
        super().__init__(path, conn)
        self._site_map: dict[str, Site] | None = None
        self.schema_version = schema_version
        self._outcomes = _VERSION_OUTCOMES[schema_version]
        self.info = self._read_info()
        self._check_plan()

    # ---------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | os.PathLike[str], info: CampaignInfo, sites: Sequence[Site],
               faults: Sequence[Fault]) -> "CampaignStore":
        """Write a new campaign file (parameters, sites and the whole plan) and open it.
        StoreError if ``path`` exists (it is never overwritten)."""
        p = Path(path)
        if path_exists(p):
            raise StoreError(f"{p}: already exists (use 'hwgen fi resume' to continue a campaign)")
        if len(faults) != info.planned:
            raise ValueError(f"plan of {len(faults)} faults, but {info.planned} planned")
        create_new(p, lambda conn: _write_new(conn, info, sites, faults), KIND, "the campaign")
        return cls.open(p)

    @classmethod
    def open(cls, path: str | os.PathLike[str], readonly: bool = False) -> "CampaignStore":
        """Open an existing campaign file, after checking (read-only, 100 bytes) that it is one; then its
        schema, SQLite's quick_check, campaign row and plan bounds. StoreError naming the
        file on any failure, with the file unchanged."""
        p = Path(path)
        kind = _file_kind(p)

        def build(conn: sqlite3.Connection) -> "CampaignStore":
            store = cls(p, conn, kind.schema_version)  # every check on the file as it is, before any migration
            if not readonly and store.schema_version != SCHEMA_VERSION:
                store._migrate()
            return store

        return open_checked(p, kind, _TABLES, readonly, BUSY_TIMEOUT, build)

    def _migrate(self) -> None:
        """Version 1 -> 2 in one transaction (see the module docstring): the results table rebuilt with every
        outcome, the campaign row and the header's version set. Under the write lock the version is read again,
        so two processes opening one old file migrate it once. StoreError (the file unchanged) on failure."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,), = conn.execute("PRAGMA user_version").fetchall()
                if version == 1:
                    conn.execute(_results_table("results_v2", OUTCOMES))
                    conn.execute("INSERT INTO results_v2 (fault_index, outcome, cycles, early_stop, detail, finished) "
                                 "SELECT fault_index, outcome, cycles, early_stop, detail, finished FROM results")
                    conn.execute("DROP TABLE results")
                    conn.execute("ALTER TABLE results_v2 RENAME TO results")
                    conn.execute("UPDATE campaign SET schema_version = ? WHERE id = 1", (SCHEMA_VERSION,))
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version != SCHEMA_VERSION:
                    raise StoreError(f"{self.path}: campaign database changed to schema version {quoted(version)} "
                                     f"while being opened")
                conn.execute("COMMIT")
            except BaseException:
                rollback_quietly(conn)
                raise
        except SQL_ERRORS as e:
            raise StoreError(f"{self.path}: cannot migrate the campaign database from schema version "
                             f"{self.schema_version} to {SCHEMA_VERSION} ({_sql_reason(e)}); the file is "
                             f"unchanged") from None
        self.schema_version = SCHEMA_VERSION
        self._outcomes = OUTCOMES
        self.info = self._read_info()

    def _read_info(self) -> CampaignInfo:
        (n,), = self.query("SELECT COUNT(*) FROM campaign")
        if n > 1:
            raise StoreError(f"{self.path}: campaign database holds {n} campaign rows; a campaign file holds one")
        rows = self.query(
            "SELECT config, workload, seed, backend, models, planned, confidence, golden_cycles, margin, created, "
            "schema_version, hwgen_version FROM campaign WHERE id = 1")
        if not rows:
            raise StoreError(f"{self.path}: campaign database has no campaign row")
        return _campaign_fields(self.path, rows[0], self.schema_version)

    def _check_plan(self) -> None:
        """The plan is fault_index 0..planned-1 (distinct: the primary key) and every result is of a planned
        fault; a site inventory exists. Index-only queries: cheap on a plan of millions."""
        planned = self.info.planned
        (n, lo, hi), = self.query("SELECT COUNT(*), MIN(fault_index), MAX(fault_index) FROM faults")
        if (n, lo, hi) != (planned, 0, planned - 1):
            raise StoreError(f"{self.path}: the plan holds {n:,} faults (indices {lo}..{hi}); the campaign planned "
                             f"{planned:,} (indices 0..{planned - 1})")
        (rlo, rhi), = self.query("SELECT MIN(fault_index), MAX(fault_index) FROM results")
        if rlo is not None and not (is_int(rlo, 0, planned - 1) and is_int(rhi, 0, planned - 1)):
            raise StoreError(f"{self.path}: results for fault indices {quoted(rlo)}..{quoted(rhi)}, outside the "
                             f"plan 0..{planned - 1}")
        if not self.query("SELECT 1 FROM sites LIMIT 1"):
            raise StoreError(f"{self.path}: campaign database has no fault sites")

    def lock(self) -> None:
        """Take an exclusive advisory lock (flock) for running injections; StoreError if another process has it."""
        super().lock("another process is running this campaign")

    # ---------------------------------------------------------------- reading
    def sites(self) -> list[Site]:
        """The site inventory the plan was drawn from, in stored order."""
        return list(self._sites().values())

    def _sites(self) -> dict[str, Site]:
        if self._site_map is None:
            out: dict[str, Site] = {}
            for row in self.query("SELECT name, width, depth, kind FROM sites ORDER BY rowid"):
                site = _site_row(self.path, row)
                out[site.name] = site
            self._site_map = out
        return self._site_map

    def faults(self) -> list[Fault]:
        """The whole plan, in index order."""
        return [f for _, f in self._faults("")]

    def _faults(self, where: str) -> list[tuple[int, Fault]]:
        rows = self.query(
            "SELECT f.fault_index, f.site, f.model, f.cycle, f.bit, f.word, f.nbits, f.duration FROM faults f "
            f"{where} ORDER BY f.fault_index")
        sites, cycles = self._sites(), self.info.golden_cycles
        return [(row[0], _fault_row(self.path, row, sites, cycles)) for row in rows]

    def pending(self) -> list[tuple[int, Fault]]:
        """(index, fault) of the planned faults that have no result yet, in index order."""
        return self._faults("WHERE NOT EXISTS (SELECT 1 FROM results r WHERE r.fault_index = f.fault_index)")

    def n_results(self) -> int:
        (n,), = self.query("SELECT COUNT(*) FROM results")
        return int(n)

    def results(self) -> dict[int, InjectionResult]:
        return dict(_result_row(self.path, row, self._outcomes) for row in self.query(
            "SELECT fault_index, outcome, cycles, early_stop, detail FROM results ORDER BY fault_index"))

    def joined(self) -> list[tuple[int, Fault, InjectionResult]]:
        """(index, fault, result) of every finished injection."""
        res = self.results()
        return [(i, f, res[i]) for i, f in self._faults("") if i in res]

    def counts(self) -> dict[str, dict[str, int]]:
        """structure -> {"n", "masked", "sdc", "due"} over finished injections, plus the count of each other
        outcome (corrected, detected, latent) that occurs: the shape of version 1, which callers compare
        whole, for campaigns without safety mechanisms. :meth:`tally` splits by site kind too."""
        out: dict[str, dict[str, int]] = {}
        for (structure, _), c in self.tally().items():
            e = out.setdefault(structure, {"n": 0, **{o: 0 for o in LEGACY_OUTCOMES}})
            for key, k in c.items():
                if k or key in e:
                    e[key] = e.get(key, 0) + k
        return out

    def tally(self) -> dict[tuple[str, str], dict[str, int]]:
        """(structure, site kind "ff"/"mem") -> {"n", and every outcome of OUTCOMES} over finished injections:
        what the ISO 26262 metrics need, whose FIT per bit differs between flip-flops and SRAM.

        Grouped by site, the structure taken from the site's name (as everywhere else) and the kind from the
        site inventory, not from the stored ``structure`` column, which a tampered file could contradict."""
        out: dict[tuple[str, str], dict[str, int]] = {}
        sites = self._sites()
        for site, outcome, k in self.query(
                "SELECT f.site, r.outcome, COUNT(*) FROM results r JOIN faults f USING (fault_index) "
                "GROUP BY f.site, r.outcome"):
            if site not in sites or outcome not in self._outcomes:
                raise StoreError(f"{self.path}: results name site {quoted(site)} and outcome {quoted(outcome)}; "
                                 f"expected a site of the inventory and one of {', '.join(self._outcomes)}")
            e = out.setdefault((structure_of(site), sites[site].kind), {"n": 0, **{o: 0 for o in OUTCOMES}})
            e[outcome] += int(k)
            e["n"] += int(k)
        return out

    # ---------------------------------------------------------------- writing
    def add_results(self, results: Iterable[tuple[int, InjectionResult]]) -> None:
        """Commit a batch of results in one transaction (StoreError if one already has a result, or if the
        file cannot take it: damaged, locked, disk full; the results committed before stay)."""
        rows = [(int(i), r.outcome, int(r.cycles), int(bool(r.early_stop)), str(r.detail), utc_now())
                for i, r in results]
        for _, o, *_ in rows:
            if o not in self._outcomes:
                raise ValueError(f"outcome {o!r} is not one of {self._outcomes}")
        try:
            insert_rows(self.conn, "INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError as e:
            raise StoreError(f"{self.path}: result already recorded or fault not planned ({e})") from None
        except (*SQL_ERRORS, OverflowError) as e:
            reason = str(e) if isinstance(e, OverflowError) else _sql_reason(e)
            raise StoreError(f"{self.path}: cannot record results ({reason}); the results committed "
                             f"before are kept") from None


def _write_new(conn: sqlite3.Connection, info: CampaignInfo, sites: Sequence[Site], faults: Sequence[Fault]) -> None:
    """Schema, campaign row, sites and plan into a fresh file, one transaction."""
    conn.executescript(_SCHEMA)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO campaign VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (SCHEMA_VERSION, json.dumps(info.config, sort_keys=True), info.workload, int(info.seed),
                  info.backend, json.dumps(list(info.models)), int(info.planned), info.margin,
                  float(info.confidence), int(info.golden_cycles), info.created or utc_now(),
                  info.hwgen_version or hwgen_version()))
    conn.executemany("INSERT INTO sites VALUES (?, ?, ?, ?, ?)",
                     [(s.name, s.structure, s.width, s.depth, s.kind) for s in sites])
    conn.executemany("INSERT INTO faults VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(i, f.site, f.structure, f.model, f.cycle, f.word, f.bit, f.nbits, f.duration)
                      for i, f in enumerate(faults)])
    conn.execute("COMMIT")


def _site_row(path: Path, row: Sequence[Any]) -> Site:
    name, width, depth, kind = row
    if not (_is_text(name, 1) and is_int(width, 1, _MAX_SITE_WIDTH) and is_int(depth, 1, _MAX_SITE_DEPTH)
            and kind in ("ff", "mem") and (kind == "mem" or depth == 1)):
        raise StoreError(f"{path}: site row {quoted(tuple(row))} is not a site (name, width 1..{_MAX_SITE_WIDTH}, "
                         f"depth 1..{_MAX_SITE_DEPTH}, kind ff with depth 1 or mem)")
    return Site(name, width, depth, kind)


def _fault_row(path: Path, row: Sequence[Any], sites: dict[str, Site], cycles: int) -> Fault:
    """A planned fault, checked against its site and the golden run: what an injector may be given."""
    i, site_name, model, cycle, bit, word, nbits, duration = row
    site = sites.get(site_name) if isinstance(site_name, str) else None
    ok = (site is not None and model in FAULT_MODELS and (model != "mbu" or site.kind == "mem")
          and is_int(cycle, 0, cycles - 1) and is_int(word, 0, site.depth - 1)
          and is_int(nbits, 1, site.width if model == "mbu" else 1) and is_int(bit, 0, site.width - nbits)
          and is_int(duration, 1, _INT64_MAX))
    if not ok:
        raise StoreError(f"{path}: planned fault {quoted(i)} = {quoted(tuple(row[1:]))} is not a fault of the "
                         f"campaign's sites and {cycles:,}-cycle golden run")
    return Fault(site_name, model, cycle, bit, word, nbits, duration)


def _result_row(path: Path, row: Sequence[Any], outcomes: Sequence[str] = OUTCOMES) -> tuple[int, InjectionResult]:
    i, outcome, cycles, early, detail = row
    if not (outcome in outcomes and is_int(cycles, 0, _INT64_MAX) and early in (0, 1)
            and isinstance(detail, str)):
        raise StoreError(f"{path}: result of fault {quoted(i)} = {quoted(tuple(row[1:]))} is not a result "
                         f"(outcome among {', '.join(outcomes)}, cycles, early stop 0/1, detail text)")
    return i, InjectionResult(outcome, cycles, bool(early), detail)
