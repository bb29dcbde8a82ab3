from __future__ import annotations

import subprocess
import sys

import atlas_log


def test_public_names_are_pinned() -> None:
    assert atlas_log.__all__ == sorted(atlas_log.__all__)
    assert set(atlas_log.__all__) == {
        "AsyncLogClient",
        "Checkpoint",
        "Error",
        "FormatError",
        "InconsistentLogError",
        "LogAPIError",
        "LogClient",
        "LogProblemError",
        "LogTimeoutError",
        "LogUnreachableError",
        "NotALogError",
        "ProofError",
        "Receipt",
        "RetryPolicy",
        "RootMismatchError",
        "SignatureError",
        "Signer",
        "TrustedState",
        "VerificationError",
        "Verifier",
        "__version__",
        "open_checkpoint",
        "verify_receipt",
    }
    for name in atlas_log.__all__:
        assert hasattr(atlas_log, name)


def test_client_does_not_import_the_server_stack() -> None:
    code = (
        "import sys, atlas_log, atlas_log.cli, atlas_log.tiles, atlas_log.submission, atlas_log.replay,"
        " atlas_log.reverify, atlas_log.evidence, atlas_log.monitor, atlas_log.history, atlas_log.client,"
        " atlas_log.answers, atlas_log.schema;"
        # Nothing beyond the client's own dependencies (orjson and prometheus_client are server extras).
        "bad = [m for m in ('fastapi', 'sqlalchemy', 'asyncpg', 'alembic', 'atlas_log_server', 'uvicorn',"
        " 'orjson', 'prometheus_client', 'pydantic', 'jsonschema', 'schemathesis')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_error_is_one_family() -> None:
    for name in (
        "FormatError",
        "VerificationError",
        "ProofError",
        "RootMismatchError",
        "SignatureError",
        "InconsistentLogError",
        "LogAPIError",
        "LogProblemError",
        "LogTimeoutError",
        "LogUnreachableError",
        "NotALogError",
    ):
        assert issubclass(getattr(atlas_log, name), atlas_log.Error)


def test_production_paths_load_no_simulator() -> None:
    """The simulated TDX platform and GPU, their stand-ins and the demo builders are development tools:
    importing the client, its submission, pipeline, HTTP and GPU modules, the CLI, or the server's app must not
    load them."""
    code = (
        "import sys, atlas_log, atlas_log.submission, atlas_log.pipeline, atlas_log.client, atlas_log.cli,"
        " atlas_log.tdx, atlas_log.gpu, atlas_log_server.app;"
        "bad = [m for m in ('atlas_log.testing', 'atlas_log.testing.simulate', 'atlas_log.testing.demo',"
        " 'atlas_log.testing.simulated_gpu', 'atlas_log.tdx.simulate', 'atlas_log_server.attest.dev',"
        " 'atlas_log_server.attest.rim_standin') if m in sys.modules];"
        " print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
