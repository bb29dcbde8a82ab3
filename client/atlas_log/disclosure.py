"""Selective disclosure in signed statements, after SD-JWT (RFC 9901 §4.2): a pipeline hides fields of its
in-toto statement behind salted digests before signing, and hands the values over separately.

A *disclosure* is the base64url (no padding) of the UTF-8 JSON array ``[salt, name, value]`` for an object
member, or ``[salt, value]`` for an array element; its digest is the base64url of SHA-256 over that ASCII
text (RFC 9901 §4.2.3). Redacting a member removes it from its object and adds the digest to the object's
``"_sd"`` array (sorted, so the order reveals nothing); redacting an element replaces it with
``{"...": digest}``. The statement's top level says ``"_sd_alg": "sha-256"``. The DSSE signature, the TDX
binding and the log's leaf cover the redacted statement only, so anyone verifies a confidential entry as any
other; a disclosure holder proves a hidden value is the committed one by its digest (:func:`reveal`).

Salts are 128 random bits (RFC 9901 §9.3), so a digest does not let anyone test a guessed value.

Paths name what to hide: dot-separated member names with ``[i]`` for an element and ``[*]`` for every element,
for example ``predicate.buildDefinition.externalParameters.hyperparameters``, ``predicate.resources[*].name``
or ``subject[0].digest``. The last step is the member or element hidden.

Hiding a digest (``subject[0].digest``, or one algorithm: ``subject[0].digest.sha256``) hides each algorithm's
value as a member of the digest set and puts beside it a *blinded* digest, ``"blinded+sha256":
HMAC-SHA256(tenant key, "sha256:<hex>")``: the log indexes it like any other digest, so hidden artifacts still
link in history, lineage and the map, but only a holder of the tenant's blinding key can compute the key of a
digest it knows (an outsider cannot test a guess). The log checks every blinded digest against its disclosure
at admission (:func:`check_blinded`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from atlas_log._encoding import b64decode, json_loads
from atlas_log.errors import FormatError, VerificationError
from atlas_log.intoto import normalise_algorithm, normalise_digest

__all__ = [
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
]

SD_ALG = "sha-256"
BLINDED = "blinded+"  # the prefix of a blinded digest's algorithm name
BLINDING_KEY_BYTES = 32
SALT_BYTES = 16
MAX_DISCLOSURES = 1000
_RESERVED = ("_sd", "...", "_sd_alg")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+|\*)\]")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _check_b64url(text: Any, what: str) -> int:
    """The length of the bytes base64url ``text`` (no padding) stands for; raises :class:`FormatError`."""
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise FormatError(f"{what} is not base64url without padding")
    return len(text) * 3 // 4


def _unb64url(text: str, what: str) -> bytes:
    _check_b64url(text, what)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One hidden value: its encoded text (what the digest covers), salt, member name (None for an array
    element) and value."""

    encoded: str
    salt: str
    name: str | None
    value: Any
    digest: str = field(init=False, repr=False, compare=False)
    """``base64url(SHA-256(encoded))``, the value that stands in the statement (RFC 9901 §4.2.3)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", _b64url(hashlib.sha256(self.encoded.encode("ascii")).digest()))

    @classmethod
    def make(cls, name: str | None, value: Any, salt: bytes | None = None) -> Disclosure:
        """A new disclosure with a fresh 128-bit salt (or ``salt``) for a member ``name`` (None: an element)."""
        salt_text = _b64url(salt if salt is not None else os.urandom(SALT_BYTES))
        parts = [salt_text, value] if name is None else [salt_text, name, value]
        text = _b64url(_json(parts))
        return cls(text, salt_text, name, value)


def _json(value: Any) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FormatError(f"a disclosed value must be JSON: {exc}") from exc


def blind(key: bytes, alg: str, hexdigest: str) -> tuple[str, str]:
    """The blinded digest set member ``(name, value)`` standing for digest ``alg:hexdigest`` under a tenant's
    blinding key: ``("blinded+<alg>", hex(HMAC-SHA256(key, "<alg>:<hex>")))``, the digest normalised first
    (:func:`~atlas_log.intoto.normalise_digest`), so every spelling of one digest blinds alike."""
    if len(key) != BLINDING_KEY_BYTES:
        raise FormatError(f"a blinding key is {BLINDING_KEY_BYTES} bytes")
    a, h = normalise_digest(alg, hexdigest)
    return BLINDED + a, hmac.new(key, f"{a}:{h}".encode("ascii"), hashlib.sha256).hexdigest()


def blinded_artifact(key: bytes, artifact: str) -> str:
    """The index key (``blinded+<alg>:<hex>``) of the entries hiding ``artifact`` (``alg:hex``) under a
    tenant's blinding key (:func:`blind`)."""
    alg, _, value = artifact.partition(":")
    return ":".join(blind(key, alg, value))


