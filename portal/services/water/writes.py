"""Water's writes: declaring a meter reading, and asking for a leak-inflated invoice to
be capped with the plumber's repair invoice attached (under ``/services``)."""

from __future__ import annotations

from collections.abc import Callable
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

from portal.auth.session import login_required, see_other
from portal.errors import render_error
from portal.formatting import day
from portal.htmx import is_partial
from portal.journeys import journey
from portal.linking.forms import NO_TRUNCATION
from portal.refusals import reason_text, with_reason
from portal.services.answers import (
    Answer,
    Budget,
    Message,
    answer,
    check_id,
    flash_message,
    form_key,
    invalid_form,
    is_settled,
    iso_day,
    not_known_yet,
    owned,
    replays,
    said,
    settle_unknown,
    trouble_message,
)
from portal.services.core import Panel, Service, kind_service, read_panel
from portal.services.todo import paris_today
from portal.services.water.reading import WaterView, water_page
from portal.writes import KEY_RE, WriteOutcome, perform

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
        raw = "".join((self.index_m3.data or "").split()).replace("\u202f", "")
        return int(raw) if raw.isdigit() and len(raw) <= 8 else None


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


@bp.post("/<slug>/reading")
@login_required
@journey("water", "reading")
def declare_reading(slug: str) -> Answer:
    """Declare the meter's index: checked here first (never below the last reading,
    never a digit too many), then by the back-end, whose refusal is shown as it is."""
    svc = kind_service(slug, "water")
    budget = Budget()
    back = url_for("services.service", slug=svc.slug) + "#reading"
    form = reading_form(request.form)
    key = form_key()
    panel = read_panel(svc, water_page, budget.left())

    def fragment(message: Message) -> str:
        fresh = read_panel(svc, water_page, budget.left())
        return _reading_section(svc, fresh, reading_form(), message)

    if not KEY_RE.match(key):
        return answer(invalid_form(), fragment, back)
    settled = is_settled(key, "declare_reading")
    if not settled:
        if not panel.has_data:
            message = trouble_message(
                WriteOutcome("relink" if panel.state == "relink" else "failed"), svc
            )
            return answer(message or invalid_form(), fragment, back)
        if not panel.writable:
            return answer(
                Message(
                    _(
                        "Ce service est temporairement indisponible : rien n'a été envoyé. "
                        "Vous pourrez déclarer votre relevé quand il répondra."
                    ),
                    "error",
                ),
                fragment,
                back,
            )
        assert panel.data is not None
        if panel.data.closed:
            return answer(
                Message(
                    _("Ce contrat est résilié : il n'est plus possible d'y déclarer un relevé."),
                    "error",
                ),
                fragment,
                back,
            )
        if not check_reading(form, panel.data, paris_today()):
            if is_partial():
                return _reading_section(svc, panel, form, None)
            return render_template(
                "services/water/page.html", service=svc, panel=panel, form=form
            ), 422
    index, taken_on = form.index(), form.taken_on.data
    if index is None or taken_on is None:  # a replay of a form sent with other values
        return answer(invalid_form(), fragment, back)
    outcome = _perform_reading(svc, key, index, taken_on, budget.left())
    return answer(trouble_message(outcome, svc) or _reading_message(outcome, svc), fragment, back)


