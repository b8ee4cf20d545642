"""`subbot demo`: the real process against the local Telegram sandbox, on SQLite, with seeded people."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from rich.console import Console

from subbot.app import SubbotApp
from subbot.config import load_settings
from subbot.logging_setup import configure_logging
from subbot.runner import serve
from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.sandbox.telegram import TelegramSandbox
from subbot.services.admin_accounts import demo_admin
from subbot.store.migrate import upgrade

# Not a secret: the sandbox accepts whatever token it was told about.
DEMO_TOKEN = "424242:sandbox-demo-token-not-a-real-secret-0"  # noqa: S105
DEMO_GROUP_TITLE = "Subbot Demo Group"
DEMO_AW_CLIENT = "demo-client"
DEMO_AW_KEY = "demo-sandbox-api-key"
DEMO_AW_SECRET = "demo-sandbox-webhook-secret"  # noqa: S105

log = logging.getLogger(__name__)


def seed(sandbox: TelegramSandbox) -> int:
    bot_id = sandbox.add_bot(DEMO_TOKEN, username="subbot_demo_bot", first_name="Subbot Demo")
    owner = sandbox.add_user("Olivia", username="olivia_owner", last_name="Owner")
    group = sandbox.add_group(DEMO_GROUP_TITLE, owner_id=owner)
    sandbox.set_admin(group, bot_id, can_invite_users=True, can_restrict_members=True)
    sandbox.add_user("Alice", username="alice")
    sandbox.add_user("Bob", username="bob")
    return group


def _remove_database(db_file: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)


async def run_demo(
    port: int = 8080, sandbox_port: int = 8081, fresh: bool = False, airwallex_port: int | None = None
) -> None:
    console = Console()
    db_file = Path("data/demo.db")
    if fresh:
        _remove_database(db_file)
    sandbox = TelegramSandbox()
    group = seed(sandbox)
    airwallex = AirwallexSandbox(client_id=DEMO_AW_CLIENT, api_key=DEMO_AW_KEY, webhook_secret=DEMO_AW_SECRET)
    aw_port = sandbox_port + 1 if airwallex_port is None else airwallex_port
    async with (
        sandbox.serve(host="127.0.0.1", port=sandbox_port) as sandbox_url,
        airwallex.serve(host="127.0.0.1", port=aw_port) as airwallex_url,
    ):
        airwallex.set_webhook_url(f"http://127.0.0.1:{port}/webhook/airwallex")
        settings = load_settings(
            _env_file=None,
            bot_token=DEMO_TOKEN,
            group_id=group,
            telegram_api_url=sandbox_url,
            database_url=f"sqlite+aiosqlite:///{db_file}",
            public_url=None,
            environment="development",
            lock_dir=Path("data"),
            port=port,
            airwallex_client_id=DEMO_AW_CLIENT,
            airwallex_api_key=DEMO_AW_KEY,
            airwallex_webhook_secret=DEMO_AW_SECRET,
            airwallex_base_url=airwallex_url,
            reconcile_interval_seconds=60,
        )
        configure_logging(settings)
        app = SubbotApp(settings)
        await upgrade(app.db)
        dashboard_password = await demo_admin(app.db, app.clock)
        ready = asyncio.Event()
        server = asyncio.create_task(serve(app, "127.0.0.1", port, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({server, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            console.print(
                "\n[bold green]subbot demo is running[/]\n"
                f"  Play a member:  [link]{sandbox_url}/sandbox[/link]  (as Alice: /start, buy Standard)\n"
                f"  Card payments:  Airwallex sandbox at {airwallex_url} (choose 'Card', open the pay link)\n"
                f"  subbot health:  http://127.0.0.1:{port}/health\n"
                f"  Dashboard:      http://127.0.0.1:{port}/dashboard/\n"
                f"                  user demo, password {dashboard_password} (new at every start)\n"
                f"  Database:       {db_file} (SQLite)\n"
                "  Stop with Ctrl+C.\n"
            )
        waiter.cancel()
        await server
