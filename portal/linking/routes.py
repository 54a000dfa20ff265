"""Link a service account by proving it is yours; unlink it in one confirmed step."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_date, format_time, get_locale, to_user_timezone
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from connectors.base import (
    CallContext,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    Refused,
    Unavailable,
    VerifiedAccount,
)
from portal.actor import current_actor
from portal.auth.session import KEEPABLE_FIELDS, login_required, see_other, take_kept_values
from portal.config import current_settings
from portal.crypto import secret_box
from portal.extensions import db
from portal.integrations import registry
from portal.journeys import journey
from portal.linking import bp
from portal.linking.attempts import Attempts, Blocked, target_key
from portal.measure import events as measure
from portal.models import ConnectorSnapshot, JournalEntry, ServiceLink
from portal.services import kinds
from portal.services.kinds import ServiceKind

log = logging.getLogger(__name__)

#: Refusals that say the proof does not match, the number is unknown or the account is
#: locked: shown with the same words.
UNMATCHED_CODES = {"invalid_proof", "not_found", "card_locked", "account_locked"}


def init_keepable() -> None:
    """What the link form may get back after a lost session: each installed kind's
    ``LinkSpec.keepable`` (an account number, the kind of proof; never the proof)."""
    fields = (name for kind in kinds.kinds() for name in kind.link.keepable)
    KEEPABLE_FIELDS["linking.link"] = tuple(dict.fromkeys(fields))


def _links() -> dict[str, ServiceLink]:
    return {
        link.instance_slug: link
        for link in db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=g.citizen.id)
        ).scalars()
    }


@bp.get("")
@login_required
@journey("linking", "choose")
def index() -> str:
    """The instances an installed kind serves, grouped by kind, in the kinds' order; an
    instance of a category no kind serves is not offered."""
    reg = registry()
    links = _links()
    actor = current_actor()
    by_category: dict[str, list[tuple[InstanceConfig, ServiceLink | None]]] = {}
    for slug, instance in reg.instances.items():
        if not actor.may_use(slug):
            continue  # outside an adviser's mandate
        by_category.setdefault(reg.category(slug), []).append((instance, links.get(slug)))
    groups = [(kind, by_category.get(kind.category, [])) for kind in kinds.kinds()]
    return render_template("linking/index.html", groups=groups)


# -- proof attempts are limited per resident, per target account and per address ------


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _attempts(target: str | None = None) -> Attempts:
    keys = {"citizen": str(g.citizen.id), "address": _client_ip()}
    if target is not None:
        keys["target"] = target
    return Attempts(current_settings(), keys)


def _target(kind: ServiceKind, slug: str, form: Any) -> str:
    """The account the proof is about, as its back-end knows it: two instances on one
    back-end share their limit."""
    instance = registry().instances[slug]
    return target_key(instance.base_url.rstrip("/"), kind.link.target(form) or "")


def _until(moment: datetime) -> str:
    """« jusqu'à 10 h 30 » (or with the day, when it is not today), in Paris time."""
    local = to_user_timezone(moment)
    french = get_locale() is not None and get_locale().language == "fr"
    # « 10 h 30 » in French; en-GB's 10:30 in English, whatever Babel's "en" says.
    time_text = format_time(moment, "H\u00a0'h'\u00a0mm" if french else "HH:mm")
    if local.date() == to_user_timezone(datetime.now(UTC)).date():
        return _("jusqu'à %(time)s", time=time_text)
    day_text = format_date(moment, "d MMMM")
    if french and local.day == 1:
        day_text = "1er" + day_text[1:]  # « 1er décembre »
    return _("jusqu'au %(day)s à %(time)s", day=day_text, time=time_text)


