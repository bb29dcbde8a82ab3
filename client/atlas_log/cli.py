"""``atlas-log``: the command-line client.

The log's options (``--server``, ``--vkey``, the witness policy, timeouts, ``--json``) are the tool's own:
they may stand before or after the command, as ``git`` and ``kubectl`` take theirs, and come from environment
variables too (``--help`` names them). Everything a user can get wrong ends in one line on stderr and a
non-zero exit, never a traceback; results go to stdout, as tables and trees for a person and as stable JSON
with ``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.exceptions import TyperException

from atlas_log import __version__
from atlas_log._encoding import JSON_LIMITS, b64decode, b64encode, json_loads
from atlas_log.bundle import CODE_SIGNING, parse_bundle
from atlas_log.cli_output import Output, add, counted, inert, one_line, render_json, tree, verdict_text, when
from atlas_log.client import AsyncLogClient, LogClient
from atlas_log.disclosure import Disclosure, hides_digests, redact, verify_disclosures
from atlas_log.dsse import PublicKey, sign_envelope
from atlas_log.errors import Error, FormatError, LogUnreachableError, SubmissionError
from atlas_log.history import EVALUATION_DATA
from atlas_log.monitor import DEFAULT_MAP_MAX_LAG_S
from atlas_log.note import Verifier, parse_note
from atlas_log.receipt import Receipt, verify_receipt
from atlas_log.submission import build_submission, signed_submission, spki_der, tdx_tee
from atlas_log.tdx.binding import payload_report_data
from atlas_log.transport import RetryPolicy

if TYPE_CHECKING:
    from atlas_log.answers import LoggedEntry, LogInfo
    from atlas_log.cosignature import CosignatureVerifier
    from atlas_log.history import VerifiedHistory
    from atlas_log.reverify import Trust
    from atlas_log.testing.simulate import SimulatedPlatform

DEFAULT_SERVER = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 30.0
MAX_ENTRY_EVIDENCE = 10

# The tool's own options, hoisted in front of the command wherever they stand: name -> takes a value.
GLOBAL_OPTIONS = {
    "--server": True,
    "--vkey": True,
    "--witness": True,
    "--quorum": True,
    "--timeout": True,
    "--deadline": True,
    "--json": False,
}


class CliError(Exception):
    """A mistake the user can fix: shown as one line, exit status ``status``."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Options:
    """The tool's own options (see the module docstring), and the output streams."""

    server: str = DEFAULT_SERVER
    vkey: str | None = None
    witnesses: list[str] = field(default_factory=list)
    quorum: int | None = None
    timeout_s: float | None = None  # None: the command's own default
    deadline_s: float | None = None
    json: bool = False
    ui: Output = field(default_factory=Output)

    def network(self, default_timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """Each attempt's timeout (``--timeout``, else the command's default) and the overall deadline of a
        request, retries included (0: send once)."""
        options: dict[str, Any] = {"timeout_s": self.timeout_s or default_timeout_s}
        if self.deadline_s is not None:
            options["retry"] = RetryPolicy(deadline_s=self.deadline_s)
        return options

    def witness_policy(self) -> dict[str, Any]:
        from atlas_log.cosignature import CosignatureVerifier

        witnesses: list[CosignatureVerifier] = []
        for w in self.witnesses:
            try:
                witnesses.append(CosignatureVerifier.from_vkey(w))
            except Error as exc:
                raise CliError(f"--witness {w[:40]}…: {exc}") from exc
        quorum = self.quorum if self.quorum is not None else len(witnesses)
        if quorum > len(witnesses):
            raise CliError(f"--quorum {quorum} needs at least that many --witness keys (given {len(witnesses)})")
        return {"witnesses": witnesses, "quorum": quorum}

    def verifier(self) -> Verifier:
        """The pinned key, or (with a warning) the one the server announces."""
        if self.vkey:
            try:
                return Verifier.from_vkey(self.vkey)
            except Error as exc:
                raise CliError(f"--vkey is not a verifier key: {exc}") from exc
        with LogClient(self.server, None, **self.network()) as keyless:
            key = keyless.log_info().verifier_key
        self.unpinned(key)
        return Verifier.from_vkey(key)

    def unpinned(self, key: str) -> None:
        """Warn that answers are checked against ``key``, which the server announced and nobody pinned."""
        self.ui.note(f"warning: trusting the key the server announced ({key}); pin it with --vkey", "yellow")

    def client(self, state_file: Path | None = None, token: str | None = None) -> LogClient:
        return LogClient(
            self.server,
            self.verifier(),
            state_file=state_file,
            token=token,
            **self.witness_policy(),
            **self.network(),
        )

    def emit(self, value: Any) -> None:
        """Machine output: one JSON document on stdout."""
        sys.stdout.write(render_json(value) + "\n")


app = typer.Typer(
    name="atlas-log",
    help="Atlas Log client: submit, look up and verify entries of a transparency log for ML provenance.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
tdx_app = typer.Typer(help="Intel TDX quote tools.", no_args_is_help=True)
app.add_typer(tdx_app, name="tdx")
gpu_app = typer.Typer(help="NVIDIA GPU attestation tools.", no_args_is_help=True)
app.add_typer(gpu_app, name="gpu")


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"atlas-log {__version__}\n")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    server: Annotated[
        str, typer.Option(envvar="ATLAS_LOG_URL", help="the log's URL", show_envvar=True)
    ] = DEFAULT_SERVER,
    vkey: Annotated[
        str | None,
        typer.Option(
            envvar="ATLAS_LOG_VKEY",
            help="the log's verifier key (pin it: without it the server's own key is trusted, with a warning)",
            show_envvar=True,
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            envvar="ATLAS_LOG_WITNESSES",
            help="a witness's cosigner key you trust (repeat; the variable holds them space-separated)",
            show_envvar=True,
        ),
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(
            envvar="ATLAS_LOG_QUORUM",
            min=0,
            help="cosignatures of --witness keys every checkpoint needs (default: all given)",
            show_envvar=True,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            envvar="ATLAS_LOG_TIMEOUT",
            min=0.1,
            max=3600,
            help=f"seconds each attempt may take (default: {DEFAULT_TIMEOUT_S:g}; demo: 60)",
            show_envvar=True,
        ),
    ] = None,
    deadline: Annotated[
        float | None,
        typer.Option(
            envvar="ATLAS_LOG_RETRY_DEADLINE",
            min=0,
            max=86400,
            help="seconds a request may take, retries included (0: send once) (default: the client's retry policy)",
            show_envvar=True,
        ),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", envvar="ATLAS_LOG_JSON", help="machine output: one JSON document on stdout")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    vkey = vkey.strip() if vkey else vkey  # pasted with the spaces or newline around it
    if vkey:
        try:
            Verifier.from_vkey(vkey)  # checked here, once, naming where it came from
        except Error as exc:
            source = ctx.get_parameter_source("vkey")
            given = "ATLAS_LOG_VKEY" if source is not None and source.name == "ENVIRONMENT" else "--vkey"
            raise CliError(f"{given} is not a verifier key{_placeholder_hint(vkey)}: {exc}") from exc
    ctx.obj = Options(_log_url(server), vkey, list(witness or []), quorum, timeout, deadline, json_out)


def _placeholder_hint(value: str) -> str:
    """A hint when ``value`` is still a documentation placeholder (``<…>``) rather than the value it stands for."""
    if re.search(r"[<>‹›…]", value):
        return " (it still holds a placeholder: put the value make run printed in its place)"
    return ""


def _log_url(url: str) -> str:
    """The log's base URL, also when given with a trailing slash or the ``/api/v1`` of an API address."""
    base = url.rstrip("/")
    return base.removesuffix("/api/v1") if base.endswith("/api/v1") else base


def _opts(ctx: typer.Context) -> Options:
    obj = ctx.find_object(Options)
    assert obj is not None  # set by the callback
    return obj


# --- files a user names -------------------------------------------------------------------------------------


def _read(path: str | Path, what: str = "file") -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise CliError(f"no such {what}: {path}") from exc
    except IsADirectoryError as exc:
        raise CliError(f"{path} is a folder, not a {what}") from exc
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json_loads(_read(path, what), str(path))
    except Error as exc:
        raise CliError(f"{path} is not a {what}: {exc}") from exc


_BEARER = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 §2.1 b64token: what an Authorization header can carry


def _hidden_count(committed: dict[str, Any]) -> int:
    """How many values the committed statement hides (salted digests standing for them); 0 if it is no JSON."""
    from atlas_log.disclosure import hidden_digests

    try:
        payload = b64decode(committed["dsseEnvelope"]["payload"], "payload")
        return len(hidden_digests(json_loads(payload, "statement")))
    except (Error, KeyError, TypeError):
        return 0


def _not_a_receipt(payload: bytes, path: str) -> None:
    """Refuse a file of the log's own making given as a statement to sign (a receipt or a disclosure file
    beside the statement): signing it would log the log's answer as provenance."""
    try:
        obj = json_loads(payload, path)
    except Error:
        return  # not JSON: a payload of another kind, judged by the log
    if isinstance(obj, dict) and "_type" not in obj and {"checkpoint", "inclusionProof"} <= obj.keys():
        raise CliError(f"{path} is a receipt (or disclosure file) the log gave, not a statement: give the statement")


def _token(token_file: str | None) -> str | None:
    """The bearer token: ``--token-file``, else ``ATLAS_LOG_TOKEN`` (never a plain argument: it would show in
    the process list). What is not a bearer token is refused here, without quoting it: the wrong file (a
    private key beside the token files) must not be echoed into a terminal or a log."""
    if token_file:
        text, source = _read(token_file, "token file").decode("utf-8", "replace").strip(), token_file
    else:
        text, source = os.environ.get("ATLAS_LOG_TOKEN", "").strip(), "ATLAS_LOG_TOKEN"
        if not text:
            return None
    if not text:
        raise CliError(f"{source} is empty: it should hold the token the admin API gave (atl_<id>_<secret>)")
    if not _BEARER.fullmatch(text):
        what = "a PEM key or certificate" if text.startswith("-----BEGIN") else "something else"
        raise CliError(
            f"{source} does not hold a bearer token (one line such as atl_<id>_<secret>, as the admin API gave "
            f"it); it holds {what}"
        )
    return text


def load_private_key(path: str, password_file: str | None = None) -> Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    """A PEM signing key (Ed25519 or ECDSA); an encrypted one is opened with ``password_file`` or, on a
    terminal, a passphrase typed at the prompt. Raises :class:`CliError` saying what to give instead."""
    data = _read(path, "key file")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise CliError(f"{path} holds a public key; --key needs the private key that signs (PEM PRIVATE KEY)")
    password = _read(password_file, "password file").rstrip(b"\r\n") if password_file else None
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError as exc:  # encrypted without a password given, or a password for a plain key
        if password is not None:
            raise CliError(f"{path} is not encrypted: leave out --key-password-file") from exc
        if not sys.stdin.isatty():
            raise CliError(f"{path} is encrypted: give its passphrase with --key-password-file FILE") from exc
        typed = typer.prompt(f"Passphrase for {path}", hide_input=True)
        try:
            key = serialization.load_pem_private_key(data, typed.encode())
        except ValueError as exc2:
            raise CliError(f"the passphrase does not open {path}") from exc2
    except ValueError as exc:
        if password is not None:
            raise CliError(f"{path} does not open with that passphrase, or is not a PEM private key") from exc
        raise CliError(f"{path} is not a PEM private key: {one_line(exc)}") from exc
    except Exception as exc:  # an unsupported algorithm is its own exception type
        raise CliError(f"{path} is not a key this tool signs with: {one_line(exc)}") from exc
    if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise CliError(f"{path}: the signing key must be Ed25519 or ECDSA P-256/P-384")
    return key


def _data_dir() -> Path:
    """Where the development server keeps its files: ``ATLAS_DATA_DIR`` (as the server reads it)."""
    return Path(os.environ.get("ATLAS_DATA_DIR") or ".atlas-log")


def _platform(folder: str | None) -> SimulatedPlatform | None:
    """The simulated TDX platform to quote with: ``folder``, else the development server's (in its data dir)."""
    from atlas_log.testing.simulate import SimulatedPlatform

    where = Path(folder) if folder else _data_dir() / "simulated-tdx"
    if (where / "platform.json").exists():
        return SimulatedPlatform.load(where)
    if folder:
        raise CliError(f"no simulated TDX platform in {where} (the development server makes one in its data dir)")
    return None


class _SimulatedMachine:
    """``count`` simulated GPUs of one machine: the development server's GPU and siblings under its roots."""

    def __init__(self, count: int) -> None:
        from atlas_log.testing.simulated_gpu import SimulatedGpu

        where = _data_dir() / "simulated-gpu"
        try:
            first = SimulatedGpu.load(where)
        except (OSError, ValueError, KeyError) as exc:
            raise CliError(
                f"no simulated GPU in {where} (the development server makes one in its data dir; "
                "set ATLAS_DATA_DIR to the server's)"
            ) from exc
        self.gpus = [first, *(first.sibling() for _ in range(count - 1))]

    def gpu_evidence(self, nonce: bytes) -> list[Any]:
        return [g.evidence(nonce) for g in self.gpus]


def _quote_provider(simulated_platform: str | None, configfs_tsm: bool, no_quote: bool) -> Any:
    from atlas_log.pipeline import ConfigfsTsmProvider
    from atlas_log.testing.simulate import SimulatedProvider

    if no_quote:
        return None
    if configfs_tsm:
        return ConfigfsTsmProvider()
    platform = _platform(simulated_platform)
    if platform is None:
        raise CliError(
            f"no TDX quote source: no simulated platform in {_data_dir() / 'simulated-tdx'}; give "
            "--simulated-platform DIR (the development server's data dir holds simulated-tdx), --configfs-tsm "
            "inside a TD, or --no-quote to submit without one"
        )
    return SimulatedProvider(platform)


# --- the log's state ----------------------------------------------------------------------------------------


@app.command()
def checkpoint(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="trusted-state file: prove consistency with the last checkpoint seen")
    ] = None,
) -> int:
    """Fetch the latest checkpoint and verify its signature (and witnesses, under a witness policy)."""
    o = _opts(ctx)
    with o.client(Path(state) if state else None) as client, o.ui.waiting(f"asking {o.server}"):
        cp, note = client.checkpoint()
    if o.json:
        o.emit({"origin": cp.origin, "size": cp.size, "rootHash": b64encode(cp.root_hash), "note": note.decode()})
    else:
        sys.stdout.write(inert(note.decode()))  # verified, but its text is the log's to choose
    return 0


