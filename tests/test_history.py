"""An artifact's history over HTTP: proofs against one checkpoint, back-link chains, dropped entries detected."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.errors import FormatError, VerificationError
from atlas_log.history import HistoryCache, verify_history
from atlas_log.intoto import SLSA_V1
from atlas_log.submission import intoto_statement, signed_submission
from tests.conftest import ServerProcess


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _training(model: str, inputs: list[str]) -> bytes:
    return intoto_statement(
        [(model, _digest(model))],
        SLSA_V1,
        {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {"inputs": [{"name": i, "digest": {"sha256": _digest(i)}} for i in inputs]},
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    )


@pytest.fixture
def history_log(server: ServerProcess) -> tuple[ServerProcess, httpx.Client]:
    http = httpx.Client(base_url=server.url, timeout=30)
    key = Ed25519PrivateKey.generate()
    platform = server.platform
    # The dataset is consumed by three training runs; interleave unrelated entries.
    for n, payload in enumerate(
        [
            _training("model-v1", ["dataset-d"]),
            _training("other", ["unrelated"]),
            _training("model-v2", ["dataset-d", "model-v1"]),
            _training("model-v3", ["dataset-d"]),
        ]
    ):
        r = http.post("/api/v1/entries", json=signed_submission(key, payload, platform))
        assert r.status_code == 201, (n, r.text)
    return server, http


def test_history_verifies_and_is_ordered(history_log: tuple[ServerProcess, httpx.Client]) -> None:
    server, http = history_log
    answer = http.get(f"/api/v1/artifacts/sha256:{_digest('dataset-d')}/history").json()
    h = verify_history(answer, server.vkey)
    assert [e.log_index for e in h.entries] == [3, 2, 0]
    # Proved: no gap from entry 3 back to the first entry naming the artifact. Not proved: that no entry newer
    # than 3 names it (the log could withhold the newest), so the history is not called complete.
    assert h.gap_free_from == 3 and not h.complete and h.tree_size == 4
    assert all("material" in e.roles for e in h.entries)
    assert h.entries[0].entry.links == {f"sha256:{_digest('dataset-d')}": 2, f"sha256:{_digest('model-v3')}": None}
    model = verify_history(
        http.get(f"/api/v1/artifacts/SHA-256:{_digest('model-v1').upper()}/history").json(), server.vkey
    )
    assert [(e.log_index, e.roles) for e in model.entries] == [(2, ("material",)), (0, ("subject",))]


def test_dropped_or_truncated_history_is_detected(history_log: tuple[ServerProcess, httpx.Client]) -> None:
    server, http = history_log
    answer = http.get(f"/api/v1/artifacts/sha256:{_digest('dataset-d')}/history").json()
    middle = copy.deepcopy(answer)
    del middle["entries"][1]
    with pytest.raises(VerificationError, match="gap"):
        verify_history(middle, server.vkey)
    oldest = copy.deepcopy(answer)
    del oldest["entries"][-1]
    with pytest.raises(VerificationError, match="gap"):
        verify_history(oldest, server.vkey)
    recast = copy.deepcopy(answer)
    recast["entries"][0]["roles"] = ["subject"]  # the dataset recast as the output of entry 3
    with pytest.raises(VerificationError, match="role"):
        verify_history(recast, server.vkey)
    forged = copy.deepcopy(answer)
    forged["entries"][0]["leaf"] = answer["entries"][1]["leaf"]
    with pytest.raises(VerificationError):
        verify_history(forged, server.vkey)
    with pytest.raises(VerificationError):
        verify_history(answer, server.vkey, f"sha256:{_digest('other')}")
    with pytest.raises(FormatError):
        verify_history({"artifact": "x"}, server.vkey)


def test_pagination_and_cache(history_log: tuple[ServerProcess, httpx.Client]) -> None:
    server, http = history_log
    digest = f"sha256:{_digest('dataset-d')}"
    page = http.get(f"/api/v1/artifacts/{digest}/history", params={"limit": 2}).json()
    assert page["next"] == 2
    first = verify_history(page, server.vkey)
    assert first.next_before == 2 and first.gap_free_from is None and not first.complete
    rest = verify_history(
        http.get(f"/api/v1/artifacts/{digest}/history", params={"limit": 2, "before": first.next_before}).json(),
        server.vkey,
        after=first,
    )
    assert [e.log_index for e in rest.entries] == [3, 2, 0]  # the pages, chained
    assert rest.next_before is None and rest.gap_free_from == 3 and not rest.complete
    cache = HistoryCache()
    full = http.get(f"/api/v1/artifacts/{digest}/history").json()
    verify_history(full, server.vkey, cache=cache)
    verify_history(full, server.vkey, cache=cache)
    assert cache.hits == 3
    bad = http.get("/api/v1/artifacts/sha256:abcd/history")
    assert bad.status_code == 400 and bad.json()["type"].endswith("/invalid-digest")


def test_library_enforces_page_chaining(history_log: tuple[ServerProcess, httpx.Client]) -> None:
    server, http = history_log
    url = f"/api/v1/artifacts/sha256:{_digest('dataset-d')}/history"
    first = verify_history(http.get(url, params={"limit": 1}).json(), server.vkey)
    assert [e.log_index for e in first.entries] == [3] and first.next_before == 3
    # Asked for the page before 3, the log serves the one before 2: entry 2 silently dropped between pages.
    skipping = http.get(url, params={"before": 2}).json()
    with pytest.raises(VerificationError, match="gap"):
        verify_history(skipping, server.vkey, after=first)
    overlapping = http.get(url, params={"before": 4}).json()
    with pytest.raises(VerificationError, match="older"):
        verify_history(overlapping, server.vkey, after=first)
    other = http.get(f"/api/v1/artifacts/sha256:{_digest('model-v1')}/history", params={"before": 3}).json()
    with pytest.raises(VerificationError):
        verify_history(other, server.vkey, after=first)
    lying = http.get(url, params={"limit": 1}).json()
    lying["next"] = 1  # a cursor that skips: it must be the page's oldest entry
    with pytest.raises(VerificationError, match="next"):
        verify_history(lying, server.vkey)


def test_log_client_history_chains_pages_and_proves_their_checkpoints(
    history_log: tuple[ServerProcess, httpx.Client],
) -> None:
    from atlas_log.client import LogClient
    from tests.test_http import TamperingProxy

    server, _ = history_log
    proxy = TamperingProxy(server.url)
    try:
        with httpx.Client(base_url=proxy.url, timeout=30) as http:
            client = LogClient(http, server.vkey)
            h = client.history(f"SHA-256:{_digest('dataset-d').upper()}", page_size=1)
            assert [e.log_index for e in h.entries] == [3, 2, 0] and h.gap_free_from == 3 and not h.complete
            assert client.trusted.size == 4

            def skip(url: httpx.URL, answer: Any) -> Any:
                # Asked for the page before 3, the log serves the page before 2.
                if url.path.endswith("/history") and url.params.get("before") == "3":
                    return httpx.get(server.url + url.path, params={"limit": 1, "before": 2}).json()
                return answer

            proxy.on_get = skip
            with pytest.raises(VerificationError, match="gap"):
                client.history(f"sha256:{_digest('dataset-d')}", page_size=1)

            def other_artifact(url: httpx.URL, answer: Any) -> Any:
                if url.path.endswith("/history"):
                    return httpx.get(server.url + f"/api/v1/artifacts/sha256:{_digest('model-v1')}/history").json()
                return answer

            proxy.on_get = other_artifact
            with pytest.raises(VerificationError, match="not sha256"):
                client.history(f"sha256:{_digest('dataset-d')}")

        def other_lineage(url: httpx.URL, answer: Any) -> Any:
            if url.path.endswith("/lineage"):
                other = f"/api/v1/artifacts/sha256:{_digest('model-v1')}/lineage"
                return httpx.get(server.url + other, params={"direction": "down"}).json()
            return answer

        proxy.on_get = other_lineage
        from atlas_log import cli

        base = ["--server", proxy.url, "--vkey", server.vkey]
        assert cli.main([*base, "lineage", f"sha256:{_digest('model-v2')}"]) == 1
        assert cli.main([*base, "lineage", f"sha256:{_digest('model-v1')}"]) == 1  # asked up, answered down
    finally:
        proxy.close()


def test_lineage_rejects_an_edge_not_reachable_from_the_artifact(
    history_log: tuple[ServerProcess, httpx.Client],
) -> None:
    from atlas_log.history import verify_lineage

    server, http = history_log
    d = {n: f"sha256:{_digest(n)}" for n in ("model-v2", "other", "unrelated")}
    answer = http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage").json()
    verify_lineage(answer, server.vkey)
    # A true, proved edge of the same log, but of another artifact's lineage: not part of this answer.
    foreign = http.get(f"/api/v1/artifacts/{d['other']}/lineage").json()
    assert foreign["checkpoint"] == answer["checkpoint"]
    answer["edges"] += foreign["edges"]
    answer["entries"] += foreign["entries"]
    answer["nodes"] += [d["other"], d["unrelated"]]
    with pytest.raises(VerificationError, match="not reachable"):
        verify_lineage(answer, server.vkey)
    stray = http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage").json()
    stray["nodes"].append(d["other"])  # a node the answer connects to nothing
    with pytest.raises(VerificationError, match="not reachable"):
        verify_lineage(stray, server.vkey)


def test_lineage_up_and_down(history_log: tuple[ServerProcess, httpx.Client]) -> None:
    from atlas_log.history import verify_lineage

    server, http = history_log
    d = {n: f"sha256:{_digest(n)}" for n in ("dataset-d", "model-v1", "model-v2", "model-v3", "other", "unrelated")}
    up = verify_lineage(
        http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage", params={"direction": "up"}).json(), server.vkey
    )
    assert set(up.edges) == {
        (d["dataset-d"], d["model-v2"], 2),
        (d["model-v1"], d["model-v2"], 2),
        (d["dataset-d"], d["model-v1"], 0),
    }
    down = verify_lineage(
        http.get(f"/api/v1/artifacts/{d['dataset-d']}/lineage", params={"direction": "down", "depth": 3}).json(),
        server.vkey,
    )
    assert {(s, t) for s, t, _ in down.edges} == {
        (d["dataset-d"], d["model-v1"]),
        (d["dataset-d"], d["model-v2"]),
        (d["dataset-d"], d["model-v3"]),
        (d["model-v1"], d["model-v2"]),
    }
    assert d["other"] not in down.nodes
    shallow = verify_lineage(
        http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage", params={"direction": "up", "depth": 1}).json(),
        server.vkey,
    )
    assert {e[2] for e in shallow.edges} == {2}
    # An edge the cited entry does not state is caught.
    answer = http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage").json()
    answer["edges"].append({"from": d["unrelated"], "to": d["model-v2"], "logIndex": 2})
    answer["nodes"].append(d["unrelated"])
    with pytest.raises(VerificationError, match="does not state"):
        verify_lineage(answer, server.vkey)
    bad = http.get(f"/api/v1/artifacts/{d['model-v2']}/lineage", params={"direction": "sideways"})
    assert bad.status_code == 400


def test_cli_history_and_lineage(
    history_log: tuple[ServerProcess, httpx.Client], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from atlas_log import cli

    server, _ = history_log
    base = ["--server", server.url, "--vkey", server.vkey]
    d = f"sha256:{_digest('dataset-d')}"
    assert cli.main([*base, "history", d, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["logIndex"] for e in out["entries"]] == [3, 2, 0]
    assert out["complete"] is False and out["gapFreeFrom"] == 3
    assert out["entries"][0]["tcbStatus"] == "UpToDate" and out["entries"][0]["simulatedTee"] is True
    assert cli.main([*base, "history", d]) == 0
    text = capsys.readouterr().out
    assert "3 entries" in text and "gap-free from entry #3 back to the first" in text
    assert "not proved complete: the log gave no completeness proof" in text
    assert cli.main([*base, "lineage", f"sha256:{_digest('model-v2')}"]) == 0
    tree = capsys.readouterr().out
    assert f"sha256:{_digest('dataset-d')}" in tree and "└── " in tree and "input of entry #0]" in tree
    assert cli.main([*base, "lineage", d, "--direction", "down", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["edges"]) == 4
    # A digest no entry names (one character off, say) is not shown as an empty verified history.
    typo = d[:-1] + ("0" if d[-1] != "0" else "1")
    assert cli.main([*base, "history", typo]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"{typo}: no entry of this log names it" in text and "check the digest" in text
    assert "0 entries" not in text


def test_digest_aliases_join_one_history(server: ServerProcess) -> None:
    import copy

    platform = server.platform
    key = Ed25519PrivateKey.generate()
    s256, s512 = hashlib.sha256(b"weights").hexdigest(), hashlib.sha512(b"weights").hexdigest()
    made = intoto_statement([("m", s256)], "https://example.com/export", {})
    made = made.replace(f'"sha256":"{s256}"'.encode(), f'"sha256":"{s256}","sha512":"{s512}"'.encode())
    used = _training("served", [])
    used = used.replace(b'"inputs":[]', b'"inputs":[{"name":"m","digest":{"sha512":"' + s512.encode() + b'"}}]')
    used_again = used.replace(b'"served"', b'"served-again"')
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for payload in (made, used, used_again):
            r = http.post("/api/v1/entries", json=signed_submission(key, payload, platform))
            assert r.status_code == 201, r.text
        answer = http.get(f"/api/v1/artifacts/sha256:{s256}/history").json()
    assert answer["aliases"] == [f"sha512:{s512}"]
    h = verify_history(answer, server.vkey)
    assert [e.log_index for e in h.entries] == [2, 1, 0] and h.gap_free_from == 2
    unproven = copy.deepcopy(answer)
    del unproven["entries"][2]  # without the entry naming both digests, the alias is not evidenced
    with pytest.raises(VerificationError):
        verify_history(unproven, server.vkey)
    # Entry 1 names the artifact only by its sha512 alias: dropping it breaks the alias's back-link chain.
    dropped = copy.deepcopy(answer)
    del dropped["entries"][1]
    with pytest.raises(VerificationError, match="gap"):
        verify_history(dropped, server.vkey)


def test_a_crafted_graph_cannot_make_another_users_lineage_query_fail(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """No input may fail another user's request, and a request's cost is bounded. The lineage query walks every
    *path* (its cycle guard carries the path), not every artifact, and only then applies MAX_EDGES: 48 cheap
    entries stacked in 16 layers of 3, each naming the whole layer below as materials, hang off a popular base
    artifact. An honest user asking what was made from that artifact (direction=down) then runs a query with
    3^16 paths: it holds a database core until statement_timeout (60 s) and fails, instead of answering."""
    import json
    import time

    from atlas_log import cli
    from atlas_log.history import verify_lineage

    def digest(layer: int, i: int) -> str:
        return f"{layer:032x}{i:032x}"

    key = Ed25519PrivateKey.generate()
    width, layers = 3, 16
    base = digest(0, 0)
    for layer in range(1, layers + 1):
        below = [base] if layer == 1 else [digest(layer - 1, j) for j in range(width)]
        for i in range(width):
            statement = {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": f"step-{layer}-{i}", "digest": {"sha256": digest(layer, i)}}],
                "predicateType": "https://slsa.dev/provenance/v1",
                "predicate": {
                    "buildDefinition": {
                        "buildType": "https://atlas-log.dev/test/build",
                        "externalParameters": {},
                        "resolvedDependencies": [{"name": f"in-{d}", "digest": {"sha256": d}} for d in below],
                    },
                    "runDetails": {"builder": {"id": "https://atlas-log.dev/test/builder"}},
                },
            }
            sub = signed_submission(key, json.dumps(statement).encode(), server.platform)
            r = httpx.post(server.url + "/api/v1/entries", json=sub, timeout=60)
            assert r.status_code == 201, r.text
    started = time.monotonic()
    try:
        r = httpx.get(
            server.url + f"/api/v1/artifacts/sha256:{base}/lineage",
            params={"direction": "down", "depth": 20},
            timeout=15,
        )
    except httpx.TimeoutException:
        pytest.fail(f"the lineage of the base artifact did not answer in {time.monotonic() - started:.0f} s")
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 5
    lin = verify_lineage(r.json(), server.vkey, f"sha256:{base}", direction="down")
    assert len(lin.edges) == width + width * width * (layers - 1) and not lin.truncated
    assert len(lin.nodes) == 1 + width * layers
    # The CLI draws each artifact's subtree once (not once per path): its header, one line per edge, and what
    # was proved complete.
    args = ["--server", server.url, "--vkey", server.vkey, "lineage", f"sha256:{base}", "--direction", "down"]
    assert cli.main([*args, "--depth", "20"]) == 0
    tree = capsys.readouterr().out.splitlines()
    assert len(tree) == 2 + len(lin.edges) and any("(see above)" in line for line in tree)
    assert tree[-1].startswith("not proved complete:")


def test_a_lineage_answer_says_when_the_log_capped_it(
    history_log: tuple[ServerProcess, httpx.Client], capsys: pytest.CaptureFixture[str]
) -> None:
    """The log may cap a lineage answer (MAX_EDGES, nearest edges first); it says so, and the library and the CLI
    pass that on: a capped lineage is never shown as if it were all there is."""
    import json

    from atlas_log import cli
    from atlas_log.history import verify_lineage
    from tests.test_http import TamperingProxy

    server, http = history_log
    url = f"/api/v1/artifacts/sha256:{_digest('dataset-d')}/lineage"
    answer = http.get(url, params={"direction": "down"}).json()
    assert answer["truncated"] is False and not verify_lineage(answer, server.vkey).truncated
    capped = copy.deepcopy(answer)
    capped["truncated"] = True
    assert verify_lineage(capped, server.vkey).truncated
    for bad in ("yes", 1, None):
        capped["truncated"] = bad
        with pytest.raises(FormatError, match="truncated"):
            verify_lineage(capped, server.vkey)
    proxy = TamperingProxy(server.url)
    try:

        def cap(url: httpx.URL, answer: Any) -> Any:
            return {**answer, "truncated": True} if url.path.endswith("/lineage") else answer

        proxy.on_get = cap
        base = ["--server", proxy.url, "--vkey", server.vkey, "lineage", f"sha256:{_digest('dataset-d')}"]
        assert cli.main([*base, "--direction", "down"]) == 0
        assert "truncated" in capsys.readouterr().out
        assert cli.main([*base, "--direction", "down", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["truncated"] is True
    finally:
        proxy.close()
