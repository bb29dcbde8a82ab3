"""TDX quote verification against Intel PCS collateral: the DCAP procedure (pure: no I/O, time passed in).

Steps follow Intel's Quote Verification Library, lettered as in our notes: A parse, B PCK chain to the
pinned root, C CRLs and revocation, D PCK SGX extension, E TCB info, F QE identity, G TDX module identity,
H QE report signature, I attestation-key binding, J QE identity policy, K quote signature, L TCB status,
M relying-party policy (debug TDs always rejected). Every early exit is a rejection.

The steps live in their own modules (:mod:`verified_collateral`, :mod:`pck_chain`, :mod:`tcb`,
:mod:`td_attributes`); this one orders them, checks time, and reports a :class:`Verdict`. A
:class:`VerificationCache` memoises the parts that depend only on exact bytes, so a hit never changes a
verdict.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atlas_log.errors import QuoteError
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.pck_chain import PckChain, verify_pck_chain
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256, crl_signed_by, der_signature, ecdsa_verifies, timestamp
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import INTEL_QE_VENDOR_ID, Quote, TdReport, parse_quote
from atlas_log.tdx.tcb import TcbStatus, check_module, check_qe_identity, evaluate_tcb, relaunch_status
from atlas_log.tdx.td_attributes import td_attributes_problem
from atlas_log.tdx.verdict import Verdict
from atlas_log.tdx.verification_cache import NO_CACHE, VerificationCache
from atlas_log.tdx.verified_collateral import VerifiedCollateral, verify_collateral

__all__ = ["prime_cache", "verify_quote"]


@dataclass(frozen=True, slots=True)
class _Window:
    """A certificate, CRL or signed document is valid in ``[start, end)``."""

    start: int
    end: int
    what: str
    kind: str  # "certificate" or "collateral": the prefix of the rejection code

    def check(self, now: int) -> None:
        if now < self.start:
            raise QuoteError(f"{self.kind}-not-yet-valid", f"{self.what} is not valid until {self.start} (now {now})")
        if now >= self.end:
            raise QuoteError(f"{self.kind}-expired", f"{self.what} expired at {self.end} (now {now})")


@dataclass(frozen=True, slots=True)
class _Link:
    """What holds between one collateral set and one PCK chain, whatever the time: checked once."""

    windows: tuple[_Window, ...]  # to check against `now`
    expiry: int


@dataclass(slots=True)
class _Facts:
    """What the procedure established so far; a rejection reports it too."""

    quote_version: int | None = None
    td: TdReport | None = None
    collateral_digests: dict[str, str] = field(default_factory=dict)
    fmspc: str | None = None
    tcb_evaluation_data_number: int | None = None
    collateral_expiry: int | None = None
    tcb: TcbStatus | None = None

    def verdict(self, accept: bool, code: str | None = None, reason: str | None = None) -> Verdict:
        return Verdict(
            accept,
            code,
            reason,
            tcb_status=self.tcb.status if self.tcb else None,
            advisory_ids=self.tcb.advisories if self.tcb else (),
            fmspc=self.fmspc,
            tcb_evaluation_data_number=self.tcb_evaluation_data_number,
            quote_version=self.quote_version,
            td=self.td,
            collateral_expiry=self.collateral_expiry,
            collateral_digests=self.collateral_digests,
        )


@functools.lru_cache(maxsize=4096)
def _p256_key(raw: bytes) -> ec.EllipticCurvePublicKey:  # a platform's attestation key recurs in every quote
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
    except ValueError as exc:
        raise QuoteError("attestation-key-invalid", "attestation key is not a P-256 point") from exc


def prime_cache(
    cache: VerificationCache, collateral: Collateral, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,)
) -> None:
    """Parse and verify ``collateral`` into ``cache`` now (the server does this when it fetches collateral)."""
    rs = frozenset(roots)
    cache.get("collateral", (collateral.digest, rs), lambda: verify_collateral(collateral, rs))


def _link(coll: VerifiedCollateral, chain: PckChain, root_der: bytes) -> _Link:
    """Time-independent checks between collateral and a PCK chain: same root, revocation, CRL issuer, FMSPC."""
    if chain.root_der != root_der:
        raise QuoteError("certificate-chain-invalid", "collateral and PCK chain end in different roots")
    root_crl, pck_crl = coll.root_crl.crl, coll.pck_crl.crl
    if root_crl.get_revoked_certificate_by_serial_number(chain.intermediate.serial_number) is not None:
        raise QuoteError("pck-ca-revoked", "the PCK CA certificate is revoked by the root CA CRL")
    if root_crl.get_revoked_certificate_by_serial_number(chain.root.serial_number) is not None:
        raise QuoteError("root-revoked", "the root certificate is listed in the root CA CRL")
    if pck_crl.issuer.public_bytes() != chain.leaf.issuer.public_bytes():
        raise QuoteError("crl-invalid", "PCK CRL is not from the PCK certificate's issuer (platform vs processor)")
    inter_der = chain.intermediate.public_bytes(serialization.Encoding.DER)
    if (inter_der != coll.pck_crl_ca_der or not inter_der) and not crl_signed_by(pck_crl, chain.intermediate):
        raise QuoteError("crl-signature-invalid", "PCK CRL signature does not verify with the PCK CA key")
    if pck_crl.get_revoked_certificate_by_serial_number(chain.leaf.serial_number) is not None:
        raise QuoteError("pck-revoked", "the PCK certificate is revoked")
    tcb, ext = coll.tcb.body, chain.extension
    if str(tcb.get("fmspc", "")).lower() != ext.fmspc.hex() or str(tcb.get("pceId", "")).lower() != ext.pce_id.hex():
        raise QuoteError("tcb-info-mismatch", "TCB info is for another FMSPC or PCE-ID than the PCK certificate")
    windows = [
        _Window(timestamp(cert.not_valid_before_utc), timestamp(cert.not_valid_after_utc), what, "certificate")
        for cert, what in (
            (chain.root, "root CA"),
            (chain.intermediate, "PCK CA"),
            (chain.leaf, "PCK certificate"),
            (coll.tcb.signing_cert, "TCB signing certificate"),
        )
    ]
    windows += [
        _Window(c.this_update, c.next_update, what, "collateral")
        for c, what in ((coll.root_crl, "root CA CRL"), (coll.pck_crl, "PCK CRL"))
    ]
    windows += [
        _Window(j.issue, j.next_update, what, "collateral")
        for j, what in ((coll.tcb, "TCB info"), (coll.qe, "QE identity"))
    ]
    return _Link(tuple(windows), min(w.end for w in windows))


def _verify(
    raw: bytes | Quote,
    collateral: Collateral,
    now: int,
    policy: Policy,
    roots: frozenset[str],
    cache: VerificationCache,
    facts: _Facts,
) -> None:
    quote = raw if isinstance(raw, Quote) else parse_quote(raw)  # A
    facts.quote_version = quote.version
    if quote.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise QuoteError("qe-vendor-unknown", "QE vendor ID is not Intel's")
    body = quote.body
    facts.td = body
    digest = collateral.digest
    coll = cache.get("collateral", (digest, roots), lambda: verify_collateral(collateral, roots))
    facts.collateral_digests = coll.digests
    root_der = coll.tcb.root.public_bytes(serialization.Encoding.DER)
    pem = quote.pck_chain_pem
    chain = cache.get(  # B, D
        "pck", (pem, roots), lambda: verify_pck_chain(pem, roots, root_der, coll.pck_crl_ca_der)
    )
    ext = chain.extension
    facts.fmspc = ext.fmspc.hex().upper()
    tcb, qe = coll.tcb.body, coll.qe.body
    facts.tcb_evaluation_data_number = tcb.get("tcbEvaluationDataNumber")
    link = cache.get("link", (digest, pem, roots), lambda: _link(coll, chain, root_der))  # C, E5
    # Time: every certificate, CRL and signed document must be valid now (B4, C1-2, E3, F).
    for window in link.windows:
        window.check(now)
    facts.collateral_expiry = link.expiry
    # G: TDX module identity.
    cache.get(
        "module",
        (digest, body.tee_tcb_svn, body.mr_signer_seam, body.seam_attributes),
        lambda: check_module(tcb, body.tee_tcb_svn, body.mr_signer_seam, body.seam_attributes),
    )
    # H: QE report signed by the PCK key.
    qe_sig_ok = cache.get(
        "qe-report",
        (chain.leaf_der, quote.qe_report.raw, quote.qe_report_signature),
        lambda: ecdsa_verifies(chain.leaf.public_key(), der_signature(quote.qe_report_signature), quote.qe_report.raw),
    )
    if not qe_sig_ok:
        raise QuoteError("qe-report-signature-invalid", "QE report signature does not verify with the PCK key")
    # I: the attestation key is the one the QE vouched for.
    if hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest() != quote.qe_report.report_data[:32]:
        raise QuoteError("attestation-key-binding-invalid", "QE report data does not bind the attestation key")
    # J: the QE is Intel's TD quoting enclave at an acceptable TCB.
    qe_status = cache.get("qe", (digest, quote.qe_report.raw), lambda: check_qe_identity(qe, quote.qe_report))
    # K: the quote itself.
    if not ecdsa_verifies(_p256_key(quote.attestation_key), der_signature(quote.signature), quote.signed):
        raise QuoteError("quote-signature-invalid", "quote signature does not verify with the attestation key")
    # L: TCB status (launch), and for TDX 1.5 the relaunch rule with TEE_TCB_SVN2.
    launch = cache.get(
        "tcb",
        (digest, ext, body.tee_tcb_svn, qe_status),
        lambda: evaluate_tcb(tcb, ext, body.tee_tcb_svn, qe_status),
    )
    status = relaunch_status(launch, tcb, ext, body.tee_tcb_svn2, qe_status)
    facts.tcb = status
    # M: relying-party policy.
    attributes = td_attributes_problem(body.td_attributes, policy)
    if attributes is not None:
        raise attributes
    if status.status not in policy.allowed_statuses:
        raise QuoteError("tcb-status-not-allowed", f"TCB status {status.status} is not allowed by the policy")
    denied = policy.denied_advisories.intersection(status.advisories)
    if denied:
        raise QuoteError("advisory-denied", f"advisories denied by the policy: {sorted(denied)}")
    number = facts.tcb_evaluation_data_number
    if policy.min_tcb_evaluation_data_number is not None and (
        not isinstance(number, int) or number < policy.min_tcb_evaluation_data_number
    ):
        raise QuoteError("tcb-evaluation-too-old", f"tcbEvaluationDataNumber {number} is below the policy minimum")
    if policy.mr_td is not None and body.mr_td.hex() not in policy.mr_td:
        raise QuoteError("mrtd-not-allowed", "MRTD is not on the policy's allow-list")
    for i, allowed in enumerate(policy.rtmr):
        if allowed is not None and body.rtmr[i].hex() not in allowed:
            raise QuoteError("rtmr-not-allowed", f"RTMR{i} is not on the policy's allow-list")
    if policy.mr_config_id is not None and body.mr_config_id.hex() not in policy.mr_config_id:
        raise QuoteError("mrconfigid-not-allowed", "MRCONFIGID is not on the policy's allow-list")


_DEFAULT_POLICY = Policy()


def verify_quote(
    quote: bytes | Quote,
    collateral: Collateral,
    now: int,
    policy: Policy | None = None,
    *,
    roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,),
    cache: VerificationCache | None = None,
) -> Verdict:
    """Verify a TDX quote (raw, or already parsed by :func:`parse_quote`) against collateral at time ``now``
    (Unix seconds) under ``policy``.

    ``roots`` are SHA-256 fingerprints (hex) of trusted root SubjectPublicKeyInfos; the default pins the Intel
    SGX Root CA. Never raises for a bad quote or bad collateral: the verdict says ``accept=False`` with the
    stable ``code`` and a ``reason``; facts established before the rejection are filled in.
    """
    facts = _Facts()
    try:
        _verify(quote, collateral, now, policy or _DEFAULT_POLICY, frozenset(roots), cache or NO_CACHE, facts)
    except QuoteError as exc:
        return facts.verdict(False, exc.code, exc.message)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # Last line of defence: malformed input that slipped past a specific check is still a rejection.
        return facts.verdict(False, "malformed-input", f"quote or collateral is malformed: {exc}")
    return facts.verdict(True)
