"""Airwallex payments API over httpx: cached login, retries for idempotent calls, errors mapped."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from subbot.domain.clock import Clock, SystemClock
from subbot.domain.money import Money
from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable

log = logging.getLogger("subbot.payments.airwallex")

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # 2024-07-15T07:41:32+0000
RENEW_BEFORE = timedelta(minutes=2)


def parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, TIMESTAMP_FORMAT)


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount: Money
    merchant_order_id: str
    client_secret: str | None
    raw: dict[str, Any]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Intent:
        currency = str(data["currency"])
        return cls(
            id=str(data["id"]),
            status=str(data.get("status", "")),
            amount=Money.from_major(Decimal(str(data["amount"])), currency),
            merchant_order_id=str(data.get("merchant_order_id", "")),
            client_secret=data.get("client_secret"),
            raw=data,
        )


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    payment_intent_id: str
    amount: Money
    raw: dict[str, Any]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Refund:
        return cls(
            id=str(data["id"]),
            status=str(data.get("status", "")),
            payment_intent_id=str(data.get("payment_intent_id", "")),
            amount=Money.from_major(Decimal(str(data["amount"])), str(data["currency"])),
            raw=data,
        )


class AirwallexClient:
    def __init__(
        self,
        base_url: str,
        client_id: str,
        api_key: str,
        *,
        clock: Clock | None = None,
        timeout: float = 15.0,
        retries: int = 3,
        backoff: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)
        self._client_id = client_id
        self._api_key = api_key
        self._clock = clock or SystemClock()
        self._retries = retries
        self._backoff = backoff
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._login_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _login(self) -> str:
        response = await self._send("POST", "/api/v1/authentication/login", json={}, auth=False)
        data = response.json()
        self._token = str(data["token"])
        self._token_expires = parse_timestamp(str(data["expires_at"]))
        log.info("airwallex login ok, token valid until %s", data["expires_at"])
        return self._token

    async def _bearer(self, force: bool = False) -> str:
        async with self._login_lock:
            fresh = (
                self._token is not None
                and self._token_expires is not None
                and self._clock.now() < self._token_expires - RENEW_BEFORE
            )
            if force or not fresh:
                return await self._login()
            assert self._token is not None
            return self._token

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        auth: bool = True,
        request_timeout: float | None = None,
    ) -> httpx.Response:
        """One logical call: retries network errors and 5xx; one re-login on 401."""
        relogged = False
        attempt = 0
        while True:
            attempt += 1
            headers = {"x-client-id": self._client_id, "x-api-key": self._api_key} if not auth else {}
            if auth:
                headers["Authorization"] = f"Bearer {await self._bearer()}"
            try:
                response = await self._http.request(
                    method,
                    path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=request_timeout or self._http.timeout,
                )
            except httpx.TransportError as exc:
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                    continue
                raise AirwallexUnavailable(f"{method} {path}: {exc.__class__.__name__}") from exc
            if response.status_code >= 500 or response.status_code == 429:
                if attempt < self._retries:
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                    continue
                raise AirwallexUnavailable(f"{method} {path}: HTTP {response.status_code}")
            if response.status_code == 401 and auth and not relogged:
                relogged = True
                await self._bearer(force=True)
                continue
            if response.status_code >= 400:
                raise _error(response)
            return response

    async def create_intent(
        self,
        *,
        request_id: str,
        amount: Money,
        merchant_order_id: str,
        metadata: dict[str, str],
        return_url: str | None = None,
        descriptor: str | None = None,
        request_timeout: float | None = None,
    ) -> Intent:
        """Create; on ``duplicate_request`` (a retried create) find the intent made for the order."""
        body: dict[str, Any] = {
            "request_id": request_id,
            "amount": major_json(amount),
            "currency": amount.currency,
            "merchant_order_id": merchant_order_id,
            "metadata": metadata,
        }
        if return_url:
            body["return_url"] = return_url
        if descriptor:
            body["descriptor"] = descriptor[:32]
        try:
            response = await self._send(
                "POST", "/api/v1/pa/payment_intents/create", json=body, request_timeout=request_timeout
            )
        except AirwallexError as exc:
            if exc.code != "duplicate_request":
                raise
            found = await self.find_intent_for_order(merchant_order_id)
            if found is None:
                raise
            return found
        intent = Intent.from_api(response.json())
        log.info(
            "payment intent created: order=%s intent=%s amount=%s",
            merchant_order_id,
            intent.id,
            amount.format(),
        )
        return intent

    async def get_intent(self, intent_id: str) -> Intent:
        return Intent.from_api((await self._send("GET", f"/api/v1/pa/payment_intents/{intent_id}")).json())

    async def list_intents(self, **filters: str | int) -> list[Intent]:
        """Every page of the list (page_num is 0-based)."""
        items: list[Intent] = []
        page = 0
        while True:
            params = {**filters, "page_num": page, "page_size": 50}
            data = (await self._send("GET", "/api/v1/pa/payment_intents", params=params)).json()
            items.extend(Intent.from_api(i) for i in data.get("items", []))
            if not data.get("has_more") or page >= 100:
                return items
            page += 1

    async def find_intent_for_order(self, merchant_order_id: str) -> Intent | None:
        intents = await self.list_intents(merchant_order_id=merchant_order_id)
        succeeded = [i for i in intents if i.status == "SUCCEEDED"]
        ranked = succeeded or intents
        return ranked[0] if ranked else None

    async def create_refund(
        self, *, request_id: str, payment_intent_id: str, amount: Money | None, reason: str
    ) -> Refund:
        body: dict[str, Any] = {
            "request_id": request_id,
            "payment_intent_id": payment_intent_id,
            "reason": reason[:128],
        }
        if amount is not None:
            body["amount"] = major_json(amount)
        return Refund.from_api((await self._send("POST", "/api/v1/pa/refunds/create", json=body)).json())


def major_json(amount: Money) -> int | float:
    """Airwallex amounts are MAJOR units: 200 minor USD is 2, 999 is 9.99."""
    major = amount.to_major()
    return int(major) if major == major.to_integral_value() else float(major)


def _error(response: httpx.Response) -> AirwallexError:
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    code = str(data.get("code") or f"http_{response.status_code}")
    return AirwallexError(
        response.status_code, code, str(data.get("message") or response.reason_phrase)[:300]
    )
