"""limits and revocations (issue 12)

Revision ID: b3c5d7e9f112
Revises: 7f180eec41e2
"""
from alembic import op
import sqlalchemy as sa


revision = 'b3c5d7e9f112'
down_revision = '7f180eec41e2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('address_salts',
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('rate_limits',
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('tat', sa.Float(), nullable=False),
    sa.Column('win_start', sa.Float(), nullable=False),
    sa.Column('win_count', sa.Integer(), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('blocked_until', sa.Float(), nullable=False),
    sa.Column('touched', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rate_limits_touched'), ['touched'], unique=False)
    op.create_table('revocations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_revocations_at'), ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('revocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_revocations_at'))
    op.drop_table('revocations')
    with op.batch_alter_table('rate_limits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rate_limits_touched'))
    op.drop_table('rate_limits')
    op.drop_table('address_salts')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('disabled_at')
