"""Where the conformance vectors from other projects live (never copied into this repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def vectors_dir(*parts: str) -> Path:
    """The vectors folder ``parts`` below ``$ATLAS_VECTORS`` (default ``../shared/vectors``).

    Skips the calling test, naming the folder, when it is absent.
    """
    base = Path(os.environ.get("ATLAS_VECTORS", ROOT.parent / "shared" / "vectors"))
    path = base.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"conformance vectors not found at {path}")
    return path


def vector_files(*parts: str, pattern: str = "*.json") -> list[Path]:
    """Files below a vectors folder, for parametrisation; empty when the folder is absent."""
    base = Path(os.environ.get("ATLAS_VECTORS", ROOT.parent / "shared" / "vectors")).joinpath(*parts)
    return sorted(base.rglob(pattern)) if base.is_dir() else []
