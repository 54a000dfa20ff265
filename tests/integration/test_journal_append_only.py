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


# -- mandates and the desk journal -----------------------------------------------------------


def _a_mandate_and_a_desk_line(app: Flask) -> dict[str, int]:
    """A mandate (one service, one revocation) and a line of its desk's journal."""
    from portal.mandates import desk_journal, open_mandate, revoke
    from portal.models import Agent, Desk

    with app.app_context():
        citizen = Citizen(sub="m" * 64, given_name="Ada", family_name="Lovelace")
        desk = Desk(name="France services de Pessac", siret="21330063500017")
        agent = Agent(idp_id="idp", sub="sub", name="Karim")
        db.session.add_all([citizen, desk, agent])
        db.session.flush()
        mandate = open_mandate(
            visit_id="v" * 32,
            desk=desk,
            agent=agent,
            citizen_id=citizen.id,
            scopes=["bib-pessac", "bib-merignac"],
            duration="1m",
            channel="desk",
            legal_version="2026-12",
        )
        revocation = revoke(mandate, "bib-merignac", by_kind="citizen")
        assert revocation is not None
        line = desk_journal(desk.id, "mandate_opened", agent=agent, mandate=mandate)
        db.session.commit()
        return {
            "mandate": mandate.id,
            "mandate_scope": mandate.scopes[0].id,
            "mandate_revocation": revocation.id,
            "desk_journal_entry": line.id,
        }


MANDATE_STATEMENTS = [
    "UPDATE mandate SET ends_at = created_at WHERE id = :id",
    "UPDATE mandate SET reference = 'M-XXXX-XXXX' WHERE id = :id",
    "DELETE FROM mandate WHERE id = :id",
    "UPDATE mandate_scope SET scope = 'bib-bordeaux' WHERE id = :id",
    "DELETE FROM mandate_scope WHERE id = :id",
    "UPDATE mandate_revocation SET scope = NULL WHERE id = :id",
    "DELETE FROM mandate_revocation WHERE id = :id",
    "UPDATE desk_journal_entry SET agent_name = 'Someone else' WHERE id = :id",
    "UPDATE desk_journal_entry SET at = '2020-01-01 00:00:00.000000' WHERE id = :id",
    "DELETE FROM desk_journal_entry WHERE id = :id",
]


@pytest.mark.parametrize("statement", MANDATE_STATEMENTS)
def test_the_database_refuses_to_change_or_delete_mandates_and_desk_lines(
    app: Flask, statement: str
) -> None:
    ids = _a_mandate_and_a_desk_line(app)
    table = statement.split()[2] if statement.startswith("DELETE") else statement.split()[1]
    with app.app_context():
        count = sa.select(sa.func.count()).select_from(sa.table(table))
        before = db.session.execute(count).scalar_one()
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement), {"id": ids[table]})
        db.session.rollback()
        assert db.session.execute(count).scalar_one() == before


def test_the_code_refuses_to_change_a_mandate_or_a_desk_line(app: Flask) -> None:
    from portal.models import DeskJournalEntry, Mandate
    from portal.models.mandate import MandateIsAppendOnly

    ids = _a_mandate_and_a_desk_line(app)
    with app.app_context():
        for model, key, field, value in [
            (Mandate, "mandate", "duration", "1y"),
            (DeskJournalEntry, "desk_journal_entry", "note", "changed"),
        ]:
            row = db.session.get(model, ids[key])
            setattr(row, field, value)
            with pytest.raises(MandateIsAppendOnly):
                db.session.commit()
            db.session.rollback()
