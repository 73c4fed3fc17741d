"""Judging on import: the same import three ways — not judged, judged in bulk, judged fact by fact.

    python bench/import_judge.py --data /work/bench-data/s01   # a province made by bench/generate.py
    python bench/import_judge.py --scale 0.01

Each way imports the same ``facts.jsonl`` into a fresh SQLite file in a child process of its own,
through the public path (``submit_facts`` over the streamed file, as ``partyrules import`` does):

- ``no_judge``: ``--no-judge``;
- ``bulk``: the default of ``partyrules import`` for a big file — past ``BULK_FROM`` facts the import
  holds none of them and judges the single-fact rules as a check of the months it touched
  (:mod:`engine.judge_import`);
- ``per_fact``: every added fact held and judged on its own subject (what every import did before).

Prints wall and CPU seconds, peak RSS of the child (and of the import's worker processes), the findings
judged, the violations stored, and the ratios to ``no_judge`` — measured in one command, so the ratios
hold on a noisy machine.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from engine.matching import run_forked  # noqa: E402

MODES = ("no_judge", "bulk", "per_fact")


def _import(path: Path, db: Path, mode: str) -> dict[str, Any]:
    import sqlalchemy as sa

    from engine.app import build_app
    from engine.auth.principal import Principal
    from engine.judge_import import BULK_FROM
    from engine.service.facts_ops import submit_facts
    from engine.violations.tables import Violation
    from facts.streaming import read_chunks

    app = build_app(f"sqlite:///{db}")
    app.init()
    t0, cpu0 = time.perf_counter(), time.process_time()
    got = submit_facts(
        app,
        Principal.local("bench"),
        read_chunks(path),
        source=str(path),
        judge=mode != "no_judge",
        bulk_from=BULK_FROM if mode == "bulk" else None,
    )
    wall = time.perf_counter() - t0
    with app.db.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(Violation.__table__)).scalar()  # type: ignore[attr-defined]
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    j = got.judgement
    return {
        "facts": got.report.added,
        "wall_s": round(wall, 1),
        "cpu_s": round(time.process_time() - cpu0 + kids.ru_utime + kids.ru_stime, 1),
        "peak_rss_mb": round(own.ru_maxrss / 1024),
        "workers_peak_rss_mb": round(kids.ru_maxrss / 1024),
        "findings": len(j.findings) if j else 0,
        "violations_stored": stored,
        "bulk_months": len(j.bulk_months) if j else 0,
        "errors": j.errors if j else [],
    }


@click.command()
@click.option("--data", type=click.Path(file_okay=False), help="A folder holding facts.jsonl.")
@click.option("--scale", type=float, default=0.01, show_default=True, help="Generate a province of this scale.")
@click.option("--modes", default=",".join(MODES), show_default=True, help="Which ways, in this order.")
def main(data: str | None, scale: float, modes: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(data) if data else Path(tmp) / "province"
        if not data:
            generate(scale, 2017, folder)
        path = folder / "facts.jsonl"
        out: dict[str, Any] = {}
        for mode in modes.split(","):
            (out[mode],) = run_forked(_import, [(path, Path(tmp) / f"{mode}.db", mode)], f"import ({mode})")
            print(json.dumps({mode: out[mode]}), file=sys.stderr, flush=True)
    base = out.get("no_judge")
    if base:
        for mode in out:
            out[mode]["wall_over_no_judge"] = round(out[mode]["wall_s"] / base["wall_s"], 2)
            out[mode]["rss_over_no_judge"] = round(out[mode]["peak_rss_mb"] / base["peak_rss_mb"], 2)
    print(json.dumps(out, indent=1, ensure_ascii=False))
    if "bulk" in out and "per_fact" in out and out["bulk"]["violations_stored"] != out["per_fact"]["violations_stored"]:
        sys.exit("bulk and per-fact judging stored different numbers of violations")


if __name__ == "__main__":
    main()
