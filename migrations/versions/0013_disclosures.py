"""Confidential entries: each entry's disclosures, encrypted under its own data key (wrapped by the log's key-
encryption key, which lives outside the database), every read of them, and grants that expire.

``entry_disclosures`` holds one row per entry that came with disclosures: the submitting tenant (NULL on a log
without tenants), the wrapped data key and the AES-GCM ciphertext, both NULL once erased (crypto-shredding,
with when, by whom and why). ``disclosure_reads`` records every read: which token, for which tenant's entry.
``tokens.expires_at`` bounds a grant's life.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tokens", sa.Column("holder", sa.Text(), nullable=True))
    op.create_table(
        "entry_disclosures",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_by", sa.Text(), nullable=True),
        sa.Column("erase_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(erased_at IS NULL AND wrapped_key IS NOT NULL AND ciphertext IS NOT NULL) OR "
            "(erased_at IS NOT NULL AND wrapped_key IS NULL AND ciphertext IS NULL)",
            name="entry_disclosures_sealed_or_erased",
        ),
    )
    op.create_index("entry_disclosures_tenant", "entry_disclosures", ["tenant", "idx"])
    op.create_table(
        "disclosure_reads",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=True),
        sa.Column("reader", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
    )
    op.create_index("disclosure_reads_tenant", "disclosure_reads", ["tenant", "at"])


def downgrade() -> None:
    op.drop_table("disclosure_reads")
    op.drop_table("entry_disclosures")
    op.drop_column("tokens", "holder")
    op.drop_column("tokens", "expires_at")
