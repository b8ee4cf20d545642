"""Every filter and handler the bot registers runs on the event loop, never in a worker thread.

aiogram runs a callable that is not a coroutine (a magic filter such as ``F.chat.type == "private"``
included) through ``asyncio.to_thread``: one executor round trip per update that reaches it.
"""

from __future__ import annotations

from pathlib import Path

from aiogram import F, Router
from aiogram.dispatcher.event.handler import CallableObject
from aiogram.types import CallbackQuery, Chat, Message, SuccessfulPayment

from subbot.app import SubbotApp
from subbot.bot import filters
from subbot.config import load_settings


def thread_bound(router: Router) -> list[str]:
    """The filters and handlers of ``router`` and its sub-routers that aiogram would run in a thread."""
    found: list[str] = []
    for r in router.chain_tail:
        for name, observer in r.observers.items():
            objects: list[tuple[str, CallableObject]] = [
                (f"{r.name}.{name} router filter", f) for f in observer._handler.filters or []
            ]
            for handler in observer.handlers:
                objects.append((f"{r.name}.{name} handler", handler))
                objects += [(f"{r.name}.{name} filter", f) for f in handler.filters or []]
            found += [f"{where}: {obj.callback!r}" for where, obj in objects if not obj.awaitable]
    return found


def test_the_bot_registers_no_filter_or_handler_that_runs_in_a_thread(tmp_path: Path) -> None:
    settings = load_settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/f.db",
        bot_token="777010:filters-token-not-a-secret-abcdefgh",
        group_id=-1001234567890,
        telegram_api_url="http://127.0.0.1:9",
        lock_dir=tmp_path,
        log_dir=tmp_path / "logs",
        admin_ids=[1],
    )
    app = SubbotApp(settings)
    assert sum(len(o.handlers) for r in app.dispatcher.chain_tail for o in r.observers.values()) > 20
    assert thread_bound(app.dispatcher) == []


def test_the_check_sees_a_magic_filter() -> None:
    router = Router(name="probe")
    router.message.filter(F.chat.type == "private")

    async def handler(message: Message) -> None:
        return None

    router.message.register(handler, F.text == "x")
    assert len(thread_bound(router)) == 2


def _message(chat_type: str, **extra: object) -> Message:
    return Message.model_validate({"message_id": 1, "date": 0, "chat": Chat(id=5, type=chat_type), **extra})


async def test_filters_answer_as_the_magic_filters_did() -> None:
    assert await filters.private_chat(_message("private"))
    assert not await filters.private_chat(_message("supergroup"))
    paid = SuccessfulPayment(
        currency="XTR",
        total_amount=100,
        invoice_payload="o:1",
        telegram_payment_charge_id="c",
        provider_payment_charge_id="p",
    )
    assert await filters.payment_received(_message("private", successful_payment=paid))
    assert not await filters.payment_received(_message("private", text="hi"))
    query = CallbackQuery(
        id="1", from_user={"id": 5, "is_bot": False, "first_name": "A"}, chat_instance="c", data="plan:basic"
    )
    assert await filters.data_prefix("plan:")(query)
    assert not await filters.data_prefix("pay:")(query)
    assert await filters.data_is("plan:basic")(query)
    assert not await filters.data_is("plan:")(query)
    no_data = query.model_copy(update={"data": None})
    assert not await filters.data_prefix("")(no_data)
    assert not await filters.data_is("")(no_data)
