"""The Airwallex HTTP API under /api/v1: login, payment intents, refunds."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .core import ApiError, fmt_ts, validation

if TYPE_CHECKING:
    from .sandbox import AirwallexSandbox

TOKEN_LIFETIME = 30 * 60.0
Body = dict[str, Any]
Handler = Callable[[Request, Body], Awaitable[tuple[int, Any]]]


class Tokens:
    """Bearer tokens issued by the login call, each valid for 30 minutes of ``now()``."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.issued: dict[str, float] = {}

    def issue(self) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        expires_at = self.now() + TOKEN_LIFETIME
        self.issued[token] = expires_at
        return token, expires_at

    def check(self, header: str | None) -> None:
        scheme, _, token = (header or "").partition(" ")
        expires_at = self.issued.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires_at is None or self.now() > expires_at:
            raise ApiError(401, "unauthorized", "Access token is missing, invalid or expired")

    def expire_all(self) -> None:
        for token in self.issued:
            self.issued[token] = float("-inf")


async def _json_body(request: Request) -> Body:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise validation("body", "the request body must be JSON") from None
    if not isinstance(parsed, dict):
        raise validation("body", "the request body must be a JSON object")
    return parsed


def api_routes(aw: AirwallexSandbox) -> list[Route]:
    def endpoint(fn: Handler, authenticated: bool = True) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            path = request.url.path
            delay, fault = aw.faults.take(path)
            try:
                if fault is not None:
                    raise fault
                if authenticated:
                    aw.tokens.check(request.headers.get("authorization"))
                body = await _json_body(request) if request.method == "POST" else {}
                status, payload = await fn(request, body)
                response: Response = JSONResponse(payload, status)
            except ApiError as exc:
                response = JSONResponse(exc.body(), exc.status)
            aw.calls.append((request.method, path, response.status_code))
            if delay > 0:
                await asyncio.sleep(delay)
            return response

        return run

    async def login(request: Request, body: Body) -> tuple[int, Any]:
        client_id = request.headers.get("x-client-id", "")
        api_key = request.headers.get("x-api-key", "")
        ok_id = hmac.compare_digest(client_id.encode(), aw.client_id.encode())
        ok_key = hmac.compare_digest(api_key.encode(), aw.api_key.encode())
        if not (ok_id and ok_key):
            raise ApiError(401, "credentials_invalid", "Client id or API key is invalid", "x-api-key")
        token, expires_at = aw.tokens.issue()
        aw.login_count += 1
        return 201, {"token": token, "expires_at": fmt_ts(expires_at)}

    async def create_intent(request: Request, body: Body) -> tuple[int, Any]:
        return 201, aw.ledger.create_intent(body).json()

    async def get_intent(request: Request, body: Body) -> tuple[int, Any]:
        return 200, aw.ledger.intent(request.path_params["intent_id"]).json()

    async def list_intents(request: Request, body: Body) -> tuple[int, Any]:
        return 200, aw.ledger.list_intents(request.query_params)

    async def cancel_intent(request: Request, body: Body) -> tuple[int, Any]:
        return 200, aw.ledger.cancel(request.path_params["intent_id"], body=body).json()

    async def create_refund(request: Request, body: Body) -> tuple[int, Any]:
        return 201, aw.ledger.create_refund(body).json()

    async def get_refund(request: Request, body: Body) -> tuple[int, Any]:
        return 200, aw.ledger.refund(request.path_params["refund_id"]).json()

    async def unknown(request: Request, body: Body) -> tuple[int, Any]:
        raise ApiError(404, "resource_not_found", f"no such endpoint: {request.method} {request.url.path}")

    pa = "/api/v1/pa"
    return [
        Route("/api/v1/authentication/login", endpoint(login, authenticated=False), methods=["POST"]),
        Route(f"{pa}/payment_intents/create", endpoint(create_intent), methods=["POST"]),
        Route(f"{pa}/payment_intents", endpoint(list_intents), methods=["GET"]),
        Route(f"{pa}/payment_intents/{{intent_id}}", endpoint(get_intent), methods=["GET"]),
        Route(f"{pa}/payment_intents/{{intent_id}}/cancel", endpoint(cancel_intent), methods=["POST"]),
        Route(f"{pa}/refunds/create", endpoint(create_refund), methods=["POST"]),
        Route(f"{pa}/refunds/{{refund_id}}", endpoint(get_refund), methods=["GET"]),
        Route("/api/v1/{rest:path}", endpoint(unknown), methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
