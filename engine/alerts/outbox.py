"""The transactional outbox: an alert and its per-channel deliveries, written with the violation.

:func:`enqueue` runs inside the caller's open session and does not commit, so
a violation and its alert are stored together or not at all.  The routing
decision is taken at enqueue time and stored as one ``alert_delivery`` row per
channel; the dispatcher only ever works on those rows.

All timestamps are aware UTC (sqlmodel's ``UTCDateTime``: ``timestamptz`` on
PostgreSQL, UTC text on SQLite).
"""

from __future__ import annotations

import datetime as dt
import functools
import traceback
from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import JSON, Column, Session, SQLModel, Text, select
from sqlmodel import Field as SQLField

from engine.alerts.config import AlertKind, AlertsConfig, Severity
from engine.alerts.routing import route_alert
from engine.bulk_rows import insert_tuples

_JSON_CHECK = (
    orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)

SEVERITY_LABELS: dict[str, str] = {"info": "提示", "warning": "警告", "serious": "严重", "critical": "紧急"}
KIND_LABELS: dict[str, str] = {
    "new": "新增违规",
    "escalation": "违规升级",
    "resolved": "违规已解决",
    "run_failed": "检查运行失败",
    "rule_held": "规则暂停执行",
    "digest": "每日汇总",
    "backfill": "补判汇总",
}


def as_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as an aware UTC datetime, the form stored in the database (a naive input is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


class Alert(BaseModel):
    """Something a person must hear about.  ``(kind, key, occurrence)`` is its idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AlertKind
    key: str = Field(min_length=1, max_length=400)  # e.g. the violation key "rule|org:o1|2017-06"
    occurrence: str = Field(default="", max_length=100)  # tells repeats apart: escalation level, run id
    severity: Severity
    rule: str | None = None
    org: str | None = None
    org_path: list[str] = Field(default_factory=list)  # org ids from the root down to ``org``
    title: str = Field(min_length=1)  # 机关第一党支部 2017-06 未召开支部委员会会议
    message: str
    payload: dict[str, Any] = Field(default_factory=dict)  # the whole finding, JSON-serialisable
    created_at: dt.datetime

    @field_validator("created_at")
    @classmethod
    def _aware_utc(cls, value: dt.datetime) -> dt.datetime:
        return as_utc(value)

    @field_validator("payload")
    @classmethod
    def _json_payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:  # what json.dumps accepts (no dates, no dataclasses), at orjson's speed
            orjson.dumps(value, option=_JSON_CHECK)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload must be JSON-serialisable: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _path_ends_at_org(self) -> Alert:
        if self.org is not None and self.org_path and self.org_path[-1] != self.org:
            raise ValueError(f"org_path must end with org {self.org!r}, got {self.org_path!r}")
        if self.org is None and self.org_path:
            raise ValueError("org_path given without org")
        return self

    @property
    def dedup(self) -> str:
        return f"{self.kind}|{self.key}|{self.occurrence}"

    @property
    def subject_path(self) -> list[str]:
        """The org path used for routing (``[org]`` when the caller gave no path)."""
        if self.org_path:
            return list(self.org_path)
        return [self.org] if self.org is not None else []

    def subject(self) -> str:
        """The line a person reads first: ``【严重】机关第一党支部 2017-06 未召开支部委员会会议``."""
        label = (
            KIND_LABELS[self.kind] if self.kind in ("digest", "backfill") else SEVERITY_LABELS[self.severity]
        )
        prefix = {"resolved": "已解决·", "escalation": "升级·"}.get(self.kind, "")
        return f"【{prefix}{label}】{self.title}"


class Delivery(Alert):
    """An alert on its way to one channel; ``outbox_id`` is the idempotency key receivers may dedup on."""

    outbox_id: int
    channel: str

    @property
    def idempotency_key(self) -> str:
        return f"partyrules-alert-{self.outbox_id}"

    def to_json_dict(self) -> dict[str, Any]:
        body = self.model_dump(mode="json")
        body["alert_id"] = self.outbox_id
        body["idempotency_key"] = self.idempotency_key
        body["dedup"] = self.dedup
        body["subject"] = self.subject()
        return body


class AlertOutbox(SQLModel, table=True):
    __tablename__ = "alert_outbox"

    id: int | None = SQLField(default=None, primary_key=True)
    dedup: str = SQLField(max_length=600, unique=True)
    kind: str = SQLField(max_length=16)
    key: str = SQLField(max_length=400)
    occurrence: str = SQLField(default="", max_length=100)
    severity: str = SQLField(max_length=16)
    rule: str | None = SQLField(default=None, max_length=200)
    org: str | None = SQLField(default=None, max_length=200, index=True)
    org_path: list[str] = SQLField(default_factory=list, sa_column=Column(JSON, nullable=False))
    title: str = SQLField(sa_column=Column(Text, nullable=False))
    message: str = SQLField(sa_column=Column(Text, nullable=False))
    payload: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: dt.datetime = SQLField(index=True)

    def to_alert(self) -> Alert:
        return Alert.model_validate(self.model_dump(exclude={"id", "dedup"}))


class AlertDelivery(SQLModel, table=True):
    __tablename__ = "alert_delivery"
    __table_args__ = (
        sa.UniqueConstraint("outbox_id", "channel"),
        sa.Index("ix_alert_delivery_due", "status", "next_attempt_at"),
    )

    id: int | None = SQLField(default=None, primary_key=True)
    outbox_id: int = SQLField(foreign_key="alert_outbox.id", index=True)
    channel: str = SQLField(max_length=100, index=True)
    status: str = SQLField(default="pending", max_length=16)  # pending | delivered | quarantined
    attempts: int = 0
    next_attempt_at: dt.datetime
    claimed_by: str | None = SQLField(default=None, max_length=64)
    claimed_until: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    last_error: str | None = SQLField(default=None, sa_column=Column(Text, nullable=True))


def _outbox_values(alert: Alert) -> dict[str, Any]:
    """The outbox row's values.  The fields are taken as validated: the JSON columns' serialiser writes
    the same text for them as for ``model_dump(mode="json")``, which walked every payload again (~50 µs an
    alert: most of enqueuing a check's thousands).  ``__dict__`` holds exactly the fields (no extras are
    allowed); ``dict(alert)`` would iterate them through pydantic."""
    values = dict(alert.__dict__)
    values["org_path"] = alert.subject_path
    values["created_at"] = as_utc(alert.created_at)
    values["dedup"] = alert.dedup
    return values


def _insert_outbox(session: Session, alert: Alert) -> int | None:
    """Insert the outbox row unless its dedup key exists; never aborts the caller's transaction."""
    values = _outbox_values(alert)
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedup"])
            .returning(table.c.id)
        )
        return session.execute(stmt).scalar_one_or_none()
    exists = session.exec(select(AlertOutbox.id).where(AlertOutbox.dedup == alert.dedup)).first()
    if exists is not None:
        return None
    return int(session.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one())


