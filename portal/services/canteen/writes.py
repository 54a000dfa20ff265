"""The school canteen's writes: a month of meals per child, booked or cancelled for the
whole family in one form (same URLs as ever, under ``/services``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from connectors.base import CallContext, MealChange, MealChangeOutcome, Refused
from portal.auth.session import login_required
from portal.config import current_settings
from portal.formatting import short_day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.refusals import plain_reason, reason_text, with_reason
from portal.services.answers import (
    Answer,
    Budget,
    Message,
    answer,
    answers_to,
    derived_key,
    form_key,
    is_settled,
    iso_day,
    not_known_yet,
    replays,
    settle_unknown,
    unreached,
)
from portal.services.canteen.reading import canteen_reader, read_family
from portal.services.core import Service, kind_service, read_panel
from portal.services.failures import (
    InvalidForm,
    ItemGone,
    NeedsRelink,
    OutcomeUnknown,
    ServiceUnavailable,
)
from portal.services.runner import Write, resends
from portal.writes import KEY_RE, WriteOutcome

bp = Blueprint("canteen", __name__, url_prefix="/services")

#: More days than a month has: the form was not ours.
MAX_DAYS = 62
#: More children than a family account holds: the form was not ours.
MAX_CHILDREN = 12
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
#: A day of the family's form as it was shown: ``<child id>:YYYY-MM-DD:0|1``.
FAMILY_DAY_RE = re.compile(r"^([^:]{1,128}):(\d{4}-\d{2}-\d{2}):([01])$")


# -- a month of meals per child -------------------------------------------------


def parse_month(value: str | None, today: date | None = None) -> date:
    """``YYYY-MM`` as the first day of that month; anything else is this month."""
    today = today or date.today()
    match = MONTH_RE.match(value or "")
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return date(year, month, 1)
    return today.replace(day=1)


def _meals_url(svc: Service, month: date) -> str:
    if month == date.today().replace(day=1):
        return url_for("services.service", slug=svc.slug)
    return url_for("canteen.meals", slug=svc.slug, month=month.strftime("%Y-%m"))


@bp.get("/<slug>/meals")
@login_required
@journey("canteen", "meals")
def meals(slug: str) -> str:
    """The canteen page for any month (``?month=YYYY-MM``); a bad month shows this one."""
    svc = kind_service(slug, "canteen")
    month = parse_month(request.args.get("month"))
    if not is_partial():
        settle_unknown(svc, current_settings().page_deadline_s / 2)
    panel = read_panel(svc, canteen_reader(month), current_settings().page_deadline_s)
    return render_template("services/canteen/page.html", service=svc, panel=panel)


def _meals_fragment(svc: Service, month: date, budget: Budget) -> Callable[[Message], str]:
    """The whole family's month, re-read from the back-end after a save: what it shows is
    what the back-end holds, never what the form asked for."""

    def render(message: Message) -> str:
        panel = read_panel(svc, canteen_reader(month), budget.left())
        return render_template(
            "services/canteen/_meals.html",
            service=svc,
            panel=panel,
            month_start=month,
            message=message,
            fragment=True,
        )

    return render


def _change_meals(
    svc: Service, ctx: CallContext, child_id: str, changes: list[MealChange], key: str
) -> Sequence[MealChangeOutcome]:
    """One call for every change of one child; if none applied, the whole lot was refused."""
    outcomes = svc.connector.change_reservations(
        ctx, svc.ref, child_id, changes, idempotency_key=key
    )
    if outcomes and not any(o.applied for o in outcomes):
        codes = {o.reason_code for o in outcomes}
        raise Refused(
            "\n".join(
                f"{short_day(o.day)}\u00a0: {plain_reason(o.reason_code, o.reason)}"
                if o.reason or o.reason_code
                else short_day(o.day)
                for o in outcomes
            ),
            "not_applied",
            codes.pop() if len(codes) == 1 else "",
        )
    return outcomes


def _meals_summary(changes: list[MealChange], outcomes: Sequence[Any]) -> dict[str, Any]:
    """The journal's parameters: days booked, cancelled and refused (ISO dates, shown
    in the reader's language by ``portal.journal_text``)."""
    wanted = {c.day: c.book for c in changes}
    applied = [o for o in outcomes if o.applied]
    return {
        "booked": [o.day.isoformat() for o in applied if wanted.get(o.day)],
        "cancelled": [o.day.isoformat() for o in applied if not wanted.get(o.day)],
        "refused": [o.day.isoformat() for o in outcomes if not o.applied],
    }


