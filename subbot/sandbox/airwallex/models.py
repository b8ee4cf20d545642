"""PaymentIntent, PaymentAttempt and Refund records and their JSON as the API returns it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .core import fmt_ts, render_amount

INTENT_STATUSES = frozenset(
    {
        "REQUIRES_PAYMENT_METHOD",
        "REQUIRES_CUSTOMER_ACTION",
        "REQUIRES_CAPTURE",
        "PENDING",
        "PENDING_REVIEW",
        "SUCCEEDED",
        "CANCELLED",
    }
)
PAYABLE = frozenset({"REQUIRES_PAYMENT_METHOD", "REQUIRES_CUSTOMER_ACTION"})
REFUND_STATUSES = frozenset({"RECEIVED", "ACCEPTED", "SETTLED", "FAILED"})


@dataclass
class Attempt:
    id: str
    payment_intent_id: str
    amount: Decimal
    currency: str
    merchant_order_id: str
    status: str  # AUTHORIZED | CAPTURE_REQUESTED | FAILED
    created: float
    failure_code: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "payment_intent_id": self.payment_intent_id,
            "amount": render_amount(self.amount),
            "currency": self.currency,
            "merchant_order_id": self.merchant_order_id,
            "status": self.status,
            "payment_method": {"type": "card", "card": {"brand": "visa", "last4": "4242"}},
            "created_at": fmt_ts(self.created),
            "updated_at": fmt_ts(self.created),
        }
        if self.failure_code is not None:
            out["failure_code"] = self.failure_code
            out["payment_method"]["card"]["last4"] = "0002"
        return out


@dataclass
class Intent:
    id: str
    request_id: str
    amount: Decimal
    currency: str
    merchant_order_id: str
    client_secret: str
    created: float
    metadata: dict[str, str] = field(default_factory=dict)
    return_url: str | None = None
    descriptor: str | None = None
    status: str = "REQUIRES_PAYMENT_METHOD"
    captured: Decimal = Decimal(0)
    updated: float = 0.0
    latest_attempt: Attempt | None = None
    cancelled_at: float | None = None
    cancellation_reason: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "request_id": self.request_id,
            "amount": render_amount(self.amount),
            "currency": self.currency,
            "merchant_order_id": self.merchant_order_id,
            "metadata": copy.deepcopy(self.metadata),
            "status": self.status,
            "captured_amount": render_amount(self.captured),
            "client_secret": self.client_secret,
            "created_at": fmt_ts(self.created),
            "updated_at": fmt_ts(self.updated or self.created),
        }
        if self.return_url is not None:
            out["return_url"] = self.return_url
        if self.descriptor is not None:
            out["descriptor"] = self.descriptor
        if self.latest_attempt is not None:
            out["latest_payment_attempt"] = self.latest_attempt.json()
        if self.cancelled_at is not None:
            out["cancelled_at"] = fmt_ts(self.cancelled_at)
            out["cancellation_reason"] = self.cancellation_reason or ""
        return out


@dataclass
class Refund:
    id: str
    request_id: str
    payment_intent_id: str
    payment_attempt_id: str | None
    amount: Decimal
    currency: str
    created: float
    reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    status: str = "RECEIVED"
    updated: float = 0.0

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "payment_intent_id": self.payment_intent_id,
            "payment_attempt_id": self.payment_attempt_id,
            "amount": render_amount(self.amount),
            "currency": self.currency,
            "reason": self.reason,
            "metadata": copy.deepcopy(self.metadata),
            "status": self.status,
            "created_at": fmt_ts(self.created),
            "updated_at": fmt_ts(self.updated or self.created),
        }
