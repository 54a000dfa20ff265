"""SQLAlchemy 2.0 typed models, one module per concept."""

from portal.models.citizen import Citizen
from portal.models.journal import JournalEntry
from portal.models.session import AuthSession

__all__ = ["AuthSession", "Citizen", "JournalEntry"]
