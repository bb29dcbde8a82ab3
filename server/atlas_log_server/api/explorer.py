"""The regulator's explorer at ``/explorer/`` (where ``/`` leads): static pages (``atlas_log_server/explorer``)
that verify every answer in the browser against a key the reader pins. Every path under ``/explorer/`` that is
not an asset is the one page, which routes itself (so artifact, entry and log links can be shared)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from atlas_log_server.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS = {
    "app.js": "text/javascript",
    "verify.js": "text/javascript",
    "lineage.js": "text/javascript",
    "style.css": "text/css",
}
HEADERS = {
    # Our own files only: no inline script, no other origin, no framing.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _folder() -> Path:
    return Path(__file__).resolve().parent.parent / "explorer"


def _file(name: str, media_type: str) -> Response:
    return Response((_folder() / name).read_bytes(), media_type=media_type, headers=HEADERS)


@router.get("/explorer/assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("not-found", f"the explorer has no asset {name!r}")
    return _file(name, ASSETS[name])


@router.get("/")
async def home() -> Response:
    """The log's address in a browser: its explorer (the API's own description is at ``/docs``)."""
    return RedirectResponse("/explorer/", status_code=302)


@router.get("/explorer")
@router.get("/explorer/")
@router.get("/explorer/{path:path}")
async def page(path: str = "") -> Response:
    return _file("index.html", "text/html; charset=utf-8")
