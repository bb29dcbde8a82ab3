"""Alembic environment: async (asyncpg), URL from the caller or ATLAS_DATABASE_URL, serialised by an advisory lock."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from atlas_log_server.db.engine import sqlalchemy_url
from atlas_log_server.db.models import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("ATLAS_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set ATLAS_DATABASE_URL or run `atlas-log-server migrate`")
    return sqlalchemy_url(str(url))


def _run(connection: Connection) -> None:
    # Deployers racing each other serialise here instead of applying a revision twice.
    connection.execute(text("SET lock_timeout = '30s'"))
    connection.execute(text("SELECT pg_advisory_lock(hashtext('atlas-log-alembic'))"))
    try:
        context.configure(connection=connection, target_metadata=target_metadata, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(hashtext('atlas-log-alembic'))"))
        connection.commit()


async def _main() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_main())
