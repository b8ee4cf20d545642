"""Pure subscription rules: how a purchase extends access."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum


class SubStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def extended_period(
    now: datetime, current_end: datetime | None, has_active: bool, duration: timedelta | None
) -> tuple[datetime, datetime | None]:
    """(starts_at, ends_at) for a purchase: renewal before the end extends from the end.

    ``duration`` None means lifetime (ends_at None).
    """
    if duration is None:
        return now, None
    if has_active and current_end is not None and current_end > now:
        return current_end, current_end + duration
    return now, now + duration


def days_left(now: datetime, ends_at: datetime | None) -> int | None:
    if ends_at is None:
        return None
    remaining = ends_at - now
    if remaining <= timedelta(0):
        return 0
    return remaining.days + (1 if remaining.seconds or remaining.microseconds else 0)


def next_reminder_at(
    ends_at: datetime | None, offsets: tuple[timedelta, ...], now: datetime
) -> datetime | None:
    """The next reminder moment still ahead: the earliest ``ends_at - offset`` after ``now``, else None.

    A reminder point already passed is not scheduled again, so a purchase with two days left gets only
    the one-day reminder, and catching up after downtime sends one reminder, not every missed one.
    """
    if ends_at is None:
        return None
    ahead = [ends_at - offset for offset in offsets if ends_at - offset > now]
    return min(ahead) if ahead else None


def due_offset(ends_at: datetime, offsets: tuple[timedelta, ...], now: datetime) -> timedelta | None:
    """The reminder that is due now: the smallest offset whose moment has passed (None if none has)."""
    passed = [offset for offset in offsets if ends_at - offset <= now]
    return min(passed) if passed else None
