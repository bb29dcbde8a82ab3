"""Key mode: an entry citing ``keyAttestationEntry`` is admitted only if the cited attestation would pass
today (collateral in force now, current policy, current TDX mode, maximum age), and its ``tee`` records the
verdict of that re-evaluation. Real server processes, real PostgreSQL; the log's world changes between the
attestation and the entry citing it (collateral expires, the operator tightens the policy or switches mode).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.dsse import sign_envelope
from atlas_log.submission import INTOTO_PAYLOAD_TYPE, build_submission, intoto_statement, spki_der, tdx_tee
from atlas_log.tdx.binding import KEY_TAG, key_report_data
from atlas_log.tdx.collateral import Collateral
from atlas_log.testing.demo import demo_submission
from atlas_log.testing.simulate import DAY, SimulatedPlatform
from atlas_log_server.attest.dev import start_simulated_pcs, start_standin
from tests.conftest import ServerProcess
from tests.test_api import problem

ALLOWED_MRTD = hashlib.sha384(b"an allow-listed TD").digest()


def _attest(http: httpx.Client, platform: SimulatedPlatform, key: Ed25519PrivateKey, **quote: Any) -> int:
    """Log a key-attestation entry for ``key`` (a quote binding its SPKI); return its index."""
    spki = spki_der(key)
    statement = intoto_statement(
        # A statement per attestation: the same statement by the same key is one entry, whatever its quote.
        [("spki", hashlib.sha256(spki).hexdigest())],
        "https://atlas-log.dev/tee/key-attestation/v1",
        {"attestation": next(_counter)},
    )
    sub = build_submission(
        sign_envelope(INTOTO_PAYLOAD_TYPE, statement, key),
        [spki],
        tee=tdx_tee(platform.quote(key_report_data(spki), **quote), binding=KEY_TAG),
    )
    r = http.post("/api/v1/entries", json=sub)
    assert r.status_code == 201, r.text
    return int(r.json()["logIndex"])


_counter = iter(range(1_000_000))


def _cite(http: httpx.Client, key: Ed25519PrivateKey, index: int) -> httpx.Response:
    """Submit a new entry signed by ``key`` that cites the key attestation at ``index`` instead of a quote."""
    sub = demo_submission(key, next(_counter))
    sub["tee"] = {"type": "intel-tdx", "binding": KEY_TAG, "keyAttestationEntry": index}
    return http.post("/api/v1/entries", json=sub)


def _tee(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    tee: dict[str, Any] = json.loads(base64.b64decode(resp.json()["leaf"]))["body"]["tee"]
    return tee


def _refused(resp: httpx.Response, slug: str, reason: str) -> None:
    problem(resp, 422, slug)
    assert reason in resp.json()["detail"], resp.json()


@pytest.fixture
def servers(db_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers on one database and data folder, one after another (a restart with new settings)."""
    started: list[ServerProcess] = []

    def start(**env: str) -> ServerProcess:
        for s in started:
            s.stop()
        s = ServerProcess(db_url, tmp_path / "data", env=env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def test_cited_attestation_is_reverified_against_the_collateral_in_force_now(
    servers: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    # A platform whose certificates cover the past 40 days, served by a PCS the test controls.
    platform = SimulatedPlatform.create(int(time.time()) - 40 * DAY)
    platform.save(tmp_path / "data" / "simulated-tdx")

    def expiring_at(t: int) -> Collateral:  # collateral issued 30 days before t: it expires at t
        return platform.collateral(t - platform.collateral_days * DAY)

    serving = {"now": expiring_at(int(time.time()) + DAY)}
    pcs = start_standin({"": lambda: serving["now"]})

    server = servers(ATLAS_PCS_URL=pcs)
    http = httpx.Client(base_url=server.url, timeout=30)
    key = Ed25519PrivateKey.generate()
    t0 = int(time.time())
    serving["now"] = first = expiring_at(t0 + 6)
    idx = _attest(http, platform, key)
    tee = _tee(_cite(http, key, idx))
    assert tee["keyAttestationEntry"] == idx and tee["collateral"]["set"] == first.digest

    # The collateral the attestation was verified with expires; PCS now serves a newer set.
    serving["now"] = second = expiring_at(t0 + 12)
    time.sleep(max(0.0, t0 + 6.5 - time.time()))
    tee = _tee(_cite(http, key, idx))
    assert tee["collateral"]["set"] == second.digest  # the verdict it was admitted under now
    assert tee["collateralExpiry"] == t0 + 12 and tee["tcbStatus"] == "UpToDate"
    assert "quoteSha256" not in tee  # it carries no quote of its own (and attests no key itself)

    # Then the current collateral revokes the platform's PCK certificate: the key attestation no longer passes.
    serving["now"] = platform.variant(revoked_pck=True).collateral(int(time.time()) - 60)
    time.sleep(max(0.0, t0 + 12.5 - time.time()))
    _refused(_cite(http, key, idx), "tdx-key-attestation-rejected", "pck-revoked")


def test_cited_attestation_is_reverified_under_the_current_policy_and_mode(
    servers: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    lenient = tmp_path / "lenient.json"
    lenient.write_text(json.dumps({"allowed_statuses": ["UpToDate", "OutOfDate"], "allow_migratable": True}))
    server = servers(ATLAS_TDX_POLICY_FILE=str(lenient))
    platform = server.platform
    http = httpx.Client(base_url=server.url, timeout=30)
    keys = {name: Ed25519PrivateKey.generate() for name in ("outofdate", "mrtd", "migratable", "honest")}
    attested = {
        # Launched on a TDX module older than the UpToDate level: OutOfDate, allowed by this policy.
        "outofdate": _attest(http, platform, keys["outofdate"], tee_tcb_svn=bytes([3, 1, 1]) + bytes(13)),
        "mrtd": _attest(http, platform, keys["mrtd"]),
        "migratable": _attest(
            http, platform, keys["migratable"], mr_td=ALLOWED_MRTD, td_attributes=(3 << 28).to_bytes(8, "little")
        ),
        "honest": _attest(http, platform, keys["honest"], mr_td=ALLOWED_MRTD),
    }
    for name, idx in attested.items():
        _tee(_cite(http, keys[name], idx))
    assert _tee(_cite(http, keys["outofdate"], attested["outofdate"]))["tcbStatus"] == "OutOfDate"

    # The operator tightens the policy: UpToDate only, an MRTD allow-list, migratable TDs refused (the default).
    strict = tmp_path / "strict.json"
    strict.write_text(json.dumps({"mr_td": [ALLOWED_MRTD.hex()]}))
    server = servers(ATLAS_TDX_POLICY_FILE=str(strict))
    http = httpx.Client(base_url=server.url, timeout=30)
    _refused(_cite(http, keys["outofdate"], attested["outofdate"]), "tdx-key-attestation-rejected", "OutOfDate")
    _refused(_cite(http, keys["mrtd"], attested["mrtd"]), "tdx-key-attestation-rejected", "mrtd-not-allowed")
    _refused(_cite(http, keys["migratable"], attested["migratable"]), "tdx-key-attestation-rejected", "td-migratable")
    tee = _tee(_cite(http, keys["honest"], attested["honest"]))
    assert tee["mrTd"] == ALLOWED_MRTD.hex() and tee["tcbStatus"] == "UpToDate"
    # A fresh migratable quote is refused by the default policy too (and was accepted by the lenient one).
    fresh = keys["migratable"]
    spki = spki_der(fresh)
    statement = intoto_statement([("k", "12" * 32)], "https://atlas-log.dev/t/v1", {})
    quote = platform.quote(key_report_data(spki), mr_td=ALLOWED_MRTD, td_attributes=(3 << 28).to_bytes(8, "little"))
    migratable = build_submission(
        sign_envelope(INTOTO_PAYLOAD_TYPE, statement, fresh), [spki], tee=tdx_tee(quote, binding=KEY_TAG)
    )
    problem(http.post("/api/v1/entries", json=migratable), 422, "tdx-td-migratable")

    # The log now runs in Intel mode; the operator even trusts the simulated root as an extra root, so a fresh
    # simulated quote verifies — but an attestation made while the log was simulated is not carried over.
    pcs = start_simulated_pcs(platform)
    server = servers(
        ATLAS_TDX_MODE="intel",
        ATLAS_PCS_URL=pcs,
        ATLAS_TDX_EXTRA_ROOTS=json.dumps([platform.root_fingerprint]),
        ATLAS_TDX_POLICY_FILE=str(strict),
    )
    http = httpx.Client(base_url=server.url, timeout=30)
    _refused(_cite(http, keys["honest"], attested["honest"]), "tdx-key-attestation-rejected", "simulated")
    again = _attest(http, platform, keys["honest"], mr_td=ALLOWED_MRTD)
    assert _tee(_cite(http, keys["honest"], again))["simulated"] is False

    # A monitor replays this whole log cleanly: it does not know the policies of the day, so OutOfDate and
    # migratable TDs replay, and every citing entry re-derives from the quote it cites.
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.note import Verifier
    from atlas_log.replay import Replay
    from atlas_log.reverify import Trust

    checkpoint = open_checkpoint(http.get("/checkpoint").content, Verifier.from_vkey(server.vkey))
    result = Replay(server.url, Trust(tdx_roots=(platform.root_fingerprint,)), workers=1).run(checkpoint)
    assert result.problems == [] and result.entries == checkpoint.size == 12


def test_cited_attestation_older_than_the_maximum_age_is_refused(servers: Callable[..., ServerProcess]) -> None:
    server = servers(ATLAS_KEY_ATTESTATION_MAX_AGE_S="2")
    http = httpx.Client(base_url=server.url, timeout=30)
    key = Ed25519PrivateKey.generate()
    idx = _attest(http, server.platform, key)
    _tee(_cite(http, key, idx))
    time.sleep(3.5)
    _refused(_cite(http, key, idx), "tdx-key-attestation-expired", "ATLAS_KEY_ATTESTATION_MAX_AGE_S")


def test_the_default_maximum_age_is_a_day() -> None:
    from atlas_log_server.config import Settings

    assert Settings().key_attestation_max_age_s == 86_400


def test_replay_rederives_a_key_attested_entry_from_the_cited_quote(server: ServerProcess) -> None:
    from atlas_log._encoding import b64decode
    from atlas_log.replay import Replay
    from atlas_log.reverify import Trust, check_entry

    platform = server.platform
    http = httpx.Client(base_url=server.url, timeout=30)
    key = Ed25519PrivateKey.generate()
    idx = _attest(http, platform, key)
    _tee(_cite(http, key, idx))
    served = [http.get(f"/api/v1/entries/{i}").json() for i in (0, 1)]
    leaves = [b64decode(e["leaf"], "leaf") for e in served]
    subs = [json.dumps(e["submission"]).encode() for e in served]
    digest = json.loads(leaves[1])["body"]["tee"]["collateral"]["set"]
    coll = Collateral.from_json(http.get(f"/api/v1/collateral/{digest}").json()["collateral"])
    trust = Trust(tdx_roots=(platform.root_fingerprint,))
    quote = b64decode(served[0]["submission"]["tee"]["quote"], "quote")

    def check(i: int, cited: bytes | None) -> Any:
        return check_entry(i, leaves[i], subs[i], lambda d: coll, trust, cited_quote=lambda _: cited)

    attestation, citing = check(0, None), check(1, quote)
    assert attestation.problem is None and citing.problem is None and attestation.attests_key is not None
    attested = {0: attestation.attests_key}
    assert Replay._sequential(citing, {}, attested) is None
    # The log serves another quote for the cited entry (same key, same measurements): the verdict re-derives
    # identically, but it is not the quote entry 0 attested.
    other = check(1, platform.quote(key_report_data(spki_der(key))))
    assert other.problem is None
    assert "differs" in (Replay._sequential(other, {}, attested) or "")
    # A cited quote that does not verify at the entry's integration time, or that the log does not serve.
    debug = platform.quote(key_report_data(spki_der(key)), td_attributes=(1 | 1 << 28).to_bytes(8, "little"))
    assert "td-debug" in (check(1, debug).problem or "")
    assert "does not serve" in (check(1, None).problem or "")
    # Offline (one entry's evidence, no cited quote at hand): taken as recorded, never called misbehaviour.
    assert check_entry(1, leaves[1], subs[1], lambda d: coll, trust).problem is None
