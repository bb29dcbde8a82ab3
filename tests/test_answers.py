"""The answer parsers: strict shapes, and answers that must be about what was asked."""

from __future__ import annotations

import base64

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
