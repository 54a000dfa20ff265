""""Mon activité" pages by position: an index on the resident, the time and the id

Revision ID: b1c4e8d2a7f3
Revises: 59639b86a981
Create Date: 2026-12-04 20:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b1c4e8d2a7f3'
down_revision = '59639b86a981'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.create_index('ix_journal_entry_citizen_at_id', ['citizen_id', 'at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_journal_entry_citizen_at_id')
