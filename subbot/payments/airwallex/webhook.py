"""Verifying Airwallex webhooks: HMAC-SHA256 over x-timestamp (milliseconds) + raw body, constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Airwallex retries for about three days; whether a retry carries a fresh x-timestamp is not documented.
# Duplicates and replays are harmless (events are deduplicated on their id), so the window only has to
# stop ancient captures: accept timestamps up to 4 days old and 5 minutes in the future.
MAX_AGE = timedelta(days=4)
MAX_SKEW = timedelta(minutes=5)
MAX_BODY = 256 * 1024


class WebhookRejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    object: dict[str, Any]
    raw: dict[str, Any]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).hexdigest()


def timestamp_moment(value: str) -> datetime:
    """x-timestamp is Unix time in MILLISECONDS; a 10-digit value in seconds is understood too."""
    if not value.isdigit() or len(value) > 16:
        raise WebhookRejected(401, "bad x-timestamp")
    number = int(value)
    seconds = number / 1000 if number >= 10**11 else float(number)
    return datetime.fromtimestamp(seconds, tz=UTC)


def verify(secret: str, timestamp: str | None, sig: str | None, body: bytes, now: datetime) -> Event:
    """Raise WebhookRejected, or return the parsed event of a genuine delivery."""
    if not timestamp or not sig:
        raise WebhookRejected(401, "missing x-timestamp or x-signature")
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected, sig.strip().lower()):
        raise WebhookRejected(401, "bad signature")
    moment = timestamp_moment(timestamp)
    if moment < now - MAX_AGE or moment > now + MAX_SKEW:
        raise WebhookRejected(401, "x-timestamp outside the accepted window")
    return parse(body)


def parse(body: bytes) -> Event:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(400, "malformed JSON") from exc
    if not isinstance(data, dict):
        raise WebhookRejected(400, "event must be a JSON object")
    event_id, name = data.get("id"), data.get("name")
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255 or not isinstance(name, str):
        raise WebhookRejected(400, "event needs a string id and name")
    if any(ord(ch) < 32 for ch in event_id + name):
        raise WebhookRejected(400, "event id and name must not contain control characters")
    return Event(event_id, name[:64], obj if isinstance(obj, dict) else {}, data)
