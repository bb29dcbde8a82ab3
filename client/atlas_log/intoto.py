"""in-toto Statements and what they say: subjects (outputs), materials (inputs) and components, each with the
JSON path it came from.

Statement v1 (``https://in-toto.io/Statement/v1``) is the format; v0.1 is accepted and marked legacy.
Predicate extractors: SLSA provenance v1 and v0.2, OpenSSF model-signing v1.0 (the subject's root digest is
recomputed from ``resources`` and must match), in-toto test-result, Atlas manifests and our deployment
predicate. Other predicate types are admitted with their subjects only.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from atlas_log._encoding import json_loads
from atlas_log.errors import FormatError

__all__ = [
    "DEPLOYMENT_V1",
    "MODEL_SIGNING_V1",
    "SLSA_V02",
    "SLSA_V1",
    "TEST_RESULT",
    "Extraction",
    "Fact",
    "artifact_digest",
    "extract",
    "normalise_algorithm",
    "normalise_digest",
    "parse_statement",
]

STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
SLSA_V1 = "https://slsa.dev/provenance/v1"
SLSA_V02 = "https://slsa.dev/provenance/v0.2"
MODEL_SIGNING_V1 = "https://model_signing/signature/v1.0"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
DEPLOYMENT_V1 = "https://atlas-log.dev/ml/deployment/v1"
ATLAS_MANIFEST = "application/vnd.atlas-cli.manifest+json"

_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40, "gitCommit": 40}
_SHA2 = {"sha2256": "sha256", "sha2384": "sha384", "sha2512": "sha512"}


def normalise_algorithm(alg: str) -> str:
    """A digest algorithm's name lower-cased and de-hyphenated (``SHA-256`` and ``sha2-256`` are ``sha256``;
    ``gitCommit`` keeps its spelling)."""
    low = alg.lower()
    a = "gitCommit" if low == "gitcommit" else low.replace("-", "").replace("_", "")
    a = _SHA2.get(a, a)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+]{0,63}", a):
        raise FormatError(f"digest algorithm {alg[:20]!r} must be at most 64 letters, digits, '.', '+', '-' or '_'")
    return a


def normalise_digest(alg: str, value: str) -> tuple[str, str]:
    """``("sha256", "<lowercase hex>")``: the algorithm's name normalised (:func:`normalise_algorithm`), the
    value lowercase hex of the right length."""
    a = normalise_algorithm(alg)
    v = value.lower()
    if not re.fullmatch(r"[0-9a-f]+", v):
        raise FormatError(f"digest {alg}:{value[:20]}… is not hex")
    want = _HEX_LENGTHS.get(a)
    if want is not None and len(v) != want:
        raise FormatError(f"a {a} digest has {want} hex digits, and this one has {len(v)}: check it")
    if len(v) % 2:
        raise FormatError(f"digest {alg}:{value[:20]}… has an odd number of hex digits ({len(v)}): check it")
    return a, v


def artifact_digest(text: str) -> str:
    """An artifact named as ``alg:hex`` (``sha256:…``), normalised (:func:`normalise_digest`)."""
    alg, colon, value = text.partition(":")
    if not colon:
        guess = next((a for a, n in _HEX_LENGTHS.items() if n == len(text)), None)
        if guess is not None and re.fullmatch(r"[0-9a-fA-F]+", text):
            raise FormatError(f"an artifact digest names its algorithm: {guess}:{text.lower()}, for example")
        raise FormatError(
            f"{text[:40]!r} is not an artifact digest: give ALGORITHM:HEX, e.g. sha256:5d9f… "
            "(to find an artifact by its name, use search --name)"
        )
    return ":".join(normalise_digest(alg, value))


@dataclass(frozen=True, slots=True)
class Fact:
    """One artifact an entry names: its digests (alg → hex), role, name and the JSON path it came from."""

    role: str  # subject | material | component | byproduct | builder_dep | evaluated | eval_data | deployed
    digests: tuple[tuple[str, str], ...]
    path: str
    name: str | None = None
    uri: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def version(self) -> str | None:
        """The artifact's version, from the descriptor's ``version`` annotation (our published convention)."""
        return dict(self.annotations).get("version")

    @property
    def ml_role(self) -> str | None:
        """What the artifact is to the ML step that names it (``training-data``, ``base-model``, ``code``…), from
        the descriptor's ``mlRole`` annotation (our published convention)."""
        return dict(self.annotations).get("mlRole")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "digests": [f"{a}:{h}" for a, h in self.digests], "path": self.path}
        if self.name is not None:
            out["name"] = self.name
        if self.uri is not None:
            out["uri"] = self.uri
        return out


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a statement says, as facts; ``metadata`` holds builder ids, versions and the like."""

    predicate_type: str | None
    legacy: bool
    facts: tuple[Fact, ...]
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def statement_predicate_type(self) -> str | None:
        """The in-toto statement's ``predicateType``; None for any other payload (an Atlas manifest's
        ``predicate_type`` names its format, not a statement's predicate)."""
        # Unambiguous: a statement's predicateType is a URI (parse_statement), which the media type is not.
        return None if self.predicate_type == ATLAS_MANIFEST else self.predicate_type

    def digests(self, *roles: str) -> list[str]:
        """Sorted unique ``alg:hex`` strings of facts in these roles (all roles when none are given)."""
        return sorted({f"{a}:{h}" for f in self.facts if not roles or f.role in roles for a, h in f.digests})

    def to_json(self) -> dict[str, Any]:
        return {
            "predicateType": self.predicate_type,
            "legacy": self.legacy,
            "facts": [f.to_json() for f in self.facts],
            "metadata": dict(self.metadata),
        }


