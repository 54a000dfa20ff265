"""E-mail to residents: notices and reminder digests, sent with ``smtplib``.

Configured by ``PORTAL_MAIL_URL`` (``smtp://user:password@host:port``; STARTTLS on port
587, ``smtps://`` for implicit TLS) and ``PORTAL_MAIL_FROM``. Unset, nothing is sent and
``send_mail`` says so by returning False. What is logged never names the addressee: an
e-mail address is personal data.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from portal.config import current_settings

log = logging.getLogger(__name__)

#: Seconds for the whole conversation with the mail server: a resident's request waits.
SMTP_TIMEOUT_S = 10.0


def mail_configured() -> bool:
    """Whether a message would go anywhere: both the server and the sender are set."""
    settings = current_settings()
    return bool(settings.mail_url and settings.mail_from)


def send_mail(
    to: str,
    subject: str,
    text: str,
    *,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """Send one message, plain text or, with ``html``, multipart/alternative (text
    first: a reader that shows no HTML shows it); ``headers`` are added as given (such
    as ``List-Unsubscribe``). True once the server accepted it. False when mail is not
    configured, or when sending failed (logged, without the address)."""
    if not mail_configured():
        log.info("mail is not configured (PORTAL_MAIL_URL, PORTAL_MAIL_FROM): notice not sent")
        return False
    settings = current_settings()
    url = urlsplit(settings.mail_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    implicit_tls = url.scheme == "smtps"
    port = url.port or (465 if implicit_tls else 25)
    try:
        smtp: smtplib.SMTP
        if implicit_tls:
            smtp = smtplib.SMTP_SSL(
                url.hostname or "",
                port,
                timeout=SMTP_TIMEOUT_S,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(url.hostname or "", port, timeout=SMTP_TIMEOUT_S)
        with smtp:
            if port == 587 and not implicit_tls:
                smtp.starttls(context=ssl.create_default_context())
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail: the server refused or could not be reached (%s)", type(exc).__name__)
        return False
    return True
