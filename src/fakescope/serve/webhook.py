"""Webhooks: tell a caller's server that a job finished, signed so it can trust the message.

The signature is HMAC-SHA256 over "<timestamp>.<body>" (the Stripe/GitHub pattern): the
receiver recomputes it with the shared secret and rejects old timestamps, so a captured
request cannot be replayed later. Delivery is bounded (a few tries, short timeouts), runs
on its own threads and never raises: a broken receiver must not break the job that reports to it.

Where a webhook may go is the egress policy's call (serve.egress), checked when the job is
submitted and again at connect time. What delivery reports back (`webhook_status`) is a fixed
vocabulary, never an exception's text: otherwise refused, closed and silent ports would read
differently and the webhook would be a port scanner.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from fakescope.errors import FakescopeError
from fakescope.serve.db import Job
from fakescope.serve.egress import EgressPolicy, RefusedAddressError, pinned_client

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fakescope-Signature"
TIMESTAMP_HEADER = "X-Fakescope-Timestamp"
MAX_URL_CHARS = 2048
# Everything `webhook_status` can say, besides "failed: HTTP <status>".
DELIVERED = "delivered"
REFUSED = "failed: refused address"
UNREACHABLE = "failed: could not connect"
INVALID = "failed: invalid webhook"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    """What a receiver does (also the reference for the docs); constant-time."""
    return isinstance(signature, str) and hmac.compare_digest(sign(secret, timestamp, body), signature)


def validate_webhook_url(url: str, hosts: Sequence[str] = ()) -> str:
    """The URL itself if a webhook may be sent to it, else FakescopeError saying why.

    `hosts` (the `webhook_hosts` setting), when given, is the only set of hosts a webhook may reach.
    This checks the URL's form only; `check_webhook_url` adds the egress policy (no internal addresses).
    """
    if not isinstance(url, str) or not url.strip():
        raise FakescopeError("webhook_url is empty")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise FakescopeError(f"webhook_url is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise FakescopeError("webhook_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port raises ValueError when it is not a number
    except ValueError as err:
        raise FakescopeError(f"webhook_url is not a valid URL: {err}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FakescopeError(f"webhook_url must be http:// or https://, got {parts.scheme or 'no scheme'}")
    if not parts.hostname:
        raise FakescopeError("webhook_url has no host")
    if parts.username is not None or parts.password is not None:
        raise FakescopeError("webhook_url must not contain credentials (user:password@)")
    if hosts and parts.hostname.lower() not in {h.lower() for h in hosts}:
        raise FakescopeError(f"webhook_url host {parts.hostname} is not allowed (the server's webhook_hosts setting lists them)")
    return url


def check_webhook_url(url: str, hosts: Sequence[str], policy: EgressPolicy) -> str:
    """`validate_webhook_url`, then the egress policy on the resolved host (blocking: a lookup; call it in a thread)."""
    url = validate_webhook_url(url, hosts)
    policy.check_url(url, "webhook_url")
    return url


def deliver(
    url: str,
    payload: dict[str, Any],
    secret: str,
    *,
    policy: EgressPolicy | None = None,
    tries: int = 3,
    timeout: float = 5.0,
    backoff: Sequence[float] = (1, 2, 4),
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """POST the JSON payload, signed; "delivered" on a 2xx answer, else a fixed "failed: ..." after the tries.

    Every connection passes `policy` (default: public addresses only) when it is made, so a host whose
    DNS answer changed since submission cannot reach an internal address; redirects are not followed.
    """
    try:
        validate_webhook_url(url)
        body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    except (FakescopeError, TypeError, ValueError):
        return INVALID
    why = UNREACHABLE
    host = urlsplit(url.strip()).hostname
    with pinned_client(policy or EgressPolicy(), timeout) as client:
        for attempt in range(max(1, tries)):
            if attempt:
                sleep(backoff[min(attempt - 1, len(backoff) - 1)] if backoff else 0)
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "fakescope-webhook",
                SIGNATURE_HEADER: sign(secret, timestamp, body),
                TIMESTAMP_HEADER: str(timestamp),
            }
            try:
                response = client.post(url.strip(), content=body, headers=headers)
            except RefusedAddressError as err:
                log.warning("webhook to %s refused: %s", host, one_line(err))
                return REFUSED
            except Exception as err:  # noqa: BLE001 - a webhook must never take its job down
                why = UNREACHABLE
                log.warning("webhook to %s attempt %d failed: %s", host, attempt + 1, type(err).__name__)
                continue
            if response.is_success:
                log.info("webhook to %s delivered (HTTP %d)", host, response.status_code)
                return DELIVERED
            why = f"failed: HTTP {response.status_code}"
            log.warning("webhook to %s attempt %d failed: HTTP %d", host, attempt + 1, response.status_code)
            if response.status_code < 400 or (response.is_client_error and response.status_code not in (408, 425, 429)):
                break
    return why


def one_line(err: BaseException | str) -> str:
    text = " ".join(str(err).split())
    return text[:300]


class WebhookSender:
    """Sends a finished job's webhook in the background and records how delivery went on its row."""

    def __init__(self, sessions: sessionmaker[Session], secret: str, policy: EgressPolicy | None = None) -> None:
        self.sessions = sessions
        self.secret = secret
        self.policy = policy or EgressPolicy()
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="fakescope-webhook")

    def stop(self) -> None:
        """Drop webhooks not sent yet; one being sent finishes on its own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def notify(self, job: Job) -> None:
        """Send the job's webhook, if it asked for one."""
        if not job.webhook_url or self._pool is None:
            return
        payload = {"job_id": job.id, "status": job.status, "result": job.result, "error": job.error}
        try:
            self._pool.submit(self._deliver, job.id, job.webhook_url, payload)
        except RuntimeError:
            log.warning("webhook of job %s not sent: the service is stopping", job.id)

    def _deliver(self, job_id: str, url: str, payload: dict[str, Any]) -> None:
        status = deliver(url, payload, self.secret, policy=self.policy)
        with self.sessions.begin() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(webhook_status=status[:1000])
                .execution_options(synchronize_session=False)
            )
