"""Every periodic job, one line each: name, schedule, ``"module:function"``.

The function runs inside an application context with no argument, may run again for
the same period (a worker that died mid-run), and so must be idempotent. Daily times
are Paris time; ``every`` periods start at midnight UTC.
"""

from __future__ import annotations

from portal.jobs import Job, daily, every

JOBS: tuple[Job, ...] = (
    Job("probe-instances", every(minutes=1), "portal.jobs.tasks:probe_instances", attempts=1),
    Job("purge-expired", every(hours=1), "portal.retention:purge_expired"),
    Job("measure-rollup", daily("01:30"), "portal.measure.rollup:roll_up_pending"),
    Job("mandate-notices", daily("09:00"), "portal.jobs.tasks:mandate_notices"),
    Job("agents-expire", daily("06:00"), "portal.jobs.tasks:agents_expire"),
    # At most one digest a resident a day: a run reads only who was not read today.
    Job("send-reminders", every(minutes=5), "portal.reminders.digest:send_reminders"),
)
