"""Load on the HTTP service: concurrent clients submitting meetings, each judged on submit.

    .venv/bin/python bench/serve.py --scale 0.1                       # SQLite file
    .venv/bin/python bench/serve.py --scale 0.1 --db postgresql://postgres@127.0.0.1:5432/test

Builds a fresh store from the synthetic province (``bench/generate.py``), gives 50
branch secretaries an account and a token, starts ``partyrules serve`` on a free
loopback port in its own process, then:

1. the baseline: the same submissions through the library in this process
   (``submit_facts``: store + audit + judge), one after the other;
2. one HTTP client, one request after the other (the HTTP overhead);
3. ``--clients`` concurrent clients (httpx, asyncio), each submitting new committee
   meetings of its own branch until ``--requests`` in all or ``--seconds`` have passed.

Prints a JSON summary: throughput and p50/p99 latency of each phase and the ratios
against the baseline.  Bounded in count and time; the server is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generate  # noqa: E402
from engine.app import App, build_app  # noqa: E402
from engine.auth import accounts  # noqa: E402
from engine.auth.principal import Principal  # noqa: E402
from engine.config import Config  # noqa: E402
from engine.service.facts_ops import submit_facts  # noqa: E402
from engine.violations.store import ViolationStore  # noqa: E402
from facts.db import create_schema_engine  # noqa: E402
from facts.errors import Location  # noqa: E402
from facts.readers import read_file  # noqa: E402
from facts.store import FactStore  # noqa: E402

ROOT = Principal.local("bench")


def _stats(times: list[float], wall: float) -> dict[str, Any]:
    times = sorted(times)
    n = len(times)
    return {
        "requests": n,
        "per_s": round(n / wall, 1) if wall else None,
        "p50_ms": round(statistics.median(times) * 1000, 1) if n else None,
        "p99_ms": round(times[int(0.99 * (n - 1))] * 1000, 1) if n else None,
        "max_ms": round(times[-1] * 1000, 1) if n else None,
    }


def _store(db: str | None, workdir: Path) -> tuple[App, str, str, Any]:
    """A fresh app, the URL the server process opens, a description, and the cleanup."""
    if db and db.startswith("postgresql"):
        engine, schema, drop = create_schema_engine(db, "bserve")
        cfg = Config()
        url = sa.make_url(
            db if "+" in db.split("://")[0] else db.replace("postgresql://", "postgresql+psycopg2://")
        )
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
        return (
            App(cfg, engine, FactStore(engine), ViolationStore(engine, cfg.alerts)),
            url.render_as_string(hide_password=False),
            f"{db} (schema {schema})",
            drop,
        )
    path = workdir / "serve.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return build_app(str(path)), str(path), str(path), lambda: None


def _branches(app: App, n: int) -> list[tuple[str, list[str]]]:
    with app.db.connect() as conn:
        orgs = (
            conn.execute(sa.text("SELECT id FROM org WHERE kind = 'branch' ORDER BY id")).scalars().all()[:n]
        )
        rows = conn.execute(
            sa.text("SELECT id, org FROM member WHERE status = 'full' AND org IN :o").bindparams(
                sa.bindparam("o", expanding=True)
            ),
            {"o": list(orgs)},
        ).all()
    members: dict[str, list[str]] = {o: [] for o in orgs}
    for mid, org in rows:
        members[org].append(mid)
    return [(o, sorted(m)) for o, m in members.items() if m]


def _meeting(org: str, people: list[str], ident: str, rnd: random.Random) -> dict[str, Any]:
    present = people[: max(1, len(people) - rnd.choice([0, 0, 1, 2]))]
    return {
        "type": "meeting",
        "id": ident,
        "org": org,
        "kind": "committee_meeting",
        "date": f"2017-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        "attendees": present,
        "minutes": {
            "time": "15:00-16:30",
            "recorder": present[0],
            "agenda": "研究支部工作",
            "content": f"{ident}：传达学习上级精神，研究部署本支部党建工作，讨论发展党员事项。",
            "outcome": "形成决议",
        },
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _clients(
    port: int,
    tokens: list[str],
    work: list[tuple[str, list[str]]],
    total: int,
    seconds: float,
    seed: int,
    tag: str,
) -> tuple[list[float], int, float]:
    times: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=len(tokens) + 5)

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        rnd = random.Random(seed * 1000 + k)
        org, people = work[k % len(work)]
        headers = {"Authorization": f"Bearer {tokens[k % len(tokens)]}"}
        for i in counter:
            if time.monotonic() > deadline:
                return
            body = _meeting(org, people, f"{tag}-{k}-{i}", rnd)
            t0 = time.perf_counter()
            r = await http.post(f"http://127.0.0.1:{port}/api/facts", json=body, headers=headers)
            times.append(time.perf_counter() - t0)
            if r.status_code != 200 or r.json()["added"] != 1:
                errors += 1

    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(k, http) for k in range(len(tokens))))
    return times, errors, time.perf_counter() - t0


@click.command()
@click.option("--scale", type=float, default=0.1, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--db", help="Database URL (default: a fresh SQLite file in --out).")
@click.option("--clients", type=int, default=50, show_default=True)
@click.option(
    "--requests", "total", type=int, default=2000, show_default=True, help="Submissions in all (50 clients)."
)
@click.option(
    "--seconds", type=float, default=120, show_default=True, help="Stop the clients after this long."
)
@click.option(
    "--baseline", type=int, default=200, show_default=True, help="Submissions in the baseline phases."
)
@click.option("--out", type=click.Path(file_okay=False), default="out/bench", show_default=True)
def main(
    scale: float, seed: int, db: str | None, clients: int, total: int, seconds: float, baseline: int, out: str
) -> None:
    """Run the service benchmark and print a JSON summary."""
    workdir = Path(out) / f"scale-{scale:g}-seed-{seed}"
    workdir.mkdir(parents=True, exist_ok=True)
    facts_path = workdir / "facts.jsonl"
    if not (workdir / "expected_findings.jsonl").exists():
        generate(scale, seed, workdir)
    app, url, where, cleanup = _store(db, workdir)
    summary: dict[str, Any] = {"scale": scale, "db": where, "clients": clients}
    server = None
    try:
        app.init()
        t0 = time.perf_counter()
        report = submit_facts(app, ROOT, read_file(facts_path), source=str(facts_path), judge=False).report
        summary["import"] = {"facts": report.added, "seconds": round(time.perf_counter() - t0, 1)}
        work = _branches(app, clients)
        tokens = []
        for org, _people in work:
            accounts.add_user(app.db, ROOT, f"sec-{org}", [f"secretary@{org}"], None)
            tokens.append(accounts.create_token(app.db, ROOT, f"sec-{org}"))
        rnd = random.Random(seed)
        times = []
        t0 = time.perf_counter()
        for i in range(baseline):
            org, people = work[i % len(work)]
            t1 = time.perf_counter()
            who = accounts.principal_for(app.db, f"sec-{org}")
            got = submit_facts(app, who, [(Location("bench", 1), _meeting(org, people, f"lib-{i}", rnd))])
            times.append(time.perf_counter() - t1)
            assert got.report.added == 1, got.report.problems
        summary["library_sequential"] = _stats(times, time.perf_counter() - t0)
        app.db.dispose()

        port = _free_port()
        exe = str(Path(sys.executable).parent / "partyrules")
        server = subprocess.Popen(
            [exe, "--db", url, "serve", "--port", str(port), "--insecure-cookies"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PARTYRULES_AS": ""},
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.3)
        one, errors1, wall1 = asyncio.run(_clients(port, tokens[:1], work, baseline, seconds, seed, "one"))
        summary["http_1_client"] = {**_stats(one, wall1), "errors": errors1}
        many, errors, wall = asyncio.run(_clients(port, tokens, work, total, seconds, seed, "many"))
        summary[f"http_{len(tokens)}_clients"] = {**_stats(many, wall), "errors": errors}
        lib = summary["library_sequential"]
        summary["ratios"] = {
            "http_1_p50_over_library_p50": round(summary["http_1_client"]["p50_ms"] / lib["p50_ms"], 2),
            f"http_{len(tokens)}_throughput_over_library": round(
                summary[f"http_{len(tokens)}_clients"]["per_s"] / lib["per_s"], 2
            ),
        }
        summary["p99_goal_100ms_met"] = summary[f"http_{len(tokens)}_clients"]["p99_ms"] < 100
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        app.db.dispose()
        cleanup()
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
