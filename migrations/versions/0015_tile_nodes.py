"""Inner nodes beside full tiles: a full tile's 255 inner nodes (every complete subtree inside it, bottom row
first) are stored with it when it fills, so that a proof reads them instead of hashing the tile. Full tiles stay
immutable (the tile trigger), so the nodes are written in the same statement that completes the tile, and only
there; tiles filled before this revision have none and are hashed when read.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tiles", sa.Column("nodes", sa.LargeBinary(), nullable=True))
    op.create_check_constraint(
        "tiles_nodes_shape", "tiles", "nodes IS NULL OR (length(hashes) = 8192 AND length(nodes) = 8160)"
    )
    # Hashes do not compress: skip the attempt on every write.
    op.execute("ALTER TABLE tiles ALTER COLUMN nodes SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_constraint("tiles_nodes_shape", "tiles")
    op.drop_column("tiles", "nodes")
