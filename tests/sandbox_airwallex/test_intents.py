"""PaymentIntent create / retrieve / list / cancel over HTTP."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from subbot.sandbox.airwallex import AirwallexSandbox

from .conftest import Api, Clock

CREATE = "/api/v1/pa/payment_intents/create"
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000")


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "amount": 9.99,
        "currency": "USD",
        "merchant_order_id": "order-1",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def test_create_in_major_units(api: Api, aw: AirwallexSandbox) -> None:
    req = body(metadata={"order_token": "tok-1", "user": "42"}, return_url="https://example.org/done")
    resp = await api.post(CREATE, {**req, "descriptor": "Paid Club"})
    assert resp.status_code == 201, resp.text
    intent = resp.json()
    assert intent["id"].startswith("int_")
    assert intent["amount"] == 9.99 and intent["currency"] == "USD"
    assert intent["request_id"] == req["request_id"]
    assert intent["merchant_order_id"] == "order-1"
    assert intent["metadata"] == {"order_token": "tok-1", "user": "42"}
    assert intent["status"] == "REQUIRES_PAYMENT_METHOD"
    assert intent["captured_amount"] == 0
    assert intent["client_secret"]
    assert TS.fullmatch(intent["created_at"]) and TS.fullmatch(intent["updated_at"])
    assert aw.intents[intent["id"]] == intent
    assert [e["name"] for e in aw.events] == ["payment_intent.created"]
    assert aw.events[0]["data"]["object"] == intent
    whole = await api.create_intent(amount=2, currency="eur")
    assert whole["amount"] == 2 and whole["currency"] == "EUR"


@pytest.mark.parametrize(
    ("over", "source"),
    [
        ({"request_id": None}, "request_id"),
        ({"amount": None}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "9.99"}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": None}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"merchant_order_id": None}, "merchant_order_id"),
        ({"merchant_order_id": ""}, "merchant_order_id"),
        ({"amount": 9.999}, "amount"),
        ({"amount": 1.5, "currency": "JPY"}, "amount"),
        ({"amount": 1.2345, "currency": "KWD"}, "amount"),
        ({"metadata": {"n": 1}}, "metadata"),
        ({"metadata": ["x"]}, "metadata"),
        ({"descriptor": "x" * 33}, "descriptor"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
    ],
)
async def test_validation_errors(api: Api, aw: AirwallexSandbox, over: dict[str, Any], source: str) -> None:
    resp = await api.post(CREATE, body(**over))
    assert resp.status_code == 400
    assert resp.json()["code"] == "validation_error"
    assert resp.json()["source"] == source
    assert resp.json()["message"]
    assert not aw.intents and not aw.events


@pytest.mark.parametrize(("amount", "currency"), [(500, "JPY"), (1.234, "KWD"), (0.1, "BHD"), (10.5, "USD")])
async def test_currency_exponents_accepted(api: Api, amount: float, currency: str) -> None:
    assert (await api.create_intent(amount=amount, currency=currency))["amount"] == amount


async def test_non_json_body_is_a_validation_error(api: Api) -> None:
    resp = await api.http.post(CREATE, content=b"{nope", headers=api.headers)
    assert resp.status_code == 400 and resp.json()["code"] == "validation_error"


async def test_reused_request_id_is_duplicate_request(api: Api, aw: AirwallexSandbox) -> None:
    rid = str(uuid.uuid4())
    bad = await api.post(CREATE, body(request_id=rid, amount=0))
    assert bad.status_code == 400  # a refused request does not use up its request_id
    first = await api.post(CREATE, body(request_id=rid))
    assert first.status_code == 201
    again = await api.post(CREATE, body(request_id=rid, merchant_order_id="other"))
    assert again.status_code == 400
    assert again.json()["code"] == "duplicate_request"
    assert "id" not in again.json()
    assert len(aw.intents) == 1


async def test_retrieve(api: Api) -> None:
    intent = await api.create_intent()
    resp = await api.get(f"/api/v1/pa/payment_intents/{intent['id']}")
    assert resp.status_code == 200 and resp.json() == intent
    missing = await api.get("/api/v1/pa/payment_intents/int_nope")
    assert missing.status_code == 404 and missing.json()["code"] == "resource_not_found"


async def test_list_filters_and_paging(api: Api, aw: AirwallexSandbox, clock: Clock) -> None:
    early = [await api.create_intent(merchant_order_id=f"o{i}") for i in range(3)]
    clock.advance(600)
    later = [await api.create_intent(merchant_order_id=f"o{i}") for i in range(3, 7)]
    await aw.pay(later[0]["id"])

    async def items(**params: Any) -> tuple[list[str], bool]:
        resp = await api.get("/api/v1/pa/payment_intents", **params)
        assert resp.status_code == 200, resp.text
        return [i["merchant_order_id"] for i in resp.json()["items"]], resp.json()["has_more"]

    assert await items() == (["o6", "o5", "o4", "o3", "o2", "o1", "o0"], False)  # newest first
    assert await items(merchant_order_id="o4") == (["o4"], False)
    assert await items(status="SUCCEEDED") == (["o3"], False)
    assert await items(page_size=3) == (["o6", "o5", "o4"], True)  # page_num is 0-based
    assert await items(page_size=3, page_num=1) == (["o3", "o2", "o1"], True)
    assert await items(page_size=3, page_num=2) == (["o0"], False)
    assert await items(page_size=3, page_num=3) == ([], False)
    boundary = later[0]["created_at"]
    assert await items(from_created_at=boundary) == (["o6", "o5", "o4", "o3"], False)
    assert await items(to_created_at=early[-1]["created_at"]) == (["o2", "o1", "o0"], False)
    for bad in ({"page_size": 0}, {"page_num": -1}, {"status": "PAID"}, {"from_created_at": "yesterday"}):
        resp = await api.get("/api/v1/pa/payment_intents", **bad)
        assert resp.status_code == 400 and resp.json()["code"] == "validation_error"


async def test_cancel(api: Api, aw: AirwallexSandbox) -> None:
    intent = await api.create_intent()
    path = f"/api/v1/pa/payment_intents/{intent['id']}/cancel"
    resp = await api.post(path, {"request_id": str(uuid.uuid4()), "cancellation_reason": "expired"})
    assert resp.status_code == 200 and resp.json()["status"] == "CANCELLED"
    assert aw.events[-1]["name"] == "payment_intent.cancelled"
    again = await api.post(path, {"request_id": str(uuid.uuid4())})
    assert again.status_code == 400
    paid = await api.create_intent()
    await aw.pay(paid["id"])
    with pytest.raises(ValueError, match="SUCCEEDED"):
        await aw.cancel(paid["id"])
    other = await api.create_intent()
    assert (await aw.cancel(other["id"]))["status"] == "CANCELLED"
