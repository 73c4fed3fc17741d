"""``partyrules schedule`` and ``partyrules alerts``: CliRunner, the APScheduler job store, real subprocesses."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.app import build_app
from engine.cli import alerts_cmds, main, schedule_cmds
from engine.config import load_config
from engine.schedule.config import schedule_settings
from engine.schedule.runner import (
    JOBSTORE_TABLE,
    build_scheduler,
    list_jobs,
    plan_jobs,
    resolve_target,
    serve,
    sync_jobs,
)
from engine.violations.tables import Violation

REPO = Path(__file__).resolve().parent.parent
# the same entry point as the `partyrules` script, with these commands registered whether or not the lead has yet
SCRIPT = (
    "from engine.cli import main, schedule_cmds, alerts_cmds\n"
    "for m in (schedule_cmds, alerts_cmds):\n"
    "    m.register(main)\n"
    "main()\n"
)


@pytest.fixture
def cli() -> click.Group:
    for module in (schedule_cmds, alerts_cmds):
        module.register(main)
    return main


def write_config(tmp_path: Path, schedule: str = "", name: str = "partyrules.toml") -> Path:
    tomorrow = dt.date.today() + dt.timedelta(days=2)
    path = tmp_path / name
    path.write_text(
        f"""
database = "sqlite:///{tmp_path / "p.db"}"

[alerts.channels.log]
type = "file"
path = "{tmp_path / "alerts.jsonl"}"
digest = true

[[alerts.routes]]
channel = "log"

