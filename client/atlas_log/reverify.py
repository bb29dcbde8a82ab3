"""Re-verification of one log entry from the submission it was admitted from, trusting nothing the log says
about it. Pure: the caller supplies the collateral and cited quotes (see :mod:`atlas_log.replay` for a driver
that fetches them from a log, and :mod:`atlas_log.evidence` for one that reads them from evidence).

:func:`check_entry`: the submission parses and its signatures verify; the quote, if any, verifies against the
collateral the entry names (checked against that digest) at the entry's integration time, under the
verifier's own trust roots; its REPORTDATA binds this statement (or key) and nonce; and the leaf is, byte for
byte, the one :func:`atlas_log.entry.build_entry` (the log's own builder) makes from these facts. What needs
other entries (back-links, cited key attestations, nonces) is returned in :class:`Checked` for the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography import x509

from atlas_log.bundle import CODE_SIGNING
from atlas_log.certificates import load_pem_certificates
from atlas_log.entry import LINKED_ROLES, Entry, build_entry, parse_leaf
from atlas_log.errors import Error, FormatError
from atlas_log.gpu import CORIM_ROOT_SHA256, DEVICE_IDENTITY_ROOT_SHA256, parse_rim, verify_gpu_evidence
from atlas_log.gpu.roots import certificate_sha256
from atlas_log.gpu.verdict import repeated_device
from atlas_log.merkle import leaf_hash
from atlas_log.submission import (
    ParsedSubmission,
    TeeRequest,
    expected_gpu_nonce,
    expected_report_data,
    parse_submission,
    parse_tee,
)
from atlas_log.tdx.binding import GPU_TAG, KEY_TAG, ZERO_NONCE
from atlas_log.tdx.collateral import Collateral
from atlas_log.tdx.pki import INTEL_ROOT_SPKI_SHA256
from atlas_log.tdx.policy import TCB_STATUSES, Policy
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verification import verify_quote
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log.tee import Attestation, GpuRecord, InheritedAttestation, OwnQuote, TeeRecord, VerdictRecord
from atlas_log.vmap import MapCommitment

__all__ = [
    "Checked",
    "Trust",
    "check_entry",
]

# The log's own policy is not known to a monitor: any TCB status and TD attributes but DEBUG are replayed, and
# what the verdict says must equal what the entry recorded. Debug TDs, bad signatures and broken chains fail
# whatever the policy.
_ANY_STATUS = Policy(
    allowed_statuses=frozenset(TCB_STATUSES),
    require_sept_ve_disable=False,
    allow_migratable=True,
    allow_perfmon=True,
    allow_reserved_td_attributes=True,
)


_MALFORMED = (Error, KeyError, TypeError, ValueError, AttributeError)  # what a malformed member raises


@dataclass(frozen=True, slots=True)
class Trust:
    """What the verifying party trusts: TDX root CA key fingerprints, GPU device identity and RIM signing root
    certificate fingerprints (SHA-256 of the DER), and X.509 roots (DER) with the extended key usage (dotted
    OID) a signing certificate must carry, for certificate-signed entries."""

    tdx_roots: tuple[str, ...] = (INTEL_ROOT_SPKI_SHA256,)
    gpu_device_roots: tuple[str, ...] = (DEVICE_IDENTITY_ROOT_SHA256,)
    gpu_rim_roots: tuple[str, ...] = (CORIM_ROOT_SHA256,)
    x509_roots: tuple[bytes, ...] = ()
    x509_eku: str = CODE_SIGNING


@dataclass(frozen=True, slots=True)
class Checked:
    """One entry checked on its own; ``problem`` says why it does not verify (None when it does). The other
    fields are what the checks across entries need."""

    index: int
    leaf_hash: bytes
    problem: str | None = None
    linked: tuple[str, ...] = ()
    links: Mapping[str, int | None] = field(default_factory=dict)
    named: tuple[str, ...] = ()  # every artifact digest the entry names (its map keys)
    nonce: tuple[int, bytes] | None = None  # (checkpoint size, root) the quote's nonce names
    key_reference: tuple[int, str, Mapping[str, Any]] | None = None  # (entry, signer key, quote hash and mode)
    attests_key: tuple[str, Mapping[str, Any]] | None = None  # (key fingerprint, quote hash and mode)
    integrated_time: int | None = None  # of an entry that verifies on its own
    commitment: MapCommitment | None = None  # the log's own map commitment (checked against the leaves by the caller)
    # With a grant: whether the disclosures the log serves for a confidential entry were checked ("checked",
    # "not granted", "erased", "not kept"), and why they do not match what the entry hides.
    disclosures: str | None = None
    disclosure_problem: str | None = None


def check_entry(
    index: int,
    leaf: bytes,
    submission: bytes | dict[str, Any],
    collateral: Callable[[str], Collateral | None],
    trust: Trust,
    cache: VerificationCache | None = None,
    cited_quote: Callable[[int], bytes | None] | None = None,
    rim: Callable[[str], bytes | None] | None = None,
    ocsp: Callable[[str], bytes | None] | None = None,
) -> Checked:
    """Re-verify one entry from its submission (see the module docstring); never raises for a bad entry.

    ``collateral(digest)`` is the collateral set with that digest (None: not available). ``cited_quote(i)`` is
    the raw quote of entry ``i`` as the log serves it (None: not served). An entry citing a key attestation
    records that quote re-verified at its own integration time, so without ``cited_quote`` (offline evidence
    of one entry) its verdict is taken as recorded, not re-derived. ``rim(digest)`` is the GPU RIM document
    with that SHA-256 (None: not available), ``ocsp(digest)`` likewise the OCSP response; a composite entry's
    GPUs are re-appraised with exactly the RIMs and OCSP responses it records.
    """
    lh = leaf_hash(leaf)
    try:
        return _check(index, leaf, lh, submission, collateral, trust, cache, cited_quote, rim, ocsp)
    except _MALFORMED as exc:
        return Checked(index, lh, f"entry {index}: {exc}")


def _check(
    index: int,
    leaf: bytes,
    lh: bytes,
    raw: bytes | dict[str, Any],
    collateral: Callable[[str], Collateral | None],
    trust: Trust,
    cache: VerificationCache | None,
    cited_quote: Callable[[int], bytes | None] | None,
    rim: Callable[[str], bytes | None] | None,
    ocsp: Callable[[str], bytes | None] | None,
) -> Checked:
    try:
        stored = parse_leaf(leaf)
    except FormatError as exc:
        return Checked(index, lh, f"entry {index}: the leaf is not an entry: {exc}")
    if MapCommitment.is_commitment(stored.body):
        # The log's own statement, not a submission: well formed, covering only leaves before it, linking
        # nothing. Its root is checked against the leaves by whoever holds them all (the replay).
        commitment = MapCommitment.from_body(stored.body)
        if commitment.tree_size > index or stored.links:
            return Checked(index, lh, f"entry {index}: a map commitment may cover only earlier leaves and link nothing")
        return Checked(index, lh, None, integrated_time=stored.integrated_time, commitment=commitment)
    if MapCommitment.is_earlier_format(stored.body):  # the log's own, of a map format that proves nothing
        return Checked(index, lh, None, integrated_time=stored.integrated_time)
    t = stored.integrated_time
    roots = tuple(x509.load_der_x509_certificate(r) for r in trust.x509_roots)
    sub = parse_submission(raw, t, roots, trust.x509_eku)
    try:
        checked = _check_submission(
            index, leaf, lh, stored, sub, roots, collateral, trust, cache, cited_quote, rim, ocsp
        )
    except _MALFORMED as exc:
        checked = Checked(index, lh, f"entry {index}: {exc}")
    if checked.problem is None:
        return checked
    # What its statement names counts whether or not the entry verifies: the log indexed it, so its map keys
    # and later entries' back-links include it, and one bad entry must not make every later check fail too.
    ex = sub.extraction
    return replace(checked, linked=tuple(ex.digests(*LINKED_ROLES)), named=tuple(ex.digests()))


def _check_submission(
    index: int,
    leaf: bytes,
    lh: bytes,
    stored: Entry,
    sub: ParsedSubmission,
    roots: tuple[x509.Certificate, ...],
    collateral: Callable[[str], Collateral | None],
    trust: Trust,
    cache: VerificationCache | None,
    cited_quote: Callable[[int], bytes | None] | None,
    rim: Callable[[str], bytes | None] | None,
    ocsp: Callable[[str], bytes | None] | None,
) -> Checked:
    t, recorded = stored.integrated_time, stored.body.get("tee")
    attestation: Attestation | None = None
    nonce: tuple[int, bytes] | None = None
    key_reference = attests_key = None
    if sub.tee is not None:
        request = parse_tee(sub.tee, len(sub.signers))
        signer = sub.signers[request.signature_index]
        if not isinstance(recorded, dict) or not isinstance(recorded.get("simulated"), bool):
            return Checked(index, lh, f"entry {index}: the submission has a tee block but the entry records none")
        record = TeeRecord.from_json(recorded)
        size = None
        if request.nonce != ZERO_NONCE:
            size = record.nonce_checkpoint_size
            if size is None or not 0 < size <= index:
                return Checked(index, lh, f"entry {index}: the nonce names no earlier checkpoint size")
            nonce = (size, request.nonce)
        ref = request.key_attestation_entry
        quote = request.quote if ref is None else cited_quote(ref) if cited_quote is not None else None
        evidence: OwnQuote | InheritedAttestation
        if ref is not None and cited_quote is None:
            evidence = InheritedAttestation(ref, record.evidence.verdict)  # offline: not re-derivable
        elif quote is None:
            return Checked(index, lh, f"entry {index}: the log does not serve the quote of entry {ref} it cites")
        else:
            digest = record.evidence.verdict.collateral_set
            coll = collateral(digest)
            if coll is None or coll.digest != digest:
                return Checked(index, lh, f"entry {index}: the collateral it names ({digest}) is not available")
            parsed = parse_quote(quote)
            verdict = verify_quote(parsed, coll, t, _ANY_STATUS, roots=trust.tdx_roots, cache=cache)
            whose = "its quote" if ref is None else f"the quote of entry {ref} it cites"
            if not verdict.accept:
                return Checked(index, lh, f"entry {index}: {whose} does not verify: {verdict.code}: {verdict.reason}")
            if ref is not None:
                # The gate re-verified the cited quote when it admitted this entry: the same derivation.
                evidence = InheritedAttestation(ref, VerdictRecord.of(verdict, coll.digest))
                quote_id = hashlib.sha256(parsed.raw).hexdigest()
                key_reference = (ref, signer.fingerprint, _key_identity(quote_id, record.simulated))
            elif verdict.td is None or verdict.td.report_data != expected_report_data(request, sub.envelope, signer):
                return Checked(index, lh, f"entry {index}: the quote's REPORTDATA does not bind this entry")
            else:
                evidence = OwnQuote.of(parsed, verdict, coll.digest)
                logged = record.evidence
                if isinstance(logged, OwnQuote) and logged.quote_sha256 == hashlib.sha256(quote).hexdigest():
                    evidence = replace(evidence, quote_sha256=logged.quote_sha256)  # logged before padding was cut off
                if request.binding == KEY_TAG:
                    attests_key = (signer.fingerprint, _key_identity(evidence.quote_sha256, record.simulated))
        gpus: tuple[GpuRecord, ...] = ()
        if request.binding == GPU_TAG:
            appraised = _gpus(request, record, sub, t, rim, ocsp, trust)
            if isinstance(appraised, str):
                return Checked(index, lh, f"entry {index}: {appraised}")
            gpus = appraised
        attestation = Attestation(request, evidence, record.simulated, size, gpus)
    built = build_entry(sub, attestation, chain_digests=_records_chain(stored.body))
    links = stored.links
    if links is None or set(links) != set(built.linked):
        return Checked(index, lh, f"entry {index}: its back-links do not cover the artifacts it names")
    if built.leaf(t, links) != leaf:
        return Checked(index, lh, f"entry {index}: the logged body is not the one its submission produces")
    return Checked(
        index,
        lh,
        None,
        built.linked,
        links,
        tuple(sub.extraction.digests()),
        nonce,
        key_reference,
        attests_key,
        integrated_time=t,
    )


def _records_chain(body: Any) -> bool:
    """Whether a logged body records its certificate chains' digests (``chainSha256``)."""
    sigs = body.get("signatures") if isinstance(body, dict) else None
    return isinstance(sigs, list) and any(
        isinstance(s, dict)
        and isinstance(s.get("verifier"), dict)
        and isinstance(s["verifier"].get("certificate"), dict)
        and "chainSha256" in s["verifier"]["certificate"]
        for s in sigs
    )


