"""The C2SP witness over HTTP, as a real process: first checkpoint, extension, stale size, bad proof, bad
signature, unknown origin, malformed input, and a restart in the middle."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas_log.checkpoint import Checkpoint, sign_checkpoint
from atlas_log.cosignature import CosignatureVerifier, CosignatureWindow, verify_cosignatures
from atlas_log.merkle import EMPTY_ROOT, RootHash
from atlas_log.note import Signer, parse_note
from tests import reference
from tests.conftest import free_port

ORIGIN = "log.example/witnessed"
LOG = Signer.generate(ORIGIN)
LEAVES = [reference.leaf(str(i).encode()) for i in range(40)]


def note(n: int, signer: Signer = LOG, leaves: list[bytes] = LEAVES, origin: str = ORIGIN) -> bytes:
    root = reference.mth(leaves[:n]) if n else EMPTY_ROOT
    return sign_checkpoint(Checkpoint(origin, n, RootHash(root)), signer)


def body(old: int, new: int, proof: list[bytes] | None = None, n: bytes | None = None) -> bytes:
    if proof is None:
        proof = reference.proof(old, LEAVES[:new]) if 0 < old < new else []
    lines = [f"old {old}"] + [base64.b64encode(p).decode() for p in proof]
    return ("\n".join(lines) + "\n\n").encode() + (n if n is not None else note(new))


class Witness:
    """A witness process for one log (by default this module's test log)."""

    def __init__(
        self, folder: Path, log_vkey: str = LOG.verifier.vkey, name: str = "witness.example/w1", rate: float = 1000
    ) -> None:
        self.folder, self.log_vkey, self.name, self.rate = folder, log_vkey, name, rate
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas_log_server.cli",
                "witness",
                "--port",
                str(self.port),
                "--name",
                self.name,
                "--key",
                str(self.folder / "w.key"),
                "--state",
                str(self.folder / "state"),
                "--log",
                self.log_vkey,
                "--rate",
                str(self.rate),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.vkey = self.proc.stdout.readline() and self.proc.stdout.readline().split("verifier key: ")[1].strip()
        for _ in range(200):
            try:
                httpx.get(self.url + "/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("witness did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def post(self, data: bytes) -> httpx.Response:
        return httpx.post(self.url + "/add-checkpoint", content=data, timeout=10)


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[Witness]:
    w = Witness(tmp_path)
    yield w
    w.stop()


def cosigned(w: Witness, resp: httpx.Response, n: int) -> None:
    assert resp.status_code == 200, resp.text
    full = parse_note(note(n) + resp.content)
    window = CosignatureWindow(max_future_s=5, max_age_s=60)  # a witness cosigns with its current time
    got = verify_cosignatures(full, [CosignatureVerifier.from_vkey(w.vkey)], 1, now=int(time.time()), window=window)
    assert got == ["witness.example/w1"]


def test_first_checkpoint_extension_and_stale_size(witness: Witness) -> None:
    cosigned(witness, witness.post(body(0, 5)), 5)
    cosigned(witness, witness.post(body(5, 13)), 13)
    cosigned(witness, witness.post(body(13, 13)), 13)  # the same tree again
    stale = witness.post(body(5, 20))
    assert stale.status_code == 409 and stale.text == "13\n"
    assert stale.headers["content-type"].startswith("text/x.tlog.size")
    probe = witness.post(body(0, 20))  # a client without state learns the size
    assert probe.status_code == 409 and probe.text == "13\n"


def test_rejections(witness: Witness) -> None:
    cosigned(witness, witness.post(body(0, 8)), 8)
    bad_proof = reference.proof(8, LEAVES[:20])
    bad_proof[0] = bytes(32)
    assert witness.post(body(8, 20, bad_proof)).status_code == 422
    forked = [*LEAVES[:3], reference.leaf(b"evil"), *LEAVES[4:]]
    fork_note = note(20, leaves=forked)
    assert witness.post(body(8, 20, reference.proof(8, forked[:20]), fork_note)).status_code == 422
    assert witness.post(body(8, 20, n=note(20, Signer.generate(ORIGIN)))).status_code == 403
    assert (
        witness.post(
            body(0, 3, n=note(3, Signer.generate("other.example/log"), origin="other.example/log"))
        ).status_code
        == 404
    )
    assert witness.post(body(9, 4)).status_code == 400
    assert witness.post(b"old 08\n\n" + note(8)).status_code == 400
    assert witness.post(b"garbage").status_code == 400
    assert witness.post(b"old 0\n" + b"A" * 20_000).status_code == 413
    zero = sign_checkpoint(Checkpoint(ORIGIN, 0, RootHash(bytes(32))), LOG)
    assert witness.post(b"old 0\n\n" + zero).status_code in (409, 422)
    # Nothing above changed the witnessed state.
    cosigned(witness, witness.post(body(8, 20)), 20)


def test_state_survives_a_restart(witness: Witness) -> None:
    cosigned(witness, witness.post(body(0, 10)), 10)
    witness.stop()
    witness.start()
    stale = witness.post(body(0, 12))
    assert stale.status_code == 409 and stale.text == "10\n"
    cosigned(witness, witness.post(body(10, 12)), 12)


def test_junk_and_replays_cannot_starve_the_logs_checkpoints(tmp_path: Path) -> None:
    """The per-log budget (burst 20, here refilled at one request per 1000 s) is charged only by a checkpoint
    that the log signed and that advances the witness. Anyone can post junk under the log's origin, or replay
    the log's own signed checkpoints; neither may use up the budget the log needs for its real checkpoints."""
    w = Witness(tmp_path, rate=0.001)
    try:
        forger = Signer.generate(ORIGIN)
        for _ in range(25):  # unsigned junk: a checkpoint under the log's origin signed by another key
            assert w.post(body(0, 5, n=note(5, forger))).status_code == 403
        cosigned(w, w.post(body(0, 5)), 5)
        for _ in range(25):  # replays of the log's own signed checkpoint: the same tree, and a stale size
            cosigned(w, w.post(body(5, 5)), 5)
            assert w.post(body(0, 13)).status_code == 409
        bad_proof = [bytes(32)] * len(reference.proof(5, LEAVES[:13]))
        for _ in range(25):  # a signed newer checkpoint with a bad proof never advances the witness
            assert w.post(body(5, 13, bad_proof)).status_code == 422
        cosigned(w, w.post(body(5, 13)), 13)
        for n in range(14, 14 + 18):  # the log's own advancing checkpoints: 20 in all fit the burst
            cosigned(w, w.post(body(n - 1, n)), n)
        limited = w.post(body(31, 32))
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    finally:
        w.stop()
