"""credentials that can be taken back: token expiry and last use, login throttling shared by workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00.000000

Tokens created before this revision never expired; they now expire 90 days after the upgrade
(the default lifetime of a new token), so no script stops on the day of the upgrade.
"""
import time
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    """Upgrade schema: two new token columns (batch mode: SQLite cannot add NOT NULL otherwise) and two tables."""
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('expires_ms', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('last_used_ms', sa.BigInteger(), nullable=True))
    expires = int(time.time() * 1000) + LEGACY_TOKEN_DAYS * 86_400_000
    op.execute(sa.text("UPDATE api_tokens SET expires_ms = :e WHERE expires_ms IS NULL").bindparams(e=expires))
    with op.batch_alter_table('api_tokens') as batch:
        batch.alter_column('expires_ms', existing_type=sa.BigInteger(), nullable=False)
        batch.create_index('ix_api_tokens_expires_ms', ['expires_ms'])
    with op.batch_alter_table('web_sessions') as batch:
        batch.create_index('ix_web_sessions_expires_ms', ['expires_ms'])
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('last_failure_ms', sa.BigInteger(), nullable=False),
    sa.Column('blocked_until_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_login_throttle_last_failure_ms', 'login_throttle', ['last_failure_ms'])
    op.create_table('login_devices',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('last_login_ms', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('digest')
    )
    op.create_index('ix_login_devices_last_login_ms', 'login_devices', ['last_login_ms'])


def downgrade() -> None:
    """Downgrade schema: throttle counts and trusted devices are dropped; tokens keep working, without expiry."""
    op.drop_index('ix_login_devices_last_login_ms', table_name='login_devices')
    op.drop_table('login_devices')
    op.drop_index('ix_login_throttle_last_failure_ms', table_name='login_throttle')
    op.drop_table('login_throttle')
    with op.batch_alter_table('web_sessions') as batch:
        batch.drop_index('ix_web_sessions_expires_ms')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_index('ix_api_tokens_expires_ms')
        batch.drop_column('last_used_ms')
        batch.drop_column('expires_ms')
