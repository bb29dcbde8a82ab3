"""``atlas-log-server``: serve, migrate, keygen, map rebuild.

An operator's mistake (a setting, a file, a port, a database that does not answer) ends a command with one
line on stderr and a non-zero exit, never a traceback (:mod:`atlas_log_server.diagnosis`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from atlas_log import __version__
from atlas_log.note import NoteSigner, Signer
from atlas_log_server.address import claim, unavailable
from atlas_log_server.config import Settings
from atlas_log_server.db import migrate
from atlas_log_server.db.engine import check_reachable, resolve_database_url
from atlas_log_server.diagnosis import OperatorError, explain, one_line
from atlas_log_server.log.signer import CommandSigner, load_or_create_key, load_signer, replace_key
from atlas_log_server.request_log import configure_logging

_log = logging.getLogger("atlas_log_server.cli")  # also when run as __main__


def _settings(**overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**values)  # type: ignore[arg-type]


def _database_url(settings: Settings) -> str:
    """The log's database, started when it is the embedded one, and answering (else one clear error)."""
    url = resolve_database_url(settings)
    check_reachable(url)
    return url


def _existing_signer(settings: Settings) -> tuple[NoteSigner, bool]:
    """The log's checkpoint key for a command that acts on an existing log: a missing key file is the wrong
    data folder, never a reason to generate a key."""
    if not settings.signer_command and not settings.signing_key_path.exists():
        raise OperatorError(
            f"no checkpoint key in {settings.signing_key_path}: point ATLAS_DATA_DIR (or ATLAS_KEY_FILE) at the "
            "log's key"
        )
    return load_signer(settings)


class _Stopped(Exception):
    """SIGINT or SIGTERM asked the server to stop (after it has)."""


def _run(app: Any, sock: socket.socket, **config: Any) -> int:
    """Serve ``app`` on ``sock`` (claimed before anything else started) until stopped; 1 if it could not start.

    uvicorn gets no log configuration of its own: its lines go through the server's formatter."""
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn says where it listens only on sockets it bound itself
                host, port = sock.getsockname()[:2]
                where = f"[{host}]" if ":" in host else host
                _log.info("listening on http://%s:%d (Ctrl+C stops)", where, port)

    def stopped(signum: int, _frame: object) -> None:
        raise _Stopped

    # uvicorn shuts down gracefully on SIGINT or SIGTERM, then raises the signal again: under the default
    # handlers that prints a KeyboardInterrupt traceback, or kills the process before the embedded PostgreSQL
    # is stopped (at exit). Here a stop that was asked for ends the command normally.
    previous = {signum: signal.signal(signum, stopped) for signum in (signal.SIGINT, signal.SIGTERM)}
    server = Server(uvicorn.Config(app, log_config=None, **config))
    try:
        server.run(sockets=[sock])
    except _Stopped:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if server.started else 1


