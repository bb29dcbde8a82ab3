"""One attestation, one entry: nothing a third party can change without the signer's key or the TD makes a
second leaf of a logged statement (end to end, against a real server process and PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from atlas_log.dsse import sign_envelope
from atlas_log.receipt import verify_receipt
from atlas_log.submission import INTOTO_PAYLOAD_TYPE, build_submission, intoto_statement, spki_der, tdx_tee
from atlas_log.tdx.binding import KEY_TAG, key_report_data, payload_report_data
from atlas_log.tdx.quote import parse_quote
from atlas_log.testing.simulate import SimulatedPlatform
from tests.conftest import ServerProcess
from tests.test_api import problem

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture
def http(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def ecdsa_submission(key: ec.EllipticCurvePrivateKey, platform: SimulatedPlatform, payload: bytes) -> dict[str, Any]:
    spki = spki_der(key)
    quote = platform.quote(payload_report_data(INTOTO_PAYLOAD_TYPE, payload, spki))
    return build_submission(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key), [spki], tee=tdx_tee(quote))


def high_s(sig: bytes) -> bytes:
    """The other valid ECDSA signature of the same message: (r, n - s)."""
    r, s = decode_dss_signature(sig)
    return encode_dss_signature(r, P256_ORDER - s)


def long_form_der(sig: bytes) -> bytes:
    """The same (r, s) with the outer SEQUENCE length in BER long form (not DER)."""
    assert sig[0] == 0x30 and sig[1] < 0x80
    return b"\x30\x81" + sig[1:]


def tree_size(http: httpx.Client) -> int:
    return int(http.get("/api/v1/log").json()["treeSize"])


def unsigned_variants(
    sub: dict[str, Any], platform: SimulatedPlatform, key: ec.EllipticCurvePrivateKey
) -> dict[str, Any]:
    """Every change a third party (or an honest client run twice) can make without the signer's key or the TD."""
    env = sub["dsseEnvelope"]
    sig = base64.b64decode(env["signatures"][0]["sig"])
    spki = base64.b64decode(sub["verificationMaterial"]["publicKeys"][0]["spki"])
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    payload = base64.b64decode(env["payload"])
    quote = base64.b64decode(sub["tee"]["quote"])

    def with_sig(s: bytes, **extra: str) -> dict[str, Any]:
        return {**sub, "dsseEnvelope": {**env, "signatures": [{"sig": base64.b64encode(s).decode(), **extra}]}}

    def with_key(k: dict[str, str]) -> dict[str, Any]:
        return {**sub, "verificationMaterial": {"publicKeys": [k]}}

    def with_quote(q: bytes) -> dict[str, Any]:
        return {**sub, "tee": {**sub["tee"], "quote": base64.b64encode(q).decode()}}

    return {
        "keyid": with_sig(sig, keyid="attacker-chosen"),
        "high-s": with_sig(high_s(sig)),
        "ber-length": with_sig(long_form_der(sig)),
        "fresh-signature": with_sig(sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key).signatures[0].sig),
        "duplicated-signature": {**sub, "dsseEnvelope": {**env, "signatures": [env["signatures"][0]] * 2}},
        "pem": with_key({"pem": pem.decode()}),
        "pem-rewrapped": with_key({"pem": "preamble\n" + pem.decode().replace("\n", "\r\n") + "\n\n"}),
        "spki-keyid": with_key({"spki": base64.b64encode(spki).decode(), "keyid": "x"}),
        "fresh-quote": with_quote(platform.quote(payload_report_data(INTOTO_PAYLOAD_TYPE, payload, spki))),
        "zero-padded-quote": with_quote(quote + bytes(3065)),
    }


def test_unsigned_changes_return_the_existing_receipt(server: ServerProcess, http: httpx.Client) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = intoto_statement([("model.pt", "ab" * 32)], "https://atlas-log.dev/test/v1", {"epoch": 1})
    sub = ecdsa_submission(key, server.platform, payload)
    first = http.post("/api/v1/entries", json=sub)
    assert first.status_code == 201, first.text
    logged = first.json()
    # The same bytes, re-serialised: other member order and whitespace.
    raw = json.dumps(dict(reversed(list(sub.items()))), indent=3).encode()
    variants = {
        "json-layout": raw,
        **{k: json.dumps(v).encode() for k, v in unsigned_variants(sub, server.platform, key).items()},
    }
    for name, body in variants.items():
        r = http.post("/api/v1/entries", content=body, headers={"content-type": "application/json"})
        if name == "ber-length" and r.status_code == 400:  # not DER: refused outright is fine too
            continue
        assert r.status_code == 200, (name, r.text)
        again = r.json()
        assert again["logIndex"] == logged["logIndex"] and again["leaf"] == logged["leaf"], name
        assert again["entryId"] == logged["entryId"], name
        verify_receipt(again, server.vkey)
    assert tree_size(http) == 1


