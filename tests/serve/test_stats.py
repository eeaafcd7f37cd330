"""Usage figures from usage_events on both backends, with a fixed `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fakescope.errors import FakescopeError
from fakescope.serve.db import UsageEvent, make_engine, session_factory, upgrade_database
from fakescope.serve.stats import MAX_PAGE_SECONDS, record_analysis, record_page_event, usage_stats

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def at(day: int, hour: int = 9) -> datetime:
    """A time on a day of March 2026."""
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def session(db_url):
    upgrade_database(db_url)
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        yield session
    engine.dispose()


def analysis(session, user: str, when: datetime, verdict: str | None = "authentic", status: str | None = None) -> None:
    record_analysis(session, user=user, job_id=None, verdict=verdict, media_type="video", status=status, at=when)


def test_empty_database_gives_a_full_window_of_zeros(session):
    stats = usage_stats(session, days=30, now=NOW)
    assert len(stats["days"]) == 30
    assert stats["days"][0] == {"date": "2026-02-09", "uses": 0} and stats["days"][-1] == {"date": "2026-03-10", "uses": 0}
    assert stats["uses"] == 0 and stats["unique_users"] == 0
    assert stats["returning_share"] is None and stats["median_time_on_page_s"] is None and stats["verdict_mix"] == {}


def test_uses_users_conversion_time_on_page_and_verdicts(session):
    analysis(session, "key:old", datetime(2026, 2, 1, tzinfo=UTC))  # first use long before the window
    analysis(session, "key:old", at(5), "manipulated")
    analysis(session, "session:b", at(5, 10))  # new, comes back: returning
    analysis(session, "session:b", at(8), "suspicious")
    analysis(session, "session:c", at(9))  # new, once
    analysis(session, "local:e", at(10, 8), None, "not_applicable")  # new, twice (no verdicts)
    analysis(session, "local:e", at(10, 9), None, "error")
    analysis(session, "local:e", at(10, 10), None, None)
    analysis(session, "key:later", at(11))  # after `now`: not counted anywhere
    for seconds, when in [(10.0, at(6)), (40.0, at(7)), (20.0, at(9)), (1000.0, datetime(2026, 2, 1, tzinfo=UTC))]:
        record_page_event(session, user="session:b", kind="page_time", seconds=seconds, at=when)
    record_page_event(session, user="session:b", kind="page_view", at=at(9))
    session.commit()

    stats = usage_stats(session, days=7, now=NOW)
    assert [d["date"] for d in stats["days"]] == [f"2026-03-{d:02d}" for d in range(4, 11)]
    assert [d["uses"] for d in stats["days"]] == [0, 2, 0, 0, 1, 1, 3]
    assert stats["uses"] == 7 and stats["unique_users"] == 4
    assert stats["returning_share"] == pytest.approx(2 / 3), "b and e came back, c did not; old started before"
    assert stats["median_time_on_page_s"] == 20.0
    assert stats["verdict_mix"] == {"authentic": 2, "manipulated": 1, "suspicious": 1, "not_applicable": 1, "error": 2}


def test_a_user_sees_only_their_own_figures(session):
    analysis(session, "key:me", at(8), "manipulated")
    analysis(session, "key:me", at(9))
    analysis(session, "key:other", at(9), "suspicious")
    analysis(session, "key:other", datetime(2026, 2, 1, tzinfo=UTC))
    record_page_event(session, user="key:me", kind="page_time", seconds=30.0, at=at(9))
    record_page_event(session, user="key:other", kind="page_time", seconds=900.0, at=at(9))
    session.commit()
    mine = usage_stats(session, days=7, now=NOW, user="key:me")
    assert mine["uses"] == 2 and mine["unique_users"] == 1 and mine["returning_share"] == 1.0
    assert mine["median_time_on_page_s"] == 30.0 and mine["verdict_mix"] == {"manipulated": 1, "authentic": 1}
    assert usage_stats(session, days=7, now=NOW, user="key:nobody")["uses"] == 0
    everyone = usage_stats(session, days=7, now=NOW)
    assert everyone["uses"] == 3 and everyone["unique_users"] == 2 and everyone["median_time_on_page_s"] == 465.0
    assert everyone["returning_share"] == 1.0, "other's first use was before the window: only me is new"


def test_days_are_utc_calendar_days_and_the_window_includes_its_first_midnight(session):
    analysis(session, "a", datetime(2026, 3, 4, 0, 0, 0, tzinfo=UTC))
    analysis(session, "b", datetime(2026, 3, 3, 23, 59, 59, tzinfo=UTC))
    analysis(session, "c", datetime(2026, 3, 5, 1, 30, tzinfo=timezone(timedelta(hours=2))))  # = 03-04 23:30 UTC
    session.commit()
    stats = usage_stats(session, days=7, now=NOW)
    assert stats["days"][0] == {"date": "2026-03-04", "uses": 2}
    assert stats["uses"] == 2 and stats["unique_users"] == 2
    assert stats["returning_share"] == 0.0


def test_a_user_counts_as_new_only_by_their_first_use_ever(session):
    analysis(session, "a", datetime(2026, 3, 1, tzinfo=UTC))
    analysis(session, "a", at(9))
    session.commit()
    assert usage_stats(session, days=3, now=NOW)["returning_share"] is None
    assert usage_stats(session, days=10, now=NOW)["returning_share"] == 1.0


def test_record_helpers_add_rows_without_committing(session):
    record_analysis(session, user="key:k", job_id="j" * 32, verdict="authentic", media_type="image")
    event = record_page_event(session, user="key:k", kind="page_view", seconds=99.0)
    assert event.seconds is None, "a page view has no duration"
    session.rollback()
    assert session.query(UsageEvent).count() == 0


@pytest.mark.parametrize(
    ("kind", "seconds", "message"),
    [
        ("click", 1.0, "event must be one of"),
        ("page_time", None, "seconds must be between"),
        ("page_time", -1.0, "seconds must be between"),
        ("page_time", float("nan"), "seconds must be between"),
        ("page_time", float("inf"), "seconds must be between"),
        ("page_time", MAX_PAGE_SECONDS + 0.1, "seconds must be between"),
        ("page_time", 86400.0, "seconds must be between"),
    ],
)
def test_page_beacons_are_validated(sqlite_url, kind, seconds, message):
    upgrade_database(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session, pytest.raises(FakescopeError, match=message):
        record_page_event(session, user="u", kind=kind, seconds=seconds)
    engine.dispose()


@pytest.mark.parametrize("days", [0, -1, 100_000])
def test_window_size_is_bounded(sqlite_url, days):
    upgrade_database(sqlite_url)
    engine = make_engine(sqlite_url)
    with session_factory(engine)() as session, pytest.raises(FakescopeError, match="days must be between"):
        usage_stats(session, days=days, now=NOW)
    engine.dispose()
