"""Rule packs through the service: upload, list, diff, backtest, approve (by another account than the uploader).

An approved upload is recorded as an approved version of the pack
(``pack_approval``): when that content becomes the configured pack, the
blast-radius guard does not hold it again, since a second person has read
its backtest and approved it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.app import App
from engine.audit.log import append
from engine.auth.principal import AuthError, NotFound, Principal
from engine.backtest import backtest as run_backtest
from engine.pack.diff import diff_packs
from engine.pack.errors import PackError, PackProblem
from engine.pack.load import Pack, load_pack
from engine.pack.rollout import (
    SOURCE_SUFFIXES,
    UPLOAD_ROOT,
    PackApproval,
    approvals,
    ensure_table,
    pack_in_use,
    pack_sources,
)
from engine.service.tables import PackUpload

_U = PackUpload.__table__  # type: ignore[attr-defined]
_A = PackApproval.__table__  # type: ignore[attr-defined]
MAX_FILES, MAX_BYTES = 200, 5_000_000


def _load(files: dict[str, str]) -> Pack:
    """Load a pack from ``name -> base64`` files in a temporary folder (raises PackError listing the problems)."""
    with tempfile.TemporaryDirectory(prefix="partyrules-upload-") as tmp:
        for name, data in files.items():
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(data))
        try:
            return load_pack(tmp)
        except PackError as exc:  # name the uploaded files, not the temporary folder they were checked in
            raise PackError([_relative(p, tmp) for p in exc.problems]) from None


def _relative(problem: PackProblem, tmp: str) -> PackProblem:
    name = problem.file
    if name.startswith(tmp):
        name = name[len(tmp) :].lstrip("/\\") or "."
    return dataclasses.replace(problem, file=name, message=problem.message.replace(tmp + "/", ""))


def _check_names(files: dict[str, bytes]) -> None:
    if not files:
        raise AuthError("规则包至少要有一个规则文件（.yaml）")
    if len(files) > MAX_FILES or sum(len(v) for v in files.values()) > MAX_BYTES:
        raise AuthError(f"规则包最多 {MAX_FILES} 个文件、共 {MAX_BYTES:,} 字节")
    for name in files:
        parts = Path(name).parts
        if (
            not name
            or Path(name).is_absolute()
            or ".." in parts
            or Path(name).suffix.lower() not in SOURCE_SUFFIXES
        ):
            raise AuthError(
                f"文件名 {name!r} 不可用：须为相对路径，扩展名为 {'、'.join(sorted(SOURCE_SUFFIXES))} 之一"
            )


def upload(
    app: App, principal: Principal, files: dict[str, str], request_id: str | None = None
) -> dict[str, Any]:
    """Store a candidate pack given as ``name -> text`` (YAML, CSV); returns its hash and rule count."""
    return upload_bytes(app, principal, {n: t.encode("utf-8") for n, t in files.items()}, request_id)


def upload_bytes(
    app: App, principal: Principal, files: dict[str, bytes], request_id: str | None = None
) -> dict[str, Any]:
    """Store a candidate pack given as ``name -> bytes`` (YAML, CSV, XLSX tables); returns its hash and rule count.

    Raises :class:`PackError` (each problem naming the uploaded file, line and field) when it does not load.
    """
    principal.require("pack.write")
    _check_names(files)
    encoded = {name: base64.b64encode(data).decode("ascii") for name, data in files.items()}
    pack = _load(encoded)
    now = dt.datetime.now(dt.UTC)
    with app.db.begin() as conn:
        if conn.execute(sa.select(_U.c.hash).where(_U.c.hash == pack.hash)).first() is None:
            conn.execute(
                sa.insert(_U).values(
                    hash=pack.hash,
                    files=encoded,
                    rules=len(pack.rules),
                    uploaded_by=principal.name,
                    uploaded_by_id=principal.account_id,
                    uploaded_at=now,
                )
            )
            append(
                conn,
                principal.name,
                "pack.upload",
                pack.hash,
                {"files": sorted(encoded), "rules": len(pack.rules)},
                request_id,
            )
    return {"hash": pack.hash, "rules": len(pack.rules)}


def _row(app: App, pack_hash: str) -> dict[str, Any]:
    with app.db.connect() as conn:
        row = conn.execute(sa.select(_U).where(_U.c.hash == pack_hash)).mappings().first()
    if row is None:
        raise NotFound(f"no uploaded pack {pack_hash!r}")
    return dict(row)


def list_packs(app: App, principal: Principal) -> dict[str, Any]:
    principal.require("pack.read")
    with app.db.connect() as conn:
        uploads = [
            dict(r) for r in conn.execute(sa.select(*[c for c in _U.c if c.name != "files"])).mappings()
        ]
    in_use = pack_in_use(app)
    return {
        "in_use": {
            "hash": in_use.hash,
            "root": str(in_use.root),
            "rules": sorted({r.id for r in in_use.rules}),
            "versions": len(in_use.rules),  # rule versions (an id may have several, by effective date)
        },
        "uploads": uploads,
        "versions": list(approvals(app.db).values()),
    }


def sources_in_use(app: App, principal: Principal) -> dict[str, bytes]:
    """The files of the pack the next run uses (``name -> bytes``): the base of an edit in the browser."""
    principal.require("pack.read")
    in_use = pack_in_use(app)
    ensure_table(app.db)
    with app.db.connect() as conn:
        stored = conn.execute(sa.select(_A.c.files).where(_A.c.hash == in_use.hash)).scalar_one_or_none()
    if not stored and Path(in_use.root).is_dir():
        stored = pack_sources(in_use.root)
    return {name: base64.b64decode(data) for name, data in (stored or {}).items()}


def uploaded_sources(app: App, principal: Principal, pack_hash: str) -> dict[str, bytes]:
    """The files of an uploaded pack (``name -> bytes``)."""
    principal.require("pack.read")
    return {name: base64.b64decode(data) for name, data in _row(app, pack_hash)["files"].items()}


def _uploaded(app: App, pack_hash: str) -> Pack:
    """An uploaded pack, loaded once per process (its hash names its content)."""
    files = _row(app, pack_hash)["files"]
    return app.stored_pack(f"upload:{pack_hash}", lambda: _load(files))


def diff(app: App, principal: Principal, pack_hash: str) -> dict[str, Any]:
    principal.require("pack.read")
    return diff_packs(pack_in_use(app), _uploaded(app, pack_hash)).to_json()


def backtest(
    app: App, principal: Principal, pack_hash: str, period: str, as_of: dt.date | None
) -> dict[str, Any]:
    principal.require("pack.write")
    candidate = _uploaded(app, pack_hash)
    return run_backtest(app, candidate, period, as_of, baseline=pack_in_use(app)).to_json()


def approve(app: App, principal: Principal, pack_hash: str, request_id: str | None = None) -> dict[str, Any]:
    """Approve an uploaded pack: by an account, and not the one that uploaded it."""
    principal.require("pack.write")
    row = _row(app, pack_hash)
    if principal.account_id is None:
        raise AuthError("a pack is approved by an account (--as USER), not the local administrator")
    if row["uploaded_by_id"] == principal.account_id:
        raise AuthError(f"规则包 {pack_hash} 由 {row['uploaded_by']} 上传，须由另一账号批准")
    now = dt.datetime.now(dt.UTC)
    ensure_table(app.db)
    known = approvals(app.db)
    decision = dict(
        root=UPLOAD_ROOT,
        status="approved",
        reason=f"由 {row['uploaded_by']} 上传，经回测并由 {principal.name} 批准",
        decided_by=principal.name,
        at=now,
    )
    with app.db.begin() as conn:
        conn.execute(
            sa.update(_U)
            .where(_U.c.hash == pack_hash)
            .values(approved_by=principal.name, approved_by_id=principal.account_id, approved_at=now)
        )
        if pack_hash in known:  # a version seen before (held, or an older one): this approval is the newest decision
            conn.execute(sa.update(_A).where(_A.c.hash == pack_hash).values(**decision))
        else:
            conn.execute(sa.insert(_A).values(hash=pack_hash, files=row["files"], **decision))
        append(
            conn, principal.name, "pack.approve", pack_hash, {"uploaded_by": row["uploaded_by"]}, request_id
        )
    # in use now unless the configured folder holds content no run has recorded yet (that is judged first)
    return {"hash": pack_hash, "approved_by": principal.name, "in_use": pack_in_use(app).hash == pack_hash}
