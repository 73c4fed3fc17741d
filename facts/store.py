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
import pickle
import tempfile
from collections.abc import Callable, Collection, Container, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import IO, Any, Literal, NamedTuple

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import SQLModel

from facts import tables as t
from facts.bulk import drop_for_bulk, restore_indexes
from facts.chunks import CHUNK, Run, store_chunks, types_present
from facts.errors import FieldProblem, Location
from facts.models import MODELS, TYPE_ORDER, FactBase, canonical
from facts.prepare import REGISTRY, ChunkKeys, Prepared, ReadyChunk, unpickle_records
from facts.projection import OWNED, bulk_cache
from facts.streaming import LineChunk, prepared
from facts.validate import canonical_bytes, suggest, validate_object

log = logging.getLogger(__name__)
Status = Literal["added", "unchanged", "corrected"]
Item = tuple[Location, dict[str, Any]] | FieldProblem
# problems reject their objects; the batch may be read more than once (the registry's is read back from disk each time)
Admit = Callable[[Collection[tuple[Location, dict[str, Any]]]], list[FieldProblem]]

_FV = t.FactVersion.__table__  # type: ignore[attr-defined]
_RUNS = t.ImportRun.__table__  # type: ignore[attr-defined]
_DUES = t.DuesRow.__table__  # type: ignore[attr-defined]
_FEW_REFERENCES = 1000  # imports up to this many objects look their references up one by one
_ANALYZE_AFTER = 10_000  # PostgreSQL: refresh planner statistics after an import this big
_GC_THRESHOLD = 100_000  # allocations between young-generation collections during an import
_BULK_TUNING_FROM = 1000  # valid objects from which an import tunes SQLite for bulk (bulk_cache) and asks
# which types are new (types_present): a submission of a few facts gains nothing from a 128 MB page cache
# and paid 6 PRAGMA statements for it
_SPOOL_BYTES = 1 << 20  # the import's spill files stay in memory up to this size each (then go to disk)


def content_json(fact: FactBase) -> str:
    """The canonical JSON text of a fact: sorted keys, no spaces, non-ASCII as is (what is stored and hashed)."""
    return canonical_bytes(canonical(fact)).decode("utf-8")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Stored:
    """What happened to one imported object."""

    location: Location
    type: str
    key: str
    status: Status
    version: int
    content: str  # canonical JSON text

    @cached_property
    def fact(self) -> FactBase:
        """The stored fact as a model (read back from its canonical text)."""
        fact = validate_object(orjson.loads(self.content), self.location)
        if isinstance(fact, list):  # cannot be: the text was made from a valid fact
            raise ValueError(f"{self.location}: the stored text no longer validates: {fact[0]}")
        return fact


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    corrected: int = 0
    problems: list[FieldProblem] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)  # added and corrected facts, in order
    stored_complete: bool = True  # False: more were stored than the import was asked to keep (see keep_stored)
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


class _Registered(NamedTuple):
    """What the whole-import checks need of a registry object (org, member and their changes)."""

    at: int  # position among the import's valid objects
    location: Location
    type: str
    key: str
    refs: list[tuple[str, str, str]]
    edge: tuple[str, str | None] | None
    content: str  # its canonical text, kept only when an ``admit`` must see it


