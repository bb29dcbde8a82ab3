"""The settings object: every setting is documented in the README's one table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from atlas_log_server.config import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    table = "\n".join(line for line in README.read_text().splitlines() if line.startswith("| `ATLAS_"))
    documented = set(re.findall(r"`(ATLAS_[A-Z0-9_]+)`", table))
    expected = {"ATLAS_" + name.upper() for name in Settings.model_fields}
    assert expected <= documented, sorted(expected - documented)
    assert documented <= expected | {"ATLAS_HOST", "ATLAS_PORT"}, sorted(documented - expected)


def test_fresh_nonces_need_a_publishing_interval_within_half_the_nonce_age() -> None:
    """A publisher that looks less often than half the nonce lifetime could let every root it offers go stale."""
    with pytest.raises(ValidationError, match="nonce_max_age_s / 2"):
        Settings(require_fresh_nonce=True, nonce_max_age_s=4, checkpoint_interval_s=3)
    Settings(require_fresh_nonce=True, nonce_max_age_s=4, checkpoint_interval_s=2)
    Settings(require_fresh_nonce=False, nonce_max_age_s=4, checkpoint_interval_s=3)


def test_x509_extended_key_usage_is_an_oid() -> None:
    import pytest
    from pydantic import ValidationError

    assert Settings().x509_extended_key_usage == "1.3.6.1.5.5.7.3.3"  # code signing, as Fulcio issues
    assert Settings(x509_extended_key_usage="1.3.6.1.5.5.7.3.1").x509_extended_key_usage == "1.3.6.1.5.5.7.3.1"
    with pytest.raises(ValidationError):
        Settings(x509_extended_key_usage="codeSigning")


def test_required_ocsp_needs_a_service_to_ask() -> None:
    """Requiring OCSP with the service turned off would refuse every GPU: refused at startup instead."""
    with pytest.raises(ValidationError, match="gpu_require_ocsp"):
        Settings(gpu_require_ocsp=True, gpu_ocsp_url="off")
    Settings(gpu_require_ocsp=False, gpu_ocsp_url="off")
    Settings(gpu_require_ocsp=True)
