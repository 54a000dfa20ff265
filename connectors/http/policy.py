"""Deadline and retry policy of one instance: how often to try, how long to wait.

Everything here is pure arithmetic; ``ResilientHTTP`` applies it under each call's
``CallContext`` deadline.
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Statuses worth another try for an idempotent read.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses that say "the back-end is not able to serve now".
UNAVAILABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
#: Below this much time left, another attempt could not complete: give up instead.
MIN_ATTEMPT_S = 0.05
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Policy:
    """Retry and breaker settings of one instance, overridable in its ``options``."""

    max_attempts: int = 3
    backoff_base_s: float = 0.1
    backoff_cap_s: float = 2.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    #: An unchanged read is written to the snapshot store again only once its stored
    #: fetch time is this old (what residents see as "fetched at" during an outage).
    snapshot_refresh_s: float = 300.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Policy:
        """Read the policy keys of an instance's options; ``ValueError`` names a bad one.

        Other option keys belong to the connector type and are left alone.
        """
        values: dict[str, Any] = {}
        for name, kind, minimum in (
            ("max_attempts", int, 1),
            ("breaker_threshold", int, 1),
            ("breaker_cooldown_s", float, 0.0),
            ("backoff_base_s", float, 0.0),
            ("backoff_cap_s", float, 0.0),
            ("max_body_bytes", int, 1),
            ("snapshot_refresh_s", float, 0.0),
        ):
            if name not in options:
                continue
            value = options[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"options.{name}")
            if kind is int and not isinstance(value, int):
                raise ValueError(f"options.{name}")
            if value < minimum:
                raise ValueError(f"options.{name}")
            values[name] = kind(value)
        return cls(**values)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
