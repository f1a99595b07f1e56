"""issue 14: the child's own answer to "Er du i fare akkurat nå?"

Revision ID: 7a1d2c9e4b50
Revises: 5e0d7c41a6b3
Created: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '7a1d2c9e4b50'
down_revision = '5e0d7c41a6b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('in_danger', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('in_danger_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('in_danger_at')
        batch.drop_column('in_danger')
