"""The payments state: intents, attempts and refunds, with Airwallex's validation and events."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from .core import ApiError, new_id, not_found, parse_amount, parse_currency, parse_ts, validation
from .models import INTENT_STATUSES, PAYABLE, Attempt, Intent, Refund

Emit = Callable[[str, dict[str, Any]], None]
OUTCOMES = ("succeeded", "declined")
MAX_PAGE_SIZE = 1000


def _text(body: Mapping[str, Any], key: str, max_len: int | None = None, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise validation(key, f"{key} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise validation(key, f"{key} must be a non-empty string")
    if max_len is not None and len(value) > max_len:
        raise validation(key, f"{key} must be at most {max_len} characters")
    return value


def _metadata(body: Mapping[str, Any]) -> dict[str, str]:
    value = body.get("metadata")
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise validation("metadata", "metadata must be an object whose values are strings")
    return dict(value)


def _query_int(query: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(key, f"{key} must be an integer") from None
    if not low <= value <= high:
        raise validation(key, f"{key} must be between {low} and {high}")
    return value


class Ledger:
    """Everything the API knows; every change goes through here and emits its events."""

    def __init__(self, now: Callable[[], float], emit: Emit) -> None:
        self.now = now
        self.emit = emit
        self.intents: dict[str, Intent] = {}
        self.refunds: dict[str, Refund] = {}
        self._request_ids: dict[str, set[str]] = {"intent": set(), "refund": set(), "cancel": set()}

    def _claim(self, kind: str, body: Mapping[str, Any]) -> str:
        request_id = _text(body, "request_id", max_len=128)
        assert request_id is not None
        if request_id in self._request_ids[kind]:
            raise ApiError(
                400, "duplicate_request", f"request_id {request_id} has already been used", "request_id"
            )
        return request_id

    # ---------------------------------------------------------------- intents
    def create_intent(self, body: Mapping[str, Any]) -> Intent:
        self._claim("intent", body)
        if "amount" not in body:
            raise validation("amount", "amount is required")
        if "currency" not in body:
            raise validation("currency", "currency is required")
        currency = parse_currency(body["currency"])
        amount = parse_amount(body["amount"], currency)
        order_id = _text(body, "merchant_order_id", max_len=128)
        metadata = _metadata(body)
        return_url = _text(body, "return_url", max_len=2048, required=False)
        if return_url is not None and not return_url.startswith(("http://", "https://")):
            raise validation("return_url", "return_url must be an http(s) URL")
        descriptor = _text(body, "descriptor", max_len=32, required=False)
        request_id = self._claim("intent", body)  # all checks passed: the request_id is now used
        self._request_ids["intent"].add(request_id)
        now = self.now()
        intent = Intent(
            id=new_id("int_"),
            request_id=request_id,
            amount=amount,
            currency=currency,
            merchant_order_id=str(order_id),
            client_secret=secrets.token_urlsafe(24),
            created=now,
            updated=now,
            metadata=metadata,
            return_url=return_url,
            descriptor=descriptor,
        )
        self.intents[intent.id] = intent
        self.emit("payment_intent.created", intent.json())
        return intent

    def intent(self, intent_id: str, source: str = "") -> Intent:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise not_found("payment_intent", intent_id, source)
        return intent

    def list_intents(self, query: Mapping[str, str]) -> dict[str, Any]:
        """Newest first; ``page_num`` is 0-based, ``page_size`` 1..1000 (default 10)."""
        page_num = _query_int(query, "page_num", 0, 0, 1_000_000)
        page_size = _query_int(query, "page_size", 10, 1, MAX_PAGE_SIZE)
        status = query.get("status") or None
        if status is not None and status not in INTENT_STATUSES:
            raise validation("status", f"status must be one of {sorted(INTENT_STATUSES)}")
        bounds: dict[str, float] = {}
        for key in ("from_created_at", "to_created_at"):
            if query.get(key):
                try:
                    bounds[key] = parse_ts(query[key])
                except ValueError:
                    raise validation(key, f"{key} must look like 2024-07-15T07:41:32+0000") from None
        order_id = query.get("merchant_order_id") or None
        found = [
            i
            for i in reversed(self.intents.values())
            if (order_id is None or i.merchant_order_id == order_id)
            and (status is None or i.status == status)
            and int(i.created) >= bounds.get("from_created_at", float("-inf"))
            and int(i.created) <= bounds.get("to_created_at", float("inf"))
        ]
        start = page_num * page_size
        page = found[start : start + page_size]
        return {"items": [i.json() for i in page], "has_more": len(found) > start + page_size}

    def pay(self, intent_id: str, outcome: str = "succeeded") -> Intent:
        """The shopper pays on the hosted page (auto-capture)."""
        if outcome not in OUTCOMES:
            raise validation("outcome", f"outcome must be one of {list(OUTCOMES)}")
        intent = self.intent(intent_id)
        if intent.status not in PAYABLE:
            raise ApiError(
                400,
                "invalid_status_for_operation",
                f"payment intent {intent.id} is {intent.status} and cannot be paid",
                "status",
            )
        now = self.now()
        failed = outcome == "declined"
        attempt = Attempt(
            id=new_id("att_"),
            payment_intent_id=intent.id,
            amount=intent.amount,
            currency=intent.currency,
            merchant_order_id=intent.merchant_order_id,
            status="FAILED" if failed else "AUTHORIZED",
            created=now,
            failure_code="issuer_declined" if failed else None,
        )
        intent.latest_attempt = attempt
        intent.updated = now
        if failed:
            intent.status = "REQUIRES_PAYMENT_METHOD"
            self.emit("payment_attempt.failed_to_process", attempt.json())
            self.emit("payment_intent.requires_payment_method", intent.json())
            return intent
        self.emit("payment_attempt.authorized", attempt.json())
        attempt.status = "CAPTURE_REQUESTED"
        intent.status = "SUCCEEDED"
        intent.captured = intent.amount
        self.emit("payment_intent.succeeded", intent.json())
        return intent

    def cancel(
        self, intent_id: str, reason: str | None = None, body: Mapping[str, Any] | None = None
    ) -> Intent:
        request_id = None
        if body is not None:
            request_id = self._claim("cancel", body)
            reason = _text(body, "cancellation_reason", max_len=128, required=False)
        intent = self.intent(intent_id)
        if intent.status in ("SUCCEEDED", "CANCELLED"):
            raise ApiError(
                400,
                "invalid_status_for_operation",
                f"payment intent {intent.id} is {intent.status} and cannot be cancelled",
                "status",
            )
        if request_id is not None:
            self._request_ids["cancel"].add(request_id)
        now = self.now()
        intent.status = "CANCELLED"
        intent.cancelled_at = intent.updated = now
        intent.cancellation_reason = reason or "requested_by_customer"
        self.emit("payment_intent.cancelled", intent.json())
        return intent

    # ---------------------------------------------------------------- refunds
    def refundable(self, intent: Intent) -> Decimal:
        mine = [r for r in self.refunds.values() if r.payment_intent_id == intent.id and r.status != "FAILED"]
        return intent.captured - sum((r.amount for r in mine), Decimal(0))

    def create_refund(self, body: Mapping[str, Any]) -> Refund:
        self._claim("refund", body)
        intent_id = _text(body, "payment_intent_id", max_len=64)
        assert intent_id is not None
        intent = self.intent(intent_id, source="payment_intent_id")
        if intent.status != "SUCCEEDED":
            raise validation(
                "payment_intent_id",
                f"payment intent {intent.id} is {intent.status}; only SUCCEEDED intents can be refunded",
            )
        remaining = self.refundable(intent)
        if body.get("amount") is None:
            amount = remaining
        else:
            amount = parse_amount(body["amount"], intent.currency)
        if amount <= 0 or amount > remaining:
            raise validation("amount", f"refund amount {amount} exceeds the refundable amount {remaining}")
        reason = _text(body, "reason", max_len=128, required=False)
        metadata = _metadata(body)
        request_id = self._claim("refund", body)
        self._request_ids["refund"].add(request_id)
        now = self.now()
        attempt = intent.latest_attempt
        refund = Refund(
            id=new_id("rfd_"),
            request_id=request_id,
            payment_intent_id=intent.id,
            payment_attempt_id=attempt.id if attempt else None,
            amount=amount,
            currency=intent.currency,
            created=now,
            updated=now,
            reason=reason,
            metadata=metadata,
        )
        self.refunds[refund.id] = refund
        self.emit("refund.received", refund.json())
        return refund

    def refund(self, refund_id: str) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise not_found("refund", refund_id)
        return refund

    def settle_refund(self, refund_id: str, outcome: str = "settled") -> Refund:
        """RECEIVED -> ACCEPTED -> SETTLED (or -> FAILED, which makes the amount refundable again)."""
        if outcome not in ("settled", "failed"):
            raise validation("outcome", "outcome must be settled or failed")
        refund = self.refund(refund_id)
        if refund.status in ("SETTLED", "FAILED"):
            raise ApiError(
                400,
                "invalid_status_for_operation",
                f"refund {refund.id} is already {refund.status}",
                "status",
            )
        steps = ["ACCEPTED", "SETTLED"] if outcome == "settled" else ["FAILED"]
        if refund.status == "ACCEPTED" and outcome == "settled":
            steps = ["SETTLED"]
        for status in steps:
            refund.status = status
            refund.updated = self.now()
            self.emit(f"refund.{status.lower()}", refund.json())
        return refund
