"""The facts store: append-only versions, the current projection, and import.

Importing is all-or-nothing per fact and never per file: each valid object
is stored (added, unchanged, or a correction that supersedes the previous
version, which stays in history); each invalid one is reported with its
file, line and field, and nothing valid around it is lost.
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from facts import tables as t
from facts.errors import FieldProblem, Location
from facts.models import MODELS, TYPE_ORDER, FactBase, Meeting, canonical, natural_key, references
from facts.projection import COLUMNS, OWNED, Row, bulk_cache, insert_rows, rows_for, signature_rows
from facts.validate import canonical_bytes, suggest, surrogate_problem, validate_object

Status = Literal["added", "unchanged", "corrected"]
Item = tuple[Location, dict[str, Any]] | FieldProblem
Admit = Callable[[list[tuple[Location, FactBase]]], list[FieldProblem]]  # problems reject their objects

_FV = t.FactVersion.__table__  # type: ignore[attr-defined]
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]
_FV_COLUMNS = ("type", "key", "version", "hash", "content", "current", "recorded_at", "import_id")
_FEW_REFERENCES = 1000  # imports up to this many objects look their references up one by one
CHUNK = 2000
_ANALYZE_AFTER = 10_000  # PostgreSQL: refresh planner statistics after an import this big
_GC_THRESHOLD = 100_000  # allocations between young-generation collections during an import


def content_json(fact: FactBase) -> str:
    """The canonical JSON text of a fact: sorted keys, no spaces, non-ASCII as is (what is stored and hashed)."""
    return canonical_bytes(canonical(fact)).decode("utf-8")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Stored:
    """What happened to one imported object."""

    location: Location
    fact: FactBase
    key: str
    status: Status
    version: int


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    corrected: int = 0
    problems: list[FieldProblem] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)  # added and corrected facts, in order
    import_id: int | None = None
    altered: list[str] = field(default_factory=list)  # stored versions whose content no longer matched its hash

    @property
    def rejected(self) -> int:
        """Number of input objects (lines, rows) rejected."""
        return len({(p.location.file, p.location.line) for p in self.problems})

    def summary(self) -> str:
        return (
            f"added {self.added}, unchanged {self.unchanged}, "
            f"corrected {self.corrected}, rejected {self.rejected}"
        )


@dataclass(frozen=True)
class VersionInfo:
    version: int
    current: bool
    recorded_at: datetime
    superseded_at: datetime | None
    content: dict[str, Any]


@dataclass(frozen=True)
class _Run:
    id: int
    now: datetime
    present: set[str]  # fact types that had versions before this import


@dataclass
class _Pending:
    location: Location
    fact: FactBase
    key: str
    content: str
    hash: str


class FactStore:
    """Facts in a database: ``FactStore(make_engine(url))``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- schema -----------------------------------------------------------------
    def create_schema(self) -> None:
        """Create the facts tables (safe to repeat)."""
        tables = [m.__table__ for m in _fact_tables()]  # type: ignore[attr-defined]
        SQLModel.metadata.create_all(self.engine, tables=tables)

    # -- import -----------------------------------------------------------------
    def import_items(
        self, items: Iterable[Item], files: str = "", now: datetime | None = None, admit: Admit | None = None
    ) -> ImportReport:
        """Validate, resolve references and store every valid object of ``items``.

        ``admit`` (the service's authorization) sees the valid objects before their
        references are resolved; the objects it names problems for are rejected.
        """
        with _rare_collections():
            return self._import(items, files, now or datetime.now(UTC), admit)

    def _import(self, items: Iterable[Item], files: str, now: datetime, admit: Admit | None = None) -> ImportReport:
        report = ImportReport()
        pending = self._validate(items, report)
        pending = self._drop_duplicates(pending, report)
        if admit is not None and pending:
            refused = admit([(p.location, p.fact) for p in pending])
            if refused:
                report.problems.extend(refused)
                bad = {(r.location.file, r.location.line) for r in refused}
                pending = [p for p in pending if (p.location.file, p.location.line) not in bad]
        pending = self._resolve_references(pending, report)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                sa.insert(t.ImportRun.__table__).values(started_at=now, files=files[:2000])  # type: ignore[attr-defined]
            ).inserted_primary_key
            run_id = int(inserted[0]) if inserted else 0
        report.import_id = run_id
        with self.engine.connect() as conn, bulk_cache(conn):  # one connection: its page cache stays warm
            with conn.begin():
                present = _types_present(conn, {p.fact.type for p in pending})  # type: ignore[attr-defined]
            run = _Run(run_id, now, present)
            for start in range(0, len(pending), CHUNK):
                with conn.begin():  # a chunk is one transaction: a crash never leaves half a fact
                    self._store_chunk(conn, pending[start : start + CHUNK], run, report)
            if conn.dialect.name == "postgresql" and report.added + report.corrected >= _ANALYZE_AFTER:
                _analyze(conn)  # fresh statistics: without them the planner scans a type's rows per look-up
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(t.ImportRun.__table__)  # type: ignore[attr-defined]
                .where(t.ImportRun.__table__.c.id == run_id)  # type: ignore[attr-defined]
                .values(
                    finished_at=datetime.now(UTC),
                    added=report.added,
                    unchanged=report.unchanged,
                    corrected=report.corrected,
                    rejected=report.rejected,
                )
            )
        return report

    def _validate(self, items: Iterable[Item], report: ImportReport) -> list[_Pending]:
        pending: list[_Pending] = []
        for item in items:
            if isinstance(item, FieldProblem):
                report.problems.append(item)
                continue
            location, raw = item
            result = validate_object(raw, location)
            if isinstance(result, list):
                report.problems.extend(result)
                continue
            body = canonical(result)
            try:
                data = canonical_bytes(body)
            except UnicodeEncodeError:  # a "\ud800" escape: valid JSON, but not text a database can hold
                report.problems.append(surrogate_problem(location, body))
                continue
            digest = hashlib.sha256(data).hexdigest()[:32]
            pending.append(_Pending(location, result, natural_key(result), data.decode("utf-8"), digest))
        return pending

    def _drop_duplicates(self, pending: list[_Pending], report: ImportReport) -> list[_Pending]:
        first: dict[tuple[str, str], _Pending] = {}
        kept: list[_Pending] = []
        for p in pending:
            ident = (p.fact.type, p.key)  # type: ignore[attr-defined]
            seen = first.get(ident)
            if seen is None:
                first[ident] = p
                kept.append(p)
            elif seen.hash == p.hash:
                report.unchanged += 1  # the same object twice: harmless
            else:
                what = "id" if hasattr(p.fact, "id") else "key"
                report.problems.append(
                    FieldProblem(
                        p.location,
                        f"{ident[0]}.{what}",
                        f'"{p.key}" appears twice in this import with different content '
                        f"(first at {seen.location}); this line was not imported",
                    )
                )
        return kept

    def _registry_ids(self, target: str, among: set[str] | None = None) -> set[str]:
        """Stored org or member ids (only those in ``among`` when given: a small import asks for few)."""
        column = (t.OrgRow if target == "org" else t.MemberRow).__table__.c.id  # type: ignore[union-attr]
        with self.engine.connect() as conn:
            if among is None:
                return set(conn.execute(sa.select(column)).scalars())
            wanted = sorted(among)
            found: set[str] = set()
            for start in range(0, len(wanted), 500):
                found.update(conn.execute(sa.select(column).where(column.in_(wanted[start : start + 500]))).scalars())
            return found

    def _resolve_references(self, pending: list[_Pending], report: ImportReport) -> list[_Pending]:
        asked: dict[str, set[str]] = {"org": set(), "member": set()}
        for p in pending:
            for _path, target, ref in references(p.fact):
                asked[target].add(ref)
        few = len(pending) <= _FEW_REFERENCES  # a submission: look up its references, not the registry
        known = {target: self._registry_ids(target, ids if few else None) for target, ids in asked.items()}
        everyone: dict[str, list[str]] = {}

        def suggestion(ref: str, target: str) -> str:
            if target not in everyone:  # only when something is unknown: then the whole list helps
                everyone[target] = sorted(self._registry_ids(target) | known[target])
            return suggest(ref, everyone[target])

        for p in pending:
            if p.fact.type in known:  # type: ignore[attr-defined]
                known[p.fact.type].add(p.key)  # type: ignore[attr-defined]
        alive = list(pending)
        while True:
            bad: list[tuple[_Pending, list[FieldProblem]]] = []
            for p in alive:
                problems = [
                    FieldProblem(
                        p.location,
                        f"{p.fact.type}.{path}",  # type: ignore[attr-defined]
                        f'unknown {target} "{ref}"{suggestion(ref, target)}',
                    )
                    for path, target, ref in references(p.fact)
                    if ref not in known[target]
                ]
                if problems:
                    bad.append((p, problems))
            if not bad:
                return alive
            dropped = {id(p) for p, _ in bad}
            for p, problems in bad:
                report.problems.extend(problems)
                if p.fact.type in known:  # type: ignore[attr-defined]
                    known[p.fact.type].discard(p.key)  # type: ignore[attr-defined]
            alive = [p for p in alive if id(p) not in dropped]

    def _store_chunk(
        self, conn: sa.Connection, chunk: list[_Pending], run: _Run, report: ImportReport
    ) -> None:
        by_type: dict[str, list[_Pending]] = defaultdict(list)
        for p in chunk:
            by_type[p.fact.type].append(p)  # type: ignore[attr-defined]
        for type_name in TYPE_ORDER:
            group = by_type.get(type_name)
            if group:
                self._store_group(conn, type_name, group, run, report)

    def _store_group(
        self, conn: sa.Connection, type_name: str, group: list[_Pending], run: _Run, report: ImportReport
    ) -> None:
        if type_name in run.present:
            existing = _current_versions(conn, type_name, [p.key for p in group])
            altered = _altered(conn, type_name, [p.key for p in group if existing.get(p.key, ("", 0))[0] == p.hash])
        else:
            existing = {}  # nothing of this type was stored before this import, and keys are unique within it
            altered = set()
        new_versions: list[tuple[_Pending, int]] = []
        superseded: list[str] = []
        for p in group:
            old = existing.get(p.key)
            if old is None:
                new_versions.append((p, 1))
            elif old[1] < 0:  # retracted: a new version after the tombstone
                new_versions.append((p, -old[1] + 1))
            elif old[0] == p.hash and p.key in altered:  # the stored text was edited behind the store's back
                report.altered.append(f"{type_name} {p.key} v{old[1]}")
                new_versions.append((p, old[1] + 1))
                superseded.append(p.key)
            elif old[0] == p.hash:
                report.unchanged += 1
            else:
                new_versions.append((p, old[1] + 1))
                superseded.append(p.key)
        if not new_versions:
            return
        if superseded:
            conn.execute(
                sa.update(_FV)
                .where(_FV.c.type == type_name, _FV.c.key.in_(superseded), _FV.c.current.is_(True))
                .values(current=False, superseded_at=run.now)
            )
            _delete_projection(conn, type_name, superseded, [p for p, v in new_versions if v > 1])
        before = 0
        # the projection needs each meeting's seq: remember where this insert starts
        if type_name == "meeting":
            before = conn.execute(sa.select(sa.func.max(_FV.c.seq))).scalar() or 0
        versions = [(type_name, p.key, v, p.hash, p.content, True, run.now, run.id) for p, v in new_versions]
        insert_rows(conn, _FV, _FV_COLUMNS, versions)
        seqs = _new_seqs(conn, type_name, run.id, before) if type_name == "meeting" else {}
        projected: dict[sa.Table, list[Row]] = defaultdict(list)
        for p, version in new_versions:
            for table, row in rows_for(p.fact, seqs.get(p.key, 0)):
                projected[table].append(row)
            if version == 1:
                report.added += 1
                report.stored.append(Stored(p.location, p.fact, p.key, "added", version))
            else:
                report.corrected += 1
                report.stored.append(Stored(p.location, p.fact, p.key, "corrected", version))
        if type_name == "meeting":
            for table, row in signature_rows(
                [p.fact for p, _ in new_versions if isinstance(p.fact, Meeting)]
            ):
                projected[table].append(row)
        for table, rows in projected.items():
            insert_rows(conn, table, COLUMNS[table], rows)

    # -- retracting -------------------------------------------------------------
    def retract(self, type_name: str, key: str, reason: str, by: str, now: datetime | None = None) -> int | None:
        """Withdraw a fact: its current version is superseded by a tombstone version (content
        ``{"retracted": …}``, never current) that keeps the reason; history keeps everything.
        Returns the import run id of the tombstone, or None if nothing current has that key.
        """
        if not reason.strip():
            raise ValueError("a retraction needs a reason")
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(_FV.c.version).where(_FV.c.type == type_name, _FV.c.key == key, _FV.c.current.is_(True))
            ).first()
            if row is None:
                return None
            inserted = conn.execute(
                sa.insert(t.ImportRun.__table__).values(  # type: ignore[attr-defined]
                    started_at=now, finished_at=now, files=f"retract {type_name} {key}"[:2000]
                )
            ).inserted_primary_key
            run_id = int(inserted[0]) if inserted else 0
            conn.execute(
                sa.update(_FV)
                .where(_FV.c.type == type_name, _FV.c.key == key, _FV.c.current.is_(True))
                .values(current=False, superseded_at=now)
            )
            text = canonical_bytes({"retracted": True, "type": type_name, "key": key, "reason": reason, "by": by})
            conn.execute(
                sa.insert(_FV).values(
                    type=type_name, key=key, version=int(row[0]) + 1, hash=content_hash(text.decode("utf-8")),
                    content=text.decode("utf-8"), current=False, recorded_at=now, superseded_at=now, import_id=run_id,
                )
            )
            for table, column in OWNED[type_name]:
                conn.execute(sa.delete(table).where(table.c[column] == key))
            if type_name == "dues":
                member, _, month = key.partition("|")
                conn.execute(sa.delete(_DUES).where(_DUES.c.member == member, _DUES.c.month == month))
        return run_id

    def current_version(self, type_name: str, key: str) -> dict[str, Any] | None:
        """The current content of one fact, or None."""
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(_FV.c.content).where(_FV.c.type == type_name, _FV.c.key == key, _FV.c.current.is_(True))
            ).scalar()
        return json.loads(text) if text else None

    # -- reading ----------------------------------------------------------------
    def current(self, type_name: str | None = None) -> Iterator[dict[str, Any]]:
        """Current versions in the interchange format, registry types first, in order received."""
        types = [type_name] if type_name else TYPE_ORDER
        with self.engine.connect() as conn:
            for name in types:
                result = conn.execute(
                    sa.select(_FV.c.content)
                    .where(_FV.c.type == name, _FV.c.current.is_(True))
                    .order_by(_FV.c.seq)
                    .execution_options(yield_per=5000)
                )
                for (text,) in result:
                    yield json.loads(text)

    def history(self, type_name: str, key: str) -> list[VersionInfo]:
        """Every version of one fact, oldest first (empty if unknown)."""
        if type_name not in MODELS:
            raise ValueError(f"unknown type {type_name!r}{suggest(type_name, list(MODELS))}")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_FV.c.version, _FV.c.current, _FV.c.recorded_at, _FV.c.superseded_at, _FV.c.content)
                .where(_FV.c.type == type_name, _FV.c.key == key)
                .order_by(_FV.c.version)
            ).all()
        return [VersionInfo(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def counts(self) -> dict[str, int]:
        """Number of current facts of each type."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_FV.c.type, sa.func.count()).where(_FV.c.current.is_(True)).group_by(_FV.c.type)
            ).all()
        found = {r[0]: int(r[1]) for r in rows}
        return {name: found.get(name, 0) for name in TYPE_ORDER}


def _fact_tables() -> list[type[SQLModel]]:
    return [
        t.FactVersion,
        t.ImportRun,
        t.OrgRow,
        t.MemberRow,
        t.MemberRoleRow,
        t.MemberExtraOrgRow,
        t.MemberFlagRow,
        t.MemberChangeRow,
        t.OrgChangeRow,
        t.MeetingRow,
        t.MeetingTopicRow,
        t.AttendanceRow,
        t.DuesRow,
        t.SignoffRow,
        t.InterviewRow,
        t.PetitionRow,
        t.ElectionRow,
        t.FieldVisitRow,
        t.DeclarationRow,
        t.PromotionRow,
        t.MinutesSigRow,
    ]


def _new_seqs(conn: sa.Connection, type_name: str, run_id: int, before: int) -> dict[str, int]:
    """The order received (fact_version.seq) of the versions of ``type_name`` this import wrote after seq ``before``.

    New seqs are above every seq handed out before, concurrent imports' included, and
    earlier chunks of this import are at or below ``before``: a range scan of the primary key.
    """
    rows = conn.execute(
        sa.select(_FV.c.key, _FV.c.seq).where(
            _FV.c.seq > before, _FV.c.import_id == run_id, _FV.c.type == type_name
        )
    )
    return {k: int(v) for k, v in rows}


def _current_versions(conn: sa.Connection, type_name: str, keys: list[str]) -> dict[str, tuple[str, int]]:
    """(hash, version) of the current version of each key; a retracted key (no current version) as ("", -last)."""
    out: dict[str, tuple[str, int]] = {}
    for start in range(0, len(keys), 500):
        part = keys[start : start + 500]
        rows = conn.execute(
            sa.select(_FV.c.key, _FV.c.hash, _FV.c.version).where(
                _FV.c.type == type_name, _FV.c.current.is_(True), _FV.c.key.in_(part)
            )
        )
        for key, digest, version in rows:
            out[key] = (digest, version)
        missing = [k for k in part if k not in out]
        if missing:  # keys with history but no current version were retracted
            gone = conn.execute(
                sa.select(_FV.c.key, sa.func.max(_FV.c.version))
                .where(_FV.c.type == type_name, _FV.c.key.in_(missing))
                .group_by(_FV.c.key)
            )
            for key, version in gone:
                out[key] = ("", -int(version))
    return out


def _altered(conn: sa.Connection, type_name: str, keys: list[str]) -> set[str]:
    """Of ``keys`` (whose stored hash equals the incoming one), those whose stored content no longer hashes to it.

    Re-importing an object whose stored text was edited in the database must not say "unchanged".
    """
    out: set[str] = set()
    for start in range(0, len(keys), 500):
        rows = conn.execute(
            sa.select(_FV.c.key, _FV.c.hash, _FV.c.content).where(
                _FV.c.type == type_name, _FV.c.current.is_(True), _FV.c.key.in_(keys[start : start + 500])
            )
        )
        out.update(key for key, digest, text in rows if content_hash(text)[: len(digest)] != digest)
    return out


def _types_present(conn: sa.Connection, types: set[str]) -> set[str]:
    """Which of ``types`` already have a version in the store (the others need no look-up of old versions)."""
    return {
        name
        for name in types
        if conn.execute(sa.select(_FV.c.seq).where(_FV.c.type == name).limit(1)).first() is not None
    }


def _analyze(conn: sa.Connection) -> None:
    quote = conn.dialect.identifier_preparer
    with conn.begin():
        for model in _fact_tables():
            conn.exec_driver_sql(f"ANALYZE {quote.format_table(model.__table__)}")  # type: ignore[attr-defined]


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Let the cyclic garbage collector look at young objects rarely while an import runs.

    An import makes millions of objects that live until it ends (every fact, its rows);
    at the default threshold (700 allocations) the collector rescans them all over
    again, a sixth of the import's time.  Cycles are still collected, and the previous
    thresholds come back when the import ends.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], _GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _delete_projection(conn: sa.Connection, type_name: str, keys: list[str], facts: list[_Pending]) -> None:
    for table, column in OWNED[type_name]:
        conn.execute(sa.delete(table).where(table.c[column].in_(keys)))
    if type_name == "dues":
        for p in facts:
            conn.execute(
                sa.delete(_DUES).where(_DUES.c.member == p.fact.member, _DUES.c.month == p.fact.month)  # type: ignore[attr-defined]
            )
