"""Hidden digests and narrower grants: a grant to read disclosures may be scoped to a set of artifacts
(``tokens.artifacts``, NULL for the whole tenant), and the record of reads also holds the hand-overs of a
tenant's blinding key, which name no entry (``disclosure_reads.idx`` NULL). The index of sealed disclosures by
tenant goes: nothing reads by it, and every confidential entry paid for it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("artifacts", ARRAY(sa.Text()), nullable=True))
    op.alter_column("disclosure_reads", "idx", nullable=True)
    op.drop_index("entry_disclosures_tenant", table_name="entry_disclosures")


def downgrade() -> None:
    op.create_index("entry_disclosures_tenant", "entry_disclosures", ["tenant", "idx"])
    op.execute("DELETE FROM disclosure_reads WHERE idx IS NULL")
    op.alter_column("disclosure_reads", "idx", nullable=False)
    op.drop_column("tokens", "artifacts")
