"""Appending to the audit log.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's own
canonical text (seq, time, actor, request id, action, target, detail).  Appending
first updates the single ``audit_head`` row (``UPDATE … RETURNING``): on SQLite that
takes the write lock before anything is read, on PostgreSQL it locks the row, so
two writers never chain onto the same predecessor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from engine.audit.tables import AuditEntry, AuditHead
from facts import tables as ft

GENESIS = "0" * 64
_LOG = AuditEntry.__table__  # type: ignore[attr-defined]
_HEAD = AuditHead.__table__  # type: ignore[attr-defined]
_FV = ft.FactVersion.__table__  # type: ignore[attr-defined]


def canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def entry_hash(
    prev_hash: str, seq: int, at: str, actor: str, request_id: str, action: str, target: str, detail: str
) -> str:
    body = canonical([seq, at, actor, request_id, action, target, detail])
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def new_request_id() -> str:
    return uuid.uuid4().hex


def ensure_tables(db: sa.Engine) -> None:
    """Create the audit tables and the head row (recording which facts predate the log); safe to repeat."""
    _LOG.create(db, checkfirst=True)
    _HEAD.create(db, checkfirst=True)
    with db.begin() as conn:
        if conn.execute(sa.select(_HEAD.c.id)).first() is None:
            baseline = conn.execute(sa.select(sa.func.max(_FV.c.seq))).scalar() or 0
            conn.execute(sa.insert(_HEAD).values(id=1, seq=0, last_hash=GENESIS, baseline_fact_seq=baseline))


def append(
    conn: sa.Connection,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Append one entry inside the caller's transaction; returns its sequence number."""
    head = conn.execute(
        sa.update(_HEAD)
        .where(_HEAD.c.id == 1)
        .values(seq=_HEAD.c.seq + 1)
        .returning(_HEAD.c.seq, _HEAD.c.last_hash)
    ).first()
    if head is None:
        raise RuntimeError("audit_head is missing: run `partyrules init`")
    seq, prev = int(head[0]), str(head[1])
    at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="microseconds")
    text = canonical(detail or {})
    rid = request_id or ""
    digest = entry_hash(prev, seq, at, actor, rid, action, target, text)
    conn.execute(
        sa.insert(_LOG).values(
            seq=seq,
            at=at,
            actor=actor,
            request_id=rid,
            action=action,
            target=target,
            detail=text,
            prev_hash=prev,
            hash=digest,
        )
    )
    conn.execute(sa.update(_HEAD).where(_HEAD.c.id == 1).values(last_hash=digest))
    return seq


def record(
    db: sa.Engine,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> int:
    """Append one entry in a transaction of its own."""
    with db.begin() as conn:
        return append(conn, actor, action, target, detail, request_id)


def _fact_line(type_name: str, key: str, version: int, digest: str) -> bytes:
    return f"{type_name}\t{key}\t{version}\t{digest}\n".encode()


def fact_lines(rows: Iterable[tuple[str, str, int, str]]) -> str:
    """The digest of a set of fact versions: SHA-256 over ``type\\tkey\\tversion\\thash`` lines in seq order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(_fact_line(*row))
    return h.hexdigest()


def import_detail(db: sa.Engine, import_id: int, listed: int = 200) -> dict[str, Any]:
    """What an audit entry holds about the fact versions written under ``import_id``.

    The versions are read as a stream and hashed as they come (a bulk import writes
    millions: holding them as a list was the importer's peak memory, ~300 bytes a fact).
    """
    h = hashlib.sha256()
    count = 0
    first: list[tuple[str, str, int, str]] = []
    with db.connect() as conn:
        result = conn.execute(
            sa.select(_FV.c.type, _FV.c.key, _FV.c.version, _FV.c.hash)
            .where(_FV.c.import_id == import_id)
            .order_by(_FV.c.seq)
            .execution_options(yield_per=5000)
        )
        for r in result:
            row = (r[0], r[1], int(r[2]), r[3])
            h.update(_fact_line(*row))
            count += 1
            if count <= listed:
                first.append(row)
    detail: dict[str, Any] = {"import_id": import_id, "count": count, "digest": h.hexdigest()}
    if count <= listed:
        detail["facts"] = [list(r) for r in first]
    return detail


def row_digest(values: dict[str, Any]) -> str:
    """A digest of one row's columns (a workflow event), for ``verify`` to compare against."""
    return hashlib.sha256(canonical({k: _plain(v) for k, v in values.items()}).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
