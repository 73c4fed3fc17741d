"""Developers' entry: ``python -m engine.migrations revision -m "add x" [--autogenerate]``, ``heads``.

``revision --autogenerate`` builds a scratch SQLite database by running every migration, compares it
with the models and writes the difference as a new migration in engine/migrations/versions/ (read it
and adjust: autogenerate does not see renames, and data moves are yours to write).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from engine.migrations import config, heads, run_migrations
from facts.db import make_engine


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.migrations")
    sub = parser.add_subparsers(dest="command", required=True)
    rev = sub.add_parser("revision", help="write a new migration after the current head")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true", help="diff the models against the migrations")
    sub.add_parser("heads", help="print the head revision(s)")
    args = parser.parse_args(argv)
    if args.command == "heads":
        print("\n".join(heads()))
        return
    cfg = config()
    with tempfile.TemporaryDirectory() as tmp:
        db = make_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        with db.begin() as conn:
            run_migrations(conn)
            cfg.attributes["connection"] = conn
            written = command.revision(cfg, args.message, autogenerate=args.autogenerate)
        db.dispose()
    for script in written if isinstance(written, list) else [written]:
        if script is not None:
            _tidy(script.path)


def _tidy(path: str) -> None:
    """The project's ruff rules hold for migrations too: sort imports, drop unused ones, format."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        print(f"ruff not found: run `ruff check --fix {path} && ruff format {path}` yourself")
        return
    subprocess.run([ruff, "check", "--fix", "--quiet", path], check=False)
    subprocess.run([ruff, "format", "--quiet", path], check=False)


if __name__ == "__main__":
    main()
