"""the SME's declared target KPIs (rollout plan): the report's achievement (달성률)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0006'
down_revision: Union[str, Sequence[str], None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema: a new table only."""
    op.create_table('kpi_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('line', sa.String(length=64), nullable=True),
    sa.Column('kpi', sa.String(length=64), nullable=False),
    sa.Column('change_pct', sa.Float(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'line', 'kpi')
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('kpi_targets')
