"""Water's writes: declaring a meter reading, and asking for a leak-inflated invoice to
be capped with the plumber's repair invoice attached (under ``/services``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length, Optional

from connectors.base import CallContext
from portal.auth.session import login_required
from portal.formatting import day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.linking.forms import NO_TRUNCATION
from portal.refusals import reason_text, with_reason
from portal.services.answers import (
    Answer,
    Budget,
    Message,
    check_id,
    iso_day,
    not_known_yet,
    settle_unknown,
    shown_item,
    unreached,
)
from portal.services.core import Panel, Service, kind_service, read_panel
from portal.services.failures import InvalidForm, OutcomeUnknown, ServiceUnavailable, WriteRefused
from portal.services.runner import Run, Write, resends
from portal.services.todo import paris_today
from portal.services.water.reading import WaterView, water_page
from portal.writes import WriteOutcome

bp = Blueprint("water", __name__, url_prefix="/services")

#: The standard's limit for the plumber's invoice.
MAX_REPAIR_INVOICE_BYTES = 5 * 1024 * 1024
#: The cap request's body may carry that file; anything bigger is refused (413) before
#: it is read. Between the two, the form says the file is too heavy.
CAP_BODY_LIMIT = 8 * 1024 * 1024
MAX_LOCATION_LENGTH = 500
#: The portal refuses only what cannot be a reading (a digit too many, say): a daily use
#: this many times the household's usual one. The operator judges the rest.
OBVIOUSLY_WRONG_FACTOR = 50
MAX_INDEX_M3 = 99_999_999


@bp.url_value_preprocessor
def allow_the_repair_invoice(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Only the cap request may carry a document; every other body keeps the portal's
    small limit (``portal.hardening``)."""
    if endpoint == "water.cap_request":
        request.max_content_length = CAP_BODY_LIMIT


# -- declaring a meter reading ----------------------------------------------------------


class ReadingForm(FlaskForm):
    class Meta:
        csrf = False  # the app's CSRFProtect checks every POST already

    index_m3 = StringField(
        _l("Index du compteur, en mètres cubes"),
        validators=[DataRequired(_l("Indiquez l'index de votre compteur."))],
        description=_l(
            "Les chiffres noirs du compteur, sans les chiffres rouges (ils comptent les litres)."
        ),
        render_kw={"inputmode": "numeric", "autocomplete": "off", **NO_TRUNCATION},
    )
    taken_on = DateField(
        _l("Date du relevé"),
        validators=[DataRequired(_l("Indiquez la date du relevé, par exemple 3/12/2026."))],
    )

    def index(self) -> int | None:
        raw = "".join((self.index_m3.data or "").split())
        # ASCII digits only: "³" or "١٢" are digits to str.isdigit, not to a meter.
        return int(raw) if re.fullmatch(r"[0-9]{1,8}", raw) else None


def check_reading(form: ReadingForm, view: WaterView, today: date) -> bool:
    """The portal's own checks, said on the fields; the back-end has the last word."""
    ok = form.validate()
    index = form.index()
    if form.index_m3.data and index is None:
        form.index_m3.errors = [_("Indiquez l'index en chiffres, sans virgule : par exemple 1250.")]
        ok = False
    taken_on = form.taken_on.data
    if taken_on is not None and taken_on > today:
        form.taken_on.errors = [_("La date du relevé ne peut pas être dans le futur.")]
        return False
    last = view.last_trusted
    if not ok or index is None or taken_on is None or last is None:
        return ok
    if taken_on < last.taken_on:
        form.taken_on.errors = [
            _(
                "La date ne peut pas être antérieure au dernier relevé, du %(date)s.",
                date=day(last.taken_on),
            )
        ]
        return False
    if index < last.index_m3:
        form.index_m3.errors = [
            _(
                "Cet index est inférieur à celui du dernier relevé, du %(date)s "
                "(%(last)s\u00a0m³). Vérifiez les chiffres noirs du compteur.",
                date=day(last.taken_on),
                last=format_decimal(last.index_m3),
            )
        ]
        return False
    days = max(1, (taken_on - last.taken_on).days)
    usual = view.usual_daily_m3
    if usual > 0 and (index - last.index_m3) / days > OBVIOUSLY_WRONG_FACTOR * usual:
        form.index_m3.errors = [
            _(
                "Cet index correspondrait à une consommation sans commune mesure avec la "
                "vôtre depuis le dernier relevé (%(last)s\u00a0m³ le %(date)s). Vérifiez "
                "qu'il n'y a pas un chiffre en trop.",
                last=format_decimal(last.index_m3),
                date=day(last.taken_on),
            )
        ]
        return False
    return True


def reading_form(formdata: Any = None) -> ReadingForm:
    form = ReadingForm(formdata=formdata)
    if formdata is None:
        form.taken_on.data = paris_today()
    return form


def _reading_section(
    svc: Service, panel: Panel[WaterView], form: ReadingForm, message: Message | None
) -> str:
    return render_template(
        "services/water/_reading.html",
        service=svc,
        panel=panel,
        form=form,
        message=message,
        fragment=True,
    )


