"""How a resident proves a library card is theirs: its number, and its PIN or their
birth date (whichever the library's connector accepts)."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal.linking.forms import NO_TRUNCATION, compact, only, unprintable
from portal.services.kinds import LinkSpec


class LibraryLinkForm(FlaskForm):
    card_number = StringField(
        _l("Numéro de carte de bibliothèque"),
        filters=[compact],
        validators=[
            DataRequired(_l("Indiquez votre numéro de carte.")),
            only(
                r"[0-9]+",
                _l(
                    "Le numéro de carte ne contient que des chiffres. Recopiez-le tel qu'il "
                    "figure sous le code-barres."
                ),
            ),
            Length(4, 32, _l("Le numéro de carte compte entre 4 et 32 caractères.")),
        ],
        description=_l("Il figure sous le code-barres, au dos de votre carte."),
        render_kw=NO_TRUNCATION,
    )
    proof = RadioField(
        _l("Comment prouvez-vous que cette carte est la vôtre ?"),
        choices=[
            ("pin", _l("Avec le code PIN de ma carte")),
            ("birthdate", _l("Avec ma date de naissance")),
        ],
        default="pin",
        validate_choice=False,  # validate_proof says it in plain words
        validators=[InputRequired(_l("Choisissez une façon de prouver que la carte est à vous."))],
    )
    pin = PasswordField(
        _l("Code PIN"),
        description=_l("Le code donné par votre bibliothèque, souvent 4 chiffres."),
        render_kw={"autocomplete": "off"},
    )
    birthdate = DateField(
        _l("Date de naissance"),
        validators=[Optional()],
        description=_l("Celle connue de la bibliothèque. Exemple : 24/08/1962."),
    )

    def __init__(self, *args: object, proof_kinds: tuple[str, ...] = ("pin",), **kwargs: object):
        super().__init__(*args, **kwargs)
        self.proof_kinds = proof_kinds
        self.proof.choices = [c for c in self.proof.choices if c[0] in proof_kinds]
        if len(proof_kinds) == 1:
            self.proof.data = proof_kinds[0]

    def validate_proof(self, field: RadioField) -> None:
        if field.data not in self.proof_kinds:
            raise ValidationError(_l("Choisissez une façon de prouver que la carte est à vous."))

    def validate_pin(self, field: PasswordField) -> None:
        if self.proof.data != "pin":
            return
        if not field.data:
            raise ValidationError(_l("Indiquez le code PIN de votre carte."))
        if unprintable(field.data):
            raise ValidationError(
                _l(
                    "Le code PIN contient un caractère qui ne peut pas en faire partie "
                    "(symbole, émoji ou caractère invisible)."
                )
            )
        if not 3 <= len(field.data) <= 32:
            raise ValidationError(_l("Le code PIN compte entre 3 et 32 caractères."))

    def validate_birthdate(self, field: DateField) -> None:
        if self.proof.data == "birthdate" and not field.data:
            raise ValidationError(_l("Indiquez votre date de naissance."))


def _form(connector: Any, formdata: Any) -> LibraryLinkForm:
    kinds = getattr(connector, "proof_kinds", ("pin", "birthdate"))
    return LibraryLinkForm(formdata=formdata, proof_kinds=kinds)


def _verify(connector: Any, ctx: Any, form: LibraryLinkForm) -> Any:
    use_pin = form.proof.data == "pin"
    return connector.verify_card(
        ctx,
        form.card_number.data,
        pin=form.pin.data if use_pin else None,
        birthdate=None if use_pin else form.birthdate.data,
    )


def _card_number(form: LibraryLinkForm) -> str:
    return form.card_number.data or ""


LINK = LinkSpec(
    form=_form,
    verify=_verify,
    target=_card_number,
    number=_card_number,
    template="services/library/link_fields.html",
    consent=_l(
        "Une fois le compte relié, nous consultons vos prêts, réservations et amendes pour "
        "les afficher ici, et nous agissons (renouveler, annuler) seulement quand vous le "
        "demandez."
    ),
    keepable=("card_number", "proof"),
)
