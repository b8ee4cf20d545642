"""Does the bot have the rights it needs in every configured chat? Checked at start and on demand."""

from __future__ import annotations

from dataclasses import dataclass, field

from subbot.telegram.errors import GatewayError
from subbot.telegram.gateway import TelegramGateway

NEEDED = ("can_invite_users", "can_restrict_members")


@dataclass
class ChatRights:
    chat_id: int
    status: str
    missing: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.missing

    def describe(self) -> str:
        if self.error:
            return f"chat {self.chat_id}: cannot check ({self.error}); add the bot to it as an administrator"
        if self.status not in ("administrator", "creator"):
            return f"chat {self.chat_id}: the bot is not an administrator (status {self.status}); make it one"
        if self.missing:
            return f"chat {self.chat_id}: the bot lacks {', '.join(self.missing)}; grant it in admin rights"
        return f"chat {self.chat_id}: ok"


async def check_rights(gateway: TelegramGateway, chat_ids: tuple[int, ...]) -> list[ChatRights]:
    results: list[ChatRights] = []
    for chat_id in chat_ids:
        try:
            member = await gateway.get_chat_member(chat_id, gateway.bot.id)
        except GatewayError as exc:
            results.append(ChatRights(chat_id, "unknown", error=exc.reason))
            continue
        status = str(getattr(member, "status", "unknown"))
        if status == "creator":
            results.append(ChatRights(chat_id, status))
            continue
        missing = [right for right in NEEDED if not getattr(member, right, False)]
        if status != "administrator":
            missing = list(NEEDED)
        results.append(ChatRights(chat_id, status, missing))
    return results
