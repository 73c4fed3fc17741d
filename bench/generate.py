"""The synthetic province for the benchmark: facts of one year at a chosen scale, with known findings.

At scale 1: 100 departments shaped like the sample federation, 5,000
branches (about 12,000 党小组), 1,500 units and 100,000 people, with a year
(2017) of meetings and minutes, monthly dues, talks, visits, sign-offs,
petitions, elections, reports and promotions — about two million facts.
Lapses are drawn at the rates of :class:`engine.sample.lapses.LapseRates`;
the findings they imply for a check of every month, quarter and the year 2017
as of 2018-03-01 are derived per department and written out.

Output in ``out_dir``:

- ``facts.jsonl``: the facts, each department's registry before its events;
- ``expected.json``: ``{"rule_id": count}`` for every standard rule id;
- ``expected_findings.jsonl``: each expected finding (rule, subject, period);
- ``summary.json``: scale, seed, counts by type, seconds taken.

Usage::

    python bench/generate.py --scale 0.01 --out /tmp/province
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sample import department_facts  # noqa: E402
from engine.sample.expect import RULE_IDS, expected_findings  # noqa: E402
from engine.sample.lapses import LapseRates, draw_lapses  # noqa: E402
from engine.sample.registry import DeptShape, build_department  # noqa: E402
from facts.errors import PartyrulesError  # noqa: E402

BRANCHES_AT_SCALE_1 = 5000
MEMBERS_AT_SCALE_1 = 100_000
BRANCHES_PER_DEPARTMENT = 50
UNITS_PER_DEPARTMENT = 15
PETITIONS_PER_MEMBER = 0.03
_DEPARTMENTS = (
    "省文联",
    "省作协",
    "省社科联",
    "省科协",
    "省教育厅",
    "省科技厅",
    "省民政厅",
    "省司法厅",
    "省财政厅",
    "省人社厅",
    "省自然资源厅",
    "省生态环境厅",
    "省住建厅",
    "省交通运输厅",
    "省水利厅",
    "省农业农村厅",
    "省商务厅",
    "省文化和旅游厅",
    "省卫健委",
    "省审计厅",
    "省统计局",
    "省林业局",
    "省体育局",
    "省医保局",
    "省档案馆",
    "省地方志办",
    "省广电局",
    "省新闻出版局",
    "省侨联",
    "省妇联",
    "省残联",
    "省总工会",
    "团省委",
    "省红十字会",
    "省供销社",
    "省粮食局",
    "省机关事务局",
    "省信访局",
    "省外办",
    "省民宗委",
)


class GenerateError(PartyrulesError):
    """A scale or seed the generator cannot use."""


def _shapes(scale: float, seed: int) -> Iterator[DeptShape]:
    branches = round(BRANCHES_AT_SCALE_1 * scale)
    members = round(MEMBERS_AT_SCALE_1 * scale)
    if branches < 2 or members < 8 * branches:
        raise GenerateError(f"scale {scale} is too small: it needs at least 2 branches (scale >= 0.0004)")
    n_depts = max(1, round(branches / BRANCHES_PER_DEPARTMENT))
    rng = random.Random(f"{seed}:shapes")
    for d in range(n_depts):
        n_branches = branches // n_depts + (d < branches % n_depts)
        n_members = members // n_depts + (d < members % n_depts)
        base = _DEPARTMENTS[d % len(_DEPARTMENTS)]
        yield DeptShape(
            prefix=f"d{d:03d}-",
            name=base if d < len(_DEPARTMENTS) else f"{base}（{d // len(_DEPARTMENTS) + 1}）",
            n_branches=n_branches,
            n_members=n_members,
            n_units=UNITS_PER_DEPARTMENT,
            pg_size=rng.randint(7, 9),
            retiree_branches=max(1, n_branches // 8),
        )


def generate(scale: float, seed: int, out_dir: Path, rates: LapseRates | None = None) -> dict[str, Any]:
    """Write the province at ``scale`` into ``out_dir``; return a summary (counts, expected findings)."""
    started = time.perf_counter()
    rates = rates or LapseRates()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_type: Counter[str] = Counter()
    expected: Counter[str] = Counter({rule: 0 for rule in RULE_IDS})
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with (
        (out_dir / "facts.jsonl").open("w", encoding="utf-8") as facts_out,
        (out_dir / "expected_findings.jsonl").open("w", encoding="utf-8") as findings_out,
    ):
        for shape in _shapes(scale, seed):
            key = f"{seed}:{shape.prefix}"
            dept = build_department(shape, random.Random(f"{key}registry"))
            n_petitions = max(1, round(shape.n_members * PETITIONS_PER_MEMBER))
            plan = draw_lapses(dept, random.Random(f"{key}lapses"), rates, n_petitions)
            facts, copied = department_facts(dept, plan, random.Random(f"{key}facts"), n_petitions)
            facts_out.write("\n".join(map(dumps, facts)) + "\n")
            by_type.update(f["type"] for f in facts)
            findings = expected_findings(facts, copied)
            expected.update(f.rule for f in findings)
            if findings:
                findings_out.write("\n".join(dumps(f.as_dict()) for f in findings) + "\n")
    counts = {rule: expected[rule] for rule in RULE_IDS}
    (out_dir / "expected.json").write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    summary = {
        "scale": scale,
        "seed": seed,
        "as_of": "2018-03-01",
        "periods": "2017-01..2017 (every month, quarter and the year)",
        "facts": sum(by_type.values()),
        "by_type": dict(sorted(by_type.items())),
        "findings": sum(counts.values()),
        "expected": counts,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return summary


@click.command()
@click.option(
    "--scale", type=float, default=0.01, show_default=True, help="1 = 5,000 branches, 100,000 members."
)
@click.option("--seed", type=int, default=2017, show_default=True, help="Same scale and seed, same bytes.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder (created if missing).",
)
def main(scale: float, seed: int, out_dir: Path) -> None:
    """Generate the synthetic province: facts.jsonl and expected.json in OUT.

    Example: python bench/generate.py --scale 0.01 --out /tmp/province
    """
    try:
        summary = generate(scale, seed, out_dir)
    except GenerateError as exc:
        raise click.BadParameter(str(exc), param_hint="--scale") from exc
    click.echo(
        f"{summary['facts']} facts, {summary['findings']} expected findings in {out_dir} "
        f"({summary['seconds']} s)"
    )


if __name__ == "__main__":
    main()
