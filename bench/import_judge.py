"""Judging on import: a bulk import with the single-fact rules judged vs the same import with ``--no-judge``.

    python bench/import_judge.py --data /tmp/prov001      # a province made by bench/generate.py
    python bench/import_judge.py --scale 0.01

Both runs import the same ``facts.jsonl`` into fresh SQLite files in the same process, one after
the other, through the public path (read_file → import_items, then judge_report as ``partyrules
import`` does); prints seconds for each, the ratio, and the findings judged.  Issue 11 measured
890 s vs 22 s (40×) on 214k facts before judging went in bulk.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import click

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from engine.app import build_app  # noqa: E402
from engine.submit import judge_report  # noqa: E402
from facts.readers import read_file  # noqa: E402


def _import(path: Path, db: Path, judge: bool) -> dict[str, float | int]:
    app = build_app(f"sqlite:///{db}")
    app.init()
    start = time.perf_counter()
    report = app.facts.import_items(read_file(path), files=str(path))
    stored = time.perf_counter() - start
    findings = 0
    if judge:
        judgement = judge_report(app, report)
        if judgement.errors:
            raise SystemExit(f"judging failed: {judgement.errors}")
        findings = len(judgement.findings)
    total = time.perf_counter() - start
    app.db.dispose()
    return {"facts": report.added, "seconds": round(total, 2), "store_seconds": round(stored, 2), "findings": findings}


@click.command()
@click.option("--data", type=click.Path(file_okay=False), help="A folder holding facts.jsonl.")
@click.option("--scale", type=float, default=0.01, show_default=True, help="Generate a province of this scale.")
def main(data: str | None, scale: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(data) if data else Path(tmp) / "province"
        if not data:
            generate(scale, 2017, folder)
        path = folder / "facts.jsonl"
        no_judge = _import(path, Path(tmp) / "plain.db", judge=False)
        judged = _import(path, Path(tmp) / "judged.db", judge=True)
    print(json.dumps({"no_judge": no_judge, "judged": judged,
                      "ratio": round(float(judged["seconds"]) / float(no_judge["seconds"]), 2)}, indent=1))


if __name__ == "__main__":
    main()
