"""What is recorded, from where: the request hooks, the connector calls, the journal.

Every event is built here, from dimensions that name a service, a step, an outcome and a
channel: never a resident's id, an address, a user agent or anything typed. The request
hooks (``init_measure``) note the start of a page and record its ``page_view`` with the
server time; ``on_connector_outcome`` records each connector call with its latency;
``on_journal`` turns each journal entry into an ``action`` and, for the journeys it ends,
``journey_completed`` / ``journey_failed`` and ``link_attempt``; ``journey_started`` and
the failures no journal entry says (invalid input) are recorded where they happen.

A browser that objects (cookie ``measure_optout=1``, or ``Sec-GPC: 1``) records nothing
at all: the request's ``MeasureContext`` is muted, and so are the reads its workers do
(``bind``). Outside a request (a command, the prober), events have no channel but
``web`` and no visitor.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_app_context, has_request_context, request
from flask import session as flask_session

from portal.actor import current_actor

if TYPE_CHECKING:
    from portal.actor import Actor
    from portal.measure.recorder import Recorder
    from portal.models import JournalEntry

log = logging.getLogger(__name__)

PARIS = ZoneInfo("Europe/Paris")
OPTOUT_COOKIE = "measure_optout"
#: A browser without a session is counted with a random id kept until midnight only.
VISITOR_COOKIE = "measure_day"
#: Paths never measured: files, health checks, the agents' own area, the sandbox.
SKIPPED_PREFIXES = ("/static/", "/healthz", "/readyz", "/metrics", "/agents", "/_admin", "/sandbox")

T = TypeVar("T")


def paris_day(moment: datetime | None = None) -> date:
    """The territory's day of ``moment`` (UTC; now by default)."""
    return (moment or datetime.now(UTC)).astimezone(PARIS).date()


def end_of_paris_day(moment: datetime | None = None) -> datetime:
    """The next midnight in Paris, as an aware UTC datetime."""
    day = paris_day(moment)
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), PARIS)
    return midnight.astimezone(UTC)


# -- the request's measuring context -----------------------------------------------------


@dataclass(frozen=True)
class MeasureContext:
    muted: bool = False
    channel: str = "web"
    assisted: bool = False


_UNMUTED = MeasureContext()
_context: contextvars.ContextVar[MeasureContext] = contextvars.ContextVar(
    "measure_context",
    default=_UNMUTED,
)


def current_context() -> MeasureContext:
    return _context.get()


