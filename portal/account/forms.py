"""The one form of the account pages that asks for more than a click."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class DeleteAccountForm(FlaskForm):
    """Deleting cannot be undone: the box must be ticked, a click alone is not enough."""

    confirm = BooleanField(
        _l(
            "Je comprends que la suppression de mon compte est définitive : mes données "
            "seront effacées du Compte territorial et ne pourront pas être récupérées."
        ),
        validators=[
            DataRequired(
                _l("Cochez la case pour confirmer que vous voulez supprimer votre compte.")
            )
        ],
    )
