"""Import an existing group's members: they get access (lifetime by default) and are never messaged.

Formats are recognised by content: a Telegram Desktop chat export (``result.json``), a JSON list of
people (also ``{"members": [...]}`` and ``{"contacts": {"list": [...]}}``), a CSV with a ``user_id`` or
``id`` column, or a plain list of ids. Bad rows are reported with their line and skipped. Rows are applied
in batches, one transaction each, and every row is idempotent: re-running the same file after a crash or
Ctrl+C continues where it stopped (rows already imported count as "already has access").
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.plans import Plan
from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store.models import Membership, PlanChat, Subscription, User
from subbot.store.subscriptions import active_at

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
_ID_HEADERS = ("user_id", "userid", "telegram_id", "tg_id", "id")
_HEADER_ALIASES = {
    "username": ("username", "user_name", "handle", "login"),
    "first_name": ("first_name", "firstname", "name", "display_name", "full_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
}
_DELIMITERS = (",", ";", "\t", "|")


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


@dataclass
class _BatchStats:
    imported: int = 0
    already: int = 0
    users_created: int = 0
    names_filled: int = 0
    memberships_added: int = 0
    memberships_kept: int = 0


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


def open_source(path: Path, max_json_bytes: int = MAX_JSON_BYTES) -> Source:
    """Recognise the file by its content; raises ImportFileError when it cannot be read at all."""
    try:
        if not path.is_file():
            raise ImportFileError(f"{path}: no such file")
        size = path.stat().st_size
        with path.open("rb") as raw:
            head = raw.read(64 * 1024)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    encoding = "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        raise ImportFileError(f"{path}: a binary file, not JSON, CSV or a list of ids")
    text = codecs.decode(head, encoding, errors="replace") if head else ""
    text = text.lstrip("\ufeff")
    start = text.lstrip()[:1]
    if start in ("{", "["):
        if size > max_json_bytes:
            raise ImportFileError(
                f"{path}: a {size / 1048576:.0f} MB JSON file; JSON is read whole and the limit is "
                f"{max_json_bytes / 1048576:.0f} MB. Convert it to CSV or a list of ids (those stream)."
            )
        return _json_source(path, encoding)
    if start == "<":
        raise ImportFileError(
            f"{path}: looks like HTML; export the chat from Telegram Desktop as 'Machine-readable JSON'"
        )
    first = _first_meaningful_line(text)
    if first is not None:
        header = _csv_header(first)
        if header is not None:
            return _csv_source(path, encoding, size)
        token = first.split("#", 1)[0].strip()
        if any(d in token for d in _DELIMITERS) and not _DIGITS.fullmatch(token):
            raise ImportFileError(
                f"{path}: not a format we know: a CSV needs a header row with a user_id or id column, "
                "a plain list has one numeric id per line"
            )
    return _plain_source(path, encoding, size)


def _first_meaningful_line(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
    return None


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().strip("\"'").lower())


def _csv_header(line: str) -> tuple[str, dict[str, int]] | None:
    """(delimiter, column index by field) when ``line`` is a header naming an id column."""
    best: tuple[str, dict[str, int]] | None = None
    best_width = 0
    for delimiter in _DELIMITERS:
        cells = [_normal(c) for c in next(csv.reader([line], delimiter=delimiter))]
        id_col = next((cells.index(h) for h in _ID_HEADERS if h in cells), None)
        if id_col is None or len(cells) <= best_width:
            continue
        columns = {"id": id_col}
        for key, aliases in _HEADER_ALIASES.items():
            col = next((cells.index(a) for a in aliases if a in cells), None)
            if col is not None:
                columns[key] = col
        best, best_width = (delimiter, columns), len(cells)
    return best


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines + 1


class _Progress:
    def __init__(self) -> None:
        self.line = 0
        self.records = 0


def _csv_source(path: Path, encoding: str, size: int) -> Source:
    state = _Progress()

    def rows() -> Iterator[Candidate | Problem]:
        with path.open(encoding=encoding, errors="replace", newline="") as stream:
            header = _read_header(stream, state)
            if header is None:
                return
            delimiter, cols = header
            reader = csv.reader(stream, delimiter=delimiter)
            offset = state.line
            while True:
                start = offset + reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    state.line = offset + reader.line_num
                    state.records += 1
                    yield Problem(start, "unreadable CSV row", str(exc)[:80])
                    continue
                state.line = offset + reader.line_num
                if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                    continue
                state.records += 1

                def cell(key: str, row: list[str] = row) -> str | None:
                    i = cols.get(key)
                    return row[i] if i is not None and i < len(row) else None

                yield Candidate(
                    start,
                    cell("id"),
                    clean_text(cell("first_name"), 256),
                    clean_text(cell("last_name"), 256) or None,
                    _username(cell("username")),
                )

    return Source(
        path, "CSV", rows(), _count_lines(path) if size else 0, lambda: state.line, lambda: state.records
    )


def _read_header(stream: TextIO, state: _Progress) -> tuple[str, dict[str, int]] | None:
    while line := stream.readline():
        state.line += 1
        stripped = line.strip().lstrip("\ufeff")
        if stripped and not stripped.startswith("#"):
            return _csv_header(stripped)
    return None


def _plain_source(path: Path, encoding: str, size: int) -> Source:
    state = _Progress()

    def rows() -> Iterator[Candidate | Problem]:
        with path.open(encoding=encoding, errors="replace") as stream:
            for number, line in enumerate(stream, 1):
                state.line = number
                value = line.split("#", 1)[0].strip().lstrip("\ufeff")
                if not value:
                    continue
                state.records += 1
                yield Candidate(number, value)

    return Source(
        path,
        "plain list of ids",
        rows(),
        _count_lines(path) if size else 0,
        lambda: state.line,
        lambda: state.records,
    )


# --------------------------------------------------------------------------------------------- JSON
class _Json:
    """Walks a JSON text decoding one array element at a time, so every row keeps its line number."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.decoder = json.JSONDecoder()
        self._line_pos = 0
        self._line = 1

    def line_at(self, pos: int) -> int:
        if pos >= self._line_pos:
            self._line += self.text.count("\n", self._line_pos, pos)
        else:
            self._line = self.text.count("\n", 0, pos) + 1
        self._line_pos = pos
        return self._line

    def _ws(self) -> None:
        match = self._WS.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def peek(self) -> str:
        self._ws()
        return self.text[self.pos : self.pos + 1]

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"expected {char!r}")
        self.pos += 1

    def _error(self, what: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(what, self.text, self.pos)

    def value(self) -> Any:
        self._ws()
        obj, self.pos = self.decoder.raw_decode(self.text, self.pos)
        return obj

    def array(self) -> Iterator[int]:
        """Yields each element's start; the caller must consume the element (``value`` or a walk)."""
        self._expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            self._ws()
            yield self.pos
            nxt = self.peek()
            self.pos += 1
            if nxt == "]":
                return
            if nxt != ",":
                raise self._error("expected ',' or ']'")

    def object(self) -> Iterator[str]:
        """Yields each key; the caller must consume its value."""
        self._expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self._error("expected a key")
            self._expect(":")
            yield key
            nxt = self.peek()
            self.pos += 1
            if nxt == "}":
                return
            if nxt != ",":
                raise self._error("expected ',' or '}'")


def _json_source(path: Path, encoding: str) -> Source:
    try:
        text = path.read_text(encoding=encoding, errors="replace")
    except (OSError, MemoryError) as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc})") from None
    walker = _Json(text)
    rows: list[Candidate | Problem] = []
    notes: list[str] = []
    records = 0
    fmt = "JSON list"
    try:
        if walker.peek() == "[":
            records = _json_people(walker, rows)
        else:
            found = False
            chat_type = ""
            for key in walker.object():
                if key == "messages":
                    records, people = _export_people(walker, rows, notes)
                    fmt, found = "Telegram Desktop export", True
                    notes.insert(0, f"{records} messages scanned, {people} people found in them")
                elif key in ("members", "users", "participants", "list"):
                    records += _json_people(walker, rows)
                    fmt, found = f'JSON "{key}" list', True
                elif key == "contacts" and walker.peek() == "{":
                    for inner in walker.object():
                        if inner == "list":
                            records += _json_people(walker, rows)
                            fmt, found = "JSON contacts list", True
                        else:
                            walker.value()
                elif key == "type":
                    chat_type = str(walker.value())
                else:
                    walker.value()
            if walker.peek():
                raise walker._error("extra data after the document")
            if not found:
                raise ImportFileError(
                    f"{path}: JSON without 'messages' (a Telegram Desktop chat export), 'members' or "
                    "'contacts'; nothing to import"
                )
            if chat_type and chat_type not in (
                "private_group",
                "private_supergroup",
                "public_supergroup",
                "public_group",
            ):
                notes.append(f"the export is of a {chat_type!r} chat, not a group")
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    done = 0

    def iterate() -> Iterator[Candidate | Problem]:
        nonlocal done
        for row in rows:
            done += 1
            yield row

    return Source(path, fmt, iterate(), len(rows), lambda: done, lambda: records, notes)


