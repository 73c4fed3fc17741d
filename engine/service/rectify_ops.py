"""Rectification reports (整改报告): what an org did about a violation, with evidence files.

The org's secretary (or an inspector or admin over it) writes what was done and attaches files;
the violation moves to 整改中 (``rectifying``) with the report in its log, and an inspector
resolves it.  Each file is stored with its SHA-256, size-limited, and listed in the audit log
(name, size, digest), so what was submitted can be shown and verified later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa

from engine.app import App
from engine.audit.log import append, row_digest
from engine.auth.principal import Forbidden, NotFound, OrgTree, Principal, allows
from engine.service.rectify_tables import RectificationEvidence
from engine.service.violations_ops import show_violation
from engine.violations import workflow
from engine.violations.store import utcnow
from engine.violations.tables import ViolationEvent
from facts.errors import PartyrulesError

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_FILES = 10
MAX_TEXT = 4000
_EV = RectificationEvidence.__table__  # type: ignore[attr-defined]
_E = ViolationEvent.__table__  # type: ignore[attr-defined]
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


class RectifyError(PartyrulesError):
    """A rectification report that cannot be accepted (the message says why, in Chinese)."""


@dataclass(frozen=True)
class EvidenceFile:
    """A file as uploaded."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class EvidenceInfo:
    id: int
    violation_key: str
    event_id: int | None
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime


@dataclass(frozen=True)
class Reported:
    change: workflow.Change
    evidence: list[EvidenceInfo]
    audit_seq: int


def safe_filename(name: str) -> str:
    """The file's own name (no folders, no control or reserved characters), at most 200 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _UNSAFE.sub("_", base).strip().strip(".") or "file"
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:200]
    return base


def _check_files(files: list[EvidenceFile]) -> None:
    if len(files) > MAX_FILES:
        raise RectifyError(f"佐证材料最多 {MAX_FILES} 个文件，本次上传了 {len(files)} 个")
    for f in files:
        if not f.data:
            raise RectifyError(f"佐证材料“{safe_filename(f.filename)}”是空文件，请重新选择")
        if len(f.data) > MAX_FILE_BYTES:
            raise RectifyError(
                f"佐证材料“{safe_filename(f.filename)}”有 {len(f.data) / 1048576:.1f} MB，"
                f"超过每个文件 {MAX_FILE_BYTES // 1048576} MB 的上限，请压缩或拆分后上传"
            )


def report_rectification(
    app: App,
    principal: Principal,
    key: str,
    text: str,
    files: list[EvidenceFile] | None = None,
    request_id: str | None = None,
) -> Reported:
    """Record the org's rectification report on violation ``key``: the violation goes to 整改中 with the
    report in its log, the files are stored with their SHA-256, and the audit log lists them."""
    files = files or []
    v, _events = show_violation(app, principal, key)  # NotFound outside the read scope
    principal.require("violation.report")
    if not allows(principal, "violation.report", v.org, OrgTree.load(app.db)):
        raise Forbidden(f"{principal.name} 可查看但无权为违规 {key} 提交整改报告")
    text = (text or "").strip()
    if not text:
        raise RectifyError("请填写整改说明：做了哪些整改、结果如何")
    if len(text) > MAX_TEXT:
        raise RectifyError(f"整改说明最多 {MAX_TEXT} 字，现有 {len(text)} 字")
    _check_files(files)
    digests = [hashlib.sha256(f.data).hexdigest() for f in files]
    names = [safe_filename(f.filename) for f in files]
    listed = "；".join(f"{n}（SHA-256 {d}）" for n, d in zip(names, digests, strict=True))
    note = f"整改说明：{text}" + (f"\n佐证材料：{listed}" if listed else "")
    change = workflow.report(app.violations, key, principal.name, note)
    now = utcnow()
    out: list[EvidenceInfo] = []
    with app.db.begin() as conn:
        for f, name, digest in zip(files, names, digests, strict=True):
            row = {
                "violation_key": key,
                "event_id": change.event_id,
                "filename": name,
                "content_type": (f.content_type or "application/octet-stream")[:100],
                "size": len(f.data),
                "sha256": digest,
                "uploaded_by": principal.name,
                "uploaded_at": now,
            }
            new_id = conn.execute(sa.insert(_EV).values(content=f.data, **row)).inserted_primary_key
            out.append(EvidenceInfo(id=int(new_id[0]) if new_id else 0, **row))  # type: ignore[arg-type]
        events = []
        if change.event_id is not None:
            event = conn.execute(sa.select(_E).where(_E.c.id == change.event_id)).mappings().first()
            if event is not None:
                events.append({"id": change.event_id, "digest": row_digest(dict(event))})
        detail = {
            "from": change.from_status,
            "to": change.to_status,
            "events": events,
            "files": [{"id": e.id, "name": e.filename, "size": e.size, "sha256": e.sha256} for e in out],
        }
        seq = append(conn, principal.name, "violation.report", key, detail, request_id)
    return Reported(change, out, seq)


def _info(row: sa.RowMapping) -> EvidenceInfo:
    return EvidenceInfo(**{k: row[k] for k in EvidenceInfo.__dataclass_fields__})


def list_evidence(app: App, principal: Principal, key: str) -> list[EvidenceInfo]:
    """The evidence files of violation ``key`` (oldest first), for whoever may read the violation."""
    show_violation(app, principal, key)
    cols = [c for c in _EV.c if c.name != "content"]
    with app.db.connect() as conn:
        rows = conn.execute(sa.select(*cols).where(_EV.c.violation_key == key).order_by(_EV.c.id)).mappings()
        return [_info(r) for r in rows]


def read_evidence(app: App, principal: Principal, evidence_id: int) -> tuple[EvidenceInfo, bytes]:
    """One evidence file and its bytes (404 alike for unknown and out-of-scope)."""
    with app.db.connect() as conn:
        row = conn.execute(sa.select(_EV).where(_EV.c.id == evidence_id)).mappings().first()
    if row is None:
        raise NotFound(f"no evidence file {evidence_id}")
    try:
        show_violation(app, principal, row["violation_key"])
    except NotFound:
        raise NotFound(f"no evidence file {evidence_id}") from None
    return _info(row), bytes(row["content"])