def test_racing_variants_of_one_statement_make_one_entry(server: ServerProcess, http: httpx.Client) -> None:
    """The variants sent at once, never logged before: one of them is logged, all others get its receipt."""
    key = ec.generate_private_key(ec.SECP256R1())
    payload = intoto_statement([("weights.bin", "77" * 32)], "https://atlas-log.dev/test/v1", {})
    sub = ecdsa_submission(key, server.platform, payload)
    bodies = [sub, *(v for k, v in unsigned_variants(sub, server.platform, key).items() if k != "ber-length")]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: http.post("/api/v1/entries", json=b), bodies))
    assert sorted(r.status_code for r in answers) == [200] * (len(bodies) - 1) + [201], [r.text for r in answers]
    assert len({(r.json()["logIndex"], r.json()["leaf"]) for r in answers}) == 1
    assert tree_size(http) == 1


def test_a_second_signer_set_is_a_second_entry(server: ServerProcess, http: httpx.Client) -> None:
    """One signed statement is one entry *per signer set*: a co-signer adds a (single) new entry."""
    a, b = ec.generate_private_key(ec.SECP256R1()), Ed25519PrivateKey.generate()
    payload = intoto_statement([("data.tar", "cd" * 32)], "https://atlas-log.dev/test/v1", {})
    sub = ecdsa_submission(a, server.platform, payload)
    assert http.post("/api/v1/entries", json=sub).status_code == 201
    both_env = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, a)
    other = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, b)
    env = {**both_env.to_json(), "signatures": [both_env.to_json()["signatures"][0], other.to_json()["signatures"][0]]}
    spkis = [spki_der(a), spki_der(b)]
    quote = server.platform.quote(payload_report_data(INTOTO_PAYLOAD_TYPE, payload, spkis[0]))
    both = {**build_submission(both_env, spkis, tee=tdx_tee(quote)), "dsseEnvelope": env}
    r = http.post("/api/v1/entries", json=both)
    assert r.status_code == 201, r.text
    # The same pair in the other order, with the other signer's key listed first, is the same set.
    swapped = {**both, "dsseEnvelope": {**env, "signatures": env["signatures"][::-1]}}
    swapped["verificationMaterial"] = {"publicKeys": both["verificationMaterial"]["publicKeys"][::-1]}
    swapped["tee"] = {**both["tee"], "signatureIndex": 1}
    r2 = http.post("/api/v1/entries", json=swapped)
    assert r2.status_code == 200, r2.text
    assert r2.json()["logIndex"] == r.json()["logIndex"]
    assert tree_size(http) == 2


def test_a_quote_is_never_used_by_two_entries(server: ServerProcess, http: httpx.Client) -> None:
    """A key-binding quote commits to a key, not a statement: attached to a second statement it would make a
    second entry from one attestation. Padding it with zeros must not make it a different quote."""
    key = Ed25519PrivateKey.generate()
    spki = spki_der(key)
    quote = server.platform.quote(key_report_data(spki))

    def attested(n: int, q: bytes) -> dict[str, Any]:
        payload = intoto_statement([(f"step-{n}", f"{n:02x}" * 32)], "https://atlas-log.dev/test/v1", {})
        return build_submission(
            sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key), [spki], tee=tdx_tee(q, binding=KEY_TAG)
        )

    assert http.post("/api/v1/entries", json=attested(1, quote)).status_code == 201
    problem(http.post("/api/v1/entries", json=attested(2, quote)), 409, "quote-reused")
    problem(http.post("/api/v1/entries", json=attested(3, quote + bytes(70))), 409, "quote-reused")
    # The statement it was used for still gets its receipt back.
    assert http.post("/api/v1/entries", json=attested(1, quote)).status_code == 200
    assert tree_size(http) == 1
    # Sent at once (one batch, or racing batches), six statements with one new quote: exactly one is logged.
    fresh = server.platform.quote(key_report_data(spki))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda n: http.post("/api/v1/entries", json=attested(n, fresh)), range(10, 16)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409, 409, 409], [r.text for r in answers]
    assert tree_size(http) == 2


