"""Recorded test data."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any


@functools.cache
def entry_bodies() -> dict[str, Any]:
    """``entry_bodies.json``: entry bodies as the log built them (see its ``about``)."""
    data: dict[str, Any] = json.loads((Path(__file__).parent / "entry_bodies.json").read_text())
    return data
