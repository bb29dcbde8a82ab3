"""The evidence pack: everything a verifier needs, offline, about one artifact, in one file.

A pack (``atlas-log pack``) is a ZIP archive of exactly two members, stored uncompressed with fixed metadata so
that its bytes follow from its contents:

- ``manifest.json`` (RFC 8785 canonical JSON): ``{"format": "atlas-log/evidence-pack/v1", "artifact",
  "depth", "log": {"vkey", "witnesses", "quorum"}, "checkpoint", "consistency", "history", "lineage",
  "entries"}`` where ``checkpoint`` is the newest signed checkpoint any answer was proved against,
  ``consistency`` maps each older answer's tree size to the RFC 9162 consistency proof joining it to that one,
  ``history`` is the artifact's history answers page by page and ``lineage`` the ``up`` and ``down`` lineage
  answers (``complete=true``) exactly as the log served them (leaves, inclusion proofs, completeness proofs),
  and ``entries`` maps every entry index they name (map commitments aside) to the submission it was admitted
  from and the TDX collateral it was verified with;
- ``summary.md``: for people, rendered from the verified contents alone (the model's upstream, signers, TEE
  verdicts, evaluations, deployments).

:func:`verify_pack` re-verifies all of it with no I/O: every checkpoint under the given key (and the pack's
witnesses), their consistency, each answer as the client verifies it (inclusion, back-links, completeness),
and each entry from its submission with the log's own entry builder (signatures, the quote against the
enclosed collateral at the entry's integration time under the caller's roots; :mod:`atlas_log.reverify`). The
summary must be the one the contents give, and the archive the one its members give: any altered byte fails.
"""

from __future__ import annotations

import dataclasses
import io
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atlas_log._encoding import JSON_LIMITS, b64decode, b64encode, json_loads
from atlas_log.answers import parse_collateral
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cli_output import inert
from atlas_log.cosignature import CosignatureVerifier, verify_cosignatures
from atlas_log.entry import Entry, canonical_json
from atlas_log.errors import Error, FormatError, VerificationError
from atlas_log.history import VerifiedHistory, VerifiedLineage, verify_history, verify_lineage
from atlas_log.intoto import DEPLOYMENT_V1, TEST_RESULT, Extraction
from atlas_log.merkle import verify_consistency
from atlas_log.note import Verifier, parse_note
from atlas_log.reverify import Trust, check_entry
from atlas_log.submission import submitted_extraction
from atlas_log.tdx.collateral import Collateral
from atlas_log.vmap import MapCommitment

if TYPE_CHECKING:
    from atlas_log.client import LogClient

__all__ = ["FORMAT", "PackVerdict", "gather", "names_nothing", "verify_pack"]

FORMAT = "atlas-log/evidence-pack/v1"
MANIFEST = "manifest.json"
SUMMARY = "summary.md"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # ZIP's earliest date: no time of packing in the bytes
_MAX_PACK = 512 * 1024 * 1024
_MEMBERS = {"format", "artifact", "depth", "log", "checkpoint", "consistency", "history", "lineage", "entries"}


@dataclass(frozen=True, slots=True)
class PackVerdict:
    """What a verified pack proves: its artifact, the newest checkpoint, whether the history and the lineage
    are complete (and as of which tree size), how many entries were re-verified, and the summary."""

    artifact: str
    checkpoint: Checkpoint
    history_complete_as_of: int | None
    lineage_complete_as_of: int | None
    incomplete: tuple[str, ...]
    entries: int
    summary: str
    depth: int = 0
    witnesses: tuple[str, ...] = ()  # the cosigner keys the checkpoints were checked against
    quorum: int = 0


# ---- writing ------------------------------------------------------------------------------------------------------


