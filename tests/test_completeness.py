"""Complete histories end to end: a real log keeping its verifiable map, a real client, and a hostile proxy
between them that hides the newest entry, a middle entry, or the whole history."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.client import LogClient
from atlas_log.entry import parse_leaf
from atlas_log.errors import ProofError, VerificationError
from atlas_log.history import verify_history
from atlas_log.intoto import SLSA_V1
from atlas_log.pipeline import model_statement
from atlas_log.replay import Replay
from atlas_log.reverify import Trust
from atlas_log.submission import intoto_statement, signed_submission
from atlas_log.vmap import MapCommitment
from tests.conftest import ServerProcess
from tests.proxy import TamperingProxy

DATASET = "sha256:" + hashlib.sha256(b"completeness dataset").hexdigest()


def _statement(i: int) -> bytes:
    model = hashlib.sha256(b"model %d" % i).hexdigest()
    return intoto_statement(
        [(f"model-{i}", model)],
        SLSA_V1,
        {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {"inputs": [{"name": "data", "digest": {"sha256": DATASET.split(":")[1]}}]},
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    )


def _submit(server: ServerProcess, key: Ed25519PrivateKey, start: int, count: int) -> None:
    for i in range(start, start + count):
        r = httpx.post(server.url + "/api/v1/entries", json=signed_submission(key, _statement(i), server.platform))
        assert r.status_code == 201, r.text


def _committed(server: ServerProcess, entries: int, timeout: float = 30) -> dict[str, Any]:
    """The history answer once it holds ``entries`` entries and the map commitment covers them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{server.url}/api/v1/artifacts/{DATASET}/history").json()
        c = answer.get("completeness")
        if c is not None:
            commitment = MapCommitment.from_body(parse_leaf(base64.b64decode(c["commitment"]["leaf"])).body)
            indices = [e["logIndex"] for e in answer["entries"]]
            if len(indices) == entries and commitment.tree_size > max(indices):
                return dict(answer)
        time.sleep(0.1)
    raise AssertionError(f"the map did not commit the {entries} entries in {timeout}s")


@pytest.fixture
def mapped(db_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, TamperingProxy, LogClient]]:
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    proxy = TamperingProxy(server.url)
    try:
        with httpx.Client(base_url=proxy.url, timeout=60) as http:
            yield server, proxy, LogClient(http, server.vkey)
    finally:
        proxy.close()
        server.stop()


