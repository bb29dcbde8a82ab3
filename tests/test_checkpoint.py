from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization

from atlas_log import merkle
from atlas_log.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from atlas_log.errors import FormatError, SignatureError, VerificationError
from atlas_log.note import Signer, Verifier
from tests.vectors import vector_files, vectors_dir

ROOT = merkle.RootHash(bytes(range(32)))


def test_round_trip() -> None:
    s = Signer.generate("example.com/log")
    cp = Checkpoint("example.com/log", 42, ROOT, ("ext one",))
    assert parse_checkpoint(cp.text()) == cp
    assert open_checkpoint(sign_checkpoint(cp, s), s.verifier) == cp


def test_spec_example_body_parses() -> None:
    cp = parse_checkpoint("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
    assert cp.size == 20852163 and cp.extensions == ()


@pytest.mark.parametrize(
    "text",
    [
        "o\n042\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode(),
        "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n1\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
        "o\n99999999999999999999\n" + base64.b64encode(bytes(32)).decode() + "\n",
    ],
)
def test_strict_parse(text: str) -> None:
    with pytest.raises(FormatError):
        parse_checkpoint(text)


def test_origin_must_match() -> None:
    s = Signer.generate("example.com/log")
    note = sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), s)
    with pytest.raises(SignatureError):
        open_checkpoint(note, s.verifier, origin="example.com/other")


REKOR = sorted({p.parent.name for p in vector_files("sigstore-rekor2", pattern="bundle.sigstore.json")})


def test_rekor_vectors_present() -> None:
    vectors_dir("sigstore-rekor2")
    assert len(REKOR) == 10


@pytest.mark.parametrize("case", REKOR)
def test_rekor_v2_bundles(case: str) -> None:
    d = vectors_dir("sigstore-rekor2", case)
    bundle = json.loads((d / "bundle.sigstore.json").read_text())
    trusted = json.loads((d / "trusted_root.json").read_text())
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    ip = entry["inclusionProof"]
    verifiers = []
    for tlog in trusted["tlogs"]:
        if tlog["publicKey"]["keyDetails"] != "PKIX_ED25519":
            continue
        spki = serialization.load_der_public_key(base64.b64decode(tlog["publicKey"]["rawBytes"]))
        raw = spki.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        verifiers.append(Verifier(tlog["baseUrl"].removeprefix("https://"), raw))

    def verify() -> None:
        cp = open_checkpoint(ip["checkpoint"]["envelope"].encode(), verifiers[0])
        leaf = merkle.leaf_hash(base64.b64decode(entry["canonicalizedBody"]))
        if cp.root_hash != base64.b64decode(ip["rootHash"]) or cp.size != int(ip["treeSize"]):
            raise VerificationError("proof is not against the checkpoint")
        proof = [base64.b64decode(h) for h in ip["hashes"]]
        merkle.verify_inclusion(leaf, int(ip["logIndex"]), cp.size, proof, cp.root_hash)

    if case.endswith("_fail"):
        with pytest.raises((FormatError, VerificationError)):
            verify()
    else:
        verify()
