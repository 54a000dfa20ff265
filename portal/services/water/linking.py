"""How a resident proves a water contract is theirs: the contract number and the
customer reference, both printed on every invoice."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.linking.forms import NO_TRUNCATION, compact, only
from portal.services.kinds import LinkSpec


def _upper(value: str | None) -> str | None:
    return value.upper() if value else value


class WaterLinkForm(FlaskForm):
    contract_number = StringField(
        _l("Numéro de contrat"),
        filters=[compact, _upper],
        validators=[
            DataRequired(_l("Indiquez votre numéro de contrat.")),
            only(
                r"[A-Z0-9]+",
                _l("Le numéro de contrat ne contient que des lettres sans accent et des chiffres."),
            ),
            Length(6, 24, _l("Le numéro de contrat compte entre 6 et 24 caractères.")),
        ],
        description=_l("Il figure en haut de vos factures d'eau, par exemple CT-33063-004521."),
        render_kw=NO_TRUNCATION,
    )
    customer_reference = StringField(
        _l("Référence client"),
        filters=[compact, _upper],
        validators=[
            DataRequired(_l("Indiquez votre référence client.")),
            only(
                r"[A-Z0-9]+",
                _l("La référence client ne contient que des lettres sans accent et des chiffres."),
            ),
            Length(6, 16, _l("La référence client compte entre 6 et 16 caractères.")),
        ],
        description=_l("8 lettres et chiffres, sous le numéro de contrat sur vos factures."),
        render_kw={"autocomplete": "off", **NO_TRUNCATION},
    )


def _contract_number(form: WaterLinkForm) -> str:
    return form.contract_number.data or ""


LINK = LinkSpec(
    form=lambda connector, formdata: WaterLinkForm(formdata=formdata),
    verify=lambda connector, ctx, form: connector.verify_contract(
        ctx, form.contract_number.data, form.customer_reference.data
    ),
    target=_contract_number,
    number=_contract_number,
    template="services/water/link_fields.html",
    consent=_l(
        "Une fois le contrat relié, nous consultons votre contrat d'eau, vos relevés, votre "
        "consommation, les alertes du service et vos factures, et nous agissons (déclarer un "
        "relevé, demander un écrêtement, payer) seulement quand vous le demandez."
    ),
    keepable=("contract_number",),
)
