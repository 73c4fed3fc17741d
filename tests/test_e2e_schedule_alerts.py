"""Issue 4's acceptance, as a user would do it: the scheduler against the sample organisation delivers
its alerts to a webhook and a mailbox exactly once; re-running delivers nothing new; a violation is
walked through the workflow from the CLI; a webhook that fails at first loses nothing.

A temp folder holds a ``partyrules.toml`` with a JSON webhook (a local http.server) and an SMTP
mailbox (a local aiosmtpd), both from tests/test_alerts_channels.py.  The sample is imported with
``partyrules import`` and the schedule run with ``partyrules schedule run --once --now …`` in real
subprocesses.  ``--now 2018-03-01T01:30`` is the periods job's cron time on 1 March 2018; with
``grace_days = 40`` the whole of 2017 is due then and January 2018 is not (the sample has no 2018
records: judged, every branch would be flagged for it), so the check is the documented one — 2017 as
of 2018-03-01, 50 findings — plus the daily as-of run's two 2018 findings (two committees still past
their term on 1 March 2018).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_alerts_channels import SmtpServer, WebhookServer, serve_smtp, serve_webhook, subject_of

from engine.cli import main
from engine.cli.schedule_cmds import parse_moment
from engine.sample import sample_expected, write_sample

REPO = Path(__file__).resolve().parent.parent
NOW = "2018-03-01T01:30"
ENTRY = "from engine.cli import main; main()"  # the `partyrules` console script's entry point
DB_FILES = ("sample.db", "sample.db-wal", "sample.db-shm")
# The daily as-of run (2017..2018 as of 2018-03-01) also finds these committees past their term in 2018.
DAILY_2018 = {"org.election.overdue|org:dc|2018", "org.election.overdue|org:oc|2018"}
SERIOUS = ("serious", "critical")


def expected_keys() -> set[str]:
    return {f"{f.rule}|{f.subject_type}:{f.subject_id}|{f.period}" for f in sample_expected()} | DAILY_2018


def write_config(
    folder: Path, hook_url: str, smtp_port: int, retry_base: float = 30.0, retry_max: float = 3600.0
) -> Path:
    path = folder / "partyrules.toml"
    path.write_text(
        f"""
database = "sqlite:///{folder / "sample.db"}"

[check]
grace_days = 40                     # on {NOW} all of 2017 is due, 2018-01 not yet

[alerts.dispatcher]
retry_base_seconds = {retry_base}
retry_max_seconds = {retry_max}

[alerts.channels.jiwei_group]       # every new violation, as JSON
type = "webhook"
url = "{hook_url}"
timeout_seconds = 5

[alerts.channels.jiwei_mail]        # serious and critical ones, and the daily digest
type = "smtp"
host = "127.0.0.1"
port = {smtp_port}
sender = "partyrules@example.org"
to = ["jiwei@example.org"]
timeout_seconds = 5
digest = true

[[alerts.routes]]
channel = "jiwei_group"
kinds = ["new"]

[[alerts.routes]]
channel = "jiwei_mail"
min_severity = "serious"

