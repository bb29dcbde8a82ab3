"""Evidence is upheld only when it proves misbehaviour of the log whose key the verifier pins.

Each forgery here is what a hostile party would hand a judge: a garbage proof, honest checkpoints in the
wrong order, another entry's submission, a key of its own with the log's name. None may hold.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log import cli
from atlas_log._encoding import b64decode
from atlas_log.bundle import parse_bundle, signing_certificate
from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.dsse import PublicKey, SpkiDer, parse_envelope, sign_envelope
from atlas_log.entry import (
    LINKED_ROLES,
    build_body,
    build_entry,
    canonical_json,
    encode_body,
    encode_leaf,
    index_summary,
)
from atlas_log.errors import Error, FormatError, InconsistentLogError, VerificationError
from atlas_log.evidence import (
    EVIDENCE_TYPE,
    BackdatedEvidence,
    BadEntryEvidence,
    Evidence,
    InconsistencyEvidence,
    LoggedLeaf,
    MapCommitmentEvidence,
    evidence_from_error,
    verify_evidence,
)
from atlas_log.intoto import extract
from atlas_log.merkle import RootHash, leaf_hash
from atlas_log.note import Signer
from atlas_log.replay import TIME_TOLERANCE_S
from atlas_log.reverify import Trust
from atlas_log.submission import (
    INTOTO_PAYLOAD_TYPE,
    ParsedSubmission,
    build_submission,
    intoto_statement,
    parse_tee,
    spki_der,
)
from atlas_log.tdx.collateral import COLLATERAL_PARTS
from atlas_log.tdx.quote import parse_quote
from atlas_log.tdx.verification import verify_quote
from atlas_log.tee import Attestation, OwnQuote
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import SimulatedPlatform
from atlas_log.trusted_state import verify_advance
from atlas_log.vmap import MapCommitment, MapRoot, MemoryMap, map_changes
from tests import reference
from tests.conftest import ServerProcess
from tests.vectors import vectors_dir

ORIGIN = "evidence.example/log"
LOG = Signer.generate(ORIGIN)
VKEY = LOG.verifier.vkey
HONEST = [reference.leaf(str(i).encode()) for i in range(40)]
FORKED = [*HONEST[:4], reference.leaf(b"evil"), *HONEST[5:]]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _note(leaves: list[bytes], size: int, signer: Signer = LOG) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, RootHash(reference.mth(leaves[:size]))), signer).decode()


def _inconsistent(notes: list[str], proof: list[bytes], kind: str = "inconsistent", **extra: Any) -> dict[str, Any]:
    return {
        "type": EVIDENCE_TYPE,
        "kind": kind,
        "log": VKEY,
        "reason": "the log is inconsistent",
        "checkpoints": notes,
        "proof": [_b64(h) for h in proof],
        **extra,
    }


def _fork(m: int, n: int) -> dict[str, Any]:
    """Honest evidence of a fork: the honest tree of size ``m`` and the forked one of size ``n``, with the
    forked tree's own proof and the root of its first ``m`` leaves."""
    return _inconsistent(
        [_note(HONEST, m), _note(FORKED, n)],
        reference.proof(m, FORKED[:n]),
        prefixRoot=_b64(reference.mth(FORKED[:m])),
    )


@pytest.mark.parametrize(("m", "n"), [(6, 20), (8, 20), (16, 17), (5, 5), (12, 12)])
def test_a_fork_is_upheld(m: int, n: int) -> None:
    sentence = verify_evidence(_fork(m, n), VKEY)
    assert ORIGIN in sentence
    assert ("two different trees" if m == n else "do not join") in sentence