def _client_command() -> str:
    """How to run the client from here: the script next to this interpreter, relative when it is below cwd."""
    script = Path(sys.executable).parent / "atlas-log"
    if not script.exists():
        return "atlas-log"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _serve(args: argparse.Namespace) -> int:
    from atlas_log_server.app import create_app
    from atlas_log_server.metrics import MULTIPROC_ENV
    from atlas_log_server.workers import bind_sockets, supervise

    settings = _settings(host=args.host, port=args.port, log_level=args.log_level)
    configure_logging(settings.log_format, settings.log_level)
    if args.workers < 1:
        raise OperatorError(f"--workers must be at least 1, not {args.workers}")
    # The address first: a busy port must fail before a key is generated or a database started or migrated.
    try:
        sockets = bind_sockets(settings.host, settings.port, args.workers) if args.workers > 1 else []
    except OSError as exc:
        raise unavailable(settings.host, settings.port, exc) from exc
    sock = claim(settings.host, settings.port) if not sockets else None
    port = (sock or sockets[0]).getsockname()[1]  # port 0: the one the system chose
    url = _database_url(settings)
    migrate.upgrade(url)
    signer, created = load_signer(settings)
    if isinstance(signer, CommandSigner):
        signer.close()  # the app starts its own
    where = (
        "embedded PostgreSQL in " + str(settings.data_dir / "pgdata")
        if not settings.database_url
        else "external PostgreSQL"
    )
    base = f"http://{settings.host}:{port}"
    client = _client_command()
    key_source = settings.signer_command or settings.signing_key_path
    simulated_root = None
    gpu_roots = ""
    if settings.tdx_mode == "simulated":
        from atlas_log.gpu.roots import certificate_sha256
        from atlas_log_server.attest.dev import load_or_create_gpu, load_or_create_platform

        # Made now, not at the app's start, so the banner can name the roots auditors must pass to trust them.
        simulated_root = load_or_create_platform(settings.platform_dir).root_fingerprint
        gpu = load_or_create_gpu(settings.gpu_dir)
        device_root, rim_root = certificate_sha256(gpu.device_root), certificate_sha256(gpu.rim_root)
        gpu_roots = f"--gpu-device-root {device_root} --gpu-rim-root {rim_root}"
    admin_file = None
    if settings.tdx_mode == "simulated" and settings.admin_token_sha256 is None:
        from atlas_log_server.access import development_admin_token

        admin_file = development_admin_token(settings.data_dir)[0]
    print(
        f"Atlas Log serving {settings.origin} on {base} ({where})\n"
        f"  checkpoint key {'generated' if created else 'loaded'}: {key_source}\n"
        f"  verifier key:  {signer.verifier.vkey}\n"
        + (
            f"  TDX: SIMULATED platform in {settings.platform_dir} (development only; quotes prove nothing)\n"
            f"  simulated TDX root:     {simulated_root}\n"
            f"  GPU: SIMULATED GPU in {settings.gpu_dir}, RIMs from a local stand-in of NVIDIA's RIM service\n"
            f"  simulated GPU device root: {device_root}\n"
            f"  simulated GPU RIM root:    {rim_root}\n"
            + (f"  admin API token:        in {admin_file} (development only)\n" if admin_file else "")
            if simulated_root is not None
            else "  TDX: Intel PCS, pinned Intel SGX Root CA\n"
        )
        + f"  submit a first entry:   {client} --server {base} --vkey '{signer.verifier.vkey}' demo --count 1 "
        "--receipts ./receipts\n"
        + (
            f"  one with GPU evidence:  {client} --server {base} --vkey '{signer.verifier.vkey}' demo --count 1 "
            "--gpus 2\n"
            if simulated_root is not None
            else ""
        )
        + f"  check it offline:       {client} --vkey '{signer.verifier.vkey}' verify ./receipts/*.json\n"
        + (
            f"  audit it (replay):      {client} --server {base} --vkey '{signer.verifier.vkey}' monitor --once "
            f"--replay --tdx-root {simulated_root} {gpu_roots}\n"
            if simulated_root is not None
            else ""
        )
        + f"  explore it (verified in your browser): {base}/explorer/?vkey={quote(signer.verifier.vkey, safe='')}\n"
        f"  latest checkpoint:      curl {base}/checkpoint",
        flush=True,
    )
    # The database URL is resolved and migrated once here; the app (or each worker) reuses it.
    common: dict[str, Any] = {
        "log_level": settings.log_level,
        "access_log": False,  # the app writes its own access lines
        "timeout_graceful_shutdown": 5,
    }
    if sockets:
        # Each worker builds the app from the environment; metrics of all workers meet in one folder.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ.update(
            ATLAS_DATABASE_URL=url,
            ATLAS_MIGRATE_ON_START="false",
            ATLAS_LOG_LEVEL=settings.log_level,
            **{MULTIPROC_ENV: str(metrics_dir.resolve())},
        )
        # No log configuration for uvicorn: the app's (JSON lines, or text on a terminal) is the only one.
        return supervise("atlas_log_server.asgi:app", sockets, {**common, "log_config": None})
    assert sock is not None
    settings = settings.model_copy(update={"database_url": url, "migrate_on_start": False})
    return _run(create_app(settings), sock, host=settings.host, port=port, **common)