def test_bytes_after_the_quote_must_be_zero(server: ServerProcess, http: httpx.Client) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = intoto_statement([("x", "ef" * 32)], "https://atlas-log.dev/test/v1", {})
    sub = ecdsa_submission(key, server.platform, payload)
    quote = base64.b64decode(sub["tee"]["quote"])
    sub["tee"]["quote"] = base64.b64encode(quote + b"\x00\x01").decode()
    problem(http.post("/api/v1/entries", json=sub), 422, "tdx-quote-malformed")
    assert tree_size(http) == 0


def test_migration_rewrites_logged_entries_to_the_v2_identity(db_url: str) -> None:
    """Entries logged before the v2 identity are found by it after the upgrade, computed from their leaves
    exactly as entry_id computes it; of a statement logged twice, only the first entry owns the identity, and of
    a quote used twice, only the first entry owns the quote."""
    from atlas_log.entry import Entry, build_body, entry_id, index_summary, legacy_entry_id
    from atlas_log.merkle import leaf_hash
    from atlas_log.submission import parse_submission
    from atlas_log.testing.demo import demo_submission
    from atlas_log_server.db import migrate

    a, b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    one = parse_submission(demo_submission(a, 1), 0)
    cosigned = sign_envelope(one.envelope.payload_type, one.envelope.payload, b)
    two = type(one.envelope)(
        one.envelope.payload_type, one.envelope.payload, one.envelope.signatures + cosigned.signatures
    )
    # Bodies as entries of that time recorded them: a tee record of the members the migration reads.
    tee = {"type": "intel-tdx", "quoteSha256": "ab" * 32}
    index = index_summary(one.extraction)
    two_signers = [*one.signers, parse_submission(demo_submission(b, 2), 0).signers[0]]
    bodies = [
        {**build_body(one.envelope, one.signers, None, index), "tee": tee},
        {**build_body(one.envelope, one.signers, None, index), "tee": {**tee, "quoteSha256": "cd" * 32}},  # again
        {**build_body(two, two_signers, None, index), "tee": tee},  # quote reused
    ]
    migrate.downgrade(db_url, "0009")

    async def insert() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            for i, body in enumerate(bodies):
                leaf = Entry(body, 1).leaf()
                await conn.execute(
                    "INSERT INTO entries (idx, entry_id, leaf_hash, leaf, submission, integrated_time) "
                    "VALUES ($1, $2, $3, $4, '{}', 1)",
                    i,
                    legacy_entry_id(body),
                    leaf_hash(leaf),
                    leaf,
                )
        finally:
            await conn.close()

    async def read() -> list[Any]:
        conn = await asyncpg.connect(db_url)
        try:
            return list(await conn.fetch("SELECT entry_id, quote_sha256 FROM entries ORDER BY idx"))
        finally:
            await conn.close()

    asyncio.run(insert())
    migrate.upgrade(db_url, "head")
    rows = asyncio.run(read())
    assert [bytes(r["entry_id"]) for r in rows] == [
        entry_id(bodies[0]),
        legacy_entry_id(bodies[1]),
        entry_id(bodies[2]),
    ]
    assert entry_id(bodies[0]) == entry_id(bodies[1]) != entry_id(bodies[2])
    assert [r["quote_sha256"] for r in rows] == [bytes.fromhex("ab" * 32), bytes.fromhex("cd" * 32), None]