def _zip(manifest: bytes, summary: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in ((MANIFEST, manifest), (SUMMARY, summary)):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return out.getvalue()


def gather(
    client: LogClient,
    artifact: str,
    *,
    depth: int = 5,
    progress: Callable[[str], None] | None = None,
) -> bytes:
    """The pack of ``artifact`` (``alg:hex``) from the log ``client`` reads (its pinned key and witness policy
    verify every answer on the way in), as bytes. ``progress`` is told what is being fetched."""
    say = progress or (lambda _: None)
    say("history")
    history = client.history(artifact)
    say("lineage")
    up = client.lineage(artifact, "up", depth, complete=True)
    down = client.lineage(artifact, "down", depth, complete=True)
    for lin in (up, down):
        if lin.truncated:
            raise VerificationError(
                f"the lineage {lin.direction} is larger than the log answers at once: pack a smaller depth"
            )
    notes = [str(p["checkpoint"]) for p in history.served] + [str(x.served["checkpoint"]) for x in (up, down)]
    cps = {note: open_checkpoint(note.encode(), client.verifier) for note in notes}
    newest = max(cps, key=lambda n: cps[n].size)
    top = cps[newest].size
    consistency = {
        str(size): [b64encode(h) for h in client.consistency_proof(size, top)]
        for size in sorted({cp.size for cp in cps.values()} - {top, 0})
    }
    entries: dict[str, Any] = {}
    leaves = _leaves(history, (up, down))
    for n, (index, entry) in enumerate(sorted(leaves.items())):
        if MapCommitment.is_commitment(entry.body):
            continue
        say(f"entry {index} ({n + 1}/{len(leaves)})")
        submission = client.submission(index)
        digest = _collateral_digest(entry)
        entries[str(index)] = {
            "submission": submission if isinstance(submission, dict) else b64encode(submission),
            "collateral": client.collateral(digest).to_json() if digest else None,
        }
    witnesses = [w.vkey for w in client.witnesses] if client.quorum else []
    manifest = {
        "format": FORMAT,
        "artifact": history.artifact,
        "depth": depth,
        "log": {"vkey": client.verifier.vkey, "witnesses": witnesses, "quorum": client.quorum},
        "checkpoint": newest,
        "consistency": consistency,
        "history": [_kept(page, HISTORY, history.aliases) for page in history.served],
        "lineage": {"up": _kept(up.served, LINEAGE), "down": _kept(down.served, LINEAGE)},
        "entries": entries,
    }
    verdict = verify_pack(
        _zip(canonical_json(manifest), b""),
        client.verifier.vkey,
        witnesses=client.witnesses if client.quorum else (),
        trust=None,
        summary_only=True,
    )
    return _zip(canonical_json(manifest), verdict.summary.encode())


def names_nothing(data: bytes) -> bool:
    """Whether the pack's history and lineage hold no entry at all (most often: a mistyped digest). What the
    manifest says, unverified: for a warning when writing a pack, not a verdict."""
    manifest = json_loads(_unzip(data)[0], "pack manifest", JSON_LIMITS.enclosing(4))
    pages = manifest.get("history") or [] if isinstance(manifest, dict) else []
    lineage = manifest.get("lineage") or {} if isinstance(manifest, dict) else {}
    return not any(p.get("entries") for p in pages if isinstance(p, dict)) and not any(
        x.get("edges") for x in lineage.values() if isinstance(x, dict)
    )


# ---- what a pack keeps of an answer: what verification covers, nothing the log merely says ------------------------

HISTORY = frozenset({"artifact", "aliases", "treeSize", "checkpoint", "entries", "next", "completeness"})
LINEAGE = frozenset(
    {
        "artifact",
        "direction",
        "depth",
        "treeSize",
        "checkpoint",
        "nodes",
        "edges",
        "entries",
        "truncated",
        "completeness",
    }
)
_ENTRY = frozenset({"logIndex", "leaf", "inclusionProof"})


def _kept(answer: Mapping[str, Any], members: frozenset[str], aliases: frozenset[str] | None = None) -> dict[str, Any]:
    """``answer`` without what verification does not cover: names and roles (the log's index), aliases no
    entry proves, members of another version of the API."""
    out = {k: v for k, v in answer.items() if k in members}
    out["entries"] = [{k: v for k, v in e.items() if k in _ENTRY} for e in answer.get("entries", [])]
    if aliases is not None:
        out["aliases"] = sorted(a for a in answer.get("aliases", []) if a in aliases)
    return out


def _check_kept(answer: Any, members: frozenset[str], what: str) -> None:
    if not isinstance(answer, dict) or not set(answer) <= members or not isinstance(answer.get("entries"), list):
        raise FormatError(f"the pack's {what} holds members verification does not cover")
    if any(not isinstance(e, dict) or set(e) != _ENTRY for e in answer["entries"]):
        raise FormatError(f"an entry of the pack's {what} is not exactly {sorted(_ENTRY)}")


# ---- verifying ----------------------------------------------------------------------------------------------------


def _leaves(history: VerifiedHistory, lineages: Sequence[VerifiedLineage]) -> dict[int, Entry]:
    out = {v.log_index: v.entry for v in history.entries}
    for lin in lineages:
        out.update({i: v.entry for i, v in lin.entries.items()})
    return out


def _collateral_digest(entry: Entry) -> str | None:
    tee = entry.body.get("tee")
    coll = tee.get("collateral") if isinstance(tee, dict) else None
    digest = coll.get("set") if isinstance(coll, dict) else None
    return digest if isinstance(digest, str) else None


def _unzip(data: bytes) -> tuple[bytes, bytes]:
    if len(data) > _MAX_PACK:
        raise FormatError(f"a pack is at most {_MAX_PACK} bytes")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if names != [MANIFEST, SUMMARY]:
                raise FormatError(f"a pack holds exactly {MANIFEST} and {SUMMARY}, not {names}")
            manifest, summary = z.read(MANIFEST), z.read(SUMMARY)
    # zipfile answers some damaged headers with EOFError (a truncated entry), RuntimeError (an "encrypted"
    # flag) or NotImplementedError (an unknown compression method): every one is a pack that does not read.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        RuntimeError,
        NotImplementedError,
    ) as exc:
        raise FormatError(f"the pack is not a readable ZIP archive: {exc or type(exc).__name__}") from exc
    if _zip(manifest, summary) != data:
        raise VerificationError("the pack's bytes are not the archive its contents make: it was altered")
    return manifest, summary