def test_a_history_is_proved_complete_as_of_the_committed_size(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, _, client = mapped
    key = Ed25519PrivateKey.generate()
    _submit(server, key, 0, 5)
    answer = _committed(server, 5)
    h = verify_history(answer, server.vkey)
    assert h.complete and h.incomplete is None
    # Map commitments are entries too, interleaved with the pipeline's: the history holds the five steps.
    assert len(h.entries) == 5
    assert h.complete_as_of is not None and h.complete_as_of >= 5
    # Through the client, page by page (pages of 2): the proof on the first page closes the last one.
    paged = client.history(DATASET, page_size=2)
    assert paged.complete and len(paged.entries) == 5
    # An artifact the log never saw is proved absent: complete, and empty.
    never = client.history("sha256:" + "ab" * 32)
    assert never.complete and never.entries == ()


def test_hiding_the_newest_a_middle_or_every_entry_is_detected(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = mapped
    key = Ed25519PrivateKey.generate()
    _submit(server, key, 0, 5)
    middle = _committed(server, 5)["entries"][2]["logIndex"]

    def history_rewritten(rewrite: Any) -> None:
        def on_get(url: httpx.URL, answer: Any) -> Any:
            return rewrite(answer) if url.path.endswith("/history") else answer

        proxy.on_get = on_get

    # The newest entry dropped (the log hides the latest training run).
    history_rewritten(lambda a: {**a, "entries": a["entries"][1:]})
    with pytest.raises(VerificationError, match="newest entry"):
        client.history(DATASET)
    # A middle entry dropped.
    history_rewritten(lambda a: {**a, "entries": [e for e in a["entries"] if e["logIndex"] != middle]})
    with pytest.raises(VerificationError, match="gap"):
        client.history(DATASET)
    # Every entry dropped, the map proof kept: the count does not add up.
    history_rewritten(lambda a: {**a, "entries": []})
    with pytest.raises(VerificationError, match=r"newest|counts"):
        client.history(DATASET)

    # Every entry dropped and the dataset claimed never seen, with another key's genuine map proof.
    def never_seen(a: dict[str, Any]) -> dict[str, Any]:
        other = httpx.get(f"{server.url}/api/v1/artifacts/sha256:{'cd' * 32}/history").json()["completeness"]
        return {
            **a,
            "entries": [],
            "completeness": {**a["completeness"], "proofs": {DATASET: other["proofs"][f"sha256:{'cd' * 32}"]}},
        }

    history_rewritten(never_seen)
    with pytest.raises(ProofError):
        client.history(DATASET)
    # The completeness proof withheld: the history verifies, but is not called complete.
    history_rewritten(lambda a: {k: v for k, v in a.items() if k != "completeness"})
    h = client.history(DATASET)
    assert not h.complete and h.incomplete is not None and "no completeness proof" in h.incomplete


def test_a_component_history_is_proved_complete_by_the_facts_its_leaves_commit_to(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    """A file shared by several models (a tokenizer) is named only in their statements' resources, which no
    leaf lists: the map keys it from the facts the leaves commit to, and the log proves each entry by them."""
    server, proxy, client = mapped
    key = Ed25519PrivateKey.generate()
    tokenizer = hashlib.sha256(b"shared tokenizer").hexdigest()
    for i in range(3):
        files = {"tokenizer.json": tokenizer, "weights.safetensors": hashlib.sha256(b"weights %d" % i).hexdigest()}
        sub = signed_submission(key, model_statement(f"model-{i}", files), server.platform)
        assert httpx.post(server.url + "/api/v1/entries", json=sub).status_code == 201
    # A fine-tune that takes the file as an input: its lineage expands the file, whose entries mix roles.
    finetuned = hashlib.sha256(b"finetuned").hexdigest()
    step = intoto_statement(
        [("finetuned", finetuned)],
        SLSA_V1,
        {
            "buildDefinition": {
                "buildType": "https://atlas-log.dev/ml/training/v1",
                "externalParameters": {"inputs": [{"name": "tokenizer", "digest": {"sha256": tokenizer}}]},
            },
            "runDetails": {"builder": {"id": "https://example.com/trainer"}},
        },
    )
    assert (
        httpx.post(server.url + "/api/v1/entries", json=signed_submission(key, step, server.platform)).status_code
        == 201
    )
    component = f"sha256:{tokenizer}"
    deadline = time.monotonic() + 30
    while True:
        h = client.history(component)
        covered = h.complete_as_of is not None and h.entries and h.complete_as_of > h.entries[0].log_index
        if (covered and len(h.entries) == 4) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert h.complete and len(h.entries) == 4, h.incomplete
    assert h.entries[0].roles == ("material",)
    assert all(e.roles == ("component",) and e.facts is not None for e in h.entries[1:])
    lineage = client.lineage(f"sha256:{finetuned}", "up", 2)
    assert lineage.complete, lineage.incomplete
    assert [(e[0], e[1]) for e in lineage.edges] == [(component, f"sha256:{finetuned}")]

    def history_rewritten(rewrite: Any) -> None:
        proxy.on_get = lambda url, answer: rewrite(answer) if url.path.endswith("/history") else answer

    # A monitor replaying the log rebuilds the same map from the facts it re-derives (components included) and
    # finds every commitment right.
    replay = Replay(server.url, Trust(tdx_roots=(server.platform.root_fingerprint,)), workers=1)
    outcome = replay.run(client.checkpoint()[0])
    assert outcome.problems == [] and replay.last_commitment is not None

    # Another file of the same models claimed as an alias of the tokenizer (both are components of one
    # statement): not one descriptor, so not an alias.
    weights = f"sha256:{hashlib.sha256(b'weights 0').hexdigest()}"
    history_rewritten(lambda a: {**a, "aliases": [weights]})
    assert client.history(component).aliases == frozenset()

    # The newest model using the file hidden: the map's newest entry is not the answer's.
    history_rewritten(lambda a: {**a, "entries": [a["entries"][0], *a["entries"][2:]]})
    with pytest.raises(VerificationError, match="counts 4"):
        client.history(component)
    history_rewritten(lambda a: {**a, "entries": a["entries"][2:]})
    with pytest.raises(VerificationError, match="newest entry"):
        client.history(component)
    # A middle one hidden: no back-link chains a component, but the map's count does not add up.
    history_rewritten(lambda a: {**a, "entries": [*a["entries"][:2], a["entries"][3]]})
    with pytest.raises(VerificationError, match="counts 4"):
        client.history(component)

    # An entry's facts withheld, or swapped for another entry's: the entry is not proved to name the file.
    def entry_rewritten(rewrite: Any) -> None:
        history_rewritten(lambda a: {**a, "entries": [a["entries"][0], rewrite(a), *a["entries"][2:]]})

    entry_rewritten(lambda a: {k: v for k, v in a["entries"][1].items() if k != "facts"})
    with pytest.raises(VerificationError, match="does not name"):
        client.history(component)
    entry_rewritten(lambda a: {**a["entries"][1], "facts": a["entries"][2]["facts"]})
    with pytest.raises(VerificationError, match="not the ones the entry commits to"):
        client.history(component)
    # In the lineage, the entries naming the expanded file only as a component withheld: its count is short.
    proxy.on_get = lambda url, answer: (
        {**answer, "entries": [e for e in answer["entries"] if "facts" not in e]}
        if url.path.endswith("/lineage")
        else answer
    )
    with pytest.raises(VerificationError, match="lineage incomplete"):
        client.lineage(f"sha256:{finetuned}", "up", 2)


def test_entries_after_the_commitment_are_shown_but_completeness_is_as_of_the_commitment(
    db_url: str, tmp_path: Path
) -> None:
    # A map that commits every 3 s: the newest entries usually come after the committed size.
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "3"})
    try:
        key = Ed25519PrivateKey.generate()
        _submit(server, key, 0, 3)
        answer = _committed(server, 3)
        as_of = verify_history(answer, server.vkey).complete_as_of
        assert as_of is not None
        # Entries sequenced after the commitment, fetched before the next one lands (the next round is up to 3 s
        # away; an answer that already has it proves them too).
        _submit(server, key, 3, 2)
        latest = httpx.get(f"{server.url}/api/v1/artifacts/{DATASET}/history").json()
        h = verify_history(latest, server.vkey)
        assert len(h.entries) == 5 and h.complete
        assert h.complete_as_of is not None and as_of <= h.complete_as_of <= h.tree_size
        newer = [e.log_index for e in h.entries if e.log_index >= h.complete_as_of]
        # Those after the committed size are shown, chained to the proved ones by their back-links.
        assert all(i > max(e.log_index for e in h.entries if e.log_index < h.complete_as_of) for i in newer)
    finally:
        server.stop()


def test_a_lineage_is_proved_complete_and_a_dropped_input_edge_is_detected(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient], capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_log import cli

    server, proxy, client = mapped
    key = Ed25519PrivateKey.generate()
    _submit(server, key, 0, 3)
    _committed(server, 3)
    model = "sha256:" + hashlib.sha256(b"model 1").hexdigest()
    up = client.lineage(model, "up", 2)
    assert up.complete and up.complete_as_of is not None
    assert [(s, t) for s, t, _ in up.edges] == [(DATASET, model)]
    down = client.lineage(DATASET, "down", 1)
    assert down.complete and len(down.edges) == 3
    # The person's view says the same, under the tree size it is complete as of.
    base = ["--server", proxy.url, "--vkey", server.vkey]
    assert cli.main([*base, "lineage", DATASET, "--direction", "down", "--depth", "1"]) == 0
    assert f"complete as of tree size {down.complete_as_of}" in capsys.readouterr().out
    assert cli.main([*base, "history", DATASET]) == 0
    assert "complete as of tree size" in capsys.readouterr().out

    def lineage_rewritten(rewrite: Any) -> None:
        def on_get(url: httpx.URL, answer: Any) -> Any:
            return rewrite(answer) if url.path.endswith("/lineage") else answer

        proxy.on_get = on_get

    # One use of the dataset hidden: its edge dropped, the entry stating it kept (the closure names it).
    lineage_rewritten(
        lambda a: {**a, "edges": a["edges"][1:], "nodes": [n for n in a["nodes"] if n != a["edges"][0]["to"]]}
    )
    with pytest.raises(VerificationError, match="which the answer omits"):
        client.lineage(DATASET, "down", 1)

    # The edge and the entry stating it both dropped: the map's count for the dataset does not add up.
    def drop_edge_and_entry(a: dict[str, Any]) -> dict[str, Any]:
        gone = a["edges"][0]["logIndex"]
        return {
            **a,
            "edges": [e for e in a["edges"] if e["logIndex"] != gone],
            "entries": [e for e in a["entries"] if e["logIndex"] != gone],
            "nodes": [n for n in a["nodes"] if n != a["edges"][0]["to"]],
        }

    lineage_rewritten(drop_edge_and_entry)
    with pytest.raises(VerificationError, match=r"newest|count|missing"):
        client.lineage(DATASET, "down", 1)
    # The model's only input hidden: the model's own entries prove the edge exists.
    lineage_rewritten(lambda a: {**a, "edges": [], "nodes": [a["artifact"]]})
    with pytest.raises(VerificationError, match="which the answer omits"):
        client.lineage(model, "up", 2)
    # Without its completeness proof, a lineage verifies but is not called complete.
    lineage_rewritten(lambda a: {k: v for k, v in a.items() if k != "completeness"})
    assert not client.lineage(DATASET, "down", 1).complete


def test_a_monitor_reports_a_log_that_stops_committing_its_map(db_url: str, tmp_path: Path) -> None:
    from atlas_log.monitor import Monitor
    from atlas_log.note import Verifier

    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0.2"})
    key = Ed25519PrivateKey.generate()
    try:
        _submit(server, key, 0, 2)
        _committed(server, 2)
        mon = Monitor(None, [server.url], Verifier.from_vkey(server.vkey), map_max_lag_s=30)
        assert mon.round().problems == [] and mon.map_seen is not None
    finally:
        server.stop()
    # The same log, restarted with a map builder that has stalled (its first round passed; the next is an hour
    # away): entries keep coming, commitments do not.
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "3600"}, port=server.port)
    try:
        time.sleep(1)  # the builder's round at start-up has nothing to fold
        _submit(server, key, 2, 1)
        assert mon.round().problems == []  # within the allowed lag
        later = mon.round(now=int(time.time()) + 60)
        assert len(later.problems) == 1 and "stopped committing its map" in later.problems[0], later.problems
    finally:
        server.stop()
    # Restarted without a map at all: the log names no commitment any more.
    server = ServerProcess(db_url, tmp_path / "data", env={"ATLAS_MAP_INTERVAL_S": "0"}, port=server.port)
    try:
        problems = mon.round().problems
        assert len(problems) == 1 and "names no map commitment any more" in problems[0], problems
        # A log that never kept a map is not asked to.
        fresh = Monitor(None, [server.url], Verifier.from_vkey(server.vkey), map_max_lag_s=30)
        assert fresh.round(now=int(time.time()) + 60).problems == []
        fresh.close()
    finally:
        mon.close()
        server.stop()


