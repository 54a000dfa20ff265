"""What the portal sends, seen in the sandbox: e-mail over real SMTP to the sink, SMS posted
to the recorder, both listed on /sandbox/mail and /sandbox/sms (and their JSON)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import httpx
import pytest
from flask import Flask

from sandbox.mail import MAX_MESSAGE_BYTES, MailSink
from sandbox.messages import outbox_of
from sandbox.outbox import DEFAULT_KEEP, Outbox
from tests.support import PROJECT_ROOT

UNSUBSCRIBE = "http://127.0.0.1:5000/rappels/desabonnement/jeton-de-test"


@pytest.fixture
def sandbox_config(sandbox_config: dict, tmp_path: Path) -> dict:
    return {**sandbox_config, "SANDBOX_OUTBOX": str(tmp_path / "outbox.sqlite3")}


@pytest.fixture
def sink(sandbox_app: Flask) -> Iterator[MailSink]:
    """The SMTP sink on a free loopback port, writing to the sandbox app's outbox."""
    sink = MailSink(outbox_of(sandbox_app), port=0).start()
    yield sink
    sink.stop()


@pytest.fixture
def http(live_sandbox: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_sandbox, timeout=5) as client:
        yield client


def reminder(to: str = "eloise.nguyen@example.org", subject: str = "Rappel : prêt à rendre"):
    """A reminder as the portal builds it: text and HTML, one-click unsubscribe."""
    message = EmailMessage()
    message["From"] = "Métropole de démonstration <ne-pas-repondre@demonstration.invalid>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="demonstration.invalid")
    message["List-Unsubscribe"] = f"<{UNSUBSCRIBE}>, <javascript:alert(1)>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content("Bonjour Éloïse,\n« Le Petit Prince » est à rendre dans 3 jours.\n")
    message.add_alternative(
        "<p>Bonjour Éloïse,</p><p>« Le Petit Prince » est à rendre dans 3 jours.</p>"
        '<script>document.title = "exécuté"</script>'
        '<img src="https://tracker.example/pixel.gif" onerror="alert(2)" alt="">'
        '<p><a href="http://127.0.0.1:5000/services/bib-merignac">Prolonger</a></p>',
        subtype="html",
    )
    return message


def send(sink: MailSink, *messages: EmailMessage, login: tuple[str, str] | None = None) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
        smtp.ehlo()
        if login:
            smtp.login(*login)
        for message in messages:
            smtp.send_message(message)


# -- e-mail ----------------------------------------------------------------------------------


def test_a_reminder_sent_over_smtp_is_listed_with_its_text_and_unsubscribe_link(
    sink: MailSink, http: httpx.Client, sandbox_config: dict
) -> None:
    send(sink, reminder(), login=("portail", "un-mot-de-passe-secret"))

    listing = http.get("/sandbox/mail.json").json()
    assert listing["count"] == 1 and listing["keep"] == DEFAULT_KEEP
    [mail] = listing["messages"]
    assert mail["rcpt_tos"] == ["eloise.nguyen@example.org"]
    assert mail["mail_from"] == "ne-pas-repondre@demonstration.invalid"
    assert mail["subject"] == "Rappel : prêt à rendre"
    assert "« Le Petit Prince » est à rendre dans 3 jours." in mail["text"]
    assert "<p>Bonjour Éloïse,</p>" in mail["html"]
    # Only the URIs a page may link to; the javascript: one is dropped.
    assert mail["list_unsubscribe"] == [UNSUBSCRIBE]
    assert mail["list_unsubscribe_post"] is True
    assert ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"] in mail["headers"]
    # The user name is kept, so a test can tell the portal logged in; never the password.
    assert mail["auth_login"] == "portail"
    assert b"un-mot-de-passe-secret" not in Path(sandbox_config["SANDBOX_OUTBOX"]).read_bytes()

    page = http.get("/sandbox/mail")
    assert page.status_code == 200
    body = page.text
    assert "<h1>Courriels envoyés (1)</h1>" in body
    assert "Rappel : prêt à rendre" in body and "eloise.nguyen@example.org" in body
    assert "« Le Petit Prince » est à rendre dans 3 jours." in body
    assert f'<a href="{UNSUBSCRIBE}">' in body
    # A one-click form posting what a mail client posts (RFC 8058).
    assert f'<form method="post" action="{UNSUBSCRIBE}">' in body
    assert 'name="List-Unsubscribe" value="One-Click"' in body
    assert "javascript:" not in body
    assert re.search(r"\d{1,2} \w+ \d{4} à \d{1,2} h \d{2}", body)  # a French date
    detail_url = f"/sandbox/mail/{mail['id']}"
    assert f'href="{detail_url}"' in body


