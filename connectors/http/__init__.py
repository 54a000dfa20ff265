"""The one resilient HTTP layer every connector goes through.

Why one layer: a resident's page must never wait on a slow back-end past its budget,
a back-end that is down must not be hammered by every web process, and a back-end
that answers nonsense must be noticed. Putting deadlines, retries, the circuit
breaker, last-good snapshots, authentication, status mapping and request logs here
means a connector type only says *what* to ask and how to read the answer.

One ``ResilientHTTP`` serves one configured instance. It is thread-safe.

One module per concern: ``policy`` (deadlines, retries), ``breaker`` (the circuit
breaker and its memory/Redis stores), ``snapshots`` (the store protocol, last-good
copies), ``problem`` (error bodies), ``auth`` (API key, Basic, OAuth2 client
credentials), ``tls`` (the process's one SSL context) and ``client``
(``ResilientHTTP``). Everything public is importable from ``connectors.http``.

Status mapping (after retries):

==========================================  =============================================
back-end answer                              raised
==========================================  =============================================
2xx with the expected body                   nothing: the response is returned
2xx, but not JSON or not what the spec says  ``ContractBroken``
401 for the portal's own credentials         ``Unavailable`` (misconfigured; logged as error)
404 on the linked resource                   ``LinkInvalid`` (or what the caller asks for)
409 / 422 / 423 (and caller-chosen refusals) ``Refused(detail, code)``
429, 5xx, timeouts, connection errors        ``Unavailable(retry_after)``
a write sent with an idempotency key, then   ``OutcomeUnknown``
no answer (read timeout, connection dropped
after sending, deadline while reading)
any other 4xx or 3xx                         ``ContractBroken``
==========================================  =============================================

Not sent, or refused before being processed (connection refused, connect timeout,
429, 503, open breaker, deadline before sending) means nothing was done: ``Unavailable``,
and the resident may simply try again. Sent and unanswered means the back-end may have
done it: for a write carrying an ``Idempotency-Key`` that is ``OutcomeUnknown``, so the
portal asks again with the same key instead of saying "nothing was done". A read, or
a write without a key (a proof check), has nothing to settle later: ``Unavailable``.
"""

from connectors.http.admission import QUEUE_WAIT_S, Admission, AdmissionCounters
from connectors.http.auth import TOKEN_MARGIN_S, Auth
from connectors.http.breaker import (
    BreakerDecision,
    BreakerState,
    BreakerStore,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from connectors.http.client import (
    ACCEPT_HEADERS,
    DEFAULT_REFUSAL_REASON,
    DEFAULT_REFUSALS,
    NOT_SENT_ERRORS,
    USER_AGENT,
    Accept,
    HTTPResponse,
    OutcomeHook,
    ResilientHTTP,
)
from connectors.http.policy import (
    MIN_ATTEMPT_S,
    READ_METHODS,
    RETRYABLE_STATUSES,
    UNAVAILABLE_STATUSES,
    Policy,
    parse_retry_after,
)
from connectors.http.problem import ErrorParser, Problem, parse_problem, stable_code
from connectors.http.refcache import (
    MemoryReferenceCache,
    RedisReferenceCache,
    ReferenceCache,
    ReferenceData,
)
from connectors.http.snapshots import MemorySnapshotStore, Snapshots, SnapshotStore
from connectors.http.tls import VerifySetting, clear_shared_ssl_contexts, shared_ssl_context

__all__ = [
    "ACCEPT_HEADERS",
    "DEFAULT_REFUSALS",
    "DEFAULT_REFUSAL_REASON",
    "MIN_ATTEMPT_S",
    "NOT_SENT_ERRORS",
    "QUEUE_WAIT_S",
    "READ_METHODS",
    "RETRYABLE_STATUSES",
    "TOKEN_MARGIN_S",
    "UNAVAILABLE_STATUSES",
    "USER_AGENT",
    "Accept",
    "Admission",
    "AdmissionCounters",
    "Auth",
    "BreakerDecision",
    "BreakerState",
    "BreakerStore",
    "ErrorParser",
    "HTTPResponse",
    "MemoryBreakerStore",
    "MemoryReferenceCache",
    "MemorySnapshotStore",
    "OutcomeHook",
    "Policy",
    "Problem",
    "RedisBreakerStore",
    "RedisReferenceCache",
    "ReferenceCache",
    "ReferenceData",
    "ResilientHTTP",
    "SnapshotStore",
    "Snapshots",
    "VerifySetting",
    "clear_shared_ssl_contexts",
    "parse_problem",
    "parse_retry_after",
    "shared_ssl_context",
    "stable_code",
]