def parse_statement(payload: bytes) -> tuple[dict[str, Any], bool]:
    """Parse an in-toto Statement (v1, or v0.1 = legacy) and check its subjects; returns (statement, legacy)."""
    st: Any = json_loads(payload, "in-toto payload")
    if not isinstance(st, dict):
        raise FormatError("in-toto statement must be a JSON object")
    kind = st.get("_type")
    if kind not in (STATEMENT_V1, STATEMENT_V01):
        raise FormatError(f"unknown in-toto statement _type {kind!r}")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise FormatError("in-toto statement must have a non-empty subject list")
    for i, s in enumerate(subjects):
        if not isinstance(s, dict) or not isinstance(s.get("digest"), dict) or not _public(s["digest"]):
            raise FormatError(f"subject[{i}] must have at least one digest (a blinded one counts)")
        for alg, value in _public(s["digest"]):
            if not isinstance(value, str):
                raise FormatError(f"subject[{i}].digest.{alg} must be a string")
            normalise_digest(alg, value)
        hidden = s["digest"].get("_sd", [])
        if not isinstance(hidden, list) or not all(isinstance(d, str) for d in hidden):
            raise FormatError(f"subject[{i}].digest._sd must be a list of disclosure digests")
    pt = st.get("predicateType")
    if not isinstance(pt, str) or not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", pt):
        raise FormatError("predicateType must be a URI")
    return st, kind == STATEMENT_V01


def _public(digests: dict[str, Any]) -> list[tuple[str, Any]]:
    """A digest set's members but ``_sd``, where a confidential statement lists the digests of the algorithms
    it hides (:mod:`atlas_log.disclosure`)."""
    return [(a, v) for a, v in digests.items() if a != "_sd"]


def _descriptor(obj: Any, role: str, path: str) -> Fact | None:
    """A ResourceDescriptor (or SLSA v0.2 material) with at least one usable digest, as a fact."""
    if not isinstance(obj, dict) or not isinstance(obj.get("digest"), dict):
        return None
    digests = []
    for alg, value in obj["digest"].items():
        if isinstance(value, str):
            try:
                digests.append(normalise_digest(alg, value))
            except FormatError:
                continue  # an unusable digest on an input is skipped, not fatal
    if not digests:
        return None
    ann = obj.get("annotations")
    annotations = tuple(sorted((str(k), str(v)) for k, v in ann.items())) if isinstance(ann, dict) else ()
    name, uri = obj.get("name"), obj.get("uri")
    return Fact(
        role,
        tuple(sorted(digests)),
        path,
        name if isinstance(name, str) else None,
        uri if isinstance(uri, str) else None,
        annotations,
    )


