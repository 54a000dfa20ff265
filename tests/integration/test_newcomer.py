"""The demo accounts of `make run` respect what the resident did with them."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import ServiceLink
from tests.support import sign_in

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def linked(app: Flask) -> set[str]:
    with app.app_context():
        return set(db.session.execute(db.select(ServiceLink.instance_slug)).scalars())


def test_a_demo_account_the_resident_unlinked_is_not_linked_again_at_the_next_sign_in(
    services_app: Flask, services_client: FlaskClient
) -> None:
    sign_in(services_client, "marie-therese")
    assert "bib-merignac" in linked(services_app)
    confirm = services_client.get("/link/bib-merignac/remove").get_data(as_text=True)
    token = CSRF_RE.search(confirm).group(1)
    assert (
        services_client.post("/link/bib-merignac/remove", data={"csrf_token": token}).status_code
        == 303
    )
    assert "bib-merignac" not in linked(services_app)

    again = services_app.test_client()  # another day, another browser
    sign_in(again, "marie-therese")
    assert "bib-merignac" not in linked(services_app)
    # The other demo accounts she kept are still there, and the one she dropped is offered.
    assert {"bib-bordeaux", "cantine-bordeaux", "logement-metropole"} <= linked(services_app)
    assert "/link/bib-merignac" in again.get("/link").get_data(as_text=True)
