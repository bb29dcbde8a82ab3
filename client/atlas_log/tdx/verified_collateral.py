"""Collateral checks (steps C and E-F of the procedure, the time-independent part): Intel PCS collateral
parsed, its signing chains pinned to a trusted root, its signatures and CRLs verified, once per exact bytes.

Time windows are not checked here: :func:`verify_collateral` says what is valid when, and the procedure
checks ``now`` against it on every call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID

from atlas_log.certificates import load_pem_certificates
from atlas_log.errors import QuoteError
from atlas_log.tdx.collateral import Collateral, raw_members
from atlas_log.tdx.pki import (
    INTEL_ROOT_SPKI_SHA256,
    collateral_hex,
    collateral_time,
    common_name,
    crl_signed_by,
    der_signature,
    ecdsa_verifies,
    issued_by,
    load_chain,
    spki_sha256,
    timestamp,
)

__all__ = ["Crl", "SignedJson", "VerifiedCollateral", "collateral_validity", "verify_collateral"]


@dataclass(frozen=True, slots=True)
class SignedJson:
    """A signed collateral document (TCB info or QE identity) whose signature verified over the served bytes."""

    body: dict[str, Any]
    issue: int
    next_update: int
    signing_cert: x509.Certificate
    root: x509.Certificate


@dataclass(frozen=True, slots=True)
class Crl:
    crl: x509.CertificateRevocationList
    this_update: int
    next_update: int


@dataclass(frozen=True, slots=True)
class VerifiedCollateral:
    """Collateral whose chains end in a trusted root and whose signatures and root CA CRL verified."""

    tcb: SignedJson
    qe: SignedJson
    pck_crl: Crl
    root_crl: Crl
    digests: dict[str, str]
    # The PCK CA of the CRL issuer chain, checked against the root, whose key verified the PCK CRL (DER;
    # empty when the issuer chain was unusable and the CRL must be checked against the quote's own CA).
    pck_crl_ca_der: bytes


def _signing_chain(chain_pem: bytes, roots: frozenset[str], what: str) -> tuple[x509.Certificate, x509.Certificate]:
    chain = load_chain(chain_pem, f"{what} issuer chain")
    if len(chain) != 2:
        raise QuoteError("certificate-chain-invalid", f"{what} issuer chain must hold 2 certificates")
    signing, root = chain
    if spki_sha256(root) not in roots or not issued_by(root, root):
        raise QuoteError("untrusted-root", f"{what} issuer chain does not end in a trusted root")
    if "TCB Signing" not in common_name(signing) or not issued_by(signing, root):
        raise QuoteError("certificate-chain-invalid", f"{what} signing certificate is not issued by the root")
    return signing, root


def _signed_json(body: bytes, member: str, chain: tuple[x509.Certificate, x509.Certificate], what: str) -> SignedJson:
    members = raw_members(body, what)
    if set(members) != {member, "signature"}:
        raise QuoteError("collateral-malformed", f"{what} must hold exactly '{member}' and 'signature'")
    signing, root = chain
    sig_hex = json.loads(members["signature"])
    signature = collateral_hex(sig_hex, 64, f"{what} signature")
    if not ecdsa_verifies(signing.public_key(), der_signature(signature), members[member].encode()):
        code = "tcb-info-signature-invalid" if member == "tcbInfo" else "qe-identity-signature-invalid"
        raise QuoteError(code, f"{what} signature does not verify over the served bytes")
    try:
        parsed = json.loads(members[member])
    except ValueError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise QuoteError("collateral-malformed", f"{what} is not an object")
    issue = collateral_time(parsed.get("issueDate"), f"{what}.issueDate")
    next_update = collateral_time(parsed.get("nextUpdate"), f"{what}.nextUpdate")
    return SignedJson(parsed, issue, next_update, signing, root)


def _crl(der: bytes, what: str) -> Crl:
    try:
        crl = x509.load_der_x509_crl(der)
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is not a ValueError
        raise QuoteError("crl-invalid", f"{what} is not a DER CRL") from exc
    if crl.next_update_utc is None:
        raise QuoteError("crl-invalid", f"{what} has no nextUpdate")
    for oid in (ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER):
        try:
            crl.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound as exc:
            raise QuoteError("crl-invalid", f"{what} lacks the {oid._name} extension") from exc
    return Crl(crl, timestamp(crl.last_update_utc), timestamp(crl.next_update_utc))


def verify_collateral(c: Collateral, roots: frozenset[str]) -> VerifiedCollateral:
    """Parse and check collateral against the trusted ``roots`` (SPKI SHA-256 fingerprints). Raises
    :class:`QuoteError` when it is malformed, badly signed, revoked or from an untrusted root."""
    try:
        return _verify_unchecked(c, roots)
    except (ValueError, TypeError, AttributeError) as exc:  # lazily parsed certificate or CRL fields
        raise QuoteError("collateral-malformed", f"collateral is malformed: {exc}") from exc


def _verify_unchecked(c: Collateral, roots: frozenset[str]) -> VerifiedCollateral:
    tcb_chain = _signing_chain(c.tcb_info_issuer_chain, roots, "TCB info")
    # PCS signs both with the same certificate: check an identical chain once.
    qe_chain = (
        tcb_chain
        if c.qe_identity_issuer_chain == c.tcb_info_issuer_chain
        else _signing_chain(c.qe_identity_issuer_chain, roots, "QE identity")
    )
    tcb = _signed_json(c.tcb_info, "tcbInfo", tcb_chain, "TCB info")
    qe = _signed_json(c.qe_identity, "enclaveIdentity", qe_chain, "QE identity")
    if tcb.body.get("id") != "TDX" or tcb.body.get("version") != 3:
        raise QuoteError("collateral-malformed", "TCB info is not TDX TCB info version 3")
    if qe.body.get("id") != "TD_QE" or qe.body.get("version") != 2:
        raise QuoteError("collateral-malformed", "QE identity is not TD_QE identity version 2")
    root_crl = _crl(c.root_ca_crl, "root CA CRL")
    root = tcb.root
    if root_crl.crl.issuer.public_bytes() != root.subject.public_bytes():
        raise QuoteError("crl-invalid", "root CA CRL is not issued by the root")
    if not crl_signed_by(root_crl.crl, root):
        raise QuoteError("crl-signature-invalid", "root CA CRL signature does not verify")
    for sj, what in ((tcb, "TCB info"), (qe, "QE identity")):
        if sj.root.public_bytes(serialization.Encoding.DER) != root.public_bytes(serialization.Encoding.DER):
            raise QuoteError("certificate-chain-invalid", f"{what} chain ends in another root")
        if root_crl.crl.get_revoked_certificate_by_serial_number(sj.signing_cert.serial_number) is not None:
            raise QuoteError("tcb-signing-revoked", f"the {what} signing certificate is revoked")
    pck_crl = _crl(c.pck_crl, "PCK CRL")
    return VerifiedCollateral(tcb, qe, pck_crl, root_crl, c.digests(), _crl_ca(c, pck_crl, root))


def _crl_ca(c: Collateral, pck_crl: Crl, root: x509.Certificate) -> bytes:
    """The PCK CA from the CRL's issuer chain, if it is issued by the root and signed the CRL (else b"").

    The chain is a convenience (the CA that matters is the one in each quote's PCK chain): a quote whose CA is
    byte-identical to this one needs no second check of the CRL signature or of the CA's certificate.
    """
    try:
        chain = load_pem_certificates(c.pck_crl_issuer_chain.rstrip(b"\0"))
    except ValueError:
        return b""
    if len(chain) != 2 or chain[1].public_bytes(serialization.Encoding.DER) != root.public_bytes(
        serialization.Encoding.DER
    ):
        return b""
    ca = chain[0]
    if not issued_by(ca, root) or not crl_signed_by(pck_crl.crl, ca):
        return b""
    return ca.public_bytes(serialization.Encoding.DER)


def collateral_validity(collateral: Collateral, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,)) -> tuple[int, int]:
    """Check collateral's signatures and chains (no quote needed); return its window ``[not_before, not_after)``.

    The window is the intersection of the TCB info, QE identity, both CRLs and the signing certificates.
    Raises :class:`QuoteError` when the collateral is malformed, badly signed or from an untrusted root.
    """
    c = verify_collateral(collateral, frozenset(roots))
    starts = [c.tcb.issue, c.qe.issue, c.pck_crl.this_update, c.root_crl.this_update]
    ends = [c.tcb.next_update, c.qe.next_update, c.pck_crl.next_update, c.root_crl.next_update]
    for cert in (c.tcb.signing_cert, c.tcb.root):
        starts.append(timestamp(cert.not_valid_before_utc))
        ends.append(timestamp(cert.not_valid_after_utc))
    return max(starts), min(ends)
