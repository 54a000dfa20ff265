"""A period runs once: claimed by a ``job_run`` row before running; a failed run is
tried again with a growing delay, then stays listed for operators, who can retry it.

On SQLite, and on PostgreSQL when ``TEST_DATABASE_URL`` is set (the ``app`` fixture's
database); the race between two workers is played on PostgreSQL with two connections."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.jobs import Job, daily, every, jobs
from portal.jobs.runs import (
    STALE_AFTER,
    claim,
    claim_again,
    delete_old_runs,
    due,
    error_text,
    execute,
    failed_runs,
    retry_delay_s,
)
from portal.models import JobRun

CALLS: list[str] = []


def counted() -> str:
    CALLS.append("ran")
    return "1 thing done"


def broken() -> None:
    CALLS.append("broke")
    raise RuntimeError("patron 12345 jean.dupont@example.org")  # personal data: not kept


COUNTED = Job("counted", every(minutes=5), "tests.unit.test_jobs:counted")
BROKEN = Job("broken", every(minutes=5), "tests.unit.test_jobs:broken", attempts=2)


@pytest.fixture(autouse=True)
def _calls() -> None:
    CALLS.clear()


def runs(app: Flask) -> list[JobRun]:
    with app.app_context():
        return list(db.session.scalars(sa.select(JobRun).order_by(JobRun.id)))


def test_periods_are_minutes_from_utc_midnight_or_paris_days() -> None:
    at = datetime(2026, 12, 4, 14, 27, 31, tzinfo=UTC)
    assert every(minutes=5).period(at) == "2026-12-04T14:25Z"
    assert every(hours=1).period(at) == "2026-12-04T14:00Z"
    # 00:30 UTC is 01:30 in Paris in winter: the day's roll-up period starts then.
    assert daily("01:30").period(datetime(2026, 12, 4, 0, 29, tzinfo=UTC)) == "2026-12-03"
    assert daily("01:30").period(datetime(2026, 12, 4, 0, 30, tzinfo=UTC)) == "2026-12-04"
    with pytest.raises(ValueError):
        every(minutes=7)


def test_every_scheduled_job_names_a_function_that_exists() -> None:
    for job in jobs().values():
        assert callable(job.function()), job.name


def test_a_second_claim_of_the_same_period_skips(app: Flask) -> None:
    with app.app_context():
        assert execute(COUNTED, "2026-12-04T14:25Z").state == "succeeded"
        assert execute(COUNTED, "2026-12-04T14:25Z").state == "skipped"
        assert execute(COUNTED, "2026-12-04T14:30Z").state == "succeeded"
    assert CALLS == ["ran", "ran"]
    first, second = runs(app)
    assert (first.state, first.attempts, first.summary) == ("succeeded", 1, "1 thing done")
    assert first.finished_at is not None and second.period == "2026-12-04T14:30Z"


def test_a_failed_run_is_retried_with_backoff_then_listed_and_retried_by_hand(
    app: Flask,
) -> None:
    with app.app_context():
        first = execute(BROKEN, "p")
        assert (first.state, first.retry_in_s) == ("failed", retry_delay_s(1)) == ("failed", 30)
        # A late duplicate of the first attempt does not take the failed row.
        assert execute(BROKEN, "p").state == "skipped"
        # The queued retry is attempt 2, the last one: nothing is queued after it.
        second = execute(BROKEN, "p", attempt=2)
        assert (second.state, second.retry_in_s) == ("failed", None)
        assert claim("broken", "p", attempt=2) is None  # attempt 2 was taken once
        listed = failed_runs()
        assert [(r.name, r.period, r.attempts) for r in listed] == [("broken", "p", 2)]
        assert listed[0].last_error.startswith("RuntimeError at tests/unit/")
        assert "12345" not in listed[0].last_error and "@" not in listed[0].last_error
        taken = claim_again(listed[0].id)
        assert taken is not None and taken.attempts == 3
        assert claim_again(listed[0].id) is None  # running now: one retry at a time
        assert execute(COUNTED, "p", taken=taken).state == "succeeded"  # the fix is in
        assert failed_runs() == []
    assert CALLS == ["broke", "broke", "ran"]


def test_a_run_left_running_by_a_dead_worker_is_claimed_again(app: Flask) -> None:
    with app.app_context():
        long_ago = datetime.now(UTC) - STALE_AFTER - timedelta(minutes=1)
        assert claim("counted", "p", now=long_ago) is not None
        assert [r.state for r in failed_runs()] == ["running"]  # listed as interrupted
        taken = claim("counted", "p")
        assert taken is not None and taken.attempts == 2
        assert claim("counted", "p") is None


def test_each_tick_queues_every_job_for_its_current_period() -> None:
    at = datetime(2026, 12, 4, 14, 27, 31, tzinfo=UTC)
    assert {job.name: period for job, period in due(at)} == {
        job.name: job.schedule.period(at) for job in jobs().values()
    }


def test_old_runs_are_purged_running_ones_kept(app: Flask) -> None:
    with app.app_context():
        old = datetime.now(UTC) - timedelta(days=40)
        for period in ("a", "b"):
            execute(COUNTED, period)
        claim("counted", "c", now=old)
        db.session.execute(sa.update(JobRun).where(JobRun.period == "a").values(updated_at=old))
        assert delete_old_runs() == 1
        db.session.commit()
        assert {r.period for r in db.session.scalars(sa.select(JobRun))} == {"b", "c"}


def test_an_error_is_named_by_type_and_place_never_by_message() -> None:
    try:
        broken()
    except RuntimeError as exc:
        text = error_text(exc)
    assert text.startswith("RuntimeError at tests/unit/test_jobs.py:")
    assert "dupont" not in text


@pytest.mark.skipif(not os.environ.get("TEST_DATABASE_URL"), reason="the race needs PostgreSQL")
def test_two_workers_claiming_at_once_on_postgresql_run_it_once(app: Flask) -> None:
    winners: list[object] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            winners.append(claim("counted", "race"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(1 for w in winners if w is not None) == 1
    assert len(runs(app)) == 1


def _redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


REDIS_URL = "redis://127.0.0.1:6379/1"
QUEUES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "redis", id="redis", marks=pytest.mark.skipif(not _redis_reachable(), reason="no Redis")
    ),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get("TEST_DATABASE_URL"), reason="TEST_DATABASE_URL unset"
        ),
    ),
]


@pytest.mark.parametrize("store", QUEUES)
def test_the_queue_lives_where_the_settings_say(store: str, tmp_path) -> None:
    from portal.config import load_settings, normalise_database_url
    from portal.jobs.worker import jobs_url, queue_for

    database_url = f"sqlite:///{tmp_path}/portal.sqlite3"
    extra: dict[str, object] = {}
    if store == "redis":
        extra = {"redis_url": REDIS_URL, "redis_prefix": f"test-{os.getpid()}:"}
    elif store == "postgresql":
        database_url = normalise_database_url(os.environ["TEST_DATABASE_URL"])
    settings = load_settings({}, database_url=database_url, testing=True, **extra)
    url = jobs_url(settings)
    assert url.startswith(store) and (store != "sqlite" or url.endswith("instance/jobs.sqlite3"))
    if store == "sqlite":
        settings = load_settings(
            {}, database_url=database_url, testing=True, jobs_url=f"sqlite:///{tmp_path}/q.db"
        )
    huey = queue_for(settings)
    done: list[int] = []

    @huey.task()
    def add(n: int) -> None:
        done.append(n)

    try:
        add(2)
        task = huey.dequeue()
        assert task is not None
        huey.execute(task)
        assert done == [2] and huey.dequeue() is None
    finally:
        huey.flush()


def test_a_queue_url_of_another_kind_is_refused() -> None:
    from portal.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="PORTAL_JOBS_URL"):
        load_settings({"PORTAL_JOBS_URL": "amqp://rabbit/"})
    with pytest.raises(ConfigError, match="PORTAL_JOBS_URL"):
        load_settings({"PORTAL_JOBS_URL": "sqlite://relative.db"})
    assert load_settings({"PORTAL_JOBS_URL": "redis://cache:6379/2"}).jobs_url


def test_the_worker_queues_the_next_attempt_with_a_delay_until_none_is_left(
    database_url: str, fc_sandbox, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portal import create_app
    from portal.jobs.worker import make_worker
    from tests.support import empty_tables, portal_settings

    monkeypatch.setattr("portal.jobs.schedule.JOBS", (BROKEN, COUNTED))
    app = create_app(
        portal_settings(database_url, fc_sandbox.issuer, jobs_url=f"sqlite:///{tmp_path}/q.db")
    )
    worker = make_worker(app)
    huey = worker.huey
    try:
        worker.tick()  # queues tick, then the worker runs it
        huey.execute(huey.dequeue())
        queued = [huey.dequeue(), huey.dequeue()]
        assert sorted(task.args[0] for task in queued) == ["broken", "counted"]
        for task in queued:
            huey.execute(task)
        # Queued with its time to run: a consumer keeps it aside until then.
        retry = huey.dequeue()
        assert retry is not None and not huey.ready_to_run(retry)
        assert retry.args == ("broken", BROKEN.schedule.period(datetime.now(UTC)), 2)
        delay = (retry.eta - datetime.now(UTC).replace(tzinfo=None)).total_seconds()
        assert 25 < delay <= 30
        retry.eta = None  # its time has come: the last attempt fails too
        huey.execute(retry)
        assert huey.dequeue() is None and huey.scheduled() == []
        assert CALLS.count("broke") == 2 and CALLS.count("ran") == 1
        (failed,) = [run for run in runs(app) if run.state != "succeeded"]
        assert (failed.name, failed.state, failed.attempts) == ("broken", "failed", 2)
    finally:
        huey.flush()
        empty_tables(app)
