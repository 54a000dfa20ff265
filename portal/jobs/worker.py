"""The worker: Huey's consumer, with two tasks.

- ``tick``, a Huey periodic task that every consumer runs each minute (and once as it
  starts): it queues ``run_job`` for each job and its current period;
- ``run_job(name, period, attempt)``: claims the period (``portal.jobs.runs``), runs the
  job in an application context, and after a failure queues the next attempt with a
  delay that doubles (Huey's scheduled tasks).

Several consumers may tick at once, on one machine or many: the claim makes each period
run once. The queue lives where ``PORTAL_JOBS_URL`` says; by default in Redis when
``PORTAL_REDIS_URL`` is set, else in PostgreSQL when the portal's database is, else in
a SQLite file under ``instance/`` (``make run``, nothing to install).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey, crontab

from portal.config import PROJECT_ROOT, Settings
from portal.jobs import jobs
from portal.jobs.runs import due, execute

log = logging.getLogger(__name__)


def jobs_url(settings: Settings) -> str:
    """Where the queue lives (see the module)."""
    if settings.jobs_url:
        return settings.jobs_url
    if settings.redis_url:
        return settings.redis_url
    if settings.database_url.startswith("postgresql"):
        return settings.database_url
    return "sqlite:///" + str(PROJECT_ROOT / "instance" / "jobs.sqlite3")


def queue_for(settings: Settings) -> Huey:
    url = jobs_url(settings)
    scheme = urlsplit(url).scheme
    name = settings.redis_prefix + "jobs"
    if scheme in {"redis", "rediss"}:
        return RedisHuey(name, url=url, results=False)
    if scheme.startswith("postgres"):
        # psycopg's own spelling, without SQLAlchemy's driver suffix.
        dsn = "postgresql:" + url.partition(":")[2]
        return PostgresHuey(name, dsn=dsn, results=False)
    path = Path(url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    # Two workers (or a worker and ``flask jobs run``) open the file at once as they start,
    # on a busy machine: wait for the other's lock rather than stop.
    return SqliteHuey(name, filename=str(path), results=False, timeout=30)


@dataclass(frozen=True)
class Worker:
    huey: Huey
    #: Huey's task wrappers: calling one queues it.
    run_job: Any
    tick: Any


def make_worker(app: Flask) -> Worker:
    """The queue and the worker's two tasks, bound to ``app``."""
    huey = queue_for(app.extensions["portal_settings"])

    @huey.task(name="run_job")
    def run_job(name: str, period: str, attempt: int = 1) -> None:
        job = jobs().get(name)
        if job is None:  # queued by an older release that had it
            log.warning("job %s is not scheduled any more: not run", name)
            return
        with app.app_context():
            outcome = execute(job, period, attempt)
        if outcome.retry_in_s is not None and outcome.claim is not None:
            run_job.schedule(
                args=(name, period, outcome.claim.attempts + 1), delay=outcome.retry_in_s
            )

    @huey.periodic_task(crontab(), name="tick")
    def tick() -> None:
        queued = due()
        for job, period in queued:
            run_job(job.name, period)
        log.info("tick: %d job(s) queued", len(queued))

    return Worker(huey, run_job, tick)


def run_consumer(app: Flask, workers: int) -> None:
    """Consume until stopped. SIGTERM, which platforms and honcho send, stops gracefully:
    running jobs finish (a second SIGTERM, or SIGINT, stops at once)."""
    consumer = make_worker(app).huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True, graceful_signal="TERM"
    )
    consumer.run()
