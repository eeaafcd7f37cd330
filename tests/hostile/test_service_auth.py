"""Attacks on who may use the service, through the real app (no worker processes: nothing here is analysed).

The web page's cookie once opened the whole API with keys required; every new cookie, key or client
id got a fresh rate-limit budget; /v1/stats showed every user's usage to anyone; one beacon of a
day on the page set the median time on page. Each test here reproduces one of those.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fakescope.serve import ServeSettings, create_app
from fakescope.serve.auth import SESSION_COOKIE, create_key, revoke_key
from fakescope.serve.db import upgrade_database
from fakescope.serve.stats import MAX_PAGE_SECONDS, record_analysis, record_page_event

pytestmark = pytest.mark.timeout(60)

NOT_MEDIA = ("notes.txt", b"not a picture, a video or a recording\n" * 20, "text/plain")


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """A TestClient on the real app, its database migrated, without the lifespan (so no model-loading workers)."""
    clients: list[TestClient] = []

    def build(client_address: str = "testclient", **overrides: Any) -> TestClient:
        values: dict[str, Any] = {"data_dir": tmp_path / f"data{len(clients)}", "rate_limit_per_minute": 1000}
        settings = ServeSettings(**(values | overrides))
        app = create_app(settings)
        upgrade_database(settings.resolved_db_url())
        client = TestClient(app, client=(client_address, 50000))
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.app.state.service.engine.dispose()


def new_key(client: TestClient, name: str, *, admin: bool = False) -> tuple[str, dict[str, str]]:
    with client.app.state.service.sessions() as session:
        key, token = create_key(session, name, admin=admin)
    return key.id, {"Authorization": f"Bearer {token}"}


def test_the_page_grants_nothing_when_keys_are_required(make_client):
    """Was: GET / → session cookie → POST /v1/detect, /v1/jobs, /v1/stats, webhooks all allowed without a key."""
    client = make_client()
    page = client.get("/")
    assert page.status_code == 200 and "set-cookie" not in page.headers
    calls = [
        client.post("/v1/detect", files={"file": NOT_MEDIA}),
        client.post("/v1/jobs", files={"file": NOT_MEDIA}, data={"webhook_url": "http://127.0.0.1:9/hook"}),
        client.get("/v1/jobs"),
        client.get("/v1/stats"),
        client.get("/v1/models"),
        client.post("/v1/beacon", json={"event": "page_view"}),
        client.get("/v1/session"),
    ]
    assert [r.status_code for r in calls] == [401] * len(calls), [r.text for r in calls]


def test_an_anonymous_page_cookie_of_the_old_kind_is_refused(make_client, tmp_path):
    """A cookie minted by the old GET / (client id signed with the same secret) must not pass as a session."""
    client = make_client()
    secret = client.app.state.service.session_secret
    payload = f"0b5e3c1e-1f4b-4b43-9a57-0d3c2f9a1b11.{int(time.time()) + 3600}"
    old = f"{payload}.{hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()}"
    client.cookies.set(SESSION_COOKIE, old)
    response = client.post("/v1/detect", files={"file": NOT_MEDIA})
    assert response.status_code == 401 and "sign in" in response.json()["detail"]


def test_a_page_session_is_its_key_shares_its_budget_and_dies_with_it(make_client):
    client = make_client(rate_limit_per_minute=8)
    key_id, key = new_key(client, "alice")
    assert client.post("/v1/session").status_code == 401, "no key, no session"
    assert client.post("/v1/session", headers={"Authorization": "Bearer fsk_" + "x" * 43}).status_code == 401
    assert SESSION_COOKIE not in client.cookies

    signed_in = client.post("/v1/session", headers=key)  # 1
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json() == {"owner": f"key:{key_id}", "auth": "key", "key_name": "alice", "admin": False}
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key_id in client.cookies[SESSION_COOKIE]
    assert client.get("/v1/session").json()["owner"] == f"key:{key_id}", "the cookie alone is the key"  # 2
    assert client.post("/v1/detect", files={"file": NOT_MEDIA}).status_code == 415, "past auth, to the content check"  # 3

    for _ in range(5):  # 4..8: the key's budget, spent through the key and the cookie together
        assert client.get("/v1/jobs", headers=key).status_code == 200
    limited = client.get("/v1/jobs")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1, "a cookie gets no budget of its own"

    with client.app.state.service.sessions() as session:
        revoke_key(session, key_id)
    gone = client.get("/v1/session")
    assert gone.status_code == 401 and "sign in" in gone.json()["detail"], "revoking the key ends its page sessions"

    signed_out = client.delete("/v1/session")
    assert signed_out.status_code == 204 and SESSION_COOKIE not in client.cookies


def test_without_keys_the_page_needs_no_sign_in(make_client):
    client = make_client(no_auth=True)
    me = client.get("/v1/session", headers={"X-Fakescope-Client": "page-1"})
    assert me.json() == {"owner": "local:page-1", "auth": "none", "key_name": None, "admin": False}
    assert client.post("/v1/session").status_code == 401, "signing in still takes a key"


@pytest.mark.parametrize("no_auth", [False, True])
def test_fresh_identities_do_not_reset_an_address_budget(make_client, no_auth):
    """Was: every new cookie (or key, or X-Fakescope-Client) started a full bucket, so the limit never bit."""
    client = make_client(rate_limit_per_minute=3, rate_limit_per_address_per_minute=5, no_auth=no_auth)
    statuses = []
    for i in range(12):
        headers = {"X-Fakescope-Client": f"client-{i}"} if no_auth else new_key(client, f"k{i}")[1]
        statuses.append(client.get("/v1/jobs", headers=headers).status_code)
    assert statuses == [200] * 5 + [429] * 7
    other = make_client("203.0.113.9", rate_limit_per_minute=3, rate_limit_per_address_per_minute=5, no_auth=True)
    assert other.get("/v1/jobs").status_code == 200, "other addresses keep their own budget"


def test_failed_sign_ins_spend_the_address_budget(make_client):
    client = make_client(rate_limit_per_address_per_minute=4)
    statuses = [client.post("/v1/session", headers={"X-API-Key": f"fsk_guess{i:040d}"}).status_code for i in range(6)]
    assert statuses == [401] * 4 + [429] * 2


def test_forwarded_for_names_a_new_address_only_behind_a_trusted_proxy(make_client):
    spoof = [{"X-Forwarded-For": f"198.51.100.{i}"} for i in range(8)]
    direct = make_client("203.0.113.7", no_auth=True, rate_limit_per_address_per_minute=3)
    assert [direct.get("/v1/jobs", headers=h).status_code for h in spoof] == [200] * 3 + [429] * 5
    proxied = make_client("10.0.0.2", no_auth=True, rate_limit_per_address_per_minute=3, trusted_proxies=["10.0.0.0/8"])
    assert [proxied.get("/v1/jobs", headers=h).status_code for h in spoof] == [200] * 8, "one real client each"
    same = {"X-Forwarded-For": "198.51.100.200"}
    assert [proxied.get("/v1/jobs", headers=same).status_code for _ in range(4)] == [200] * 3 + [429]


def test_stats_show_the_callers_own_usage_and_everyones_only_to_an_admin(make_client):
    """Was: any caller saw every user's uses, users and verdicts."""
    client = make_client()
    alice_id, alice = new_key(client, "alice")
    _, bob = new_key(client, "bob")
    _, admin = new_key(client, "ops", admin=True)
    with client.app.state.service.sessions.begin() as session:
        for verdict in ("manipulated", "authentic", "suspicious"):
            record_analysis(session, user="key:someone-else", job_id=None, verdict=verdict, media_type="video")
        record_analysis(session, user=f"key:{alice_id}", job_id=None, verdict="authentic", media_type="image")
        record_page_event(session, user="key:someone-else", kind="page_time", seconds=600.0)
    mine = client.get("/v1/stats", headers=alice).json()
    assert mine["scope"] == "caller" and mine["uses"] == 1 and mine["unique_users"] == 1
    assert mine["verdict_mix"] == {"authentic": 1} and mine["median_time_on_page_s"] is None
    nothing = client.get("/v1/stats", headers=bob).json()
    assert nothing["uses"] == 0 and nothing["unique_users"] == 0 and nothing["verdict_mix"] == {}
    everyone = client.get("/v1/stats", headers=admin).json()
    assert everyone["scope"] == "all" and everyone["uses"] == 4 and everyone["unique_users"] == 2
    assert everyone["median_time_on_page_s"] == 600.0


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "page_time", "seconds": 86400}',  # the one that set the median
        b'{"event": "page_time", "seconds": ' + str(MAX_PAGE_SECONDS + 1).encode() + b"}",
        b'{"event": "page_time", "seconds": -1}',
        b'{"event": "page_time", "seconds": 1e999}',
        b'{"event": "page_time", "seconds": "NaN"}',
        b'{"event": "page_time", "seconds": 10, "user": "key:someone"}',
        b'{"event": "purchase"}',
        b"[]",
    ],
)
def test_absurd_beacons_are_refused(make_client, body):
    client = make_client(no_auth=True)
    response = client.post("/v1/beacon", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert client.get("/v1/stats").json()["median_time_on_page_s"] is None


def test_beacons_are_rate_limited_per_caller_and_per_address(make_client):
    client = make_client(no_auth=True, beacon_per_minute=3)
    beacon = {"event": "page_time", "seconds": 5}
    same = [client.post("/v1/beacon?client=page-a", json=beacon).status_code for _ in range(4)]
    assert same == [204] * 3 + [429]
    rotating = make_client("203.0.113.8", no_auth=True, beacon_per_minute=3)
    statuses = [rotating.post(f"/v1/beacon?client=page-{i}", json=beacon).status_code for i in range(5)]
    assert statuses == [204] * 3 + [429] * 2, "a new client id per beacon is still one address"
    assert client.get("/v1/stats", headers={"X-Fakescope-Client": "page-a"}).json()["median_time_on_page_s"] == 5.0