def _blocked_message(blocked: Blocked) -> str:
    """The same words whether the number typed is a real account or not."""
    if blocked.scope == "target":
        return _(
            "Par sécurité, le numéro saisi est bloqué %(until)s : trop d'essais ont été "
            "faits avec lui. Si vous avez oublié votre code, adressez-vous au service concerné.",
            until=_until(blocked.until),
        )
    return _(
        "Par sécurité, ce formulaire est bloqué %(until)s : trop d'essais ont été faits "
        "en peu de temps. Si vous avez oublié votre code, adressez-vous au service concerné.",
        until=_until(blocked.until),
    )


# -- the form --------------------------------------------------------------------------


def _instance_or_404(slug: str) -> tuple[InstanceConfig, Any, ServiceKind]:
    """The instance, its connector and its kind; 404 for an unknown instance and for
    one whose category no installed kind serves (never shown as another kind)."""
    reg = registry()
    if slug not in reg.instances or not kinds.known(reg.category(slug)):
        abort(404)
    if not current_actor().may_use(slug):
        abort(404)
    return reg.instances[slug], reg.connector(slug), kinds.kind(reg.category(slug))


@bp.route("/<slug>", methods=["GET", "POST"])
@login_required
@journey("linking", "prove")
def link(slug: str) -> str | Response | tuple[str, int]:
    instance, connector, kind = _instance_or_404(slug)
    existing = _links().get(slug)
    if existing is not None and existing.status == "active":
        flash(_("Ce compte est déjà relié."), "info")
        return redirect(url_for("services.service", slug=slug))
    g.journey = (kind.category, "link")
    measure.set_instance(slug)
    form = kind.link.form(connector, request.form if request.method == "POST" else None)
    if request.method == "GET" and hasattr(form, "birthdate") and g.citizen.birthdate:
        form.birthdate.data = g.citizen.birthdate  # from FranceConnect: less to type
    if request.method == "GET":
        _restore_typed_values(form)
    # Blocked for this resident or this address: said before anything is typed.
    blocked = _attempts().blocked()
    if blocked is not None:
        if request.method == "POST":
            measure.link_attempt("blocked", instance=slug)
        status = 429 if request.method == "POST" else 200
        page = _render(form, instance, kind, "", existing, blocked=blocked)
        return page, status
    if request.method == "GET":
        measure.journey_started("link", category=kind.category, instance=slug)
        return _render(form, instance, kind, "", existing), 200
    if not form.validate():  # what cannot be a proof is refused here, no attempt spent
        measure.link_attempt("invalid", instance=slug)
        measure.journey_failed("link", "invalid", category=kind.category, instance=slug)
        return _render(form, instance, kind, "", existing), 422
    attempts = _attempts(_target(kind, slug, form))
    attempt = attempts.begin()  # counted before the back-end hears of it
    if isinstance(attempt, Blocked):
        measure.link_attempt("blocked", instance=slug)
        if attempt.scope == "target":  # another number may still be tried
            page = _render(form, instance, kind, _blocked_message(attempt), existing)
        else:
            page = _render(form, instance, kind, "", existing, blocked=attempt)
        return page, 429
    outcome = _verify(kind, connector, form)
    if isinstance(outcome, str):
        return _render(form, instance, kind, outcome, existing), 422
    attempts.forget(attempt)  # a proof the back-end accepted is not held against anyone
    _save_link(existing, slug, outcome, _typed_number(kind, form))
    flash(_("Votre compte « %(title)s » est relié.", title=instance.title), "success")
    return see_other(url_for("services.service", slug=slug))


def _restore_typed_values(form: Any) -> None:
    """What the resident typed before their session ended or the token was refused."""
    for name, value in take_kept_values().items():
        field = getattr(form, name, None)
        if field is None:
            continue
        if name == "proof" and value not in getattr(form, "proof_kinds", ()):
            continue
        field.data = value
        field.raw_data = [value]


def _render(
    form: Any,
    instance: InstanceConfig,
    kind: ServiceKind,
    error: str,
    existing: ServiceLink | None,
    blocked: Blocked | None = None,
) -> str:
    return render_template(
        "linking/form.html",
        form=form,
        instance=instance,
        kind=kind,
        error=error,
        relink=existing is not None,
        blocked_notice=_blocked_message(blocked) if blocked is not None else "",
    )


