"""The desk's side of mandates: its home (the residents it may act for, today's visits,
the mandates about to end), its journal, the receipt of a mandate (a printable page and
a PDF), and the end of a mandate at a desk by its reference, for a resident who does not
use the portal.

Every view is an adviser's (a referent may do the same) on the desk in its address
(``agent_required``). A mandate is always looked up by the desk and its reference
together: an agent of another desk gets the same 404 for a reference that exists as for
one that does not. The one exception is the end of a mandate: the resident may come to
any desk with their receipt, so any desk finds any mandate by its reference there, but
by typing it, a limited number of times an hour (``LOOKUP_LIMIT``), so that a desk
cannot go through references.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import segno
from flask import (
    abort,
    current_app,
    flash,
    g,
    render_template,
    request,
    url_for,
)
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from fpdf import FPDF
from limits import parse as parse_limit
from markupsafe import Markup
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from portal import mandates
from portal.actor import Actor
from portal.agents import access, bp
from portal.auth.session import see_other
from portal.extensions import db, limiter
from portal.formatting import when
from portal.journeys import journey
from portal.mandates.legal import template_for
from portal.models import (
    Agent,
    AssistedSession,
    Desk,
    DeskJournalEntry,
    JournalEntry,
    Mandate,
    MandateRevocation,
)
from portal.models._types import utcnow

log = logging.getLogger(__name__)

#: How many references one agent may look up at a desk an hour (to end a mandate).
LOOKUP_LIMIT = "30 per hour"
#: Mandates ending within this are listed for renewal on the desk's home.
ENDING_SOON = timedelta(days=30)
#: Lines of the desk journal per page.
JOURNAL_PAGE = 50

#: What a desk journal line says was done, in plain words.
JOURNAL_ACTIONS = {
    "mandate_opened": _l("Mandat ouvert"),
    "mandate_revoked": _l("Mandat révoqué"),
    "scope_revoked": _l("Service retiré d'un mandat"),
    "visit_started": _l("Début d'une visite"),
    "visit_ended": _l("Fin d'une visite"),
    "phone_session": _l("Aide par téléphone"),
}

#: What a revocation says about who ended the mandate.
REVOKED_BY = {
    "citizen": _l("par la personne, en ligne"),
    "desk": _l("au guichet"),
    "replaced": _l("remplacé par un nouveau mandat"),
    "visit_ended": _l("à la fin de la visite"),
}


# -- finding what a desk may see -------------------------------------------------------------


_REFERENCE = re.compile(r"M-[A-Z0-9]{4}-[A-Z0-9]{4}")


def desk_mandate(desk: Desk, reference: str) -> Mandate:
    """The desk's own mandate by its exact reference, or 404 (the same for any other)."""
    if not _REFERENCE.fullmatch(reference or ""):
        abort(404)
    mandate = db.session.execute(
        db.select(Mandate).filter_by(desk_id=desk.id, reference=reference)
    ).scalar_one_or_none()
    if mandate is None:
        abort(404)
    return mandate


def visit_url(desk: Desk) -> str | None:
    """Where a new mandate is opened, once that page exists."""
    if "agents.visit_new" not in current_app.view_functions:
        return None
    try:
        return url_for("agents.visit_new", desk_id=desk.id)
    except BuildError:
        return None


def folded(text: str) -> str:
    """For a search: no case, no accents (« Élodie » is found by « elodie »)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


def services_of(mandate: Mandate, live: bool = True) -> list[str]:
    scopes = mandates.live_scopes(mandate) if live else {s.scope for s in mandate.scopes}
    return sorted(mandates.scope_title(scope) for scope in scopes)


def start_of_today(now: datetime) -> datetime:
    """Midnight in the territory's time zone (Europe/Paris), as a UTC moment."""
    local = now.astimezone(get_timezone())
    midnight = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
    return midnight.astimezone(UTC)


@dataclass(frozen=True)
class MandateRow:
    mandate: Mandate
    name: str
    services: list[str]
    long: bool


