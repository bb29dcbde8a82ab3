"""The answer parsers: strict shapes, and answers that must be about what was asked."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from atlas_log.answers import (
    EntryBundle,
    parse_collateral,
    parse_consistency,
    parse_inclusion,
    parse_log_info,
    parse_submissions,
    parse_tile,
)
from atlas_log.errors import FormatError, VerificationError
from atlas_log.tdx.collateral import COLLATERAL_PARTS

H = base64.b64encode(bytes(32)).decode()


def test_proofs_must_be_about_what_was_asked() -> None:
    proof = parse_inclusion({"logIndex": 3, "treeSize": 9, "leafHash": H, "hashes": [H, H]}, 3, 9)
    assert proof.log_index == 3 and len(proof.hashes) == 2
    for bad in ({"logIndex": 4, "treeSize": 9, "leafHash": H, "hashes": []}, {"leafHash": H}, {"hashes": []}):
        with pytest.raises(FormatError):
            parse_inclusion(bad, 3, 9)
    with pytest.raises(FormatError, match="32 bytes"):
        parse_consistency({"hashes": [base64.b64encode(b"short").decode()]})
    with pytest.raises(FormatError):
        parse_consistency([H])


def test_tiles_and_bundles_hold_exactly_their_width() -> None:
    assert len(parse_tile(bytes(64), 0, 1, 2).hashes) == 2
    with pytest.raises(FormatError):
        parse_tile(bytes(65), 0, 1, 2)
    bundle = b"".join(len(leaf).to_bytes(2, "big") + leaf for leaf in (b"a", b"bc"))
    assert EntryBundle.from_bytes(bundle, 0, 2).leaves == (b"a", b"bc")
    with pytest.raises(FormatError):
        EntryBundle.from_bytes(bundle, 0, 3)


def test_log_info_submissions_and_collateral() -> None:
    info = {"origin": "o", "verifierKey": "k", "treeSize": 2, "rootHash": H, "attestation": {}, "frozen": None}
    assert parse_log_info(info).tree_size == 2
    with pytest.raises(FormatError):
        parse_log_info({**info, "treeSize": -1})
    assert parse_submissions({"start": 5, "submissions": [{}, {}]}, 5, 2).start == 5
    with pytest.raises(FormatError):
        parse_submissions({"start": 5, "submissions": [{}]}, 5, 2)
    members = {name: base64.b64encode(name.encode()).decode() for name in COLLATERAL_PARTS}
    collateral = parse_collateral(members)
    assert parse_collateral(members, collateral.digest) == collateral
    with pytest.raises(VerificationError):
        parse_collateral(members, "00" * 32)
    with pytest.raises(FormatError):
        parse_collateral({})


@pytest.mark.parametrize("recorded", [5, True, 1.5, None])
def test_an_evidence_answer_for_a_leaf_whose_gpus_is_not_a_list_is_refused(recorded: object) -> None:
    """A lying log's leaf whose tee.gpus is no list is a typed refusal of its evidence, not a crash."""
    from atlas_log import answers
    from atlas_log.errors import Error
    from atlas_log.gpu.evidence import collection_sha256, serialize_evidence
    from atlas_log.testing.simulated_gpu import SimulatedGpu

    items = [SimulatedGpu.create().evidence(b"\x01" * 32)]
    tee = {"gpuEvidenceSha256": collection_sha256(items).hex(), "gpus": recorded}
    with pytest.raises(Error):
        answers._gpu_evidence({"gpus": serialize_evidence(items)}, tee, 0)


def test_the_gpu_nonce_is_derived_only_from_what_the_leaf_commits_to() -> None:
    """A lying log serves beside a composite entry the same payload signed under another payload type: the
    nonce derived from it would be another statement's, under which GPU reports made for that statement pass.
    The type is part of what the leaf commits to (paeHash), so no nonce is derived then."""
    from atlas_log.answers import LoggedEntry, _gpu_nonce
    from atlas_log.dsse import sign_envelope
    from atlas_log.entry import parse_leaf
    from atlas_log.submission import spki_der
    from atlas_log.tdx.binding import gpu_nonce
    from atlas_log.testing.simulated_gpu import SimulatedGpu
    from tests.test_reverify import COMPOSITE_NONCE, COMPOSITE_PAYLOAD, KEY, NOW, _composite_leaf

    other_type = "application/vnd.in-toto+json; v=2"
    right = COMPOSITE_NONCE
    # Reports made for the other statement: the same payload and signer under another type.
    gpus = [SimulatedGpu.create(NOW).evidence(gpu_nonce(other_type, COMPOSITE_PAYLOAD, spki_der(KEY), bytes(32)))]
    leaf, honest = _composite_leaf(gpus, [])
    body = parse_leaf(leaf).body

    def nonce_for(served: dict[str, Any]) -> bytes | None:
        return _gpu_nonce(LoggedEntry(0, leaf, None, None, (), served, {}), body["tee"])  # type: ignore[arg-type]

    assert nonce_for(honest) == right
    lying = {**honest, "dsseEnvelope": sign_envelope(other_type, COMPOSITE_PAYLOAD, KEY).to_json()}
    assert nonce_for(lying) is None
