"""GET /pay/{order}: sends the member to Airwallex's hosted payment page (or the local sandbox's)."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from subbot.payments.airwallex.errors import AirwallexError, AirwallexUnavailable
from subbot.store.models import Order

if TYPE_CHECKING:
    from subbot.app import SubbotApp

# Airwallex's documented way to reach the hosted payment page: its JS SDK's redirectToCheckout.
SDK_URL = "https://checkout.airwallex.com/assets/elements.bundle.min.js"
LOCAL = {"127.0.0.1", "localhost", "::1"}


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
        "</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status)


def build_router(app: SubbotApp) -> APIRouter:
    router = APIRouter(tags=["pay"])

    @router.get("/pay/{order_id}")
    async def pay(order_id: str) -> Response:
        async with app.db.sessions() as session:
            order = await session.get(Order, order_id[:32]) if order_id.isascii() else None
        if order is None or order.provider != "airwallex":
            return _page("Payment link not found", "<p>Choose a plan again in the bot with /plans.</p>", 404)
        if order.status == "paid":
            return _page("Already paid", "<p>This order is paid. Go back to the bot: /status.</p>")
        if order.status != "pending" or order.expires_at <= app.clock.now() or not order.provider_ref:
            return _page(
                "This payment link has expired", "<p>Choose a plan again in the bot with /plans.</p>", 410
            )
        if app.airwallex is None:
            return _page("Card payments are unavailable", "<p>Pay with Telegram Stars in the bot.</p>", 503)
        try:
            intent = await app.airwallex.get_intent(order.provider_ref)
        except (AirwallexError, AirwallexUnavailable):
            return _page(
                "Card payments are unavailable right now", "<p>Try again shortly, or pay with Stars.</p>", 503
            )
        base = app.settings.airwallex_base_url.rstrip("/")
        if urlsplit(base).hostname in LOCAL:
            secret = quote(intent.client_secret or "", safe="")
            return RedirectResponse(f"{base}/checkout/{intent.id}?client_secret={secret}", status_code=303)
        env = "prod" if "api.airwallex.com" in base else "demo"
        options = json.dumps(
            {
                "env": env,
                "intent_id": intent.id,
                "client_secret": intent.client_secret,
                "currency": intent.amount.currency,
            }
        ).replace("<", "\\u003c")
        script = (
            f"<script src='{SDK_URL}'></script><script>"
            f"const o={options};Airwallex.init({{env:o.env,origin:location.origin}});"
            "Airwallex.redirectToCheckout({env:o.env,mode:'payment',intent_id:o.intent_id,"
            "client_secret:o.client_secret,currency:o.currency});</script>"
        )
        return _page(
            "Redirecting to the secure payment page…", f"<p>{html.escape(intent.amount.format())}</p>{script}"
        )

    return router