def _row(mandate: Mandate) -> MandateRow:
    return MandateRow(
        mandate,
        mandate.citizen.display_name,
        services_of(mandate),
        mandate.duration in mandates.LONG_DURATIONS,
    )


# -- the desk's home ---------------------------------------------------------------------------


@bp.get("/desk/<desk_id>")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "desk-home")
def desk_home(desk_id: str) -> str:
    desk: Desk = g.desk
    now = utcnow()
    active = [_row(m) for m in mandates.active_mandates(desk_id=desk.id)]
    q = request.args.get("q", "")[:100].strip()
    shown = active
    if q:
        wanted = folded(q)
        shown = [row for row in active if wanted in folded(row.name)]
    ending = sorted(
        (
            r
            for r in active
            if r.mandate.duration != "visit" and r.mandate.ends_at <= now + ENDING_SOON
        ),
        key=lambda r: r.mandate.ends_at,
    )
    visits = (
        db.session.execute(
            db.select(AssistedSession)
            .where(
                AssistedSession.desk_id == desk.id,
                AssistedSession.started_at >= start_of_today(now),
            )
            .order_by(AssistedSession.started_at)
        )
        .scalars()
        .all()
    )
    return render_template(
        "mandates/desk_home.html",
        desk=desk,
        agent=g.agent,
        role=g.role,
        rows=shown,
        total=len(active),
        q=q,
        ending=ending,
        visits=visits,
        visit_url=visit_url(desk),
        channel_labels=mandates.CHANNEL_LABELS,
        duration_labels=mandates.DURATION_LABELS,
    )


# -- the desk's journal ------------------------------------------------------------------------


def journal_detail(entry: DeskJournalEntry) -> str:
    """What a line adds: the service, the desk it happened at or was opened by."""
    params = entry.params or {}
    parts: list[str] = []
    if params.get("scope"):
        parts.append(mandates.scope_title(str(params["scope"])))
    if params.get("revoked_at"):
        parts.append(_("fin demandée au guichet %(desk)s", desk=params["revoked_at"]))
    if params.get("mandate_desk"):
        parts.append(_("mandat ouvert par le guichet %(desk)s", desk=params["mandate_desk"]))
    if params.get("channel") in mandates.CHANNEL_LABELS:
        parts.append(str(mandates.CHANNEL_LABELS[params["channel"]]))
    return " – ".join(parts)


@bp.get("/desk/<desk_id>/journal")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "desk-journal")
def desk_journal_page(desk_id: str) -> str:
    desk: Desk = g.desk
    before = access.parse_id(request.args.get("before", "")) if request.args.get("before") else None
    query = db.select(DeskJournalEntry).where(DeskJournalEntry.desk_id == desk.id)
    if before is not None:
        query = query.where(DeskJournalEntry.id < before)
    rows = list(
        db.session.execute(query.order_by(DeskJournalEntry.id.desc()).limit(JOURNAL_PAGE + 1))
        .scalars()
        .all()
    )
    more = len(rows) > JOURNAL_PAGE
    rows = rows[:JOURNAL_PAGE]
    lines = [
        (entry, str(JOURNAL_ACTIONS.get(entry.action, _("Autre action"))), journal_detail(entry))
        for entry in rows
    ]
    return render_template(
        "mandates/desk_journal.html",
        desk=desk,
        lines=lines,
        next_before=rows[-1].id if more and rows else None,
        paged=before is not None,
    )


# -- the receipt -------------------------------------------------------------------------------


def qr_svg(terms_hash: str) -> Markup:
    """The terms' hash as a QR code, inline SVG (no style attribute: the CSP allows none)."""
    label = _("Code QR de l'empreinte du mandat : %(hash)s", hash=terms_hash)
    svg = segno.make(terms_hash, error="m").svg_inline(
        scale=3, svgclass="receipt-qr", lineclass=None, omitsize=True, title=label
    )
    # segno's markup, its title escaped by segno; the label escaped here.
    labelled = svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)
    return Markup(labelled)  # noqa: S704


