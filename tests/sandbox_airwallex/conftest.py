"""Fixtures: a served Airwallex sandbox, a logged-in httpx client and a webhook receiver."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.sandbox.telegram.server import run_server

LOGIN = "/api/v1/authentication/login"
CREDENTIALS = {"x-client-id": "sandbox-client", "x-api-key": "sandbox-key"}


class Clock:
    """Real time plus an offset the test can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # loop time

    @property
    def event(self) -> dict[str, Any]:
        import json

        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """Our side of the webhook: records requests, answers scripted statuses (then 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)  # seconds to hold the next answers
    hold: float = 0.0  # seconds every answer takes
    inflight: int = 0
    max_inflight: int = 0

    def names(self) -> list[str]:
        return [r.event["name"] for r in self.requests]

    async def handle(self, request: Request) -> Response:
        self.requests.append(
            Received(dict(request.headers), await request.body(), asyncio.get_running_loop().time())
        )
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            stall = self.stalls.pop(0) if self.stalls else self.hold
            if stall:
                await asyncio.sleep(stall)
        finally:
            self.inflight -= 1
        status = self.statuses.pop(0) if self.statuses else 200
        return PlainTextResponse("ok", status)


class Api:
    """A thin Airwallex client for the tests (real HTTP)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.headers: dict[str, str] = {}

    async def login(self) -> dict[str, Any]:
        resp = await self.http.post(LOGIN, headers=CREDENTIALS, json={})
        assert resp.status_code == 201, resp.text
        body: dict[str, Any] = resp.json()
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        return body

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self.headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(path, params=params, headers=self.headers)

    async def create_intent(
        self, amount: float = 9.99, currency: str = "USD", **extra: Any
    ) -> dict[str, Any]:
        body = {
            "request_id": str(uuid.uuid4()),
            "amount": amount,
            "currency": currency,
            "merchant_order_id": extra.pop("merchant_order_id", f"order-{uuid.uuid4().hex[:8]}"),
            **extra,
        }
        resp = await self.post("/api/v1/pa/payment_intents/create", body)
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    async def refund(self, intent_id: str, **extra: Any) -> httpx.Response:
        body = {"request_id": str(uuid.uuid4()), "payment_intent_id": intent_id, **extra}
        return await self.post("/api/v1/pa/refunds/create", body)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def aw(clock: Clock) -> AirwallexSandbox:
    sandbox = AirwallexSandbox(now=clock)
    sandbox.webhook.backoff = (0.02, 0.1)
    sandbox.webhook.timeout = 2.0
    return sandbox


@pytest.fixture
async def base_url(aw: AirwallexSandbox) -> AsyncIterator[str]:
    async with aw.serve() as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture
async def api(http: httpx.AsyncClient) -> Api:
    client = Api(http)
    await client.login()
    return client


@pytest.fixture
async def receiver(aw: AirwallexSandbox) -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])])
    async with run_server(app, "127.0.0.1", 0) as url:
        rec.url = f"{url}/hook"
        aw.set_webhook_url(rec.url)
        yield rec
        await aw.aclose()
