"""The hosted payment page and its pay call."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from subbot.sandbox.airwallex import AirwallexSandbox

from .conftest import Api


def page_data(text: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="checkout-data">(.*?)</script>', text, re.S)
    assert found
    data: dict[str, str] = json.loads(found.group(1))
    return data


async def test_page_renders_escaped(api: Api, aw: AirwallexSandbox, base_url: str) -> None:
    evil = '<script>alert("x")</script>&'
    intent = await api.create_intent(
        amount=12.5,
        currency="EUR",
        merchant_order_id=evil,
        return_url="https://shop.example/back?a=1&b=</script>",
    )
    url = aw.checkout_url(intent["id"])
    assert url == f"{base_url}/checkout/{intent['id']}?client_secret={intent['client_secret']}"
    resp = await api.http.get(url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "script-src 'nonce-" in resp.headers["content-security-policy"]
    text = resp.text
    assert "12.50 EUR" in text
    assert html.escape(evil) in text and evil not in text
    assert "Pay (succeeds)" in text and "Pay with a declined card" in text
    data = page_data(text)
    assert data["return_url"] == "https://shop.example/back?a=1&b=</script>"
    assert data["pay_url"] == f"/checkout/{intent['id']}/pay"
    raw_data = text.split('id="checkout-data">')[1].split("</script>")[0]
    assert "<" not in raw_data and "&" not in raw_data


async def test_wrong_secret_is_403(api: Api, http: httpx.AsyncClient, aw: AirwallexSandbox) -> None:
    intent = await api.create_intent()
    assert (await http.get(f"/checkout/{intent['id']}?client_secret=nope")).status_code == 403
    assert (await http.get(f"/checkout/{intent['id']}")).status_code == 403
    assert (await http.get("/checkout/int_nope?client_secret=x")).status_code == 404
    resp = await http.post(
        f"/checkout/{intent['id']}/pay", json={"outcome": "succeeded", "client_secret": "nope"}
    )
    assert resp.status_code == 403
    assert aw.intents[intent["id"]]["status"] == "REQUIRES_PAYMENT_METHOD"


async def test_pay_through_the_page(api: Api, http: httpx.AsyncClient, aw: AirwallexSandbox) -> None:
    intent = await api.create_intent(amount=500, currency="JPY", return_url="https://shop.example/done")
    page = await http.get(aw.checkout_url(intent["id"]))
    data = page_data(page.text)
    assert "500 JPY" in page.text
    declined = await http.post(
        data["pay_url"], json={"outcome": "declined", "client_secret": data["client_secret"]}
    )
    assert declined.status_code == 200
    assert declined.json()["status"] == "REQUIRES_PAYMENT_METHOD"
    assert declined.json()["latest_payment_attempt"]["status"] == "FAILED"
    ok = await http.post(
        data["pay_url"], json={"outcome": "succeeded", "client_secret": data["client_secret"]}
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "SUCCEEDED" and ok.json()["captured_amount"] == 500
    assert [e["name"] for e in aw.events] == [
        "payment_intent.created",
        "payment_attempt.failed_to_process",
        "payment_intent.requires_payment_method",
        "payment_attempt.authorized",
        "payment_intent.succeeded",
    ]
    succeeded = aw.events[-1]["data"]["object"]
    assert succeeded == aw.intents[intent["id"]] and succeeded["status"] == "SUCCEEDED"
    attempt = aw.events[1]["data"]["object"]
    assert attempt["payment_intent_id"] == intent["id"] and attempt["id"].startswith("att_")
    twice = await http.post(
        data["pay_url"], json={"outcome": "succeeded", "client_secret": data["client_secret"]}
    )
    assert twice.status_code == 400 and twice.json()["code"] == "invalid_status_for_operation"
    bad = await http.post(data["pay_url"], json={"outcome": "maybe", "client_secret": data["client_secret"]})
    assert bad.status_code == 400
    again = await http.get(aw.checkout_url(intent["id"]))
    assert page_data(again.text)["status"] == "SUCCEEDED"
    assert 'id="actions" hidden' in again.text


async def test_python_pay_and_cancel(api: Api, aw: AirwallexSandbox) -> None:
    intent = await api.create_intent()
    assert (await aw.pay(intent["id"], "declined"))["status"] == "REQUIRES_PAYMENT_METHOD"
    cancelled = await aw.cancel(intent["id"])
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelled_at"]
    with pytest.raises(ValueError, match="cannot be paid"):
        await aw.pay(intent["id"])
    with pytest.raises(ValueError):
        await aw.pay("int_nope")


def test_checkout_url_needs_a_base_url() -> None:
    with pytest.raises(RuntimeError):
        AirwallexSandbox().checkout_url("int_x")
