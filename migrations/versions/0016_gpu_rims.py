"""GPU reference integrity manifests (RIMs): the raw documents the log appraised GPU evidence with, by the
SHA-256 composite entries record, with the id the RIM service knows them by and the window in which their
signing chain is valid. Append-only, like PCS collateral: an auditor replays an entry with exactly these bytes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gpu_rims",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("rim_id", sa.Text(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("gpu_rims_id", "gpu_rims", ["rim_id", "not_after"])
    op.execute(
        "CREATE TRIGGER gpu_rims_append_only BEFORE UPDATE OR DELETE ON gpu_rims "
        "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
    )


def downgrade() -> None:
    op.drop_table("gpu_rims")
