"""Re-verification of one entry from its submission, with the log's own entry builder, offline."""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import sign_envelope
from atlas_log.entry import Entry, build_entry, parse_leaf
from atlas_log.gpu.evidence import GpuEvidence, collection_sha256, serialize_evidence
from atlas_log.gpu.roots import certificate_sha256
from atlas_log.gpu.verification import verify_gpu_evidence
from atlas_log.reverify import Trust, check_entry
from atlas_log.submission import (
    INTOTO_PAYLOAD_TYPE,
    build_submission,
    intoto_statement,
    parse_submission,
    parse_tee,
    signed_submission,
    spki_der,
    tdx_tee,
)
from atlas_log.tdx.binding import GPU_TAG, KEY_TAG, composite_report_data, gpu_nonce, key_report_data
from atlas_log.tdx.collateral import COLLATERAL_PARTS, Collateral
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verification import verify_quote
from atlas_log.tee import Attestation, GpuRecord, InheritedAttestation, OwnQuote, VerdictRecord
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.testing.simulated_gpu import SimulatedGpu
from tests.test_gpu_verification import CRAFTED, crafted_chain

DAY = 86_400
NOW = int(time.time())
PLATFORM = SimulatedPlatform.create(NOW - 20 * DAY)
COLLATERAL = PLATFORM.collateral(NOW - 10 * DAY)
TRUST = Trust(tdx_roots=(PLATFORM.root_fingerprint,))
KEY = Ed25519PrivateKey.generate()
NONCE = bytes(range(32))
STATEMENT = intoto_statement([("model.pt", "ab" * 32)], "https://atlas-log.dev/test/v1", {})


def _collateral(digest: str) -> Any:
    return COLLATERAL if digest == COLLATERAL.digest else None


def _log(submission: dict[str, Any], index: int, cited: bytes | None = None, nonce_size: int | None = None) -> bytes:
    """The leaf an honest log makes of ``submission`` at ``index`` (``cited``: the quote of the entry it cites)."""
    sub = parse_submission(submission, NOW)
    attestation = None
    if sub.tee is not None:
        request = parse_tee(sub.tee, len(sub.signers))
        quote = request.quote if cited is None else cited
        assert quote is not None
        verdict = verify_quote(quote, COLLATERAL, NOW, roots=TRUST.tdx_roots)
        assert verdict.accept, verdict.reason
        evidence: OwnQuote | InheritedAttestation
        if cited is None:
            evidence = OwnQuote.of(parse_quote(quote), verdict, COLLATERAL.digest)
        else:
            assert request.key_attestation_entry is not None
            evidence = InheritedAttestation(request.key_attestation_entry, VerdictRecord.of(verdict, COLLATERAL.digest))
        attestation = Attestation(request, evidence, True, nonce_size)
    built = build_entry(sub, attestation)
    return built.leaf(NOW, dict.fromkeys(built.linked))


def _retee(leaf: bytes, **changes: Any) -> bytes:
    """The leaf with members of its tee record changed (what a dishonest log would commit to)."""
    entry = parse_leaf(leaf)
    return Entry({**entry.body, "tee": {**entry.body["tee"], **changes}}, entry.integrated_time, entry.links).leaf()


def test_an_attested_entry_verifies_and_reports_its_nonce() -> None:
    submission = signed_submission(KEY, STATEMENT, PLATFORM, nonce=NONCE)
    leaf = _log(submission, 5, nonce_size=3)
    checked = check_entry(5, leaf, json.dumps(submission).encode(), _collateral, TRUST)
    assert checked.problem is None
    assert checked.nonce == (3, NONCE) and checked.linked == ("sha256:" + "ab" * 32,)
    assert checked.integrated_time == NOW and checked.attests_key is None
    # Its recorded verdict or quote changed: not what the submission produces.
    for changes in ({"tcbStatus": "OutOfDate"}, {"mrTd": "00" * 48}, {"quoteSha256": "00" * 32}):
        problem = check_entry(5, _retee(leaf, **changes), submission, _collateral, TRUST).problem or ""
        assert "not the one its submission produces" in problem, changes
    # Which checkpoint the nonce is the root of, and the TDX mode, cannot be told from one entry: they are
    # reported for the checks across entries (a consistency proof to the rebuilt tree, the cited entry's mode).
    moved = check_entry(5, _retee(leaf, nonceCheckpointSize=2), submission, _collateral, TRUST)
    assert moved.problem is None and moved.nonce == (2, NONCE)
    assert "no earlier checkpoint" in (check_entry(2, leaf, submission, _collateral, TRUST).problem or "")
    assert "not available" in (check_entry(5, leaf, submission, lambda d: None, TRUST).problem or "")
    assert "does not verify" in (check_entry(5, leaf, submission, _collateral, Trust()).problem or "")
    assert "tee" in (check_entry(5, _retee(leaf, rtmr="ab"), submission, _collateral, TRUST).problem or "")
    unattested = _log({k: v for k, v in submission.items() if k != "tee"}, 5)
    assert "records none" in (check_entry(5, unattested, submission, _collateral, TRUST).problem or "")