def test_a_garbage_proof_between_honest_checkpoints_is_not_evidence() -> None:
    honest = [_note(HONEST, 10), _note(HONEST, 20)]
    garbage = [os.urandom(32) for _ in reference.proof(10, HONEST[:20])]
    with pytest.raises(Error, match="nothing"):
        verify_evidence(_inconsistent(honest, garbage), VKEY)
    # Nor with a made-up root for the newer tree's prefix: the proof must lead to the newer root.
    with pytest.raises(Error):
        verify_evidence(_inconsistent(honest, garbage, prefixRoot=_b64(os.urandom(32))), VKEY)
    # The honest proof with the honest prefix root shows the trees join.
    joined = _inconsistent(honest, reference.proof(10, HONEST[:20]), prefixRoot=_b64(reference.mth(HONEST[:10])))
    with pytest.raises(Error, match="join"):
        verify_evidence(joined, VKEY)


@pytest.mark.parametrize("kind", ["rollback", "inconsistent", "fork"])
def test_reversed_honest_checkpoints_are_not_evidence(kind: str) -> None:
    reversed_ = [_note(HONEST, 20), _note(HONEST, 10)]
    for proof in ([], reference.proof(10, HONEST[:20]), [os.urandom(32)]):
        with pytest.raises(Error):
            verify_evidence(_inconsistent(reversed_, proof, kind), VKEY)


def test_a_self_made_key_with_the_logs_name_is_not_the_log() -> None:
    impostor = Signer.generate(ORIGIN)
    forged = {
        **_inconsistent([_note(HONEST, 10, impostor), _note(FORKED, 10, impostor)], []),
        "log": impostor.verifier.vkey,
    }
    assert "two different trees" in verify_evidence(forged, impostor.verifier.vkey)  # true, of the impostor
    with pytest.raises(Error):
        verify_evidence(forged, VKEY)


def test_evidence_from_a_client_error_holds() -> None:
    """What a client with trusted state raises (old, new, the log's proof) becomes evidence that holds."""
    for m, n in [(6, 20), (8, 20)]:
        with pytest.raises(InconsistentLogError) as caught:
            verify_advance(
                LOG.verifier, _note(HONEST, m).encode(), _note(FORKED, n).encode(), reference.proof(m, FORKED[:n])
            )
        ev = evidence_from_error(caught.value, LOG.verifier, path=reference.path(m, FORKED[:n]))
        assert "do not join" in verify_evidence(ev, VKEY)
    # A rollback to an honest prefix raises, but proves nothing.
    with pytest.raises(InconsistentLogError) as caught:
        verify_advance(LOG.verifier, _note(HONEST, 20).encode(), _note(HONEST, 10).encode(), [])
    with pytest.raises(Error):
        verify_evidence(evidence_from_error(caught.value, LOG.verifier, "rollback"), VKEY)


def _verify_cli(tmp_path: Path, evidence: dict[str, Any], *key: str, roots: tuple[str, ...] = ()) -> tuple[int, str]:
    path = tmp_path / f"ev-{os.urandom(4).hex()}.json"
    path.write_text(json.dumps(evidence))
    rc = cli.main([*key, "verify-evidence", str(path), *(a for r in roots for a in ("--tdx-root", r))])
    return rc, path.name


def test_cli_refuses_each_forgery_and_requires_the_pinned_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATLAS_LOG_VKEY", raising=False)
    honest = [_note(HONEST, 10), _note(HONEST, 20)]
    impostor = Signer.generate(ORIGIN)
    forgeries = {
        "garbage proof": _inconsistent(honest, [os.urandom(32) for _ in reference.proof(10, HONEST[:20])]),
        "reversed": _inconsistent(honest[::-1], [], "rollback"),
        "self-made key": {
            **_inconsistent([_note(HONEST, 10, impostor), _note(FORKED, 10, impostor)], []),
            "log": impostor.verifier.vkey,
        },
    }
    for what, ev in forgeries.items():
        for key in (["--vkey", VKEY], []):
            rc, _ = _verify_cli(tmp_path, ev, *key)
            out = capsys.readouterr().out
            assert rc != 0 and "evidence does not hold" in out, (what, key, out)
    # Real evidence holds only with the key pinned.
    rc, _ = _verify_cli(tmp_path, _fork(6, 20), "--vkey", VKEY)
    assert rc == 0 and "do not join" in capsys.readouterr().out
    path = tmp_path / "fork.json"
    path.write_text(json.dumps(_fork(6, 20)))
    assert cli.main(["verify-evidence", str(path), "--vkey", VKEY]) == 0
    assert cli.main(["verify-evidence", str(path), "--vkey", impostor.verifier.vkey]) == 1
    assert "evidence does not hold" in capsys.readouterr().out
    rc, _ = _verify_cli(tmp_path, _fork(6, 20))
    assert rc != 0 and "evidence does not hold" in capsys.readouterr().out


