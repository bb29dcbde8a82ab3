"""A C2SP tlog-witness v1.0.0 witness (https://c2sp.org/tlog-witness): ``POST /add-checkpoint``.

It cosigns a checkpoint only if a configured log signed it and it is consistent with the last checkpoint this
witness cosigned for that log. Status codes follow the spec: 400 malformed, 403 no valid signature from the
log's key, 404 unknown origin, 409 stale old size (body: the current size, ``text/x.tlog.size``), 422 bad
proof or impossible tree; plus 413 for oversized requests and 429 (with Retry-After) past the per-log rate.
The rate is charged only by checkpoints that advance the witness (validly signed and proved), so nobody
without the log's key can exhaust it; re-cosigning the current tree is free and writes nothing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from atlas_log._encoding import b64decode
from atlas_log.checkpoint import parse_checkpoint
from atlas_log.cosignature import CosignatureSigner
from atlas_log.errors import FormatError, ProofError, SignatureError
from atlas_log.merkle import EMPTY_ROOT, verify_consistency
from atlas_log.note import Verifier, open_note, parse_note
from atlas_log_server.rate import TokenBucket
from atlas_log_server.witness.state import Witnessed, WitnessState

MAX_BODY = 16 * 1024
MAX_PROOF = 63
_OLD = re.compile(r"\Aold (0|[1-9][0-9]{0,19})\Z")


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def create_witness_app(
    signer: CosignatureSigner,
    logs: Sequence[Verifier],
    state: WitnessState,
    *,
    rate_per_s: float = 10.0,
    burst: int = 20,
) -> Starlette:
    known = {v.name: v for v in logs}  # the log's key name is its origin
    buckets = {name: TokenBucket(rate_per_s, burst) for name in known}

    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _text(413, f"request larger than {MAX_BODY} bytes")
        head, sep, note_bytes = body.partition(b"\n\n")
        if not sep:
            return _text(400, "missing the empty line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
            m = _OLD.match(lines[0])
            if not m:
                raise FormatError("first line must be 'old <size>' without leading zeros")
            old = int(m.group(1))
            proof = [b64decode(line, "proof line") for line in lines[1:]]
            if len(proof) > MAX_PROOF or any(len(p) != 32 for p in proof):
                raise FormatError(f"at most {MAX_PROOF} proof lines of 32-byte hashes")
            note = parse_note(note_bytes)
            cp = parse_checkpoint(note.text)
        except (FormatError, UnicodeDecodeError) as exc:
            return _text(400, f"malformed request: {exc}")
        log = known.get(cp.origin)
        if log is None:
            return _text(404, f"unknown log origin {cp.origin!r}")
        try:
            open_note(note_bytes, [log])
        except (SignatureError, FormatError) as exc:
            return _text(403, f"checkpoint is not validly signed by the log: {exc}")
        if old > cp.size:
            return _text(400, f"old size {old} is larger than the checkpoint size {cp.size}")
        async with state.lock(cp.origin):
            current = state.get(cp.origin)
            if old != current.size:
                return Response(f"{current.size}\n", status_code=409, media_type="text/x.tlog.size")
            if cp.size == 0 and cp.root_hash != EMPTY_ROOT:
                return _text(422, "a checkpoint of size 0 must carry the empty tree's root")
            if old == 0 and proof:
                return _text(422, "a proof from size 0 must be empty")
            if old == cp.size:
                if proof or (old > 0 and cp.root_hash != current.root):
                    return _text(422, "same size, but a different root (or a non-empty proof)")
            elif old > 0:
                try:
                    verify_consistency(old, cp.size, proof, current.root, cp.root_hash)
                except ProofError as exc:
                    return _text(422, f"consistency proof does not verify: {exc}")
            if cp.size > current.size:
                # Only a checkpoint that advances this witness spends the log's budget: it is signed by the
                # log and proved consistent, and once accepted it is the current state, so nobody but the
                # log can spend the budget twice. Junk (403), replays of the current tree, stale sizes (409)
                # and bad proofs (422) cost one verification each and never starve the log's checkpoints.
                wait = buckets[cp.origin].take()
                if wait:
                    retry = str(max(1, int(wait + 0.999))) if math.isfinite(wait) else "60"
                    return _text(429, "rate limit for this log exceeded", {"Retry-After": retry})
                state.put(cp.origin, Witnessed(cp.size, cp.root_hash, note_bytes))
        line = signer.sign(note.text, int(time.time())).line()
        return PlainTextResponse(line)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"]), Route("/healthz", healthz)])