def enqueue(
    session: Session,
    alert: Alert,
    config: AlertsConfig,
    channels: Sequence[str] | None = None,
) -> int | None:
    """Add ``alert`` and one delivery per routed channel to the caller's transaction (no commit).

    Returns the outbox id, or ``None`` when the same ``(kind, key, occurrence)``
    was enqueued before (nothing is added then).  ``channels`` overrides the
    routing (the digest uses it to address one channel).
    """
    targets = list(channels) if channels is not None else route_alert(alert, config)
    outbox_id = _insert_outbox(session, alert)
    if outbox_id is None:
        return None
    due = as_utc(alert.created_at)
    rows = [{"outbox_id": outbox_id, "channel": name, "next_attempt_at": due} for name in targets]
    if rows:
        session.execute(sa.insert(AlertDelivery.__table__), rows)  # type: ignore[attr-defined]
    return outbox_id


def enqueue_many(session: Session, alerts: Sequence[Alert], config: AlertsConfig) -> list[int | None]:
    """:func:`enqueue` for many alerts in a few statements (a check that finds thousands of violations).

    Same result as enqueuing one by one: an alert whose ``(kind, key, occurrence)`` exists already (or
    repeats within ``alerts``) adds nothing and gets ``None``.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        return [enqueue(session, a, config) for a in alerts]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    # one statement given many parameter sets: SQLAlchemy's "insertmanyvalues" sends them as multi-row
    # INSERTs of a cached compiled statement (compiling a 500-row VALUES clause ourselves cost ~150 µs a row)
    stmt = insert(table).on_conflict_do_nothing(index_elements=["dedup"]).returning(table.c.id, table.c.dedup)
    rows = [_outbox_values(a) for a in alerts]
    ids: dict[str, int] = {dedup: int(i) for i, dedup in session.execute(stmt, rows)} if rows else {}
    out: list[int | None] = []
    deliveries = []
    for alert in alerts:
        outbox_id = ids.pop(alert.dedup, None)  # pop: a repeat within the batch adds nothing
        out.append(outbox_id)
        if outbox_id is not None:
            due = as_utc(alert.created_at)
            deliveries += [
                {"outbox_id": outbox_id, "channel": name, "next_attempt_at": due} for name in route_alert(alert, config)
            ]
    if deliveries:
        session.execute(sa.insert(AlertDelivery.__table__), deliveries)  # type: ignore[attr-defined]
    return out


@functools.lru_cache(maxsize=1)
def _stored_dedups() -> sa.Select[Any]:
    """The outbox's dedup keys among ``keys`` (prebuilt: compiled once, the keys an expanding parameter)."""
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    return sa.select(table.c.dedup).where(table.c.dedup.in_(sa.bindparam("keys", expanding=True)))


