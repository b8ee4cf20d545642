"""What members read. Plain text (no parse mode), so names with odd characters cannot break a message."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from subbot.domain.plans import Plan

HELP = (
    "How it works:\n"
    "1. /plans: choose a plan and pay with Telegram Stars.\n"
    "2. You receive a personal invite link to the private group (it works once).\n"
    "3. /status shows how long your access lasts. You are reminded before it ends.\n\n"
    "Commands: /start, /plans, /status, /help"
)


def welcome(first_name: str) -> str:
    name = first_name.strip() or "there"
    return f"Welcome, {name}! This bot sells access to our private group.\n\nChoose a plan:"


def plan_label(plan: Plan) -> str:
    length = "lifetime" if plan.duration_days is None else f"{plan.duration_days} days"
    price = (
        f"{plan.stars} ⭐" if plan.stars is not None else plan.card_price.format() if plan.card_price else ""
    )
    return f"{plan.title} · {length} · {price}"


def plans_keyboard(plans: Iterable[Plan]) -> InlineKeyboardMarkup:
    """A button per active plan; built once per set of plans (a frozen object, shared by every reply)."""
    return _keyboard(tuple(p for p in plans if p.active))


@functools.lru_cache(maxsize=8)  # plans change only when an operator edits them
def _keyboard(plans: tuple[Plan, ...]) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text=plan_label(p), callback_data=f"plan:{p.code}")] for p in plans]
    return InlineKeyboardMarkup(inline_keyboard=rows)
