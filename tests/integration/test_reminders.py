"""Residents who turn reminders on get one e-mail a day before their deadlines, read
from the back-ends over real HTTP and sent to a real SMTP server; nobody else gets any.

The SMTP server is ``aiosmtpd``'s, on loopback: the portal speaks SMTP to it exactly as
to a relay. The job runs as the worker runs it (``flask jobs run send-reminders``), twice,
in two threads at once, and in two processes at once.
"""

from __future__ import annotations

import email
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db
from portal.models import JobRun, Mandate, ReminderDigest, ReminderSent, ReminderSettings
from portal.reminders.digest import send_reminders
from portal.reminders.notifiers import Message, SmsNotifier
from portal.services.todo import PARIS
from tests.integration.test_account import CSRF_RE, citizen_id, text
from tests.integration.test_desks import SIRET_A, add_desk, grant
from tests.integration.test_mandate_visit import LIBRARY, act, open_mandate_at_desk, the_mandate
from tests.support import (
    DEMO_LINKS_FILE,
    PROJECT_ROOT,
    Sandbox,
    agent_sign_in,
    count_calls,
    empty_tables,
    free_port,
    portal_settings,
    provision_agent,
    sign_in,
)

MARIE = "marie-therese.dubois@example.org"
#: Marie-Thérèse's Koha loan due in 3 days (``sandbox/backends/koha_data.py``).
LOAN_IN_3_DAYS = "L'Élégance du hérisson"
SENDER = "rappels@demonstration.invalid"


class Recorder:
    """What the SMTP server was handed: one entry per message (envelope and parsed)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)  # type: ignore[attr-defined]
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), parsed))  # type: ignore[attr-defined]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpt, message in self.messages if address in rcpt]


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    yield recorder, port
    controller.stop()


@pytest.fixture
def mail_settings(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str, smtp: tuple[Recorder, int]
) -> dict[str, object]:
    return {
        "database_url": database_url,
        "issuer": fc_sandbox.issuer,
        "connectors_file": connectors_file,
        "demo_links_file": DEMO_LINKS_FILE,
        "mail_url": f"smtp://127.0.0.1:{smtp[1]}",
        "mail_from": SENDER,
        "card_deadline_s": 3.0,
        "page_deadline_s": 4.0,
    }


@pytest.fixture
def mail_app(mail_settings: dict[str, object]) -> Iterator[Flask]:
    values = dict(mail_settings)
    app = create_app(
        portal_settings(str(values.pop("database_url")), str(values.pop("issuer")), **values)
    )
    yield app
    app.extensions["connectors"].close()
    empty_tables(app)


@pytest.fixture
def recorder(smtp: tuple[Recorder, int]) -> Recorder:
    return smtp[0]


def form_token(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(text(client.get(path)))
    assert match is not None
    return match.group(1)


def turn_on(client: FlaskClient, lang: str = "") -> None:
    query = f"?lang={lang}" if lang else ""
    home = text(client.get("/" + query))
    assert "Rappels avant mes échéances" in home or "Reminders before" in home
    token = CSRF_RE.search(home)
    assert token is not None
    r = client.post("/reminders/enable", data={"csrf_token": token.group(1)})
    assert r.status_code == 303 and r.headers["Location"].endswith("/reminders/")


def marie_on(app: Flask, lang: str = "", kinds: dict[str, list[int]] | None = None) -> FlaskClient:
    """Marie-Thérèse signed in, reminders turned on from the dashboard (only ``kinds``
    when given)."""
    marie = app.test_client()
    sign_in(marie, "marie-therese")
    turn_on(marie, lang)
    if kinds is not None:
        only(app, citizen_id(app, "Marie"), kinds)
    return marie


def marie_digest(app: Flask, recorder: Recorder, lang: str = "") -> EmailMessage:
    """The one digest Marie-Thérèse gets once reminders are on and the job ran."""
    marie_on(app, lang)
    run_job(app)
    [message] = recorder.to(MARIE)
    return message


def run_job(app: Flask) -> str:
    """The job run as an operator runs it by hand; what its run row says it did."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", "send-reminders"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        return (
            db.session.scalars(
                db.select(JobRun.summary)
                .filter_by(name="send-reminders")
                .order_by(JobRun.id.desc())
            ).first()
            or ""
        )