@app.command()
def get(ctx: typer.Context, index: Annotated[int, typer.Argument(min=0, help="the entry's index")]) -> int:
    """Fetch an entry, verify its inclusion in the latest checkpoint, and say what was verified.

    With --json: what the leaf proves under "verified"; whatever else the log served, under "unverified"."""
    from atlas_log.entry import entry_id
    from atlas_log.receipt import SubmittedEntry, split_submission, verify_leaf_for
    from atlas_log.vmap import MapCommitment

    o = _opts(ctx)
    with o.client() as client, o.ui.waiting(f"asking {o.server}"):
        logged = client.entry(index)  # proved included in the latest (trusted) checkpoint
    served, leaf, lh, cp, entry = logged.served, logged.leaf, logged.leaf_hash, logged.checkpoint, logged.entry
    if MapCommitment.is_commitment(entry.body) or MapCommitment.is_earlier_format(entry.body):
        return _show_commitment(o, index, logged)
    verified: dict[str, Any] = {
        "leafHash": b64encode(lh),
        "entryId": entry_id(entry.body).hex(),
        "entry": {"body": entry.body, "integratedTime": entry.integrated_time, "links": entry.links},
        "inclusion": {"treeSize": cp.size, "rootHash": b64encode(cp.root_hash)},
    }
    # What the log says beside the leaf is shown as verified only where it equals what the leaf proves.
    proved = {
        "logIndex": index,
        "leaf": served["leaf"],
        "leafHash": verified["leafHash"],
        "entryId": verified["entryId"],
        "integratedTime": entry.integrated_time,
    }
    unverified = {k: v for k, v in served.items() if k != "submission" and (k not in proved or proved[k] != v)}
    submission = served.get("submission")
    statement_ok: str | None = None
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
            statement_ok = "the statement served is the one the leaf commits to"
            hidden = _hidden_count(committed)
            if hidden:
                statement_ok += (
                    f"; it hides {counted(hidden, 'value')} (atlas-log disclose {index} --out FILE, with the "
                    "tenant's token or a grant, reads them)"
                )
        except Error as exc:
            unverified["submission"] = submission
            unverified["submissionMismatch"] = str(exc)
    if o.json:
        o.emit({"logIndex": index, "verified": verified, "unverified": unverified})
        return 0
    body = entry.body
    ix: dict[str, Any] = body["index"] if isinstance(body.get("index"), dict) else {}
    tee: dict[str, Any] = body["tee"] if isinstance(body.get("tee"), dict) else {}
    table = o.ui.table("", "verified", title=f"entry #{index}: included in the log's tree of size {cp.size}")
    table.add_row("integrated", when(entry.integrated_time))
    table.add_row("statement", str(ix.get("predicateType") or body.get("payloadType") or "-"))
    for role in ("subjects", "materials"):
        for digest in ix.get(role) or []:
            table.add_row(role[:-1], str(digest))
    for s in body.get("signatures") or []:
        table.add_row("signer", f"sha256:{s.get('verifier', {}).get('spkiSha256', '?')}")
    if tee:
        table.add_row("TEE", _tee_line(tee))
        for i, gpu in enumerate(tee.get("gpus") or []):
            table.add_row(f"GPU {i}", _gpu_line(gpu) + (" (simulated GPU)" if tee.get("simulated") else ""))
    table.add_row("entry ID", verified["entryId"])
    table.add_row("leaf hash", lh.hex())  # hex, as the explorer shows it (the JSON keeps base64)
    o.ui.show(table)
    if statement_ok:
        o.ui.line(statement_ok)
    if unverified:
        o.ui.line(f"not verified (said by the log, not proved by the leaf): {', '.join(sorted(unverified))}", "yellow")
    o.ui.note("the whole entry: atlas-log get --json " + str(index))
    return 0


def _show_commitment(o: Options, index: int, logged: LoggedEntry) -> int:
    """``get`` of one of the log's own entries: a commitment of its verifiable map (its entry body is its
    submission; an earlier format's proves nothing)."""
    from atlas_log.vmap import MapCommitment

    served, lh, cp, entry = logged.served, logged.leaf_hash, logged.checkpoint, logged.entry

    commitment = MapCommitment.from_body(entry.body) if MapCommitment.is_commitment(entry.body) else None
    verified: dict[str, Any] = {
        "leafHash": b64encode(lh),
        "entryId": None if commitment is None else commitment.entry_id.hex(),
        "entry": {"body": entry.body, "integratedTime": entry.integrated_time, "links": entry.links},
        "inclusion": {"treeSize": cp.size, "rootHash": b64encode(cp.root_hash)},
    }
    proved = {"logIndex": index, "leaf": served.get("leaf"), "leafHash": verified["leafHash"]}
    proved |= {"entryId": verified["entryId"], "integratedTime": entry.integrated_time, "submission": entry.body}
    unverified = {k: v for k, v in served.items() if k not in proved or proved[k] != v}
    if o.json:
        o.emit({"logIndex": index, "verified": verified, "unverified": unverified})
        return 0
    table = o.ui.table("", "verified", title=f"entry #{index}: included in the log's tree of size {cp.size}")
    table.add_row("integrated", when(entry.integrated_time))
    if commitment is None:
        table.add_row("statement", "the log's own map commitment, of an earlier format that proves nothing")
    else:
        table.add_row("statement", "the log's own commitment of its verifiable map (no submission)")
        entries, keys = counted(commitment.tree_size, "entry", "entries"), counted(commitment.keys, "artifact")
        covers = f"the first {entries}: {keys}"
        table.add_row("covers", covers)
        table.add_row("map root", commitment.root.hex())
        table.add_row("entry ID", verified["entryId"])
    table.add_row("leaf hash", verified["leafHash"])
    o.ui.show(table)
    if unverified:
        o.ui.line(f"not verified (said by the log, not proved by the leaf): {', '.join(sorted(unverified))}", "yellow")
    o.ui.note("a monitor's replay rebuilds the map from the entries and checks this root: atlas-log monitor --replay")
    return 0


def _tee_line(tee: dict[str, Any]) -> str:
    status = tee.get("tcbStatus") or tee.get("verdict") or "recorded"
    return f"Intel TDX, TCB {status}" + (" (simulated platform)" if tee.get("simulated") else "")


def _gpu_line(gpu: dict[str, Any]) -> str:
    """One GPU the entry's verdict records (``tee.gpus[]``): what it is and what was compared."""
    measured = "measurements match the RIMs" if gpu.get("measurements") == "matched" else "measurements not checked"
    return (
        f"NVIDIA {gpu.get('architecture') or '?'}, driver {gpu.get('driverVersion') or '?'}, "
        f"VBIOS {gpu.get('vbiosVersion') or '?'}, {measured}"
    )


@app.command()
def verify(
    ctx: typer.Context,
    receipts: Annotated[list[str], typer.Argument(help="receipt files (as submit --receipt and demo write)")],
) -> int:
    """Verify receipt files offline: the checkpoint's signature (and witnesses) and each entry's inclusion.

    Never contacts a server: give the log's key with --vkey."""
    o = _opts(ctx)
    if not o.vkey:
        raise CliError("verify works offline: give the log's verifier key with --vkey (or ATLAS_LOG_VKEY)")
    verifier = o.verifier()
    policy = o.witness_policy()
    results = []
    for path in receipts:
        try:
            obj = _read_json(path, "receipt")
            if isinstance(obj, dict) and "disclosures" in obj:
                raise CliError("this is a disclosure file, not a receipt: check it with verify-disclosure")
            receipt = Receipt.from_json(obj)
            cp = verify_receipt(receipt, verifier)
            _check_witnesses(policy, receipt.checkpoint)
            results.append({"file": path, "verified": True, "logIndex": receipt.log_index, "treeSize": cp.size})
        except (Error, CliError, ValueError, KeyError, TypeError) as exc:
            results.append({"file": path, "verified": False, "reason": one_line(exc)})
    if o.json:
        o.emit(results)
    else:
        for r in results:
            if r["verified"]:
                o.ui.line(f"OK   {r['file']}: entry {r['logIndex']} is in the log at size {r['treeSize']}")
            else:
                o.ui.line(f"FAIL {r['file']}: {r['reason']}")
    return 0 if all(r["verified"] for r in results) else 1