def bind(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` with this request's measuring context, for a worker thread (whose
    context starts empty): a muted request's reads stay muted."""
    context = _context.get()

    def bound(*args: Any, **kwargs: Any) -> T:
        token = _context.set(context)
        try:
            return function(*args, **kwargs)
        finally:
            _context.reset(token)

    return bound


def opted_out() -> bool:
    """Whether this browser objects: our cookie, or Global Privacy Control."""
    return request.cookies.get(OPTOUT_COOKIE) == "1" or request.headers.get("Sec-GPC") == "1"


def _skipped(path: str) -> bool:
    return path.startswith(SKIPPED_PREFIXES)


# -- recording ---------------------------------------------------------------------------


def recorder(app: Flask | None = None) -> Recorder | None:
    target = app or (current_app if has_app_context() else None)
    if target is None:
        return None
    rec: Recorder | None = target.extensions.get("measure")
    return rec


def record(kind: str, *, app: Flask | None = None, **dimensions: Any) -> None:
    """Buffer one event of ``kind``; never raises. Dimensions not given take the
    request's (channel, assisted); nothing is recorded for a muted request."""
    try:
        context = _context.get()
        if context.muted:
            return
        rec = recorder(app)
        if rec is None:
            return
        now = datetime.now(UTC)
        event = {
            "at": now.replace(microsecond=0),
            "day": paris_day(now),
            "kind": kind,
            "category": str(dimensions.get("category", ""))[:32],
            "instance": str(dimensions.get("instance", ""))[:64],
            "step": str(dimensions.get("step", ""))[:48],
            "outcome": str(dimensions.get("outcome", ""))[:16],
            "failure": str(dimensions.get("failure", ""))[:16],
            "channel": str(dimensions.get("channel", context.channel))[:8],
            "assisted": bool(dimensions.get("assisted", context.assisted)),
            "value_ms": dimensions.get("value_ms"),
            "visitor": dimensions.get("visitor"),
        }
        rec.add(event)
    except Exception:
        _log_once("event not recorded")


_logged: set[str] = set()


def _log_once(what: str) -> None:
    if what not in _logged:
        _logged.add(what)
        log.warning("measure: %s", what, exc_info=True)


def category_of(instance: str) -> str:
    """The kind of service of an instance ('' when unknown)."""
    if not instance or not has_app_context():
        return ""
    try:
        return str(current_app.extensions["connectors"].category(instance))
    except Exception:
        return ""


def _journey_category() -> str:
    if has_request_context():
        journey = g.get("journey")
        if journey:
            return str(journey[0])
    return ""


# -- unique visitors -----------------------------------------------------------------------


class DayKeys:
    """The day's visitor key, shared by every process through ``visitor_key``: the first
    process to need it inserts it; one that loses the race reads the winner's. Cached
    here for the day; a past day's key is never asked for again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: One thread loads the key; the others of this process wait for it (a burst of
        #: requests at midnight asks the database once, not once each).
        self._loading = threading.Lock()
        self._day: date | None = None
        self._key: bytes = b""

    def key(self, day: date) -> bytes:
        with self._lock:
            if self._day == day:
                return self._key
        with self._loading:
            with self._lock:
                if self._day == day:
                    return self._key
            key = _load_or_create_key(day)
            with self._lock:
                self._day, self._key = day, key
            return key

    def forget(self) -> None:
        with self._lock:
            self._day, self._key = None, b""


def _load_or_create_key(day: date) -> bytes:
    from portal.extensions import db
    from portal.models import VisitorKey

    table = VisitorKey.__table__
    engine = db.engine
    with engine.connect() as conn:
        row = conn.execute(sa.select(table.c.key).where(table.c.day == day)).first()
    if row is None:
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(VisitorKey).values(day=day, key=secrets.token_hex(32)))
        except sa.exc.IntegrityError:
            pass  # another process made it a moment ago: theirs is the day's
        with engine.connect() as conn:
            row = conn.execute(sa.select(table.c.key).where(table.c.day == day)).first()
    if row is None:
        raise RuntimeError("the day's visitor key could not be read")
    return bytes.fromhex(row[0])


def visitor_hash(key: bytes, session_id: str) -> str:
    """HMAC-SHA256 of the session id with the day's key, hex, truncated to 32."""
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()[:32]


def _session_id() -> str:
    """The browser's session: the resident's, an adviser's assisted session, or ''."""
    sid = flask_session.get("sid")
    if isinstance(sid, str) and sid:
        return sid
    assisted = g.get("assisted")
    row_id = getattr(assisted, "id", None)
    return f"assisted:{row_id}" if row_id else ""


def _visitor(app: Flask, day: date) -> str | None:
    session_id = _session_id()
    if not session_id:
        session_id = request.cookies.get(VISITOR_COOKIE, "")
        if len(session_id) != 32 or not session_id.isalnum():
            session_id = secrets.token_hex(16)
            g.measure_new_day_id = session_id
        session_id = "day:" + session_id
    try:
        key = app.extensions["measure_keys"].key(day)
    except Exception:
        _log_once("the day's visitor key could not be had")
        return None
    return visitor_hash(key, session_id)


# -- connector calls --------------------------------------------------------------------


def connector_outcome_hook(app: Flask) -> Callable[[str, bool, float], None]:
    """What the registry calls after each connector call (``on_outcome``): recorded as
    ``connector_call`` with its outcome and latency, for that instance."""

    def on_connector_outcome(slug: str, ok: bool, duration_s: float) -> None:
        try:
            registry = app.extensions.get("connectors")
            category = str(registry.category(slug)) if registry is not None else ""
        except Exception:
            category = ""
        record(
            "connector_call",
            app=app,
            category=category,
            instance=slug,
            outcome="ok" if ok else "error",
            value_ms=int(duration_s * 1000),
        )

    return on_connector_outcome


# -- the journal: actions, and the journeys they end ------------------------------------

#: Journal codes of a link attempt: the outcome recorded, and the failure class.
LINK_CODES = {
    "link": ("success", ""),
    "link_again": ("success", ""),
    "link_refused": ("refused", "refused"),
    "link_not_done": ("unavailable", "unavailable"),
}
#: A payment's final states: completed, refused by the provider; an abandoned one is
#: neither (it counts as given up: started, never completed nor failed).
PAYMENT_CODES = {"payment_paid": "", "payment_refused": "refused"}
PAYMENT_ACTION = "pay_invoice"
#: Refusal codes that say the input could not be used, rather than a decision.
INVALID_REASONS = {"invalid", "invalid_input", "invalid_value", "missing_proof", "bad_request"}


def failure_of(outcome: str, reason_code: str = "") -> str:
    """The failure class of a journal outcome (``refused`` | ``unavailable`` |
    ``invalid``), '' for a success."""
    if outcome == "success":
        return ""
    if reason_code == "invalid_proof":
        return "refused"  # a proof that does not match: the back-end's decision
    if reason_code in INVALID_REASONS or reason_code.startswith("invalid_"):
        return "invalid"
    if outcome == "refused":
        return "refused"
    return "unavailable"


def on_journal(entry: JournalEntry, actor: Actor | None) -> None:
    """Called by ``JournalEntry.record`` for every entry; never raises."""
    try:
        _on_journal(entry, actor)
    except Exception:
        _log_once("journal entry not measured")


def _on_journal(entry: JournalEntry, actor: Actor | None) -> None:
    if actor is not None and actor.kind == "system" and actor.id == "demo":
        return  # the sandbox's demo links made at sign-in are nobody's action
    channel = actor.channel if actor is not None else "web"
    assisted = actor.assisted if actor is not None else False
    instance = entry.connector_instance or ""
    category = category_of(instance) or _journey_category()
    code = entry.code or entry.action
    reason_code = str((entry.params or {}).get("reason_code", "") or "")
    common: dict[str, Any] = {
        "category": category,
        "instance": instance,
        "channel": channel,
        "assisted": assisted,
    }
    record("action", step=entry.action[:48], outcome=entry.outcome, **common)
    if code in LINK_CODES:
        outcome, failure = LINK_CODES[code]
        if code == "link_refused" and failure_of("refused", reason_code) == "invalid":
            failure = outcome = "invalid"
        record("link_attempt", step="link", outcome=outcome, **common)
        _journey_ended("link", failure, common)
    elif entry.action == PAYMENT_ACTION:
        if code in PAYMENT_CODES:
            _journey_ended("pay", PAYMENT_CODES[code], common)
    elif instance and code in (entry.action, f"{entry.action}_refused", f"{entry.action}_not_done"):
        _journey_ended(entry.action, failure_of(entry.outcome, reason_code), common)


def _journey_ended(journey: str, failure: str, common: dict[str, Any]) -> None:
    if has_request_context():
        g.measure_journey_ended = True
    if failure:
        record("journey_failed", step=journey, outcome="failure", failure=failure, **common)
    else:
        record("journey_completed", step=journey, outcome="success", **common)
        if has_request_context() and not _context.get().muted and recorder() is not None:
            from portal.measure.satisfaction import offer

            offer(journey, common["category"], common["instance"])


def journey_started(journey: str, *, category: str = "", instance: str = "") -> None:
    record(
        "journey_started",
        step=journey,
        category=category or category_of(instance) or _journey_category(),
        instance=instance,
    )


def journey_failed(journey: str, failure: str, *, category: str = "", instance: str = "") -> None:
    """A journey that ended without a journal entry saying so (input not usable, the
    back-end not reached before anything was tried)."""
    record(
        "journey_failed",
        step=journey,
        outcome="failure",
        failure=failure,
        category=category or category_of(instance) or _journey_category(),
        instance=instance,
    )


def write_started(journey: str, *, category: str, instance: str) -> None:
    """A write's journey starts when its form is submitted."""
    journey_started(journey, category=category, instance=instance)
    if has_request_context():
        g.measure_write = (journey, category, instance)


def write_not_done(exc: Exception) -> None:
    """A write stopped before the back-end said anything a journal entry records: the
    form or the item could not be used (``invalid``), or the account could not be read
    (``unavailable``). An outcome not known yet, or a form being answered in another
    tab, ends nothing: the journey is still open (given up, if it never ends)."""
    try:
        from portal.services.failures import (
            InvalidForm,
            ItemGone,
            NeedsRelink,
            ServiceUnavailable,
        )

        write = g.get("measure_write")
        if write is None or g.get("measure_journey_ended"):
            return
        if isinstance(exc, InvalidForm | ItemGone):
            failure = "invalid"
        elif isinstance(exc, ServiceUnavailable | NeedsRelink):
            failure = "unavailable"
        else:
            return
        journey, category, instance = write
        journey_failed(journey, failure, category=category, instance=instance)
        g.measure_journey_ended = True
    except Exception:
        _log_once("write failure not measured")


def link_attempt(outcome: str, *, instance: str) -> None:
    """A link attempt no journal entry says (refused before the back-end: blocked, or
    input that cannot be a proof)."""
    category = category_of(instance)
    record("link_attempt", step="link", outcome=outcome, instance=instance, category=category)


def set_instance(slug: str) -> None:
    """The connector instance this request's page is about (its page view's)."""
    if has_request_context():
        g.measure_instance = slug


# -- the request hooks ------------------------------------------------------------------


def init_measure(app: Flask) -> None:
    """The recorder, the day keys, the request hooks and the satisfaction prompt."""
    from portal.measure.recorder import Recorder
    from portal.measure.satisfaction import init_satisfaction

    settings = app.extensions["portal_settings"]
    enabled = bool(getattr(settings, "measure_enabled", True))
    if enabled:
        app.extensions["measure"] = Recorder(app, background=not app.testing)
    app.extensions["measure_keys"] = DayKeys()
    init_satisfaction(app)
    if not enabled:
        return

    def measure_clock() -> None:
        g.measure_start = time.perf_counter()
        # The objection first: a hook that answers early (a redirect, an expired
        # session) must not leave this request measured.
        g.measure_token = None
        try:
            if _skipped(request.path):
                g.measure_start = None
            elif opted_out():
                g.measure_token = _context.set(MeasureContext(muted=True))
        except Exception:
            g.measure_start = None
            _log_once("page not measured")

    # First of all the hooks, so that the server time counts the session's loading too.
    app.before_request_funcs.setdefault(None, []).insert(0, measure_clock)

    @app.before_request
    def measure_start() -> None:
        """Once the session is loaded: the actor's channel, and whether assisted."""
        try:
            if g.get("measure_start") is None or g.get("measure_token") is not None:
                return  # not measured, or muted
            actor = current_actor()
            context = MeasureContext(channel=actor.channel, assisted=actor.assisted)
            g.measure_token = _context.set(context)
        except Exception:
            g.measure_start = None
            _log_once("page not measured")

    @app.after_request
    def measure_page(response: Response) -> Response:
        try:
            _page_view(app, response)
        except Exception:
            _log_once("page view not recorded")
        return response

    @app.teardown_request
    def measure_end(_exc: BaseException | None) -> None:
        token = g.pop("measure_token", None)
        if token is not None:
            # Set in another context (a streamed body): let it be.
            with contextlib.suppress(ValueError):
                _context.reset(token)


def _page_view(app: Flask, response: Response) -> None:
    start = g.get("measure_start")
    if start is None or _context.get().muted or opted_out():
        return
    actor = current_actor()  # the actor is known only once the session is loaded
    journey = g.get("journey") or ("", "")
    day = paris_day()
    visitor = _visitor(app, day)
    record(
        "page_view",
        app=app,
        category=journey[0],
        step=journey[1],
        instance=g.get("measure_instance", ""),
        outcome=f"{response.status_code // 100}xx",
        channel=actor.channel,
        assisted=actor.assisted,
        value_ms=int((time.perf_counter() - start) * 1000),
        visitor=visitor,
    )
    new_id = g.get("measure_new_day_id")
    if new_id:
        settings = app.extensions["portal_settings"]
        response.set_cookie(
            VISITOR_COOKIE,
            new_id,
            expires=end_of_paris_day(),
            path="/",
            secure=settings.is_production,
            httponly=True,
            samesite="Lax",
        )
