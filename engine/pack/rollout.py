"""Safe reload: which rule pack a run uses, given the configured folder and what was approved.

The scheduler and ``partyrules check`` read the configured pack at each run
and ask :func:`choose_pack` which pack to use:

* a pack that fails validation is not used: the last good pack keeps running
  (rebuilt from the copy of its files kept in ``pack_approval``) and a
  ``rule_held`` alert says why, once per distinct broken content;
* a valid pack seen for the first time is backtested against the last good
  one over ``[check] backtest_period`` as of ``backtest_as_of``; if it flips
  more than ``blast_radius`` of the judged subjects it is *held* (alerted
  once) and the last good pack keeps running until someone runs
  ``partyrules rules approve HASH --by NAME``;
* otherwise it becomes the good pack.  The very first pack has nothing to be
  compared with and is good at once;
* a pack uploaded through the service and approved by a second account
  (``root`` ``upload``, see :mod:`engine.service.packs_ops`) is used instead
  of the configured one while it is the later decision: approved after the
  configured content was first seen (or last approved).  Deploying a changed
  pack folder later makes that folder's content the newer one again (judged by
  the guard as above).

An explicit ``--rules DIR`` on the command line is the user's deliberate
choice and never comes through here.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from engine.alerts.outbox import Alert, enqueue
from engine.app import App
from engine.backtest import BacktestError, backtest
from engine.pack.approvals import PackApproval
from engine.pack.errors import PackError
from engine.pack.load import Pack, load_pack
from engine.periods import month_of, shift
from facts.errors import PartyrulesError

_log = logging.getLogger(__name__)

STATUSES = ("good", "held", "approved", "invalid")
USABLE = ("good", "approved")
STATUS_CN = {"good": "已启用", "held": "待批准", "approved": "已批准", "invalid": "校验失败"}
UPLOAD_ROOT = "upload"  # the root recorded for a pack uploaded through the service and approved there
SOURCE_SUFFIXES = {".yaml", ".yml", ".csv", ".xlsx"}  # rule files and their decision tables


_T = PackApproval.__table__  # type: ignore[attr-defined]


class RolloutError(PartyrulesError):
    """A pack version that cannot be approved or rebuilt; ``pack_hash`` names it."""

    def __init__(self, pack_hash: str, message: str) -> None:
        self.pack_hash = pack_hash
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class PackChoice:
    pack: Pack  # what this run uses
    configured: str  # the configured pack's hash (``files:<digest>`` when it failed validation)
    status: str  # the configured pack's status: good | approved | held | invalid
    reason: str | None

    @property
    def fallback(self) -> bool:
        """True when the run uses the last good pack instead of the configured one."""
        return self.pack.hash != self.configured


def ensure_table(db: sa.Engine) -> None:
    """The schema is in place (created or migrated: a table made here alone would escape the migrations)."""
    from engine.schema import init_schema

    init_schema(db)


def pack_sources(root: str | Path) -> dict[str, str]:
    """Every rule file and decision table under ``root``: relative path -> base64 of its bytes."""
    base = Path(root)
    return {
        str(p.relative_to(base)): base64.b64encode(p.read_bytes()).decode("ascii")
        for p in sorted(base.rglob("*"))
        if p.suffix.lower() in SOURCE_SUFFIXES and p.is_file()
    }


def _files_key(sources: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + data.encode() + b"\0")
    return "files:" + digest.hexdigest()[:16]


def _row(conn: sa.Connection, key: str) -> dict[str, Any] | None:
    found = conn.execute(sa.select(_T).where(_T.c.hash == key)).mappings().first()
    return dict(found) if found else None


def _last_good(conn: sa.Connection) -> dict[str, Any] | None:
    """The usable pack that ran last (or, if none ran yet, was approved last)."""
    query = (
        sa.select(_T)
        .where(_T.c.status.in_(USABLE))
        .order_by(_T.c.last_used.is_(None), _T.c.last_used.desc(), _T.c.at.desc())
        .limit(1)
    )
    found = conn.execute(query).mappings().first()
    return dict(found) if found else None


def restore_pack(row: dict[str, Any]) -> Pack:
    """Rebuild a stored pack version from its files, loaded from a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="partyrules-pack-") as tmp:
        for name, data in row["files"].items():
            path = Path(tmp) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(data))
        try:
            pack = load_pack(tmp)
        except PackError as exc:
            raise RolloutError(row["hash"], f"无法重建规则包 {row['hash']}（{row['root']}）：{exc}") from exc
    if pack.hash != row["hash"]:
        _log.warning("重建的规则包 %s 的内容哈希为 %s（规则包格式已变化）", row["hash"], pack.hash)
    root = str(row["root"])
    rules = [dataclasses.replace(r, file=r.file.replace(tmp, root, 1)) for r in pack.rules]
    fixtures = {k.replace(tmp, root, 1): v for k, v in pack.fixtures.items()}
    return dataclasses.replace(pack, root=root, rules=rules, fixtures=fixtures)


