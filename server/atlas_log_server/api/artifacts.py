"""The regulator's view: an artifact's history and lineage, searches, and the verifiable map's newest commitment,
with every entry's leaf and inclusion proof against one checkpoint (a witnessed log's latest cosigned one)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response

from atlas_log._encoding import b64encode
from atlas_log.entry import LINKED_ROLES, facts_json
from atlas_log.errors import FormatError
from atlas_log.history import edge_role
from atlas_log.intoto import normalise_digest
from atlas_log.submission import submitted_extraction
from atlas_log_server.api import schemas
from atlas_log_server.api.deps import log_context
from atlas_log_server.api.schemas import answers
from atlas_log_server.context import LogContext
from atlas_log_server.errors import InvalidRequest

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"])
Ctx = Annotated[LogContext, Depends(log_context)]
MAX_PAGE = 1000


def parse_artifact(artifact: str) -> str:
    alg, sep, value = artifact.partition(":")
    if not sep:
        raise InvalidRequest("invalid-digest", "artifacts are named <alg>:<hex>, e.g. sha256:ab12…")
    try:
        a, h = normalise_digest(alg, value)
    except FormatError as exc:
        raise InvalidRequest("invalid-digest", str(exc)) from exc
    return f"{a}:{h}"


_LISTED_ROLES = frozenset((*LINKED_ROLES, "signer"))  # what a leaf itself proves an entry names


async def _facts(ctx: LogContext, indices: list[int]) -> dict[int, str]:
    """The fact list (base64 of :func:`~atlas_log.entry.facts_json`) of each of these entries, recomputed from
    the stored submission: a reader checks it against the leaf's ``factsSha256`` to see the digests the leaf
    does not list."""
    if not indices:
        return {}
    stored = await ctx.repo.submissions_at(indices)
    return {idx: b64encode(facts_json(submitted_extraction(raw))) for idx, raw in stored.items()}


def _json(answer: dict[str, Any]) -> Response:
    """An answer serialised once, by orjson: a 1,000-entry history is megabytes that the framework's generic
    encoder would walk value by value first."""
    return Response(orjson.dumps(answer), media_type="application/json")


async def _answer_checkpoint(ctx: LogContext) -> tuple[int, bytes]:
    """(size, signed note) of the checkpoint an answer is proved against: a witnessed log's latest published
    (cosigned) one, so clients under a witness policy can accept it; else, or before the first publication,
    the latest signed one."""
    if ctx.settings.witnesses:
        published = await ctx.repo.latest_published()
        if published is not None:
            return published
    state = await ctx.repo.state()
    return state.size, state.checkpoint or b""


@router.get(
    "/{artifact}/history",
    summary="Every entry naming an artifact, newest first, with proofs",
    response_model=None,
    responses=answers(schemas.History, 400),
)
async def history(
    artifact: str,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[int | None, Query(ge=0, le=(1 << 63) - 1)] = None,
) -> Response:
    digest = parse_artifact(artifact)
    size, note = await _answer_checkpoint(ctx)
    aliases = await ctx.repo.aliases(digest)
    rows = await ctx.repo.history([digest, *aliases], size if before is None else min(before, size), limit + 1)
    page, more = rows[:limit], len(rows) > limit
    named = await ctx.repo.named([idx for idx, _, _ in page])
    facts = await _facts(ctx, [idx for idx, _, roles in page if not _LISTED_ROLES.issuperset(roles)])
    erased = await ctx.disclosures.erased([idx for idx, _, _ in page])
    proofs = await ctx.proofs.inclusions([idx for idx, _, _ in page], size)
    entries = []
    for idx, leaf, roles in page:
        hashes = proofs[idx]
        entries.append(
            {
                "logIndex": idx,
                "roles": roles,
                "leaf": b64encode(leaf),
                "inclusionProof": [b64encode(h) for h in hashes],
                "artifacts": named.get(idx, []),
                **({"facts": facts[idx]} if idx in facts else {}),
                **({"disclosuresErased": erased[idx].isoformat()} if idx in erased else {}),
            }
        )
    answer: dict[str, Any] = {
        "artifact": digest,
        "aliases": aliases,
        "treeSize": size,
        "checkpoint": note.decode(),
        "entries": entries,
        "next": page[-1][0] if more else None,
    }
    if ctx.completeness is not None and before is None:
        # The first page carries what closes the history: the newest map commitment in this tree and each
        # digest's map proof. Later pages are joined to it by their back-links.
        answer["completeness"] = await ctx.completeness.prove([digest, *aliases], size)
    return _json(answer)


SUBJECT_ROLES = ("subject", "evaluated")
MATERIAL_ROLES = ("material", "eval_data")
MAX_DEPTH = 20
MAX_EDGES = 10_000


@router.get(
    "/{artifact}/lineage",
    summary="The graph of artifacts upstream or downstream of an artifact, with proofs",
    response_model=None,
    responses=answers(schemas.Lineage, 400),
)
async def lineage(
    artifact: str,
    ctx: Ctx,
    direction: Annotated[str, Query(pattern="^(up|down)$")] = "up",
    depth: Annotated[int, Query(ge=1, le=MAX_DEPTH)] = 5,
    complete: Annotated[bool, Query(description="carry the proofs that every edge up to the depth is here")] = False,
) -> Response:
    """``up``: what the artifact was made from, recursively; ``down``: what was made from it. Edges always point
    from material to subject (input to output) and name the entry that states them. At most ``MAX_EDGES`` edges,
    nearest first: when there are more, the answer is cut there and says ``truncated`` (a 200, not an error, so
    the nearest lineage of a popular artifact is still answered).

    With ``complete``, the answer also carries, for every artifact it expands (those nearer than ``depth``),
    every entry naming it and its map proof under the newest map commitment: a reader then derives every edge
    up to the depth itself and checks that none is missing."""
    digest = parse_artifact(artifact)
    size, note = await _answer_checkpoint(ctx)
    if direction == "up":
        rows = await ctx.repo.lineage(digest, SUBJECT_ROLES, MATERIAL_ROLES, depth, size, MAX_EDGES + 1)
        edges = [(dst, src, idx) for src, dst, idx in rows]
    else:
        rows = await ctx.repo.lineage(digest, MATERIAL_ROLES, SUBJECT_ROLES, depth, size, MAX_EDGES + 1)
        edges = list(rows)
    truncated = len(edges) > MAX_EDGES
    edges = edges[:MAX_EDGES]
    indices = sorted({idx for _, _, idx in edges})
    closure = None
    facts: dict[int, str] = {}
    if complete and ctx.completeness is not None:
        expanded = _expanded(digest, direction, depth, edges)
        # One query for all of them: every entry naming any expanded artifact, capped like the edges.
        named = await ctx.repo.history(expanded, size, MAX_EDGES + 1)
        truncated = truncated or len(named) > MAX_EDGES
        indices = sorted(set(indices) | {idx for idx, _, _ in named[:MAX_EDGES]})
        truncated = truncated or len(indices) > MAX_EDGES
        closure = await ctx.completeness.prove(expanded, size)
        # An entry naming an expanded artifact only in a role its leaf does not list is proved by its facts.
        facts = await _facts(ctx, [idx for idx, _, roles in named[:MAX_EDGES] if not _LISTED_ROLES.issuperset(roles)])
    leaves = await ctx.repo.leaves_at(indices)
    kinds = await ctx.repo.predicate_types(indices)
    names = await ctx.repo.named(indices)
    proofs = await ctx.proofs.inclusions(indices, size)
    entries = []
    for idx in indices:
        hashes = proofs[idx]
        entries.append(
            {
                "logIndex": idx,
                "leaf": b64encode(leaves[idx]),
                "inclusionProof": [b64encode(h) for h in hashes],
                "artifacts": names.get(idx, []),
                **({"facts": facts[idx]} if idx in facts else {}),
            }
        )
    nodes = sorted({digest} | {d for src, dst, _ in edges for d in (src, dst)})
    return _json(
        {
            "artifact": digest,
            "direction": direction,
            "depth": depth,
            "treeSize": size,
            "checkpoint": note.decode(),
            "nodes": nodes,
            "edges": [
                {"from": src, "to": dst, "logIndex": idx, "role": edge_role(kinds.get(idx))} for src, dst, idx in edges
            ],
            "entries": entries,
            "truncated": truncated,
            **({"completeness": closure} if complete and ctx.completeness is not None else {}),
        }
    )


def _expanded(artifact: str, direction: str, depth: int, edges: list[tuple[str, str, int]]) -> list[str]:
    """The artifacts nearer than ``depth`` hops to ``artifact`` (the ones whose inputs, or outputs, the answer
    lists), nearest first."""
    step: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        a, b = (dst, src) if direction == "up" else (src, dst)
        step.setdefault(a, set()).add(b)
    out, level, seen = [artifact], [artifact], {artifact}
    for _ in range(depth - 1):
        level = sorted({n for node in level for n in step.get(node, ()) if n not in seen})
        seen.update(level)
        out.extend(level)
    return out


search_router = APIRouter(prefix="/api/v1", tags=["artifacts"])


@search_router.get(
    "/search",
    summary="Entries by artifact name, predicate type, signer and time range, with proofs",
    response_model=None,
    responses=answers(schemas.Search, 400),
)
async def search(
    ctx: Ctx,
    name: Annotated[str | None, Query(max_length=512)] = None,
    predicate_type: Annotated[str | None, Query(alias="predicateType", max_length=512)] = None,
    signer: Annotated[str | None, Query(description="sha256:<hex> of the signer's SPKI", max_length=80)] = None,
    since: Annotated[int | None, Query(alias="from", ge=0, le=(1 << 53))] = None,
    until: Annotated[int | None, Query(alias="to", ge=0, le=(1 << 53))] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    before: Annotated[int | None, Query(ge=0, le=(1 << 63) - 1)] = None,
) -> Response:
    if name is None and predicate_type is None and signer is None and since is None and until is None:
        raise InvalidRequest("invalid-search", "give at least one of name, predicateType, signer, from, to")
    for what, value in (("name", name), ("predicateType", predicate_type)):
        if value is not None and "\x00" in value:
            raise InvalidRequest("invalid-search", f"{what} contains U+0000, which no entry can hold; remove it")
    signer_digest = parse_artifact(signer) if signer is not None else None
    size, note = await _answer_checkpoint(ctx)
    rows = await ctx.repo.search(
        name=name,
        predicate_type=predicate_type,
        signer=signer_digest,
        since=since,
        until=until,
        before=before if before is not None else size,
        limit=limit + 1,
    )
    page = rows[:limit]
    named = await ctx.repo.named([idx for idx, _ in page])
    proofs = await ctx.proofs.inclusions([idx for idx, _ in page], size)
    entries = []
    for idx, leaf in page:
        hashes = proofs[idx]
        entries.append(
            {
                "logIndex": idx,
                "leaf": b64encode(leaf),
                "inclusionProof": [b64encode(h) for h in hashes],
                "artifacts": named.get(idx, []),
            }
        )
    return _json(
        {
            "treeSize": size,
            "checkpoint": note.decode(),
            "entries": entries,
            "next": page[-1][0] if len(rows) > limit else None,
            # Names, signers and predicate types are not map keys: nothing proves the list holds every match.
            "proves": "inclusion",
        }
    )


@search_router.get(
    "/map",
    summary="The verifiable map's newest commitment, with its inclusion proof",
    response_model=None,
    responses=answers(schemas.MapStatus),
)
async def map_status(ctx: Ctx) -> dict[str, Any]:
    """Monitors read this to see that map commitments keep coming: ``commitment`` is null while the log keeps
    no map or has not committed one."""
    size, note = await _answer_checkpoint(ctx)
    proved = None if ctx.completeness is None else await ctx.completeness.prove([], size)
    return {
        "treeSize": size,
        "checkpoint": note.decode(),
        "commitment": None if proved is None else proved["commitment"],
    }
