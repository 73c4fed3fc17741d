"""Alert delivery speed: throughput through the outbox, and the time from a period closing to its alerts.

    python bench/alerts_speed.py                       # 2,000 alerts per channel, SQLite files in a temp dir
    python bench/alerts_speed.py --alerts 5000 --out /tmp/alerts-bench

Prints one JSON object with two parts.

``throughput`` — for each channel (the ``file`` channel, JSONL synced to disk per alert, and a ``webhook``
posting JSON to a local ``http.server`` in a thread, one connection per alert as the channel does):
N synthetic alerts are enqueued into the outbox of a fresh SQLite file in one transaction, then
:class:`engine.alerts.dispatcher.Dispatcher` runs batch after batch (``batch_size`` 100, the default)
until nothing is pending.  Reported: alerts enqueued per second, alerts delivered per second, ms per
alert, and a check that the receiver got each alert exactly once.  A third row, ``null (outbox
floor)``, delivers to a channel that does nothing: the outbox's own cost (claim, one committed update
per delivery).

``latency`` — the sample organisation (``facts/sample.py``, 2017) is imported into a fresh SQLite file
(without submit-time judging), then the year is replayed as the scheduler lives it: for each month, "now"
is 01:30 Asia/Shanghai (the periods job's default cron) on the day the month becomes judgeable (its end
plus ``grace_days`` + 1), and the wall time is measured from the start of the periods job — a fresh
app reading the pack, as the stored job ``run_job`` does, then
:func:`engine.schedule.jobs.check_closed_periods`, which also judges a quarter or the year closing the
same day — to the last delivery of the alerts it enqueued (the dispatcher run until the outbox is
drained; every alert goes to a file channel and a local webhook).  Reported per closing and as
min / median / max.  In a running ``schedule run`` the dispatch job polls every ``every_seconds``
(default 5 s), so add up to that interval to the figures for the delay a person sees.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from sqlmodel import Session

if __package__ in (None, ""):  # run as a script: make the project's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.alerts.channels import Channel  # noqa: E402
from engine.alerts.dispatcher import Dispatcher  # noqa: E402
from engine.alerts.outbox import Alert, AlertDelivery, Delivery, enqueue  # noqa: E402
from engine.app import App, build_app  # noqa: E402
from engine.periods import period_of, shift  # noqa: E402
from engine.sample import write_sample  # noqa: E402
from engine.schedule.jobs import check_closed_periods, due_date  # noqa: E402
from facts.readers import read_file  # noqa: E402

ZONE = ZoneInfo("Asia/Shanghai")
_D = AlertDelivery.__table__  # type: ignore[attr-defined]


class Receiver:
    """A local webhook: answers 200 to every POST and remembers the idempotency keys it saw."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()
        self.url = ""

    def record(self, key: str) -> None:
        with self._lock:
            self.keys.append(key)


@contextmanager
def serve_webhook() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            receiver.record(self.headers["Idempotency-Key"])
            body = b'{"errcode": 0}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()