def _named_folders(specs: list[str] | None, option: str) -> dict[str, Path]:
    """``NAME=DIR`` arguments of ``option``, each an existing folder."""
    folders = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        if not sep or not path:
            raise OperatorError(f"{option} takes NAME=DIR (NAME may be empty), not {spec!r}")
        if not Path(path).is_dir():
            raise OperatorError(f"{option} {spec}: {path} is not a folder")
        folders[name] = Path(path)
    return folders


def _pcs_standin(args: argparse.Namespace) -> int:
    from atlas_log.testing.simulate import SimulatedPlatform
    from atlas_log_server.attest.pcs_standin import create_standin_app, folder_source, simulated_source

    folders = _named_folders(args.folder, "--folder")
    platforms = _named_folders(args.simulated, "--simulated")
    if not folders and not platforms:
        raise OperatorError("give at least one --folder NAME=DIR or --simulated NAME=DIR")
    sock = claim(args.host, args.port)
    sources = {name: folder_source(path) for name, path in folders.items()}
    sources.update({name: simulated_source(SimulatedPlatform.load(path)) for name, path in platforms.items()})
    print(f"PCS stand-in on http://{args.host}:{args.port}/<name>/... serving {sorted(sources)}", flush=True)
    return _run(create_standin_app(sources), sock, host=args.host, port=args.port, log_level="warning")


def _witness(args: argparse.Namespace) -> int:
    from atlas_log.errors import FormatError
    from atlas_log.note import Verifier
    from atlas_log_server.witness.app import create_witness_app
    from atlas_log_server.witness.key import load_or_create_witness_key
    from atlas_log_server.witness.state import WitnessState

    logs = []
    for vkey in args.log:
        try:
            logs.append(Verifier.from_vkey(vkey))
        except FormatError as exc:
            raise OperatorError(f"--log {vkey}: {exc}") from exc
    sock = claim(args.host, args.port)
    signer, created = load_or_create_witness_key(Path(args.key), args.name)
    print(
        f"witness {args.name} on http://{args.host}:{args.port}/add-checkpoint "
        f"({'new key' if created else 'key loaded'}; {len(logs)} logs)\n  verifier key: {signer.verifier.vkey}",
        flush=True,
    )
    app = create_witness_app(signer, logs, WitnessState(Path(args.state)), rate_per_s=args.rate)
    return _run(app, sock, host=args.host, port=args.port, log_level="warning", access_log=False)


def _witness_vkey(args: argparse.Namespace) -> int:
    from atlas_log_server.witness.key import load_witness_key

    key = Path(args.key)
    if not key.exists():  # this command only reads: the witness creates its key when it first starts
        raise OperatorError(
            f"no witness key in {key}: create it with `atlas-log-server witness-keygen` (or the witness does, when "
            "it first starts)"
        )
    print(load_witness_key(key, args.name).verifier.vkey)
    return 0


