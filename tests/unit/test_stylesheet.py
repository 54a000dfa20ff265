"""The one stylesheet stays small: at most 12 KB once compressed, as it is sent."""

from __future__ import annotations

import gzip
import re

from portal.config import PROJECT_ROOT

STYLESHEET = PROJECT_ROOT / "static" / "css" / "portal.css"
MAX_COMPRESSED = 12 * 1024


def test_the_stylesheet_is_at_most_12_kb_compressed() -> None:
    compressed = len(gzip.compress(STYLESHEET.read_bytes(), compresslevel=6))
    assert compressed <= MAX_COMPRESSED, f"{compressed:,} bytes gzipped"


def test_words_are_never_broken_anywhere_to_fit() -> None:
    """``overflow-wrap: anywhere`` lets a column shrink to a letter: amounts and words
    were cut letter by letter on phones."""
    css = STYLESHEET.read_text(encoding="utf-8")
    rules = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    assert "anywhere" not in rules
    assert "word-break: break-all" not in rules
