"""``flask mandates …``: what runs outside requests for mandates (the production issue's
worker schedules it; until then, cron or an operator)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from portal.mandates.notices import notify_ending


@click.group("mandates")
def mandates() -> None:
    """Mandates given at help desks."""


@mandates.command("notify-ending")
@click.option("--days", default=7, show_default=True, help="Tell residents this many days ahead.")
@with_appcontext
def notify_ending_command(days: int) -> None:
    """E-mail each resident whose mandate ends within --days, once per mandate."""
    sent, skipped = notify_ending(days)
    click.echo(f"{sent} notice(s) sent, {skipped} resident(s) without an address or not reached")