def verify_pack(
    data: bytes,
    vkey: str,
    *,
    witnesses: Sequence[CosignatureVerifier] | None = None,
    quorum: int | None = None,
    trust: Trust | None,
    now: int | None = None,
    summary_only: bool = False,
) -> PackVerdict:
    """Verify a pack (its bytes) offline under the log key ``vkey``; raises a typed error naming the first thing
    that does not hold. The witness policy is the caller's (``witnesses`` and ``quorum``, by default all of
    them); without one, the pack's own (listed in the summary: compare them with the keys you trust).
    Cosignatures are checked against the clock ``now`` (Unix seconds). Entries are re-verified under ``trust``
    (TDX roots, X.509 roots); ``summary_only`` (building a pack) skips that and the summary."""
    manifest_bytes, summary = _unzip(data)
    m = json_loads(manifest_bytes, "pack manifest", JSON_LIMITS.enclosing(4))
    if not isinstance(m, dict) or set(m) != _MEMBERS or m.get("format") != FORMAT:
        raise FormatError(f"the pack's manifest is not {FORMAT}")
    if canonical_json(m) != manifest_bytes:
        raise VerificationError("the pack's manifest is not in canonical form: it was altered")
    verifier = Verifier.from_vkey(vkey)
    log = m["log"]
    if not isinstance(log, dict) or log.get("vkey") != verifier.vkey:
        made_for = log.get("vkey") if isinstance(log, dict) else log
        raise VerificationError(f"the pack was made for the log key {made_for!r}, not {verifier.vkey}")
    listed = log.get("witnesses")
    packed_quorum = log.get("quorum")
    if not isinstance(listed, list) or not isinstance(packed_quorum, int) or isinstance(packed_quorum, bool):
        raise FormatError("the pack's log names no witness list and quorum")
    packed = [CosignatureVerifier.from_vkey(w) for w in listed]
    if not 0 <= packed_quorum <= len(packed):
        raise FormatError("the pack's witness quorum is not a count of its witnesses")
    # The caller's witness policy when given (its witnesses without a quorum: all of them, never the number the
    # pack names); else the pack's own (which the summary lists either way).
    pool = list(witnesses) if witnesses is not None else packed
    if quorum is None:
        quorum = len(pool) if witnesses is not None else packed_quorum
    if not 0 <= quorum <= len(pool):
        raise FormatError(f"a quorum of {quorum} needs at least as many witness keys, not {len(pool)}")
    clock = int(time.time()) if now is None else now

    def opened(note: Any) -> Checkpoint:
        if not isinstance(note, str):
            raise FormatError("a checkpoint in the pack is not text")
        cp = open_checkpoint(note.encode(), verifier)
        if quorum:
            verify_cosignatures(parse_note(note.encode()), pool, quorum, now=clock)
        return cp

    newest = opened(m["checkpoint"])
    proofs = m["consistency"]
    if not isinstance(proofs, dict):
        raise FormatError("the pack's consistency proofs are not an object")
    needed: set[str] = set()

    def joined(note: Any) -> Checkpoint:
        cp = opened(note)
        if cp.size > newest.size:
            raise VerificationError(f"an answer's tree ({cp.size}) is larger than the pack's checkpoint")
        if 0 < cp.size < newest.size:
            needed.add(str(cp.size))
            proof = [b64decode(h, "consistency proof") for h in proofs.get(str(cp.size), [])]
            verify_consistency(cp.size, newest.size, proof, cp.root_hash, newest.root_hash)
        elif cp.size == newest.size and cp.root_hash != newest.root_hash:
            raise VerificationError(f"two different trees of size {cp.size} in one pack")
        return cp

    artifact, depth = m["artifact"], m["depth"]
    if not isinstance(artifact, str) or not isinstance(depth, int) or isinstance(depth, bool):
        raise FormatError("the pack names no artifact or depth")
    pages = m["history"]
    if not isinstance(pages, list) or not pages:
        raise FormatError("the pack holds no history")
    history: VerifiedHistory | None = None
    for page in pages:
        _check_kept(page, HISTORY, "history")
        joined(page.get("checkpoint") if isinstance(page, dict) else None)
        history = verify_history(page, verifier, artifact, after=history)
    assert history is not None
    if history.next_before is not None:
        raise VerificationError("the pack's history stops before its last page")
    lineage = m["lineage"]
    if not isinstance(lineage, dict) or set(lineage) != {"up", "down"}:
        raise FormatError("the pack's lineage is not {'up', 'down'}")
    lins = []
    for direction in ("up", "down"):
        answer = lineage[direction]
        _check_kept(answer, LINEAGE, f"lineage {direction}")
        joined(answer.get("checkpoint"))
        lins.append(verify_lineage(answer, verifier, artifact, direction=direction, depth=depth))
        if lins[-1].truncated:
            raise VerificationError(f"the pack's lineage {direction} is capped: a pack holds whole lineages")
    if set(proofs) != needed:
        raise VerificationError("the pack's consistency proofs are not exactly those its checkpoints need")
    if any(set(page.get("aliases", [])) != set(history.aliases) for page in pages):
        raise VerificationError("the pack's history names aliases no entry proves")
    leaves = {i: e for i, e in _leaves(history, lins).items() if not MapCommitment.is_commitment(e.body)}
    entries = m["entries"]
    if not isinstance(entries, dict) or set(entries) != {str(i) for i in leaves}:
        raise VerificationError("the pack's entries are not exactly those its history and lineage name")
    extractions: dict[int, Extraction] = {}
    for index, entry in sorted(leaves.items()):
        item = entries[str(index)]
        if not isinstance(item, dict) or set(item) != {"submission", "collateral"}:
            raise FormatError(f"entry {index} in the pack is not {{'submission', 'collateral'}}")
        sub = item["submission"]
        raw: bytes | dict[str, Any] = b64decode(sub, "submission") if isinstance(sub, str) else sub
        if not isinstance(raw, dict | bytes):
            raise FormatError(f"entry {index}'s submission is neither an object nor base64")
        if not summary_only:
            _recheck(index, entry, raw, item["collateral"], trust or Trust())
        extractions[index] = _extraction(raw)
    incomplete = tuple(
        f"{what}: {why}"
        for what, why in (
            ("history", history.incomplete),
            ("lineage up", lins[0].incomplete),
            ("lineage down", lins[1].incomplete),
        )
        if why is not None
    )
    verdict = PackVerdict(
        history.artifact,
        newest,
        history.complete_as_of,
        lins[0].complete_as_of if lins[0].complete and lins[1].complete else None,
        incomplete,
        len(leaves),
        "",
        depth,
        tuple(w.vkey for w in pool),
        quorum,
    )
    text = render_summary(verdict, m, history, lins, leaves, extractions, packed, packed_quorum)
    if not summary_only and text.encode() != summary:
        raise VerificationError(f"the pack's {SUMMARY} is not the summary its contents give: it was altered")
    return dataclasses.replace(verdict, summary=text)


