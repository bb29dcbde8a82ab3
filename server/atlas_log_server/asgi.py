"""ASGI entry point for process managers (``uvicorn --factory atlas_log_server.asgi:app``): settings from env."""

from __future__ import annotations

from fastapi import FastAPI

from atlas_log_server.app import create_app
from atlas_log_server.config import Settings


def app() -> FastAPI:
    return create_app(Settings())