def _meals_message(outcome: WriteOutcome, svc: Service, name: str = "") -> Message:
    """One child's save said on its own: a change of meals asked again."""
    if outcome.status == "unknown":
        return not_known_yet(
            svc,
            _(
                "Nous ne savons pas encore si les changements de repas de %(name)s ont été "
                "enregistrés.",
                name=name,
            )
            if name
            else _("Nous ne savons pas encore si vos changements de repas ont été enregistrés."),
        )
    applied, lines = _meal_lines(outcome, name)
    text = ngettext(
        "%(num)d modification enregistrée.", "%(num)d modifications enregistrées.", applied
    )
    kinds = {kind for _line, kind in lines}
    kind = "success" if kinds <= {"success"} else ("error" if not applied else "info")
    return Message(text, kind, tuple(lines))


def _meal_lines(outcome: WriteOutcome, name: str) -> tuple[int, list[tuple[str, str]]]:
    """What one child's save came to: the changes applied, and a line for each."""
    if outcome.status == "unknown":
        text = _(
            "%(name)s : nous ne savons pas encore si les changements ont été enregistrés.",
            name=name,
        )
        return 0, [(text, "info")]
    if outcome.status == "refused":
        lines = [(_("%(name)s : aucune modification n'a été enregistrée.", name=name), "error")]
        lines += [
            (_("%(name)s, %(reason)s", name=name, reason=line), "error")
            for line in outcome.reason.split("\n")
            if line
        ]
        return 0, lines
    if outcome.status == "failed":
        text = _("%(name)s : le service n'a pas répondu, rien n'a été fait.", name=name)
        return 0, [(text, "error")]
    if outcome.status == "in_progress":
        text = _("%(name)s : modification déjà en cours de traitement.", name=name)
        return 0, [(text, "info")]
    lines_: list[tuple[str, str]] = []
    applied = 0
    for item in outcome.result or ():
        day = iso_day(item.get("day"))
        label = short_day(day) if day else ""
        if item.get("applied"):
            applied += 1
            text = (
                _("%(name)s, %(day)s : repas réservé.", name=name, day=label)
                if item.get("book")
                else _("%(name)s, %(day)s : repas annulé.", name=name, day=label)
            )
            lines_.append((text, "success"))
        else:
            lines_.append(
                (
                    with_reason(
                        _("%(name)s, %(day)s : non modifié. %(reason)s"),
                        name=name,
                        day=label,
                        reason=reason_text(item.get("reason_code"), item.get("reason", "")),
                    ),
                    "error",
                )
            )
    return applied, lines_


def parse_family_days(values: Sequence[str]) -> dict[str, dict[date, bool]] | None:
    """The days the form showed, per child, with their state then
    (``<child>:YYYY-MM-DD:1`` = booked), or None if the form was not one of ours."""
    if len(values) > MAX_DAYS * MAX_CHILDREN:
        return None
    shown: dict[str, dict[date, bool]] = {}
    for value in values:
        match = FAMILY_DAY_RE.match(value)
        if not match:
            return None
        day = iso_day(match.group(2))
        if day is None:
            return None
        shown.setdefault(match.group(1), {})[day] = match.group(3) == "1"
    if len(shown) > MAX_CHILDREN or any(len(days) > MAX_DAYS for days in shown.values()):
        return None
    return shown


