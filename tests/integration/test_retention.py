"""What expires is deleted by ``flask purge``, and what a snapshot keeps is only what the
pages need — over real HTTP to the sandbox's identity provider and back-ends."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    AuthSession,
    ConnectorSnapshot,
    InstanceProbe,
    JobRun,
    ReminderDigest,
    ReminderSent,
    ServiceLink,
    WriteRecord,
)
from portal.models._types import utcnow
from tests.integration.test_account import HX, citizen_id, text
from tests.support import Sandbox, sign_in

MARIE_APPLICATION_NUMBER = "0332511008712"


def purge(app: Flask) -> list[str]:
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_purge_deletes_expired_sessions_old_writes_and_old_or_orphan_snapshots(
    services_app: Flask,
) -> None:
    marie, amina, eloise = (services_app.test_client() for _ in range(3))
    sign_in(marie, "marie-therese")
    sign_in(amina, "amina")
    sign_in(eloise, "eloise")
    assert marie.get("/account/todo", headers=HX).status_code == 200  # leaves snapshots
    now = utcnow()
    marie_id = citizen_id(services_app, "Marie")
    with services_app.app_context():
        # Amina left 2 hours ago (idle timeout: 30 min); Éloïse is active, but signed in
        # more than 12 hours ago (absolute timeout).
        amina_session = db.session.execute(
            db.select(AuthSession).filter_by(citizen_id=citizen_id(services_app, "Amina"))
        ).scalar_one()
        amina_session.last_seen_at = now - timedelta(hours=2)
        eloise_session = db.session.execute(
            db.select(AuthSession).filter_by(citizen_id=citizen_id(services_app, "Éloïse"))
        ).scalar_one()
        eloise_session.created_at = now - timedelta(hours=13)
        eloise_session.last_seen_at = now
        old = now - timedelta(days=31)
        for n, (state, at) in enumerate(
            [("done", old), ("failed", old), ("pending", old), ("done", now - timedelta(days=1))]
        ):
            db.session.add(
                WriteRecord(
                    key=f"{n:032x}",
                    citizen_id=marie_id,
                    instance_slug="bib-merignac",
                    action="renew_loan",
                    state=state,
                    created_at=at,
                    updated_at=at,
                )
            )
        snapshots = db.session.execute(db.select(ConnectorSnapshot)).scalars().all()
        assert len(snapshots) >= 3
        snapshots[0].fetched_at = now - timedelta(days=31)
        db.session.add(
            ConnectorSnapshot(
                instance_slug="bib-merignac",
                key="patron:gone",
                subject="999999",  # a link deleted long ago
                payload="{}",
                fetched_at=now,
            )
        )
        # The worker's probes (kept 2 days) and runs (succeeded: kept 7 days).
        db.session.add_all(
            [
                InstanceProbe(
                    instance_slug="bib-merignac", checked_at=now - timedelta(days=3), ok=True
                ),
                InstanceProbe(instance_slug="bib-merignac", checked_at=now, ok=True),
                JobRun(
                    name="purge-expired",
                    period="old",
                    state="succeeded",
                    updated_at=now - timedelta(days=8),
                ),
                JobRun(name="purge-expired", period="new", state="succeeded", updated_at=now),
            ]
        )
        # Reminders: one whose deadline passed 35 days ago (gone, with its digest), one
        # still to come (kept, with its digest, however old the digest is).
        today = now.date()
        for n, (day, due_on) in enumerate(
            [
                (today - timedelta(days=40), today - timedelta(days=35)),
                (today - timedelta(days=40), today + timedelta(days=3)),
            ]
        ):
            digest = ReminderDigest(citizen_id=marie_id, day=day + timedelta(days=n), state="sent")
            db.session.add(digest)
            db.session.flush()
            db.session.add(
                ReminderSent(
                    key=f"{n:064x}",
                    citizen_id=marie_id,
                    digest_id=digest.id,
                    kind="mandate_ending",
                    due_on=due_on,
                    lead_days=30,
                )
            )
        db.session.commit()
        snapshots_before = len(snapshots) + 1

    assert purge(services_app) == [
        "2 expired session(s) deleted",
        "2 write record(s) older than 30 days deleted",
        "1 snapshot(s) older than 30 days deleted",
        "1 snapshot(s) of links that no longer exist deleted",
        "0 expired agent session(s) deleted",
        "0 agent access request(s) older than 30 days deleted",
        "0 desk visit(s) past their step deleted",
        "0 assisted session(s) older than 365 days deleted",
        "0 mandate(s) ended more than 366 days ago deleted",
        "0 desk journal line(s) older than 366 days deleted",
        "0 measurement event(s) older than 396 days deleted",
        "0 past day(s)' visitor key(s) deleted",
        "1 connector probe(s) older than 2 days deleted",
        "1 old job run(s) deleted",
        "1 reminder(s) whose deadline passed more than 30 days ago deleted",
        "1 old reminder digest(s) deleted",
    ]
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ReminderSent)) == 1
        assert db.session.scalar(db.select(db.func.count()).select_from(ReminderDigest)) == 1
        assert db.session.scalar(db.select(db.func.count()).select_from(AuthSession)) == 1
        states = sorted(db.session.execute(db.select(WriteRecord.state)).scalars())
        assert states == ["done", "pending"]
        remaining = db.session.scalar(db.select(db.func.count()).select_from(ConnectorSnapshot))
        assert remaining == snapshots_before - 2
    # The active resident is still signed in; the expired ones are asked to sign in again.
    assert marie.get("/").status_code == 200
    assert amina.get("/").status_code == 302
    assert eloise.get("/").status_code == 302

    # Run again: nothing left to do.
    assert {line.split(" ", 1)[0] for line in purge(services_app)} == {"0"}


def test_the_housing_snapshot_keeps_no_application_number(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox
) -> None:
    sign_in(services_client, "marie-therese")
    page = text(services_client.get("/services/logement-metropole"))
    assert MARIE_APPLICATION_NUMBER in page  # shown to her, read live
    with services_app.app_context():
        link_id = db.session.execute(
            db.select(ServiceLink.id).filter_by(instance_slug="logement-metropole")
        ).scalar_one()
        [payload] = db.session.execute(
            db.select(ConnectorSnapshot.payload).filter_by(subject=str(link_id))
        ).scalars()
    assert MARIE_APPLICATION_NUMBER not in payload
    assert '"status"' in payload and '"expires_on"' in payload

    # The back-end down: the card and the page come from the copy, without the number.
    fc_sandbox.fault("housing", "metropole", "error500")
    card = services_client.get("/services/logement-metropole/card", headers=HX)
    assert card.status_code == 200
    html = text(card)
    assert "Statut" in html and MARIE_APPLICATION_NUMBER not in html
    assert "Demande n°" not in html
    page = services_client.get("/services/logement-metropole")
    assert page.status_code == 200
    assert "Déposée le" in text(page) and MARIE_APPLICATION_NUMBER not in text(page)


def test_purge_deletes_old_desk_visits_sessions_mandates_and_desk_journal_lines(
    app: Flask,
) -> None:
    from portal.mandates import desk_journal
    from portal.models import (
        Agent,
        AssistedSession,
        Citizen,
        Desk,
        DeskJournalEntry,
        DeskVisit,
        Mandate,
        MandateRevocation,
        MandateScope,
    )

    now = utcnow()
    long_ago = now - timedelta(days=400)
    with app.app_context():
        desk = Desk(name="France services de Pessac", siret="21330063500017")
        agent = Agent(idp_id="idp", sub="sub", name="Karim")
        citizen = Citizen(sub="c" * 64, given_name="Élodie", family_name="Martin")
        db.session.add_all([desk, agent, citizen])
        db.session.flush()

        def mandate(reference: str, starts: object, ends: object) -> Mandate:
            row = Mandate(
                reference=reference,
                desk_id=desk.id,
                citizen_id=citizen.id,
                duration="1y",
                starts_at=starts,
                ends_at=ends,
                legal_version="2026-12",
                terms_hash="0" * 64,
                visit_id=reference,
                created_at=starts,
            )
            db.session.add(row)
            db.session.flush()
            db.session.add(MandateScope(mandate_id=row.id, scope="bib-pessac"))
            return row

        old = mandate("M-AAAA-AAAA", now - timedelta(days=800), now - timedelta(days=367))
        # Revoked long ago, but its own end is within the year: kept (the database's
        # guard looks at that end).
        revoked = mandate("M-BBBB-BBBB", now - timedelta(days=700), now - timedelta(days=300))
        db.session.add(
            MandateRevocation(
                mandate_id=revoked.id, at=now - timedelta(days=690), by_kind="citizen"
            )
        )
        db.session.add(MandateRevocation(mandate_id=old.id, at=long_ago, by_kind="desk"))
        recent = mandate("M-CCCC-CCCC", now - timedelta(days=10), now + timedelta(days=20))
        for n, (started, mandate_row) in enumerate(
            [(long_ago, recent), (now - timedelta(days=2), recent), (long_ago, old)]
        ):
            db.session.add(
                AssistedSession(
                    id=f"s{n}",
                    mandate_id=mandate_row.id,
                    agent_id=agent.id,
                    desk_id=desk.id,
                    started_at=started,
                    last_seen_at=started,
                )
            )
        for n, step in enumerate([now - timedelta(minutes=6), now - timedelta(minutes=1)]):
            db.session.add(
                DeskVisit(
                    id=f"v{n}", desk_id=desk.id, agent_id=agent.id, duration="1m", step_at=step
                )
            )
        db.session.add(
            DeskVisit(
                id="used",
                desk_id=desk.id,
                agent_id=agent.id,
                duration="1y",
                step_at=now,
                mandate_id=old.id,
            )
        )
        old_line = desk_journal(desk.id, "mandate_opened", mandate=old)
        old_line.at = now - timedelta(days=367)
        desk_journal(desk.id, "mandate_revoked", mandate=recent)
        db.session.commit()

    lines = purge(app)
    assert lines[6:10] == [
        "1 desk visit(s) past their step deleted",  # and the one of the old mandate, with it
        "2 assisted session(s) older than 365 days deleted",
        "1 mandate(s) ended more than 366 days ago deleted",
        "1 desk journal line(s) older than 366 days deleted",
    ]
    with app.app_context():
        references = sorted(db.session.execute(db.select(Mandate.reference)).scalars())
        assert references == ["M-BBBB-BBBB", "M-CCCC-CCCC"]
        assert db.session.scalar(db.select(db.func.count()).select_from(MandateScope)) == 2
        assert db.session.scalar(db.select(db.func.count()).select_from(MandateRevocation)) == 1
        assert sorted(db.session.execute(db.select(AssistedSession.id)).scalars()) == ["s1"]
        assert list(db.session.execute(db.select(DeskVisit.id)).scalars()) == ["v1"]
        [line] = db.session.execute(db.select(DeskJournalEntry)).scalars()
        assert line.mandate_reference == "M-CCCC-CCCC"
    assert {line.split(" ", 1)[0] for line in purge(app)} == {"0"}
