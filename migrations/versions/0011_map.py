"""The verifiable map (atlas_log.vmap): its stored nodes, by version, and the log's commitments to it.

``map_nodes`` holds what stands at each position of the map (a key's leaf, or the hash of a subtree of two or
more keys) as of each version (the tree size the map covers): a new version writes only the positions it
changed, and a reader of version N takes, per position, the newest row at or below N. ``map_versions`` lists
the versions built, their roots, and the log index of the commitment entry that commits each (NULL until the
commitment is sequenced).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "map_nodes",
        sa.Column("depth", sa.SmallInteger(), nullable=False),
        sa.Column("prefix", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_key", sa.LargeBinary(), nullable=True),
        sa.Column("newest", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("depth", "prefix", "version"),
        sa.CheckConstraint("depth BETWEEN 0 AND 256", name="map_nodes_depth_range"),
        sa.CheckConstraint("length(prefix) = 32 AND length(hash) = 32", name="map_nodes_lengths"),
        sa.CheckConstraint(
            "(leaf_key IS NULL AND newest IS NULL AND count IS NULL) OR "
            "(length(leaf_key) = 32 AND newest >= 0 AND count >= 1)",
            name="map_nodes_leaf_shape",
        ),
    )
    op.create_table(
        "map_versions",
        sa.Column("tree_size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("keys", sa.BigInteger(), nullable=False),
        sa.Column("commitment_idx", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("length(root) = 32", name="map_versions_root_32"),
    )
    op.create_index("map_versions_commitment", "map_versions", ["commitment_idx"], unique=True)


def downgrade() -> None:
    op.drop_index("map_versions_commitment", "map_versions")
    op.drop_table("map_versions")
    op.drop_table("map_nodes")
