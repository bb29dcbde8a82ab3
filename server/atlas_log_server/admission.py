"""Admission: turn a submitted JSON body into a verified entry, or a problem naming what to fix.

The pipeline runs in order: schema and size, DSSE signatures over PAE, then each configured gate (the
TEE quote check slots in here), then the canonical leaf. Nothing is written before every step passed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from cryptography import x509

from atlas_log._encoding import json_loads
from atlas_log.bundle import CODE_SIGNING
from atlas_log.disclosure import BLINDED, check_blinded
from atlas_log.entry import MAX_LEAF_SIZE, build_entry
from atlas_log.errors import FormatError, SubmissionError, VerificationError
from atlas_log.intoto import Extraction
from atlas_log.submission import ParsedSubmission, parse_submission
from atlas_log.tee import Attestation
from atlas_log_server.errors import InvalidRequest, Rejected, ServerError, TooLarge, Unavailable
from atlas_log_server.log.sequencer import PendingEntry
from atlas_log_server.vault import Vault, VaultError

Gate = Callable[[ParsedSubmission, int], Awaitable[Attestation | None]]
"""An admission step after the signature check, given the admission time; returns the attestation it
established (or None), or raises a :class:`ServerError`."""


def _reject(slug: str, detail: str) -> ServerError:
    return InvalidRequest(slug, detail)


# The longest string (UTF-8 bytes) stored in an indexed text column: a B-tree entry must fit in a third of a
# page (about 2,700 bytes) after compression, and lower() (the name index) can grow text by half.
MAX_INDEXED_BYTES = 1024


def _storable(value: str, field: str) -> None:
    """Refuse a string PostgreSQL would refuse in a text column: U+0000, a lone surrogate (not encodable as
    UTF-8), or one too long for the column's index. Checked here, so one submission's statement can never fail
    the batch it would share with others."""
    if "\x00" in value:
        raise _reject("invalid-statement", f"{field} contains U+0000, which cannot be stored; remove it")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise _reject("invalid-statement", f"{field} contains a lone surrogate, which is not Unicode text") from None
    if size > MAX_INDEXED_BYTES:
        raise _reject(
            "invalid-statement", f"{field} is {size} bytes of UTF-8; at most {MAX_INDEXED_BYTES} can be indexed"
        )


INLINE_MAX_BYTES = 12 * 1024
"""Statements (the envelope's payload) up to this size, with at most :data:`_INLINE_SIGNATURES` signatures by
elliptic-curve keys, are checked on the event loop: measured at most about 2 ms (an attested entry's body is
about 7.5 KB)."""

INLINE_DECODE_MAX_BYTES = 128 * 1024
INLINE_DECODE_MAX_TOKENS = 3000
"""A body is decoded on the event loop when it is at most :data:`INLINE_MAX_BYTES`, or at most
:data:`INLINE_DECODE_MAX_BYTES` with at most this many JSON structural characters: decoding costs by the
token, and long strings (a quote, GPU evidence) are scanned at memory speed (a composite entry with one GPU:
18.6 KB, 41 tokens, 0.05 ms)."""

_INLINE_SIGNATURES = 2

_LIGHT_KEY_CHARS = 300  # an Ed25519 or ECDSA P-256/P-384 key in base64 or PEM is shorter; an RSA key longer


def _decode(raw: bytes) -> object:
    """The body parsed by the one JSON parser, within the one set of limits, replay and verify-evidence use."""
    try:
        return json_loads(raw, "request body")
    except FormatError as exc:
        raise _reject("invalid-json", str(exc)) from exc


def _cheap_to_decode(raw: bytes) -> bool:
    """Whether decoding ``raw`` costs little (see :data:`INLINE_DECODE_MAX_TOKENS`). Decides only where the
    work runs, never what is accepted."""
    if len(raw) <= INLINE_MAX_BYTES:
        return True
    if len(raw) > INLINE_DECODE_MAX_BYTES:
        return False
    return sum(raw.count(c) for c in (b"{", b"[", b",", b":")) <= INLINE_DECODE_MAX_TOKENS


def _light(obj: object) -> bool:
    """Whether checking ``obj`` costs at most a couple of elliptic-curve signature checks over a small
    statement: few signatures, supplied keys that are all short (no RSA), a payload and disclosures of at most
    :data:`INLINE_MAX_BYTES` together and no certificate chain to validate. Decides only where the work runs,
    never what is accepted."""
    if not isinstance(obj, dict) or "sigstoreBundle" in obj:
        return not isinstance(obj, dict)
    envelope = obj.get("dsseEnvelope")
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    if isinstance(signatures, list) and len(signatures) > _INLINE_SIGNATURES:
        return False
    # What parse_submission decodes and parses beyond the outer JSON: the payload and each disclosure (base64
    # of JSON, whose tokens the outer count cannot see) together stay within one small statement's size.
    payload = envelope.get("payload") if isinstance(envelope, dict) else None
    disclosures = obj.get("disclosures")
    hidden = len(payload) if isinstance(payload, str) else 0
    if isinstance(disclosures, list):
        hidden += sum(len(d) if isinstance(d, str) else INLINE_MAX_BYTES for d in disclosures)
    if hidden > INLINE_MAX_BYTES:
        return False
    material = obj.get("verificationMaterial")
    if not isinstance(material, dict) or "x509CertificateChain" in material:
        return not isinstance(material, dict)
    keys = material.get("publicKeys")
    return not isinstance(keys, list) or all(
        not isinstance(k, dict) or all(not isinstance(v, str) or len(v) <= _LIGHT_KEY_CHARS for v in k.values())
        for k in keys
    )


class Admission:
    """The ordered admission pipeline."""

    def __init__(
        self,
        gates: Sequence[Gate],
        x509_roots: Sequence[x509.Certificate] = (),
        x509_eku: str = CODE_SIGNING,
        vault: Vault | None = None,
    ) -> None:
        self.gates = tuple(gates)
        self.x509_roots = tuple(x509_roots)
        self.x509_eku = x509_eku
        self.vault = vault

    def parse(self, raw: bytes, now: int) -> ParsedSubmission:
        """Schema, signature (and certificate chain) and statement checks."""
        return self._check(_decode(raw), now)

    def _check(self, obj: object, now: int) -> ParsedSubmission:
        if not isinstance(obj, dict):
            raise _reject("invalid-submission", "request body must be a JSON object")
        try:
            return parse_submission(obj, now, self.x509_roots, self.x509_eku)
        except SubmissionError as exc:
            # A chain that does not lead to a trusted root is well formed but unacceptable.
            kind = Rejected if exc.code == "certificate-untrusted" else InvalidRequest
            raise kind(exc.code, exc.message) from exc

    async def admit(self, raw: bytes, now: int, tenant: str | None = None) -> PendingEntry:
        """Run the whole pipeline; the result is ready for the sequencer. A confidential entry's disclosures
        are sealed in the vault and left out of the stored submission (which anyone may read)."""
        # The checks are CPU work, bounded per request by the limits of atlas_log.dsse and _encoding. Heavy
        # work (a large statement or a dense body, RSA keys, certificate chains) runs in a worker thread, so the
        # event loop keeps answering reads such as GET /checkpoint meanwhile; a small statement signed with
        # elliptic-curve keys (the common case: well under a millisecond, whatever TEE evidence rides beside
        # it) is checked inline, sparing it the thread hand-off.
        obj: object = None
        if not _cheap_to_decode(raw):
            sub = await asyncio.to_thread(self.parse, raw, now)
        else:
            obj = _decode(raw)
            sub = self._check(obj, now) if _light(obj) else await asyncio.to_thread(self._check, obj, now)
        _check_storable(sub.extraction)
        self._check_blinded(sub, tenant)
        attestation: Attestation | None = None
        for gate in self.gates:
            established = await gate(sub, now)
            if established is not None:
                attestation = established
        built = build_entry(sub, attestation)
        # The leaf adds the integration time and one back-link per linked digest: bound its size now, so a
        # batch never meets an entry it cannot encode.
        bound = built.leaf_size_bound()
        if bound > MAX_LEAF_SIZE:
            raise TooLarge(
                "entry-too-large",
                f"the entry's leaf would be about {bound} bytes; the limit is "
                f"{MAX_LEAF_SIZE} (fewer signatures, subjects or materials per entry)",
            )
        sealed = None
        if sub.disclosures:
            if self.vault is None:
                raise _reject("invalid-disclosure", "this log does not keep confidential entries (it has no vault)")
            encoded = [d.encoded for d in sub.disclosures]
            try:
                if self.vault.wrapper.external:  # a service call may block: off the event loop
                    sealed = await asyncio.to_thread(self.vault.seal, built.entry_id, encoded)
                else:
                    sealed = self.vault.seal(built.entry_id, encoded)
            except VaultError as exc:
                why = f"the disclosures cannot be sealed now: {exc}"
                raise Unavailable("vault-unavailable", why, retry_after=5) from exc
            raw = _without_disclosures(obj if isinstance(obj, dict) else json.loads(raw))
        return PendingEntry(
            built.entry_id,
            built.body,
            raw,
            now,
            built.linked,
            built.rows,
            built.predicate_type,
            built.attestation_id,
            sealed,
            tenant,
        )

    def _check_blinded(self, sub: ParsedSubmission, tenant: str | None) -> None:
        """Every blinded digest the index will hold is the submitting tenant's blinding of a digest the
        statement hides (:func:`~atlas_log.disclosure.check_blinded`), so nobody can file an entry under
        another's hidden artifact, and a blinded key always stands for a value its disclosure proves."""
        wanted = {(f.path + ".digest", a) for f in sub.extraction.facts for a, _ in f.digests if a.startswith(BLINDED)}
        if not wanted:
            return
        if sub.revealed is None:
            raise _reject("invalid-disclosure", "a blinded digest needs the disclosure of the digest it hides")
        if tenant is None or self.vault is None:
            raise _reject("invalid-disclosure", "blinded digests are keyed per tenant: submit with your tenant's token")
        try:
            checked = check_blinded(sub.revealed, self.vault.blinding_key(tenant))
        except VerificationError as exc:
            raise _reject("invalid-disclosure", str(exc)) from exc
        missing = wanted - checked
        if missing:
            path, alg = min(missing)
            raise _reject("invalid-disclosure", f"the blinded digest {path}.{alg} stands for no hidden digest")


def _without_disclosures(obj: dict[str, Any]) -> bytes:
    """The submission as stored and served: everything but its disclosures (``obj`` is the submission the
    strict parser accepted, or the standard parser's reading of the same bytes)."""
    return json.dumps(
        {k: v for k, v in obj.items() if k != "disclosures"}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def _check_storable(ex: Extraction) -> None:
    """Every string of the statement's facts that the index stores (see :func:`_storable`); checked before the
    gates, with the statement's other checks."""
    if ex.predicate_type is not None:
        _storable(ex.predicate_type, "predicateType")
    for f in ex.facts:
        for a, h in f.digests:  # one index row per digest
            _storable(f.path, "a statement's JSON path")
            stored = (("digest", f"{a}:{h}"), ("role", f.role), ("name", f.name), ("version", f.version))
            for what, value in (*stored, ("annotations.mlRole", f.ml_role)):
                if value is not None:
                    _storable(value, f"{f.path}.{what}")
