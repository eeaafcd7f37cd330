"""API keys (on SQLite and PostgreSQL), page session tokens bound to keys, secrets and the caller dependency."""

from __future__ import annotations

import hashlib
import re
import stat
import time
from datetime import timedelta

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fakescope.errors import FakescopeError
from fakescope.serve.auth import (
    EXPIRED_SESSION,
    INVALID_KEY,
    MISSING_KEY,
    SESSION_COOKIE,
    Caller,
    authenticate,
    create_key,
    find_key,
    hash_token,
    list_keys,
    live_key,
    load_or_create_secret,
    new_token,
    owner_dependency,
    revoke_key,
    set_session_cookie,
    sign_session,
    verify_session,
)
from fakescope.serve.db import ApiKey, make_engine, session_factory, upgrade_database, utcnow
from fakescope.serve.settings import ServeSettings


@pytest.fixture
def sessions(db_url):
    upgrade_database(db_url)
    engine = make_engine(db_url)
    yield session_factory(engine)
    engine.dispose()


def test_tokens_are_random_urlsafe_and_stored_only_as_sha256():
    token = new_token()
    assert re.fullmatch(r"fsk_[A-Za-z0-9_-]{43}", token) and token != new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_create_key_returns_the_token_once_and_keeps_only_its_hash(sessions):
    with sessions() as session:
        key, token = create_key(session, "  ci pipeline ")
    with sessions() as session:
        stored = session.get(ApiKey, key.id)
        assert stored.name == "ci pipeline" and stored.prefix == token[:12] and stored.key_hash == hash_token(token)
        assert token not in {stored.id, stored.key_hash, stored.name} and stored.revoked_at is None
        assert authenticate(session, token).id == key.id
    for bad in ["", "   ", "x" * 201]:
        with sessions() as session, pytest.raises(FakescopeError, match="1 to 200 characters"):
            create_key(session, bad)


def test_authenticate_refuses_unknown_malformed_and_revoked_tokens(sessions):
    with sessions() as session:
        key, token = create_key(session, "a")
        assert authenticate(session, new_token()) is None
        assert authenticate(session, token[:-1]) is None
        assert authenticate(session, "not-a-token") is None
        assert authenticate(session, token + "x" * 200) is None
        revoke_key(session, key.id)
    with sessions() as session:
        assert authenticate(session, token) is None


def test_last_used_is_written_at_most_once_a_minute(sessions):
    with sessions() as session:
        key, token = create_key(session, "a")
        assert key.last_used_at is None
        first = authenticate(session, token).last_used_at
        assert first is not None
    with sessions() as session:
        assert authenticate(session, token).last_used_at == first, "a second use within the minute writes nothing"
        session.get(ApiKey, key.id).last_used_at = utcnow() - timedelta(minutes=2)
        session.commit()
    with sessions() as session:
        assert authenticate(session, token).last_used_at >= first


def test_keys_are_listed_found_and_revoked_by_id_prefix_or_token(sessions):
    with sessions() as session:
        (one, one_token), (two, _) = create_key(session, "one"), create_key(session, "two")
        assert [k.name for k in list_keys(session)] == ["one", "two"]
        assert find_key(session, one.id).id == one.id
        assert find_key(session, one.id[:8]).id == one.id
        assert find_key(session, one.prefix).id == one.id
        assert find_key(session, one.prefix[:9]).id == one.id
        assert find_key(session, one_token).id == one.id
        for missing in ["nope", one.id[:5], "fsk_zzzzzzzz", ""]:
            with pytest.raises(FakescopeError):
                find_key(session, missing)
        revoked = revoke_key(session, two.prefix)
        when = revoked.revoked_at
        assert when is not None and revoke_key(session, two.id).revoked_at == when, "revoking twice keeps the first time"
        assert [k.revoked_at is not None for k in list_keys(session)] == [False, True]


def test_an_ambiguous_id_prefix_is_refused(sessions):
    with sessions() as session:
        session.add_all(
            [
                ApiKey(id="abcdef" + "0" * 26, name="x", prefix="fsk_00000000", key_hash="0" * 64),
                ApiKey(id="abcdef" + "1" * 26, name="y", prefix="fsk_11111111", key_hash="1" * 64),
            ]
        )
        session.commit()
        with pytest.raises(FakescopeError, match="matches 2 keys"):
            revoke_key(session, "abcdef")
        assert revoke_key(session, "abcdef0").name == "x"