def guard_window(app: App) -> tuple[str, dt.date]:
    """The guard's backtest range and as-of date: configured, or the last 12 closed months as of today."""
    settings = app.config.check
    as_of = settings.backtest_as_of or app.today()
    if settings.backtest_period:
        return settings.backtest_period, as_of
    last = month_of(as_of - dt.timedelta(days=settings.grace_days + 1))
    if last.end + dt.timedelta(days=settings.grace_days + 1) > as_of:
        last = shift(last, -1)
    return f"{shift(last, -11).label}..{last.label}", as_of


def _insert(db: sa.Engine, values: dict[str, Any]) -> None:
    try:
        with db.begin() as conn:
            conn.execute(sa.insert(_T).values(**values))
    except sa.exc.IntegrityError:
        _log.info("规则包 %s 已由另一进程登记", values["hash"])


def _alert(app: App, alert: Alert) -> None:
    with Session(app.db) as session:
        enqueue(session, alert, app.config.alerts)
        session.commit()


def _use(app: App, key: str, now: dt.datetime) -> None:
    with app.db.begin() as conn:
        conn.execute(sa.update(_T).where(_T.c.hash == key).values(last_used=now))


def _fallback(app: App, configured: str, why: str, now: dt.datetime) -> Pack | None:
    with app.db.connect() as conn:
        good = _last_good(conn)
    if good is None:
        return None
    _log.warning("配置的规则包 %s 未启用（%s），本次使用上一可用版本 %s", configured, why, good["hash"])
    pack = restore_pack(good)
    _use(app, good["hash"], now)
    return pack


def _naive(at: dt.datetime) -> dt.datetime:
    """A stored UTC time comparable with another (SQLite gives them back without a zone)."""
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def _active_upload(db: sa.Engine, configured: str) -> dict[str, Any] | None:
    """The approved upload decided after the configured content ``configured`` was (first seen or approved).

    Configured content never recorded yet is newer than any upload: the next run records and judges it.
    """
    with db.connect() as conn:
        row = _row(conn, configured)
        if row is None:
            return None
        query = (
            sa.select(_T)
            .where(_T.c.root == UPLOAD_ROOT, _T.c.status.in_(USABLE), _T.c.hash != configured)
            .order_by(_T.c.at.desc())
            .limit(1)
        )
        found = conn.execute(query).mappings().first()
    if found is None or _naive(found["at"]) <= _naive(row["at"]):
        return None
    return dict(found)


def active_upload(app: App) -> dict[str, Any] | None:
    """The uploaded, approved pack that the next run uses instead of the configured one, if any (no files)."""
    ensure_table(app.db)
    try:
        configured = app.pack().hash
    except PackError:
        configured = _files_key(pack_sources(app.pack_root()) if app.pack_root().is_dir() else {})
    found = _active_upload(app.db, configured)
    return None if found is None else {k: v for k, v in found.items() if k != "files"}


