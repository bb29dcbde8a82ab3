"""The pipeline SDK: hash what a step read and wrote, describe it as a statement, sign it, attest it, submit
it, keep the receipt — in one call (:func:`record_step`), or piece by piece.

Hashing streams (constant memory for multi-GB files) and reports progress through an optional callback.
Quote providers: :class:`ConfigfsTsmProvider` (Linux ``/sys/kernel/config/tsm/report``: write the 64-byte
REPORTDATA to ``inblob``, read the quote from ``outblob``); for development, a simulated platform
(:mod:`atlas_log.testing.simulate`) quotes too. GPU evidence providers: :class:`NvattestGpuProvider`
(NVIDIA's attestation CLI), or for development a simulated GPU (:mod:`atlas_log.testing.simulated_gpu`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from atlas_log._encoding import json_loads
from atlas_log.client import LogClient
from atlas_log.disclosure import Disclosure, hides_digests, redact
from atlas_log.errors import Error, FormatError
from atlas_log.files import write_atomic
from atlas_log.gpu.evidence import GpuEvidence, parse_serialized_evidence
from atlas_log.intoto import DEPLOYMENT_V1, MODEL_SIGNING_V1, SLSA_V1, TEST_RESULT
from atlas_log.receipt import Receipt
from atlas_log.submission import (
    GpuEvidenceProvider,
    QuoteProvider,
    intoto_statement,
    signed_submission,
)
from atlas_log.tdx.binding import ZERO_NONCE

__all__ = [
    "ConfigfsTsmProvider",
    "GpuEvidenceProvider",
    "NvattestGpuProvider",
    "QuoteProvider",
    "deployment_statement",
    "evaluation_statement",
    "hash_file",
    "hash_tree",
    "model_digest",
    "model_statement",
    "record_step",
    "training_statement",
]

CHUNK = 1 << 20
Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def hash_file(path: str | Path, progress: Progress | None = None) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB chunks."""
    p = Path(path)
    total, done = p.stat().st_size, 0
    h = hashlib.sha256()
    with p.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return h.hexdigest()


def hash_tree(root: str | Path, ignore: Iterable[str] = (), progress: Progress | None = None) -> dict[str, str]:
    """SHA-256 of every regular file below ``root``, keyed by POSIX relative path, sorted by path."""
    base = Path(root)
    skip = set(ignore)
    files = sorted(
        p
        for p in base.rglob("*")
        if p.is_file() and not p.is_symlink() and not skip.intersection(p.relative_to(base).parts)
    )
    total = sum(p.stat().st_size for p in files)
    done = 0
    out: dict[str, str] = {}
    for p in files:
        size = p.stat().st_size

        def inner(d: int, _t: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + d, total)

        out[p.relative_to(base).as_posix()] = hash_file(p, inner)
        done += size
    return out


def model_digest(files: Mapping[str, str]) -> str:
    """The OpenSSF model-signing root digest: SHA-256 over the raw file digests in name order."""
    return hashlib.sha256(b"".join(bytes.fromhex(files[name]) for name in sorted(files))).hexdigest()


def _descriptor(name: str, digest: str, role: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "digest": {"sha256": digest}}
    if role:
        d["annotations"] = {"mlRole": role}
    return d


def training_statement(
    outputs: Mapping[str, str],
    inputs: Mapping[str, tuple[str, str | None]],
    *,
    build_type: str = "https://atlas-log.dev/ml/training/v1",
    builder: str,
    parameters: Mapping[str, Any] | None = None,
) -> bytes:
    """SLSA v1 provenance of a training or preprocessing step. ``outputs``: name → sha256; ``inputs``:
    name → (sha256, mlRole such as ``training-data``, ``base-model``, ``code``)."""
    return intoto_statement(
        list(outputs.items()),
        SLSA_V1,
        {
            "buildDefinition": {
                "buildType": build_type,
                "externalParameters": {
                    "inputs": [_descriptor(n, d, r) for n, (d, r) in inputs.items()],
                    **({"parameters": dict(parameters)} if parameters else {}),
                },
            },
            "runDetails": {"builder": {"id": builder}},
        },
    )


def model_statement(name: str, files: Mapping[str, str]) -> bytes:
    """A model-signing-compatible statement: subject = root digest, resources = the files."""
    return intoto_statement(
        [(name, model_digest(files))],
        MODEL_SIGNING_V1,
        {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": [{"name": n, "algorithm": "sha256", "digest": files[n]} for n in sorted(files)],
        },
    )


def evaluation_statement(
    model: tuple[str, str], data: Mapping[str, str], result: str, metrics: Mapping[str, Any] | None = None
) -> bytes:
    """An in-toto test-result statement: the evaluated model, the evaluation data, PASSED or FAILED."""
    return intoto_statement(
        [model],
        TEST_RESULT,
        {
            "result": result,
            "configuration": [_descriptor(n, d, "test-data") for n, d in data.items()],
            **({"metrics": dict(metrics)} if metrics else {}),
        },
    )


def deployment_statement(service: tuple[str, str], models: Mapping[str, str], environment: str) -> bytes:
    """Our deployment predicate: a service (subject) deploys models (inputs) in an environment."""
    return intoto_statement(
        [service],
        DEPLOYMENT_V1,
        {
            "models": [_descriptor(n, d, "model") for n, d in models.items()],
            "environment": environment,
        },
    )


