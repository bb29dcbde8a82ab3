"""The publisher: every interval, if the tree grew, send the latest checkpoint to the configured witnesses
(C2SP tlog-witness, with a consistency proof from each witness's last size), attach the cosignatures it gets,
and publish the result when at least ``quorum`` witnesses cosigned. ``/checkpoint`` serves the latest
published checkpoint. A witness that answers 409 tells its size; the publisher resynchronises and retries.
With a re-publication interval, an unchanged checkpoint is re-published (re-cosigned) that often.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from dataclasses import dataclass

import httpx

from atlas_log.checkpoint import parse_checkpoint
from atlas_log.cosignature import DEFAULT_WINDOW, CosignatureVerifier
from atlas_log.errors import Error
from atlas_log.note import parse_note
from atlas_log_server.db.repository import Repository
from atlas_log_server.log.proofs import ProofService
from atlas_log_server.metrics import Metrics

_log = logging.getLogger(__name__)


@dataclass
class WitnessEndpoint:
    url: str
    verifier: CosignatureVerifier
    known_size: int = 0  # the size this witness last cosigned, as far as we know

    @classmethod
    def parse(cls, spec: str) -> WitnessEndpoint:
        """``"<url> <cosigner vkey>"``."""
        url, _, vkey = spec.strip().partition(" ")
        if not url.startswith(("http://", "https://")) or not vkey:
            raise ValueError(f"witness must be '<url> <vkey>', got {spec!r}")
        return cls(url.rstrip("/"), CosignatureVerifier.from_vkey(vkey.strip()))


class Publisher:
    def __init__(
        self,
        repo: Repository,
        proofs: ProofService,
        witnesses: list[WitnessEndpoint],
        quorum: int,
        interval_s: float,
        http: httpx.AsyncClient,
        metrics: Metrics | None = None,
        republish_s: float | None = None,
    ) -> None:
        self.repo = repo
        self.republish_s = republish_s
        self.metrics = metrics
        self.proofs = proofs
        self.witnesses = witnesses
        self.quorum = quorum
        self.interval_s = interval_s
        self.http = http

    async def publish_once(self) -> int | None:
        """Publish the latest checkpoint if it is newer than the last published one, or (with ``republish_s``)
        if the same checkpoint was last published at least that long ago; return its size.

        Re-publishing an idle log's checkpoint (with fresh cosignatures) keeps its root young: admission
        measures a nonce's age from the newest publication of its root, so with fresh nonces required a
        log that sees no submissions still offers a nonce that will be accepted.
        """
        state = await self.repo.state()
        latest = await self.repo.latest_publication()
        if state.checkpoint is None:
            return None
        if latest is not None and latest[0] >= state.size:
            due = self.republish_s is not None and latest[0] == state.size and latest[1] >= self.republish_s
            if not due:
                return None
        note = state.checkpoint
        size = parse_checkpoint(parse_note(note).text).size
        lines = await asyncio.gather(*(self._cosign(w, note, size) for w in self.witnesses))
        if self.metrics is not None:
            for w, line in zip(self.witnesses, lines, strict=True):
                self.metrics.cosignatures.labels(w.url, "cosigned" if line else "failed").inc()
        got = [line for line in lines if line is not None]
        if len(got) < self.quorum:
            _log.warning("checkpoint %d has %d of %d required cosignatures; not published", size, len(got), self.quorum)
            return None
        await self.repo.publish(size, note + b"".join(got), len(got))
        return size

    async def _cosign(self, w: WitnessEndpoint, note: bytes, size: int) -> bytes | None:
        text = parse_note(note).text
        for _ in range(2):  # one resynchronisation after a 409
            old = w.known_size
            try:
                proof = await self.proofs.consistency(old, size) if 0 < old < size else []
                head = "".join([f"old {old}\n", *(base64.b64encode(h).decode() + "\n" for h in proof), "\n"])
                resp = await self.http.post(w.url + "/add-checkpoint", content=head.encode() + note, timeout=5)
            except (httpx.HTTPError, Error, OSError) as exc:
                _log.warning("witness %s: %s", w.url, exc)
                return None
            if resp.status_code == 409:
                try:
                    reported = int(resp.text.strip())
                except ValueError:
                    return None
                if reported > size:
                    _log.error("witness %s claims size %d, beyond the log's %d", w.url, reported, size)
                    return None
                w.known_size = reported
                continue
            if resp.status_code != 200:
                _log.warning("witness %s refused checkpoint %d: %d %s", w.url, size, resp.status_code, resp.text[:200])
                return None
            try:
                sigs = parse_note(note + resp.content).signatures
            except Error:
                return None
            mine = [s for s in sigs if (s.name, s.key_id) == (w.verifier.name, w.verifier.key_id)]
            ts = w.verifier.timestamp(text, mine[0].signature) if mine else None
            if ts is None:
                _log.warning("witness %s returned a cosignature that does not verify", w.url)
                return None
            late = DEFAULT_WINDOW.problem(ts, int(time.time()))
            if late is not None:  # clients would not count it: publishing it would only fail their quorum
                _log.warning("witness %s returned a cosignature %s", w.url, late)
                return None
            w.known_size = size
            return mine[0].line().encode()
        return None

    async def run(self) -> None:
        while True:
            try:
                await self.publish_once()
            except Exception:  # a failed round must not stop publishing; the next round retries
                _log.exception("publishing failed")
            await asyncio.sleep(self.interval_s)
