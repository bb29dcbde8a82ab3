"""``atlas-log``: the command-line client (checkpoint, get, verify, demo)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import JSON_LIMITS, b64decode, b64encode, json_loads
from atlas_log.bundle import CODE_SIGNING, parse_bundle
from atlas_log.client import AsyncLogClient, LogClient
from atlas_log.disclosure import Disclosure, hides_digests, redact, verify_disclosures
from atlas_log.dsse import PublicKey, sign_envelope
from atlas_log.errors import Error, SubmissionError
from atlas_log.monitor import DEFAULT_MAP_MAX_LAG_S
from atlas_log.note import Verifier
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.submission import build_submission, signed_submission, spki_der, tdx_tee
from atlas_log.tdx.binding import payload_report_data
from atlas_log.transport import RetryPolicy

if TYPE_CHECKING:
    from atlas_log.testing.simulate import SimulatedPlatform

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0


def _network(timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """The client's network options: each attempt's timeout (``ATLAS_LOG_TIMEOUT``, seconds) and the overall
    deadline of a request, retries included (``ATLAS_LOG_RETRY_DEADLINE``, seconds; 0 sends once)."""
    options: dict[str, Any] = {"timeout_s": timeout_s}
    try:
        if os.environ.get("ATLAS_LOG_TIMEOUT"):
            options["timeout_s"] = float(os.environ["ATLAS_LOG_TIMEOUT"])
        if os.environ.get("ATLAS_LOG_RETRY_DEADLINE"):
            options["retry"] = RetryPolicy(deadline_s=float(os.environ["ATLAS_LOG_RETRY_DEADLINE"]))
    except ValueError as exc:
        raise SystemExit(f"atlas-log: ATLAS_LOG_TIMEOUT and ATLAS_LOG_RETRY_DEADLINE are seconds: {exc}") from exc
    return options


def _vkey(args: argparse.Namespace) -> Verifier:
    if args.vkey:
        return Verifier.from_vkey(args.vkey)
    if not args.server:
        raise SystemExit("atlas-log: --vkey is required (or --server to fetch the log's key)")
    with LogClient(args.server, None, **_network()) as keyless:
        key = keyless.log_info().verifier_key
    print(f"warning: trusting the key the server announced ({key}); pin it with --vkey", file=sys.stderr)
    return Verifier.from_vkey(key)


def _client(args: argparse.Namespace, state_file: Path | None = None) -> LogClient:
    # A token goes only where it is needed (looking up hidden artifacts), never with every public read.
    token = _token(args) if getattr(args, "hidden", False) else None
    return LogClient(args.server, _vkey(args), state_file=state_file, token=token, **_network())


def _looked_up(args: argparse.Namespace, client: LogClient) -> str:
    """The artifact to look up: the digest given, or with ``--hidden`` its blinded twin under the tenant's key
    (the tenant's token or a grant: entries that hide the digest are indexed by it)."""
    if not getattr(args, "hidden", False):
        return str(args.digest)
    if _token(args) is None:
        raise SystemExit(
            "atlas-log: --hidden needs the tenant's token or a grant: --token-file FILE or ATLAS_LOG_TOKEN"
        )
    blinded = client.hidden(args.digest)
    print(f"{args.digest} is hidden in this tenant's entries as {blinded}", file=sys.stderr)
    return blinded


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    with _client(args, Path(args.state) if args.state else None) as client:
        cp, note = client.checkpoint()
    if args.json:
        print(
            json.dumps(
                {"origin": cp.origin, "size": cp.size, "rootHash": b64encode(cp.root_hash), "note": note.decode()}
            )
        )
    else:
        sys.stdout.write(note.decode())
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    """Print what the entry's leaf proves (``verified``); whatever else the log served and the leaf does not
    prove goes under ``unverified``, never beside the verified values."""
    from atlas_log.entry import entry_id
    from atlas_log.receipt import SubmittedEntry, split_submission, verify_leaf_for

    with _client(args) as client:
        logged = client.entry(args.index)  # proved included in the latest (trusted) checkpoint
    served, leaf, lh, cp, entry = logged.served, logged.leaf, logged.leaf_hash, logged.checkpoint, logged.entry
    verified: dict[str, Any] = {
        "leafHash": b64encode(lh),
        "entryId": entry_id(entry.body).hex(),
        "entry": {"body": entry.body, "integratedTime": entry.integrated_time, "links": entry.links},
        "inclusion": {"treeSize": cp.size, "rootHash": b64encode(cp.root_hash)},
    }
    # What the log says beside the leaf is shown as verified only where it equals what the leaf proves.
    proved = {
        "logIndex": args.index,
        "leaf": served["leaf"],
        "leafHash": verified["leafHash"],
        "entryId": verified["entryId"],
        "integratedTime": entry.integrated_time,
    }
    unverified = {k: v for k, v in served.items() if k != "submission" and (k not in proved or proved[k] != v)}
    submission = served.get("submission")
    if submission is not None:
        try:
            if not isinstance(submission, dict):
                raise SubmissionError("invalid-submission", "the served submission is not a JSON object")
            verify_leaf_for(leaf, SubmittedEntry.from_submission(submission), new_leaf=True)
            # This entry's submission: of it, only what the leaf commits to is shown as verified.
            committed, rest = split_submission(leaf, submission)
            verified["submission"] = committed
            if "envelopeMismatch" in rest:
                unverified["envelopeMismatch"] = rest.pop("envelopeMismatch")
            if rest:
                unverified["submission"] = rest
        except Error as exc:
            unverified["submission"] = submission
            unverified["submissionMismatch"] = str(exc)
    print(json.dumps({"logIndex": args.index, "verified": verified, "unverified": unverified}, indent=2))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    verifier = _vkey(args)
    failed = 0
    for path in args.receipts:
        try:
            receipt = Receipt.from_json(json.loads(Path(path).read_text()))
            cp = verify_receipt(receipt, verifier)
            print(f"OK   {path}: entry {receipt.log_index} is in {cp.origin} at size {cp.size}")
        except (Error, ValueError, OSError) as exc:
            failed += 1
            print(f"FAIL {path}: {exc}")
    return 1 if failed else 0


def _cmd_tdx_verify(args: argparse.Namespace) -> int:
    from atlas_log.tdx import INTEL_ROOT_SPKI_SHA256, Policy, collateral_from_dir, verify_quote

    try:
        quote = Path(args.quote).read_bytes()
        policy = Policy.from_json(json.loads(Path(args.policy).read_text())) if args.policy else None
    except (OSError, ValueError) as exc:
        print(f"atlas-log: {exc}", file=sys.stderr)
        return 2
    collateral = collateral_from_dir(args.collateral)
    roots = args.root or [INTEL_ROOT_SPKI_SHA256]
    verdict = verify_quote(quote, collateral, args.at, policy, roots=roots)
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2))
    elif verdict.accept:
        print(
            f"ACCEPTED: TCB status {verdict.tcb_status}, FMSPC {verdict.fmspc}, "
            f"advisories {list(verdict.advisory_ids) or 'none'}, collateral valid until {verdict.collateral_expiry}"
        )
    else:
        print(f"REJECTED ({verdict.code}): {verdict.reason}")
    return 0 if verdict.accept else 1


