"""The hosted payment page: GET /checkout/{intent_id}?client_secret=... and its pay call."""

from __future__ import annotations

import hmac
import html
import json
import secrets
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .core import ApiError, exponent, validation
from .models import Intent

if TYPE_CHECKING:
    from .sandbox import AirwallexSandbox

PAGE = Template(Path(__file__).with_name("checkout.html").read_text(encoding="utf-8"))
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def _script_json(value: Any) -> str:
    """JSON safe to put inside <script type="application/json">."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _display_amount(intent: Intent) -> str:
    places = exponent(intent.currency)
    return f"{intent.amount.quantize(Decimal(1).scaleb(-places)):f}"


def render_page(intent: Intent) -> tuple[str, str]:
    """The page's HTML and the nonce its inline script and style carry."""
    nonce = secrets.token_urlsafe(16)
    data = {
        "intent_id": intent.id,
        "client_secret": intent.client_secret,
        "status": intent.status,
        "return_url": intent.return_url,
        "pay_url": f"/checkout/{intent.id}/pay",
    }
    final = intent.status in ("SUCCEEDED", "CANCELLED")
    text = PAGE.substitute(
        nonce=nonce,
        amount=html.escape(_display_amount(intent)),
        currency=html.escape(intent.currency),
        merchant_order_id=html.escape(intent.merchant_order_id),
        intent_id=html.escape(intent.id),
        status=html.escape(intent.status),
        actions_hidden=" hidden" if final else "",
        data=_script_json(data),
    )
    return text, nonce


def _csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _secret_ok(intent: Intent, given: Any) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), intent.client_secret.encode())


def checkout_routes(aw: AirwallexSandbox) -> list[Route]:
    async def page(request: Request) -> Response:
        intent = aw.ledger.intents.get(request.path_params["intent_id"])
        if intent is None:
            return HTMLResponse(
                "<!doctype html><title>Not found</title><p>Unknown payment.</p>", 404, HEADERS
            )
        if not _secret_ok(intent, request.query_params.get("client_secret")):
            return HTMLResponse(
                "<!doctype html><title>Forbidden</title><p>Invalid client secret.</p>", 403, HEADERS
            )
        text, nonce = render_page(intent)
        return HTMLResponse(text, 200, {**HEADERS, "Content-Security-Policy": _csp(nonce)})

    async def pay(request: Request) -> Response:
        try:
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                raise validation("body", "the request body must be JSON") from None
            if not isinstance(body, dict):
                raise validation("body", "the request body must be a JSON object")
            intent = aw.ledger.intent(request.path_params["intent_id"])
            if not _secret_ok(intent, body.get("client_secret")):
                raise ApiError(403, "forbidden", "client_secret does not match this payment", "client_secret")
            outcome = body.get("outcome", "succeeded")
            if not isinstance(outcome, str):
                raise validation("outcome", "outcome must be a string")
            paid = await aw.pay(intent.id, outcome)
        except ApiError as exc:
            return JSONResponse(exc.body(), exc.status, HEADERS)
        return JSONResponse(paid, 200, HEADERS)

    return [
        Route("/checkout/{intent_id}", page, methods=["GET"]),
        Route("/checkout/{intent_id}/pay", pay, methods=["POST"]),
    ]
