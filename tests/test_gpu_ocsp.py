"""Revocation of GPU device and RIM certificates from OCSP responses (atlas_log.gpu.ocsp): good, revoked and
on-hold answers are honoured for both chains, and every way of forging, replaying or stretching a response
is refused — a response is believed only from the certificate's issuer or a responder it authorised, within
its validity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.ocsp import MAX_AGE_WITHOUT_NEXT_UPDATE_S, MAX_CLOCK_SKEW_S, check_revocation, clear_ocsp_caches
from atlas_log.gpu.policy import Policy
from atlas_log.gpu.verdict import GpuVerdict
from atlas_log.gpu.verification import verify_gpu_evidence, verify_rim
from atlas_log.testing import SimulatedGpu

NOW = 1_800_000_000
AT = NOW + 3600
DAY = 86_400
NONCE = bytes(range(32))


@pytest.fixture(scope="module")
def gpu() -> SimulatedGpu:
    return SimulatedGpu.create(NOW - DAY)


@pytest.fixture(scope="module")
def good(gpu: SimulatedGpu) -> list[bytes]:
    return gpu.ocsp_responses(NOW)


def _verify(gpu: SimulatedGpu, responses: list[bytes], policy: Policy | None = None, at: int = AT) -> GpuVerdict:
    return verify_gpu_evidence(
        gpu.report(NONCE),
        gpu.certificate_chain,
        nonce=NONCE,
        at=at,
        driver_rim=gpu.driver_rim(),
        vbios_rim=gpu.vbios_rim(),
        policy=policy,
        device_root=gpu.device_root,
        rim_root=gpu.rim_root,
        ocsp=responses,
    )


def _replace(responses: list[bytes], index: int, response: bytes) -> list[bytes]:
    return [response if i == index else r for i, r in enumerate(responses)]


def _time(t: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def test_good_answers_for_both_chains_are_recorded(gpu: SimulatedGpu, good: list[bytes]) -> None:
    verdict = _verify(gpu, good, Policy(require_ocsp=True))
    assert verdict.accept, verdict.failures
    # The device chain below its root except the GPU-made leaf; the RIM chains below theirs.
    assert [c.status for c in verdict.revocation] == ["good"] * 3
    assert [c.serial for c in verdict.revocation] == [str(c.serial_number) for c in gpu.device_chain[1:4]]
    assert verdict.revocation[0].next_update == NOW + 7 * DAY
    for rim in verdict.rims:
        assert [c.status for c in rim.revocation] == ["good"] * 3
    assert verdict.to_json()["revocation"][0]["status"] == "good"


def test_without_responses_nothing_is_judged_unless_required(gpu: SimulatedGpu, good: list[bytes]) -> None:
    assert _verify(gpu, []).accept
    assert _verify(gpu, []).revocation == ()
    required = _verify(gpu, [], Policy(require_ocsp=True))
    assert required.code == "ocsp_missing"
    assert "driver_rim_ocsp_missing" in required.failures and "vbios_rim_ocsp_missing" in required.failures
    device_only = _verify(gpu, good[:3], Policy(require_ocsp=True))
    assert device_only.code == "driver_rim_ocsp_missing"


@pytest.mark.parametrize("position", [1, 2, 3])
def test_a_revoked_device_certificate_rejects(gpu: SimulatedGpu, good: list[bytes], position: int) -> None:
    revoked = gpu.ocsp_response("device", position, now=NOW, status="revoked")
    verdict = _verify(gpu, _replace(good, position - 1, revoked))
    assert verdict.code == "certificate_revoked"
    assert verdict.revocation[position - 1].status == "revoked"
    assert verdict.revocation[position - 1].revoked_at == NOW - DAY


def test_a_revoked_rim_signer_rejects_only_its_rims(gpu: SimulatedGpu, good: list[bytes]) -> None:
    revoked = gpu.ocsp_response("rim", 0, now=NOW, status="revoked")
    verdict = _verify(gpu, _replace(good, 3, revoked))
    # Both simulated RIMs share one signer, so both are refused; the device is not.
    assert verdict.code == "driver_rim_certificate_revoked"
    assert "vbios_rim_certificate_revoked" in verdict.failures
    assert "certificate_revoked" not in verdict.failures
    assert verify_rim(gpu.driver_rim(), at=AT, root=gpu.rim_root, ocsp=[revoked]) == ("rim_certificate_revoked",)


def test_on_hold_rejects_unless_the_policy_allows_it(gpu: SimulatedGpu, good: list[bytes]) -> None:
    held = _replace(good, 0, gpu.ocsp_response("device", 1, now=NOW, status="on_hold"))
    assert _verify(gpu, held).code == "certificate_revoked"
    allowed = _verify(gpu, held, Policy(allow_on_hold=True))
    assert allowed.accept and allowed.revocation[0].status == "on_hold"


def test_unknown_rejects(gpu: SimulatedGpu, good: list[bytes]) -> None:
    unknown = _replace(good, 1, gpu.ocsp_response("device", 2, now=NOW, status="unknown"))
    assert _verify(gpu, unknown).code == "certificate_status_unknown"


def test_a_delegated_responder_is_believed(gpu: SimulatedGpu, good: list[bytes]) -> None:
    delegated = gpu.ocsp_response("device", 1, now=NOW, status="revoked", delegated=True)
    assert _verify(gpu, _replace(good, 0, delegated)).code == "certificate_revoked"
    fine = gpu.ocsp_response("rim", 0, now=NOW, delegated=True)
    assert _verify(gpu, _replace(good, 3, fine), Policy(require_ocsp=True)).accept
    # The responder's certificate (valid for a year from a day before) is judged at every evaluation time,
    # though what does not depend on time was memoised by the call above.
    lasting = gpu.ocsp_response("rim", 0, now=NOW, delegated=True, lifetime_s=None)
    checks = check_revocation(gpu.rim_chain, [lasting], at=NOW + 366 * DAY)
    assert checks[0].status == "invalid" and "responder certificate is not valid" in (checks[0].problem or "")


def test_validity_window(gpu: SimulatedGpu, good: list[bytes]) -> None:
    assert _verify(gpu, good, at=NOW).accept  # thisUpdate is inclusive
    assert _verify(gpu, good, at=NOW + 7 * DAY).accept  # and so is nextUpdate
    stale = _verify(gpu, good, at=NOW + 7 * DAY + 1)
    assert stale.code == "ocsp_invalid" and "nextUpdate" in (stale.revocation[0].problem or "")
    assert _verify(gpu, good, at=NOW - MAX_CLOCK_SKEW_S).accept  # a responder's clock a little ahead
    early = _verify(gpu, good, at=NOW - MAX_CLOCK_SKEW_S - 1)
    assert early.code == "ocsp_invalid" and "after the evaluation time" in (early.revocation[0].problem or "")
    open_ended = _replace(good, 0, gpu.ocsp_response("device", 1, now=NOW, lifetime_s=None))
    assert _verify(gpu, open_ended, at=NOW + MAX_AGE_WITHOUT_NEXT_UPDATE_S).accept
    assert _verify(gpu, open_ended, at=NOW + MAX_AGE_WITHOUT_NEXT_UPDATE_S + 1).code == "ocsp_invalid"


def test_a_remembered_judgement_is_the_one_for_every_time_it_is_used_at(gpu: SimulatedGpu, good: list[bytes]) -> None:
    """A chain's judgement is memoised with the span it holds for: swept across every threshold (thisUpdate
    less the skew, nextUpdate, the open-ended age, a delegated responder's validity) in both directions, each
    answer equals one judged from nothing."""
    lasting = gpu.ocsp_response("rim", 0, now=NOW, delegated=True, lifetime_s=None)
    responses = [*good[3:], lasting]  # the RIM chain: a fixed-term answer and an open-ended delegated one
    edges = (NOW - MAX_CLOCK_SKEW_S, NOW + 7 * DAY, NOW + MAX_AGE_WITHOUT_NEXT_UPDATE_S, NOW - DAY, NOW + 365 * DAY)
    times = sorted({t + d for t in edges for d in (-1, 0, 1)})
    fresh = []
    for t in times:
        clear_ocsp_caches()
        fresh.append(check_revocation(gpu.rim_chain, responses, at=t))
    assert len({tuple((c.status, c.problem) for c in checks) for checks in fresh}) > 2  # it crosses verdicts
    for order in (list(range(len(times))), list(reversed(range(len(times))))):
        clear_ocsp_caches()
        for i in order:
            assert check_revocation(gpu.rim_chain, responses, at=times[i]) == fresh[i], times[i]


# --- the attacks -------------------------------------------------------------------------------------------


def _forged(
    gpu: SimulatedGpu,
    position: int,
    key: ec.EllipticCurvePrivateKey,
    responder: x509.Certificate,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    carry: x509.Certificate | None = None,
) -> bytes:
    """A response naming the device certificate at ``position``, as someone holding ``key`` would make it."""
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=gpu.device_chain[position],
            issuer=gpu.device_chain[position + 1],
            algorithm=hashes.SHA256(),
            cert_status=status,
            this_update=_time(NOW),
            next_update=_time(NOW + 7 * DAY),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, responder)
    )
    if carry is not None:
        builder = builder.certificates([carry])
    return builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_time(NOW - DAY))
        .not_valid_after(_time(NOW + 365 * DAY))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .sign(issuer_key, hashes.SHA384())
    )


def test_a_good_answer_signed_by_another_key_in_the_issuers_name_is_refused(
    gpu: SimulatedGpu, good: list[bytes]
) -> None:
    revoked = gpu.ocsp_response("device", 1, now=NOW, status="revoked")
    key = ec.generate_private_key(ec.SECP384R1())
    impostor = (  # the issuer's name on the attacker's key
        x509.CertificateBuilder()
        .subject_name(gpu.device_chain[2].subject)
        .issuer_name(gpu.device_chain[2].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_time(NOW - DAY))
        .not_valid_after(_time(NOW + 365 * DAY))
        .sign(key, hashes.SHA384())
    )
    forged = _forged(gpu, 1, key, impostor, carry=impostor)
    verdict = _verify(gpu, [forged, *good[1:]])
    assert verdict.code == "ocsp_invalid" and "signature" in (verdict.revocation[0].problem or "")
    # Beside the genuine revocation, the forged "good" changes nothing.
    assert _verify(gpu, [forged, revoked, *good[1:]]).code == "certificate_revoked"


def test_a_genuine_good_answer_does_not_outweigh_a_genuine_revocation(gpu: SimulatedGpu, good: list[bytes]) -> None:
    revoked = gpu.ocsp_response("device", 1, now=NOW - DAY, status="revoked")
    assert _verify(gpu, [*good, revoked]).code == "certificate_revoked"


def test_a_responder_the_issuer_did_not_authorise_is_refused(gpu: SimulatedGpu, good: list[bytes]) -> None:
    other = SimulatedGpu.create(NOW - DAY)
    key = ec.generate_private_key(ec.SECP384R1())
    # A responder certificate from another CA (another GPU's provisioner), carried in the response.
    stranger = _certificate("Responder", key, other.device_chain[2], other.device_keys[2])
    verdict = _verify(gpu, [_forged(gpu, 1, key, stranger, carry=stranger), *good[1:]])
    assert verdict.code == "ocsp_invalid" and "not issued by" in (verdict.revocation[0].problem or "")


def test_a_responder_without_the_ocsp_signing_usage_is_refused(gpu: SimulatedGpu, good: list[bytes]) -> None:
    # The issuer signed this certificate, but for something else: it is not an OCSP responder.
    key = ec.generate_private_key(ec.SECP384R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not a responder")]))
        .issuer_name(gpu.device_chain[2].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_time(NOW - DAY))
        .not_valid_after(_time(NOW + 365 * DAY))
        .sign(gpu.device_keys[2], hashes.SHA384())
    )
    verdict = _verify(gpu, [_forged(gpu, 1, key, signer, carry=signer), *good[1:]])
    assert verdict.code == "ocsp_invalid" and "OCSP signing" in (verdict.revocation[0].problem or "")


def test_the_device_ca_cannot_vouch_for_its_issuer(gpu: SimulatedGpu, good: list[bytes]) -> None:
    """A compromised lower CA answers for the CA above it: only that certificate's own issuer may."""
    brom, brom_key = gpu.device_chain[1], gpu.device_keys[1]
    verdict = _verify(gpu, [good[0], _forged(gpu, 2, brom_key, brom), good[2], *good[3:]])
    assert verdict.code == "ocsp_invalid"