def _platform(args: argparse.Namespace) -> SimulatedPlatform | None:
    """The simulated TDX platform to quote with: --simulated-platform, else the dev server's default folder."""
    from atlas_log.testing.simulate import SimulatedPlatform

    folder = Path(args.simulated_platform) if args.simulated_platform else Path(".atlas-log/simulated-tdx")
    if (folder / "platform.json").exists():
        return SimulatedPlatform.load(folder)
    if args.simulated_platform:
        raise SystemExit(f"atlas-log: no simulated platform in {folder}")
    return None


def _progress(done: int, total: int, started: float) -> None:
    """A one-line progress report on stderr for verifications that take more than a moment."""
    if time.monotonic() - started > 0.5 and sys.stderr.isatty():
        print(f"\r  verified {done}/{total} entries", end="" if done < total else "\n", file=sys.stderr)


def _cmd_history(args: argparse.Namespace) -> int:
    from atlas_log.history import HistoryCache, VerifiedHistory

    started = time.monotonic()

    def progress(page: VerifiedHistory) -> None:
        done = len(page.entries)
        _progress(done, done + (0 if page.next_before is None else 1), started)

    with _client(args) as client:
        # The library chains the pages and proves every page's checkpoint consistent with the first.
        history = client.history(_looked_up(args, client), cache=HistoryCache(), progress=progress)
    rows: list[dict[str, Any]] = []
    for e in history.entries:
        index = e.entry.body.get("index") or {}
        tee = e.entry.body.get("tee") or {}
        rows.append(
            {
                "logIndex": e.log_index,
                "roles": list(e.roles),
                "predicateType": index.get("predicateType"),
                "integratedTime": e.entry.integrated_time,
                "tcbStatus": tee.get("tcbStatus"),
                "simulatedTee": tee.get("simulated"),
                "signers": [s["verifier"]["spkiSha256"] for s in e.entry.body.get("signatures", [])],
                "links_to": (e.entry.links or {}).get(history.artifact),
            }
        )
    if args.json:
        print(
            json.dumps(
                {
                    "artifact": history.artifact,
                    "verifiedAgainst": {"treeSize": history.tree_size},
                    "complete": history.complete,
                    "completeAsOf": history.complete_as_of,
                    "incomplete": history.incomplete,
                    "gapFreeFrom": history.gap_free_from,
                    "entries": rows,
                },
                indent=2,
            )
        )
        return 0
    print(f"{history.artifact}: {len(rows)} entries, verified against tree size {history.tree_size}")
    if history.closure is not None and history.complete:
        print(
            f"  complete as of tree size {history.complete_as_of}{_witnessed(client)}: the log's map commitment (entry "
            f"#{history.closure.commitment_index}) proves every entry naming it below that size is here"
        )
    elif history.gap_free_from is not None:
        print(
            f"  proved: gap-free from entry #{history.gap_free_from} back to the first entry naming it; "
            f"not proved complete: {history.incomplete}"
        )
    else:
        print(f"  not proved gap-free (entries without back-links); not proved complete: {history.incomplete}")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["integratedTime"]))
        tee = f"TDX {r['tcbStatus']}{' (simulated)' if r['simulatedTee'] else ''}" if r["tcbStatus"] else "no TEE"
        print(f"  #{r['logIndex']:<8} {when}  {'/'.join(r['roles']):<18} {r['predicateType'] or '-'}  {tee}")
    return 0


