"""The log: tree state, entries, tiles, checkpoints, and the append-only rules.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = """
CREATE FUNCTION atlas_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'atlas-log: % on % is forbidden: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
"""

TILE_EXTEND_ONLY = """
CREATE FUNCTION atlas_tile_extend_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'atlas-log: tiles are never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF length(OLD.hashes) = 8192 THEN
        RAISE EXCEPTION 'atlas-log: full tile %/% is immutable', OLD.level, OLD.idx
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.level <> OLD.level OR NEW.idx <> OLD.idx
       OR length(NEW.hashes) <= length(OLD.hashes)
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'atlas-log: write to partial tile %/% is not an extension', OLD.level, OLD.idx
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
"""

STATE_GROWS_ONLY = """
CREATE FUNCTION atlas_state_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'atlas-log: the tree state is never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
    IF NEW.origin <> OLD.origin OR NEW.size < OLD.size OR (NEW.size = OLD.size AND NEW.root_hash <> OLD.root_hash) THEN
        RAISE EXCEPTION 'atlas-log: tree state may only grow (size % -> %)', OLD.size, NEW.size
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "log_state",
        sa.Column("origin", sa.Text(), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("size >= 0", name="log_state_size_nonnegative"),
        sa.CheckConstraint("length(root_hash) = 32", name="log_state_root_32"),
        sa.CheckConstraint("length(frontier) % 32 = 0", name="log_state_frontier_hashes"),
    )
    op.create_table(
        "entries",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("entry_id", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False, unique=True),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("submission", sa.LargeBinary(), nullable=False),
        sa.Column("integrated_time", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("idx >= 0", name="entries_idx_nonnegative"),
        sa.CheckConstraint("length(leaf_hash) = 32 AND length(entry_id) = 32", name="entries_hash_lengths"),
        sa.CheckConstraint("length(leaf) <= 65535", name="entries_leaf_fits_bundle"),
    )
    op.create_index("entries_integrated_time", "entries", ["integrated_time"])
    op.create_table(
        "tiles",
        sa.Column("level", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("level BETWEEN 0 AND 63", name="tiles_level_range"),
        sa.CheckConstraint("length(hashes) BETWEEN 32 AND 8192 AND length(hashes) % 32 = 0", name="tiles_hashes_shape"),
    )
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("length(root_hash) = 32", name="checkpoints_root_32"),
    )
    op.execute(APPEND_ONLY)
    op.execute(TILE_EXTEND_ONLY)
    op.execute(STATE_GROWS_ONLY)
    for table in ("entries", "checkpoints"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION atlas_append_only()"
        )
    for table in ("entries", "checkpoints", "tiles", "log_state"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION atlas_append_only()"
        )
    op.execute(
        "CREATE TRIGGER tiles_extend_only BEFORE UPDATE OR DELETE ON tiles "
        "FOR EACH ROW EXECUTE FUNCTION atlas_tile_extend_only()"
    )
    op.execute(
        "CREATE TRIGGER log_state_grows_only BEFORE UPDATE OR DELETE ON log_state "
        "FOR EACH ROW EXECUTE FUNCTION atlas_state_grows_only()"
    )


def downgrade() -> None:
    for table in ("checkpoints", "tiles", "entries", "log_state"):
        op.drop_table(table)
    for fn in ("atlas_append_only", "atlas_tile_extend_only", "atlas_state_grows_only"):
        op.execute(f"DROP FUNCTION {fn}()")
