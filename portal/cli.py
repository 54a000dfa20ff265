"""Operator commands: ``flask --app portal <command>``."""

from __future__ import annotations

import click
from flask import Flask

from portal.crypto import secret_box
from portal.extensions import db
from portal.models import ServiceLink


def init_cli(app: Flask) -> None:
    from portal.agents.cli import agents, desks
    from portal.jobs.cli import jobs_cli
    from portal.mandates.cli import mandates
    from portal.measure.rollup import measure_cli
    from portal.owners.cli import statistics

    app.cli.add_command(agents)
    app.cli.add_command(desks)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(mandates)
    app.cli.add_command(measure_cli)
    app.cli.add_command(statistics)

    @app.cli.command("rotate-secrets")
    def rotate_secrets() -> None:
        """Re-encrypt every stored secret with the first key of PORTAL_ENCRYPTION_KEYS.

        Run after putting a new key first; then the old key can be removed.
        """
        box = secret_box()
        count = 0
        for link in db.session.execute(
            db.select(ServiceLink).where(ServiceLink.secret_ciphertext.is_not(None))
        ).scalars():
            link.secret_ciphertext = box.rotate(link.secret_ciphertext or "")
            count += 1
        db.session.commit()
        click.echo(f"{count} secret(s) re-encrypted with the newest key")

    @app.cli.command("purge")
    def purge() -> None:
        """Delete expired sessions, old write records and old or orphaned snapshots.

        Safe to run at any time and as often as wanted (e.g. hourly): see
        docs/operations.md for what is kept and for how long.
        """
        from portal.retention import purge_expired

        for line in purge_expired().lines():
            click.echo(line)
