"""What the portal sent: e-mail received by the SMTP sink (``sandbox.mail``) and SMS
posted to ``/sandbox/sms/messages``, kept in one small SQLite file.

Why SQLite: the SMTP sink runs as a process of its own (``mail:`` in ``Procfile.dev``)
while the sandbox's pages are served by Flask, possibly restarted by its reloader; a file
both open is the simplest store they can share, and it outlives a restart of either.
Each kind keeps its last ``keep`` messages (200), so a demo left running for weeks
stays small.

The file is ``instance/sandbox-outbox.sqlite3`` unless ``SANDBOX_OUTBOX`` names another;
a sandbox built for tests (``TESTING``) without one gets a file in a temporary directory of
its own, so tests never touch the developer's outbox.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTBOX = PROJECT_ROOT / "instance" / "sandbox-outbox.sqlite3"
#: Messages of each kind kept; older ones are dropped as new ones arrive.
DEFAULT_KEEP = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mail (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    rcpt_tos TEXT NOT NULL,
    auth_login TEXT,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    recipient TEXT NOT NULL,
    text TEXT NOT NULL,
    idempotency_key TEXT UNIQUE
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Mail:
    """One message as the sink received it, read back from its raw bytes."""

    id: int
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    auth_login: str | None
    raw: bytes
    message: EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def to(self) -> list[str]:
        """The ``To`` header's addresses (the envelope's are ``rcpt_tos``)."""
        return [address for _name, address in getaddresses(self.message.get_all("To", []))]

    @property
    def text(self) -> str | None:
        return self._part("plain")

    @property
    def html(self) -> str | None:
        return self._part("html")

    def _part(self, subtype: str) -> str | None:
        part = self.message.get_body(preferencelist=(subtype,))
        if part is None:
            return None
        try:
            return str(part.get_content())  # type: ignore[attr-defined]
        except (LookupError, ValueError):  # an unknown charset or a broken encoding
            return part.get_payload(decode=True).decode("utf-8", "replace")  # type: ignore[union-attr]

    @property
    def date(self) -> datetime | None:
        value = self.message.get("Date")
        if not value:
            return None
        try:
            return parsedate_to_datetime(str(value))
        except (TypeError, ValueError):
            return None

    @property
    def unsubscribe_urls(self) -> list[str]:
        """The ``List-Unsubscribe`` header's URIs (RFC 2369: each between ``<`` and ``>``)
        whose scheme a page may link to; anything else (``javascript:``…) is left out."""
        value = str(self.message.get("List-Unsubscribe", ""))
        urls = []
        for chunk in value.split(","):
            chunk = chunk.strip()
            if chunk.startswith("<") and chunk.endswith(">"):
                url = chunk[1:-1].strip()
                if url.split(":", 1)[0].lower() in {"http", "https", "mailto"}:
                    urls.append(url)
        return urls

    @property
    def one_click(self) -> bool:
        """Whether the message asks for RFC 8058's one-click POST."""
        post = str(self.message.get("List-Unsubscribe-Post", ""))
        return post.replace(" ", "") == "List-Unsubscribe=One-Click"

    def as_json(self) -> dict[str, Any]:
        date = self.date
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "auth_login": self.auth_login,
            "from": str(self.message.get("From", "")),
            "to": self.to,
            "subject": self.subject,
            "date": date.isoformat() if date else None,
            "headers": [[name, str(value)] for name, value in self.message.items()],
            "text": self.text,
            "html": self.html,
            "list_unsubscribe": self.unsubscribe_urls,
            "list_unsubscribe_post": self.one_click,
            "size": len(self.raw),
        }


@dataclass(frozen=True)
class Sms:
    id: int
    received_at: datetime
    to: str
    text: str
    idempotency_key: str | None = None

    @property
    def segments(self) -> int:
        """How many SMS the text takes: 160 characters in one (153 each when split) in the
        GSM alphabet, 70 (67) once a character falls outside it, as operators count."""
        single, multi = (160, 153) if all(c in _GSM_CHARACTERS for c in self.text) else (70, 67)
        length = len(self.text) + sum(1 for c in self.text if c in _GSM_EXTENDED)
        return 1 if length <= single else -(-length // multi)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at.isoformat(),
            "to": self.to,
            "text": self.text,
            "segments": self.segments,
        }


#: The GSM 03.38 basic character set, and its extension (which costs two characters).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = "^{}\\[~]|€\f"
_GSM_CHARACTERS = frozenset(_GSM_BASIC + _GSM_EXTENDED)