KEY_FORMS = ("spki", "spki+keyid", "pem", "pem-crlf", "pem-preamble")
SIG_FORMS = ("same", "high-s", "ber-length", "fresh")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    keyid=st.none() | st.text(max_size=40),
    sig_form=st.sampled_from(SIG_FORMS),
    copies=st.integers(1, 3),
    key_form=st.sampled_from(KEY_FORMS),
    quote_form=st.sampled_from(("same", "fresh")),
    padding=st.sampled_from((0, 1, 70, 3065)),
    explicit_tee=st.booleans(),
    order=st.randoms(use_true_random=False),
    indent=st.sampled_from((None, 0, 2, "\t")),
)
def test_no_unsigned_mutation_makes_a_new_log_index(
    logged: tuple[ServerProcess, ec.EllipticCurvePrivateKey, dict[str, Any], dict[str, Any]],
    keyid: str | None,
    sig_form: str,
    copies: int,
    key_form: str,
    quote_form: str,
    padding: int,
    explicit_tee: bool,
    order: Any,
    indent: int | str | None,
) -> None:
    """Any combination of changes to what the signer's key and the TD do not cover (keyid, signature
    encoding and repetition, key format, a fresh or zero-padded quote, defaulted tee members spelled out,
    JSON member order and whitespace) is either refused or answered with the logged entry: never a new index."""
    server, key, sub, receipt = logged
    env = sub["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    spki = spki_der(key)
    sig = base64.b64decode(env["signatures"][0]["sig"])
    sig = {
        "same": sig,
        "high-s": high_s(sig) if sig_form == "high-s" else sig,
        "ber-length": long_form_der(sig) if sig_form == "ber-length" else sig,
        "fresh": sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key).signatures[0].sig if sig_form == "fresh" else sig,
    }[sig_form]
    signature: dict[str, str] = {"sig": base64.b64encode(sig).decode()}
    if keyid is not None:
        signature["keyid"] = keyid
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_key = {
        "spki": {"spki": base64.b64encode(spki).decode()},
        "spki+keyid": {"spki": base64.b64encode(spki).decode(), "keyid": keyid or ""},
        "pem": {"pem": pem.decode()},
        "pem-crlf": {"pem": pem.decode().replace("\n", "\r\n")},
        "pem-preamble": {"pem": "Public key of the pipeline:\n" + pem.decode() + "\n"},
    }[key_form]
    quote = base64.b64decode(sub["tee"]["quote"])
    if quote_form == "fresh":
        quote = server.platform.quote(payload_report_data(INTOTO_PAYLOAD_TYPE, payload, spki))
    tee: dict[str, Any] = {**sub["tee"], "quote": base64.b64encode(quote + bytes(padding)).decode()}
    if explicit_tee:
        tee.update(signatureIndex=0, nonce="00" * 32, binding="atlas-log/tdx-bind/v1")
    mutated = {
        **sub,
        "dsseEnvelope": {**env, "signatures": [signature] * copies},
        "verificationMaterial": {"publicKeys": [public_key]},
        "tee": tee,
    }

    def shuffled(obj: Any) -> Any:
        if isinstance(obj, dict):
            items = [(k, shuffled(v)) for k, v in obj.items()]
            order.shuffle(items)
            return dict(items)
        return [shuffled(v) for v in obj] if isinstance(obj, list) else obj

    raw = json.dumps(shuffled(mutated), indent=indent).encode()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.post("/api/v1/entries", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 200:
            event("answered with the logged entry")
            assert (r.json()["logIndex"], r.json()["leaf"]) == (receipt["logIndex"], receipt["leaf"])
        else:  # refused outright: only a non-DER signature, or a keyid that is not Unicode text
            event("refused: " + r.json()["type"].rsplit("/", 1)[1])
            surrogate = keyid is not None and any("\ud800" <= c <= "\udfff" for c in keyid)
            assert (sig_form == "ber-length" and r.json()["type"].endswith("/signature-invalid")) or (
                surrogate and r.json()["type"].endswith("/invalid-json")
            ), r.text
        assert tree_size(http) == 1


@pytest.fixture
def logged(server: ServerProcess) -> tuple[ServerProcess, ec.EllipticCurvePrivateKey, dict[str, Any], dict[str, Any]]:
    """A server holding one entry: an ECDSA P-256 signed statement with a payload-bound quote."""
    key = ec.generate_private_key(ec.SECP256R1())
    payload = intoto_statement([("model.safetensors", "0f" * 32)], "https://atlas-log.dev/test/v1", {"run": 7})
    sub = ecdsa_submission(key, server.platform, payload)
    r = httpx.post(server.url + "/api/v1/entries", json=sub, timeout=30)
    assert r.status_code == 201, r.text
    return server, key, sub, r.json()


def test_replay_recomputes_the_padded_quote_entry(server: ServerProcess, http: httpx.Client) -> None:
    """A monitor rebuilds the same body from a submission whose quote carries zero padding; an entry logged
    before padding was cut off (quoteSha256 over every byte) still replays, and any other hash does not."""
    import hashlib

    from atlas_log.entry import canonical_json
    from atlas_log.reverify import Trust, check_entry
    from atlas_log.tdx.collateral import Collateral

    key = ec.generate_private_key(ec.SECP256R1())
    payload = intoto_statement([("padded", "99" * 32)], "https://atlas-log.dev/test/v1", {})
    sub = ecdsa_submission(key, server.platform, payload)
    padded = base64.b64decode(sub["tee"]["quote"]) + bytes(3065)
    sub["tee"]["quote"] = base64.b64encode(padded).decode()
    r = http.post("/api/v1/entries", json=sub)
    assert r.status_code == 201, r.text
    entry = http.get("/api/v1/entries/0").json()
    leaf = base64.b64decode(entry["leaf"])
    raw = json.dumps(entry["submission"]).encode()
    logged = json.loads(leaf)
    assert logged["body"]["tee"]["quoteSha256"] == hashlib.sha256(padded[: len(padded) - 3065]).hexdigest()
    coll = Collateral.from_json(
        http.get(f"/api/v1/collateral/{logged['body']['tee']['collateral']['set']}").json()["collateral"]
    )
    trust = Trust(tdx_roots=(server.platform.root_fingerprint,))
    assert check_entry(0, leaf, raw, lambda d: coll, trust).problem is None

    def with_quote_hash(h: str) -> bytes:
        return canonical_json(
            {**logged, "body": {**logged["body"], "tee": {**logged["body"]["tee"], "quoteSha256": h}}}
        )

    legacy = with_quote_hash(hashlib.sha256(padded).hexdigest())
    assert check_entry(0, legacy, raw, lambda d: coll, trust).problem is None
    wrong = check_entry(0, with_quote_hash("00" * 32), raw, lambda d: coll, trust).problem or ""
    assert "not the one its submission produces" in wrong


def _compressed_spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The same P-256 public key as a DER SubjectPublicKeyInfo holding the compressed point (X9.62 0x02/0x03)."""
    der = spki_der(key)
    algorithm = der[2 : 4 + der[3]]
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    inner = algorithm + b"\x03" + bytes([len(point) + 1]) + b"\x00" + point
    return b"\x30" + bytes([len(inner)]) + inner


def _rsa_spki_variant(der: bytes, algorithm: bytes) -> bytes:
    """The same RSA key with another AlgorithmIdentifier: no NULL parameters, or the RSASSA-PSS OID."""
    standard = bytes.fromhex("300d06092a864886f70d0101010500")
    assert der[4 : 4 + len(standard)] == standard
    inner = algorithm + der[4 + len(standard) :]
    return b"\x30\x82" + len(inner).to_bytes(2, "big") + inner


@pytest.mark.parametrize("variant", ["ec-compressed-point", "rsa-no-null-parameters", "rsa-pss-oid"])
def test_another_der_encoding_of_the_key_is_the_same_signer(open_server: ServerProcess, variant: str) -> None:
    """Key format must not make a second entry. A third party rewrites the submitted DER SPKI of the signer as
    another encoding of the same key (an ECDSA key's compressed point; an RSA key without the NULL algorithm
    parameters, or under the RSASSA-PSS OID): the key loads, the signature verifies, but PublicKey keeps the
    submitted bytes, so the signer's spkiSha256 (and the entry id, and "everything this key signed") differ:
    a second entry of one signed statement by one signer."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    from atlas_log.dsse import Envelope, EnvelopeSignature, pae

    http = httpx.Client(base_url=open_server.url, timeout=30)
    payload = intoto_statement([("model.bin", "ab" * 32)], "https://atlas-log.dev/test/v1", {"v": variant})
    if variant == "ec-compressed-point":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, ec_key)
        standard, other = spki_der(ec_key), _compressed_spki(ec_key)
    else:
        rsa_key = rsa.generate_private_key(65537, 2048)
        sig = rsa_key.sign(pae(INTOTO_PAYLOAD_TYPE, payload), padding.PKCS1v15(), hashes.SHA256())
        envelope = Envelope(INTOTO_PAYLOAD_TYPE, payload, (EnvelopeSignature(sig),))
        standard = rsa_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        no_null, pss = "300b06092a864886f70d010101", "300b06092a864886f70d01010a"
        algorithm = no_null if variant == "rsa-no-null-parameters" else pss
        other = _rsa_spki_variant(standard, bytes.fromhex(algorithm))
    first = http.post("/api/v1/entries", json=build_submission(envelope, [standard]))
    assert first.status_code == 201, first.text
    again = http.post("/api/v1/entries", json=build_submission(envelope, [other]))
    assert again.status_code == 200, again.text
    assert again.json()["logIndex"] == first.json()["logIndex"]


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _flip_s(quote: bytes, sig: bytes) -> bytes:
    """The quote with one of its raw r||s ECDSA signatures replaced by (r, n - s): equally valid."""
    at = quote.index(sig)
    s = int.from_bytes(sig[32:], "big")
    return quote[:at] + sig[:32] + (P256_ORDER - s).to_bytes(32, "big") + quote[at + 64 :]


