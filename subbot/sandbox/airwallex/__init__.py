"""A local emulator of Airwallex's payments API for tests, benchmarks and demos.

``AirwallexSandbox().app`` is an ASGI app speaking the parts of api.airwallex.com a subscription
bot uses (login, payment intents, refunds; Airwallex's JSON errors, major-unit amounts and
``+0000`` timestamps), a hosted payment page at ``/checkout/{intent_id}?client_secret=...``, a
control API under ``/control/`` and ``/health``. Events are POSTed to the webhook URL, signed as
Airwallex does (``x-timestamp`` in ms, ``x-signature`` = hex HMAC-SHA256 of timestamp + body), with
retries and switches for duplicates, disorder, delay and loss::

    aw = AirwallexSandbox(now=clock)
    aw.set_webhook_url("http://127.0.0.1:8080/webhooks/airwallex")
    async with aw.serve() as base_url:
        ...  # the client logs in at base_url + "/api/v1/authentication/login"
        await aw.pay(intent_id)  # the shopper pays; payment_intent.succeeded is delivered
        await aw.flush()

Listing (``GET /api/v1/pa/payment_intents``) is newest first and ``page_num`` is 0-based.
"""

from .core import ApiError
from .faults import FaultInjector
from .sandbox import EVENT_VERSION, AirwallexSandbox
from .webhooks import Delivery, WebhookMode, Webhooks

__all__ = [
    "EVENT_VERSION",
    "AirwallexSandbox",
    "ApiError",
    "Delivery",
    "FaultInjector",
    "WebhookMode",
    "Webhooks",
]