def _witnessed(client: LogClient) -> str:
    """How the answer's checkpoint was witnessed, under the client's policy ("" without one)."""
    if not client.quorum:
        return ""
    return f" (witnessed by at least {client.quorum} of {len(client.witnesses)} witnesses)"


def _cmd_lineage(args: argparse.Namespace) -> int:
    with _client(args) as client:
        # About the artifact and in the direction asked, its checkpoint consistent with the log's.
        lin = client.lineage(_looked_up(args, client), args.direction, args.depth)
    if args.json:
        print(
            json.dumps(
                {
                    "artifact": lin.artifact,
                    "direction": lin.direction,
                    "nodes": list(lin.nodes),
                    "edges": [{"from": s, "to": t, "logIndex": i} for s, t, i in lin.edges],
                    "truncated": lin.truncated,
                    "complete": lin.complete,
                    "completeAsOf": lin.complete_as_of,
                    "incomplete": lin.incomplete,
                },
                indent=2,
            )
        )
        return 0
    children: dict[str, list[tuple[str, int]]] = {}
    for src, dst, idx in lin.edges:
        parent, child = (dst, src) if lin.direction == "up" else (src, dst)
        children.setdefault(parent, []).append((child, idx))
    word = "made from" if lin.direction == "up" else "used to make"
    print(f"{lin.artifact} ({word}; {len(lin.edges)} edges, verified against tree size {lin.checkpoint.size})")
    if lin.truncated:
        print("  (truncated: the log capped its answer; the nearest edges are shown, more lineage exists)")
    if lin.complete:
        print(
            f"  complete as of tree size {lin.complete_as_of}{_witnessed(client)}: every "
            f"{'input' if lin.direction == 'up' else 'use'} "
            f"up to depth {args.depth} stated below that size is here"
        )
    else:
        print(f"  not proved complete: {lin.incomplete}")
    # Each artifact's subtree is drawn once; a later mention refers back to it. Drawing every path instead
    # would print a graph a few artifacts wide and a few layers deep exponentially many times.
    drawn = {lin.artifact}
    # (artifact, entry, prefix, last sibling), depth first, iteratively: a lineage may be deeper than the
    # recursion limit.
    stack = [(c, i, "", n == 0) for n, (c, i) in enumerate(sorted(children.get(lin.artifact, []), reverse=True))]
    while stack:
        node, idx, prefix, last = stack.pop()
        again = node in drawn and node in children
        print(f"{prefix}{'└── ' if last else '├── '}{node}  [entry #{idx}]{'  (see above)' if again else ''}")
        if node not in drawn:
            drawn.add(node)
            inner = prefix + ("    " if last else "│   ")
            kids = sorted(children.get(node, []), reverse=True)
            stack.extend((c, i, inner, n == 0) for n, (c, i) in enumerate(kids))
    return 0


def _quote_provider(args: argparse.Namespace) -> Any:
    from atlas_log.pipeline import ConfigfsTsmProvider
    from atlas_log.testing.simulate import SimulatedProvider

    if args.configfs_tsm:
        return ConfigfsTsmProvider()
    platform = _platform(args)
    return SimulatedProvider(platform) if platform is not None else None


def _cmd_submit(args: argparse.Namespace) -> int:
    """Submit a statement signed with a local key, or an existing Sigstore bundle (model-signing), with a quote."""

    provider = _quote_provider(args)
    if args.bundle:
        bundle_obj = json.loads(Path(args.bundle).read_text())
        bundle = parse_bundle(bundle_obj)
        submission: dict[str, Any] = {"sigstoreBundle": bundle_obj}
        spki: bytes | None = None
        if args.public_key:
            pem = Path(args.public_key).read_text()
            submission["verificationMaterial"] = {"publicKeys": [{"pem": pem}]}
            spki = PublicKey.from_pem(pem).spki
        elif bundle.chain:
            cert = x509.load_der_x509_certificate(bundle.chain[0])
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        if provider is not None and spki is not None:
            env = bundle.envelope
            submission["tee"] = tdx_tee(provider.quote(payload_report_data(env.payload_type, env.payload, spki)))
    else:
        if not (args.statement and args.key):
            raise SystemExit("atlas-log: give --statement FILE --key KEY.pem, or --bundle FILE [--public-key PEM]")
        key = serialization.load_pem_private_key(Path(args.key).read_bytes(), None)
        if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise SystemExit("atlas-log: the signing key must be Ed25519 or ECDSA P-256/P-384")
        payload = Path(args.statement).read_bytes()
        disclosures: tuple[Disclosure, ...] = ()
        if args.confidential:
            statement = json_loads(payload, args.statement)
            if not isinstance(statement, dict):
                raise SystemExit(f"atlas-log: {args.statement} is not a JSON statement; --confidential needs one")
            blinding = None
            if hides_digests(args.confidential):
                with LogClient(args.server, None, token=_token(args), **_network()) as keyed:
                    blinding = keyed.blinding_key()
            redacted, disclosures = redact(statement, args.confidential, blinding_key=blinding)
            payload = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode()
        if isinstance(key, Ed25519PrivateKey):
            submission = signed_submission(key, payload, payload_type=args.payload_type, disclosures=disclosures)
        else:
            submission = build_submission(sign_envelope(args.payload_type, payload, key), [spki_der(key)])
            if disclosures:
                submission["disclosures"] = [d.encoded for d in disclosures]
        if provider is not None:
            rd = payload_report_data(args.payload_type, payload, spki_der(key))
            submission["tee"] = tdx_tee(provider.quote(rd))
    with LogClient(args.server, _vkey(args), token=_token(args), **_network()) as client:
        receipt = client.submit(submission)
    if args.receipt:
        Path(args.receipt).write_text(json.dumps(receipt.to_json(), indent=2))
    print(
        f"logged at index {receipt.log_index} (tree size {receipt.tree_size}); receipt verified"
        + (f", saved to {args.receipt}" if args.receipt else "")
    )
    return 0


