"""The statistics API for the territory's own tools, in the shape of Publik's (w.c.s.):
``GET /api/statistics/`` lists the statistics and their filters; each statistic answers
``{"data": {"x_labels": [...], "series": [{"label": ..., "data": [...]}]}, "err": 0}``.
Described in ``docs/statistics-api.yaml`` (OpenAPI 3.1).

Who may call it: an agent signed in with an owner's role (their services only, as on
their pages), or anyone holding a signed URL (``flask statistics sign-url``), which
reads the whole territory until it expires. Anything else gets a 403 and a JSON error.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from werkzeug.datastructures import MultiDict

from portal.agents.session import load_current_agent, save_agent_cookie
from portal.config import current_settings
from portal.extensions import csrf
from portal.journeys import journey
from portal.models.measure import CHANNELS
from portal.owners.access import Scope, configured, scope_of
from portal.owners.indicators import (
    GRANULARITIES,
    JOURNEY_FAILURES,
    LINK_OUTCOMES,
    Figures,
    Selection,
    SelectionError,
    build_report,
    channel_count,
    failure_count,
    link_count,
)
from portal.owners.routes import parse_selection

bp = Blueprint("statistics", __name__, url_prefix="/api/statistics")
csrf.exempt(bp)
bp.before_request(load_current_agent)
bp.after_request(save_agent_cookie)

_DERIVATION = b"compte-territorial.statistics-api"
SIGNATURE, EXPIRES = "signature", "expires"


# -- signed URLs ---------------------------------------------------------------------------


def signing_key() -> bytes:
    """``PORTAL_STATISTICS_KEY``, or a key derived from the secret key."""
    settings = current_settings()
    if settings.statistics_key:
        return settings.statistics_key.encode()
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, _DERIVATION, hashlib.sha256).digest()


def _canonical(path: str, params: MultiDict[str, str] | dict[str, str]) -> bytes:
    items = params.items(multi=True) if isinstance(params, MultiDict) else params.items()
    pairs = sorted((k, v) for k, v in items if k != SIGNATURE)
    return f"{path}?{urlencode(pairs)}".encode()


def signature_of(path: str, params: MultiDict[str, str] | dict[str, str]) -> str:
    return hmac.new(signing_key(), _canonical(path, params), hashlib.sha256).hexdigest()


def sign_url(path: str, params: dict[str, str], expires_in_s: int) -> str:
    """The path with its query, an expiry and the signature (relative to the portal)."""
    values = {**params, EXPIRES: str(int(time.time()) + expires_in_s)}
    values[SIGNATURE] = signature_of(path, values)
    return f"{path}?{urlencode(sorted(values.items()))}"


def _signed_check() -> str | None:
    """None if the request's URL is signed and not expired; otherwise why not."""
    args = request.args
    given = args.get(SIGNATURE, "")
    expires = args.get(EXPIRES, "")
    if len(args.getlist(SIGNATURE)) > 1 or len(args.getlist(EXPIRES)) > 1:
        return "malformed"
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return "malformed"
    if not hmac.compare_digest(given, signature_of(request.path, args)):
        return "bad_signature"
    if int(expires) < time.time():
        return "expired"
    return None


# -- answers -------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"err": 1, "err_class": code, "err_desc": message}), status


def _scope() -> Scope | tuple[Response, int]:
    if SIGNATURE in request.args:
        problem = _signed_check()
        if problem is not None:
            messages = {
                "malformed": "The signed URL lacks a valid expiry or signature.",
                "bad_signature": "The URL's signature does not match: it was changed or "
                "signed with another key.",
                "expired": "The signed URL has expired: ask for a new one.",
            }
            return _error(403, problem, messages[problem])
        return Scope(True, tuple(configured()))
    agent = g.get("agent")
    if agent is None:
        return _error(403, "unauthenticated", "Sign in as a service owner, or use a signed URL.")
    scope = scope_of(agent)
    if scope is None:
        return _error(403, "forbidden", "Only service owners and territory administrators "
                      "may read these statistics.")  # fmt: skip
    return scope


Series = list[tuple[str, Callable[[Figures], Any]]]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


STATISTICS: dict[str, tuple[str, Series]] = {
    "visits": (
        "Page views and unique visitors (sum of daily uniques)",
        [
            ("Page views", lambda f: f.visits),
            ("Unique visitors (sum of daily uniques)", lambda f: f.visitors),
        ],
    ),
    "journeys": (
        "Journeys started, completed, failed by class and given up",
        [
            ("Started", lambda f: f.started),
            ("Completed", lambda f: f.completed),
            *[(f"Failed: {name}", failure_count(name)) for name in JOURNEY_FAILURES],
            ("Given up", lambda f: f.given_up),
            ("Success rate", lambda f: _round(f.success_rate)),
        ],
    ),
    "linking": (
        "Account linking attempts by outcome",
        [("Attempts", lambda f: f.link_attempts)]
        + [(f"Outcome: {name}", link_count(name)) for name in LINK_OUTCOMES]
        + [("Success rate", lambda f: _round(f.link_success_rate))],
    ),
    "availability": (
        "Availability of the back-ends and p95 latencies (ms)",
        [
            ("Availability", lambda f: _round(f.availability)),
            ("Back-end latency p95 (ms)", lambda f: f.latency_p95_ms),
            ("Server time p95 (ms)", lambda f: f.server_p95_ms),
        ],
    ),
    "satisfaction": (
        "Satisfaction and clarity out of 10 (null under 100 answers), with their answers",
        [
            ("Answers", lambda f: f.answers),
            ("Satisfaction", lambda f: _round(f.satisfaction)),
            ("Clarity answers", lambda f: f.clarity_answers),
            ("Clarity", lambda f: _round(f.clarity)),
        ],
    ),
    "channels": (
        "Actions by channel, and those done with an adviser",
        [(f"Channel: {name}", channel_count(name)) for name in CHANNELS]
        + [("Assisted", lambda f: f.assisted), ("Actions", lambda f: f.actions)],
    ),
}
GROUP_BY = ("service", "failure", "channel")


