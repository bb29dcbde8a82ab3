"""The monitor against honest, lagging and forked views of one log (same key), and evidence checked offline."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest

from atlas_log.errors import VerificationError
from atlas_log.evidence import verify_evidence
from atlas_log.monitor import Monitor
from atlas_log.note import Signer
from tests import reference
from tests.test_http import FakeLog

ORIGIN = "http.example/log"
SIGNER = Signer.generate(ORIGIN)
LEAVES = [reference.leaf(str(i).encode()) for i in range(50)]
FORKED = [*LEAVES[:4], reference.leaf(b"evil"), *LEAVES[5:]]


def _client(views: dict[str, FakeLog]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return views[request.url.host].handler(request)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_honest_and_lagging_views_give_no_evidence() -> None:
    honest, mirror = FakeLog(SIGNER, LEAVES), FakeLog(SIGNER, LEAVES)
    honest.size, mirror.size = 30, 20
    mon = Monitor(_client({"log": honest, "mirror": mirror}), ["http://log", "http://mirror"], SIGNER.verifier)
    r = mon.round()
    assert r.evidence == [] and r.size == 30 and r.views == {"http://mirror": 20, "http://log": 30}
    honest.size = 45
    assert mon.round().size == 45


def test_fork_is_reported_with_evidence_that_verifies(tmp_path: Path) -> None:
    honest, forked = FakeLog(SIGNER, LEAVES), FakeLog(SIGNER, FORKED)
    honest.size, forked.size = 10, 20
    mon = Monitor(_client({"log": honest, "evil": forked}), ["http://log", "http://evil"], SIGNER.verifier)
    r = mon.round()
    assert len(r.evidence) == 1
    ev = r.evidence[0]
    assert "do not join" in verify_evidence(ev, SIGNER.verifier.vkey)
    same_size = FakeLog(SIGNER, FORKED)
    same_size.size = 10
    r2 = Monitor(_client({"log": honest, "evil": same_size}), ["http://log", "http://evil"], SIGNER.verifier).round()
    assert r2.evidence and "two different trees" in verify_evidence(r2.evidence[0], SIGNER.verifier.vkey)
    # Evidence from a consistent pair does not hold.
    honest.size = 20
    good = {
        **ev,
        "checkpoints": [ev["checkpoints"][0], honest.note().decode()],
        "proof": [base64.b64encode(p).decode() for p in reference.proof(10, LEAVES[:20])],
    }
    with pytest.raises(VerificationError):
        verify_evidence(good, SIGNER.verifier.vkey)
    (tmp_path / "ev.json").write_text(json.dumps(ev))
    from atlas_log import cli

    assert cli.main(["--vkey", SIGNER.verifier.vkey, "verify-evidence", str(tmp_path / "ev.json")]) == 0


@pytest.mark.parametrize("trusted", [8, 10])
def test_a_fork_found_by_rollback_or_growth_gives_evidence_only_from_a_proof_that_shows_it(trusted: int) -> None:
    """The forked log is larger, or the monitor already trusts its larger view and then sees the honest,
    smaller one; the older size is a power of two or not. A forked log serving broken proofs gives the
    monitor a problem to report, never evidence that would not hold."""
    for forked_first in (False, True):
        honest, forked = FakeLog(SIGNER, LEAVES), FakeLog(SIGNER, FORKED)
        honest.size, forked.size = trusted, 20
        mon = Monitor(_client({"log": honest, "evil": forked}), ["http://log", "http://evil"], SIGNER.verifier)
        if forked_first:
            mon.trusted.advance(forked.note(), [])
        r = mon.round()
        assert len(r.evidence) == 1, r.problems
        assert "do not join" in verify_evidence(r.evidence[0], SIGNER.verifier.vkey)
    forked.broken_proofs = True
    r = Monitor(_client({"log": honest, "evil": forked}), ["http://log", "http://evil"], SIGNER.verifier).round()
    assert r.evidence == [] and any("no evidence written" in p for p in r.problems)


def test_monitor_serves_its_view_to_peers() -> None:
    from atlas_log.monitor import serve_checkpoint
    from tests.conftest import free_port

    honest = FakeLog(SIGNER, LEAVES)
    honest.size = 25
    first = Monitor(_client({"log": honest}), ["http://log"], SIGNER.verifier)
    first.round()
    port = free_port()
    server = serve_checkpoint(first, "127.0.0.1", port)
    try:
        served = httpx.get(f"http://127.0.0.1:{port}/checkpoint").content
        assert served == honest.note()
        # A second monitor compares its view of a forked log with the first monitor's (as a peer).
        forked = FakeLog(SIGNER, FORKED)
        forked.size = 25
        views = {"evil": forked}

        def handler(request: httpx.Request) -> httpx.Response:
            if request.url.host == "127.0.0.1":
                return httpx.Response(200, content=served)
            return views[request.url.host].handler(request)

        second = Monitor(
            httpx.Client(transport=httpx.MockTransport(handler)),
            ["http://evil"],
            SIGNER.verifier,
            peers=[f"http://127.0.0.1:{port}"],
        )
        assert second.round().evidence
    finally:
        server.shutdown()


def test_a_lagging_mirror_that_cannot_prove_beyond_its_size_is_no_fork() -> None:
    """The monitor trusts size 30 from the log, then sees a mirror at 20 that (honestly) cannot prove
    consistency to a size it does not have: the log proves the mirror's view a prefix."""
    log, mirror = FakeLog(SIGNER, LEAVES), FakeLog(SIGNER, LEAVES)
    log.size, mirror.size = 30, 20

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "mirror" and int(request.url.params.get("to", 0)) > mirror.size:
            return httpx.Response(400, json={"type": "https://atlas-log.dev/problems/tree-size", "detail": "no"})
        return {"log": log, "mirror": mirror}[request.url.host].handler(request)

    mon = Monitor(
        httpx.Client(transport=httpx.MockTransport(handler)), ["http://log", "http://mirror"], SIGNER.verifier
    )
    mon.trusted.advance(log.note(), [])
    r = mon.round()
    assert r.evidence == [] and r.problems == [] and r.size == 30