def _check_witnesses(policy: dict[str, Any], note: bytes) -> None:
    """The witness policy (``--witness``, ``--quorum``) applied to a checkpoint a file carries, offline: a
    file's checkpoint answers to it as one fetched from the log does."""
    from atlas_log.cosignature import verify_cosignatures

    if policy["quorum"]:
        verify_cosignatures(parse_note(note), policy["witnesses"], policy["quorum"], now=int(time.time()))


# --- submitting ---------------------------------------------------------------------------------------------


@app.command()
def submit(
    ctx: typer.Context,
    statement: Annotated[str | None, typer.Option(help="in-toto statement (or other payload) to sign")] = None,
    key: Annotated[str | None, typer.Option(help="PEM private key that signs (Ed25519 or ECDSA P-256/P-384)")] = None,
    key_password_file: Annotated[
        str | None, typer.Option(help="file holding the passphrase of an encrypted --key (else: asked)")
    ] = None,
    payload_type: Annotated[str, typer.Option(help="the DSSE payload type")] = "application/vnd.in-toto+json",
    bundle: Annotated[
        str | None, typer.Option(help="a Sigstore bundle (e.g. model.sig from model-signing) to submit as is")
    ] = None,
    public_key: Annotated[str | None, typer.Option(help="PEM public key of a key-signed bundle")] = None,
    simulated_platform: Annotated[
        str | None,
        typer.Option(help="simulated TDX platform folder (default: $ATLAS_DATA_DIR/simulated-tdx, .atlas-log's)"),
    ] = None,
    configfs_tsm: Annotated[
        bool, typer.Option("--configfs-tsm", help="quote with /sys/kernel/config/tsm inside a TD")
    ] = False,
    no_quote: Annotated[
        bool, typer.Option("--no-quote", help="submit without a TDX quote (the log may refuse it)")
    ] = False,
    receipt: Annotated[str | None, typer.Option(help="file to save the verified receipt in")] = None,
    confidential: Annotated[
        list[str] | None,
        typer.Option(
            metavar="PATH",
            help="a statement field to hide behind a salted digest (repeat), e.g. predicate.buildDefinition."
            "externalParameters.dataset or predicate.resources[*].name; the log keeps the values encrypted. A "
            "digest (subject[0].digest) gets a blinded twin under the tenant's key, so it still links",
        ),
    ] = None,
    token_file: Annotated[
        str | None, typer.Option(help="file holding the tenant's bearer token (default: $ATLAS_LOG_TOKEN)")
    ] = None,
    wait_witnessed: Annotated[
        bool,
        typer.Option(
            "--wait-witnessed",
            help="return once the entry's checkpoint carries the --quorum of --witness cosignatures",
        ),
    ] = False,
) -> int:
    """Sign a statement and submit it with a TDX quote, or submit an existing Sigstore bundle."""
    o = _opts(ctx)
    if wait_witnessed and not o.witnesses:
        raise CliError("--wait-witnessed needs the witnesses' keys: --witness VKEY (repeat) [--quorum N]")
    provider = _quote_provider(simulated_platform, configfs_tsm, no_quote)
    token = _token(token_file)
    if bundle:
        bundle_obj = _read_json(bundle, "Sigstore bundle")
        try:
            parsed = parse_bundle(bundle_obj)
        except Error as exc:
            raise CliError(f"{bundle} is not a Sigstore bundle: {exc}") from exc
        submission: dict[str, Any] = {"sigstoreBundle": bundle_obj}
        spki: bytes | None = None
        if public_key:
            pem = _read(public_key, "public key file").decode("ascii", "replace")
            submission["verificationMaterial"] = {"publicKeys": [{"pem": pem}]}
            try:
                spki = PublicKey.from_pem(pem).spki
            except Error as exc:
                raise CliError(f"{public_key} is not a PEM public key: {exc}") from exc
        elif parsed.chain:
            cert = x509.load_der_x509_certificate(parsed.chain[0])
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        if provider is not None and spki is not None:
            env = parsed.envelope
            submission["tee"] = tdx_tee(provider.quote(payload_report_data(env.payload_type, env.payload, spki)))
    else:
        if not (statement and key):
            raise CliError("give --statement FILE --key KEY.pem, or --bundle FILE [--public-key PEM]")
        signing_key = load_private_key(key, key_password_file)
        payload = _read(statement, "statement")
        _not_a_receipt(payload, statement)
        disclosures: tuple[Disclosure, ...] = ()
        if confidential:
            try:
                parsed_statement = json_loads(payload, statement)
            except Error as exc:
                raise CliError(f"{statement} is not JSON; --confidential needs a JSON statement: {exc}") from exc
            if not isinstance(parsed_statement, dict):
                raise CliError(f"{statement} is not a JSON statement; --confidential needs one")
            if token is None:
                o.ui.note(
                    "warning: no tenant token (--token-file or ATLAS_LOG_TOKEN): only the log's admin will read "
                    "the hidden values, not you nor your grants",
                    "yellow",
                )
            blinding = None
            if hides_digests(confidential):
                with LogClient(o.server, None, token=token, **o.network()) as keyed:
                    blinding = keyed.blinding_key()
            redacted, disclosures = redact(parsed_statement, confidential, blinding_key=blinding)
            payload = json.dumps(redacted, separators=(",", ":"), ensure_ascii=False).encode()
        if isinstance(signing_key, Ed25519PrivateKey):
            submission = signed_submission(signing_key, payload, payload_type=payload_type, disclosures=disclosures)
        else:
            submission = build_submission(sign_envelope(payload_type, payload, signing_key), [spki_der(signing_key)])
            if disclosures:
                submission["disclosures"] = [d.encoded for d in disclosures]
        if provider is not None:
            rd = payload_report_data(payload_type, payload, spki_der(signing_key))
            submission["tee"] = tdx_tee(provider.quote(rd))
    with o.client(token=token) as client, o.ui.waiting(f"submitting to {o.server}"):
        got = client.submit(submission)
    if receipt:
        Path(receipt).write_text(json.dumps(got.to_json(), indent=2))
    if o.json:
        o.emit({"logIndex": got.log_index, "treeSize": got.tree_size, "receipt": got.to_json()})
        return 0
    witnessed = f", witnessed by {o.witness_policy()['quorum']} witnesses" if wait_witnessed or o.quorum else ""
    # An identical submission is answered with the entry the log already holds: nothing new was logged.
    logged = "already logged (the same submission)" if got.created is False else "logged"
    o.ui.line(
        f"{logged} at index {got.log_index} (tree size {got.tree_size}); receipt verified{witnessed}"
        + (f", saved to {receipt}" if receipt else "")
    )
    return 0


@app.command()
def keygen(
    ctx: typer.Context,
    out: Annotated[
        str, typer.Option(help="the private key file to write (PEM, mode 0600); OUT.pub gets the public key")
    ],
    password_file: Annotated[str | None, typer.Option(help="encrypt the key with the passphrase in this file")] = None,
) -> int:
    """Make an Ed25519 signing key for a pipeline (the same as: openssl genpkey -algorithm ed25519 -out FILE)."""
    import hashlib

    from atlas_log.files import write_atomic

    o = _opts(ctx)
    path = Path(out)
    if path.exists():
        raise CliError(f"{path} exists: a key is never overwritten; choose another --out or remove it")
    key = Ed25519PrivateKey.generate()
    password = _read(password_file, "password file").rstrip(b"\r\n") if password_file else None
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(path, pem, mode=0o600)
    write_atomic(Path(f"{path}.pub"), public, mode=0o644)
    signer = "sha256:" + hashlib.sha256(spki_der(key)).hexdigest()
    if o.json:
        o.emit({"key": str(path), "publicKey": f"{path}.pub", "signer": signer})
    else:
        o.ui.line(f"wrote {path} (private, 0600) and {path}.pub")
        o.ui.line(f"entries it signs are found with: atlas-log search --signer {signer}")
    return 0


@app.command()
def demo(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, max=1_000_000, help="entries to submit")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=1024, help="submissions in flight")] = 16,
    receipts: Annotated[str | None, typer.Option(help="folder to save each receipt in")] = None,
    simulated_platform: Annotated[
        str | None, typer.Option(help="simulated TDX platform folder (default: $ATLAS_DATA_DIR/simulated-tdx)")
    ] = None,
    gpus: Annotated[
        int,
        typer.Option(
            min=0,
            max=8,
            help="simulated GPUs whose evidence each entry carries beside its quote (composite binding; "
            "the development server's, from $ATLAS_DATA_DIR/simulated-gpu)",
        ),
    ] = 0,
) -> int:
    """Submit COUNT distinct signed (and, with a simulated platform, attested) demo entries."""
    o = _opts(ctx)
    return asyncio.run(_demo(o, count, concurrency, receipts, simulated_platform, gpus))


async def _demo(
    o: Options, count: int, concurrency: int, receipts: str | None, folder: str | None, gpus: int = 0
) -> int:
    from atlas_log.testing.demo import demo_submission

    key = Ed25519PrivateKey.generate()
    platform = _platform(folder)
    async with AsyncLogClient(o.server, None, **o.network()) as keyless:
        info = await keyless.log_info()  # its word, read for what to do, never for what to trust
    missing = f"there is no simulated TDX platform in {_data_dir() / 'simulated-tdx'}"
    if platform is None and (gpus or info.attestation.get("allowUnattested") is False):
        why = "GPU evidence is bound through a TDX quote" if gpus else "this log admits only entries with a TDX quote"
        raise CliError(
            f"{why}, and {missing}: run demo from the folder `make run` started in (it holds .atlas-log/), or give "
            "--simulated-platform DIR (the development server's data dir holds simulated-tdx)"
        )
    if platform is None:
        o.ui.note(f"note: {missing}; submitting without quotes")
    machine = _SimulatedMachine(gpus) if gpus else None
    out = Path(receipts) if receipts else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    vkey = o.vkey
    if not vkey:
        vkey = info.verifier_key
        o.unpinned(vkey)
    started = time.monotonic()
    # A submission the log did not answer is sent again, byte for byte, until it is (the log deduplicates):
    # the demo keeps going through a restart of the log.
    with o.ui.progress("submitting", count) as bar:
        async with AsyncLogClient(o.server, vkey, **o.witness_policy(), **o.network(60)) as client:
            sem = asyncio.Semaphore(concurrency)
            done = 0
            indices: list[int] = []

            async def one(n: int) -> None:
                nonlocal done
                async with sem:
                    receipt = await client.submit(demo_submission(key, n, platform, gpus=machine))
                indices.append(receipt.log_index)
                if out:
                    path = out / f"receipt-{receipt.log_index:08d}.json"
                    path.write_text(json.dumps(receipt.to_json(), indent=2))
                done += 1
                bar.update(bar.task_ids[0], completed=done)

            await asyncio.gather(*(one(n) for n in range(count)))
    seconds = time.monotonic() - started
    indices.sort()
    if o.json:
        receipts = str(out) if out else None
        o.emit({"submitted": count, "seconds": round(seconds, 3), "receipts": receipts, "indices": indices})
    else:
        at = ", ".join(f"#{i}" for i in indices[:10]) + (f" … #{indices[-1]}" if len(indices) > 10 else "")
        o.ui.line(
            f"submitted {counted(count, 'entry', 'entries')} ({at}) in {seconds:.1f}s; every receipt verified"
            + (f"; saved to {out}" if out else "")
        )
    return 0


