"""TelegramSandbox: the public face of the emulator (set-up, acting as people, inspection)."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from . import people
from .dispatch import CallRecord, Dispatcher
from .limits import FaultInjector, RateLimiter, RateLimits
from .models import ADMIN_RIGHTS, IN_CHAT, OPTIONAL_ADMIN_RIGHTS, STATUSES, BotAccount, Group, Member, User
from .server import build_app, run_server
from .spec import Spec
from .state import World
from .updates import UpdateHub


class TelegramSandbox:
    """A local api.telegram.org. See the package docstring for an overview."""

    def __init__(self, rate_limits: RateLimits | None = None, now: Callable[[], float] | None = None) -> None:
        self.spec = Spec.load()
        self.world = World(now or time.time, self.spec)
        self.rate_limits = rate_limits or RateLimits()
        self.limiter = RateLimiter(self.rate_limits)
        self.faults = FaultInjector()
        self.dispatcher = Dispatcher(self.world, self.spec, self.limiter, self.faults)
        self._backoff: tuple[float, float] = (0.2, 5.0)
        self._client: httpx.AsyncClient | None = None
        self.world.http_client = self._http_client
        self.world.webhook_reply = self._webhook_reply
        self.app: Starlette = build_app(self)

    # ------------------------------------------------------------ inspection
    @property
    def calls(self) -> list[CallRecord]:
        return self.dispatcher.calls

    @property
    def violations(self) -> list[str]:
        return self.world.violations

    @property
    def notices(self) -> list[str]:
        """Calls that worked but used deprecated parameters (e.g. reply_to_message_id)."""
        return self.dispatcher.notices

    @property
    def stats(self) -> dict[str, int]:
        return self.dispatcher.stats

    @property
    def refunds(self) -> list[dict[str, Any]]:
        return self.world.refunds

    @property
    def webhook_backoff(self) -> tuple[float, float]:
        """(first, max) seconds between webhook delivery retries (doubling)."""
        return self._backoff

    @webhook_backoff.setter
    def webhook_backoff(self, value: tuple[float, float]) -> None:
        self._backoff = (float(value[0]), float(value[1]))
        for bot in self.world.bots.values():
            bot.hub.backoff = self._backoff

    def now(self) -> float:
        """The sandbox clock (the injected ``now`` plus :meth:`advance_clock` offsets)."""
        return self.world.now()

    def advance_clock(self, seconds: float) -> None:
        self.world.clock_offset += seconds

    # ----------------------------------------------------------------- set-up
    def add_bot(self, token: str, username: str = "subbot_bot", first_name: str = "Subbot") -> int:
        if token in self.world.tokens:
            raise ValueError("a bot with this token already exists")
        prefix = token.split(":", 1)[0]
        bot_id = int(prefix) if prefix.isdigit() and ":" in token else next(self.world.bot_ids)
        if self.world.person(bot_id) is not None:
            raise ValueError(f"id {bot_id} is already taken")
        user = User(bot_id, first_name, username=username, language_code=None, is_bot=True)
        hub = UpdateHub(now=self.world.now, backoff=self._backoff)
        bot = BotAccount(token=token, user=user, hub=hub)
        self.world.bots[bot_id] = bot
        self.world.tokens[token] = bot
        return bot_id

    def add_user(
        self,
        first_name: str,
        username: str | None = None,
        last_name: str | None = None,
        language_code: str = "en",
    ) -> int:
        uid = next(self.world.user_ids)
        self.world.users[uid] = User(uid, first_name, username, last_name, language_code or None)
        return uid

    def add_group(self, title: str, owner_id: int, type: str = "supergroup") -> int:
        if type not in ("group", "supergroup", "channel"):
            raise ValueError("type must be group, supergroup or channel")
        self.world.require_user(owner_id)
        n = next(self.world.group_ids)
        chat_id = -(10**12 + n) if type != "group" else -n
        group = Group(chat_id, type, title, owner_id)
        group.members[owner_id] = Member("creator")
        self.world.groups[chat_id] = group
        return chat_id

    def _group(self, chat_id: int) -> Group:
        group = self.world.groups.get(chat_id)
        if group is None:
            raise ValueError(f"unknown chat {chat_id}")
        return group

    def set_admin(
        self,
        chat_id: int,
        user_id: int,
        can_invite_users: bool = True,
        can_restrict_members: bool = True,
        notify: bool = False,
        **rights: bool,
    ) -> None:
        """Make ``user_id`` (a person or a bot) an administrator. Extra ``can_*`` rights may be given."""
        group = self._group(chat_id)
        self.world.require_user(user_id)
        if group.owner_id == user_id:
            raise ValueError("the owner can't be made an administrator")
        unknown = set(rights) - set(ADMIN_RIGHTS) - set(OPTIONAL_ADMIN_RIGHTS)
        if unknown:
            raise ValueError(f"unknown rights {sorted(unknown)}")
        granted = {r: False for r in ADMIN_RIGHTS}
        granted.update(can_manage_chat=True, can_delete_messages=True)
        granted.update(rights, can_invite_users=can_invite_users, can_restrict_members=can_restrict_members)
        self._set(group, user_id, "administrator", notify, granted)

    def add_member(self, chat_id: int, user_id: int, status: str = "member", notify: bool = False) -> None:
        """Put ``user_id`` into the chat (set-up: no updates unless ``notify``)."""
        if status not in STATUSES - {"creator", "administrator"}:
            raise ValueError("status must be member, restricted, left or kicked (see set_admin)")
        group = self._group(chat_id)
        self.world.require_user(user_id)
        if group.owner_id == user_id:
            raise ValueError("the owner is already a member")
        self._set(group, user_id, status, notify, None)

    def _set(self, group: Group, uid: int, status: str, notify: bool, rights: dict[str, bool] | None) -> None:
        if notify:
            self.world.change_membership(group, uid, group.owner_id, status, rights=rights)
        else:
            _, new = self.world.set_status(group, uid, status)
            new.rights = dict(rights or {})

    def member_status(self, chat_id: int, user_id: int) -> str:
        return self.world.member(self._group(chat_id), user_id).status

    # -------------------------------------------------------- acting as people
    async def send_text(self, user_id: int, text: str, bot_token: str | None = None) -> dict[str, Any]:
        return await people.send_text(self.world, user_id, text, bot_token)

    async def press_button(
        self, user_id: int, message_id: int, callback_data: str, bot_token: str | None = None
    ) -> str:
        return await people.press_button(self.world, user_id, message_id, callback_data, bot_token)

    async def open_invite_link(self, user_id: int, invite_link: str) -> str:
        return await people.open_invite_link(self.world, user_id, invite_link)

    async def leave_chat(self, user_id: int, chat_id: int) -> None:
        await people.leave_chat(self.world, user_id, chat_id)

    async def block_bot(self, user_id: int, bot_token: str | None = None) -> None:
        await people.block_bot(self.world, user_id, bot_token, True)

    async def unblock_bot(self, user_id: int, bot_token: str | None = None) -> None:
        await people.block_bot(self.world, user_id, bot_token, False)

    async def pay_invoice(
        self,
        user_id: int,
        message_id: int,
        bot_token: str | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        return await people.pay_invoice(self.world, user_id, message_id, bot_token, timeout)

    async def pay_invoice_link(self, user_id: int, link: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Pay an invoice created by createInvoiceLink (e.g. a Stars subscription)."""
        return await people.pay_invoice_link(self.world, user_id, link, timeout)

    def renew_subscription(self, telegram_payment_charge_id: str) -> dict[str, Any]:
        """Charge the next period of a Stars subscription (a new successful_payment message)."""
        return people.renew_subscription(self.world, telegram_payment_charge_id)

    # ----------------------------------------------------------------- views
    def _private(self, user_id: int, bot_token: str | None) -> tuple[BotAccount, list[dict[str, Any]]]:
        bot = self.world.bot_for(bot_token)
        log = self.world.privates.get((bot.id, user_id))
        msgs = [copy.deepcopy(m.data) for m in log.messages.values() if not m.deleted] if log else []
        return bot, msgs

    def messages_to(self, user_id: int, bot_token: str | None = None) -> list[dict[str, Any]]:
        """Messages the bot sent to the user's private chat (not deleted), oldest first."""
        bot, msgs = self._private(user_id, bot_token)
        return [m for m in msgs if m.get("from", {}).get("id") == bot.id]

    def conversation(self, user_id: int, bot_token: str | None = None) -> list[dict[str, Any]]:
        """The whole private chat of the user with the bot (both directions)."""
        return self._private(user_id, bot_token)[1]

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Messages in a group (a positive id gives the private chat with the default bot)."""
        if chat_id > 0:
            return self.conversation(chat_id)
        return [copy.deepcopy(m.data) for m in self._group(chat_id).log.messages.values() if not m.deleted]

    def invite_links(self, chat_id: int) -> list[dict[str, Any]]:
        out = []
        for link in self._group(chat_id).links.values():
            d = self.world.link_dict(link)
            d.update(
                uses=link.uses,
                revoked=link.revoked,
                joined_user_ids=list(link.joined_user_ids),
                pending_user_ids=sorted(link.pending),
            )
            out.append(d)
        return out

    def members(self, chat_id: int) -> dict[int, str]:
        """user id → status for everyone the chat knows about."""
        group = self._group(chat_id)
        return {uid: self.world.member(group, uid).status for uid in list(group.members)}

    def member_count(self, chat_id: int) -> int:
        return sum(1 for s in self.members(chat_id).values() if s in IN_CHAT)

    def callback_answer(self, callback_query_id: str) -> dict[str, Any] | None:
        rec = self.world.callbacks.get(callback_query_id)
        return dict(rec.answer) if rec and rec.answer is not None else None

    def pending_updates(self, bot_token: str | None = None) -> list[dict[str, Any]]:
        return copy.deepcopy(self.world.bot_for(bot_token).hub.pending)

    # ------------------------------------------------------------- lifecycle
    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
        return self._client

    async def _webhook_reply(self, bot: BotAccount, body: dict[str, Any]) -> None:
        await self.dispatcher.webhook_reply(bot.token, body)

    def wake_pollers(self) -> None:
        """Answer pending long polls and stop webhook delivery (used on shutdown)."""
        for bot in self.world.bots.values():
            bot.hub.close()

    async def aclose(self) -> None:
        for bot in self.world.bots.values():
            await bot.hub.aclose()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Run the app with uvicorn in this event loop; yields the base URL."""
        for bot in self.world.bots.values():
            bot.hub.reopen()
        async with run_server(self.app, host, port, on_stop=self.wake_pollers) as base_url:
            yield base_url
        await self.aclose()
