"""Plans managed from the dashboard: create, edit, withdraw from sale and put back; audited.

The database is the source of truth (see ``subbot.store.plans`` for how the plans file merges in at
start-up). Subscriptions store their own end, so a new price or duration only applies to purchases made
after the change; invoices already issued keep their amount. After a change the plans of this process are
reloaded at once; other instances pick it up with :func:`reload_plans`, which the scheduler runs every
``RELOAD_SECONDS``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from subbot.domain.plans import MAX_DESCRIPTION, MAX_TITLE, Plan, PlanError, parse_plan
from subbot.services.context import ServiceContext
from subbot.services.members import audit
from subbot.store import plans as plan_store
from subbot.store.models import PlanChat, Subscription
from subbot.store.subscriptions import active_at

RELOAD_SECONDS = 30.0
_WHOLE = re.compile(r"[0-9]{1,9}")
_CHAT = re.compile(r"-?[0-9]{1,16}")
_PRICE = re.compile(r"[0-9]{1,13}(\.[0-9]{1,3})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class PlanEditError(Exception):
    """Why a plan cannot be saved or changed, worded for the operator."""


@dataclass(frozen=True)
class PlanSummary:
    plan: Plan
    current_members: int  # subscriptions of the plan giving access now


@dataclass(frozen=True)
class Saved:
    plan: Plan
    changed: list[str]  # field names, as in ``subbot.store.plans.fields``
    added_chats: list[int]
    removed_chats: list[int]
    current_members: int


def _whole(values: Mapping[str, str], name: str, label: str) -> int | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    if not _WHOLE.fullmatch(text):
        raise PlanEditError(f"{label} must be a whole number.")
    return int(text)


def parse_form(values: Mapping[str, str], code: str) -> Plan:
    """A plan from the dashboard's form fields (all text); PlanEditError says what to fix."""
    title = " ".join(values.get("title", "").split())
    if not 1 <= len(title) <= MAX_TITLE:
        raise PlanEditError(f"The title must be 1 to {MAX_TITLE} characters.")
    description = values.get("description", "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise PlanEditError(f"The description must be at most {MAX_DESCRIPTION} characters.")
    lifetime = values.get("lifetime") == "yes"
    days = None if lifetime else _whole(values, "duration_days", "Duration (days)")
    if days is None and not lifetime:
        raise PlanEditError("Give the duration in days, or tick “Lifetime”.")
    price = values.get("card_price", "").strip()
    if price and not _PRICE.fullmatch(price):
        raise PlanEditError("The card price must be an amount such as 9.99 (a dot before the decimals).")
    currency = values.get("card_currency", "").strip().upper() or "USD"
    if not _CURRENCY.fullmatch(currency):
        raise PlanEditError("The currency must be a three-letter ISO code such as USD or EUR.")
    chats: list[int] = []
    for part in values.get("chat_ids", "").replace(",", " ").split():
        if not _CHAT.fullmatch(part):
            raise PlanEditError(f"{part[:24]!r} is not a chat id (chat ids look like -1001234567890).")
        chats.append(int(part))
    if not chats:
        raise PlanEditError("A plan must open at least one chat.")
    raw: dict[str, Any] = {
        "code": code.strip(), "title": title, "description": description, "duration_days": days,
        "stars": _whole(values, "stars", "Stars"), "card_price": price or None,
        "card_currency": currency,
        "chat_ids": chats, "active": values.get("active", "yes") == "yes",
    }  # fmt: skip
    try:
        return parse_plan(raw)
    except PlanError as exc:
        raise PlanEditError(_sentence(str(exc).removeprefix(f"plan {raw['code']}: "))) from None


def _sentence(text: str) -> str:
    text = text.replace("duration_days", "the duration").replace("card_price", "the card price")
    text = text.replace("chat_ids", "the chats")
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


async def _current_members(session: AsyncSession, code: str, now: datetime) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Subscription).where(Subscription.plan_code == code, active_at(now))
    )
    return int(count or 0)


async def summaries(ctx: ServiceContext) -> list[PlanSummary]:
    """Every plan as the database has it (this process may not have reloaded yet), with its members now."""
    now = ctx.clock.now()
    async with ctx.db.sessions() as session:
        plans = await plan_store.load(session, ctx.plans.values())
        counts = dict(
            (
                await session.execute(
                    select(Subscription.plan_code, func.count())
                    .where(active_at(now))
                    .group_by(Subscription.plan_code)
                )
            ).all()
        )
    return [PlanSummary(p, int(counts.get(p.code, 0))) for p in plans]


async def get(ctx: ServiceContext, code: str) -> PlanSummary | None:
    return next((s for s in await summaries(ctx) if s.plan.code == code), None)


async def reload_plans(ctx: ServiceContext, edited: Plan | None = None) -> None:
    """This process's plans (``ctx.plans``) from the database; ``edited`` lends its order of chats."""
    prefer = {**ctx.plans, **({edited.code: edited} if edited else {})}
    async with ctx.db.sessions() as session:
        plans = await plan_store.load(session, prefer.values())
    ctx.plans = {p.code: p for p in plans}  # one assignment: readers see the old or the new dict, whole


async def create(ctx: ServiceContext, plan: Plan, actor: str) -> Plan:
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        if not await plan_store.insert(session, plan, now, ctx.policy.join_request_chats):
            raise PlanEditError(f"A plan with the code {plan.code!r} exists already: edit it instead.")
        audit(session, now, actor, "plan_create", None, plan=plan.code, values=plan_store.fields(plan))
    await reload_plans(ctx, plan)
    return plan


async def update(ctx: ServiceContext, plan: Plan, actor: str) -> Saved:
    """Save the form's fields (not the on-sale switch: see :func:`set_active`); audited with before/after."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        row = await plan_store.locked(session, plan.code)
        if row is None:
            raise PlanEditError(f"There is no plan {plan.code!r}.")
        chats = (await session.scalars(select(PlanChat.chat_id).where(PlanChat.plan_code == plan.code))).all()
        before = plan_store.fields(plan_store.to_plan(row, tuple(sorted(chats))))
        after = plan_store.fields(plan)
        after["active"] = before["active"]
        changed = [k for k in after if (sorted(after[k]) if k == "chat_ids" else after[k]) != before[k]]
        members = await _current_members(session, plan.code, now)
        if changed:
            plan_store.apply(row, {k: after[k] for k in changed}, now)
            await session.flush()
            if "chat_ids" in changed:
                await plan_store.set_chats(session, plan.code, plan.chat_ids, ctx.policy.join_request_chats)
            audit(session, now, actor, "plan_update", None, plan=plan.code,
                  before={k: before[k] for k in changed}, after={k: after[k] for k in changed})  # fmt: skip
    await reload_plans(ctx, plan)
    return Saved(
        ctx.plans[plan.code], changed, sorted(set(plan.chat_ids) - set(chats)),
        sorted(set(chats) - set(plan.chat_ids)), members,
    )  # fmt: skip


async def set_active(ctx: ServiceContext, code: str, active: bool, actor: str) -> Plan:
    """Put a plan on sale or withdraw it; current subscriptions of it are untouched either way."""
    now = ctx.clock.now()
    async with ctx.transaction() as session:
        row = await plan_store.locked(session, code)
        if row is None:
            raise PlanEditError(f"There is no plan {code!r}.")
        if row.active == active:
            raise PlanEditError(f"The plan {code!r} is already {'on sale' if active else 'withdrawn'}.")
        row.active, row.updated_at = active, now
        audit(session, now, actor, "plan_activate" if active else "plan_deactivate", None, plan=code)
    await reload_plans(ctx)
    return ctx.plans[code]
