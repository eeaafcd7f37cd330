"""SSRF: webhook_url and URL jobs must not reach internal addresses, in any spelling, nor after a DNS change.

No test here sends traffic off this machine: host names go to a stub resolver (the real one is never
asked), the only connections made are to loopback listeners of the test, and a guard fails any test
whose HTTP client would connect anywhere else.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.serve import egress
from fakescope.serve.app import create_app
from fakescope.serve.db import Job, upgrade_database
from fakescope.serve.egress import EgressPolicy, PinnedTransport, RefusedAddressError
from fakescope.serve.settings import ServeSettings
from fakescope.serve.webhook import DELIVERED, REFUSED, deliver

pytestmark = pytest.mark.timeout(60)

PUBLIC = "93.184.215.14"  # a public address the stub hands out; nothing ever connects to it
# Every spelling of an internal address the issue lists, and more of the same families.
REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://[fd00::1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:127.0.0.1]:8000/",
    "http://2852039166/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0x7f.1/",
    "http://localhost:22/",
    "http://LOCALHOST./",
    "http://api.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://printer.local/",
    "http://127.0.0.1:8000/",
    "https://169.254.169.254:443/",
    "http://[::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://100.64.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[fec0::1]/",
    "http://192.0.0.8/",
    "http://internal.example.test/",  # a name whose DNS answer is private
    "http://mixed.example.test/",  # one public and one loopback answer
]
STUB_ANSWERS = {"internal.example.test": ["10.1.2.3"], "mixed.example.test": [PUBLIC, "127.0.0.1"]}


class StubResolver:
    """Stands in for DNS: answers from a table (a list of answer lists is used in turn), records every question."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str] | list[list[str]]] = dict(STUB_ANSWERS)
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        found = self.answers.get(host)
        if found is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if found and isinstance(found[0], list):
            turn = sum(1 for h in self.calls if h == host) - 1
            return list(found[min(turn, len(found) - 1)])  # type: ignore[arg-type]
        return list(found)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def resolver(monkeypatch: pytest.MonkeyPatch) -> StubResolver:
    stub = StubResolver()
    monkeypatch.setattr(egress, "resolve_name", stub)
    return stub


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection the HTTP clients would open to a non-loopback address fails the test instead."""

    def guard(original: Any) -> Any:
        def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            assert ipaddress.ip_address(host).is_loopback, f"a test tried to connect to {host}:{port}"
            return original(self, host, port, *args, **kwargs)

        return connect_tcp

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", guard(httpcore.SyncBackend.connect_tcp))
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", guard(httpcore.AnyIOBackend.connect_tcp))


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 20, 40)).save(out, format="PNG")
    return out.getvalue()


def app_client(data_dir: Path, **overrides: Any) -> TestClient:
    """The real app without its lifespan (no worker processes): routes, auth, storage and database as served."""
    settings = ServeSettings(data_dir=data_dir, no_auth=True, web_page=False, **overrides)
    upgrade_database(settings.resolved_db_url())
    return TestClient(create_app(settings))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that records whether anything connected to it."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


# the policy itself


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_policy_refuses_every_internal_form(url, resolver):
    with pytest.raises(RefusedAddressError) as refused:
        EgressPolicy().check_url(url, "webhook_url")
    message = str(refused.value)
    assert message.startswith("webhook_url: ") and "\n" not in message
    host = urlsplit(url).hostname or ""
    asked_dns = host in resolver.calls
    assert asked_dns == (host in STUB_ANSWERS), "numeric and internal names must be judged without a DNS lookup"


@pytest.mark.parametrize(
    ("host", "reads_as"),
    [("2852039166", "169.254.169.254"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1")],
)
def test_numeric_forms_are_read_as_a_resolver_reads_them(host, reads_as):
    with pytest.raises(RefusedAddressError, match=f"= {reads_as}"):
        EgressPolicy().addresses(host, 80)


def test_public_addresses_pass(resolver):
    resolver.answers["hooks.example.test"] = [PUBLIC, "2606:4700::1111"]
    policy = EgressPolicy()
    assert [str(a) for a in policy.check_url("https://hooks.example.test/x", "webhook_url")] == [PUBLIC, "2606:4700::1111"]
    assert policy.addresses("8.8.8.8", 443) == [ipaddress.ip_address("8.8.8.8")]
    assert policy.addresses("::ffff:8.8.8.8", 443)  # the mapped form of a public address is that address
    assert policy.addresses("64:ff9b::808:808", 443)  # NAT64 of a public address (IPv6-only networks)


def test_userinfo_and_other_schemes_are_refused():
    for url in ["http://user@8.8.8.8/", "http://a:b@8.8.8.8/", "ftp://8.8.8.8/", "file:///etc/passwd", "http:///x"]:
        with pytest.raises(RefusedAddressError):
            EgressPolicy().check_url(url, "url")


def test_the_allow_list_permits_named_hosts_and_networks(resolver):
    resolver.answers["nas.lan"] = ["192.168.1.20"]
    policy = EgressPolicy.from_entries(["10.0.0.0/8", "nas.lan", "[fd00::1]", "127.0.0.1"])
    assert policy.addresses("10.9.8.7", 80) and policy.addresses("::ffff:10.9.8.7", 80)
    assert policy.addresses("NAS.lan.", 80) == [ipaddress.ip_address("192.168.1.20")]
    assert policy.addresses("fd00::1", 80) and policy.addresses("0x7f000001", 80)
    for still_refused in ["127.0.0.2", "192.168.1.20", "169.254.169.254", "fd00::2"]:
        with pytest.raises(RefusedAddressError):
            policy.addresses(still_refused, 80)
    for bad in ["10.0.0.0/33", "fd00::zz"]:
        with pytest.raises(FakescopeError, match="egress_allow: .* is neither an address, a network nor a host name"):
            EgressPolicy.from_entries([bad])


# through the real app


@pytest.fixture(scope="module")
def refused_client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    hosts = sorted({urlsplit(u).hostname or "" for u in REFUSED_URLS})
    return app_client(tmp_path_factory.mktemp("ssrf"), url_hosts=hosts)


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_app_refuses_internal_webhooks_at_submission(refused_client, url):
    response = refused_client.post("/v1/jobs", files={"file": ("a.png", png())}, data={"webhook_url": url})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("webhook_url: ") and "\n" not in detail


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_app_refuses_internal_url_jobs_at_submission(refused_client, url):
    response = refused_client.post("/v1/jobs", data={"url": url})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("url: ") and "\n" not in detail


def test_refused_submissions_leave_no_job_and_no_upload(refused_client):
    response = refused_client.post("/v1/jobs", files={"file": ("a.png", png())}, data={"webhook_url": "http://169.254.169.254/"})
    assert response.status_code == 422
    assert refused_client.get("/v1/jobs").json()["total"] == 0
    blobs = refused_client.app.state.service.blobs
    assert list(blobs.blob_paths()) == []


# at connect time: DNS rebinding


def wait_for_status(client: TestClient, job_id: str) -> str:
    sessions = client.app.state.service.sessions
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessions() as session:
            status = session.get(Job, job_id).webhook_status
        if status:
            return status
        time.sleep(0.05)
    raise AssertionError("no webhook status")


def test_a_webhook_host_rebound_to_loopback_is_refused_at_delivery(tmp_path, resolver, listener):
    """Public at submission, 127.0.0.1 at delivery: delivery must check again, and connect to nothing."""
    resolver.answers["rebind.example.test"] = [[PUBLIC], ["127.0.0.1"]]
    client = app_client(tmp_path)
    hook = f"http://rebind.example.test:{listener.getsockname()[1]}/hook"
    response = client.post("/v1/jobs", files={"file": ("a.png", png())}, data={"webhook_url": hook})
    assert response.status_code == 202, response.text
    runner = client.app.state.service.runner
    with runner.sessions() as session:
        job = session.get(Job, response.json()["id"])
    runner.webhooks.start()
    try:
        runner.webhooks.notify(job)
        assert wait_for_status(client, job.id) == REFUSED
    finally:
        runner.webhooks.stop()
    assert resolver.calls.count("rebind.example.test") == 2, "resolved at submission and again at connect time"
    assert not connected(listener)


def test_a_url_job_host_rebound_to_loopback_is_refused_at_fetch(tmp_path, resolver, listener):
    resolver.answers["files.example.test"] = [[PUBLIC], ["127.0.0.1"]]
    client = app_client(tmp_path, url_hosts=["files.example.test"])
    url = f"http://files.example.test:{listener.getsockname()[1]}/a.png"
    response = client.post("/v1/jobs", data={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("url: files.example.test resolves to a loopback address")
    assert resolver.calls.count("files.example.test") == 2
    assert not connected(listener)
    assert list(client.app.state.service.blobs.blob_paths()) == []


class _Receiver(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.seen.append(dict(self.headers))
        self.send_response(302)
        self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_pinned_connection_keeps_the_host_name_and_follows_no_redirect(resolver):
    """Connects to the checked address (an allowed loopback one here) while the Host header keeps the name."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_port
        resolver.answers["hooks.example.test"] = ["127.0.0.1"]
        policy = EgressPolicy.from_entries(["127.0.0.1"])
        status = deliver(f"http://hooks.example.test:{port}/hook", {"a": 1}, "s", policy=policy, sleep=lambda s: None)
    finally:
        server.shutdown()
        server.server_close()
    assert status == "failed: HTTP 302"
    assert len(_Receiver.seen) == 1 and _Receiver.seen[0]["Host"] == f"hooks.example.test:{port}"
    assert status != DELIVERED


