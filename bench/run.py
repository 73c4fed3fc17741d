"""The benchmark: import a synthetic province, check its year, and say where the time goes.

    python bench/run.py --scale 0.01            # quick
    python bench/run.py --scale 1 --processes 2 # the target: a province-year in under a minute
    python bench/run.py --scale 0.1 --db postgresql://postgres@127.0.0.1:5432/test

Prints one JSON summary: import facts/s; check wall time split into SQL
subject building, matching and storing; subjects and findings per rule; peak
RSS; and, measured in the same run on the same subjects, two floors — a bare
loop posting the subjects to durable_rules (the engine's floor) and the
pure-Python reference evaluator (the interpreter's floor) — with the ratios.
It also compares the findings with what the generator injected, so a fast
wrong answer fails (exit status 1).  Figures are ratios against baselines run
in the same process, since these machines are noisy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import itertools
import json
import random
import resource
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from engine.app import App, build_app  # noqa: E402
from engine.check import run_check  # noqa: E402
from engine.condition import evaluate as reference  # noqa: E402
from engine.config import CheckSettings, Config  # noqa: E402
from engine.evaluate import Work, iter_work  # noqa: E402
from engine.matcher import Matcher, floor_loop  # noqa: E402
from engine.matching import run_forked  # noqa: E402
from engine.pack.load import Pack  # noqa: E402
from engine.periods import parse_range  # noqa: E402
from engine.subjects.base import BuildContext  # noqa: E402
from engine.subjects.registry import Registry  # noqa: E402
from engine.submit import judge_facts  # noqa: E402
from engine.violations.store import ViolationStore  # noqa: E402
from engine.web.api import prepare_to_serve  # noqa: E402
from facts.db import create_schema_engine  # noqa: E402
from facts.errors import Location  # noqa: E402
from facts.store import FactStore  # noqa: E402
from facts.streaming import read_chunks  # noqa: E402

AS_OF = dt.date(2018, 3, 1)
FLOOR_CAP = 600_000  # subjects the floors are measured on (a prefix of the check's own stream)
PERIOD = "2017"


def _rss_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "largest_child": round(kids, 1)}


def _in_child(work: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``work`` in a forked process, so each phase's peak memory is its own; return its value and the
    peak RSS (MB) of that process and the workers it forked."""

    def body() -> tuple[Any, float]:
        value = work()
        usage = _rss_mb()
        return value, max(usage["self"], usage["largest_child"])

    (answer,) = run_forked(body, [()], "benchmark phase")  # a worker may fork workers of its own
    return answer  # type: ignore[no-any-return]


def _fresh_app(db: str | None, workdir: Path, processes: int) -> tuple[App, str, Callable[[], None]]:
    config = Config(check=CheckSettings(processes=processes))
    if db and db.startswith("postgresql"):
        engine, schema, drop = create_schema_engine(db, "bench")
        app = App(config, engine, FactStore(engine), ViolationStore(engine, config.alerts))
        return app, f"{db} (schema {schema})", drop
    path = workdir / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return build_app(str(path), config=config), str(path), lambda: None


def _online(app: App, n: int, seed: int) -> dict[str, Any]:
    """Judge ``n`` newly submitted party-group meetings one by one: store + judge latency."""
    with app.db.connect() as conn:
        groups = conn.execute(sa.text("select id from org where kind = 'party_group'")).scalars().all()
        members = conn.execute(
            sa.text("select r.member, m.org from member_role r join member m on m.id = r.member where r.role = 'party_group_member'")
        ).all()
        extra = conn.execute(sa.text("select member, org from member_extra_org")).all()
    by_group: dict[str, list[str]] = {g: [] for g in groups}
    for member, org in [*members, *extra]:
        if org in by_group:
            by_group[org].append(member)
    rnd = random.Random(seed)
    pack = app.pack()
    prepare_to_serve(app)  # as `partyrules serve` does before its first request (the start-up heap frozen)
    times = []
    flagged = 0
    for i in range(n):
        group = rnd.choice(groups)
        people = sorted(set(by_group[group]))
        present = people[: max(1, len(people) - rnd.choice([0, 0, 1]))]
        obj = {
            "type": "meeting", "id": f"online-{i}", "org": group, "kind": "party_group_meeting",
            "date": f"2017-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}", "attendees": present,
            "minutes": {"time": "9:00-11:00", "recorder": present[0], "content": f"在线提交测试{i}：研究部署党建工作",
                        "outcome": "形成决议"},
        }
        t0 = time.perf_counter()
        report = app.facts.import_items([(Location("online", i), obj)])
        judgement = judge_facts(app, [s.fact for s in report.stored], pack=pack, as_of=AS_OF)
        times.append(time.perf_counter() - t0)
        flagged += bool(judgement.findings)
        if judgement.errors:
            raise SystemExit(f"online judging failed: {judgement.errors}")
    gc.unfreeze()
    times.sort()
    return {
        "submissions": n,
        "flagged": flagged,
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(times[int(0.99 * (n - 1))] * 1000, 2),
    }


