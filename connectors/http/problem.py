"""Reading a back-end's error body: RFC 9457 ``application/problem+json``.

The standard APIs answer errors as problems (``code``, ``detail``, ``retry_after``,
``reason_code``). A connector type whose back-end has its own error shape (Koha's
``{error, error_code}``) gives the client its own ``ErrorParser`` (the type's
``error_parser`` attribute); the generic parser knows only the standard.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class Problem:
    """What the portal takes from an error body; every field may be empty."""

    code: str
    detail: str
    retry_after: float | None
    reason_code: str = ""


#: Turns an error answer's headers and raw body into a ``Problem``; must never raise.
ErrorParser = Callable[[httpx.Headers, bytes], Problem]

NO_PROBLEM = Problem("", "", None)


def mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_json(content_type: str) -> bool:
    kind = mime(content_type)
    return kind == "application/json" or kind.endswith("+json")


def json_object(headers: httpx.Headers, content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None if it is not JSON or not an object."""
    if not is_json(headers.get("content-type", "")):
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def parse_problem(headers: httpx.Headers, content: bytes) -> Problem:
    """Read an RFC 9457 problem leniently (anything unusable is left empty)."""
    body = json_object(headers, content)
    if body is None:
        return NO_PROBLEM
    code = body.get("code") or ""
    detail = body.get("detail") or body.get("title") or ""
    retry_after = body.get("retry_after")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int | float):
        retry_after = None
    return Problem(
        code if isinstance(code, str) else "",
        detail if isinstance(detail, str) else "",
        float(retry_after) if retry_after is not None else None,
        stable_code(body.get("reason_code")),
    )


def stable_code(value: Any) -> str:
    """A refusal code as the standard writes them (``too_late``), or "" for anything else."""
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isascii():
        return ""
    if value.replace("_", "").isalnum() and value[0].isalpha() and value.islower():
        return value
    return ""
