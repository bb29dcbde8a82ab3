"""The one exception family of :mod:`atlas_log`.

::

    Error
    ├── FormatError                  malformed input: bad base64, bad note, bad checkpoint text, bad JSON
    │   ├── SubmissionError          a submission is not admissible; ``code`` names the failed step
    │   └── GpuEvidenceError         GPU attestation evidence or a RIM is malformed; ``code`` names which
    ├── VerificationError            input parsed, but does not prove what it claims
    │   ├── ProofError               an inclusion or consistency proof failed
    │   │   └── RootMismatchError    carries the expected and the calculated root
    │   ├── SignatureError           a note or DSSE signature did not verify
    │   ├── QuoteError               a TDX quote was rejected; ``code`` names the failed check
    │   ├── ReceiptMismatchError     a valid receipt, but for another entry than the one submitted
    │   └── InconsistentLogError     two signed checkpoints no consistency proof joins (evidence)
    ├── LogAPIError                  the log answered an HTTP request with an error or garbage
    │   ├── LogProblemError          the log answered with a problem (RFC 9457): its title and detail
    │   ├── NotALogError             the URL answered, but not as an Atlas log (an HTML page, another service)
    │   ├── LogUnreachableError      no connection to the log's URL
    │   └── LogTimeoutError          the log did not answer in time
    └── CollateralFetchError         Intel PCS (or a PCCS) did not deliver collateral

Foreign exceptions (``binascii.Error``, ``ValueError``, ``InvalidSignature``, ``httpx.HTTPError``) are
caught where they arise and re-raised as one of these with ``raise ... from``.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "CollateralFetchError",
    "Error",
    "FormatError",
    "GpuEvidenceError",
    "InconsistencyKind",
    "InconsistentLogError",
    "LogAPIError",
    "LogProblemError",
    "LogTimeoutError",
    "LogUnreachableError",
    "NotALogError",
    "ProofError",
    "QuoteError",
    "ReceiptMismatchError",
    "RootMismatchError",
    "SignatureError",
    "SubmissionError",
    "VerificationError",
]


class Error(Exception):
    """Root of every exception :mod:`atlas_log` raises on purpose."""


class FormatError(Error):
    """Input does not follow the format it claims (strict parsing failed)."""


class SubmissionError(FormatError):
    """A submission (``POST /api/v1/entries`` body) is not admissible.

    ``code`` is the stable problem type the log answers with (for example ``signature-invalid``); the
    message says what to fix. Signature and certificate failures are among them: what is rejected is the
    submission as a whole.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GpuEvidenceError(FormatError):
    """GPU attestation evidence (an SPDM report, its certificate chain, a serialized evidence file) or a RIM
    is malformed, so no verdict can be reached.

    ``code`` is the stable verdict code of the input that failed to parse: ``parse_error`` for the evidence,
    ``driver_rim_parse_error`` / ``vbios_rim_parse_error`` / ``rim_parse_error`` for a RIM.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class VerificationError(Error):
    """Input is well formed but does not verify."""


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof is invalid."""


class RootMismatchError(ProofError):
    """The proof is well formed but leads to a different root than the one expected."""

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")
        self.expected = expected
        self.calculated = calculated


class SignatureError(VerificationError):
    """A signature did not verify, or no signature from a trusted key was found."""


class QuoteError(VerificationError):
    """A TDX quote (or the collateral it was checked against) was rejected.

    ``code`` is a stable identifier of the failed check (for example ``pck-revoked``); the message says
    what failed in words.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ReceiptMismatchError(VerificationError):
    """The log answered a submission with a receipt (possibly valid on its own), or served a submission, whose
    leaf is not the entry built from that submission: ``field`` names what differs, ``evidence`` holds the
    receipt (JSON) or the leaf as received."""

    def __init__(self, field: str, message: str, evidence: bytes) -> None:
        super().__init__(f"the entry is not the one built from the submission: {message}")
        self.field = field
        self.evidence = evidence


InconsistencyKind = Literal["rollback", "fork", "frozen", "empty-root", "proof"]
"""How two signed checkpoints contradict each other: the newer is smaller (``rollback``), two roots for one
size (``fork``), growth after the log declared itself frozen (``frozen``), an empty tree with another root
(``empty-root``), or a consistency proof that does not join them (``proof``)."""


class InconsistentLogError(VerificationError):
    """Two checkpoints signed by the log cannot both be true.

    ``kind`` says how (:data:`InconsistencyKind`); ``reason`` says it in words. The other attributes are
    portable evidence: both signed notes exactly as received and the proof hashes the log supplied (empty
    when the log refused to give one).
    """

    def __init__(
        self,
        kind: InconsistencyKind,
        reason: str,
        old_checkpoint: bytes,
        new_checkpoint: bytes,
        proof: list[bytes],
    ) -> None:
        super().__init__(f"log is inconsistent: {reason}")
        self.kind: InconsistencyKind = kind
        self.reason = reason
        self.old_checkpoint = old_checkpoint
        self.new_checkpoint = new_checkpoint
        self.proof = proof


class LogAPIError(Error):
    """The log's HTTP API returned an error status or an unparseable answer."""

    def __init__(self, message: str, status: int | None = None, problem_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem_type = problem_type


class LogProblemError(LogAPIError):
    """The log refused a request with an RFC 9457 problem: ``title`` and ``detail`` say why in words,
    ``problem_type`` names the failure stably; ``retry_after`` (seconds) is set when the log said when to retry."""

    def __init__(
        self,
        message: str,
        status: int,
        problem_type: str | None,
        title: str,
        detail: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status, problem_type)
        self.title = title
        self.detail = detail
        self.retry_after = retry_after


class NotALogError(LogAPIError):
    """The URL answered, but not as an Atlas log would: an HTML page, or an error of another service."""


class LogUnreachableError(LogAPIError):
    """No connection could be made to the log; the message names the URL tried."""


class LogTimeoutError(LogAPIError):
    """The log accepted the connection but did not answer in time; the message names the URL."""


class CollateralFetchError(Error):
    """A collateral request failed; ``retry_after`` (seconds) is set when the service said when to retry."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
