"""Link a service account by proving it is yours; unlink it in one confirmed step."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_time
from flask_babel import gettext as _
from limits import parse as parse_limit
from werkzeug.wrappers import Response

from connectors.base import CallContext, ContractBroken, LinkInvalid, Refused, Unavailable
from portal.auth.session import KEEPABLE_FIELDS, login_required, see_other, take_kept_values
from portal.config import current_settings
from portal.crypto import secret_box
from portal.extensions import db, limiter
from portal.integrations import registry
from portal.journeys import journey
from portal.linking import bp
from portal.linking.forms import FORMS, KEEPABLE
from portal.models import ConnectorSnapshot, JournalEntry, ServiceLink

log = logging.getLogger(__name__)


KEEPABLE_FIELDS["linking.link"] = KEEPABLE


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
    reg = registry()
    links = _links()
    groups: dict[str, list] = {"library": [], "canteen": [], "housing": []}
    for slug, instance in reg.instances.items():
        groups.setdefault(reg.category(slug), []).append((instance, links.get(slug)))
    return render_template("linking/index.html", groups=groups)


# -- failed attempts are limited per resident and per client address --------------------


def _failure_keys() -> list[tuple[str, ...]]:
    return [("link-failure", "citizen", str(g.citizen.id)), ("link-failure", "ip", _client_ip())]


def _client_ip() -> str:
    return request.remote_addr or "unknown"


def _blocked_until() -> datetime | None:
    """When the resident may try again, if too many proofs failed lately."""
    item = parse_limit(current_settings().link_failure_limit)
    strategy = limiter.limiter
    for key in _failure_keys():
        if not strategy.test(item, *key):
            reset, _remaining = strategy.get_window_stats(item, *key)
            return datetime.fromtimestamp(reset, UTC)
    return None


def _count_failure() -> None:
    item = parse_limit(current_settings().link_failure_limit)
    for key in _failure_keys():
        limiter.limiter.hit(item, *key)


# -- the form --------------------------------------------------------------------------


def _instance_or_404(slug: str):
    reg = registry()
    if slug not in reg.instances:
        abort(404)
    return reg.instances[slug], reg.connector(slug), reg.category(slug)


def _make_form(category: str, connector: object, formdata: object | None = None):
    cls = FORMS[category]
    if category == "library":
        kinds = getattr(connector, "proof_kinds", ("pin", "birthdate"))
        return cls(formdata=formdata, proof_kinds=kinds)
    return cls(formdata=formdata)


@bp.route("/<slug>", methods=["GET", "POST"])
@login_required
@journey("linking", "prove")
def link(slug: str) -> str | Response | tuple[str, int]:
    instance, connector, category = _instance_or_404(slug)
    existing = _links().get(slug)
    if existing is not None and existing.status == "active":
        flash(_("Ce compte est déjà relié."), "info")
        return redirect(url_for("services.service", slug=slug))
    g.journey = (category, "link")
    form = _make_form(category, connector, request.form if request.method == "POST" else None)
    if request.method == "GET" and hasattr(form, "birthdate") and g.citizen.birthdate:
        form.birthdate.data = g.citizen.birthdate  # from FranceConnect: less to type
    if request.method == "GET":
        _restore_typed_values(form)
    error = ""
    blocked = _blocked_until()
    if request.method == "POST" and blocked is not None:
        error = _too_many(blocked)
        return _render(form, instance, category, error, existing), 429
    if request.method == "POST" and form.validate():
        outcome = _verify(category, connector, form)
        if isinstance(outcome, str):
            error = outcome
        else:
            _save_link(existing, slug, outcome)
            flash(_("Votre compte « %(title)s » est relié.", title=instance.title), "success")
            return see_other(url_for("services.service", slug=slug))
    status = 422 if request.method == "POST" else 200
    return _render(form, instance, category, error, existing), status


def _restore_typed_values(form) -> None:
    """What the resident typed before their session ended or the token was refused."""
    for name, value in take_kept_values().items():
        field = getattr(form, name, None)
        if field is None:
            continue
        if name == "proof" and value not in getattr(form, "proof_kinds", ()):
            continue
        field.data = value
        field.raw_data = [value]


def _render(form, instance, category: str, error: str, existing) -> str:
    return render_template(
        "linking/form.html",
        form=form,
        instance=instance,
        category=category,
        error=error,
        relink=existing is not None,
    )


def _too_many(until: datetime) -> str:
    return _(
        "Trop d'essais sans succès. Par sécurité, vous pourrez réessayer à partir de "
        "%(time)s. Si vous avez oublié votre code, adressez-vous au service concerné.",
        time=format_time(until, "short"),
    )


def _verify(category: str, connector, form) -> object:
    """The back-end's verdict: a VerifiedAccount, or the sentence to show."""
    ctx = CallContext.with_timeout(
        current_settings().page_deadline_s, actor=f"citizen:{g.citizen.id}"
    )
    slug = connector.instance.slug if hasattr(connector, "instance") else ""
    try:
        if category == "library":
            use_pin = form.proof.data == "pin"
            return connector.verify_card(
                ctx,
                form.card_number.data,
                pin=form.pin.data if use_pin else None,
                birthdate=None if use_pin else form.birthdate.data,
            )
        if category == "canteen":
            return connector.verify_family(ctx, form.family_number.data, form.invoice_code.data)
        return connector.verify_application(ctx, form.number.data, form.birthdate.data)
    except Refused as exc:
        _count_failure()
        _journal_failure(slug, exc.code)
        return exc.reason or _("Ces informations ne correspondent pas. Vérifiez-les et réessayez.")
    except (Unavailable, ContractBroken, LinkInvalid) as exc:
        log.info("link verification on %s failed: %s", slug, type(exc).__name__)
        _journal_failure(slug, "unavailable")
        return _(
            "Le service ne répond pas pour le moment : votre compte n'a pas été relié et rien "
            "n'a été enregistré. Réessayez dans quelques minutes."
        )


def _journal_failure(slug: str, code: str) -> None:
    JournalEntry.record(
        g.citizen.id,
        "link",
        "failure",
        actor_id=str(g.citizen.id),
        connector_instance=slug,
        detail=code,
    )
    db.session.commit()


def _save_link(existing: ServiceLink | None, slug: str, account) -> None:
    link = existing or ServiceLink(citizen_id=g.citizen.id, instance_slug=slug)
    if existing is not None and existing.external_id != account.external_id:
        _purge_snapshots(existing)
    link.external_id = account.external_id
    link.display_name = account.display_name[:255]
    link.secret_ciphertext = secret_box().encrypt(account.secret) if account.secret else None
    link.status = "active"
    link.linked_by_kind = "citizen"
    link.linked_by_id = str(g.citizen.id)
    db.session.add(link)
    JournalEntry.record(
        g.citizen.id,
        "link",
        "success",
        actor_id=str(g.citizen.id),
        connector_instance=slug,
        detail="relié à nouveau" if existing is not None else "",
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
    if link is None or slug not in registry().instances:
        abort(404)
    instance = registry().instances[slug]
    if request.method == "GET":
        return render_template("linking/remove.html", instance=instance)
    _purge_snapshots(link)
    db.session.delete(link)
    JournalEntry.record(
        g.citizen.id, "unlink", "success", actor_id=str(g.citizen.id), connector_instance=slug
    )
    db.session.commit()
    flash(_("Le compte « %(title)s » n'est plus relié.", title=instance.title), "success")
    return see_other(url_for("main.home"))
