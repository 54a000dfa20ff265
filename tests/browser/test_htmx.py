"""htmx is the portal's only JavaScript: served from the portal, exactly the pinned file,
and configured by the page's meta tag so that the Content Security Policy holds."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import Page

from portal.config import PROJECT_ROOT
from tests.browser.support import ConsoleWatch

pytestmark = pytest.mark.browser

HTMX_FILE = PROJECT_ROOT / "static" / "js" / "htmx.min.js"
PINNED_JS = PROJECT_ROOT / "static" / "js" / "README.md"


def pinned(file_name: str) -> tuple[str, str]:
    """Version and sha256 recorded for ``file_name`` in the table of static/js/README.md."""
    for line in PINNED_JS.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and cells[0] == f"`{file_name}`":
            version, checksum = cells[2], cells[3].strip("`")
            assert re.fullmatch(r"[0-9a-f]{64}", checksum), line
            return version, checksum
    raise AssertionError(f"{file_name} is not in {PINNED_JS}")


def test_htmx_is_loaded_and_configured_from_the_meta_tag(page: Page, console: ConsoleWatch) -> None:
    page.goto("/auth/login")
    page.wait_for_function("() => window.htmx !== undefined")

    meta = page.evaluate(
        "() => JSON.parse(document.querySelector('meta[name=htmx-config]').content)"
    )
    config = page.evaluate(
        "(keys) => Object.fromEntries(keys.map((k) => [k, htmx.config[k]]))", list(meta)
    )
    assert config == meta
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    # Nothing was injected that the Content Security Policy had to refuse.
    assert page.locator("style").count() == 0
    assert not console.errors, "\n".join(console.errors)


def test_served_htmx_is_the_pinned_file(page: Page) -> None:
    version, checksum = pinned("htmx.min.js")
    assert hashlib.sha256(HTMX_FILE.read_bytes()).hexdigest() == checksum

    with page.expect_response(re.compile(r"/static/js/htmx\.min\.js$")) as script:
        page.goto("/auth/login")
    assert hashlib.sha256(script.value.body()).hexdigest() == checksum
    assert page.evaluate("() => htmx.version") == version