def write_config(
    folder: Path, channels: dict[str, dict[str, Any]], grace_days: int = 10, extra: str = ""
) -> Path:
    """A partyrules.toml for ``folder``'s own SQLite file, routing every alert to every channel."""
    lines = [f'database = "sqlite:///{folder / "bench.db"}"', "", "[check]", f"grace_days = {grace_days}", ""]
    for name, settings in channels.items():
        lines.append(f"[alerts.channels.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
        lines.append("")
    for name in channels:
        lines += ["[[alerts.routes]]", f'channel = "{name}"', ""]
    path = folder / "partyrules.toml"
    path.write_text("\n".join(lines) + extra, encoding="utf-8")
    return path


def fresh_app(
    folder: Path, channels: dict[str, dict[str, Any]], grace_days: int = 10, extra: str = ""
) -> App:
    """An app on a new SQLite file in ``folder``, configured by a partyrules.toml written there."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(folder / "bench.db") + suffix).unlink(missing_ok=True)
    app = build_app(config_path=write_config(folder, channels, grace_days, extra))
    app.init()
    return app


def pending(app: App) -> int:
    with app.db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(_D.c.status == "pending")).scalar_one())


class NullChannel:
    """Accepts every alert and does nothing: what is left is the outbox's own cost (claim, mark)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, delivery: Delivery) -> None:
        return None


def drain(app: App, channels: dict[str, Channel] | None = None) -> int:
    """Run the dispatcher until nothing is pending; the number delivered.  A failure is a bench error."""
    dispatcher = Dispatcher(app.db, app.config.alerts, channels)
    delivered = 0
    while True:
        report = dispatcher.run_once()
        if report.failed or report.deferred:
            raise RuntimeError(f"delivery failed during the benchmark: {report.errors[:3]}")
        delivered += report.delivered
        if report.claimed == 0:
            return delivered


def synthetic_alert(i: int, now: dt.datetime) -> Alert:
    """An alert the size of a real one (a monthly org finding with its evidence)."""
    return Alert(
        kind="new",
        key=f"branch.committee_meeting.monthly|org:b{i:05d}|2017-06",
        severity="warning",
        rule="branch.committee_meeting.monthly",
        org=f"b{i:05d}",
        org_path=["root", f"c{i // 50:03d}", f"b{i:05d}"],
        title=f"第{i}党支部 2017年6月 未召开支部委员会会议",
        message=f"第{i}党支部2017年6月未召开支部委员会会议（应至少1次，实际0次）",
        payload={
            "rule": "branch.committee_meeting.monthly",
            "subject": {"type": "org", "id": f"b{i:05d}"},
            "period": "2017-06",
            "evidence": {
                "observed": {"meetings": 0},
                "threshold": {"at_least": 1},
                "condition": "meetings < at_least",
                "facts": [],
            },
            "basis": "《中国共产党支部工作条例（试行）》第十二条",
        },
        created_at=now,
    )


def throughput(
    folder: Path, channel: str, settings: dict[str, Any], n: int, null: bool = False
) -> dict[str, Any]:
    """Enqueue ``n`` alerts for ``channel``, then deliver them all; ``null`` swaps in a no-op channel."""
    app = fresh_app(folder, {channel: settings})
    now = dt.datetime.now(dt.UTC)
    alerts = [synthetic_alert(i, now) for i in range(n)]
    t0 = time.perf_counter()
    with Session(app.db) as session:
        for alert in alerts:
            enqueue(session, alert, app.config.alerts)
        session.commit()
    enqueued = time.perf_counter() - t0
    t0 = time.perf_counter()
    delivered = drain(app, {channel: NullChannel(channel)} if null else None)
    seconds = time.perf_counter() - t0
    app.db.dispose()
    return {
        "alerts": n,
        "delivered": delivered,
        "enqueue_per_s": round(n / enqueued),
        "dispatch_seconds": round(seconds, 2),
        "delivered_per_s": round(delivered / seconds, 1),
        "ms_per_alert": round(1000 * seconds / max(delivered, 1), 2),
    }


def import_sample(app: App, folder: Path) -> int:
    path = folder / "sample.jsonl"
    write_sample(path)
    report = app.facts.import_items(read_file(path), files=str(path))
    if report.rejected:
        raise RuntimeError(f"the sample did not import cleanly: {report.rejected} rejected")
    return int(report.added)


def latency(folder: Path, receiver: Receiver, grace_days: int = 10) -> dict[str, Any]:
    channels: dict[str, dict[str, Any]] = {
        "archive": {"type": "file", "path": str(folder / "alerts.jsonl")},
        "hook": {"type": "webhook", "url": receiver.url, "timeout_seconds": 5},
    }
    # since: the first period falling due from then on is 2017-01
    app = fresh_app(folder, channels, grace_days, "[schedule]\nsince = 2017-02-01\n")
    facts = import_sample(app, folder)
    config = app.config.source
    app.db.dispose()
    closings: list[dict[str, Any]] = []
    month = period_of(dt.date(2017, 1, 1), "month")
    for _ in range(12):
        due = due_date(month, grace_days)
        now = dt.datetime.combine(due, dt.time(1, 30), ZONE)
        before = len(receiver.keys)
        t0 = time.perf_counter()
        app = build_app(config_path=config)  # as the stored job does: a fresh app, the pack read anew
        app.pack()
        t_pack = time.perf_counter()
        report = check_closed_periods(app, now)
        t1 = time.perf_counter()
        delivered = drain(app)
        t2 = time.perf_counter()
        left = pending(app)
        app.db.dispose()
        closings.append(
            {
                "closing": month.label,
                "now": now.isoformat(),
                "checked": list(report.checked),
                "alerts": len(receiver.keys) - before,
                "deliveries": delivered,  # each alert to the file channel and to the webhook
                "pack_load_seconds": round(t_pack - t0, 3),
                "check_seconds": round(t1 - t_pack, 3),
                "dispatch_seconds": round(t2 - t1, 3),
                "close_to_last_delivery_seconds": round(t2 - t0, 3),
                "pending_after": left,
            }
        )
        month = shift(month, 1)
    totals = [c["close_to_last_delivery_seconds"] for c in closings]
    return {
        "facts": facts,
        "grace_days": grace_days,
        "closings": closings,
        "seconds": {
            "min": min(totals),
            "median": round(statistics.median(totals), 3),
            "max": max(totals),
        },
        "alerts": sum(int(c["alerts"]) for c in closings),
        "deliveries": sum(int(c["deliveries"]) for c in closings),
        "pending_after": sum(int(c["pending_after"]) for c in closings),
    }


@click.command()
@click.option("--alerts", "n", default=2000, show_default=True, help="Synthetic alerts per channel.")
@click.option("--out", type=click.Path(file_okay=False), help="Work folder (default: a temp dir).")
def main(n: int, out: str | None) -> None:
    """Measure alert throughput per channel and period-close-to-delivery latency; print JSON."""
    with tempfile.TemporaryDirectory(prefix="alerts-bench-") as tmp, serve_webhook() as receiver:
        work = Path(out) if out else Path(tmp)
        file_path = work / "throughput-file" / "alerts.jsonl"
        result: dict[str, Any] = {"database": "SQLite file (WAL)", "throughput": {}}
        result["throughput"]["file"] = throughput(
            work / "throughput-file", "archive", {"type": "file", "path": str(file_path)}, n
        )
        lines = file_path.read_text(encoding="utf-8").splitlines()
        result["throughput"]["file"]["exactly_once"] = (
            len(lines) == n == len({json.loads(line)["alert_id"] for line in lines})
        )
        result["throughput"]["webhook"] = throughput(
            work / "throughput-webhook", "hook", {"type": "webhook", "url": receiver.url}, n
        )
        counts = Counter(receiver.keys)
        result["throughput"]["webhook"]["exactly_once"] = len(counts) == n and set(counts.values()) == {1}
        receiver.keys.clear()
        result["throughput"]["null (outbox floor)"] = throughput(
            work / "throughput-null",
            "void",
            {"type": "file", "path": str(work / "unused.jsonl")},
            n,
            null=True,
        )
        result["latency"] = latency(work / "latency", receiver)
        result["latency"]["webhook_exactly_once"] = (
            len(receiver.keys) == len(set(receiver.keys)) == int(result["latency"]["deliveries"]) // 2
        )
        print(json.dumps(result, ensure_ascii=False, indent=2))
        ok = result["throughput"]["file"]["exactly_once"] and result["throughput"]["webhook"]["exactly_once"]
        if not (ok and result["latency"]["webhook_exactly_once"] and result["latency"]["pending_after"] == 0):
            sys.exit(1)


if __name__ == "__main__":
    main()