def _token(args: argparse.Namespace) -> str | None:
    """The bearer token: ``--token-file``, else ``ATLAS_LOG_TOKEN`` (never a plain argument: it would show in
    the process list)."""
    if getattr(args, "token_file", None):
        return Path(args.token_file).read_text().strip()
    return os.environ.get("ATLAS_LOG_TOKEN") or None


def _cmd_disclose(args: argparse.Namespace) -> int:
    """Fetch a confidential entry's disclosures as its tenant or a grant holder, verify them, save them."""
    token = _token(args)
    if token is None:
        raise SystemExit(
            "atlas-log: disclose needs the tenant's token or a grant: --token-file FILE or ATLAS_LOG_TOKEN"
        )
    with LogClient(args.server, _vkey(args), token=token, **_network()) as client:
        checkpoint, note = client.checkpoint()
        disclosed = client.disclosures(args.index, checkpoint)
    logged = disclosed.logged
    submission = logged.submission if isinstance(logged.submission, dict) else {}
    record = {
        "logIndex": logged.log_index,
        "checkpoint": note.decode(),
        "leaf": b64encode(logged.leaf),
        "inclusionProof": [b64encode(h) for h in logged.inclusion_proof],
        "dsseEnvelope": submission.get("dsseEnvelope"),
        "disclosures": [d.encoded for _, d in disclosed.revealed.disclosed],
    }
    Path(args.out).write_text(json.dumps(record, indent=2))
    _print_revealed(disclosed.revealed)
    print(f"verified and saved to {args.out}; check it offline with: atlas-log verify-disclosure {args.out} --vkey …")
    return 0


def _print_revealed(revealed: Any) -> None:
    for path, d in revealed.disclosed:
        print(f"{path} = {json.dumps(d.value, ensure_ascii=False)}")


def _cmd_verify_disclosure(args: argparse.Namespace) -> int:
    """Offline: the checkpoint's signature, the leaf's inclusion, the statement against the leaf, and each
    disclosure against the statement."""
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.entry import parse_leaf
    from atlas_log.merkle import leaf_hash, verify_inclusion

    vkey = args.disclosure_vkey or args.vkey
    if not vkey:
        raise SystemExit("atlas-log: verify-disclosure needs the log's --vkey")
    record = json_loads(Path(args.file).read_bytes(), args.file)
    if not isinstance(record, dict) or not isinstance(record.get("checkpoint"), str):
        raise SystemExit(f"atlas-log: {args.file} is not a file written by atlas-log disclose")
    checkpoint = open_checkpoint(record["checkpoint"].encode(), Verifier.from_vkey(vkey))
    leaf = b64decode(record.get("leaf", ""), "leaf")
    proof = [b64decode(h, "inclusionProof") for h in record.get("inclusionProof") or []]
    verify_inclusion(leaf_hash(leaf), record.get("logIndex", -1), checkpoint.size, proof, checkpoint.root_hash)
    revealed = verify_disclosures(parse_leaf(leaf).body, record.get("dsseEnvelope"), record.get("disclosures") or [])
    _print_revealed(revealed)
    print(
        f"verified: entry {record['logIndex']} is in the log's tree of size {checkpoint.size}, and each value "
        "is the one its signed statement commits to"
    )
    return 0


def _trust(args: argparse.Namespace) -> Any:
    from atlas_log.reverify import Trust

    roots = x509.load_pem_x509_certificates(Path(args.x509_roots).read_bytes()) if args.x509_roots else []
    return Trust(
        tdx_roots=tuple(args.tdx_root) if args.tdx_root else Trust().tdx_roots,
        x509_roots=tuple(r.public_bytes(serialization.Encoding.DER) for r in roots),
        x509_eku=args.x509_eku,
    )


