"""Screening the stored facts before a check: what the engine cannot judge is set aside, not fatal.

Import refuses impossible values, but a store can still hold them (older imports, direct writes, a
restored backup): a month ``0000-01``, an amount of ``1e308``, a ``term_years`` of 100000, a member who
leaves on ``9999-12-31``, an id longer than the schema's columns, text in a number column.  Any one of
them used to stop ``check`` for every org.  Now one scan per table (SQL, no Python per row) finds such
rows before subjects are built; each becomes a data-quality finding (:data:`RULE`) naming the fact type,
its id, the field and why; the rows are hidden from this connection's subject building by temporary
tables of the same name (both SQLite and PostgreSQL resolve an unqualified name to the session's
temporary table first); and what those rows touch — their member, or their org — is *unjudged* in this
run: no finding is reported for it and no stored violation of it is auto-resolved, since hiding a row
would change the counts.  Everyone else is judged as usual.  A clean store costs one scan per table.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.finding import Finding
from engine.orgtree import describe, parent_cycles
from facts import tables as t

log = logging.getLogger(__name__)

RULE = "data.quality.unjudgeable"
TITLE = "数据无法判定"
MIN_DAY, MAX_DAY = "1900-01-01", "2999-12-31"  # dates outside are not Party-affairs records (and overflow)
MAX_AMOUNT = 1e9  # yuan: above it no dues payment is real, and standards computed from it overflow
MAX_TERM = 100  # years of a term of office
MAX_ID = 200  # the width of the id columns (PostgreSQL refuses longer ids; violations could not store them)
_SHOWN_ID = 120  # a subject id longer than this is shortened (with a hash) in the finding

TYPE_CN = {
    "org": "组织",
    "member": "党员",
    "meeting": "会议",
    "dues": "党费",
    "signoff": "签字",
    "interview": "谈话",
    "petition": "信访",
    "election": "换届选举",
    "field_visit": "调研",
    "declaration": "个人事项报告",
    "promotion": "提拔任用",
}


@dataclass(frozen=True)
class _Table:
    fact: str  # the fact type (interchange name)
    table: sa.Table
    key: tuple[str, ...]  # columns whose values, joined by "|", name the fact
    checks: tuple[tuple[str, str], ...]  # (column, kind): date | month | amount | term | year | id
    members: tuple[str, ...] = ()  # the columns naming the members the fact counts for
    org: str | None = None  # the column naming the org the fact belongs to


def _tab(row: Any) -> sa.Table:
    return row.__table__  # type: ignore[no-any-return]


TABLES = (
    _Table("org", _tab(t.OrgRow), ("id",), (("id", "id"), ("parent", "id"), ("established", "date"),
           ("dissolved", "date"), ("term_years", "term")), org="id"),
    _Table("member", _tab(t.MemberRow), ("id",), (("id", "id"), ("org", "id"), ("joined", "date"),
           ("left", "date")), members=("id",), org="org"),  # the org too: its meetings' quorums count the member
    _Table("meeting", _tab(t.MeetingRow), ("id",), (("id", "id"), ("org", "id"), ("date", "date")), org="org"),
    _Table("dues", _tab(t.DuesRow), ("member", "month"), (("member", "id"), ("month", "month"),
           ("amount", "amount"), ("base", "amount"), ("paid_on", "date")), members=("member",)),
    _Table("signoff", _tab(t.SignoffRow), ("key",), (("date", "date"),)),
    _Table("interview", _tab(t.InterviewRow), ("key",), (("date", "date"),), members=("interviewer", "interviewee")),
    _Table("petition", _tab(t.PetitionRow), ("id",), (("id", "id"), ("received", "date"),
           ("registered", "date"), ("accepted", "date"), ("closed", "date"))),
    _Table("election", _tab(t.ElectionRow), ("key",), (("date", "date"), ("term_years", "term")), org="org"),
    _Table("field_visit", _tab(t.FieldVisitRow), ("key",), (("date", "date"),), members=("member",)),
    _Table("declaration", _tab(t.DeclarationRow), ("key",), (("year", "year"), ("filed", "date")),
           members=("member",)),
    _Table("promotion", _tab(t.PromotionRow), ("key",), (("date", "date"),), members=("member",)),
)

_WHY = {
    "date": f"不是 {MIN_DAY[:4]}—{MAX_DAY[:4]} 年间的有效日期（应为 YYYY-MM-DD）",
    "month": f"不是 {MIN_DAY[:4]}—{MAX_DAY[:4]} 年间的有效月份（应为 YYYY-MM）",
    "amount": f"不是 0 至 {MAX_AMOUNT:,.0f} 之间的金额",
    "term": f"不是 1 至 {MAX_TERM} 之间的任期年数",
    "year": f"不是 {MIN_DAY[:4]}—{MAX_DAY[:4]} 之间的年份",
    "id": f"长度超过 {MAX_ID} 个字符",
}


def _bad(dialect: str, col: Any, kind: str) -> Any:
    """A SQL condition true exactly when a non-null value of ``col`` cannot be judged."""
    text = sa.type_coerce(col, sa.String)
    if kind == "id":
        return sa.func.length(text) > MAX_ID
    if kind in ("date", "month"):
        lo, hi = (MIN_DAY, MAX_DAY) if kind == "date" else (MIN_DAY[:7], MAX_DAY[:7])
        out_of_range = sa.not_(sa.and_(text >= lo, text <= hi))
        if dialect == "sqlite":  # text: also a real calendar day, written the canonical way
            day = text if kind == "date" else text + "-01"
            # date() alone accepts 02-30; a modifier makes it normalise, so an impossible day differs
            return sa.or_(out_of_range, sa.func.coalesce(sa.func.date(day, "+0 days"), "") != day)
        if kind == "month":
            return sa.or_(out_of_range, text.op("!~")(r"^[0-9]{4}-(0[1-9]|1[0-2])$"))
        return sa.not_(sa.and_(col >= sa.literal_column(f"DATE '{lo}'"), col <= sa.literal_column(f"DATE '{hi}'")))
    low, high = {"amount": (0.0, MAX_AMOUNT), "term": (1, MAX_TERM), "year": (int(MIN_DAY[:4]), int(MAX_DAY[:4]))}[
        kind
    ]
    out = sa.not_(sa.and_(col >= low, col <= high))  # NaN and SQLite text compare outside every range
    if dialect == "sqlite":
        wanted = ("integer",) if kind in ("term", "year") else ("integer", "real")
        out = sa.or_(out, sa.func.typeof(col).not_in(wanted))
    return out


def _conditions(dialect: str, spec: _Table) -> list[tuple[str, str, Any]]:
    out = []
    for name, kind in spec.checks:
        col = spec.table.c[name]
        out.append((name, kind, sa.and_(col.is_not(None), _bad(dialect, col, kind))))
    return out


@dataclass(frozen=True)
class Problem:
    fact: str
    key: str
    field: str
    value: str
    why: str
    members: tuple[str, ...]
    org: str | None
    hide: bool = True  # the row is set aside (False: judged as usual, only reported)

    @property
    def message(self) -> str:
        shown = self.value if len(self.value) <= 60 else self.value[:57] + "…"
        return (
            f"{TYPE_CN.get(self.fact, self.fact)}（{self.fact}）记录 {_short(self.key)} 的字段 {self.field} "
            + (
                f"值「{shown}」{self.why}，无法判定；该记录本次未参与检查"
                + ("，相关组织/党员的其他判定暂缓" if self.members or self.org else "")
                if self.hide
                else f"值「{shown}」{self.why}；各项判定照常进行"
            )
            + "。请更正数据后重新检查。"
        )


def _short(key: str) -> str:
    if len(key) <= _SHOWN_ID:
        return key
    return f"{key[:_SHOWN_ID - 10]}…{hashlib.sha1(key.encode()).hexdigest()[:8]}"


@dataclass
class Screen:
    """The rows a check sets aside, and whom they touch."""

    problems: list[Problem] = field(default_factory=list)
    tables: dict[str, list[str]] = field(default_factory=dict)  # table name -> its bad columns

    @property
    def members(self) -> set[str]:
        return {m for p in self.problems for m in p.members}

    @property
    def orgs(self) -> set[str]:
        return {p.org for p in self.problems if p.org}

    def touches(self, member: str | None, org: str | None) -> bool:
        """Whether a subject of ``member`` or in ``org`` is unjudged in this run (a member's subjects
        carry its org: hiding a member changes its org's quorums and its secretary's interviews)."""
        return (member is not None and member in self.members) or (org is not None and org in self.orgs)

    def keep(self, findings: list[Finding]) -> list[Finding]:
        if not self.problems:
            return findings
        members, orgs = self.members, self.orgs
        return [f for f in findings if not (f.member in members or f.org in orgs)]

    def findings(self, period: str) -> list[Finding]:
        """One data-quality finding per unjudgeable row (a row with several bad fields: the first)."""
        out: dict[str, Finding] = {}
        for p in self.problems:
            subject_id = _short(p.key)
            f = Finding(
                rule=RULE,
                rule_version="builtin",
                title=TITLE,
                basis="数据质量：记录的值超出可判定的范围",
                severity="warning",
                subject_type=p.fact,
                subject_id=subject_id,
                org=None,
                org_name=None,
                member=None,
                period=period,
                message=p.message,
                evidence={"observed": {p.field: p.value[:200]}, "threshold": {}, "condition": p.why,
                          "facts": [subject_id]},
            )
            out.setdefault(f.key, f)
        return list(out.values())


def scan(conn: sa.Connection) -> Screen:
    """Every stored row the engine cannot judge (one query per table)."""
    dialect = conn.dialect.name
    screen = Screen()
    for spec in TABLES:
        conds = _conditions(dialect, spec)
        tbl = spec.table
        cols = [sa.type_coerce(tbl.c[k], sa.String) for k in spec.key]
        extra = [sa.type_coerce(tbl.c[c], sa.String) if c else sa.null() for c in (*spec.members, spec.org)]
        flags = [sa.case((cond, 1), else_=0) for _, _, cond in conds]
        values = [sa.cast(tbl.c[name], sa.String) for name, _, _ in conds]
        query = sa.select(*cols, *extra, *flags, *values).where(sa.or_(*(c for _, _, c in conds)))
        bad_columns: list[str] = []
        rows = conn.execute(query).all()
        for row in rows:
            n = len(cols)
            key = "|".join(str(v) for v in row[:n])
            n_m = len(spec.members)
            members = tuple(m for m in row[n : n + n_m] if m)
            org = row[n + n_m]
            marks = row[n + n_m + 1 : n + n_m + 1 + len(conds)]
            shown = row[n + n_m + 1 + len(conds) :]
            for (name, kind, _), mark, value in zip(conds, marks, shown, strict=True):
                if mark:
                    screen.problems.append(Problem(spec.fact, key, name, str(value), _WHY[kind], members, org))
                    if name not in bad_columns:
                        bad_columns.append(name)
        if bad_columns:
            screen.tables[tbl.name] = bad_columns
            log.info("%s: %d rows cannot be judged (%s)", tbl.name, len(rows), ", ".join(bad_columns))
    org = _tab(t.OrgRow)
    parents = {i: p for i, p in conn.execute(sa.select(org.c.id, org.c.parent)).all()}
    for cycle in parent_cycles(parents):  # judged as usual; reported so someone mends the tree
        why = f"与上级组织形成循环（{describe(cycle)}）"
        screen.problems.append(Problem("org", cycle[0], "parent", str(parents[cycle[0]]), why, (), None, hide=False))
    return screen


@contextlib.contextmanager
def hidden(conn: sa.Connection, screen: Screen) -> Iterator[None]:
    """While inside, this connection sees each screened table without its unjudgeable rows.

    Each such table is shadowed by a temporary table of the same name holding the good rows; they are
    dropped on the way out (the connection goes back to the pool as it came)."""
    if not screen.tables:
        yield
        return
    dialect = conn.dialect.name
    schema = "main" if dialect == "sqlite" else str(conn.execute(sa.text("SELECT current_schema()")).scalar())
    made: list[str] = []
    try:
        for spec in TABLES:
            name = spec.table.name
            if name not in screen.tables:
                continue
            real = spec.table.to_metadata(sa.MetaData(), schema=schema)
            bad = [sa.and_(real.c[c].is_not(None), _bad(dialect, real.c[c], k)) for c, k in spec.checks]
            good = sa.select(real).where(sa.not_(sa.or_(*bad)))
            sql = good.compile(conn, compile_kwargs={"literal_binds": True})
            conn.exec_driver_sql(f'CREATE TEMPORARY TABLE "{name}" AS {sql}')
            made.append(name)
            for column in (spec.key[0], *spec.members, spec.org):  # the look-ups subject building makes
                if column:
                    conn.exec_driver_sql(
                        f'CREATE INDEX "ix_{name}_{column}_{uuid.uuid4().hex[:6]}" ON "{name}" ("{column}")'
                    )
        yield
    finally:
        for name in made:
            if dialect == "sqlite":
                conn.exec_driver_sql(f'DROP TABLE temp."{name}"')
            else:
                conn.exec_driver_sql(f'DROP TABLE pg_temp."{name}"')