# --- confidential entries -----------------------------------------------------------------------------------


@app.command()
def disclose(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(min=0, help="the confidential entry's index")],
    out: Annotated[str, typer.Option(help="file to save the verified disclosures in (for verify-disclosure)")],
    token_file: Annotated[str | None, typer.Option(help="file holding the token (default: $ATLAS_LOG_TOKEN)")] = None,
) -> int:
    """A confidential entry's hidden values, for its tenant or a grant holder, verified and saved."""
    o = _opts(ctx)
    token = _token(token_file)
    if token is None:
        raise CliError("disclose needs the tenant's token or a grant: --token-file FILE or ATLAS_LOG_TOKEN")
    with o.client(token=token) as client, o.ui.waiting(f"asking {o.server}"):
        cp, note = client.checkpoint()
        disclosed = client.disclosures(index, cp)
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
    Path(out).write_text(json.dumps(record, indent=2))
    if o.json:
        o.emit(
            {
                "logIndex": index,
                "revealed": {p: d.value for p, d in disclosed.revealed.disclosed},
                "undisclosed": _undisclosed(disclosed.revealed),
                "saved": out,
            }
        )
        return 0
    _print_revealed(o, disclosed.revealed)
    o.ui.line(f"verified and saved to {out}; check it offline with: atlas-log verify-disclosure {out} --vkey …")
    return 0


def _print_revealed(o: Options, revealed: Any) -> None:
    for path, d in revealed.disclosed:
        o.ui.line(f"{path} = {json.dumps(d.value, ensure_ascii=False)}")
    withheld = _undisclosed(revealed)
    if withheld:
        o.ui.note(
            f"{counted(withheld, 'value')} the statement hides {'is' if withheld == 1 else 'are'} not disclosed "
            "here: what is shown is not all it hides",
            "yellow",
        )


def _undisclosed(revealed: Any) -> int:
    """How many values the statement still hides once ``revealed``'s disclosures are put back: what a log (or a
    file) left out, which a reader must not take for all there is."""
    from atlas_log.disclosure import hidden_digests

    return len(hidden_digests(revealed.statement))


@app.command("verify-disclosure")
def verify_disclosure(
    ctx: typer.Context, file: Annotated[str, typer.Argument(help="a file written by atlas-log disclose")]
) -> int:
    """Offline: the checkpoint's signature, the leaf's inclusion, the statement against the leaf, and each
    disclosure against the statement."""
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.entry import parse_leaf
    from atlas_log.merkle import leaf_hash, verify_inclusion

    o = _opts(ctx)
    if not o.vkey:
        raise CliError("verify-disclosure works offline: give the log's verifier key with --vkey")
    record = _read_json(file, "disclosure file")
    if isinstance(record, dict) and "disclosures" not in record and isinstance(record.get("inclusionProof"), dict):
        raise CliError(f"{file} is a receipt, not a disclosure file: check it with atlas-log verify {file}")
    if not isinstance(record, dict) or not isinstance(record.get("checkpoint"), str) or "disclosures" not in record:
        raise CliError(f"{file} is not a disclosure file: make one with atlas-log disclose INDEX --out FILE")
    checkpoint = open_checkpoint(record["checkpoint"].encode(), o.verifier())
    _check_witnesses(o.witness_policy(), record["checkpoint"].encode())
    leaf = b64decode(record.get("leaf", ""), "leaf")
    proof = [b64decode(h, "inclusionProof") for h in record.get("inclusionProof") or []]
    verify_inclusion(leaf_hash(leaf), record.get("logIndex", -1), checkpoint.size, proof, checkpoint.root_hash)
    revealed = verify_disclosures(parse_leaf(leaf).body, record.get("dsseEnvelope"), record.get("disclosures") or [])
    if o.json:
        o.emit(
            {
                "verified": True,
                "logIndex": record["logIndex"],
                "treeSize": checkpoint.size,
                "revealed": {p: d.value for p, d in revealed.disclosed},
                "undisclosed": _undisclosed(revealed),
            }
        )
        return 0
    _print_revealed(o, revealed)
    o.ui.line(
        f"verified: entry {record['logIndex']} is in the log's tree of size {checkpoint.size}, and each value "
        "is the one its signed statement commits to"
    )
    return 0


# --- looking things up --------------------------------------------------------------------------------------


def _looked_up(o: Options, client: LogClient, digest: str, hidden: bool) -> str:
    """The artifact to look up: the digest given, or with ``--hidden`` its blinded twin under the tenant's key
    (the tenant's token or a grant: entries that hide the digest are indexed by it)."""
    if not hidden:
        return digest
    blinded = client.hidden(digest)
    o.ui.note(
        f"{digest} is hidden in this tenant's entries as {blinded}: these are the entries hiding it (the entries "
        "naming it openly are found without --hidden)"
    )
    return blinded


def _hidden_token(hidden: bool, token_file: str | None) -> str | None:
    # A token goes only where it is needed (looking up hidden artifacts), never with every public read.
    if not hidden:
        return None
    token = _token(token_file)
    if token is None:
        raise CliError("--hidden needs the tenant's token or a grant: --token-file FILE or ATLAS_LOG_TOKEN")
    return token


HiddenOption = Annotated[
    bool,
    typer.Option(
        "--hidden",
        help="look up the entries that hide this digest (its blinded twin); needs the tenant's token or a grant",
    ),
]
TokenFileOption = Annotated[str | None, typer.Option(help="file holding the token (default: $ATLAS_LOG_TOKEN)")]


def _digest(text: str) -> str:
    from atlas_log.intoto import artifact_digest

    try:
        return artifact_digest(text)
    except FormatError as exc:
        raise typer.BadParameter(str(exc)) from exc


DigestArgument = Annotated[
    str, typer.Argument(help="the artifact's digest, <alg>:<hex> (e.g. sha256:…)", callback=_digest)
]


def _witnessed(client: LogClient) -> str:
    """How the answer's checkpoint was witnessed, under the client's policy ("" without one)."""
    if not client.quorum:
        return ""
    return f" (witnessed by at least {client.quorum} of {len(client.witnesses)} witnesses)"


def _named_by_nothing(o: Options, client: LogClient, found: VerifiedHistory) -> None:
    """An artifact's empty history, said plainly: an empty answer is an answer (it can be proved), but most often
    the digest was mistyped."""
    o.ui.line(f"{found.artifact}: no entry of this log names it (tree size {found.tree_size})", "yellow")
    if found.closure is not None and found.complete:
        o.ui.line(
            f"  proved as of tree size {found.complete_as_of}{_witnessed(client)}: the log's map commitment "
            f"(entry #{found.closure.commitment_index}) proves no entry below that size names it",
            "green",
        )
    else:
        o.ui.line(f"  not proved: {found.incomplete}", "yellow")
    o.ui.line("  if you expected entries, check the digest above, every character of it (or search --name)")


@app.command()
def history(
    ctx: typer.Context,
    digest: DigestArgument,
    hidden: HiddenOption = False,
    token_file: TokenFileOption = None,
) -> int:
    """An artifact's verified history: every entry naming it, newest first, and whether that is all of them."""
    from atlas_log.history import HistoryCache

    o = _opts(ctx)
    with o.client(token=_hidden_token(hidden, token_file)) as client, o.ui.progress("verifying history") as bar:

        def progress(page: VerifiedHistory) -> None:
            done = len(page.entries)
            bar.update(bar.task_ids[0], completed=done, total=done + (0 if page.next_before is None else 1))

        # The library chains the pages and proves every page's checkpoint consistent with the first.
        found = client.history(_looked_up(o, client, digest, hidden), cache=HistoryCache(), progress=progress)
    rows: list[dict[str, Any]] = []
    for e in found.entries:
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
                "links_to": (e.entry.links or {}).get(found.artifact),
            }
        )
    if o.json:
        o.emit(
            {
                "artifact": found.artifact,
                "verifiedAgainst": {"treeSize": found.tree_size},
                "complete": found.complete,
                "completeAsOf": found.complete_as_of,
                "incomplete": found.incomplete,
                "gapFreeFrom": found.gap_free_from,
                "entries": rows,
            }
        )
        return 0
    if not rows:
        _named_by_nothing(o, client, found)
        return 0
    entries = counted(len(rows), "entry", "entries")
    o.ui.line(f"{found.artifact}: {entries}, verified against tree size {found.tree_size}", "bold")
    if found.closure is not None and found.complete:
        o.ui.line(
            f"  complete as of tree size {found.complete_as_of}{_witnessed(client)}: the log's map commitment (entry "
            f"#{found.closure.commitment_index}) proves every entry naming it below that size is here",
            "green",
        )
    elif found.gap_free_from is not None:
        o.ui.line(
            f"  proved: gap-free from entry #{found.gap_free_from} back to the first entry naming it; "
            f"not proved complete: {found.incomplete}",
            "yellow",
        )
    else:
        o.ui.line(
            f"  not proved gap-free (entries without back-links); not proved complete: {found.incomplete}", "yellow"
        )
    table = o.ui.table("entry", "logged", "as", "statement", "TEE")
    for r in rows:
        tee = f"TDX {r['tcbStatus']}{' (simulated)' if r['simulatedTee'] else ''}" if r["tcbStatus"] else "no TEE"
        table.add_row(
            f"#{r['logIndex']}", when(r["integratedTime"]), "/".join(r["roles"]), r["predicateType"] or "-", tee
        )
    o.ui.show(table)
    return 0


def _names(served: Any) -> dict[str, str]:
    """Artifact names as the log's index has them (its word: digests and edges are what is proved)."""
    names: dict[str, str] = {}
    for entry in served.get("entries") or [] if isinstance(served, dict) else []:
        for a in entry.get("artifacts") or [] if isinstance(entry, dict) else []:
            if isinstance(a, dict) and isinstance(a.get("name"), str) and isinstance(a.get("digest"), str):
                label = a["name"] + (f" {a['version']}" if a.get("version") else "")
                names.setdefault(a["digest"], inert(label, line=True))
    return names


class Direction(enum.StrEnum):
    up = "up"
    down = "down"