def _add_x509_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument("--x509-roots", help="PEM file of X.509 roots that certificate-signed entries must chain to")
    p.add_argument("--x509-eku", default=CODE_SIGNING, help="extended key usage (OID) signing certificates must carry")


MAX_ENTRY_EVIDENCE = 10


def _replay_progress(done: int, total: int) -> None:
    if done == total or done % 10_240 == 0:
        print(f"replayed {done}/{total}", file=sys.stderr, flush=True)


def _replay_round(replay: Any, note: bytes, verifier: Verifier, result: Any, seen_at: int) -> None:
    """Replay up to the monitor's verified checkpoint (first seen at ``seen_at``); failing entries become
    problems, and evidence when it holds."""
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.evidence import verify_evidence
    from atlas_log.replay import entry_evidence, map_evidence, order_evidence

    checkpoint = open_checkpoint(note, verifier)
    try:
        outcome = replay.run(checkpoint, _replay_progress, seen_at)
    except Exception as exc:  # the log stopped answering mid-replay: a problem of this round; the next continues
        result.problems.append(f"replay stopped at entry {replay.tree.size}: {exc}")
        return
    print(
        json.dumps(
            {
                "replayed": outcome.entries,
                "seconds": round(outcome.seconds, 3),
                "entriesPerSecond": round(outcome.entries / outcome.seconds) if outcome.seconds else None,
                "problems": len(outcome.problems),
                **({"disclosures": outcome.disclosures} if outcome.disclosures else {}),
            }
        ),
        file=sys.stderr,
        flush=True,
    )
    result.problems.extend(outcome.problems)
    gather: list[tuple[int, Callable[[], dict[str, Any]]]] = (
        [
            (index, partial(entry_evidence, replay.url, verifier.vkey, note, checkpoint, index, reason))
            for index, reason in outcome.bad_entries[:MAX_ENTRY_EVIDENCE]
        ]
        + [
            (index, partial(order_evidence, replay.url, verifier.vkey, note, checkpoint, earlier, index, reason))
            for earlier, index, reason in outcome.backdated[:MAX_ENTRY_EVIDENCE]
        ]
        + [
            (index, partial(map_evidence, replay.url, verifier.vkey, note, checkpoint, index, reason))
            for index, reason in outcome.bad_commitments[:MAX_ENTRY_EVIDENCE]
        ]
    )
    for index, collect in gather:
        try:
            evidence = collect()
        except (Error, KeyError, ValueError) as exc:
            result.problems.append(f"could not gather evidence for entry {index}: {exc}")
            continue
        try:  # only what proves misbehaviour to others is written as evidence (e.g. not a swapped submission)
            verify_evidence(evidence, verifier, replay.trust)
        except Error as exc:
            result.problems.append(f"entry {index} is not evidence against the log: {exc}")
            continue
        result.evidence.append(evidence)


def _cmd_monitor(args: argparse.Namespace) -> int:
    from atlas_log.cosignature import CosignatureVerifier, CosignatureWindow
    from atlas_log.monitor import Monitor, serve_checkpoint

    verifier = Verifier.from_vkey(args.vkey_pinned)
    witnesses = [CosignatureVerifier.from_vkey(w) for w in args.witness or []]
    out = Path(args.evidence_dir)
    mon = Monitor(
        None,
        args.log,
        verifier,
        peers=args.peer or [],
        witnesses=witnesses,
        quorum=args.quorum,
        state_file=Path(args.state) if args.state else None,
        cosignature_window=CosignatureWindow(max_age_s=args.cosignature_max_age),
        map_max_lag_s=args.map_max_lag or None,
    )
    if args.listen:
        host, _, port = args.listen.rpartition(":")
        serve_checkpoint(mon, host or "127.0.0.1", int(port))
    try:
        return _monitor_rounds(args, mon, verifier, out)
    finally:
        mon.close()


def _monitor_rounds(args: argparse.Namespace, mon: Any, verifier: Verifier, out: Path) -> int:
    """Watch until evidence is found (exit 3), or for one round with --once; the webhook gets each piece of
    evidence by a plain POST (:func:`~atlas_log.transport.post_json`), once."""
    from atlas_log.checkpoint import succession
    from atlas_log.monitor import Monitor
    from atlas_log.replay import Replay
    from atlas_log.transport import post_json

    replay = Replay(args.log[0], _trust(args), args.replay_workers, token=_token(args)) if args.replay else None
    successor: Monitor | None = None
    seen_note: bytes | None = None
    seen_at = 0
    while True:
        result = mon.round()
        frozen = succession(mon.trusted.checkpoint) if mon.trusted.checkpoint is not None else None
        if frozen is not None and successor is None and args.follow_successor and frozen.url and frozen.vkey:
            # The frozen log stays watched (it must never grow again); its successor is followed too.
            successor = Monitor(None, [frozen.url], Verifier.from_vkey(frozen.vkey))
        if successor is not None:
            later = successor.round()
            result.problems.extend(f"successor: {p}" for p in later.problems)
            result.evidence.extend(later.evidence)
        if mon.trusted.note != seen_note:  # entries it covers were dated before this moment
            seen_note, seen_at = mon.trusted.note, int(time.time())
        if replay is not None and mon.trusted.note is not None:
            _replay_round(replay, mon.trusted.note, verifier, result, seen_at)
        for i, ev in enumerate(result.evidence):
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"evidence-{int(time.time())}-{i}.json"
            path.write_text(json.dumps(ev, indent=2))
            if args.webhook:
                try:
                    post_json(args.webhook, ev, 10)
                except Error as exc:
                    print(f"webhook failed: {exc}", file=sys.stderr)
        print(
            json.dumps(
                {
                    "size": result.size,
                    "views": result.views,
                    "problems": result.problems,
                    "evidence": len(result.evidence),
                    "frozen": None if frozen is None else {"successorUrl": frozen.url, "successorKey": frozen.vkey},
                    "successorSize": None if successor is None else successor.trusted.size,
                }
            ),
            flush=True,
        )
        if result.evidence:
            return 3
        if args.once:
            return 1 if result.problems else 0
        time.sleep(args.interval)


