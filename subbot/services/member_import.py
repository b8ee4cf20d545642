"""Import an existing group's members: they get access (lifetime by default) and are never messaged.

Formats are recognised by content: a Telegram Desktop chat export (``result.json``), a JSON list of
people (also ``{"members": [...]}`` and ``{"contacts": {"list": [...]}}``), a CSV with a ``user_id`` or
``id`` column, or a plain list of ids. Bad rows are reported with their line and skipped. Rows are applied
in batches, one transaction each, and every row is idempotent: re-running the same file after a crash or
Ctrl+C continues where it stopped (rows already imported count as "already has access").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.plans import Plan
from subbot.services.context import ServiceContext
from subbot.services.member_import_model import (
    BATCH,
    BOT,
    DUPLICATE,
    LEFT,
    MAX_ID,
    MAX_JSON_BYTES,
    MISSING,
    NOT_NUMERIC,
    NOT_POSITIVE,
    SELF,
    SERVICE_IDS,
    TOO_LARGE,
    Candidate,
    ImportFileError,
    ImportOptionError,
    ImportOptions,
    ImportReport,
    Person,
    Problem,
    Source,
    check_id,
    clean_text,
)
from subbot.services.member_import_read import open_source
from subbot.services.members import audit
from subbot.store.models import Membership, PlanChat, Subscription, User
from subbot.store.subscriptions import active_at

# Everything callers imported from here before the module was split keeps being importable from here.
__all__ = [
    "BATCH",
    "BOT",
    "DUPLICATE",
    "LEFT",
    "MAX_ID",
    "MAX_JSON_BYTES",
    "MISSING",
    "NOT_NUMERIC",
    "NOT_POSITIVE",
    "SELF",
    "SERVICE_IDS",
    "TOO_LARGE",
    "Candidate",
    "ImportFileError",
    "ImportOptionError",
    "ImportOptions",
    "ImportReport",
    "Person",
    "Problem",
    "Source",
    "check_id",
    "clean_text",
    "import_members",
    "open_source",
    "resolve",
]


@dataclass
class _BatchStats:
    imported: int = 0
    already: int = 0
    users_created: int = 0
    names_filled: int = 0
    memberships_added: int = 0
    memberships_kept: int = 0


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