def test_the_html_part_is_shown_framed_and_escaped_never_run(
    sink: MailSink, http: httpx.Client
) -> None:
    send(sink, reminder())
    [mail] = http.get("/sandbox/mail.json").json()["messages"]

    listing = http.get("/sandbox/mail").text
    assert "<script" not in listing.lower() and "onerror" not in listing

    detail = http.get(f"/sandbox/mail/{mail['id']}")
    assert detail.status_code == 200
    page = detail.text
    # The markup only as escaped source; the frame's sandbox does not allow scripts.
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    [frame] = re.findall(r"<iframe[^>]*>", page)
    assert 'sandbox="' in frame and "allow-scripts" not in frame
    assert f'src="/sandbox/mail/{mail["id"]}/html"' in frame
    assert "frame-src 'self'" in detail.headers["Content-Security-Policy"]
    # Its links, to follow outside the frame.
    assert '<a href="http://127.0.0.1:5000/services/bib-merignac">' in page

    part = http.get(f"/sandbox/mail/{mail['id']}/html")
    assert part.status_code == 200 and part.headers["Content-Type"].startswith("text/html")
    policy = part.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert "allow-scripts" not in directives["sandbox"]
    assert directives["default-src"] == ["'none'"] and "script-src" not in directives
    assert directives["img-src"] == ["data:"]  # the tracking pixel is not fetched
    assert directives["frame-ancestors"] == ["'self'"]

    source = http.get(f"/sandbox/mail/{mail['id']}/source")
    assert source.headers["Content-Type"].startswith("text/plain")
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in source.text


def test_a_message_without_html_says_so_and_has_no_html_part(
    sink: MailSink, http: httpx.Client
) -> None:
    message = EmailMessage()
    message["From"] = "ne-pas-repondre@demonstration.invalid"
    message["To"] = "amina.benali@example.org"
    message["Subject"] = "Un mandat a été ouvert"
    message.set_content("Bonjour,\nun mandat a été ouvert.")
    send(sink, message)
    [mail] = http.get("/sandbox/mail.json").json()["messages"]
    assert mail["html"] is None and mail["list_unsubscribe"] == []
    assert "Ce courriel n'a pas de version HTML." in http.get(f"/sandbox/mail/{mail['id']}").text
    assert http.get(f"/sandbox/mail/{mail['id']}/html").status_code == 404
    assert http.get("/sandbox/mail/999").status_code == 404


def test_the_newest_come_first_and_the_json_filters_by_recipient(
    sink: MailSink, http: httpx.Client
) -> None:
    send(
        sink,
        reminder(to="eloise.nguyen@example.org", subject="Premier"),
        reminder(to="amina.benali@example.org", subject="Deuxième"),
    )
    subjects = [m["subject"] for m in http.get("/sandbox/mail.json").json()["messages"]]
    assert subjects == ["Deuxième", "Premier"]
    only = http.get("/sandbox/mail.json", params={"to": "Amina.Benali@example.org"}).json()
    assert [m["subject"] for m in only["messages"]] == ["Deuxième"]
    page = http.get("/sandbox/mail").text
    assert page.index("Deuxième") < page.index("Premier")


def test_the_outbox_keeps_the_last_200_messages(sink: MailSink, http: httpx.Client) -> None:
    started = time.perf_counter()
    send(sink, *(reminder(subject=f"Rappel n° {n}") for n in range(1, DEFAULT_KEEP + 6)))
    elapsed = time.perf_counter() - started
    listing = http.get("/sandbox/mail.json").json()
    assert listing["count"] == DEFAULT_KEEP
    subjects = [m["subject"] for m in listing["messages"]]
    assert subjects[0] == f"Rappel n° {DEFAULT_KEEP + 5}" and subjects[-1] == "Rappel n° 6"
    assert elapsed < 20, elapsed


def test_a_message_over_the_size_limit_is_refused(sink: MailSink, http: httpx.Client) -> None:
    message = reminder()
    message.add_attachment(b"x" * (MAX_MESSAGE_BYTES + 1), maintype="application", subtype="pdf")
    with pytest.raises(smtplib.SMTPException) as refused:
        send(sink, message)
    assert "552" in str(refused.value)
    assert http.get("/sandbox/mail.json").json()["count"] == 0


def test_clearing_forgets_the_mail_and_needs_the_admin_switch(
    sink: MailSink, http: httpx.Client, sandbox_app: Flask
) -> None:
    send(sink, reminder())
    cleared = http.post("/sandbox/mail/clear")
    assert cleared.status_code == 303 and cleared.headers["Location"] == "/sandbox/mail"
    assert http.get("/sandbox/mail.json").json()["count"] == 0
    assert "Aucun courriel reçu pour l'instant." in http.get("/sandbox/mail").text

    send(sink, reminder())
    sandbox_app.config["SANDBOX_ADMIN"] = False
    assert http.post("/sandbox/mail/clear").status_code == 404
    assert "Effacer tous les courriels" not in http.get("/sandbox/mail").text
    assert http.get("/sandbox/mail.json").json()["count"] == 1


