"""Residents are told by e-mail when a mandate nears its end: once per mandate, in
their language, and again on the next run when sending failed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.models import Citizen, MandateNotice
from portal.models._types import utcnow
from tests.integration.test_desks import add_desk, agent_row, grant
from tests.integration.test_mandates_resident import SmtpSink
from tests.support import (
    Sandbox,
    empty_tables,
    open_test_mandate,
    portal_settings,
    provision_agent,
    sign_in,
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    smtp = SmtpSink()
    yield smtp
    smtp.close()


@pytest.fixture
def mail_app(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str, sink: SmtpSink
) -> Iterator[Flask]:
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            mail_url=f"smtp://127.0.0.1:{sink.port}",
            mail_from="ne-pas-repondre@demonstration.invalid",
        )
    )
    yield app
    app.extensions["connectors"].close()
    empty_tables(app)


def setup_mandate(app: Flask, duration: str) -> str:
    sign_in(app.test_client(), "marie-therese")
    desk = add_desk(app, "Maison France services du Lac", "21330063500017")
    provision_agent(app, "claire")
    grant(app, "claire", "adviser", desk)
    with app.app_context():
        citizen = db.session.execute(db.select(Citizen)).scalar_one()
        citizen.preferred_locale = "en"
        db.session.commit()
        citizen_id = citizen.id
    return open_test_mandate(
        app,
        citizen_id=citizen_id,
        desk_id=desk,
        agent_id=agent_row(app, "claire").id,
        scopes=["cantine-bordeaux"],
        duration=duration,
    )


def run(app: Flask, days_later: int, monkeypatch: pytest.MonkeyPatch) -> str:
    import portal.mandates.notices as notices

    later = utcnow() + timedelta(days=days_later)
    monkeypatch.setattr(notices, "utcnow", lambda: later)
    result = app.test_cli_runner().invoke(args=["mandates", "notify-ending"])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_mandate_ending_within_a_week_is_told_once_in_the_residents_language(
    mail_app: Flask, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = setup_mandate(mail_app, "1m")
    assert run(mail_app, 10, monkeypatch).startswith("0 notice(s) sent")  # not yet
    assert sink.messages == []
    assert run(mail_app, 26, monkeypatch).startswith("1 notice(s) sent")
    [message] = sink.messages
    data = str(message["data"])
    assert reference in data and "ends on" in data.replace("=\r\n", "")
    assert run(mail_app, 27, monkeypatch).startswith("0 notice(s) sent")  # never twice
    assert len(sink.messages) == 1


def test_a_failed_send_is_tried_again_on_the_next_run(
    mail_app: Flask, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_mandate(mail_app, "1m")
    sink.close()  # the mail server is down
    assert run(mail_app, 26, monkeypatch).startswith("0 notice(s) sent, 1")
    with mail_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(MandateNotice)) == 0
