"""Receipts: what the log returns for an admitted entry, verifiable offline.

JSON form (binary fields standard base64)::

    {"entryId": hex, "logIndex": int, "leafHash": b64, "leaf": b64,
     "inclusionProof": {"logIndex": int, "treeSize": int, "hashes": [b64, ...]},
     "checkpoint": "<signed note text>"}

:func:`verify_receipt` checks, with no I/O: the checkpoint's signature under the log's verifier key, that
the leaf hashes to ``leafHash``, and that the inclusion proof leads from that leaf to the checkpoint's root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from atlas_log._encoding import b64decode, b64encode, hexdecode
from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.cosignature import CosignatureVerifier, verify_cosignatures
from atlas_log.entry import entry_id, legacy_entry_id, parse_leaf
from atlas_log.errors import FormatError, ProofError
from atlas_log.merkle import LeafHash, leaf_hash, verify_inclusion
from atlas_log.note import Verifier, parse_note

__all__ = ["Receipt", "verify_receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    entry_id: bytes
    log_index: int
    leaf_hash: LeafHash
    leaf: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes

    @classmethod
    def from_json(cls, obj: Any) -> Receipt:
        """Parse a receipt strictly; raise :class:`FormatError` on any deviation."""
        try:
            proof = obj["inclusionProof"]
            index, size, hashes = proof["logIndex"], proof["treeSize"], proof["hashes"]
            if not isinstance(index, int) or not isinstance(size, int) or not isinstance(hashes, list):
                raise TypeError("logIndex/treeSize must be integers and hashes a list")
            if obj["logIndex"] != index:
                raise FormatError("receipt logIndex differs from inclusionProof.logIndex")
            if not isinstance(obj["checkpoint"], str):
                raise TypeError("checkpoint must be the signed note text")
            return cls(
                entry_id=hexdecode(obj["entryId"], "entryId", 32),
                log_index=index,
                leaf_hash=LeafHash(b64decode(obj["leafHash"], "leafHash")),
                leaf=b64decode(obj["leaf"], "leaf"),
                tree_size=size,
                hashes=tuple(b64decode(h, "inclusionProof.hashes") for h in hashes),
                checkpoint=obj["checkpoint"].encode(),
            )
        except (KeyError, TypeError) as exc:
            raise FormatError(f"malformed receipt: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "entryId": self.entry_id.hex(),
            "logIndex": self.log_index,
            "leafHash": b64encode(self.leaf_hash),
            "leaf": b64encode(self.leaf),
            "inclusionProof": {
                "logIndex": self.log_index,
                "treeSize": self.tree_size,
                "hashes": [b64encode(h) for h in self.hashes],
            },
            "checkpoint": self.checkpoint.decode(),
        }


def verify_receipt(
    receipt: Receipt | dict[str, Any],
    vkey: str | Verifier,
    *,
    witnesses: Sequence[CosignatureVerifier] = (),
    quorum: int = 0,
) -> Checkpoint:
    """Verify a receipt offline against the log's verifier key; return the checkpoint it is proved against.

    With ``quorum > 0`` the checkpoint must also carry that many valid cosignatures from ``witnesses``.

    Raises :class:`~atlas_log.errors.FormatError` or :class:`~atlas_log.errors.VerificationError`.
    """
    r = receipt if isinstance(receipt, Receipt) else Receipt.from_json(receipt)
    verifier = vkey if isinstance(vkey, Verifier) else Verifier.from_vkey(vkey)
    cp = open_checkpoint(r.checkpoint, verifier)
    if quorum:
        verify_cosignatures(parse_note(r.checkpoint), witnesses, quorum)
    if cp.size != r.tree_size:
        raise ProofError(f"inclusion proof is for size {r.tree_size}, checkpoint is for size {cp.size}")
    if leaf_hash(r.leaf) != r.leaf_hash:
        raise ProofError("leaf does not hash to leafHash")
    body = parse_leaf(r.leaf).body
    # Receipts issued before the v2 identity carry the v1 entryId; either is a function of the leaf's body.
    if r.entry_id not in (entry_id(body), legacy_entry_id(body)):
        raise ProofError("entryId is not the identity of the leaf's body")
    verify_inclusion(r.leaf_hash, r.log_index, r.tree_size, list(r.hashes), cp.root_hash)
    return cp