def test_a_reset_of_the_sandbox_forgets_what_was_sent(sink: MailSink, http: httpx.Client) -> None:
    send(sink, reminder())
    assert http.post("/sandbox/sms/messages", json={"to": "+33612345678", "text": "Rappel"})
    assert http.post("/_admin/reset").status_code == 200
    assert http.get("/sandbox/mail.json").json()["count"] == 0
    assert http.get("/sandbox/sms.json").json()["count"] == 0


def test_a_test_sandbox_without_an_outbox_never_writes_the_developer_s() -> None:
    from sandbox import create_app

    app = create_app({"TESTING": True, "SANDBOX_OUTBOX": None})
    outbox = outbox_of(app)
    app.test_client().post("/_admin/reset")  # nothing kept: no file is even created
    assert outbox._path is None
    assert outbox.path != PROJECT_ROOT / "instance" / "sandbox-outbox.sqlite3"


def test_the_portal_s_own_mailer_delivers_to_the_sink(
    sink: MailSink, http: httpx.Client, tmp_path: Path
) -> None:
    from portal import create_app
    from portal.config import load_settings
    from portal.notify import send_mail

    portal = create_app(
        load_settings(
            {},
            database_url=f"sqlite:///{tmp_path}/portal.sqlite3",
            testing=True,
            mail_url=f"smtp://user:pass@127.0.0.1:{sink.port}",
            mail_from="ne-pas-repondre@demonstration.invalid",
        )
    )
    with portal.test_request_context():
        assert send_mail("lucas.rousseau@example.org", "Objet accentué é", "Texte.") is True
    [mail] = http.get("/sandbox/mail.json").json()["messages"]
    assert mail["auth_login"] == "user" and mail["subject"] == "Objet accentué é"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_sink_runs_as_procfile_dev_starts_it_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    store = tmp_path / "outbox.sqlite3"
    env = {**os.environ, "SANDBOX_SMTP_PORT": str(port), "SANDBOX_OUTBOX": str(store)}
    command = procfile_dev()["mail"]
    assert command == "python -m sandbox.mail"
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.mail"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the sink did not start"
                time.sleep(0.05)
        with smtp:
            smtp.login("u", "p")
            smtp.send_message(reminder())
        [mail] = Outbox(store).mails()
        assert mail.subject == "Rappel : prêt à rendre"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert f"smtp://127.0.0.1:{port}" in output
    assert "eloise" not in output  # no address in its log


# -- make run's settings ----------------------------------------------------------------------


def procfile_dev() -> dict[str, str]:
    lines = (PROJECT_ROOT / "Procfile.dev").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if re.match(r"^[\w-]+:", line))


