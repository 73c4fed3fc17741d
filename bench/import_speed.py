"""Import throughput: facts per second from a JSON Lines file into a fresh SQLite file and PostgreSQL schema.

    python bench/import_speed.py --scale 0.1                      # generate, then both databases
    python bench/import_speed.py --data /tmp/prov01 --db sqlite   # reuse a generated province
    python bench/import_speed.py --scale 0.1 --db sqlite --profile /tmp/import.prof

A province is generated with :func:`bench.generate.generate` (into a temporary
folder unless ``--data`` names one that already holds ``facts.jsonl``).  For
each database the whole file goes through the public path —
:func:`facts.streaming.read_chunks` then :meth:`facts.store.FactStore.import_items`
— into an empty store (a new SQLite file; a new PostgreSQL schema, dropped
afterwards), then the same file is imported a second time, which must be a
no-op.  Prints one JSON object: per database, facts, seconds and facts/s of
the first import and of the re-import, and the added/unchanged/rejected
counts, and the peak RSS so far (the importing process or a worker, whichever is larger),
and each apart: ``importer_peak_rss_mb`` is the peak of this process during that
import alone (sampled from /proc; on Linux), ``worker_peak_rss_mb`` the largest
finished worker's.  ``--admit`` passes an ``admit`` that refuses nothing, as the
CLI's import does (the registry objects' texts are then kept for it).
``--profile`` writes a cProfile of the first SQLite import (read it
with ``python -m pstats``).  Exit status 1 if an import rejected anything or
the re-import added or corrected anything: a fast wrong import fails.
"""

from __future__ import annotations

import cProfile
import json
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from facts.db import create_schema_engine, make_engine  # noqa: E402
from facts.store import FactStore  # noqa: E402
from facts.streaming import read_chunks  # noqa: E402

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def _sqlite(workdir: Path) -> Iterator[sa.Engine]:
    path = workdir / "import_speed.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _postgresql(url: str) -> Iterator[sa.Engine]:
    engine, _schema, drop = create_schema_engine(url, "bench_import")
    try:
        yield engine
    finally:
        drop()


def _peak_rss_mb() -> float:
    """Peak resident memory so far of this process and of its finished children (the workers), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


class _RssSampler:
    """The peak resident memory of this process while it runs, sampled from /proc/self/status every 20 ms."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            with open("/proc/self/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
        except OSError:  # not Linux
            self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.02)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak_kb / 1024, 1) if self.peak_kb else None


def _cpu_seconds() -> float:
    """User and system CPU time of this process and of its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _admit_all(batch: list[Any]) -> list[Any]:
    return []


def _timed_import(
    store: FactStore, path: Path, profile: Path | None = None, processes: int | None = None, admit: bool = False
) -> dict[str, Any]:
    profiler = cProfile.Profile() if profile else None
    cpu_before = _cpu_seconds()
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    with _RssSampler() as sampler:
        report = store.import_items(
            read_chunks(path), files=str(path), keep_stored=False, processes=processes,
            admit=_admit_all if admit else None,
        )
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(str(profile))
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    total = report.added + report.unchanged + report.corrected + report.rejected
    return {
        "facts": total,
        "seconds": round(seconds, 2),
        "facts_per_s": round(total / seconds),
        "cpu_seconds": round(cpu, 2),  # this process and its workers: on a shared machine, steadier than the wall
        "facts_per_cpu_s": round(total / cpu) if cpu else None,
        "added": report.added,
        "unchanged": report.unchanged,
        "corrected": report.corrected,
        "rejected": report.rejected,
        "peak_rss_mb": _peak_rss_mb(),  # of the whole run so far (the largest process)
        "importer_peak_rss_mb": sampler.peak_mb,  # this process, during this import
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }


def _measure(
    engine: sa.Engine, path: Path, profile: Path | None, processes: int | None, reimport: bool = True,
    admit: bool = False,
) -> tuple[dict[str, Any], bool]:
    store = FactStore(engine)
    store.create_schema()
    first = _timed_import(store, path, profile, processes, admit)
    if not reimport:
        return {"import": first}, first["rejected"] == 0
    again = _timed_import(store, path, processes=processes, admit=admit)
    ok = first["rejected"] == 0 and again["added"] == 0 and again["corrected"] == 0 and again["rejected"] == 0
    return {"import": first, "reimport": again}, ok


@click.command()
@click.option(
    "--scale", type=float, default=0.1, show_default=True, help="Province size (1 = about 1.8M facts)."
)
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding facts.jsonl; generated there first if it has none.",
)
@click.option(
    "--db",
    "which",
    type=click.Choice(["both", "sqlite", "postgresql"]),
    default="both",
    show_default=True,
)
@click.option(
    "--pg-url", default=PG_URL, show_default=True, help="PostgreSQL server (a fresh schema is used)."
)
@click.option(
    "--profile",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a cProfile of the first import (the first database measured) here.",
)
@click.option(
    "--processes",
    type=int,
    default=None,
    help="Worker processes preparing the lines (default: one a core; 1: all in the importing process).",
)
@click.option("--no-reimport", is_flag=True, help="Skip the second (no-op) import.")
@click.option("--admit", is_flag=True, help="Pass an admit that refuses nothing, as the CLI's import does.")
def main(
    scale: float,
    data: Path | None,
    which: str,
    pg_url: str,
    profile: Path | None,
    processes: int | None,
    no_reimport: bool,
    admit: bool,
) -> None:
    """Print import facts/s for SQLite and PostgreSQL on a generated province."""
    with tempfile.TemporaryDirectory(prefix="import_speed_") as tmp:
        folder = data or Path(tmp) / "province"
        path = folder / "facts.jsonl"
        if not path.exists():
            generate(scale, 2017, folder)
        summary: dict[str, Any] = {"file": str(path), "megabytes": round(path.stat().st_size / 1e6, 1)}
        good = True
        if which in ("both", "sqlite"):
            with _sqlite(Path(tmp)) as engine:
                summary["sqlite"], ok = _measure(engine, path, profile, processes, not no_reimport, admit)
                good = good and ok
                profile = None
        if which in ("both", "postgresql"):
            with _postgresql(pg_url) as engine:
                summary["postgresql"], ok = _measure(engine, path, profile, processes, not no_reimport, admit)
                good = good and ok
        click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        if not good:
            sys.exit(1)


if __name__ == "__main__":
    main()
