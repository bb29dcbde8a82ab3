"""Published checkpoints: a log checkpoint with the witness cosignatures collected for it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "published_checkpoints",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("cosigners", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(
        "CREATE TRIGGER published_checkpoints_append_only BEFORE UPDATE OR DELETE ON published_checkpoints "
        "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
    )


def downgrade() -> None:
    op.drop_table("published_checkpoints")
