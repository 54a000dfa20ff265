"""In-memory state of the sandbox back-ends: records, tokens, idempotency, faults, payments.

Like the identity provider, the sandbox is one process; one re-entrant lock guards all of
it. ``reset()`` (wired to ``POST /_admin/reset``) rebuilds the records for today and
forgets everything the tests or a demo changed.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sandbox.backends.data import Dataset, build_dataset, sandbox_now, sandbox_today

KINDS = ("library", "canteen", "housing", "koha", "water")
#: Tenants of each kind: an instance of a back-end as one commune runs it.
TENANTS: dict[str, tuple[str, ...]] = {
    "library": ("merignac", "pessac"),
    "canteen": ("bordeaux",),
    "housing": ("metropole",),
    "koha": ("bordeaux",),
    "water": ("bordeaux", "pessac"),
}
#: How people write each tenant's name: the URL slugs above have no accents.
TENANT_LABELS: dict[str, str] = {
    "merignac": "Mérignac",
    "pessac": "Pessac",
    "bordeaux": "Bordeaux",
    "metropole": "Bordeaux Métropole",
}
FAULT_MODES = (
    None,
    "hang",
    "reset",
    "error500",
    "rate_limit",
    "malformed",
    "wrong_schema",
    "unavailable",
    "answer_late",
)
MAX_HANG_S = 60.0
DEFAULT_HANG_S = 30.0
DEFAULT_RETRY_AFTER = 10
ACCESS_TOKEN_TTL_S = 3600
#: How long a stored idempotent response is replayed (a day, as most payment APIs do).
IDEMPOTENCY_TTL_S = 24 * 3600


def api_key(kind: str, tenant: str) -> str:
    """The API key a standard tenant accepts."""
    return f"sandbox-{kind}-{tenant}-key"


def client_secret(kind: str, tenant: str) -> str:
    """The OAuth2 client secret (client ``portal``) a tenant accepts; also Koha's Basic
    password."""
    return f"sandbox-{kind}-{tenant}-secret"


CLIENT_ID = "portal"


@dataclass
class Fault:
    """How one tenant misbehaves; ``mode`` None with ``latency_ms`` 0 is well-behaved."""

    mode: str | None = None
    latency_ms: int = 0
    retry_after: int = DEFAULT_RETRY_AFTER
    hang_s: float = DEFAULT_HANG_S
    #: Misbehave on writes only (any method but GET and HEAD): reads keep working, as on
    #: a back-end whose database is read-only for a while.
    writes_only: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "latency_ms": self.latency_ms,
            "retry_after": self.retry_after,
            "hang_s": self.hang_s,
            "writes_only": self.writes_only,
        }


@dataclass
class StoredResponse:
    """A write's first answer, replayed for the same Idempotency-Key."""

    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    expires_at: float


@dataclass
class Payment:
    payment_id: str
    tenant: str
    family_id: str
    invoice_id: str
    amount_cents: int
    label: str
    return_url: str
    notify_url: str
    created_at: datetime
    state: str = "pending"
    reason: str = ""
    #: When it was created, on the monotonic clock its session lifetime is counted on.
    opened_at: float = field(default_factory=time.monotonic)
    #: The back-end kind whose invoice this is (``canteen``, ``water``); ``family_id`` is
    #: then that kind's account id (a family, a water contract).
    kind: str = "canteen"


@dataclass
class Notification:
    """One server-to-server payment notification attempt, for tests and debugging."""

    payment_id: str
    url: str
    payload: dict[str, str]
    status: int | None = None
    error: str = ""


@dataclass
class PayfipSettings:
    suppress_redirect: bool = False
    #: Seconds a payment may stay pending before the payment service forgets it (as
    #: PayFiP forgets an unfinished operation): its page then says it expired and
    #: ``getPayment`` answers 404 ``unknown_payment``. None: never.
    session_lifetime_s: float | None = None


