"""The sandbox's SMTP sink: a real SMTP server on loopback that keeps every message it is
sent in the outbox (``sandbox.outbox``) and delivers none, so ``make run`` shows the
e-mail a demo resident would get at ``/sandbox/mail``.

Built on aiosmtpd. EHLO, SMTPUTF8 and AUTH (PLAIN, LOGIN) without TLS: any user name and
password are accepted, so the portal's ``PORTAL_MAIL_URL=smtp://user:pass@127.0.0.1:5025``
works as it will against a real relay; the user name is kept (never the password), so a
test can tell the portal logged in. STARTTLS is not offered: the portal only asks for it
on port 587.

``make run`` starts it as a process of its own (``mail:`` in ``Procfile.dev``), which the
Flask reloader of the sandbox cannot restart under it::

    python -m sandbox.mail [--host 127.0.0.1] [--port 5025] [--outbox path.sqlite3]

Tests start one in a thread on a free port: ``MailSink(outbox, port=0).start()``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from sandbox.config import default_config
from sandbox.outbox import DEFAULT_OUTBOX, Outbox

log = logging.getLogger(__name__)

#: Larger messages are refused with 552: a digest of reminders is a few tens of kB.
MAX_MESSAGE_BYTES = 2 * 1024 * 1024


def _accept_anyone(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Any credentials do; only the user name is remembered."""
    login = auth_data.login if isinstance(auth_data, LoginPassword) else None
    return AuthResult(success=True, auth_data=LoginPassword(login or b"", b""))


class _Handler:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        auth = session.auth_data
        login = auth.login if isinstance(auth, LoginPassword) else None
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message_id = await asyncio.to_thread(
            self.outbox.add_mail,
            envelope.mail_from or "",
            list(envelope.rcpt_tos),
            raw,
            login.decode("utf-8", "replace") if isinstance(login, bytes) and login else None,
        )
        log.info("mail: message %s kept (%d bytes)", message_id, len(raw))
        return f"250 Kept by the sandbox as message {message_id}"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on a port the system chooses."""

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None and self.server.sockets:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class MailSink:
    """The SMTP server, run in a thread of the calling process."""

    def __init__(self, outbox: Outbox, host: str = "127.0.0.1", port: int = 5025) -> None:
        self.outbox = outbox
        self.controller = _Controller(
            _Handler(outbox),
            hostname=host,
            port=port,
            server_hostname="sandbox.invalid",
            ident="Sandbox SMTP sink",
            data_size_limit=MAX_MESSAGE_BYTES,
            auth_require_tls=False,
            authenticator=_accept_anyone,
        )

    @property
    def host(self) -> str:
        return str(self.controller.hostname)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> MailSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def main(argv: list[str] | None = None) -> None:
    config = default_config()
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.mail", description="The sandbox's SMTP sink."
    )
    parser.add_argument("--host", default=config["SANDBOX_SMTP_HOST"])
    parser.add_argument("--port", type=int, default=config["SANDBOX_SMTP_PORT"])
    parser.add_argument("--outbox", default=config["SANDBOX_OUTBOX"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # aiosmtpd logs each envelope's addresses at INFO (personal data, even in a sandbox),
    # and warns at each AUTH of a deprecation in its own code.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    outbox = Outbox(args.outbox or DEFAULT_OUTBOX)
    sink = MailSink(outbox, args.host, args.port).start()
    log.info("Sandbox SMTP sink on %s, messages kept in %s", sink.url, outbox.path)
    stopped = threading.Event()
    # honcho and platforms stop processes with SIGTERM; Ctrl-C sends SIGINT.
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    sink.stop()


if __name__ == "__main__":
    main()
