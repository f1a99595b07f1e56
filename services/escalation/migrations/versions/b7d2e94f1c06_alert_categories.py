"""alert categories: an open alert keeps every category found for it

Revision ID: b7d2e94f1c06
Revises: a1e7d5c0b913
Created: 2026-11-29 21:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'b7d2e94f1c06'
down_revision = 'a1e7d5c0b913'
branch_labels = None
depends_on = None


def upgrade():
    # nullable: an alert stored before this is read as its one category
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('categories', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('categories')
