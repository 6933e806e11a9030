"""English names beside the Korean ones for tenants, sites and lines (the centre works in English)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: Union[str, Sequence[str], None] = '0003'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema: nullable columns only (plain ALTER TABLE; nothing is recreated, no cascade fires)."""
    for table in ('tenants', 'sites', 'lines'):
        op.add_column(table, sa.Column('name_en', sa.String(length=200), nullable=True))


def downgrade() -> None:
    """Downgrade schema: the English names are dropped (ALTER TABLE DROP COLUMN: SQLite 3.35 or newer)."""
    for table in ('lines', 'sites', 'tenants'):
        op.drop_column(table, 'name_en')
