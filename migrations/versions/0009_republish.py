"""Re-publication: a checkpoint may be published more than once (an idle log re-publishes its unchanged tree,
with fresh cosignatures, so that its root stays young enough to be a quote's fresh nonce). A publication is
keyed by size and time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("published_checkpoints_pkey", "published_checkpoints", type_="primary")
    op.create_primary_key("published_checkpoints_pkey", "published_checkpoints", ["size", "created_at"])


def downgrade() -> None:
    # Back to one publication per size: keep the first of each (the table is append-only, so the rule is
    # lifted for exactly this statement).
    op.execute("ALTER TABLE published_checkpoints DISABLE TRIGGER published_checkpoints_append_only")
    op.execute(
        "DELETE FROM published_checkpoints p USING published_checkpoints q "
        "WHERE p.size = q.size AND p.created_at > q.created_at"
    )
    op.execute("ALTER TABLE published_checkpoints ENABLE TRIGGER published_checkpoints_append_only")
    op.drop_constraint("published_checkpoints_pkey", "published_checkpoints", type_="primary")
    op.create_primary_key("published_checkpoints_pkey", "published_checkpoints", ["size"])
