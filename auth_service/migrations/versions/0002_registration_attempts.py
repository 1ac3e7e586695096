"""attempt counters also count registrations per address

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 named it through the naming convention once more than intended; the name is kept as it is.
_CONSTRAINT = "ck_login_attempts_ck_login_attempts_known_kind"
_KINDS_BEFORE = "kind IN ('account', 'client', 'peer')"
_KINDS_AFTER = "kind IN ('account', 'client', 'peer', 'registration')"


def upgrade() -> None:
    # Batch mode: SQLite cannot alter a CHECK constraint in place and rebuilds the table instead.
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_constraint(op.f(_CONSTRAINT), type_="check")
        batch.create_check_constraint("ck_login_attempts_known_kind", _KINDS_AFTER)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM login_attempts WHERE kind = 'registration'"))
    with op.batch_alter_table("login_attempts") as batch:
        batch.drop_constraint(op.f(_CONSTRAINT), type_="check")
        batch.create_check_constraint("ck_login_attempts_known_kind", _KINDS_BEFORE)
