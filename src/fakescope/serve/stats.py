"""Usage figures: how much the service is used, by how many people, and whether they come back.

Computed from the usage_events table only (one row per analysis, page view and time-on-page
beacon), never from the jobs table, so deleting a job does not rewrite history. Days are
UTC calendar days; the window ends today and counts `days` days including today. Figures
are one user's own unless the caller may see everyone's (an admin key): usage is private.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select, true
from sqlalchemy.orm import Session

from fakescope.errors import FakescopeError
from fakescope.serve.db import UsageEvent, utcnow

PAGE_KINDS = ("page_view", "page_time")
NO_VERDICT = ("not_applicable", "error")
# A beacon is client input: one visit's time on page above this is refused rather than let it move the median.
MAX_PAGE_SECONDS = 2 * 3600.0
MAX_DAYS = 3660


def record_analysis(
    session: Session,
    *,
    user: str,
    job_id: str | None,
    verdict: str | None,
    media_type: str | None,
    status: str | None = None,
    at: datetime | None = None,
) -> UsageEvent:
    """Add (not commit) one analysis; with no verdict the Result's status ("not_applicable"/"error") is counted."""
    if not verdict:
        verdict = status if status in NO_VERDICT else "error"
    event = UsageEvent(at=at or utcnow(), user=user, kind="analysis", job_id=job_id, verdict=verdict, media_type=media_type)
    session.add(event)
    return event


def record_page_event(
    session: Session, *, user: str, kind: str, seconds: float | None = None, at: datetime | None = None
) -> UsageEvent:
    """Add (not commit) a page beacon; time on page must be finite and within 0..MAX_PAGE_SECONDS."""
    if kind not in PAGE_KINDS:
        raise FakescopeError(f"event must be one of {', '.join(PAGE_KINDS)}, got {kind!r}")
    if kind == "page_time":
        if seconds is None or not math.isfinite(seconds) or not 0 <= seconds <= MAX_PAGE_SECONDS:
            raise FakescopeError(f"seconds must be between 0 and {MAX_PAGE_SECONDS:g} for page_time")
    else:
        seconds = None
    event = UsageEvent(at=at or utcnow(), user=user, kind=kind, seconds=seconds)
    session.add(event)
    return event


def window_start(days: int, now: datetime) -> tuple[date, datetime]:
    """First day of the window and the UTC instant it starts."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return first, datetime.combine(first, time.min, tzinfo=UTC)


def usage_stats(session: Session, *, days: int = 30, now: datetime | None = None, user: str | None = None) -> dict[str, Any]:
    """The contract's Stats: uses per day (zero days included), users, 1st→2nd use conversion, time on page, verdicts.

    With `user`, only that user's events count; None counts everyone's (for admins only).
    """
    if not 1 <= days <= MAX_DAYS:
        raise FakescopeError(f"days must be between 1 and {MAX_DAYS}, got {days}")
    now = (now or utcnow()).astimezone(UTC)
    first, start = window_start(days, now)
    mine = UsageEvent.user == user if user is not None else true()
    in_window = (UsageEvent.at >= start) & (UsageEvent.at <= now) & mine
    analysis = UsageEvent.kind == "analysis"

    per_day = Counter(at.astimezone(UTC).date() for at in session.scalars(select(UsageEvent.at).where(analysis, in_window)))
    day_rows = [
        {"date": (first + timedelta(days=i)).isoformat(), "uses": per_day.get(first + timedelta(days=i), 0)} for i in range(days)
    ]
    unique_users = session.scalar(select(func.count(func.distinct(UsageEvent.user))).where(analysis, in_window)) or 0

    firsts = (
        select(UsageEvent.user, func.min(UsageEvent.at).label("first_at"), func.count().label("n"))
        .where(analysis, UsageEvent.at <= now, mine)
        .group_by(UsageEvent.user)
        .subquery()
    )
    new_users, returning = session.execute(
        select(func.count(), func.coalesce(func.sum(case((firsts.c.n >= 2, 1), else_=0)), 0)).where(firsts.c.first_at >= start)
    ).one()

    page_times = list(
        session.scalars(
            select(UsageEvent.seconds).where(UsageEvent.kind == "page_time", in_window, UsageEvent.seconds.is_not(None))
        )
    )
    verdicts: Counter[str] = Counter()
    by_verdict = select(UsageEvent.verdict, func.count()).where(analysis, in_window).group_by(UsageEvent.verdict)
    for verdict, n in session.execute(by_verdict):
        verdicts[verdict or "error"] += int(n)
    return {
        "days": day_rows,
        "uses": sum(per_day.values()),
        "unique_users": int(unique_users),
        "returning_share": returning / new_users if new_users else None,
        "median_time_on_page_s": float(statistics.median(page_times)) if page_times else None,
        "verdict_mix": dict(verdicts),
    }
