"""Freezing a log: the final checkpoint (naming the successor) is kept with the tree state, and the database
refuses any change of a frozen log's state, and any freeze that is not of the current tree.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FROZEN = """    IF OLD.frozen_note IS NOT NULL THEN
        RAISE EXCEPTION 'atlas-log: the log is frozen' USING ERRCODE = 'restrict_violation';
    END IF;
"""
FREEZE = """    IF NEW.frozen_note IS NOT NULL
        AND (NEW.size <> OLD.size OR NEW.checkpoint IS DISTINCT FROM OLD.checkpoint) THEN
        RAISE EXCEPTION 'atlas-log: a freeze must not change the tree' USING ERRCODE = 'restrict_violation';
    END IF;
"""
STATE_RULES = """
CREATE OR REPLACE FUNCTION atlas_state_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'atlas-log: the tree state is never deleted' USING ERRCODE = 'restrict_violation';
    END IF;
{frozen}    IF NEW.origin <> OLD.origin OR NEW.size < OLD.size
        OR (NEW.size = OLD.size AND NEW.root_hash <> OLD.root_hash) THEN
        RAISE EXCEPTION 'atlas-log: tree state may only grow (size % -> %)', OLD.size, NEW.size
            USING ERRCODE = 'restrict_violation';
    END IF;
{freeze}    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.add_column("log_state", sa.Column("frozen_note", sa.LargeBinary(), nullable=True))
    op.execute(STATE_RULES.format(frozen=FROZEN, freeze=FREEZE))


def downgrade() -> None:
    op.execute(STATE_RULES.format(frozen="", freeze=""))  # the rules of revision 0001
    op.drop_column("log_state", "frozen_note")
