"""The lineage index: which artifacts (by digest) each entry names, in which role, from which JSON path.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "entry_artifacts",
        # No foreign key: rows are written in the same transaction as their entry, and a per-row
        # referential check would cost more than the whole append.
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("json_path", sa.Text(), nullable=False),
    )
    op.create_index("entry_artifacts_digest", "entry_artifacts", ["digest", "idx"])
    op.create_index("entry_artifacts_idx", "entry_artifacts", ["idx"])
    op.execute(
        "CREATE TRIGGER entry_artifacts_append_only BEFORE UPDATE OR DELETE ON entry_artifacts "
        "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
    )


def downgrade() -> None:
    op.drop_table("entry_artifacts")