def _cmd_pack(args: argparse.Namespace) -> int:
    from atlas_log.pack import gather

    with _client(args) as client:
        data = gather(
            client, args.digest, depth=args.depth, progress=lambda what: print(f"fetching {what}", file=sys.stderr)
        )
    Path(args.out).write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes): verify it offline with atlas-log verify-pack {args.out} --vkey …")
    return 0


def _cmd_verify_pack(args: argparse.Namespace) -> int:
    from atlas_log.cosignature import CosignatureVerifier
    from atlas_log.pack import pack_json, verify_pack

    vkey = args.pack_vkey or args.vkey
    if not vkey:
        print("pack does not hold: no log key is pinned; give the log's verifier key with --vkey")
        return 1
    try:
        data = Path(args.file).read_bytes()
        witnesses = [CosignatureVerifier.from_vkey(w) for w in args.witness] if args.witness else None
        if args.quorum and not witnesses:
            raise ValueError("--quorum needs the witnesses' keys (--witness)")
        verdict = verify_pack(data, vkey, witnesses=witnesses, quorum=args.quorum, trust=_trust(args))
    except (Error, ValueError, OSError) as exc:
        print(json.dumps({"verified": False, "reason": str(exc)}) if args.json else f"pack does not hold: {exc}")
        return 1
    if args.json:
        print(json.dumps({"verified": True, **pack_json(verdict)}))
        return 0
    print(verdict.summary)
    complete = verdict.history_complete_as_of is not None and verdict.lineage_complete_as_of is not None
    print(
        f"verdict: verified offline ({verdict.entries} entries re-verified from their submissions"
        + (f"; complete as of tree size {verdict.history_complete_as_of})" if complete else "; not proved complete: ")
        + ("" if complete else "; ".join(verdict.incomplete) + ")")
    )
    return 0


def _cmd_verify_evidence(args: argparse.Namespace) -> int:
    from atlas_log.evidence import verify_evidence

    vkey = args.evidence_vkey or args.vkey
    if not vkey:
        # The key an evidence file names proves nothing: anyone can make a key with the log's name.
        print("evidence does not hold: no log key is pinned; give the log's verifier key with --vkey")
        return 1
    try:
        # The evidence embeds an entry (leaf and submission, base64) and its collateral: the one parser, with
        # room for them.
        evidence = json_loads(Path(args.file).read_bytes(), "evidence", JSON_LIMITS.enclosing(2))
        print(verify_evidence(evidence, vkey, _trust(args)))
    except (Error, ValueError, OSError) as exc:
        print(f"evidence does not hold: {exc}")
        return 1
    return 0


def _cmd_evidence(args: argparse.Namespace) -> int:
    """Write an entry's quote and collateral as a PCS-replay folder that `atlas-log tdx verify` reads."""
    from atlas_log.tdx.collateral import replay_files

    with _client(args) as client:
        ev = client.evidence(args.index)  # the quote and collateral its included leaf records
    out = Path(args.out)
    (out / "pcs").mkdir(parents=True, exist_ok=True)
    (out / "quote.bin").write_bytes(ev.quote)
    for field, name in replay_files().items():
        (out / "pcs" / name).write_bytes(getattr(ev.collateral, field))
    (out / "verdict.json").write_text(json.dumps(ev.verdict, indent=2))
    roots = " ".join(f"--root {r}" for r in ev.trusted_roots)
    print(
        f"wrote {out}; replay: atlas-log tdx verify {out / 'quote.bin'} --collateral {out} "
        f"--at {ev.verified_at} {roots}"
    )
    return 0