def receipt_facts(mandate: Mandate) -> dict[str, Any]:
    """What both the page and the PDF say, in the reader's language."""
    scopes = [s.scope for s in mandate.scopes]
    desk = mandate.desk
    payments = any(mandates.is_payment_scope(s) for s in scopes)
    may = [
        _("voir vos informations dans les services listés et y faire vos démarches"),
        _("payer vos factures des services indiqués")
        if payments
        else _("aucun paiement : ce mandat ne permet pas de payer vos factures"),
    ]
    may_not = [
        _("voir vos codes secrets"),
        _("agir dans un service qui n'est pas listé"),
        _("supprimer votre compte ou exporter vos données"),
        _("changer ce mandat"),
    ]
    return {
        "reference": mandate.reference,
        "resident": mandate.citizen.display_name,
        "desk_name": mandate.desk_name or desk.name,
        "desk_address": desk.address,
        "desk_phone": desk.phone,
        "services": sorted(mandates.scope_title(s) for s in scopes),
        "starts": when(mandate.starts_at),
        "ends": when(mandate.ends_at),
        "duration": str(mandates.DURATION_LABELS.get(mandate.duration, "")),
        "channel": str(mandates.CHANNEL_LABELS.get(mandate.channel, "")),
        "adviser": mandate.adviser_name,
        "may": may,
        "may_not": may_not,
        "hash": mandate.terms_hash,
        "legal_version": mandate.legal_version,
        "status": mandates.status_of(mandate),
        "ended": when(mandates.ended_at(mandate)),
    }


@bp.get("/desk/<desk_id>/mandates/<reference>/receipt")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "mandate-receipt")
def mandate_receipt(desk_id: str, reference: str) -> str:
    mandate = desk_mandate(g.desk, reference)
    return render_template(
        "mandates/receipt.html",
        desk=g.desk,
        mandate=mandate,
        facts=receipt_facts(mandate),
        qr=qr_svg(mandate.terms_hash),
        legal_template=template_for(mandate.legal_version),
    )


#: Characters the PDF's core fonts (latin-1) do not have, and what stands for them.
_LATIN1 = str.maketrans(
    {
        "\u202f": " ",
        "\u2009": " ",
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u20ac": "EUR",
    }
)


def latin1(text: str) -> str:
    """``text`` in latin-1: known look-alikes first, then accents dropped, then « ? »."""
    text = str(text).translate(_LATIN1)
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            base = unicodedata.normalize("NFKD", ch).encode("latin-1", "ignore").decode("latin-1")
            out.append(base or "?")
    return "".join(out)


def legal_paragraphs(version: str) -> list[str]:
    rendered = render_template(template_for(version))
    return [
        html.unescape(re.sub(r"<[^>]+>", "", p)).strip()
        for p in re.findall(r"<p[^>]*>(.*?)</p>", rendered, re.S)
    ]