@dataclass
class BackendState:
    """All mutable state of the fake back-ends."""

    configured_today: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    dataset: Dataset = field(init=False)
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    tokens: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str], StoredResponse] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    payfip: PayfipSettings = field(default_factory=PayfipSettings)
    #: Proofs of ownership each tenant has checked (``kind/tenant``), for the tests
    #: that show the portal's limits stop attempts before they reach a back-end.
    proof_checks: dict[str, int] = field(default_factory=dict)
    #: Requests each tenant received (``kind/tenant``), faults and errors included.
    calls: dict[str, int] = field(default_factory=dict)
    #: Set to wake every hanging request at once (on reset or when a fault is cleared).
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.dataset = build_dataset(sandbox_today(self.configured_today))

    # -- lifecycle -------------------------------------------------------------------

    def reset(self) -> None:
        """Fresh records for today; no faults, tokens, stored answers or payments."""
        with self.lock:
            self.dataset = build_dataset(sandbox_today(self.configured_today))
            self.faults.clear()
            self.tokens.clear()
            self.idempotency.clear()
            self.payments.clear()
            self.notifications.clear()
            self.payfip = PayfipSettings()
            self.proof_checks.clear()
            self.calls.clear()
            self._release_hanging()

    def current(self) -> Dataset:
        """The records, rebuilt when the day has changed so a long-running demo keeps
        meaningful dates (changes made the day before are forgotten, as after a reset)."""
        with self.lock:
            today = sandbox_today(self.configured_today)
            if self.dataset.today != today:
                self.dataset = build_dataset(today)
                self.idempotency.clear()
            return self.dataset

    @property
    def today(self) -> date:
        return self.current().today

    def now(self) -> datetime:
        """The clock deadlines are checked against (follows a pinned day)."""
        return sandbox_now(self.configured_today)

    # -- payments --------------------------------------------------------------------

    def payment(self, payment_id: str) -> Payment | None:
        """A payment the payment service still knows: one left pending beyond the
        session lifetime is forgotten, as the real service forgets it."""
        with self.lock:
            payment = self.payments.get(payment_id)
            lifetime = self.payfip.session_lifetime_s
            if (
                payment is not None
                and payment.state == "pending"
                and lifetime is not None
                and time.monotonic() - payment.opened_at >= lifetime
            ):
                del self.payments[payment_id]
                return None
            return payment

    def count_call(self, kind: str, tenant: str) -> None:
        with self.lock:
            name = f"{kind}/{tenant}"
            self.calls[name] = self.calls.get(name, 0) + 1

    def count_proof_check(self, kind: str, tenant: str) -> None:
        with self.lock:
            name = f"{kind}/{tenant}"
            self.proof_checks[name] = self.proof_checks.get(name, 0) + 1

    # -- faults ----------------------------------------------------------------------

    def fault(self, kind: str, tenant: str) -> Fault:
        with self.lock:
            return self.faults.get((kind, tenant), Fault())

    def set_fault(self, kind: str, tenant: str, fault: Fault) -> None:
        with self.lock:
            if fault.mode is None and fault.latency_ms == 0:
                self.faults.pop((kind, tenant), None)
            else:
                self.faults[(kind, tenant)] = fault
            self._release_hanging()

    def clear_fault(self, kind: str, tenant: str) -> None:
        with self.lock:
            self.faults.pop((kind, tenant), None)
            self._release_hanging()

    def _release_hanging(self) -> None:
        """Wake the requests hanging now, and arm a new event for the next ones."""
        self.release.set()
        self.release = threading.Event()

    # -- OAuth2 tokens ---------------------------------------------------------------

    def issue_token(self, kind: str, tenant: str) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = time.monotonic()
            for value, (_k, _t, expires_at) in list(self.tokens.items()):
                if expires_at <= now:
                    del self.tokens[value]
            self.tokens[token] = (kind, tenant, now + ACCESS_TOKEN_TTL_S)
        return token

    def token_valid(self, token: str, kind: str, tenant: str) -> bool:
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None:
            return False
        token_kind, token_tenant, expires_at = entry
        return (token_kind, token_tenant) == (kind, tenant) and expires_at > time.monotonic()

    # -- idempotency -----------------------------------------------------------------

    def stored_response(self, scope: tuple[str, str, str]) -> StoredResponse | None:
        with self.lock:
            stored = self.idempotency.get(scope)
            if stored is not None and stored.expires_at <= time.monotonic():
                del self.idempotency[scope]
                return None
            return stored

    def store_response(
        self,
        scope: tuple[str, str, str],
        fingerprint: str,
        status: int,
        body: bytes,
        headers: dict[str, str],
    ) -> None:
        with self.lock:
            self.idempotency[scope] = StoredResponse(
                fingerprint, status, body, headers, time.monotonic() + IDEMPOTENCY_TTL_S
            )


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What must be identical for a replayed Idempotency-Key to be the same request."""
    digest = hashlib.sha256()
    digest.update(method.encode())
    digest.update(b"\0")
    digest.update(path.encode())
    digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()
