"""The PCK certificate chain a quote carries (steps B and D): leaf, PCK Platform or Processor CA, and a
pinned root, with the leaf's SGX extension (FMSPC, PCE-ID, TCB SVNs)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from atlas_log.errors import QuoteError
from atlas_log.tdx.pck import PckExtension, parse_pck_extension
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256, common_name, issued_by, load_chain, spki_sha256
from atlas_log.tdx.quote import Quote, parse_quote
from atlas_log.tdx.verification_cache import NO_CACHE, VerificationCache

__all__ = ["PckChain", "quote_platform", "verify_pck_chain"]

_CA_NAMES = ("Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA")


@dataclass(frozen=True, slots=True)
class PckChain:
    """A PCK chain whose signatures verified up to a trusted root."""

    leaf: x509.Certificate
    intermediate: x509.Certificate
    root: x509.Certificate
    extension: PckExtension
    leaf_der: bytes
    root_der: bytes


def verify_pck_chain(
    pem: bytes, roots: frozenset[str], verified_root: bytes = b"", verified_ca: bytes = b""
) -> PckChain:
    """Check a PEM PCK chain against the trusted ``roots`` (SPKI SHA-256 fingerprints).

    ``verified_root`` and ``verified_ca`` (DER) are certificates whose signatures the caller already checked
    (the collateral's root and PCK CRL issuer): byte-identical ones are not checked again. Raises
    :class:`QuoteError` when the chain is malformed, misnamed, badly signed or from an untrusted root.
    """
    try:
        return _verify_unchecked(pem, roots, verified_root, verified_ca)
    except (ValueError, TypeError) as exc:  # cryptography parses certificate fields lazily
        raise QuoteError("certificate-chain-invalid", f"PCK chain certificate is malformed: {exc}") from exc


def _verify_unchecked(pem: bytes, roots: frozenset[str], verified_root: bytes, verified_ca: bytes) -> PckChain:
    chain = load_chain(pem, "PCK certificate chain")
    if len(chain) != 3:
        raise QuoteError("certificate-chain-invalid", f"PCK chain holds {len(chain)} certificates, not 3")
    leaf, inter, root = chain
    if (
        "SGX PCK Certificate" not in common_name(leaf)
        or common_name(inter) not in _CA_NAMES
        or "SGX Root CA" not in common_name(root)
    ):
        raise QuoteError("certificate-chain-invalid", "PCK chain certificates do not have the expected names")
    if spki_sha256(root) not in roots:
        raise QuoteError("untrusted-root", "PCK chain does not end in a trusted root")
    root_der = root.public_bytes(serialization.Encoding.DER)
    # The root is pinned by its key; its self-signature was already checked if it is the collateral's root.
    if root_der != verified_root and not issued_by(root, root):
        raise QuoteError("untrusted-root", "the root is not self-signed")
    inter_ok = (
        root_der == verified_root
        and inter.public_bytes(serialization.Encoding.DER) == verified_ca
        and verified_ca != b""
    ) or issued_by(inter, root)
    if not inter_ok or not issued_by(leaf, inter):
        raise QuoteError("certificate-chain-invalid", "PCK chain signatures do not verify")
    return PckChain(
        leaf, inter, root, parse_pck_extension(leaf), leaf.public_bytes(serialization.Encoding.DER), root_der
    )


def quote_platform(
    quote: bytes | Quote, roots: Iterable[str] = (INTEL_ROOT_SPKI_SHA256,), cache: VerificationCache | None = None
) -> tuple[str, str]:
    """``(FMSPC, "platform" | "processor")`` of the PCK certificate in a quote: which collateral it needs.

    Raises :class:`QuoteError` when the quote or its PCK chain is malformed or untrusted.
    """
    q = quote if isinstance(quote, Quote) else parse_quote(quote)
    rs = frozenset(roots)
    chain = (cache or NO_CACHE).get("pck", (q.pck_chain_pem, rs), lambda: verify_pck_chain(q.pck_chain_pem, rs))
    ca = "processor" if "Processor" in common_name(chain.intermediate) else "platform"
    return chain.extension.fmspc.hex().upper(), ca
