"""alarm rules get an on-delay, an off-delay and a deadband (against flapping alarms)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:40:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: Union[str, Sequence[str], None] = '0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ('on_delay_s', 'off_delay_s', 'deadband')


def upgrade() -> None:
    """Upgrade schema: 0 for existing rules, which is how they behaved (raise and clear at once, at the threshold)."""
    # plain ALTER TABLE, not batch mode: recreating alarm_rules on SQLite would delete every alarm (see 0002)
    for name in COLUMNS:
        op.add_column('alarm_rules', sa.Column(name, sa.Float(), nullable=False, server_default='0'))


def downgrade() -> None:
    """Downgrade schema: the rules lose their delays and deadband and flap again."""
    for name in reversed(COLUMNS):
        op.drop_column('alarm_rules', name)  # ALTER TABLE DROP COLUMN: SQLite 3.35 or newer