def parse_disclosure(text: Any) -> Disclosure:
    """Parse one encoded disclosure strictly; raises :class:`FormatError`."""
    if not isinstance(text, str) or not text or len(text) > 1 << 20:
        raise FormatError("a disclosure is a non-empty base64url string (at most 1 MiB)")
    parts: Any = json_loads(_unb64url(text, "disclosure"), "disclosure")
    if not isinstance(parts, list) or len(parts) not in (2, 3) or not isinstance(parts[0], str):
        raise FormatError("a disclosure is a JSON array [salt, name, value] or [salt, value]")
    salt = parts[0]
    if _check_b64url(salt, "a disclosure's salt") < SALT_BYTES:
        raise FormatError(f"a disclosure's salt must hold at least {SALT_BYTES * 8} bits")
    if len(parts) == 3:
        if not isinstance(parts[1], str) or parts[1] in _RESERVED:
            raise FormatError(f"a disclosure's name must be a string other than {', '.join(_RESERVED)}")
        return Disclosure(text, salt, parts[1], parts[2])
    return Disclosure(text, salt, None, parts[1])


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    at = 0
    for m in _STEP.finditer(path):
        if m.start() != at and path[at : m.start()] != ".":
            raise FormatError(f"path {path!r} is not member names joined by '.', with [i] or [*] for elements")
        steps.append(m.group(1) if m.group(1) is not None else (-1 if m.group(2) == "*" else int(m.group(2))))
        at = m.end()
    if not steps or at != len(path):
        raise FormatError(f"path {path!r} is not member names joined by '.', with [i] or [*] for elements")
    return steps


def _targets(node: Any, steps: list[str | int], path: str) -> Iterator[tuple[Any, str | int]]:
    """Each (container, key) the path names; raises when a step does not exist."""
    head, rest = steps[0], steps[1:]
    if isinstance(head, str):
        if not isinstance(node, dict) or head not in node:
            raise FormatError(f"path {path!r}: no member {head!r} there")
        keys: list[str | int] = [head]
    else:
        if not isinstance(node, list):
            raise FormatError(f"path {path!r}: not a list where [{'*' if head < 0 else head}] stands")
        if head >= len(node):
            raise FormatError(f"path {path!r}: no element {head}")
        keys = list(range(len(node))) if head < 0 else [head]
    for key in keys:
        if rest:
            yield from _targets(node[key], rest, path)
        else:
            yield node, key


def hides_digests(paths: Sequence[str]) -> bool:
    """Whether these paths hide a digest (end in ``digest`` or ``digest.<alg>``), so redacting them needs the
    tenant's blinding key."""
    for path in paths:
        steps = _steps(path)
        if steps[-1] == "digest" or (len(steps) > 1 and steps[-2] == "digest"):
            return True
    return False


