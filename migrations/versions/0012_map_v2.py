"""The map keys every digest an entry names (atlas-log/map-commitment/v2), not only those its back-links name.

The stored map of the earlier format is dropped: the builder rebuilds the new one from the start of the log and
commits it; commitments of the earlier format stay in the log, recognised as such and proving nothing.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM map_nodes")
    op.execute("DELETE FROM map_versions")


def downgrade() -> None:
    # The earlier builder rebuilds its own format from an empty map just the same.
    op.execute("DELETE FROM map_nodes")
    op.execute("DELETE FROM map_versions")