def _prefilter_effect(app: App, expected_keys: list[Any]) -> dict[str, Any]:
    """The check's judging (dry run: subjects and matching, nothing stored) with and without the
    vectorised pre-filter, each in a fresh forked process, on the same database."""
    pack = app.pack()
    bare = dataclasses.replace(pack, rules=[dataclasses.replace(r, prefilter=None) for r in pack.rules])
    out: dict[str, Any] = {}
    for name, chosen in (("without", bare), ("with", pack)):

        def judge(chosen: Pack = chosen) -> dict[str, Any]:
            app.db.dispose(close=False)
            t0 = time.perf_counter()
            ev = run_check(app, PERIOD, AS_OF, dry_run=True, pack=chosen).evaluation
            keys = sorted((f.rule, f.subject_type, f.subject_id, f.period) for f in ev.findings)
            return {
                "wall_s": round(time.perf_counter() - t0, 2),
                "sql_s": round(ev.seconds["sql"], 2),
                "match_s": round(ev.seconds["match"], 2),
                "same_findings": keys == sorted(map(tuple, expected_keys)),
            }

        out[name], _ = _in_child(judge)
    w, wo = out["with"], out["without"]
    out["match_ratio_without_over_with"] = round(wo["match_s"] / w["match_s"], 2) if w["match_s"] else None
    out["wall_ratio_without_over_with"] = round(wo["wall_s"] / w["wall_s"], 2) if w["wall_s"] else None
    return out