class _Column:
    """A growing column of unsigned 64-bit integers: 8 bytes a value, in fixed blocks (never copied to grow)."""

    BLOCK = 1 << 16

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self.size = 0

    def extend(self, values: list[int] | np.ndarray) -> None:
        data = np.array(values, dtype=np.uint64)
        done = 0
        while done < len(data):
            at = self.size % self.BLOCK
            if at == 0:
                self.blocks.append(np.empty(self.BLOCK, dtype=np.uint64))
            n = min(self.BLOCK - at, len(data) - done)
            self.blocks[-1][at : at + n] = data[done : done + n]
            done += n
            self.size += n

    def __getitem__(self, index: int) -> int:
        return int(self.blocks[index // self.BLOCK][index % self.BLOCK])

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self.blocks)

    def parts(self) -> Iterator[np.ndarray]:
        """The values, a block at a time (views, not copies)."""
        for number, block in enumerate(self.blocks):
            yield block[: max(0, min(self.BLOCK, self.size - number * self.BLOCK))]

    def values(self) -> np.ndarray:
        """Every value in one array (a copy: 8 bytes a value while it is held)."""
        return np.concatenate(list(self.parts())) if self.blocks else np.empty(0, dtype=np.uint64)


class _DiskColumn:
    """Unsigned 64-bit integers appended to a temporary file, read back one by one (rarely: to name a place)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.size = 0

    def extend(self, values: list[int] | np.ndarray) -> None:
        self.file.seek(0, 2)
        self.file.write(np.array(values, dtype="<u8").tobytes())
        self.size += len(values)

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(index)
        self.file.seek(index * 8)
        return int.from_bytes(self.file.read(8), "little")

    def __len__(self) -> int:
        return self.size


class _RegistryBodies(Collection[tuple[Location, dict[str, Any]]]):
    """The registry objects ``admit`` sees, decoded from the spill each time it is read (never all held at once)."""

    def __init__(self, scan: _Scan, skip: Container[int]) -> None:
        self.scan = scan
        self.skip = skip
        self.size = sum(1 for _ in scan.registry(skip))

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[Location, dict[str, Any]]]:
        return ((r.location, orjson.loads(r.content)) for r in self.scan.registry(self.skip))

    def __contains__(self, item: object) -> bool:
        return any(item == x for x in self)


_LINE_BITS = 40  # a place is (file number << 40) | line number


class _Scan:
    """Pass 1's state for the whole import, 16 bytes a valid object in memory: its key digest and content digest.

    Its place (file and line) is on disk, read back only to name the first of a
    repeated key; the registry objects (orgs, members and their changes: what the
    whole-import checks look at again) are spilled too and read back for each check.
    So an import of N facts holds ~16·N bytes and its labels, not an object per fact.
    """

    def __init__(self, registry: IO[bytes], places: IO[bytes]) -> None:
        self.idents = _Column()  # 64-bit digest of (type, key): duplicates are found on these
        self.hashes = _Column()  # the first 64 bits of the content hash
        self.places = _DiskColumn(places)  # (file number << _LINE_BITS) | line
        self.labels: list[str] = []
        self._label_at: dict[str, int] = {}
        self.types: set[str] = set()
        self.asked: dict[str, set[str]] = {"org": set(), "member": set()}
        self.registered = 0  # registry objects spilled
        self._registry = registry  # a temporary file

    def __len__(self) -> int:
        return len(self.idents)

    @property
    def nbytes(self) -> int:
        """What the per-object state holds in memory (places and the registry are on disk)."""
        return self.idents.nbytes + self.hashes.nbytes

    def add_chunk(self, chunk: ReadyChunk, keep_content: bool) -> int:
        """Remember the records of ``chunk`` (a prepared chunk's, in input order); the position of the first.

        Only its keys are read; its records are unpickled only while the references of the
        import's first :data:`_FEW_REFERENCES` objects are noted (a submission's).
        """
        keys: ChunkKeys = chunk.keys
        start = len(self)
        label_at = np.array([self._label(label) for label in keys.labels], dtype=np.uint64)
        places = (label_at[keys.files] << np.uint64(_LINE_BITS)) | keys.lines if len(keys) else keys.lines
        self.types.update(keys.types)
        if keys.registry:
            registered = [
                (start + offset, int(places[offset]), type_name, key, refs, edge, content if keep_content else "")
                for offset, type_name, key, refs, edge, content in keys.registry
            ]
            self._registry.seek(0, 2)
            pickle.dump(registered, self._registry, protocol=pickle.HIGHEST_PROTOCOL)
            self.registered += len(registered)
        if start < _FEW_REFERENCES:
            for r in unpickle_records(chunk.records)[: _FEW_REFERENCES - start]:
                orgs, members = r.wants
                self.asked["org"].update(orgs)
                self.asked["member"].update(members)
        self.idents.extend(keys.idents)
        self.hashes.extend(keys.hashes)
        self.places.extend(places)
        return start

    def _label(self, label: str) -> int:
        at = self._label_at.get(label)
        if at is None:
            at = self._label_at[label] = len(self.labels)
            self.labels.append(label)
        return at

    def registry(self, *skip: Container[int]) -> Iterator[_Registered]:
        """The registry objects in input order (read back from the spill), but those whose position is in ``skip``."""
        if not self.registered:
            return
        self._registry.seek(0)
        while True:
            try:
                batch = pickle.load(self._registry)
            except EOFError:
                return
            for at, place, type_name, key, refs, edge, content in batch:
                if not any(at in s for s in skip):
                    yield _Registered(at, self._location(place), type_name, key, refs, edge, content)

    def location(self, index: int) -> Location:
        return self._location(self.places[index])

    def _location(self, place: int) -> Location:
        return Location(self.labels[place >> _LINE_BITS], place & ((1 << _LINE_BITS) - 1))

    def duplicates(self) -> dict[int, tuple[int, bool]]:
        """Each repeated object's index → (index of the first with its key, whether its content is the same).

        Holds 9 bytes an object while it runs (a sorted copy of the key digests, and its neighbours compared).
        """
        if len(self) < 2:
            return {}
        ranked = self.idents.values()
        ranked.sort()
        same = ranked[1:] == ranked[:-1]
        if not same.any():
            return {}
        repeated = np.unique(ranked[1:][same])
        del ranked, same
        out: dict[int, tuple[int, bool]] = {}
        first: dict[int, int] = {}
        offset = 0
        for part in self.idents.parts():
            at = np.minimum(np.searchsorted(repeated, part), len(repeated) - 1)
            for pos in np.flatnonzero(repeated[at] == part).tolist():
                index = offset + pos
                kept = first.setdefault(int(part[pos]), index)
                if kept != index:
                    out[index] = (kept, self.hashes[index] == self.hashes[kept])
            offset += len(part)
        return out


class _Known:
    """The org and member ids references may name: stored, or valid in this import."""

    def __init__(self, store: FactStore, ids: dict[str, set[str]]) -> None:
        self.store = store
        self.ids = ids
        self._everyone: dict[str, list[str]] = {}

    def problems(self, location: Location, type_name: str, refs: list[tuple[str, str, str]]) -> list[FieldProblem]:
        return [
            FieldProblem(location, f"{type_name}.{path}", f'unknown {target} "{ref}"{self._suggestion(ref, target)}')
            for path, target, ref in refs
            if ref not in self.ids[target]
        ]

    def _suggestion(self, ref: str, target: str) -> str:
        if target not in self._everyone:  # only when something is unknown: then the whole list helps
            self._everyone[target] = sorted(self.store._registry_ids(target) | self.ids[target])
        return suggest(ref, self._everyone[target])


@dataclass
class _Decisions:
    """What the whole-import checks refused, told in the order of the checks (as the report lists them)."""

    duplicates: dict[int, tuple[int, bool]] = field(default_factory=dict)
    rejected: set[int] = field(default_factory=set)  # registry objects refused (by admit, a cycle, a reference)
    repeated: list[tuple[int, FieldProblem]] = field(default_factory=list)
    admit: list[FieldProblem] = field(default_factory=list)
    cycles: list[FieldProblem] = field(default_factory=list)
    references: list[FieldProblem] = field(default_factory=list)
    late_references: list[FieldProblem] = field(default_factory=list)
    unchanged: int = 0

    def duplicate(self, index: int, location: Location, type_name: str, key: str, dup: tuple[int, bool], scan: _Scan) -> None:
        first, same = dup
        if same:
            self.unchanged += 1  # the same object twice: harmless
            return
        what = "id" if "id" in MODELS[type_name].model_fields else "key"
        self.repeated.append(
            (
                index,
                FieldProblem(
                    location,
                    f"{type_name}.{what}",
                    f'"{key}" appears twice in this import with different content '
                    f"(first at {scan.location(first)}); this line was not imported",
                ),
            )
        )

    def problems(self, validation: list[FieldProblem], stored: list[FieldProblem]) -> list[FieldProblem]:
        repeated = [p for _, p in sorted(self.repeated, key=lambda x: x[0])]
        return [*validation, *repeated, *self.admit, *self.cycles, *self.references, *self.late_references, *stored]


def _without(scan: _Scan, refused: list[FieldProblem], later: _Decisions) -> None:
    """Reject the registry objects ``admit`` refused (its problems are told)."""
    if not refused:
        return
    later.admit.extend(refused)
    bad = {(p.location.file, p.location.line) for p in refused}
    for r in scan.registry(later.duplicates, later.rejected):
        if (r.location.file, r.location.line) in bad:
            later.rejected.add(r.at)


class FactStore:
    """Facts in a database: ``FactStore(make_engine(url))``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- schema -----------------------------------------------------------------
    def create_schema(self) -> None:
        """Create the facts tables (safe to repeat)."""
        tables = [m.__table__ for m in _fact_tables()]  # type: ignore[attr-defined]
        SQLModel.metadata.create_all(self.engine, tables=tables)
        self.restore_indexes()

    def restore_indexes(self) -> list[str]:
        """Build the facts tables' indexes that are missing (a bulk import that died leaves some out); their names."""
        with self.engine.connect() as conn:
            return restore_indexes(conn, _index_tables())

    # -- import -----------------------------------------------------------------
    def import_items(
        self,
        items: Iterable[Item | LineChunk],
        files: str = "",
        now: datetime | None = None,
        admit: Admit | None = None,
        keep_stored: bool | int = True,
        processes: int | None = None,
    ) -> ImportReport:
        """Validate, resolve references and store every valid object of ``items``.

        ``items`` are decoded objects or problems (:func:`facts.readers.read_file`), or chunks of
        raw JSON Lines (:func:`facts.streaming.read_chunks`), which are prepared in ``processes``
        worker processes (default: one a core).  ``admit`` (the service's authorization) sees the
        valid objects, as their canonical JSON bodies, before their references are resolved; the
        objects it names problems for are rejected.  ``keep_stored=False`` leaves
        ``report.stored`` empty (a big import need not hold what it stored); a number N keeps them
        up to N, and past N none (``report.stored_complete`` is then False).
        """
        with (
            _rare_collections(),
            # in memory until big (a submission's few KB never make a file: 3 files cost ~0.5 ms)
            tempfile.SpooledTemporaryFile(_SPOOL_BYTES, prefix="partyrules-import-") as spill,
            tempfile.SpooledTemporaryFile(_SPOOL_BYTES, prefix="partyrules-registry-") as registry,
            tempfile.SpooledTemporaryFile(_SPOOL_BYTES, prefix="partyrules-places-") as places,
        ):
            scan = _Scan(registry, places)
            return self._import(items, files, now or datetime.now(UTC), admit, keep_stored, processes, spill, scan)

    def _import(
        self,
        items: Iterable[Item | LineChunk],
        files: str,
        now: datetime,
        admit: Admit | None,
        keep_stored: bool | int,
        processes: int | None,
        spill: IO[bytes],
        scan: _Scan,
    ) -> ImportReport:
        """Two passes: prepare every object (spilled to ``spill``, keeping only keys and the registry's
        references), decide what whole-import checks refuse, then store chunk by chunk from the spill."""
        report = ImportReport()
        self._scan(items, report, spill, admit is not None, processes, scan)
        validation = list(report.problems)
        later = _Decisions()
        self._registry_duplicates(scan, later)
        if admit is not None:
            bodies = _RegistryBodies(scan, later.duplicates)
            if bodies:
                _without(scan, admit(bodies), later)
        self._refuse_cycles(scan, later)
        known = self._resolve_registry(scan, later)
        resumed = _last_failed_run(self.engine, files)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                _RUN_STARTED, {"started_at": now, "files": files[:2000], "status": "running"}
            ).inserted_primary_key
            run_id = int(inserted[0]) if inserted else 0
        report.import_id = run_id
        report.resumes = resumed
        report.problems = []
        failed: str | None = None
        try:
            small = len(scan) < _BULK_TUNING_FROM
            with self.engine.connect() as conn, (_untuned if small else bulk_cache)(conn):  # its page cache stays warm
                restore_indexes(conn, _index_tables())  # an earlier import that died may have left some out
                if small:  # each key is looked up: asking first whether its type has any version costs as much
                    present = set(scan.types)
                else:
                    with conn.begin():
                        present = types_present(conn, scan.types)
                limit = None if isinstance(keep_stored, bool) else keep_stored
                run = Run(run_id, now, present, keep_stored is not False, keep_limit=limit)
                spill.seek(0)
                dropped = drop_for_bulk(conn, _written_tables(scan.types), len(scan))
                try:
                    failed = store_chunks(conn, self._survivors(spill, scan, known, admit, later), run, report)
                finally:
                    if dropped:
                        if conn.in_transaction():
                            conn.rollback()
                        restore_indexes(conn, dropped)
                if (
                    not failed
                    and conn.dialect.name == "postgresql"
                    and report.added + report.corrected >= _ANALYZE_AFTER
                ):
                    _analyze(conn)  # fresh statistics: without them the planner scans a type's rows per look-up
        except Exception as exc:  # noqa: BLE001 - the run is finished as failed, saying why, then the error goes on
            report.problems = later.problems(validation, report.problems)
            report.unchanged += later.unchanged
            self._finish(run_id, report, f"{type(exc).__name__}: {exc}"[:2000])
            raise
        report.problems = later.problems(validation, report.problems)
        report.unchanged += later.unchanged
        report.failed = failed
        self._finish(run_id, report, failed)
        return report

    def _finish(self, run_id: int, report: ImportReport, failed: str | None) -> None:
        """Close the import run: ``ok``, or ``failed`` with the reason (a re-run of the same files resumes)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    _RUN_FINISHED,
                    {
                        "run_id": run_id,
                        "finished_at": datetime.now(UTC),
                        "added": report.added,
                        "unchanged": report.unchanged,
                        "corrected": report.corrected,
                        "rejected": report.rejected,
                        "status": "failed" if failed else "ok",
                        "error": failed,
                    },
                )
        except Exception:  # the database is gone: the run stays "running"; the next import of the same files resumes
            log.exception("import run %s could not be closed", run_id)

    def _scan(
        self, items: Iterable[Item | LineChunk], report: ImportReport, spill: IO[bytes], keep_content: bool,
        processes: int | None, scan: _Scan,
    ) -> None:
        """Pass 1: prepare every object; spill the prepared chunks; keep keys, and spill the registry's references."""
        for chunk in prepared(items, processes):
            report.problems.extend(chunk.problems)
            if not len(chunk.keys):
                continue
            start = scan.add_chunk(chunk, keep_content)
            pickle.dump((start, chunk.records), spill, protocol=pickle.HIGHEST_PROTOCOL)

    def _registry_duplicates(self, scan: _Scan, later: _Decisions) -> None:
        """Find every repeated key of the import (the first occurrence is kept); the registry's are told now."""
        later.duplicates = scan.duplicates()
        if not later.duplicates:
            return
        for r in scan.registry():
            dup = later.duplicates.get(r.at)
            if dup is not None:
                later.duplicate(r.at, r.location, r.type, r.key, dup, scan)

    def _refuse_cycles(self, scan: _Scan, later: _Decisions) -> None:
        """Reject each org (or org_change) whose parent chain leads back to the org: the line that closes the cycle.

        Orgs are taken in the order of the input over the stored tree (a stored org's new
        version, or an org_change's new parent, replaces its parent edge); the first line
        whose parent would close a loop is refused and the loop is named, so ``report --org``
        and the rules never walk in circles.
        """
        edges = [
            r._replace(refs=[], content="")
            for r in scan.registry(later.duplicates, later.rejected)
            if r.edge is not None
        ]
        if not any(r.edge[1] for r in edges):  # type: ignore[index]
            return
        org_table = t.OrgRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            parent: dict[str, str | None] = dict(conn.execute(sa.select(org_table.c.id, org_table.c.parent)).all())
        for r in edges:  # a new org version is not in the tree until its line is reached
            if r.type == "org":
                parent.pop(r.edge[0], None)  # type: ignore[index]
        refused: set[int] = set()
        for r in edges:
            org, new_parent = r.edge  # type: ignore[misc]
            chain = [org]
            ref = new_parent
            seen: set[str] = set()
            while ref is not None and ref not in seen and ref != org:
                seen.add(ref)
                chain.append(ref)
                ref = parent.get(ref)
            if ref == org:
                refused.add(r.at)
                loop = " → ".join([*chain, org])
                later.cycles.append(
                    FieldProblem(r.location, f"{r.type}.parent", f'"{new_parent}" would close a cycle of parents: {loop}')
                )
            else:
                parent[org] = new_parent
        later.rejected.update(refused)

    def _registry_ids(self, target: str) -> set[str]:
        """Every stored org or member id."""
        column = (t.OrgRow if target == "org" else t.MemberRow).__table__.c.id  # type: ignore[union-attr]
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(column)).scalars())

    def _registry_ids_among(self, asked: dict[str, set[str]]) -> dict[str, set[str]]:
        """Of the org and member ids ``asked`` (a few: a small import's references), those stored."""
        wanted = {target: sorted(ids) for target, ids in asked.items()}
        found: dict[str, set[str]] = {target: set() for target in asked}
        longest = max((len(ids) for ids in wanted.values()), default=0)
        if not longest:
            return found
        with self.engine.connect() as conn:
            for start in range(0, longest, 500):
                params = {f"{target}s": wanted.get(target, [])[start : start + 500] for target in ("org", "member")}
                for target, key in conn.execute(_IDS_AMONG, params):
                    found.setdefault(target, set()).add(key)
        return found

    def _resolve_registry(self, scan: _Scan, later: _Decisions) -> _Known:
        """Resolve the references of the registry objects (orgs, members and their changes) to a fixed point.

        Only registry objects can be referred to, so the ids known once they are settled
        are final: every other object is checked against them as it is stored.  Each
        round reads the spilled registry again; the objects refused are in ``later.rejected``.
        """
        few = len(scan) <= _FEW_REFERENCES  # a submission: look up its references, not the registry
        if few:  # a submission: its references looked up, the orgs and members in one statement
            known = _Known(self, self._registry_ids_among(scan.asked))
        else:
            known = _Known(self, {target: self._registry_ids(target) for target in scan.asked})
        for r in scan.registry(later.duplicates, later.rejected):
            if r.type in known.ids:
                known.ids[r.type].add(r.key)
        while True:
            bad: list[tuple[int, str, str, list[FieldProblem]]] = []
            for r in scan.registry(later.duplicates, later.rejected):
                problems = known.problems(r.location, r.type, r.refs)
                if problems:
                    bad.append((r.at, r.type, r.key, problems))
            if not bad:
                break
            for at, type_name, key, problems in bad:
                later.references.extend(problems)
                later.rejected.add(at)
                if type_name in known.ids:
                    known.ids[type_name].discard(key)
        return known

    def _survivors(
        self, spill: IO[bytes], scan: _Scan, known: _Known, admit: Admit | None, later: _Decisions
    ) -> Iterator[list[Prepared]]:
        """Pass 2: the prepared objects in chunks of :data:`CHUNK`, without those refused."""
        out: list[Prepared] = []
        orgs, members = known.ids["org"], known.ids["member"]
        while True:
            try:
                start, data = pickle.load(spill)
            except EOFError:
                break
            records = unpickle_records(data)
            duplicates, rejected = later.duplicates, later.rejected
            refused_here: set[tuple[str, int]] = set()
            if admit is not None:
                events = [
                    r for index, r in enumerate(records, start) if r.type not in REGISTRY and index not in duplicates
                ]
                if events:
                    refused = admit([(r.location, orjson.loads(r.content)) for r in events])
                    later.admit.extend(refused)
                    refused_here = {(p.location.file, p.location.line) for p in refused}
            for index, r in enumerate(records, start):
                if r.type in REGISTRY:
                    if index in duplicates or index in rejected:
                        continue
                elif index in duplicates:
                    later.duplicate(index, r.location, r.type, r.key, duplicates[index], scan)
                    continue
                elif refused_here and (r.file, r.line) in refused_here:
                    continue
                elif not (orgs.issuperset(r.wants[0]) and members.issuperset(r.wants[1])):
                    later.late_references.extend(known.problems(r.location, r.type, r.full_refs))
                    continue
                out.append(r)
            while len(out) >= CHUNK:
                yield out[:CHUNK]
                out = out[CHUNK:]
        if out:
            yield out

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