def _invalid(app: App, root: str, exc: PackError, now: dt.datetime) -> PackChoice:
    sources = pack_sources(root) if Path(root).is_dir() else {}
    key = _files_key(sources)
    upload = _active_upload(app.db, key)
    if upload is not None:  # a later approved upload replaces the broken folder: nothing to hold or alert
        _use(app, upload["hash"], now)
        why = f"配置的规则包校验失败；使用经上传并由 {upload['decided_by']} 批准的规则包 {upload['hash']}"
        return PackChoice(restore_pack(upload), key, "uploaded", why)
    shown = "；".join(str(p) for p in exc.problems[:5])
    reason = f"校验失败，{len(exc.problems)} 处错误：{shown}"
    with app.db.connect() as conn:
        seen = _row(conn, key)
    if seen is None:
        _insert(app.db, dict(hash=key, root=root, status="invalid", reason=reason, at=now, files={}))
    pack = _fallback(app, key, reason, now)
    using = f"继续使用上一可用版本 {pack.hash}" if pack else "没有可用的上一版本，检查无法进行"
    _alert(
        app,
        Alert(
            kind="rule_held",
            key=f"pack|{root}",
            occurrence=key,
            severity="critical",
            title=f"规则包校验失败，未启用（{root}）",
            message=f"配置的规则包 {root} 有 {len(exc.problems)} 处错误，未启用；{using}。"
            f"请用 partyrules rules validate 查看并修正。错误：{shown}",
            payload={"root": root, "files": key, "problems": [str(p) for p in exc.problems]},
            created_at=now,
        ),
    )
    if pack is None:
        raise exc
    return PackChoice(pack, key, "invalid", reason)


def _judge_new(app: App, pack: Pack, good: dict[str, Any], now: dt.datetime) -> tuple[str, str, float | None]:
    """Backtest a new pack against the last good one: (status, reason, flipped share)."""
    period, as_of = guard_window(app)
    limit = app.config.check.blast_radius
    try:
        result = backtest(app, pack, period, as_of, baseline=restore_pack(good))
    except BacktestError as exc:
        return "good", f"回测 {period} 无可比较的记录，直接启用：{exc}", None
    except Exception as exc:  # a failing guard must hold the pack, not let it through
        _log.exception("规则包 %s 的回测失败，暂停启用", pack.hash)
        return "held", f"回测 {period} 失败，暂停启用：{type(exc).__name__}: {exc}", None
    share = result.flipped_share
    flipped = len(result.added) + len(result.removed)
    words = (
        f"回测 {period}（判定日 {as_of}）：新增 {len(result.added)} 项、不再违规 {len(result.removed)} 项，"
        f"改变 {flipped}/{result.subjects} 个对象的结论（{share:.2%}），允许 {limit:.2%}"
    )
    return ("held" if share > limit else "good"), words, share


def choose_pack(app: App, now: dt.datetime | None = None) -> PackChoice:
    """The pack a run of the configured pack uses; records, backtests and alerts as described above.

    Raises the :class:`PackError` when the configured pack is invalid and no good pack was ever used.
    """
    now = now or dt.datetime.now(dt.UTC)
    ensure_table(app.db)
    root = str(app.pack_root())
    try:
        pack = app.pack()
    except PackError as exc:
        return _invalid(app, root, exc, now)
    with app.db.connect() as conn:
        row = _row(conn, pack.hash)
        good = _last_good(conn) if row is None else None
    if row is None:
        if good is None:
            status, reason, share = "good", "首个使用的规则包（没有可比较的上一版本）", None
        else:
            status, reason, share = _judge_new(app, pack, good, now)
        _insert(
            app.db,
            dict(
                hash=pack.hash,
                root=pack.root,
                status=status,
                reason=reason,
                flipped_share=share,
                at=now,
                files=pack_sources(pack.root),
            ),
        )
        if status == "held":
            _alert(app, _held_alert(pack, reason, now))
    else:
        status, reason = str(row["status"]), row["reason"]
    upload = _active_upload(app.db, pack.hash)
    if upload is not None:
        _use(app, upload["hash"], now)
        why = f"使用经上传并由 {upload['decided_by']} 批准的规则包 {upload['hash']}（晚于配置的规则包）"
        return PackChoice(restore_pack(upload), pack.hash, "uploaded", why)
    if status in USABLE:
        _use(app, pack.hash, now)
        return PackChoice(pack, pack.hash, status, reason)
    chosen = _fallback(app, pack.hash, reason or status, now)
    if chosen is None:  # a held pack always has a good one before it; an invalid row never has a pack hash
        raise RolloutError(pack.hash, f"规则包 {pack.hash} 未获批准，且没有可用的上一版本")
    return PackChoice(chosen, pack.hash, status, reason)


