"""The jobs that need a word of adaptation to run from the worker: each returns what it
did, in counts, for its ``job_run`` row."""

from __future__ import annotations

from flask import current_app


def probe_instances() -> str:
    from portal.integrations import probe_all

    probed, failed = probe_all(current_app._get_current_object())  # type: ignore[attr-defined]
    return f"{probed} instance(s) probed, {failed} not answering"


def mandate_notices() -> str:
    from portal.mandates.notices import notify_ending

    sent, skipped = notify_ending()
    return f"{sent} notice(s) sent, {skipped} resident(s) without an address or not reached"


def agents_expire() -> str:
    from portal.agents import access

    deactivated, warned, cleared = access.expire_inactive()
    return f"{deactivated} agent(s) deactivated, {warned} warned, {cleared} warning(s) cleared"