def receipt_pdf(mandate: Mandate) -> bytes:
    facts = receipt_facts(mandate)
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(True, margin=12)
    pdf.set_margins(15, 12, 15)
    pdf.add_page()
    pdf.set_title(latin1(_("Récépissé de mandat %(reference)s", reference=facts["reference"])))
    width = pdf.epw

    def line(text: str, size: float = 10, style: str = "", height: float = 5) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, height, latin1(text), new_x="LMARGIN", new_y="NEXT")

    def heading(text: str) -> None:
        pdf.ln(1.5)
        line(text, 11, "B", 6)

    line(_("Récépissé de mandat"), 16, "B", 8)
    line(_("Référence : %(reference)s", reference=facts["reference"]), 12, "B", 7)
    line(_("Personne aidée : %(name)s", name=facts["resident"]))
    line(_("Guichet : %(desk)s", desk=facts["desk_name"]))
    if facts["desk_address"]:
        line(facts["desk_address"])
    if facts["desk_phone"]:
        line(_("Téléphone : %(phone)s", phone=facts["desk_phone"]))
    heading(_("Services couverts"))
    for service in facts["services"]:
        line("- " + service)
    heading(_("Durée"))
    line(_("Du %(start)s au %(end)s", start=facts["starts"], end=facts["ends"]))
    line(_("Durée choisie : %(duration)s", duration=facts["duration"]))
    line(_("Canal : %(channel)s", channel=facts["channel"]))
    heading(_("Ce que les conseillers et conseillères du guichet peuvent faire"))
    for item in facts["may"]:
        line("- " + item)
    heading(_("Ce qu'ils et elles ne peuvent pas faire"))
    for item in facts["may_not"]:
        line("- " + item)
    heading(
        _("Le texte que vous avez accepté (version %(version)s)", version=facts["legal_version"])
    )
    for paragraph in legal_paragraphs(mandate.legal_version):
        line(paragraph, 9, "", 4.2)
    heading(_("Mettre fin au mandat"))
    line(_revoke_how(), 9, "", 4.2)
    heading(_("Empreinte du mandat"))
    top = pdf.get_y()
    qr = segno.make(facts["hash"], error="m")
    module = 0.8
    for y, row in enumerate(qr.matrix_iter(scale=1, border=2)):
        for x, dark in enumerate(row):
            if dark:
                pdf.rect(15 + x * module, top + y * module, module, module, style="F")
    size = (qr.symbol_size(scale=1, border=2)[0]) * module
    pdf.set_xy(15 + size + 4, top)
    pdf.set_font("Courier", "", 8)
    pdf.multi_cell(width - size - 4, 4, facts["hash"][:32] + "\n" + facts["hash"][32:])
    pdf.set_y(top + size + 2)
    return bytes(pdf.output())


def _revoke_how() -> str:
    return _(
        "Vous pouvez y mettre fin à tout moment : en ligne, dans « Mes mandats » sur le "
        "Compte territorial, ou dans n'importe quel guichet, avec la référence de ce "
        "récépissé. La fin est immédiate."
    )


