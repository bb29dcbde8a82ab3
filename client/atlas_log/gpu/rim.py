"""Reference integrity manifests (RIMs): NVIDIA's signed golden measurements for one driver or VBIOS version.

A RIM is an ISO/IEC 19770-2:2015 SWID tag with TCG RIM attributes and an enveloped W3C XML Signature
(XML-DSig 1.1, C14N 1.1, ECDSA P-384 over SHA-384, one reference to the whole document) whose ``KeyInfo``
carries the signing chain, signer first. :func:`parse_rim` reads one strictly; :func:`rim_signature_problem`
checks its XML signature (with ``signxml``) against its signer certificate. The chain and the time are
judged by :mod:`atlas_log.gpu.chain`.

Both are memoised by the document's bytes: a log sees the same few RIMs with every entry of a fleet.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import SignXMLException
from signxml.verifier import SignatureConfiguration, XMLVerifier

from atlas_log.certificates import load_der_certificate
from atlas_log.errors import GpuEvidenceError
from atlas_log.gpu.report import Measurement

__all__ = [
    "GoldenMeasurement",
    "Rim",
    "RimKind",
    "clear_rim_caches",
    "parse_rim",
    "rim_kind_of",
    "rim_signature_problem",
]

RimKind = Literal["driver", "vbios"]

_SWID = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
_DS = "http://www.w3.org/2000/09/xmldsig#"
_SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"  # the namespace of the Hash0..HashN attributes
_MAX_RIM_BYTES = 1 << 20  # the RIMs here are about 20 KB; a megabyte is more than any has reason to be
_HASH_HEX = re.compile(r"\A[0-9a-fA-F]{96}\Z")
_INDEX = re.compile(r"\A(0|[1-9][0-9]{0,2})\Z")
_VBIOS_VERSION = re.compile(r"\A[0-9A-F]{2}(\.[0-9A-F]{2}){4}\Z")
_MAX_ALTERNATIVES = 16


@dataclass(frozen=True, slots=True)
class GoldenMeasurement:
    """One active ``Resource``: RIM ``index`` (SPDM index − 1) and the values any of which is acceptable."""

    index: int
    alternatives: tuple[Measurement, ...]


@dataclass(frozen=True, slots=True)
class Rim:
    """A parsed RIM. ``golden`` holds only the active measurements, by RIM index; ``certificates`` is the
    KeyInfo chain, signer first."""

    document: bytes
    tag_id: str
    version: str
    product: str
    golden: Mapping[int, GoldenMeasurement]
    certificates: tuple[x509.Certificate, ...]

    @property
    def signer(self) -> x509.Certificate:
        return self.certificates[0]


def rim_kind_of(version: str) -> RimKind:
    """Which firmware a RIM's ``colloquialVersion`` names: VBIOS versions are five dotted upper-case hex
    bytes (``96.00.5E.00.01``); anything else is a driver version (``550.144.03``, ``545.00``)."""
    return "vbios" if _VBIOS_VERSION.match(version) else "driver"


def _fail(code: str, message: str) -> GpuEvidenceError:
    return GpuEvidenceError(code, message)


def _attr(el: etree._Element, name: str, code: str, what: str) -> str:
    value = el.get(name)
    if not isinstance(value, str):
        raise _fail(code, f"{what} has no {name} attribute")
    return value


def _golden(resource: etree._Element, code: str) -> GoldenMeasurement | None:
    index_text = _attr(resource, "index", code, "a Resource")
    if not _INDEX.match(index_text):
        raise _fail(code, f"Resource index {index_text!r} is not a small decimal integer")
    index = int(index_text)
    active = _attr(resource, "active", code, f"Resource {index}")
    if active not in ("True", "False"):
        raise _fail(code, f"Resource {index} active={active!r} is neither True nor False")
    count_text = _attr(resource, "alternatives", code, f"Resource {index}")
    if not count_text.isdigit() or not 1 <= int(count_text) <= _MAX_ALTERNATIVES:
        raise _fail(code, f"Resource {index} alternatives={count_text!r} is not in 1..{_MAX_ALTERNATIVES}")
    values = []
    for n in range(int(count_text)):
        value = resource.get(f"{{{_SHA384_NS}}}Hash{n}")
        if value is None or not _HASH_HEX.match(value):
            raise _fail(code, f"Resource {index} Hash{n} is missing or not a SHA-384 hex digest")
        values.append(Measurement(bytes.fromhex(value)))
    return GoldenMeasurement(index, tuple(values)) if active == "True" else None


def _certificates(signature: etree._Element, code: str) -> tuple[x509.Certificate, ...]:
    out = []
    for el in signature.iterfind(f"{{{_DS}}}KeyInfo/{{{_DS}}}X509Data/{{{_DS}}}X509Certificate"):
        text = "".join((el.text or "").split())  # base64 in XML is wrapped at 64 characters
        try:
            out.append(load_der_certificate(base64.b64decode(text, validate=True)))
        except (binascii.Error, ValueError) as exc:
            raise _fail(code, f"a KeyInfo certificate is malformed: {exc}") from exc
    if not out:
        raise _fail(code, "the signature carries no X509Certificate")
    return tuple(out)


def parse_rim(document: bytes, code: str = "rim_parse_error") -> Rim:
    """Parse a RIM strictly; :class:`GpuEvidenceError` with ``code`` (the caller names which RIM, e.g.
    ``driver_rim_parse_error``) when it is not one. No DTDs, entities or network access."""
    return _parse_rim(bytes(document), code)


@functools.lru_cache(maxsize=256)
def _parse_rim(document: bytes, code: str) -> Rim:
    if len(document) > _MAX_RIM_BYTES:
        raise _fail(code, f"the RIM is larger than {_MAX_RIM_BYTES} bytes")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise _fail(code, f"the RIM is not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise _fail(code, "the RIM has a document type declaration")
    if root.tag != f"{{{_SWID}}}SoftwareIdentity":
        raise _fail(code, f"the root element is {root.tag}, not a SWID SoftwareIdentity")
    metas = root.findall(f"{{{_SWID}}}Meta")
    payloads = root.findall(f"{{{_SWID}}}Payload")
    signatures = root.findall(f"{{{_DS}}}Signature")
    if len(metas) != 1 or len(payloads) != 1 or len(signatures) != 1:
        raise _fail(code, "the RIM needs exactly one Meta, one Payload and one ds:Signature")
    if root[-1] is not signatures[0]:
        raise _fail(code, "ds:Signature is not the last child of SoftwareIdentity")
    # One reference to the whole document: what the signature covers is then everything parsed here.
    references = signatures[0].findall(f"{{{_DS}}}SignedInfo/{{{_DS}}}Reference")
    if len(references) != 1 or references[0].get("URI") != "":
        raise _fail(code, 'the signature must have exactly one Reference, URI=""')
    golden: dict[int, GoldenMeasurement] = {}
    for resource in payloads[0].iterfind(f"{{{_SWID}}}Resource"):
        if resource.get("type") != "Measurement":
            continue
        g = _golden(resource, code)
        if g is not None:
            if g.index in golden:
                raise _fail(code, f"two active Resources have index {g.index}")
            golden[g.index] = g
    return Rim(
        document,
        _attr(root, "tagId", code, "SoftwareIdentity"),
        _attr(metas[0], "colloquialVersion", code, "Meta"),
        metas[0].get("product", ""),
        MappingProxyType(golden),
        _certificates(signatures[0], code),
    )


def clear_rim_caches() -> None:
    """Forget every memoised parse and signature verdict (benchmarks measure the cold cost with it)."""
    _parse_rim.cache_clear()
    _signature_problem.cache_clear()


def rim_signature_problem(rim: Rim) -> str | None:
    """Why the RIM's XML signature does not verify with its signer certificate's key, or None when it does:
    the reference digest (SHA-384 of the C14N 1.1 document without the signature) and the ECDSA P-384
    SignatureValue over the canonical SignedInfo (XML-DSig 1.1 §3.2, core validation)."""
    return _signature_problem(rim.document, rim.signer)


@functools.lru_cache(maxsize=256)
def _signature_problem(document: bytes, signer: x509.Certificate) -> str | None:
    config = SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
        # signxml also checks the signer's validity period; the caller judges time for the whole chain and
        # reports it under its own code, so the check here is made at an instant the signer is valid.
        verification_time=signer.not_valid_before_utc,
    )
    try:
        XMLVerifier().verify(document, x509_cert=signer, expect_config=config)
    except SignXMLException as exc:
        return str(exc) or type(exc).__name__
    return None
