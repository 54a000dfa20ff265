"""What a mandate allows at a given moment, computed from its terms and its revocations
(plain objects, no database), and the texts that must never change once shown."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from portal.actor import Actor
from portal.mandates import ends_at_for, live_scopes, new_reference, status_of, terms_hash
from portal.mandates.legal import CURRENT, VERSIONS, template_for
from tests.support import PROJECT_ROOT

START = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

#: Every published version of the legal text, and the SHA-256 of its template: a version
#: a resident has agreed to is never edited (a new wording is a new version).
PUBLISHED = {"2026-12": "87292bcf99091555cf79b54ad11ee18f7c112ee5e5243616ffcb90aa09204837"}


def mandate(scopes, revocations=(), duration="1m"):
    return SimpleNamespace(
        starts_at=START,
        ends_at=ends_at_for(duration, START),
        scopes=[SimpleNamespace(scope=s) for s in scopes],
        revocations=[SimpleNamespace(scope=s, at=at) for s, at in revocations],
    )


def test_durations_are_calendar_ones() -> None:
    assert ends_at_for("1d", START) == START + timedelta(days=1)
    assert ends_at_for("1m", START) == datetime(2027, 1, 3, 10, 0, tzinfo=UTC)
    assert ends_at_for("6m", START) == datetime(2027, 6, 3, 10, 0, tzinfo=UTC)
    assert ends_at_for("1y", START) == datetime(2027, 12, 3, 10, 0, tzinfo=UTC)
    assert ends_at_for("visit", START) == START + timedelta(hours=2)
    end_of_month = datetime(2027, 1, 31, tzinfo=UTC)
    assert ends_at_for("1m", end_of_month) == datetime(2027, 2, 28, tzinfo=UTC)


def test_live_scopes_lose_a_revoked_service_then_everything_at_the_end() -> None:
    m = mandate(["a", "b"], [("a", START + timedelta(days=2))])
    assert live_scopes(m, START + timedelta(days=1)) == {"a", "b"}
    assert live_scopes(m, START + timedelta(days=3)) == {"b"}
    assert status_of(m, START + timedelta(days=3)) == "active"
    assert live_scopes(m, m.ends_at) == set()
    assert status_of(m, m.ends_at) == "expired"
    assert live_scopes(m, START - timedelta(seconds=1)) == set()


def test_a_whole_revocation_ends_everything_from_its_moment() -> None:
    m = mandate(["a", "b"], [(None, START + timedelta(hours=1))])
    assert live_scopes(m, START + timedelta(minutes=59)) == {"a", "b"}
    assert live_scopes(m, START + timedelta(hours=1)) == set()
    assert status_of(m, START + timedelta(days=1)) == "revoked"
    # Still "revoked" after its planned end: it was stopped before.
    assert status_of(m, m.ends_at + timedelta(days=1)) == "revoked"


def test_every_service_revoked_one_by_one_is_a_revoked_mandate() -> None:
    m = mandate(["a", "b"], [("a", START), ("b", START + timedelta(minutes=1))])
    assert status_of(m, START + timedelta(minutes=2)) == "revoked"


def test_the_terms_hash_covers_every_term_and_not_their_order() -> None:
    desk = SimpleNamespace(siret="21330063500017")
    base = dict(
        reference="M-ABCD-EFGH",
        desk=desk,
        citizen_id=7,
        scopes=["b", "a"],
        starts_at=START,
        ends_at=START + timedelta(days=1),
        legal_version="2026-12",
    )
    first = terms_hash(**base)
    assert first == terms_hash(**{**base, "scopes": ["a", "b"]})
    assert len(first) == 64
    for change in (
        {"scopes": ["a"]},
        {"citizen_id": 8},
        {"ends_at": START + timedelta(days=2)},
        {"legal_version": "2027-01"},
        {"reference": "M-ABCD-EFGJ"},
    ):
        assert terms_hash(**{**base, **change}) != first, change


def test_references_are_easy_to_read_aloud_and_unlikely_to_collide() -> None:
    refs = {new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        assert len(ref) == 11 and ref[:2] == "M-" and ref[6] == "-"
        assert not set(ref) & set("01IOL")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_published_legal_text_never_changes(version: str) -> None:
    path = PROJECT_ROOT / "templates" / template_for(version)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PUBLISHED[version]


def test_an_unknown_version_shows_the_current_text() -> None:
    assert template_for("1999-01") == template_for(CURRENT)


def test_an_adviser_actor_may_use_only_its_scopes() -> None:
    adviser = Actor.adviser(
        3, 7, mandate_id=1, channel="phone", scopes=frozenset({"eau", "eau:payments", "bib"})
    )
    assert adviser.assisted and adviser.on_behalf_of == 7 and adviser.channel == "phone"
    assert adviser.may_use("eau") and adviser.may_pay("eau")
    assert adviser.may_use("bib") and not adviser.may_pay("bib")
    assert not adviser.may_use("cantine")
    resident = Actor.citizen(7)
    assert resident.may_use("cantine") and resident.may_pay("cantine")
    assert not resident.assisted
