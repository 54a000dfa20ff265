"""The migrations build exactly the schema the models describe: ``flask db check`` on the
database the suite migrated from empty (SQLite, and PostgreSQL in the PostgreSQL run)
finds nothing for autogenerate to add, drop or alter. A model changed without its
migration fails here rather than at the next ``flask db migrate``."""

from __future__ import annotations

from portal import create_app
from portal.config import load_settings


def test_models_match_the_migrations(database_url: str) -> None:
    app = create_app(load_settings({}, database_url=database_url, testing=True))
    result = app.test_cli_runner().invoke(args=["db", "check"])
    # On a difference Flask-Migrate logs what autogenerate would do, then exits 1.
    problems = [line for line in result.output.splitlines() if "INFO" not in line]
    assert result.exit_code == 0, "\n".join(problems) or result.output
