"""never reuse citizen, link and snapshot ids on SQLite

Revision ID: a7c3e91d2b40
Revises: f06843b46f5d
Create Date: 2026-12-02 05:05:00.000000

Without AUTOINCREMENT, SQLite hands out the largest id + 1: deleting the newest
account made its link id the next resident's, and a snapshot still keyed by the old id
became theirs. With it, ids only grow. PostgreSQL's identity sequences never reuse a
value already: nothing to do there.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = "a7c3e91d2b40"
down_revision = "f06843b46f5d"
branch_labels = None
depends_on = None

TABLES = ("citizen", "service_link", "connector_snapshot")


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade():
    _recreate(True)


def downgrade():
    _recreate(False)
