"""issue 12: last_seen of a waiting child, source and suspect (flood) tier

Revision ID: b3c1f0a2e912
Revises: d8415b9a14ad
Created: 2026-11-30 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b3c1f0a2e912'
down_revision = 'd8415b9a14ad'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('entries') as batch:
        batch.add_column(sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('suspect', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_index('ix_entries_source', ['source'])
        # the order of service is now tier (flood last), priority, arrival
        batch.drop_index('ix_entries_order')
        batch.create_index('ix_entries_order', ['status', 'suspect', 'priority', 'queued_at'])
        batch.create_index('ix_entries_suspect_ended', ['suspect', 'ended_at'])


def downgrade():
    with op.batch_alter_table('entries') as batch:
        batch.drop_index('ix_entries_suspect_ended')
        batch.drop_index('ix_entries_order')
        batch.create_index('ix_entries_order', ['status', 'priority', 'queued_at'])
        batch.drop_index('ix_entries_source')
        batch.drop_column('suspect')
        batch.drop_column('source')
        batch.drop_column('last_seen')
