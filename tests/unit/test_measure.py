"""Anonymous measurement's arithmetic and its recording side, without a back-end: the
observatory's scoring, the comment filter, the failure classes, the visitor hash and the
day's key, the buffer, and an adviser's action recorded as assisted."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask, g

from portal import create_app
from portal.actor import Actor
from portal.config import load_settings
from portal.extensions import db
from portal.measure import filter_comment, five_level_score, satisfaction_score
from portal.measure.events import (
    DayKeys,
    MeasureContext,
    _context,
    bind,
    end_of_paris_day,
    failure_of,
    on_journal,
    paris_day,
    record,
    visitor_hash,
)
from portal.models import JournalEntry, MeasureEvent, VisitorKey


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    url = "sqlite:///" + tempfile.mkdtemp() + "/measure.sqlite3"
    app = create_app(load_settings({}, database_url=url, testing=True))
    with app.app_context():
        db.create_all()
    yield app


@pytest.fixture(autouse=True)
def empty(app: Flask) -> Iterator[None]:
    yield
    app.extensions["measure"].flush()
    with app.app_context():
        for table in ("measure_event", "visitor_key"):
            db.session.execute(sa.text(f"delete from {table}"))  # noqa: S608
        db.session.commit()


def stored(app: Flask) -> list[MeasureEvent]:
    app.extensions["measure"].flush()
    with app.app_context():
        rows = list(db.session.execute(db.select(MeasureEvent)).scalars())
        db.session.expunge_all()
        return rows


# -- the observatory's arithmetic -------------------------------------------------------------


def test_satisfaction_is_scored_ten_five_zero() -> None:
    assert satisfaction_score(["good", "average", "bad"]) == 5.0
    assert satisfaction_score(["good", "good", "average", "bad"]) == pytest.approx(6.25)
    assert satisfaction_score(["good"]) == 10.0
    assert satisfaction_score([]) is None
    assert satisfaction_score(["nonsense"]) is None


def test_five_level_answers_are_scored_from_zero_to_ten() -> None:
    assert [five_level_score([n]) for n in (1, 2, 3, 4, 5)] == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert five_level_score([1, 5, None, 9]) == 5.0
    assert five_level_score([]) is None


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("écrivez à jean.dupont+x@mairie.example.fr svp", "écrivez à [adresse retirée] svp"),
        ("appelez le 06 12 34 56 78.", "appelez le [numéro retiré]."),
        ("ou le +33 6 12 34 56 78", "ou le [numéro retiré]"),
        ("dossier 2024-001234-77", "dossier [numéro retiré]"),
        ("carte 33281000129033", "carte [numéro retiré]"),
        ("3 prêts en 2 minutes, très bien", "3 prêts en 2 minutes, très bien"),
    ],
)
def test_comments_lose_addresses_phone_numbers_and_long_digit_runs(
    comment: str, expected: str
) -> None:
    assert filter_comment(comment) == expected


# -- failure classes ----------------------------------------------------------------------------


def test_failure_classes_come_from_the_outcome_and_the_reason() -> None:
    assert failure_of("success") == ""
    assert failure_of("refused", "loan_overdue") == "refused"
    assert failure_of("refused", "invalid_proof") == "refused"
    assert failure_of("refused", "invalid_index") == "invalid"
    assert failure_of("failure") == "unavailable"
    assert failure_of("failure", "unavailable") == "unavailable"


# -- visitors and the day's key -------------------------------------------------------------------


def test_a_visitor_is_a_truncated_keyed_hash_that_changes_with_the_key() -> None:
    one = visitor_hash(b"k" * 32, "session-1")
    assert len(one) == 32 and int(one, 16) >= 0
    assert visitor_hash(b"k" * 32, "session-1") == one
    assert visitor_hash(b"q" * 32, "session-1") != one
    assert visitor_hash(b"k" * 32, "session-2") != one
    assert "session-1" not in one


def test_the_days_key_is_created_once_and_shared_by_every_process(app: Flask) -> None:
    day = date(2026, 12, 3)
    with app.app_context():
        first, second = DayKeys(), DayKeys()  # two processes, each with its cache
        key = first.key(day)
        assert second.key(day) == key and len(key) == 32
        assert first.key(day + timedelta(days=1)) != key
        rows = db.session.execute(db.select(VisitorKey).filter_by(day=day)).scalars().all()
        assert [r.key for r in rows] == [key.hex()]


def test_a_process_that_loses_the_race_reads_the_winners_key(app: Flask) -> None:
    day = date(2026, 12, 4)
    with app.app_context():
        keys = DayKeys()
        db.session.add(VisitorKey(day=day, key="ef" * 32))  # the other process, first
        db.session.commit()
        assert keys.key(day) == bytes.fromhex("ef" * 32)


def test_days_are_paris_days() -> None:
    late = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)  # 00:30 in Paris
    assert paris_day(late) == date(2026, 12, 4)
    summer = datetime(2026, 7, 1, 21, 59, tzinfo=UTC)
    assert paris_day(summer) == date(2026, 7, 1)
    assert end_of_paris_day(datetime(2026, 12, 3, 10, tzinfo=UTC)) == datetime(
        2026, 12, 3, 23, tzinfo=UTC
    )


# -- the buffer ----------------------------------------------------------------------------------


def test_events_wait_in_the_buffer_and_are_written_in_bulk(app: Flask) -> None:
    for n in range(5):
        record("page_view", app=app, category="library", step="page", value_ms=n)
    assert app.extensions["measure"].pending() == 5
    assert app.extensions["measure"].flush() == 5
    rows = stored(app)
    assert sorted(r.value_ms for r in rows) == [0, 1, 2, 3, 4]
    assert {r.visitor for r in rows} == {None}


def test_a_database_error_loses_the_events_and_never_raises(app: Flask) -> None:
    recorder = app.extensions["measure"]
    with app.app_context():
        db.session.execute(sa.text("ALTER TABLE measure_event RENAME TO measure_event_away"))
        db.session.commit()
    try:
        record("page_view", app=app)
        assert recorder.flush() == 0
        assert recorder.dropped >= 1
    finally:
        with app.app_context():
            db.session.execute(sa.text("ALTER TABLE measure_event_away RENAME TO measure_event"))
            db.session.commit()
    record("page_view", app=app)
    assert recorder.flush() == 1


def test_a_muted_context_records_nothing_even_in_a_worker_thread(app: Flask) -> None:
    import threading

    token = _context.set(MeasureContext(muted=True))
    try:
        record("page_view", app=app)
        worker = threading.Thread(
            target=bind(lambda: record("connector_call", app=app, instance="bib-merignac"))
        )
        worker.start()
        worker.join()
    finally:
        _context.reset(token)
    assert stored(app) == []


# -- the journal, measured --------------------------------------------------------------------


def test_an_advisers_write_is_recorded_as_assisted_with_its_channel(app: Flask) -> None:
    adviser = Actor.adviser(
        7, 42, mandate_id=3, channel="phone", scopes=frozenset({"bib-merignac"})
    )
    entry = JournalEntry(
        citizen_id=42,
        action="renew_loan",
        outcome="success",
        code="renew_loan",
        connector_instance="bib-merignac",
        params={"title": "Astérix"},
    )
    with app.test_request_context("/services/bib-merignac"):
        g.actor = adviser
        on_journal(entry, adviser)
    rows = stored(app)
    kinds = {(r.kind, r.step, r.channel, r.assisted) for r in rows}
    assert ("action", "renew_loan", "phone", True) in kinds
    assert ("journey_completed", "renew_loan", "phone", True) in kinds
    for row in rows:
        values = [str(v) for v in vars(row).values()]
        assert "42" not in values and "7" not in values and "Astérix" not in " ".join(values)


def test_a_refused_write_fails_as_refused_and_one_not_done_as_unavailable(app: Flask) -> None:
    resident = Actor.citizen(42)
    for code, outcome in (("renew_loan_refused", "refused"), ("renew_loan_not_done", "failure")):
        entry = JournalEntry(
            citizen_id=42,
            action="renew_loan",
            outcome=outcome,
            code=code,
            connector_instance="bib-merignac",
            params={"reason_code": "loan_overdue"} if outcome == "refused" else {},
        )
        with app.app_context():
            on_journal(entry, resident)
    failures = sorted(r.failure for r in stored(app) if r.kind == "journey_failed")
    assert failures == ["refused", "unavailable"]


def test_the_demo_links_made_at_sign_in_are_nobodys_journey(app: Flask) -> None:
    entry = JournalEntry(
        citizen_id=1, action="link", outcome="success", code="link_demo", connector_instance="x"
    )
    with app.app_context():
        on_journal(entry, Actor.system("demo"))
    assert stored(app) == []


def test_old_raw_events_go_and_recent_ones_stay(app: Flask) -> None:
    from portal.measure.rollup import delete_old_events

    now = datetime.now(UTC)
    with app.app_context():
        for days in (0, 395, 397):
            at = now - timedelta(days=days)
            db.session.add(MeasureEvent(at=at, day=at.date(), kind="page_view"))
        db.session.commit()
        assert delete_old_events(now) == 1
        db.session.commit()
    assert len(stored(app)) == 2


def test_every_commune_of_the_territory_and_of_the_connectors_has_its_insee_code() -> None:
    import tomllib
    from pathlib import Path

    from portal.owners.opendata import INSEE_CODES

    assert len(INSEE_CODES) == 28
    assert len(set(INSEE_CODES.values())) == 28
    assert all(code.startswith("33") and len(code) == 5 for code in INSEE_CODES.values())
    config = tomllib.loads(Path("connectors.toml").read_text(encoding="utf-8"))
    named = {c for instance in config["instances"].values() for c in instance["communes"]}
    assert named and named <= set(INSEE_CODES)
