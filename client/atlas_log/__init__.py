"""Atlas Log client: verify what a transparency log for the ML lifecycle tells you.

>>> from atlas_log import verify_receipt
>>> # checkpoint = verify_receipt(json.load(open("receipt.json")), "origin+keyid+base64key")

Everything a verifier recomputes (Merkle proofs, signed notes, checkpoints, tiles, entries) is pure and
lives here; :class:`LogClient` fetches (retrying what is safe to retry) and calls them.
"""

from atlas_log.checkpoint import Checkpoint, open_checkpoint
from atlas_log.client import AsyncLogClient, LogClient
from atlas_log.errors import (
    Error,
    FormatError,
    InconsistentLogError,
    LogAPIError,
    LogProblemError,
    LogTimeoutError,
    LogUnreachableError,
    NotALogError,
    ProofError,
    RootMismatchError,
    SignatureError,
    VerificationError,
)
from atlas_log.note import Signer, Verifier
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.transport import RetryPolicy
from atlas_log.trusted_state import TrustedState

__version__ = "0.1.0"

__all__ = [
    "AsyncLogClient",
    "Checkpoint",
    "Error",
    "FormatError",
    "InconsistentLogError",
    "LogAPIError",
    "LogClient",
    "LogProblemError",
    "LogTimeoutError",
    "LogUnreachableError",
    "NotALogError",
    "ProofError",
    "Receipt",
    "RetryPolicy",
    "RootMismatchError",
    "SignatureError",
    "Signer",
    "TrustedState",
    "VerificationError",
    "Verifier",
    "__version__",
    "open_checkpoint",
    "verify_receipt",
]
