"""htmx as an enhancement: a fragment only for a real htmx request, a page otherwise."""

from __future__ import annotations

from flask import Flask, Response, render_template, request


def is_partial() -> bool:
    """True for an htmx request that wants a fragment (boosted requests want pages)."""
    return (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"
    )


def render(page: str, fragment: str, **context: object) -> str:
    """Render ``fragment`` for htmx, ``page`` (which includes the fragment) otherwise."""
    return render_template(fragment if is_partial() else page, **context)


def init_htmx(app: Flask) -> None:
    @app.after_request
    def vary_on_htmx(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.vary.add("HX-Request")
        return response