def _walk(obj: Any, path: str, role: str) -> Iterator[Fact]:
    """Every object with a ``digest`` map anywhere below ``obj`` (externalParameters may nest them)."""
    fact = _descriptor(obj, role, path)
    if fact is not None:
        yield fact
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk(v, f"{path}.{k}", role)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk(v, f"{path}[{i}]", role)


def _list(obj: Any, role: str, path: str) -> Iterator[Fact]:
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            fact = _descriptor(item, role, f"{path}[{i}]")
            if fact is not None:
                yield fact


def _model_signing(pred: dict[str, Any], subjects: list[Fact]) -> Iterator[Fact]:
    resources = pred.get("resources")
    if not isinstance(resources, list) or not resources:
        raise FormatError("model-signing predicate has no resources")
    raw = b""
    for i, r in enumerate(resources):
        if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("name", "algorithm", "digest")):
            raise FormatError(f"model-signing resources[{i}] needs name, algorithm and digest")
        alg, hexd = normalise_digest(r["algorithm"], r["digest"])
        raw += bytes.fromhex(hexd)
        yield Fact("component", ((alg, hexd),), f"$.predicate.resources[{i}]", r["name"])
    hash_type = (
        pred.get("serialization", {}).get("hash_type", "sha256")
        if isinstance(pred.get("serialization"), dict)
        else "sha256"
    )
    if hash_type != "sha256":
        raise FormatError(f"model-signing hash_type {hash_type!r} is not supported")
    root = hashlib.sha256(raw).hexdigest()
    if len(subjects) != 1 or ("sha256", root) not in subjects[0].digests:
        raise FormatError(f"model-signing subject digest is not the root digest of its resources ({root})")


def extract(payload_type: str, payload: bytes) -> Extraction:
    """The facts of a payload. Non-in-toto payload types yield no facts; malformed in-toto raises."""
    return extract_statement(payload_type, payload)[0]


def extract_statement(payload_type: str, payload: bytes) -> tuple[Extraction, dict[str, Any] | None]:
    """:func:`extract`, and the in-toto statement it parsed (None for other payloads), so a caller that needs
    the statement too parses it once."""
    if payload_type == ATLAS_MANIFEST:
        return _atlas_manifest(payload), None
    if not payload_type.startswith("application/vnd.in-toto"):
        return Extraction(None, False, ()), None
    st, legacy = parse_statement(payload)
    return _extract(st, legacy), st