# --- bad-entry evidence: a hostile log built here with the log's own entry builder ---------------------------

DAY = 86_400
NOW = int(time.time())
PLATFORM = SimulatedPlatform.create(NOW - 20 * DAY)
COLLATERAL = PLATFORM.collateral(NOW - 10 * DAY)  # current from 10 days ago for 30 days
TRUST = Trust(tdx_roots=(PLATFORM.root_fingerprint,))
SUBMITTER = Ed25519PrivateKey.generate()


def _leaf(sub: dict[str, Any], t: int, verified_at: int | None = None) -> bytes:
    """The leaf a log builds for ``sub`` at ``integratedTime`` ``t``, its quote verified at ``verified_at``
    (default ``t``). Signatures are not checked, so a log that admits a bad one can be played."""
    envelope = parse_envelope(sub["dsseEnvelope"])
    signers = [PublicKey(SpkiDer(b64decode(k["spki"]))) for k in sub["verificationMaterial"]["publicKeys"]]
    parsed = ParsedSubmission(
        envelope, tuple(signers), sub.get("tee"), extract(envelope.payload_type, envelope.payload)
    )
    attestation = None
    if "tee" in sub:
        request = parse_tee(sub["tee"], len(signers))
        assert request.quote is not None
        at = t if verified_at is None else verified_at
        verdict = verify_quote(request.quote, COLLATERAL, at, roots=TRUST.tdx_roots)
        assert verdict.accept, verdict.reason
        attestation = Attestation(request, OwnQuote.of(parse_quote(request.quote), verdict, COLLATERAL.digest), True)
    built = build_entry(parsed, attestation)
    return built.leaf(t, dict.fromkeys(built.linked))


def _bad_entry(leaves: list[bytes], index: int, sub: dict[str, Any], collateral: bool = True) -> dict[str, Any]:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return {
        "type": EVIDENCE_TYPE,
        "kind": "bad-entry",
        "log": VKEY,
        "reason": f"entry {index} does not verify",
        "checkpoints": [_note(hashes, len(hashes))],
        "entry": {
            "logIndex": index,
            "leaf": _b64(leaves[index]),
            "inclusionProof": [_b64(h) for h in reference.path(index, hashes)],
            "submission": _b64(json.dumps(sub).encode()),
            "collateral": {p: _b64(getattr(COLLATERAL, p)) for p in COLLATERAL_PARTS} if collateral else None,
        },
    }


def test_bad_entry_evidence_needs_the_submission_the_leaf_commits_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subs = [demo_submission(SUBMITTER, i, PLATFORM) for i in range(3)]
    leaves = [_leaf(s, NOW - DAY + i) for i, s in enumerate(subs)]
    with pytest.raises(Error, match="verifies on its own"):
        verify_evidence(_bad_entry(leaves, 0, subs[0]), VKEY, TRUST)
    forged_nonce = {**subs[0], "tee": {**subs[0]["tee"], "nonce": "11" * 32}}
    forged_key = {
        **subs[0],
        "verificationMaterial": {"publicKeys": [{"spki": _b64(spki_der(Ed25519PrivateKey.generate()))}]},
    }
    forgeries = {
        "another entry's submission": _bad_entry(leaves, 0, subs[1]),
        "a nonce the leaf does not record": _bad_entry(leaves, 0, forged_nonce),
        "another signer key": _bad_entry(leaves, 0, forged_key),
        "no collateral": _bad_entry(leaves, 0, subs[0], collateral=False),
    }
    for what, ev in forgeries.items():
        with pytest.raises(Error):
            verify_evidence(ev, VKEY, TRUST)
        rc, _ = _verify_cli(tmp_path, ev, "--vkey", VKEY, roots=TRUST.tdx_roots)
        out = capsys.readouterr().out
        assert rc != 0 and "evidence does not hold" in out, (what, out)


