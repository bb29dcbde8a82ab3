"""Storage tuning: entries are stored without compression, and nonce lookups have an ordered index.

A submission carrying a quote is several kilobytes of base64 that does not compress: PostgreSQL's default
(compress, then move out of line) spent its time on compression that saved nothing. The checkpoint lookup
by root hash wants the first (smallest) size, which ``(root_hash, size)`` answers with one index probe.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE entries ALTER COLUMN submission SET STORAGE EXTERNAL, ALTER COLUMN leaf SET STORAGE EXTERNAL"
    )
    op.drop_index("checkpoints_root_hash", "checkpoints")
    op.create_index("checkpoints_root_hash", "checkpoints", ["root_hash", "size"])


def downgrade() -> None:
    op.drop_index("checkpoints_root_hash", "checkpoints")
    op.create_index("checkpoints_root_hash", "checkpoints", ["root_hash"])
    op.execute(
        "ALTER TABLE entries ALTER COLUMN submission SET STORAGE EXTENDED, ALTER COLUMN leaf SET STORAGE EXTENDED"
    )
