"""Airwallex failures, mapped to what the caller can do about them."""

from __future__ import annotations


class AirwallexError(Exception):
    """The API answered with an error; ``code`` is Airwallex's (e.g. ``validation_error``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Airwallex {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class AirwallexUnavailable(Exception):
    """Network errors, timeouts or 5xx after retries: try later, or offer Stars."""


class AirwallexNotConfigured(Exception):
    """AIRWALLEX_CLIENT_ID / AIRWALLEX_API_KEY are not set."""