[schedule]
since = {tomorrow}   # no period falls due during the test
{schedule}
""",
        encoding="utf-8",
    )
    app = build_app(config_path=path)  # only init and import create a database (issue 11)
    app.init()
    app.db.dispose()
    return path


def invoke(cli: click.Group, config: Path, *args: str) -> click.testing.Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


# -- CliRunner ----------------------------------------------------------------------------


def test_every_command_has_help(cli: click.Group) -> None:
    for group in (schedule_cmds.schedule, alerts_cmds.alerts):
        assert group.help
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            assert command.help and "Example" in command.help, name


def test_list_before_the_first_run_shows_the_configured_times(cli: click.Group, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[schedule.escalate]\ncron = "15 9 * * *"\n[schedule.digest]\nenabled = false\n'
    )
    result = invoke(cli, config, "schedule", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    jobs = {j["name"]: j for j in data["jobs"]}
    assert data["periods"]["since"] == (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert data["periods"]["pending"] == [] and len(data["periods"]["upcoming"]) == 3
    assert list(jobs) == ["periods", "daily", "escalate", "dispatch"]
    assert not any(j["stored"] for j in jobs.values())
    nxt = dt.datetime.fromisoformat(jobs["escalate"]["next_run"])
    assert (nxt.hour, nxt.minute, nxt.utcoffset()) == (9, 15, dt.timedelta(hours=8))
    table = invoke(cli, config, "schedule", "list")
    assert "尚未启动" in table.output and "逾期升级" in table.output and "下一批到期" in table.output


def test_bad_cron_is_refused_at_start(cli: click.Group, tmp_path: Path) -> None:
    config = write_config(tmp_path, '[schedule.periods]\ncron = "30 25 * * *"\n')
    for args in (["schedule", "run"], ["schedule", "run", "--once"], ["schedule", "list"]):
        result = invoke(cli, config, *args)
        assert result.exit_code == 1
        assert "schedule.periods.cron" in result.output and "'30 25 * * *'" in result.output
    assert (
        not (tmp_path / "p.db").exists()
        or JOBSTORE_TABLE
        not in sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")).get_table_names()
    )


def test_run_once_without_period_checks(cli: click.Group, tmp_path: Path) -> None:
    config = write_config(tmp_path, "[schedule.daily]\nenabled = false\n")
    result = invoke(cli, config, "schedule", "run", "--once")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "periods: 没有到期未判定的期间"
    assert "digest: log：已加入发送队列" in result.output
    assert "dispatch: 送达 1" in result.output  # the digest, delivered to the file channel
    again = invoke(cli, config, "schedule", "run", "--once")
    assert "digest: log：今日已发送过" in again.output and "dispatch: 送达 0" in again.output
    assert len((tmp_path / "alerts.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_alerts_digest_and_dispatch(cli: click.Group, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = invoke(cli, config, "alerts", "digest", "--day", "2024-03-02")
    assert result.exit_code == 0 and "2024-03-02 每日汇总：log：已加入发送队列" in result.output
    assert "今日已发送过" in invoke(cli, config, "alerts", "digest", "--day", "2024-03-02").output
    out = invoke(cli, config, "alerts", "dispatch", "--once").output
    assert "送达 1" in out
    line = json.loads((tmp_path / "alerts.jsonl").read_text(encoding="utf-8"))
    assert line["kind"] == "digest" and "2024-03-01" in line["title"]
    bad = CliRunner().invoke(cli, ["--config", str(config), "alerts", "digest", "--day", "March"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


# -- the job store ----------------------------------------------------------------------


def test_sync_jobs_keeps_unchanged_jobs_and_follows_the_config(tmp_path: Path) -> None:
    def sync(config_text: str) -> dict[str, str]:
        app = build_app(config_path=write_config(tmp_path, config_text))
        app.init()
        settings = schedule_settings(app.config)
        scheduler = build_scheduler(app.db, settings)
        scheduler.start(paused=True)
        try:
            return sync_jobs(scheduler, plan_jobs(settings, app.config.alerts), resolve_target(app))
        finally:
            scheduler.shutdown(wait=False)

    assert set(sync("").values()) == {"added"}
    assert set(sync("").values()) == {"kept"}
    changed = sync('[schedule.digest]\ncron = "0 6 * * *"\n[schedule.daily]\nenabled = false\n')
    assert changed == {
        "periods": "kept",
        "escalate": "kept",
        "digest": "replaced",
        "dispatch": "kept",
        "daily": "removed",
    }


def test_a_run_missed_while_down_runs_once_on_start(tmp_path: Path) -> None:
    schedule = "[schedule.periods]\nenabled = false\n[schedule.daily]\nenabled = false\n[schedule.dispatch]\nenabled = false\n"
    config = write_config(tmp_path, schedule)
    app = build_app(config_path=config)

    def run_until(condition: object, timeout: float = 10.0) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=serve, args=(app, stop))
        thread.start()
        try:
            deadline = time.monotonic() + timeout
            while not (callable(condition) and condition()) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()

    run_until(lambda: True)  # first start: stores the jobs, their next runs in the future
    with app.db.connect() as conn:
        stored = dict(conn.execute(sa.text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all())
    assert set(stored) == {"partyrules.escalate", "partyrules.digest"}
    assert min(stored.values()) > time.time()
    # the scheduler went down before both were due, an hour ago
    scheduler = build_scheduler(app.db, schedule_settings(app.config))
    scheduler.start(paused=True)
    for job in scheduler.get_jobs():
        job.modify(next_run_time=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    scheduler.shutdown(wait=False)
    shown = {j.name: j for j in list_jobs(app)}  # looking does not consume the missed runs
    assert shown["digest"].stored and shown["digest"].next_run < dt.datetime.now(dt.UTC)  # type: ignore[operator]
    alerts = tmp_path / "alerts.jsonl"
    run_until(lambda: False, timeout=3)  # digest ran on start; escalate ran too (nothing to escalate)
    with app.db.connect() as conn:
        digests = conn.execute(
            sa.text("SELECT count(*) FROM alert_outbox WHERE kind = 'digest'")
        ).scalar_one()
        after = dict(conn.execute(sa.text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all())
        assert conn.execute(sa.select(sa.func.count()).select_from(Violation.__table__)).scalar_one() == 0
    assert digests == 1
    assert min(after.values()) > time.time()  # rescheduled to their next time, not run again
    assert not alerts.exists()  # dispatch is disabled: the digest waits in the outbox, nothing lost


# -- real subprocesses ----------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("PARTYRULES_CONFIG", None)
    env.pop("PARTYRULES_DB", None)
    return env


def test_run_once_as_a_subprocess(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--config", str(config), "schedule", "run", "--once"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "periods: 没有到期未判定的期间" in done.stdout
    assert "daily: 已完成（检查运行 #1）" in done.stdout  # the real pack and check, on an empty database
    assert "每日汇总" in done.stderr  # the jobs log to stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("SELECT count(*) FROM schedule_period_done")).scalar_one() == 0
    engine.dispose()
    assert JOBSTORE_TABLE not in tables  # --once runs the jobs without the job store


def test_sigterm_stops_a_running_schedule_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "--config", str(config), "schedule", "run"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "调度已启动" in line or not line:
                break
        assert any("调度已启动" in line for line in lines), "".join(lines)
        time.sleep(0.5)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            # a running check's child gets SIGKILL 10 s after SIGTERM (engine.schedule.isolate): a clean stop
            # comes well within that plus the shutdown; on a loaded machine a stop takes seconds, not 30
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            pytest.fail("schedule run did not stop within 30 s of SIGTERM:\n" + "".join(lines) + err)
        assert time.monotonic() - started < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "调度已停止" in err
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        ids = set(conn.execute(sa.text(f"SELECT id FROM {JOBSTORE_TABLE}")).scalars())
    engine.dispose()
    assert ids == {f"partyrules.{n}" for n in ("periods", "daily", "escalate", "digest", "dispatch")}


def test_example_config_runs_list(cli: click.Group, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    example = REPO / "docs" / "partyrules.example.toml"
    assert load_config(example).database == "sqlite:///partyrules.db"
    assert CliRunner().invoke(cli, ["--config", str(example), "init"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--config", str(example), "schedule", "list", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [j["name"] for j in json.loads(result.output)["jobs"]] == [
        "periods",
        "daily",
        "escalate",
        "digest",
        "dispatch",
    ]
