"""The TDX admission gate: an entry is admitted only with a quote that verifies and commits to it.

Order: the ``tee`` block's shape → (key mode with a key-attestation entry: that entry must attest this
signer's key) → the quote's platform → cached, verified collateral → ``verify_quote`` under the policy →
the REPORTDATA binding → the nonce (zero, or the root of a recent checkpoint). Every failure is a 4xx
problem whose type names the reason; an unavailable PCS is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from atlas_log._encoding import b64decode, hexdecode
from atlas_log.errors import CollateralFetchError, FormatError, QuoteError
from atlas_log.tdx.binding import KEY_TAG, PAYLOAD_TAG, ZERO_NONCE, key_report_data, payload_report_data
from atlas_log.tdx.policy import Policy
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verify import VerificationCache, quote_platform, verify_quote
from atlas_log_server.admission import Submission
from atlas_log_server.attest.store import CollateralStore
from atlas_log_server.db.repository import Repository
from atlas_log_server.errors import Problem

_TEE_MEMBERS = {"type", "quote", "binding", "nonce", "signatureIndex", "keyAttestationEntry", "eventLog"}


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

    async def __call__(self, sub: Submission, now: int) -> dict[str, Any] | None:
        tee = sub.tee
        if tee is None:
            if self.allow_unattested:
                return None
            raise _reject("tee-required", "this log admits only entries carrying a TDX quote in a 'tee' block")
        if not isinstance(tee, dict) or set(tee) - _TEE_MEMBERS:
            raise Problem(400, "invalid-tee", f"'tee' must be an object with members from {sorted(_TEE_MEMBERS)}")
        if tee.get("type") != "intel-tdx":
            raise Problem(400, "invalid-tee", "tee.type must be 'intel-tdx'")
        binding = tee.get("binding", PAYLOAD_TAG)
        if binding not in (PAYLOAD_TAG, KEY_TAG):
            raise Problem(400, "invalid-tee", f"tee.binding must be {PAYLOAD_TAG!r} or {KEY_TAG!r}")
        index = tee.get("signatureIndex", 0)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(sub.signers):
            raise Problem(400, "invalid-tee", "tee.signatureIndex must index a signature of the envelope")
        signer = sub.signers[index]
        try:
            nonce = hexdecode(tee.get("nonce", ZERO_NONCE.hex()), "tee.nonce", 32)
        except FormatError as exc:
            raise Problem(400, "invalid-tee", str(exc)) from exc
        summary: dict[str, Any] = {
            "type": "intel-tdx",
            "binding": binding,
            "signatureIndex": index,
            "spkiSha256": signer.fingerprint,
            "nonce": nonce.hex(),
            "simulated": self.simulated,
        }
        summary.update(await self._nonce(nonce))
        if "keyAttestationEntry" in tee:
            return await self._attested_key(tee, binding, signer.fingerprint, summary)
        if not isinstance(tee.get("quote"), str):
            raise Problem(400, "invalid-tee", "tee.quote (base64 DCAP quote) is required")
        try:
            quote = b64decode(tee["quote"], "tee.quote")
        except FormatError as exc:
            raise Problem(400, "invalid-tee", str(exc)) from exc
        try:
            parsed = parse_quote(quote)  # once: the platform lookup and the verification share it
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
        env = sub.envelope
        expected = (
            payload_report_data(env.payload_type, env.payload, signer.spki, nonce)
            if binding == PAYLOAD_TAG
            else key_report_data(signer.spki, nonce)
        )
        if verdict.td.get("report_data") != expected.hex():
            raise _reject(
                "tdx-binding-mismatch",
                f"the quote's REPORTDATA is not the {binding} binding of this entry, signer and nonce",
            )
        td = verdict.td
        summary.update(
            {
                "quoteSha256": hashlib.sha256(quote).hexdigest(),
                "reportData": td["report_data"],
                "tcbStatus": verdict.tcb_status,
                "advisoryIds": list(verdict.advisory_ids),
                "fmspc": verdict.fmspc,
                "tcbEvaluationDataNumber": verdict.tcb_evaluation_data_number,
                "mrTd": td["mr_td"],
                "rtmr": td["rtmr"],
                "mrConfigId": td["mr_config_id"],
                "mrOwner": td["mr_owner"],
                "tdAttributes": td["td_attributes"],
                "xfam": td["xfam"],
                "collateral": {**verdict.collateral_digests, "set": collateral.digest},
                "collateralExpiry": verdict.collateral_expiry,
            }
        )
        return summary

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

    async def _attested_key(
        self, tee: dict[str, Any], binding: str, fingerprint: str, summary: dict[str, Any]
    ) -> dict[str, Any]:
        if binding != KEY_TAG or "quote" in tee:
            raise Problem(400, "invalid-tee", "keyAttestationEntry goes with binding atlas-log/tdx-key/v1 and no quote")
        idx = tee["keyAttestationEntry"]
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise Problem(400, "invalid-tee", "tee.keyAttestationEntry must be a log index")
        entry = await self.repo.entry_by_index(idx)
        attested = json.loads(entry.leaf)["body"].get("tee") if entry is not None else None
        if (
            not isinstance(attested, dict)
            or attested.get("binding") != KEY_TAG
            or "quoteSha256" not in attested
            or attested.get("spkiSha256") != fingerprint
        ):
            raise _reject(
                "tdx-key-not-attested", f"entry {idx} is not a quote-attested key entry for this signer's key"
            )
        inherited = {
            k: attested[k]
            for k in (
                "tcbStatus",
                "advisoryIds",
                "fmspc",
                "mrTd",
                "rtmr",
                "mrConfigId",
                "tdAttributes",
                "collateralExpiry",
            )
            if k in attested
        }
        return {**summary, **inherited, "keyAttestationEntry": idx}
