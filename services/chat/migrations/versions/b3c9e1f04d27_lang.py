"""issue 13: the child's language on the chat ("nb" or "en")

Revision ID: b3c9e1f04d27
Revises: 3c9e1b7d2a64
Created: 2026-12-03 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'b3c9e1f04d27'
down_revision = '3c9e1b7d2a64'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('lang', sa.String(2), nullable=True))


def downgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('lang')
