"""Intel PCS collateral, kept raw so every verification can be replayed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTS = (
    "tcb_info",
    "tcb_info_issuer_chain",
    "qe_identity",
    "qe_identity_issuer_chain",
    "pck_crl",
    "pck_crl_issuer_chain",
    "root_ca_crl",
)


def upgrade() -> None:
    op.create_table(
        "pcs_collateral",
        sa.Column("digest", sa.Text(), primary_key=True),
        sa.Column("fmspc", sa.Text(), nullable=False),
        sa.Column("ca", sa.Text(), nullable=False),
        *(sa.Column(p, sa.LargeBinary(), nullable=False) for p in PARTS),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("not_after", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("pcs_collateral_platform", "pcs_collateral", ["fmspc", "ca", "not_after"])
    # A quote's nonce may be a checkpoint root: admission looks checkpoints up by root.
    op.create_index("checkpoints_root_hash", "checkpoints", ["root_hash"])
    op.execute(
        "CREATE TRIGGER pcs_collateral_append_only BEFORE UPDATE OR DELETE ON pcs_collateral "
        "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
    )


def downgrade() -> None:
    op.drop_index("checkpoints_root_hash", "checkpoints")
    op.drop_table("pcs_collateral")
