"""How a reminder reaches a resident: a small interface, so a provider can change.

E-mail goes through the SMTP relay of ``PORTAL_MAIL_URL`` (``portal.notify``); an SMS
provider is reached over HTTP (``PORTAL_SMS_URL``, which is POSTed
``{"to": …, "text": …}`` as JSON). Either says True once its server took the message,
and never raises: a failure is logged without the address and the caller tries again
on a later run. What is logged never names the addressee.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from portal.config import current_settings
from portal.notify import mail_configured, send_mail

log = logging.getLogger(__name__)

#: Seconds for the SMS provider to take a message (the worker, not a resident, waits).
SMS_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Message:
    """One message to one addressee. ``html`` and ``headers`` are for e-mail only; an
    SMS carries ``text`` alone, so it must stand on its own."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Notifier(Protocol):
    #: What ``reminder_digest.channel`` records (``email``, ``sms``).
    channel: str

    def configured(self) -> bool:
        """Whether a message would go anywhere (the provider's settings are set)."""
        ...

    def send(self, message: Message) -> bool:
        """True once the provider accepted ``message``; False otherwise (logged)."""
        ...


class EmailNotifier:
    channel = "email"

    def configured(self) -> bool:
        return mail_configured()

    def send(self, message: Message) -> bool:
        return send_mail(
            message.to, message.subject, message.text, html=message.html, headers=message.headers
        )


class SmsNotifier:
    channel = "sms"

    def __init__(self, http: httpx.Client | None = None) -> None:
        self._http = http

    def configured(self) -> bool:
        return bool(current_settings().sms_url)

    def send(self, message: Message) -> bool:
        url = current_settings().sms_url
        if not url:
            log.info("SMS is not configured (PORTAL_SMS_URL): message not sent")
            return False
        payload = {"to": message.to, "text": message.text}
        try:
            if self._http is not None:
                response = self._http.post(url, json=payload, timeout=SMS_TIMEOUT_S)
            else:
                with httpx.Client(timeout=SMS_TIMEOUT_S) as http:
                    response = http.post(url, json=payload)
        except httpx.HTTPError as exc:
            log.warning("sms: the provider could not be reached (%s)", type(exc).__name__)
            return False
        if not response.is_success:
            log.warning("sms: the provider refused the message (HTTP %s)", response.status_code)
            return False
        return True
