"""What every kind's writes share: the answer to a write, looking its item up, and the
steps ``portal.services.runner`` puts together. The words for a write's failures are
``portal.services.failures``'s.

Every write goes through ``perform`` (``portal.writes``): once per idempotency key,
journaled. Before a write that names an item (a loan, a booking, a child…), the item is
looked up in the resident's own account through their link (``owned``): an id from a URL
or a form is never trusted alone, and someone else's id gets the same 404 as an id that
does not exist.

One page deadline (``Budget``) covers the look-up, the write and the re-read of the
section, so a hanging back-end costs the resident one deadline, not three.

A write sent without an answer (``OutcomeUnknown``) is said to be not known yet, never
"nothing was done". ``settle_unknown`` asks again with the same key before a page offers
that item's form (each kind says how, in ``ServiceKind.resend``), and the item's form
carries that same key (``write_key``), so sending it asks again instead of acting twice.

The answer to a write: for htmx, the section re-read with the result in a status region
that takes the focus; otherwise the result is flashed and the browser goes back to the
page with a 303, so a reload never sends the form again.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from flask import abort, flash, g, request
from werkzeug.wrappers import Response

from portal.actor import current_actor
from portal.auth.session import see_other
from portal.config import current_settings
from portal.errors import render_error
from portal.extensions import db
from portal.htmx import is_partial
from portal.models import WriteRecord
from portal.models._types import utcnow
from portal.services import kinds
from portal.services.core import Panel, Service
from portal.services.failures import (
    InProgress,
    InvalidForm,
    ItemGone,
    NeedsRelink,
    OutcomeUnknown,
    ServiceUnavailable,
    WriteFailure,
    answering,
    flash_text,
)
from portal.services.failures import (
    Message as Message,
)
from portal.writes import WriteOutcome, new_key, stored_request, unknown_writes

#: Ids longer than this are no back-end's: answered 404 before any call.
MAX_ID_LENGTH = 128
#: An unknown write is asked again on a page visit only if its last try is this old:
#: the page a plain form post lands on right after it does not wait on it twice.
ASK_AGAIN_AFTER_S = 2.0

Answer = str | Response | tuple[str, int]
#: How a kind asks again about one of its writes, from what it stored
#: (``ServiceKind.resend``).
Resend = Callable[[Service, str, dict[str, Any], float], "Message | None"]


# -- what the templates need -----------------------------------------------------------


def dom_id(value: object) -> str:
    """A back-end id made safe for an HTML id and a CSS selector (``hx-target``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", str(value))


def template_helpers() -> dict[str, Any]:
    """What every kind's write forms use (registered on the app by ``create_app``)."""
    return {
        "new_key": new_key,
        "write_key": write_key,
        "dom_id": dom_id,
        "actor_may_pay": _actor_may_pay,
        "actor_assisted": _actor_assisted,
    }


def _actor_may_pay(slug: str) -> bool:
    """Whether the request's actor may pay at ``slug`` (an adviser: if the mandate says)."""
    return current_actor().may_pay(slug)


def _actor_assisted() -> bool:
    """Whether an adviser acts for the resident (some links are then absent)."""
    return current_actor().assisted


# -- results ---------------------------------------------------------------------------


def failure(outcome: WriteOutcome, svc: Service) -> WriteFailure | None:
    """The failure a write's outcome is, when the back-end was not reached or the form
    cannot be used (a refusal and an unknown outcome are said in the kind's words)."""
    if outcome.status == "failed":
        return ServiceUnavailable()
    if outcome.status == "relink":
        return NeedsRelink(svc.slug)
    if outcome.status == "in_progress":
        return InProgress()
    if outcome.status == "invalid":
        return InvalidForm()
    return None


def replays(svc: Service) -> bool:
    """Whether the back-end answers a repeated Idempotency-Key with its first answer (the
    standard APIs do); one that does not (Koha) could act twice if asked again."""
    return bool(getattr(svc.connector, "replays_idempotency_keys", True))


def not_known_yet(svc: Service, first: str) -> Message:
    """A write sent without an answer: it may have been done. Never "nothing was done"."""
    return OutcomeUnknown(first, replays(svc)).message()


def write_key(svc: Service, action: str, item: str = "") -> str:
    """The key a write form carries: the key of this item's write whose outcome is not
    known yet, so that sending the form asks the back-end again instead of acting a
    second time; a fresh key otherwise."""
    if not replays(svc):
        return new_key()
    cache: dict[tuple[str, str, str], str] | None = g.get("_unknown_keys")
    if cache is None:
        cache = {}
        for record in unknown_writes(svc.link):
            item = str(stored_request(record).get("item", ""))
            cache[(record.instance_slug, record.action, item)] = record.key
        g._unknown_keys = cache
    return cache.get((svc.slug, action, item)) or new_key()


def settle_unknown(svc: Service, deadline_s: float) -> None:
    """Ask the back-end again, with the same key, about each write on this service whose
    outcome is not known, and say what came of it (flashed on the page being shown)."""
    if not replays(svc):
        return
    end = time.monotonic() + deadline_s
    for record in unknown_writes(svc.link):
        left = end - time.monotonic()
        if left <= 0:
            break
        if utcnow() - record.updated_at < timedelta(seconds=ASK_AGAIN_AFTER_S):
            continue
        resend = kinds.kind(svc.category).resend.get(record.action)
        if resend is None:
            continue
        message = resend(svc, record.key, stored_request(record), left)
        if message is not None:
            flash_message(message)
    g.pop("_unknown_keys", None)


def unreached(panel: Panel[Any], svc: Service) -> WriteFailure:
    """The account could not be read, so nothing was tried."""
    return NeedsRelink(svc.slug) if panel.state == "relink" else ServiceUnavailable()


def flash_message(message: Message) -> None:
    flash(flash_text(message), message.kind)
    for line, kind in message.items:
        flash(line, kind)


def answer(message: Message, fragment: Callable[[Message], str] | None, back: str) -> Answer:
    """The updated section for htmx (htmx swaps only 2xx answers, so even an unusable
    form gets one); otherwise a flash and a 303 back to the page, or a plain 400. A write
    without a section (``fragment`` None) answers with its page only."""
    if fragment is not None and is_partial():
        return fragment(message)
    if message.invalid:
        return render_error(400, message.text)
    flash_message(message)
    return see_other(back)


def answers_to(fragment: Callable[[Message], str] | None, back: str) -> None:
    """Declare how this request's write failures are answered (``answer``)."""
    answering(lambda message: answer(message, fragment, back))


# -- looking items up in the resident's own account ------------------------------------


class Budget:
    """The page deadline, shared by every call one request makes."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + current_settings().page_deadline_s

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


def form_key() -> str:
    return request.form.get("idem", "")


def is_settled(key: str, action: str) -> bool:
    """Whether this resident's form with ``key`` was answered, or is being answered.

    ``perform`` then replays the first answer without calling the back-end; the item
    may have left the account since (a cancelled hold), so it is not looked up again.
    A write that failed is not settled: it will call the back-end, so it is checked.
    One whose outcome is unknown counts as settled: it may have been done (a hold
    cancelled, gone from the account), and asking again with its key is safe.
    """
    record = db.session.execute(db.select(WriteRecord).filter_by(key=key)).scalar_one_or_none()
    return (
        record is not None
        and record.citizen_id == g.citizen.id
        and record.action == action
        and record.state in ("done", "pending", "unknown")
    )


def asked_title(key: str) -> str:
    """The title an earlier sending of this form named, for an item no longer listed."""
    record = db.session.execute(db.select(WriteRecord).filter_by(key=key)).scalar_one_or_none()
    if record is None or record.citizen_id != g.citizen.id:
        return ""
    return str(stored_request(record).get("title", ""))


def owned(
    svc: Service, panel: Panel[Any], items: Sequence[Any], item_id: str, settled: bool
) -> Any:
    """The resident's item with ``item_id`` (None when the account could not be read
    and the form was answered already), or the failure that stops the write.

    ``ItemGone`` when the account was read and holds no such item: whether the id is
    someone else's or does not exist is not told.
    """
    if panel.has_data:
        item = shown_item(items, item_id, settled)
        if not panel.writable and not settled:
            # Only a stale copy: the item may have changed since; nothing is tried.
            raise ServiceUnavailable(stale=True)
        return item
    if settled:
        return None
    raise unreached(panel, svc)


def shown_item(items: Sequence[Any], item_id: str, settled: bool = False) -> Any:
    """The item with ``item_id`` among the resident's, or ``ItemGone``."""
    item = next((i for i in items if i.id == item_id), None)
    if item is None and not settled:
        raise ItemGone
    return item


def check_id(item_id: str) -> None:
    if not item_id or len(item_id) > MAX_ID_LENGTH:
        abort(404)


def iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def iso_day(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def derived_key(key: str, item_id: str) -> str:
    """Each item of a form acting on several gets its own key, the same on every replay."""
    return hashlib.sha256(f"{key}:{item_id}".encode()).hexdigest()[:32]


def said(
    outcome: WriteOutcome, svc: Service, say: Callable[[WriteOutcome], Message]
) -> Message | None:
    """What a write asked again came to; nothing to say while another tab is asking."""
    if outcome.status == "in_progress":
        return None
    trouble = failure(outcome, svc)
    return trouble.message() if trouble is not None else say(outcome)