def _perform_reading(
    svc: Service, key: str, index: int, taken_on: date, deadline_s: float
) -> WriteOutcome:
    return perform(
        link=svc.link,
        action="declare_reading",
        key=key,
        deadline_s=deadline_s,
        call=lambda ctx, k: svc.connector.declare_reading(
            ctx, svc.ref, index, taken_on, idempotency_key=k
        ),
        encode=lambda reading: {
            "index_m3": reading.index_m3,
            "taken_on": reading.taken_on.isoformat(),
        },
        params={"index_m3": index, "taken_on": taken_on.isoformat()},
        request={"item": "", "index_m3": index, "taken_on": taken_on.isoformat()},
        ask_again=replays(svc),
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
    return Message(
        with_reason(
            _("Votre relevé n'a pas été enregistré : %(reason)s"),
            reason=reason_text(outcome.reason_code, outcome.reason),
        ),
        "error",
    )


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


def _owned_alert(
    svc: Service, panel: Panel[WaterView], alert_id: str, settled: bool
) -> tuple[Any, Message | None]:
    check_id(alert_id)
    alerts = panel.data.alerts if panel.data is not None else ()
    return owned(svc, panel, alerts, alert_id, settled)


@bp.route("/<slug>/alerts/<alert_id>/cap", methods=["GET", "POST"])
@login_required
@journey("water", "cap")
def cap_request(slug: str, alert_id: str) -> Answer:
    """GET: what the law allows and the form; POST: send it with the plumber's invoice.
    Someone else's alert, or one that does not exist, is the same 404."""
    svc = kind_service(slug, "water")
    budget = Budget()
    back = url_for("services.service", slug=svc.slug) + "#alerts"
    if request.method == "GET":
        settle_unknown(svc, budget.left() / 2)
        panel = read_panel(svc, water_page, budget.left())
        alert, _trouble = _owned_alert(svc, panel, alert_id, settled=False)
        return render_template(
            "services/water/cap.html",
            service=svc,
            panel=panel,
            alert=alert,
            form=CapForm(formdata=None),
        )
    key = form_key()
    if not KEY_RE.match(key):
        return render_error(400, invalid_form().text)
    settled = is_settled(key, "request_cap")
    panel = read_panel(svc, water_page, budget.left())
    alert, trouble = _owned_alert(svc, panel, alert_id, settled)
    if trouble is not None:
        flash_message(trouble)
        return see_other(back)
    form = CapForm()
    if not settled:
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
                "services/water/cap.html", service=svc, panel=panel, alert=alert, form=form
            ), 422
    else:
        document = b""
        repaired_on = form.repaired_on.data or paris_today()
    outcome = perform(
        link=svc.link,
        action="request_cap",
        key=key,
        deadline_s=budget.left(),
        call=lambda ctx, k: svc.connector.request_cap(
            ctx,
            svc.ref,
            alert_id,
            repaired_on=repaired_on,
            repair_location=(form.repair_location.data or "").strip(),
            repair_invoice_pdf=document,
            idempotency_key=k,
        ),
        encode=lambda receipt: {
            "reference": receipt.reference,
            "received_on": receipt.received_on.isoformat(),
        },
        params={"repaired_on": repaired_on.isoformat()},
        # Never the document: it lives in this request only, until the back-end has it.
        request={"item": alert_id},
        ask_again=False,
    )
    message = trouble_message(outcome, svc) or _cap_message(outcome, svc)
    flash_message(message)
    return see_other(back)


def _cap_message(outcome: WriteOutcome, svc: Service) -> Message:
    if outcome.status == "unknown":
        return Message(
            _(
                "Le service de l'eau n'a pas répondu à temps : nous ne savons pas s'il a reçu "
                "votre demande. L'alerte ci-dessous dit ce qu'il en sait ; si elle attend "
                "toujours votre demande, envoyez-la de nouveau."
            ),
            "info",
        )
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


def _resend_reading(svc: Service, key: str, req: dict[str, Any], left: float) -> Message | None:
    index, taken_on = req.get("index_m3"), iso_day(req.get("taken_on"))
    if not isinstance(index, int) or taken_on is None:
        return None
    outcome = _perform_reading(svc, key, index, taken_on, left)
    return said(outcome, svc, lambda o: _reading_message(o, svc))


#: How each of its writes is asked again, from what it stored (``ServiceKind.resend``).
#: A cap request is not: its document was never kept, and the alert's own status says
#: whether the operator received it.
RESENDS: dict[str, Callable[..., Message | None]] = {"declare_reading": _resend_reading}
