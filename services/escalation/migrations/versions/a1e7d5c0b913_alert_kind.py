"""alert kind: a counsellor's acute-danger escalation raises a stored alert too

Revision ID: a1e7d5c0b913
Revises: c4c23aadc69b
Created: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'a1e7d5c0b913'
down_revision = 'c4c23aadc69b'
branch_labels = None
depends_on = None


def upgrade():
    # server_default: every alert stored before this was the risk screen's
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=24), server_default='risk', nullable=False))
        batch_op.add_column(sa.Column('escalation_id', sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_column('escalation_id')
        batch_op.drop_column('kind')
