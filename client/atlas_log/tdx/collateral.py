"""Intel PCS collateral for TDX quotes: the raw responses, exactly as served, and a PCS-replay folder loader.

The signed JSON collateral (TCB info, QE identity) is verified over the *exact bytes* of its ``tcbInfo`` /
``enclaveIdentity`` member as served, so the raw response body is kept and the member sliced out of it,
never re-serialised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas_log._encoding import b64decode, b64encode
from atlas_log.errors import FormatError, QuoteError

__all__ = ["COLLATERAL_PARTS", "Collateral", "collateral_from_dir", "raw_members", "replay_files"]


@dataclass(frozen=True, slots=True)
class Collateral:
    """Everything besides the quote that a TDX verification needs, as raw PCS responses."""

    tcb_info: bytes  # body of GET /tdx/certification/v4/tcb?fmspc=…
    tcb_info_issuer_chain: bytes  # PEM: TCB Signing certificate, then root
    qe_identity: bytes  # body of GET /tdx/certification/v4/qe/identity
    qe_identity_issuer_chain: bytes  # PEM
    pck_crl: bytes  # DER body of GET /sgx/certification/v4/pckcrl?ca=…&encoding=der
    pck_crl_issuer_chain: bytes  # PEM (informational: the CRL's issuer is checked against the PCK chain)
    root_ca_crl: bytes  # DER Intel SGX Root CA CRL
    digest: str = field(init=False, repr=False, compare=False)
    """One SHA-256 over all parts (length-prefixed): the cache key and identity of this collateral set."""

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        for name in _FILES:
            part = getattr(self, name)
            if not isinstance(part, bytes):
                raise TypeError(f"collateral part {name} must be bytes")
            h.update(len(part).to_bytes(8, "big") + part)
        object.__setattr__(self, "digest", h.hexdigest())

    @classmethod
    def from_json(cls, obj: Any) -> Collateral:
        """A collateral set from its JSON form (:meth:`to_json`); raises :class:`FormatError` otherwise."""
        try:
            return cls(*(b64decode(obj[name], name) for name in COLLATERAL_PARTS))
        except (KeyError, TypeError) as exc:
            raise FormatError(f"collateral must have base64 members {list(COLLATERAL_PARTS)}") from exc

    def to_json(self) -> dict[str, str]:
        """The JSON form the log serves and evidence carries: each part in base64, named by its field."""
        return {name: b64encode(getattr(self, name)) for name in COLLATERAL_PARTS}

    def digests(self) -> dict[str, str]:
        """SHA-256 (hex) of each part: what an entry records so the exact collateral can be found again."""
        return {name: hashlib.sha256(getattr(self, name)).hexdigest() for name in _FILES}


# Collateral field -> file in a PCS-replay folder (pcs/…).
_FILES = {
    "tcb_info": "tcb.json",
    "tcb_info_issuer_chain": "tcb.issuer-chain.pem",
    "qe_identity": "qe_identity.json",
    "qe_identity_issuer_chain": "qe_identity.issuer-chain.pem",
    "pck_crl": "pckcrl.der",
    "pck_crl_issuer_chain": "pckcrl.issuer-chain.pem",
    "root_ca_crl": "rootcacrl.der",
}


COLLATERAL_PARTS = tuple(_FILES)
"""The fields of :class:`Collateral`, in order."""


def replay_files() -> dict[str, str]:
    """Collateral field -> file name in a PCS-replay folder's ``pcs/``."""
    return dict(_FILES)


def collateral_from_dir(path: str | Path) -> Collateral:
    """Load a PCS-replay folder: ``path/pcs/*`` (or ``path/*`` when it has no ``pcs`` subfolder)."""
    base = Path(path)
    if (base / "pcs").is_dir():
        base = base / "pcs"
    parts = {}
    for part, name in _FILES.items():
        try:
            parts[part] = (base / name).read_bytes()
        except OSError as exc:
            raise QuoteError("collateral-missing", f"cannot read {base / name}: {exc.strerror}") from exc
    return Collateral(**parts)


def raw_members(body: bytes, what: str) -> dict[str, str]:
    """The top-level members of a JSON object as the exact source text of each value (not re-serialised)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not UTF-8") from exc
    dec = json.JSONDecoder()
    out: dict[str, str] = {}
    i = _ws(text, 0)
    try:
        if text[i] != "{":
            raise ValueError("not an object")
        i = _ws(text, i + 1)
        while text[i] != "}":
            key, i = dec.raw_decode(text, i)
            i = _ws(text, i)
            if not isinstance(key, str) or text[i] != ":":
                raise ValueError("expected a key and ':'")
            start = _ws(text, i + 1)
            _, end = dec.raw_decode(text, start)
            out[key] = text[start:end]
            i = _ws(text, end)
            if text[i] == ",":
                i = _ws(text, i + 1)
            elif text[i] != "}":
                raise ValueError("expected ',' or '}'")
        if text[_ws(text, i + 1) :]:
            raise ValueError("trailing data")
    except (ValueError, IndexError, RecursionError) as exc:
        raise QuoteError("collateral-malformed", f"{what} is not a JSON object: {exc}") from exc
    return out


def _ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i
