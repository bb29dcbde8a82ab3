"""OCSP responses for GPU device and RIM certificates: the raw responses the log judged revocation with, by
the SHA-256 composite entries record, with the certificate they speak for and the window in which each is
current. Append-only, like RIMs and PCS collateral: an auditor replays an entry with exactly these bytes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gpu_ocsp",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column("this_update", sa.BigInteger(), nullable=False),
        sa.Column("next_update", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("gpu_ocsp_certificate", "gpu_ocsp", ["certificate", "this_update"])
    op.execute(
        "CREATE TRIGGER gpu_ocsp_append_only BEFORE UPDATE OR DELETE ON gpu_ocsp "
        "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
    )


def downgrade() -> None:
    op.drop_table("gpu_ocsp")