def test_an_entry_the_log_should_have_refused_is_upheld() -> None:
    good = demo_submission(SUBMITTER, 0, PLATFORM)
    sig = good["dsseEnvelope"]["signatures"][0]["sig"]
    bad_sig = json.loads(json.dumps(good))
    bad_sig["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    leaves = [_leaf(good, NOW - DAY), _leaf(bad_sig, NOW - DAY)]
    sentence = verify_evidence(_bad_entry(leaves, 1, bad_sig), VKEY, TRUST)
    assert "does not verify" in sentence and "signature" in sentence


def _backdated(leaves: list[bytes], first: int, second: int) -> dict[str, Any]:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return {
        "type": EVIDENCE_TYPE,
        "kind": "backdated",
        "log": VKEY,
        "reason": "time went back",
        "checkpoints": [_note(hashes, len(hashes))],
        "entries": [
            {"logIndex": i, "leaf": _b64(leaves[i]), "inclusionProof": [_b64(h) for h in reference.path(i, hashes)]}
            for i in (first, second)
        ],
    }


def test_backdated_evidence_holds_only_for_a_step_back_beyond_the_tolerance() -> None:
    start = NOW - DAY
    times = [start, start + 10, start + 9 - TIME_TOLERANCE_S, start + 11 - TIME_TOLERANCE_S]
    leaves = [_leaf(demo_submission(SUBMITTER, i, PLATFORM), t) for i, t in enumerate(times)]
    assert "entry 2 is backdated" in verify_evidence(_backdated(leaves, 1, 2), VKEY)
    for first, second in [(2, 1), (1, 3), (0, 1), (2, 2)]:  # wrong order, within the tolerance, forward, itself
        with pytest.raises(Error):
            verify_evidence(_backdated(leaves, first, second), VKEY)


def test_a_simulated_entry_checked_under_intels_root_alone_is_not_evidence() -> None:
    """The log records that the quote is simulated; that it does not chain to Intel proves nothing."""
    sub = demo_submission(SUBMITTER, 0, PLATFORM)
    ev = _bad_entry([_leaf(sub, NOW - DAY)], 0, sub)
    with pytest.raises(Error, match="simulated"):
        verify_evidence(ev, VKEY)
    with pytest.raises(Error, match="verifies on its own"):
        verify_evidence(ev, VKEY, TRUST)


def test_a_certificate_chain_the_leaf_does_not_commit_to_proves_nothing() -> None:
    """The leaf records the signing certificate's identity, not its chain: a chain broken by whoever wrote
    the evidence, or one the verifier cannot check, is refused; a bad signature under a good chain holds."""
    bundle = json.loads((vectors_dir("model-signing", "v1.1.0-certificate") / "model.sig").read_text())
    ca = x509.load_pem_x509_certificate((vectors_dir("model-signing", "keys") / "ca-cert.pem").read_bytes())
    trust = Trust(x509_roots=(ca.public_bytes(serialization.Encoding.DER),))
    parsed = parse_bundle(bundle)
    t = int(x509.load_der_x509_certificate(parsed.chain[0]).not_valid_before_utc.timestamp()) + DAY

    def leaf_for(b: dict[str, Any]) -> bytes:
        envelope = parse_envelope(b["dsseEnvelope"])
        key = signing_certificate(parsed.chain, [ca], t)
        extraction = extract(envelope.payload_type, envelope.payload)
        body, _ = encode_body(build_body(envelope, [key], None, index_summary(extraction)))
        return encode_leaf(body, t, {d: None for d in extraction.digests(*LINKED_ROLES)})

    sub = {"sigstoreBundle": bundle}
    with pytest.raises(Error, match="verifies on its own"):
        verify_evidence(_bad_entry([leaf_for(bundle)], 0, sub, collateral=False), VKEY, trust)
    with pytest.raises(Error, match="certificate chain"):  # no X.509 roots: nothing can be said
        verify_evidence(_bad_entry([leaf_for(bundle)], 0, sub, collateral=False), VKEY)
    broken = json.loads(json.dumps(bundle))
    del broken["verificationMaterial"]["x509CertificateChain"]["certificates"][1]
    with pytest.raises(Error, match="certificate chain"):
        verify_evidence(_bad_entry([leaf_for(bundle)], 0, {"sigstoreBundle": broken}, collateral=False), VKEY, trust)
    bad_sig = json.loads(json.dumps(bundle))
    sig = bad_sig["dsseEnvelope"]["signatures"][0]["sig"]
    bad_sig["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    ev = _bad_entry([leaf_for(bad_sig)], 0, {"sigstoreBundle": bad_sig}, collateral=False)
    assert "signature" in verify_evidence(ev, VKEY, trust)


def _members(obj: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict | list):
        for k, v in obj.items() if isinstance(obj, dict) else enumerate(obj):
            yield (*at, k)
            yield from _members(v, (*at, k))


def test_no_mutation_of_honest_evidence_is_upheld_and_only_our_errors_escape() -> None:
    """Every member of honest (non-)evidence replaced or removed: the verdict is a sentence or an
    :class:`Error`, never another exception, and evidence of nothing never becomes evidence."""
    subs = [demo_submission(SUBMITTER, i, PLATFORM) for i in range(2)]
    leaves = [_leaf(s, NOW - DAY + i) for i, s in enumerate(subs)]
    honest = [_bad_entry(leaves, 0, subs[0]), _backdated(leaves, 0, 1), _inconsistent([_note(HONEST, 6)] * 2, [])]
    odd: list[Any] = [None, 0, -1, True, "", "AAAA", [], {}, [1], {"a": 1}, 2**70, 1.5]
    rng = random.Random(7)
    for _ in range(600):
        evidence = copy.deepcopy(rng.choice(honest))
        *parent, last = rng.choice(list(_members(evidence)))
        target = functools.reduce(lambda o, k: o[k], parent, evidence)
        if rng.random() < 0.3:
            del target[last]
        else:
            target[last] = rng.choice(odd)
        with pytest.raises(Error):
            verify_evidence(evidence, VKEY, TRUST)


def test_an_honest_entry_with_named_keys_is_not_a_bad_entry(open_server: ServerProcess) -> None:
    """verify-evidence upholds only evidence of misbehaviour. An honest entry whose envelope has two signatures by
    one key and one by another, each naming its key by the submission's own keyid, is admitted and replays;
    but bad-entry evidence rebuilds the submission with one key per distinct signer and without their keyids,
    so signature i no longer finds its key and the honest entry is upheld as one that "does not verify"."""
    from atlas_log.dsse import Envelope, EnvelopeSignature
    from atlas_log.errors import VerificationError
    from atlas_log.evidence import verify_evidence
    from atlas_log.reverify import Trust, check_entry

    http = httpx.Client(base_url=open_server.url, timeout=30)
    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    payload = intoto_statement([("model.bin", "cd" * 32)], "https://atlas-log.dev/test/v1", {})
    sig_a = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, a).signatures[0].sig
    sig_b = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, b).signatures[0].sig
    envelope = Envelope(
        INTOTO_PAYLOAD_TYPE,
        payload,
        (EnvelopeSignature(sig_a, "alice"), EnvelopeSignature(sig_a, "alice"), EnvelopeSignature(sig_b, "bob")),
    )
    submission = build_submission(envelope, [spki_der(a), spki_der(b)])
    submission["verificationMaterial"]["publicKeys"][0]["keyid"] = "alice"
    submission["verificationMaterial"]["publicKeys"][1]["keyid"] = "bob"
    r = http.post("/api/v1/entries", json=submission)
    assert r.status_code == 201, r.text
    receipt = r.json()
    leaf = base64.b64decode(receipt["leaf"])
    # The entry is honest: it replays from the submission the log stored.
    stored = http.get("/api/v1/submissions", params={"start": receipt["logIndex"], "count": 1}).json()
    assert check_entry(receipt["logIndex"], leaf, stored["submissions"][0], lambda d: None, Trust()).problem is None
    evidence = {
        "type": "atlas-log/evidence/v1",
        "kind": "bad-entry",
        "log": open_server.vkey,
        "reason": "replay",
        "checkpoints": [receipt["checkpoint"]],
        "entry": {
            "logIndex": receipt["logIndex"],
            "leaf": receipt["leaf"],
            "inclusionProof": receipt["inclusionProof"]["hashes"],
            "submission": stored["submissions"][0],
        },
    }
    with pytest.raises(VerificationError):
        print(verify_evidence(evidence, open_server.vkey))