@app.command()
def lineage(
    ctx: typer.Context,
    digest: DigestArgument,
    direction: Annotated[
        Direction, typer.Option(help="up: what it was made from; down: what was made from it")
    ] = Direction.up,
    depth: Annotated[int, typer.Option(min=1, max=64, help="how many steps to follow")] = 5,
    hidden: HiddenOption = False,
    token_file: TokenFileOption = None,
) -> int:
    """An artifact's verified lineage, as a tree of artifacts, each edge naming the entry that states it."""
    o = _opts(ctx)
    with o.client(token=_hidden_token(hidden, token_file)) as client, o.ui.waiting("verifying lineage"):
        # About the artifact and in the direction asked, its checkpoint consistent with the log's.
        lin = client.lineage(_looked_up(o, client, digest, hidden), direction.value, depth)
        # No edge: an artifact without inputs (or uses), or one no entry names (most often a mistyped digest);
        # the first page of its history tells them apart (an empty first page is the whole, verified answer).
        named = None if lin.edges or o.json else next(iter(client.history_pages(lin.artifact, page_size=1)))
    if named is not None and not named.entries:
        _named_by_nothing(o, client, named)
        return 0
    if o.json:
        o.emit(
            {
                "artifact": lin.artifact,
                "direction": lin.direction,
                "nodes": list(lin.nodes),
                "edges": [{"from": s, "to": t, "logIndex": i, "role": lin.role(i)} for s, t, i in lin.edges],
                "truncated": lin.truncated,
                "complete": lin.complete,
                "completeAsOf": lin.complete_as_of,
                "incomplete": lin.incomplete,
            }
        )
        return 0
    # One edge per pair of artifacts, naming every entry that states it (a pipeline run again states it again).
    children: dict[str, dict[str, list[int]]] = {}
    for src, dst, idx in lin.edges:
        parent, child = (dst, src) if lin.direction == "up" else (src, dst)
        children.setdefault(parent, {}).setdefault(child, []).append(idx)
    word = "made from" if lin.direction == "up" else "used to make"
    title = f"{_names(lin.served).get(lin.artifact, '')}  {lin.artifact}".strip()
    edges = counted(sum(len(c) for c in children.values()), "edge")
    root = tree(f"{title} ({word}; {edges}, verified against tree size {lin.checkpoint.size})")
    # Each artifact's subtree is drawn once; a later mention refers back to it. Drawing every path instead
    # would print a graph a few artifacts wide and a few layers deep exponentially many times. Iterative: a
    # lineage may be deeper than the recursion limit.
    drawn = {lin.artifact}
    names = _names(lin.served)
    stack = [(root, c, i) for c, i in sorted(children.get(lin.artifact, {}).items(), reverse=True)]
    while stack:
        parent_node, node, stated = stack.pop()
        again = node in drawn and node in children
        label = f"{names[node]}  {node}" if node in names else node
        by_role: dict[str, list[int]] = {}
        for idx in sorted(set(stated)):
            by_role.setdefault(lin.role(idx), []).append(idx)
        how = "; ".join(
            (f"{role} of " if role == EVALUATION_DATA or lin.direction == "up" else "")
            + ("entry " if len(idxs) == 1 else "entries ")
            + ", ".join(f"#{i}" for i in idxs)
            for role, idxs in by_role.items()
        )
        branch = add(parent_node, f"{label}  [{how}]{'  (see above)' if again else ''}", None)
        if node not in drawn:
            drawn.add(node)
            stack.extend((branch, c, i) for c, i in sorted(children.get(node, {}).items(), reverse=True))
    o.ui.show(root)
    if lin.truncated:
        o.ui.line("truncated: the log capped its answer; the nearest edges are shown, more lineage exists", "yellow")
    if lin.complete:
        o.ui.line(
            f"complete as of tree size {lin.complete_as_of}{_witnessed(client)}: every "
            f"{'input' if lin.direction == 'up' else 'use'} up to depth {depth} stated below that size is here",
            "green",
        )
    else:
        o.ui.line(f"not proved complete: {lin.incomplete}", "yellow")
    return 0


@app.command()
def search(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option(help="an artifact's exact name (a model, a dataset), matched whole")
    ] = None,
    signer: Annotated[str | None, typer.Option(help="a signer's key digest, sha256:<hex>")] = None,
    predicate_type: Annotated[str | None, typer.Option(help="the statement type (its predicateType URI)")] = None,
    since: Annotated[int | None, typer.Option("--from", help="logged at or after this Unix time")] = None,
    until: Annotated[int | None, typer.Option("--to", help="logged before this Unix time")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="most entries to show")] = 100,
) -> int:
    """Find entries by artifact name, signer, statement type or time: each result verified included (a search
    is an index lookup: for every entry naming an artifact, use history)."""
    from atlas_log.answers import SearchFilter

    o = _opts(ctx)
    wanted = SearchFilter(name=name, signer=signer, predicate_type=predicate_type, since=since, until=until)
    with o.client() as client, o.ui.waiting("searching"):
        found = client.search(wanted, limit=limit)
    rows: list[dict[str, Any]] = [
        {
            "logIndex": e.log_index,
            "integratedTime": e.entry.integrated_time,
            "predicateType": (e.entry.body.get("index") or {}).get("predicateType"),
            "subjects": [str(d) for d in (e.entry.body.get("index") or {}).get("subjects") or []],
        }
        for e in found.entries
    ]
    if o.json:
        o.emit({"verifiedAgainst": {"treeSize": found.checkpoint.size}, "entries": rows, "next": found.next_before})
        return 0
    if not rows:
        o.ui.line(f"no entry matches (tree size {found.checkpoint.size})", "yellow")
        if name:
            o.ui.line(f"  names are matched whole: no artifact is named exactly {name!r}; try its full name or digest")
        return 0
    entries = counted(len(rows), "entry", "entries")
    title = f"{entries}, each verified included in the tree of size {found.checkpoint.size}"
    table = o.ui.table("entry", "logged", "statement", "subjects", title=title)
    for r in rows:
        subjects = ", ".join(r["subjects"]) or "-"
        table.add_row(f"#{r['logIndex']}", when(r["integratedTime"]), r["predicateType"] or "-", subjects)
    o.ui.show(table)
    o.ui.line(
        "not proved: that no match is missing (a search is a lookup in the log's index); every entry naming an "
        "artifact, proved complete: atlas-log history DIGEST",
        "yellow",
    )
    return 0


# --- auditing -----------------------------------------------------------------------------------------------


def _check_fingerprints(option: str, given: list[str] | None, what: str = "a root certificate's") -> None:
    for fingerprint in given or ():
        if _fingerprint(fingerprint) is None:
            raise CliError(
                f"{option} takes {what} SHA-256 (64 lowercase hex digits), not {fingerprint!r}"
                + _placeholder_hint(fingerprint)
            )


def _trust(
    tdx_root: list[str] | None,
    x509_roots: str | None,
    x509_eku: str,
    gpu_device_root: list[str] | None = None,
    gpu_rim_root: list[str] | None = None,
) -> Any:
    from atlas_log.reverify import Trust

    _check_fingerprints("--tdx-root", tdx_root, "a TDX root CA key's")
    _check_fingerprints("--gpu-device-root", gpu_device_root)
    _check_fingerprints("--gpu-rim-root", gpu_rim_root)

    try:
        roots = x509.load_pem_x509_certificates(_read(x509_roots, "X.509 roots file")) if x509_roots else []
    except ValueError as exc:
        raise CliError(f"{x509_roots} holds no PEM certificates: {exc}") from exc
    return Trust(
        tdx_roots=tuple(tdx_root) if tdx_root else Trust().tdx_roots,
        gpu_device_roots=tuple(gpu_device_root or ()) or Trust().gpu_device_roots,
        gpu_rim_roots=tuple(gpu_rim_root or ()) or Trust().gpu_rim_roots,
        x509_roots=tuple(r.public_bytes(serialization.Encoding.DER) for r in roots),
        x509_eku=x509_eku,
    )


TdxRootOption = Annotated[
    list[str] | None,
    typer.Option(help="a trusted TDX root CA key's SHA-256 (repeat) (default: Intel's SGX root)"),
]
# Two options, not one: a root trusted for device identities must not thereby sign reference values (a GPU's own
# attestation key could then bless any golden measurements).
GpuDeviceRootOption = Annotated[
    list[str] | None,
    typer.Option(
        help="a trusted GPU device identity root certificate's SHA-256 (repeat) (default: NVIDIA's Device Identity CA)"
    ),
]
GpuRimRootOption = Annotated[
    list[str] | None,
    typer.Option(
        help="a trusted GPU reference-value (RIM) signing root certificate's SHA-256 (repeat) "
        "(default: NVIDIA's CoRIM root)"
    ),
]
X509RootsOption = Annotated[
    str | None, typer.Option(help="PEM file of X.509 roots that certificate-signed entries must chain to")
]
X509EkuOption = Annotated[str, typer.Option(help="extended key usage (OID) signing certificates must carry")]


def _untrusted_root(problems: Sequence[str]) -> bool:
    """Whether a problem is an attestation chaining to a root the verifier does not trust."""
    return any("untrusted-root" in p or "trusted root" in p or "chain_invalid" in p for p in problems)


def _fingerprint(value: Any) -> str | None:
    """``value`` if it is a SHA-256 in lowercase hex: what a server names is printed into commands people copy,
    so anything else (a lying server's shell text) is left out."""
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def _gpu_root_options(gpu: dict[str, Any]) -> str:
    """The options trusting the GPU roots a log's ``/api/v1/log`` names (its simulated ones)."""
    return " ".join(
        f"{option} {gpu[k]}"
        for k, option in (("deviceRoot", "--gpu-device-root"), ("rimRoot", "--gpu-rim-root"))
        if _fingerprint(gpu.get(k))
    )


def _simulated_root_options(info: LogInfo) -> str:
    """``--tdx-root … --gpu-device-root … --gpu-rim-root …`` for a log running simulated TDX ("" otherwise): what
    an offline check of its entries must trust."""
    root = _fingerprint(info.attestation.get("simulatedRoot")) if info.attestation.get("simulated") else None
    if root is None:
        return ""
    return " ".join(filter(None, (f"--tdx-root {root}", _gpu_root_options(info.attestation.get("gpu") or {}))))


def _simulated_hint(problems: Sequence[str], o: Options, trust: Trust) -> str | None:
    """The configuration problem behind a simulated log's entries failing only for their root: the log's own
    account of its simulated roots (``/api/v1/log``) and the options that trust them. None when ``trust``
    already holds them all (then the failures are the entries' own)."""
    if not _untrusted_root(problems):
        return None
    try:
        with LogClient(o.server, None, **o.network()) as keyless:
            info = keyless.log_info()
    except Error:
        return None
    root = _fingerprint(info.attestation.get("simulatedRoot")) if info.attestation.get("simulated") else None
    if root is None:
        return None
    gpu = info.attestation.get("gpu") or {}
    trusted = (
        root in trust.tdx_roots
        and gpu.get("deviceRoot") in (None, *trust.gpu_device_roots)
        and gpu.get("rimRoot") in (None, *trust.gpu_rim_roots)
    )
    if trusted:
        return None
    gpu_roots = _gpu_root_options(gpu)
    return (
        f"this log runs a simulated TDX platform with root {root}; pass --tdx-root {root} to trust it"
        + (f" (and {gpu_roots} for its simulated GPUs)" if gpu_roots else "")
        + " (a development log: its quotes prove nothing about real hardware)"
    )


