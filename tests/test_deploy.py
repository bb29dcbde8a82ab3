"""The container deployment: the Dockerfile builds from what the repository has, and docker-compose.yml is a
valid Compose file with the services, health checks and volumes it promises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from atlas_log.note import Signer
from atlas_log_server.witness.key import load_witness_key

ROOT = Path(__file__).resolve().parent.parent


def _compose() -> list[str] | None:
    """``docker compose`` (the plugin) or ``docker-compose``, whichever this machine has."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def _config() -> dict[str, Any]:
    cmd = _compose()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed: the Compose file cannot be validated")
    out = subprocess.run(
        [*cmd, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    config: dict[str, Any] = yaml.safe_load(out.stdout)
    return config


def test_compose_file_validates_and_has_every_part() -> None:
    config = _config()
    services = config["services"]
    assert {"postgres", "postgres-replica", "init", "log-1", "log-2", "lb", "witness", "monitor"} <= set(services)
    for name in ("postgres", "postgres-replica", "log-1", "log-2", "lb", "witness", "monitor"):
        assert "test" in services[name]["healthcheck"], name
    # Two replicas behind one address: only the load balancer publishes the log's port.
    assert "ports" not in services["log-1"] and "ports" not in services["log-2"]
    assert any("8080" in str(p) for p in services["lb"]["ports"])
    for replica in ("log-1", "log-2"):
        assert services[replica]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert services[replica]["environment"]["ATLAS_MIGRATE_ON_START"] == "false"  # init migrates, once
        # Reads go to the streaming standby (the replica service), writes to the primary.
        assert "postgres-replica" in services[replica]["environment"]["ATLAS_READ_DATABASE_URLS"]
    assert {"pgdata", "pgdata-replica", "log-data", "keys", "witness-state", "monitor-state"} <= set(config["volumes"])
    assert (ROOT / "deploy" / "nginx.conf").is_file() and (ROOT / "deploy" / "replication.sh").is_file()
    assert "pg_basebackup" in " ".join(services["postgres-replica"]["command"])


def test_dockerfile_copies_what_the_repository_has() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [s for group in copies for s in group]
    assert "migrations" in sources and "server" in sources and "client" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)


def test_compose_init_creates_the_keys_and_schema_it_promises(db_url: str, tmp_path: Path) -> None:
    # The init service's own script, run twice (a restarted stack runs it again), with its key folder here.
    with (ROOT / "docker-compose.yml").open() as f:
        script = str(yaml.safe_load(f)["services"]["init"]["command"][0]).replace("/keys/", f"{tmp_path}/")
    env = {**os.environ, "ATLAS_DATABASE_URL": db_url, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    vkeys = []
    for _ in range(2):
        out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        vkeys.append(((tmp_path / "log.vkey").read_text(), (tmp_path / "witness.vkey").read_text()))
    log_vkey, witness_vkey = vkeys[0]
    assert vkeys[1] == vkeys[0]  # the keys made at first are kept
    assert Signer.from_skey((tmp_path / "log.key").read_text()).verifier.vkey == log_vkey.strip()
    assert load_witness_key(tmp_path / "witness.key", "witness.atlas-log.local").verifier.vkey == witness_vkey.strip()