def _reading_message(outcome: WriteOutcome, svc: Service) -> Message:
    if outcome.status == "unknown":
        return not_known_yet(svc, _("Nous ne savons pas encore si votre relevé a été enregistré."))
    if outcome.status == "done":
        result = outcome.result or {}
        taken = iso_day(result.get("taken_on"))
        index = result.get("index_m3")
        if taken is not None and isinstance(index, int):
            return Message(
                _(
                    "Votre relevé est enregistré : %(index)s\u00a0m³ le %(date)s.",
                    index=format_decimal(index),
                    date=day(taken),
                )
            )
        return Message(_("Votre relevé est enregistré."))
    return WriteRefused(
        outcome.reason,
        outcome.reason_code,
        with_reason(
            _("Votre relevé n'a pas été enregistré : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
    ).message()


def _asked_reading(stored: dict[str, Any]) -> dict[str, Any] | None:
    index, taken_on = stored.get("index_m3"), iso_day(stored.get("taken_on"))
    if not isinstance(index, int) or taken_on is None:
        return None
    return {"item": "", "index_m3": index, "taken_on": taken_on.isoformat()}


def _declare(svc: Service, ctx: CallContext, key: str, asked: dict[str, Any]) -> Any:
    taken_on = date.fromisoformat(asked["taken_on"])
    return svc.connector.declare_reading(
        ctx, svc.ref, asked["index_m3"], taken_on, idempotency_key=key
    )


#: Declaring a reading: what it asks is the index and the day, ``{"item": "", ...}``.
DECLARE_READING: Write[dict[str, Any]] = Write(
    action="declare_reading",
    call=_declare,
    say=lambda svc, outcome, _asked: _reading_message(outcome, svc),
    request=dict,
    encode=lambda _asked, reading: {
        "index_m3": reading.index_m3,
        "taken_on": reading.taken_on.isoformat(),
    },
    params=lambda asked: {"index_m3": asked["index_m3"], "taken_on": asked["taken_on"]},
    asked=_asked_reading,
)


def _reading_after(run: Run[Any], message: Message) -> str:
    """The readings after a declaration: what the run read is shown again when the
    declaration changed nothing (refused, not sent, an unusable form); after one the
    back-end took, or whose outcome is not known, they are read again."""
    panel = run.panel if run.unchanged() and run.panel is not None else None
    if panel is None:
        panel = read_panel(run.svc, water_page, run.budget.left())
    return _reading_section(run.svc, panel, reading_form(), message)


@bp.post("/<slug>/reading")
@login_required
@journey("water", "reading")
def declare_reading(slug: str) -> Answer:
    """Declare the meter's index: checked here first (never below the last reading,
    never a digit too many), then by the back-end, whose refusal is shown as it is."""
    svc = kind_service(slug, "water")
    back = url_for("services.service", slug=svc.slug) + "#reading"
    run = Run(DECLARE_READING, svc, section=_reading_after, back=back)
    form = reading_form(request.form)
    panel = run.read(water_page)
    run.check_key()
    if not run.settled:
        if not panel.has_data:
            raise unreached(panel, svc)
        if not panel.writable:
            raise ServiceUnavailable(
                stale=True,
                text=_(
                    "Ce service est temporairement indisponible : rien n'a été envoyé. "
                    "Vous pourrez déclarer votre relevé quand il répondra."
                ),
            )
        assert panel.data is not None
        if panel.data.closed:
            raise WriteRefused(
                "",
                "contract_closed",
                _("Ce contrat est résilié : il n'est plus possible d'y déclarer un relevé."),
            )
        if not check_reading(form, panel.data, paris_today()):
            if is_partial():
                return _reading_section(svc, panel, form, None)
            return render_template(
                "services/water/page.html", service=svc, panel=panel, form=form
            ), 422
    index, taken_on = form.index(), form.taken_on.data
    if index is None or taken_on is None:  # a replay of a form sent with other values
        raise InvalidForm
    return run.perform({"item": "", "index_m3": index, "taken_on": taken_on.isoformat()})


# -- asking for an invoice to be capped after a leak ------------------------------------


def _not_a_pdf(data: bytes) -> bool:
    """A PDF by its content, whatever its name or its declared type."""
    return not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]


class CapForm(FlaskForm):
    class Meta:
        csrf = False  # the app's CSRFProtect checks every POST already

    repaired_on = DateField(
        _l("Date de la réparation"),
        validators=[DataRequired(_l("Indiquez la date de la réparation, par exemple 28/11/2026."))],
    )
    repair_location = StringField(
        _l("Où était la fuite ?"),
        validators=[
            DataRequired(_l("Indiquez où était la fuite.")),
            Length(
                max=MAX_LOCATION_LENGTH, message=_l("Décrivez la fuite en 500 caractères au plus.")
            ),
        ],
        description=_l("Par exemple : canalisation enterrée entre le compteur et la maison."),
        render_kw=NO_TRUNCATION,
    )
    repair_invoice = FileField(
        _l("Facture du plombier (PDF, 5 Mo au plus)"),
        validators=[Optional()],
        description=_l(
            "Elle doit indiquer que la fuite a été réparée, où et quand. Le fichier est "
            "transmis au service de l'eau et n'est pas conservé par le portail."
        ),
    )

    def document(self) -> bytes | None:
        """The uploaded file, checked; None (with the field's error said) otherwise."""
        upload = self.repair_invoice.data
        if upload is None or not getattr(upload, "filename", ""):
            self.repair_invoice.errors = [_("Joignez la facture du plombier, au format PDF.")]
            return None
        data = upload.read(MAX_REPAIR_INVOICE_BYTES + 1)
        if len(data) > MAX_REPAIR_INVOICE_BYTES:
            self.repair_invoice.errors = [
                _(
                    "Le fichier dépasse 5 Mo : envoyez un PDF plus léger (scanné en noir "
                    "et blanc, par exemple)."
                )
            ]
            return None
        if _not_a_pdf(data):
            self.repair_invoice.errors = [
                _("Ce fichier n'est pas un PDF : enregistrez ou scannez la facture au format PDF.")
            ]
            return None
        return data


@dataclass(frozen=True)
class CapAsked:
    """What a cap request sends; the document lives in this request only, until the
    back-end has it: it is never kept, so the request is never asked again."""

    alert_id: str
    repaired_on: date
    repair_location: str
    document: bytes


#: Asking for an invoice to be capped (never asked again: ``asked`` is not given).
REQUEST_CAP: Write[CapAsked] = Write(
    action="request_cap",
    call=lambda svc, ctx, key, asked: svc.connector.request_cap(
        ctx,
        svc.ref,
        asked.alert_id,
        repaired_on=asked.repaired_on,
        repair_location=asked.repair_location,
        repair_invoice_pdf=asked.document,
        idempotency_key=key,
    ),
    say=lambda svc, outcome, _asked: _cap_message(outcome, svc),
    # Never the document.
    request=lambda asked: {"item": asked.alert_id},
    encode=lambda _asked, receipt: {
        "reference": receipt.reference,
        "received_on": receipt.received_on.isoformat(),
    },
    params=lambda asked: {"repaired_on": asked.repaired_on.isoformat()},
)


def _alerts(view: WaterView) -> Any:
    return view.alerts


@bp.route("/<slug>/alerts/<alert_id>/cap", methods=["GET", "POST"])
@login_required
@journey("water", "cap")
def cap_request(slug: str, alert_id: str) -> Answer:
    """GET: what the law allows and the form; POST: send it with the plumber's invoice.
    Someone else's alert, or one that does not exist, is the same 404."""
    svc = kind_service(slug, "water")
    back = url_for("services.service", slug=svc.slug) + "#alerts"
    if request.method == "GET":
        check_id(alert_id)
        budget = Budget()
        settle_unknown(svc, budget.left() / 2)
        panel = read_panel(svc, water_page, budget.left())
        alert = shown_item(_alerts(panel.data), alert_id) if panel.data is not None else None
        return render_template(
            "services/water/cap.html",
            service=svc,
            panel=panel,
            alert=alert,
            form=CapForm(formdata=None),
        )
    run = Run(REQUEST_CAP, svc, section=None, back=back)  # answered with its page only
    run.check_key()
    check_id(alert_id)
    alert = run.owned(water_page, _alerts, alert_id)
    form = CapForm()
    if not run.settled:
        assert alert is not None
        ok = form.validate()
        document = form.document()
        repaired_on = form.repaired_on.data
        if repaired_on is not None and repaired_on > paris_today():
            form.repaired_on.errors = [
                _("La date de la réparation ne peut pas être dans le futur.")
            ]
            ok = False
        if not ok or document is None:
            return render_template(
                "services/water/cap.html", service=svc, panel=run.panel, alert=alert, form=form
            ), 422
    else:
        document = b""
        repaired_on = form.repaired_on.data or paris_today()
    assert repaired_on is not None
    location = (form.repair_location.data or "").strip()
    return run.perform(CapAsked(alert_id, repaired_on, location, document))


def _cap_message(outcome: WriteOutcome, svc: Service) -> Message:
    if outcome.status == "unknown":
        return OutcomeUnknown(
            _(
                "Le service de l'eau n'a pas répondu à temps : nous ne savons pas s'il a reçu "
                "votre demande. L'alerte ci-dessous dit ce qu'il en sait ; si elle attend "
                "toujours votre demande, envoyez-la de nouveau."
            ),
            replays=None,
        ).message()
    if outcome.status == "done":
        result = outcome.result or {}
        received = iso_day(result.get("received_on"))
        return Message(
            _(
                "Votre demande d'écrêtement a été reçue le %(date)s par le service de l'eau "
                "(référence %(reference)s). Il vous répondra par courrier.",
                date=day(received),
                reference=str(result.get("reference", "")).upper(),
            )
        )
    return Message(
        with_reason(
            _("Votre demande d'écrêtement n'a pas été envoyée : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
        "error",
    )


# -- asking again about a write whose outcome is not known --------------------------------

#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
#: A cap request is not: its document was never kept, and the alert's own status says
#: whether the operator received it.
RESENDS = resends(DECLARE_READING, REQUEST_CAP)