def test_an_answer_for_another_certificate_is_ignored(gpu: SimulatedGpu, good: list[bytes]) -> None:
    other = SimulatedGpu.create(NOW - DAY)
    verdict = _verify(gpu, [*other.ocsp_responses(NOW), *good[1:]], Policy(require_ocsp=True))
    assert verdict.code == "ocsp_missing"
    assert verdict.revocation[0].status == "missing"


def test_no_answer_is_taken_for_an_invalid_chain(gpu: SimulatedGpu) -> None:
    other = SimulatedGpu.create(NOW - DAY)
    verdict = verify_gpu_evidence(
        gpu.report(NONCE),
        gpu.certificate_chain,
        nonce=NONCE,
        at=AT,
        device_root=other.device_root,
        ocsp=gpu.ocsp_responses(NOW),
    )
    assert verdict.code == "chain_invalid" and verdict.revocation == ()


def test_the_nonce_is_checked_when_asked_for(gpu: SimulatedGpu) -> None:
    chain = gpu.device_chain[2:]  # the provisioner, the identity CA, the root
    with_nonce = gpu.ocsp_response("device", 2, now=NOW, nonce=b"n" * 16)
    assert check_revocation(chain, [with_nonce], at=AT, nonce=b"n" * 16)[0].status == "good"
    assert check_revocation(chain, [with_nonce], at=AT, nonce=b"m" * 16)[0].status == "invalid"
    without = gpu.ocsp_response("device", 2, now=NOW)
    assert check_revocation(chain, [without], at=AT, nonce=b"n" * 16)[0].problem == (
        "it carries no nonce, and one was asked for"
    )