def only(app: Flask, citizen: int, kinds: dict[str, list[int]]) -> None:
    with app.app_context():
        prefs = db.session.get(ReminderSettings, citizen)
        assert prefs is not None
        prefs.leads = kinds
        db.session.commit()


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return part.get_content()


def test_resident_turns_reminders_on_and_gets_one_digest_even_when_the_job_runs_twice(
    mail_app: Flask, recorder: Recorder
) -> None:
    marie = mail_app.test_client()
    sign_in(marie, "marie-therese")
    turn_on(marie)
    settings = text(marie.get("/reminders/"))
    assert f"Ils sont envoyés à {MARIE}" in settings

    assert "1 digest(s) sent" in run_job(mail_app)
    assert "0 digest(s) sent" in run_job(mail_app)  # the same day: nothing more

    [message] = recorder.to(MARIE)
    assert message["From"] == SENDER
    assert "échéance" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    plain, html = body(message, "plain"), body(message, "html")
    assert LOAN_IN_3_DAYS in plain and "dans 3 jours" in plain
    assert "L&#39;Élégance du hérisson" in html or LOAN_IN_3_DAYS in html
    # The loan's reminder carries the link to the page where it is renewed.
    assert "Prolonger le prêt\u00a0: http://localhost/services/bib-bordeaux#loans" in plain
    assert 'href="http://localhost/services/bib-bordeaux#loans">Prolonger le prêt</a>' in html
    # One-click unsubscribe (RFC 8058).
    assert re.fullmatch(
        r"<http://localhost/reminders/unsubscribe/[A-Za-z0-9_.-]+>",
        message["List-Unsubscribe"].strip(),  # folded: the line is long
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with mail_app.app_context():
        digests = db.session.scalars(db.select(ReminderDigest)).all()
        assert [(d.state, d.channel) for d in digests] == [("sent", "email")]
        assert digests[0].items == db.session.scalar(
            db.select(db.func.count()).select_from(ReminderSent)
        )


def test_nothing_is_sent_to_residents_who_did_not_turn_reminders_on(
    mail_app: Flask, recorder: Recorder
) -> None:
    sign_in(mail_app.test_client(), "marie-therese")
    sign_in(mail_app.test_client(), "amina")
    assert "0 digest(s) sent" in run_job(mail_app)
    assert recorder.messages == []
    with mail_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ReminderDigest)) == 0

    # Turned on, then off: nothing either.
    marie = mail_app.test_client()
    sign_in(marie, "marie-therese")
    turn_on(marie)
    r = marie.post("/reminders/disable", data={"csrf_token": form_token(marie, "/reminders/")})
    assert r.status_code == 303
    assert "Activer les rappels" in text(marie.get("/reminders/"))
    assert "0 digest(s) sent" in run_job(mail_app)
    assert recorder.messages == []


def test_two_runs_racing_send_one_digest(mail_app: Flask, recorder: Recorder) -> None:
    marie_on(mail_app)
    start = threading.Barrier(2)
    results: list[str] = []

    def run() -> None:
        with mail_app.app_context():
            start.wait()
            results.append(send_reminders())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r.split(" ")[0] for r in results) == ["0", "1"], results
    assert len(recorder.to(MARIE)) == 1


def test_two_worker_processes_at_once_send_one_digest(
    mail_app: Flask, recorder: Recorder, mail_settings: dict[str, object], tmp_path: Path
) -> None:
    marie_on(mail_app)
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "PORTAL_DATABASE_URL": str(mail_settings["database_url"]),
        "PORTAL_CONNECTORS_FILE": str(mail_settings["connectors_file"]),
        "PORTAL_DEMO_LINKS_FILE": "",
        "PORTAL_MAIL_URL": str(mail_settings["mail_url"]),
        "PORTAL_MAIL_FROM": SENDER,
        "PORTAL_BASE_URL": "http://localhost",
        "PORTAL_MEASURE_ENABLED": "false",
    }
    command = [sys.executable, "-m", "flask", "--app", "portal", "jobs", "run", "send-reminders"]
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120)[0].decode() for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    assert len(recorder.to(MARIE)) == 1, outputs


