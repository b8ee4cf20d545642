"""What the dashboard's read queries share: member status, paging, safe search text, signed money."""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, case, or_

from subbot.domain.clock import Clock, SystemClock
from subbot.domain.money import Money
from subbot.store.models import Subscription

Row = TypeVar("Row")
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000  # far beyond any real listing; keeps OFFSET inside 64 bits
MAX_QUERY_CHARS = 128
_BLANK = frozenset(("Cc", "Zs", "Zl", "Zp"))


class QueryError(ValueError):
    """A filter value the dashboard cannot use, worded for the operator."""


class MemberStatus(StrEnum):
    """A member's standing now; the first that applies wins, in this order.

    lifetime: whitelisted, or a current subscription without an end; active: a current subscription
    with an end; expired: subscriptions, none current; never: no subscription at all ("never paid").
    "Current" is the store's notion: status ``active`` and no end or an end still ahead.
    """

    LIFETIME = "lifetime"
    ACTIVE = "active"
    EXPIRED = "expired"
    NEVER = "never"


def parse_status(value: str | None) -> MemberStatus | None:
    if value is None or value == "":
        return None
    try:
        return MemberStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in MemberStatus)
        raise QueryError(f"unknown member status {value[:32]!r}; use one of: {known}") from None


def now_of(clock: Clock | None) -> datetime:
    return (clock or SystemClock()).now()


def access_end() -> Any:
    """When a subscription's access ended or ends: a revocation ends it at the revoke (its ``updated_at``)."""
    revoked_early = and_(
        Subscription.status == "revoked",
        or_(Subscription.ends_at.is_(None), Subscription.updated_at < Subscription.ends_at),
    )
    return case((revoked_early, Subscription.updated_at), else_=Subscription.ends_at)


@dataclass(frozen=True)
class Paging:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def paging(page: int, per_page: int) -> Paging:
    """Out-of-range values are clamped, not refused: they come straight from URL parameters."""
    return Paging(min(max(int(page), 1), MAX_PAGE), min(max(int(per_page), 1), MAX_PER_PAGE))


def page_count(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))


@dataclass(frozen=True)
class ListPage(Generic[Row]):
    """One page of a listing: its rows and where it stands among all of them."""

    rows: list[Row]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)


def clean_text(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """Search text made safe to send: NFC, no control characters or lone surrogates, spaces collapsed."""
    text = text[: limit * 4]  # bound the work before normalising a huge input
    text = text.encode("utf-8", "ignore").decode("utf-8")  # drops lone surrogates
    text = unicodedata.normalize("NFC", text)
    # Control characters (NUL among them: PostgreSQL refuses it in text) and odd spaces become spaces.
    text = "".join(" " if unicodedata.category(ch) in _BLANK else ch for ch in text)
    return " ".join(text.split())[:limit]


def like_escape(text: str) -> str:
    """Escape LIKE wildcards so ``%`` and ``_`` typed by an operator match themselves (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def format_minor(minor: int, currency: str) -> str:
    """Money.format for a signed amount (net revenue can be negative when refunds outweigh payments)."""
    text = Money(abs(minor), currency).format()
    return f"-{text}" if minor < 0 else text