class _TlsProbe(httpcore.NetworkBackend):
    """Records where the pinned backend connects and what TLS is asked to verify; connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []
        self.tls: list[tuple[str | None, ssl.SSLContext]] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        probe = self

        class Stream(httpcore.NetworkStream):
            def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: Any = None) -> Any:
                probe.tls.append((server_hostname, ssl_context))
                raise httpcore.ConnectError("probe: stop before any byte is sent")

            def close(self) -> None:
                return

        self.connects.append((host, port))
        return Stream()


def test_https_is_pinned_to_the_checked_address_with_sni_and_verification_for_the_name(resolver):
    resolver.answers["hooks.example.test"] = [PUBLIC]
    probe = _TlsProbe()
    with httpx.Client(transport=PinnedTransport(EgressPolicy(), inner=probe)) as client, pytest.raises(httpx.ConnectError):
        client.post("https://hooks.example.test/hook", content=b"{}")
    assert probe.connects == [(PUBLIC, 443)]
    [(sni, context)] = probe.tls
    assert sni == "hooks.example.test"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_pinned_transport_refuses_before_connecting(resolver):
    probe = _TlsProbe()
    with httpx.Client(transport=PinnedTransport(EgressPolicy(), inner=probe)) as client:
        for url in ["http://169.254.169.254/", "http://2852039166/", "http://[::ffff:127.0.0.1]/", "http://localhost/"]:
            with pytest.raises(RefusedAddressError):
                client.get(url)
    assert probe.connects == []
