"""Fault injection, the control API and the command line."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from subbot.sandbox.airwallex import AirwallexSandbox
from subbot.sandbox.airwallex.__main__ import build, main

from .conftest import CREDENTIALS, LOGIN, Api, Receiver

CREATE = "/api/v1/pa/payment_intents/create"


async def test_fail_next(api: Api, aw: AirwallexSandbox) -> None:
    aw.faults.fail_next(2, status=503, paths=[CREATE])
    other = await api.get("/api/v1/pa/payment_intents")
    assert other.status_code == 200
    for _ in range(2):
        resp = await api.post(
            CREATE, {"request_id": "r1", "amount": 1, "currency": "USD", "merchant_order_id": "o"}
        )
        assert resp.status_code == 503 and resp.json()["code"] == "service_unavailable"
    assert not aw.intents
    created = await api.post(
        CREATE, {"request_id": "r1", "amount": 1, "currency": "USD", "merchant_order_id": "o"}
    )
    assert created.status_code == 201
    assert [c[2] for c in aw.calls if c[1] == CREATE] == [503, 503, 201]
    aw.faults.fail_next(1)
    assert (await api.http.post(LOGIN, headers=CREDENTIALS)).status_code == 500
    with pytest.raises(ValueError):
        aw.faults.fail_next(1, status=418)


async def test_timeout_next_processes_then_answers_late(api: Api, aw: AirwallexSandbox) -> None:
    aw.faults.timeout_next(1, seconds=0.5, paths="/api/v1/pa/payment_intents/create")
    body = {"request_id": str(uuid.uuid4()), "amount": 2, "currency": "USD", "merchant_order_id": "o-late"}
    with pytest.raises(httpx.ReadTimeout):
        await api.http.post(CREATE, json=body, headers=api.headers, timeout=0.1)
    retry = await api.post(CREATE, body)
    assert retry.status_code == 400 and retry.json()["code"] == "duplicate_request"
    found = await api.get("/api/v1/pa/payment_intents", merchant_order_id="o-late")
    assert len(found.json()["items"]) == 1
    aw.faults.timeout_next(1, seconds=0.05)
    aw.faults.clear()
    assert not aw.faults.describe()


async def control(http: httpx.AsyncClient, path: str, body: Any = None, status: int = 200) -> Any:
    resp = await http.post(path, json=body) if body is not None else await http.post(path)
    assert resp.status_code == status, resp.text
    return resp.json().get("result") if status == 200 else resp.json()


async def test_control_api(
    api: Api, aw: AirwallexSandbox, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await control(http, "/control/webhook", {"url": receiver.url, "duplicates": 2, "max_attempts": 4})
    assert hook["duplicates"] == 2 and hook["max_attempts"] == 4 and hook["url"] == receiver.url
    intent = await api.create_intent()
    paid = await control(http, f"/control/intents/{intent['id']}/pay", {"outcome": "succeeded"})
    assert paid["status"] == "SUCCEEDED"
    await aw.flush()
    assert len(receiver.requests) == 6
    await control(http, "/control/webhook", {})
    refund = (await api.refund(intent["id"])).json()
    assert (await control(http, f"/control/refunds/{refund['id']}/settle", {}))["status"] == "SETTLED"
    redelivered = await control(http, f"/control/events/{aw.events[0]['id']}/redeliver")
    assert redelivered["status_code"] == 200 and redelivered["copy"] == 0
    faults = await control(
        http, "/control/faults", {"kind": "fail", "n": 1, "status": 500, "paths": [CREATE]}
    )
    assert faults[0]["status"] == 500
    assert await control(http, "/control/faults", {"kind": "clear"}) == []
    await control(http, "/control/tokens/expire")
    assert (await api.get("/api/v1/pa/payment_intents")).status_code == 401
    await api.login()
    other = await api.create_intent()
    cancelled = await control(http, f"/control/intents/{other['id']}/cancel", {"reason": "expired"})
    assert cancelled["status"] == "CANCELLED"
    state = (await http.get("/control/state")).json()["result"]
    assert {i["id"] for i in state["intents"]} == {intent["id"], other["id"]}
    assert len(state["refunds"]) == 1 and state["events"] == aw.events
    assert len(state["deliveries"]) == len(aw.deliveries) and state["login_count"] == 2


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/control/intents/int_nope/pay", {}, 404),
        ("/control/intents/{id}/pay", {"outcome": "maybe"}, 400),
        ("/control/intents/{id}/pay", {"outcome": 1}, 400),
        ("/control/webhook", {"duplicates": 0}, 400),
        ("/control/webhook", {"duplicates": "2"}, 400),
        ("/control/webhook", {"url": "ftp://x"}, 400),
        ("/control/webhook", {"bogus": 1}, 400),
        ("/control/webhook", {"backoff": [1]}, 400),
        ("/control/webhook", [1, 2], 400),
        ("/control/faults", {"kind": "explode"}, 400),
        ("/control/faults", {"kind": "fail", "status": 200}, 400),
        ("/control/faults", {"kind": "timeout"}, 400),
        ("/control/faults", {"kind": "fail", "paths": ["no-slash"]}, 400),
        ("/control/faults", {"kind": "fail", "n": 0}, 400),
        ("/control/events/evt_nope/redeliver", {}, 404),
        ("/control/refunds/rfd_nope/settle", {}, 404),
    ],
)
async def test_control_bad_input(
    api: Api, http: httpx.AsyncClient, path: str, body: Any, status: int
) -> None:
    intent = await api.create_intent()
    resp = await http.post(path.replace("{id}", intent["id"]), json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["ok"] is False
    garbled = await http.post("/control/webhook", content=b"{not json")
    assert garbled.status_code == 400


def test_cli_build(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    args = argparse.Namespace(
        host="127.0.0.1",
        port=8082,
        webhook_url="http://127.0.0.1:9/hook",
        client_id="c",
        api_key="k",
        webhook_secret="s",
    )
    aw = build(args)
    assert aw.base_url == "http://127.0.0.1:8082" and aw.webhook.url == "http://127.0.0.1:9/hook"
    assert aw.client_id == "c" and aw.webhook_secret == "s"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--webhook-url" in capsys.readouterr().out