def test_a_map_status_must_prove_its_commitment(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = mapped
    _submit(server, Ed25519PrivateKey.generate(), 0, 2)
    _committed(server, 2)
    status = client.map_status()
    assert status.commitment is not None and status.commitment_index is not None
    assert status.commitment.tree_size <= status.commitment_index < status.checkpoint.size

    def passed_off(url: httpx.URL, answer: Any) -> Any:
        if url.path != "/api/v1/map":
            return answer
        entry = httpx.get(
            f"{server.url}/api/v1/proofs/inclusion", params={"index": 0, "treeSize": answer["treeSize"]}
        ).json()
        leaf = httpx.get(f"{server.url}/api/v1/entries/0").json()["leaf"]
        item = {"logIndex": 0, "leaf": leaf, "inclusionProof": entry["hashes"]}
        return {**answer, "commitment": item}

    # A pipeline's entry passed off as the map's commitment.
    proxy.on_get = passed_off
    with pytest.raises(VerificationError, match="is not one"):
        client.map_status()


def test_a_client_does_not_call_complete_what_an_older_commitment_proves(
    mapped: tuple[ServerProcess, TamperingProxy, LogClient],
) -> None:
    server, proxy, client = mapped
    key = Ed25519PrivateKey.generate()
    _submit(server, key, 0, 2)
    old = _committed(server, 2)["completeness"]
    assert client.history(DATASET).complete
    _submit(server, key, 2, 2)
    _committed(server, 4)
    assert client.history(DATASET).complete  # the client has now seen the newer commitment

    def stale(url: httpx.URL, answer: Any) -> Any:
        if not url.path.endswith("/history"):
            return answer
        # The older commitment, proved in today's tree: the newer entries then lie above its size.
        index = old["commitment"]["logIndex"]
        proof = httpx.get(
            f"{server.url}/api/v1/proofs/inclusion", params={"index": index, "treeSize": answer["treeSize"]}
        ).json()
        return {
            **answer,
            "completeness": {**old, "commitment": {**old["commitment"], "inclusionProof": proof["hashes"]}},
        }

    proxy.on_get = stale
    h = client.history(DATASET)
    assert not h.complete and h.incomplete is not None and "older map commitment" in h.incomplete
    # A client that never saw the newer one can only say what the older one proves: complete as of its size.
    fresh = LogClient(httpx.Client(base_url=proxy.url, timeout=60), server.vkey).history(DATASET)
    assert fresh.complete_as_of is not None and fresh.complete_as_of <= _old_size(old)


def _old_size(completeness: dict[str, Any]) -> int:
    leaf = parse_leaf(base64.b64decode(completeness["commitment"]["leaf"]))
    return MapCommitment.from_body(leaf.body).tree_size