@click.command()
@click.option("--scale", type=float, default=0.01, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--db", help="Database URL (default: a fresh SQLite file in --out).")
@click.option("--processes", type=int, default=2, show_default=True, help="Matcher worker processes.")
@click.option("--out", type=click.Path(file_okay=False), default="out/bench", show_default=True)
@click.option("--online", type=int, default=1000, show_default=True, help="Submissions for the online latency (0: skip).")
@click.option("--keep", is_flag=True, help="Keep the PostgreSQL schema afterwards (default: drop it).")
@click.option(
    "--prefilter-baseline/--no-prefilter-baseline",
    default=True,
    show_default=True,
    help="Also judge the year without the vectorised pre-filter (a dry run each way), for the ratio.",
)
def main(
    scale: float, seed: int, db: str | None, processes: int, out: str, online: int, keep: bool, prefilter_baseline: bool
) -> None:
    """Run the benchmark at SCALE and print a JSON summary."""
    workdir = Path(out) / f"scale-{scale:g}-seed-{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    facts_path = workdir / "facts.jsonl"
    if not (workdir / "expected_findings.jsonl").exists():
        generate(scale, seed, workdir)  # the input is reused between runs; results never are
    expected = json.loads((workdir / "expected.json").read_text())
    expected_keys = {
        (e["rule"], e["subject"]["type"], e["subject"]["id"], e["period"])
        for e in map(json.loads, (workdir / "expected_findings.jsonl").read_text().splitlines())
    }
    app, where, cleanup = _fresh_app(db, workdir, processes)
    app.init()
    summary: dict[str, Any] = {"scale": scale, "seed": seed, "db": where, "processes": processes}

    def do_import() -> dict[str, Any]:
        app.db.dispose(close=False)
        t0 = time.perf_counter()
        # as `partyrules import --no-judge` does: raw lines prepared in worker processes, nothing held for judging
        report = app.facts.import_items(read_chunks(facts_path), files=str(facts_path), keep_stored=False)
        seconds = time.perf_counter() - t0
        n = report.added + report.unchanged + report.corrected
        return {"facts": n, "rejected": report.rejected, "seconds": round(seconds, 2), "facts_per_s": round(n / seconds)}

    summary["import"], summary["import"]["peak_rss_mb"] = _in_child(do_import)

    def do_check() -> dict[str, Any]:
        app.db.dispose(close=False)
        t0 = time.perf_counter()
        result = run_check(app, PERIOD, AS_OF, trigger="bench")
        wall = time.perf_counter() - t0
        ev = result.evaluation
        return {
            "wall_s": round(wall, 2),
            "sql_s": round(ev.seconds["sql"], 2),
            "match_s": round(ev.seconds["match"], 2),
            "store_s": round(ev.seconds.get("store", 0.0), 2),
            "subjects": sum(ev.subjects.values()),
            "findings": len(ev.findings),
            "_subjects": ev.subjects,
            "_keys": sorted((f.rule, f.subject_type, f.subject_id, f.period) for f in ev.findings),
        }

    check, check_rss = _in_child(do_check)
    subjects_per_rule, got = check.pop("_subjects"), check.pop("_keys")
    summary["check"] = {**check, "peak_rss_mb": check_rss}
    if prefilter_baseline:
        summary["prefilter_effect"] = _prefilter_effect(app, got)
    wall = check["wall_s"]
    found = Counter(k[0] for k in got)
    summary["per_rule"] = {
        rule: {"subjects": subjects_per_rule.get(rule, 0), "findings": found.get(rule, 0), "expected": expected.get(rule, 0)}
        for rule in sorted(set(expected) | set(subjects_per_rule))
    }
    sql_s = check["sql_s"]

    # floors, on the same subjects (the first FLOOR_CAP of them, so memory stays bounded), in this process
    pack = app.pack()
    items = []
    with app.db.connect() as conn:
        ctx = BuildContext(conn, Registry.load(conn), AS_OF)
        # every subject built (columns=False): the floors time matching on all of them, as before columns
        stream = iter_work(
            ctx, pack, parse_range(PERIOD), app.config.check.grace_days, None, Work([], ctx.registry, set(), {}),
            columns=False,
        )
        for rule, chunk in stream:
            items.extend((rule, s) for s in chunk)
            if len(items) >= FLOOR_CAP:
                break
    conditions = {r.key: r.durable for r in pack.rules}
    pairs = [(r.key, s.fields) for r, s in items]
    runs = [(key, [fields for _, fields in run]) for key, run in itertools.groupby(pairs, key=lambda p: p[0])]
    modes = {}  # the matcher's variants on the same subjects: (seconds, subjects posted singly)
    for name, prefilter in [("prefilter", True), ("single_posts", False)]:
        matcher = Matcher.for_rules(pack.rules, prefilter=prefilter)
        t0 = time.perf_counter()
        for key, subjects in runs:  # as the check does: a rule's subjects together
            matcher.matches_many(key, subjects)
        modes[name] = (time.perf_counter() - t0, matcher.posts)
    ours = modes["prefilter"][0]
    floor = floor_loop(conditions, pairs)
    t0 = time.perf_counter()
    for r, s in items:
        reference(r.expr, s.fields, r.params)
    interp = time.perf_counter() - t0
    share = len(items) / max(1, summary["check"]["subjects"])
    summary["floors"] = {
        "subjects_measured": len(items),
        "ours_match_s": round(ours, 3),
        "durable_floor_s": round(floor, 3),
        "reference_evaluator_s": round(interp, 3),
        "match_over_floor": round(ours / floor, 3) if floor else None,
        "matcher_modes": {
            name: {"s": round(sec, 3), "posted": posted, "over_prefilter": round(sec / ours, 2) if ours else None}
            for name, (sec, posted) in modes.items()
        },
        "reference_over_floor": round(interp / floor, 3) if floor else None,
        "check_wall_over_sql_plus_floor": round(wall / (sql_s + floor / share), 3),
    }
    got_keys = set(map(tuple, got))
    missing, extra = sorted(expected_keys - got_keys), sorted(got_keys - expected_keys)
    summary["correct"] = not missing and not extra
    summary["missing"] = [list(k) for k in missing[:20]]
    summary["unexpected"] = [list(k) for k in extra[:20]]
    if online:
        summary["online"] = _online(app, online, seed)
    summary["peak_rss_mb_bench_process"] = _rss_mb()["self"]
    if not keep:
        cleanup()
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    (workdir / f"run-{'pg' if db else 'sqlite'}.json").write_text(text)
    click.echo(text)
    if not summary["correct"]:
        click.echo(f"WRONG: {len(missing)} expected findings missing, {len(extra)} unexpected", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