@bp.get("/desk/<desk_id>/mandates/<reference>/receipt.pdf")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "mandate-receipt-pdf")
def mandate_receipt_pdf(desk_id: str, reference: str) -> Response:
    mandate = desk_mandate(g.desk, reference)
    response = Response(receipt_pdf(mandate), mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="recepisse-{mandate.reference}.pdf"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# -- ending a mandate at a desk, by its reference ---------------------------------------------


def _lookup_allowed(agent: Agent) -> bool:
    """One more reference looked up by this agent, within ``LOOKUP_LIMIT``."""
    if not limiter.enabled:  # RATELIMIT_ENABLED off, as for every other limit
        return True
    return bool(limiter.limiter.hit(parse_limit(LOOKUP_LIMIT), "desk-lookup", f"agent:{agent.id}"))


def _revocation_here(desk: Desk, reference: str) -> DeskJournalEntry | None:
    """The line of this desk's journal saying the mandate was ended here."""
    entries = db.session.execute(
        db.select(DeskJournalEntry).filter_by(
            desk_id=desk.id, action="mandate_revoked", mandate_reference=reference
        )
    ).scalars()
    return next((e for e in entries if (e.params or {}).get("revoked_here")), None)


def _whole_revocation(mandate: Mandate) -> MandateRevocation | None:
    return next((r for r in mandate.revocations if r.scope is None), None)


def _revoke_page(desk: Desk, status: int = 200, **context: Any) -> tuple[str, int]:
    context.setdefault("typed", "")
    context.setdefault("error", "")
    context.setdefault("mandate", None)
    return render_template("mandates/desk_revoke.html", desk=desk, **context), status


def _limited(desk: Desk, typed: str) -> tuple[str, int]:
    log.warning("desk %s: agent %s looked up too many references", desk.id, g.agent.id)
    return _revoke_page(
        desk,
        429,
        typed=typed,
        error=_(
            "Vous avez cherché trop de références en peu de temps. Pour protéger les mandats "
            "des personnes, la recherche est suspendue pendant une heure au plus. Vérifiez la "
            "référence sur le récépissé de la personne."
        ),
    )


def _unknown(desk: Desk, typed: str) -> tuple[str, int]:
    return _revoke_page(
        desk,
        typed=typed,
        error=_(
            "Aucun mandat ne correspond à la référence « %(typed)s ». Vérifiez-la sur le "
            "récépissé : elle commence par M et compte huit lettres ou chiffres, par exemple "
            "M-7K3F-9QX2.",
            typed=typed,
        ),
    )


@bp.route("/desk/<desk_id>/revoke", methods=["GET", "POST"])
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "desk-revoke")
def desk_revoke(desk_id: str) -> Response | tuple[str, int]:
    desk: Desk = g.desk
    if request.method == "GET":
        return _revoke_page(desk)
    typed = request.form.get("reference", "")[:40].strip()
    if not typed:
        return _revoke_page(desk, error=_("Saisissez la référence du mandat."))
    if not _lookup_allowed(g.agent):
        return _limited(desk, typed)
    mandate = mandates.find_by_reference(typed)
    if mandate is None:
        return _unknown(desk, typed)
    if request.form.get("confirm") != "1":
        return _revoke_page(
            desk,
            typed=mandate.reference,
            mandate=mandate,
            services=services_of(mandate),
            status_now=mandates.status_of(mandate),
            ended=mandates.ended_at(mandate),
        )
    agent: Agent = g.agent
    row = mandates.revoke(mandate, None, by_kind="desk", by_id=str(agent.id), by_label=desk.name)
    if row is None:
        db.session.rollback()
        flash(_("Ce mandat avait déjà pris fin : rien n'a changé."), "info")
        if _revocation_here(desk, mandate.reference) is not None:
            return see_other(
                url_for("agents.revocation_receipt", desk_id=desk.id, reference=mandate.reference)
            )
        return see_other(url_for("agents.desk_revoke", desk_id=desk.id))
    here: dict[str, Any] = {"revoked_here": True}
    if mandate.desk_id != desk.id:
        here["mandate_desk"] = mandate.desk_name or mandate.desk.name
        mandates.desk_journal(
            mandate.desk_id,
            "mandate_revoked",
            agent=agent,
            mandate=mandate,
            params={"revoked_at": desk.name},
        )
    mandates.desk_journal(desk.id, "mandate_revoked", agent=agent, mandate=mandate, params=here)
    JournalEntry.record(
        mandate.citizen_id,
        "mandate_revoked",
        actor=Actor.adviser(
            agent.id,
            mandate.citizen_id,
            mandate_id=mandate.id,
            channel="desk",
            scopes=frozenset(),
        ),
        code="mandate_revoked_at_desk",
        params={"reference": mandate.reference, "desk": desk.name},
    )
    db.session.commit()
    log.info("mandate %s revoked at desk %s by agent %s", mandate.id, desk.id, agent.id)
    return see_other(
        url_for("agents.revocation_receipt", desk_id=desk.id, reference=mandate.reference)
    )


@bp.get("/desk/<desk_id>/revocations/<reference>")
@access.agent_required(role="adviser", desk_param="desk_id")
@journey("agents", "revocation-receipt")
def revocation_receipt(desk_id: str, reference: str) -> str:
    desk: Desk = g.desk
    entry = _revocation_here(desk, reference) if _REFERENCE.fullmatch(reference) else None
    mandate = (
        db.session.execute(db.select(Mandate).filter_by(reference=reference)).scalar_one_or_none()
        if entry is not None
        else None
    )
    revocation = _whole_revocation(mandate) if mandate is not None else None
    if mandate is None or revocation is None:
        abort(404)
    return render_template(
        "mandates/receipt_revocation.html",
        desk=desk,
        mandate=mandate,
        revocation=revocation,
        resident=mandate.citizen.display_name,
        services=services_of(mandate, live=False),
        by=str(REVOKED_BY.get(revocation.by_kind, "")),
    )
