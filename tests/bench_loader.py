"""bench/ is not an installed package: tests load its modules from the source tree."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