def _extract(st: dict[str, Any], legacy: bool) -> Extraction:
    subjects = [
        Fact(
            "subject",
            tuple(sorted(normalise_digest(a, v) for a, v in _public(s["digest"]))),
            f"$.subject[{i}]",
            s.get("name") if isinstance(s.get("name"), str) else None,
            annotations=tuple(sorted((str(k), str(v)) for k, v in s["annotations"].items()))
            if isinstance(s.get("annotations"), dict)
            else (),
        )
        for i, s in enumerate(st["subject"])
    ]
    pt: str = st["predicateType"]
    pred = st.get("predicate") if isinstance(st.get("predicate"), dict) else {}
    assert isinstance(pred, dict)
    facts: list[Fact] = []
    meta: dict[str, str] = {}
    if pt == SLSA_V1:
        bd = pred.get("buildDefinition") if isinstance(pred.get("buildDefinition"), dict) else None
        rd = pred.get("runDetails") if isinstance(pred.get("runDetails"), dict) else {}
        if bd is None or not isinstance(rd, dict) or "runDetails" not in pred:
            raise FormatError("SLSA v1 provenance needs buildDefinition and runDetails")
        facts += _list(bd.get("resolvedDependencies"), "material", "$.predicate.buildDefinition.resolvedDependencies")
        for key in ("externalParameters", "internalParameters"):
            facts += _walk(bd.get(key), f"$.predicate.buildDefinition.{key}", "material")
        builder = rd.get("builder") if isinstance(rd.get("builder"), dict) else {}
        assert isinstance(builder, dict)
        facts += _list(
            builder.get("builderDependencies"), "builder_dep", "$.predicate.runDetails.builder.builderDependencies"
        )
        facts += _list(rd.get("byproducts"), "byproduct", "$.predicate.runDetails.byproducts")
        if isinstance(builder.get("id"), str):
            meta["builderId"] = builder["id"]
        if isinstance(bd.get("buildType"), str):
            meta["buildType"] = bd["buildType"]
    elif pt == SLSA_V02:
        facts += _list(pred.get("materials"), "material", "$.predicate.materials")
        inv = pred.get("invocation") if isinstance(pred.get("invocation"), dict) else {}
        assert isinstance(inv, dict)
        cfg = _descriptor(inv.get("configSource"), "material", "$.predicate.invocation.configSource")
        if cfg is not None:
            facts.append(cfg)
        if isinstance(pred.get("builder"), dict) and isinstance(pred["builder"].get("id"), str):
            meta["builderId"] = pred["builder"]["id"]
    elif pt == MODEL_SIGNING_V1:
        facts += _model_signing(pred, subjects)
    elif pt == TEST_RESULT:
        subjects = [Fact("evaluated", s.digests, s.path, s.name) for s in subjects]
        facts += _list(pred.get("configuration"), "eval_data", "$.predicate.configuration")
        if isinstance(pred.get("result"), str):
            meta["result"] = pred["result"]
        meta.update(_test_figures(pred))
    elif pt == DEPLOYMENT_V1:
        facts += _list(pred.get("models"), "material", "$.predicate.models")
        for key in ("environment", "validFrom", "validTo"):
            if isinstance(pred.get(key), str):
                meta[key] = pred[key]
    return Extraction(pt, legacy, tuple(subjects + facts), tuple(sorted(meta.items())))


def _test_figures(pred: dict[str, Any]) -> dict[str, str]:
    """A test result's figures as text: each scalar of ``metrics`` (our pipeline's, beside the result) as
    ``metric:<name>``, and how many tests the predicate lists as passed, warned and failed."""
    out: dict[str, str] = {}
    metrics = pred.get("metrics")
    for name, value in metrics.items() if isinstance(metrics, dict) else ():
        if isinstance(value, str):
            out[f"metric:{name}"] = value
        elif isinstance(value, bool | int | float):
            out[f"metric:{name}"] = json.dumps(value)
    for key in ("passedTests", "warnedTests", "failedTests"):
        if isinstance(pred.get(key), list):
            out[key] = str(len(pred[key]))
    return out


def _atlas_manifest(payload: bytes) -> Extraction:
    """Atlas manifests: ``ingredients[].data`` (and ``claim.ingredients``) are subjects; cross-references inputs."""
    m: Any = json_loads(payload, "Atlas manifest")
    if not isinstance(m, dict):
        raise FormatError("Atlas manifest must be a JSON object")
    facts: list[Fact] = []
    sources = [("$.ingredients", m.get("ingredients"))]
    if isinstance(m.get("claim"), dict):
        sources.append(("$.claim.ingredients", m["claim"].get("ingredients")))
    for base, ingredients in sources:
        if not isinstance(ingredients, list):
            continue
        for i, ing in enumerate(ingredients):
            data = ing.get("data") if isinstance(ing, dict) else None
            if isinstance(data, dict) and isinstance(data.get("alg"), str) and isinstance(data.get("hash"), str):
                alg, hexd = normalise_digest(data["alg"], data["hash"])
                name = ing.get("title") if isinstance(ing.get("title"), str) else None
                facts.append(Fact("subject", ((alg, hexd),), f"{base}[{i}].data", name))
    refs = m.get("cross_references")
    if isinstance(refs, list):
        for i, ref in enumerate(refs):
            if isinstance(ref, dict) and isinstance(ref.get("manifest_hash"), str):
                try:
                    digest = normalise_digest("sha256", ref["manifest_hash"])
                except FormatError:
                    continue
                facts.append(Fact("material", (digest,), f"$.cross_references[{i}]"))
    if not any(f.role == "subject" for f in facts):
        raise FormatError("Atlas manifest has no ingredient with a hash")
    return Extraction(ATLAS_MANIFEST, False, tuple(facts))