def test_session_tokens_are_signed_and_expire():
    now = 1_800_000_000
    key_id = "0b5e3c1e1f4b4b439a570d3c2f9a1b11"
    token = sign_session(key_id, "s3cret", ttl_s=60, now=now)
    signed, expiry, mac = token.split(".")
    assert signed == key_id and int(expiry) == now + 60 and len(mac) == 64
    assert verify_session(token, "s3cret", now=now + 59) == key_id
    assert verify_session(token, "s3cret", now=now + 60) is None, "expired"
    assert verify_session(token, "other", now=now) is None, "wrong secret"
    assert verify_session(f"someoneelse.{expiry}.{mac}", "s3cret", now=now) is None, "the key id is signed"
    assert verify_session(f"{key_id}.{int(expiry) + 999}.{mac}", "s3cret", now=now) is None, "expiry is signed"
    for bad in ["", "a.b", "a.b.c.d", f"../x.{expiry}.{mac}", f"{key_id}.-5.{mac}", None]:
        assert verify_session(bad, "s3cret", now=now) is None
    with pytest.raises(FakescopeError):
        sign_session("bad id!", "s3cret")


def test_a_plain_hmac_of_the_payload_is_not_a_session():
    """Sessions carry their own purpose in the MAC: the old anonymous cookies (and any other signature) do not pass."""
    import hmac as hmac_module

    payload = f"{'a' * 32}.{2_000_000_000}"
    plain = hmac_module.new(b"s3cret", payload.encode(), hashlib.sha256).hexdigest()
    assert verify_session(f"{payload}.{plain}", "s3cret", now=1_800_000_000) is None


def test_live_key_is_none_once_revoked(sessions):
    with sessions() as session:
        key, _ = create_key(session, "page")
        assert live_key(session, key.id).id == key.id
        assert live_key(session, "f" * 32) is None
        revoke_key(session, key.id)
        assert live_key(session, key.id) is None


def test_admin_keys_are_marked(sessions):
    with sessions() as session:
        plain, plain_token = create_key(session, "user")
        admin, admin_token = create_key(session, "ops", admin=True)
        assert not authenticate(session, plain_token).admin and authenticate(session, admin_token).admin
        assert Caller.of_key(admin) == Caller(f"key:{admin.id}", admin=True, key_id=admin.id, key_name="ops")
        assert Caller.of_key(plain).admin is False


def test_secret_file_is_private_created_once_and_tightened(tmp_path):
    path = tmp_path / "sub" / "session_secret"
    secret = load_or_create_secret(path)
    assert len(secret) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    path.chmod(0o644)
    assert load_or_create_secret(path) == secret and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("\n")
    with pytest.raises(FakescopeError, match="no usable secret"):
        load_or_create_secret(path)


@pytest.fixture
def whoami_client():
    """Builds minimal apps using the dependency exactly as the service's routers do."""
    engines = []

    def build(settings: ServeSettings) -> TestClient:
        upgrade_database(settings.resolved_db_url())
        engines.append(make_engine(settings.resolved_db_url()))
        return whoami_app(settings, session_factory(engines[-1]))

    yield build
    for engine in engines:
        engine.dispose()


def whoami_app(settings: ServeSettings, sessions) -> TestClient:
    require_owner = owner_dependency(settings, sessions)
    app = FastAPI()

    @app.get("/whoami")
    def whoami(caller: Caller = Depends(require_owner)) -> dict[str, str]:
        return {"owner": caller.owner}

    @app.get("/login")
    def login(key_id: str):
        from fastapi.responses import JSONResponse

        response = JSONResponse({"ok": True})
        set_session_cookie(response, key_id, load_or_create_secret(settings.data_dir / "session_secret"))
        return response

    return TestClient(app)