def test_a_reissued_certificate_does_not_frame_an_honest_entry() -> None:
    """The leaf commits to the signing certificate's hash (verifier.certificate.certSha256), but bad-entry
    evidence accepts any chain that verifies for the same key. A CA that issued a second certificate for the key
    (a renewal) lets whoever writes the evidence swap it in: the rebuilt body records another certSha256, so an
    honest entry is upheld as one that "does not verify"."""
    import json

    from atlas_log.checkpoint import Checkpoint, sign_checkpoint
    from atlas_log.entry import build_body, encode_body, encode_leaf, index_summary
    from atlas_log.errors import VerificationError
    from atlas_log.evidence import verify_evidence
    from atlas_log.merkle import RootHash, leaf_hash
    from atlas_log.note import Signer
    from atlas_log.reverify import Trust, check_entry
    from atlas_log.submission import parse_submission
    from tests.test_bundles import _NOW, _cert, _der

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root = _cert("root", keys[0], None, ca=True)
    inter = _cert("inter", keys[1], ("root", keys[0]), ca=True)
    issued, renewed = (_cert("signer", keys[2], ("inter", keys[1]), ca=False) for _ in range(2))
    payload = intoto_statement([("model.pt", "ef" * 32)], "https://atlas-log.dev/test/v1", {})
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, keys[2])

    def submission(leaf_cert: Any) -> dict[str, Any]:
        chain = [base64.b64encode(d).decode() for d in _der([leaf_cert, inter])]
        return {"dsseEnvelope": envelope.to_json(), "verificationMaterial": {"x509CertificateChain": chain}}

    # The honest log admits the entry with the first certificate, exactly as its admission builds it.
    now = int(_NOW.timestamp())
    sub = parse_submission(submission(issued), now, [root])
    body, _ = encode_body(build_body(sub.envelope, sub.signers, None, index_summary(sub.extraction)))
    leaf = encode_leaf(body, now, {"sha256:" + "ef" * 32: None})
    trust = Trust(x509_roots=(root.public_bytes(serialization.Encoding.DER),))
    honest = json.dumps(submission(issued)).encode()
    assert check_entry(0, leaf, honest, lambda d: None, trust).problem is None
    log = Signer.generate("honest.example/log")
    note = sign_checkpoint(Checkpoint(log.name, 1, RootHash(leaf_hash(leaf))), log)
    evidence = {
        "type": "atlas-log/evidence/v1",
        "kind": "bad-entry",
        "log": log.verifier.vkey,
        "reason": "replay",
        "checkpoints": [note.decode()],
        "entry": {
            "logIndex": 0,
            "leaf": base64.b64encode(leaf).decode(),
            "inclusionProof": [],
            "submission": submission(renewed),
            "collateral": None,
        },
    }
    with pytest.raises(VerificationError):
        print(verify_evidence(evidence, log.verifier, trust))