def redact(
    statement: dict[str, Any],
    paths: Sequence[str],
    salt: Callable[[], bytes] | None = None,
    blinding_key: bytes | None = None,
) -> tuple[dict[str, Any], tuple[Disclosure, ...]]:
    """The statement with each path's member or element hidden, and the disclosures that reveal them
    (``salt`` gives each one's salt; default 128 random bits). Deeper paths are hidden first, so a hidden
    object may itself hold hidden members. A hidden digest (a path ending in ``digest`` or ``digest.<alg>``)
    gets its blinded twin under ``blinding_key``, the tenant's (:func:`blind`). Raises :class:`FormatError`
    for a path that names nothing, or a digest to hide without a blinding key."""
    out = copy.deepcopy(statement)
    # (depth, container, key, whether the member is a digest set's algorithm)
    chosen: list[tuple[int, Any, str | int, bool]] = []
    for path in paths:
        steps = _steps(path)
        if steps[0] in ("_type", "predicateType", "subject") and len(steps) == 1:
            raise FormatError(f"path {path!r}: the statement's type and subject list stay public")
        for container, key in _targets(out, steps, path):
            if key == "digest" and isinstance(container[key], dict):
                digests = container[key]
                chosen.extend((len(steps) + 1, digests, a, True) for a in digests if a != "_sd" and _blinded(a) is None)
            else:
                chosen.append((len(steps), container, key, len(steps) > 1 and steps[-2] == "digest"))
    if blinding_key is None and any(c[3] for c in chosen):
        raise FormatError("hiding a digest needs the tenant's blinding key (LogClient.blinding_key())")
    disclosures: list[Disclosure] = []
    hidden: set[tuple[int, str | int]] = set()
    # Deepest first, and elements from the highest index down, so earlier hides do not move later targets.
    for _, container, key, is_digest in sorted(chosen, key=lambda c: (-c[0], -(c[2] if isinstance(c[2], int) else 0))):
        if (id(container), key) in hidden:
            continue
        hidden.add((id(container), key))
        s = salt() if salt is not None else None
        if isinstance(key, int):
            d = Disclosure.make(None, container[key], s)
            container[key] = {"...": d.digest}
        else:
            value = container.pop(key)
            d = Disclosure.make(key, value, s)
            container["_sd"] = sorted([*container.get("_sd", []), d.digest])
            if is_digest:
                if not isinstance(value, str):
                    raise FormatError(f"digest {key!r} is not a string")
                assert blinding_key is not None
                twin, blinded = blind(blinding_key, key, value)
                container[twin] = blinded
        disclosures.append(d)
    if disclosures:
        out["_sd_alg"] = SD_ALG
    return out, tuple(disclosures)