def _replay_round(
    o: Options, replay: Any, note: bytes, verifier: Verifier, result: Any, seen_at: int
) -> dict[str, Any] | None:
    """Replay up to the monitor's verified checkpoint (first seen at ``seen_at``); failing entries become
    problems, and evidence when it holds. Returns what was replayed (None when the replay stopped)."""
    from atlas_log.checkpoint import open_checkpoint
    from atlas_log.evidence import verify_evidence
    from atlas_log.replay import entry_evidence, map_evidence, order_evidence

    checkpoint = open_checkpoint(note, verifier)
    try:
        with o.ui.progress("replaying", checkpoint.size) as bar:
            outcome = replay.run(
                checkpoint, lambda done, total: bar.update(bar.task_ids[0], completed=done, total=total), seen_at
            )
    except Exception as exc:  # the log stopped answering mid-replay: a problem of this round; the next continues
        result.problems.append(f"replay stopped at entry {replay.tree.size}: {one_line(exc)}")
        return None
    hint = _simulated_hint([r for _, r in outcome.bad_entries], o, replay.trust)
    if hint is not None and len(outcome.bad_entries) == outcome.entries:
        # Not evidence against the log: the monitor was not told to trust the root the log says it uses.
        raise CliError(hint)
    replayed = {
        "replayed": outcome.entries,
        "seconds": round(outcome.seconds, 3),
        "entriesPerSecond": round(outcome.entries / outcome.seconds) if outcome.seconds else None,
        "problems": len(outcome.problems),
        **({"disclosures": outcome.disclosures} if outcome.disclosures else {}),
    }
    result.problems.extend(outcome.problems)
    # Entries failing only for a root the log says it uses and the monitor was not told to trust are no
    # evidence against the log: one line says which option trusts it, instead of one failed gathering each.
    untrusted = {i for i, r in outcome.bad_entries if _untrusted_root([r])} if hint is not None else set()
    if untrusted:
        result.problems.append(f"{len(untrusted)} of these entries fail only for an untrusted root: {hint}")
    gather: list[tuple[int, Callable[[], dict[str, Any]]]] = (
        [
            (index, partial(entry_evidence, replay.url, verifier.vkey, note, checkpoint, index, reason))
            for index, reason in outcome.bad_entries[:MAX_ENTRY_EVIDENCE]
            if index not in untrusted
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
    return replayed


@app.command()
def monitor(
    ctx: typer.Context,
    log: Annotated[
        list[str] | None,
        typer.Option(help="the log's URL from each vantage point to compare (repeat) (default: --server)"),
    ] = None,
    cosignature_max_age: Annotated[
        int | None,
        typer.Option(min=1, help="seconds: a cosignature older than this does not count (default: no limit)"),
    ] = None,
    peer: Annotated[list[str] | None, typer.Option(help="another monitor's URL serving its /checkpoint")] = None,
    state: Annotated[str | None, typer.Option(help="trusted-state file")] = None,
    evidence_dir: Annotated[str, typer.Option(help="where evidence files are written")] = "evidence",
    webhook: Annotated[str | None, typer.Option(help="URL to POST each piece of evidence to")] = None,
    once: Annotated[
        bool, typer.Option("--once", help="one round, then exit (0: no problem, 1: problems, 3: evidence)")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between rounds")] = 10.0,
    listen: Annotated[
        str | None, typer.Option(help="HOST:PORT to serve the latest verified checkpoint at /checkpoint for peers")
    ] = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="rebuild the tree from the entry bundles and re-verify every entry")
    ] = False,
    tdx_root: TdxRootOption = None,
    gpu_device_root: GpuDeviceRootOption = None,
    gpu_rim_root: GpuRimRootOption = None,
    replay_workers: Annotated[
        int | None, typer.Option(min=1, help="processes re-verifying entries (default: one per CPU)")
    ] = None,
    token_file: Annotated[
        str | None,
        typer.Option(
            help="a grant (or the tenant's token): the replay also checks the disclosures of every "
            "confidential entry it may read (default: $ATLAS_LOG_TOKEN)"
        ),
    ] = None,
    map_max_lag: Annotated[
        int,
        typer.Option(
            min=0,
            help="seconds an entry may wait for the log's map to cover it, once the log has "
            "committed a map (0: do not check)",
        ),
    ] = DEFAULT_MAP_MAX_LAG_S,
    x509_roots: X509RootsOption = None,
    x509_eku: X509EkuOption = CODE_SIGNING,
    follow_successor: Annotated[
        bool, typer.Option("--follow-successor", help="when the log is frozen, also follow the successor it names")
    ] = False,
) -> int:
    """Follow the log (--server, or each --log), prove every checkpoint consistent, compare views with peers,
    check witnesses, optionally replay every entry; write evidence of misbehaviour."""
    from atlas_log.cosignature import CosignatureWindow
    from atlas_log.monitor import Monitor, serve_checkpoint

    o = _opts(ctx)
    if not o.vkey:
        raise CliError("monitor needs the log's verifier key pinned: --vkey (or ATLAS_LOG_VKEY)")
    verifier = o.verifier()
    logs = [_log_url(u) for u in log] if log else [o.server]
    mon = Monitor(
        None,
        logs,
        verifier,
        peers=peer or [],
        state_file=Path(state) if state else None,
        cosignature_window=CosignatureWindow(max_age_s=cosignature_max_age),
        map_max_lag_s=map_max_lag or None,
        **o.witness_policy(),
    )
    trust = _trust(tdx_root, x509_roots, x509_eku, gpu_device_root, gpu_rim_root)
    if listen:
        host, _, port = listen.rpartition(":")
        serve_checkpoint(mon, host or "127.0.0.1", int(port))
    try:
        return _monitor_rounds(
            o,
            mon,
            verifier,
            Path(evidence_dir),
            trust,
            replay,
            replay_workers,
            _token(token_file),
            follow_successor,
            webhook,
            once,
            interval,
        )
    finally:
        mon.close()


def _monitor_rounds(
    o: Options,
    mon: Any,
    verifier: Verifier,
    out: Path,
    trust: Any,
    replay_on: bool,
    workers: int | None,
    token: str | None,
    follow_successor: bool,
    webhook: str | None,
    once: bool,
    interval: float,
) -> int:
    """Watch until evidence is found (exit 3), or for one round with --once; the webhook gets each piece of
    evidence by a plain POST (:func:`~atlas_log.transport.post_json`), once."""
    from atlas_log.checkpoint import succession
    from atlas_log.monitor import Monitor
    from atlas_log.replay import Replay
    from atlas_log.transport import post_json

    replayer = Replay(mon.logs[0], trust, workers, token=token) if replay_on else None
    successor: Monitor | None = None
    seen_note: bytes | None = None
    seen_at = 0
    while True:
        result = mon.round()
        frozen = succession(mon.trusted.checkpoint) if mon.trusted.checkpoint is not None else None
        if frozen is not None and successor is None and follow_successor and frozen.url and frozen.vkey:
            # The frozen log stays watched (it must never grow again); its successor is followed too.
            successor = Monitor(None, [frozen.url], Verifier.from_vkey(frozen.vkey))
        if successor is not None:
            later = successor.round()
            result.problems.extend(f"successor: {p}" for p in later.problems)
            result.evidence.extend(later.evidence)
        if mon.trusted.note != seen_note:  # entries it covers were dated before this moment
            seen_note, seen_at = mon.trusted.note, int(time.time())
        replayed = None
        if replayer is not None and mon.trusted.note is not None:
            replayed = _replay_round(o, replayer, mon.trusted.note, verifier, result, seen_at)
        for i, ev in enumerate(result.evidence):
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"evidence-{int(time.time())}-{i}.json"
            path.write_text(json.dumps(ev, indent=2))
            if webhook:
                try:
                    post_json(webhook, ev, 10)
                except Error as exc:
                    o.ui.note(f"webhook failed: {exc}", "red")
        round_record = {
            "size": result.size,
            "views": result.views,
            "problems": result.problems,
            "evidence": len(result.evidence),
            "frozen": None if frozen is None else {"successorUrl": frozen.url, "successorKey": frozen.vkey},
            "successorSize": None if successor is None else successor.trusted.size,
            **({"replay": replayed} if replayed is not None else {}),
        }
        if o.json:  # one JSON line per round, for a log collector
            sys.stdout.write(json.dumps(round_record) + "\n")
            sys.stdout.flush()
        else:
            _print_round(o, result, replayed, frozen, successor)
        if result.evidence:
            return 3
        if once:
            return 1 if result.problems else 0
        time.sleep(interval)


def _print_round(o: Options, result: Any, replayed: dict[str, Any] | None, frozen: Any, successor: Any) -> None:
    """One monitor round for a person: what was verified, and each problem on its own line."""
    status = verdict_text(not result.problems, "ok" if not result.problems else "PROBLEMS")
    agree = len(result.views) > 1 and not result.problems
    views = f" (by {counted(len(result.views), 'view')} that agree)" if agree else ""
    o.ui.out.print(
        f"{time.strftime('%H:%M:%S')} checkpoint of size {result.size} verified{views}: ",
        status,
        f", {counted(len(result.evidence), 'piece')} of evidence" if result.evidence else "",
        sep="",
    )
    if replayed is not None:
        # A rate over a handful of entries measures start-up, not the replay.
        many = replayed["entriesPerSecond"] and replayed["replayed"] >= 1000
        rate = f", {replayed['entriesPerSecond']}/s" if many else ""
        said = "every one re-verified" if not replayed["problems"] else f"{counted(replayed['problems'], 'problem')}"
        o.ui.line(
            f"  replayed {counted(replayed['replayed'], 'entry', 'entries')} in {replayed['seconds']} s{rate}: {said}"
        )
        if "disclosures" in replayed:  # with a grant: the confidential entries, by what became of their values
            outcomes = ", ".join(f"{n} {why}" for why, n in sorted(replayed["disclosures"].items()))
            o.ui.line(f"  confidential entries' disclosures: {outcomes}")
    if frozen is not None:
        o.ui.line(f"  the log is frozen; its successor: {frozen.url} ({frozen.vkey})", "yellow")
    if successor is not None:
        o.ui.line(f"  successor's checkpoint: size {successor.trusted.size}")
    for p in result.problems:
        o.ui.line(f"  {p}", "red")


@app.command()
def pack(
    ctx: typer.Context,
    digest: DigestArgument,
    out: Annotated[str, typer.Option(help="the pack file to write (a ZIP archive)")],
    depth: Annotated[int, typer.Option(min=1, max=64, help="lineage depth, up and down")] = 5,
) -> int:
    """Write an artifact's evidence pack: everything needed to verify its case offline, in one file."""
    from atlas_log.pack import gather, names_nothing

    o = _opts(ctx)
    with o.client() as client, o.ui.progress("gathering the pack") as bar:
        data = gather(
            client,
            digest,
            depth=depth,
            progress=lambda what: bar.update(bar.task_ids[0], description=f"fetching {what}"),
        )
        try:
            roots = _simulated_root_options(client.log_info())
        except Error:
            roots = ""  # the hint only: the pack is written either way
    Path(out).write_bytes(data)
    if names_nothing(data):
        o.ui.note(
            f"warning: no entry of this log names {digest}; the pack proves only that: check the digest", "yellow"
        )
    if o.json:
        o.emit({"pack": out, "bytes": len(data)})
    else:
        vkey = f"'{o.vkey}'" if o.vkey else "'<the log's verifier key>'"
        o.ui.line(f"wrote {out} ({len(data)} bytes): verify it offline with")
        o.ui.line(f"  atlas-log --vkey {vkey} verify-pack {out}" + (f" {roots}" if roots else ""))
        if roots:
            o.ui.note("  (the --tdx-root and --gpu-*-root options trust this development log's simulated roots)")
    return 0


@app.command("verify-pack")
def verify_pack_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="an evidence pack (atlas-log pack, or the explorer's download)")],
    tdx_root: TdxRootOption = None,
    gpu_device_root: GpuDeviceRootOption = None,
    gpu_rim_root: GpuRimRootOption = None,
    x509_roots: X509RootsOption = None,
    x509_eku: X509EkuOption = CODE_SIGNING,
) -> int:
    """Re-verify an evidence pack offline (never contacting a server) and print its summary."""
    from atlas_log.pack import pack_json, verify_pack

    o = _opts(ctx)
    if not o.vkey:
        o.ui.line("pack does not hold: no log key is pinned; give the log's verifier key with --vkey", "red")
        return 1
    data = _read(file, "pack")
    trust = _trust(tdx_root, x509_roots, x509_eku, gpu_device_root, gpu_rim_root)
    if o.quorum and not o.witnesses:
        raise CliError("--quorum needs the witnesses' keys (--witness)")
    # Without --witness, the pack's own witnesses and quorum are checked.
    policy = o.witness_policy() if o.witnesses else {"witnesses": None, "quorum": None}
    try:
        verdict = verify_pack(data, o.vkey, trust=trust, **policy)
    except (Error, ValueError) as exc:
        if o.json:
            o.emit({"verified": False, "reason": one_line(exc)})
        else:
            # A root not trusted is the verifier's configuration, not a sign of tampering: worded as such.
            untrusted = _untrusted_root([str(exc)])
            said = "pack not verified under the roots given" if untrusted else "pack does not hold"
            o.ui.line(f"{said}: {one_line(exc)}", "red")
            if not tdx_root and untrusted:
                o.ui.note(
                    "hint: a development log's quotes come from its simulated platform: pass --tdx-root with the "
                    "simulated TDX root (and --gpu-device-root, --gpu-rim-root with its GPU roots) that the log's "
                    "banner and /api/v1/log name; real entries verify against Intel's root, the default",
                    "yellow",
                )
        return 1
    if o.json:
        o.emit({"verified": True, **pack_json(verdict)})
        return 0
    o.ui.line(verdict.summary)
    complete = verdict.history_complete_as_of is not None and verdict.lineage_complete_as_of is not None
    o.ui.line(
        f"verdict: verified offline ({verdict.entries} entries re-verified from their submissions"
        + (f"; complete as of tree size {verdict.history_complete_as_of})" if complete else "; not proved complete: ")
        + ("" if complete else "; ".join(verdict.incomplete) + ")"),
        "green" if complete else "yellow",
    )
    if tdx_root:
        o.ui.line(
            "  its quotes are verified against the TDX root --tdx-root names, not Intel's: a simulated platform's "
            "prove nothing about real hardware"
        )
    return 0