def _recheck(index: int, entry: Entry, raw: bytes | dict[str, Any], collateral: Any, trust: Trust) -> None:
    digest = _collateral_digest(entry)
    coll: Collateral | None = None
    if collateral is not None:
        if digest is None:
            raise VerificationError(f"entry {index} names no collateral, but the pack holds some for it")
        coll = parse_collateral(collateral, digest)
    leaf = entry.leaf()
    checked = check_entry(index, leaf, raw, lambda d: coll if d == digest else None, trust)
    if checked.problem is not None:
        raise VerificationError(f"entry {index} does not verify from its submission: {checked.problem}")


def _extraction(raw: bytes | dict[str, Any]) -> Extraction:
    try:
        return submitted_extraction(raw)
    except Error:
        return Extraction(None, False, ())


# ---- the summary --------------------------------------------------------------------------------------------------


def render_summary(
    verdict: PackVerdict,
    manifest: Mapping[str, Any],
    history: VerifiedHistory,
    lineages: Sequence[VerifiedLineage],
    leaves: Mapping[int, Entry],
    extractions: Mapping[int, Extraction],
    witnesses: Sequence[CosignatureVerifier],
    quorum: int,
) -> str:
    """The pack's summary, for people, from verified contents only (deterministic: the same pack, the same
    text)."""
    names: dict[str, str] = {}
    for ex in extractions.values():
        for f in ex.facts:
            for a, h in f.digests:
                if f.name:
                    label = f"{f.name} {f.version}" if f.version else f.name
                    names.setdefault(f"{a}:{h}", _plain(label))

    def named(digest: str) -> str:
        return f"{names[digest]} (`{digest}`)" if digest in names else f"`{digest}`"

    def when(t: int) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

    cp = verdict.checkpoint
    lines = [
        f"# Evidence pack: {named(verdict.artifact)}",
        "",
        f"- Log: `{cp.origin}`, verifier key `{manifest['log']['vkey']}`",
        "- Witnesses: "
        + (", ".join(f"`{w.vkey}`" for w in witnesses) + f" (at least {quorum} cosign)" if quorum else "none required"),
        f"- Verified against the checkpoint of tree size {cp.size} (root `{b64encode(cp.root_hash)}`)",
        "- History: "
        + (
            f"complete as of tree size {verdict.history_complete_as_of}"
            if verdict.history_complete_as_of is not None
            else f"not proved complete ({history.incomplete})"
        ),
        "- Lineage: "
        + (
            f"complete up to depth {manifest['depth']} as of tree size {verdict.lineage_complete_as_of}"
            if verdict.lineage_complete_as_of is not None
            else "not proved complete (" + "; ".join(i for i in verdict.incomplete if i.startswith("lineage")) + ")"
        ),
        "",
    ]
    naming = {e.log_index for e in history.entries}
    # An answer's completeness proof may need entries on no edge drawn (the newest naming a shared input).
    on_edges = {idx for lin in lineages for _, _, idx in lin.edges}
    if not naming and not any(lin.edges for lin in lineages):
        lines += [
            "**No entry of this log names this artifact.** If one was expected, check the digest above, every "
            "character of it.",
            "",
        ]
    lines += ["## Upstream: what it was made from", ""]
    up = lineages[0]
    if not up.edges:
        lines.append("Nothing: no entry states an input of this artifact.")
    for src, dst, idx in sorted(up.edges, key=lambda e: (e[2], e[0])):
        kind = "evaluated on (test data)" if extractions[idx].predicate_type == TEST_RESULT else "input of"
        lines.append(f"- {named(src)}: {kind} {named(dst)}, entry #{idx}")
    lines += [
        "",
        "## Entries",
        "",
        "| # | logged | in this pack as | statement | signers | TEE |",
        "|---|---|---|---|---|---|",
    ]
    for index, entry in sorted(leaves.items(), reverse=True):
        body = entry.body
        sigs: list[Any] = body["signatures"] if isinstance(body.get("signatures"), list) else []
        signers = ", ".join(
            f"`sha256:{s['verifier']['spkiSha256'][:16]}…`"
            for s in sigs
            if isinstance(s, dict) and isinstance(s.get("verifier"), dict) and "spkiSha256" in s["verifier"]
        )
        tee = body.get("tee") if isinstance(body.get("tee"), dict) else None
        verdict_text = (
            f"TDX {tee.get('tcbStatus')}{' (simulated platform)' if tee.get('simulated') else ''}"
            if tee is not None
            else "none"
        )
        ptype = _plain(extractions[index].predicate_type or "-")
        why = (
            "naming it"
            if index in naming
            else "on a lineage edge"
            if index in on_edges
            else "for the completeness proof"
        )
        lines.append(
            f"| {index} | {when(entry.integrated_time)} | {why} | {ptype} | {signers or '-'} | {verdict_text} |"
        )
    evaluations = [i for i, ex in sorted(extractions.items()) if ex.predicate_type == TEST_RESULT]
    deployments = [i for i, ex in sorted(extractions.items()) if ex.predicate_type == DEPLOYMENT_V1]
    lines += ["", "## Evaluations", ""]
    for i in evaluations:
        ex = extractions[i]
        meta = dict(ex.metadata)
        data = ", ".join(named(d) for d in ex.digests("eval_data")) or "-"
        model = ", ".join(named(d) for d in ex.digests("evaluated")) or "-"
        outcome = _plain(meta.get("result", "no result stated")) + _figures(meta)
        lines.append(f"- entry #{i}: {model} evaluated on {data}: {outcome}")
    if not evaluations:
        lines.append("None in this pack.")
    lines += ["", "## Deployments", ""]
    for i in deployments:
        ex = extractions[i]
        env = _plain(dict(ex.metadata).get("environment", "-"))
        lines.append(
            f"- entry #{i}: {', '.join(named(d) for d in ex.digests('material'))} deployed as "
            f"{', '.join(named(d) for d in ex.digests('subject'))} ({env})"
        )
    if not deployments:
        lines.append("None in this pack.")
    lines.append("")
    return "\n".join(lines)


