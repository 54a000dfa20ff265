"""The resident's side of mandates: "Mes mandats" lists what they gave help desks and
what was done under it, revokes a mandate or one of its services online, the dashboard
says when one was opened or ends soon, "Mon activité" names the adviser and the desk,
and deleting the account takes the mandates with it — over the Flask test client, the
resident signing in through the sandbox."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.actor import Actor
from portal.extensions import db
from portal.mandates import live_scopes, revoke
from portal.mandates.legal import CURRENT
from portal.mandates.resident import mandate_opened_message, notify_mandate_opened
from portal.models import (
    Agent,
    AssistedSession,
    Citizen,
    DeskJournalEntry,
    DeskVisit,
    JournalEntry,
    Mandate,
    MandateRevocation,
    MandateScope,
)
from portal.models._types import utcnow
from portal.notify import send_mail
from tests.integration.test_desks import SIRET_A, SIRET_B, add_desk
from tests.support import Sandbox, open_test_mandate, portal_settings, provision_agent, sign_in

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
PETIT_PRINCE = {"title": "Le Petit Prince"}


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def visible(html: str) -> str:
    """What a person reads: no tags, no attributes (a ``<time datetime>`` is for machines)."""
    body = html.split('<main id="main"', 1)[-1].split("</main>", 1)[0]
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", body))


def csrf(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(text(client.get(path)))
    assert match, f"no form token on {path}"
    return match.group(1)


@dataclass
class Setting:
    """A signed-in resident, two desks, and Claire, an adviser of the first."""

    app: Flask
    client: FlaskClient
    citizen: int
    desk: int
    other_desk: int
    agent: int
    references: list[str] = field(default_factory=list)

    def mandate(self, scopes: list[str], *, desk: int | None = None, **options: str) -> str:
        return open_test_mandate(
            self.app,
            citizen_id=self.citizen,
            desk_id=desk or self.desk,
            agent_id=self.agent,
            scopes=scopes,
            **options,
        )

    def row(self, reference: str) -> Mandate:
        with self.app.app_context():
            mandate = db.session.execute(
                db.select(Mandate).filter_by(reference=reference)
            ).scalar_one()
            mandate.scopes, mandate.revocations  # noqa: B018  (loaded before leaving)
            db.session.expunge(mandate)
            return mandate


def citizen_of(app: Flask, given_name_start: str) -> int:
    with app.app_context():
        return db.session.execute(
            db.select(Citizen.id).filter(Citizen.given_name.startswith(given_name_start))
        ).scalar_one()


@pytest.fixture
def setting(services_app: Flask, services_client: FlaskClient) -> Setting:
    desk = add_desk(services_app, "France services de Pessac", SIRET_A)
    other = add_desk(services_app, "Mairie de Mérignac", SIRET_B, communes="Mérignac")
    provision_agent(services_app, "claire")
    with services_app.app_context():
        agent = db.session.execute(db.select(Agent.id)).scalar_one()
    assert sign_in(services_client, "eloise").status_code in (302, 303)
    return Setting(
        services_app, services_client, citizen_of(services_app, "Éloïse"), desk, other, agent
    )


def past_mandate(s: Setting, scopes: list[str], days_ago: int = 60) -> str:
    """A one-month mandate that ended long ago (written directly: its dates are in the
    past, which opening one never does)."""
    with s.app.app_context():
        start = utcnow() - timedelta(days=days_ago)
        reference = "M-PAST-" + secrets.token_hex(2).upper()
        mandate = Mandate(
            reference=reference,
            desk_id=s.other_desk,
            citizen_id=s.citizen,
            opened_by_agent_id=s.agent,
            duration="1m",
            channel="desk",
            starts_at=start,
            ends_at=start + timedelta(days=30),
            legal_version=CURRENT,
            terms_hash="0" * 64,
            visit_id=secrets.token_hex(16),
            desk_name="Mairie de Mérignac",
            adviser_name="Claire",
            created_at=start,
        )
        db.session.add(mandate)
        db.session.flush()
        for scope in scopes:
            db.session.add(MandateScope(mandate_id=mandate.id, scope=scope))
        db.session.commit()
        return reference


def adviser_action(s: Setting, reference: str, *, channel: str = "desk") -> None:
    mandate = s.row(reference)
    with s.app.app_context():
        actor = Actor.adviser(
            s.agent,
            s.citizen,
            mandate_id=mandate.id,
            channel=channel,
            scopes=frozenset(live_scopes(mandate)),
        )
        JournalEntry.record(
            s.citizen,
            "renew_loan",
            actor=actor,
            connector_instance="bib-merignac",
            code="renew_loan",
            params=PETIT_PRINCE,
        )
        db.session.commit()


# -- the list ------------------------------------------------------------------------------


def test_the_list_shows_active_then_expired_then_revoked_mandates_in_words(
    setting: Setting,
) -> None:
    s = setting
    expired = past_mandate(s, ["bib-merignac"])
    revoked = s.mandate(["cantine-bordeaux"], desk=s.other_desk)
    active = s.mandate(["bib-merignac", "bib-merignac:payments", "bib-pessac"])
    with s.app.app_context():
        row = db.session.execute(db.select(Mandate).filter_by(reference=revoked)).scalar_one()
        revoke(row, None, by_kind="desk", by_id=str(s.agent), by_label="Mairie de Mérignac")
        row = db.session.execute(db.select(Mandate).filter_by(reference=active)).scalar_one()
        revoke(row, "bib-pessac", by_kind="citizen", by_id=str(s.citizen))
        db.session.commit()
    adviser_action(s, active, channel="phone")

    r = s.client.get("/account/mandates")
    assert r.status_code == 200
    html = text(r)
    page = visible(html)
    # Active first, then ended, then revoked.
    assert page.index(active) < page.index(expired) < page.index(revoked)
    assert "En cours, jusqu" in page and "Terminé le" in page and "Révoqué le" in page
    # The desk, where it is and how to call it; the services in plain words.
    assert "France services de Pessac" in page and "1 place de la Mairie, 33000 Bordeaux" in page
    assert "05 56 00 00 00" in page
    assert "Médiathèque de Mérignac" in page
    assert re.search(r"Payer les factures\s?: Médiathèque de Mérignac", page)
    assert re.search(r"Médiathèque de Pessac – révoqué le \d", page)
    # What was done under it: what, by whom, how.
    assert "Prolongation d'un prêt" in page and "Le Petit Prince" in page
    assert "Claire" in page and "Par téléphone" in page
    # Never an ISO date or an internal id.
    assert not ISO_DATE.search(page), ISO_DATE.search(page)
    # Revoking offered on the active mandate only, whole or one service.
    assert f'href="/account/mandates/{active}/revoke"' in html
    assert f'href="/account/mandates/{active}/revoke?scope=bib-merignac"' in html
    assert f"/account/mandates/{expired}/revoke" not in html
    assert f"/account/mandates/{revoked}/revoke" not in html
    # Linked from the account's navigation.
    assert 'href="/account/mandates"' in text(s.client.get("/account/activity"))


def test_a_resident_with_no_mandate_is_told_so(setting: Setting) -> None:
    page = visible(text(setting.client.get("/account/mandates")))
    assert "Vous n'avez donné aucun mandat" in page


# -- revoking ------------------------------------------------------------------------------


def test_revoking_one_service_leaves_the_others_and_writes_both_journals(
    setting: Setting,
) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    path = f"/account/mandates/{reference}/revoke"
    confirm = visible(text(s.client.get(path + "?scope=bib-pessac")))
    assert "Médiathèque de Pessac" in confirm and "restent couverts" in confirm
    assert "Médiathèque de Mérignac" in confirm
    token = csrf(s.client, path + "?scope=bib-pessac")
    r = s.client.post(path, data={"csrf_token": token, "scope": "bib-pessac"})
    assert r.status_code == 303 and r.headers["Location"].endswith("/account/mandates")
    assert "n'est plus couvert par le mandat" in text(s.client.get("/account/mandates"))
    assert live_scopes(s.row(reference)) == {"bib-merignac"}
    with s.app.app_context():
        [line] = db.session.execute(db.select(DeskJournalEntry)).scalars()
        assert (line.desk_id, line.action, line.mandate_reference) == (
            s.desk,
            "scope_revoked",
            reference,
        )
        assert line.params == {"by": "citizen", "scope": "bib-pessac"}
        [revocation] = db.session.execute(db.select(MandateRevocation)).scalars()
        assert (revocation.by_kind, revocation.by_id) == ("citizen", str(s.citizen))
    activity = visible(text(s.client.get("/account/activity")))
    assert "Révocation d'un service d'un mandat" in activity
    assert "Médiathèque de Pessac" in activity
    english = visible(text(s.client.get("/account/activity?lang=en")))
    assert "Revocation of one service of a mandate" in english


def test_revoking_the_last_service_ends_the_mandate_and_twice_changes_nothing(
    setting: Setting,
) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    path = f"/account/mandates/{reference}/revoke"
    token = csrf(s.client, path)
    s.client.post(path, data={"csrf_token": token, "scope": "bib-pessac"})
    confirm = visible(text(s.client.get(path + "?scope=bib-merignac")))
    assert "met fin à tout le mandat" in confirm
    r = s.client.post(path, data={"csrf_token": token, "scope": "bib-merignac"})
    assert r.status_code == 303
    mandate = s.row(reference)
    assert live_scopes(mandate) == set()
    assert [r.scope for r in mandate.revocations] == ["bib-pessac", None]
    # The same form sent again (a second tab, a double click): nothing changes.
    again = s.client.post(path, data={"csrf_token": token, "scope": "bib-merignac"})
    assert again.status_code == 303
    assert "rien n'a changé" in text(s.client.get("/account/mandates"))
    whole = s.client.post(path, data={"csrf_token": token})
    assert whole.status_code == 303
    assert len(s.row(reference).revocations) == 2
    with s.app.app_context():
        actions = db.session.scalars(
            db.select(DeskJournalEntry.action).order_by(DeskJournalEntry.id)
        ).all()
        codes = db.session.scalars(
            db.select(JournalEntry.code).where(JournalEntry.code.like("mandate%"))
        ).all()
    assert actions == ["scope_revoked", "mandate_revoked"]
    assert sorted(codes) == ["mandate_revoked", "mandate_scope_revoked"]
    # The confirmation page of an ended mandate offers nothing to send.
    ended = text(s.client.get(path))
    assert "déjà pris fin" in ended and '<form method="post" action="/account/mandates' not in ended


def test_revoking_the_whole_mandate_takes_effect_at_once(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    path = f"/account/mandates/{reference}/revoke"
    confirm = visible(text(s.client.get(path)))
    assert "ne pourra plus rien faire pour vous" in confirm
    assert "Médiathèque de Pessac" in confirm and "Médiathèque de Mérignac" in confirm
    r = s.client.post(path, data={"csrf_token": csrf(s.client, path)})
    assert r.status_code == 303
    assert live_scopes(s.row(reference)) == set()
    page = visible(text(s.client.get("/account/mandates")))
    assert "Le mandat est révoqué" in page and "Révoqué le" in page


def test_bad_input_is_a_message_or_not_found_never_an_error(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    expired = past_mandate(s, ["bib-merignac"])
    path = f"/account/mandates/{reference}/revoke"
    token = csrf(s.client, path)
    for garbage in ("x", "M-0000-0000", "%00", "M-" + "A" * 300, "12", "../etc"):
        assert s.client.get(f"/account/mandates/{garbage}/revoke").status_code == 404
        assert (
            s.client.post(f"/account/mandates/{garbage}/revoke", data={"csrf_token": token})
        ).status_code == 404
    assert s.client.get(path + "?scope=eau-bordeaux").status_code == 404
    unknown = s.client.post(path, data={"csrf_token": token, "scope": "eau-bordeaux"})
    assert unknown.status_code == 404
    # A reference typed loosely is still found.
    assert s.client.get(f"/account/mandates/{reference.lower()}/revoke").status_code == 200
    # An ended mandate: said so, nothing to send, and a POST changes nothing.
    page = visible(text(s.client.get(f"/account/mandates/{expired}/revoke")))
    assert "déjà pris fin" in page
    r = s.client.post(f"/account/mandates/{expired}/revoke", data={"csrf_token": token})
    assert r.status_code == 303
    assert s.row(expired).revocations == []
    assert live_scopes(s.row(reference)) == {"bib-merignac", "bib-pessac"}


def test_without_the_form_token_nothing_is_revoked(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac"])
    r = s.client.post(f"/account/mandates/{reference}/revoke", data={})
    assert r.status_code == 400
    assert live_scopes(s.row(reference)) == {"bib-merignac"}


def test_another_resident_neither_sees_nor_revokes_a_mandate(
    setting: Setting, services_app: Flask
) -> None:
    s = setting
    reference = s.mandate(["bib-merignac"])
    other = services_app.test_client()
    sign_in(other, "marie-therese")
    page = text(other.get("/account/mandates"))
    assert reference not in page and "Vous n'avez donné aucun mandat" in page
    path = f"/account/mandates/{reference}/revoke"
    assert other.get(path).status_code == 404
    token = csrf(other, "/account/data")
    assert other.post(path, data={"csrf_token": token}).status_code == 404
    assert live_scopes(s.row(reference)) == {"bib-merignac"}
    # Signed out: sent to sign in.
    assert services_app.test_client().get("/account/mandates").status_code in (302, 303)


def test_an_adviser_acting_for_the_resident_is_refused(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac"])
    mandate = s.row(reference)
    from flask import g

    def act_as_adviser() -> None:  # what the assisted session sets for its requests
        if g.get("citizen") is not None:
            g.actor = Actor.adviser(
                s.agent, s.citizen, mandate_id=mandate.id, channel="desk", scopes=frozenset()
            )

    # After the session's loader, which sets the resident's actor.
    s.app.before_request_funcs.setdefault(None, []).append(act_as_adviser)
    r = s.client.get("/account/mandates")
    assert r.status_code == 403
    assert "ne peut ni voir ni modifier ses mandats" in text(r)
    assert s.client.get(f"/account/mandates/{reference}/revoke").status_code == 403
    token = csrf(s.client, "/account/activity")
    r = s.client.post(f"/account/mandates/{reference}/revoke", data={"csrf_token": token})
    assert r.status_code == 403
    assert live_scopes(s.row(reference)) == {"bib-merignac"}
    # Nor is the page offered to them.
    assert 'href="/account/mandates"' not in text(s.client.get("/account/activity"))


# -- the dashboard, and "Mon activité" -----------------------------------------------------


def test_the_dashboard_says_a_mandate_was_opened_and_one_ends_soon(setting: Setting) -> None:
    s = setting
    assert "Un mandat a été ouvert" not in text(s.client.get("/"))
    s.mandate(["bib-merignac"])
    past_mandate(s, ["bib-pessac"], days_ago=25)  # ends in 5 days
    page = visible(text(s.client.get("/")))
    assert "Un mandat a été ouvert le " in page and "au guichet «\u00a0France services" in page
    assert "Votre mandat donné à «\u00a0Mairie de Mérignac\u00a0» prend fin le" in page
    assert "Voir mes mandats" in page
    assert not ISO_DATE.search(page)


def test_activity_says_an_adviser_and_their_desk_did_it(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac"])
    adviser_action(s, reference, channel="desk")
    adviser_action(s, reference, channel="phone")
    page = visible(text(s.client.get("/account/activity")))
    assert "Fait pour vous par Claire, France services de Pessac, par téléphone" in page
    assert "Fait pour vous par Claire, France services de Pessac, au guichet" in page
    english = visible(text(s.client.get("/account/activity?lang=en")))
    assert "Done for you by Claire, France services de Pessac, by phone" in english


def test_activity_reads_the_mandates_and_advisers_in_one_query_each(setting: Setting) -> None:
    from sqlalchemy import event

    s = setting
    for _ in range(3):
        reference = s.mandate(["bib-merignac"])
        adviser_action(s, reference)
    statements: list[str] = []
    with s.app.app_context():
        engine = db.engine

        def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert s.client.get("/account/activity").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
    assert sum(1 for q in statements if "FROM mandate" in q) == 1
    assert sum(1 for q in statements if "FROM agent" in q) == 1


# -- the data export and the account's deletion ------------------------------------------


def test_the_export_lists_the_mandates(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    adviser_action(s, reference)
    body = s.client.post("/account/data.json", data={"csrf_token": csrf(s.client, "/account/data")})
    [exported] = json.loads(body.get_data(as_text=True))["mandates"]
    assert exported["reference"] == reference
    assert exported["desk"] == "France services de Pessac"
    assert [x["service_title"] for x in exported["services"]] == [
        "Médiathèque de Mérignac",
        "Médiathèque de Pessac",
    ]
    assert exported["status"] == "active" and exported["actions"] == 1


def test_deleting_the_account_deletes_its_mandates(setting: Setting) -> None:
    s = setting
    reference = s.mandate(["bib-merignac", "bib-pessac"])
    mandate = s.row(reference)
    with s.app.app_context():
        row = db.session.get_one(Mandate, mandate.id)
        revoke(row, "bib-pessac", by_kind="citizen", by_id=str(s.citizen))
        db.session.add(
            AssistedSession(
                id=secrets.token_hex(16),
                mandate_id=mandate.id,
                agent_id=s.agent,
                desk_id=s.desk,
            )
        )
        db.session.add(
            DeskVisit(
                id=secrets.token_hex(16),
                desk_id=s.desk,
                agent_id=s.agent,
                duration="1m",
                citizen_id=s.citizen,
                mandate_id=mandate.id,
            )
        )
        db.session.commit()
    adviser_action(s, reference)
    token = csrf(s.client, "/account/delete")
    r = s.client.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    assert r.status_code in (302, 303)
    with s.app.app_context():
        for model in (Mandate, MandateScope, MandateRevocation, AssistedSession, DeskVisit):
            assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0, model
        # The desk's own journal keeps what happened there (a reference, never a name).
        assert db.session.get(Citizen, s.citizen) is None


# -- e-mail ----------------------------------------------------------------------------------


class SmtpSink:
    """A minimal SMTP server on loopback that keeps what it is sent (no TLS, no auth
    beyond accepting AUTH PLAIN)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.messages: list[dict[str, object]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rwb") as stream:
                self._session(stream)

    def _session(self, stream) -> None:  # type: ignore[no-untyped-def]
        def say(line: str) -> None:
            stream.write(line.encode() + b"\r\n")
            stream.flush()

        say("220 sink ready")
        message: dict[str, object] = {"rcpt": []}
        while True:
            raw = stream.readline()
            if not raw:
                return
            command = raw.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say("250-sink")
                say("250 AUTH PLAIN")
            elif verb == "AUTH":
                message["auth"] = command
                say("235 ok")
            elif verb == "MAIL":
                message["from"] = command
                say("250 ok")
            elif verb == "RCPT":
                message["rcpt"].append(command)  # type: ignore[attr-defined]
                say("250 ok")
            elif verb == "DATA":
                say("354 go on")
                lines = []
                while (line := stream.readline()) not in (b".\r\n", b""):
                    lines.append(line)
                message["data"] = b"".join(lines).decode()
                self.messages.append(message)
                message = {"rcpt": []}
                say("250 kept")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:
                say("250 ok")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


def test_send_mail_does_nothing_when_mail_is_not_configured(app: Flask) -> None:
    with app.test_request_context():
        assert send_mail("someone@example.org", "Objet", "Texte") is False


def test_send_mail_hands_the_message_to_the_server(
    database_url: str, fc_sandbox: Sandbox, smtp_sink: SmtpSink
) -> None:
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            mail_url=f"smtp://portal:s%40cret@127.0.0.1:{smtp_sink.port}",
            mail_from="ne-pas-repondre@demonstration.invalid",
        )
    )
    with app.test_request_context():
        assert send_mail("eloise.nguyen@example.org", "Un mandat", "Bonjour,\nun mandat.")
    [message] = smtp_sink.messages
    assert "eloise.nguyen@example.org" in str(message["rcpt"])
    assert "ne-pas-repondre@demonstration.invalid" in str(message["from"])
    assert "Subject: Un mandat" in str(message["data"]) and "un mandat." in str(message["data"])
    assert "auth" in message
    smtp_sink.close()
    with app.test_request_context():
        # The server gone: False, and no exception.
        assert send_mail("eloise.nguyen@example.org", "Un mandat", "x") is False


def test_the_resident_is_told_by_e_mail_when_a_mandate_is_opened(
    setting: Setting, smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    s = setting
    reference = s.mandate(["bib-merignac"])
    settings = s.app.extensions["portal_settings"]
    from dataclasses import replace

    s.app.extensions["portal_settings"] = replace(
        settings, mail_url=f"smtp://127.0.0.1:{smtp_sink.port}", mail_from="portail@example.org"
    )
    with s.app.test_request_context():
        mandate = db.session.execute(db.select(Mandate).filter_by(reference=reference)).scalar_one()
        subject, body = mandate_opened_message(mandate)
        assert notify_mandate_opened(mandate) is True
        smtp_sink.close()
        with caplog.at_level("INFO"):
            assert notify_mandate_opened(mandate) is False  # never raises
    assert "Un mandat a été ouvert" in subject
    assert reference in body and "France services de Pessac" in body
    assert "Médiathèque de Mérignac" in body and "/account/mandates" in body
    [message] = smtp_sink.messages
    assert "eloise" in str(message["rcpt"])
    assert "eloise" not in caplog.text and "example.org" not in caplog.text
