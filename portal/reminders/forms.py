"""The settings page's forms: turning reminders on, choosing kinds and lead times, an
address to confirm, turning them off; and the unsubscribe page's one button."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, Form, FormField, SelectField
from wtforms.validators import InputRequired, Length, Regexp

from portal.reminders.kinds import reminder_kinds
from portal.services.todo import ReminderKind

#: An address's shape only: the link sent to it is the real check.
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class EnableForm(FlaskForm):
    """One click: on, with the FranceConnect address and every kind at its defaults."""


class DisableForm(FlaskForm):
    """One click: off."""


class UnsubscribeForm(FlaskForm):
    """The unsubscribe page's button (a mail client's one-click POST carries no token:
    that route takes no form token, see ``routes.unsubscribe``)."""


class AddressForm(FlaskForm):
    email = EmailField(
        _l("Autre adresse électronique"),
        description=_l("Un lien vous sera envoyé à cette adresse pour la confirmer."),
        validators=[
            InputRequired(_l("Saisissez l'adresse électronique où recevoir les rappels.")),
            Length(max=320, message=_l("Cette adresse est trop longue.")),
            Regexp(
                EMAIL_RE,
                message=_l(
                    "Saisissez une adresse électronique valide, par exemple nom@exemple.fr."
                ),
            ),
        ],
    )


def lead_label(days: tuple[int, ...]) -> str:
    """« 3 jours et 1 jour avant », « le jour même »."""
    if days == (0,):
        return _("le jour même")
    names = [ngettext("%(num)d jour", "%(num)d jours", d) for d in days]
    if len(names) > 1:
        joined = _("%(first)s et %(last)s", first=", ".join(names[:-1]), last=names[-1])
    else:
        joined = names[0]
    return _("%(days)s avant", days=joined)


def kind_form(kind: ReminderKind) -> type[Form]:
    class KindForm(Form):
        wanted = BooleanField(_l("M'envoyer ce rappel"))
        lead = SelectField(
            _l("Quand"),
            choices=[(",".join(map(str, days)), "") for days in kind.choices],
            default=",".join(map(str, kind.default)),
            validate_choice=True,
        )

    return KindForm


def leads_form() -> FlaskForm:
    """A sub-form per kind (a fieldset each on the page), for the kinds installed, with
    the lead times said in the request's language."""
    kinds = reminder_kinds()
    attrs = {kind.name: FormField(kind_form(kind), label=kind.title) for kind in kinds}
    form = type("LeadsForm", (FlaskForm,), attrs)()
    for kind in kinds:
        form[kind.name].lead.choices = [
            (",".join(map(str, days)), lead_label(days)) for days in kind.choices
        ]
    return form
