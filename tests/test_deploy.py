"""The container deployment: the Dockerfile builds from what the repository has, and docker-compose.yml is a
valid Compose file with the services, health checks and volumes it promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    assert {"postgres", "init", "log-1", "log-2", "lb", "witness", "monitor"} <= set(services)
    for name in ("postgres", "log-1", "log-2", "lb", "witness", "monitor"):
        assert "test" in services[name]["healthcheck"], name
    # Two replicas behind one address: only the load balancer publishes the log's port.
    assert "ports" not in services["log-1"] and "ports" not in services["log-2"]
    assert any("8080" in str(p) for p in services["lb"]["ports"])
    for replica in ("log-1", "log-2"):
        assert services[replica]["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert services[replica]["environment"]["ATLAS_MIGRATE_ON_START"] == "false"  # init migrates, once
    assert {"pgdata", "log-data", "keys", "witness-state", "monitor-state"} <= set(config["volumes"])
    assert (ROOT / "deploy" / "nginx.conf").is_file()


def test_dockerfile_copies_what_the_repository_has() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    sources = [s for group in copies for s in group]
    assert "migrations" in sources and "server" in sources and "client" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
