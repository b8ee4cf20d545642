"""What an admin types: member ids and @usernames, day counts, command usage, and the refusals for bad input.

Also used by ``subbot members`` (the CLI), through the re-exports in :mod:`subbot.bot.admin`.
"""

from __future__ import annotations

import re

from subbot.services import members
from subbot.services.context import ServiceContext
from subbot.store.models import User

MAX_DAYS = 3650
MAX_USER_ID = 2**63 - 1  # BIGINT; Telegram user ids are far below this
_ID = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() accepts "²" and other oddities
_USERNAME = re.compile(r"@?([A-Za-z0-9_]{1,64})")
_DAYS = re.compile(r"[0-9]{1,9}")

USAGE = {
    "user": "/user <id|@username>",
    "grant": "/grant <id|@username> <days> [plan]",
    "extend": "/extend <id|@username> <days>",
    "whitelist": "/whitelist <id|@username>",
    "unwhitelist": "/unwhitelist <id|@username>",
    "revoke": "/revoke <id|@username> [reason]",
    "remove": "/remove <id|@username> [chat id]",
    "resend": "/resend <id|@username>",
}


class Refusal(Exception):
    """Bad input from the admin, worded for them."""


def clean_member_query(raw: str) -> str:
    """A numeric user id or an @username, normalised; :class:`Refusal` for anything else.

    Guards the lookup against what ``users.find`` cannot take: Unicode digits, ids beyond BIGINT,
    look-alike letters and control characters.
    """
    text = raw.strip()
    if _ID.fullmatch(text):
        if len(text) > 19 or not 1 <= int(text) <= MAX_USER_ID:
            raise Refusal("A user id is a positive number (as Telegram shows it), at most 19 digits.")
        return str(int(text))
    match = _USERNAME.fullmatch(text)
    if match is None:
        raise Refusal("Give a numeric user id or an @username (Latin letters, digits and _ only).")
    return "@" + match.group(1)


def parse_days(raw: str) -> int:
    text = raw.strip()
    if not _DAYS.fullmatch(text) or not 1 <= int(text) <= MAX_DAYS:
        raise Refusal(f"Days must be a whole number from 1 to {MAX_DAYS}.")
    return int(text)


async def lookup(ctx: ServiceContext, raw: str) -> User:
    query = clean_member_query(raw)
    user = await members.find(ctx, query)
    if user is None:
        raise Refusal(f"No member {query}. They must have written to the bot (or been imported).")
    return user


def display_name(user: User) -> str:
    name = " ".join(p for p in (user.first_name, user.last_name) if p).strip() or "(no name)"
    return f"{name} (@{user.username}, {user.id})" if user.username else f"{name} ({user.id})"