def hidden_digests(statement: Any) -> set[str]:
    """Every disclosure digest that stands in ``statement`` (in ``_sd`` arrays and ``{"...": d}`` elements)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"..."} and isinstance(node["..."], str):
                found.add(node["..."])
                return
            for d in node.get("_sd", []) if isinstance(node.get("_sd"), list) else []:
                if isinstance(d, str):
                    found.add(d)
            for k, v in node.items():
                if k != "_sd":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(statement)
    return found


@dataclass(frozen=True, slots=True)
class Revealed:
    """A statement with its disclosures put back: ``statement`` as the pipeline wrote it (sharing the parts
    that hid nothing with the redacted statement it came from: treat both as read-only), and each disclosure
    with the JSON path where its value stands."""

    statement: dict[str, Any]
    disclosed: tuple[tuple[str, Disclosure], ...]


def reveal(statement: dict[str, Any], disclosures: Sequence[Disclosure]) -> Revealed:
    """Put ``disclosures`` back into the redacted ``statement`` (the signed one), proving each is the value
    committed there (RFC 9901 §7.1 steps 3-5): every disclosure's digest must stand exactly once in the
    statement or in another disclosed value, a member disclosure in an ``_sd`` array and an element disclosure
    in ``{"...": digest}``, and a revealed member may not already be there. Digests left without a disclosure
    stay hidden (the result keeps their ``_sd`` and ``...`` entries). Raises :class:`VerificationError`."""
    if len(disclosures) > MAX_DISCLOSURES:
        raise VerificationError(f"more than {MAX_DISCLOSURES} disclosures")
    if statement.get("_sd_alg", SD_ALG) != SD_ALG:
        raise VerificationError(f"the statement's _sd_alg must be {SD_ALG!r}")
    by_digest: dict[str, Disclosure] = {}
    for d in disclosures:
        if d.digest in by_digest:
            raise VerificationError("a disclosure is given twice")
        by_digest[d.digest] = d
    used: dict[str, str] = {}

    def take(digest: str, path: str) -> Disclosure | None:
        if digest in used:
            raise VerificationError(f"digest {digest} stands twice (at {used[digest]} and {path})")
        used[digest] = path
        return by_digest.get(digest)

    def walk(node: Any, path: str) -> Any:
        """``node`` with its disclosed values put back; an unchanged container is returned as it is (most of a
        statement hides nothing, and copying it would be most of the work)."""
        if type(node) is dict:
            sd = node.get("_sd")
            changed: dict[str, Any] = {}
            for k, v in node.items():
                if k != "_sd" and (type(v) is dict or type(v) is list):
                    w = walk(v, f"{path}.{k}")
                    if w is not v:
                        changed[k] = w
            if sd is None and not changed:
                return node
            if sd is not None and (type(sd) is not list or not all(type(x) is str for x in sd)):
                raise VerificationError(f"{path}._sd must be a list of digests")
            out = {k: changed.get(k, v) for k, v in node.items() if k != "_sd"}
            kept = []
            for digest in sd or ():
                d = take(digest, f"{path}._sd")
                if d is None:
                    kept.append(digest)
                    continue
                if d.name is None:
                    raise VerificationError(f"an element's disclosure is named in an object's _sd at {path}")
                if d.name in out:
                    raise VerificationError(f"the disclosure of {path}.{d.name} names a member already there")
                value = d.value
                out[d.name] = walk(value, f"{path}.{d.name}") if type(value) is dict or type(value) is list else value
                disclosed.append((f"{path}.{d.name}", d))
            if kept:
                out["_sd"] = kept
                still_hidden.append(path)
            return out
        if type(node) is list:
            items: list[Any] | None = None  # a copy, made at the first change
            for i, v in enumerate(node):
                if type(v) is not dict and type(v) is not list:
                    w = v
                elif type(v) is dict and len(v) == 1 and type(v.get("...")) is str:
                    d = take(v["..."], f"{path}[{i}]")
                    if d is None:
                        still_hidden.append(path)
                        w = v
                    else:
                        if d.name is not None:
                            raise VerificationError(f"a member's disclosure stands for the element {path}[{i}]")
                        value = d.value
                        w = walk(value, f"{path}[{i}]") if type(value) is dict or type(value) is list else value
                        disclosed.append((f"{path}[{i}]", d))
                else:
                    w = walk(v, f"{path}[{i}]")
                if w is not v and items is None:
                    items = list(node[:i])
                if items is not None:
                    items.append(w)
            return node if items is None else items
        return node

    disclosed: list[tuple[str, Disclosure]] = []
    still_hidden: list[str] = []  # where a digest was left without its disclosure
    full = dict(walk(statement, "$"))  # the top level is ours: _sd_alg may go
    stray = set(by_digest) - set(used)
    if stray:
        raise VerificationError(f"a disclosure ({min(stray)}) is not committed anywhere in the statement")
    if not still_hidden:
        full.pop("_sd_alg", None)
    return Revealed(full, tuple(sorted(disclosed, key=lambda p: p[0])))


def check_blinded(revealed: Revealed, key: bytes | None) -> frozenset[tuple[str, str]]:
    """Check every blinded digest in a revealed statement against the value it stands for: each
    ``blinded+<alg>`` member of a digest set must have that algorithm's value hidden in the same set and
    disclosed, and equal :func:`blind` of it under ``key`` (the submitting tenant's; None when there is no
    tenant). Returns the ``(digest set's JSON path, blinded algorithm)`` pairs checked (algorithm names
    normalised, as the log indexes them); raises :class:`VerificationError` naming the path."""
    disclosed: dict[str, dict[str, str]] = {}
    for path, d in revealed.disclosed:
        if d.name is not None and isinstance(d.value, str):
            disclosed.setdefault(path[: -len(d.name) - 1], {})[d.name] = d.value
    checked: set[tuple[str, str]] = set()

    def walk(node: Any, path: str, parent_key: str | int | None) -> None:
        if isinstance(node, dict):
            if parent_key == "digest":
                hidden = disclosed.get(path, {})
                for name, value in node.items():
                    blinded = _blinded(name)
                    if blinded is None:
                        continue
                    where = f"{path}.{name}"
                    alg = blinded[len(BLINDED) :]
                    if any(_same_alg(n, alg) for n in node if n not in hidden and _blinded(n) is None):
                        raise VerificationError(f"the blinded digest {where} stands beside its public value")
                    real = [(n, v) for n, v in hidden.items() if _same_alg(n, alg)]
                    if len(real) != 1:
                        raise VerificationError(f"the blinded digest {where} stands for no hidden digest of its set")
                    if key is None:
                        raise VerificationError(
                            f"the blinded digest {where} needs the submitting tenant's key: submit with its token"
                        )
                    try:
                        want = blind(key, *real[0])
                    except FormatError as exc:
                        raise VerificationError(f"the digest hidden behind {where} is not a digest: {exc}") from exc
                    if (
                        not isinstance(value, str)
                        or not _same_alg(name, want[0])
                        or not hmac.compare_digest(want[1], value.lower())
                    ):
                        raise VerificationError(
                            f"the blinded digest {where} is not the tenant's blinding of the digest it hides"
                        )
                    checked.add((path, blinded))
            for k, v in node.items():
                walk(v, f"{path}.{k}", k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]", i)

    walk(revealed.statement, "$", None)
    return frozenset(checked)


def _blinded(name: str) -> str | None:
    """The normalised name of a blinded digest's algorithm (``blinded+sha256``), or None for any other."""
    try:
        a = normalise_algorithm(name)
    except FormatError:
        return None
    return a if a.startswith(BLINDED) else None


