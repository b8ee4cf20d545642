"""The README's demo walk-through, driven through the sandbox's control API over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from subbot.demo import run_demo
from tests.e2e.conftest import free_port


async def _poll(client: httpx.AsyncClient, url: str, predicate: Any, timeout: float = 10.0) -> Any:
    async def once() -> Any:
        data = (await client.get(url)).json()["result"]
        return predicate(data)

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await once()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(url)
        await asyncio.sleep(0.05)


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
    port, sandbox_port = free_port(), free_port()
    demo = asyncio.create_task(run_demo(port=port, sandbox_port=sandbox_port, fresh=True))
    control = f"http://127.0.0.1:{sandbox_port}/control"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            await _until_up(client, f"http://127.0.0.1:{port}/health")
            page = await client.get(f"http://127.0.0.1:{sandbox_port}/sandbox")
            assert page.status_code == 200 and "<html" in page.text.lower()
            state = (await client.get(f"{control}/state")).json()["result"]
            alice = next(u["id"] for u in state["users"] if u["first_name"] == "Alice")
            group = state["groups"][0]["id"]
            msgs = f"{control}/users/{alice}/messages"

            await client.post(f"{control}/users/{alice}/send", json={"text": "/start"})
            menu = await _poll(
                client, msgs, lambda d: next((m for m in d if "Choose a plan" in m.get("text", "")), None)
            )
            await client.post(
                f"{control}/users/{alice}/press",
                json={"message_id": menu["message_id"], "data": "plan:standard"},
            )
            invoice = await _poll(client, msgs, lambda d: next((m for m in d if "invoice" in m), None))
            paid = (
                await client.post(f"{control}/users/{alice}/pay", json={"message_id": invoice["message_id"]})
            ).json()
            assert paid["result"]["status"] == "paid"
            grant = await _poll(
                client, msgs, lambda d: next((m for m in d if "Payment received" in m.get("text", "")), None)
            )
            url = grant["reply_markup"]["inline_keyboard"][0][0]["url"]
            joined = (await client.post(f"{control}/users/{alice}/open_link", json={"link": url})).json()
            assert joined["result"]["result"] == "joined"
            await client.post(f"{control}/users/{alice}/send", json={"text": "/status"})
            status = await _poll(
                client, msgs, lambda d: next((m for m in d if "Your subscription" in m.get("text", "")), None)
            )
            assert "Standard" in status["text"] and "30 days left" in status["text"]
            chat = (await client.get(f"{control}/chats/{group}")).json()["result"]
            assert any(m["user"]["id"] == alice and m["status"] == "member" for m in chat["members"])
            assert (await client.get(f"{control}/violations")).json()["result"] == []
    finally:
        demo.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await demo
    assert (tmp_path / "data" / "demo.db").exists()
