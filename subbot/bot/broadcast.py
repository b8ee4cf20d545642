"""/broadcast for admins: segment → text → preview with the recipient count → confirm.

The draft of each admin lives in this process's memory for ``DRAFT_TTL`` seconds (one poller handles every
update, so that is enough; in webhook mode behind several instances a draft may be lost and the admin is
asked to start again). Nothing is stored until Confirm, which goes through :mod:`subbot.services.broadcasts`
(audited; delivery through the outbox). Non-admins fall through, as with the other admin commands.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, TelegramObject

from subbot.bot.filters import data_is, data_prefix, private_chat
from subbot.services import broadcasts
from subbot.services.broadcasts import BroadcastError
from subbot.services.context import ServiceContext
from subbot.telegram.gateway import TelegramGateway

DRAFT_TTL = 30 * 60.0
EXPIRING_DAYS = 7
_ID = re.compile(r"[0-9]{1,18}")
SEGMENT_BUTTONS = (
    ("Active", "active"),
    (f"Expiring in {EXPIRING_DAYS} days", "expiring"),
    ("Expired", "expired"),
    ("All", "all"),
)
STALE = "This broadcast draft has expired. Send /broadcast to start again."


@dataclass
class Draft:
    step: str = "segment"  # segment → text → confirm
    segment: str = ""
    days: int | None = None
    text: str = ""
    expires: float = field(default_factory=lambda: time.monotonic() + DRAFT_TTL)


class Drafts:
    """One draft per admin, forgotten after ``DRAFT_TTL`` seconds."""

    def __init__(self) -> None:
        self._drafts: dict[int, Draft] = {}

    def get(self, admin_id: int, step: str | None = None) -> Draft | None:
        """The admin's live draft (at ``step``, when given)."""
        now = time.monotonic()
        for key in [k for k, d in self._drafts.items() if d.expires < now]:
            del self._drafts[key]
        draft = self._drafts.get(admin_id)
        return draft if draft is not None and step in (None, draft.step) else None

    def start(self, admin_id: int) -> Draft:
        self._drafts[admin_id] = draft = Draft()
        return draft

    def drop(self, admin_id: int) -> Draft | None:
        return self._drafts.pop(admin_id, None)


async def is_admin(event: TelegramObject, ctx: ServiceContext) -> bool:
    user = getattr(event, "from_user", None)
    return user is not None and user.id in ctx.admin_ids


def _keyboard(rows: list[list[tuple[str, str]]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in row] for row in rows]
    )


