"""From journeys done over HTTP to the owner's page: residents renew, fail and give up
through the portal, the daily roll-up runs, and the service owner reads the same counts
on their dashboard and in its CSV (no seeded roll-ups here)."""

from __future__ import annotations

import csv
import io

from flask import Flask

from portal.measure.events import paris_day
from tests.integration.test_actions import follow, form_to, raw, send
from tests.integration.test_measure import RENEW, client_of, refused_proof, renew, rollup
from tests.integration.test_owners import give
from tests.support import Sandbox, agent_sign_in, sign_in


def test_the_owner_reads_the_journeys_residents_did(
    services_app: Flask, fc_sandbox: Sandbox
) -> None:
    marie = client_of(services_app)
    sign_in(marie, "marie-therese")
    assert "est prolongé jusqu'au" in renew(marie)
    fc_sandbox.fault("library", "merignac", "error500", writes_only=True)
    form = form_to(raw(marie.get("/services/bib-merignac")), RENEW.replace("-5/", "-2/"))
    assert "rien n'a été fait" in follow(marie, send(marie, form))
    fc_sandbox.fault("library", "merignac", None)
    eloise = client_of(services_app)
    sign_in(eloise, "eloise")
    refused_proof(eloise)
    assert eloise.get("/link/bib-merignac").status_code == 200  # shown again, never sent
    today = paris_day()
    rollup(services_app, today)

    give(services_app, "claire", "service_owner", "bib-merignac")
    owner = services_app.test_client()
    agent_sign_in(owner, "claire")
    query = f"period=day&start={today.isoformat()}&end={today.isoformat()}"
    page = owner.get(f"/agents/owners/services/bib-merignac?{query}")
    assert page.status_code == 200
    data = owner.get(f"/agents/owners/services/bib-merignac/parcours.csv?{query}")
    assert data.status_code == 200
    rows = {row["journey"]: row for row in csv.DictReader(io.StringIO(data.get_data(as_text=True)))}
    renewals = rows["renew_loan"]
    assert (renewals["started"], renewals["completed"]) == ("2", "1")
    assert renewals["failed_unavailable"] == "1" and renewals["given_up"] == "0"
    links = rows["link"]
    assert links["failed_refused"] == "1"
    assert links["started"] == "2" and links["given_up"] == "1"
    assert links["failed_invalid"] == "0"
    # The trend section sums the same journeys for the day.
    trend = owner.get(f"/agents/owners/services/bib-merignac/demarches.csv?{query}")
    [day] = list(csv.DictReader(io.StringIO(trend.get_data(as_text=True))))
    assert (day["started"], day["completed"], day["failed"], day["given_up"]) == (
        "4",
        "1",
        "2",
        "1",
    )
