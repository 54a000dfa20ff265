"""SQLAlchemy 2.0 typed models, one module per concept."""

from portal.models.agent import Agent, AgentSession
from portal.models.citizen import Citizen
from portal.models.desk import AgentAccessRequest, AgentRole, Desk
from portal.models.jobs import InstanceProbe, JobRun
from portal.models.journal import JournalEntry
from portal.models.limits import LinkAttempt, RateCounter
from portal.models.link import ConnectorSnapshot, ServiceLink
from portal.models.mandate import (
    AssistedSession,
    DeskJournalEntry,
    DeskVisit,
    Mandate,
    MandateNotice,
    MandateRevocation,
    MandateScope,
)
from portal.models.measure import (
    DailyVisitors,
    MeasureEvent,
    MeasureRollup,
    SatisfactionAnswer,
    VisitorKey,
)
from portal.models.reminder import ReminderDigest, ReminderSent, ReminderSettings
from portal.models.session import AuthSession
from portal.models.write import Payment, WriteRecord

__all__ = [
    "Agent",
    "AgentAccessRequest",
    "AgentRole",
    "AgentSession",
    "AssistedSession",
    "AuthSession",
    "Citizen",
    "ConnectorSnapshot",
    "DailyVisitors",
    "Desk",
    "DeskJournalEntry",
    "DeskVisit",
    "InstanceProbe",
    "JobRun",
    "JournalEntry",
    "LinkAttempt",
    "Mandate",
    "MandateNotice",
    "MandateRevocation",
    "MandateScope",
    "MeasureEvent",
    "MeasureRollup",
    "Payment",
    "RateCounter",
    "ReminderDigest",
    "ReminderSent",
    "ReminderSettings",
    "SatisfactionAnswer",
    "ServiceLink",
    "VisitorKey",
    "WriteRecord",
]
