"""TDX quote verification against Intel PCS collateral (the DCAP procedure, pure: no I/O, time passed in).

Steps follow Intel's Quote Verification Library, lettered as in our notes: A parse, B PCK chain to the
pinned root, C CRLs and revocation, D PCK SGX extension, E TCB info, F QE identity, G TDX module identity,
H QE report signature, I attestation-key binding, J QE identity policy, K quote signature, L TCB status,
M relying-party policy (debug TDs always rejected). Every early exit is a rejection.

:class:`VerificationCache` memoises work that depends only on exact bytes (collateral parsing and
signatures, the PCK chain, QE report signatures, TCB level matching); time-dependent checks run on every
call, so a cache hit never changes a verdict.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtensionOID, NameOID

from atlas_log.errors import QuoteError
from atlas_log.tdx.collateral import Collateral, raw_members
from atlas_log.tdx.pck import PckExtension, parse_pck_extension
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import INTEL_QE_VENDOR_ID, QeReport, Quote, parse_quote

__all__ = [
    "INTEL_ROOT_SPKI_SHA256",
    "Verdict",
    "VerificationCache",
    "collateral_validity",
    "quote_platform",
    "td_attributes_problem",
    "verify_quote",
]

# SHA-256 of the Intel SGX Root CA's SubjectPublicKeyInfo: the one trust anchor of production verification.
INTEL_ROOT_SPKI_SHA256 = "a0af031289f5d5d4132f9186068a7fc13628633ba235777472e29b6b6c67a49e"

T = TypeVar("T")
_ECDSA = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of verifying one quote. ``accept`` is False with ``code``/``reason`` on any rejection."""

    accept: bool
    code: str | None = None
    reason: str | None = None
    tcb_status: str | None = None
    advisory_ids: tuple[str, ...] = ()
    fmspc: str | None = None
    tcb_evaluation_data_number: int | None = None
    quote_version: int | None = None
    td: dict[str, Any] = field(default_factory=dict)
    collateral_expiry: int | None = None
    collateral_digests: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "accept": self.accept,
            "code": self.code,
            "reason": self.reason,
            "tcb_status": self.tcb_status,
            "advisory_ids": list(self.advisory_ids),
            "fmspc": self.fmspc,
            "tcb_evaluation_data_number": self.tcb_evaluation_data_number,
            "quote_version": self.quote_version,
            "td": self.td,
            "collateral_expiry": self.collateral_expiry,
            "collateral_digests": self.collateral_digests,
        }

    def raise_for_reject(self) -> Verdict:
        if not self.accept:
            raise QuoteError(self.code or "rejected", self.reason or "quote rejected")
        return self


# --- small helpers ----------------------------------------------------------------------------------


def _ts(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp() if dt.tzinfo is None else dt.timestamp())