def _same_alg(name: str, alg: str) -> bool:
    try:
        return normalise_algorithm(name) == normalise_algorithm(alg)
    except FormatError:
        return False


def verify_disclosures(body: Any, envelope: Any, encoded: Sequence[Any]) -> Revealed:
    """Reveal a logged entry's hidden values: ``body`` is the entry body its (proved) leaf holds, ``envelope``
    the DSSE envelope served beside it (``{"payloadType", "payload"}``), ``encoded`` the disclosures. The
    payload must be the one the body's ``payloadHash`` commits to, and every disclosure a value it hides
    (:func:`reveal`). Pure; raises :class:`VerificationError` or :class:`FormatError`."""
    if not isinstance(body, dict) or not isinstance(envelope, dict):
        raise FormatError("an entry body and a DSSE envelope are needed")
    want = body.get("payloadHash", {}).get("sha256") if isinstance(body.get("payloadHash"), dict) else None
    payload = b64decode(envelope.get("payload", ""), "the envelope's payload")
    if not isinstance(want, str) or hashlib.sha256(payload).hexdigest() != want:
        raise VerificationError("the statement served is not the one the entry commits to (payloadHash differs)")
    if envelope.get("payloadType") != body.get("payloadType"):
        raise VerificationError("the statement's payload type is not the entry's")
    statement: Any = json_loads(payload, "statement")
    if not isinstance(statement, dict):
        raise FormatError("the statement is not a JSON object")
    return reveal(statement, [parse_disclosure(d) for d in encoded])
