"""AirwallexSandbox: the public face of the emulator (shopper actions, webhook switches, inspection)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette

from .api import Tokens
from .core import fmt_ts, new_id, not_found
from .faults import FaultInjector
from .ledger import Ledger
from .server import build_app, run_server
from .webhooks import Delivery, StoredEvent, Webhooks

EVENT_VERSION = "2024-06-30"


class AirwallexSandbox:
    """A local api.airwallex.com for what a subscription bot uses. See the package docstring."""

    def __init__(
        self,
        client_id: str = "sandbox-client",
        api_key: str = "sandbox-key",
        webhook_secret: str = "whsec-sandbox",  # noqa: S107 (a well-known sandbox value)
        now: Callable[[], float] | None = None,
        account_id: str = "acct_sandbox",
    ) -> None:
        self.client_id = client_id
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.account_id = account_id
        self.now: Callable[[], float] = now or time.time
        self.tokens = Tokens(self.now)
        self.faults = FaultInjector()
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status) of every /api/v1 call
        self.login_count = 0
        self.webhook = Webhooks(self.now, webhook_secret)
        self.ledger = Ledger(self.now, self._emit)
        self._events: list[StoredEvent] = []
        self._events_by_id: dict[str, StoredEvent] = {}
        self.base_url: str | None = None  # set by serve(); set it yourself when serving otherwise
        self.app: Starlette = build_app(self)

    # ------------------------------------------------------------- inspection
    @property
    def intents(self) -> dict[str, dict[str, Any]]:
        """id -> PaymentIntent JSON as the API would return it."""
        return {i.id: i.json() for i in self.ledger.intents.values()}

    @property
    def refunds(self) -> dict[str, dict[str, Any]]:
        return {r.id: r.json() for r in self.ledger.refunds.values()}

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event generated, in order (the envelopes, as delivered)."""
        return [copy.deepcopy(e.envelope) for e in self._events]

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.webhook.deliveries)

    def event(self, event_id: str) -> StoredEvent:
        found = self._events_by_id.get(event_id)
        if found is None:
            raise not_found("event", event_id)
        return found

    def state(self) -> dict[str, Any]:
        return {
            "intents": list(self.intents.values()),
            "refunds": list(self.refunds.values()),
            "events": self.events,
            "deliveries": [d.json() for d in self.webhook.deliveries],
            "webhook": self.webhook.describe(),
            "faults": self.faults.describe(),
            "login_count": self.login_count,
        }

    # ---------------------------------------------------------------- events
    def _emit(self, name: str, obj: dict[str, Any]) -> None:
        event_id = new_id("evt_")
        envelope: dict[str, Any] = {
            "id": event_id,
            "name": name,
            "account_id": self.account_id,
            "data": {"object": obj},
            "created_at": fmt_ts(self.now()),
            "version": EVENT_VERSION,
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        event = StoredEvent(event_id, name, envelope, body)
        self._events.append(event)
        self._events_by_id[event.id] = event
        self.webhook.publish(event)

    # --------------------------------------------------------------- shopper
    def checkout_url(self, intent_id: str) -> str:
        """The hosted payment page of an intent: ``{base_url}/checkout/{id}?client_secret=...``."""
        if self.base_url is None:
            raise RuntimeError("the sandbox is not served yet (use serve() or set base_url)")
        intent = self.ledger.intent(intent_id)
        return f"{self.base_url}/checkout/{quote(intent.id)}?client_secret={quote(intent.client_secret)}"

    async def pay(self, intent_id: str, outcome: str = "succeeded") -> dict[str, Any]:
        """The shopper pays: "succeeded" or "declined" (the intent stays REQUIRES_PAYMENT_METHOD)."""
        return self.ledger.pay(intent_id, outcome).json()

    async def cancel(self, intent_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.ledger.cancel(intent_id, reason).json()

    async def settle_refund(self, refund_id: str, outcome: str = "settled") -> dict[str, Any]:
        """RECEIVED -> ACCEPTED -> SETTLED with refund.* events; ``outcome="failed"`` -> FAILED."""
        return self.ledger.settle_refund(refund_id, outcome).json()

    # --------------------------------------------------------------- webhooks
    def set_webhook_url(self, url: str | None) -> None:
        """Where events are POSTed; None: nowhere (new events stay undelivered)."""
        self.webhook.set_url(url)

    def sign(self, body: bytes, timestamp_ms: str) -> str:
        return self.webhook.sign(body, timestamp_ms)

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every queued delivery is done or given up (raises TimeoutError)."""
        await self.webhook.flush(timeout)

    async def redeliver(self, event_id: str) -> Delivery:
        """POST a stored event again now (one attempt, retried on failure); returns that attempt."""
        return await self.webhook.redeliver(self.event(event_id))

    def deliver_out_of_order(self, event_ids: Iterable[str]) -> None:
        """Queue these stored events for delivery in exactly the given order (e.g. newest first)."""
        self.webhook.deliver_in_order([self.event(e) for e in event_ids])

    # ------------------------------------------------------------------ auth
    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 from now on."""
        self.tokens.expire_all()

    # ------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        """Stop the delivery workers and close the HTTP client (pending deliveries are abandoned)."""
        await self.webhook.aclose()

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Run the app with uvicorn in this event loop; yields the base URL."""
        async with run_server(self.app, host, port) as base_url:
            self.base_url = base_url
            yield base_url
        await self.aclose()
