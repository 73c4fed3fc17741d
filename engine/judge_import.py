"""Judging a big import in bulk: the single-fact rules over the months the import touched, as a check does.

Judging on submit (:mod:`engine.submit`) holds every added fact as a model and posts each subject to
durable_rules alone: right for a secretary's meeting, too much for a province's year (at bench scale 0.1 it
doubled the import's time and took its peak memory from 0.36 to 1.3 GB).  Past :data:`BULK_FROM` facts the
import keeps none of them (``keep_stored``), and this module judges what it wrote from the database:

- the months the import touched are read from its stored versions (``fact_version.import_id``), a batch
  at a time, keeping only the month labels;
- the months that a check already judges (closed, plus the grace days) are judged by the check's own
  evaluation (:func:`engine.evaluate.evaluate`: subjects as columns, the vectorised pre-filter,
  partitioned workers) for the single-fact rules only, over the range from the first to the last such
  month, and stored with the check's scope — the same violations a check of those rules and months stores;
- the facts of months still open (this month, or within the grace) are judged one by one as on submit,
  since a check does not judge those months yet.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date

import orjson
import sqlalchemy as sa

from engine.app import App
from engine.evaluate import evaluate, judged_periods
from engine.pack.load import Pack
from engine.periods import PeriodRange, parse_period
from engine.subjects.single import FACT_BUILDERS
from engine.submit import Judgement, judge_facts
from engine.violations.packs import remember_pack
from engine.violations.store import Scope
from facts import tables as t
from facts.errors import Location
from facts.models import FactBase
from facts.validate import validate_object

BULK_FROM = 20_000  # added or corrected facts above which an import is judged in bulk
_FV = t.FactVersion.__table__  # type: ignore[attr-defined]
_MONTH_OF = {"meeting": "date", "promotion": "date", "dues": "month", "petition": "received"}  # field → month


def _months(app: App, import_id: int, types: set[str]) -> dict[str, set[str]]:
    """Fact type → the month labels (``YYYY-MM``) of the current versions the import wrote."""
    out: dict[str, set[str]] = defaultdict(set)
    query = (
        sa.select(_FV.c.type, _FV.c.content)
        .where(_FV.c.import_id == import_id, _FV.c.current.is_(True), _FV.c.type.in_(sorted(types)))
        .execution_options(yield_per=5_000)
    )
    with app.db.connect() as conn:
        for type_name, content in conn.execute(query):
            out[type_name].add(str(orjson.loads(content)[_MONTH_OF[type_name]])[:7])
    return out


def _open_facts(app: App, import_id: int, months: dict[str, set[str]]) -> list[FactBase]:
    """The current versions the import wrote in ``months`` (type → labels), as models."""
    facts: list[FactBase] = []
    with app.db.connect() as conn:
        for type_name, labels in months.items():
            query = (
                sa.select(_FV.c.seq, _FV.c.content)
                .where(_FV.c.import_id == import_id, _FV.c.current.is_(True), _FV.c.type == type_name)
                .execution_options(yield_per=5_000)
            )
            for seq, content in conn.execute(query):
                obj = orjson.loads(content)
                if str(obj[_MONTH_OF[type_name]])[:7] in labels:
                    fact = validate_object(obj, Location("fact_version", int(seq)))
                    if not isinstance(fact, list):  # stored text always validates; a list would be its problems
                        facts.append(fact)
    return facts


def judge_import(app: App, import_id: int, pack: Pack | None = None, as_of: date | None = None) -> Judgement:
    """Judge the single-fact rules for what import ``import_id`` wrote, in bulk (see the module)."""
    t0 = time.perf_counter()
    pack = pack or app.pack()
    as_of = as_of or app.today()
    grace = app.config.check.grace_days
    rules = [r for r in pack.rules if r.rule.period == "fact" and r.rule.subject.type in FACT_BUILDERS]
    months = _months(app, import_id, {r.rule.subject.type for r in rules})
    touched = sorted(set().union(*months.values())) if months else []
    result = Judgement()
    if not touched:
        return result
    # the months a check judges now: closed plus the grace, for one of these rules (they share the month grain)
    whole = PeriodRange(parse_period(touched[0]).start, parse_period(touched[-1]).end, f"{touched[0]}..{touched[-1]}")
    closed = {p.label for r in rules for p in judged_periods(r, whole, as_of, grace)}
    done = sorted(m for m in touched if m in closed)
    if done:
        rng = PeriodRange(parse_period(done[0]).start, parse_period(done[-1]).end, f"{done[0]}..{done[-1]}")
        ids = [r.id for r in rules]
        with app.db.connect() as conn:
            settings = app.config.check
            ev = evaluate(
                conn,
                pack,
                rng,
                as_of,
                grace,
                rule_ids=ids,
                processes=settings.processes,
                partitions=settings.partitions,
            )
        remember_pack(app.db, pack)
        scope = Scope(
            ev.scope,
            held_members=frozenset(ev.screen.members),
            held_orgs=frozenset(ev.screen.orgs),
            held=frozenset(ev.held),
        )
        result.findings = ev.findings
        result.stored = app.violations.record(ev.findings, scope, pack.hash, None, actor="submit")
        result.bulk_months = done
    still_open = {k: {m for m in v if m not in closed} for k, v in months.items()}
    if any(still_open.values()):
        fresh = judge_facts(app, _open_facts(app, import_id, still_open), pack=pack, as_of=as_of)
        result.findings += fresh.findings
        result.errors += fresh.errors
        result.standing += fresh.standing
        if result.stored is None:
            result.stored = fresh.stored
        elif fresh.stored is not None:
            result.stored.merge(fresh.stored)
    result.seconds = time.perf_counter() - t0
    return result
