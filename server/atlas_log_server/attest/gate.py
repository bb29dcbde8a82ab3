"""The TDX admission gate: an entry is admitted only with a quote that verifies and commits to it.

Order: the ``tee`` block's shape → the nonce (zero, or the root of a recent checkpoint) → the quote's
platform → cached, verified collateral → ``verify_quote`` under the policy → the REPORTDATA binding → with
the composite binding, each GPU's evidence (:mod:`atlas_log_server.attest.gpu`). Every
failure is a 4xx problem whose type names the reason; an unavailable PCS is a 503 with ``Retry-After``.

Key mode with a ``keyAttestationEntry``: that entry must attest this signer's key, be at most
``key_attestation_max_age_s`` old, come from the TDX mode the log runs now, and its stored quote must pass
today — re-verified against the collateral in force now, under the current policy and roots. The new entry
records that verdict, not a copy of the old one (a key attested under collateral since revoked, or a policy
since tightened, must not keep signing entries the log calls attested).
"""

from __future__ import annotations

import hashlib

from atlas_log._encoding import b64decode, json_loads
from atlas_log.entry import parse_leaf
from atlas_log.errors import CollateralFetchError, FormatError, QuoteError, SubmissionError
from atlas_log.submission import ParsedSubmission, expected_gpu_nonce, expected_report_data, parse_tee
from atlas_log.tdx.binding import GPU_TAG, ZERO_NONCE
from atlas_log.tdx.pck_chain import quote_platform
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import Quote, parse_quote
from atlas_log.tdx.verdict import Verdict
from atlas_log.tdx.verification import verify_quote
from atlas_log.tdx.verification_cache import VerificationCache
from atlas_log.tee import Attestation, GpuRecord, InheritedAttestation, OwnQuote, TeeRecord, VerdictRecord
from atlas_log_server.attest.gpu import GpuAppraiser
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.db.repository import Repository, StoredEntry
from atlas_log_server.errors import Internal, InvalidRequest, Rejected, ServerError, Unavailable


def _reject(slug: str, detail: str) -> ServerError:
    return Rejected(slug, detail)


