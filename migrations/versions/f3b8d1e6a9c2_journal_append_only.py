"""the activity journal is append-only in the database too

A trigger refuses to change a journal entry, and to delete one while its resident's
account exists: only deleting the whole account (the right to erasure) removes the
journal, after the resident's row is gone (PostgreSQL's cascade, or the portal's own
deletes, which remove the resident first).

Revision ID: f3b8d1e6a9c2
Revises: e7a3c9d2b4f1
Create Date: 2026-12-03 07:55:00.000000
"""

from alembic import op

revision = "f3b8d1e6a9c2"
down_revision = "e7a3c9d2b4f1"
branch_labels = None
depends_on = None

MESSAGE = "journal entries are append-only"

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION journal_entry_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM citizen WHERE id = OLD.citizen_id) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN OLD;
    END;
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER journal_entry_no_update BEFORE UPDATE ON journal_entry
    FOR EACH ROW EXECUTE FUNCTION journal_entry_append_only()
    """,
    """
    CREATE TRIGGER journal_entry_no_delete BEFORE DELETE ON journal_entry
    FOR EACH ROW EXECUTE FUNCTION journal_entry_append_only()
    """,
]

SQLITE = [
    f"""
    CREATE TRIGGER journal_entry_no_update BEFORE UPDATE ON journal_entry
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END
    """,
    f"""
    CREATE TRIGGER journal_entry_no_delete BEFORE DELETE ON journal_entry
    WHEN EXISTS (SELECT 1 FROM citizen WHERE id = OLD.citizen_id)
    BEGIN
        SELECT RAISE(ABORT, '{MESSAGE}');
    END
    """,
]


def upgrade():
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL if dialect == "postgresql" else SQLITE:
        op.execute(statement)


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS journal_entry_no_delete ON journal_entry"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS journal_entry_no_delete")
    op.execute("DROP TRIGGER IF EXISTS journal_entry_no_update ON journal_entry"
               if op.get_bind().dialect.name == "postgresql"
               else "DROP TRIGGER IF EXISTS journal_entry_no_update")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS journal_entry_append_only()")