def _rechain(quote: bytes, edit: Any) -> bytes:
    """The quote with its PCK certificate chain (unsigned certification data) replaced by ``edit(chain)``,
    every enclosing length fixed up."""
    parsed = parse_quote(quote)
    base = len(parsed.signed)
    sig_len = int.from_bytes(quote[base : base + 4], "little")
    cert = base + 4 + 64 + 64 + 2 + 4
    auth = cert + 384 + 64
    auth_len = int.from_bytes(quote[auth : auth + 2], "little")
    chain_at = auth + 2 + auth_len + 2
    chain_len = int.from_bytes(quote[chain_at : chain_at + 4], "little")
    old = quote[chain_at + 4 : chain_at + 4 + chain_len]
    new = edit(old)
    grow = len(new) - len(old)
    size = (chain_len + grow).to_bytes(4, "little")
    out = bytearray(quote[:chain_at] + size + new + quote[chain_at + 4 + chain_len :])
    out[base : base + 4] = (sig_len + grow).to_bytes(4, "little")
    out[cert - 4 : cert] = (int.from_bytes(quote[cert - 4 : cert], "little") + grow).to_bytes(4, "little")
    return bytes(out)


def _malleate(quote: bytes, which: str) -> bytes:
    parsed = parse_quote(quote)
    if which == "quote-signature":
        return _flip_s(quote, parsed.signature)
    if which == "qe-report-signature":
        return _flip_s(quote, parsed.qe_report_signature)
    if which == "pck-chain-zero-padding":
        return _rechain(quote, lambda c: c + bytes(16))
    if which == "pck-chain-preamble":
        return _rechain(quote, lambda c: b"any text before the PEM blocks\n" + c)
    raise AssertionError(which)


