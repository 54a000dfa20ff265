"""The standard housing connector against the sandbox's metropolitan application file.

The housing API has no lock-out (the proof is the application number with a birth
date, and the back-end answers the same ``401`` for both being wrong), so there is no
"locked" case here.
"""

from __future__ import annotations

from datetime import date

import pytest

from connectors.base import LinkInvalid, LinkRef, Refused
from connectors.registry import Registry
from tests.contract.conftest import account, ctx

MARIE = account("marie-therese", "housing", "metropole")  # renewal due
DARTAGNAN = account("dartagnan", "housing", "metropole")  # active, window not open yet
LUCAS = account("lucas", "housing", "metropole")  # closed


@pytest.fixture
def housing(registry: Registry):
    return registry.connector("logement-metropole")


def test_a_resident_proves_their_application(housing) -> None:
    verified = housing.verify_application(
        ctx(), MARIE.proof["number"], date.fromisoformat(MARIE.proof["birthdate"])
    )
    assert verified.external_id == MARIE.external_id
    assert verified.display_name


def test_a_wrong_birth_date_is_refused(housing) -> None:
    with pytest.raises(Refused) as raised:
        housing.verify_application(ctx(), MARIE.proof["number"], date(1970, 1, 1))
    assert raised.value.code == "invalid_proof"
    assert raised.value.reason


def test_the_application_and_its_history(housing) -> None:
    application = housing.application(ctx(), LinkRef(MARIE.external_id))
    assert not application.stale
    data = application.data
    assert data.number == MARIE.proof["number"]
    assert data.status == "renewal_due"
    assert data.renewal_opens_on and data.renewal_closes_on
    assert data.communes_wanted and data.history


def test_a_resident_renews_their_application(housing) -> None:
    link = LinkRef(MARIE.external_id)
    before = housing.application(ctx(), link).data
    receipt = housing.renew(ctx(), link, idempotency_key="h-renew-1")
    assert receipt.number == before.number
    assert before.expires_on is not None and receipt.new_expires_on > before.expires_on
    assert housing.renew(ctx(), link, idempotency_key="h-renew-1") == receipt
    assert housing.application(ctx(), link).data.expires_on == receipt.new_expires_on


def test_renewal_outside_its_window_is_refused_with_the_date(housing) -> None:
    with pytest.raises(Refused) as raised:
        housing.renew(ctx(), LinkRef(DARTAGNAN.external_id), idempotency_key="h-renew-2")
    assert raised.value.code == "outside_renewal_window"
    assert "à partir du" in raised.value.reason


def test_a_closed_application_cannot_be_renewed(housing) -> None:
    with pytest.raises(Refused) as raised:
        housing.renew(ctx(), LinkRef(LUCAS.external_id), idempotency_key="h-renew-3")
    assert raised.value.code == "not_renewable"


def test_an_application_that_no_longer_exists_asks_for_a_new_link(housing) -> None:
    with pytest.raises(LinkInvalid):
        housing.application(ctx(), LinkRef("dem-gone"))
