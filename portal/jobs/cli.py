"""``flask jobs …``: the worker, and what operators do with its runs."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from portal.jobs import job, jobs
from portal.jobs.runs import Outcome, claim, claim_again, execute, failed_runs
from portal.models._types import utcnow

jobs_cli = AppGroup("jobs", help="Periodic jobs: the worker, failed runs, runs by hand.")


@jobs_cli.command("worker")
@click.option("--workers", "-w", default=2, show_default=True, help="Worker threads.")
def worker_command(workers: int) -> None:
    """Run the worker (Huey's consumer) until stopped: every job, each period, once."""
    from portal.jobs.worker import run_consumer

    run_consumer(current_app._get_current_object(), workers)  # type: ignore[attr-defined]


@jobs_cli.command("list")
def list_command() -> None:
    """Every periodic job and its schedule."""
    for each in jobs().values():
        click.echo(f"{each.name}\t{each.schedule}\t{each.target}")


@jobs_cli.command("failed")
def failed_command() -> None:
    """Runs left failed after their last attempt, and runs a stopped worker left
    unfinished, newest first: id, job, period, attempts, last error, time (UTC)."""
    runs = failed_runs()
    if not runs:
        click.echo("No failed run.")
    for run in runs:
        state = run.state if run.state == "failed" else "interrupted"
        click.echo(
            f"{run.id}\t{run.name}\t{run.period}\t{run.attempts} attempt(s)\t{state}\t"
            f"{run.last_error or '-'}\t{run.updated_at:%Y-%m-%d %H:%M:%S}"
        )


def _report(outcome: Outcome) -> None:
    if outcome.state != "succeeded":
        raise click.ClickException("the run failed: see `flask jobs failed`")
    click.echo("Done.")


@jobs_cli.command("retry")
@click.argument("run_id", type=int)
def retry_command(run_id: int) -> None:
    """Run one failed run (its id in `flask jobs failed`) again, now, in this process."""
    from portal.extensions import db
    from portal.models import JobRun

    run = db.session.get(JobRun, run_id)
    if run is None:
        raise click.ClickException(f"no run {run_id}")
    try:
        which = job(run.name)
    except LookupError:
        raise click.ClickException(f"job {run.name} is not scheduled any more") from None
    taken = claim_again(run_id)
    if taken is None:
        raise click.ClickException(f"run {run_id} is not failed (it is {run.state})")
    _report(execute(which, taken.period, taken=taken))


@jobs_cli.command("run")
@click.argument("name")
def run_command(name: str) -> None:
    """Run one job now, in this process, whatever its schedule (recorded as a manual run)."""
    try:
        which = job(name)
    except LookupError:
        raise click.ClickException(f"no job {name!r}; the jobs are: {', '.join(jobs())}") from None
    period = f"manual:{utcnow():%Y-%m-%dT%H:%M:%S.%fZ}"
    taken = claim(which.name, period)
    if taken is None:  # the same microsecond, twice
        raise click.ClickException("another manual run started at the same time")
    _report(execute(which, period, taken=taken))
