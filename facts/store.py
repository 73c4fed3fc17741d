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
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from facts import tables as t
from facts.chunks import Run, store_chunks, types_present
from facts.errors import FieldProblem, Location
from facts.models import MODELS, TYPE_ORDER, FactBase, Org, OrgChange, canonical, natural_key, references
from facts.projection import OWNED, bulk_cache
from facts.validate import canonical_bytes, suggest, surrogate_problem, validate_object

log = logging.getLogger(__name__)
Status = Literal["added", "unchanged", "corrected"]
Item = tuple[Location, dict[str, Any]] | FieldProblem
Admit = Callable[[list[tuple[Location, FactBase]]], list[FieldProblem]]  # problems reject their objects

_FV = t.FactVersion.__table__  # type: ignore[attr-defined]
_RUNS = t.ImportRun.__table__  # type: ignore[attr-defined]
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]
_FEW_REFERENCES = 1000  # imports up to this many objects look their references up one by one
_ANALYZE_AFTER = 10_000  # PostgreSQL: refresh planner statistics after an import this big
_GC_THRESHOLD = 100_000  # allocations between young-generation collections during an import


def unexpected_problem(location: Location, raw: Any, exc: BaseException) -> FieldProblem:
    """The rejection of one input object that made validating or storing it raise: that line only, logged."""
    log.warning("%s: rejected after %s", location, type(exc).__name__, exc_info=exc)
    kind = raw.get("type") if isinstance(raw, dict) else None
    field = kind if isinstance(kind, str) and kind in MODELS else ""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return FieldProblem(location, field, f"cannot be imported ({detail}); this line was not imported")


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
    conflicts: int = 0  # lines not applied because another import changed their fact meanwhile (in problems)
    failed: str | None = None  # why the import stopped before the end (the lines not stored are in problems)
    resumes: tuple[int, str] | None = None  # (id, reason) of the failed run of the same files this one resumes

    @property
    def rejected(self) -> int:
        """Number of input objects (lines, rows) rejected."""
        return len({(p.location.file, p.location.line) for p in self.problems})

    def summary(self) -> str:
        text = (
            f"added {self.added}, unchanged {self.unchanged}, "
            f"corrected {self.corrected}, rejected {self.rejected}"
        )
        if self.conflicts:
            text += f" (of which {self.conflicts} changed meanwhile by another import: re-run to apply them)"
        if self.resumes:
            text += f"\nresumed import #{self.resumes[0]} (it failed: {self.resumes[1]}); " \
                f"{self.unchanged} facts were already stored"
        if self.failed:
            text += f"\nimport #{self.import_id} FAILED: {self.failed}; re-run the same import to resume"
        return text


@dataclass(frozen=True)
class VersionInfo:
    version: int
    current: bool
    recorded_at: datetime
    superseded_at: datetime | None
    content: dict[str, Any]


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
        pending = self._refuse_cycles(pending, report)
        pending = self._resolve_references(pending, report)
        resumed = _last_failed_run(self.engine, files)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                sa.insert(_RUNS).values(started_at=now, files=files[:2000], status="running")
            ).inserted_primary_key
            run_id = int(inserted[0]) if inserted else 0
        report.import_id = run_id
        report.resumes = resumed
        failed: str | None = None
        try:
            with self.engine.connect() as conn, bulk_cache(conn):  # one connection: its page cache stays warm
                with conn.begin():
                    present = types_present(conn, {p.fact.type for p in pending})  # type: ignore[attr-defined]
                failed = store_chunks(conn, pending, Run(run_id, now, present), report)
                if (
                    not failed
                    and conn.dialect.name == "postgresql"
                    and report.added + report.corrected >= _ANALYZE_AFTER
                ):
                    _analyze(conn)  # fresh statistics: without them the planner scans a type's rows per look-up
        except Exception as exc:  # noqa: BLE001 - the run is finished as failed, saying why, then the error goes on
            self._finish(run_id, report, f"{type(exc).__name__}: {exc}"[:2000])
            raise
        report.failed = failed
        self._finish(run_id, report, failed)
        return report

    def _finish(self, run_id: int, report: ImportReport, failed: str | None) -> None:
        """Close the import run: ``ok``, or ``failed`` with the reason (a re-run of the same files resumes)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.update(_RUNS)
                    .where(_RUNS.c.id == run_id)
                    .values(
                        finished_at=datetime.now(UTC),
                        added=report.added,
                        unchanged=report.unchanged,
                        corrected=report.corrected,
                        rejected=report.rejected,
                        status="failed" if failed else "ok",
                        error=failed,
                    )
                )
        except Exception:  # the database is gone: the run stays "running"; the next import of the same files resumes
            log.exception("import run %s could not be closed", run_id)

    def _validate(self, items: Iterable[Item], report: ImportReport) -> list[_Pending]:
        pending: list[_Pending] = []
        for item in items:
            if isinstance(item, FieldProblem):
                report.problems.append(item)
                continue
            location, raw = item
            try:
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
            except Exception as exc:  # noqa: BLE001 - one line that breaks the validator is that line's problem
                report.problems.append(unexpected_problem(location, raw, exc))
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

    def _refuse_cycles(self, pending: list[_Pending], report: ImportReport) -> list[_Pending]:
        """Reject each org (or org_change) whose parent chain leads back to the org: the line that closes the cycle.

        Orgs are taken in the order of the input over the stored tree (a stored org's new
        version, or an org_change's new parent, replaces its parent edge); the first line
        whose parent would close a loop is refused and the loop is named, so ``report --org``
        and the rules never walk in circles.
        """
        edges: list[tuple[_Pending, str, str | None]] = []
        for p in pending:
            fact: Any = p.fact
            if isinstance(fact, Org):
                edges.append((p, fact.id, fact.parent))
            elif isinstance(fact, OrgChange) and fact.parent is not None:
                edges.append((p, fact.org, fact.parent))
        if not any(parent for _, _, parent in edges):
            return pending
        org_table = t.OrgRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            parent: dict[str, str | None] = dict(conn.execute(sa.select(org_table.c.id, org_table.c.parent)).all())
        for p, org, _ in edges:  # a new org version is not in the tree until its line is reached
            if isinstance(p.fact, Org):
                parent.pop(org, None)
        refused: set[int] = set()
        for p, org, new_parent in edges:
            chain = [org]
            ref = new_parent
            seen: set[str] = set()
            while ref is not None and ref not in seen and ref != org:
                seen.add(ref)
                chain.append(ref)
                ref = parent.get(ref)
            if ref == org:
                refused.add(id(p))
                loop = " → ".join([*chain, org])
                report.problems.append(
                    FieldProblem(
                        p.location, f"{p.fact.type}.parent",  # type: ignore[attr-defined]
                        f'"{new_parent}" would close a cycle of parents: {loop}',
                    )
                )
            else:
                parent[org] = new_parent
        return [p for p in pending if id(p) not in refused] if refused else pending

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


def _last_failed_run(engine: Engine, files: str) -> tuple[int, str] | None:
    """The latest import run of the same files, if it did not finish (failed, or its process died)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(_RUNS.c.id, _RUNS.c.status, _RUNS.c.error)
            .where(_RUNS.c.files == files[:2000])
            .order_by(_RUNS.c.id.desc())
            .limit(1)
        ).first()
    if row is None or row[1] != "failed":
        return None
    return int(row[0]), row[2] or "failed"