def _held_alert(pack: Pack, reason: str, now: dt.datetime) -> Alert:
    return Alert(
        kind="rule_held",
        key=f"pack|{pack.hash}",
        occurrence="held",
        severity="serious",
        title=f"规则包 {pack.hash} 影响面过大，暂停启用（{pack.root}）",
        message=f"{reason}。已暂停启用，继续使用上一可用版本。"
        f"核对回测结果（partyrules rules backtest --rules {pack.root}）后，"
        f"确认启用请执行：partyrules rules approve {pack.hash} --by 姓名",
        payload={"hash": pack.hash, "root": pack.root, "reason": reason},
        created_at=now,
    )


def pack_in_use(app: App) -> Pack:
    """What the next run of the configured pack would use, without recording or alerting anything."""
    ensure_table(app.db)
    try:
        pack: Pack | None = app.pack()
    except PackError:
        pack = None
    upload = active_upload(app)
    if upload is not None:
        with app.db.connect() as conn:
            stored = _row(conn, upload["hash"]) or {}
        return app.stored_pack(f"stored:{upload['hash']}", lambda: restore_pack(stored))
    with app.db.connect() as conn:
        row = _row(conn, pack.hash) if pack else None
        good = _last_good(conn)
    if pack is not None and (row is None or row["status"] in USABLE or good is None):
        return pack
    if good is None:
        return app.pack()  # raises the PackError listing every problem
    return restore_pack(good)


def approve(db: sa.Engine, pack_hash: str, by: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Release a held pack (a unique prefix of its hash will do); the next run uses it if still configured."""
    ensure_table(db)
    with db.begin() as conn:
        rows = conn.execute(sa.select(_T).where(_T.c.hash.startswith(pack_hash))).mappings().all()
        if len(pack_hash) < 6 or len(rows) != 1:
            held = conn.execute(sa.select(_T.c.hash).where(_T.c.status == "held")).scalars().all()
            what = "不唯一" if rows and len(pack_hash) >= 6 else "未知（至少给出 6 位）"
            raise RolloutError(
                pack_hash, f"规则包版本 {pack_hash} {what}；待批准的版本：{'、'.join(held) or '无'}"
            )
        row = dict(rows[0])
        if row["status"] == "invalid":
            raise RolloutError(row["hash"], f"规则包 {row['hash']} 校验失败，不能批准；请修正后重新加载")
        if row["status"] in USABLE:
            return row
        values = dict(status="approved", decided_by=by, at=now or dt.datetime.now(dt.UTC))
        conn.execute(sa.update(_T).where(_T.c.hash == row["hash"]).values(**values))
        row.update(values)
    _log.info("规则包 %s 已由 %s 批准启用", row["hash"], by)
    return row


def approvals(db: sa.Engine) -> dict[str, dict[str, Any]]:
    """Every recorded pack version by hash, without its files."""
    ensure_table(db)
    cols = [c for c in _T.c if c.name != "files"]
    with db.connect() as conn:
        return {str(r["hash"]): dict(r) for r in conn.execute(sa.select(*cols)).mappings()}
