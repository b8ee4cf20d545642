"""``python -m subbot.sandbox.telegram --host 127.0.0.1 --port 8081 --token TOKEN``"""

from __future__ import annotations

import argparse

import uvicorn

from .limits import RateLimits
from .sandbox import TelegramSandbox


def build(args: argparse.Namespace) -> TelegramSandbox:
    sb = TelegramSandbox(rate_limits=RateLimits(enabled=args.rate_limits))
    for token in args.token or []:
        sb.add_bot(token, username=args.bot_username)
    if args.demo:
        owner = sb.add_user("Olga", username="owner")
        group = sb.add_group("Paid Club", owner_id=owner)
        for bot in sb.world.bots.values():
            sb.set_admin(group, bot.id)
        sb.add_user("Alice", username="alice")
        sb.add_user("Bob", username="bob")
    return sb


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m subbot.sandbox.telegram", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", action="append", help="bot token to register (repeatable)")
    parser.add_argument("--bot-username", default="subbot_bot")
    parser.add_argument("--rate-limits", action="store_true", help="enable Telegram-like rate limits")
    parser.add_argument(
        "--demo", action="store_true", help="create an owner, a group (bots as admins) and 2 users"
    )
    args = parser.parse_args(argv)
    sb = build(args)
    print(f"Telegram sandbox on http://{args.host}:{args.port}  (page: /sandbox, control: /control/state)")
    uvicorn.run(sb.app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
