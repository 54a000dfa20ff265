"""help desks, the agents' roles, access requests and the inactivity warning

Revision ID: e7a3c9d2b4f1
Revises: d5e8f2a1c6b3
Create Date: 2026-12-03 07:45:00

"""
from alembic import op
import sqlalchemy as sa



# revision identifiers, used by Alembic.
revision = 'e7a3c9d2b4f1'
down_revision = 'd5e8f2a1c6b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'desk',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('siret', sa.String(length=14), nullable=False),
        sa.Column('address', sa.Text(), nullable=False),
        sa.Column('communes', sa.JSON(), nullable=False),
        sa.Column('phone', sa.String(length=32), nullable=False),
        sa.Column('opening_hours', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk')),
        sa.UniqueConstraint('siret', name=op.f('uq_desk_siret')),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'agent_role',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('agent_id', sa.Integer(), nullable=False),
        sa.Column('desk_id', sa.Integer(), nullable=True),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('instances', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('adviser', 'referent', 'service_owner', 'territory_admin')",
            name=op.f('ck_agent_role_role'),
        ),
        sa.CheckConstraint(
            "(desk_id IS NOT NULL) = (role IN ('adviser', 'referent'))",
            name=op.f('ck_agent_role_desk_for_role'),
        ),
        sa.ForeignKeyConstraint(
            ['agent_id'], ['agent.id'], name=op.f('fk_agent_role_agent_id_agent'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['desk_id'], ['desk.id'], name=op.f('fk_agent_role_desk_id_desk'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_role')),
        sa.UniqueConstraint('agent_id', 'desk_id', name='uq_agent_role_agent_id'),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('agent_role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_role_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agent_role_desk_id'), ['desk_id'], unique=False)
    op.create_table(
        'agent_access_request',
        sa.Column('reference', sa.String(length=14), nullable=False),
        sa.Column('idp_id', sa.String(length=255), nullable=False),
        sa.Column('sub', sa.String(length=255), nullable=False),
        sa.Column('given_name', sa.String(length=255), nullable=False),
        sa.Column('usual_name', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('reference', name=op.f('pk_agent_access_request')),
    )
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('agent', schema=None) as batch_op:
        batch_op.drop_column('opened_at')
        batch_op.drop_column('warned_at')
    op.drop_table('agent_access_request')
    with op.batch_alter_table('agent_role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_role_desk_id'))
        batch_op.drop_index(batch_op.f('ix_agent_role_agent_id'))
    op.drop_table('agent_role')
    op.drop_table('desk')
