"""What social housing's card and page show: the application, read through the link."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import CallContext, LinkRef


def housing_page(conn: Any, ctx: CallContext, ref: LinkRef) -> tuple[Any, datetime, bool]:
    application = conn.application(ctx, ref)
    return application.data, application.fetched_at, application.stale
