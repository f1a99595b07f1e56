"""issue 15: a hold records the escalation's own `open` flag (and its kind)

Retention used to judge a hold by a list of "released" statuses of its own,
which did not know a referral's `recorded`: such chats kept their transcript
for ever. Existing rows are judged by the statuses the escalation service has
ever sent: `closed` and `recorded` are the only ones that are not open.

Revision ID: 3c9e1b7d2a64
Revises: 7a1d2c9e4b50
Created: 2026-12-10 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '3c9e1b7d2a64'
down_revision = '7a1d2c9e4b50'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('holds') as batch:
        batch.add_column(sa.Column('kind', sa.String(32), nullable=True))
        batch.add_column(sa.Column('open', sa.Boolean(), nullable=False, server_default=sa.true()))
    op.execute("UPDATE holds SET open = false WHERE status IN "
               "('closed', 'recorded', 'resolved', 'done', 'cancelled', 'canceled', 'dismissed', "
               "'rejected')")


def downgrade():
    with op.batch_alter_table('holds') as batch:
        batch.drop_column('open')
        batch.drop_column('kind')