def _json_people(walker: _Json, out: list[Candidate | Problem]) -> int:
    count = 0
    for start in walker.array():
        item = walker.value()
        line = walker.line_at(start)
        count += 1
        if isinstance(item, dict):
            raw = item.get("user_id", item.get("id", item.get("userId")))
            first = item.get("first_name", item.get("name", ""))
            username = item.get("username")
            out.append(
                Candidate(
                    line,
                    raw,
                    clean_text(first, 256),
                    clean_text(item.get("last_name"), 256) or None,
                    _username(username),
                )
            )
        elif isinstance(item, int | str):
            out.append(Candidate(line, item))
        else:
            out.append(Problem(line, MISSING, clean_text(json.dumps(item), 60)))
    return count


def _export_people(walker: _Json, out: list[Candidate | Problem], notes: list[str]) -> tuple[int, int]:
    """Distinct people of a chat export, from who wrote (``from_id``) and who acted (``actor_id``).

    Messages are in time order, so the last word on each person wins: a leave (a removal whose actor is
    the member) or a removal by an admin (names only, matched when the name belongs to exactly one known
    person) marks them gone; writing or being invited again brings them back.
    """
    first_line: dict[int, int] = {}
    names: dict[int, str] = {}
    by_name: dict[str, set[int]] = {}
    present: dict[int, bool] = {}
    bad: dict[str, int] = {}
    unresolved: set[str] = set()
    channels = 0
    messages = 0

    def named(member: object, value: bool) -> None:
        name = clean_text(member, 256)
        ids = by_name.get(name, set())
        if len(ids) == 1:
            present[next(iter(ids))] = value
        elif name:
            unresolved.add(name)

    for start in walker.array():
        msg = walker.value()
        messages += 1
        if not isinstance(msg, dict):
            continue
        line = walker.line_at(start)
        for id_key, name_key in (("from_id", "from"), ("actor_id", "actor")):
            raw = msg.get(id_key)
            if not isinstance(raw, str):
                continue
            if not raw.startswith("user"):
                channels += raw.startswith(("channel", "chat"))
                continue
            checked = check_id(raw)
            if isinstance(checked, str):
                bad.setdefault(raw, line)
                continue
            first_line.setdefault(checked, line)
            name = clean_text(msg.get(name_key), 256)
            if name:
                names[checked] = name
                by_name.setdefault(name, set()).add(checked)
            present[checked] = True
            if msg.get("type") != "service":
                continue
            listed = msg.get("members")
            members: list[Any] = listed if isinstance(listed, list) else []
            action = msg.get("action")
            if action == "remove_members":
                for member in members:
                    if name and clean_text(member, 256) == name:
                        present[checked] = False  # left by themselves
                    else:
                        named(member, False)
            elif action == "invite_members":
                for member in members:
                    named(member, True)
    for raw, line in bad.items():
        out.append(Problem(line, str(check_id(raw)), raw))
    for user_id, line in sorted(first_line.items(), key=lambda kv: kv[1]):
        if present.get(user_id, True):
            out.append(Candidate(line, user_id, names.get(user_id, "")))
        else:
            out.append(Problem(line, LEFT, f"{user_id} {names.get(user_id, '')}".strip()))
    unresolved -= set(names.values())
    if channels:
        notes.append(f"{channels} message(s) sent as a channel or chat ignored")
    if unresolved:
        notes.append(
            f"{len(unresolved)} person(s) named in add/remove service messages never wrote, so the export "
            "has no id for them: add them by id (CSV or plain list), or they can join with an invite"
        )
    return messages, len(first_line)