def test_owner_dependency_with_keys_and_page_sessions(db_url, tmp_path, whoami_client):
    settings = ServeSettings(db_url=db_url, data_dir=tmp_path)
    client = whoami_client(settings)
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        key, token = create_key(session, "k")
        revoked, revoked_token = create_key(session, "gone")
        revoke_key(session, revoked.id)
    engine.dispose()

    missing = client.get("/whoami")
    assert missing.status_code == 401 and missing.json() == {"detail": MISSING_KEY}
    assert missing.headers["www-authenticate"] == "Bearer"
    assert client.get("/whoami", headers={"Authorization": f"Bearer {token}"}).json() == {"owner": f"key:{key.id}"}
    assert client.get("/whoami", headers={"X-API-Key": token}).json() == {"owner": f"key:{key.id}"}
    for headers in [{"Authorization": f"Bearer {revoked_token}"}, {"X-API-Key": new_token()}, {"X-API-Key": "garbage"}]:
        res = client.get("/whoami", headers=headers)
        assert res.status_code == 401 and res.json() == {"detail": INVALID_KEY}
    assert client.get("/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"}).json() == {"detail": MISSING_KEY}

    login = client.get("/login", params={"key_id": key.id})
    cookie = login.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/whoami").json() == {"owner": f"key:{key.id}"}, "a page session is its key"
    client.cookies.clear()
    client.get("/login", params={"key_id": revoked.id})
    gone = client.get("/whoami")
    assert gone.status_code == 401 and gone.json() == {"detail": EXPIRED_SESSION}, "a revoked key's session is dead"
    client.cookies.clear()
    client.get("/login", params={"key_id": "0" * 32})
    assert client.get("/whoami").status_code == 401, "a session for no key at all"
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, sign_session(key.id, "not-the-secret"))
    forged = client.get("/whoami")
    assert forged.status_code == 401 and forged.json() == {"detail": EXPIRED_SESSION}
    assert client.get("/whoami", headers={"X-API-Key": token}).json() == {"owner": f"key:{key.id}"}, "a key wins over a cookie"


def test_owner_dependency_without_auth_uses_a_validated_client_header(sqlite_url, tmp_path, whoami_client):
    client = whoami_client(ServeSettings(db_url=sqlite_url, data_dir=tmp_path, no_auth=True))
    assert client.get("/whoami").json() == {"owner": "local:anonymous"}
    client.cookies.set(SESSION_COOKIE, "stale.123.abc")
    assert client.get("/whoami").json() == {"owner": "local:anonymous"}, "no credential needed: a stale cookie is ignored"
    client.cookies.clear()
    uuid = "0b5e3c1e-1f4b-4b43-9a57-0d3c2f9a1b11"
    assert client.get("/whoami", headers={"X-Fakescope-Client": uuid}).json() == {"owner": f"local:{uuid}"}
    for bad in ["../../etc", "a" * 65, "", "key:someone", "x y"]:
        res = client.get("/whoami", headers={"X-Fakescope-Client": bad})
        assert res.status_code == 400 and "X-Fakescope-Client" in res.json()["detail"]


def test_keys_count_in_no_auth_mode_too(sqlite_url, tmp_path, whoami_client):
    """So an admin key is an admin without auth as well, and a bad key is an error rather than silently anonymous."""
    client = whoami_client(ServeSettings(db_url=sqlite_url, data_dir=tmp_path, no_auth=True))
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        key, token = create_key(session, "k")
    engine.dispose()
    assert client.get("/whoami", headers={"X-API-Key": token}).json() == {"owner": f"key:{key.id}"}
    assert client.get("/whoami", headers={"X-API-Key": new_token()}).status_code == 401


def test_the_session_secret_survives_a_restart(sqlite_url, tmp_path, whoami_client):
    settings = ServeSettings(db_url=sqlite_url, data_dir=tmp_path)
    first = whoami_client(settings)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session:
        key, _ = create_key(session, "k")
    engine.dispose()
    first.get("/login", params={"key_id": key.id})
    cookie = first.cookies[SESSION_COOKIE]
    second = whoami_client(settings)
    second.cookies.set(SESSION_COOKIE, cookie)
    assert second.get("/whoami").json() == {"owner": f"key:{key.id}"}
    assert verify_session(cookie, (tmp_path / "session_secret").read_text().strip(), now=time.time()) == key.id