def build_router() -> Router:
    drafts = Drafts()
    router = Router(name="broadcast")
    router.message.filter(private_chat, is_admin)
    router.callback_query.filter(is_admin)

    async def begin(message: Message, gateway: TelegramGateway) -> None:
        assert message.from_user is not None
        drafts.start(message.from_user.id)
        rows = [[(label, f"bcast:seg:{code}")] for label, code in SEGMENT_BUTTONS]
        await gateway.send_message(
            message.chat.id,
            "New broadcast. Who should receive it?",
            reply_markup=_keyboard([*rows, [("Cancel", "bcast:no")]]),
            interactive=True,
        )

    async def choose_segment(query: CallbackQuery, gateway: TelegramGateway) -> None:
        segment = (query.data or "").removeprefix("bcast:seg:")
        draft = drafts.get(query.from_user.id, "segment")
        if draft is None or segment not in broadcasts.SEGMENTS:
            await query.answer(STALE, show_alert=True)
            return
        await query.answer()
        draft.segment, draft.days = segment, EXPIRING_DAYS if segment == "expiring" else None
        draft.step = "text"
        who = broadcasts.describe_segment(segment, draft.days)
        await gateway.send_message(
            query.from_user.id,
            f"Segment: {who}.\nNow send the message text (plain text, up to {broadcasts.MAX_TEXT} "
            "characters). Send /cancel to stop.",
            interactive=True,
        )

    async def awaiting_text(message: Message) -> bool:
        user = message.from_user
        return (
            user is not None
            and message.text is not None
            and not message.text.startswith("/")
            and drafts.get(user.id, "text") is not None
        )

    async def take_text(message: Message, ctx: ServiceContext, gateway: TelegramGateway) -> None:
        assert message.from_user is not None and message.text is not None
        draft = drafts.get(message.from_user.id, "text")
        if draft is None:
            return
        try:
            body = broadcasts.clean_text(message.text)
            count = await broadcasts.preview(ctx, draft.segment, draft.days)
        except BroadcastError as exc:
            await gateway.send_message(message.chat.id, f"{exc}. Send the text again.", interactive=True)
            return
        draft.text, draft.step = body, "confirm"
        await gateway.send_message(message.chat.id, body, interactive=True)  # exactly as members see it
        who = broadcasts.describe_segment(draft.segment, draft.days)
        await gateway.send_message(
            message.chat.id,
            f"Preview above. It goes to {count} member{'s' if count != 1 else ''} ({who}). Send it?",
            reply_markup=_keyboard([[("✅ Confirm", "bcast:ok"), ("Cancel", "bcast:no")]]),
            interactive=True,
        )

    async def confirm(query: CallbackQuery, ctx: ServiceContext, gateway: TelegramGateway) -> None:
        draft = drafts.get(query.from_user.id, "confirm")
        if draft is None:
            await query.answer(STALE, show_alert=True)
            return
        drafts.drop(query.from_user.id)  # before any await: a second press finds nothing
        await query.answer()
        try:
            created = await broadcasts.create(
                ctx, draft.text, draft.segment, draft.days, f"telegram:{query.from_user.id}"
            )
        except BroadcastError as exc:
            await gateway.send_message(query.from_user.id, f"Not sent: {exc}", interactive=True)
            return
        await broadcasts.queue_some(ctx)  # small broadcasts start at once; the sweep does the rest
        await gateway.send_message(
            query.from_user.id,
            f"Broadcast #{created.id} is on its way. Follow it with /broadcast_status {created.id}",
            interactive=True,
        )

    async def drop(query: CallbackQuery, gateway: TelegramGateway) -> None:
        had = drafts.drop(query.from_user.id)
        await query.answer("Broadcast discarded." if had else "Nothing to discard.")
        if had:
            await gateway.send_message(query.from_user.id, "Broadcast discarded.", interactive=True)

    async def has_draft(message: Message) -> bool:
        return message.from_user is not None and drafts.get(message.from_user.id) is not None

    async def cancel_draft(message: Message, gateway: TelegramGateway) -> None:
        assert message.from_user is not None
        drafts.drop(message.from_user.id)
        await gateway.send_message(message.chat.id, "Broadcast discarded.", interactive=True)

    async def status(
        message: Message, command: CommandObject, ctx: ServiceContext, gateway: TelegramGateway
    ) -> None:
        raw = (command.args or "").strip()
        if not _ID.fullmatch(raw):
            await gateway.send_message(message.chat.id, "Usage: /broadcast_status <id>", interactive=True)
            return
        try:
            p = await broadcasts.progress_of(ctx, int(raw))
        except BroadcastError as exc:
            await gateway.send_message(message.chat.id, str(exc), interactive=True)
            return
        who = broadcasts.describe_segment(p.segment, p.segment_days)
        await gateway.send_message(
            message.chat.id, f"Broadcast #{p.id} ({who}): {p.status}.\n{p.line()}", interactive=True
        )

    async def stop(
        message: Message, command: CommandObject, ctx: ServiceContext, gateway: TelegramGateway
    ) -> None:
        assert message.from_user is not None
        raw = (command.args or "").strip()
        if not _ID.fullmatch(raw):
            await gateway.send_message(message.chat.id, "Usage: /broadcast_cancel <id>", interactive=True)
            return
        try:
            stopped = await broadcasts.cancel(ctx, int(raw), f"telegram:{message.from_user.id}")
        except BroadcastError as exc:
            await gateway.send_message(message.chat.id, str(exc), interactive=True)
            return
        await gateway.send_message(
            message.chat.id, f"Broadcast #{int(raw)} cancelled; {stopped} messages will not be sent.",
            interactive=True,
        )  # fmt: skip

    router.message.register(begin, Command("broadcast"))
    router.message.register(status, Command("broadcast_status"))
    router.message.register(stop, Command("broadcast_cancel"))
    router.message.register(cancel_draft, Command("cancel"), has_draft)
    router.message.register(take_text, awaiting_text)
    router.callback_query.register(choose_segment, data_prefix("bcast:seg:"))
    router.callback_query.register(confirm, data_is("bcast:ok"))
    router.callback_query.register(drop, data_is("bcast:no"))
    return router