# ------------------------------------------------------------------------------------------ applying
def resolve(ctx: ServiceContext, options: ImportOptions) -> tuple[Plan, tuple[int, ...]]:
    if not ctx.plans:
        raise ImportOptionError("no plans are configured")
    code = options.plan_code or next(iter(ctx.plans))
    plan = ctx.plan(code)
    if plan is None:
        raise ImportOptionError(f"unknown plan {code!r}; plans: {', '.join(ctx.plans)}")
    chats = options.chat_ids or plan.chat_ids
    if not chats:
        raise ImportOptionError(f"plan {code!r} opens no chat; configure GROUP_ID or the plan's chat_ids")
    closed = [c for c in chats if c not in plan.chat_ids]
    if closed:
        raise ImportOptionError(
            f"plan {code!r} does not open chat {closed[0]} (it opens {', '.join(map(str, plan.chat_ids))})"
        )
    if options.days is not None and not 1 <= options.days <= 36500:
        raise ImportOptionError("days must be between 1 and 36500")
    return plan, tuple(dict.fromkeys(chats))


async def _apply_batch(
    session: AsyncSession,
    ctx: ServiceContext,
    people: list[Person],
    plan: Plan,
    chats: tuple[int, ...],
    options: ImportOptions,
    now: datetime,
) -> _BatchStats:
    stats = _BatchStats()
    write = not options.dry_run
    ids = [p.user_id for p in people]
    existing = {u.id: u for u in (await session.scalars(select(User).where(User.id.in_(ids)))).all()}
    covered = set(
        (
            await session.scalars(
                select(Subscription.user_id).where(
                    Subscription.user_id.in_(ids), Subscription.plan_code == plan.code, active_at(now)
                )
            )
        ).all()
    )
    rows = await session.execute(
        select(Membership.user_id, Membership.chat_id).where(
            Membership.user_id.in_(ids), Membership.chat_id.in_(chats)
        )
    )
    joined = {(uid, chat) for uid, chat in rows.all()}
    for p in people:
        user = existing.get(p.user_id)
        if user is None:
            stats.users_created += 1
            if write:  # what users.upsert(..., wrote_to_bot=False) makes, without a round trip per row
                session.add(
                    User(
                        id=p.user_id,
                        first_name=p.first_name,
                        username=p.username,
                        last_name=p.last_name,
                        language_code=None,
                        is_whitelisted=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
        elif _fill_names(user, p, now, write):
            stats.names_filled += 1
    if write:
        await session.flush()  # users before what refers to them
    for p in people:
        if p.user_id in covered:
            stats.already += 1
        else:
            stats.imported += 1
            if write:
                ends_at = None if options.days is None else now + timedelta(days=options.days)
                sub = Subscription(
                    user_id=p.user_id, plan_code=plan.code, starts_at=now, ends_at=ends_at,
                    status="active", source="import", order_id=None, created_at=now, updated_at=now,
                )  # fmt: skip
                ctx.schedule_reminder(sub, now)
                session.add(sub)
        for chat in chats:
            if (p.user_id, chat) in joined:
                stats.memberships_kept += 1
                continue
            stats.memberships_added += 1
            if write:
                session.add(
                    Membership(
                        user_id=p.user_id, chat_id=chat, state="joined", source="import", updated_at=now
                    )
                )
    if write:
        await session.flush()
    return stats


def _fill_names(user: User, p: Person, now: datetime, write: bool) -> bool:
    """Names the export knows and we do not; a name we already have is never overwritten."""
    changes: dict[str, str] = {}
    if not user.first_name and p.first_name:
        changes["first_name"] = p.first_name
    if not user.last_name and p.last_name:
        changes["last_name"] = p.last_name
    if not user.username and p.username:
        changes["username"] = p.username
    if changes and write:
        for key, value in changes.items():
            setattr(user, key, value)
        user.updated_at = now
    return bool(changes)


async def _run_batch(
    ctx: ServiceContext,
    people: list[Person],
    plan: Plan,
    chats: tuple[int, ...],
    options: ImportOptions,
    report: ImportReport,
) -> None:
    if not people:
        return
    for attempt in range(3):
        now = ctx.clock.now()
        try:
            if options.dry_run:
                async with ctx.db.sessions() as session:  # read only: closed without a commit
                    stats = await _apply_batch(session, ctx, people, plan, chats, options, now)
            else:
                async with ctx.transaction() as session:
                    stats = await _apply_batch(session, ctx, people, plan, chats, options, now)
            break
        except IntegrityError:
            # Someone wrote to the bot (or joined) between our read and our insert: read again.
            if attempt == 2:
                raise
    report.batches += 1
    report.imported += stats.imported
    report.already += stats.already
    report.users_created += stats.users_created
    report.names_filled += stats.names_filled
    report.memberships_added += stats.memberships_added
    report.memberships_kept += stats.memberships_kept


def _access_count(chat_id: int, now: datetime, ids: list[int] | None) -> Any:
    paid = (
        select(Subscription.user_id)
        .join(PlanChat, PlanChat.plan_code == Subscription.plan_code)
        .where(PlanChat.chat_id == chat_id, active_at(now))
    )
    stmt = select(func.count()).select_from(User).where(or_(User.is_whitelisted, User.id.in_(paid)))
    return stmt.where(User.id.in_(ids)) if ids is not None else stmt


async def _verify(
    ctx: ServiceContext, ids: list[int], chats: tuple[int, ...], report: ImportReport, chunk: int
) -> None:
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        for chat in chats:
            total = 0
            for i in range(0, len(ids), chunk):
                total += int(await session.scalar(_access_count(chat, now, ids[i : i + chunk])) or 0)
            report.verified[chat] = total
            report.with_access[chat] = int(await session.scalar(_access_count(chat, now, None)) or 0)


def _guarded(rows: Iterator[Candidate | Problem], path: Path) -> Iterator[Candidate | Problem]:
    """Reading errors after the start (a disk or network file system failing) end the run clearly."""
    while True:
        try:
            item = next(rows)
        except StopIteration:
            return
        except OSError as exc:
            raise ImportFileError(f"{path}: reading stopped ({exc}); run again to continue") from None
        yield item


async def import_members(
    ctx: ServiceContext,
    path: Path | str,
    options: ImportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Read ``path`` and give everyone in it access; nothing is messaged, removed or queued."""
    options = options or ImportOptions()
    started = time.perf_counter()
    plan, chats = resolve(ctx, options)
    source = open_source(Path(path), options.max_json_bytes)
    report = ImportReport(
        path=os.fspath(path),
        format=source.format,
        plan=plan.code,
        grant="lifetime" if options.days is None else f"days:{options.days}",
        chats=chats,
        dry_run=options.dry_run,
        notes=list(source.notes),
    )
    seen: dict[int, int] = {}
    batch: list[Person] = []
    for item in _guarded(source.rows, source.path):
        if isinstance(item, Problem):
            report.skip(item)
            continue
        checked = check_id(item.raw_id)
        if isinstance(checked, str):
            report.skip(Problem(item.line, checked, clean_text(item.raw_id, 40)))
            continue
        if checked in options.exclude_ids:
            report.skip(Problem(item.line, SELF, str(checked)))
            continue
        if item.username and item.username.lower().endswith("bot"):
            report.skip(Problem(item.line, BOT, f"{checked} @{item.username}"))
            continue
        if checked in seen:
            report.skip(Problem(item.line, DUPLICATE, f"{checked} (first on line {seen[checked]})"))
            continue
        seen[checked] = item.line
        batch.append(Person(item.line, checked, item.first_name, item.last_name, item.username))
        if len(batch) >= options.batch_size:
            await _run_batch(ctx, batch, plan, chats, options, report)
            batch = []
            if progress is not None:
                progress(source.position(), source.total)
    await _run_batch(ctx, batch, plan, chats, options, report)
    if progress is not None:
        progress(source.total, source.total)
    report.rows_read = source.records()
    report.people = len(seen)
    if not options.dry_run:
        await _verify(ctx, list(seen), chats, report, options.batch_size)
        now = ctx.clock.now()
        async with ctx.transaction() as session:
            audit(session, now, options.actor, "import_members", None, **report.details())
    report.elapsed = time.perf_counter() - started
    return report
