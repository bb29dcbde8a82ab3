"""GPU appraisal at admission: each GPU of a composite submission verified with the RIMs of its driver and
VBIOS and the OCSP responses for its certificates, under the log's GPU policy, into the per-GPU record the
entry's leaf holds.

Order per GPU: when the RIMs the report names or the OCSP responses its chains need are not in memory, its
signature, nonce (derived from the entry: the report was made for it) and device chain must verify without
them first, so that nothing unauthenticated makes the log ask the RIM or OCSP service for anything; then they
are fetched (cached, stored). The evidence is verified with them (once, when they were in memory); then the
log's own policy (a minimum driver version). Every refusal is a 4xx problem ``gpu-<code>`` naming the GPU; a
RIM service that cannot answer, or an OCSP service when OCSP is required, is a 503.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography import x509

from atlas_log.certificates import load_pem_chain
from atlas_log.errors import CollateralFetchError, GpuEvidenceError
from atlas_log.gpu import GpuVerdict, Policy, parse_report, parse_rim, verify_gpu_evidence
from atlas_log.gpu.evidence import GpuEvidence
from atlas_log.gpu.verdict import repeated_device
from atlas_log.gpu.verification import expected_rim_ids
from atlas_log.tee import GpuRecord
from atlas_log_server.attest.ocsp import OcspStore
from atlas_log_server.attest.rims import RimStore
from atlas_log_server.db.rims import StoredRim
from atlas_log_server.errors import Rejected, Unavailable

_VERSION = re.compile(r"\d+(\.\d+)*")


def driver_version_key(version: str) -> tuple[int, ...]:
    """A dotted driver version as numbers (``"580.65.06"`` → ``(580, 65, 6)``); raises :class:`ValueError`."""
    if not _VERSION.fullmatch(version):
        raise ValueError(f"{version!r} is not a dotted driver version")
    return tuple(int(p) for p in version.split("."))


@dataclass(frozen=True, slots=True)
class GpuAdmissionPolicy:
    """What the log requires of GPUs: evidence on every attested entry (``required``), RIMs that match
    (``require_rims``: both the driver's and the VBIOS's RIM found and every measurement equal), and a minimum
    driver version; and OCSP (``require_ocsp``: a current response from the OCSP service for every NVIDIA-issued
    certificate of the device and RIM chains; without it, responses the service gives are still judged, and a
    GPU is admitted when the service cannot answer)."""

    required: bool = False
    require_rims: bool = True
    min_driver_version: str | None = None
    require_ocsp: bool = False


def _code(code: str | None) -> str:
    return "gpu-" + (code or "rejected").replace("_", "-")


class GpuAppraiser:
    def __init__(
        self,
        rims: RimStore,
        policy: GpuAdmissionPolicy,
        *,
        ocsp: OcspStore | None = None,
        device_root: x509.Certificate | None = None,
        rim_root: x509.Certificate | None = None,
    ) -> None:
        self.rims = rims
        self.ocsp = ocsp
        self.policy = policy
        self.device_root = device_root
        self.rim_root = rim_root
        self.verifier_policy = Policy(
            require_driver_rim=policy.require_rims,
            require_vbios_rim=policy.require_rims,
            require_ocsp=policy.require_ocsp,
        )

    async def appraise(self, gpus: tuple[GpuEvidence, ...], nonce: bytes, now: int) -> tuple[GpuRecord, ...]:
        """The records of ``gpus``, each verified at ``now`` for ``nonce``; raises :class:`Rejected` naming the
        first GPU refused, or :class:`Unavailable` when a RIM cannot be had."""
        records, verdicts = [], []
        for n, item in enumerate(gpus):
            where = f"GPU {n} ({item.architecture})"
            try:
                ids = expected_rim_ids(parse_report(item.report), item.architecture)
                held = [None if i is None else self.rims.cached(i) for i in ids]
                responses = self._cached_ocsp(item, held)
                if responses is None or any(i is not None and h is None for i, h in zip(ids, held, strict=True)):
                    # RIMs or OCSP responses must be fetched: only for evidence that holds without them, so
                    # junk cannot make the log ask the RIM or OCSP service for whatever it names.
                    bare = self._verify(item, nonce, now, None, None, Policy(), ())
                    if not bare.accept:
                        raise Rejected(_code(bare.code), f"{where}: {bare.reason}")
                    held = [await self._rim(i) for i in ids]
                    responses = await self._ocsp(item, held)
                driver, vbios = (None if h is None else h.document for h in held)
                verdict = self._verify(item, nonce, now, driver, vbios, self.verifier_policy, responses)
            except GpuEvidenceError as exc:
                raise Rejected(_code(exc.code), f"{where}: {exc.message}") from exc
            if not verdict.accept:
                raise Rejected(_code(verdict.code), f"{where}: {verdict.reason}")
            minimum = self.policy.min_driver_version
            if minimum is not None and (
                verdict.driver_version is None
                or not _VERSION.fullmatch(verdict.driver_version)
                or driver_version_key(verdict.driver_version) < driver_version_key(minimum)
            ):
                raise Rejected(
                    "gpu-driver-too-old",
                    f"{where}: driver {verdict.driver_version} is older than this log's minimum {minimum}",
                )
            documents = {k: d for k, d in (("driver", driver), ("vbios", vbios)) if d is not None}
            records.append(GpuRecord.of(verdict, item.report, documents))
            verdicts.append(verdict)
        repeated = repeated_device(verdicts)
        if repeated is not None:
            first, again = repeated
            raise Rejected(
                "gpu-repeated",
                f"GPU {again} is GPU {first} again (UEID {verdicts[first].ueid}): list each GPU that did the work once",
            )
        return tuple(records)

    def _verify(
        self,
        item: GpuEvidence,
        nonce: bytes,
        now: int,
        driver: bytes | None,
        vbios: bytes | None,
        policy: Policy,
        ocsp: tuple[bytes, ...],
    ) -> GpuVerdict:
        return verify_gpu_evidence(
            item.report,
            item.certificate_chain,
            nonce=nonce,
            at=now,
            driver_rim=driver,
            vbios_rim=vbios,
            policy=policy,
            evidence_nonce=item.nonce,
            architecture=item.architecture,
            device_root=self.device_root,
            rim_root=self.rim_root,
            ocsp=ocsp,
        )

    def _certificates(
        self, item: GpuEvidence, rims: list[StoredRim | None]
    ) -> list[tuple[x509.Certificate, x509.Certificate]]:
        """Each certificate NVIDIA's OCSP service speaks for, with its issuer: the device chain's between its
        GPU-made leaf and its root, and every RIM chain's below its root."""
        try:
            device = list(load_pem_chain(item.certificate_chain))
        except ValueError:
            return []  # a malformed chain: the verification refuses it, naming why
        chains = [(self._chain(device, self.device_root), 1)]
        for rim in rims:
            if rim is not None:
                chains.append((self._chain(list(parse_rim(rim.document).certificates), self.rim_root), 0))
        return [(chain[i], chain[i + 1]) for chain, first in chains for i in range(first, len(chain) - 1)]

    @staticmethod
    def _chain(certs: list[x509.Certificate], root: x509.Certificate | None) -> list[x509.Certificate]:
        return [*certs, root] if root is not None and certs and certs[-1] != root else certs

    def _cached_ocsp(self, item: GpuEvidence, rims: list[StoredRim | None]) -> tuple[bytes, ...] | None:
        """The responses memory holds for every certificate of this evidence, or None when one is missing."""
        if self.ocsp is None:
            return ()
        out = []
        for cert, issuer in self._certificates(item, rims):
            hit = self.ocsp.cached(cert, issuer)
            if hit is not None:
                out.append(hit.response)
            elif self.policy.require_ocsp or not self.ocsp.recently_failed(cert, issuer):
                return None  # to be asked for (or refused), after the evidence holds without it
        return tuple(out)

    async def _ocsp(self, item: GpuEvidence, rims: list[StoredRim | None]) -> tuple[bytes, ...]:
        if self.ocsp is None:
            return ()
        out = []
        for cert, issuer in self._certificates(item, rims):
            try:
                out.append((await self.ocsp.get(cert, issuer)).response)
            except CollateralFetchError as exc:
                if self.policy.require_ocsp:
                    raise Unavailable(
                        "gpu-ocsp-unavailable", f"no current OCSP response can be had: {exc}", retry_after=30
                    ) from exc
        return tuple(out)

    async def _rim(self, rim_id: str | None) -> StoredRim | None:
        if rim_id is None:
            return None
        try:
            return await self.rims.get(rim_id)
        except CollateralFetchError as exc:
            raise Unavailable(
                "gpu-rim-unavailable", f"the RIM {rim_id} cannot be had from the RIM service: {exc}", retry_after=30
            ) from exc
