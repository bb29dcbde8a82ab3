"""Selective disclosure (atlas_log.disclosure): RFC 9901's digest rule, redaction and the attacks on revealing
(a value swapped under the same name, a disclosure committed nowhere, one placed where another kind stands),
and hidden digests' blinded twins with the attacks on them (another key, a twin standing for nothing, a twin
beside its public value, a spelling the check would skip)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from atlas_log.disclosure import (
    SD_ALG,
    Disclosure,
    blind,
    check_blinded,
    hidden_digests,
    parse_disclosure,
    redact,
    reveal,
)
from atlas_log.errors import FormatError, VerificationError
from atlas_log.intoto import extract

KEY = bytes(range(32))
OTHER_KEY = bytes(32)


def _statement() -> dict[str, Any]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "externalParameters": {"hyperparameters": {"lr": 0.001, "epochs": 3}, "dataset": "s3://vendor/x"},
                "resolvedDependencies": [
                    {"name": "train-set", "uri": "s3://vendor/train", "digest": {"sha256": "cd" * 32}},
                    {"name": "base-model", "uri": "hf://base", "digest": {"sha256": "ef" * 32}},
                ],
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    }


def test_the_digest_is_the_one_rfc_9901_gives() -> None:
    # RFC 9901 §4.2.1's example disclosure and its SHA-256 digest.
    d = parse_disclosure("WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0")
    assert (d.name, d.value) == ("family_name", "Möbius")
    assert d.digest == "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"


def test_redacted_fields_are_gone_and_come_back_only_with_their_disclosures() -> None:
    st = _statement()
    paths = [
        "predicate.buildDefinition.externalParameters.hyperparameters",
        "predicate.buildDefinition.externalParameters.dataset",
        "predicate.buildDefinition.resolvedDependencies[*].uri",
        "predicate.buildDefinition.resolvedDependencies[0].name",
    ]
    redacted, disclosures = redact(st, paths)
    assert st == _statement()  # the input is not changed
    text = str(redacted)
    assert "s3://vendor" not in text and "train-set" not in text and "0.001" not in text
    assert redacted["_sd_alg"] == SD_ALG and len(disclosures) == 5
    assert hidden_digests(redacted) == {d.digest for d in disclosures}
    assert len({d.salt for d in disclosures}) == 5  # a fresh salt each
    assert reveal(redacted, disclosures).statement == st
    # One disclosure reveals one value; the others stay hidden.
    one = next(d for d in disclosures if d.name == "dataset")
    partial = reveal(redacted, [one])
    assert partial.statement["predicate"]["buildDefinition"]["externalParameters"]["dataset"] == "s3://vendor/x"
    assert "hyperparameters" not in partial.statement["predicate"]["buildDefinition"]["externalParameters"]
    assert [p for p, _ in partial.disclosed] == ["$.predicate.buildDefinition.externalParameters.dataset"]


def test_a_value_swapped_under_the_same_name_is_refused() -> None:
    redacted, disclosures = redact(_statement(), ["predicate.buildDefinition.externalParameters.dataset"])
    (real,) = disclosures
    forged = Disclosure.make("dataset", "s3://somewhere/else")
    with pytest.raises(VerificationError, match="not committed"):
        reveal(redacted, [forged])
    # The same value under a fresh salt is a different disclosure: not the committed one either.
    with pytest.raises(VerificationError, match="not committed"):
        reveal(redacted, [Disclosure.make("dataset", real.value)])


def test_a_disclosure_must_stand_where_its_kind_does() -> None:
    redacted, disclosures = redact(_statement(), ["predicate.buildDefinition.resolvedDependencies[1]"])
    (element,) = disclosures
    assert element.name is None
    assert redacted["predicate"]["buildDefinition"]["resolvedDependencies"][1] == {"...": element.digest}
    # An element's digest moved into an object's _sd: refused.
    moved = copy.deepcopy(redacted)
    moved["predicate"]["_sd"] = [element.digest]
    moved["predicate"]["buildDefinition"]["resolvedDependencies"].pop()
    with pytest.raises(VerificationError, match="element's disclosure"):
        reveal(moved, [element])
    # A digest standing twice, and a member revealed over one already there.
    twice = copy.deepcopy(redacted)
    twice["predicate"]["buildDefinition"]["resolvedDependencies"].append({"...": element.digest})
    with pytest.raises(VerificationError, match="twice"):
        reveal(twice, [])
    red2, (dataset,) = redact(_statement(), ["predicate.buildDefinition.externalParameters.dataset"])
    red2["predicate"]["buildDefinition"]["externalParameters"]["dataset"] = "public value"
    with pytest.raises(VerificationError, match="already there"):
        reveal(red2, [dataset])
    with pytest.raises(VerificationError, match="twice"):
        reveal(red2, [dataset, dataset])


def test_nested_hidden_members_reveal_level_by_level() -> None:
    st = _statement()
    redacted, disclosures = redact(
        st,
        [
            "predicate.buildDefinition.externalParameters.hyperparameters.lr",
            "predicate.buildDefinition.externalParameters",
        ],
    )
    assert "externalParameters" not in redacted["predicate"]["buildDefinition"]
    outer = next(d for d in disclosures if d.name == "externalParameters")
    shown = reveal(redacted, [outer]).statement["predicate"]["buildDefinition"]["externalParameters"]
    assert "lr" not in str(shown) and "_sd" in shown["hyperparameters"]
    assert reveal(redacted, disclosures).statement == st


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "WyJzaG9ydCIsICJuYW1lIiwgMV0",  # ["short", "name", 1]: a salt under 128 bits
        "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJfc2QiLCAxXQ",  # the reserved name "_sd"
        "eyJhIjogMX0",  # {"a": 1}: not an array
    ],
)
def test_malformed_disclosures_are_refused(text: str) -> None:
    with pytest.raises(FormatError):
        parse_disclosure(text)


def test_paths_must_name_something() -> None:
    with pytest.raises(FormatError, match="no member"):
        redact(_statement(), ["predicate.nothing"])
    with pytest.raises(FormatError, match="stay public"):
        redact(_statement(), ["subject"])
    with pytest.raises(FormatError, match="no element"):
        redact(_statement(), ["predicate.buildDefinition.resolvedDependencies[7]"])


def _payload(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement).encode()


def test_a_hidden_digest_is_indexed_only_by_its_blinded_twin() -> None:
    paths = ["subject[0].digest", "predicate.buildDefinition.resolvedDependencies[0].digest"]
    redacted, disclosures = redact(_statement(), paths, blinding_key=KEY)
    twin = blind(KEY, "sha256", "ab" * 32)
    assert twin[0] == "blinded+sha256" and twin[1] != "ab" * 32
    assert redacted["subject"][0]["digest"]["blinded+sha256"] == twin[1]
    assert "ab" * 32 not in json.dumps(redacted) and "cd" * 32 not in json.dumps(redacted)
    # The statement stays a valid one; its facts name the blinded twins, public digests beside them.
    facts = {f.path: f.digests for f in extract("application/vnd.in-toto+json", _payload(redacted)).facts}
    assert facts["$.subject[0]"] == (twin,)
    assert facts["$.predicate.buildDefinition.resolvedDependencies[0]"] == (blind(KEY, "sha256", "cd" * 32),)
    assert facts["$.predicate.buildDefinition.resolvedDependencies[1]"] == (("sha256", "ef" * 32),)
    revealed = reveal(redacted, disclosures)
    assert revealed.statement["subject"][0]["digest"]["sha256"] == "ab" * 32
    assert check_blinded(revealed, KEY) == {
        ("$.subject[0].digest", "blinded+sha256"),
        ("$.predicate.buildDefinition.resolvedDependencies[0].digest", "blinded+sha256"),
    }
    # Every spelling of one digest blinds alike; another tenant's key gives another twin.
    assert blind(KEY, "SHA-256", "AB" * 32) == twin
    assert blind(OTHER_KEY, "sha256", "ab" * 32) != twin
    with pytest.raises(FormatError, match="blinding key"):
        redact(_statement(), ["subject[0].digest.sha256"])


def test_a_blinded_twin_must_be_the_tenants_blinding_of_what_it_hides() -> None:
    redacted, disclosures = redact(_statement(), ["subject[0].digest"], blinding_key=OTHER_KEY)
    revealed = reveal(redacted, disclosures)
    with pytest.raises(VerificationError, match="not the tenant's blinding"):
        check_blinded(revealed, KEY)
    with pytest.raises(VerificationError, match="tenant's key"):
        check_blinded(revealed, None)
    # A twin standing for nothing: another artifact's blinded key, with no hidden digest behind it.
    squat = _statement()
    squat["predicate"]["buildDefinition"]["resolvedDependencies"][1]["digest"] = {"blinded+sha256": "00" * 32}
    with pytest.raises(VerificationError, match="stands for no hidden digest"):
        check_blinded(reveal(squat, []), KEY)
    # Spelt otherwise, it is still a blinded digest to the index, and still checked.
    squat["predicate"]["buildDefinition"]["resolvedDependencies"][1]["digest"] = {"BLINDED+SHA-256": "00" * 32}
    assert {a for f in extract("application/vnd.in-toto+json", _payload(squat)).facts for a, _ in f.digests} >= {
        "blinded+sha256"
    }
    with pytest.raises(VerificationError, match="stands for no hidden digest"):
        check_blinded(reveal(squat, []), KEY)
    # A twin beside its public value would link the two for everyone.
    beside = copy.deepcopy(redacted)
    beside["subject"][0]["digest"]["sha256"] = "ab" * 32
    with pytest.raises(VerificationError, match="beside its public value"):
        check_blinded(reveal(beside, [d for d in disclosures if d.name != "sha256"]), KEY)
    # A twin whose hidden value is another digest than the one it was made from.
    swapped = copy.deepcopy(redacted)
    other = Disclosure.make("sha256", "99" * 32)
    swapped["subject"][0]["digest"]["_sd"] = [other.digest]
    with pytest.raises(VerificationError, match="not the tenant's blinding"):
        check_blinded(reveal(swapped, [other]), KEY)


def test_the_public_names_are_pinned() -> None:
    import atlas_log.disclosure

    assert set(atlas_log.disclosure.__all__) == {
        "BLINDED",
        "SD_ALG",
        "Disclosure",
        "Revealed",
        "blind",
        "blinded_artifact",
        "check_blinded",
        "hidden_digests",
        "hides_digests",
        "parse_disclosure",
        "redact",
        "reveal",
        "verify_disclosures",
    }
