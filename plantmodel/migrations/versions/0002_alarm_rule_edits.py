"""alarm rules can be edited and deleted: soft delete, and why an alarm was cleared

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # plain ALTER TABLE, not batch mode: recreating alarm_rules on SQLite would drop it, and with
    # foreign keys on, that deletes every alarm through the cascade
    op.add_column('alarm_rules', sa.Column('deleted_ms', sa.BigInteger(), nullable=True))
    op.add_column('alarms', sa.Column('cleared_reason', sa.String(length=32), nullable=True))
    op.add_column('alarms', sa.Column('cleared_by', sa.String(length=64), nullable=True))
    # alarms cleared before this revision ended with their condition
    op.execute("UPDATE alarms SET cleared_reason = 'condition_ended' WHERE cleared_ms IS NOT NULL")


def downgrade() -> None:
    """Downgrade schema: deleted rules and their alarms are removed (0001 cannot mark a rule deleted)."""
    op.execute("DELETE FROM alarms WHERE rule_id IN (SELECT id FROM alarm_rules WHERE deleted_ms IS NOT NULL)")
    op.execute("DELETE FROM alarm_rules WHERE deleted_ms IS NOT NULL")
    op.drop_column('alarms', 'cleared_by')  # ALTER TABLE DROP COLUMN: SQLite 3.35 or newer
    op.drop_column('alarms', 'cleared_reason')
    op.drop_column('alarm_rules', 'deleted_ms')
