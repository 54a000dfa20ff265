"""Public status of every service instance, and the operators' health checks."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, render_template

from portal.extensions import db
from portal.integrations import Availability, probe_availability, registry
from portal.journeys import journey

bp = Blueprint("status", __name__)


@dataclass
class InstanceStatus:
    slug: str
    title: str
    communes: list[str]
    availability: Availability
    breaker: str

    @property
    def level(self) -> str:
        """``up``, ``degraded``, ``down`` or ``unknown``, as a person would read it."""
        if self.breaker == "open":
            return "down"
        ratio = self.availability.ratio
        probe_ok = self.availability.last_probe_ok
        if ratio is None:
            return {True: "up", False: "down", None: "unknown"}[probe_ok]
        if ratio >= 0.95 and probe_ok is not False:
            return "up"
        if ratio >= 0.5:
            return "degraded"
        return "down"


#: An instance no probe has reached lately.
NOT_PROBED = Availability(0, 0, None, None)


def instance_statuses() -> list[InstanceStatus]:
    """From the probes' rows and the breakers (shared in Redis when configured): what
    every web server answers alike."""
    reg = registry()
    probes = probe_availability()
    return [
        InstanceStatus(
            slug=slug,
            title=instance.title,
            communes=list(instance.communes),
            availability=probes.get(slug, NOT_PROBED),
            breaker=reg.breaker_state(slug).state,
        )
        for slug, instance in reg.instances.items()
    ]


@bp.get("/status")
@journey("site", "status")
def status() -> str:
    return render_template("status/status.html", statuses=instance_statuses())


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive (no dependency checked: restarting would not help them)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve: the database answers."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok"), 200
