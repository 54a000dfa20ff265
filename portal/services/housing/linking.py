"""How a resident proves a social-housing application is theirs: its unique number and
the main applicant's birth date."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, StringField
from wtforms.validators import DataRequired, Length

from portal.linking.forms import NO_TRUNCATION, compact, only
from portal.services.kinds import LinkSpec


class HousingLinkForm(FlaskForm):
    number = StringField(
        _l("Numéro unique de votre demande de logement social"),
        filters=[compact],
        validators=[
            DataRequired(_l("Indiquez le numéro unique de votre demande.")),
            only(
                r"[0-9A-Za-z]+",
                _l("Le numéro unique ne contient que des chiffres et des lettres sans accent."),
            ),
            Length(8, 24, _l("Le numéro unique compte entre 8 et 24 caractères.")),
        ],
        description=_l("Il figure sur l'attestation d'enregistrement de votre demande."),
        render_kw=NO_TRUNCATION,
    )
    birthdate = DateField(
        _l("Date de naissance"),
        validators=[DataRequired(_l("Indiquez votre date de naissance."))],
        description=_l("Celle du demandeur principal."),
    )


def _number(form: HousingLinkForm) -> str:
    return form.number.data or ""


LINK = LinkSpec(
    form=lambda connector, formdata: HousingLinkForm(formdata=formdata),
    verify=lambda connector, ctx, form: connector.verify_application(
        ctx, form.number.data, form.birthdate.data
    ),
    target=_number,
    number=_number,
    template="services/housing/link_fields.html",
    consent=_l(
        "Une fois le compte relié, nous consultons l'état de votre demande de logement et "
        "son historique, et nous la renouvelons seulement quand vous le demandez."
    ),
    keepable=("number",),
)
