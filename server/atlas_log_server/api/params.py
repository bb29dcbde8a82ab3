"""Strict integer parameters for the read endpoints (query parameters parsed without the framework's
validation layer, and log indices)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from atlas_log_server.errors import InvalidRequest

MAX_INT = (1 << 63) - 1


def int_param(request: Request, name: str, minimum: int = 0) -> int:
    """A required decimal query parameter in ``[minimum, 2**63 - 1]``; 400 ``invalid-request`` otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        raise InvalidRequest("invalid-request", f"query parameter {name!r} is required")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise InvalidRequest("invalid-request", f"{name} must be a decimal integer >= {minimum}, got {raw[:40]!r}")
    value = int(raw)
    if not minimum <= value <= MAX_INT:
        raise InvalidRequest("invalid-request", f"{name} must be between {minimum} and {MAX_INT}")
    return value


def check_index(index: int) -> None:
    """A log index (a path parameter) is in ``[0, 2**63 - 1]``; 400 ``invalid-index`` otherwise."""
    if not 0 <= index <= MAX_INT:
        raise InvalidRequest("invalid-index", f"a log index is an integer from 0 to {MAX_INT}")


def int_params_doc(*specs: tuple[str, int, str]) -> dict[str, Any]:
    """OpenAPI ``parameters`` for :func:`int_param` arguments: ``(name, minimum, description)``."""
    return {
        "parameters": [
            {
                "name": n,
                "in": "query",
                "required": True,
                "description": d,
                "schema": {"type": "integer", "minimum": m, "maximum": MAX_INT},
            }
            for n, m, d in specs
        ]
    }