@pytest.mark.parametrize(
    "response",
    [
        b"",
        b"\x30\x03\x0a\x01\x00",
        b"not der at all",
        ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(
            serialization.Encoding.DER
        ),
        b"\x30" + b"\x82\xff\xff" + b"\x00" * 70_000,
    ],
)
def test_a_malformed_response_is_an_error(gpu: SimulatedGpu, response: bytes) -> None:
    with pytest.raises(GpuEvidenceError) as caught:
        _verify(gpu, [response])
    assert caught.value.code == "ocsp_parse_error"


def test_the_command_line_takes_ocsp_responses(
    gpu: SimulatedGpu, good: list[bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`atlas-log gpu verify --ocsp`: good answers accept, a revoked certificate rejects (exit 1, its code in
    the JSON), --require-ocsp rejects a chain without answers, a malformed response is one line (exit 2)."""
    from atlas_log import cli
    from atlas_log.testing import serialize_gpu_evidence

    (tmp_path / "evidence.json").write_bytes(serialize_gpu_evidence([gpu], NONCE))
    (tmp_path / "driver.xml").write_bytes(gpu.driver_rim())
    (tmp_path / "vbios.xml").write_bytes(gpu.vbios_rim())
    for name, cert in (("device-root.pem", gpu.device_root), ("rim-root.pem", gpu.rim_root)):
        (tmp_path / name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    answers = []
    for i, response in enumerate(good):
        answers += ["--ocsp", str(tmp_path / f"{i}.der")]
        (tmp_path / f"{i}.der").write_bytes(response)
    base = ["gpu", "verify", str(tmp_path / "evidence.json"), "--at", str(AT), "--nonce", NONCE.hex(), "--json"]
    base += ["--rim", str(tmp_path / "driver.xml"), "--rim", str(tmp_path / "vbios.xml")]
    base += ["--device-root", str(tmp_path / "device-root.pem"), "--rim-root", str(tmp_path / "rim-root.pem")]

    assert cli.main([*base, *answers, "--require-ocsp"]) == 0
    assert [c["status"] for c in json.loads(capsys.readouterr().out)["revocation"]] == ["good"] * 3
    assert cli.main([*base, "--require-ocsp"]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "ocsp_missing"
    (tmp_path / "0.der").write_bytes(gpu.ocsp_response("device", 1, now=NOW, status="revoked"))
    assert cli.main([*base, *answers]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "certificate_revoked"
    (tmp_path / "0.der").write_bytes(gpu.ocsp_response("device", 1, now=NOW, status="on_hold"))
    assert cli.main([*base, *answers]) == 1
    assert json.loads(capsys.readouterr().out)["code"] == "certificate_revoked"
    assert cli.main([*base, *answers, "--allow-on-hold"]) == 0
    assert json.loads(capsys.readouterr().out)["revocation"][0]["status"] == "on_hold"
    (tmp_path / "0.der").write_bytes(b"junk")
    assert cli.main([*base[:-1], *base[-1:], *answers]) == 2
    assert json.loads(capsys.readouterr().out)["code"] == "ocsp_parse_error"
    assert cli.main([*base, "--device-root", str(tmp_path / "driver.xml")]) == 2
    assert "not a readable PEM certificate" in capsys.readouterr().err
