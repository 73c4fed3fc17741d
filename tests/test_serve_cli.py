"""`partyrules serve` prepares the process before it listens: the pack loaded, the start-up heap frozen."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from engine.cli import main


def test_serve_loads_the_pack_and_freezes_the_start_up_heap_before_listening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run(api: Any, host: str, port: int, log_level: str) -> None:  # instead of listening
        seen.update(frozen=gc.get_freeze_count(), host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", run)
    db = f"sqlite:///{tmp_path / 'p.db'}"
    assert CliRunner().invoke(main, ["--db", db, "init"]).exit_code == 0
    assert gc.get_freeze_count() == 0  # nothing else in the suite freezes
    try:
        result = CliRunner().invoke(
            main, ["--db", db, "serve", "--port", "8123"], catch_exceptions=False
        )
    finally:
        gc.unfreeze()  # process-wide: the rest of the suite runs as before
    assert result.exit_code == 0, result.output
    assert seen["frozen"] > 1000  # the modules, the app and the compiled pack
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)


def test_prepare_to_serve_loads_the_pack_in_use(tmp_path: Path) -> None:
    from engine.app import build_app
    from engine.web.api import prepare_to_serve

    app = build_app(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        prepare_to_serve(app)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert str(app.pack_root()) in app._packs  # loaded once, before the first request
