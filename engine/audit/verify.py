"""``partyrules audit verify``: recompute the chain, every fact's content hash, and what the log says was written.

Nothing stored is trusted: a fact's hash is recomputed from its content, each
import's digest from the recomputed hashes, each entry's hash from its text and
its predecessor, and each audited workflow event from its row.  The first
problem of each kind is named (table, row, what differs).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa

from engine.audit.log import _FV, _HEAD, _LOG, GENESIS, entry_hash, fact_lines, row_digest
from engine.violations.tables import ViolationEvent

_E = ViolationEvent.__table__  # type: ignore[attr-defined]


@dataclass
class VerifyReport:
    entries: int = 0
    facts: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        head = (
            f"audit log: {self.entries} entries; facts: {self.facts} versions; workflow events: {self.events}"
        )
        if self.ok:
            return head + " — all verified (chain intact, every content hash recomputed)"
        return head + f" — {len(self.problems)} problem(s); first: {self.problems[0]}"


def verify(db: sa.Engine, batch: int = 5000) -> VerifyReport:
    report = VerifyReport()
    imports: dict[int, dict[str, Any]] = {}
    events: dict[int, str] = {}
    with db.connect() as conn:
        head = conn.execute(sa.select(_HEAD.c.seq, _HEAD.c.last_hash, _HEAD.c.baseline_fact_seq)).first()
        baseline = int(head[2]) if head else 0
        _verify_chain(conn, report, imports, events, head)
        _verify_facts(conn, report, imports, baseline, batch)
        _verify_events(conn, report, events)
    return report


def _verify_chain(
    conn: sa.Connection,
    report: VerifyReport,
    imports: dict[int, dict[str, Any]],
    events: dict[int, str],
    head: Any,
) -> None:
    prev, expected_seq = GENESIS, 1
    broken = False
    for row in conn.execute(sa.select(_LOG).order_by(_LOG.c.seq)).mappings():
        report.entries += 1
        seq = int(row["seq"])
        if broken:
            continue
        if seq != expected_seq:
            report.problems.append(f"audit_log: entry {expected_seq} is missing (next is {seq})")
            broken = True
            continue
        if row["prev_hash"] != prev:
            report.problems.append(f"audit_log seq {seq}: prev_hash does not match entry {seq - 1}")
            broken = True
            continue
        digest = entry_hash(
            prev, seq, row["at"], row["actor"], row["request_id"], row["action"], row["target"], row["detail"]
        )
        if digest != row["hash"]:
            report.problems.append(f"audit_log seq {seq}: content altered (recomputed hash differs)")
            broken = True
            continue
        prev, expected_seq = digest, seq + 1
        detail = orjson.loads(row["detail"])
        if isinstance(detail, dict) and "import_id" in detail:
            imports[int(detail["import_id"])] = {"seq": seq, **detail}
        for ev in detail.get("events", []) if isinstance(detail, dict) else []:
            events[int(ev["id"])] = str(ev["digest"])
    if not broken and head is not None and (int(head[0]) != expected_seq - 1 or head[1] != prev):
        report.problems.append(
            f"audit_log: the head says {head[0]} entries but the log ends at {expected_seq - 1} (entries removed?)"
        )


def _verify_facts(
    conn: sa.Connection, report: VerifyReport, imports: dict[int, dict[str, Any]], baseline: int, batch: int
) -> None:
    seen: dict[int, list[tuple[str, str, int, str]]] = defaultdict(list)
    first_bad: str | None = None
    unaudited: str | None = None
    last = 0
    while True:
        rows = conn.execute(
            sa.select(
                _FV.c.seq, _FV.c.type, _FV.c.key, _FV.c.version, _FV.c.hash, _FV.c.content, _FV.c.import_id
            )
            .where(_FV.c.seq > last)
            .order_by(_FV.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for seq, type_name, key, version, stored, content, import_id in rows:
            last = int(seq)
            report.facts += 1
            actual = hashlib.sha256(content.encode("utf-8")).hexdigest()[: len(stored) or 32]
            if actual != stored and first_bad is None:
                first_bad = (
                    f"fact_version seq {seq} ({type_name} {key} v{version}): content does not match its hash"
                )
            if seq <= baseline:
                continue
            if import_id is None or int(import_id) not in imports:
                if unaudited is None:
                    unaudited = f"fact_version seq {seq} ({type_name} {key} v{version}): written without an audit entry"
                continue
            seen[int(import_id)].append((type_name, key, int(version), actual))
    if first_bad:
        report.problems.append(first_bad)
    for import_id, entry in sorted(imports.items(), key=lambda kv: kv[1]["seq"]):
        found = seen.get(import_id, [])
        if fact_lines(found) == entry["digest"] and len(found) == entry["count"]:
            continue
        listed = entry.get("facts")
        where = f"import {import_id} (audit_log seq {entry['seq']})"
        if listed is not None:
            logged = {(t, k, int(v)): h for t, k, v, h in listed}
            now = {(t, k, v): h for t, k, v, h in found}
            for ident in sorted(set(logged) | set(now)):
                if logged.get(ident) != now.get(ident):
                    what = "removed" if ident not in now else "added" if ident not in logged else "altered"
                    where = f"fact {ident[0]} {ident[1]} v{ident[2]} {what} since {where}"
                    break
        report.problems.append(f"{where}: the stored facts differ from what the audit log recorded")
        break
    if unaudited:
        report.problems.append(unaudited)


def _verify_events(conn: sa.Connection, report: VerifyReport, events: dict[int, str]) -> None:
    if not events:
        return
    ids = sorted(events)
    found: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        for row in conn.execute(sa.select(_E).where(_E.c.id.in_(ids[start : start + 500]))).mappings():
            found[int(row["id"])] = row_digest(dict(row))
    report.events = len(ids)
    for event_id in ids:
        if found.get(event_id) != events[event_id]:
            what = "deleted" if event_id not in found else "altered"
            report.problems.append(f"violation_event id {event_id}: {what} since it was audited")
            return
