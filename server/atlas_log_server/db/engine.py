"""Connections: the asyncpg pool the repository uses, and URLs for Alembic (SQLAlchemy)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from atlas_log_server.config import Settings
from atlas_log_server.db.embedded import EmbeddedPostgres
from atlas_log_server.diagnosis import OperatorError


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand) when none is configured."""
    if settings.database_url:
        return settings.database_url
    return EmbeddedPostgres(settings.data_dir).start()


class DatabaseUnreachable(OperatorError):
    """The database did not answer, or refused to let the log in; the message names it (never its password)."""


def shown(url: str) -> str:
    """``url`` fit for a message: its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_reachable(url: str, timeout_s: float = 10) -> None:
    """Connect to the database at ``url`` once (blocking): raises :class:`DatabaseUnreachable` saying why not."""

    async def connect() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=timeout_s)
        await conn.close()

    try:
        asyncio.run(connect())
    except TimeoutError as exc:
        raise DatabaseUnreachable(f"the database at {shown(url)} did not answer in {timeout_s:g} s") from exc
    except ConnectionRefusedError as exc:
        raise DatabaseUnreachable(f"nothing answers at {shown(url)}: is PostgreSQL running there?") from exc
    except OSError as exc:
        raise DatabaseUnreachable(f"cannot reach the database at {shown(url)}: {exc.strerror or exc}") from exc
    except asyncpg.PostgresError as exc:  # a database that does not exist, a wrong password, no permission
        raise DatabaseUnreachable(f"the database at {shown(url)} refused the connection: {exc}") from exc


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes plain ``postgresql://`` URLs."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1).replace("postgres://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy needs the driver named: ``postgresql+asyncpg://``."""
    return "postgresql+asyncpg://" + asyncpg_dsn(url).split("://", 1)[1]


async def create_pool(url: str, size: int, min_size: int = 1) -> asyncpg.Pool:
    """A connection pool with the session settings every connection of the log uses (a replica's keeps no
    connection open by itself, ``min_size=0``, so a replica that is down is not redialled by the pool)."""
    return await asyncpg.create_pool(
        asyncpg_dsn(url),
        min_size=min_size,
        max_size=size,
        command_timeout=60,
        server_settings={"application_name": "atlas-log", "lock_timeout": "30s", "statement_timeout": "60s"},
    )


# PostgreSQL is down, restarting, out of connections or cut off: the request may succeed if retried later.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # A pooled connection whose server went away mid-operation is left in this state; a retry gets another.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


# The database refused what one row holds (a data exception, a violated constraint, an index entry too large),
# or asyncpg could not encode a value for it (its client-side DataError, an InterfaceError and a ValueError).
_ROW_REFUSED: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
    UnicodeError,
)


def row_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the database refusing a row's contents: the same write without that row may succeed."""
    return isinstance(exc, _ROW_REFUSED) or (isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError))


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot serve right now (answered with 503 and Retry-After)."""
    return isinstance(exc, UNAVAILABLE)
