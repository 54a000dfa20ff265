"""The sandbox's pages of what the portal sent, as a tester sees them in chromium: readable
at 320 px, clean for axe-core, usable with the keyboard, and the HTML part of an e-mail
shown without any of its scripts running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

import sandbox
from sandbox.mail import MailSink
from sandbox.messages import outbox_of
from tests.browser.support import assert_no_axe_violations, sideways_scrolling, tab_to
from tests.sandbox.test_outbox import reminder, send
from tests.support import ServerThread

pytestmark = pytest.mark.browser


@pytest.fixture
def outbox_sandbox(tmp_path: Path) -> Iterator[tuple[str, MailSink]]:
    app = sandbox.create_app({"TESTING": True, "SANDBOX_OUTBOX": str(tmp_path / "o.sqlite3")})
    server = ServerThread(app).start()
    sink = MailSink(outbox_of(app), port=0).start()
    yield server.url, sink
    sink.stop()
    server.stop()


@pytest.fixture
def tester(browser: Browser, outbox_sandbox: tuple[str, MailSink]) -> Iterator[Page]:
    context = browser.new_context(
        locale="fr-FR", base_url=outbox_sandbox[0], viewport={"width": 320, "height": 720}
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_a_tester_reads_a_reminder_and_its_html_runs_nothing(
    tester: Page, outbox_sandbox: tuple[str, MailSink]
) -> None:
    url, sink = outbox_sandbox
    send(sink, reminder(), login=("portail", "secret"))
    httpx.post(
        f"{url}/sandbox/sms/messages",
        json={"to": "+33612345678", "text": "Rappel : « Le Petit Prince » à rendre demain."},
    ).raise_for_status()
    dialogs: list[str] = []
    tester.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    for path in ("/sandbox/mail", "/sandbox/sms"):
        tester.goto(path)
        assert_no_axe_violations(tester)
        assert not sideways_scrolling(tester)
    assert "« Le Petit Prince » à rendre demain." in tester.locator("main").inner_text()

    tester.goto("/sandbox/mail")
    assert "« Le Petit Prince » est à rendre dans 3 jours." in tester.locator("main").inner_text()
    link = tester.get_by_role("link", name="Voir la version HTML et les en-têtes")
    tab_to(tester, link)
    with tester.expect_navigation():
        tester.keyboard.press("Enter")
    frame = tester.frame_locator("iframe")
    assert "est à rendre dans 3 jours" in frame.locator("body").inner_text()
    [framed] = [f for f in tester.frames if f.url.endswith("/html")]
    assert framed.evaluate("document.title") != "exécuté"  # its script did not run
    assert not dialogs
    assert_no_axe_violations(tester)
    assert not sideways_scrolling(tester)


def test_a_tester_clears_the_mail_with_the_keyboard(
    tester: Page, outbox_sandbox: tuple[str, MailSink]
) -> None:
    _url, sink = outbox_sandbox
    send(sink, reminder())
    tester.goto("/sandbox/mail")
    button = tester.get_by_role("button", name="Effacer tous les courriels")
    tab_to(tester, button)
    with tester.expect_navigation():
        tester.keyboard.press("Enter")
    assert tester.get_by_text("Aucun courriel reçu pour l'instant.").is_visible()
    assert_no_axe_violations(tester)
