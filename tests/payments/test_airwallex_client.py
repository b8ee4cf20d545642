"""AirwallexClient against the local Airwallex emulator over real HTTP on 127.0.0.1.

Covers the cached login and its renewal, the one re-login on 401, major-unit amounts, idempotent
creates (``duplicate_request``), listing across pages, retries of 5xx and timeouts, refunds, a
network that is down, and that no secret reaches a log record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from subbot.domain.clock import ManualClock
from subbot.domain.money import Money
from subbot.payments.airwallex.client import RENEW_BEFORE, AirwallexClient, Intent, major_json
from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.sandbox.airwallex import AirwallexSandbox, ApiError

CLIENT_ID = "cid-test-4c21"
API_KEY = "ak-test-SECRET-8f1e6b2d9a"
WEBHOOK_SECRET = "whsec-test-SECRET-51d0"

LOGIN = "/api/v1/authentication/login"
CREATE = "/api/v1/pa/payment_intents/create"
LIST = "/api/v1/pa/payment_intents"
REFUND = "/api/v1/pa/refunds/create"


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real transport, plus a record of every request sent (to see what went over the wire)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def params(self, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path == path]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def aw(clock: ManualClock) -> AsyncIterator[AirwallexSandbox]:
    sandbox = AirwallexSandbox(
        client_id=CLIENT_ID,
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        now=lambda: clock.now().timestamp(),
    )
    async with sandbox.serve():
        yield sandbox


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


def make_client(aw: AirwallexSandbox, clock: ManualClock, **kwargs: Any) -> AirwallexClient:
    assert aw.base_url is not None
    options: dict[str, Any] = {"clock": clock, "backoff": 0.01, "timeout": 5.0, **kwargs}
    return AirwallexClient(aw.base_url, options.pop("client_id", CLIENT_ID), API_KEY, **options)


@pytest.fixture
async def client(
    aw: AirwallexSandbox, clock: ManualClock, transport: RecordingTransport
) -> AsyncIterator[AirwallexClient]:
    c = make_client(aw, clock, transport=transport)
    yield c
    await c.aclose()


async def create(
    client: AirwallexClient, order: str, amount: Money | None = None, request_id: str | None = None
) -> Intent:
    return await client.create_intent(
        request_id=request_id or str(uuid.uuid4()),
        amount=amount or Money(999, "USD"),
        merchant_order_id=order,
        metadata={"order_id": order, "user_id": "42"},
    )


def calls(aw: AirwallexSandbox, path: str) -> list[int]:
    """Statuses the emulator answered for ``path``, in order."""
    return [status for _, p, status in aw.calls if p == path]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ------------------------------------------------------------------------------------------- login


async def test_login_once_and_token_reused(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    intent = await create(client, "ord-reuse")
    await client.get_intent(intent.id)
    await client.list_intents(merchant_order_id="ord-reuse")
    await client.find_intent_for_order("ord-reuse")
    assert aw.login_count == 1
    assert calls(aw, LOGIN) == [201]


async def test_concurrent_first_calls_share_one_login(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    await asyncio.gather(*(client.list_intents() for _ in range(8)))
    assert aw.login_count == 1


async def test_token_renewed_shortly_before_expiry(
    client: AirwallexClient, aw: AirwallexSandbox, clock: ManualClock, transport: RecordingTransport
) -> None:
    await client.list_intents()
    assert aw.login_count == 1
    first = transport.requests[-1].headers["authorization"]
    [expires_unix] = aw.tokens.issued.values()
    expires = datetime.fromtimestamp(expires_unix, UTC)
    assert expires == clock.now() + timedelta(minutes=30)

    clock.set(expires - RENEW_BEFORE - timedelta(seconds=1))
    await client.list_intents()
    assert aw.login_count == 1
    assert transport.requests[-1].headers["authorization"] == first

    clock.set(expires - RENEW_BEFORE + timedelta(seconds=1))  # the old token is still valid here
    await client.list_intents()
    assert aw.login_count == 2
    assert transport.requests[-1].headers["authorization"] != first
    assert 401 not in calls(aw, LIST)  # renewed ahead of time, not after a rejection


async def test_clock_jump_past_expiry_renews_without_a_401(
    client: AirwallexClient, aw: AirwallexSandbox, clock: ManualClock
) -> None:
    await client.list_intents()
    clock.advance(timedelta(hours=5))  # e.g. the host slept
    await client.list_intents()
    assert aw.login_count == 2
    assert calls(aw, LIST) == [200, 200]


async def test_one_relogin_on_401(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    intent = await create(client, "ord-401")
    aw.expire_tokens()
    got = await client.get_intent(intent.id)
    assert got.id == intent.id
    assert aw.login_count == 2
    assert calls(aw, f"{LIST}/{intent.id}") == [401, 200]


async def test_401_after_relogin_is_an_error_not_a_loop(
    client: AirwallexClient, aw: AirwallexSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.list_intents()

    def always_reject(header: str | None) -> None:
        raise ApiError(401, "unauthorized", "Access token is missing, invalid or expired")

    monkeypatch.setattr(aw.tokens, "check", always_reject)
    with pytest.raises(AirwallexError) as caught:
        await client.list_intents()
    assert caught.value.status == 401
    assert aw.login_count == 2
    assert calls(aw, LIST) == [200, 401, 401]


async def test_bad_credentials_raise_401_without_retrying(aw: AirwallexSandbox, clock: ManualClock) -> None:
    bad = AirwallexClient(aw.base_url or "", CLIENT_ID, "wrong-key", clock=clock, backoff=0.01)
    try:
        with pytest.raises(AirwallexError) as caught:
            await bad.list_intents()
    finally:
        await bad.aclose()
    assert caught.value.status == 401
    assert caught.value.code == "credentials_invalid"
    assert aw.login_count == 0
    assert aw.calls == [("POST", LOGIN, 401)]


# ----------------------------------------------------------------------------------------- amounts


@pytest.mark.parametrize(
    ("money", "wire"),
    [
        (Money(200, "USD"), 2),
        (Money(999, "USD"), 9.99),
        (Money(500, "JPY"), 500),
        (Money(1234, "KWD"), 1.234),
    ],
)
async def test_create_intent_sends_major_units(
    client: AirwallexClient,
    aw: AirwallexSandbox,
    transport: RecordingTransport,
    money: Money,
    wire: float,
) -> None:
    intent = await create(client, f"ord-{money.currency}-{money.minor}", money)
    [body] = transport.bodies(CREATE)
    assert body["amount"] == wire
    assert type(body["amount"]) is type(wire)  # 2, not 2.0
    assert body["currency"] == money.currency
    assert intent.amount == money
    assert aw.intents[intent.id]["amount"] == wire
    assert (await client.get_intent(intent.id)).amount == money


def test_major_json() -> None:
    assert major_json(Money(200, "USD")) == 2 and isinstance(major_json(Money(200, "USD")), int)
    assert major_json(Money(1, "USD")) == 0.01
    assert major_json(Money(1234, "KWD")) == 1.234
    assert major_json(Money(7, "JPY")) == 7


async def test_create_intent_carries_order_and_metadata(
    client: AirwallexClient, aw: AirwallexSandbox
) -> None:
    intent = await client.create_intent(
        request_id=str(uuid.uuid4()),
        amount=Money(999, "USD"),
        merchant_order_id="ord-meta",
        metadata={"order_id": "ord-meta", "plan": "monthly"},
        return_url="https://example.test/pay/ord-meta/return",
        descriptor="SUBBOT MONTHLY SUBSCRIPTION PLAN X",  # 34 characters: cut to 32
    )
    stored = aw.intents[intent.id]
    assert intent.merchant_order_id == "ord-meta"
    assert intent.status == "REQUIRES_PAYMENT_METHOD"
    assert intent.client_secret
    assert stored["metadata"] == {"order_id": "ord-meta", "plan": "monthly"}
    assert stored["descriptor"] == "SUBBOT MONTHLY SUBSCRIPTION PLAN"
    assert stored["return_url"] == "https://example.test/pay/ord-meta/return"


# ------------------------------------------------------------------------------------- idempotency


async def test_reused_request_id_resolves_to_the_existing_intent(
    client: AirwallexClient, aw: AirwallexSandbox
) -> None:
    rid = str(uuid.uuid4())
    first = await create(client, "ord-dup", request_id=rid)
    second = await create(client, "ord-dup", request_id=rid)
    assert second.id == first.id
    assert second.amount == first.amount
    assert len(aw.intents) == 1
    assert calls(aw, CREATE) == [201, 400]


async def test_reused_request_id_for_another_order_is_an_error(
    client: AirwallexClient, aw: AirwallexSandbox
) -> None:
    rid = str(uuid.uuid4())
    await create(client, "ord-a", request_id=rid)
    with pytest.raises(AirwallexError) as caught:
        await create(client, "ord-b", request_id=rid)
    assert caught.value.code == "duplicate_request"
    assert len(aw.intents) == 1


async def test_validation_error_is_not_retried(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    with pytest.raises(AirwallexError) as caught:
        await client.create_intent(
            request_id=str(uuid.uuid4()),
            amount=Money(0, "USD"),
            merchant_order_id="ord-zero",
            metadata={},
        )
    assert caught.value.status == 400 and caught.value.code == "validation_error"
    assert calls(aw, CREATE) == [400]


# ---------------------------------------------------------------------------------- reading intents


async def test_get_intent_and_unknown_intent(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    intent = await create(client, "ord-get", Money(1234, "KWD"))
    await aw.pay(intent.id)
    got = await client.get_intent(intent.id)
    assert (got.id, got.status, got.amount, got.merchant_order_id) == (
        intent.id,
        "SUCCEEDED",
        Money(1234, "KWD"),
        "ord-get",
    )
    with pytest.raises(AirwallexError) as caught:
        await client.get_intent("int_doesnotexist")
    assert caught.value.status == 404 and caught.value.code == "resource_not_found"


def _seed(aw: AirwallexSandbox, n: int, order: str | None = None) -> list[str]:
    """Create ``n`` intents straight in the emulator's ledger (fast); returns their ids, oldest first."""
    ids = []
    for i in range(n):
        body = {
            "request_id": str(uuid.uuid4()),
            "amount": 1,
            "currency": "USD",
            "merchant_order_id": order or f"bulk-{i}",
        }
        ids.append(aw.ledger.create_intent(body).id)
    return ids