@pytest.mark.parametrize(
    "which", ["quote-signature", "qe-report-signature", "pck-chain-zero-padding", "pck-chain-preamble"]
)
def test_a_malleated_quote_is_the_same_quote(server: ServerProcess, http: httpx.Client, which: str) -> None:
    """One quote attests at most one entry. A third party holding a key-binding quote (it is public, via
    /evidence) rewrites one of its ECDSA signatures as (r, n - s), or the unsigned PCK chain text (zero bytes,
    a preamble before the PEM blocks): still valid, but a different quoteSha256, so the quote attests a second
    statement as if freshly quoted."""
    key = Ed25519PrivateKey.generate()
    spki = spki_der(key)
    quote = server.platform.quote(key_report_data(spki))
    malleated = _malleate(quote, which)
    assert malleated != quote

    def attested(n: int, q: bytes) -> dict[str, Any]:
        payload = intoto_statement([(f"step-{n}", f"{n:02x}" * 32)], "https://atlas-log.dev/test/v1", {})
        return build_submission(
            sign_envelope(INTOTO_PAYLOAD_TYPE, payload, key), [spki], tee=tdx_tee(q, binding=KEY_TAG)
        )

    assert http.post("/api/v1/entries", json=attested(1, quote)).status_code == 201
    problem(http.post("/api/v1/entries", json=attested(2, malleated)), 409, "quote-reused")


def test_an_unattested_copy_cannot_block_the_attested_statement(open_server: ServerProcess) -> None:
    """Another user's input cannot fail a submission. On a log that also admits unattested entries, whoever
    sees a signed envelope before it is logged (a pipeline's artifact store, a proxy) submits it without its
    tee block. The identity ignores attestation, so the TD holder's attested submission is answered with that
    unattested entry: LogClient.submit raises ReceiptMismatchError, and the statement can never be logged as
    attested."""
    from atlas_log.client import LogClient
    from atlas_log.testing.demo import demo_submission

    key = Ed25519PrivateKey.generate()
    attested = demo_submission(key, 1, open_server.platform)
    stripped = {k: v for k, v in attested.items() if k != "tee"}
    assert httpx.post(open_server.url + "/api/v1/entries", json=stripped, timeout=30).status_code == 201
    with httpx.Client(base_url=open_server.url, timeout=30) as http:
        receipt = LogClient(http, open_server.vkey).submit(attested)
    import json

    tee = json.loads(receipt.leaf)["body"]["tee"]
    assert isinstance(tee, dict) and "quoteSha256" in tee
