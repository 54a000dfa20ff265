"""The worker as the Procfile starts it: two consumers at once run each period's job
once; probes land in the database, so ``/status`` says the same on every server; the
commands operators use for failed runs."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.integrations import probe_all
from portal.jobs import jobs
from portal.models import InstanceProbe, JobRun
from tests.support import PROJECT_ROOT, Sandbox, empty_tables, portal_settings


def procfile_command(name: str) -> list[str]:
    for line in (PROJECT_ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}:"):
            words = shlex.split(line.partition(":")[2])
            assert words[0] == "flask"
            return [sys.executable, "-m", "flask", *words[1:]]
    raise AssertionError(f"no {name} line in the Procfile")


def rows(app: Flask, model: type) -> list:
    with app.app_context():
        found = list(db.session.scalars(sa.select(model)))
        db.session.remove()
        return found


@pytest.fixture
def consumers(
    services_app: Flask, database_url: str, connectors_file: str, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("PORTAL_", "FLASK_"))
    }
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        PORTAL_DATABASE_URL=database_url,
        PORTAL_JOBS_URL=f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        PORTAL_CONNECTORS_FILE=connectors_file,
        PORTAL_DEMO_LINKS_FILE="",
    )
    started = [
        subprocess.Popen(  # noqa: S603
            procfile_command("worker"),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=(tmp_path / f"worker-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in (1, 2)
    ]
    yield started
    for process in started:
        process.send_signal(signal.SIGTERM)  # graceful: running jobs finish
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_workers_run_each_periods_job_once(
    consumers: list[subprocess.Popen[bytes]], services_app: Flask, tmp_path: Path
) -> None:
    """Both schedulers tick as they start (then each minute); both ticks queue what is
    due into the one queue; every queued run either runs or, its period taken, skips."""
    deadline = time.monotonic() + 90
    logs: list[str] = []
    while time.monotonic() < deadline:
        logs = [(tmp_path / f"worker-{i}.log").read_text() for i in (1, 2)]
        assert all(p.poll() is None for p in consumers), "a worker stopped:\n" + "\n".join(logs)
        both = "\n".join(logs)
        queued = sum(int(n) for n in re.findall(r"tick: (\d+) job\(s\) queued", both))
        ended = len(re.findall(r"job \S+, period \S+: (?:done|taken by another)", both))
        ticked = all("Enqueueing periodic task portal.jobs.worker.tick" in log for log in logs)
        if ticked and both.count("job(s) queued") >= 2 and queued and ended == queued:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the workers did not finish their ticks:\n" + "\n".join(logs))
    runs = rows(services_app, JobRun)
    # Each period was queued by both ticks: all but one run of each were turned away.
    skipped = both.count("taken by another run, skipped")
    assert skipped == queued - len(runs) >= len(jobs())
    assert {run.name for run in runs} == set(jobs())
    assert all(run.state == "succeeded" and run.attempts == 1 for run in runs), runs
    done = {name: sum(1 for run in runs if run.name == name) for name in jobs()}
    for name in ("purge-expired", "measure-rollup", "mandate-notices", "agents-expire"):
        assert done[name] == 1, (name, done)
    # The probe's effect counts its runs: one row per instance per run, never two.
    instances = len(services_app.extensions["connectors"].instances)
    probes = rows(services_app, InstanceProbe)
    assert len(probes) == instances * done["probe-instances"] > 0
    assert all(p.ok for p in probes), "the sandbox answers every probe"


def status_table(html: str) -> str:
    found = re.search(r"<table>.*</table>", html, re.S)
    assert found, html
    return found.group(0)


def test_status_is_the_same_from_two_servers_sharing_the_database(
    services_app: Flask,
    database_url: str,
    fc_sandbox: Sandbox,
    connectors_file: str,
) -> None:
    other = create_app(
        portal_settings(database_url, fc_sandbox.issuer, connectors_file=connectors_file)
    )
    try:
        before = other.test_client().get("/status").get_data(as_text=True)
        assert "inconnu" in before and "indisponible" not in before  # nothing probed yet
        fc_sandbox.fault("library", "merignac", "error500")
        probe_all(services_app)  # the worker, in a third process in production
        one = services_app.test_client().get("/status").get_data(as_text=True)
        two = other.test_client().get("/status").get_data(as_text=True)
        assert status_table(one) == status_table(two)
        merignac = re.search(r"Médiathèque de Mérignac.*?</tr>", one, re.S)
        assert merignac and "indisponible" in merignac.group(0)
        assert "0\u00a0% (1)" in merignac.group(0) or "0 % (1)" in merignac.group(0)
        bordeaux = re.search(r"Bibliothèques de Bordeaux.*?</tr>", one, re.S)
        assert bordeaux and ">disponible<" in bordeaux.group(0)
        # Probes older than the window say nothing any more.
        with services_app.app_context():
            db.session.execute(
                sa.update(InstanceProbe).values(
                    checked_at=datetime.now(UTC) - timedelta(minutes=16)
                )
            )
            db.session.commit()
        assert "indisponible" not in other.test_client().get("/status").get_data(as_text=True)
    finally:
        other.extensions["connectors"].close()
        empty_tables(other)


def test_operators_list_a_failed_run_and_retry_it(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert "No failed run." in runner.invoke(args=["jobs", "failed"]).output
    with app.app_context():
        run = JobRun(
            name="purge-expired",
            period="2026-12-04T03:00Z",
            state="failed",
            attempts=4,
            last_error="OperationalError at portal/retention.py:140",
        )
        db.session.add(run)
        db.session.commit()
        run_id = run.id
    listed = runner.invoke(args=["jobs", "failed"]).output
    assert f"{run_id}\tpurge-expired\t2026-12-04T03:00Z\t4 attempt(s)\tfailed" in listed
    assert "OperationalError at portal/retention.py:140" in listed
    retried = runner.invoke(args=["jobs", "retry", str(run_id)])
    assert retried.exit_code == 0 and "Done." in retried.output, retried.output
    assert "No failed run." in runner.invoke(args=["jobs", "failed"]).output
    again = runner.invoke(args=["jobs", "retry", str(run_id)])
    assert again.exit_code != 0 and "is not failed" in again.output
    with app.app_context():
        done = db.session.get(JobRun, run_id)
        assert done is not None and (done.state, done.attempts) == ("succeeded", 5)


def test_an_operator_runs_a_job_now(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "purge-expired"])
    assert result.exit_code == 0 and "Done." in result.output, result.output
    unknown = runner.invoke(args=["jobs", "run", "purge-everything"])
    assert unknown.exit_code != 0 and "purge-expired" in unknown.output
    (run,) = rows(app, JobRun)
    assert run.period.startswith("manual:") and run.state == "succeeded"
