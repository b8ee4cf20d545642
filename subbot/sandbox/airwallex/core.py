"""Shared pieces: API errors, timestamps, ids and major-unit amounts."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

TS_FORMAT = "%Y-%m-%dT%H:%M:%S+0000"
_ALPHABET = string.ascii_lowercase + string.digits

# ISO 4217 minor-unit exponents that differ from the usual 2
ZERO_DECIMAL = frozenset(
    ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF")
)
THREE_DECIMAL = frozenset(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"))


class ApiError(ValueError):
    """An error answered as ``{"code", "message", "source"}`` with an HTTP status.

    It is also what the Python API raises (a ``ValueError``), e.g. when paying a cancelled intent.
    """

    def __init__(self, status: int, code: str, message: str, source: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.source = source

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "source": self.source}


def validation(source: str, message: str) -> ApiError:
    return ApiError(400, "validation_error", message, source)


def not_found(kind: str, object_id: str, source: str = "") -> ApiError:
    return ApiError(404, "resource_not_found", f"{kind} {object_id} was not found", source)


def fmt_ts(unix: float) -> str:
    """``2024-07-15T07:41:32+0000`` (UTC, no colon in the offset), as Airwallex writes timestamps."""
    return datetime.fromtimestamp(unix, UTC).strftime(TS_FORMAT)


def parse_ts(text: str) -> float:
    """Parse an Airwallex timestamp (also ``+00:00``, ``Z`` or a bare date); raises ValueError."""
    text = text.strip().replace(" ", "+")  # an unencoded "+" in a query string arrives as a space
    try:
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def new_id(prefix: str, length: int = 22) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def parse_currency(value: Any, source: str = "currency") -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise validation(source, f"{source} must be a 3-letter ISO 4217 code")
    return value.upper()


def parse_amount(value: Any, currency: str, source: str = "amount") -> Decimal:
    """A positive number in MAJOR units with no more decimals than ``currency`` allows."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise validation(source, f"{source} must be a number (major units, e.g. 9.99)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise validation(source, f"{source} must be a number") from None
    if not amount.is_finite() or amount <= 0:
        raise validation(source, f"{source} must be greater than 0")
    places = max(0, -int(amount.normalize().as_tuple().exponent))
    allowed = exponent(currency)
    if places > allowed:
        raise validation(source, f"{source} has {places} decimal places; {currency} allows {allowed}")
    return amount


def render_amount(amount: Decimal) -> int | float:
    """JSON number for an amount: ``2`` for whole amounts, ``9.99`` otherwise."""
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)