def test_a_back_end_down_is_skipped_then_caught_up(
    mail_app: Flask, recorder: Recorder, fc_sandbox: Sandbox
) -> None:
    marie_on(mail_app, kinds={"library_return": [3, 1]})
    fc_sandbox.fault("koha", "bordeaux", "error500")
    fc_sandbox.fault("library", "merignac", "error500")
    output = run_job(mail_app)
    assert "0 digest(s) sent" in output and "0 not sent" in output, output
    assert "2 service(s) unreadable" in output, output
    assert recorder.messages == []

    fc_sandbox.fault("koha", "bordeaux", None)
    fc_sandbox.fault("library", "merignac", None)
    assert "1 digest(s) sent" in run_job(mail_app)
    [message] = recorder.to(MARIE)
    assert LOAN_IN_3_DAYS in body(message, "plain")


def test_a_failed_send_is_tried_again(
    mail_app: Flask, recorder: Recorder, smtp: tuple[Recorder, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    marie_on(mail_app, kinds={"library_return": [3, 1]})
    import portal.notify

    refused = {"count": 0}

    def refuse(*args: object, **kwargs: object) -> bool:
        refused["count"] += 1
        return False

    monkeypatch.setattr("portal.reminders.notifiers.send_mail", refuse)
    assert "1 not sent" in run_job(mail_app)
    with mail_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ReminderSent)) == 0
    monkeypatch.setattr("portal.reminders.notifiers.send_mail", portal.notify.send_mail)
    assert "1 digest(s) sent" in run_job(mail_app)
    assert refused["count"] == 1 and len(recorder.to(MARIE)) == 1


def test_an_english_speaking_resident_gets_english(mail_app: Flask, recorder: Recorder) -> None:
    message = marie_digest(mail_app, recorder, lang="en")
    assert "upcoming" in message["Subject"]
    plain = body(message, "plain")
    assert "in 3 days" in plain and "Renew the loan" in plain
    assert "Rendre" not in plain and "échéance" not in plain
    assert '<html lang="en">' in body(message, "html")


def unsubscribe_path(message: EmailMessage) -> str:
    return urlsplit(message["List-Unsubscribe"].strip().strip("<>")).path


def test_resident_unsubscribes_in_one_click_without_signing_in(
    mail_app: Flask, recorder: Recorder
) -> None:
    marie = marie_on(mail_app)
    run_job(mail_app)
    [message] = recorder.to(MARIE)
    path = unsubscribe_path(message)
    stranger = mail_app.test_client()  # a mail client: no cookie, no form token

    page = stranger.get(path)
    assert page.status_code == 200
    assert "Confirmer\u00a0: ne plus recevoir de rappels" in text(page)
    with mail_app.app_context():
        assert db.session.get(
            ReminderSettings, citizen_id(mail_app, "Marie")
        ).enabled  # GET changes nothing

    for _ in range(2):  # idempotent
        r = stranger.post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert r.status_code == 200
        assert "vous ne recevrez plus de rappels" in text(r)
    with mail_app.app_context():
        assert not db.session.get(ReminderSettings, citizen_id(mail_app, "Marie")).enabled
    assert "Activer les rappels" in text(marie.get("/reminders/"))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "x" * 20,
        lambda token: token + "." * 500,
        lambda token: "%00%FF..",
    ],
)
def test_a_tampered_unsubscribe_link_is_a_clear_404(
    mail_app: Flask, recorder: Recorder, mangle: object
) -> None:
    message = marie_digest(mail_app, recorder)
    token = unsubscribe_path(message).rsplit("/", 1)[1]
    bad = "/reminders/unsubscribe/" + mangle(token)  # type: ignore[operator]
    stranger = mail_app.test_client()
    for response in (stranger.get(bad), stranger.post(bad, data="List-Unsubscribe=One-Click")):
        assert response.status_code == 404
        assert "Ce lien de désinscription n'est pas valable" in text(response)
    with mail_app.app_context():
        assert db.session.get(ReminderSettings, citizen_id(mail_app, "Marie")).enabled


# -- the settings page -------------------------------------------------------------------