class TdxGate:
    def __init__(
        self,
        store: CollateralStore,
        repo: Repository,
        cache: VerificationCache,
        policy: Policy,
        roots: list[str],
        *,
        simulated: bool,
        allow_unattested: bool,
        nonce_max_age_s: int,
        require_fresh_nonce: bool,
        key_attestation_max_age_s: int,
        gpu: GpuAppraiser,
    ) -> None:
        self.gpu = gpu
        self.store = store
        self.repo = repo
        self.cache = cache
        self.policy = policy
        self.roots = roots
        self.simulated = simulated
        self.allow_unattested = allow_unattested
        self.nonce_max_age_s = nonce_max_age_s
        self.require_fresh_nonce = require_fresh_nonce
        self.key_attestation_max_age_s = key_attestation_max_age_s

    async def __call__(self, sub: ParsedSubmission, now: int) -> Attestation | None:
        """The attestation of ``sub`` at ``now`` (None: unattested, where the log admits that), or a
        :class:`ServerError` naming why it is refused."""
        tee = sub.tee
        if tee is None:
            if self.allow_unattested:
                return None
            raise _reject("tee-required", "this log admits only entries carrying a TDX quote in a 'tee' block")
        try:
            request = parse_tee(tee, len(sub.signers))
        except SubmissionError as exc:
            raise InvalidRequest(exc.code, exc.message) from exc
        if self.gpu.policy.required and request.binding != GPU_TAG:
            raise _reject(
                "gpu-evidence-required",
                f"this log admits only entries carrying their GPUs' evidence (binding {GPU_TAG}, tee.gpus)",
            )
        signer = sub.signers[request.signature_index]
        size = await self._nonce(request.nonce)
        if request.key_attestation_entry is not None:
            inherited = await self._attested_key(request.key_attestation_entry, signer.fingerprint, now)
            return Attestation(request, inherited, self.simulated, size)
        assert request.quote is not None
        try:
            # Only zero padding may follow the quote, and it is cut off before hashing (Quote.raw): one quote,
            # one identity.
            parsed = parse_quote(request.quote, zero_padding_only=True)
            verdict, collateral_set = await self._verify(parsed, now)
        except QuoteError as exc:
            raise _reject("tdx-" + exc.code, exc.message) from exc
        if not verdict.accept:
            raise _reject("tdx-" + (verdict.code or "rejected"), verdict.reason or "the quote was rejected")
        if verdict.td is None or verdict.td.report_data != expected_report_data(request, sub.envelope, signer):
            raise _reject(
                "tdx-binding-mismatch",
                f"the quote's REPORTDATA is not the {request.binding} binding of this entry, signer and nonce",
            )
        gpus: tuple[GpuRecord, ...] = ()
        if request.binding == GPU_TAG:
            # The quote commits to these reports (REPORTDATA, checked above); each must have been made for this
            # entry (its nonce) and be appraised under the log's GPU policy.
            gpus = await self.gpu.appraise(request.gpus, expected_gpu_nonce(request, sub.envelope, signer), now)
        return Attestation(request, OwnQuote.of(parsed, verdict, collateral_set), self.simulated, size, gpus)

    async def _verify(self, parsed: Quote, now: int) -> tuple[Verdict, str]:
        """``verify_quote`` at ``now`` against the collateral in force now, under the current policy and roots;
        returns the verdict and the digest of the collateral set used.

        Raises :class:`QuoteError` when the quote or its PCK chain is malformed or untrusted, and a 503
        :class:`Unavailable` when valid collateral cannot be had.
        """
        fmspc, ca = quote_platform(parsed, self.roots, self.cache)
        try:
            collateral = await self.store.get(fmspc, ca)
        except CollateralFetchError as exc:
            retry = str(int(exc.retry_after or 5))
            raise Unavailable(
                "collateral-unavailable",
                f"collateral for FMSPC {fmspc} is unavailable: {exc}",
                retry_after=int(retry),
            ) from exc
        except QuoteError as exc:
            raise Unavailable(
                "collateral-unavailable",
                f"PCS served collateral that does not verify: {exc}",
                retry_after=60,
            ) from exc
        verdict = verify_quote(parsed, collateral, now, self.policy, roots=self.roots, cache=self.cache)
        return verdict, collateral.digest

    async def _nonce(self, nonce: bytes) -> int | None:
        """The size of the recent checkpoint whose root ``nonce`` is (None for the zero nonce)."""
        if nonce == ZERO_NONCE:
            if self.require_fresh_nonce:
                raise _reject("tdx-nonce-required", "this log requires tee.nonce to be the root of a recent checkpoint")
            return None
        found = await self.repo.checkpoint_by_root(nonce)
        if found is None:
            raise _reject("tdx-nonce-unknown", "tee.nonce is not the root hash of any checkpoint of this log")
        size, age = found
        if age > self.nonce_max_age_s:
            raise _reject(
                "tdx-nonce-stale", f"tee.nonce is a checkpoint {int(age)} s old; the limit is {self.nonce_max_age_s} s"
            )
        return size

    async def _attested_key(self, idx: int, fingerprint: str, now: int) -> InheritedAttestation:
        """Entry ``idx``'s attestation of the key ``fingerprint``, its quote re-verified at ``now``."""
        entry = await self.repo.entry_by_index(idx)
        try:
            attested = parse_leaf(entry.leaf).tee if entry is not None else None
        except FormatError:
            attested = None
        if entry is None or attested is None or not attested.attests_key(fingerprint):
            raise _reject(
                "tdx-key-not-attested", f"entry {idx} is not a quote-attested key entry for this signer's key"
            )
        renew = "log a new key attestation (a fresh quote binding this key) and cite that entry"
        age = now - entry.integrated_time
        if age > self.key_attestation_max_age_s:
            raise _reject(
                "tdx-key-attestation-expired",
                f"entry {idx} attested this key {age} s ago; this log accepts key attestations up to "
                f"{self.key_attestation_max_age_s} s old (ATLAS_KEY_ATTESTATION_MAX_AGE_S): {renew}",
            )
        if attested.simulated is not self.simulated:
            then, now_mode = ("simulated", "Intel") if not self.simulated else ("Intel", "simulated")
            raise _reject(
                "tdx-key-attestation-rejected",
                f"entry {idx} was attested while this log ran {then} TDX; it now runs {now_mode} TDX, and an "
                f"attestation is not carried across modes: {renew}",
            )
        try:
            verdict, collateral_set = await self._verify(parse_quote(_stored_quote(entry, attested)), now)
        except QuoteError as exc:
            verdict, collateral_set = Verdict(False, exc.code, exc.message), ""
        if not verdict.accept:
            raise _reject(
                "tdx-key-attestation-rejected",
                f"the quote of entry {idx} would not be accepted today ({verdict.code}: {verdict.reason}): {renew}",
            )
        return InheritedAttestation(idx, VerdictRecord.of(verdict, collateral_set))


def _stored_quote(entry: StoredEntry, recorded: TeeRecord) -> bytes:
    """The raw quote of a quote-attested entry, from the submission it was admitted from, checked against the
    ``quoteSha256`` its leaf commits to (the stored submission is not itself under the tree)."""
    try:
        quote = b64decode(json_loads(entry.submission, "submission")["tee"]["quote"], "tee.quote")  # type: ignore[index]
    except (FormatError, ValueError, KeyError, TypeError) as exc:
        raise Internal("evidence-missing", f"the stored submission of entry {entry.index} is unreadable") from exc
    try:
        identity = hashlib.sha256(parse_quote(quote).raw).hexdigest()
    except QuoteError as exc:
        raise Internal("evidence-missing", f"the stored quote of entry {entry.index} does not parse") from exc
    # Entries logged before trailing padding was cut off recorded the hash of every byte.
    logged = recorded.evidence.quote_sha256 if isinstance(recorded.evidence, OwnQuote) else None
    if logged not in (identity, hashlib.sha256(quote).hexdigest()):
        raise Internal("evidence-missing", f"the stored quote of entry {entry.index} is not the one it logged")
    return quote
