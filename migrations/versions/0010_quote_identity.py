"""Entry identity v2 and quote identity: ``entry_id`` becomes what was signed and by whom (PAE digest and the
set of signer keys, atlas_log.entry.entry_id), and each entry's own quote is findable by its hash, so one
quote can never be used by two entries.

Existing rows are rewritten to the v2 identity (computed here from each leaf's body, exactly as
``entry_id`` does); where earlier versions logged one statement several times, the first entry keeps the
identity and the later ones keep their v1 id, so they stay addressable and never match a new submission.
Likewise only the first entry to carry a quote owns its hash. New entries identify a quote by the hash of
what its attestation key signed (admission); rows logged before keep the hash their leaf records. The
append-only trigger is suspended for this one backfill of derived, unsigned columns; leaves are not touched.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = r"""
WITH body AS (
    SELECT idx, convert_from(leaf, 'UTF8')::jsonb -> 'body' AS b FROM entries
), identity AS (
    SELECT idx,
           sha256(convert_to(E'atlas-log/entry-id/v2\n' || (b -> 'paeHash' ->> 'sha256') || E'\n' || (
               -- ascending byte order, as Python sorts the hex strings
               SELECT string_agg(DISTINCT ((s -> 'verifier' ->> 'spkiSha256') || E'\n') COLLATE "C", ''
                                 ORDER BY ((s -> 'verifier' ->> 'spkiSha256') || E'\n') COLLATE "C")
               FROM jsonb_array_elements(b -> 'signatures') AS s
           ) || CASE WHEN jsonb_typeof(b -> 'tee') = 'object' THEN E'tdx\n' ELSE '' END, 'UTF8')) AS id,
           decode(b -> 'tee' ->> 'quoteSha256', 'hex') AS quote
    FROM body
), first_id AS (
    SELECT DISTINCT ON (id) idx, id FROM identity ORDER BY id, idx
), first_quote AS (
    SELECT DISTINCT ON (quote) idx, quote FROM identity WHERE quote IS NOT NULL ORDER BY quote, idx
)
UPDATE entries e
SET entry_id = COALESCE((SELECT f.id FROM first_id f WHERE f.idx = e.idx), e.entry_id),
    quote_sha256 = (SELECT q.quote FROM first_quote q WHERE q.idx = e.idx)
"""


def upgrade() -> None:
    op.add_column("entries", sa.Column("quote_sha256", sa.LargeBinary(), nullable=True))
    op.execute("ALTER TABLE entries DISABLE TRIGGER entries_append_only")
    op.execute(BACKFILL)
    op.execute("ALTER TABLE entries ENABLE TRIGGER entries_append_only")
    op.create_check_constraint("entries_quote_sha256_length", "entries", "length(quote_sha256) = 32")
    op.create_index(
        "entries_quote_sha256",
        "entries",
        ["quote_sha256"],
        unique=True,
        postgresql_where=sa.text("quote_sha256 IS NOT NULL"),
    )


def downgrade() -> None:
    # The v2 ids stay: v1 code then simply does not find pre-downgrade entries by its own ids.
    op.drop_index("entries_quote_sha256", "entries")
    op.drop_constraint("entries_quote_sha256_length", "entries")
    op.drop_column("entries", "quote_sha256")