@app.command("verify-evidence")
def verify_evidence_command(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="an evidence file a monitor wrote")],
    tdx_root: TdxRootOption = None,
    gpu_device_root: GpuDeviceRootOption = None,
    gpu_rim_root: GpuRimRootOption = None,
    x509_roots: X509RootsOption = None,
    x509_eku: X509EkuOption = CODE_SIGNING,
) -> int:
    """Check a piece of evidence against the log's pinned key, offline."""
    from atlas_log.evidence import verify_evidence

    o = _opts(ctx)
    if not o.vkey:
        # The key an evidence file names proves nothing: anyone can make a key with the log's name.
        o.ui.line("evidence does not hold: no log key is pinned; give the log's verifier key with --vkey", "red")
        return 1
    trust = _trust(tdx_root, x509_roots, x509_eku, gpu_device_root, gpu_rim_root)
    try:
        # The evidence embeds an entry (leaf and submission, base64) and its collateral: the one parser, with
        # room for them.
        evidence = json_loads(_read(file, "evidence file"), "evidence", JSON_LIMITS.enclosing(2))
        said = verify_evidence(evidence, o.vkey, trust)
    except (Error, ValueError) as exc:
        if "records a simulated TDX platform" in str(exc):
            # Not a verdict on the log: the checker was not told to trust the development platform's root.
            raise CliError(
                f"{one_line(exc)} (GET /api/v1/log names it: attestation.simulatedRoot); a development log's "
                "quotes prove nothing about real hardware"
            ) from exc
        if o.json:
            o.emit({"holds": False, "reason": one_line(exc)})
        else:
            o.ui.line(f"evidence does not hold: {one_line(exc)}", "red")
        return 1
    if o.json:
        o.emit({"holds": True, "says": str(said)})
    else:
        o.ui.line(str(said))
    return 0


@app.command()
def evidence(
    ctx: typer.Context,
    index: Annotated[int, typer.Argument(min=0, help="the entry's index")],
    out: Annotated[
        str,
        typer.Option(
            help="the folder to write (quote.bin, pcs/, verdict.json, evidence.json; gpu-N.json, rims/, ocsp/)"
        ),
    ],
) -> int:
    """Download an entry's quote and collateral as a folder that `atlas-log tdx verify FOLDER` re-verifies (and
    a composite entry's GPU evidence, RIMs and OCSP responses, which `atlas-log gpu verify` re-verifies)."""
    from atlas_log.tdx.collateral import replay_files

    o = _opts(ctx)
    folder = Path(out)
    _evidence_folder_for(folder, index)
    with o.client() as client, o.ui.waiting(f"asking {o.server}"):
        ev = client.evidence(index)  # the quote and collateral its included leaf records
    (folder / "pcs").mkdir(parents=True, exist_ok=True)
    (folder / "quote.bin").write_bytes(ev.quote)
    for member, name in replay_files().items():
        (folder / "pcs" / name).write_bytes(getattr(ev.collateral, member))
    (folder / "verdict.json").write_text(json.dumps(ev.verdict, indent=2))
    (folder / "evidence.json").write_text(
        json.dumps({"logIndex": index, "verifiedAt": ev.verified_at, "trustedRoots": list(ev.trusted_roots)}, indent=2)
    )
    roots = " ".join(f"--root {r}" for r in ev.trusted_roots if _fingerprint(r))
    gpu_commands = _write_gpu_evidence(folder, ev)
    if o.json:
        o.emit(
            {
                "folder": out,
                "verifiedAt": ev.verified_at,
                "trustedRoots": list(ev.trusted_roots),
                "gpuCommands": gpu_commands,
            }
        )
    else:
        o.ui.line(f"wrote {folder}; re-verify it offline: atlas-log tdx verify {folder} {roots}")
        for command in gpu_commands:
            o.ui.line(f"  and its GPU: {command}")
    return 0


def _evidence_folder_for(folder: Path, index: int) -> None:
    """Refuse a folder holding anything but this entry's evidence: files of another entry left beside this one's
    (its GPUs, RIMs) would be taken for this entry's."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise CliError(f"{folder} is a file: give a folder for the evidence (a new or empty one)")
    if not any(folder.iterdir()):
        return
    try:
        held = json.loads((folder / "evidence.json").read_text()).get("logIndex")
    except (OSError, ValueError, AttributeError):
        held = None
    if held != index:
        what = f"the evidence of entry {held}" if isinstance(held, int) else "other files"
        raise CliError(f"{folder} already holds {what}: give a new or empty folder for entry {index}'s")


def _write_gpu_evidence(folder: Path, ev: Any) -> list[str]:
    """A composite entry's GPU parts written beside its quote (``gpu-N.json`` in NVIDIA's serialized form, the
    RIMs and OCSP responses its GPU records name under ``rims/`` and ``ocsp/``); the ``atlas-log gpu verify``
    command that re-verifies each GPU at the entry's integration time, under the roots the log names."""
    from atlas_log.gpu.evidence import serialize_evidence
    from atlas_log.tee import GpuRecord

    if not ev.gpus:
        return []
    for member, suffix in (("rims", ".xml"), ("ocsp", ".der")):
        (folder / member).mkdir(exist_ok=True)
        for digest, data in getattr(ev, member).items():
            (folder / member / f"{digest}{suffix}").write_bytes(data)
    roots = " ".join(
        f"{option} {ev.gpu_roots[k]}"
        for k, option in (("device", "--gpu-device-root"), ("rim", "--gpu-rim-root"))
        if _fingerprint(ev.gpu_roots.get(k))
    )
    nonce = f"--nonce {ev.gpu_nonce.hex()}" if ev.gpu_nonce is not None else ""
    commands = []
    for n, (item, record) in enumerate(zip(ev.gpus, ev.verdict.get("gpus") or [], strict=False)):
        (folder / f"gpu-{n}.json").write_text(json.dumps(serialize_evidence([item]), indent=2))
        g = GpuRecord.from_json(record)
        parts = [f"--rim {shlex.quote(str(folder / 'rims' / f'{d}.xml'))}" for *_, d in g.rims]
        # A CA's response speaks for both RIM chains: each file once.
        responses = dict.fromkeys(d for *_, d in g.revocation)
        parts += [f"--ocsp {shlex.quote(str(folder / 'ocsp' / f'{d}.der'))}" for d in responses]
        evidence = shlex.quote(str(folder / f"gpu-{n}.json"))
        at = f"--at {ev.verified_at}"
        commands.append(" ".join(filter(None, ["atlas-log gpu verify", evidence, nonce, at, *parts, roots])))
    return commands


