"""How a resident proves a school-canteen family account is theirs: the family number
and the code printed on its invoices."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.linking.forms import NO_TRUNCATION, compact, only
from portal.services.kinds import LinkSpec


class CanteenLinkForm(FlaskForm):
    family_number = StringField(
        _l("Numéro de famille"),
        filters=[compact],
        validators=[
            DataRequired(_l("Indiquez votre numéro de famille.")),
            only(
                r"[0-9]+",
                _l("Le numéro de famille ne contient que des chiffres, sans lettre ni symbole."),
            ),
            Length(4, 20, _l("Le numéro de famille compte entre 4 et 20 caractères.")),
        ],
        description=_l("Il figure en haut de vos factures de restauration scolaire."),
        render_kw=NO_TRUNCATION,
    )
    invoice_code = StringField(
        _l("Code figurant sur vos factures"),
        filters=[compact, lambda v: v.upper() if v else v],
        validators=[
            DataRequired(_l("Indiquez le code figurant sur vos factures.")),
            only(
                r"[A-Z0-9]+",
                _l("Le code ne contient que des lettres sans accent et des chiffres."),
            ),
            Length(4, 16, _l("Le code compte entre 4 et 16 caractères.")),
        ],
        description=_l("Un code de 6 lettres et chiffres, sous le numéro de famille."),
        render_kw={"autocomplete": "off", **NO_TRUNCATION},
    )


def _family_number(form: CanteenLinkForm) -> str:
    return form.family_number.data or ""


LINK = LinkSpec(
    form=lambda connector, formdata: CanteenLinkForm(formdata=formdata),
    verify=lambda connector, ctx, form: connector.verify_family(
        ctx, form.family_number.data, form.invoice_code.data
    ),
    target=_family_number,
    number=_family_number,
    template="services/canteen/link_fields.html",
    consent=_l(
        "Une fois le compte relié, nous consultons vos enfants inscrits, leurs réservations "
        "de repas et vos factures, et nous agissons (réserver, annuler, payer) seulement "
        "quand vous le demandez."
    ),
    keepable=("family_number",),
)
