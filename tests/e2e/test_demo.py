"""The README's demo walk-through, driven through the sandboxes' control APIs over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from subbot.demo import run_demo
from tests.e2e.conftest import free_port


class Member:
    """A person in the Telegram sandbox, acting through its control API."""

    def __init__(self, client: httpx.AsyncClient, control: str, user_id: int) -> None:
        self.client, self.control, self.id = client, control, user_id

    async def send(self, text: str) -> None:
        r = await self.client.post(f"{self.control}/users/{self.id}/send", json={"text": text})
        assert r.status_code == 200, r.text

    async def press(self, message: dict[str, Any], data: str) -> None:
        body = {"message_id": message["message_id"], "data": data}
        r = await self.client.post(f"{self.control}/users/{self.id}/press", json=body)
        assert r.status_code == 200, r.text

    async def act(self, what: str, body: dict[str, Any]) -> Any:
        r = await self.client.post(f"{self.control}/users/{self.id}/{what}", json=body)
        assert r.status_code == 200, r.text
        return r.json()["result"]

    async def wait_message(self, fragment: str, key: str = "text", timeout: float = 10.0) -> dict[str, Any]:
        """The first message whose ``key`` contains ``fragment`` (any message with ``key`` if it is empty)."""
        url = f"{self.control}/users/{self.id}/messages"

        async def poll() -> dict[str, Any]:
            while True:
                for m in (await self.client.get(url)).json()["result"]:
                    if key in m and fragment in str(m.get(key, "")):
                        return dict(m)
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), timeout)


async def _until_up(client: httpx.AsyncClient, url: str, timeout: float = 15.0) -> None:
    async def up() -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(up(), timeout)


async def test_demo_walkthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    port, sandbox_port, aw_port = free_port(), free_port(), free_port()
    demo = asyncio.create_task(
        run_demo(port=port, sandbox_port=sandbox_port, fresh=True, airwallex_port=aw_port)
    )
    control = f"http://127.0.0.1:{sandbox_port}/control"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await _until_up(client, f"http://127.0.0.1:{port}/health")
            page = await client.get(f"http://127.0.0.1:{sandbox_port}/sandbox")
            assert page.status_code == 200 and "<html" in page.text.lower()
            state = (await client.get(f"{control}/state")).json()["result"]
            ids = {u["first_name"]: u["id"] for u in state["users"]}
            group = state["groups"][0]["id"]

            # Alice buys Standard with Telegram Stars, joins, and checks /status.
            alice = Member(client, control, ids["Alice"])
            await alice.send("/start")
            await alice.press(await alice.wait_message("Choose a plan"), "plan:standard")
            await alice.press(await alice.wait_message("how would you like to pay"), "pay:stars:standard")
            invoice = await alice.wait_message("", key="invoice")
            assert (await alice.act("pay", {"message_id": invoice["message_id"]}))["status"] == "paid"
            grant = await alice.wait_message("Payment received")
            link = grant["reply_markup"]["inline_keyboard"][0][0]["url"]
            assert (await alice.act("open_link", {"link": link}))["result"] == "joined"
            await alice.send("/status")
            status = await alice.wait_message("Your subscription")
            assert "Standard" in status["text"] and "30 days left" in status["text"]
            chat = (await client.get(f"{control}/chats/{group}")).json()["result"]
            assert any(m["user"]["id"] == alice.id and m["status"] == "member" for m in chat["members"])

            # Bob pays by card on the Airwallex sandbox's hosted page.
            bob = Member(client, control, ids["Bob"])
            await bob.send("/plans")
            await bob.press(await bob.wait_message("Choose a plan"), "plan:basic")
            await bob.press(await bob.wait_message("how would you like to pay"), "pay:card:basic")
            card = await bob.wait_message("secure card page")
            pay_url = card["reply_markup"]["inline_keyboard"][0][0]["url"]
            checkout = (await client.get(pay_url)).headers["location"]
            assert checkout.startswith(f"http://127.0.0.1:{aw_port}/checkout/")
            intent_id, secret = checkout.split("/checkout/")[1].split("?client_secret=")
            body = {"outcome": "succeeded", "client_secret": secret}
            paid = await client.post(f"http://127.0.0.1:{aw_port}/checkout/{intent_id}/pay", json=body)
            assert paid.status_code == 200
            await bob.wait_message("Payment received")
            assert (await client.get(f"{control}/violations")).json()["result"] == []
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
    assert (tmp_path / "data" / "demo.db").exists()