@bp.post("/<slug>/meals")
@login_required
@journey("canteen", "book")
def save_meals(slug: str) -> Answer:
    """Save the whole family's changes in one submission: for each child, the days whose
    box changed since the form was shown, in one call per child (each with a key of its
    own, derived from the form's). The back-end answers day by day; the page then shows
    what it holds, so a refused day is seen as it really is."""
    svc = kind_service(slug, "canteen")
    budget = Budget()
    month = parse_month(request.form.get("month"))
    back = _meals_url(svc, month)
    fragment = _meals_fragment(svc, month, budget)
    answers_to(fragment, back)
    key = form_key()
    shown = parse_family_days(request.form.getlist("day"))
    if not KEY_RE.match(key) or shown is None:
        raise InvalidForm
    wanted = set(request.form.getlist("book"))
    changes = {
        child_id: [
            MealChange(day, f"{child_id}:{day.isoformat()}" in wanted)
            for day, was_booked in sorted(days.items())
            if (f"{child_id}:{day.isoformat()}" in wanted) != was_booked
        ]
        for child_id, days in shown.items()
    }
    changes = {child_id: asked for child_id, asked in changes.items() if asked}
    family = read_panel(svc, read_family, budget.left())
    sub_keys = {child_id: derived_key(key, child_id) for child_id in changes}
    settled = all(is_settled(k, "book_meals") for k in sub_keys.values()) and bool(sub_keys)
    children = {c.id: c for c in family.data.children} if family.data is not None else {}
    if family.has_data:
        strangers = [c for c in shown if c not in children]
        if strangers and not settled:
            raise ItemGone  # someone else's child, or none: the same answer
    if not settled:
        if not family.has_data:
            raise unreached(family, svc)
        if not family.writable:
            raise ServiceUnavailable(stale=True)
    if not changes:
        return answer(
            Message(_("Vous n'avez rien changé : rien n'a été envoyé."), "info"), fragment, back
        )
    lines: list[tuple[str, str]] = []
    applied = asked = 0
    statuses = set()
    for child_id, child_changes in changes.items():
        child = children.get(child_id)
        name = child.first_name if child is not None else ""
        outcome = _perform_meals(
            svc, child_id, name, child_changes, sub_keys[child_id], budget.left()
        )
        if outcome.status == "relink":
            raise NeedsRelink(svc.slug)
        if outcome.status == "invalid":
            raise InvalidForm
        statuses.add(outcome.status)
        done, child_lines = _meal_lines(outcome, name)
        applied += done
        asked += len(child_changes)
        lines.extend(child_lines)
    if statuses == {"failed"}:
        raise ServiceUnavailable()
    if statuses == {"unknown"}:
        raise OutcomeUnknown(
            _("Nous ne savons pas encore si vos changements de repas ont été enregistrés."),
            replays(svc),
        )
    text = ngettext(
        "%(num)d modification enregistrée.", "%(num)d modifications enregistrées.", applied
    )
    if applied < asked:
        text += " " + _(
            "Ce qui n'a pas été enregistré est indiqué ci-dessous ; les repas affichés sont "
            "ceux que le service a enregistrés."
        )
    kind = "success" if applied == asked else ("error" if applied == 0 else "info")
    return answer(Message(text, kind, tuple(lines)), fragment, back)


@dataclass(frozen=True)
class ChildChanges:
    """What one child's part of the family's form asks: their id, first name, changes."""

    child_id: str
    name: str
    changes: list[MealChange]


def _meals_request(asked: ChildChanges) -> dict[str, Any]:
    return {
        "item": asked.child_id,
        "name": asked.name,
        "changes": [[c.day.isoformat(), c.book] for c in asked.changes],
    }


def _asked_child(stored: dict[str, Any]) -> ChildChanges | None:
    """One child's changes asked again, from what was stored while its outcome was not
    known."""
    child_id, name = str(stored.get("item", "")), str(stored.get("name", ""))
    changes = [
        MealChange(day, bool(book))
        for value, book in stored.get("changes") or ()
        if (day := iso_day(value)) is not None
    ]
    return ChildChanges(child_id, name, changes) if child_id and changes else None


def _encode_meals(asked: ChildChanges, outcomes: Sequence[MealChangeOutcome]) -> Any:
    return [
        {
            "day": o.day.isoformat(),
            "book": next((c.book for c in asked.changes if c.day == o.day), None),
            "applied": o.applied,
            "reason": o.reason,
            "reason_code": o.reason_code,
        }
        for o in outcomes
    ]


#: One child's changes of meals (the family's form sends one per child, each with a key
#: derived from the form's, and says them together).
BOOK_MEALS: Write[ChildChanges] = Write(
    action="book_meals",
    call=lambda svc, ctx, key, asked: _change_meals(svc, ctx, asked.child_id, asked.changes, key),
    say=lambda svc, outcome, asked: _meals_message(outcome, svc, asked.name),
    request=_meals_request,
    encode=_encode_meals,
    summary=lambda asked, outcomes: _meals_summary(asked.changes, outcomes),
    params=lambda asked: {"child": asked.name, "days": [c.day.isoformat() for c in asked.changes]},
    asked=_asked_child,
)


def _perform_meals(
    svc: Service, child_id: str, name: str, changes: list[MealChange], key: str, deadline_s: float
) -> WriteOutcome:
    return BOOK_MEALS.perform(svc, key, ChildChanges(child_id, name, changes), deadline_s)


#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
RESENDS = resends(BOOK_MEALS)
