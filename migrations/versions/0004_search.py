"""Search support: each entry's predicate type, case-insensitive artifact names, and artifact versions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("predicate_type", sa.Text(), nullable=True))
    op.create_index("entries_predicate_type", "entries", ["predicate_type", "idx"])
    op.create_index(
        "entry_artifacts_name",
        "entry_artifacts",
        [sa.text("lower(name)")],
        postgresql_where=sa.text("name IS NOT NULL"),
    )
    op.add_column("entry_artifacts", sa.Column("version", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("entry_artifacts", "version")
    op.drop_index("entry_artifacts_name", "entry_artifacts")
    op.drop_index("entries_predicate_type", "entries")
    op.drop_column("entries", "predicate_type")
