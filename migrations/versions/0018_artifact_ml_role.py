"""The artifact index keeps what each artifact is to the step naming it (a descriptor's ``mlRole`` annotation, e.g.
``training-data``), so pages can draw a dataset as a dataset whatever its file is called. Rows indexed before
this revision have none.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("entry_artifacts", sa.Column("ml_role", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("entry_artifacts", "ml_role")
