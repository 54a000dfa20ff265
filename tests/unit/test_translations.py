"""The catalogues keep up with the text in the sources, English is complete, and the portal
speaks French by default and English when asked.

After changing text, update the catalogues as described in ``translations/README.md``.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from flask import Flask

from portal import create_app
from portal.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
LOCALES = ("fr", "en")
# Python %-style placeholders, conversion included: "%(code)s" and "%(code)d" differ.
PLACEHOLDER = re.compile(r"%\(\w+\)[#0 +-]*\d*(?:\.\d+)?[a-zA-Z]")


def pybabel() -> list[str]:
    script = Path(sys.executable).with_name("pybabel")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "babel.messages.frontend"]


def extract_command(output: Path) -> list[str]:
    """The extraction command of translations/README.md, writing to ``output``."""
    return [
        *pybabel(),
        "extract",
        "-F",
        "babel.cfg",
        "--ignore-dirs",
        ".* __pycache__",
        "-k",
        "_l",
        "-k",
        "lazy_gettext",
        "-k",
        "_",
        "-o",
        str(output),
        "--project",
        "Compte territorial",
        "--no-wrap",
        "--sort-by-file",
        "portal",
        "templates",
    ]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def load(path: Path) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, abort_invalid=True)


def keys(catalog: Catalog) -> set[object]:
    return {(message.context, message.id) for message in catalog if message.id}


def describe(found: set[object]) -> str:
    return "\n".join(sorted(f"  {key!r}" for key in found))


def placeholders(text: str | tuple[str, ...]) -> set[str]:
    texts = text if isinstance(text, tuple) else (text,)
    return {match for part in texts for match in PLACEHOLDER.findall(part or "")}


# -- the catalogues ------------------------------------------------------------------------


def test_the_template_is_up_to_date_with_the_sources(tmp_path: Path) -> None:
    fresh = tmp_path / "messages.pot"
    result = run(extract_command(fresh))
    assert result.returncode == 0, result.stderr
    extracted, committed = keys(load(fresh)), keys(load(TEMPLATE))
    assert extracted, "extraction found no messages: check babel.cfg"
    assert extracted == committed, (
        "translations/messages.pot is out of date; extract again (translations/README.md).\n"
        f"In the sources, not in the template:\n{describe(extracted - committed)}\n"
        f"In the template, no longer in the sources:\n{describe(committed - extracted)}"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_each_catalogue_is_updated_from_the_template(locale: str) -> None:
    expected, found = keys(load(TEMPLATE)), keys(load(po_path(locale)))
    assert found == expected, (
        f"{locale} catalogue differs from the template; run pybabel update.\n"
        f"Missing:\n{describe(expected - found)}\nExtra:\n{describe(found - expected)}"
    )


def test_every_message_has_an_english_translation() -> None:
    english = load(po_path("en"))
    untranslated = []
    for message in load(TEMPLATE):
        if not message.id:
            continue
        translation = english.get(message.id, message.context)
        strings = translation.string if translation else ""
        strings = strings if isinstance(strings, tuple) else (strings,)
        if translation is None or translation.fuzzy or not all(s.strip() for s in strings):
            untranslated.append(message.id)
    assert not untranslated, "Untranslated or fuzzy in English:\n" + "\n".join(
        f"  {message_id!r}" for message_id in untranslated
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders_of_their_message(locale: str) -> None:
    mismatched = [
        (message.id, message.string)
        for message in load(po_path(locale))
        if message.id
        and any(message.string if isinstance(message.string, tuple) else (message.string,))
        and placeholders(message.id) != placeholders(message.string)
    ]
    assert not mismatched, "Placeholders differ from the message:\n" + "\n".join(
        f"  {message_id!r} -> {string!r}" for message_id, string in mismatched
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_each_catalogue_compiles(locale: str, tmp_path: Path) -> None:
    compiled = tmp_path / "messages.mo"
    result = run(
        [*pybabel(), "compile", "-i", str(po_path(locale)), "-o", str(compiled), "-l", locale]
    )
    assert result.returncode == 0, result.stderr
    assert compiled.stat().st_size > 0, result.stderr


# -- the portal in both languages -----------------------------------------------------------


@pytest.fixture(scope="session")
def compiled_catalogues() -> None:
    """The .mo files are build output (git-ignored): compile them when missing or stale."""
    stale = [
        locale
        for locale in LOCALES
        if not po_path(locale).with_suffix(".mo").exists()
        or po_path(locale).with_suffix(".mo").stat().st_mtime < po_path(locale).stat().st_mtime
    ]
    if not stale:
        return
    result = run([*pybabel(), "compile", "-d", "translations"])
    assert result.returncode == 0, result.stderr
    # Flask-Babel keeps the catalogues it loaded for the life of the process; forget any
    # loaded before the .mo files existed.
    from portal.extensions import babel

    domain = vars(babel).get("domain_instance")
    if domain is not None:
        domain.cache.clear()


@pytest.fixture
def portal(compiled_catalogues: None) -> Iterator[Flask]:
    app = create_app(load_settings({}, database_url="sqlite://", testing=True))
    yield app


def page(app: Flask, url: str) -> str:
    response = app.test_client().get(url)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def test_the_sign_in_page_is_in_french_by_default(portal: Flask) -> None:
    body = page(portal, "/auth/login")
    assert '<html lang="fr"' in body
    assert "S'identifier avec" in body
    assert "Sign in with" not in body


def test_the_sign_in_page_is_in_english_when_asked(portal: Flask) -> None:
    body = page(portal, "/auth/login?lang=en")
    assert '<html lang="en"' in body
    assert "Sign in with" in body
    assert "What is FranceConnect?" in body
    assert "S'identifier avec" not in body


# -- typography ------------------------------------------------------------------------------

#: A plain or narrow space where French wants a non-breaking one: before « : ; ! ? »,
#: inside « … », in « 10 h 30 ».
FRENCH_SPACING_MISSING = re.compile(r"[ \u202f][:;!?»]|«[ \u202f]|\d h\b")
#: French spacing that has no place in English.
FRENCH_SPACING = re.compile(r"\u00a0[:;!?»]|«\u00a0|[«»]|\d\u00a0h\b")


def texts(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def test_french_messages_follow_french_typography() -> None:
    wrong = [
        text
        for message in load(TEMPLATE)
        if message.id
        for text in texts(message.id)
        if FRENCH_SPACING_MISSING.search(text) or "\u2019" in text
    ]
    assert not wrong, "French text without non-breaking spaces, or with ’:\n" + "\n".join(
        f"  {text!r}" for text in wrong
    )


def test_english_translations_carry_no_french_typography() -> None:
    wrong = [
        text
        for message in load(po_path("en"))
        if message.id
        for text in texts(message.string)
        if text and (FRENCH_SPACING.search(text) or "\u2019" in text)
    ]
    assert not wrong, "English text with French spacing or ’:\n" + "\n".join(
        f"  {text!r}" for text in wrong
    )
