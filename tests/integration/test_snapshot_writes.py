"""The portal's snapshots in its database are written when what a back-end said changed,
not on every read: two identical card views write once; a changed answer writes again.
Over real HTTP to the sandbox, on the portal's own ``DatabaseSnapshotStore``."""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient

from connectors.base import CallContext, LinkRef
from portal.extensions import db
from portal.models import ConnectorSnapshot
from tests.contract.conftest import account
from tests.support import sign_in

HX = {"HX-Request": "true"}
SLUG = "bib-merignac"
MARIE = account("marie-therese", "library", "merignac")


def stored(app: Flask) -> dict[str, tuple[datetime, str]]:
    """Each snapshot of the instance: its fetch time and payload, by key kind."""
    with app.app_context():
        rows = db.session.execute(
            db.select(ConnectorSnapshot).where(ConnectorSnapshot.instance_slug == SLUG)
        ).scalars()
        return {row.key.split(":")[0]: (row.fetched_at, row.payload) for row in rows}


def test_identical_reads_write_once_and_a_changed_answer_writes_again(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    assert services_client.get(f"/services/{SLUG}/card", headers=HX).status_code == 200
    first = stored(services_app)
    assert {"patron", "loans", "holds"} <= set(first)
    assert services_client.get(f"/services/{SLUG}/card", headers=HX).status_code == 200
    assert stored(services_app) == first  # the same answers: nothing written again

    # A renewal moves a due date: the loans changed, the other reads did not.
    connector = services_app.extensions["connectors"].connector(SLUG)
    ctx = CallContext.with_timeout(3.0, actor="test")
    ref = LinkRef(MARIE.external_id)
    loan = next(loan for loan in connector.loans(ctx, ref).data if loan.renewable)
    assert connector.renew(ctx, ref, loan.id, idempotency_key="snapshot-writes-1").renewed
    assert services_client.get(f"/services/{SLUG}/card", headers=HX).status_code == 200
    after = stored(services_app)
    assert after["loans"][1] != first["loans"][1] and after["loans"][0] > first["loans"][0]
    assert after["patron"] == first["patron"] and after["holds"] == first["holds"]
