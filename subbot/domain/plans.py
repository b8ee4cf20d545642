"""Plans: what a member can buy. Loaded from a TOML/JSON file, with defaults mirroring the original bot."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from subbot.domain.money import Money, MoneyError

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MAX_TITLE = 64
MAX_DESCRIPTION = 255
MAX_DURATION_DAYS = 36_500  # a hundred years: beyond it, use a lifetime plan
MAX_STARS = 100_000
MAX_CARD_MINOR = 10**12  # far above any real price, well inside the 64-bit column
MAX_CHAT_ID = 10**15  # Telegram chat ids fit in 52 bits ("-100" + 13 digits for supergroups)


class PlanError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    title: str
    duration_days: int | None  # None = lifetime
    stars: int | None
    card_price: Money | None = None
    chat_ids: tuple[int, ...] = field(default=())
    description: str = ""
    active: bool = True

    @property
    def duration(self) -> timedelta | None:
        return None if self.duration_days is None else timedelta(days=self.duration_days)

    def price_in(self, currency: str) -> Money | None:
        if currency.upper() == "XTR":
            return None if self.stars is None else Money(self.stars, "XTR")
        if self.card_price is not None and self.card_price.currency == currency.upper():
            return self.card_price
        return None


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("basic", "Basic", 7, 50, Money(100, "USD"), description="7 days of access"),
    Plan("standard", "Standard", 30, 100, Money(200, "USD"), description="30 days of access"),
    Plan("premium", "Premium", 180, 500, Money(1000, "USD"), description="180 days of access"),
)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_plan(raw: dict[str, Any], default_chats: tuple[int, ...] = ()) -> Plan:
    """A plan from its file entry (or the dashboard's form): every rule a plan must meet, or PlanError."""
    code = str(raw.get("code", "")).strip()
    if not _CODE.match(code):
        raise PlanError(f"plan code {code!r} must be 1-32 lowercase letters, digits, '-' or '_'")
    days = raw.get("duration_days")
    if days is not None and (not _whole(days) or not 1 <= days <= MAX_DURATION_DAYS):
        raise PlanError(
            f"plan {code}: duration_days must be a whole number from 1 to {MAX_DURATION_DAYS}, "
            "or absent (lifetime)"
        )
    stars = raw.get("stars")
    if stars is not None and (not _whole(stars) or not 1 <= stars <= MAX_STARS):
        raise PlanError(f"plan {code}: stars must be an integer from 1 to {MAX_STARS}")
    card: Money | None = None
    if raw.get("card_price") is not None:
        try:
            card = Money.from_major(str(raw["card_price"]), str(raw.get("card_currency", "USD")))
        except MoneyError as exc:
            raise PlanError(f"plan {code}: {exc}") from exc
        if card.minor <= 0:
            raise PlanError(f"plan {code}: card_price must be positive")
        if card.minor > MAX_CARD_MINOR:
            raise PlanError(f"plan {code}: card_price is too large")
    if stars is None and card is None:
        raise PlanError(f"plan {code}: needs a stars price, a card price or both")
    chats = raw.get("chat_ids", list(default_chats))
    if not isinstance(chats, list) or not all(_whole(c) and 0 < abs(c) < MAX_CHAT_ID for c in chats):
        raise PlanError(f"plan {code}: chat_ids must be a list of chat ids")
    if len(set(chats)) != len(chats):
        raise PlanError(f"plan {code}: chat_ids lists a chat twice")
    return Plan(
        code=code,
        title=str(raw.get("title") or code.title())[:MAX_TITLE],
        duration_days=days,
        stars=stars,
        card_price=card,
        chat_ids=tuple(chats),
        description=str(raw.get("description", ""))[:MAX_DESCRIPTION],
        active=bool(raw.get("active", True)),
    )


def load_plans(path: Path | None, default_chats: tuple[int, ...]) -> tuple[Plan, ...]:
    """Plans from a file (``[[plans]]`` tables in TOML, or a JSON list), else the defaults."""
    if path is None:
        return tuple(
            Plan(p.code, p.title, p.duration_days, p.stars, p.card_price, default_chats, p.description)
            for p in DEFAULT_PLANS
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plans file {path}: {exc.strerror}") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text).get("plans")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(f"plans file {path} is not valid: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise PlanError(f"plans file {path} must define a non-empty list of plans")
    plans = tuple(parse_plan(item, default_chats) for item in data if isinstance(item, dict))
    codes = [p.code for p in plans]
    if len(set(codes)) != len(codes) or len(plans) != len(data):
        raise PlanError(f"plans file {path}: every plan must be a table with a unique code")
    return plans