async def _demo(args: argparse.Namespace) -> int:
    from atlas_log.testing.demo import demo_submission

    key = Ed25519PrivateKey.generate()
    platform = _platform(args)
    if platform is None:
        print("note: no simulated TDX platform found; submitting entries without quotes", file=sys.stderr)
    out = Path(args.receipts) if args.receipts else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    vkey = args.vkey
    if not vkey:
        async with AsyncLogClient(args.server, None, **_network()) as keyless:
            vkey = (await keyless.log_info()).verifier_key
    # A submission the log did not answer is sent again, byte for byte, until it is (the log deduplicates):
    # the demo keeps going through a restart of the log.
    async with AsyncLogClient(args.server, vkey, **_network(60)) as client:
        sem = asyncio.Semaphore(args.concurrency)
        done = 0
        started = time.monotonic()

        async def one(n: int) -> None:
            nonlocal done
            async with sem:
                receipt = await client.submit(demo_submission(key, n, platform))
            if out:
                (out / f"receipt-{receipt.log_index:08d}.json").write_text(json.dumps(receipt.to_json(), indent=2))
            done += 1
            if args.count >= 100 and done % max(1, args.count // 20) == 0:
                print(f"  {done}/{args.count} entries ({done / (time.monotonic() - started):.0f}/s)", file=sys.stderr)

        await asyncio.gather(*(one(n) for n in range(args.count)))
    print(
        f"submitted {args.count} entries in {time.monotonic() - started:.1f}s; every receipt verified"
        + (f"; saved to {out}" if out else "")
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atlas-log", description="Atlas Log client")
    parser.add_argument("--server", default=os.environ.get("ATLAS_LOG_URL", DEFAULT_SERVER), help="log URL")
    parser.add_argument("--vkey", default=os.environ.get("ATLAS_LOG_VKEY"), help="the log's verifier key (pin it)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("checkpoint", help="fetch and verify the latest checkpoint")
    p.add_argument("--state", help="trusted-state file: prove consistency with the last checkpoint seen")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_checkpoint)
    p = sub.add_parser("get", help="fetch an entry and verify its inclusion in the latest checkpoint")
    p.add_argument("index", type=int)
    p.set_defaults(func=_cmd_get)
    p = sub.add_parser("verify", help="verify receipt files offline")
    p.add_argument("receipts", nargs="+")
    p.set_defaults(func=_cmd_verify)
    p = sub.add_parser("submit", help="submit a signed statement, or a model-signing bundle, with a TDX quote")
    p.add_argument("--statement", help="in-toto statement (or other payload) file to sign and submit")
    p.add_argument("--key", help="PEM private key to sign with (Ed25519 or ECDSA)")
    p.add_argument("--payload-type", default="application/vnd.in-toto+json")
    p.add_argument("--bundle", help="a Sigstore bundle (e.g. model.sig from model-signing) to submit as is")
    p.add_argument("--public-key", help="PEM public key of a key-signed bundle")
    p.add_argument("--simulated-platform", help="simulated TDX platform folder (default .atlas-log/simulated-tdx)")
    p.add_argument("--configfs-tsm", action="store_true", help="quote with /sys/kernel/config/tsm inside a TD")
    p.add_argument("--receipt", help="file to save the verified receipt in")
    p.add_argument(
        "--confidential",
        action="append",
        metavar="PATH",
        help="a statement field to hide behind a salted digest (repeat), e.g. predicate.buildDefinition."
        "externalParameters.dataset or predicate.resources[*].name; the log keeps the values encrypted. A "
        "digest (subject[0].digest) gets a blinded twin under the tenant's key, so it still links",
    )
    p.add_argument("--token-file", help="file holding the tenant's bearer token (default: ATLAS_LOG_TOKEN)")
    p.set_defaults(func=_cmd_submit)
    p = sub.add_parser("disclose", help="a confidential entry's hidden values, for its tenant or a grant holder")
    p.add_argument("index", type=int)
    p.add_argument("--out", required=True, help="file to save the verified disclosures in (for verify-disclosure)")
    p.add_argument("--token-file", help="file holding the token (default: ATLAS_LOG_TOKEN)")
    p.set_defaults(func=_cmd_disclose)
    p = sub.add_parser("verify-disclosure", help="verify a file written by disclose, offline")
    p.add_argument("file")
    p.add_argument("--vkey", dest="disclosure_vkey", help="the log's verifier key")
    p.set_defaults(func=_cmd_verify_disclosure)
    p = sub.add_parser("history", help="an artifact's verified history (every entry naming it)")
    p.add_argument("digest", help="<alg>:<hex>, e.g. sha256:…")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--hidden",
        action="store_true",
        help="look up the entries that hide this digest (its blinded twin); needs the tenant's token or a grant",
    )
    p.add_argument("--token-file", help="file holding the token (default: ATLAS_LOG_TOKEN)")
    p.set_defaults(func=_cmd_history)
    p = sub.add_parser("lineage", help="an artifact's verified lineage, as a tree")
    p.add_argument("digest")
    p.add_argument("--direction", choices=["up", "down"], default="up")
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--hidden",
        action="store_true",
        help="look up the entries that hide this digest (its blinded twin); needs the tenant's token or a grant",
    )
    p.add_argument("--token-file", help="file holding the token (default: ATLAS_LOG_TOKEN)")
    p.set_defaults(func=_cmd_lineage)
    p = sub.add_parser("monitor", help="follow a log, prove consistency, compare views, write evidence")
    p.add_argument("--log", action="append", required=True, help="log URL (repeat for more vantage points)")
    p.add_argument("--vkey", dest="vkey_pinned", required=True, help="the log's verifier key")
    p.add_argument("--witness", action="append", help="a witness cosigner vkey (repeat)")
    p.add_argument("--quorum", type=int, default=0, help="witness cosignatures every checkpoint needs")
    p.add_argument(
        "--cosignature-max-age",
        type=int,
        default=None,
        help="seconds: a cosignature older than this does not count toward the quorum (default: no limit)",
    )
    p.add_argument("--peer", action="append", help="another monitor's URL serving its /checkpoint")
    p.add_argument("--state", help="trusted-state file")
    p.add_argument("--evidence-dir", default="evidence")
    p.add_argument("--webhook", help="URL to POST evidence to")
    p.add_argument("--once", action="store_true")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--listen", help="HOST:PORT to serve the latest verified checkpoint at /checkpoint for peers")
    p.add_argument(
        "--replay", action="store_true", help="rebuild the tree from the entry bundles and re-verify every entry"
    )
    p.add_argument(
        "--tdx-root", action="append", help="trusted TDX root CA key SHA-256 (repeat; default: Intel's root)"
    )
    p.add_argument("--replay-workers", type=int, help="processes re-verifying entries (default: one per CPU)")
    p.add_argument(
        "--token-file",
        help="a grant (or the tenant's token): the replay also checks the disclosures of every confidential entry "
        "it may read against the digests the entry commits to (default: ATLAS_LOG_TOKEN)",
    )
    p.add_argument(
        "--map-max-lag",
        type=int,
        default=DEFAULT_MAP_MAX_LAG_S,
        help="seconds an entry may wait for the log's map to cover it, once the log has committed a map; a longer "
        f"wait is reported (default {DEFAULT_MAP_MAX_LAG_S}; 0: do not check)",
    )
    _add_x509_trust(p)
    p.add_argument(
        "--follow-successor", action="store_true", help="when the log is frozen, also follow the successor it names"
    )
    p.set_defaults(func=_cmd_monitor)
    p = sub.add_parser("pack", help="write an artifact's evidence pack: everything to verify its case offline")
    p.add_argument("digest", help="<alg>:<hex>, e.g. sha256:…")
    p.add_argument("--out", required=True, help="the pack file to write (a ZIP archive)")
    p.add_argument("--depth", type=int, default=5, help="lineage depth, up and down (default 5)")
    p.set_defaults(func=_cmd_pack)
    p = sub.add_parser("verify-pack", help="re-verify an evidence pack offline and print its summary")
    p.add_argument("file")
    p.add_argument("--vkey", dest="pack_vkey", help="the log's verifier key (required here or before the command)")
    p.add_argument(
        "--witness", action="append", help="a witness cosigner key you trust (repeat; default: the pack's own)"
    )
    p.add_argument("--quorum", type=int, default=None, help="cosignatures of --witness keys each checkpoint needs")
    p.add_argument("--tdx-root", action="append", help="trusted TDX root CA key SHA-256 (repeat; default: Intel's)")
    p.add_argument("--json", action="store_true")
    _add_x509_trust(p)
    p.set_defaults(func=_cmd_verify_pack)
    p = sub.add_parser("verify-evidence", help="check a piece of evidence against the log's pinned key")
    p.add_argument("file")
    p.add_argument("--vkey", dest="evidence_vkey", help="the log's verifier key (required here or before the command)")
    p.add_argument("--tdx-root", action="append", help="trusted TDX root CA key SHA-256 for entry evidence")
    _add_x509_trust(p)
    p.set_defaults(func=_cmd_verify_evidence)
    p = sub.add_parser("evidence", help="download an entry's quote and collateral as a PCS-replay folder")
    p.add_argument("index", type=int)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_cmd_evidence)
    p = sub.add_parser("tdx", help="Intel TDX quote tools")
    tdx = p.add_subparsers(dest="tdx_command", required=True)
    p = tdx.add_parser("verify", help="verify a TDX quote against a PCS-replay collateral folder (offline)")
    p.add_argument("quote", help="raw quote file")
    p.add_argument("--collateral", required=True, help="PCS-replay folder (tcb.json, qe_identity.json, CRLs, chains)")
    p.add_argument("--at", type=int, required=True, help="verification time, Unix seconds")
    p.add_argument("--policy", help="JSON policy file (allowed_statuses, denied_advisories, mr_td, rtmr, ...)")
    p.add_argument("--root", action="append", help="trusted root SPKI SHA-256 (default: the Intel SGX Root CA)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_tdx_verify)
    p = sub.add_parser("demo", help="submit N distinct signed demo entries")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--receipts", help="folder to save each receipt in")
    p.add_argument("--simulated-platform", help="simulated TDX platform folder (default .atlas-log/simulated-tdx)")
    p.set_defaults(func=lambda a: asyncio.run(_demo(a)))
    args = parser.parse_args(argv)
    # Subcommand options may also follow the subcommand.
    try:
        return int(args.func(args))
    except (Error, OSError) as exc:  # what a user can cause: one line, no traceback
        print(f"atlas-log: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("atlas-log: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
