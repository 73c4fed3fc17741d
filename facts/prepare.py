"""Turning input objects into what the store writes: validated, canonical, hashed, projected.

This is the CPU-heavy half of an import (parsing, pydantic, canonical JSON,
SHA-256, projection rows, MinHash band keys) and it needs no database, so it
runs in worker processes over chunks of raw lines (:mod:`facts.streaming`)
while the importer's one writer stores earlier chunks.  A :class:`Prepared`
record holds only plain values (no model objects), so it pickles cheaply and
can be spilled to a temporary file.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import orjson

from facts import collector
from facts.errors import FieldProblem, Location
from facts.minhash import band_keys
from facts.models import MODELS, Meeting, Org, OrgChange, canonical, natural_key, referenced_ids, references
from facts.projection import MINUTES_SIG, rows_for
from facts.readers import Item, parse_line
from facts.validate import canonical_bytes, surrogate_problem, validate_object

log = logging.getLogger(__name__)

#: fact types other facts refer to (references resolve to org and member ids only)
REGISTRY = frozenset({"org", "member", "org_change", "member_change"})


class Prepared(NamedTuple):
    """One valid input object, ready to store."""

    file: str
    line: int
    type: str
    key: str
    ident: int  # 64-bit digest of (type, key): duplicates within an import are found on these
    hash: str  # content hash (stored in fact_version.hash)
    content: str  # canonical JSON text
    rows: list[tuple[str, tuple[Any, ...]]]  # projection rows (table name, values); a meeting's seq is 0 here
    # a registry object's references: (field path, target type, id) as facts.models.references gives them;
    # an event's are in ``wants`` only (its paths are made again from ``content`` if one is unknown: full_refs)
    refs: list[tuple[str, str, str]]
    edge: tuple[str, str | None] | None  # an org's (id, parent) or an org_change's (org, new parent)
    wants: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # the org ids and member ids it refers to

    @property
    def full_refs(self) -> list[tuple[str, str, str]]:
        """Every reference with its path: ``refs``, or for an event, :func:`facts.models.references` of ``content``."""
        if self.type in REGISTRY:
            return self.refs
        return references(MODELS[self.type].model_validate(orjson.loads(self.content)))

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)


class PreparedChunk(NamedTuple):
    records: list[Prepared]
    problems: list[FieldProblem]  # in input order


class ChunkKeys(NamedTuple):
    """What pass 1 of an import keeps of a chunk's records: digests and places in arrays, the registry's whole."""

    idents: np.ndarray  # uint64, a record: Prepared.ident
    hashes: np.ndarray  # uint64, a record: the first 64 bits of Prepared.hash
    labels: list[str]  # the files the records come from
    files: np.ndarray  # uint64, a record: its file's index in labels
    lines: np.ndarray  # uint64, a record: its line
    types: frozenset[str]
    # the registry records (org, member and their changes): (position in the chunk, type, key, refs, edge, content)
    registry: list[tuple[int, str, str, list[tuple[str, str, str]], tuple[str, str | None] | None, str]]

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.idents)


class ReadyChunk(NamedTuple):
    """A prepared chunk as the importer takes it: its keys, its problems, and its records pickled (spilled as is).

    A worker sends this (pickled once more, which copies the records' bytes); the importer
    never unpickles the records in pass 1, only in pass 2 (:func:`unpickle_records`).
    """

    keys: ChunkKeys
    problems: list[FieldProblem]  # in input order
    records: bytes


def chunk_keys(records: list[Prepared]) -> ChunkKeys:
    labels: dict[str, int] = {}
    files = [labels.setdefault(r.file, len(labels)) for r in records]
    registry = [
        (offset, r.type, r.key, r.refs, r.edge, r.content) for offset, r in enumerate(records) if r.type in REGISTRY
    ]
    return ChunkKeys(
        np.array([r.ident for r in records], dtype=np.uint64),
        np.array([int(r.hash[:16], 16) for r in records], dtype=np.uint64),
        list(labels),
        np.array(files, dtype=np.uint64),
        np.array([r.line for r in records], dtype=np.uint64),
        frozenset(r.type for r in records),
        registry,
    )


def ready(chunk: PreparedChunk) -> ReadyChunk:
    """``chunk`` with its keys taken out and its records pickled (as plain tuples: see :func:`pickle_records`)."""
    return ReadyChunk(chunk_keys(chunk.records), chunk.problems, pickle_records(chunk.records))


def pickle_records(records: list[Prepared]) -> bytes:
    """``records`` pickled as plain tuples: pickle writes a named tuple through a Python call each
    (``__getnewargs__``), a plain tuple in C (half the time a record)."""
    return pickle.dumps([tuple(r) for r in records], protocol=pickle.HIGHEST_PROTOCOL)


def unpickle_records(data: bytes) -> list[Prepared]:
    """The records of :attr:`ReadyChunk.records` (:func:`pickle_records`), unpickled with the cyclic garbage
    collector paused.

    Their objects (tuples, strings, dates) hold no cycles, and unpickling a chunk makes
    ~100,000 of them: a collection set off in the middle rescans everything the
    import holds, which made unpickling ~4× slower.
    """
    return list(map(Prepared._make, _unpickled(data)))


def unpickle_ready(data: bytes) -> ReadyChunk:
    """A :class:`ReadyChunk` a worker pickled (see :func:`unpickle_records` for the collector)."""
    return _unpickled(data)  # type: ignore[no-any-return]


def _unpickled(data: bytes) -> Any:
    with collector.paused():
        return pickle.loads(data)


def unexpected_problem(location: Location, raw: Any, exc: BaseException) -> FieldProblem:
    """The rejection of one input object that made validating or storing it raise: that line only, logged."""
    log.warning("%s: rejected after %s", location, type(exc).__name__, exc_info=exc)
    kind = raw.get("type") if isinstance(raw, dict) else None
    field = kind if isinstance(kind, str) and kind in MODELS else ""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return FieldProblem(location, field, f"cannot be imported ({detail}); this line was not imported")


def ident_of(type_name: str, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{type_name}\0{key}".encode(), digest_size=8).digest(), "little")


def prepare_items(items: Iterable[Item]) -> PreparedChunk:
    """Validate and prepare decoded items (reader problems pass through)."""
    records: list[Prepared] = []
    problems: list[FieldProblem] = []
    meetings: list[tuple[Meeting, list[tuple[str, tuple[Any, ...]]]]] = []
    for item in items:
        if isinstance(item, FieldProblem):
            problems.append(item)
            continue
        location, raw = item
        try:
            fact = validate_object(raw, location)
            if isinstance(fact, list):
                problems.extend(fact)
                continue
            body = canonical(fact)
            try:
                data = canonical_bytes(body)
            except UnicodeEncodeError:  # a "\ud800" escape: valid JSON, but not text a database can hold
                problems.append(surrogate_problem(location, body))
                continue
            type_name: str = fact.type  # type: ignore[attr-defined]
            key = natural_key(fact)
            rows = [(table.name, row) for table, row in rows_for(fact, 0)]
            edge: tuple[str, str | None] | None = None
            if isinstance(fact, Org):
                edge = (fact.id, fact.parent)
            elif isinstance(fact, OrgChange) and fact.parent is not None:
                edge = (fact.org, fact.parent)
            records.append(
                Prepared(
                    location.file, location.line, type_name, key, ident_of(type_name, key),
                    hashlib.sha256(data).hexdigest()[:32], data.decode("utf-8"), rows,
                    references(fact) if type_name in REGISTRY else [], edge, referenced_ids(fact),
                )
            )  # fmt: skip
            if isinstance(fact, Meeting):
                meetings.append((fact, rows))
        except Exception as exc:  # noqa: BLE001 - one line that breaks the validator is that line's problem
            problems.append(unexpected_problem(location, raw, exc))
    if meetings:  # band keys of all the chunk's minutes at once (vectorised)
        with_text = [(m, rows) for m, rows in meetings if m.minutes and m.minutes.content and m.minutes.content.strip()]
        keys = band_keys([m.minutes.content for m, _ in with_text])  # type: ignore[union-attr,misc]
        for (m, rows), bands in zip(with_text, keys, strict=True):
            if bands:
                rows.append((MINUTES_SIG.name, (m.id, *bands)))
    return PreparedChunk(records, problems)


def prepare_lines(label: str, lines: list[tuple[int, str]]) -> PreparedChunk:
    """Parse and prepare raw JSON Lines lines (``(number, text)``, blank and comment lines already left out)."""
    return prepare_items(parse_line(label, number, text) for number, text in lines)