def _verify(kind: ServiceKind, connector: Any, form: Any) -> VerifiedAccount | str:
    """The back-end's verdict: a VerifiedAccount, or the sentence to show."""
    ctx = CallContext.with_timeout(
        current_settings().page_deadline_s, actor=current_actor().context_actor
    )
    slug = connector.instance.slug if hasattr(connector, "instance") else ""
    try:
        return kind.link.verify(connector, ctx, form)
    except Refused as exc:
        _journal_failure(slug, "link_refused", exc.code)
        if exc.code in UNMATCHED_CODES:
            # One sentence for a wrong proof, an unknown number and a locked account:
            # nobody learns from the portal that a number belongs to someone.
            return _(
                "Ces informations ne correspondent pas. Vérifiez-les et réessayez. Si vous "
                "avez oublié votre code, ou si le service a bloqué le compte après plusieurs "
                "essais, adressez-vous à lui."
            )
        return exc.reason or _("Ces informations ne correspondent pas. Vérifiez-les et réessayez.")
    except (Unavailable, ContractBroken, LinkInvalid) as exc:
        log.info("link verification on %s failed: %s", slug, type(exc).__name__)
        _journal_failure(slug, "link_not_done", "unavailable")
        return _(
            "Le service ne répond pas pour le moment : votre compte n'a pas été relié et rien "
            "n'a été enregistré. Réessayez dans quelques minutes."
        )


def _journal_failure(slug: str, code: str, reason_code: str) -> None:
    """A link attempt that failed: journaled as an attempt, never as « Compte relié »."""
    JournalEntry.record(
        g.citizen.id,
        "link",
        "refused" if code == "link_refused" else "failure",
        actor=current_actor(),
        connector_instance=slug,
        code=code,
        params={"reason_code": reason_code},
    )
    db.session.commit()


def _typed_number(kind: ServiceKind, form: Any) -> str:
    """The account number the resident typed: the one they know."""
    return "".join(str(kind.link.number(form) or "").split())[:64]


def _save_link(
    existing: ServiceLink | None, slug: str, account: VerifiedAccount, number: str = ""
) -> None:
    link = existing or ServiceLink(citizen_id=g.citizen.id, instance_slug=slug)
    link.account_number = number
    if existing is not None and existing.external_id != account.external_id:
        _purge_snapshots(existing)
    link.external_id = account.external_id
    link.display_name = account.display_name[:255]
    link.secret_ciphertext = secret_box().encrypt(account.secret) if account.secret else None
    link.status = "active"
    actor = current_actor()
    link.linked_by_kind = actor.journal_kind
    link.linked_by_id = actor.journal_id
    db.session.add(link)
    JournalEntry.record(
        g.citizen.id,
        "link",
        "success",
        actor=actor,
        connector_instance=slug,
        code="link_again" if existing is not None else "link",
    )
    db.session.commit()


def _purge_snapshots(link: ServiceLink) -> None:
    db.session.execute(db.delete(ConnectorSnapshot).filter_by(subject=str(link.id)))


# -- unlinking -------------------------------------------------------------------------


@bp.route("/<slug>/remove", methods=["GET", "POST"])
@login_required
@journey("linking", "remove")
def remove(slug: str) -> str | Response:
    link = _links().get(slug)
    reg = registry()
    if link is None or slug not in reg.instances or not kinds.known(reg.category(slug)):
        abort(404)
    instance = registry().instances[slug]
    if request.method == "GET":
        return render_template("linking/remove.html", instance=instance)
    # The link first, then its snapshots (a read saving one waits on the link's row).
    db.session.delete(link)
    db.session.flush()
    _purge_snapshots(link)
    JournalEntry.record(
        g.citizen.id, "unlink", "success", actor=current_actor(), connector_instance=slug
    )
    db.session.commit()
    flash(_("Le compte « %(title)s » n'est plus relié.", title=instance.title), "success")
    return see_other(url_for("dashboard.home"))
