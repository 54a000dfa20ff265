"""``flask statistics sign-url``: a URL of the statistics API a territory's tool can call
without signing in, until it expires."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

DEFAULT_EXPIRY_S = 30 * 24 * 3600


@click.group("statistics")
def statistics() -> None:
    """The statistics API (docs/owners.md)."""


@statistics.command("sign-url")
@click.option(
    "--path",
    default="/api/statistics/",
    show_default=True,
    help="The API path, e.g. /api/statistics/visits/.",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A filter, e.g. time_interval=month (repeatable).",
)
@click.option(
    "--expires-in",
    "expires_in",
    type=click.IntRange(1, 366 * 24 * 3600),
    default=DEFAULT_EXPIRY_S,
    show_default=True,
    help="Seconds until it expires.",
)
@with_appcontext
def sign_url_command(path: str, params: tuple[str, ...], expires_in: int) -> None:
    """Print a signed URL of the statistics API (it reads the whole territory)."""
    from portal.owners.api import SIGNATURE, absolute, sign_url

    if not path.startswith("/api/statistics/"):
        raise click.UsageError("--path must start with /api/statistics/")
    values: dict[str, str] = {}
    for param in params:
        name, sep, value = param.partition("=")
        if not sep or not name or name == SIGNATURE:
            raise click.UsageError(f"--param {param!r}: write NAME=VALUE")
        values[name] = value
    click.echo(absolute(sign_url(path, values, expires_in)))
