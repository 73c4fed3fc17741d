"""The standard rule pack, shipped as package data (YAML files beside this one)."""

from pathlib import Path

STANDARD_PACK = Path(__file__).resolve().parent