def test_evidence_has_one_typed_form_and_its_json_round_trips() -> None:
    """Every kind parses into its typed value, and writes back to the same JSON."""
    leaves = [reference.leaf(bytes([i])) for i in range(4)]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    entry = {"logIndex": 1, "leaf": _b64(leaves[1]), "inclusionProof": [_b64(h) for h in reference.path(1, hashes)]}
    documents = [
        _fork(6, 20),
        _inconsistent([_note(HONEST, 5), _note(FORKED, 5)], [], "fork"),
        {**_inconsistent([_note(HONEST, 5), _note(HONEST, 9)], []), "kind": "rollback"},
        {
            "type": EVIDENCE_TYPE,
            "kind": "backdated",
            "log": VKEY,
            "reason": "time went back",
            "checkpoints": [_note(HONEST, 4)],
            "entries": [entry, {**entry, "logIndex": 2}],
        },
        {
            "type": EVIDENCE_TYPE,
            "kind": "bad-entry",
            "log": VKEY,
            "reason": "entry 1 does not verify",
            "checkpoints": [_note(HONEST, 4)],
            "entry": {**entry, "submission": _b64(b"{}"), "collateral": None},
        },
    ]
    kinds = (InconsistencyEvidence, InconsistencyEvidence, InconsistencyEvidence, BackdatedEvidence, BadEntryEvidence)
    for document, kind in zip(documents, kinds, strict=True):
        parsed = Evidence.from_json(json.loads(json.dumps(document)))
        assert isinstance(parsed, kind)
        assert json.dumps(parsed.to_json()) == json.dumps(document)
        assert Evidence.from_json(parsed.to_json()) == parsed


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"type": "other"},
        {"type": EVIDENCE_TYPE, "checkpoints": ["one"]},
        {"type": EVIDENCE_TYPE, "kind": "backdated", "checkpoints": ["a"], "entries": [{}]},
        {"type": EVIDENCE_TYPE, "kind": "bad-entry", "checkpoints": ["a"], "entry": {"logIndex": True}},
        {"type": EVIDENCE_TYPE, "checkpoints": ["a", "b"], "proof": ["not base64!"]},
    ],
)
def test_malformed_evidence_is_a_format_error(bad: Any) -> None:
    with pytest.raises(FormatError):
        Evidence.from_json(bad)
    with pytest.raises(FormatError):
        verify_evidence(bad, VKEY)