def test_a_key_attestation_and_an_entry_citing_it() -> None:
    tee_key = Ed25519PrivateKey.generate()
    spki = spki_der(tee_key)
    quote = PLATFORM.quote(key_report_data(spki))
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, STATEMENT, tee_key)
    attesting = build_submission(envelope, [spki], tee=tdx_tee(quote, binding=KEY_TAG))
    first = check_entry(0, _log(attesting, 0), attesting, _collateral, TRUST)
    assert first.problem is None and first.attests_key is not None
    fingerprint, identity = first.attests_key
    later = intoto_statement([("model.pt", "cd" * 32)], "https://atlas-log.dev/test/v1", {"step": 2})
    citing = build_submission(
        sign_envelope(INTOTO_PAYLOAD_TYPE, later, tee_key),
        [spki],
        tee={"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": 0},
    )
    leaf = _log(citing, 1, cited=quote)
    online = check_entry(1, leaf, citing, _collateral, TRUST, cited_quote=lambda i: quote if i == 0 else None)
    assert online.problem is None and online.key_reference == (0, fingerprint, identity)
    # Offline (evidence of one entry), the verdict of the cited quote is taken as recorded.
    assert check_entry(1, leaf, citing, lambda d: None, TRUST).problem is None
    served_none = check_entry(1, leaf, citing, _collateral, TRUST, cited_quote=lambda i: None).problem or ""
    assert "does not serve the quote of entry 0" in served_none
    changed = _retee(leaf, tcbStatus="OutOfDate")
    problem = check_entry(1, changed, citing, _collateral, TRUST, cited_quote=lambda i: quote).problem or ""
    assert "not the one its submission produces" in problem


def test_collateral_is_read_from_its_json_form() -> None:
    import base64

    served = {p: base64.b64encode(getattr(COLLATERAL, p)).decode() for p in COLLATERAL_PARTS}
    assert Collateral.from_json(served).digest == COLLATERAL.digest


COMPOSITE_PAYLOAD = intoto_statement([("model.pt", "cd" * 32)], "https://atlas-log.dev/test/v1", {})
# The nonce every GPU report of a composite entry of COMPOSITE_PAYLOAD signed by KEY must carry.
COMPOSITE_NONCE = gpu_nonce(INTOTO_PAYLOAD_TYPE, COMPOSITE_PAYLOAD, spki_der(KEY), bytes(32))


def _composite_leaf(gpus: list[GpuEvidence], records: list[GpuRecord]) -> tuple[bytes, dict[str, Any]]:
    """A composite entry of ``gpus`` whose leaf records ``records`` (what a dishonest log commits to)."""
    payload, spki = COMPOSITE_PAYLOAD, spki_der(KEY)
    rd = composite_report_data(INTOTO_PAYLOAD_TYPE, payload, spki, collection_sha256(gpus))
    tee = {**tdx_tee(PLATFORM.quote(rd), binding=GPU_TAG), "gpus": serialize_evidence(gpus)}
    submission = build_submission(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, KEY), [spki], tee=tee)
    sub = parse_submission(submission, NOW)
    request = parse_tee(sub.tee, len(sub.signers))
    assert request.quote is not None
    verdict = verify_quote(request.quote, COLLATERAL, NOW, roots=TRUST.tdx_roots)
    evidence = OwnQuote.of(parse_quote(request.quote), verdict, COLLATERAL.digest)
    built = build_entry(sub, Attestation(request, evidence, True, None, tuple(records)))
    return built.leaf(NOW, dict.fromkeys(built.linked)), submission


def test_a_composite_entry_a_lying_log_made_up_is_a_problem_not_a_crash() -> None:
    """The replay reports a bad entry and goes on: GPU evidence whose device certificate fails only when read,
    and one GPU listed twice (each record true on its own), are each a problem of that entry."""
    gpu = SimulatedGpu.create(NOW)
    trust = Trust(tdx_roots=TRUST.tdx_roots, gpu_device_roots=(certificate_sha256(gpu.device_root),))
    nonce = COMPOSITE_NONCE

    def evidence(chain: bytes | None = None) -> GpuEvidence:
        honest = gpu.evidence(nonce)
        return GpuEvidence(honest.report, chain or honest.certificate_chain, honest.nonce, "HOPPER", "x")

    one = evidence()
    record = GpuRecord.of(
        verify_gpu_evidence(one.report, one.certificate_chain, nonce=nonce, at=NOW, device_root=gpu.device_root),
        one.report,
        {},
    )
    leaf, submission = _composite_leaf([one], [record])
    assert check_entry(1, leaf, submission, _collateral, trust).problem is None  # the honest entry
    leaf, submission = _composite_leaf([one, one], [record, record])
    assert "GPU 1 is GPU 0 again" in str(check_entry(2, leaf, submission, _collateral, trust).problem)
    for case in CRAFTED:
        crafted = evidence(crafted_chain(gpu, case))
        leaf, submission = _composite_leaf([crafted], [record])
        assert "certificate" in str(check_entry(3, leaf, submission, _collateral, trust).problem), case
