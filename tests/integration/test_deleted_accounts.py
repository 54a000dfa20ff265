"""A read still running when a resident deletes their account (or unlinks a service)
leaves nothing of theirs behind, and their link id is never handed to someone else —
over real HTTP to the sandbox, with a slow back-end and a read in another thread."""

from __future__ import annotations

import json
import threading
import time

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import ConnectorSnapshot, ServiceLink
from tests.integration.test_account import ELOISE_CARD, HX, citizen_id, csrf, text
from tests.support import Sandbox, sign_in

#: Each call to the Mérignac library takes this long: the card's three calls fit its
#: 2 s deadline, and the account is deleted while the first is still running.
LATENCY_MS = 600


def link_eloise_card(client: FlaskClient) -> None:
    token = csrf(client, "/link/bib-merignac")
    r = client.post("/link/bib-merignac", data={"csrf_token": token, "proof": "pin", **ELOISE_CARD})
    assert r.status_code == 303, r.status_code


def snapshots_of(app: Flask, link_id: int) -> list[ConnectorSnapshot]:
    with app.app_context():
        return list(
            db.session.execute(
                db.select(ConnectorSnapshot).filter_by(subject=str(link_id))
            ).scalars()
        )


def read_card_in_background(client: FlaskClient) -> tuple[threading.Thread, list[int]]:
    statuses: list[int] = []

    def read() -> None:
        statuses.append(client.get("/services/bib-merignac/card", headers=HX).status_code)

    thread = threading.Thread(target=read)
    thread.start()
    return thread, statuses


def eloise_link_id(app: Flask) -> int:
    with app.app_context():
        return db.session.execute(
            db.select(ServiceLink.id).filter_by(
                citizen_id=citizen_id(app, "Éloïse"), instance_slug="bib-merignac"
            )
        ).scalar_one()


def test_a_read_in_flight_when_the_account_is_deleted_leaves_no_snapshot_and_no_id_to_reuse(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    reader = services_app.test_client()  # the dashboard left open in one tab
    deleter = services_app.test_client()  # the account page in another
    sign_in(reader, "eloise")
    link_eloise_card(reader)
    sign_in(deleter, "eloise")
    link_id = eloise_link_id(services_app)  # the newest link of the portal
    eloise = citizen_id(services_app, "Éloïse")

    fc_sandbox.fault("library", "merignac", None, latency_ms=LATENCY_MS)
    thread, statuses = read_card_in_background(reader)
    time.sleep(LATENCY_MS / 3000)  # the read has loaded the link and waits on the back-end
    token = csrf(deleter, "/account/delete")
    r = deleter.post("/account/delete", data={"csrf_token": token, "confirm": "y"})
    assert r.status_code == 303
    thread.join(timeout=10)
    assert statuses and statuses[0] in (200, 302, 303), statuses
    fc_sandbox.fault("library", "merignac", None)

    # Nothing about the deleted resident stays in the cache.
    assert snapshots_of(services_app, link_id) == []
    with services_app.app_context():
        payloads = db.session.execute(db.select(ConnectorSnapshot.payload)).scalars().all()
    assert not any("Éloïse" in p or "eloise" in p.lower() for p in payloads), payloads

    # Another resident comes and links: their ids are new ones.
    amina = services_app.test_client()
    sign_in(amina, "amina")  # her demo accounts are linked at sign-in
    with services_app.app_context():
        amina_links = (
            db.session.execute(
                db.select(ServiceLink.id).filter_by(citizen_id=citizen_id(services_app, "Amina"))
            )
            .scalars()
            .all()
        )
    assert amina_links and link_id not in amina_links
    assert all(new > link_id for new in amina_links)
    assert citizen_id(services_app, "Amina") != eloise

    export = text(amina.post("/account/data.json", data={"csrf_token": csrf(amina)}))
    data = json.loads(export)
    assert data["identity"]["given_name"] == "Amina"
    assert data["cached_service_data"] == []  # she has read nothing yet
    assert "Éloïse" not in export and "ELOISE" not in export.upper()


def test_a_read_in_flight_when_the_service_is_unlinked_leaves_no_snapshot(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    reader = services_app.test_client()
    sign_in(reader, "eloise")
    link_eloise_card(reader)
    other_tab = services_app.test_client()
    sign_in(other_tab, "eloise")
    link_id = eloise_link_id(services_app)

    fc_sandbox.fault("library", "merignac", None, latency_ms=LATENCY_MS)
    thread, _statuses = read_card_in_background(reader)
    time.sleep(LATENCY_MS / 3000)
    token = csrf(other_tab, "/link")
    r = other_tab.post("/link/bib-merignac/remove", data={"csrf_token": token})
    assert r.status_code == 303
    thread.join(timeout=10)
    fc_sandbox.fault("library", "merignac", None)

    assert snapshots_of(services_app, link_id) == []
    # Linked again: a new link, with a new id, and its own snapshots from now on.
    link_eloise_card(other_tab)
    assert eloise_link_id(services_app) > link_id
    assert other_tab.get("/services/bib-merignac/card", headers=HX).status_code == 200
    assert snapshots_of(services_app, link_id) == []
    assert snapshots_of(services_app, eloise_link_id(services_app)) != []
