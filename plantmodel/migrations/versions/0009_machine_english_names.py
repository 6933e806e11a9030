"""machines get an English name beside the Korean one, as tenants, sites and lines have (0004)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: Union[str, Sequence[str], None] = '0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema: a nullable column (plain ALTER TABLE; the English UI falls back to the Korean name)."""
    op.add_column('machines', sa.Column('name_en', sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Downgrade schema: the machines' English names are dropped (ALTER TABLE DROP COLUMN: SQLite 3.35 or newer)."""
    op.drop_column('machines', 'name_en')
