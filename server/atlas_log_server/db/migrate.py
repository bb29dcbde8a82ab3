"""Apply the Alembic migrations: the only way the schema changes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from atlas_log_server.db.engine import asyncpg_dsn

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The migrations folder: inside the package in a wheel, at the repository root in a checkout."""
    for candidate in (_PACKAGE_DIR / "migrations", _PACKAGE_DIR.parent.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("Alembic migrations folder not found next to the package or at the repository root")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (blocking; runs its own event loop, so call it from a thread). Logs one
    line when the schema changed (Alembic's own lines, one per migration, are quieted with its set-up)."""
    before = current_revision(url)
    command.upgrade(alembic_config(url), revision)
    after = current_revision(url)
    if after != before:
        _log.info("migrated the database schema from %s to %s", before or "an empty database", after)


def downgrade(url: str, revision: str = "base") -> None:
    before = current_revision(url)
    command.downgrade(alembic_config(url), revision)
    after = current_revision(url)
    if after != before:
        _log.info("migrated the database schema down from %s to %s", before, after or "base (no tables)")


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url`` (``None`` before the first migration)."""

    async def read() -> str | None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            if await conn.fetchval("SELECT to_regclass('alembic_version')") is None:
                return None
            found = await conn.fetchval("SELECT version_num FROM alembic_version")
            return None if found is None else str(found)
        finally:
            await conn.close()

    return asyncio.run(read())


def logged_entries(url: str) -> int:
    """How many entries the log in the database at ``url`` holds (0 before the first migration)."""

    async def count() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            if await conn.fetchval("SELECT to_regclass('log_state')") is None:
                return 0
            return int(await conn.fetchval("SELECT coalesce(max(size), 0) FROM log_state"))
        finally:
            await conn.close()

    return asyncio.run(count())
