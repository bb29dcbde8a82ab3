"""The application factory: ``create_app(settings)`` wires storage, signer, sequencer and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography import x509
from fastapi import FastAPI

from atlas_log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from atlas_log.errors import Error
from atlas_log.merkle import EMPTY_ROOT
from atlas_log_server.access import AccessControl, development_admin_token
from atlas_log_server.admission import Admission
from atlas_log_server.api import admin, artifacts, disclosures, entries, evidence, explorer, health, pack, proofs, tiles
from atlas_log_server.api.document import install_document
from atlas_log_server.api.limits import BodyLimitMiddleware
from atlas_log_server.api.problems import install_handlers
from atlas_log_server.attest.setup import build_attestation
from atlas_log_server.config import Settings
from atlas_log_server.context import LogContext
from atlas_log_server.db import migrate
from atlas_log_server.db.access import AccessRepository
from atlas_log_server.db.collateral import CollateralRepository
from atlas_log_server.db.disclosures import DisclosureRepository
from atlas_log_server.db.engine import create_pool, resolve_database_url
from atlas_log_server.db.replicas import Replicas
from atlas_log_server.db.repository import Repository, StorageError
from atlas_log_server.db.vmap import MapRepository
from atlas_log_server.diagnosis import OperatorError, StartupFailureReport
from atlas_log_server.log.completeness import Completeness
from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, TreeHead
from atlas_log_server.log.map_builder import MapBuilder
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.log.publisher import Publisher, WitnessEndpoint
from atlas_log_server.log.receipts import Receipts
from atlas_log_server.log.sequencer import Sequencer
from atlas_log_server.log.signer import CheckpointSigner, CommandSigner, SignerUnavailable, load_signer
from atlas_log_server.metrics import Metrics
from atlas_log_server.metrics import router as metrics_router
from atlas_log_server.read_routing import ReadRouting
from atlas_log_server.request_log import RequestIdMiddleware, configure_logging
from atlas_log_server.vault import CommandKek, FileKek, Vault, key_file

_log = logging.getLogger(__name__)


def load_x509_roots(path: Path | None) -> list[x509.Certificate]:
    """The configured roots for certificate-signed entries (none unless configured)."""
    return [] if path is None else x509.load_pem_x509_certificates(path.read_bytes())


async def _existing_checkpoint(repo: Repository, unavailable: SignerUnavailable) -> bytes:
    """The database's latest checkpoint when the signer cannot sign at start (else ``unavailable`` is raised)."""
    try:
        existing = (await repo.state()).checkpoint
    except StorageError:
        existing = None
    if existing is None:
        raise unavailable
    _log.error("serving reads only until the external signer answers: %s", unavailable)
    return existing


async def _recorded_tree_held(record: LastSignedFile, repo: Repository, size: int) -> TreeHead | None:
    """The record's newest tree if the database (larger) has a checkpoint of exactly it, else ``None``."""
    try:
        found = await asyncio.to_thread(record.read)
    except RecordRefused:
        return None  # adopt() reports it
    if found is None or found.signed.size >= size:
        return None
    held = await repo.checkpoint_by_root(found.signed.root)
    return found.signed if held is not None and held[0] == found.signed.size else None


def _admin_token_sha256(settings: Settings) -> str | None:
    """The configured admin token's digest; a development log (simulated TDX) without one makes its own."""
    if settings.admin_token_sha256 is None and settings.tdx_mode == "simulated":
        return development_admin_token(settings.data_dir)[1]
    return settings.admin_token_sha256


