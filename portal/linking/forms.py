"""The proof each category asks for. Only what the back-end needs to check ownership;
the PIN and the invoice code are checked once and never stored."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError


def _compact(value: str | None) -> str | None:
    """Residents copy numbers with spaces and dashes: keep letters and digits."""
    return re.sub(r"[\s\-.]", "", value) if value else value


class LibraryLinkForm(FlaskForm):
    card_number = StringField(
        _l("Numéro de carte de bibliothèque"),
        filters=[_compact],
        validators=[
            DataRequired(_l("Indiquez votre numéro de carte.")),
            Length(4, 32, _l("Le numéro de carte compte entre 4 et 32 caractères.")),
        ],
        description=_l("Il figure sous le code-barres, au dos de votre carte."),
    )
    proof = RadioField(
        _l("Comment prouvez-vous que cette carte est la vôtre ?"),
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
        description=_l("Celle connue de la bibliothèque. Exemple : 24/08/1962."),
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
        if not 3 <= len(field.data) <= 32:
            raise ValidationError(_l("Le code PIN compte entre 3 et 32 caractères."))

    def validate_birthdate(self, field: DateField) -> None:
        if self.proof.data == "birthdate" and not field.data:
            raise ValidationError(_l("Indiquez votre date de naissance."))


class CanteenLinkForm(FlaskForm):
    family_number = StringField(
        _l("Numéro de famille"),
        filters=[_compact],
        validators=[
            DataRequired(_l("Indiquez votre numéro de famille.")),
            Length(4, 20, _l("Le numéro de famille compte entre 4 et 20 caractères.")),
        ],
        description=_l("Il figure en haut de vos factures de restauration scolaire."),
    )
    invoice_code = StringField(
        _l("Code figurant sur vos factures"),
        filters=[_compact, lambda v: v.upper() if v else v],
        validators=[
            DataRequired(_l("Indiquez le code figurant sur vos factures.")),
            Length(4, 16, _l("Le code compte entre 4 et 16 caractères.")),
        ],
        description=_l("Un code de 6 lettres et chiffres, sous le numéro de famille."),
        render_kw={"autocomplete": "off"},
    )


class HousingLinkForm(FlaskForm):
    number = StringField(
        _l("Numéro unique de votre demande de logement social"),
        filters=[_compact],
        validators=[
            DataRequired(_l("Indiquez le numéro unique de votre demande.")),
            Length(8, 24, _l("Le numéro unique compte entre 8 et 24 caractères.")),
        ],
        description=_l("Il figure sur l'attestation d'enregistrement de votre demande."),
    )
    birthdate = DateField(
        _l("Date de naissance"),
        validators=[DataRequired(_l("Indiquez votre date de naissance."))],
        description=_l("Celle du demandeur principal."),
    )


#: What may come back after a lost session or a refused token: the account's number and
#: the kind of proof chosen, never the proof itself (PIN, invoice code, birth date).
KEEPABLE = ("card_number", "proof", "family_number", "number")

FORMS = {"library": LibraryLinkForm, "canteen": CanteenLinkForm, "housing": HousingLinkForm}
