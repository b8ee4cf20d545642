"""What a member import works with: limits, skip reasons, errors, rows and the report, and the checks
every row goes through (its id, its names). Shared by the readers and by ``member_import``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 200 * 1024 * 1024  # JSON is read whole; CSV and plain lists stream, whatever their size
MAX_ID = 2**53  # Telegram user ids fit in 52 bits; anything beyond is not an id
BATCH = 500
SERVICE_IDS = frozenset(
    {
        777000,  # Telegram (service notifications)
        1087968824,  # @GroupAnonymousBot (anonymous admins)
        136817688,  # @Channel_Bot (posts as a channel)
        93372553,  # @BotFather
        1271266957,  # @replies
        609517172,  # @SpamBot
    }
)

# Reasons a row is skipped (the report groups by these).
NOT_NUMERIC = "not a numeric id"
MISSING = "no id"
NOT_POSITIVE = "zero or negative id (a chat, not a person)"
TOO_LARGE = "id too large to be a Telegram user"
BOT = "bot or service account"
DUPLICATE = "duplicate"
SELF = "the bot itself"
LEFT = "left or removed (per the export)"

_DIGITS = re.compile(r"(?:user)?\+?[0-9]+|-[0-9]+", re.ASCII)


class ImportFileError(Exception):
    """The file could not be read at all (missing, unreadable, not a format we know, too big)."""


class ImportOptionError(ValueError):
    """The options do not fit the configuration (unknown plan, chat the plan does not open)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One row as read, before its id is checked."""

    line: int
    raw_id: object
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    line: int
    user_id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    reason: str
    value: str


@dataclass
class Source:
    """A recognised file: its format and a (possibly streaming) iterator of rows."""

    path: Path
    format: str
    rows: Iterator[Candidate | Problem]
    total: int  # for the progress bar: lines (streamed formats) or rows (JSON)
    position: Callable[[], int]  # how far through ``total`` the iterator has got
    records: Callable[[], int]  # rows, items or messages read so far
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportOptions:
    plan_code: str | None = None  # default: the first configured plan
    days: int | None = None  # None = lifetime
    chat_ids: tuple[int, ...] | None = None  # default: every chat the plan opens
    dry_run: bool = False
    batch_size: int = BATCH
    exclude_ids: frozenset[int] = frozenset()  # the bot's own id
    actor: str = "cli:import"
    max_json_bytes: int = MAX_JSON_BYTES


@dataclass
class ImportReport:
    path: str
    format: str
    plan: str
    grant: str
    chats: tuple[int, ...]
    dry_run: bool
    rows_read: int = 0
    people: int = 0  # distinct valid ids
    imported: int = 0  # new subscriptions
    already: int = 0  # had an active subscription of the plan
    users_created: int = 0
    names_filled: int = 0
    memberships_added: int = 0
    memberships_kept: int = 0
    batches: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Problem]] = field(default_factory=dict)
    verified: dict[int, int] = field(default_factory=dict)  # chat -> listed people with access
    with_access: dict[int, int] = field(default_factory=dict)  # chat -> everyone with access
    notes: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    EXAMPLES = 20

    def skip(self, problem: Problem) -> None:
        self.skipped[problem.reason] += 1
        shown = self.examples.setdefault(problem.reason, [])
        if len(shown) < self.EXAMPLES:
            shown.append(problem)

    def details(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "format": self.format,
            "plan": self.plan,
            "grant": self.grant,
            "chats": list(self.chats),
            "rows_read": self.rows_read,
            "people": self.people,
            "imported": self.imported,
            "already": self.already,
            "users_created": self.users_created,
            "memberships_added": self.memberships_added,
            "skipped": dict(self.skipped),
        }


# ------------------------------------------------------------------------------------------ reading
def clean_text(value: object, limit: int) -> str:
    """Names as text, whatever they contain: no NUL (PostgreSQL refuses it), no lone surrogates."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()
    return text[:limit]


def _username(value: object) -> str | None:
    name = clean_text(value, 200).removeprefix("@").strip()
    return name[:64] or None


def check_id(raw: object) -> int | str:
    """The user id, or the reason it is not one."""
    if isinstance(raw, bool) or raw is None:
        return MISSING if raw is None else NOT_NUMERIC
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if not text:
            return MISSING
        if not _DIGITS.fullmatch(text):
            return NOT_NUMERIC
        value = int(text.removeprefix("user"))
    else:
        return NOT_NUMERIC
    if value <= 0:
        return NOT_POSITIVE
    if value > MAX_ID:
        return TOO_LARGE
    if value in SERVICE_IDS:
        return BOT
    return value
