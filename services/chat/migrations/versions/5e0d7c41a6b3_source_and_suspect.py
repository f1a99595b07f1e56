"""issue 12: a chat's source (salted hash) and flood flag

Revision ID: 5e0d7c41a6b3
Revises: 9feb72869dc1
Created: 2026-11-30 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '5e0d7c41a6b3'
down_revision = '9feb72869dc1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('source', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('suspect', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_index('ix_conversations_source', ['source'])


def downgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.drop_index('ix_conversations_source')
        batch.drop_column('suspect')
        batch.drop_column('source')