def test_a_client_error_becomes_typed_evidence_labelled_by_its_kind() -> None:
    with pytest.raises(InconsistentLogError) as caught:
        verify_advance(LOG.verifier, _note(HONEST, 7).encode(), _note(FORKED, 7).encode(), [])
    assert caught.value.kind == "fork"
    ev = evidence_from_error(caught.value, LOG.verifier, "fork")
    assert isinstance(ev, InconsistencyEvidence) and ev.kind == "fork" and ev.log == VKEY
    assert ev.to_json()["checkpoints"] == [_note(HONEST, 7), _note(FORKED, 7)]


def _facts(i: int, digests: list[str]) -> bytes:
    """Entry ``i``'s fact list: two subjects and a component only its facts name (a model's file)."""
    facts = [{"digests": [d], "path": f"$.subject[{j}]", "role": "subject"} for j, d in enumerate(digests)]
    facts.append({"digests": [f"sha256:{i % 3:064x}"], "path": "$.predicate.resources[0]", "role": "component"})
    return canonical_json(facts)


def _mapped_log(wrong: bool) -> tuple[Signer, list[bytes], dict[int, bytes], int, bytes]:
    """A small log whose last leaf commits the map of the entries before it (with a wrong root when asked):
    (signer, leaves, the entries' fact lists, commitment index, signed checkpoint)."""
    signer = Signer.generate("test.example/mapped")
    digests = [f"sha256:{i + 10:064x}" for i in range(5)]
    leaves, last, facts = [], {}, {}
    for i in range(9):
        named = sorted({digests[i % 5], digests[(i * 3) % 5]})
        facts[i] = _facts(i, named)
        links = {d: last.get(d) for d in named}
        last.update(dict.fromkeys(named, i))
        body = {"index": {"factCount": 3, "factsSha256": hashlib.sha256(facts[i]).hexdigest()}, "n": i}
        leaves.append(encode_leaf(canonical_json(body), 1, links))
    m = MemoryMap()
    m.update(map_changes((i, sorted({d for f in json.loads(facts[i]) for d in f["digests"]})) for i in range(9)))
    root = bytes(32 * [7]) if wrong else m.root
    commitment = MapCommitment(len(leaves), MapRoot(root), m.keys)
    leaves.append(encode_leaf(canonical_json(commitment.body()), 2, {}))
    hashes = [leaf_hash(leaf) for leaf in leaves]
    note = sign_checkpoint(Checkpoint(signer.name, len(leaves), RootHash(reference.mth(hashes))), signer)
    return signer, leaves, facts, len(leaves) - 1, note