@functools.lru_cache(maxsize=1)
def _ids_of_dedups() -> sa.Select[Any]:
    """(dedup, id) of the outbox rows among ``keys`` (prebuilt)."""
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    return sa.select(table.c.dedup, table.c.id).where(table.c.dedup.in_(sa.bindparam("keys", expanding=True)))


def enqueue_bulk(session: Session, alerts: Sequence[Alert], config: AlertsConfig) -> int:
    """:func:`enqueue_many` without the ids, through the bulk path (``executemany`` / ``COPY``): storing a
    check's violations.  Returns how many alerts were added.

    The same rows as :func:`enqueue_many`: an alert whose ``(kind, key, occurrence)`` exists already (one
    read of the batch's keys) or repeats within ``alerts`` adds nothing.  The ids are read back only for
    the alerts routed to a channel, for their deliveries.  The caller must be the only writer of these
    keys until it commits (storing violations is: a new or recurring violation's row is written in the
    same transaction, so a second writer of its alert waits on that row); a concurrent insert of the same
    key fails here instead of being skipped.
    """
    table = AlertOutbox.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    fresh: dict[str, Alert] = {}
    for alert in alerts:
        fresh.setdefault(alert.dedup, alert)  # the first of repeats, as ON CONFLICT DO NOTHING keeps it
    keys = list(fresh)
    stored = _stored_dedups()
    for start in range(0, len(keys), 500):
        for dedup in conn.execute(stored, {"keys": keys[start : start + 500]}).scalars():
            del fresh[dedup]
    if not fresh:
        return 0
    rows = [_outbox_values(a) for a in fresh.values()]
    columns = tuple(rows[0])
    insert_tuples(conn, table, columns, [tuple(r[c] for c in columns) for r in rows])
    routed = {dedup: channels for dedup, a in fresh.items() if (channels := route_alert(a, config))}
    if routed:
        keys = list(routed)
        ids: dict[str, int] = {}
        query = _ids_of_dedups()
        for start in range(0, len(keys), 500):
            ids.update((dedup, int(i)) for dedup, i in conn.execute(query, {"keys": keys[start : start + 500]}))
        deliveries = [
            (ids[dedup], name, as_utc(fresh[dedup].created_at))
            for dedup, channels in routed.items()
            for name in channels
        ]
        delivery = AlertDelivery.__table__  # type: ignore[attr-defined]
        insert_tuples(conn, delivery, ("outbox_id", "channel", "next_attempt_at"), deliveries)
    return len(rows)


def run_failed_alert(run: str, error: BaseException | str, at: dt.datetime, what: str = "合规检查") -> Alert:
    """The alert for a check run that itself failed (``run`` identifies the run, e.g. ``check|2017-06``)."""
    if isinstance(error, BaseException):
        detail = "".join(traceback.format_exception(error)).strip()
        summary = f"{type(error).__name__}: {error}"
    else:
        detail = summary = error
    return Alert(
        kind="run_failed",
        key=run,
        occurrence=as_utc(at).isoformat(timespec="seconds"),
        severity="critical",
        title=f"{what}运行失败（{run}）",
        message=f"{what}运行失败，本次未能完成判定，请尽快处理后重新运行。错误：{summary}",
        payload={"run": run, "error": summary, "traceback": detail},
        created_at=at,
    )