def test_resident_chooses_kinds_and_lead_times_and_the_digest_follows(
    mail_app: Flask, recorder: Recorder
) -> None:
    marie = marie_on(mail_app)
    page = text(marie.get("/reminders/"))
    assert "<legend>Documents à rendre à la bibliothèque</legend>" in page
    assert "3 jours et 1 jour avant" in page and "le jour même" in page
    token = form_token(marie, "/reminders/")
    # Only invoices, 3 days before: the loan due in 3 days is not reminded.
    r = marie.post(
        "/reminders/leads",
        data={
            "csrf_token": token,
            "invoice_due-wanted": "y",
            "invoice_due-lead": "3",
            "library_return-lead": "3,1",
        },
    )
    assert r.status_code == 303
    with mail_app.app_context():
        prefs = db.session.get(ReminderSettings, citizen_id(mail_app, "Marie"))
        assert prefs is not None and prefs.leads == {"invoice_due": [3]}
    run_job(mail_app)
    for message in recorder.to(MARIE):
        assert LOAN_IN_3_DAYS not in body(message, "plain")

    # Nothing ticked, or a lead time not offered: refused and explained, nothing changed.
    for data in (
        {"csrf_token": token},
        {"csrf_token": token, "invoice_due-wanted": "y", "invoice_due-lead": "5"},
    ):
        r = marie.post("/reminders/leads", data=data)
        assert r.status_code == 422
        assert "Il y a un problème" in text(r)
    assert marie.post("/reminders/leads", data={"invoice_due-wanted": "y"}).status_code == 400
    with mail_app.app_context():
        prefs = db.session.get(ReminderSettings, citizen_id(mail_app, "Marie"))
        assert prefs is not None and prefs.leads == {"invoice_due": [3]}


def test_resident_confirms_another_address_by_the_link_sent_to_it(
    mail_app: Flask, recorder: Recorder
) -> None:
    marie = marie_on(mail_app)
    token = form_token(marie, "/reminders/")
    r = marie.post("/reminders/address", data={"csrf_token": token, "email": "pas une adresse"})
    assert r.status_code == 422 and "Saisissez une adresse électronique valide" in text(r)
    assert 'aria-invalid="true"' in text(r)

    other = "marie.autre@example.net"
    r = marie.post("/reminders/address", data={"csrf_token": token, "email": other})
    assert r.status_code == 303
    [confirmation] = recorder.to(other)
    link = re.search(r"http://localhost(/reminders/confirm/\S+)", body(confirmation, "plain"))
    assert link is not None
    # Until it is followed, digests go to the FranceConnect address.
    assert f"Ils sont envoyés à {MARIE}" in text(marie.get("/reminders/"))
    tampered = mail_app.test_client().get(link.group(1)[:-4] + "AAAA")
    assert tampered.status_code == 404
    r = mail_app.test_client().get(link.group(1))  # on the phone, not signed in
    assert r.status_code == 200 and "Adresse confirmée" in text(r)
    assert f"Ils sont envoyés à {other}" in text(marie.get("/reminders/"))
    assert mail_app.test_client().get(link.group(1)).status_code == 404  # used
    run_job(mail_app)
    assert len(recorder.to(other)) == 2 and recorder.to(MARIE) == []


def test_an_adviser_acting_for_the_resident_cannot_open_her_reminders(
    services_app: Flask, services_client: FlaskClient
) -> None:
    desk = add_desk(services_app, "Maison France services du Lac", SIRET_A)
    provision_agent(services_app, "claire")
    grant(services_app, "claire", "adviser", desk)
    sign_in(services_app.test_client(), "marie-therese")
    client = services_client
    agent_sign_in(client, "claire")
    open_mandate_at_desk(client, desk, [LIBRARY])
    act(client, desk, the_mandate(services_app).reference)
    home = text(client.get("/"))
    assert "Vous agissez pour" in home and "/reminders/" not in home
    assert client.get("/reminders/").status_code == 403
    token = form_token(client, "/")
    for path in (
        "/reminders/enable",
        "/reminders/leads",
        "/reminders/address",
        "/reminders/disable",
    ):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    with services_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(ReminderSettings)) == 0


# -- the SMS notifier --------------------------------------------------------------------


class SmsRecorder:
    """An SMS provider's HTTP endpoint on loopback: keeps every JSON body it is POSTed."""

    def __init__(self, status: int = 202) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, object]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sandbox/sms/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("status", [202, 500])