def _map_evidence(
    leaves: list[bytes], facts: dict[int, bytes], index: int, note: bytes, covered: int
) -> dict[str, Any]:
    hashes = [leaf_hash(leaf) for leaf in leaves]
    return MapCommitmentEvidence(
        log=None,
        reason="wrong map root",
        checkpoint=note,
        commitment=LoggedLeaf(index, leaves[index], tuple(reference.path(index, hashes))),
        leaves=tuple(leaves[:covered]),
        facts=facts,
        proof=tuple(reference.proof(covered, hashes)),
    ).to_json()


def test_map_commitment_evidence_holds_only_for_a_root_the_leaves_contradict() -> None:
    signer, leaves, facts, index, note = _mapped_log(wrong=True)
    upheld = verify_evidence(_map_evidence(leaves, facts, index, note, index), signer.verifier)
    assert "0707" in upheld and "those leaves give" in upheld
    # The same evidence about an honest commitment shows nothing: the map keys the components the facts name,
    # not only the leaves' back-links.
    signer, leaves, facts, index, note = _mapped_log(wrong=False)
    with pytest.raises(VerificationError, match="no misbehaviour"):
        verify_evidence(_map_evidence(leaves, facts, index, note, index), signer.verifier)
    # An accuser cannot make an honest root look wrong by leaving out an entry's facts, or changing them.
    for facts_given in ({i: f for i, f in facts.items() if i != 4}, {**facts, 4: _facts(4, [f"sha256:{99:064x}"])}):
        with pytest.raises(VerificationError, match=r"lacks the facts of entry 4|entry 4: the facts given"):
            verify_evidence(_map_evidence(leaves, facts_given, index, note, index), signer.verifier)
    # Leaves that are not the signed tree's (one changed to make the honest root look wrong) prove nothing.
    forged = _map_evidence(leaves, facts, index, note, index)
    forged["leaves"][0] = base64.b64encode(encode_leaf(b'{"n":99}', 1, {"sha256:" + "f" * 64: None})).decode()
    with pytest.raises(VerificationError, match="not the signed tree"):
        verify_evidence(forged, signer.verifier)
    # Too few leaves for the size the commitment covers.
    short = _map_evidence(leaves, facts, index, note, index)
    short["leaves"] = short["leaves"][:-1]
    with pytest.raises(VerificationError, match="covers"):
        verify_evidence(short, signer.verifier)
