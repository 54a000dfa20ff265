"""What every kind's link form is made of (each kind's own form is in its package,
``ServiceKind.link``). Only what the back-end needs to check ownership; a PIN or a code
is checked once and never stored."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.validators import (
    StopValidation,
)

#: The browser must not cut a pasted value at the longest length allowed: a value too
#: long is refused with its own message instead (``maxlength`` would truncate silently).
NO_TRUNCATION = {"maxlength": False}


def compact(value: str | None) -> str | None:
    """Residents copy numbers with spaces and dashes: keep letters and digits."""
    return re.sub(r"[\s\-.]", "", value) if value else value


def unprintable(value: str) -> bool:
    """A control or invisible character, an emoji or another symbol: nothing a card,
    a PIN or a code is made of."""
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
