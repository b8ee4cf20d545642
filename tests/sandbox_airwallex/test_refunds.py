"""Refunds: full, partial, refused ones, settlement events."""

from __future__ import annotations

import uuid

import pytest

from subbot.sandbox.airwallex import AirwallexSandbox

from .conftest import Api, Receiver


async def paid_intent(api: Api, aw: AirwallexSandbox, amount: float = 10, currency: str = "USD") -> str:
    intent = await api.create_intent(amount=amount, currency=currency)
    await aw.pay(intent["id"])
    return str(intent["id"])


async def test_full_refund_by_default(api: Api, aw: AirwallexSandbox) -> None:
    intent_id = await paid_intent(api, aw, amount=9.99)
    resp = await api.refund(intent_id, reason="customer asked", metadata={"order": "o1"})
    assert resp.status_code == 201, resp.text
    refund = resp.json()
    assert refund["id"].startswith("rfd_")
    assert refund["amount"] == 9.99 and refund["currency"] == "USD"
    assert refund["status"] == "RECEIVED" and refund["reason"] == "customer asked"
    assert refund["payment_intent_id"] == intent_id and refund["metadata"] == {"order": "o1"}
    assert aw.events[-1]["name"] == "refund.received" and aw.events[-1]["data"]["object"] == refund
    got = await api.get(f"/api/v1/pa/refunds/{refund['id']}")
    assert got.status_code == 200 and got.json() == refund
    assert aw.refunds[refund["id"]] == refund
    again = await api.refund(intent_id, amount=0.01)
    assert again.status_code == 400 and again.json()["source"] == "amount"
    missing = await api.get("/api/v1/pa/refunds/rfd_nope")
    assert missing.status_code == 404 and missing.json()["code"] == "resource_not_found"


async def test_partial_refunds_and_over_refund(api: Api, aw: AirwallexSandbox) -> None:
    intent_id = await paid_intent(api, aw, amount=10)
    assert (await api.refund(intent_id, amount=3.5)).status_code == 201
    over = await api.refund(intent_id, amount=6.51)
    assert over.status_code == 400
    assert over.json()["code"] == "validation_error" and "6.5" in over.json()["message"]
    rest = await api.refund(intent_id)
    assert rest.status_code == 201 and rest.json()["amount"] == 6.5
    for bad in (0, -1, 1.001, "1"):
        resp = await api.refund(intent_id, amount=bad)
        assert resp.status_code == 400 and resp.json()["source"] == "amount"


async def test_refund_of_unpaid_or_unknown_intent_is_refused(api: Api, aw: AirwallexSandbox) -> None:
    intent = await api.create_intent()
    resp = await api.refund(intent["id"])
    assert resp.status_code == 400
    assert resp.json()["code"] == "validation_error"
    assert "REQUIRES_PAYMENT_METHOD" in resp.json()["message"]
    unknown = await api.refund("int_nope")
    assert unknown.status_code == 404 and unknown.json()["source"] == "payment_intent_id"
    no_id = await api.post("/api/v1/pa/refunds/create", {"request_id": str(uuid.uuid4())})
    assert no_id.status_code == 400 and no_id.json()["source"] == "payment_intent_id"
    assert not aw.refunds


async def test_duplicate_refund_request(api: Api, aw: AirwallexSandbox) -> None:
    intent_id = await paid_intent(api, aw)
    rid = str(uuid.uuid4())
    body = {"request_id": rid, "payment_intent_id": intent_id, "amount": 1}
    assert (await api.post("/api/v1/pa/refunds/create", body)).status_code == 201
    again = await api.post("/api/v1/pa/refunds/create", body)
    assert again.status_code == 400 and again.json()["code"] == "duplicate_request"
    assert len(aw.refunds) == 1


async def test_settle_emits_events(api: Api, aw: AirwallexSandbox, receiver: Receiver) -> None:
    intent_id = await paid_intent(api, aw)
    refund = (await api.refund(intent_id, amount=4)).json()
    settled = await aw.settle_refund(refund["id"])
    assert settled["status"] == "SETTLED"
    await aw.flush()
    assert receiver.names()[-3:] == ["refund.received", "refund.accepted", "refund.settled"]
    assert [e["data"]["object"]["status"] for e in aw.events[-3:]] == ["RECEIVED", "ACCEPTED", "SETTLED"]
    with pytest.raises(ValueError, match="already SETTLED"):
        await aw.settle_refund(refund["id"])


async def test_failed_refund_frees_the_amount(api: Api, aw: AirwallexSandbox) -> None:
    intent_id = await paid_intent(api, aw, amount=5)
    refund = (await api.refund(intent_id)).json()
    assert (await api.refund(intent_id, amount=1)).status_code == 400
    assert (await aw.settle_refund(refund["id"], outcome="failed"))["status"] == "FAILED"
    assert aw.events[-1]["name"] == "refund.failed"
    assert (await api.refund(intent_id)).json()["amount"] == 5
