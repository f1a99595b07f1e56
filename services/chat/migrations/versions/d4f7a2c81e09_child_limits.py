"""A chat's limits on what the child's page may do, kept on the chat's row

Revision ID: d4f7a2c81e09
Revises: b3c9e1f04d27
Created: 2026-12-06 08:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'd4f7a2c81e09'
down_revision = 'b3c9e1f04d27'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.add_column(sa.Column('msgs_tat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('danger_tat', sa.Float(), nullable=True))
        batch.add_column(sa.Column('lang_tat', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('conversations') as batch:
        batch.drop_column('lang_tat')
        batch.drop_column('danger_tat')
        batch.drop_column('msgs_tat')
