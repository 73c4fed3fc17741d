"""No secret in any table: the scheduler's job store keeps the database URL without its password,
account passwords are argon2 hashes, tokens SHA-256 digests (PostgreSQL, whose URL can carry a password)."""

from __future__ import annotations

import urllib.parse

import sqlalchemy as sa
from conftest import PG_URL

from engine.app import build_app
from engine.auth import accounts
from engine.auth.principal import Principal
from engine.schedule.config import schedule_settings
from engine.schedule.jobs import restore_password
from engine.schedule.runner import build_scheduler, plan_jobs, resolve_target, sync_jobs
from facts.db import create_schema_engine

SECRET = "s3cret-db-pw"


def test_no_password_or_token_is_stored_anywhere():
    engine, schema, drop = create_schema_engine(PG_URL, prefix="secrets")
    engine.dispose()
    url = sa.make_url(PG_URL).set(password=SECRET)  # noqa  # trust auth on the test server accepts any password
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    full = url.render_as_string(hide_password=False)
    try:
        app = build_app(full)
        app.init()
        settings = schedule_settings(app.config)
        scheduler = build_scheduler(app.db, settings)
        scheduler.start(paused=True)
        try:
            target = resolve_target(app, full)
            sync_jobs(scheduler, plan_jobs(settings, app.config.alerts), target)
        finally:
            scheduler.shutdown(wait=False)
        root = Principal.local("root")
        accounts.add_user(app.db, root, "alice", ["admin"], "alice-password-1")
        token = accounts.create_token(app.db, root, "alice")
        assert target.db_url.startswith("postgresql") and SECRET not in target.db_url and urllib.parse.quote(SECRET) not in target.db_url
        with app.db.connect() as conn:
            tables = conn.execute(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"), {"s": schema}
            ).scalars().all()
            assert "schedule_job" in tables and "account" in tables
            dump = b""
            for table in tables:
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    dump += b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row)
            jobs = conn.execute(sa.text("SELECT count(*) FROM schedule_job")).scalar()
        assert jobs and jobs > 0
        for secret in (SECRET, "alice-password-1", token):
            assert secret.encode() not in dump, f"{secret} is stored"
        # the job finds the password again where it came from, the environment or the config
        assert restore_password(target.db_url, None, {"PARTYRULES_DB": full}) == full
        assert restore_password(target.db_url, None, {}) == target.db_url
        app.db.dispose()
    finally:
        drop()
