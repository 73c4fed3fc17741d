"""Benchmark of ``check --cluster``: the synthetic province judged on a LocalCluster of 1, 2, 4 workers.

Generates the province at ``--scale`` (bench/generate.py), imports it into a fresh database (a SQLite file,
or PostgreSQL in a schema of its own with ``--db``), then in the same command:

- the single-machine check (``[check] processes = 1``: one forked worker) as the baseline;
- for each worker count: a LocalCluster of that many worker *processes* with one thread each (as
  ``dask worker --nthreads 1`` gives), the check on it, its wall time, its ratio to the baseline, and each
  partition's facts, SQL and matching seconds and total task time (with the child's start in ``process``
  isolation).

The baseline must find exactly the findings the generator injected, and every run exactly the baseline's
(exit 1 if not; the summary then lists the keys missing, unexpected or found twice).  Prints one JSON summary.

Usage::

    nice .venv/bin/python bench/cluster.py --scale 0.1 --workers 1,2,4 --isolate process,thread
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from engine.app import build_app  # noqa: E402
from engine.cluster.coordinator import evaluate_on_cluster  # noqa: E402
from engine.config import ClusterSettings  # noqa: E402
from engine.evaluate import evaluate  # noqa: E402
from engine.finding import violation_key  # noqa: E402
from engine.periods import parse_range  # noqa: E402
from facts.db import create_schema_engine  # noqa: E402
from facts.readers import read_file  # noqa: E402

AS_OF = dt.date(2018, 3, 1)


def _run_on(app: Any, workers: int, isolate: str, partitions: int) -> dict[str, Any]:
    from distributed import LocalCluster

    settings = ClusterSettings(isolate=isolate, partitions=partitions)  # type: ignore[arg-type]
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as lc:
        t0 = time.perf_counter()
        ev = evaluate_on_cluster(app.db, app.pack(), parse_range("2017"), AS_OF, 10, settings, lc.scheduler_address)
        wall = time.perf_counter() - t0
    return {
        "wall_s": round(wall, 2),
        "plan_s": round(ev.seconds_plan, 2),
        "findings": sorted(f.key for f in ev.findings),
        "partitions": [
            {
                "part": p.index,
                "roots": len(p.roots),
                "facts": p.facts,
                "sql_s": round(p.seconds_sql, 2),
                "match_s": round(p.seconds_match, 2),
                "task_s": round(p.seconds_total, 2),
                "findings": p.findings,
            }
            for p in ev.partitions
        ],
    }


def _differences(expected: list[str], got: list[str], show: int = 10) -> dict[str, Any]:
    """How two lists of finding keys differ: keys missing, unexpected, and found more than once."""
    want, have = Counter(expected), Counter(got)
    missing, extra = sorted((want - have).elements()), sorted((have - want).elements())
    twice = sorted(k for k, n in have.items() if n > 1)
    return {
        "missing": len(missing), "unexpected": len(extra), "found_twice": len(twice),
        "missing_first": missing[:show], "unexpected_first": extra[:show], "twice_first": twice[:show],
    }


def _injected(data: Path) -> list[str]:
    """The finding keys the generator injected (its expected_findings.jsonl)."""
    rows = map(json.loads, (data / "expected_findings.jsonl").read_text().splitlines())
    return sorted(violation_key(e["rule"], e["subject"]["type"], e["subject"]["id"], e["period"]) for e in rows)


@click.command()
@click.option("--scale", type=float, default=0.1, show_default=True)
@click.option("--workers", default="1,2,4", show_default=True, help="Worker counts to measure.")
@click.option("--isolate", default="process", show_default=True, help="process, thread, or both (comma).")
@click.option("--partitions", type=int, default=0, help="Partitions (0: twice the workers).")
@click.option("--db", "pg_url", default=None, help="A PostgreSQL URL (a fresh schema is used); default SQLite.")
@click.option("--data", type=click.Path(file_okay=False), default=None, help="Reuse/keep the generated data here.")
def main(scale: float, workers: str, isolate: str, partitions: int, pg_url: str | None, data: str | None) -> None:
    tmp = Path(data or tempfile.mkdtemp(prefix="cluster-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    if not (tmp / "facts.jsonl").exists():
        generate(scale, 1, tmp)
    drop = None
    if pg_url:
        engine, schema, drop = create_schema_engine(pg_url, prefix="bench")
        engine.dispose()
        sep = "&" if "?" in pg_url else "?"
        url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    else:
        db = tmp / f"cluster-{scale}.db"
        db.unlink(missing_ok=True)
        url = f"sqlite:///{db}"
    summary: dict[str, Any] = {"scale": scale, "db": "postgresql" if pg_url else "sqlite", "runs": []}
    try:
        app = build_app(url)
        app.init()
        t0 = time.perf_counter()
        report = app.facts.import_items(read_file(tmp / "facts.jsonl"))
        summary["import_s"] = round(time.perf_counter() - t0, 1)
        summary["facts"] = report.added
        t0 = time.perf_counter()
        with app.db.connect() as conn:
            base = evaluate(conn, app.pack(), parse_range("2017"), AS_OF, 10, processes=1)
        baseline = time.perf_counter() - t0
        expected = sorted(f.key for f in base.findings)
        injected = _injected(tmp)
        summary["baseline"] = baseline_summary = {
            "what": "one forked worker on this machine ([check] processes = 1)",
            "wall_s": round(baseline, 2),
            "sql_s": round(base.seconds["sql"], 2),
            "match_s": round(base.seconds["match"], 2),
            "findings": len(expected),
            "subjects": sum(base.subjects.values()),
            "same_as_injected": expected == injected,
        }
        if expected != injected:
            baseline_summary["differences_from_injected"] = _differences(injected, expected)
        ok = expected == injected
        print(json.dumps({"baseline": baseline_summary}), file=sys.stderr, flush=True)
        for mode in isolate.split(","):
            for n in (int(w) for w in workers.split(",")):
                run = _run_on(app, n, mode, partitions)
                got = run.pop("findings")
                same = got == expected
                ok &= same
                run.update(
                    workers=n, isolate=mode, same_findings=same, ratio_to_baseline=round(run["wall_s"] / baseline, 2)
                )
                if not same:  # say which: a count alone hides a finding found twice and another never
                    run["differences"] = _differences(expected, got)
                summary["runs"].append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)  # as it comes: a long run may be cut short
        app.db.dispose()
    finally:
        if drop is not None:
            drop()
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
