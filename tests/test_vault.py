"""The disclosure vault (atlas_log_server.vault): sealed disclosures open only for their own entry and under
the log's key-encryption key (a file, or an external service that fails cleanly), never once tombstoned;
blinding keys are per tenant and stable across restarts."""

from __future__ import annotations

import multiprocessing
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from atlas_log_server.vault import CommandKek, FileKek, Vault, VaultError, VaultUnavailable, key_file


def _vault(tmp_path: Path) -> Vault:
    return Vault(FileKek(tmp_path / "kek"), tmp_path / "erased", key_file(tmp_path / "blinding"))


def test_sealed_disclosures_open_only_for_their_entry(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    sealed = vault.seal(b"\x01" * 32, ["WyJzYWx0IiwibmFtZSIsInZhbHVlIl0"])
    assert b"WyJ" not in sealed.ciphertext
    assert vault.open(b"\x01" * 32, sealed) == ["WyJzYWx0IiwibmFtZSIsInZhbHVlIl0"]
    # Moved to another entry, altered, or under another log's key: it does not open.
    with pytest.raises(VaultError):
        vault.open(b"\x02" * 32, sealed)
    with pytest.raises(VaultError):
        vault.open(b"\x01" * 32, replace(sealed, ciphertext=sealed.ciphertext[:-1] + b"\x00"))
    other = tmp_path / "other"
    with pytest.raises(VaultError):
        _vault(other).open(b"\x01" * 32, sealed)
    # Tombstoned, it never opens again, even from a restored row that still holds the wrapped key.
    vault.bury(b"\x01" * 32)
    assert _vault(tmp_path).tombstoned() == {("01" * 32)}
    with pytest.raises(VaultError, match="erased"):
        _vault(tmp_path).open(b"\x01" * 32, sealed)


def test_blinding_keys_are_per_tenant_and_survive_a_restart(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    assert len(vault.blinding_key("vendor")) == 32
    assert vault.blinding_key("vendor") != vault.blinding_key("other")
    assert _vault(tmp_path).blinding_key("vendor") == vault.blinding_key("vendor")
    assert _vault(tmp_path / "elsewhere").blinding_key("vendor") != vault.blinding_key("vendor")
    assert (tmp_path / "blinding").stat().st_mode & 0o777 == 0o600
    (tmp_path / "short").write_bytes(b"x")
    with pytest.raises(VaultError, match="256-bit"):
        key_file(tmp_path / "short")


# A stand-in KMS adapter: its own AES-GCM key, bound to the context, one request per line.
KMS = """
import base64, os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
aead = AESGCM(bytes(range(32)))
for line in sys.stdin:
    verb, context, value = line.split()
    context, value = base64.b64decode(context), base64.b64decode(value)
    if verb == "wrap":
        nonce = os.urandom(12)
        out = nonce + aead.encrypt(nonce, value, context)
    else:
        out = aead.decrypt(value[:12], value[12:], context)
    print(base64.b64encode(out).decode(), flush=True)
"""


def _command(program: str) -> str:
    return f"{sys.executable} -c {shlex.quote(program)}"


def test_an_external_key_encryption_service_wraps_the_data_keys(tmp_path: Path) -> None:
    kek = CommandKek(_command(KMS), 5)
    try:
        vault = Vault(kek, tmp_path / "erased", key_file(tmp_path / "blinding"))
        sealed = vault.seal(b"\x01" * 32, ["WyJzYWx0IiwibmFtZSIsInZhbHVlIl0"])
        assert vault.open(b"\x01" * 32, sealed) == ["WyJzYWx0IiwibmFtZSIsInZhbHVlIl0"]
        assert not (tmp_path / "kek").exists()  # no key file: the service holds the key
    finally:
        kek.close()


@pytest.mark.parametrize(
    ("program", "error", "message"),
    [
        ("import time; time.sleep(60)", VaultUnavailable, "did not answer within 0.5 s"),
        ("import sys; sys.exit(3)", VaultUnavailable, "exited"),
        ("print('not base64!', flush=True); import time; time.sleep(60)", VaultError, "answered wrap"),
    ],
)
def test_an_external_service_that_fails_is_an_error_never_a_hang(
    tmp_path: Path, program: str, error: type[Exception], message: str
) -> None:
    kek = CommandKek(_command(program), 0.5)
    try:
        with pytest.raises(error, match=message):
            kek.wrap(bytes(32), b"\x01" * 32)
    finally:
        kek.close()


def _race_for_keys(paths: list[Path], barrier: Any, out: Path) -> None:
    keys = []
    for path in paths:
        barrier.wait()
        try:
            keys.append(key_file(path).hex())
        except VaultError as exc:
            keys.append(str(exc))
    out.write_text("\n".join(keys))


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Workers start at once on a new data directory: each must read the one key that was made, whole, never
    a file another is still writing."""
    paths = [tmp_path / f"k{n}" / "blinding" for n in range(40)]
    fork = multiprocessing.get_context("fork")
    barrier = fork.Barrier(4)
    racers = [fork.Process(target=_race_for_keys, args=(paths, barrier, tmp_path / f"out{w}")) for w in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
        assert racer.exitcode == 0
    seen = [(tmp_path / f"out{w}").read_text().split("\n") for w in range(4)]
    for n, path in enumerate(paths):
        assert {s[n] for s in seen} == {path.read_bytes().hex()}
    assert sorted(p.name for p in tmp_path.glob("k*/*")) == ["blinding"] * 40  # nothing left beside them
