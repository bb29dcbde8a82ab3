"""The TDX admission gate: an entry is admitted only with a quote that verifies and commits to it.

Order: the ``tee`` block's shape → (key mode with a key-attestation entry: that entry must attest this
signer's key) → the quote's platform → cached, verified collateral → ``verify_quote`` under the policy →
the REPORTDATA binding → the nonce (zero, or the root of a recent checkpoint). Every failure is a 4xx
problem whose type names the reason; an unavailable PCS is a 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from atlas_log._encoding import json_loads
from atlas_log.entry import INHERITED_TEE, quote_record
from atlas_log.errors import CollateralFetchError, FormatError, QuoteError, SubmissionError
from atlas_log.submission import ParsedSubmission, expected_report_data, is_key_attestation, parse_tee
from atlas_log.tdx.binding import ZERO_NONCE
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verify import VerificationCache, quote_platform, verify_quote
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.db.repository import Repository
from atlas_log_server.errors import Problem


def _reject(slug: str, detail: str) -> Problem:
    return Problem(422, slug, detail)


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
    ) -> None:
        self.store = store
        self.repo = repo
        self.cache = cache
        self.policy = policy
        self.roots = roots
        self.simulated = simulated
        self.allow_unattested = allow_unattested
        self.nonce_max_age_s = nonce_max_age_s
        self.require_fresh_nonce = require_fresh_nonce

    async def __call__(self, sub: ParsedSubmission, now: int) -> dict[str, Any] | None:
        tee = sub.tee
        if tee is None:
            if self.allow_unattested:
                return None
            raise _reject("tee-required", "this log admits only entries carrying a TDX quote in a 'tee' block")
        try:
            request = parse_tee(tee, len(sub.signers))
        except SubmissionError as exc:
            raise Problem(400, exc.code, exc.message) from exc
        signer = sub.signers[request.signature_index]
        summary: dict[str, Any] = {**request.summary(signer), "simulated": self.simulated}
        summary.update(await self._nonce(request.nonce))
        if request.key_attestation_entry is not None:
            return await self._attested_key(request.key_attestation_entry, signer.fingerprint, summary)
        assert request.quote is not None
        try:
            parsed = parse_quote(request.quote)  # once: the platform lookup and the verification share it
            fmspc, ca = quote_platform(parsed, self.roots, self.cache)
        except QuoteError as exc:
            raise _reject("tdx-" + exc.code, exc.message) from exc
        try:
            collateral = await self.store.get(fmspc, ca)
        except CollateralFetchError as exc:
            retry = str(int(exc.retry_after or 5))
            raise Problem(
                503,
                "collateral-unavailable",
                f"collateral for FMSPC {fmspc} is unavailable: {exc}",
                headers={"Retry-After": retry},
            ) from exc
        except QuoteError as exc:
            raise Problem(
                503,
                "collateral-unavailable",
                f"PCS served collateral that does not verify: {exc}",
                headers={"Retry-After": "60"},
            ) from exc
        verdict = verify_quote(parsed, collateral, now, self.policy, roots=self.roots, cache=self.cache)
        if not verdict.accept:
            raise _reject("tdx-" + (verdict.code or "rejected"), verdict.reason or "the quote was rejected")
        if verdict.td.get("report_data") != expected_report_data(request, sub.envelope, signer).hex():
            raise _reject(
                "tdx-binding-mismatch",
                f"the quote's REPORTDATA is not the {request.binding} binding of this entry, signer and nonce",
            )
        return {**summary, **quote_record(request.quote, verdict, collateral.digest)}

    async def _nonce(self, nonce: bytes) -> dict[str, Any]:
        if nonce == ZERO_NONCE:
            if self.require_fresh_nonce:
                raise _reject("tdx-nonce-required", "this log requires tee.nonce to be the root of a recent checkpoint")
            return {}
        found = await self.repo.checkpoint_by_root(nonce)
        if found is None:
            raise _reject("tdx-nonce-unknown", "tee.nonce is not the root hash of any checkpoint of this log")
        size, age = found
        if age > self.nonce_max_age_s:
            raise _reject(
                "tdx-nonce-stale", f"tee.nonce is a checkpoint {int(age)} s old; the limit is {self.nonce_max_age_s} s"
            )
        return {"nonceCheckpointSize": size}

    async def _attested_key(self, idx: int, fingerprint: str, summary: dict[str, Any]) -> dict[str, Any]:
        entry = await self.repo.entry_by_index(idx)
        try:
            attested = json_loads(entry.leaf, "leaf")["body"].get("tee") if entry is not None else None  # type: ignore[index]
        except (FormatError, KeyError, TypeError, AttributeError):
            attested = None
        if not is_key_attestation(attested, fingerprint) or not isinstance(attested, dict):
            raise _reject(
                "tdx-key-not-attested", f"entry {idx} is not a quote-attested key entry for this signer's key"
            )
        inherited = {k: attested[k] for k in INHERITED_TEE if k in attested}
        return {**summary, **inherited, "keyAttestationEntry": idx}
