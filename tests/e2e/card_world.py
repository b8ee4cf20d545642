"""Card payments world: the Telegram and Airwallex sandboxes, subbot serving HTTP, one shared clock."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select

from subbot.app import SubbotApp
from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.store.models import OutboxJob
from tests.e2e.conftest import World, buttons, text_has

SECRET = "whsec-e2e-sandbox"


@dataclass
class CardWorld:
    world: World
    aw: AirwallexSandbox
    aw_url: str
    app: SubbotApp
    base: str

    async def choose_card(self, user: int, plan: str = "standard") -> dict[str, Any]:
        """/start → plan → Card: the message with the pay link and the "I've paid" button."""
        w = self.world
        before = w.seen(user)
        await w.sandbox.send_text(user, "/start")
        menu = await w.reply(user, text_has("Choose a plan"), after=before)
        await w.sandbox.press_button(user, menu["message_id"], f"plan:{plan}")
        choice = await w.reply(user, text_has("how would you like to pay"), after=before)
        await w.sandbox.press_button(user, choice["message_id"], f"pay:card:{plan}")
        return await w.reply(user, text_has("secure card page"), after=before)

    def pay_url(self, message: dict[str, Any]) -> str:
        return str(buttons(message)[0]["url"])

    def order_id(self, message: dict[str, Any]) -> str:
        return self.pay_url(message).rsplit("/", 1)[1]

    async def pay_on_page(self, message: dict[str, Any], outcome: str = "succeeded") -> httpx.Response:
        """Follow our /pay page to the hosted checkout, and pay there as the shopper would."""
        async with httpx.AsyncClient() as client:
            hop = await client.get(self.pay_url(message))
            assert hop.status_code == 303, hop.text
            checkout = hop.headers["location"]
            page = await client.get(checkout)
            assert page.status_code == 200
            intent_id = checkout.split("/checkout/")[1].split("?")[0]
            secret = checkout.split("client_secret=")[1]
            return await client.post(
                f"{self.aw_url}/checkout/{intent_id}/pay", json={"outcome": outcome, "client_secret": secret}
            )

    async def post_event(self, event: dict[str, Any], *, timestamp_ms: str | None = None) -> httpx.Response:
        """A signed delivery of a hand-made event, exactly as Airwallex signs one."""
        body = json.dumps(event).encode()
        ts = timestamp_ms or str(int(self.world.clock.now().timestamp() * 1000))
        headers = {
            "x-timestamp": ts,
            "x-signature": self.aw.sign(body, ts),
            "content-type": "application/json",
        }
        async with httpx.AsyncClient() as client:
            return await client.post(f"{self.base}/webhook/airwallex", content=body, headers=headers)

    async def jobs(self, kind: str) -> int:
        async with self.app.db.sessions() as s:
            stmt = select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == kind)
            return int(await s.scalar(stmt) or 0)


@contextlib.asynccontextmanager
async def card_world(world: World, **overrides: Any) -> AsyncIterator[CardWorld]:
    aw = AirwallexSandbox(
        client_id="e2e-client",
        api_key="e2e-key",
        webhook_secret=SECRET,
        now=lambda: world.clock.now().timestamp(),
    )
    aw.webhook.backoff = (0.05, 0.2)
    async with aw.serve() as aw_url:
        settings: dict[str, Any] = {
            "airwallex_client_id": "e2e-client",
            "airwallex_api_key": "e2e-key",
            "airwallex_webhook_secret": SECRET,
            "airwallex_base_url": aw_url,
            "reconcile_interval_seconds": 3600,
        }
        settings.update(overrides)
        async with world.serving(**settings) as (app, base):
            aw.set_webhook_url(f"{base}/webhook/airwallex")
            yield CardWorld(world, aw, aw_url, app, base)
            await aw.flush()
