"""CLI start-up: the commands are found lazily, and ``--help`` / ``--version`` import none of the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from engine.cli import COMMANDS, main

REPO = Path(__file__).resolve().parent.parent
HEAVY = ["sqlalchemy", "sqlmodel", "durable", "plotly", "openpyxl", "numpy", "pydantic", "rich", "lark", "yaml", "apscheduler"]
EVERY_COMMAND = {
    "init", "import", "export", "history", "orgs", "members", "sample", "add",
    "check", "runs", "rules", "violations", "report", "schedule", "alerts", "users", "audit", "serve",
}  # fmt: skip


def _heavy_modules_after(code: str) -> list[str]:
    script = (
        "import sys\n"
        f"{code}\n"
        f"print(__import__('json').dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "code",
    [
        "import engine.cli",
        "from engine.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from engine.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass",
    ],
    ids=["import", "help", "version"],
)
def test_start_up_imports_none_of_the_heavy_libraries(code: str) -> None:
    assert _heavy_modules_after(code) == []


def test_a_command_imports_what_it_needs_when_it_runs() -> None:
    loaded = _heavy_modules_after(
        "from engine.cli import main\ntry:\n    main(['rules', 'list'])\nexcept SystemExit:\n    pass"
    )
    assert "yaml" in loaded and "pydantic" in loaded  # the check above is able to see imports


def test_help_lists_every_command() -> None:
    assert set(COMMANDS) == EVERY_COMMAND
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1].split()
    assert set(listed) >= EVERY_COMMAND


@pytest.mark.parametrize("name", sorted(EVERY_COMMAND))
def test_every_command_resolves_and_has_help(name: str) -> None:
    ctx = click.Context(main)
    command = main.get_command(ctx, name)
    assert isinstance(command, click.Command) and command.name == name
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output, result.output


def test_violations_has_its_workflow_commands() -> None:
    result = CliRunner().invoke(main, ["violations", "--help"])
    for sub in ("list", "show", "ack", "assign", "resolve", "waive", "reopen"):
        assert f"  {sub} " in result.output, result.output


def test_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(main, ["--version"], prog_name="partyrules")
    assert result.exit_code == 0 and result.output == f"partyrules, version {version('partyrules')}\n"


def test_choices_loaded_from_the_library_still_check_values(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "x.db")
    bad_status = runner.invoke(main, ["--db", db, "violations", "list", "--status", "nope"])
    assert bad_status.exit_code == 2 and "'open'" in bad_status.output and "'waived'" in bad_status.output
    bad_type = runner.invoke(main, ["--db", db, "history", "nope", "k"])
    assert bad_type.exit_code == 2 and "'meeting'" in bad_type.output and "'dues'" in bad_type.output
    assert runner.invoke(main, ["--db", db, "init"]).exit_code == 0  # only init creates a database (issue 11)
    assert runner.invoke(main, ["--db", db, "violations", "list", "--status", "open"]).exit_code == 0
