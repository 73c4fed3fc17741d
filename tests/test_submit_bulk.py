"""Judging a bulk import in one pass gives what judging each fact on its own gives (issue 11, item 10).

An import judges the single-fact rules for the whole batch: each rule's subjects are built once
for all the facts, and the org's standing ("已召开1次") once per rule and period for all the orgs.
Here the sample is judged both ways in two databases and the answers compared.
"""

from __future__ import annotations

from datetime import date

import pytest

from engine.app import build_app
from engine.sample import sample_facts
from engine.subjects.single import FACT_BUILDERS
from engine.submit import judge_facts
from facts.errors import Location
from facts.models import MODELS, natural_key

AS_OF = date(2018, 3, 1)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    facts = sample_facts()
    apps = []
    for name in ("bulk", "single"):
        app = build_app(str(tmp_path_factory.mktemp(name) / "t.db"))
        app.init()
        app.facts.import_items((Location("sample.jsonl", i), o) for i, o in enumerate(facts, 1))
        apps.append(app)
    models = [MODELS[o["type"]].model_validate(o) for o in facts if o["type"] in FACT_BUILDERS]
    bulk = judge_facts(apps[0], models, as_of=AS_OF)
    # one by one: every fact the batch found something in, and every 4th of the others (all would take minutes)
    flagged = {(f.subject_type, f.subject_id) for f in bulk.findings}
    subset = [m for i, m in enumerate(models) if (m.type, natural_key(m)) in flagged or i % 4 == 0]
    single = [judge_facts(apps[1], [m], as_of=AS_OF) for m in subset]
    return models, subset, bulk, single


def finding_key(f):
    return (f.rule, f.subject_type, f.subject_id, f.period, f.message, repr(sorted(f.evidence.get("observed", {}).items())))


def test_bulk_judging_finds_what_per_fact_judging_finds(judged):
    models, subset, bulk, single = judged
    assert len(models) > 1000 and not bulk.errors and all(not j.errors for j in single)
    keys = {(m.type, natural_key(m)) for m in subset}
    one_by_one = sorted(finding_key(f) for j in single for f in j.findings)
    in_bulk = sorted(finding_key(f) for f in bulk.findings if (f.subject_type, f.subject_id) in keys)
    assert len(one_by_one) >= 10 and in_bulk == one_by_one


def test_bulk_standing_lines_are_the_per_fact_ones(judged):
    _, _, bulk, single = judged
    one_by_one = [line for j in single for line in j.standing]
    assert one_by_one and set(one_by_one) <= set(bulk.standing)
