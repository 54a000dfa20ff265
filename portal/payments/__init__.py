"""Invoices of a linked account whose kind bills (``ServiceKind.bills``; its connectors
implement ``connectors.base.BillingConnector``): their PDF, and paying them through the
payment provider (PayFiP). Only the back-end's answer, asked for server-side, ever marks an
invoice paid: the browser coming back and the provider's notification are both just
reasons to go and ask."""

from flask import Blueprint

bp = Blueprint("payments", __name__)

from portal.payments import routes  # noqa: E402,F401