def _witness_keygen(args: argparse.Namespace) -> int:
    from atlas_log_server.witness.key import create_witness_key

    key = Path(args.key)
    if key.exists():
        raise OperatorError(f"a witness key already exists in {key}; kept (it is the witness's identity)")
    try:
        signer = create_witness_key(key, args.name)
    except OSError as exc:
        raise OperatorError(f"cannot write the key to {key}: {explain(exc)}") from exc
    print(f"wrote {key}", file=sys.stderr)
    print(signer.verifier.vkey)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    url = _database_url(settings)
    if args.downgrade:
        target = args.revision or "base"
        size = migrate.logged_entries(url)
        if size and not args.yes:
            print(
                f"atlas-log-server: not migrating down: the log in this database has {size} entries; downgrading "
                f"to {target} drops the tables and columns of every later migration (to base: all {size} entries "
                "with their tiles, checkpoints and evidence; from 0008: the frozen state), and the log's key will "
                "refuse to sign for it afterwards. Back the database up, then run again with --yes",
                file=sys.stderr,
            )
            return 1
        migrate.downgrade(url, target)
    else:
        migrate.upgrade(url, args.revision or "head")
    print(f"database schema at {migrate.current_revision(url) or 'base (no tables)'}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    settings = _settings(key_file=args.key_file, origin=args.origin)
    path = settings.signing_key_path
    if args.print_only:
        signer = Signer.generate(settings.origin)
        print(signer.skey)
    elif path.exists() and not args.yes:
        signer, _ = load_or_create_key(path, settings.origin)
        print(
            f"atlas-log-server: a key already exists in {path}; kept. Replacing it (--yes) would destroy the only "
            f"key that signs {settings.origin} (verifier key {signer.verifier.vkey}): servers with a new key refuse "
            "this log's database; freeze the log and start a successor instead",
            file=sys.stderr,
        )
        return 1
    elif path.exists():
        signer = replace_key(path, settings.origin)
        print(f"replaced the key in {path}", file=sys.stderr)
    else:
        try:
            signer, _ = load_or_create_key(path, settings.origin)
        except OSError as exc:
            raise OperatorError(f"cannot write the key to {path}: {explain(exc)}") from exc
        print(f"wrote {path}", file=sys.stderr)
    print(signer.verifier.vkey)
    return 0


def _freeze(args: argparse.Namespace) -> int:
    """Freeze the log: sign a final checkpoint of the current tree that names the successor; read-only after."""
    import asyncio

    from atlas_log.checkpoint import Checkpoint, frozen_checkpoint, open_checkpoint, sign_checkpoint
    from atlas_log.errors import Error
    from atlas_log.merkle import RootHash
    from atlas_log_server.db.engine import create_pool
    from atlas_log_server.db.repository import LogState, Repository
    from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, SignedRecord, TreeHead, check_database

    if args.no_successor == bool(args.successor_url or args.successor_vkey):
        print(
            "atlas-log-server: name the successor (--successor-url and --successor-vkey) or pass --no-successor",
            file=sys.stderr,
        )
        return 1
    if not args.no_successor and not (args.successor_url and args.successor_vkey):
        print("atlas-log-server: a successor needs both --successor-url and --successor-vkey", file=sys.stderr)
        return 1
    settings = _settings()
    url = _database_url(settings)
    signer, _ = _existing_signer(settings)
    record = LastSignedFile.beside(settings.signing_key_path, signer.verifier.vkey)

    def final(state: LogState) -> bytes:
        current = open_checkpoint(state.checkpoint or b"", signer.verifier)
        tree = TreeHead(state.size, state.root_hash)
        with record.locked():
            found = record.read()
            # Behind: the database lacks a tree the log may have handed out (a pending one included).
            behind = found is not None and (
                state.size < found.committed.size or (found.pending and tree == found.committed)
            )
            if found is not None and found.frozen:  # freezing again re-signs the recorded final tree
                if tree != found.committed and not behind:
                    raise RecordRefused(
                        f"the log was frozen at size {found.committed.size} (recorded in {record.path}); this "
                        f"database's tree of size {state.size} is not that one"
                    )
            elif not behind:
                check_database(found, tree, record.path)
            if behind:
                assert found is not None
                # A rolled-back database: the final checkpoint must be the newest tree clients may hold, or
                # they would take the freeze for the log going back in time.
                last = found.signed
                current = Checkpoint(settings.origin, last.size, RootHash(last.root))
                print(
                    f"the database holds size {state.size}, but the log signed size {last.size}: the final "
                    f"checkpoint is at size {last.size}; entries {state.size} to {last.size - 1} are not in "
                    "this database (proofs for them need a database that has them)",
                    file=sys.stderr,
                )
            note = sign_checkpoint(frozen_checkpoint(current, args.successor_url, args.successor_vkey), signer)
            # Recorded before the database commits the freeze: a database that later loses its frozen state
            # (a migration down and up) cannot make the key sign past the final checkpoint.
            final_tree = TreeHead(current.size, current.root_hash)
            record.write(SignedRecord(record.key, final_tree, final_tree, frozen=True))
        return note

    async def run() -> bytes | None:
        pool = await create_pool(url, 2)
        try:
            repo = Repository(pool, settings.origin)
            if not args.yes:
                state = await repo.state()
                then = f"hands over to {args.successor_url}" if args.successor_url else "names no successor"
                print(
                    f"atlas-log-server: not freezing: freezing {settings.origin} (tree size {state.size}) is "
                    f"permanent: it signs a final checkpoint that {then}; the log never accepts another entry, and "
                    "clients treat any later checkpoint of this key as misbehaviour. Run again with --yes",
                    file=sys.stderr,
                )
                return None
            return await repo.freeze(final)
        finally:
            await pool.close()

    try:
        note = asyncio.run(run())
    except (Error, RecordRefused) as exc:
        print(f"cannot freeze: {exc}", file=sys.stderr)
        return 1
    finally:
        if isinstance(signer, CommandSigner):
            signer.close()
    if note is None:
        return 1
    print(note.decode(), end="")
    return 0


def _release_pending(args: argparse.Namespace) -> int:
    """Take back a checkpoint signed for a batch that never committed (the operator vouches for it)."""
    import asyncio

    from atlas_log_server.db.engine import create_pool
    from atlas_log_server.db.repository import Repository
    from atlas_log_server.log.last_signed import LastSignedFile, RecordRefused, TreeHead

    settings = _settings()
    url = _database_url(settings)
    signer, _ = _existing_signer(settings)
    if isinstance(signer, CommandSigner):
        signer.close()  # only its verifier key names the record
    record = LastSignedFile.beside(settings.signing_key_path, signer.verifier.vkey)

    async def release() -> tuple[TreeHead, TreeHead | None]:
        pool = await create_pool(url, 1)
        try:
            # Under the tree-state lock no server is between signing a batch and committing it.
            async with Repository(pool, settings.origin).batch() as tx:
                state = await tx.lock_state()
                database = TreeHead(state.size, state.root_hash)
                return database, record.release_pending(database) if args.yes else None
        finally:
            await pool.close()

    try:
        database, released = asyncio.run(release())
    except RecordRefused as exc:
        print(f"cannot release: {exc}", file=sys.stderr)
        return 1
    if released is None:
        print(
            f"atlas-log-server: not releasing: the database holds tree size {database.size}. Release the pending "
            "checkpoint only if this database has not been restored from a backup or failed over since the "
            "server stopped: a batch that committed was served, and releasing it lets the log sign a second tree "
            "of its size (a fork). Otherwise roll the database forward or freeze the log. Run again with --yes",
            file=sys.stderr,
        )
        return 1
    print(f"released the pending checkpoint of size {released.size}; the log signs over size {database.size} again")
    return 0


def _map_rebuild(args: argparse.Namespace) -> int:
    """Rebuild the verifiable map from the log's leaves alone; store it only when its root is the one built
    (and committed) incrementally."""
    import asyncio
    import time

    from atlas_log_server.db.engine import create_pool
    from atlas_log_server.db.repository import Repository
    from atlas_log_server.db.vmap import MapRepository
    from atlas_log_server.log.map_builder import rebuild

    settings = _settings()
    url = _database_url(settings)

    async def run() -> int:
        pool = await create_pool(url, 2)
        try:
            maps = MapRepository(pool)
            latest = await maps.latest()
            size = latest.tree_size if latest is not None else (await Repository(pool, settings.origin).state()).size
            started = time.perf_counter()
            version, writes = await rebuild(maps, size)
            took = time.perf_counter() - started
            print(
                f"rebuilt the map of the first {size} leaves from the leaves alone: {version.keys} keys, "
                f"root {version.root.hex()} ({took:.1f} s, {size / max(took, 1e-9):,.0f} leaves/s)"
            )
            if latest is not None and latest.root != version.root:
                print(
                    f"atlas-log-server: the stored map of size {size} has root {latest.root.hex()}, not the rebuilt "
                    f"{version.root.hex()}"
                    + (f"; the log committed it in entry {latest.commitment_index}" if latest.commitment_index else "")
                    + ": nothing written. Investigate before replacing it (monitors will report the committed root)",
                    file=sys.stderr,
                )
                return 1
            if not args.dry_run:
                await maps.replace_all(size, version.root, version.keys, writes)
                print(f"stored {len(writes)} nodes; the root is byte-identical to the built one")
            return 0
        finally:
            await pool.close()

    return asyncio.run(run())


def _export_tiles(args: argparse.Namespace) -> int:
    """Write the log's checkpoint, hash tiles and entry bundles as static files (once, or every ``--every``
    seconds), for a static file server, a mirror or a CDN origin; only what changed is written."""
    import asyncio
    import time
    from pathlib import Path

    from atlas_log_server.db.engine import create_pool
    from atlas_log_server.db.repository import Repository
    from atlas_log_server.log.export import export_tiles

    settings = _settings()
    url = _database_url(settings)
    folder = Path(args.folder)

    async def run() -> int:
        pool = await create_pool(url, 2)
        try:
            repo = Repository(pool, settings.origin)
            while True:
                state = await repo.state()
                note, size = state.frozen_note or state.checkpoint, state.size
                if settings.witnesses:  # what /checkpoint serves: the witnessed checkpoint
                    published = await repo.latest_published()
                    note, size = (None, 0) if published is None else (published[1], published[0])
                if note is None:
                    print("atlas-log-server: the log has no checkpoint yet; nothing written", file=sys.stderr)
                    return 1
                started = time.perf_counter()
                done = await export_tiles(repo, folder, note, size)
                print(
                    f"exported tree size {done.size} to {folder}: {done.tiles} tiles and {done.bundles} entry bundles "
                    f"written ({time.perf_counter() - started:.2f} s)",
                    flush=True,
                )
                if not args.every:
                    return 0
                await asyncio.sleep(args.every)
        finally:
            await pool.close()

    return asyncio.run(run())


def _admin_token(args: argparse.Namespace) -> int:
    from atlas_log_server.access import new_admin_token

    token, digest = new_admin_token()
    print(f"admin token (give it to the operator; it is not stored): {token}")
    print(f"ATLAS_ADMIN_TOKEN_SHA256={digest}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atlas-log-server", description="Atlas Log transparency log server")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, *, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")

    p = command("serve", help="run the log (settings from ATLAS_* environment variables)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--workers", type=int, default=1, help="worker processes appending to the same log")
    p.set_defaults(func=_serve)
    p = command("pcs-standin", help="serve PCS-replay folders / simulated platforms at the Intel PCS paths")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--folder", action="append", help="NAME=DIR: a PCS-replay folder served under /NAME")
    p.add_argument(
        "--simulated",
        action="append",
        help="NAME=DIR: a saved simulated platform under /NAME (an empty NAME serves it at the root)",
    )
    p.set_defaults(func=_pcs_standin)
    p = command("witness", help="run a C2SP tlog-witness that cosigns the configured logs' checkpoints")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8082)
    p.add_argument("--name", required=True, help="the witness's key name, e.g. witness.example.com")
    p.add_argument("--key", required=True, help="key file (generated when absent)")
    p.add_argument("--state", required=True, help="folder for the witness's durable state")
    p.add_argument("--log", action="append", required=True, help="a log's verifier key (repeat for more logs)")
    p.add_argument("--rate", type=float, default=10.0, help="add-checkpoint requests per second per log")
    p.set_defaults(func=_witness)
    p = command("witness-keygen", help="create a witness's key (prints its verifier key)")
    p.add_argument("--name", required=True, help="the witness's key name, e.g. witness.example.com")
    p.add_argument("--key", required=True, help="key file to create (an existing one is kept)")
    p.set_defaults(func=_witness_keygen)
    p = command("witness-vkey", help="print a witness's verifier key")
    p.add_argument("--name", required=True)
    p.add_argument("--key", required=True, help="the witness's key file (read only; the witness creates it)")
    p.set_defaults(func=_witness_vkey)
    p = command("freeze", help="freeze the log (final checkpoint naming a successor); read-only after")
    p.add_argument("--successor-url", help="where the successor log serves")
    p.add_argument("--successor-vkey", help="the successor log's verifier key")
    p.add_argument("--no-successor", action="store_true", help="freeze without naming a successor")
    p.add_argument("--yes", action="store_true", help="really freeze (it is permanent)")
    p.set_defaults(func=_freeze)
    p = command(
        "release-pending",
        help="take back the checkpoint of a batch that never committed (server stopped between signing and commit)",
    )
    p.add_argument("--yes", action="store_true", help="the database was not restored or failed over since")
    p.set_defaults(func=_release_pending)
    p = command("map", help="the verifiable map of artifact histories")
    mp = p.add_subparsers(dest="map_command", required=True)
    q = mp.add_parser("rebuild", help="rebuild the map from the log's leaves alone and check it against the stored one")
    q.add_argument("--dry-run", action="store_true", help="build and compare, but write nothing")
    q.set_defaults(func=_map_rebuild)
    p = command(
        "export-tiles", help="write the checkpoint, tiles and entry bundles as static files (for a CDN or mirror)"
    )
    p.add_argument("folder", help="where to write checkpoint and tile/… (created; existing full tiles are kept)")
    p.add_argument("--every", type=float, default=0, help="keep exporting, every this many seconds (default 0: once)")
    p.set_defaults(func=_export_tiles)
    p = command("admin-token", help="create an admin token and print the SHA-256 to configure")
    p.set_defaults(func=_admin_token)
    p = command("migrate", help="apply the database migrations")
    p.add_argument("--revision")
    p.add_argument("--downgrade", action="store_true")
    p.add_argument("--yes", action="store_true", help="migrate down even though the log has entries")
    p.set_defaults(func=_migrate)
    p = command("keygen", help="create the checkpoint signing key (prints its verifier key)")
    p.add_argument("--key-file")
    p.add_argument("--origin")
    p.add_argument("--print-only", action="store_true", help="print a new private key instead of writing it")
    p.add_argument("--yes", action="store_true", help="replace an existing key (destroys it)")
    p.set_defaults(func=_keygen)
    args = parser.parse_args(argv)
    # What the environment asks for until serve applies its settings (the settings report a bad value).
    fmt = os.environ.get("ATLAS_LOG_FORMAT")
    level = os.environ.get("ATLAS_LOG_LEVEL", "info").lower()
    configure_logging(
        "json" if fmt == "json" else "text" if fmt == "text" else "auto",
        level if level in ("debug", "info", "warning", "error") else "info",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl+C before the server ran (starting the database, migrating): stop quietly
        return 130
    except Exception as exc:  # say what went wrong, not a traceback
        from pydantic import ValidationError

        said = explain(exc)
        if said is None:  # a bug: its name here, its traceback in the debug log
            _log.debug("%s failed", args.command, exc_info=exc)
            print(
                f"atlas-log-server {args.command}: {type(exc).__name__}: {one_line(str(exc))} "
                "(ATLAS_LOG_LEVEL=debug shows where)",
                file=sys.stderr,
            )
            return 1
        print(f"atlas-log-server: {said}", file=sys.stderr)
        return 2 if isinstance(exc, ValidationError | OSError | ValueError) else 1


if __name__ == "__main__":
    sys.exit(main())
