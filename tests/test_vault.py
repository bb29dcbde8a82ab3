"""The disclosure vault (atlas_log_server.vault): sealed disclosures open only for their own entry and under
the log's key-encryption key, never once tombstoned; blinding keys are per tenant and stable across restarts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from atlas_log_server.vault import FileKek, Vault, VaultError, key_file


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
