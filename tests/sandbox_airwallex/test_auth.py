"""Login, bearer tokens, expiry and re-login."""

from __future__ import annotations

import re
from datetime import datetime

import httpx

from subbot.sandbox.airwallex import AirwallexSandbox

from .conftest import CREDENTIALS, LOGIN, Api, Clock

INTENT = "/api/v1/pa/payment_intents/int_unknown"


async def test_login_answers_201_with_a_30_minute_token(
    http: httpx.AsyncClient, aw: AirwallexSandbox
) -> None:
    before = aw.now()
    resp = await http.post(LOGIN, headers=CREDENTIALS, json={})
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {"token", "expires_at"} and body["token"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000", body["expires_at"])
    expires = datetime.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert before + 1799 <= expires <= aw.now() + 1800
    assert aw.login_count == 1
    assert aw.calls[-1] == ("POST", LOGIN, 201)


async def test_wrong_or_missing_credentials_are_401(http: httpx.AsyncClient, aw: AirwallexSandbox) -> None:
    for headers in ({"x-client-id": "sandbox-client", "x-api-key": "nope"}, {}):
        resp = await http.post(LOGIN, headers=headers, json={})
        assert resp.status_code == 401
        assert resp.json()["code"] == "credentials_invalid"
        assert set(resp.json()) >= {"code", "message", "source"}
    assert aw.login_count == 0


async def test_calls_need_a_valid_bearer_token(http: httpx.AsyncClient, api: Api) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer forged"},
        {"Authorization": api.headers["Authorization"][7:]},
    ):
        resp = await http.get(INTENT, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["code"] == "unauthorized"
    resp = await api.get(INTENT)
    assert resp.status_code == 404 and resp.json()["code"] == "resource_not_found"


async def test_token_expires_after_30_minutes_then_relogin_works(api: Api, clock: Clock) -> None:
    clock.advance(29 * 60)
    assert (await api.get(INTENT)).status_code == 404
    clock.advance(2 * 60)
    resp = await api.get(INTENT)
    assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
    await api.login()
    assert (await api.get(INTENT)).status_code == 404


async def test_expire_tokens_forces_relogin(api: Api, aw: AirwallexSandbox) -> None:
    aw.expire_tokens()
    assert (await api.get(INTENT)).status_code == 401
    await api.login()
    assert (await api.get(INTENT)).status_code == 404
    assert aw.login_count == 2


async def test_health_and_unknown_endpoints(http: httpx.AsyncClient, api: Api) -> None:
    assert (await http.get("/health")).status_code == 200
    resp = await api.get("/api/v1/pa/payment_links/whatever")
    assert resp.status_code == 404 and resp.json()["code"] == "resource_not_found"