class Outbox:
    """The SQLite file shared by the SMTP sink and the sandbox's pages.

    The sink's thread and Flask's threads share this object's connection, one at a time;
    another process (the sink run by ``Procfile.dev``) has its own, and SQLite's locking
    (WAL) keeps the two apart.
    """

    def __init__(self, path: str | Path | None = None, *, keep: int = DEFAULT_KEEP) -> None:
        self._path = Path(path) if path else None
        self.keep = keep
        self._lock = threading.Lock()
        self._use = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        """The file; without one configured, a file in a temporary directory of its own
        (chosen on first use, so an outbox nobody uses creates nothing)."""
        with self._lock:
            if self._path is None:
                self._path = Path(tempfile.mkdtemp(prefix="sandbox-outbox-")) / "outbox.sqlite3"
            return self._path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on this outbox's connection (committed, or rolled back on error).

        One connection kept open, its use serialised: closing the last connection to a
        WAL database checkpoints it to disk, which cost 25 ms a message.
        """
        path = self.path
        with self._use:
            if self._connection is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                # With WAL, a commit need not wait for the disk: losing the last messages
                # in a power cut is fine for a sandbox, and a demo's bursts stay fast.
                connection.execute("PRAGMA synchronous=NORMAL")
                connection.executescript(_SCHEMA)
                self._connection = connection
            with self._connection:
                yield self._connection

    def close(self) -> None:
        with self._use:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    # -- e-mail ------------------------------------------------------------------------

    def add_mail(
        self, mail_from: str, rcpt_tos: list[str], raw: bytes, auth_login: str | None = None
    ) -> int:
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO mail (received_at, mail_from, rcpt_tos, auth_login, raw)"
                " VALUES (?, ?, ?, ?, ?)",
                (_now(), mail_from, json.dumps(rcpt_tos), auth_login, raw),
            )
            db.execute(
                "DELETE FROM mail WHERE id <= ?",
                (int(cursor.lastrowid or 0) - self.keep,),
            )
            return int(cursor.lastrowid or 0)

    def mails(self, to: str | None = None) -> list[Mail]:
        """Newest first; ``to``: only those with this envelope recipient."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, received_at, mail_from, rcpt_tos, auth_login, raw"
                " FROM mail ORDER BY id DESC"
            ).fetchall()
        mails = [_mail(row) for row in rows]
        if to is not None:
            wanted = to.strip().lower()
            mails = [m for m in mails if wanted in (r.lower() for r in m.rcpt_tos)]
        return mails

    def mail(self, mail_id: int) -> Mail | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, received_at, mail_from, rcpt_tos, auth_login, raw"
                " FROM mail WHERE id = ?",
                (mail_id,),
            ).fetchone()
        return _mail(row) if row else None

    # -- SMS ---------------------------------------------------------------------------

    def add_sms(self, to: str, text: str, idempotency_key: str | None = None) -> tuple[Sms, bool]:
        """Record one SMS; ``(sms, True)`` when new, ``(the first one, False)`` when its
        ``idempotency_key`` was seen before."""
        with self._connect() as db:
            if idempotency_key is not None:
                row = db.execute(
                    "SELECT id, received_at, recipient, text, idempotency_key FROM sms"
                    " WHERE idempotency_key = ?",
                    (idempotency_key,),
                ).fetchone()
                if row:
                    return _sms(row), False
            cursor = db.execute(
                "INSERT INTO sms (received_at, recipient, text, idempotency_key)"
                " VALUES (?, ?, ?, ?)",
                (_now(), to, text, idempotency_key),
            )
            db.execute(
                "DELETE FROM sms WHERE id <= ?",
                (int(cursor.lastrowid or 0) - self.keep,),
            )
            row = db.execute(
                "SELECT id, received_at, recipient, text, idempotency_key FROM sms WHERE id = ?",
                (cursor.lastrowid,),
            ).fetchone()
        return _sms(row), True

    def sms(self) -> list[Sms]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, received_at, recipient, text, idempotency_key FROM sms ORDER BY id DESC"
            ).fetchall()
        return [_sms(row) for row in rows]

    # -- both --------------------------------------------------------------------------

    def clear(self, kind: str | None = None) -> None:
        """Forget the e-mail (``"mail"``), the SMS (``"sms"``) or both (None)."""
        if self._path is None or not self._path.exists():
            return  # nothing was ever kept: do not create the file just to empty it
        with self._connect() as db:
            for table in ("mail", "sms"):
                if kind in (None, table):
                    db.execute(f"DELETE FROM {table}")  # noqa: S608 (a fixed table name)


def _mail(row: tuple[Any, ...]) -> Mail:
    mail_id, received_at, mail_from, rcpt_tos, auth_login, raw = row
    message = message_from_bytes(raw, policy=policy.default)
    return Mail(
        id=mail_id,
        received_at=datetime.fromisoformat(received_at),
        mail_from=mail_from,
        rcpt_tos=json.loads(rcpt_tos),
        auth_login=auth_login,
        raw=raw,
        message=message,  # type: ignore[arg-type]
    )


def _sms(row: tuple[Any, ...]) -> Sms:
    sms_id, received_at, to, text, key = row
    return Sms(sms_id, datetime.fromisoformat(received_at), to, text, key)