def _index_tables() -> list[sa.Table]:
    """The tables a bulk import may take indexes from (see :mod:`facts.bulk`)."""
    return [_FV, *(table for tables in OWNED.values() for table, _ in tables), _DUES]


def _written_tables(types: set[str]) -> list[sa.Table]:
    """The tables an import of ``types`` writes rows into."""
    out = [_FV]
    for name in TYPE_ORDER:
        if name in types:
            out.extend(table for table, _ in OWNED[name])
            if name == "dues":
                out.append(_DUES)
    return out


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


# prebuilt (SQLAlchemy compiles each once; a statement built anew is coerced, keyed and looked up each time)
_LAST_RUN = (
    sa.select(_RUNS.c.id, _RUNS.c.status, _RUNS.c.error)
    .where(_RUNS.c.files == sa.bindparam("files"))
    .order_by(_RUNS.c.id.desc())
    .limit(1)
)


_RUN_STARTED = sa.insert(_RUNS)  # the columns given at execution
_RUN_FINISHED = sa.update(_RUNS).where(_RUNS.c.id == sa.bindparam("run_id"))  # the columns given at execution


def _ids_among() -> sa.CompoundSelect:
    """("org", id) and ("member", id) of the stored orgs among ``orgs`` and members among ``members``."""
    orgs = t.OrgRow.__table__.c.id  # type: ignore[attr-defined]
    members = t.MemberRow.__table__.c.id  # type: ignore[attr-defined]
    return sa.union_all(
        sa.select(sa.literal_column("'org'"), orgs).where(orgs.in_(sa.bindparam("orgs", expanding=True))),
        sa.select(sa.literal_column("'member'"), members).where(members.in_(sa.bindparam("members", expanding=True))),
    )


_IDS_AMONG = _ids_among()


def _untuned(_conn: sa.Connection) -> AbstractContextManager[None]:
    """What a small import does instead of :func:`facts.projection.bulk_cache`: nothing."""
    return nullcontext()


def _last_failed_run(engine: Engine, files: str) -> tuple[int, str] | None:
    """The latest import run of the same files, if it did not finish (failed, or its process died)."""
    with engine.connect() as conn:
        row = conn.execute(_LAST_RUN, {"files": files[:2000]}).first()
    if row is None or row[1] != "failed":
        return None
    return int(row[0]), row[2] or "failed"
