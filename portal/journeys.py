"""Which service and which step each request belongs to.

The metrics feature will count use, success and abandonment per service and step. Tagging
views now, with one decorator, means it can hook in without touching every view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, g, request

F = TypeVar("F", bound=Callable[..., object])


def journey(service: str, step: str) -> Callable[[F], F]:
    def tag(view: F) -> F:
        view._journey = (service, step)  # type: ignore[attr-defined]
        return view

    return tag


def init_journeys(app: Flask) -> None:
    @app.before_request
    def remember_journey() -> None:
        view = current_app.view_functions.get(request.endpoint or "")
        g.journey = getattr(view, "_journey", None)