@pytest.mark.parametrize("name", ["portal", "worker"])
def test_make_run_points_the_portal_at_the_sink_unless_told_otherwise(name: str) -> None:
    command = procfile_dev()[name]
    show = 'python3 -c \'import os; print(os.environ["PORTAL_MAIL_URL"], ' + (
        'os.environ["PORTAL_MAIL_FROM"], os.environ["PORTAL_SMS_URL"])\''
    )
    # The line as honcho runs it (a shell), with its command swapped for one that prints.
    assignments = command[: command.index(" flask ")]
    shell = shlex.quote(f"{assignments} {show}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    printed = subprocess.run(  # noqa: S602
        f"sh -c {shell}", shell=True, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert printed == [
        "smtp://127.0.0.1:5025",
        "ne-pas-repondre@demonstration.invalid",
        "http://127.0.0.1:5001/sandbox/sms/messages",
    ]
    own = {**env, "PORTAL_MAIL_URL": "smtp://relay.example:587"}
    printed = subprocess.run(  # noqa: S602
        f"sh -c {shell}", shell=True, env=own, capture_output=True, text=True, check=True
    ).stdout.split()
    assert printed[0] == "smtp://relay.example:587"


# -- SMS -------------------------------------------------------------------------------------


def test_an_sms_posted_by_the_portal_is_recorded_and_listed(http: httpx.Client) -> None:
    text = "Compte territorial : « Le Petit Prince » est à rendre demain à Mérignac."
    created = http.post("/sandbox/sms/messages", json={"to": "+33612345678", "text": text})
    assert created.status_code == 201
    sms = created.json()
    assert isinstance(sms["id"], int) and sms["to"] == "+33612345678" and sms["text"] == text
    assert sms["segments"] == 2  # « and à are outside the GSM alphabet: 70 characters an SMS
    assert created.headers["Location"].endswith(f"/sandbox/sms#sms-{sms['id']}")
    second = http.post("/sandbox/sms/messages", json={"to": "+590690123456", "text": "Ok"})
    assert second.json()["segments"] == 1

    listing = http.get("/sandbox/sms.json").json()
    assert [m["to"] for m in listing["messages"]] == ["+590690123456", "+33612345678"]
    page = http.get("/sandbox/sms").text
    assert "<h1>SMS envoyés (2)</h1>" in page
    assert "SMS au +33612345678" in page and "« Le Petit Prince » est à rendre demain" in page
    assert page.index("+590690123456") < page.index("+33612345678")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("pas du json", "objet JSON"),
        (["+33612345678", "texte"], "objet JSON"),
        ({"text": "Rappel"}, "format international (E.164)"),
        ({"to": "06 12 34 56 78", "text": "Rappel"}, "format international (E.164)"),
        ({"to": 33612345678, "text": "Rappel"}, "format international (E.164)"),
        ({"to": "+33612345678"}, "texte non vide"),
        ({"to": "+33612345678", "text": "   "}, "texte non vide"),
        ({"to": "+33612345678", "text": "x" * 1601}, "pas dépasser 1600 caractères"),
        ({"to": "+33612345678", "text": "Rappel", "from": "Mairie"}, "Champ inconnu : from"),
    ],
)
def test_a_bad_sms_is_refused_with_a_clear_json_error(
    http: httpx.Client, body: object, says: str
) -> None:
    if isinstance(body, str):
        answer = http.post(
            "/sandbox/sms/messages", content=body, headers={"Content-Type": "application/json"}
        )
    else:
        answer = http.post("/sandbox/sms/messages", json=body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400 and says in problem["detail"]
    assert http.get("/sandbox/sms.json").json()["count"] == 0


def test_an_sms_retried_with_its_idempotency_key_is_recorded_once(http: httpx.Client) -> None:
    sms = {"to": "+33612345678", "text": "Rappel : facture à régler"}
    key = {"Idempotency-Key": "rappel-facture-42"}
    first = http.post("/sandbox/sms/messages", json=sms, headers=key)
    again = http.post("/sandbox/sms/messages", json=sms, headers=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    other = http.post("/sandbox/sms/messages", json={**sms, "text": "Autre"}, headers=key)
    assert other.status_code == 422
    assert "un autre message" in other.json()["detail"]
    assert http.get("/sandbox/sms.json").json()["count"] == 1


def test_clearing_forgets_the_sms(http: httpx.Client) -> None:
    http.post("/sandbox/sms/messages", json={"to": "+33612345678", "text": "Rappel"})
    assert http.post("/sandbox/sms/clear").status_code == 303
    assert http.get("/sandbox/sms.json").json()["count"] == 0
    assert "Aucun SMS reçu pour l'instant." in http.get("/sandbox/sms").text


def test_the_sms_kept_are_bounded_too(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", keep=3)
    for n in range(5):
        outbox.add_sms("+33612345678", f"n° {n}")
    assert [s.text for s in outbox.sms()] == ["n° 4", "n° 3", "n° 2"]


def test_the_shared_fixture_sinks_mail_where_the_shared_sandbox_lists_it(
    sandbox_mail: MailSink, sandbox_server
) -> None:
    send(sandbox_mail, reminder(to="karim.benali@example.org"))
    listing = httpx.get(f"{sandbox_server.url}/sandbox/mail.json").json()
    assert [m["rcpt_tos"] for m in listing["messages"]] == [["karim.benali@example.org"]]
    assert sandbox_mail.url.startswith("smtp://127.0.0.1:")


def test_a_malformed_message_is_still_listed_never_a_500(
    sink: MailSink, http: httpx.Client
) -> None:
    raw = (
        b"Subject: =?unknown-8bit?q?R=E9sum=E9?= \xe9t\xe9\r\n"
        b"To: <pas une adresse\r\n"
        b"Content-Type: text/plain; charset=x-inconnu\r\n"
        b"List-Unsubscribe: pas-un-lien, <ftp://example.org/x>\r\n"
        b"Date: hier\r\n"
        b"\r\n"
        b"Corps en latin-1 : \xe9t\xe9\r\n"
    )
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
        smtp.sendmail("robot@example.org", ["amina.benali@example.org"], raw)
    [mail] = http.get("/sandbox/mail.json").json()["messages"]
    assert "Corps en latin-1" in mail["text"]
    assert mail["list_unsubscribe"] == [] and mail["date"] is None
    for path in (
        "/sandbox/mail",
        f"/sandbox/mail/{mail['id']}",
        f"/sandbox/mail/{mail['id']}/source",
    ):
        assert http.get(path).status_code == 200, path