def _iso(value: Any, what: str) -> int:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise QuoteError("collateral-malformed", f"{what} is not an ISO 8601 UTC time")
    try:
        return _ts(datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not an ISO 8601 UTC time: {value!r}") from exc


def _window(start: int, end: int, now: int, what: str, *, kind: str = "collateral") -> None:
    """``start <= now < end``, else expired / not yet valid."""
    if now < start:
        raise QuoteError(f"{kind}-not-yet-valid", f"{what} is not valid until {start} (now {now})")
    if now >= end:
        raise QuoteError(f"{kind}-expired", f"{what} expired at {end} (now {now})")


def _cn(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _spki_sha256(cert: x509.Certificate) -> str:
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _raw_sig(sig: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


@functools.lru_cache(maxsize=4096)
def _p256_key(raw: bytes) -> ec.EllipticCurvePublicKey:  # a platform's attestation key recurs in every quote
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw)
    except ValueError as exc:
        raise QuoteError("attestation-key-invalid", "attestation key is not a P-256 point") from exc


def _ecdsa_ok(key: Any, sig: bytes, data: bytes) -> bool:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return False
    try:
        key.verify(sig, data, _ECDSA)
    except InvalidSignature:
        return False
    return True


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    return isinstance(key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(key)


def _hex(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise QuoteError("collateral-malformed", f"{what} must be {size} bytes of hex")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not hex") from exc


# --- collateral, parsed and signature-checked once (time checks are separate) -------------------------


@dataclass(frozen=True, slots=True)
class _SignedJson:
    body: dict[str, Any]
    issue: int
    next_update: int
    signing_cert: x509.Certificate
    root: x509.Certificate


@dataclass(frozen=True, slots=True)
class _Crl:
    crl: x509.CertificateRevocationList
    this_update: int
    next_update: int


@dataclass(frozen=True, slots=True)
class _ParsedCollateral:
    tcb: _SignedJson
    qe: _SignedJson
    pck_crl: _Crl
    root_crl: _Crl
    digests: dict[str, str]
    # The PCK CA of the CRL issuer chain, checked against the root, whose key verified the PCK CRL (DER;
    # empty when the issuer chain was unusable and the CRL must be checked against the quote's own CA).
    pck_crl_ca_der: bytes


def _load_chain(pem: bytes, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.rstrip(b"\0"))
    except ValueError as exc:
        raise QuoteError("certificate-chain-invalid", f"{what} is not a PEM certificate chain") from exc


def _signing_chain(chain_pem: bytes, roots: frozenset[str], what: str) -> tuple[x509.Certificate, x509.Certificate]:
    chain = _load_chain(chain_pem, f"{what} issuer chain")
    if len(chain) != 2:
        raise QuoteError("certificate-chain-invalid", f"{what} issuer chain must hold 2 certificates")
    signing, root = chain
    if _spki_sha256(root) not in roots or not _issued_by(root, root):
        raise QuoteError("untrusted-root", f"{what} issuer chain does not end in a trusted root")
    if "TCB Signing" not in _cn(signing) or not _issued_by(signing, root):
        raise QuoteError("certificate-chain-invalid", f"{what} signing certificate is not issued by the root")
    return signing, root


def _signed_json(body: bytes, member: str, chain: tuple[x509.Certificate, x509.Certificate], what: str) -> _SignedJson:
    members = raw_members(body, what)
    if set(members) != {member, "signature"}:
        raise QuoteError("collateral-malformed", f"{what} must hold exactly '{member}' and 'signature'")
    signing, root = chain
    sig_hex = json.loads(members["signature"])
    signature = _hex(sig_hex, 64, f"{what} signature")
    if not _ecdsa_ok(signing.public_key(), _raw_sig(signature), members[member].encode()):
        code = "tcb-info-signature-invalid" if member == "tcbInfo" else "qe-identity-signature-invalid"
        raise QuoteError(code, f"{what} signature does not verify over the served bytes")
    try:
        parsed = json.loads(members[member])
    except ValueError as exc:
        raise QuoteError("collateral-malformed", f"{what} is not JSON") from exc
    if not isinstance(parsed, dict):
        raise QuoteError("collateral-malformed", f"{what} is not an object")
    issue = _iso(parsed.get("issueDate"), f"{what}.issueDate")
    next_update = _iso(parsed.get("nextUpdate"), f"{what}.nextUpdate")
    return _SignedJson(parsed, issue, next_update, signing, root)


def _crl(der: bytes, what: str) -> _Crl:
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError as exc:
        raise QuoteError("crl-invalid", f"{what} is not a DER CRL") from exc
    if crl.next_update_utc is None:
        raise QuoteError("crl-invalid", f"{what} has no nextUpdate")
    for oid in (ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER):
        try:
            crl.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound as exc:
            raise QuoteError("crl-invalid", f"{what} lacks the {oid._name} extension") from exc
    return _Crl(crl, _ts(crl.last_update_utc), _ts(crl.next_update_utc))


def _parse_collateral(c: Collateral, roots: frozenset[str]) -> _ParsedCollateral:
    try:
        return _parse_collateral_unchecked(c, roots)
    except (ValueError, TypeError, AttributeError) as exc:  # lazily parsed certificate or CRL fields
        raise QuoteError("collateral-malformed", f"collateral is malformed: {exc}") from exc


def _parse_collateral_unchecked(c: Collateral, roots: frozenset[str]) -> _ParsedCollateral:
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
    if not _crl_signed_by(root_crl.crl, root):
        raise QuoteError("crl-signature-invalid", "root CA CRL signature does not verify")
    for sj, what in ((tcb, "TCB info"), (qe, "QE identity")):
        if sj.root.public_bytes(serialization.Encoding.DER) != root.public_bytes(serialization.Encoding.DER):
            raise QuoteError("certificate-chain-invalid", f"{what} chain ends in another root")
        if root_crl.crl.get_revoked_certificate_by_serial_number(sj.signing_cert.serial_number) is not None:
            raise QuoteError("tcb-signing-revoked", f"the {what} signing certificate is revoked")
    pck_crl = _crl(c.pck_crl, "PCK CRL")
    return _ParsedCollateral(tcb, qe, pck_crl, root_crl, c.digests(), _crl_ca(c, pck_crl, root))


def _crl_ca(c: Collateral, pck_crl: _Crl, root: x509.Certificate) -> bytes:
    """The PCK CA from the CRL's issuer chain, if it is issued by the root and signed the CRL (else b"").

    The chain is a convenience (the CA that matters is the one in each quote's PCK chain): a quote whose CA is
    byte-identical to this one needs no second check of the CRL signature or of the CA's certificate.
    """
    try:
        chain = x509.load_pem_x509_certificates(c.pck_crl_issuer_chain.rstrip(b"\0"))
    except ValueError:
        return b""
    if len(chain) != 2 or chain[1].public_bytes(serialization.Encoding.DER) != root.public_bytes(
        serialization.Encoding.DER
    ):
        return b""
    ca = chain[0]
    if not _issued_by(ca, root) or not _crl_signed_by(pck_crl.crl, ca):
        return b""
    return ca.public_bytes(serialization.Encoding.DER)


# --- the PCK chain carried in the quote ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PckChain:
    leaf: x509.Certificate
    intermediate: x509.Certificate
    root: x509.Certificate
    extension: PckExtension
    leaf_der: bytes
    root_der: bytes


@dataclass(frozen=True, slots=True)
class _Link:
    """What holds between one collateral set and one PCK chain, whatever the time: checked once."""

    windows: tuple[tuple[int, int, str, str], ...]  # (start, end, what, kind) to check against `now`
    expiry: int


def _pck_chain(pem: bytes, roots: frozenset[str], verified_root: bytes = b"", verified_ca: bytes = b"") -> _PckChain:
    try:
        return _pck_chain_unchecked(pem, roots, verified_root, verified_ca)
    except (ValueError, TypeError) as exc:  # cryptography parses certificate fields lazily
        raise QuoteError("certificate-chain-invalid", f"PCK chain certificate is malformed: {exc}") from exc


def _pck_chain_unchecked(pem: bytes, roots: frozenset[str], verified_root: bytes, verified_ca: bytes) -> _PckChain:
    chain = _load_chain(pem, "PCK certificate chain")
    if len(chain) != 3:
        raise QuoteError("certificate-chain-invalid", f"PCK chain holds {len(chain)} certificates, not 3")
    leaf, inter, root = chain
    if (
        "SGX PCK Certificate" not in _cn(leaf)
        or _cn(inter)
        not in (
            "Intel SGX PCK Platform CA",
            "Intel SGX PCK Processor CA",
        )
        or "SGX Root CA" not in _cn(root)
    ):
        raise QuoteError("certificate-chain-invalid", "PCK chain certificates do not have the expected names")
    if _spki_sha256(root) not in roots:
        raise QuoteError("untrusted-root", "PCK chain does not end in a trusted root")
    root_der = root.public_bytes(serialization.Encoding.DER)
    # The root is pinned by its key; its self-signature was already checked if it is the collateral's root.
    if root_der != verified_root and not _issued_by(root, root):
        raise QuoteError("untrusted-root", "the root is not self-signed")
    inter_ok = (
        root_der == verified_root
        and inter.public_bytes(serialization.Encoding.DER) == verified_ca
        and verified_ca != b""
    ) or _issued_by(inter, root)
    if not inter_ok or not _issued_by(leaf, inter):
        raise QuoteError("certificate-chain-invalid", "PCK chain signatures do not verify")
    return _PckChain(
        leaf, inter, root, parse_pck_extension(leaf), leaf.public_bytes(serialization.Encoding.DER), root_der
    )


# --- caches -------------------------------------------------------------------------------------------


class VerificationCache:
    """Bounded memo tables keyed by exact bytes. Safe to share across calls and collateral refreshes."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._tables: dict[str, OrderedDict[Any, Any]] = {}

    def get(self, table: str, key: Any, compute: Callable[[], T]) -> T:
        t = self._tables.setdefault(table, OrderedDict())
        try:
            t.move_to_end(key)
            hit: T = t[key]
            return hit
        except KeyError:
            pass
        value = compute()  # exceptions are not cached: a failure is recomputed (and fails again)
        t[key] = value
        if len(t) > self.size:
            t.popitem(last=False)
        return value

    def only(self, *tables: str) -> VerificationCache:
        """A new cache holding copies of just these tables (e.g. ``"collateral"`` after a refresh)."""
        other = VerificationCache(self.size)
        for name in tables:
            if name in self._tables:
                other._tables[name] = OrderedDict(self._tables[name])
        return other


def prime_cache(
    cache: VerificationCache, collateral: Collateral, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,)
) -> None:
    """Parse and verify ``collateral`` into ``cache`` now (the server does this when it fetches collateral)."""
    rs = frozenset(roots)
    cache.get("collateral", (collateral.digest, rs), lambda: _parse_collateral(collateral, rs))


class _NoCache(VerificationCache):
    def get(self, table: str, key: Any, compute: Callable[[], T]) -> T:
        return compute()


# --- TCB evaluation -----------------------------------------------------------------------------------

_CONFIG_STATUSES = {"ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"}


def _components(level: dict[str, Any], name: str) -> tuple[int, ...]:
    comps = level.get("tcb", {}).get(name)
    if not isinstance(comps, list) or len(comps) != 16:
        raise QuoteError("collateral-malformed", f"TCB level {name} must list 16 components")
    out = []
    for c in comps:
        svn = c.get("svn") if isinstance(c, dict) else None
        if not isinstance(svn, int) or isinstance(svn, bool):
            raise QuoteError("collateral-malformed", f"TCB level {name} has a non-integer svn")
        out.append(svn)
    return tuple(out)


def _match_platform(
    levels: list[dict[str, Any]], sgx: tuple[int, ...], pce_svn: int, tee_svn: bytes
) -> dict[str, Any] | None:
    start = 2 if tee_svn[1] > 0 else 0  # Intel: components 0-1 are the module, rated by its identity
    keyed = []
    for level in levels:
        pcesvn = level.get("tcb", {}).get("pcesvn")
        if not isinstance(pcesvn, int):
            raise QuoteError("collateral-malformed", "TCB level has no integer pcesvn")
        keyed.append(((_components(level, "sgxtcbcomponents"), pcesvn, _components(level, "tdxtcbcomponents")), level))
    keyed.sort(key=lambda kv: kv[0], reverse=True)
    for (lsgx, lpce, ltdx), level in keyed:
        if (
            all(a >= b for a, b in zip(sgx, lsgx, strict=True))
            and pce_svn >= lpce
            and all(tee_svn[i] >= ltdx[i] for i in range(start, 16))
        ):
            return level
    return None


def _status(level: dict[str, Any], what: str) -> tuple[str, tuple[str, ...]]:
    status = level.get("tcbStatus")
    if not isinstance(status, str):
        raise QuoteError("collateral-malformed", f"{what} has no tcbStatus")
    adv = level.get("advisoryIDs", [])
    if not isinstance(adv, list) or not all(isinstance(a, str) for a in adv):
        raise QuoteError("collateral-malformed", f"{what} advisoryIDs must be strings")
    return status, tuple(adv)


def _converge(platform: str, components: Iterable[str]) -> str:
    comps = list(components)
    if "Revoked" in comps:
        return "Revoked"
    if "OutOfDate" in comps:
        if platform in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform in _CONFIG_STATUSES:
            return "OutOfDateConfigurationNeeded"
    return platform


def _module_identity(tcb: dict[str, Any], tee_svn: bytes) -> dict[str, Any] | None:
    if tee_svn[1] == 0:
        return None
    want = f"TDX_{tee_svn[1]:02X}"
    for ident in tcb.get("tdxModuleIdentities", []) or []:
        if isinstance(ident, dict) and str(ident.get("id", "")).upper() == want:
            return ident
    raise QuoteError("tdx-module-mismatch", f"TCB info has no TDX module identity {want}")


def _evaluate(
    tcb: dict[str, Any], ext: PckExtension, tee_svn: bytes, qe: tuple[str, tuple[str, ...]]
) -> tuple[str, tuple[str, ...]]:
    """Steps L2-L5: platform level, module level, convergence; returns (status, advisories)."""
    levels = tcb.get("tcbLevels")
    if not isinstance(levels, list) or not levels:
        raise QuoteError("collateral-malformed", "TCB info has no tcbLevels")
    level = _match_platform(levels, ext.sgx_tcb_components, ext.pce_svn, tee_svn)
    if level is None:
        raise QuoteError("tcb-level-not-found", "no TCB level in the TCB info matches this platform")
    status, adv = _status(level, "TCB level")
    comps, advisories = [qe[0]], [*adv, *qe[1]]
    ident = _module_identity(tcb, tee_svn)
    if ident is not None:
        mod_level = next(
            (
                lv
                for lv in ident.get("tcbLevels", []) or []
                if isinstance(lv, dict)
                and isinstance(lv.get("tcb", {}).get("isvsvn"), int)
                and tee_svn[0] >= lv["tcb"]["isvsvn"]
            ),
            None,
        )
        if mod_level is None:
            raise QuoteError("tdx-module-tcb-not-supported", f"TDX module SVN {tee_svn[0]} matches no level")
        mod_status, mod_adv = _status(mod_level, "TDX module level")
        comps.append(mod_status)
        advisories.extend(mod_adv)
    return _converge(status, comps), tuple(dict.fromkeys(advisories))


# --- TD attributes (step M) ---------------------------------------------------------------------------

# TDATTRIBUTES, a little-endian u64 (reference/tdx.md §1.3; Intel TDX module ABI, TD_ATTRIBUTES).
_TD_DEBUG = 1 << 0
_TD_SEPT_VE_DISABLE = 1 << 28
_TD_MIGRATABLE = 1 << 29
_TD_PKS = 1 << 30
_TD_KL = 1 << 31
_TD_PERFMON = 1 << 63
# Everything else is reserved in the ABI this verifier knows: TUD bits 1-7, SEC bits 8-27, OTHER bits 32-62.
_TD_RESERVED = ((1 << 64) - 1) & ~(_TD_DEBUG | _TD_SEPT_VE_DISABLE | _TD_MIGRATABLE | _TD_PKS | _TD_KL | _TD_PERFMON)


def td_attributes_problem(td_attributes: bytes, policy: Policy) -> QuoteError | None:
    """Why a TD with these TDATTRIBUTES (8 bytes, as in the TD report) is not acceptable under ``policy``,
    or None when it is. Pure.

    DEBUG is always rejected (the host can read and change the TD). As dcap-qvl 0.7 does by default
    (reference/tdx.md §2.2 M): SEPT_VE_DISABLE must be set (else the host can make the guest take #VE on
    private pages it removed), MIGRATABLE (the TD may move to a host this quote says nothing about), PERFMON
    (the host can profile the TD) and reserved bits (a feature this verifier cannot judge) are rejected —
    each unless the policy allows it. PKS and KL only add protections and are always allowed.
    """
    if len(td_attributes) != 8:
        return QuoteError("quote-malformed", "TDATTRIBUTES must be 8 bytes")
    attrs = int.from_bytes(td_attributes, "little")
    if attrs & _TD_DEBUG:
        return QuoteError("td-debug", "the TD runs in debug mode (TDATTRIBUTES.DEBUG is set)")
    if policy.require_sept_ve_disable and not attrs & _TD_SEPT_VE_DISABLE:
        return QuoteError(
            "td-sept-ve-not-disabled",
            "TDATTRIBUTES.SEPT_VE_DISABLE (bit 28) is clear; launch the TD with it set, or set "
            "require_sept_ve_disable=false in the policy if its guest disables SEPT #VE at run time",
        )
    if attrs & _TD_MIGRATABLE and not policy.allow_migratable:
        return QuoteError(
            "td-migratable", "the TD is migratable (TDATTRIBUTES bit 29); the policy does not allow_migratable"
        )
    if attrs & _TD_PERFMON and not policy.allow_perfmon:
        return QuoteError(
            "td-perfmon", "the TD exposes PERFMON to the host (TDATTRIBUTES bit 63); the policy does not allow_perfmon"
        )
    if attrs & _TD_RESERVED and not policy.allow_reserved_td_attributes:
        bits = [i for i in range(64) if attrs & _TD_RESERVED & (1 << i)]
        return QuoteError(
            "td-attributes-reserved",
            f"TDATTRIBUTES sets reserved bits {bits}; the policy does not allow_reserved_td_attributes",
        )
    return None


# --- the procedure --------------------------------------------------------------------------------------


def _link(coll: _ParsedCollateral, chain: _PckChain, root_der: bytes) -> _Link:
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
    if (inter_der != coll.pck_crl_ca_der or not inter_der) and not _crl_signed_by(pck_crl, chain.intermediate):
        raise QuoteError("crl-signature-invalid", "PCK CRL signature does not verify with the PCK CA key")
    if pck_crl.get_revoked_certificate_by_serial_number(chain.leaf.serial_number) is not None:
        raise QuoteError("pck-revoked", "the PCK certificate is revoked")
    tcb, ext = coll.tcb.body, chain.extension
    if str(tcb.get("fmspc", "")).lower() != ext.fmspc.hex() or str(tcb.get("pceId", "")).lower() != ext.pce_id.hex():
        raise QuoteError("tcb-info-mismatch", "TCB info is for another FMSPC or PCE-ID than the PCK certificate")
    windows = [
        (_ts(cert.not_valid_before_utc), _ts(cert.not_valid_after_utc), what, "certificate")
        for cert, what in (
            (chain.root, "root CA"),
            (chain.intermediate, "PCK CA"),
            (chain.leaf, "PCK certificate"),
            (coll.tcb.signing_cert, "TCB signing certificate"),
        )
    ]
    windows += [
        (c.this_update, c.next_update, what, "collateral")
        for c, what in ((coll.root_crl, "root CA CRL"), (coll.pck_crl, "PCK CRL"))
    ]
    windows += [
        (j.issue, j.next_update, what, "collateral") for j, what in ((coll.tcb, "TCB info"), (coll.qe, "QE identity"))
    ]
    return _Link(tuple(windows), min(w[1] for w in windows))


def _check_module(tcb: dict[str, Any], tee_svn: bytes, mr_signer_seam: bytes, seam_attributes: bytes) -> bool:
    ident = _module_identity(tcb, tee_svn)
    module = ident if ident is not None else tcb.get("tdxModule")
    if not isinstance(module, dict):
        raise QuoteError("collateral-malformed", "TCB info has no tdxModule")
    if mr_signer_seam != _hex(module.get("mrsigner"), 48, "tdxModule.mrsigner"):
        raise QuoteError("tdx-module-mismatch", "MRSIGNERSEAM does not match the TDX module identity")
    if any(seam_attributes):
        raise QuoteError("tdx-module-mismatch", "SEAMATTRIBUTES must be zero")
    return True


def _check_qe(qe: dict[str, Any], qr: QeReport) -> tuple[str, tuple[str, ...]]:
    misc = int(_hex(qe.get("miscselect"), 4, "miscselect").hex(), 16)
    misc_mask = int(_hex(qe.get("miscselectMask"), 4, "miscselectMask").hex(), 16)
    attrs, attrs_mask = _hex(qe.get("attributes"), 16, "attributes"), _hex(qe.get("attributesMask"), 16, "mask")
    if (qr.misc_select & misc_mask) != misc or bytes(
        a & m for a, m in zip(qr.attributes, attrs_mask, strict=True)
    ) != attrs:
        raise QuoteError("qe-identity-mismatch", "QE MISCSELECT or ATTRIBUTES do not match the QE identity")
    if qr.mr_signer != _hex(qe.get("mrsigner"), 32, "mrsigner") or qr.isv_prod_id != qe.get("isvprodid"):
        raise QuoteError("qe-identity-mismatch", "QE MRSIGNER or ISVPRODID do not match the QE identity")
    levels = sorted(
        (
            lv
            for lv in qe.get("tcbLevels", []) or []
            if isinstance(lv, dict) and isinstance(lv.get("tcb", {}).get("isvsvn"), int)
        ),
        key=lambda lv: lv["tcb"]["isvsvn"],
        reverse=True,
    )
    level = next((lv for lv in levels if lv["tcb"]["isvsvn"] <= qr.isv_svn), None)
    if level is None:
        raise QuoteError("qe-tcb-not-supported", f"QE ISVSVN {qr.isv_svn} matches no QE identity TCB level")
    return _status(level, "QE TCB level")


def _verify(
    raw: bytes | Quote,
    collateral: Collateral,
    now: int,
    policy: Policy,
    roots: frozenset[str],
    cache: VerificationCache,
    facts: dict[str, Any],
) -> None:
    quote = raw if isinstance(raw, Quote) else parse_quote(raw)  # A
    facts["quote_version"] = quote.version
    if quote.qe_vendor_id != INTEL_QE_VENDOR_ID:
        raise QuoteError("qe-vendor-unknown", "QE vendor ID is not Intel's")
    body = quote.body
    facts["td"] = {
        "mr_td": body.mr_td.hex(),
        "rtmr": [r.hex() for r in body.rtmr],
        "mr_config_id": body.mr_config_id.hex(),
        "mr_owner": body.mr_owner.hex(),
        "mr_owner_config": body.mr_owner_config.hex(),
        "td_attributes": body.td_attributes.hex(),
        "xfam": body.xfam.hex(),
        "mr_seam": body.mr_seam.hex(),
        "tee_tcb_svn": body.tee_tcb_svn.hex(),
        "report_data": body.report_data.hex(),
    }
    digest = collateral.digest
    coll = cache.get("collateral", (digest, roots), lambda: _parse_collateral(collateral, roots))
    facts["collateral_digests"] = coll.digests
    root_der = coll.tcb.root.public_bytes(serialization.Encoding.DER)
    pem = quote.pck_chain_pem
    chain = cache.get("pck", (pem, roots), lambda: _pck_chain(pem, roots, root_der, coll.pck_crl_ca_der))  # B, D
    ext = chain.extension
    facts["fmspc"] = ext.fmspc.hex().upper()
    tcb, qe = coll.tcb.body, coll.qe.body
    facts["tcb_evaluation_data_number"] = tcb.get("tcbEvaluationDataNumber")
    link = cache.get("link", (digest, pem, roots), lambda: _link(coll, chain, root_der))  # C, E5
    # Time: every certificate, CRL and signed document must be valid now (B4, C1-2, E3, F).
    for start, end, what, kind in link.windows:
        _window(start, end, now, what, kind=kind)
    facts["collateral_expiry"] = link.expiry
    # G: TDX module identity.
    cache.get(
        "module",
        (digest, body.tee_tcb_svn, body.mr_signer_seam, body.seam_attributes),
        lambda: _check_module(tcb, body.tee_tcb_svn, body.mr_signer_seam, body.seam_attributes),
    )
    # H: QE report signed by the PCK key.
    qe_sig_ok = cache.get(
        "qe-report",
        (chain.leaf_der, quote.qe_report.raw, quote.qe_report_signature),
        lambda: _ecdsa_ok(chain.leaf.public_key(), _raw_sig(quote.qe_report_signature), quote.qe_report.raw),
    )
    if not qe_sig_ok:
        raise QuoteError("qe-report-signature-invalid", "QE report signature does not verify with the PCK key")
    # I: the attestation key is the one the QE vouched for.
    if hashlib.sha256(quote.attestation_key + quote.qe_auth_data).digest() != quote.qe_report.report_data[:32]:
        raise QuoteError("attestation-key-binding-invalid", "QE report data does not bind the attestation key")
    # J: the QE is Intel's TD quoting enclave at an acceptable TCB.
    qe_status = cache.get("qe", (digest, quote.qe_report.raw), lambda: _check_qe(qe, quote.qe_report))
    # K: the quote itself.
    if not _ecdsa_ok(_p256_key(quote.attestation_key), _raw_sig(quote.signature), quote.signed):
        raise QuoteError("quote-signature-invalid", "quote signature does not verify with the attestation key")
    # L: TCB status (launch), and for TDX 1.5 the relaunch rule with TEE_TCB_SVN2.
    status, advisories = cache.get(
        "tcb",
        (digest, ext, body.tee_tcb_svn, qe_status),
        lambda: _evaluate(tcb, ext, body.tee_tcb_svn, qe_status),
    )
    if body.tee_tcb_svn2 is not None and status in ("OutOfDate", "OutOfDateConfigurationNeeded"):
        try:
            current, _ = _evaluate(tcb, ext, body.tee_tcb_svn2, qe_status)
        except QuoteError:
            current = None
        if current in ("UpToDate", "SWHardeningNeeded", *_CONFIG_STATUSES):
            config = status == "OutOfDateConfigurationNeeded" or current in _CONFIG_STATUSES
            status = "TDRelaunchAdvisedConfigurationNeeded" if config else "TDRelaunchAdvised"
    facts["tcb_status"], facts["advisory_ids"] = status, advisories
    # M: relying-party policy.
    attributes = td_attributes_problem(body.td_attributes, policy)
    if attributes is not None:
        raise attributes
    if status not in policy.allowed_statuses:
        raise QuoteError("tcb-status-not-allowed", f"TCB status {status} is not allowed by the policy")
    denied = policy.denied_advisories.intersection(advisories)
    if denied:
        raise QuoteError("advisory-denied", f"advisories denied by the policy: {sorted(denied)}")
    number = facts["tcb_evaluation_data_number"]
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


def quote_platform(
    quote: bytes | Quote, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,), cache: VerificationCache | None = None
) -> tuple[str, str]:
    """``(FMSPC, "platform" | "processor")`` of the PCK certificate in a quote: which collateral it needs.

    Raises :class:`QuoteError` when the quote or its PCK chain is malformed or untrusted.
    """
    q = quote if isinstance(quote, Quote) else parse_quote(quote)
    rs = frozenset(roots)
    chain = (cache or _NO_CACHE).get("pck", (q.pck_chain_pem, rs), lambda: _pck_chain(q.pck_chain_pem, rs))
    ca = "processor" if "Processor" in _cn(chain.intermediate) else "platform"
    return chain.extension.fmspc.hex().upper(), ca


def collateral_validity(collateral: Collateral, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,)) -> tuple[int, int]:
    """Check collateral's signatures and chains (no quote needed); return its window ``[not_before, not_after)``.

    The window is the intersection of the TCB info, QE identity, both CRLs and the signing certificates.
    Raises :class:`QuoteError` when the collateral is malformed, badly signed or from an untrusted root.
    """
    c = _parse_collateral(collateral, frozenset(roots))
    starts = [c.tcb.issue, c.qe.issue, c.pck_crl.this_update, c.root_crl.this_update]
    ends = [c.tcb.next_update, c.qe.next_update, c.pck_crl.next_update, c.root_crl.next_update]
    for cert in (c.tcb.signing_cert, c.tcb.root):
        starts.append(_ts(cert.not_valid_before_utc))
        ends.append(_ts(cert.not_valid_after_utc))
    return max(starts), min(ends)


_DEFAULT_POLICY = Policy()
_NO_CACHE = _NoCache()


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
    facts: dict[str, Any] = {}
    try:
        _verify(quote, collateral, now, policy or _DEFAULT_POLICY, frozenset(roots), cache or _NO_CACHE, facts)
    except QuoteError as exc:
        return Verdict(False, exc.code, exc.message, **_fact_fields(facts))
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        # Last line of defence: malformed input that slipped past a specific check is still a rejection.
        return Verdict(False, "malformed-input", f"quote or collateral is malformed: {exc}", **_fact_fields(facts))
    return Verdict(True, **_fact_fields(facts))


def _fact_fields(facts: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "tcb_status",
        "advisory_ids",
        "fmspc",
        "tcb_evaluation_data_number",
        "quote_version",
        "td",
        "collateral_expiry",
        "collateral_digests",
    )
    out = {k: facts[k] for k in keys if k in facts}
    if "advisory_ids" in out:
        out["advisory_ids"] = tuple(out["advisory_ids"])
    return out
