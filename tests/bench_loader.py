"""bench/ is not an installed package: tests load its modules from the source tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.app import App

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_bench(name: str, alias: str | None = None) -> ModuleType:
    """``bench/<name>.py`` as a module (a fresh one under ``alias``: a test may change its settings)."""
    key = alias or f"bench_{name}"
    spec = importlib.util.spec_from_file_location(key, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module  # dataclasses of the module look themselves up here
    spec.loader.exec_module(module)
    return module


def bench_app(where: Path, scale: float, seed: int, edit: Callable[[Path, int], None] | None = None) -> App:
    """A fresh SQLite app in ``where`` holding a generated province (``edit`` may change its facts file
    first), every fact imported."""
    from engine.app import build_app
    from facts.readers import read_file

    load_bench("generate", f"bench_generate_{where.name}").generate(scale, seed, where)
    if edit is not None:
        edit(where / "facts.jsonl", seed)
    app = build_app(str(where / "bench.db"))
    app.init()
    assert app.facts.import_items(read_file(where / "facts.jsonl")).rejected == 0
    return app
