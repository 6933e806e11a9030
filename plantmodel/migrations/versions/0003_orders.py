"""customer orders from the SME's ERP export: the D (delivery) of PQCD

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema: a new table only (plain CREATE TABLE; nothing existing is recreated)."""
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('line', sa.String(length=64), nullable=True),
    sa.Column('product', sa.String(length=100), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('ordered', sa.String(length=32), nullable=False),
    sa.Column('due', sa.Date(), nullable=False),
    sa.Column('completed', sa.String(length=32), nullable=True),
    sa.Column('updated_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'order_id')
    )


def downgrade() -> None:
    """Downgrade schema: the imported orders go with their table (re-import the CSV after upgrading again)."""
    op.drop_table('orders')
