"""The legal text a resident is shown before confirming a mandate, versioned.

A mandate records the version its resident saw (``Mandate.legal_version``); the text of
every version ever shown stays here, so that a receipt or "Mes mandats" shows the very
words agreed to. A new wording is a new version (a new template), never an edit of an
old one: ``tests/unit/test_mandates.py`` keeps the published ones from changing.
"""

from __future__ import annotations

#: Every version ever shown, oldest first; the last one is shown to new mandates.
VERSIONS = ("2026-12",)
CURRENT = VERSIONS[-1]


def template_for(version: str) -> str:
    """The template of ``version`` (the current one for an unknown version)."""
    return f"mandates/legal/{version if version in VERSIONS else CURRENT}.html"