def test_the_sms_notifier_posts_to_the_provider(
    database_url: str, fc_sandbox: Sandbox, status: int
) -> None:
    provider = SmsRecorder(status)
    try:
        app = create_app(portal_settings(database_url, fc_sandbox.issuer, sms_url=provider.url))
        with app.app_context():
            notifier = SmsNotifier()
            assert notifier.configured()
            sent = notifier.send(Message(to="+33600000000", subject="", text="Rendre un livre"))
        assert sent is (status == 202)
        assert provider.received == [{"to": "+33600000000", "text": "Rendre un livre"}]
        with create_app(portal_settings(database_url, fc_sandbox.issuer)).app_context():
            assert not SmsNotifier().configured()
            assert not SmsNotifier().send(Message(to="+33600000000", subject="", text="x"))
    finally:
        provider.close()


def test_a_resident_with_nothing_due_is_read_once_a_day_until_their_settings_change(
    mail_app: Flask, recorder: Recorder
) -> None:
    # Only the housing renewal's opening, on its day: not today in the sandbox.
    marie = marie_on(mail_app, kinds={"housing_renewal": [0]})
    calls = count_calls(mail_app)
    assert "0 digest(s) sent" in run_job(mail_app)
    read = sum(calls.values())
    assert read > 0
    run_job(mail_app)
    assert sum(calls.values()) == read  # not read again today
    assert recorder.messages == []

    # The resident adds the loans: looked at again at once.
    token = form_token(marie, "/reminders/")
    r = marie.post(
        "/reminders/leads",
        data={"csrf_token": token, "library_return-wanted": "y", "library_return-lead": "3,1"},
    )
    assert r.status_code == 303
    assert "1 digest(s) sent" in run_job(mail_app)
    [message] = recorder.to(MARIE)
    assert LOAN_IN_3_DAYS in body(message, "plain")


def test_a_mandate_ending_is_reminded_before_its_end(
    mail_app: Flask, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import portal.reminders.digest as digest
    from tests.integration.test_mandate_notices import setup_mandate

    reference = setup_mandate(mail_app, "1m")  # Marie-Thérèse, in English
    marie = marie_on(mail_app, kinds={"mandate_ending": [7]})
    assert marie.get("/").status_code == 200
    with mail_app.app_context():
        ends_at = db.session.execute(db.select(Mandate.ends_at)).scalar_one()
    # A week before its end (Paris day), back-ends not read: only mandates are chosen.
    later = ends_at - timedelta(days=7, hours=1)
    monkeypatch.setattr(digest, "utcnow", lambda: later)
    monkeypatch.setattr(digest, "paris_today", lambda: later.astimezone(PARIS).date())
    calls = count_calls(mail_app)
    assert "1 digest(s) sent with 1 reminder(s)" in run_job(mail_app)
    assert sum(calls.values()) == 0
    [message] = recorder.to(MARIE)
    plain = body(message, "plain")
    assert "Maison France services du Lac" in plain and "/account/mandates" in plain
    assert reference not in plain  # the reference is on the mandates page
    assert "0 digest(s) sent" in run_job(mail_app)


def test_two_workers_started_from_the_procfile_send_the_loan_reminder_once(
    mail_app: Flask, recorder: Recorder, mail_settings: dict[str, object], tmp_path: Path
) -> None:
    """What an operator does: the Procfile's worker line, twice, with only documented
    variables, and the resident's digest arrives once at the SMTP server."""
    from tests.integration.test_worker import procfile_command

    marie_on(mail_app)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "FLASK_"))}
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        PORTAL_DATABASE_URL=str(mail_settings["database_url"]),
        PORTAL_JOBS_URL=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        PORTAL_CONNECTORS_FILE=str(mail_settings["connectors_file"]),
        PORTAL_DEMO_LINKS_FILE="",
        PORTAL_MAIL_URL=str(mail_settings["mail_url"]),
        PORTAL_MAIL_FROM=SENDER,
    )
    logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
    workers = [
        subprocess.Popen(  # noqa: S603
            procfile_command("worker"),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert all(w.poll() is None for w in workers), "a worker stopped"
            with mail_app.app_context():
                done = db.session.scalars(
                    db.select(JobRun).filter_by(name="send-reminders", state="succeeded")
                ).all()
                db.session.remove()
            if done:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no reminders run:\n" + "\n".join(p.read_text() for p in logs))
        time.sleep(2)  # a second run, were there one, would have sent by now
        assert "1 digest(s) sent" in done[0].summary
        [message] = recorder.to(MARIE)
        assert LOAN_IN_3_DAYS in body(message, "plain")
        assert MARIE not in "".join(p.read_text() for p in logs)  # never an address in logs
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
