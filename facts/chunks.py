"""Writing validated facts in chunks: one transaction a chunk, concurrent imports, faults.

A chunk of :data:`CHUNK` facts is one transaction: it is stored whole or not at all.

- **Concurrent imports** (optimistic check on the version read): a chunk remembers the
  current version of each key it read.  If another import wrote one of those keys in
  the meantime, the chunk's insert of that key hits the unique ``(type, key, version)``
  constraint (or, for a fact judged unchanged, the version re-read before commit has
  moved): the chunk is rolled back and re-read.  A key now holding this import's own
  content counts as unchanged (two identical imports at once: a no-op for the second);
  a key holding other content is a **conflict**, told per line, and not applied — the
  other import's version stays and re-running this import applies it as a correction.
  Nothing is lost either way.
- **A chunk that fails for any other reason** is retried one fact at a time, so one fact
  the database refuses is that line's rejection.  When facts keep failing one after the
  other (the database is gone, the disk is full), the import stops: every line not stored
  is named, the import run is finished as ``failed`` with the reason, and re-running the
  same import resumes (what is already stored is unchanged, and counted so).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from facts import tables as t
from facts.errors import FieldProblem
from facts.models import MODELS, TYPE_ORDER
from facts.projection import COLUMNS, MEETING, OWNED, Row, insert_rows

if TYPE_CHECKING:
    from facts.prepare import Prepared
    from facts.store import ImportReport, Stored

log = logging.getLogger(__name__)

_FV = t.FactVersion.__table__  # type: ignore[attr-defined]

# The store's look-ups, prebuilt with bound parameters (the key lists expanding): SQLAlchemy compiles each
# once, where a statement built anew for each chunk was coerced, keyed and looked up in its cache each
# time (most of what storing one submitted fact cost, more than SQLite running it).
_VERSIONS = sa.select(_FV.c.key, _FV.c.hash, _FV.c.version, _FV.c.current).where(
    _FV.c.type == sa.bindparam("type"), _FV.c.key.in_(sa.bindparam("keys", expanding=True))
)
_ANY_OF_TYPE = sa.select(_FV.c.seq).where(_FV.c.type == sa.bindparam("type")).limit(1)
_MAX_SEQ = sa.select(sa.func.max(_FV.c.seq))
_NEW_SEQS = sa.select(_FV.c.key, _FV.c.seq).where(
    _FV.c.seq > sa.bindparam("before"), _FV.c.import_id == sa.bindparam("run"), _FV.c.type == sa.bindparam("type")
)
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]
_FV_COLUMNS = ("type", "key", "version", "hash", "content", "current", "recorded_at", "import_id")
_TABLES = {table.name: table for table in COLUMNS}
_MEETING = MEETING.name
CHUNK = 2000
_RETRIES = 5  # re-reads of a chunk that raced with another import
_FAILURES_IN_A_ROW = 3  # single facts failing one after the other: the database, not the facts
_RACE_CODES = {"40001", "40P01"}  # PostgreSQL: serialization failure, deadlock detected


@dataclass
class Run:
    id: int
    now: datetime
    present: set[str]  # fact types that had versions before this import (others need no look-up)
    keep_stored: bool = True  # list every added and corrected fact in the report
    keep_limit: int | None = None  # ... but past this many, none (the report says so: stored_complete)
    stored_now: set[int] = field(default_factory=set)  # id() of the facts of the current chunk stored so far


@dataclass
class _Outcome:
    """What one attempt at a chunk did; merged into the report only when its transaction commits."""

    added: int = 0
    unchanged: int = 0
    corrected: int = 0
    stored: list[Stored] = field(default_factory=list)
    done: list[int] = field(default_factory=list)  # id() of each fact stored
    read: dict[tuple[str, str], tuple[str, int] | None] = field(default_factory=dict)
    unchanged_at: dict[tuple[str, str], int] = field(default_factory=dict)  # key → version it equals
    altered: list[str] = field(default_factory=list)


class StopImport(Exception):
    """The database keeps failing: the rest of the import is not attempted."""


class _Moved(Exception):
    """A key judged unchanged was rewritten by another import before this chunk committed."""


def store_chunks(
    conn: sa.Connection, chunks: Iterable[list[Prepared]], run: Run, report: ImportReport
) -> str | None:
    """Store each chunk in its own transaction; the reason the import stopped, or None if it went through."""
    todo = iter(chunks)
    for chunk in todo:
        run.stored_now.clear()
        try:
            _store_with_retries(conn, chunk, run, report)
        except StopImport as exc:
            reason = str(exc)
            _not_stored(chunk, run, report, reason)
            for rest in todo:
                _not_stored(rest, run, report, reason)
            return reason
    return None


def _not_stored(rest: list[Prepared], run: Run, report: ImportReport, reason: str) -> None:
    skipped = {(p.location.file, p.location.line) for p in report.problems}
    for p in rest:
        if id(p) in run.stored_now or (p.location.file, p.location.line) in skipped:
            continue
        report.problems.append(
            FieldProblem(
                p.location,
                "",
                f"not stored: the import stopped ({reason}); re-run the same import to resume "
                "(what is stored already is kept and counted as unchanged)",
            )
        )
        run.stored_now.add(id(p))
    run.stored_now.clear()


def _store_with_retries(conn: sa.Connection, chunk: list[Prepared], run: Run, report: ImportReport) -> None:
    cause: BaseException | None = None
    for _ in range(_RETRIES):
        outcome = _Outcome()
        try:
            with conn.begin():
                _store_chunk(conn, chunk, run, outcome)
                _verify_unchanged(conn, outcome)
        except Exception as exc:  # noqa: BLE001 - sorted below: a race, one bad fact, or the database
            cause = exc
            if not _is_race(exc):
                break
            left = _settle_race(conn, chunk, outcome, run, report)
            if len(left) == len(chunk):
                break  # no key moved: not a race after all
            chunk = left
            if not chunk:
                return
            continue
        _merge(report, outcome, run)
        return
    _store_one_by_one(conn, chunk, run, report, cause)


def _merge(report: ImportReport, outcome: _Outcome, run: Run) -> None:
    report.added += outcome.added
    report.unchanged += outcome.unchanged
    report.corrected += outcome.corrected
    run.stored_now.update(outcome.done)
    if run.keep_stored:
        report.stored.extend(outcome.stored)
        if run.keep_limit is not None and len(report.stored) > run.keep_limit:
            report.stored.clear()  # a big import holds none of what it stored: the caller reads the store
            report.stored_complete = False
            run.keep_stored = False
    report.altered.extend(outcome.altered)


def _driver_error(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc  # type: ignore[return-value]


def _is_race(exc: BaseException) -> bool:
    """Another import wrote the same keys (unique violation, PostgreSQL serialization/deadlock, SQLite busy)."""
    if isinstance(exc, _Moved):
        return True
    inner = _driver_error(exc)
    if isinstance(exc, sa.exc.IntegrityError) or type(inner).__name__ in {"IntegrityError", "UniqueViolation"}:
        return True
    if getattr(inner, "pgcode", None) in _RACE_CODES:
        return True
    return "database is locked" in str(inner)


def _current(conn: sa.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
    by_type: dict[str, list[str]] = defaultdict(list)
    for type_name, key in keys:
        by_type[type_name].append(key)
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for type_name, names in by_type.items():
        for key, value in current_versions(conn, type_name, names).items():
            out[(type_name, key)] = value
    return out


def _settle_race(
    conn: sa.Connection, chunk: list[Prepared], outcome: _Outcome, run: Run, report: ImportReport
) -> list[Prepared]:
    """After a race: keys another import wrote meanwhile are unchanged (same content) or conflicts; the rest retry."""
    run.present.update(p.type for p in chunk)
    idents = [(p.type, p.key) for p in chunk]
    try:
        with conn.begin():
            now = _current(conn, idents)
    except Exception as exc:  # noqa: BLE001 - the database itself: stop, the run says why
        raise StopImport(_describe(exc)) from exc
    retry: list[Prepared] = []
    for p, ident in zip(chunk, idents, strict=True):
        seen = outcome.read.get(ident, "unread")
        if seen == "unread" or now.get(ident) == seen:
            retry.append(p)  # not concerned: its key did not move
            continue
        current = now.get(ident)
        if current is not None and current[0] == p.hash:
            report.unchanged += 1  # the other import stored exactly this: already there
            continue
        version = current[1] if current else 0
        what = "id" if "id" in MODELS[p.type].model_fields else "key"
        report.problems.append(
            FieldProblem(
                p.location,
                f"{ident[0]}.{what}",
                f'"{p.key}" was changed by another import while this one ran (now version {version}); '
                "this line was not applied, nothing is lost: re-run the import to apply it as a correction",
            )
        )
        report.conflicts += 1
    if len(retry) == len(chunk):
        log.info("import %s: a chunk raced with another import; no key moved, retrying", run.id)
    return retry


def _store_one_by_one(
    conn: sa.Connection, chunk: list[Prepared], run: Run, report: ImportReport, cause: BaseException | None
) -> None:
    """The chunk failed: store it in halves, recursively, so that one bad fact rejects only itself.

    Halving finds a bad fact in ~2·log2(CHUNK) transactions (one by one would take CHUNK).
    """
    why = _describe(cause) if cause is not None else "it kept racing with another import"
    log.warning("import %s: a chunk of %d facts failed (%s); storing it in parts", run.id, len(chunk), why)
    failures: list[tuple[Prepared, str]] = []  # in a row: told only once a later fact goes through
    _halves(conn, chunk, run, report, failures)
    _tell(report, failures)


def _halves(
    conn: sa.Connection, part: list[Prepared], run: Run, report: ImportReport, failures: list[tuple[Prepared, str]]
) -> None:
    outcome = _Outcome()
    try:
        with conn.begin():
            _store_chunk(conn, part, run, outcome)
            _verify_unchanged(conn, outcome)
    except Exception as exc:  # noqa: BLE001 - a race, one bad fact, or the database: sorted below
        if _is_race(exc):
            left = _settle_race(conn, part, outcome, run, report)
            if len(left) < len(part):  # keys moved: those are told; the rest tries again
                if left:
                    _halves(conn, left, run, report, failures)
                return
        if len(part) > 1:
            middle = len(part) // 2
            _halves(conn, part[:middle], run, report, failures)
            _halves(conn, part[middle:], run, report, failures)
            return
        detail = _describe(exc)
        log.warning("import %s: %s could not be stored: %s", run.id, part[0].location, detail)
        failures.append((part[0], detail))
        if len(failures) >= _FAILURES_IN_A_ROW or _connection_lost(exc):
            raise StopImport(detail) from exc
        return
    _merge(report, outcome, run)
    _tell(report, failures)
    failures.clear()


def _tell(report: ImportReport, failures: list[tuple[Prepared, str]]) -> None:
    for p, detail in failures:
        report.problems.append(
            FieldProblem(p.location, p.type, f"could not be stored ({detail}); this line was not imported")
        )


def _connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def _describe(exc: BaseException) -> str:
    inner = _driver_error(exc)
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    return f"{type(inner).__name__}: {text[:300]}" if text else type(inner).__name__


def _verify_unchanged(conn: sa.Connection, outcome: _Outcome) -> None:
    """The optimistic check for facts judged unchanged: their version must still be current at commit."""
    if not outcome.unchanged_at:
        return
    now = _current(conn, list(outcome.unchanged_at))
    for ident, version in outcome.unchanged_at.items():
        if now.get(ident, (None, None))[1] != version:
            raise _Moved(ident)


def _store_chunk(conn: sa.Connection, chunk: list[Prepared], run: Run, outcome: _Outcome) -> None:
    by_type: dict[str, list[Prepared]] = defaultdict(list)
    for p in chunk:
        by_type[p.type].append(p)
    for type_name in TYPE_ORDER:
        group = by_type.get(type_name)
        if group:
            _store_group(conn, type_name, group, run, outcome)


def _store_group(conn: sa.Connection, type_name: str, group: list[Prepared], run: Run, outcome: _Outcome) -> None:
    from facts.store import Stored

    if type_name in run.present:
        existing = current_versions(conn, type_name, [p.key for p in group])
        altered = _altered(conn, type_name, [p.key for p in group if existing.get(p.key, ("", 0))[0] == p.hash])
    else:
        existing = {}  # nothing of this type was stored before this import, and keys are unique within it
        altered = set()
    new_versions: list[tuple[Prepared, int]] = []
    superseded: list[str] = []
    for p in group:
        old = existing.get(p.key)
        outcome.read[(type_name, p.key)] = old
        if old is None:
            new_versions.append((p, 1))
        elif old[1] < 0:  # retracted: a new version after the tombstone
            new_versions.append((p, -old[1] + 1))
        elif old[0] == p.hash and p.key in altered:  # the stored text was edited behind the store's back
            outcome.altered.append(f"{type_name} {p.key} v{old[1]}")
            new_versions.append((p, old[1] + 1))
            superseded.append(p.key)
        elif old[0] == p.hash:
            outcome.unchanged += 1
            outcome.unchanged_at[(type_name, p.key)] = old[1]
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
        before = conn.execute(_MAX_SEQ).scalar() or 0
    versions = [(type_name, p.key, v, p.hash, p.content, True, run.now, run.id) for p, v in new_versions]
    insert_rows(conn, _FV, _FV_COLUMNS, versions)
    seqs = _new_seqs(conn, type_name, run.id, before) if type_name == "meeting" else {}
    projected: dict[str, list[Row]] = defaultdict(list)
    for p, version in new_versions:
        if type_name == "meeting":
            seq = seqs.get(p.key, 0)
            for name, row in p.rows:
                projected[name].append((row[0], seq, *row[2:]) if name == _MEETING else row)
        else:
            for name, row in p.rows:
                projected[name].append(row)
        status: Any = "added" if version == 1 else "corrected"
        if version == 1:
            outcome.added += 1
        else:
            outcome.corrected += 1
        outcome.done.append(id(p))
        if run.keep_stored:
            outcome.stored.append(Stored(p.location, type_name, p.key, status, version, p.content))
    for name, rows in projected.items():
        table = _TABLES[name]
        insert_rows(conn, table, COLUMNS[table], rows)


def _new_seqs(conn: sa.Connection, type_name: str, run_id: int, before: int) -> dict[str, int]:
    """The order received (fact_version.seq) of the versions of ``type_name`` this import wrote after seq ``before``.

    New seqs are above every seq handed out before, concurrent imports' included, and
    earlier chunks of this import are at or below ``before``: a range scan of the primary key.
    """
    rows = conn.execute(_NEW_SEQS, {"before": before, "run": run_id, "type": type_name})
    return {k: int(v) for k, v in rows}


def current_versions(conn: sa.Connection, type_name: str, keys: list[str]) -> dict[str, tuple[str, int]]:
    """(hash, version) of the current version of each key; a retracted key (no current version) as ("", -last).

    Every version of the keys in one statement (a key has few): the current one's, else the last number
    (it was two statements, the second for every new key, which has none)."""
    out: dict[str, tuple[str, int]] = {}
    last: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        rows = conn.execute(_VERSIONS, {"type": type_name, "keys": keys[start : start + 500]})
        for key, digest, version, current in rows:
            if current:
                out[key] = (digest, version)
            elif version > last.get(key, 0):
                last[key] = version
    for key, version in last.items():  # keys with history but no current version were retracted
        if key not in out:
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
        out.update(key for key, digest, text in rows if _hash(text)[: len(digest)] != digest)
    return out


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def types_present(conn: sa.Connection, types: set[str]) -> set[str]:
    """Which of ``types`` already have a version in the store (the others need no look-up of old versions)."""
    return {
        name
        for name in types
        if conn.execute(_ANY_OF_TYPE, {"type": name}).first() is not None
    }


def _delete_projection(conn: sa.Connection, type_name: str, keys: list[str], facts: list[Prepared]) -> None:
    for table, column in OWNED[type_name]:
        conn.execute(sa.delete(table).where(table.c[column].in_(keys)))
    if type_name == "dues":
        for p in facts:
            member, _, month = p.key.partition("|")  # ids cannot hold "|"
            conn.execute(sa.delete(_DUES).where(_DUES.c.member == member, _DUES.c.month == month))
