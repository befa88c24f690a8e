"""Webhook subscriptions and deliveries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 18:53:54.504008
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('target_url', sa.String(length=2000), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('secret_encrypted', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('hooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hooks_workspace_id'), ['workspace_id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('workspace_id', sa.Integer(), nullable=False),
    sa.Column('hook_id', sa.Integer(), nullable=True),
    sa.Column('target_url', sa.String(length=2000), nullable=False),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['hook_id'], ['hooks.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workspace_id'], ['workspaces.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deliveries_hook_id'), ['hook_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_deliveries_workspace_id'), ['workspace_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deliveries_workspace_id'))
        batch_op.drop_index(batch_op.f('ix_deliveries_hook_id'))

    op.drop_table('deliveries')
    with op.batch_alter_table('hooks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hooks_workspace_id'))

    op.drop_table('hooks')