@tdx_app.command("verify")
def tdx_verify(
    ctx: typer.Context,
    quote: Annotated[str, typer.Argument(help="a raw quote file, or a folder written by atlas-log evidence")],
    collateral: Annotated[
        str | None,
        typer.Option(
            help="PCS-replay folder (tcb.json, qe_identity.json, CRLs, chains) (default: the evidence folder)"
        ),
    ] = None,
    at: Annotated[
        int | None, typer.Option(min=0, help="verification time, Unix seconds (default: the evidence's own)")
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="JSON policy file (allowed_statuses, denied_advisories, mr_td, rtmr, ...)")
    ] = None,
    root: Annotated[
        list[str] | None, typer.Option(help="a trusted root key's SHA-256 (repeat) (default: the Intel SGX Root CA)")
    ] = None,
) -> int:
    """Verify a TDX quote against its collateral, offline (exit 0 only when accepted)."""
    from atlas_log.tdx import INTEL_ROOT_SPKI_SHA256, Policy, collateral_from_dir, verify_quote

    o = _opts(ctx)
    folder = Path(quote) if Path(quote).is_dir() else None
    meta: dict[str, Any] = {}
    if folder is not None:
        quote_file = folder / "quote.bin"
        if not quote_file.exists():
            raise CliError(
                f"{folder} is not an evidence folder (it holds no quote.bin): make one with "
                "atlas-log evidence INDEX --out DIR"
            )
        collateral = collateral or str(folder)
        if (folder / "evidence.json").exists():
            found = _read_json(folder / "evidence.json", "evidence record")
            meta = found if isinstance(found, dict) else {}
        if at is None and isinstance(meta.get("verifiedAt"), int):
            at = meta["verifiedAt"]
    elif not Path(quote).exists():
        raise CliError(f"no such quote file or evidence folder: {quote}")
    else:
        quote_file = Path(quote)
    if collateral is None:
        raise CliError("give the collateral folder: --collateral DIR (or a folder written by atlas-log evidence)")
    if at is None:
        raise CliError("give the verification time: --at UNIX_SECONDS")
    raw = _read(quote_file, "quote file")
    policy_obj = Policy.from_json(_read_json(policy, "policy")) if policy else None
    roots = root or [INTEL_ROOT_SPKI_SHA256]
    verdict = verify_quote(raw, collateral_from_dir(collateral), at, policy_obj, roots=roots)
    if not verdict.accept and verdict.code == "untrusted-root":
        recorded = (
            _read_json(folder / "verdict.json", "verdict") if folder and (folder / "verdict.json").exists() else {}
        )
        known = [r for r in meta.get("trustedRoots") or [] if _fingerprint(r) and r not in roots]
        if isinstance(recorded, dict) and recorded.get("simulated") and known:
            raise CliError(
                f"this log runs a simulated TDX platform with root {known[0]}; pass --root {known[0]} to trust it "
                "(a development log: its quotes prove nothing about real hardware)"
            )
    if o.json:
        o.emit(verdict.to_json())
    elif verdict.accept:
        o.ui.out.print(
            verdict_text(True, "ACCEPTED"),
            f": TCB status {verdict.tcb_status}, FMSPC {verdict.fmspc}, advisories "
            f"{list(verdict.advisory_ids) or 'none'}, collateral valid until "
            + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(verdict.collateral_expiry)),
            sep="",
        )
    else:
        o.ui.out.print(verdict_text(False, f"REJECTED ({verdict.code})"), f": {verdict.reason}", sep="")
    return 0 if verdict.accept else 1


def _root_named(fingerprint: str, chain: list[x509.Certificate], option: str) -> x509.Certificate:
    """The chain's own last certificate, when its SHA-256 is ``fingerprint``: a root trusted by its fingerprint,
    as the monitor trusts one."""
    from atlas_log.gpu.roots import certificate_sha256

    if not chain or certificate_sha256(chain[-1]) != fingerprint:
        raise CliError(f"{option} {fingerprint}: the chain given does not end in that root certificate")
    return chain[-1]


def _device_chain_of(path: Path) -> list[x509.Certificate]:
    from atlas_log.certificates import load_pem_certificates
    from atlas_log.errors import GpuEvidenceError
    from atlas_log.gpu import load_gpu_evidence

    try:
        return load_pem_certificates(load_gpu_evidence(path)[0].certificate_chain)
    except (GpuEvidenceError, ValueError, IndexError):
        return []  # the verification names what is wrong with it


def _rim_chain_of(paths: list[str]) -> list[x509.Certificate]:
    from atlas_log.errors import GpuEvidenceError
    from atlas_log.gpu import parse_rim

    try:
        return list(parse_rim(_read(paths[0], "RIM file")).certificates) if paths else []
    except GpuEvidenceError:
        return []


@gpu_app.command("verify")
def gpu_verify(
    ctx: typer.Context,
    evidence: Annotated[
        str,
        typer.Argument(
            help="a folder (report.txt, certchain.pem, nonce.hex) or NVIDIA's serialized evidence JSON (one or many "
            "GPUs)"
        ),
    ],
    at: Annotated[int, typer.Option(min=0, help="verification time, Unix seconds")],
    nonce: Annotated[
        str | None,
        typer.Option(help="the nonce you chose, hex (default: the one stored with the evidence: no freshness)"),
    ] = None,
    rim: Annotated[
        list[str] | None, typer.Option(help="a driver or VBIOS reference integrity manifest (RIM) file (repeat)")
    ] = None,
    ocsp: Annotated[
        list[str] | None,
        typer.Option(help="a DER OCSP response for a device or RIM certificate (repeat); a revoked one rejects"),
    ] = None,
    require_ocsp: Annotated[
        bool, typer.Option(help="reject a certificate no --ocsp response speaks for (below the roots)")
    ] = False,
    allow_on_hold: Annotated[
        bool, typer.Option(help="accept a certificate revoked with reason certificateHold (a suspension)")
    ] = False,
    device_root: Annotated[
        str | None,
        typer.Option(help="a PEM root certificate in place of NVIDIA's pinned Device Identity CA (a test PKI)"),
    ] = None,
    rim_root: Annotated[
        str | None, typer.Option(help="a PEM root certificate in place of NVIDIA's pinned CoRIM root (a test PKI)")
    ] = None,
    gpu_device_root: Annotated[
        str | None,
        typer.Option(help="trust the device chains' own root when its SHA-256 is this (as monitor takes it)"),
    ] = None,
    gpu_rim_root: Annotated[
        str | None, typer.Option(help="trust the RIMs' own signing root when its SHA-256 is this (as monitor takes it)")
    ] = None,
) -> int:
    """Verify NVIDIA GPU attestation evidence offline: the SPDM report's signature and nonce, the device chain
    to NVIDIA's pinned root at --at, with --rim each RIM's signature, chain, version and golden measurements,
    and with --ocsp the revocation status of both chains (exit 0 only when every GPU is accepted)."""
    from atlas_log.certificates import load_pem_certificates
    from atlas_log.errors import GpuEvidenceError
    from atlas_log.gpu import Policy, verify_gpu_evidence_path

    o = _opts(ctx)
    wanted = None
    if nonce is not None:
        try:
            wanted = bytes.fromhex(nonce)
        except ValueError:
            raise CliError(f"--nonce must be 32 bytes (64 hex digits): {nonce[:80]!r} is not hex") from None
        if len(wanted) != 32:
            raise CliError(f"--nonce must be 32 bytes (64 hex digits), not {len(wanted)}")
    roots = {}
    for option, given in (("--device-root", device_root), ("--rim-root", rim_root)):
        if given is not None:
            try:
                roots[option] = load_pem_certificates(Path(given).read_bytes())[0]
            except (OSError, ValueError) as exc:
                raise CliError(f"{option} {given}: not a readable PEM certificate ({exc})") from exc
    _check_fingerprints("--gpu-device-root", [gpu_device_root] if gpu_device_root else None)
    _check_fingerprints("--gpu-rim-root", [gpu_rim_root] if gpu_rim_root else None)
    if gpu_device_root and "--device-root" not in roots:
        roots["--device-root"] = _root_named(gpu_device_root, _device_chain_of(Path(evidence)), "--gpu-device-root")
    if gpu_rim_root and "--rim-root" not in roots:
        if not rim:
            raise CliError("--gpu-rim-root needs the RIMs it is the root of: give them with --rim FILE")
        roots["--rim-root"] = _root_named(gpu_rim_root, _rim_chain_of(rim or []), "--gpu-rim-root")
    policy = Policy(require_ocsp=require_ocsp, allow_on_hold=allow_on_hold)
    try:
        verdicts = verify_gpu_evidence_path(
            Path(evidence),
            at=at,
            nonce=wanted,
            rims=[Path(r) for r in rim or []],
            policy=policy,
            ocsp=[Path(r) for r in ocsp or []],
            device_root=roots.get("--device-root"),
            rim_root=roots.get("--rim-root"),
        )
    except GpuEvidenceError as exc:
        if o.json:
            o.emit({"accept": False, "code": exc.code, "reason": exc.message})
            return 2
        raise CliError(f"{exc.code}: {exc.message}") from exc
    if o.json:
        o.emit(verdicts[0].to_json() if len(verdicts) == 1 else [v.to_json() for v in verdicts])
    else:
        if nonce is None:
            o.ui.note("note: no --nonce: each report is checked against the nonce stored with it (not fresh)")
        for i, v in enumerate(verdicts):
            head = [f"GPU {i}: "] if len(verdicts) > 1 else []
            if v.accept:
                o.ui.out.print(
                    *head,
                    verdict_text(True, "ACCEPTED"),
                    f": {v.architecture}, driver {v.driver_version}, VBIOS {v.vbios_version}",
                    sep="",
                )
                o.ui.line("  " + _gpu_checks(v))
            else:
                o.ui.out.print(*head, verdict_text(False, f"REJECTED ({v.code})"), f": {v.reason}", sep="")
        if any(v.code == "chain_invalid" for v in verdicts) and "--device-root" not in roots:
            o.ui.note(
                "hint: a development log's GPU evidence comes from its simulated GPU: pass --gpu-device-root with "
                "its root's SHA-256 (the banner and /api/v1/log name it)",
                None,
            )
    return 0 if all(v.accept for v in verdicts) else 1


_RIM_KINDS = {"driver": "driver", "vbios": "VBIOS"}


def _gpu_checks(v: Any) -> str:
    """What an accepted GPU verdict rests on, and what it was not asked to check (no RIM, no OCSP response)."""
    done = ["report signature", "nonce", "device chain"]
    skipped = []
    if v.measurements_checked:
        done.append("measurements against the " + " and ".join(f"{_RIM_KINDS.get(r.kind, r.kind)} RIM" for r in v.rims))
    else:
        skipped.append("measurements (no --rim)")
    answers = len(v.revocation) + sum(len(r.revocation) for r in v.rims)
    if answers:
        done.append(f"revocation ({counted(answers, 'certificate')})")
    else:
        skipped.append("revocation (no --ocsp)")
    return "checked: " + ", ".join(done) + ("; not checked: " + ", ".join(skipped) if skipped else "")


# --- running ------------------------------------------------------------------------------------------------


def hoist(argv: Sequence[str]) -> list[str]:
    """``argv`` with the tool's own options moved in front of the command, wherever they stood (a lone
    ``--`` ends the options: what follows stays where it is)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name] and "=" not in arg
            front.extend(argv[i : i + (2 if takes_value else 1)])
            i += 2 if takes_value else 1
            continue
        rest.append(arg)
        i += 1
    return front + rest


def _usage(exc: TyperException) -> str:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "atlas-log"
    return f"{exc.format_message()} (see {where} --help)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a verification or a request failed, 2 a usage or
    configuration problem, 3 evidence found by monitor, 130 interrupted)."""
    args = hoist(list(sys.argv[1:] if argv is None else argv))
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="atlas-log", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return _fail("interrupted", 130)
    except TyperException as exc:  # typer's usage errors (its own copy of click's)
        if type(exc).__name__ == "NoArgsIsHelpError":  # no command given: the help is the answer
            sys.stdout.write(exc.format_message() + "\n")
            return 2
        return _fail(_usage(exc), int(getattr(exc, "exit_code", 2)))
    except CliError as exc:
        return _fail(str(exc), exc.status)
    except LogUnreachableError as exc:
        hint = "; is the log running there? --server (or ATLAS_LOG_URL) names another address"
        return _fail(one_line(exc) + (hint if str(exc).startswith("cannot reach") else ""), 1)
    except Error as exc:  # what the log or a file said: one line, no traceback
        return _fail(one_line(exc), 1)
    except FileNotFoundError as exc:
        return _fail(f"no such file: {exc.filename}", 2)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and no flush error at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        return _fail(one_line(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    return int(result or 0)


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"atlas-log: {inert(' '.join(message.split()))}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
