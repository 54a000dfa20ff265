"""The proof each category asks for. Only what the back-end needs to check ownership;
the PIN and the invoice code are checked once and never stored."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, PasswordField, RadioField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

#: The browser must not cut a pasted value at the longest length allowed: a value too
#: long is refused with its own message instead (``maxlength`` would truncate silently).
NO_TRUNCATION = {"maxlength": False}


def _compact(value: str | None) -> str | None:
    """Residents copy numbers with spaces and dashes: keep letters and digits."""
    return re.sub(r"[\s\-.]", "", value) if value else value


def _unprintable(value: str) -> bool:
    """A control or invisible character, an emoji or another symbol: nothing a card,
    a PIN or an invoice code is made of."""
    return any(
        unicodedata.category(char)[0] == "C"
        or unicodedata.category(char) in {"So", "Sk", "Zl", "Zp"}
        or ord(char) > 0x24F
        for char in value
    )


def only(pattern: str, message: object) -> Callable[[FlaskForm, Field], None]:
    """Refuse, before any back-end hears of it, what cannot be this number or code."""
    compiled = re.compile(pattern)

    def check(_form: FlaskForm, field: Field) -> None:
        if field.data and not compiled.fullmatch(field.data):
            raise StopValidation(str(message))

    return check


class LibraryLinkForm(FlaskForm):
    card_number = StringField(
        _l("Numéro de carte de bibliothèque"),
        filters=[_compact],
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
        if _unprintable(field.data):
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


class CanteenLinkForm(FlaskForm):
    family_number = StringField(
        _l("Numéro de famille"),
        filters=[_compact],
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
        filters=[_compact, lambda v: v.upper() if v else v],
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


class HousingLinkForm(FlaskForm):
    number = StringField(
        _l("Numéro unique de votre demande de logement social"),
        filters=[_compact],
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


#: What may come back after a lost session or a refused token: the account's number and
#: the kind of proof chosen, never the proof itself (PIN, invoice code, birth date).
KEEPABLE = ("card_number", "proof", "family_number", "number")

FORMS = {"library": LibraryLinkForm, "canteen": CanteenLinkForm, "housing": HousingLinkForm}