@pytest.mark.parametrize(("n", "pages"), [(0, 1), (50, 1), (51, 2), (120, 3)])
async def test_list_intents_reads_every_page(
    client: AirwallexClient, aw: AirwallexSandbox, transport: RecordingTransport, n: int, pages: int
) -> None:
    ids = _seed(aw, n)
    listed = await client.list_intents()
    assert [i.id for i in listed] == list(reversed(ids))  # newest first, none lost or repeated
    assert [p["page_num"] for p in transport.params(LIST)] == [str(p) for p in range(pages)]


async def test_list_intents_passes_filters(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    mine = _seed(aw, 55, order="ord-many")
    _seed(aw, 5)
    await aw.pay(mine[0])
    assert {i.id for i in await client.list_intents(merchant_order_id="ord-many")} == set(mine)
    assert [i.id for i in await client.list_intents(status="SUCCEEDED")] == [mine[0]]


async def test_find_intent_for_order_prefers_succeeded(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    oldest, _middle, newest = _seed(aw, 3, order="ord-find")
    await aw.cancel(newest)
    found = await client.find_intent_for_order("ord-find")
    assert found is not None and found.id == newest  # nothing paid: the newest one
    await aw.pay(oldest)
    found = await client.find_intent_for_order("ord-find")
    assert found is not None and found.id == oldest and found.status == "SUCCEEDED"
    assert await client.find_intent_for_order("ord-nothing") is None


# ----------------------------------------------------------------------------------------- retries


async def test_5xx_then_success_is_retried(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    aw.faults.fail_next(2, status=503, paths=[CREATE])
    intent = await create(client, "ord-503")
    assert calls(aw, CREATE) == [503, 503, 201]
    assert list(aw.intents) == [intent.id]


async def test_429_and_login_5xx_are_retried(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    aw.faults.fail_next(1, status=500, paths=[LOGIN])
    aw.faults.fail_next(1, status=429, paths=[LIST])
    await client.list_intents()
    assert calls(aw, LOGIN) == [500, 201]
    assert calls(aw, LIST) == [429, 200]


async def test_persistent_5xx_is_unavailable(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    aw.faults.fail_next(10, status=502, paths=[CREATE])
    with pytest.raises(AirwallexUnavailable):
        await create(client, "ord-down")
    assert calls(aw, CREATE) == [502, 502, 502]  # retries=3 attempts, then give up
    assert not aw.intents


async def test_timed_out_create_is_retried_and_resolved(aw: AirwallexSandbox, clock: ManualClock) -> None:
    c = make_client(aw, clock, timeout=0.2)
    try:
        await c.list_intents()  # log in first, so only the create is slow
        aw.faults.timeout_next(1, seconds=0.6, paths=[CREATE])
        intent = await create(c, "ord-slow")
    finally:
        await c.aclose()
    # the first create was done but answered too late; the retry hit duplicate_request and looked it up
    assert list(aw.intents) == [intent.id]
    assert intent.merchant_order_id == "ord-slow" and intent.amount == Money(999, "USD")
    first, *retries = calls(aw, CREATE)
    assert first == 201 and retries and set(retries) == {400}


async def test_timed_out_read_is_retried(aw: AirwallexSandbox, clock: ManualClock) -> None:
    c = make_client(aw, clock, timeout=0.2)
    try:
        intent = await create(c, "ord-slow-read")
        aw.faults.timeout_next(1, seconds=0.6, paths=[f"{LIST}/{intent.id}"])
        assert (await c.get_intent(intent.id)).id == intent.id
    finally:
        await c.aclose()
    answered = calls(aw, f"{LIST}/{intent.id}")
    assert len(answered) >= 2 and set(answered) == {200}  # the late answer was dropped, then asked again


async def test_network_down_is_unavailable(clock: ManualClock) -> None:
    c = AirwallexClient(f"http://127.0.0.1:{free_port()}", CLIENT_ID, API_KEY, clock=clock, backoff=0.01)
    try:
        with pytest.raises(AirwallexUnavailable):
            await c.list_intents()
    finally:
        await c.aclose()


# ----------------------------------------------------------------------------------------- refunds


async def test_partial_then_full_refund_then_over_refund(
    client: AirwallexClient, aw: AirwallexSandbox, transport: RecordingTransport
) -> None:
    intent = await create(client, "ord-refund")
    await aw.pay(intent.id)

    part = await client.create_refund(
        request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=Money(150, "USD"), reason="x"
    )
    assert part.amount == Money(150, "USD")
    assert part.payment_intent_id == intent.id and part.status == "RECEIVED"
    assert transport.bodies(REFUND)[-1]["amount"] == 1.5

    rest = await client.create_refund(
        request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=None, reason="r" * 200
    )
    assert rest.amount == Money(849, "USD")  # the remainder
    assert "amount" not in transport.bodies(REFUND)[-1]
    assert len(transport.bodies(REFUND)[-1]["reason"]) == 128

    with pytest.raises(AirwallexError) as caught:
        await client.create_refund(
            request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=Money(1, "USD"), reason="x"
        )
    assert caught.value.status == 400 and caught.value.code == "validation_error"
    assert sorted(r["amount"] for r in aw.refunds.values()) == [1.5, 8.49]


async def test_refund_larger_than_payment_is_refused(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    intent = await create(client, "ord-over")
    await aw.pay(intent.id)
    with pytest.raises(AirwallexError) as caught:
        await client.create_refund(
            request_id=str(uuid.uuid4()),
            payment_intent_id=intent.id,
            amount=Money(1000, "USD"),
            reason="too much",
        )
    assert caught.value.code == "validation_error"
    assert not aw.refunds
    assert calls(aw, REFUND) == [400]


async def test_full_refund_of_jpy(client: AirwallexClient, aw: AirwallexSandbox) -> None:
    intent = await create(client, "ord-jpy", Money(500, "JPY"))
    await aw.pay(intent.id)
    refund = await client.create_refund(
        request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=None, reason="full"
    )
    assert refund.amount == Money(500, "JPY")


# ------------------------------------------------------------------------------------------ secrets


async def test_no_secret_in_any_log_record(
    aw: AirwallexSandbox, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: the client's logger and httpx/httpcore underneath
    c = make_client(aw, clock, timeout=0.2)
    errors: list[BaseException] = []
    try:
        intent = await create(c, "ord-log")
        await aw.pay(intent.id)
        aw.expire_tokens()
        await c.get_intent(intent.id)
        clock.advance(timedelta(minutes=29))
        await c.create_refund(
            request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=None, reason="log"
        )
        aw.faults.fail_next(1, status=503, paths=[LIST])
        aw.faults.timeout_next(1, seconds=0.6, paths=[CREATE])
        await create(c, "ord-log-2")
        try:
            await c.create_refund(
                request_id=str(uuid.uuid4()), payment_intent_id=intent.id, amount=None, reason="again"
            )
        except AirwallexError as exc:
            errors.append(exc)
    finally:
        await c.aclose()
    bad = AirwallexClient(aw.base_url or "", CLIENT_ID, "wrong-" + API_KEY, clock=clock, backoff=0.01)
    try:
        await bad.list_intents()
    except AirwallexError as exc:
        errors.append(exc)
    finally:
        await bad.aclose()

    assert len(errors) == 2
    secrets = [API_KEY, "wrong-" + API_KEY, WEBHOOK_SECRET, *aw.tokens.issued]
    assert aw.login_count >= 3 and len(aw.tokens.issued) == aw.login_count
    ours = [r for r in caplog.records if r.name.startswith("subbot.payments.airwallex")]
    assert ours, "the client logged nothing, so this test proves nothing"
    texts = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    texts += [str(e) for e in errors]
    for text in texts:
        for secret in secrets:
            assert secret not in text
