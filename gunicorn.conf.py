"""gunicorn reads this file from the directory it starts in (the ``Procfile``'s command
and ``make run``'s both start at the repository's root); the command line still sets the
bind address, the workers and the threads.

Its one hook checks the settings once, in the master, before any worker starts: a
production portal asked for several workers without a store they can share refuses to
start, with the reason, instead of running with breakers and availability that differ
from one process to the next (see ``Settings.shared_store_problems``).
"""

from __future__ import annotations

from typing import Any


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
