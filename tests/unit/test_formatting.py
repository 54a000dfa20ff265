"""Dates, times and money in each language: French typography in French, British
English in English, none of the one in the other; journal entries and refusals read in
the reader's language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from flask import Flask
from flask_babel import force_locale

from portal import create_app
from portal.account.data import masked_number
from portal.config import load_settings
from portal.formatting import clock, day, money, short_day, when
from portal.journal_text import journal_line
from portal.refusals import reason_text
from tests.unit.test_translations import compiled_catalogues  # noqa: F401

NBSP = "\u00a0"
# 1 December 2026, 09:30 UTC = 10:30 in Paris.
MORNING = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def app(compiled_catalogues: None) -> Iterator[Flask]:  # noqa: F811
    app = create_app(load_settings({}, database_url="sqlite://", testing=True))
    with app.test_request_context("/"):
        yield app


def test_french_dates_and_times_follow_french_typography(app: Flask) -> None:
    with force_locale("fr"):
        assert day(date(2026, 12, 1)) == "1er\u00a0décembre\u00a02026"
        assert day(date(2026, 12, 21)) == "21\u00a0décembre\u00a02026"
        assert short_day(date(2026, 12, 1)) == "mardi\u00a01er\u00a0décembre"
        assert clock(MORNING) == f"10{NBSP}h{NBSP}30"
        assert when(MORNING) == f"1er\u00a0décembre\u00a02026 à 10{NBSP}h{NBSP}30"
        assert money(8835) == f"88,35{NBSP}€"


def test_english_dates_and_times_are_british_with_no_french_spacing(app: Flask) -> None:
    with force_locale("en"):
        assert day(date(2026, 12, 1)) == "1\u00a0December\u00a02026"
        assert short_day(date(2026, 12, 1)) == "Tuesday\u00a01\u00a0December"
        assert clock(MORNING) == "10:30"
        assert when(MORNING) == "1\u00a0December\u00a02026, 10:30"
        assert money(8835) == "€88.35"
        # Dates are kept in one piece (never split at a line's end), but no French
        # spacing: none before punctuation, none in times or amounts.
        for text in (day(MORNING), clock(MORNING), when(MORNING), money(8835)):
            assert not re.search("[\u00a0\u202f][:;!?]|\u00a0h", text) and "\u202f" not in text
        assert NBSP not in clock(MORNING) + money(8835)


def test_a_datetime_is_shown_on_the_territory_s_clock(app: Flask) -> None:
    late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # already 1 December in Paris
    with force_locale("fr"):
        assert when(late) == f"1er\u00a0décembre\u00a02026 à 0{NBSP}h{NBSP}30"
    with force_locale("en"):
        assert when(late) == "1\u00a0December\u00a02026, 00:30"


def test_numbers_residents_know_are_masked_but_for_their_end() -> None:
    assert masked_number("0045217") == f"••••{NBSP}5217"
    assert masked_number("3328 1000 1290 33") == f"••••{NBSP}9033"
    assert masked_number("123") == "•••"
    assert masked_number("") == ""


def test_known_refusal_codes_are_translated_and_back_end_words_marked_french(app: Flask) -> None:
    with force_locale("en"):
        assert str(reason_text("on_hold", "Ce document est réservé.")) == (
            "Another reader has reserved this item."
        )
        assert str(reason_text("weird_code", "Fermé <ce jour>.")) == (
            '<span lang="fr">Fermé &lt;ce jour&gt;.</span>'
        )
    with force_locale("fr"):
        assert str(reason_text("too_late")) == "Il est trop tard pour modifier ce jour."
        assert str(reason_text(None, "Fermé.")) == "Fermé."
        # In French, the back-end's own words say most.
        assert str(reason_text("on_hold", "Réservé par Léa.")) == "Réservé par Léa."


def entry(code: str, params: dict | None = None, **rest: str) -> SimpleNamespace:
    return SimpleNamespace(code=code, params=params, action=rest.get("action", code), detail="")


def test_journal_entries_read_in_the_reader_s_language(app: Flask) -> None:
    paid = entry(
        "payment_paid",
        {"invoice": "Restauration scolaire — novembre 2026", "amount_cents": 8835},
        action="pay_invoice",
    )
    refused_link = entry("link_refused", {"reason_code": "invalid_proof"}, action="link")
    renewed = entry(
        "renew_loan", {"title": "Petit Pays", "new_due_date": "2026-12-01"}, action="renew_loan"
    )
    with force_locale("en"):
        line = journal_line(paid)
        assert line.action == "Invoice paid"
        assert "€88.35" in line.detail and 'lang="fr"' in line.detail
        line = journal_line(refused_link)
        assert line.action == "Link attempt refused"
        assert "invalid_proof" not in line.detail and "did not match" in line.detail
        assert "due back on 1\u00a0December\u00a02026" in journal_line(renewed).detail
        assert journal_line(entry("print_receipt")).action == ""  # never a raw code
    with force_locale("fr"):
        assert journal_line(refused_link).action == "Tentative de liaison refusée"
        assert "retour le 1er\u00a0décembre\u00a02026" in journal_line(renewed).detail
        assert f"88,35{NBSP}€" in journal_line(paid).detail