[schedule]
since = 2017-02-15                  # the first period falling due from then on is 2017-01
max_backlog = 17                    # the whole of 2017 at once, one alert per violation (not a backfill)
""",
        encoding="utf-8",
    )
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PARTYRULES_CONFIG", None)
    env.pop("PARTYRULES_DB", None)
    return env


def partyrules(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``partyrules --config CONFIG ARGS…`` in a real subprocess, run from the config's folder."""
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, "--config", str(config), *args],
        cwd=config.parent,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"partyrules {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def invoke(config: Path, *args: str) -> str:
    """The same command in-process (CliRunner), for the quick workflow and retry steps."""
    result = CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose database holds the sample, imported with `partyrules import` (judged on submit).

    Routing is decided when an alert is enqueued, so the channels and routes are configured before
    the import; the tests then point the same channel names at their own live receivers.
    """
    folder = tmp_path_factory.mktemp("imported")
    write_sample(folder / "sample.jsonl")
    config = write_config(folder, "http://127.0.0.1:9/unused", 9)
    done = partyrules(config, "import", "sample.jsonl", "--quiet")
    assert "added 2024," in done.stdout, done.stdout
    return folder


@dataclass
class Setup:
    config: Path
    db: sa.Engine
    hook: WebhookServer
    mail: SmtpServer


@pytest.fixture
def setup(imported: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    for name in DB_FILES:
        if (imported / name).exists():
            shutil.copy(imported / name, tmp_path / name)
    retry: dict[str, float] = getattr(request, "param", {})
    with serve_webhook() as hook, serve_smtp() as mail:
        config = write_config(tmp_path, hook.url, mail.port, **retry)
        db = sa.create_engine(f"sqlite:///{tmp_path / 'sample.db'}")
        try:
            yield Setup(config, db, hook, mail)
        finally:
            db.dispose()


def scalar(db: sa.Engine, sql: str) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def column(db: sa.Engine, sql: str) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(sql)).scalars())


def mail_ids(mail: SmtpServer) -> list[int]:
    return [int(m["X-Partyrules-Alert-Id"]) for m in mail.handler.messages]


def test_schedule_delivers_each_alert_once_and_rerunning_delivers_nothing(setup: Setup) -> None:
    s = setup
    run = partyrules(s.config, "schedule", "run", "--once", "--now", NOW)
    assert run.stdout.startswith("periods: 已判定 2017（运行 #"), run.stdout
    assert "dispatch: 送达 " in run.stdout and "失败待重试 0" in run.stdout
    assert "送达 0，" in partyrules(s.config, "alerts", "dispatch", "--once").stdout  # all delivered already

    keys = set(column(s.db, "SELECT key FROM violation"))
    assert keys == expected_keys()
    assert set(column(s.db, "SELECT DISTINCT status FROM violation")) == {"open"}

    # the webhook: exactly one POST per violation, each its own alert id, all accepted
    posts = [r["body"] for r in s.hook.requests]
    assert [r["status"] for r in s.hook.requests] == [200] * len(keys)
    assert Counter(p["key"] for p in posts) == Counter(keys)
    assert {p["kind"] for p in posts} == {"new"}
    assert len({r["headers"]["Idempotency-Key"] for r in s.hook.requests}) == len(keys)

    # the mailbox: exactly one message per serious or critical violation, plus the day's digest
    serious = set(column(s.db, "SELECT key FROM violation WHERE severity IN ('serious', 'critical')"))
    assert len(serious) >= 10
    routed = column(s.db, "SELECT outbox_id FROM alert_delivery WHERE channel = 'jiwei_mail'")
    got = mail_ids(s.mail)
    assert sorted(got) == sorted(routed)  # each exactly once
    with s.db.connect() as conn:
        by_id: dict[int, str] = dict(conn.execute(sa.text("SELECT id, key FROM alert_outbox")).all())
        kinds: dict[int, str] = dict(conn.execute(sa.text("SELECT id, kind FROM alert_outbox")).all())
    assert {by_id[i] for i in got if kinds[i] == "new"} == serious
    (digest,) = [m for m in s.mail.handler.messages if kinds[int(m["X-Partyrules-Alert-Id"])] == "digest"]
    assert subject_of(digest).startswith("【每日汇总】")
    assert all(
        subject_of(m).startswith(("【严重】", "【紧急】", "【每日汇总】")) for m in s.mail.handler.messages
    )
    assert scalar(s.db, "SELECT count(*) FROM alert_delivery WHERE status != 'delivered'") == 0

    # the same two commands again: nothing judged, nothing enqueued, nothing delivered
    outbox = scalar(s.db, "SELECT count(*) FROM alert_outbox")
    deliveries = scalar(s.db, "SELECT count(*) FROM alert_delivery")
    again = partyrules(s.config, "schedule", "run", "--once", "--now", NOW).stdout
    assert "periods: 没有到期未判定的期间" in again and "dispatch: 送达 0，" in again
    assert "digest: jiwei_mail：今日已发送过" in again
    assert "送达 0，" in partyrules(s.config, "alerts", "dispatch", "--once").stdout
    assert scalar(s.db, "SELECT count(*) FROM alert_outbox") == outbox
    assert scalar(s.db, "SELECT count(*) FROM alert_delivery") == deliveries
    assert len(s.hook.requests) == len(keys) and len(s.mail.handler.messages) == len(got)

    # one violation through the workflow, from the CLI
    key = min(serious)
    invoke(s.config, "users", "add", "李纪检", "--role", "inspector", "--no-password")
    assert "待处理 → 已确认" in invoke(s.config, "violations", "ack", key, "--by", "李纪检")
    assigned = invoke(
        s.config,
        "violations",
        "assign",
        key,
        "--by",
        "李纪检",
        "--owner",
        "王书记",
        "--deadline",
        "2018-04-30",
        "--plan",
        "补开会议并完善记录",
    )
    assert "已确认 → 整改中" in assigned
    resolved = invoke(s.config, "violations", "resolve", key, "--by", "李纪检", "--evidence", "补开会议纪要")
    assert "整改中 → 已解决" in resolved
    shown = json.loads(invoke(s.config, "violations", "show", key, "--format", "json"))
    assert shown["status"] == "resolved" and shown["owner"] == "王书记"
    assert [(e["action"], e["actor"]) for e in shown["log"]][-3:] == [
        ("ack", "李纪检"),
        ("assign", "李纪检"),
        ("resolve", "李纪检"),
    ]
    assert shown["log"][0]["to_status"] == "open"
    table = invoke(s.config, "violations", "show", key)
    assert "已解决" in table and "王书记" in table and "补开会议纪要" in table
    assert scalar(s.db, "SELECT count(*) FROM alert_outbox") == outbox  # the workflow itself alerts no one


@pytest.mark.parametrize("setup", [{"retry_base": 0.2, "retry_max": 1.0}], indirect=True)
def test_a_webhook_failing_at_first_loses_nothing(setup: Setup) -> None:
    s = setup
    s.hook.plan = [500, 500, 500]
    first = invoke(s.config, "schedule", "run", "--once", "--now", NOW)
    assert "失败待重试 1" in first  # the webhook's first alert failed; its others wait with it
    deadline = time.monotonic() + 20
    while scalar(s.db, "SELECT count(*) FROM alert_delivery WHERE status = 'pending'"):
        assert time.monotonic() < deadline, "deliveries still pending after 20 s"
        time.sleep(0.25)
        invoke(s.config, "alerts", "dispatch", "--once")

    keys = set(column(s.db, "SELECT key FROM violation"))
    assert keys == expected_keys()
    failed = [r for r in s.hook.requests if r["status"] == 500]
    accepted = [r for r in s.hook.requests if r["status"] == 200]
    assert len(failed) == 3 and len(s.hook.requests) == 3 + len(keys)
    assert Counter(r["body"]["key"] for r in accepted) == Counter(keys)  # nothing lost, nothing twice
    retried = {r["headers"]["Idempotency-Key"] for r in failed}
    assert len(retried) == 1 and retried <= {r["headers"]["Idempotency-Key"] for r in accepted}
    attempts = column(s.db, "SELECT attempts FROM alert_delivery WHERE channel = 'jiwei_group'")
    assert sorted(attempts)[-1] == 4 and Counter(attempts)[1] == len(keys) - 1
    assert scalar(s.db, "SELECT count(*) FROM alert_delivery WHERE last_error IS NOT NULL") == 0
    routed = column(s.db, "SELECT outbox_id FROM alert_delivery WHERE channel = 'jiwei_mail'")
    assert sorted(mail_ids(s.mail)) == sorted(routed)  # the mailbox was never held up by the webhook


def test_now_is_read_in_the_schedule_time_zone_and_only_with_once(tmp_path: Path) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    assert parse_moment("2018-03-01T01:30", zone) == dt.datetime(2018, 3, 1, 1, 30, tzinfo=zone)
    assert parse_moment("2018-03-01", zone) == dt.datetime(2018, 3, 1, tzinfo=zone)
    assert parse_moment("2018-02-28T17:30+00:00", zone).astimezone(zone).day == 1
    config = write_config(tmp_path, "http://127.0.0.1:9/unused", 9)
    runner = CliRunner()
    bad = runner.invoke(main, ["--config", str(config), "schedule", "run", "--once", "--now", "March"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    alone = runner.invoke(main, ["--config", str(config), "schedule", "run", "--now", "2018-03-01"])
    assert alone.exit_code == 2 and "--now only goes with --once" in alone.output
    assert not (tmp_path / "sample.db").exists()  # refused before anything ran
