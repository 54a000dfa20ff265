"""The activity journal is append-only, in the code and in the database (a trigger on
SQLite and on PostgreSQL): an entry cannot be changed, nor deleted while its resident's
account exists; deleting the whole account erases it (the right to erasure)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.account.data import delete_account
from portal.extensions import db
from portal.models import Citizen, JournalEntry
from portal.models.journal import JournalIsAppendOnly


def _resident_with_an_entry(app: Flask) -> tuple[int, int]:
    with app.app_context():
        citizen = Citizen(sub="s" * 64, given_name="Ada", family_name="Lovelace")
        db.session.add(citizen)
        db.session.flush()
        entry = JournalEntry.record(citizen.id, "export_data")
        db.session.commit()
        return citizen.id, entry.id


def test_the_code_refuses_to_change_an_entry(app: Flask) -> None:
    _citizen_id, entry_id = _resident_with_an_entry(app)
    with app.app_context():
        entry = db.session.get(JournalEntry, entry_id)
        assert entry is not None
        entry.outcome = "failure"
        with pytest.raises(JournalIsAppendOnly):
            db.session.commit()
        db.session.rollback()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entry SET outcome = 'failure' WHERE id = :id",
        "UPDATE journal_entry SET params = NULL WHERE id = :id",
        "DELETE FROM journal_entry WHERE id = :id",
    ],
)
def test_the_database_refuses_to_change_or_delete_an_entry(app: Flask, statement: str) -> None:
    _citizen_id, entry_id = _resident_with_an_entry(app)
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement), {"id": entry_id})
        db.session.rollback()
        entry = db.session.get(JournalEntry, entry_id)
        assert entry is not None and entry.outcome == "success"


def test_deleting_the_account_erases_its_journal(app: Flask) -> None:
    citizen_id, entry_id = _resident_with_an_entry(app)
    with app.app_context():
        delete_account(citizen_id)
        db.session.commit()
        assert db.session.get(JournalEntry, entry_id) is None
        assert db.session.get(Citizen, citizen_id) is None