_MARKDOWN = str.maketrans({c: "\\" + c for c in "`<>[]|"})
_FIGURES_SHOWN = 8
_TEST_COUNTS = (("passedTests", "passed"), ("warnedTests", "warned"), ("failedTests", "failed"))


def _plain(text: str) -> str:
    """Text a statement (anyone's) chose, as it reads in the summary: on its line, with nothing a terminal acts
    on, and no character that would make Markdown of it (a link, a code span, HTML, a table cell's end)."""
    return inert(text, line=True).translate(_MARKDOWN)


def _figures(meta: Mapping[str, str]) -> str:
    """An evaluation's figures after its result: `` (auc 0.97, f1 0.91; 12 tests passed, 1 failed)``."""
    metrics = [f"{_plain(k.removeprefix('metric:'))} {_plain(v)}" for k, v in meta.items() if k.startswith("metric:")]
    if len(metrics) > _FIGURES_SHOWN:
        metrics = [*metrics[:_FIGURES_SHOWN], f"{len(metrics) - _FIGURES_SHOWN} more in the statement"]
    counts = [(meta[k], word) for k, word in _TEST_COUNTS if k in meta]
    tests = ", ".join(f"{n} {'tests ' if i == 0 else ''}{word}" for i, (n, word) in enumerate(counts))
    parts = [p for p in (", ".join(metrics), tests) if p]
    return f" ({'; '.join(parts)})" if parts else ""


def pack_json(verdict: PackVerdict) -> dict[str, Any]:
    """The verdict as stable JSON (``verify-pack --json``)."""
    return {
        "artifact": verdict.artifact,
        "treeSize": verdict.checkpoint.size,
        "historyCompleteAsOf": verdict.history_complete_as_of,
        "lineageCompleteAsOf": verdict.lineage_complete_as_of,
        "incomplete": list(verdict.incomplete),
        "entries": verdict.entries,
        "depth": verdict.depth,
        "witnesses": list(verdict.witnesses),
        "quorum": verdict.quorum,
    }
