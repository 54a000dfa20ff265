"""the journal indexed for one resident's pages, newest first

"Mon activité" reads one resident's entries newest first, a page at a time, and the
services they name. With only an index on ``citizen_id``, each page fetched and sorted
every entry of the resident (one table page each, as entries are appended over years
among everybody's), and so did the list of services. One composite index,
``(citizen_id, at, id)`` carrying ``connector_instance``, lets PostgreSQL read just the
page, in the order it is shown, and count the entries and list the services from the
index alone. It replaces the ``citizen_id`` index (its leading column serves every
lookup by resident).

On PostgreSQL it is built ``CONCURRENTLY``: the journal takes writes while a large one is
indexed. If the build is interrupted, PostgreSQL leaves an invalid index behind: drop it
(``DROP INDEX CONCURRENTLY ix_journal_entry_citizen_id_at``) and upgrade again.

Revision ID: 5d1c8e2f7a40
Revises: 59639b86a981
Create Date: 2026-12-04 20:10:00.000000
"""

from alembic import op

revision = "5d1c8e2f7a40"
down_revision = "59639b86a981"
branch_labels = None
depends_on = None

TABLE = "journal_entry"
NEW = "ix_journal_entry_citizen_id_at"
OLD = "ix_journal_entry_citizen_id"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade():
    options = (
        {"postgresql_concurrently": True, "postgresql_include": ["connector_instance"]}
        if _postgresql()
        else {}
    )
    # CONCURRENTLY cannot run inside a transaction: alembic commits what came before.
    with op.get_context().autocommit_block():
        op.create_index(NEW, TABLE, ["citizen_id", "at", "id"], **options)
        op.drop_index(OLD, table_name=TABLE, postgresql_concurrently=_postgresql())


def downgrade():
    with op.get_context().autocommit_block():
        op.create_index(OLD, TABLE, ["citizen_id"], postgresql_concurrently=_postgresql())
        op.drop_index(NEW, table_name=TABLE, postgresql_concurrently=_postgresql())
