"""journal entries as a code and parameters; the names residents know

Revision ID: c4d1e7a9b2f0
Revises: 99fed433ccec
Create Date: 2026-12-02 04:55:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4d1e7a9b2f0'
down_revision = '99fed433ccec'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=64), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))
    with op.batch_alter_table('service_link', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_number', sa.String(length=64), nullable=False, server_default=''))
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invoice_label', sa.String(length=255), nullable=False, server_default=''))


def downgrade():
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_column('invoice_label')
    with op.batch_alter_table('service_link', schema=None) as batch_op:
        batch_op.drop_column('account_number')
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('code')