@dataclass
class ConfigfsTsmProvider:
    """Quotes from the Linux configfs-tsm interface inside a TD.

    Uses (creating if needed) the entry ``<root>/<entry>``; the kernel's ``generation`` counter, when present,
    guards against another writer between our ``inblob`` write and ``outblob`` read.
    """

    root: Path = Path("/sys/kernel/config/tsm/report")
    entry: str = "atlas-log"

    def quote(self, report_data: bytes) -> bytes:
        if len(report_data) != 64:
            raise ValueError("REPORTDATA is 64 bytes")
        d = self.root / self.entry
        try:
            d.mkdir(exist_ok=True)
            for _ in range(3):
                before = self._generation(d)
                (d / "inblob").write_bytes(report_data)
                quote = (d / "outblob").read_bytes()
                after = self._generation(d)
                if before is None or after == before + 1:
                    return quote
        except OSError as exc:
            raise Error(f"configfs-tsm at {d} failed: {exc}") from exc
        raise Error(f"configfs-tsm at {d}: another process kept writing inblob")

    @staticmethod
    def _generation(d: Path) -> int | None:
        try:
            return int((d / "generation").read_text().strip())
        except (OSError, ValueError):
            return None


@dataclass
class NvattestGpuProvider:
    """GPU evidence from NVIDIA's attestation CLI (``nvattest collect-evidence``, which reads every GPU of the
    confidential VM through the driver's NVML interface), for a given nonce.

    ``command`` is the command line before ``--nonce HEX``; it must print NVIDIA's JSON document (``evidences``,
    one per GPU, with ``result_code``). Raises :class:`~atlas_log.errors.Error` saying what to do when the tool
    is missing, fails, or prints something else.
    """

    command: Sequence[str] = ("nvattest", "collect-evidence", "--device", "gpu")
    timeout_s: float = 120.0

    def gpu_evidence(self, nonce: bytes) -> list[GpuEvidence]:
        exe = shutil.which(self.command[0])
        if exe is None:
            raise Error(
                f"{self.command[0]} (NVIDIA's attestation CLI) is not installed here, so no GPU evidence can be "
                "collected: install the NVIDIA Attestation CLI in the confidential VM with NVIDIA's driver, or "
                "record the step without GPU evidence"
            )
        argv = [exe, *self.command[1:], "--nonce", nonce.hex()]
        done = self._run(argv)
        answer = _document(done.stdout)
        if answer is None and "--format" not in argv:
            # Version 1.0 of the CLI prints text unless its --format option asks for JSON; later ones print JSON.
            asked = self._run([*argv, "--format", "json"])
            if (again := _document(asked.stdout)) is not None:
                argv, done, answer = [*argv, "--format", "json"], asked, again
        if answer is None:
            tail = (done.stderr or done.stdout).decode(errors="replace").strip()[-400:]
            raise Error(
                f"{' '.join(argv)} exited {done.returncode} without NVIDIA's JSON evidence document "
                f"(give a command that prints it, e.g. with --format json): {tail}"
            )
        if answer.get("result_code", 0) != 0 or done.returncode != 0:
            why = answer.get("result_message", answer.get("result_code"))
            raise Error(f"{' '.join(argv)} could not collect GPU evidence: {why}")
        return parse_serialized_evidence(done.stdout, "nvattest's evidence")

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Error(f"{' '.join(argv)} failed: {exc}") from exc


def _document(output: bytes) -> dict[str, Any] | None:
    """The NVIDIA Attestation CLI's JSON document (an object with ``evidences``) in ``output``, or None."""
    try:
        answer: Any = json.loads(output)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and "evidences" in answer else None


def record_step(
    client: LogClient,
    key: Ed25519PrivateKey,
    statement: bytes,
    provider: QuoteProvider | None,
    *,
    receipt_path: str | Path | None = None,
    nonce: bytes = ZERO_NONCE,
    confidential: Sequence[str] = (),
    gpus: GpuEvidenceProvider | None = None,
) -> Receipt:
    """Sign ``statement``, attest it (a quote bound to it and this key), submit it, verify and save the receipt.

    With ``gpus`` (:class:`NvattestGpuProvider` on a confidential VM with NVIDIA GPUs, or a simulated GPU),
    the evidence of every GPU is attached under the composite binding: each GPU's report is made for this
    entry, and the quote commits to the reports.

    ``confidential`` names fields to keep private (:func:`~atlas_log.disclosure.redact` paths, such as
    ``predicate.buildDefinition.externalParameters.dataset``): they are replaced by salted digests before
    signing and quoting, and their values travel beside the envelope for the log to keep encrypted. A hidden
    artifact digest (``subject[0].digest``) gets its blinded twin under the tenant's blinding key, fetched
    with ``client``'s token, so the artifact still links in history and lineage for the tenant's grants.

    A step survives the log restarting under it: ``client`` resends the same submission while the log is
    unreachable or busy, within its retry policy, and the log answers a repeat with the existing receipt. The
    receipt file is written only once the receipt verified, atomically."""
    disclosures: tuple[Disclosure, ...] = ()
    if confidential:
        parsed = json_loads(statement, "statement")
        if not isinstance(parsed, dict):
            raise FormatError("only a JSON statement can keep fields confidential")
        blinding = client.blinding_key() if hides_digests(confidential) else None
        redacted, disclosures = redact(parsed, confidential, blinding_key=blinding)
        statement = json.dumps(redacted, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    if gpus is not None and provider is None:
        raise Error("GPU evidence is bound to an entry through a TDX quote: give a quote provider too")
    submission = signed_submission(key, statement, provider, nonce, disclosures=disclosures, gpus=gpus)
    receipt = client.submit(submission)
    if receipt_path is not None:
        path = Path(receipt_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(receipt.to_json(), indent=2).encode(), mode=0o644)
    return receipt
