"""Webhook signing and delivery against a real local HTTP receiver (loopback, allowed explicitly)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fakescope.errors import FakescopeError
from fakescope.serve.egress import EgressPolicy
from fakescope.serve.webhook import INVALID, REFUSED, UNREACHABLE, deliver, sign, validate_webhook_url, verify
from tests.serve.conftest import free_port

SECRET = "whsec-test"
# The receivers listen on loopback, which the default policy refuses: the tests allow it as an operator would.
LOCAL = EgressPolicy.from_entries(["127.0.0.1"])


@dataclass
class Receiver:
    """Answers with the queued status codes (then 200) and records every request."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            if state.delay_s:
                time.sleep(state.delay_s)
            status = state.statuses.pop(0) if state.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"job_id":"abc"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"
    assert verify(SECRET, 1700000000, body, f"sha256={expected}")
    assert not verify(SECRET, 1700000001, body, f"sha256={expected}"), "timestamp is signed"
    assert not verify(SECRET, 1700000000, body + b" ", f"sha256={expected}"), "body is signed"
    assert not verify("other", 1700000000, body, f"sha256={expected}")
    assert not verify(SECRET, 1700000000, body, expected), "the sha256= scheme is part of the value"


def test_delivered_payload_is_json_and_verifiable_by_the_receiver(receiver):
    payload = {"job_id": "j1", "status": "done", "result": {"score": 0.9}, "error": None}
    assert deliver(receiver.url, payload, SECRET, policy=LOCAL, sleep=lambda s: None) == "delivered"
    [req] = receiver.requests
    assert req["path"] == "/hook" and req["headers"]["Content-Type"] == "application/json"
    assert json.loads(req["body"]) == payload
    ts = int(req["headers"]["X-Fakescope-Timestamp"])
    assert abs(ts - time.time()) < 3600
    assert verify(SECRET, ts, req["body"], req["headers"]["X-Fakescope-Signature"])


def test_server_errors_are_retried_with_backoff(receiver):
    receiver.statuses = [500, 503]
    slept: list[float] = []
    assert deliver(receiver.url, {"job_id": "j"}, SECRET, policy=LOCAL, sleep=slept.append) == "delivered"
    assert len(receiver.requests) == 3 and slept == [1, 2]


def test_gives_up_after_the_tries_with_a_one_line_reason(receiver):
    receiver.statuses = [500] * 5
    slept: list[float] = []
    assert deliver(receiver.url, {"job_id": "j"}, SECRET, policy=LOCAL, sleep=slept.append) == "failed: HTTP 500"
    assert len(receiver.requests) == 3 and slept == [1, 2]


def test_a_client_error_is_not_retried_but_429_is(receiver):
    receiver.statuses = [404]
    assert deliver(receiver.url, {}, SECRET, policy=LOCAL, sleep=lambda s: None) == "failed: HTTP 404"
    assert len(receiver.requests) == 1
    receiver.statuses = [429]
    assert deliver(receiver.url, {}, SECRET, policy=LOCAL, sleep=lambda s: None) == "delivered"
    assert len(receiver.requests) == 3


def test_unreachable_and_slow_receivers_fail_without_raising(receiver):
    result = deliver(f"http://127.0.0.1:{free_port()}/x", {}, SECRET, policy=LOCAL, tries=2, sleep=lambda s: None)
    assert result == UNREACHABLE
    receiver.delay_s = 1.0
    assert deliver(receiver.url, {}, SECRET, policy=LOCAL, tries=1, timeout=0.2) == UNREACHABLE


def test_closed_open_and_silent_ports_read_the_same(receiver):
    """The status is a fixed phrase, never the error's text: it must not tell a closed port from a listening one."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    rude = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        conn, _ = rude.accept()
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        urls = [
            f"http://127.0.0.1:{free_port()}/",
            f"http://127.0.0.1:{silent.getsockname()[1]}/",
            f"http://127.0.0.1:{rude.getsockname()[1]}/",
        ]
        statuses = {deliver(u, {}, SECRET, policy=LOCAL, tries=1, timeout=0.3) for u in urls}
    finally:
        silent.close()
        rude.close()
    assert statuses == {UNREACHABLE}


def test_a_redirect_is_reported_not_followed(receiver):
    receiver.statuses = [302]
    assert deliver(receiver.url, {}, SECRET, policy=LOCAL, sleep=lambda s: None) == "failed: HTTP 302"
    assert len(receiver.requests) == 1


def test_loopback_is_refused_unless_allowed(receiver):
    assert deliver(receiver.url, {}, SECRET, sleep=lambda s: None) == REFUSED
    assert receiver.requests == []


def test_bad_urls_fail_before_any_request():
    assert deliver("ftp://example.com/x", {}, SECRET) == INVALID
    assert deliver("http://u:p@example.com/", {}, SECRET) == INVALID


@pytest.mark.parametrize("url", ["http://example.com/hook", "https://hooks.example.org:8443/a?b=c", "  https://x.io  "])
def test_valid_webhook_urls(url):
    assert validate_webhook_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "must be http:// or https://"),
        ("javascript:alert(1)", "must be http:// or https://"),
        ("example.com/hook", "must be http:// or https://, got no scheme"),
        ("http:///path", "has no host"),
        ("https://user:pass@example.com/", "must not contain credentials"),
        ("https://token@example.com/", "must not contain credentials"),
        ("https://example.com:notaport/", "not a valid URL"),
        ("https://example.com/a b", "spaces or control characters"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("", "is empty"),
    ],
)
def test_invalid_webhook_urls_say_why(url, message):
    with pytest.raises(FakescopeError, match=message):
        validate_webhook_url(url)


def test_webhook_hosts_setting_limits_where_webhooks_go():
    assert validate_webhook_url("https://hooks.example.org/x", ["hooks.example.org"]) == "https://hooks.example.org/x"
    with pytest.raises(FakescopeError, match="not allowed"):
        validate_webhook_url("http://127.0.0.1:9/x", ["hooks.example.org"])
