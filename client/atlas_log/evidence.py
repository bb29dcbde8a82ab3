"""Portable evidence that a log misbehaved, and its offline check.

JSON form::

    {"type": "atlas-log/evidence/v1", "kind": "inconsistent" | "fork" | "rollback" | "bad-entry",
     "log": "<verifier key>", "reason": "...",
     "checkpoints": ["<signed note>", "<signed note>"], "proof": ["<b64>", ...]}

Evidence holds when both notes carry valid signatures by the log's key and no consistency proof can join
them: the same size with two roots, a smaller later size, or a proof (from the log itself) that fails.

Kind ``bad-entry`` (from a replay) holds one checkpoint and ``"entry": {"logIndex", "leaf",
"inclusionProof", "submission", "collateral"}``: it holds when the leaf is provably in the signed tree and
does not verify against the submission the log served for it.
"""

from __future__ import annotations

from typing import Any

from atlas_log._encoding import b64decode, b64encode
from atlas_log.checkpoint import open_checkpoint, succession
from atlas_log.errors import FormatError, InconsistentLogError, ProofError, VerificationError
from atlas_log.merkle import leaf_hash, verify_consistency, verify_inclusion
from atlas_log.note import Verifier
from atlas_log.replay import Trust, check_entry, collateral_from_json

__all__ = ["EVIDENCE_TYPE", "evidence_from_error", "verify_evidence"]

EVIDENCE_TYPE = "atlas-log/evidence/v1"


def evidence_from_error(err: InconsistentLogError, verifier: Verifier, kind: str = "inconsistent") -> dict[str, Any]:
    return {
        "type": EVIDENCE_TYPE,
        "kind": kind,
        "log": verifier.vkey,
        "reason": err.reason,
        "checkpoints": [err.old_checkpoint.decode(), err.new_checkpoint.decode()],
        "proof": [b64encode(h) for h in err.proof],
    }


def verify_evidence(evidence: Any, vkey: str | None = None, trust: Trust | None = None) -> str:
    """Check evidence offline; return a sentence saying what it proves, or raise :class:`VerificationError`.

    ``vkey`` pins the log's key; by default the key named in the evidence is used (and reported). ``trust``
    (TDX and X.509 roots) is what an entry's quote and certificates are re-verified against; by default
    Intel's root.
    """
    try:
        if evidence["type"] != EVIDENCE_TYPE:
            raise FormatError(f"not {EVIDENCE_TYPE} evidence")
        verifier = Verifier.from_vkey(vkey or evidence["log"])
        if evidence.get("kind") == "bad-entry":
            return _bad_entry(evidence, verifier, trust or Trust())
        a_note, b_note = (c.encode() for c in evidence["checkpoints"])
        proof = [b64decode(h, "proof") for h in evidence.get("proof", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"malformed evidence: {exc}") from exc
    a, b = open_checkpoint(a_note, verifier), open_checkpoint(b_note, verifier)
    first, second = (a, b) if a.size <= b.size else (b, a)
    if a.size == b.size:
        if a.root_hash == b.root_hash:
            raise VerificationError("both checkpoints state the same tree: no misbehaviour shown")
        return f"log {verifier.name} signed two different trees of size {a.size}"
    if b.size < a.size and evidence.get("kind") == "rollback":
        return f"log {verifier.name} rolled back from size {a.size} to {b.size} (if both were served in that order)"
    if succession(first) is not None and second.size > first.size:
        return f"log {verifier.name} declared itself frozen at size {first.size} and then signed size {second.size}"
    try:
        verify_consistency(first.size, second.size, proof, first.root_hash, second.root_hash)
    except ProofError as exc:
        return (
            f"log {verifier.name} signed trees of sizes {first.size} and {second.size} that the supplied proof "
            f"does not join ({exc}); ask the log for a valid proof, which cannot exist for a fork"
        )
    raise VerificationError("the supplied proof joins the two checkpoints: no misbehaviour shown")


def _bad_entry(evidence: dict[str, Any], verifier: Verifier, trust: Trust) -> str:
    """Evidence of an entry the log committed to that does not verify: the signed checkpoint, the leaf with
    its inclusion proof, the submission the log served for it, and the collateral it names."""
    checkpoint = open_checkpoint(evidence["checkpoints"][0].encode(), verifier)
    e = evidence["entry"]
    index, leaf = e["logIndex"], b64decode(e["leaf"], "leaf")
    if not isinstance(index, int) or isinstance(index, bool):
        raise FormatError("entry.logIndex must be an integer")
    proof = [b64decode(h, "proof") for h in e["inclusionProof"]]
    verify_inclusion(leaf_hash(leaf), index, checkpoint.size, proof, checkpoint.root_hash)
    coll = collateral_from_json(e["collateral"]) if e.get("collateral") else None
    checked = check_entry(
        index,
        leaf,
        b64decode(e["submission"], "submission"),
        lambda digest: coll if coll is not None and coll.digest == digest else None,
        trust,
    )
    if checked.problem is None:
        raise VerificationError(
            f"entry {index} verifies on its own; the stated reason ({evidence.get('reason')}) depends on other "
            "entries (check them with `atlas-log history`)"
        )
    return (
        f"log {verifier.name} committed, in its tree of size {checkpoint.size}, to an entry that does not "
        f"verify: {checked.problem}"
    )