def _key_identity(quote_sha256: str, simulated: bool) -> dict[str, Any]:
    """What an entry citing a key attestation and the attestation it cites must agree on."""
    return {"quoteSha256": quote_sha256, "simulated": simulated}


def _trusted_root(certs: list[x509.Certificate], fingerprints: tuple[str, ...]) -> x509.Certificate | None:
    return certs[-1] if certs and certificate_sha256(certs[-1]) in fingerprints else None


def _gpus(
    request: TeeRequest,
    record: TeeRecord,
    sub: ParsedSubmission,
    t: int,
    rim: Callable[[str], bytes | None] | None,
    ocsp: Callable[[str], bytes | None] | None,
    trust: Trust,
) -> tuple[GpuRecord, ...] | str:
    """The GPU records of a composite entry re-derived at its integration time ``t`` with the RIMs and OCSP
    responses it records (by digest), or why they cannot be."""
    nonce = expected_gpu_nonce(request, sub.envelope, sub.signers[request.signature_index])
    out, verdicts = [], []
    for n, item in enumerate(request.gpus):
        logged = record.gpus[n].rims if n < len(record.gpus) else ()
        documents: dict[str, bytes] = {}
        for kind, _, _, digest in logged:
            document = rim(digest) if rim is not None else None
            if document is None or hashlib.sha256(document).hexdigest() != digest:
                return f"the RIM it records for GPU {n} ({digest}) is not available"
            documents[kind] = document
        responses = []
        for _, serial, _, digest in record.gpus[n].revocation if n < len(record.gpus) else ():
            response = ocsp(digest) if ocsp is not None else None
            if response is None or hashlib.sha256(response).hexdigest() != digest:
                return f"the OCSP response it records for GPU {n} (certificate {serial}, {digest}) is not available"
            responses.append(response)
        rim_root = None
        if documents:
            rim_root = _trusted_root(list(parse_rim(next(iter(documents.values()))).certificates), trust.gpu_rim_roots)
        verdict = verify_gpu_evidence(
            item.report,
            item.certificate_chain,
            nonce=nonce,
            at=t,
            driver_rim=documents.get("driver"),
            vbios_rim=documents.get("vbios"),
            evidence_nonce=item.nonce,
            architecture=item.architecture,
            device_root=_trusted_root(load_pem_certificates(item.certificate_chain), trust.gpu_device_roots),
            rim_root=rim_root,
            ocsp=responses,
        )
        if not verdict.accept:
            return f"GPU {n} does not verify: {verdict.code}: {verdict.reason}"
        out.append(GpuRecord.of(verdict, item.report, documents))
        verdicts.append(verdict)
    repeated = repeated_device(verdicts)
    if repeated is not None:
        return f"GPU {repeated[1]} is GPU {repeated[0]} again (UEID {verdicts[repeated[0]].ueid})"
    return tuple(out)
