"""agents signing in with ProConnect, and their own sessions

Revision ID: d5e8f2a1c6b3
Revises: c4d1e7a9b2f0
Create Date: 2026-12-03 07:10:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = 'd5e8f2a1c6b3'
down_revision = 'c4d1e7a9b2f0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'agent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('idp_id', sa.String(length=255), nullable=False),
        sa.Column('sub', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('given_name', sa.String(length=255), nullable=False),
        sa.Column('usual_name', sa.String(length=255), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('siret', sa.String(length=14), nullable=False),
        sa.Column('organization_label', sa.String(length=255), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agent')),
        sa.UniqueConstraint('idp_id', 'sub', name='uq_agent_idp_id_sub'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'agent_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('id_token', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['agent_id'], ['agent.id'], name=op.f('fk_agent_session_agent_id_agent'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_session')),
    )
    with op.batch_alter_table('agent_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_session_agent_id'), ['agent_id'], unique=False)


def downgrade():
    with op.batch_alter_table('agent_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_session_agent_id'))
    op.drop_table('agent_session')
    op.drop_table('agent')