def _filters(scope: Scope) -> list[dict[str, Any]]:
    titles = configured()
    return [
        {"id": "time_interval", "label": "Interval", "required": True, "default": "month",
         "options": [{"id": value, "label": value} for value in GRANULARITIES]},
        {"id": "start", "label": "Start (YYYY-MM-DD)", "required": False},
        {"id": "end", "label": "End (YYYY-MM-DD)", "required": False},
        {"id": "service", "label": "Service", "required": False,
         "options": [{"id": slug, "label": titles[slug]} for slug in scope.slugs]},
        {"id": "channel", "label": "Channel", "required": False,
         "options": [{"id": name, "label": name} for name in CHANNELS]},
        {"id": "group-by", "label": "Group by", "required": False,
         "options": [{"id": name, "label": name} for name in GROUP_BY]},
    ]  # fmt: skip


@bp.get("/")
@journey("statistics", "list")
def index() -> Any:
    scope = _scope()
    if not isinstance(scope, Scope):
        return scope
    data = [
        {
            "name": name,
            "id": name,
            "label": label,
            "url": url_for("statistics.statistic", name=name, _external=True),
            "filters": _filters(scope),
        }
        for name, (label, _series) in STATISTICS.items()
    ]
    return jsonify({"data": data, "err": 0})


def _x_label(start: Any, granularity: str) -> str:
    return start.strftime("%Y-%m") if granularity == "month" else start.isoformat()


@bp.get("/<name>/")
@journey("statistics", "statistic")
def statistic(name: str) -> Any:
    scope = _scope()
    if not isinstance(scope, Scope):
        return scope
    if name not in STATISTICS:
        return _error(404, "unknown_statistic", f"No statistic named {name!r}.")
    args = request.args
    try:
        selection = parse_selection(
            MultiDict({"time_interval": args.get("time_interval", "month"),
                       "start": args.get("start", ""), "end": args.get("end", "")}),
            granularity_param="time_interval",
        )  # fmt: skip
    except SelectionError as exc:
        return _error(400, "bad_filter", f"Invalid period ({exc.code}): time_interval is "
                      "day, week or month; start and end are YYYY-MM-DD, start before end, "
                      "at most 62 intervals.")  # fmt: skip
    service = args.get("service", "")
    if service and not scope.allows(service):
        return _error(404, "unknown_service", "No such service among those you may read.")
    group_by = args.get("group-by", "")
    if group_by and group_by not in GROUP_BY:
        return _error(400, "bad_filter", f"group-by is one of {', '.join(GROUP_BY)}.")
    channel = args.get("channel", "")
    if channel and channel not in CHANNELS:
        return _error(400, "bad_filter", f"channel is one of {', '.join(CHANNELS)}.")
    instances = [service] if service else scope.instances
    return jsonify({"data": _data(name, selection, scope, instances, group_by, channel), "err": 0})


def _data(
    name: str,
    selection: Selection,
    scope: Scope,
    instances: list[str] | None,
    group_by: str,
    channel: str,
) -> dict[str, Any]:
    g_ = selection.granularity
    series_of = STATISTICS[name][1]
    if channel and name == "channels":
        series_of = [(f"Channel: {channel}", lambda f: f.channels.get(channel, 0))]
    x_labels = [_x_label(start, g_) for start in selection.periods]
    if group_by == "service":
        _label, value = series_of[0]
        titles = configured()
        slugs = instances if instances is not None else list(scope.slugs)
        series = []
        for slug in slugs:
            rows = build_report(selection, [slug]).rows
            series.append({"label": titles.get(slug, slug), "data": [value(f) for _s, f in rows]})
        return {"x_labels": x_labels, "series": series, "subfilters": []}
    rows = build_report(selection, instances).rows
    if group_by == "failure":
        series_of = [(name_, failure_count(name_)) for name_ in JOURNEY_FAILURES] + [
            ("given_up", lambda f: f.given_up)
        ]
    elif group_by == "channel":
        series_of = [(name_, channel_count(name_)) for name_ in CHANNELS]
    series = [{"label": label, "data": [value(f) for _s, f in rows]} for label, value in series_of]
    return {"x_labels": x_labels, "series": series, "subfilters": []}


def absolute(path_and_query: str) -> str:
    return current_settings().base_url + path_and_query
