"""Alembic's entry point when developers run the alembic CLI or ``python -m engine.migrations``.

partyrules itself runs migrations through :func:`engine.migrations.run_migrations` and never reads
this file.  The database is the connection handed over in ``config.attributes["connection"]``, else
``-x db=URL``, else ``PARTYRULES_DB``.
"""

from __future__ import annotations

from alembic import context

from engine.migrations import configure_kwargs
from facts.db import make_engine


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, **configure_kwargs())
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("partyrules migrations run online only (against a database)")

_given = context.config.attributes.get("connection")
if _given is not None:
    _run(_given)
else:
    _engine = make_engine(context.get_x_argument(as_dictionary=True).get("db"))
    with _engine.begin() as _conn:
        _run(_conn)
    _engine.dispose()