def create_app(settings: Settings) -> FastAPI:
    """Build the ASGI app. Nothing connects or starts until the lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = await asyncio.to_thread(resolve_database_url, settings)
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate.upgrade, url)
        signer, created = load_signer(settings)
        if created:
            _log.warning("generated a new checkpoint signing key in %s", settings.signing_key_path)
        pool = await create_pool(url, settings.pool_size)
        closers: list[Callable[[], None]] = []  # external commands to stop with the app
        try:
            repo = Repository(pool, settings.origin)
            try:
                empty = await asyncio.to_thread(sign_checkpoint, Checkpoint(settings.origin, 0, EMPTY_ROOT), signer)
            except SignerUnavailable as exc:
                # A log that has its checkpoints serves reads without the signer; submissions get 503 until
                # it answers again. A new log cannot start without its first checkpoint.
                empty = await _existing_checkpoint(repo, exc)
            state = await repo.init_log(empty)
            try:
                open_checkpoint(state.checkpoint or b"", signer.verifier)
            except Error as exc:
                raise OperatorError(
                    f"the log's latest checkpoint was not signed by the key in {settings.signing_key_path}; "
                    "refusing to serve this database with another key"
                ) from exc
            record = LastSignedFile.beside(settings.signing_key_path, signer.verifier.vkey)
            checkpoint_signer = CheckpointSigner(signer, record)
            # Under the tree-state lock no other server is between signing a batch and committing it, so a
            # pending checkpoint over the database's tree is one that nobody is still committing.
            async with repo.batch() as tx:
                locked = await tx.lock_state()
                refusal = await asyncio.to_thread(
                    checkpoint_signer.adopt,
                    Checkpoint(settings.origin, locked.size, locked.root_hash),
                    await _recorded_tree_held(record, repo, locked.size),
                )
            if refusal is not None and state.frozen_note is None:  # reads are served; batches are refused
                _log.error("refusing writes: %s", refusal)
            sequencer = Sequencer(
                repo,
                checkpoint_signer,
                max_batch=settings.batch_max_size,
                max_age_s=settings.batch_max_age_ms / 1000,
                max_pending=settings.max_pending,
                metrics=metrics,
            )
            attestation = await asyncio.to_thread(
                build_attestation, settings, CollateralRepository(pool), repo, metrics
            )
            proof_service = ProofService(repo, settings.tile_cache_tiles, metrics)
            maps = MapRepository(pool)
            key_dir = settings.disclosure_key_dir
            assert key_dir is not None  # resolved by Settings
            kek_command = settings.disclosure_kek_command
            vault = await asyncio.to_thread(
                lambda: Vault(
                    CommandKek(kek_command, settings.disclosure_kek_timeout_s)
                    if kek_command
                    else FileKek(key_dir / "kek"),
                    key_dir / "erased",
                    key_file(key_dir / "blinding"),
                )
            )
            if isinstance(vault.wrapper, CommandKek):
                closers.append(vault.wrapper.close)
            disclosures = DisclosureRepository(pool)
            # A database restored from a backup taken before an erasure holds that entry's key again.
            again = await disclosures.erase_again(await asyncio.to_thread(vault.tombstoned))
            if again:
                _log.warning("erased the disclosures of %d entries again (a restored database held their keys)", again)
            app.state.log = LogContext(
                settings,
                repo,
                sequencer,
                proof_service,
                Admission(
                    [attestation.gate],
                    load_x509_roots(settings.x509_roots_file),
                    settings.x509_extended_key_usage,
                    vault,
                ),
                signer.verifier,
                attestation,
                metrics,
                AccessControl(
                    AccessRepository(pool),
                    require_tokens=settings.require_tokens,
                    admin_token_sha256=_admin_token_sha256(settings),
                ),
                Receipts(repo, proof_service, witnessed=bool(settings.witnesses)),
                Completeness(maps, repo, proof_service) if settings.map_interval_s else None,
                vault,
                disclosures,
            )
            tasks = [
                asyncio.create_task(sequencer.run(), name="sequencer"),
                asyncio.create_task(attestation.refresh_loop(), name="collateral-refresh"),
                asyncio.create_task(proof_service.prewarm((await repo.state()).size), name="tile-prewarm"),
            ]
            if settings.map_interval_s:
                builder = MapBuilder(maps, repo, sequencer, settings.map_interval_s)
                tasks.append(asyncio.create_task(builder.run(), name="map-builder"))
            if settings.witnesses or settings.require_fresh_nonce:
                publisher = Publisher(
                    repo,
                    app.state.log.proofs,
                    [WitnessEndpoint.parse(w) for w in settings.witnesses],
                    settings.witness_quorum,
                    settings.checkpoint_interval_s,
                    attestation.http,
                    metrics,
                    # Fresh nonces must stay obtainable from an idle log: its root is re-published twice
                    # per nonce lifetime, so a root just fetched has at least half the lifetime left.
                    republish_s=settings.nonce_max_age_s / 2 if settings.require_fresh_nonce else None,
                )
                tasks.append(asyncio.create_task(publisher.run(), name="publisher"))
            replicas = None
            if settings.read_database_urls:
                replicas = Replicas(settings.read_database_urls, settings.pool_size)
                await replicas.check()
                app.state.replicas = replicas
                tasks.append(asyncio.create_task(replicas.watch(), name="replica-watch"))
            try:
                yield
            finally:
                app.state.replicas = None
                if replicas is not None:
                    await replicas.close()
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await attestation.http.aclose()
        finally:
            await pool.close()
            if isinstance(signer, CommandSigner):
                signer.close()
            for close in closers:
                close()

    configure_logging(settings.log_format, settings.log_level)
    metrics = Metrics()
    app = FastAPI(
        title="Atlas Log",
        version="0.1.0",
        summary="A transparency log for the machine-learning lifecycle.",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_document
        redoc_url=None,
    )
    app.add_middleware(ReadRouting)  # innermost: a read it sends again runs no other middleware twice
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(StartupFailureReport)
    app.state.metrics = metrics
    install_handlers(app)
    routers = (
        entries.router,
        evidence.router,
        proofs.router,
        tiles.router,
        health.router,
        artifacts.router,
        pack.router,
        artifacts.search_router,
        metrics_router,
        admin.router,
        disclosures.router,
        explorer.router,
    )
    for router in routers:
        app.include_router(router)
    install_document(app, settings)
    return app
