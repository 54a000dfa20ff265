"""gunicorn reads this file from the directory it starts in (the ``Procfile``'s command
and ``make run``'s both start at the repository's root); the command line still sets the
bind address, the workers and the threads.

Its hooks run in the master. ``on_starting`` checks the settings once, before any
worker starts: a production portal asked for several workers without a store they can
share refuses to start, with the reason, instead of running with breakers and
availability that differ from one process to the next (see
``Settings.shared_store_problems``). With ``PROMETHEUS_MULTIPROC_DIR`` set, it also
empties that directory, so ``/metrics`` counts from this start, and ``child_exit`` tells
prometheus-client when a worker is gone (``portal.metrics``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Seconds an idle keep-alive connection stays open (gunicorn's default is 2). Residents
#: pause 1 to 3 s between pages: at 2 s, a browser (or nginx) reusing a connection the
#: server closes at the same instant gets a reset, which the load runs saw as errors
#: on one instance reached directly. Longer than nginx's upstream reuse, it never
#: races it either; gthread workers park idle connections without holding a thread.
keepalive = 75


def on_starting(server: Any) -> None:
    from portal.config import ConfigError, load_settings

    try:
        settings = load_settings()
        problems = (
            settings.shared_store_problems(server.cfg.workers) if settings.is_production else []
        )
        if problems:
            raise ConfigError("Invalid configuration: " + "; ".join(problems))
    except ConfigError as exc:
        server.log.error("%s", exc)
        raise SystemExit(1) from exc
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        # What the previous run's workers counted would be added to this run's.
        Path(directory).mkdir(parents=True, exist_ok=True)
        for stale in Path(directory).glob("*.db"):
            stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
