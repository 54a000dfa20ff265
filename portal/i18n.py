"""Locale chosen by: the ``lang`` query parameter, then the session, then the browser,
then French. The choice made with the language switch sticks for the session."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, g, request, session
from flask_babel import get_locale

from portal.extensions import babel

LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"
LANGUAGE_NAMES = {"fr": "Français", "en": "English"}


def select_locale() -> str:
    asked = request.args.get("lang")
    if asked in LOCALES:
        return asked
    remembered = session.get("lang")
    if remembered in LOCALES:
        return remembered
    citizen = getattr(g, "citizen", None)
    if citizen is not None and citizen.preferred_locale in LOCALES:
        return citizen.preferred_locale
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.before_request
    def remember_language_choice() -> None:
        asked = request.args.get("lang")
        if asked in LOCALES and session.get("lang") != asked:
            session["lang"] = asked

    @app.template_global()
    def lang_url(code: str) -> str:
        """This page in another language, keeping its query (``next``, filters…)."""
        args = request.args.to_dict(flat=False)
        args["lang"] = [code]
        return request.path + "?" + urlencode(args, doseq=True)

    @app.context_processor
    def language_context() -> dict[str, object]:
        return {
            "current_locale": str(get_locale() or DEFAULT_LOCALE),
            "language_names": LANGUAGE_NAMES,
        }
