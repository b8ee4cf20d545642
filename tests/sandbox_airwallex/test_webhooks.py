"""Signed webhook delivery: signature, retries, back-off and the delivery switches."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket

import pytest

from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.sandbox.telegram.testing import wait_for

from .conftest import Api, Receiver


def expected_signature(timestamp: str, body: bytes, secret: str = "whsec-sandbox") -> str:
    return hmac.new(secret.encode("utf-8"), timestamp.encode() + body, hashlib.sha256).hexdigest()


async def test_signed_deliveries_in_order(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    intent = await api.create_intent(metadata={"name": "Ольга €"})
    await aw.pay(intent["id"])
    await aw.flush()
    assert receiver.names() == [
        "payment_intent.created",
        "payment_attempt.authorized",
        "payment_intent.succeeded",
    ]
    for got, event in zip(receiver.requests, aw.events, strict=True):
        ts = got.headers["x-timestamp"]
        assert got.headers["content-type"] == "application/json"
        assert re.fullmatch(r"\d{13}", ts)
        assert abs(int(ts) - aw.now() * 1000) < 10_000
        assert got.headers["x-signature"] == expected_signature(ts, got.body)
        assert aw.sign(got.body, ts) == got.headers["x-signature"]
        assert json.loads(got.body) == event
    envelope = receiver.requests[-1].event
    assert set(envelope) == {"id", "name", "account_id", "data", "created_at", "version"}
    assert envelope["id"].startswith("evt_") and envelope["account_id"] == "acct_sandbox"
    assert envelope["version"] == "2024-06-30"
    assert envelope["data"]["object"]["status"] == "SUCCEEDED"
    assert envelope["data"]["object"]["metadata"] == {"name": "Ольга €"}
    assert "Ольга".encode() in receiver.requests[0].body  # raw UTF-8: verify the bytes, not a re-dump
    assert [(d.attempt, d.status_code, d.copy) for d in aw.deliveries] == [(1, 200, 1)] * 3


async def test_retries_until_200(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 204]
    intent = await api.create_intent()
    await aw.flush()
    assert [(d.event_id, d.attempt, d.status_code) for d in aw.deliveries] == [
        (aw.events[0]["id"], 1, 500),
        (aw.events[0]["id"], 2, 503),
        (aw.events[0]["id"], 3, 204),
        (aw.events[0]["id"], 4, 200),
    ]
    assert len({r.body for r in receiver.requests}) == 1
    for got in receiver.requests:
        assert got.headers["x-signature"] == expected_signature(got.headers["x-timestamp"], got.body)
    assert receiver.requests[0].event["data"]["object"]["id"] == intent["id"]


async def test_a_failing_event_does_not_block_later_ones(
    api: Api, aw: AirwallexSandbox, receiver: Receiver
) -> None:
    aw.webhook.backoff = (0.5, 0.5)
    receiver.statuses = [500]
    intent = await api.create_intent()
    await wait_for(lambda: aw.deliveries)
    await aw.pay(intent["id"])
    await aw.flush()
    assert receiver.names() == [
        "payment_intent.created",
        "payment_attempt.authorized",
        "payment_intent.succeeded",
        "payment_intent.created",
    ]
    assert [d.status_code for d in aw.deliveries] == [500, 200, 200, 200]


async def test_gives_up_after_max_attempts(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.max_attempts = 3
    receiver.statuses = [500] * 10
    await api.create_intent()
    await aw.flush()
    assert [d.attempt for d in aw.deliveries] == [1, 2, 3]
    assert aw.webhook.given_up == [(aw.events[0]["id"], 1)]


async def test_timeout_and_network_errors_are_retried(
    api: Api, aw: AirwallexSandbox, receiver: Receiver
) -> None:
    aw.webhook.timeout = 0.2
    aw.webhook.backoff = (0.3, 0.3)
    receiver.stalls = [0.5]
    await api.create_intent()
    await wait_for(lambda: aw.deliveries)
    aw.webhook.timeout = 5.0  # the retry must not time out on a busy machine
    await aw.flush()
    assert [(d.status_code, d.error) for d in aw.deliveries] == [(None, "timeout"), (200, None)]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    aw.set_webhook_url(f"http://127.0.0.1:{port}/hook")
    aw.webhook.max_attempts = 2
    await api.create_intent()
    await aw.flush()
    failed = aw.deliveries[2:]
    assert [(d.attempt, d.status_code) for d in failed] == [(1, None), (2, None)]
    assert all(d.error for d in failed)


async def test_duplicates(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(duplicates=3)
    receiver.hold = 0.02
    await api.create_intent()
    await aw.flush()
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert receiver.max_inflight == 1
    for got in receiver.requests:
        assert got.headers["x-signature"] == expected_signature(got.headers["x-timestamp"], got.body)
    assert sorted(d.copy for d in aw.deliveries) == [1, 2, 3]


async def test_concurrent_duplicates(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(duplicates=3, concurrent=True)
    receiver.hold = 0.25
    await api.create_intent()
    await aw.flush()
    assert len(receiver.requests) == 3 and receiver.max_inflight == 3


async def test_out_of_order(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(out_of_order=True)
    intent = await api.create_intent()
    await aw.pay(intent["id"])
    assert len(aw.webhook.describe()["held"]) == 3 and not aw.deliveries
    await aw.flush()
    assert receiver.names() == [
        "payment_intent.succeeded",
        "payment_attempt.authorized",
        "payment_intent.created",
    ]


async def test_out_of_order_batches_are_released_by_themselves(
    api: Api, aw: AirwallexSandbox, receiver: Receiver
) -> None:
    aw.webhook.mode(out_of_order=True, hold=0.05)
    await api.create_intent()
    await wait_for(lambda: receiver.requests)


async def test_explicit_order(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(drop=True)
    intent = await api.create_intent()
    await aw.cancel(intent["id"])
    aw.webhook.mode()
    aw.deliver_out_of_order([aw.events[1]["id"], aw.events[0]["id"]])
    await aw.flush()
    assert receiver.names() == ["payment_intent.cancelled", "payment_intent.created"]


async def test_delay(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(delay=0.3)
    start = asyncio.get_running_loop().time()
    await api.create_intent()
    assert not aw.deliveries
    await aw.flush()
    assert receiver.requests[0].at - start >= 0.3


async def test_drop_then_redeliver(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.webhook.mode(drop=True)
    intent = await api.create_intent()
    await aw.pay(intent["id"])
    await aw.flush()
    assert not receiver.requests and not aw.deliveries
    assert aw.webhook.dropped == [e["id"] for e in aw.events]
    succeeded = aw.events[-1]
    done = await aw.redeliver(succeeded["id"])
    assert (done.status_code, done.copy, done.attempt) == (200, 0, 1)
    assert json.loads(receiver.requests[0].body) == succeeded
    with pytest.raises(ValueError):
        await aw.redeliver("evt_nope")


async def test_no_url_means_undelivered(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    aw.set_webhook_url(None)
    await api.create_intent()
    await aw.flush()
    assert not aw.deliveries and len(aw.events) == 1
    with pytest.raises(ValueError):
        await aw.redeliver(aw.events[0]["id"])
    with pytest.raises(ValueError):
        aw.set_webhook_url("ftp://example.org")
    with pytest.raises(ValueError):
        aw.webhook.mode(duplicates=0)


async def test_flush_times_out_while_deliveries_are_pending(
    api: Api, aw: AirwallexSandbox, receiver: Receiver
) -> None:
    aw.webhook.mode(delay=5)
    await api.create_intent()
    with pytest.raises(TimeoutError):
        await aw.flush(timeout=0.05)
