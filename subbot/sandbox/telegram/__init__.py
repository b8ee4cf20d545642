"""A local emulator of api.telegram.org for tests, benchmarks and demos.

``TelegramSandbox().app`` is an ASGI app serving ``/bot<token>/<method>`` (validated against the
vendored Bot API spec, ``api.json``), a control API under ``/control/`` and a play page at
``/sandbox``. Python code sets up the world (bots, users, groups, admins) and acts as people
(``send_text``, ``press_button``, ``open_invite_link``, ``pay_invoice``...); the bot under test
talks HTTP to it exactly as it would to Telegram, e.g. with aiogram::

    sb = TelegramSandbox()
    sb.add_bot("123:TEST")
    async with sb.serve() as base_url:
        bot = Bot("123:TEST", session=AiohttpSession(api=TelegramAPIServer.from_base(base_url)))
"""

from .dispatch import CallRecord
from .limits import FaultInjector, RateLimits
from .sandbox import TelegramSandbox
from .testing import wait_for

__all__ = ["CallRecord", "FaultInjector", "RateLimits", "TelegramSandbox", "wait_for"]
